//! Property test of the points ledger: random sequences of orders, partial refunds,
//! redemptions, adjustments, activities and clock moves. After every step every invariant
//! of `tessera check` holds; replaying the same steps into an empty database gives the
//! same ledger, entry for entry.

use crate::helpers::*;
use proptest::prelude::*;
use serde_json::{json, Value};

#[derive(Debug, Clone)]
enum Op {
    Order {
        member: usize,
        lines: Vec<(u8, u32, i64)>,
        hours_ago: i64,
    },
    RefundAmount {
        order: usize,
        percent: i64,
    },
    RefundLine {
        order: usize,
        line: usize,
    },
    Redeem {
        member: usize,
        points: i64,
    },
    Adjust {
        member: usize,
        points: i64,
    },
    Review {
        member: usize,
    },
    Advance {
        hours: i64,
    },
}

const MEMBERS: [&str; 3] = ["p0", "p1", "p2"];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize, prop::collection::vec((0..3u8, 1..4u32, prop_oneof![Just(0i64), 1..20_000i64, Just(99)]), 1..4), prop_oneof![Just(0i64), 0..500i64])
            .prop_map(|(member, lines, hours_ago)| Op::Order { member, lines, hours_ago }),
        2 => (0..40usize, 1..=100i64).prop_map(|(order, percent)| Op::RefundAmount { order, percent }),
        1 => (0..40usize, 0..3usize).prop_map(|(order, line)| Op::RefundLine { order, line }),
        2 => (0..3usize, prop_oneof![1..300i64, Just(1)]).prop_map(|(member, points)| Op::Redeem { member, points }),
        1 => (0..3usize, -200..400i64).prop_map(|(member, points)| Op::Adjust { member, points: if points == 0 { 1 } else { points } }),
        1 => (0..3usize).prop_map(|member| Op::Review { member }),
        2 => prop_oneof![1..48i64, 100..3000i64].prop_map(|hours| Op::Advance { hours }),
    ]
}

fn programme(policy: &str, expiry: &str) -> String {
    format!(
        "name = \"p\"\ncurrency = \"CNY\"\ntimezone = \"Asia/Shanghai\"\n\
         [points]\nearn_points = 3\nearn_per_minor = 200\nreturn_window_days = 3\n\
         refund_policy = \"{policy}\"\nexpiry = {expiry}\ncap_per_day = 900\n\
         [[points.multipliers]]\nname = \"music\"\npercent = 150\ncategories = [\"c1\"]\n\
         [[points.bonuses]]\nname = \"first\"\non = \"first_order\"\npoints = 20\n\
         [[points.bonuses]]\nname = \"review\"\non = \"review\"\npoints = 7\n\
         [score]\nwindow = {{ kind = \"rolling_months\", months = 2 }}\ncap_per_day = 400\n\
         [[score.rules]]\nname = \"spend\"\non = \"order\"\nscore = 1\nper_minor = 100\n\
         [[score.rules]]\nname = \"review\"\non = \"review\"\nscore = 15\n\
         [[tiers]]\nname = \"basic\"\nthreshold = 0\n\
         [[tiers]]\nname = \"plus\"\nthreshold = 300\n\
         [[tiers]]\nname = \"top\"\nthreshold = 900\n\
         [tier_rules]\nevaluation = {{ schedule = \"monthly\", day = 1 }}\n\
         retention = {{ kind = \"months\", months = 1 }}\nmode = \"one_step_down\"\nwarning_days = 5\n"
    )
}

/// Applies the steps; after each, checks the ledger. Returns the final ledger as JSON.
async fn apply(ops: &[Op], policy: &str, expiry: &str) -> Value {
    let app = TestApp::sqlite().await;
    let r = app
        .put_programme(&app.admin, &programme(policy, expiry))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    for m in MEMBERS {
        app.add_member(m).await;
    }
    let mut now: jiff::Timestamp = START.parse().unwrap();
    let mut orders: Vec<(usize, Vec<String>)> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        if matches!(op, Op::RefundAmount { .. } | Op::RefundLine { .. }) && orders.is_empty() {
            continue;
        }
        let reply = match op {
            Op::Order { member, lines, hours_ago } => {
                let at = now.checked_sub(jiff::Span::new().hours(*hours_ago)).unwrap();
                let lines: Vec<Value> = lines
                    .iter()
                    .enumerate()
                    .map(|(j, (cat, qty, price))| json!({"sku": format!("s{j}"), "category": format!("c{cat}"), "quantity": qty, "unit_price_minor": price}))
                    .collect();
                let total: i64 = lines.iter().map(|l| l["quantity"].as_i64().unwrap() * l["unit_price_minor"].as_i64().unwrap()).sum();
                orders.push((*member, (0..lines.len()).map(|j| format!("s{j}")).collect()));
                app.call("POST", "/v1/events", Some(json!({"id": format!("e{i}"), "type": "order.paid", "member_id": MEMBERS[*member],
                    "occurred_at": at.to_string(), "order_id": format!("o{}", orders.len() - 1), "lines": lines,
                    "shipping_minor": 500, "total_minor": total + 500}))).await
            }
            Op::RefundAmount { order, percent } => {
                let o = order % orders.len();
                app.call("POST", "/v1/events", Some(json!({"id": format!("e{i}"), "type": "order.refunded", "member_id": MEMBERS[orders[o].0],
                    "occurred_at": now.to_string(), "order_id": format!("o{o}"), "refund": {"amount_minor": 1 + percent * 50}}))).await
            }
            Op::RefundLine { order, line } => {
                let o = order % orders.len();
                let sku = &orders[o].1[line % orders[o].1.len()];
                app.call("POST", "/v1/events", Some(json!({"id": format!("e{i}"), "type": "order.refunded", "member_id": MEMBERS[orders[o].0],
                    "occurred_at": now.to_string(), "order_id": format!("o{o}"), "refund": {"lines": [{"sku": sku, "quantity": 1}]}}))).await
            }
            Op::Redeem { member, points } => {
                app.call("POST", &format!("/v1/members/{}/points/redemptions", MEMBERS[*member]), Some(json!({"id": format!("r{i}"), "points": points}))).await
            }
            Op::Adjust { member, points } => {
                app.call("POST", &format!("/v1/members/{}/points/adjustments", MEMBERS[*member]), Some(json!({"id": format!("a{i}"), "points": points, "reason": "prop"}))).await
            }
            Op::Review { member } => {
                app.call("POST", "/v1/events", Some(json!({"id": format!("e{i}"), "type": "activity", "member_id": MEMBERS[*member],
                    "occurred_at": now.to_string(), "activity": "review"}))).await
            }
            Op::Advance { hours } => {
                now = now.checked_add(jiff::Span::new().hours(*hours)).unwrap();
                app.call("POST", "/v1/admin/clock", Some(json!({"now": now.to_string()}))).await
            }
        };
        // Refusals are fine (a refund beyond the order, points short); a 5xx never is.
        assert!(
            reply.status.as_u16() < 500,
            "step {i} {op:?}: {}",
            reply.text
        );
        if reply.status.as_u16() >= 400 {
            let allowed = ["refund_exceeds_order", "insufficient_points"];
            assert!(
                allowed.contains(&reply.code()),
                "step {i} {op:?}: {}",
                reply.text
            );
        }
        let report = app.engine.check_ledger(|_, _| {}).await.unwrap();
        assert!(
            report.is_balanced(),
            "after step {i} {op:?}: {:?}",
            report.violations
        );
    }
    let mut dump = Vec::new();
    for m in MEMBERS {
        let ledger = app
            .call("GET", &format!("/v1/members/{m}/ledger?limit=200"), None)
            .await
            .body;
        let points = app
            .call("GET", &format!("/v1/members/{m}/points?include=all"), None)
            .await
            .body;
        let tier = app
            .call("GET", &format!("/v1/members/{m}/tier"), None)
            .await;
        assert_eq!(tier.status, 200, "{}", tier.text);
        // Balances never go negative; debt only under allow_negative.
        let b = &points["balances"];
        assert!(b["pending"].as_i64().unwrap() >= 0 && b["available"].as_i64().unwrap() >= 0);
        if policy != "allow_negative" {
            assert_eq!(b["debt"], 0);
        }
        dump.push(json!({"member_id": m, "ledger": ledger, "points": points, "tier": tier.body}));
    }
    Value::Array(dump)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn the_ledger_balances_after_every_step_and_replays_identically(
        ops in prop::collection::vec(op(), 1..40),
        policy in prop_oneof![Just("only_pending"), Just("within_balance"), Just("allow_negative")],
        expiry in prop_oneof![
            Just("{ policy = \"rolling\", days = 20 }"),
            Just("{ policy = \"never\" }"),
            Just("{ policy = \"end_of_year\", years_after = 0 }"),
            Just("{ policy = \"inactivity\", months = 2 }"),
        ],
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let first = runtime.block_on(apply(&ops, policy, expiry));
        let second = runtime.block_on(apply(&ops, policy, expiry));
        prop_assert_eq!(first, second);
    }
}
