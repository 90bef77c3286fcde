//! Properties over arbitrary input: parsing never panics, and what it accepts is stable.

use crate::Programme;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_text_is_parsed_or_refused_never_a_panic(source in "\\PC{0,200}") {
        let _ = Programme::parse(&source);
    }

    #[test]
    fn any_condition_is_compiled_or_refused(condition in "[a-z.()=<>!&| '0-9\\[\\]]{0,60}") {
        let source = format!("name = \"x\"\ncurrency = \"CNY\"\ntimezone = \"UTC\"\n[[segments]]\nname = \"s\"\ncondition = {condition:?}\n");
        if let Err(issues) = Programme::parse(&source) {
            prop_assert!(issues.iter().all(|i| i.line > 0 && !i.reason.is_empty()));
        }
    }
}
