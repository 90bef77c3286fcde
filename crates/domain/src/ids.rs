//! Identifiers given by the shop. Each is a parsed type with a private field: past the
//! edge, an `ExternalId` is known to be non-empty, short, in Unicode NFC, and free of
//! control and invisible characters.
//!
//! Look-alike ids: a text is normalised to NFC (so `é` typed as one character or as `e`
//! and a combining accent is one id), and a text with an invisible character (zero-width
//! spaces and joiners, direction marks and overrides, a soft hyphen, a byte-order mark) is
//! refused: two ids that print alike are one id or an error, never two members. Matching
//! is exact and case-sensitive after that (`Books` is not `books`), for ids, SKUs,
//! categories and tags alike.

use crate::limits::{ID_LEN_MAX, NAME_LEN_MAX};
use crate::{FieldError, FieldErrorCode};
use std::fmt;
use unicode_normalization::UnicodeNormalization;

/// Names the programme matches against events' SKUs, categories and tags, kept in NFC as
/// the events' are: a category written decomposed in the programme still matches.
pub fn nfc_names(names: &[String]) -> Vec<String> {
    names.iter().map(|n| n.nfc().collect()).collect()
}

/// Characters that print as nothing (Unicode format characters, `Cf`): a text with one
/// could look like another.
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
        | '\u{FFA0}' | '\u{FFF0}'..='\u{FFFB}' | '\u{0600}'..='\u{0605}' | '\u{06DD}'
        | '\u{070F}' | '\u{E0000}'..='\u{E0FFF}')
}

fn check_text(value: &str, len_max: usize) -> Result<(), FieldError> {
    if value.is_empty() {
        return Err(FieldError::invalid("", "must not be empty"));
    }
    if value.chars().count() > len_max {
        return Err(FieldError::new(
            FieldErrorCode::StringTooLong,
            "",
            format!("must be at most {len_max} characters"),
        ));
    }
    if value.chars().any(|c| c.is_control()) {
        return Err(FieldError::invalid(
            "",
            "must not contain control characters",
        ));
    }
    if let Some(c) = value.chars().find(|c| invisible(*c)) {
        return Err(FieldError::invalid(
            "",
            format!(
                "must not contain invisible characters (U+{:04X}): an id that looks like another must be it",
                u32::from(c)
            ),
        ));
    }
    if value.trim() != value {
        return Err(FieldError::invalid(
            "",
            "must not start or end with whitespace",
        ));
    }
    Ok(())
}

macro_rules! text_id {
    ($(#[$doc:meta])* $name:ident, $len_max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Checks `value` and keeps it in NFC (see the module's note on look-alike ids).
            pub fn parse(value: impl Into<String>) -> Result<Self, FieldError> {
                let value = value.into();
                let value = if unicode_normalization::is_nfc(&value) {
                    value
                } else {
                    value.nfc().collect()
                };
                check_text(&value, $len_max)?;
                Ok(Self(value))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

text_id!(
    /// The shop's own identifier of a member.
    ExternalId,
    ID_LEN_MAX
);
text_id!(
    /// The id of an incoming event, unique across the whole deployment.
    EventId,
    ID_LEN_MAX
);
text_id!(
    /// The shop's identifier of an order.
    OrderId,
    ID_LEN_MAX
);
text_id!(
    /// A stock-keeping unit.
    Sku,
    ID_LEN_MAX
);
text_id!(
    /// A product category.
    Category,
    ID_LEN_MAX
);
text_id!(
    /// A free tag on an order line (brand, campaign, "members_only").
    Tag,
    NAME_LEN_MAX
);
text_id!(
    /// The name of a custom activity declared in the programme.
    ActivityName,
    NAME_LEN_MAX
);
text_id!(
    /// A member's referral code.
    ReferralCode,
    NAME_LEN_MAX
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_ids_are_checked() {
        let cases: &[(&str, Option<FieldErrorCode>)] = &[
            ("u-1", None),
            ("会员-42", None),
            ("", Some(FieldErrorCode::InvalidField)),
            (" padded", Some(FieldErrorCode::InvalidField)),
            ("tab\there", Some(FieldErrorCode::InvalidField)),
            ("u\u{200B}1", Some(FieldErrorCode::InvalidField)),
            ("\u{FEFF}u1", Some(FieldErrorCode::InvalidField)),
            ("u1\u{202E}", Some(FieldErrorCode::InvalidField)),
            ("u\u{00AD}1", Some(FieldErrorCode::InvalidField)),
            ("a\u{200D}b", Some(FieldErrorCode::InvalidField)),
        ];
        for (input, expected) in cases {
            let got = ExternalId::parse(*input).err().map(|e| e.code);
            assert_eq!(got, *expected, "input {input:?}");
        }
        let long = "x".repeat(ID_LEN_MAX + 1);
        assert_eq!(
            ExternalId::parse(long).unwrap_err().code,
            FieldErrorCode::StringTooLong
        );
        assert!(ExternalId::parse("x".repeat(ID_LEN_MAX)).is_ok());
    }

    #[test]
    fn look_alike_ids_are_one_id() {
        // `é` as one character and as `e` with a combining accent: one id, kept in NFC.
        let composed = ExternalId::parse("caf\u{00E9}").unwrap();
        let decomposed = ExternalId::parse("cafe\u{0301}").unwrap();
        assert_eq!(composed, decomposed);
        assert_eq!(decomposed.as_str(), "caf\u{00E9}");
        // The length counts the normalised text.
        let accents = "e\u{0301}".repeat(ID_LEN_MAX);
        assert!(ExternalId::parse(accents).is_ok());
        // The programme's names are kept in NFC too, so they match the events'.
        assert_eq!(
            nfc_names(&["cafe\u{0301}".to_owned(), "books".to_owned()]),
            ["caf\u{00E9}", "books"]
        );
        // Case matters: ids match exactly.
        assert_ne!(
            Category::parse("Books").unwrap(),
            Category::parse("books").unwrap()
        );
    }
}
