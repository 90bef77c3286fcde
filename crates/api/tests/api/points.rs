//! The points ledger through the API, with the manual clock: each case is a programme's
//! `[points]` section and a script of events, clock moves and redemptions, with the
//! balances expected along the way. After every case `tessera check` must pass.

use crate::helpers::*;
use axum::http::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;
use tessera_testkit::Backend;

#[derive(Clone, Copy)]
enum Step {
    /// An order of one line (sku `A`, quantity 1) paid at `at`.
    Order(&'static str, &'static str, i64),
    /// An order of two lines: `A` ×2 at 3,000 and `B` ×1 at 4,000 (10,000 in all).
    TwoLineOrder(&'static str, &'static str),
    RefundAmount(&'static str, &'static str, i64),
    RefundLines(&'static str, &'static str, &'static str, u32),
    Review(&'static str, &'static str),
    Clock(&'static str),
    Redeem(&'static str, i64, u16),
    Adjust(&'static str, i64, u16),
    /// pending, available, debt
    Expect(i64, i64, i64),
    /// A refund that must be refused with this code.
    RefuseRefund(&'static str, i64, &'static str),
}
use Step::*;

const HEAD: &str = "name = \"t\"\ncurrency = \"USD\"\ntimezone = \"UTC\"\n";

fn programme(points: &str) -> String {
    format!("{HEAD}[points]\nearn_points = 1\nearn_per_minor = 100\n{points}")
}

fn event(id: &str, at: &str, body: Value) -> Value {
    let mut e = json!({"id": id, "member_id": "m", "occurred_at": at});
    for (k, v) in body.as_object().unwrap() {
        e[k] = v.clone();
    }
    e
}

pub async fn balances(app: &TestApp, member: &str) -> (i64, i64, i64) {
    let r = app
        .call("GET", &format!("/v1/members/{member}/points"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let b = &r.body["balances"];
    (
        b["pending"].as_i64().unwrap(),
        b["available"].as_i64().unwrap(),
        b["debt"].as_i64().unwrap(),
    )
}

async fn run(app: &TestApp, what: &str, points: &str, steps: &[Step]) {
    let r = app.put_programme(&app.admin, &programme(points)).await;
    assert_eq!(r.status, StatusCode::OK, "{what}: {}", r.text);
    for (i, step) in steps.iter().enumerate() {
        let at = format!("{what}, step {i}");
        match *step {
            Order(id, when, total) => {
                let e = event(
                    id,
                    when,
                    json!({"type": "order.paid", "order_id": id,
                    "lines": [{"sku": "A", "category": "books", "quantity": 1, "unit_price_minor": total}], "total_minor": total}),
                );
                let r = app.call("POST", "/v1/events", Some(e)).await;
                assert_eq!(r.status, StatusCode::CREATED, "{at}: {}", r.text);
            }
            TwoLineOrder(id, when) => {
                let e = event(
                    id,
                    when,
                    json!({"type": "order.paid", "order_id": id, "lines": [
                    {"sku": "A", "category": "books", "quantity": 2, "unit_price_minor": 3000},
                    {"sku": "B", "category": "music", "quantity": 1, "unit_price_minor": 4000}], "total_minor": 10000}),
                );
                let r = app.call("POST", "/v1/events", Some(e)).await;
                assert_eq!(r.status, StatusCode::CREATED, "{at}: {}", r.text);
            }
            RefundAmount(order, when, amount) => {
                let e = event(
                    &format!("r-{order}-{i}"),
                    when,
                    json!({"type": "order.refunded", "order_id": order, "refund": {"amount_minor": amount}}),
                );
                let r = app.call("POST", "/v1/events", Some(e)).await;
                assert_eq!(r.status, StatusCode::CREATED, "{at}: {}", r.text);
            }
            RefundLines(order, when, sku, quantity) => {
                let e = event(
                    &format!("r-{order}-{i}"),
                    when,
                    json!({"type": "order.refunded", "order_id": order,
                    "refund": {"lines": [{"sku": sku, "quantity": quantity}]}}),
                );
                let r = app.call("POST", "/v1/events", Some(e)).await;
                assert_eq!(r.status, StatusCode::CREATED, "{at}: {}", r.text);
            }
            RefuseRefund(order, amount, code) => {
                let e = event(
                    &format!("r-{order}-{i}"),
                    START,
                    json!({"type": "order.refunded", "order_id": order, "refund": {"amount_minor": amount}}),
                );
                let r = app.call("POST", "/v1/events", Some(e)).await;
                assert_eq!(r.code(), code, "{at}: {}", r.text);
            }
            Review(id, when) => {
                let e = event(id, when, json!({"type": "activity", "activity": "review"}));
                let r = app.call("POST", "/v1/events", Some(e)).await;
                assert_eq!(r.status, StatusCode::CREATED, "{at}: {}", r.text);
            }
            Clock(when) => {
                let r = app
                    .call("POST", "/v1/admin/clock", Some(json!({"now": when})))
                    .await;
                assert_eq!(r.status, StatusCode::OK, "{at}: {}", r.text);
            }
            Redeem(id, points, status) => {
                let r = app
                    .call(
                        "POST",
                        "/v1/members/m/points/redemptions",
                        Some(json!({"id": id, "points": points})),
                    )
                    .await;
                assert_eq!(r.status.as_u16(), status, "{at}: {}", r.text);
            }
            Adjust(id, points, status) => {
                let r = app
                    .call(
                        "POST",
                        "/v1/members/m/points/adjustments",
                        Some(json!({"id": id, "points": points, "reason": "test"})),
                    )
                    .await;
                assert_eq!(r.status.as_u16(), status, "{at}: {}", r.text);
            }
            Expect(pending, available, debt) => {
                assert_eq!(balances(app, "m").await, (pending, available, debt), "{at}");
                app.assert_ledger_balanced().await;
            }
        }
    }
    app.assert_ledger_balanced().await;
}

async fn fresh() -> TestApp {
    let app = TestApp::sqlite().await;
    app.add_member("m").await;
    app
}

const T0: &str = START;

#[tokio::test]
async fn every_expiry_policy() {
    let cases: &[(&str, &str, &[Step])] = &[
        ("never", "return_window_days = 7\nexpiry = { policy = \"never\" }\n", &[
            Order("o1", T0, 10_000), Expect(100, 0, 0),
            Clock("2026-11-29T23:59:59Z"), Expect(100, 0, 0),
            Clock("2026-11-30T00:00:00Z"), Expect(0, 100, 0),
            Clock("2036-01-01T00:00:00Z"), Expect(0, 100, 0),
        ]),
        ("rolling days", "return_window_days = 7\nexpiry = { policy = \"rolling\", days = 30 }\n", &[
            Order("o1", T0, 10_000),
            Clock("2026-11-30T00:00:00Z"), Expect(0, 100, 0),
            Clock("2026-12-22T23:59:59Z"), Expect(0, 100, 0),
            Clock("2026-12-23T00:00:00Z"), Expect(0, 0, 0),
        ]),
        // A rolling lot drawn in part before it expires: only what is left expires, and a
        // later lot is drawn after the one that expires first.
        ("rolling months, partly drawn", "expiry = { policy = \"rolling\", months = 1 }\n", &[
            Order("o1", T0, 10_000), Expect(0, 100, 0),
            Order("o2", "2026-12-10T00:00:00Z", 5_000),
            Clock("2026-12-10T00:00:00Z"), Expect(0, 150, 0),
            Redeem("spend-30", 130, 201), Expect(0, 20, 0),
            Clock("2026-12-23T01:00:00Z"), Expect(0, 20, 0),
            Clock("2027-01-10T00:00:00Z"), Expect(0, 0, 0),
        ]),
        ("end of year", "expiry = { policy = \"end_of_year\", years_after = 0 }\n", &[
            Order("o1", T0, 10_000), Expect(0, 100, 0),
            Clock("2026-12-31T23:59:59Z"), Expect(0, 100, 0),
            Clock("2027-01-01T00:00:00Z"), Expect(0, 0, 0),
        ]),
        ("end of next year", "expiry = { policy = \"end_of_year\", years_after = 1 }\n", &[
            Order("o1", T0, 10_000),
            Clock("2027-12-31T23:59:59Z"), Expect(0, 100, 0),
            Clock("2028-01-01T00:00:00Z"), Expect(0, 0, 0),
        ]),
        // Sephora: every point expires after 18 months without activity; a redemption counts.
        ("inactivity", "expiry = { policy = \"inactivity\", months = 18 }\n", &[
            Order("o1", T0, 10_000), Expect(0, 100, 0),
            Clock("2027-12-01T00:00:00Z"),
            Redeem("keep-alive", 10, 201), Expect(0, 90, 0),
            Clock("2029-05-31T23:59:59Z"), Expect(0, 90, 0),
            Clock("2029-06-01T00:00:00Z"), Expect(0, 0, 0),
        ]),
        // Starbucks: a tier's stars never expire (an override by condition over the member).
        ("override for some members", "expiry = { policy = \"rolling\", days = 10 }\n[[points.expiry_overrides]]\nname = \"gold\"\ncondition = \"has(member.attributes.gold) && member.attributes.gold\"\nexpiry = { policy = \"never\" }\n", &[
            Order("o1", T0, 10_000),
            Clock("2026-12-10T00:00:00Z"), Expect(0, 0, 0),
        ]),
        // An event that arrives late is treated as if it had come on time.
        ("late events", "return_window_days = 7\nexpiry = { policy = \"rolling\", days = 30 }\n", &[
            Order("late", "2026-11-10T00:00:00Z", 10_000), Expect(0, 100, 0),
            Order("too-late", "2026-10-01T00:00:00Z", 5_000), Expect(0, 100, 0),
            Order("recent", "2026-11-20T00:00:00Z", 2_000), Expect(20, 100, 0),
        ]),
    ];
    for (what, points, steps) in cases {
        let app = fresh().await;
        run(&app, what, points, steps).await;
    }
    // The override keeps a gold member's points.
    let app = TestApp::sqlite().await;
    let r = app
        .call(
            "POST",
            "/v1/members",
            Some(json!({"member_id": "m", "attributes": {"gold": true}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    run(&app, "gold member", "expiry = { policy = \"rolling\", days = 10 }\n[[points.expiry_overrides]]\nname = \"gold\"\ncondition = \"has(member.attributes.gold) && member.attributes.gold\"\nexpiry = { policy = \"never\" }\n", &[
        Order("o1", T0, 10_000),
        Clock("2030-01-01T00:00:00Z"), Expect(0, 100, 0),
    ]).await;
}

#[tokio::test]
async fn every_refund_policy() {
    // o1 earns 100 and o2 50, both available; 120 are spent (o1's lot first, it is older),
    // then half of o1 is refunded: 50 points to take back, none left on o1's lot.
    let spent = |policy: &'static str| format!("refund_policy = \"{policy}\"\n");
    let setup = [
        Order("o1", T0, 10_000),
        Order("o2", T0, 5_000),
        Expect(0, 150, 0),
        Redeem("s", 120, 201),
        Expect(0, 30, 0),
    ];
    let cases: Vec<(&str, String, Vec<Step>)> = vec![
        (
            "only_pending, spent",
            spent("only_pending"),
            [
                &setup[..],
                &[RefundAmount("o1", T0, 5_000), Expect(0, 30, 0)],
            ]
            .concat(),
        ),
        (
            "within_balance, spent",
            spent("within_balance"),
            [
                &setup[..],
                &[RefundAmount("o1", T0, 5_000), Expect(0, 0, 0)],
            ]
            .concat(),
        ),
        (
            "allow_negative, spent",
            spent("allow_negative"),
            [
                &setup[..],
                &[
                    RefundAmount("o1", T0, 5_000),
                    Expect(0, 0, 20),
                    // The debt is repaid by the next earnings.
                    Order("o3", T0, 5_000),
                    Expect(0, 30, 0),
                ],
            ]
            .concat(),
        ),
        // Points still pending are taken back from the order's own lot under every policy.
        (
            "only_pending, pending",
            format!("return_window_days = 7\n{}", spent("only_pending")),
            vec![
                Order("o1", T0, 10_000),
                Expect(100, 0, 0),
                RefundAmount("o1", T0, 2_500),
                Expect(75, 0, 0),
                Clock("2026-11-30T01:00:00Z"),
                Expect(0, 75, 0),
                // Once available, only_pending takes nothing back.
                RefundAmount("o1", T0, 2_500),
                Expect(0, 75, 0),
            ],
        ),
        // Partial refunds by lines, pro rata to what each line was paid; in full, exact.
        (
            "by lines",
            spent("within_balance"),
            vec![
                TwoLineOrder("o1", T0),
                Expect(0, 100, 0),
                RefundLines("o1", T0, "A", 1),
                Expect(0, 70, 0),
                RefundLines("o1", T0, "B", 1),
                Expect(0, 30, 0),
                RefundLines("o1", T0, "A", 1),
                Expect(0, 0, 0),
                RefuseRefund("o1", 1, "refund_exceeds_order"),
            ],
        ),
        // A refund that comes before its order is applied when the order arrives.
        (
            "refund first",
            spent("within_balance"),
            vec![
                RefundAmount("early", T0, 4_000),
                Expect(0, 0, 0),
                Order("early", T0, 10_000),
                Expect(0, 60, 0),
            ],
        ),
        (
            "refund larger than the order",
            spent("within_balance"),
            vec![
                Order("o1", T0, 10_000),
                RefuseRefund("o1", 10_001, "refund_exceeds_order"),
                Expect(0, 100, 0),
            ],
        ),
    ];
    for (what, points, steps) in cases {
        let app = fresh().await;
        run(&app, what, &points, &steps).await;
    }
}

#[tokio::test]
async fn earning_rules_multipliers_bonuses_caps_and_rounding() {
    let cases: &[(&str, &str, &[Step])] = &[
        // 2026-11-25 is a Wednesday: double points.
        ("member day", "[[points.multipliers]]\nname = \"wed\"\npercent = 200\nweekdays = [\"wednesday\"]\n", &[
            Clock("2026-11-26T00:00:00Z"),
            Order("o1", "2026-11-25T10:00:00Z", 1_000), Expect(0, 20, 0),
            Order("o2", "2026-11-24T10:00:00Z", 1_000), Expect(0, 30, 0),
        ]),
        ("category multiplier, two lines", "[[points.multipliers]]\nname = \"music\"\npercent = 300\ncategories = [\"music\"]\n", &[
            // A: 6,000 at ×1 = 60; B: 4,000 at ×3 = 120.
            TwoLineOrder("o1", T0), Expect(0, 180, 0),
        ]),
        ("stacking highest", "stacking = \"highest\"\n[[points.multipliers]]\nname = \"a\"\npercent = 200\n[[points.multipliers]]\nname = \"b\"\npercent = 150\n", &[
            Order("o1", T0, 1_000), Expect(0, 20, 0),
        ]),
        ("stacking add", "[[points.multipliers]]\nname = \"a\"\npercent = 200\n[[points.multipliers]]\nname = \"b\"\npercent = 150\n", &[
            Order("o1", T0, 1_000), Expect(0, 25, 0),
        ]),
        ("rounding half_up", "rounding = \"half_up\"\n", &[Order("o1", T0, 1_050), Expect(0, 11, 0)]),
        ("rounding floor", "", &[Order("o1", T0, 1_099), Expect(0, 10, 0)]),
        ("bonuses", "[[points.bonuses]]\nname = \"first\"\non = \"first_order\"\npoints = 50\n[[points.bonuses]]\nname = \"review\"\non = \"review\"\npoints = 5\n", &[
            Order("o1", T0, 1_000), Expect(0, 60, 0),
            Order("o2", T0, 1_000), Expect(0, 70, 0),
            Review("rev1", T0), Expect(0, 75, 0),
        ]),
        // Caps cut the earnings exactly at the cap: per order, per day, per month.
        ("caps", "cap_per_order = 50\ncap_per_day = 80\ncap_per_month = 150\n", &[
            Clock("2026-12-02T00:00:00Z"),
            Order("o1", T0, 10_000), Expect(0, 50, 0),
            Order("o2", T0, 10_000), Expect(0, 80, 0),
            Order("o3", T0, 10_000), Expect(0, 80, 0),
            Order("o4", "2026-11-24T01:00:00Z", 10_000), Expect(0, 130, 0),
            Order("o5", "2026-11-25T01:00:00Z", 10_000), Expect(0, 150, 0),
            Order("o6", "2026-12-01T01:00:00Z", 3_000), Expect(0, 180, 0),
        ]),
        ("adjustments", "", &[
            Adjust("a1", 40, 201), Expect(0, 40, 0),
            Adjust("a2", -15, 201), Expect(0, 25, 0),
            Adjust("a3", -26, 409), Expect(0, 25, 0),
        ]),
    ];
    for (what, points, steps) in cases {
        let app = fresh().await;
        run(&app, what, points, steps).await;
    }
}

#[tokio::test]
async fn redemptions_rewards_replays_and_refusals() {
    let app = fresh().await;
    let points = "[points.redemption]\npoints = 100\nvalue_minor = 100\nminimum_points = 20\n[[points.rewards]]\nid = \"mug\"\nname = \"Mug\"\npoints = 30\nstock = 1\n";
    run(
        &app,
        "setup",
        points,
        &[Order("o1", T0, 10_000), Expect(0, 100, 0)],
    )
    .await;
    let redeem = |body: Value| app.call("POST", "/v1/members/m/points/redemptions", Some(body));
    let r = redeem(json!({"id": "r1", "points": 50, "reason": "checkout SO-9"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["value_minor"], 50);
    assert_eq!(r.body["lots"], json!([{"lot": 1, "points": 50}]));
    assert_eq!(r.body["balances"]["available"], 50);
    // The same id and body replays the first answer; another body is a conflict.
    let again = redeem(json!({"id": "r1", "points": 50, "reason": "checkout SO-9"})).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body, r.body);
    let other = redeem(json!({"id": "r1", "points": 51})).await;
    assert_eq!(other.code(), "operation_conflict");
    // Refusals change nothing.
    let cases = [
        (
            json!({"id": "r2", "points": 10}),
            "redemption_below_minimum",
        ),
        (json!({"id": "r3", "points": 51}), "insufficient_points"),
        (json!({"id": "r4", "reward": "kettle"}), "unknown_reward"),
        (json!({"id": "r5"}), "invalid_field"),
        (
            json!({"id": "r6", "points": 20, "reward": "mug"}),
            "invalid_field",
        ),
        (json!({"id": "r7", "points": 0}), "invalid_field"),
        (json!({"id": "", "points": 20}), "invalid_field"),
        (
            json!({"id": "r8", "points": 20, "reason": ""}),
            "invalid_field",
        ),
    ];
    for (body, code) in cases {
        let r = redeem(body.clone()).await;
        assert_eq!(r.code(), code, "{body}: {}", r.text);
    }
    assert_eq!(balances(&app, "m").await, (0, 50, 0));
    // An instant finer than the microseconds stored: the replay must still be identical.
    let r = app
        .call(
            "POST",
            "/v1/admin/clock",
            Some(json!({"now": "2026-11-23T00:00:01.123456789Z"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let mug = redeem(json!({"id": "m1", "reward": "mug"})).await;
    assert_eq!(mug.status, StatusCode::CREATED, "{}", mug.text);
    assert_eq!(mug.body["reward"], "mug");
    assert_eq!(mug.body["reason"], Value::Null);
    assert_eq!(
        redeem(json!({"id": "m1", "reward": "mug"})).await.body,
        mug.body
    );
    let out = redeem(json!({"id": "m2", "reward": "mug"})).await;
    assert_eq!(out.code(), "reward_out_of_stock");
    assert_eq!(balances(&app, "m").await, (0, 20, 0));
    // Storefronts may redeem; only admins adjust.
    let r = app
        .call_as(
            &app.storefront,
            "POST",
            "/v1/members/m/points/adjustments",
            Some(json!({"id": "a", "points": 5, "reason": "x"})),
        )
        .await;
    assert_eq!(r.code(), "forbidden");
    let r = app
        .call(
            "POST",
            "/v1/members/m/points/adjustments",
            Some(json!({"id": "a", "points": 5})),
        )
        .await;
    assert_eq!(r.code(), "invalid_request");
    // Frozen and closed members cannot spend.
    app.call("PATCH", "/v1/members/m", Some(json!({"status": "frozen"})))
        .await;
    assert_eq!(
        redeem(json!({"id": "f", "points": 20})).await.code(),
        "member_frozen"
    );
    app.call("POST", "/v1/members/m/close", None).await;
    assert_eq!(
        redeem(json!({"id": "c", "points": 20})).await.code(),
        "member_closed"
    );
    // Closing keeps the ledger, and forfeits what was left in one more entry.
    let ledger = app.call("GET", "/v1/members/m/ledger", None).await;
    let items = ledger.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 4, "{}", ledger.text);
    assert!(
        items.iter().any(|e| e["kind"] == "forfeit"),
        "{}",
        ledger.text
    );
    let points = app.call("GET", "/v1/members/m/points", None).await;
    assert_eq!(points.body["balances"]["available"], 0, "{}", points.text);
    app.assert_ledger_balanced().await;
}

#[tokio::test]
async fn the_journal_is_double_entry_and_paginated() {
    let app = fresh().await;
    run(
        &app,
        "journal",
        "return_window_days = 7\n",
        &[
            Order("o1", T0, 10_000),
            Order("o2", T0, 20_000),
            Clock("2026-12-01T00:00:00Z"),
            Redeem("r", 150, 201),
            RefundAmount("o2", T0, 20_000),
        ],
    )
    .await;
    let mut kinds = Vec::new();
    let mut cursor = String::new();
    loop {
        let r = app
            .call(
                "GET",
                &format!("/v1/members/m/ledger?limit=2{cursor}"),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        for e in r.body["items"].as_array().unwrap() {
            let sum: i64 = e["postings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["points"].as_i64().unwrap())
                .sum();
            assert_eq!(sum, 0, "{e}");
            kinds.push(e["kind"].as_str().unwrap().to_owned());
        }
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(
        kinds,
        ["earn", "earn", "release", "release", "redeem", "reverse"]
    );
    let points = app
        .call(
            "GET",
            "/v1/members/m/points?include=all&expiring_within_days=0",
            None,
        )
        .await;
    assert_eq!(
        points.body["lots"].as_array().unwrap().len(),
        2,
        "{}",
        points.text
    );
    let bad = app
        .call("GET", "/v1/members/m/points?expiring_within_days=-1", None)
        .await;
    assert_eq!(bad.code(), "invalid_query");
    let bad = app
        .call("GET", "/v1/members/m/ledger?cursor=zzz", None)
        .await;
    assert_eq!(bad.code(), "invalid_cursor");
}

#[tokio::test]
async fn time_driven_work_runs_once() {
    let app = fresh().await;
    run(
        &app,
        "once",
        "return_window_days = 1\nexpiry = { policy = \"rolling\", days = 2 }\n",
        &[
            Order("o1", T0, 10_000),
            Clock("2026-11-24T01:00:00Z"),
            Expect(0, 100, 0),
        ],
    )
    .await;
    let entries = app
        .store
        .count(tessera_store::Table::PointEntries)
        .await
        .unwrap();
    // The same instant again, and the job run directly twice: nothing more happens.
    let r = app
        .call(
            "POST",
            "/v1/admin/clock",
            Some(json!({"now": "2026-11-24T01:00:00Z"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    for _ in 0..2 {
        let done = app
            .engine
            .run_due_work("2026-11-24T01:00:00Z".parse().unwrap())
            .await
            .unwrap();
        assert_eq!(done, tessera_engine::DueWork::default());
    }
    assert_eq!(
        app.store
            .count(tessera_store::Table::PointEntries)
            .await
            .unwrap(),
        entries
    );
    let done = app
        .engine
        .run_due_work("2026-11-25T01:00:00Z".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(done.lots_expired, 1);
    assert_eq!(balances(&app, "m").await, (0, 0, 0));
}

/// 64 redemptions of 10 points race for a balance of 100: exactly 10 win.
async fn concurrent_redemptions_never_overdraw(backend: Backend) {
    let Some(app) = TestApp::on(backend).await else {
        return;
    };
    app.add_member("m").await;
    run(
        &app,
        "race",
        "",
        &[Order("o1", T0, 10_000), Expect(0, 100, 0)],
    )
    .await;
    let app = Arc::new(app);
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move {
                app.call_as(
                    &app.storefront,
                    "POST",
                    "/v1/members/m/points/redemptions",
                    Some(json!({"id": format!("r{i}"), "points": 10})),
                )
                .await
            })
        })
        .collect();
    let mut replies = Vec::new();
    for t in tasks {
        replies.push(t.await.unwrap());
    }
    let won = replies
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    let short = replies
        .iter()
        .filter(|r| r.code() == "insufficient_points")
        .count();
    assert_eq!(
        (won, short),
        (10, 54),
        "{:?}",
        replies.iter().map(|r| &r.text).collect::<Vec<_>>()
    );
    assert_eq!(balances(&app, "m").await, (0, 0, 0));
    app.assert_ledger_balanced().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_redemptions_sqlite() {
    concurrent_redemptions_never_overdraw(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_redemptions_postgres() {
    concurrent_redemptions_never_overdraw(Backend::Postgres).await;
}

/// Concurrent batches of orders and refunds for the same members keep every invariant,
/// and never deadlock on PostgreSQL (members are locked in one order).
async fn concurrent_batches_keep_the_ledger_balanced(backend: Backend) {
    let Some(app) = TestApp::on(backend).await else {
        return;
    };
    for m in ["a", "b", "c"] {
        app.add_member(m).await;
    }
    let app = Arc::new(app);
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let app = app.clone();
            tokio::spawn(async move {
                let members = if t % 2 == 0 { ["a", "b", "c"] } else { ["c", "b", "a"] };
                let events: Vec<Value> = (0..30)
                    .map(|i| {
                        let m = members[i % 3];
                        json!({"id": format!("e{t}-{i}"), "type": "order.paid", "member_id": m, "occurred_at": START,
                            "order_id": format!("o{t}-{i}"), "lines": [{"sku": "A", "category": "books", "quantity": 1, "unit_price_minor": 1000}],
                            "total_minor": 1000})
                    })
                    .collect();
                app.call("POST", "/v1/events/batch", Some(json!({"events": events}))).await
            })
        })
        .collect();
    for t in tasks {
        let r = t.await.unwrap();
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["accepted"], 30, "{}", r.text);
    }
    app.assert_ledger_balanced().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_batches_sqlite() {
    concurrent_batches_keep_the_ledger_balanced(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_batches_postgres() {
    concurrent_batches_keep_the_ledger_balanced(Backend::Postgres).await;
}

#[tokio::test]
async fn members_with_points_expiring_soon_are_listed() {
    let app = fresh().await;
    app.add_member("n").await;
    app.add_member("q").await;
    run(
        &app,
        "m's order",
        "expiry = { policy = \"rolling\", days = 20 }\n",
        &[Order("o1", T0, 10_000)],
    )
    .await;
    let order = json!({"id": "e-n", "type": "order.paid", "member_id": "n", "occurred_at": "2026-11-20T00:00:00Z", "order_id": "o-n",
        "lines": [{"sku": "A", "category": "books", "quantity": 1, "unit_price_minor": 5_000}], "total_minor": 5_000});
    assert_eq!(
        app.call("POST", "/v1/events", Some(order)).await.status,
        StatusCode::CREATED
    );
    let r = app
        .call("GET", "/v1/points/expiring?within_days=18", None)
        .await;
    assert_eq!(
        r.body["items"],
        json!([{"member_id": "n", "points": 50, "first_expiry": "2026-12-10T00:00:00Z"}]),
        "{}",
        r.text
    );
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let r = app
            .call_as(
                &app.storefront,
                "GET",
                &format!("/v1/points/expiring?within_days=30&limit=1{cursor}"),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        for item in r.body["items"].as_array().unwrap() {
            seen.push((
                item["member_id"].as_str().unwrap().to_owned(),
                item["points"].as_i64().unwrap(),
            ));
        }
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, [("m".to_owned(), 100), ("n".to_owned(), 50)]);
    assert_eq!(
        app.call("GET", "/v1/points/expiring?within_days=x", None)
            .await
            .code(),
        "invalid_query"
    );
    assert_eq!(
        app.call("GET", "/v1/points/expiring?days=3", None)
            .await
            .code(),
        "invalid_query"
    );
    assert_eq!(
        app.call_as(&app.partner, "GET", "/v1/points/expiring", None)
            .await
            .code(),
        "forbidden"
    );
}

/// A server that stopped after its clock moved, but before the work that became due ran,
/// does that work once when it starts again (`serve` runs `tick` at start).
#[tokio::test]
async fn work_cut_short_by_a_stop_runs_once_at_the_next_start() {
    let app = fresh().await;
    run(
        &app,
        "before the stop",
        "return_window_days = 1\n",
        &[
            Order("o1", T0, 10_000),
            Order("o2", T0, 5_000),
            Expect(150, 0, 0),
        ],
    )
    .await;
    let later: jiff::Timestamp = "2026-11-25T00:00:00Z".parse().unwrap();
    let restarted = tessera_engine::Engine::start(
        app.store.clone(),
        Arc::new(tessera_engine::ManualClock::new(later)),
        None,
    )
    .await
    .unwrap();
    let first = restarted.tick().await.unwrap();
    assert_eq!(first.lots_released, 2);
    assert_eq!(
        restarted.tick().await.unwrap(),
        tessera_engine::DueWork::default()
    );
    assert_eq!(balances(&app, "m").await, (0, 150, 0));
    app.assert_ledger_balanced().await;
}

/// A credit that first repays a debt answers with what the journal records, and its
/// replay answers the same.
#[tokio::test]
async fn a_credit_that_repays_a_debt_replays_identically() {
    let app = fresh().await;
    run(
        &app,
        "debt",
        "refund_policy = \"allow_negative\"\n",
        &[
            Order("o1", T0, 10_000),
            Redeem("r", 100, 201),
            RefundAmount("o1", T0, 10_000),
            Expect(0, 0, 100),
        ],
    )
    .await;
    let credit = json!({"id": "c1", "points": 150, "reason": "goodwill"});
    let first = app
        .call(
            "POST",
            "/v1/members/m/points/adjustments",
            Some(credit.clone()),
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    assert_eq!(first.body["points"], 150);
    assert_eq!(
        first.body["lots"],
        json!([{"lot": 2, "points": 50}]),
        "100 went to the debt"
    );
    assert_eq!(
        first.body["balances"],
        json!({"pending": 0, "available": 50, "debt": 0})
    );
    let again = app
        .call("POST", "/v1/members/m/points/adjustments", Some(credit))
        .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body, first.body);
    app.assert_ledger_balanced().await;
}

/// A declared activity earns only for the members of its segment who meet its condition;
/// the others' events are kept and earn nothing.
#[tokio::test]
async fn a_declared_activity_earns_only_for_its_members() {
    let app = TestApp::sqlite().await;
    let programme = "name = \"t\"\ncurrency = \"CNY\"\ntimezone = \"UTC\"\n\
        [[segments]]\nname = \"vips\"\ncondition = \"has(member.attributes.vip) && member.attributes.vip == true\"\n\
        [[activities]]\nname = \"quiz\"\nsegment = \"vips\"\ncondition = \"member.status == 'active'\"\n\
        [points]\nearn_points = 1\nearn_per_minor = 100\n\
        [[points.bonuses]]\nname = \"quiz\"\non = \"quiz\"\npoints = 30\n";
    let r = app.put_programme(&app.admin, programme).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    for (id, vip) in [("v", true), ("n", false)] {
        let r = app
            .call(
                "POST",
                "/v1/members",
                Some(json!({"member_id": id, "attributes": {"vip": vip}})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        let quiz = json!({"id": format!("q-{id}"), "type": "activity", "member_id": id,
            "occurred_at": "2026-11-22T10:00:00Z", "activity": "quiz"});
        let r = app.call("POST", "/v1/events", Some(quiz)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let balance = |id: &'static str| {
        let app = &app;
        async move {
            let r = app
                .call("GET", &format!("/v1/members/{id}/points"), None)
                .await;
            r.body["balances"]["available"].as_i64().unwrap()
        }
    };
    assert_eq!(balance("v").await, 30, "a member of the segment earns");
    assert_eq!(balance("n").await, 0, "a member outside it earns nothing");
}
