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
