use super::*;
use serde_json::json;

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn plan(refund: RefundPolicy, grace: Option<Grace>) -> Plan {
    Plan {
        id: "p".into(),
        name: "P".into(),
        term: Length::Months(12),
        price_minor: 6500,
        first_term_price_minor: None,
        prices: vec![],
        trial: None,
        auto_renew: true,
        renewal_notice_days: 7,
        refund: RefundRules {
            policy: refund,
            net_of_benefit_cost: false,
        },
        grace,
        stacking: true,
        partner_rights: vec![],
    }
}

fn paid(no: i64, start: &str, end: &str, amount: i64) -> Term {
    Term {
        no,
        kind: TermKind::Paid,
        start: t(start),
        end: t(end),
        amount_minor: amount,
        paid_at: t(start),
        refunded_minor: 0,
    }
}

fn state(status: Status, end: &str) -> SubscriptionState {
    SubscriptionState {
        status,
        auto_renew: true,
        cancel_at_period_end: false,
        access_end: t(end),
        cut: false,
        grace_until: None,
        renewal_noticed_for: None,
    }
}

#[test]
fn lengths_count_calendar_months_in_the_zone() {
    let tz = TimeZone::get("Asia/Shanghai").unwrap();
    let cases = [
        (
            Length::Months(1),
            "2027-01-30T16:00:00Z",
            "2027-02-27T16:00:00Z",
        ),
        (
            Length::Months(12),
            "2026-11-23T00:00:00Z",
            "2027-11-23T00:00:00Z",
        ),
        (
            Length::Months(3),
            "2026-11-30T16:00:00Z",
            "2027-02-28T16:00:00Z",
        ),
        (
            Length::Days(30),
            "2026-11-23T00:00:00Z",
            "2026-12-23T00:00:00Z",
        ),
    ];
    for (length, start, end) in cases {
        assert_eq!(
            length.after(t(start), &tz),
            t(end),
            "{length:?} from {start}"
        );
    }
}

#[test]
fn price_is_the_lowest_that_applies() {
    let mut p = plan(RefundPolicy::Full, None);
    p.price_minor = 88800;
    p.first_term_price_minor = Some(50000);
    p.prices = vec![PriceRule {
        name: "score".into(),
        condition: Condition::compile("member.score >= 1000", &["member"]).unwrap(),
        price_minor: 8800,
    }];
    let cases = [
        (
            json!({"score": 1200}),
            true,
            8800,
            PriceBasis::Rule("score".into()),
        ),
        (json!({"score": 999}), true, 50000, PriceBasis::FirstTerm),
        (json!({"score": 999}), false, 88800, PriceBasis::List),
        (json!({}), false, 88800, PriceBasis::List),
    ];
    for (member, first, amount, basis) in cases {
        assert_eq!(
            p.price(&member, first),
            (amount, basis),
            "{member} first={first}"
        );
    }
}

#[test]
fn the_clock_moves_a_subscription_once_through_each_change() {
    let tz = TimeZone::UTC;
    let grace = Grace {
        length: Length::Months(2),
        backdate: true,
        keeps_access: false,
    };
    let p = plan(RefundPolicy::Full, Some(grace));
    let terms = [paid(
        1,
        "2026-01-01T00:00:00Z",
        "2027-01-01T00:00:00Z",
        6500,
    )];
    let mut s = state(Status::Active, "2027-01-01T00:00:00Z");
    // Nothing is due before the notice.
    assert!(s
        .advance(Some(&p), &terms, t("2026-12-24T23:59:59Z"), &tz)
        .is_empty());
    let changes = s.advance(Some(&p), &terms, t("2027-06-01T00:00:00Z"), &tz);
    assert_eq!(
        changes,
        vec![
            Change::RenewalDue {
                at: t("2026-12-25T00:00:00Z"),
                period_end: t("2027-01-01T00:00:00Z")
            },
            Change::Status {
                at: t("2027-01-01T00:00:00Z"),
                from: Status::Active,
                to: Status::Grace,
                cause: "term_ended"
            },
            Change::Status {
                at: t("2027-03-01T00:00:00Z"),
                from: Status::Grace,
                to: Status::Expired,
                cause: "grace_ended"
            },
        ]
    );
    // Running again for the same instant does nothing.
    assert!(s
        .advance(Some(&p), &terms, t("2027-06-01T00:00:00Z"), &tz)
        .is_empty());
    assert_eq!(s.next_due(Some(&p), &terms, &tz), None);
}

#[test]
fn a_paid_term_in_grace_starts_at_the_old_end_only_when_backdated() {
    for (backdate, start) in [
        (true, "2027-01-01T00:00:00Z"),
        (false, "2027-02-12T00:00:00Z"),
    ] {
        let p = plan(
            RefundPolicy::Full,
            Some(Grace {
                length: Length::Months(2),
                backdate,
                keeps_access: false,
            }),
        );
        let s = state(Status::Grace, "2027-01-01T00:00:00Z");
        let now = t("2027-02-12T00:00:00Z");
        assert_eq!(
            s.next_term_start(&p, now),
            Some((t(start), Some("renewed_in_grace"))),
            "backdate={backdate}"
        );
    }
}

#[test]
fn refund_policies() {
    let tz = TimeZone::UTC;
    let terms = [
        paid(1, "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z", 36500),
        paid(2, "2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z", 36500),
    ];
    let now = t("2026-03-01T12:00:00Z"); // day 60 of 365 is used
    let within = |days, otherwise| RefundPolicy::FullWithinDays { days, otherwise };
    let used = [(t("2026-01-03T00:00:00Z"), 1500)];
    type Case<'a> = (RefundPolicy, bool, &'a [(Timestamp, i64)], i64);
    let cases: [Case; 8] = [
        (RefundPolicy::Full, false, &[], 73000),
        (RefundPolicy::None, false, &[], 0),
        // The running term: 305 of 365 days unused; the next term in full.
        (RefundPolicy::ProRata, false, &[], 30500 + 36500),
        (RefundPolicy::ProRata, true, &used, 30500 + 36500 - 1500),
        (within(90, Fallback::None), false, &[], 73000),
        // A benefit used since the payment: the fallback applies.
        (within(90, Fallback::None), false, &used, 36500),
        (within(30, Fallback::ProRata), false, &[], 30500 + 36500),
        (RefundPolicy::Full, true, &used, 73000 - 1500),
    ];
    for (policy, net, uses, expected) in cases {
        let rules = RefundRules {
            policy,
            net_of_benefit_cost: net,
        };
        let calc = refund_calculation(rules, &terms, uses, now, &tz);
        assert_eq!(
            calc.refund_minor, expected,
            "{policy:?} net={net} uses={uses:?}"
        );
        assert_eq!(
            calc.gross_minor - calc.benefit_cost_minor.min(calc.gross_minor),
            calc.refund_minor
        );
    }
}

#[test]
fn access_follows_terms_grace_and_cuts() {
    let tz = TimeZone::UTC;
    let grace = Grace {
        length: Length::Days(10),
        backdate: false,
        keeps_access: true,
    };
    let terms = [paid(1, "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z", 1)];
    let s = state(Status::Active, "2027-01-01T00:00:00Z");
    let at = |x: &str| s.grants_access(Some(grace), &terms, t(x), &tz);
    assert!(!at("2025-12-31T23:59:59Z"));
    assert!(at("2026-06-01T00:00:00Z"));
    assert!(at("2027-01-05T00:00:00Z"), "grace keeps access");
    assert!(!at("2027-01-11T00:00:00Z"));
    let mut cut = s.clone();
    cut.refund(t("2026-06-01T00:00:00Z"));
    assert!(!cut.grants_access(Some(grace), &terms, t("2026-06-02T00:00:00Z"), &tz));
    assert!(cut.grants_access(Some(grace), &terms, t("2026-05-31T00:00:00Z"), &tz));
}
