//! Order commits on the demo programme: a commit spends what its quote used and earns like
//! any paid order; replays and conflicts; and 64 commits at once competing for one coupon,
//! the last free-shipping use and the last points, on both databases.

use crate::helpers::*;
use crate::points::balances;
use axum::http::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;
use tessera_testkit::Backend;

pub(crate) async fn plus_member(app: &TestApp, member: &str, points: i64) {
    app.add_member(member).await;
    let r = app
        .call(
            "POST",
            "/v1/admin/code-pools/iqiyi_vip",
            Some(json!({"codes": [format!("IQ-{member}")]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app
        .call(
            "POST",
            "/v1/subscriptions",
            Some(json!({"member_id": member, "plan": "plus", "payment_ref": format!("pay-{member}")})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    if points > 0 {
        let r = app
            .call(
                "POST",
                &format!("/v1/members/{member}/points/adjustments"),
                Some(json!({"id": format!("adj-{member}"), "points": points, "reason": "test"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
}

pub(crate) async fn coupon(app: &TestApp, member: &str, template: &str) -> i64 {
    let r = app
        .call(
            "POST",
            &format!("/v1/members/{member}/coupons"),
            Some(json!({"id": format!("{member}-{template}"), "template": template})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.body["items"][0]["coupon"].as_i64().unwrap()
}

pub(crate) fn order(
    id: &str,
    member: &str,
    coupons: &[i64],
    points: i64,
    shipping: i64,
    expected: Option<i64>,
) -> Value {
    priced(id, member, 20000, coupons, points, shipping, expected)
}

pub(crate) fn priced(
    id: &str,
    member: &str,
    unit: i64,
    coupons: &[i64],
    points: i64,
    shipping: i64,
    expected: Option<i64>,
) -> Value {
    json!({
        "order_id": id, "member_id": member,
        "lines": [{"sku": "BOOK", "category": "books", "quantity": 1, "unit_price_minor": unit}],
        "shipping_minor": shipping, "coupons": coupons, "points": points,
        "expected_total_minor": expected,
    })
}

/// What the member view says is left of PLUS's free shipping this month.
async fn shipping_left(app: &TestApp) -> Option<i64> {
    let m = app.call("GET", "/v1/members/m", None).await;
    let benefits = m.body["benefits"].as_array().unwrap();
    let kinds: Vec<&str> = benefits
        .iter()
        .map(|b| b["kind"].as_str().unwrap())
        .collect();
    for kind in [
        "member_price",
        "free_shipping",
        "coupon_grant",
        "priority_service",
        "feature",
        "members_only",
    ] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    benefits
        .iter()
        .find(|b| b["benefit"] == "plus_free_shipping")
        .and_then(|b| b["left_this_month"].as_i64())
}

#[tokio::test]
async fn a_commit_spends_what_its_quote_used_and_earns_like_an_order() {
    let app = TestApp::sqlite().await;
    plus_member(&app, "m", 1000).await;
    let c = coupon(&app, "m", "ten_off_99").await;
    let body = order("o-1", "m", &[c], 500, 800, None);
    let mut quote_body = body.clone();
    quote_body
        .as_object_mut()
        .unwrap()
        .retain(|k, _| !["order_id", "expected_total_minor"].contains(&k.as_str()));
    let q = app.call("POST", "/v1/quotes", Some(quote_body)).await;
    assert_eq!(q.status, StatusCode::OK, "{}", q.text);
    // 200.00 − 10.00 coupon, free shipping (PLUS), 500 points = 5.00.
    assert_eq!(q.body["total_minor"], 18500, "{}", q.text);

    let mut body = body;
    body["expected_total_minor"] = json!(18500);
    let first = app
        .call_as(&app.storefront, "POST", "/v1/orders", Some(body.clone()))
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    assert_eq!(first.body["total_minor"], 18500);
    assert_eq!(first.body["coupons_used"], json!([c]));
    assert_eq!(
        first.body["shipping_waived_by"],
        "benefit:plus_free_shipping"
    );
    // Earned as an order.paid of 185.00 in money: 185 points plus the demo's first-order
    // bonus of 100 (pending), and 185 score.
    assert_eq!(
        first.body["earned"],
        json!({"points": 285, "score": 185}),
        "{}",
        first.text
    );
    assert_eq!(balances(&app, "m").await, (285, 500, 0));
    let again = app
        .call_as(&app.storefront, "POST", "/v1/orders", Some(body.clone()))
        .await;
    assert_eq!((again.status, &again.body), (StatusCode::OK, &first.body));
    let mut other = body.clone();
    other["points"] = json!(0);
    let r = app
        .call_as(&app.storefront, "POST", "/v1/orders", Some(other))
        .await;
    assert_eq!(r.code(), "order_already_paid", "{}", r.text);

    // The coupon is used; a quote right after (its holdings read again after the write)
    // says so, and another order cannot use it.
    let mut quote_again = order("o-2", "m", &[c], 0, 0, None);
    quote_again
        .as_object_mut()
        .unwrap()
        .retain(|k, _| !["order_id", "expected_total_minor"].contains(&k.as_str()));
    let q = app.call("POST", "/v1/quotes", Some(quote_again)).await;
    assert_eq!(
        q.body["coupons_refused"],
        json!([{"coupon": c, "reason": "used"}]),
        "{}",
        q.text
    );

    let coupons = app.call("GET", "/v1/members/m/coupons", None).await;
    assert_eq!(coupons.body["items"][0]["state"], "used");
    assert_eq!(coupons.body["items"][0]["order_id"], "o-1");
    let r = app
        .call_as(
            &app.storefront,
            "POST",
            "/v1/orders",
            Some(order("o-2", "m", &[c], 0, 0, None)),
        )
        .await;
    assert_eq!(r.code(), "order_not_payable", "{}", r.text);
    assert!(r.text.contains("used"), "{}", r.text);

    // The ledger holds the spend with the order as its reference, and the earned lot.
    let ledger = app.call("GET", "/v1/members/m/ledger", None).await;
    let kinds: Vec<(&str, Option<&str>)> = ledger.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap(),
                e["reference"].as_str().or(e["order_id"].as_str()),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("adjust", Some("adj-m")),
            ("redeem", Some("o-1")),
            ("earn", Some("o-1"))
        ]
    );
    // Refunds through Tessera: half the money paid, then the rest. Earned points go back
    // pro rata, spent points come back in the same proportion, and the full refund gives
    // back the coupon and the free-shipping use.
    let refund = |id: &str, amount: i64| json!({"id": id, "member_id": "m", "refund": {"amount_minor": amount}});
    let r = app
        .call_as(
            &app.storefront,
            "POST",
            "/v1/orders/o-1/refunds",
            Some(refund("r1", 9250)),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(
        (
            &r.body["full"],
            &r.body["points_reversed"],
            &r.body["points_returned"],
            &r.body["coupons_restored"]
        ),
        (&json!(false), &json!(142), &json!(250), &json!(0)),
        "{}",
        r.text
    );
    let again = app
        .call_as(
            &app.storefront,
            "POST",
            "/v1/orders/o-1/refunds",
            Some(refund("r1", 9250)),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.body["points_returned"], 250);
    let r = app
        .call_as(
            &app.storefront,
            "POST",
            "/v1/orders/o-1/refunds",
            Some(refund("r2", 9250)),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(
        (
            &r.body["full"],
            &r.body["points_reversed"],
            &r.body["points_returned"],
            &r.body["coupons_restored"],
            &r.body["benefit_uses_released"]
        ),
        (&json!(true), &json!(285), &json!(500), &json!(1), &json!(1)),
        "{}",
        r.text
    );
    assert_eq!(balances(&app, "m").await, (0, 1000, 0));
    assert_eq!(
        shipping_left(&app).await,
        Some(5),
        "the full refund gave the shipment back"
    );
    let coupons = app.call("GET", "/v1/members/m/coupons", None).await;
    assert_eq!(
        coupons.body["items"][0]["state"], "issued",
        "{}",
        coupons.text
    );
    let r = app
        .call_as(
            &app.storefront,
            "POST",
            "/v1/orders/o-1/refunds",
            Some(refund("r3", 1)),
        )
        .await;
    assert_eq!(r.code(), "refund_exceeds_order", "{}", r.text);
    let r = app
        .call_as(
            &app.storefront,
            "POST",
            "/v1/orders/nope/refunds",
            Some(refund("r4", 1)),
        )
        .await;
    assert_eq!(r.code(), "order_not_found", "{}", r.text);

    // Later events apply to a committed order as to any order.
    let r = app
        .call_as(
            &app.storefront,
            "POST",
            "/v1/orders",
            Some(order("o-3", "m", &[], 0, 0, Some(20000))),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(balances(&app, "m").await, (200, 1000, 0));
    let event = json!({"id": "ev-r", "type": "order.refunded", "member_id": "m",
        "occurred_at": "2026-11-23T12:00:00Z", "order_id": "o-3", "refund": {"amount_minor": 20000}});
    let r = app.call("POST", "/v1/events", Some(event)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(balances(&app, "m").await, (0, 1000, 0));
    app.assert_ledger_balanced().await;
}

/// 64 commits at once: for one coupon (1 wins), for the last free-shipping use (1 wins),
/// for the last 1,000 points at 100 each (10 win). Nothing is spent twice.
async fn commits_race(backend: Backend) {
    let Some(app) = TestApp::on(backend).await else {
        return;
    };
    plus_member(&app, "m", 1000).await;
    let c = coupon(&app, "m", "ten_off_99").await;
    let app = Arc::new(app);
    let race = |bodies: Vec<Value>| {
        let app = app.clone();
        async move {
            let tasks: Vec<_> = bodies
                .into_iter()
                .map(|b| {
                    let app = app.clone();
                    tokio::spawn(async move {
                        app.call_as(&app.storefront, "POST", "/v1/orders", Some(b))
                            .await
                    })
                })
                .collect();
            let mut replies = Vec::new();
            for t in tasks {
                replies.push(t.await.unwrap());
            }
            let mut codes: Vec<String> = replies
                .iter()
                .map(|r| {
                    if r.status == StatusCode::CREATED {
                        "created".to_owned()
                    } else {
                        r.code().to_owned()
                    }
                })
                .collect();
            codes.sort();
            codes.dedup_by(|a, b| a == b);
            let won = replies
                .iter()
                .filter(|r| r.status == StatusCode::CREATED)
                .count();
            (won, codes)
        }
    };
    // One coupon.
    let bodies = (0..64)
        .map(|i| order(&format!("c{i}"), "m", &[c], 0, 0, None))
        .collect();
    let (won, codes) = race(bodies).await;
    assert_eq!(won, 1, "{codes:?}");
    assert_eq!(codes, ["created", "order_not_payable"]);

    // The last free-shipping use of the month: PLUS gives 5; 4 are used first. Orders of
    // 10.00 keep the score under silver, whose free shipping has no quota.
    for i in 0..4 {
        let r = app
            .call_as(
                &app.storefront,
                "POST",
                "/v1/orders",
                Some(priced(&format!("s{i}"), "m", 1000, &[], 0, 800, Some(1000))),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let bodies = (0..64)
        .map(|i| priced(&format!("q{i}"), "m", 1000, &[], 0, 800, Some(1000)))
        .collect();
    let (won, codes) = race(bodies).await;
    assert_eq!(won, 1, "{codes:?}");
    assert_eq!(codes, ["created", "quote_changed"]);

    // The last 1,000 points, 100 per order.
    assert_eq!(balances(&app, "m").await.1, 1000);
    let bodies = (0..64)
        .map(|i| priced(&format!("p{i}"), "m", 1000, &[], 100, 0, Some(900)))
        .collect();
    let (won, codes) = race(bodies).await;
    assert_eq!(won, 10, "{codes:?}");
    assert_eq!(codes, ["created", "insufficient_points"]);
    assert_eq!(balances(&app, "m").await.1, 0);
    let tier = app.call("GET", "/v1/members/m/tier", None).await;
    assert_eq!(
        tier.body["tier"], "member",
        "the races ran below silver: {}",
        tier.text
    );
    app.assert_ledger_balanced().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commits_race_sqlite() {
    commits_race(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commits_race_postgres() {
    commits_race(Backend::Postgres).await;
}

/// PLUS grants a pack of two coupons every month, once per member and month.
#[tokio::test]
async fn monthly_coupon_packs_are_granted_once_a_month() {
    let app = TestApp::sqlite().await;
    plus_member(&app, "m", 0).await;
    app.add_member("other").await;
    let grants = |body: &Value| -> Vec<String> {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["source"] == "grant:plus_coupon_pack")
            .map(|c| {
                format!(
                    "{} {}",
                    c["template"].as_str().unwrap(),
                    &c["issued_at"].as_str().unwrap()[..10]
                )
            })
            .collect()
    };
    let clock = |at: &'static str| {
        let app = &app;
        async move {
            let r = app
                .call("POST", "/v1/admin/clock", Some(json!({"now": at})))
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        }
    };
    clock("2026-11-24T00:00:00Z").await;
    let again = app
        .engine
        .run_due_work("2026-11-24T00:00:00Z".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(
        again.coupons_granted, 0,
        "the same month again grants nothing"
    );
    clock("2026-11-30T16:00:00Z").await; // 1 December in Shanghai
    let c = app.call("GET", "/v1/members/m/coupons", None).await;
    assert_eq!(
        grants(&c.body),
        [
            "ten_off_99 2026-11-30",
            "ten_off_99 2026-11-30",
            "ten_off_99 2026-11-23",
            "ten_off_99 2026-11-23"
        ],
        "two in November when PLUS was bought (not when the job ran), two on 1 December in \
         Shanghai (16:00 UTC the day before), newest first: {}",
        c.text
    );
    // A clock that jumps over several months grants each of them, at its first instant.
    clock("2027-03-05T00:00:00Z").await;
    let c = app.call("GET", "/v1/members/m/coupons", None).await;
    assert_eq!(
        grants(&c.body)[..6],
        [
            "ten_off_99 2027-02-28",
            "ten_off_99 2027-02-28",
            "ten_off_99 2027-01-31",
            "ten_off_99 2027-01-31",
            "ten_off_99 2026-12-31",
            "ten_off_99 2026-12-31"
        ],
        "January, February and March after a jump from December: {}",
        c.text
    );
    assert_eq!(grants(&c.body).len(), 10);
    let o = app.call("GET", "/v1/members/other/coupons", None).await;
    assert_eq!(
        o.body["items"],
        json!([]),
        "a member without PLUS gets none"
    );
}

async fn balance(app: &TestApp) -> (i64, i64) {
    let r = app.call("GET", "/v1/members/m/stored-value", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    (
        r.body["principal_minor"].as_i64().unwrap(),
        r.body["bonus_minor"].as_i64().unwrap(),
    )
}

/// Stored value: a top-up with a bonus, spent by an order (principal first), given back
/// in proportion by its refunds, and refunded (principal only); the journal balances.
#[tokio::test]
async fn stored_value_tops_up_pays_and_comes_back() {
    let app = TestApp::sqlite().await;
    app.add_member("m").await;
    app.add_member("n").await;
    let top_up = json!({"offer": "pay_1000_get_1100", "payment_ref": "tp-1"});
    let r = app
        .call_as(
            &app.storefront,
            "POST",
            "/v1/members/m/stored-value",
            Some(top_up.clone()),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(
        (
            r.body["principal_minor"].as_i64(),
            r.body["bonus_minor"].as_i64()
        ),
        (Some(100_000), Some(10_000))
    );
    let again = app
        .call_as(
            &app.storefront,
            "POST",
            "/v1/members/m/stored-value",
            Some(top_up.clone()),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(
        balance(&app).await,
        (100_000, 10_000),
        "the same payment_ref has one effect"
    );
    let r = app
        .call_as(
            &app.storefront,
            "POST",
            "/v1/members/n/stored-value",
            Some(top_up),
        )
        .await;
    assert_eq!(r.code(), "payment_ref_conflict", "{}", r.text);
    let r = app
        .call_as(
            &app.storefront,
            "POST",
            "/v1/members/m/stored-value",
            Some(json!({"offer": "nope", "payment_ref": "tp-2"})),
        )
        .await;
    assert_eq!(r.code(), "unknown_offer", "{}", r.text);

    let mut body = order("o-sv", "m", &[], 0, 0, None);
    body["stored_value_minor"] = json!(20_000);
    let r = app
        .call_as(&app.storefront, "POST", "/v1/orders", Some(body))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(
        (
            r.body["stored_value_used_minor"].as_i64(),
            r.body["total_minor"].as_i64()
        ),
        (Some(20_000), Some(0))
    );
    // Stored value is money paid: the order earns on it (200 points and the first-order 100).
    assert_eq!(r.body["earned"]["points"], 300, "{}", r.text);
    assert_eq!(balance(&app).await, (80_000, 10_000), "principal first");
    let mut too_much = order("o-x", "m", &[], 0, 0, None);
    too_much["stored_value_minor"] = json!(100_000);
    let r = app
        .call_as(&app.storefront, "POST", "/v1/orders", Some(too_much))
        .await;
    assert_eq!(r.code(), "insufficient_stored_value", "{}", r.text);

    let refund = |id: &str, amount: i64| json!({"id": id, "member_id": "m", "refund": {"amount_minor": amount}});
    let r = app
        .call_as(
            &app.storefront,
            "POST",
            "/v1/orders/o-sv/refunds",
            Some(refund("r1", 5_000)),
        )
        .await;
    assert_eq!(r.body["stored_value_returned_minor"], 5_000, "{}", r.text);
    assert_eq!(balance(&app).await, (85_000, 10_000));
    let r = app
        .call_as(
            &app.storefront,
            "POST",
            "/v1/orders/o-sv/refunds",
            Some(refund("r2", 15_000)),
        )
        .await;
    assert_eq!(
        (
            r.body["full"].as_bool(),
            r.body["stored_value_returned_minor"].as_i64()
        ),
        (Some(true), Some(20_000)),
        "{}",
        r.text
    );
    assert_eq!(balance(&app).await, (100_000, 10_000));

    let r = app
        .call(
            "POST",
            "/v1/members/m/stored-value/refunds",
            Some(json!({"id": "svr-1"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"principal_refunded_minor": 100_000, "bonus_forfeited_minor": 10_000})
    );
    assert_eq!(balance(&app).await, (0, 0));
    let report = app.engine.check_ledger(|_, _| {}).await.unwrap();
    assert!(report.is_balanced(), "{:?}", report.violations);
    assert_eq!(report.stored_value, 0);
    let accounts: std::collections::BTreeMap<_, _> = report.accounts.into_iter().collect();
    assert_eq!(accounts.get("shop:sv_refunded"), Some(&100_000));
    assert_eq!(accounts.get("shop:sv_paid_in"), Some(&-100_000));
}
