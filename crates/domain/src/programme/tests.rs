use super::*;

const GOOD: &str = include_str!("../../../../programmes/demo.toml");

#[test]
fn demo_programme_parses() {
    let p = Programme::parse(GOOD).unwrap();
    assert_eq!(p.currency.code(), "CNY");
    assert_eq!(p.currency.minor_units(), 2);
    assert_eq!(p.timezone_name, "Asia/Shanghai");
    assert_eq!(p.segments.len(), 2);
    assert_eq!(
        p.custom_activity("live_stream_watched").unwrap().segment,
        Some(1)
    );
}

/// Each bad file, and the one issue it must raise: (line, field, part of the reason).
#[test]
fn bad_programmes_are_refused_with_line_and_field() {
    let base = "name = \"x\"\ncurrency = \"CNY\"\ntimezone = \"UTC\"\n";
    let cases: &[(&str, String, u32, &str, &str)] = &[
        ("unknown top-level key", format!("{base}colour = \"red\"\n"), 4, "colour", "unknown field"),
        ("wrong type", "name = \"x\"\ncurrency = 42\ntimezone = \"UTC\"\n".to_owned(), 2, "currency", "invalid type"),
        ("missing field", "name = \"x\"\ntimezone = \"UTC\"\n".to_owned(), 1, "", "missing field `currency`"),
        ("bad currency", "name = \"x\"\ncurrency = \"YUAN\"\ntimezone = \"UTC\"\n".to_owned(), 2, "currency", "ISO 4217"),
        ("bad time zone", "name = \"x\"\ncurrency = \"CNY\"\ntimezone = \"Mars/Olympus\"\n".to_owned(), 3, "timezone", "IANA"),
        ("bad expression", format!("{base}[[segments]]\nname = \"a\"\ncondition = \"member.score >\"\n"), 6, "segments[0].condition", "not a valid CEL"),
        ("unknown variable", format!("{base}[[segments]]\nname = \"a\"\ncondition = \"order.total > 1\"\n"), 6, "segments[0].condition", "unknown variable `order`"),
        ("dangling reference", format!("{base}[[activities]]\nname = \"quiz\"\nsegment = \"nobody\"\n"), 6, "activities[0].segment", "no segment is named `nobody`"),
        ("unknown key in a section", format!("{base}[[segments]]\nname = \"a\"\ncondition = \"true\"\nweight = 3\n"), 7, "segments[0].weight", "unknown field"),
        ("duplicate name", format!("{base}[[segments]]\nname = \"a\"\ncondition = \"true\"\n[[segments]]\nname = \"a\"\ncondition = \"true\"\n"), 8, "segments[1].name", "declared twice"),
        ("built-in activity redeclared", format!("{base}[[activities]]\nname = \"review\"\n"), 5, "activities[0].name", "built in"),
        ("syntax error", format!("{base}[[segments]\n"), 4, "", ""),
        ("bad plan term", format!("{base}[[plans]]\nid = \"p\"\nterm = \"decade\"\nprice_minor = 1\n"), 6, "plans[0].term", "must be one of"),
        ("refund days on a full policy", format!("{base}[[plans]]\nid = \"p\"\nterm = \"year\"\nprice_minor = 1\nrefund = {{ policy = \"full\", days = 7 }}\n"), 8, "plans[0].refund.days", "only `full_within_days`"),
        ("bad trial condition", format!("{base}[[plans]]\nid = \"p\"\nterm = \"year\"\nprice_minor = 1\ntrial = {{ days = 30, eligible = \"order.x\" }}\n"), 8, "plans[0].trial.eligible", "unknown variable `order`"),
        ("benefit of an unknown plan", format!("{base}[[benefits]]\nid = \"b\"\nkind = \"priority_service\"\nplans = [\"gold\"]\n"), 7, "benefits[0].plans", "no plan is named `gold`"),
        ("benefit field of another kind", format!("{base}[[plans]]\nid = \"p\"\nterm = \"year\"\nprice_minor = 1\n[[benefits]]\nid = \"b\"\nkind = \"free_shipping\"\nplans = [\"p\"]\npercent = 5\n"), 10, "benefits[0].percent", "does not take `percent`"),
        ("grant of an unknown coupon", format!("{base}[[plans]]\nid = \"p\"\nterm = \"year\"\nprice_minor = 1\n[[benefits]]\nid = \"b\"\nkind = \"coupon_grant\"\nplans = [\"p\"]\ncoupon = \"nope\"\ncount = 1\n"), 12, "benefits[0].coupon", "no coupon is named `nope`"),
        ("an earn rate that overflows an order", format!("{base}[points]\nearn_points = 1000\nearn_per_minor = 1\n"), 5, "points.earn_points", "would earn"),
        ("a point worth more than 1,000 minor units", format!("{base}[points]\nearn_points = 1\nearn_per_minor = 100\n[points.redemption]\npoints = 1\nvalue_minor = 10000000\n"), 9, "points.redemption.value_minor", "at most 1000"),
        ("a score rate that overflows an order", format!("{base}[score]\nwindow = {{ kind = \"lifetime\" }}\n[[score.rules]]\nname = \"s\"\non = \"order\"\nscore = 1000000\nper_minor = 1\n"), 9, "score.rules[0].score", "would score"),
        ("coupon without its amount", format!("{base}[[coupons]]\nid = \"c\"\nkind = \"amount_off\"\nvalid_days = 30\n"), 6, "coupons[0].amount_minor", "needs this field"),
    ];
    for (what, source, line, field, reason) in cases {
        let issues = Programme::parse(source)
            .err()
            .unwrap_or_else(|| panic!("{what}: accepted"));
        let issue = &issues[0];
        assert_eq!(issue.line, *line, "{what}: {issue}");
        assert_eq!(issue.field, *field, "{what}: {issue}");
        assert!(issue.reason.contains(reason), "{what}: {issue}");
    }
}

#[test]
fn every_issue_is_reported_at_once() {
    let source = "name = \"\"\ncurrency = \"CNY\"\ntimezone = \"Nowhere/Land\"\n[[segments]]\nname = \"a\"\ncondition = \"x >\"\n";
    let issues = Programme::parse(source).unwrap_err();
    let fields: Vec<&str> = issues.iter().map(|i| i.field.as_str()).collect();
    assert_eq!(fields, ["name", "timezone", "segments[0].condition"]);
}

#[test]
fn line_column_counts_characters() {
    assert_eq!(line_column("ab\ncd", 0), (1, 1));
    assert_eq!(line_column("ab\ncd", 4), (2, 2));
    assert_eq!(line_column("é\nx", 3), (2, 1));
    assert_eq!(line_column("ab", 99), (1, 3));
}

/// Bad `[points]`, `[score]`, `[[tiers]]` and `[tier_rules]` sections: (what, section, the
/// field at fault, part of the reason).
#[test]
fn bad_points_score_and_tier_sections_are_refused() {
    let base = "name = \"x\"\ncurrency = \"CNY\"\ntimezone = \"UTC\"\n";
    let tiers = "[[tiers]]\nname = \"a\"\nthreshold = 0\n[[tiers]]\nname = \"b\"\nthreshold = 10\n";
    let score = "[score]\nwindow = { kind = \"lifetime\" }\n";
    let cases: &[(&str, String, &str, &str)] = &[
        ("zero rate base", "[points]\nearn_points = 1\nearn_per_minor = 0\n".into(), "points.earn_per_minor", "between 1"),
        ("unknown refund policy", "[points]\nearn_points = 1\nearn_per_minor = 100\nrefund_policy = \"never\"\n".into(), "points.refund_policy", "one of"),
        ("rolling without span", "[points]\nearn_points = 1\nearn_per_minor = 100\nexpiry = { policy = \"rolling\" }\n".into(), "points.expiry.months", "needs `months`"),
        ("bad weekday", "[points]\nearn_points = 1\nearn_per_minor = 100\n[[points.multipliers]]\nname = \"m\"\npercent = 200\nweekdays = [\"caturday\"]\n".into(), "points.multipliers[0].weekdays[0]", "day name"),
        ("bonus on nothing", "[points]\nearn_points = 1\nearn_per_minor = 100\n[[points.bonuses]]\nname = \"b\"\non = \"dance\"\npoints = 5\n".into(), "points.bonuses[0].on", "neither"),
        ("bad window", "[score]\nwindow = { kind = \"forever\" }\n".into(), "score.window.kind", "one of"),
        ("activity per amount", format!("{score}[[score.rules]]\nname = \"r\"\non = \"review\"\nscore = 1\nper_minor = 100\n"), "score.rules[0].per_minor", "fixed"),
        ("tiers without rules", tiers.into(), "tier_rules", "needs a `[tier_rules]`"),
        ("rules without tiers", "[tier_rules]\nevaluation = { schedule = \"monthly\", day = 1 }\n".into(), "tier_rules", "needs `[[tiers]]`"),
        ("first tier above zero", format!("{score}[[tiers]]\nname = \"a\"\nthreshold = 5\n[[tiers]]\nname = \"b\"\nthreshold = 10\n[tier_rules]\nevaluation = {{ schedule = \"monthly\", day = 1 }}\n"), "tiers[0].threshold", "threshold is 0"),
        ("falling thresholds", format!("{score}[[tiers]]\nname = \"a\"\nthreshold = 0\n[[tiers]]\nname = \"b\"\nthreshold = 10\n[[tiers]]\nname = \"c\"\nthreshold = 10\n[tier_rules]\nevaluation = {{ schedule = \"monthly\", day = 1 }}\n"), "tiers[2].threshold", "must rise"),
        ("score measure without score", format!("{tiers}[tier_rules]\nwindow = {{ kind = \"lifetime\" }}\nevaluation = {{ schedule = \"monthly\", day = 1 }}\n"), "tier_rules.measure", "[score]"),
        ("day 31", format!("{score}{tiers}[tier_rules]\nevaluation = {{ schedule = \"monthly\", day = 31 }}\n"), "tier_rules.evaluation.day", "between 1 and 28"),
        ("yearly without month", format!("{score}{tiers}[tier_rules]\nevaluation = {{ schedule = \"yearly\", day = 1 }}\n"), "tier_rules.evaluation.month", "needs `month`"),
        ("unknown settlement", format!("{score}{tiers}[tier_rules]\nevaluation = {{ schedule = \"anniversary\" }}\nsettlement = \"weekly\"\n"), "tier_rules.settlement", "one of"),
    ];
    for (what, section, field, reason) in cases {
        let issues = Programme::parse(&format!("{base}{section}"))
            .err()
            .unwrap_or_else(|| panic!("{what}: accepted"));
        assert!(
            issues
                .iter()
                .any(|i| i.field == *field && i.reason.contains(reason)),
            "{what}: {issues:?}"
        );
    }
    let good = format!("{base}{score}{tiers}[tier_rules]\nevaluation = {{ schedule = \"anniversary\" }}\nsettlement = \"at_evaluation\"\n");
    let p = Programme::parse(&good).unwrap();
    let rules = p.tiers.unwrap();
    assert!(!rules.live);
    assert_eq!(
        rules.window,
        crate::tiers::Window::Lifetime,
        "the score's window by default"
    );
}

/// Conditions are type-checked against the fields of their place: each bad condition is
/// refused at the line and column of the node at fault. (what, the condition's section,
/// the expression, the column of the fault within the expression, part of the reason.)
#[test]
fn bad_conditions_are_refused_at_their_line_and_column() {
    let base = "name = \"x\"\ncurrency = \"CNY\"\ntimezone = \"UTC\"\n";
    let points = "[points]\nearn_points = 1\nearn_per_minor = 100\n";
    // Every case puts its expression on line 6 (segments, activities) or 8 (points rules),
    // after `condition = "`, so the expression's first character is at column 14.
    let segment = |c: &str| format!("{base}[[segments]]\nname = \"s\"\ncondition = \"{c}\"\n");
    let activity = |c: &str| format!("{base}[[activities]]\nname = \"a\"\ncondition = \"{c}\"\n");
    let multiplier = |c: &str| {
        format!("{base}{points}[[points.multipliers]]\nname = \"m\"\npercent = 200\ncondition = \"{c}\"\n")
    };
    type Case<'a> = (&'a str, String, u32, u32, &'a str);
    let cases: Vec<Case> = vec![
        (
            "a misspelt member field",
            segment("member.teir == 'gold'"),
            6,
            20,
            "`member` has no field `teir` (did you mean `tier`?)",
        ),
        (
            "a member field that does not exist",
            segment("member.age >= 18"),
            6,
            20,
            "no field `age`",
        ),
        (
            "a nested field that does not exist",
            segment("member.points.balance > 0"),
            6,
            27,
            "`member.points` has no field `balance`",
        ),
        (
            "a number against a string",
            segment("member.score > 'high'"),
            6,
            27,
            "a int cannot be ordered against a string",
        ),
        (
            "text in arithmetic",
            segment("member.score + member.tier > 3"),
            6,
            27,
            "`+` cannot take a int and a string",
        ),
        (
            "int and double mixed in arithmetic",
            segment("member.score * 1.5 > 3.0"),
            6,
            27,
            "does not mix a int and a double",
        ),
        (
            "a condition that is not a boolean",
            segment("member.score + 1"),
            6,
            27,
            "must be true or false",
        ),
        (
            "fields of a number",
            segment("member.score.value > 1"),
            6,
            26,
            "`member.score` is a int, which has no fields",
        ),
        (
            "`&&` over a number",
            segment("member.score && true"),
            6,
            20,
            "`&&` takes bools",
        ),
        (
            "an unknown function",
            segment("upper(member.tier) == 'GOLD'"),
            6,
            19,
            "unknown function `upper`",
        ),
        (
            "a string method on a number",
            segment("member.score.startsWith('1')"),
            6,
            37,
            "works on strings, not on a int",
        ),
        (
            "`in` over a number",
            segment("'vip' in member.score"),
            6,
            20,
            "`in` needs a list or a map",
        ),
        (
            "the line where only member and event are",
            activity("line.sku == 'A'"),
            6,
            14,
            "unknown variable `line`",
        ),
        (
            "the event where only the member is",
            segment("event.total_minor > 100"),
            6,
            14,
            "unknown variable `event`",
        ),
        (
            "an event field that does not exist",
            activity("event.totl_minor > 100"),
            6,
            19,
            "`event` has no field `totl_minor` (did you mean `total_minor`?)",
        ),
        (
            "a line field that does not exist",
            multiplier("line.price > 100"),
            10,
            18,
            "`line` has no field `price`",
        ),
        (
            "a tag list compared with a string",
            multiplier("line.tags == 'promo'"),
            10,
            24,
            "a list(string) is never equal to a string",
        ),
        (
            "a quantity in a list of strings",
            multiplier("line.quantity in ['1', '2']"),
            10,
            28,
            "a int is never in a list of string",
        ),
        (
            "a field of an element that does not exist",
            activity("event.lines.exists(l, l.colour == 'red')"),
            6,
            37,
            "`event.lines[]` has no field `colour`",
        ),
        (
            "a computed amount an event line lacks",
            activity("event.lines.exists(l, l.amount_minor > 0)"),
            6,
            37,
            "`event.lines[]` has no field `amount_minor`",
        ),
    ];
    assert!(cases.len() >= 10);
    for (what, source, line, column, reason) in &cases {
        let issues = Programme::parse(source)
            .err()
            .unwrap_or_else(|| panic!("{what}: accepted"));
        assert_eq!(
            issues.len(),
            1,
            "{what}: one mistake, one message: {issues:?}"
        );
        let issue = &issues[0];
        assert!(issue.reason.contains(reason), "{what}: {issue}");
        assert_eq!(
            (issue.line, issue.column),
            (*line, *column),
            "{what}: {issue}"
        );
    }
    // What the check accepts, the interpreter runs: each holds or does not, without error.
    let good = [
        "member.tier == 'gold' || member.tier == null",
        "member.attributes.city == 'Beijing' && member.score >= 1000",
        "has(member.attributes.vip) && member.attributes.vip == true",
        "member.points.available + member.points.pending > 100",
        "size(member.external_id) > 1 && member.external_id.startsWith('m')",
        "member.score > 2.5 && double(member.score) / 2.0 > 1.0",
        "member.status in ['active', 'frozen']",
        "'gold' in [member.tier] ? true : member.score > 0",
        "member['score'] > 0 && int(member.attributes.age) > 17",
        "uint(member.score) > 5u && !(member.score < 0)",
    ];
    let member = serde_json::json!({
        "external_id": "m1", "status": "active", "attributes": {"city": "Beijing", "vip": true, "age": 30},
        "created_at": "2026-01-01T00:00:00Z", "points": {"available": 90, "pending": 20},
        "tier": "gold", "score": 1200,
    });
    for expression in good {
        let condition = Condition::compile(expression, SEGMENT_VARIABLES)
            .unwrap_or_else(|e| panic!("{expression}: {e:?}"));
        assert_eq!(
            condition.evaluate(&[("member", &member)]),
            Ok(true),
            "{expression}"
        );
    }
}

/// A version saved before conditions were type-checked still loads: only an unknown
/// variable refuses it.
#[test]
fn stored_versions_load_without_the_type_check() {
    let base = "name = \"x\"\ncurrency = \"CNY\"\ntimezone = \"UTC\"\n[[segments]]\nname = \"s\"\n";
    let typo = format!("{base}condition = \"member.teir == 'gold'\"\n");
    assert!(Programme::parse(&typo).is_err());
    assert!(Programme::parse_stored(&typo).is_ok());
    let unknown = format!("{base}condition = \"order.total > 1\"\n");
    assert!(Programme::parse_stored(&unknown).is_err());
}

/// Three independent mistakes are three messages, each at its own line.
#[test]
fn three_mistakes_are_three_messages() {
    let source = "name = \"x\"\ncurrency = \"CNY\"\ntimezone = \"UTC\"\n\
        [[segments]]\nname = \"a\"\ncondition = \"member.teir == 'gold'\"\n\
        [[segments]]\nname = \"b\"\ncondition = \"member.score > 'x'\"\n\
        [[activities]]\nname = \"quiz\"\ncondition = \"event.lines.size() > 1 &&\"\n";
    let issues = Programme::parse(source).unwrap_err();
    let lines: Vec<(u32, &str)> = issues.iter().map(|i| (i.line, i.field.as_str())).collect();
    assert_eq!(
        lines,
        [
            (6, "segments[0].condition"),
            (9, "segments[1].condition"),
            (12, "activities[0].condition")
        ],
        "{issues:?}"
    );
}

/// The diff of two versions, item by item, and `renamed_from` checked in the file.
#[test]
fn versions_are_compared_item_by_item() {
    use change::{assess, diff, Holders, ItemChange, Section};
    let base = "name = \"x\"\ncurrency = \"CNY\"\ntimezone = \"UTC\"\n";
    let plan = |id: &str, price: i64, extra: &str| {
        format!("[[plans]]\nid = \"{id}\"\nterm = \"year\"\nprice_minor = {price}\n{extra}")
    };
    let old = Programme::parse(&format!("{base}{}{}", plan("a", 1, ""), plan("b", 1, ""))).unwrap();
    let new = Programme::parse(&format!(
        "{base}{}{}{}",
        plan("a", 2, ""),
        plan("c", 1, "renamed_from = \"b\"\n"),
        plan("d", 1, "")
    ))
    .unwrap();
    let changes: Vec<(Section, String, ItemChange)> = diff(&old, &new)
        .into_iter()
        .map(|c| (c.section, c.id, c.change))
        .collect();
    assert_eq!(
        changes,
        [
            (Section::Plans, "a".to_owned(), ItemChange::Changed),
            (
                Section::Plans,
                "c".to_owned(),
                ItemChange::Renamed { from: "b".into() }
            ),
            (Section::Plans, "d".to_owned(), ItemChange::Added),
        ]
    );
    // Without the rename, `b` is removed, and strands its holders.
    let removed = Programme::parse(&format!("{base}{}", plan("a", 1, ""))).unwrap();
    let holders = Holders {
        plans: [("b".to_owned(), 3)].into(),
        ..Holders::default()
    };
    let a = assess(&old, &removed, &holders);
    assert_eq!(a.stranded.len(), 1);
    assert_eq!((a.stranded[0].id.as_str(), a.stranded[0].members), ("b", 3));
    assert!(assess(&old, &new, &holders).stranded.is_empty());
    assert_eq!(assess(&old, &new, &holders).renames.len(), 1);

    let refusals = [
        (
            format!(
                "{base}{}{}",
                plan("a", 1, "renamed_from = \"b\"\n"),
                plan("b", 1, "")
            ),
            "plans[0].renamed_from",
            "still declared",
        ),
        (
            format!("{base}{}", plan("a", 1, "renamed_from = \"a\"\n")),
            "plans[0].renamed_from",
            "still declared",
        ),
        (
            format!(
                "{base}{}{}",
                plan("a", 1, "renamed_from = \"z\"\n"),
                plan("b", 1, "renamed_from = \"z\"\n")
            ),
            "plans[1].renamed_from",
            "of two items",
        ),
    ];
    for (source, field, reason) in refusals {
        let issues = Programme::parse(&source).unwrap_err();
        assert!(
            issues
                .iter()
                .any(|i| i.field == field && i.reason.contains(reason)),
            "{source}: {issues:?}"
        );
    }
}

/// A reference to an item that has a problem of its own is not a second problem: a bad
/// coupon template and a bad tier give one message each, not one more for each benefit
/// that names them.
#[test]
fn one_mistake_is_one_message() {
    let source = "name = \"x\"\ncurrency = \"CNY\"\ntimezone = \"UTC\"\n\
        [score]\nwindow = { kind = \"lifetime\" }\n\
        [[plans]]\nid = \"p\"\nterm = \"year\"\nprice_minor = 1\n\
        [[coupons]]\nid = \"c\"\nkind = \"amount_off\"\nvalid_days = 30\n\
        [[benefits]]\nid = \"b\"\nkind = \"coupon_grant\"\nplans = [\"p\"]\ncoupon = \"c\"\ncount = 1\n\
        [[tiers]]\nname = \"a\"\nthreshold = 0\n[[tiers]]\nname = \"b\"\nthreshold = -5\n\
        [tier_rules]\nevaluation = { schedule = \"monthly\", day = 1 }\n\
        [[benefits]]\nid = \"b2\"\nkind = \"priority_service\"\ntiers = [\"b\"]\n";
    let issues = Programme::parse(source).unwrap_err();
    let fields: Vec<&str> = issues.iter().map(|i| i.field.as_str()).collect();
    assert_eq!(
        fields,
        ["tiers[1].threshold", "coupons[0].amount_minor"],
        "{issues:#?}"
    );
}

/// A segment added before an activity's own does not make the activity look changed.
#[test]
fn an_activity_is_compared_by_its_segments_name() {
    let base = "name = \"x\"\ncurrency = \"CNY\"\ntimezone = \"UTC\"\n";
    let seg = |name: &str| format!("[[segments]]\nname = \"{name}\"\ncondition = \"true\"\n");
    let act = "[[activities]]\nname = \"quiz\"\nsegment = \"b\"\n";
    let old = Programme::parse(&format!("{base}{}{act}", seg("b"))).unwrap();
    let new = Programme::parse(&format!("{base}{}{}{act}", seg("a"), seg("b"))).unwrap();
    let changes = change::diff(&old, &new);
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(
        (changes[0].section, changes[0].id.as_str()),
        (change::Section::Segments, "a")
    );
}

/// Problems serde raises (a key the file should not have, a value of the wrong type) are
/// each reported, and so are the sections' problems after them; a missing key caused by
/// setting a line aside is not.
#[test]
fn every_problem_of_the_file_is_reported() {
    let source = "name = \"x\"\ncurrency = \"CNY\"\ncolour = \"red\"\ntimezone = \"UTC\"\n\
        minor_units = \"two\"\n\
        [[segments]]\nname = \"a\"\nweight = 3\ncondition = \"true\"\n\
        [[segments]]\nname = \"b\"\ncondition = \"member.teir == 'x'\"\n";
    let issues = Programme::parse(source).unwrap_err();
    let found: Vec<(u32, &str)> = issues.iter().map(|i| (i.line, i.field.as_str())).collect();
    assert_eq!(
        found,
        [
            (3, "colour"),
            (5, "minor_units"),
            (8, "segments[0].weight"),
            (12, "segments[1].condition")
        ],
        "{issues:#?}"
    );
    // A required key of the wrong type: reported once, and no "missing field" after it.
    let source = "name = \"x\"\ncurrency = 42\ntimezone = \"UTC\"\n";
    let issues = Programme::parse(source).unwrap_err();
    assert_eq!(issues.len(), 1, "{issues:#?}");
    assert_eq!(issues[0].field, "currency");
}

/// Columns count characters, also after non-ASCII text in the expression.
#[test]
fn columns_count_characters_after_non_ascii_text() {
    let source = "name = \"x\"\ncurrency = \"CNY\"\ntimezone = \"UTC\"\n[[segments]]\nname = \"s\"\ncondition = \"'é' == member.teir\"\n";
    let issues = Programme::parse(source).unwrap_err();
    assert_eq!((issues[0].line, issues[0].column), (6, 27), "{issues:?}");
}
