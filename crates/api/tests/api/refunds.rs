//! Refunds and retries: whatever path a refund takes, it gives back what was paid and
//! spent exactly once; a retry gets the first answer.

use crate::helpers::*;
use crate::orders::{coupon, order, plus_member};
use crate::points::balances;
use axum::http::StatusCode;
use serde_json::{json, Value};

/// A PLUS member with 1,000 points, a coupon and 520.00 of stored value commits one order
/// that uses all three and the month's free shipping. Returns (coupon, amount paid).
async fn committed_order(app: &TestApp, member: &str, order_id: &str) -> (i64, i64) {
    plus_member(app, member, 1000).await;
    let no = coupon(app, member, "ten_off_99").await;
    let r = app
        .call(
            "POST",
            &format!("/v1/members/{member}/stored-value"),
            Some(json!({"offer": "pay_500_get_520", "payment_ref": format!("sv-{member}")})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let mut body = order(order_id, member, &[no], 500, 800, None);
    body["stored_value_minor"] = json!(2000);
    let r = app.call("POST", "/v1/orders", Some(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["points_used"], 500, "{}", r.text);
    assert_eq!(r.body["stored_value_used_minor"], 2000, "{}", r.text);
    assert_eq!(r.body["coupons_used"], json!([no]), "{}", r.text);
    let paid = r.body["total_minor"].as_i64().unwrap() + 2000;
    (no, paid)
}

/// What a member holds that an order can spend: points, stored value, coupons, the
/// month's free shipping left.
async fn holdings(app: &TestApp, member: &str) -> Value {
    let sv = app
        .call("GET", &format!("/v1/members/{member}/stored-value"), None)
        .await;
    let coupons = app
        .call("GET", &format!("/v1/members/{member}/coupons"), None)
        .await;
    let view = app
        .call("GET", &format!("/v1/members/{member}"), None)
        .await;
    let quota = view.body["benefits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["benefit"] == "plus_free_shipping")
        .map(|b| b["left_this_month"].clone());
    json!({
        "points": balances(app, member).await,
        "stored_value": [sv.body["principal_minor"], sv.body["bonus_minor"]],
        "coupons": coupons.body["items"].as_array().unwrap().iter()
            .map(|c| json!([c["coupon"], c["state"]])).collect::<Vec<_>>(),
        "free_shipping_left": quota,
    })
}

#[tokio::test]
async fn a_refund_event_gives_back_what_a_committed_order_spent_as_the_refund_route_does() {
    let app = TestApp::sqlite().await;
    let (_, paid_a) = committed_order(&app, "a", "SO-A").await;
    let (_, paid_b) = committed_order(&app, "b", "SO-B").await;
    assert_eq!(paid_a, paid_b);
    let r = app
        .call(
            "POST",
            "/v1/orders/SO-A/refunds",
            Some(json!({"id": "r1", "member_id": "a", "refund": {"amount_minor": paid_a}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["coupons_restored"], 1, "{}", r.text);
    assert_eq!(r.body["points_returned"], 500, "{}", r.text);
    assert_eq!(r.body["stored_value_returned_minor"], 2000, "{}", r.text);
    let event = json!({"id": "r-b", "type": "order.refunded", "member_id": "b",
        "occurred_at": START, "order_id": "SO-B", "refund": {"amount_minor": paid_b}});
    let r = app.call("POST", "/v1/events", Some(event)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let (a, b) = (holdings(&app, "a").await, holdings(&app, "b").await);
    assert_eq!(
        a, b,
        "the same refund by either path leaves the same holdings"
    );
    assert_eq!(a["stored_value"], json!([50000, 2000]), "{a}");
    assert_eq!(a["coupons"][0][1], "issued", "{a}");
    assert_eq!(a["free_shipping_left"], 5, "{a}");
    // Nothing is left to refund, by either path, and nothing comes back twice.
    for member in ["a", "b"] {
        let r = app
            .call(
                "POST",
                &format!("/v1/orders/SO-{}/refunds", member.to_uppercase()),
                Some(json!({"id": "r2", "member_id": member, "refund": {"amount_minor": 1}})),
            )
            .await;
        assert_eq!(r.code(), "refund_exceeds_order", "{}", r.text);
    }
    assert_eq!(holdings(&app, "b").await, b);
    app.assert_ledger_balanced().await;
}

#[tokio::test]
async fn a_refund_that_came_before_its_commit_gives_back_at_the_commit() {
    let app = TestApp::sqlite().await;
    plus_member(&app, "m", 1000).await;
    // 100.00 refunded before Tessera commits the order.
    let event = json!({"id": "early", "type": "order.refunded", "member_id": "m",
        "occurred_at": START, "order_id": "SO-1", "refund": {"amount_minor": 10000}});
    let r = app.call("POST", "/v1/events", Some(event)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app
        .call(
            "POST",
            "/v1/orders",
            Some(order("SO-1", "m", &[], 500, 800, None)),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["total_minor"], 19500, "{}", r.text);
    // 500 points spent; 100.00 of the 195.00 paid for goods refunded: 256 points back at
    // once (500 × 10000 / 19500, rounded down).
    let (_, available, _) = balances(&app, "m").await;
    let ledger = app.call("GET", "/v1/members/m/ledger", None).await;
    assert_eq!(available, 1000 - 500 + 256, "{}", ledger.text);
    app.assert_ledger_balanced().await;
}

#[tokio::test]
async fn a_refund_before_its_order_does_not_break_the_order_when_the_programme_keeps_a_score() {
    let app = TestApp::sqlite().await;
    app.add_member("m").await;
    let refund = json!({"id": "r", "type": "order.refunded", "member_id": "m",
        "occurred_at": START, "order_id": "o-p", "refund": {"amount_minor": 3000}});
    let r = app.call("POST", "/v1/events", Some(refund)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app.call("POST", "/v1/events", Some(paid("p", "m"))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let t = app.call("GET", "/v1/members/m/tier", None).await;
    // 60.00 of goods score 60; the half refunded takes back 30.
    assert_eq!(t.body["score"], 30, "{}", t.text);
    app.assert_ledger_balanced().await;
}

#[tokio::test]
async fn refunds_by_amount_then_by_lines_never_pass_what_was_paid() {
    let app = TestApp::sqlite().await;
    app.add_member("m").await;
    let r = app.call("POST", "/v1/events", Some(paid("p", "m"))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let refund = |id: &str, refund: Value| {
        json!({"id": id, "type": "order.refunded", "member_id": "m",
            "occurred_at": START, "order_id": "o-p", "refund": refund})
    };
    let r = app
        .call(
            "POST",
            "/v1/events",
            Some(refund("r1", json!({"amount_minor": 6000}))),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    // The goods are refunded in full by amount: a line on top would refund them twice.
    let r = app
        .call(
            "POST",
            "/v1/events",
            Some(refund(
                "r2",
                json!({"lines": [{"sku": "A1", "quantity": 1}]}),
            )),
        )
        .await;
    assert_eq!(r.code(), "refund_exceeds_order", "{}", r.text);
    let t = app.call("GET", "/v1/members/m/tier", None).await;
    assert_eq!(t.body["score"], 0, "{}", t.text);
    let order = app
        .store
        .begin()
        .await
        .unwrap()
        .orders_get_many(&[(1, "o-p")])
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(order.refunded_total_minor, 6000);
    assert_eq!(order.refunded_goods_minor, 6000);
}

#[tokio::test]
async fn an_order_refund_retried_later_gets_the_first_answer() {
    let app = TestApp::sqlite().await;
    let (_, paid) = committed_order(&app, "m", "SO-1").await;
    let body = json!({"id": "r1", "member_id": "m", "refund": {"amount_minor": paid / 2}});
    let first = app
        .call("POST", "/v1/orders/SO-1/refunds", Some(body.clone()))
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    // Time passes (the refund's instant is the server's), another refund comes after.
    let r = app
        .call(
            "POST",
            "/v1/admin/clock",
            Some(json!({"now": "2026-11-25T00:00:00Z"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let second = app
        .call(
            "POST",
            "/v1/orders/SO-1/refunds",
            Some(
                json!({"id": "r2", "member_id": "m", "refund": {"amount_minor": paid - paid / 2}}),
            ),
        )
        .await;
    assert_eq!(second.status, StatusCode::CREATED, "{}", second.text);
    let again = app
        .call("POST", "/v1/orders/SO-1/refunds", Some(body))
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(
        again.text, first.text,
        "the first answer, not today's totals"
    );
    // The same id with another refund is refused.
    let other = app
        .call(
            "POST",
            "/v1/orders/SO-1/refunds",
            Some(json!({"id": "r1", "member_id": "m", "refund": {"amount_minor": 1}})),
        )
        .await;
    assert_eq!(other.code(), "client_id_conflict", "{}", other.text);
}

#[tokio::test]
async fn stored_value_refunds_and_top_ups_retried_get_the_first_answer() {
    let app = TestApp::sqlite().await;
    app.add_member("m").await;
    let top_up = json!({"offer": "pay_500_get_520", "payment_ref": "pay-1"});
    let first_top_up = app
        .call("POST", "/v1/members/m/stored-value", Some(top_up.clone()))
        .await;
    assert_eq!(
        first_top_up.status,
        StatusCode::CREATED,
        "{}",
        first_top_up.text
    );
    let r = app
        .call(
            "POST",
            "/v1/members/m/stored-value",
            Some(json!({"offer": "pay_500_get_520", "payment_ref": "pay-2"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let again = app
        .call("POST", "/v1/members/m/stored-value", Some(top_up))
        .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(
        again.body["balance"], first_top_up.body["balance"],
        "the balance right after the first top-up, not today's"
    );
    let refund = json!({"id": "svr-1"});
    let first = app
        .call(
            "POST",
            "/v1/members/m/stored-value/refunds",
            Some(refund.clone()),
        )
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert_eq!(
        first.body["principal_refunded_minor"], 100000,
        "{}",
        first.text
    );
    let again = app
        .call("POST", "/v1/members/m/stored-value/refunds", Some(refund))
        .await;
    assert_eq!(again.text, first.text, "not 0: the first answer");
}

#[tokio::test]
async fn an_order_id_belongs_to_one_member() {
    let app = TestApp::sqlite().await;
    app.add_member("m1").await;
    app.add_member("m2").await;
    let mut e = paid("p1", "m1");
    let r = app.call("POST", "/v1/events", Some(e.clone())).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    e["id"] = json!("p2");
    e["member_id"] = json!("m2");
    let r = app.call("POST", "/v1/events", Some(e)).await;
    assert_eq!(r.code(), "order_of_another_member", "{}", r.text);
    let refund = json!({"id": "r", "type": "order.refunded", "member_id": "m2",
        "occurred_at": START, "order_id": "o-p1", "refund": {"amount_minor": 100}});
    let r = app.call("POST", "/v1/events", Some(refund)).await;
    assert_eq!(r.code(), "order_of_another_member", "{}", r.text);
    let r = app
        .call(
            "POST",
            "/v1/orders",
            Some(order("o-p1", "m2", &[], 0, 0, None)),
        )
        .await;
    assert_eq!(r.code(), "order_of_another_member", "{}", r.text);
    // An order committed through Tessera belongs to its member as well.
    let commit = |member: &str| Some(order("SO-9", member, &[], 0, 0, None));
    let r = app.call("POST", "/v1/orders", commit("m1")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app.call("POST", "/v1/orders", commit("m2")).await;
    assert_eq!(r.code(), "order_of_another_member", "{}", r.text);
}

#[tokio::test]
async fn a_frozen_member_spends_no_coupon_and_no_stored_value() {
    let app = TestApp::sqlite().await;
    plus_member(&app, "m", 0).await;
    let no = coupon(&app, "m", "ten_off_99").await;
    let r = app
        .call(
            "POST",
            "/v1/members/m/stored-value",
            Some(json!({"offer": "pay_500_get_520", "payment_ref": "sv-1"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app
        .call("PATCH", "/v1/members/m", Some(json!({"status": "frozen"})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let with_coupon = order("SO-1", "m", &[no], 0, 0, None);
    let r = app.call("POST", "/v1/orders", Some(with_coupon)).await;
    assert_eq!(r.code(), "member_frozen", "{}", r.text);
    let mut with_sv = order("SO-2", "m", &[], 0, 0, None);
    with_sv["stored_value_minor"] = json!(100);
    let r = app.call("POST", "/v1/orders", Some(with_sv)).await;
    assert_eq!(r.code(), "member_frozen", "{}", r.text);
    // Paying in money alone still works.
    let r = app
        .call(
            "POST",
            "/v1/orders",
            Some(order("SO-3", "m", &[], 0, 0, None)),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

#[tokio::test]
async fn a_refund_counts_no_order() {
    let app = TestApp::sqlite().await;
    app.add_member("m").await;
    let r = app.call("POST", "/v1/events", Some(paid("p", "m"))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    for k in 0..3 {
        let refund = json!({"id": format!("r{k}"), "type": "order.refunded", "member_id": "m",
            "occurred_at": START, "order_id": "o-p", "refund": {"amount_minor": 100}});
        let r = app.call("POST", "/v1/events", Some(refund)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let account = app
        .store
        .begin()
        .await
        .unwrap()
        .members_with_accounts_for_update(&["m"])
        .await
        .unwrap()
        .pop()
        .unwrap()
        .account;
    assert_eq!(account.paid_orders, 1);
}

#[tokio::test]
async fn occurred_at_is_bounded_into_the_past() {
    let app = TestApp::sqlite().await;
    app.add_member("m").await;
    let mut e = paid("old", "m");
    e["occurred_at"] = json!("2016-01-01T00:00:00Z");
    let r = app.call("POST", "/v1/events", Some(e)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.code(), "occurred_at_out_of_range", "{}", r.text);
    let mut e = paid("late", "m");
    e["occurred_at"] = json!("2024-01-01T00:00:00Z");
    let r = app.call("POST", "/v1/events", Some(e)).await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "a late event within the window: {}",
        r.text
    );
}

#[tokio::test]
async fn between_job_runs_points_past_their_expiry_are_not_spent_and_released_ones_are() {
    let app = TestApp::sqlite().await;
    app.add_member("m").await;
    let r = app
        .call(
            "POST",
            "/v1/members/m/points/adjustments",
            Some(json!({"id": "a1", "points": 1000, "reason": "gift"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    // The demo's points expire at the end of the year after they were earned; the clock
    // passes that instant, and no job has run yet.
    app.clock
        .advance("2028-01-02T00:00:00Z".parse().unwrap())
        .unwrap();
    let quote = json!({"member_id": "m", "lines": [{"sku": "BOOK", "category": "books",
        "quantity": 1, "unit_price_minor": 20000}], "points": 100});
    let q = app.call("POST", "/v1/quotes", Some(quote)).await;
    assert_eq!(q.code(), "insufficient_points", "{}", q.text);
    let r = app
        .call(
            "POST",
            "/v1/members/m/points/redemptions",
            Some(json!({"id": "r1", "points": 100})),
        )
        .await;
    assert_eq!(r.code(), "insufficient_points", "{}", r.text);
    // An order's points, pending through the 7-day return window, can be spent once it
    // passed, before the job that releases them runs.
    let mut e = paid("p", "m");
    e["occurred_at"] = json!("2028-01-02T00:00:00Z");
    let r = app.call("POST", "/v1/events", Some(e)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    app.clock
        .advance("2028-01-10T00:00:00Z".parse().unwrap())
        .unwrap();
    let r = app
        .call(
            "POST",
            "/v1/members/m/points/redemptions",
            Some(json!({"id": "r2", "points": 100})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let ledger = app.call("GET", "/v1/members/m/ledger", None).await;
    let kinds: Vec<&str> = ledger.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    // The refused redemption changed nothing (what it settled went with it); the second
    // one settled the release and the expiry, then spent the released points.
    assert_eq!(
        kinds,
        ["adjust", "earn", "release", "expire", "redeem"],
        "{}",
        ledger.text
    );
    // The jobs then find nothing left to do.
    let done = app
        .engine
        .run_due_work("2028-01-10T00:00:00Z".parse().unwrap())
        .await
        .unwrap();
    assert_eq!((done.lots_released, done.lots_expired), (0, 0));
    app.assert_ledger_balanced().await;
}

#[tokio::test]
async fn a_coupon_issue_retried_answers_as_first_issued() {
    let app = TestApp::sqlite().await;
    plus_member(&app, "m", 0).await;
    let body = json!({"id": "welcome", "template": "ten_off_99"});
    let first = app
        .call("POST", "/v1/members/m/coupons", Some(body.clone()))
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let no = first.body["items"][0]["coupon"].as_i64().unwrap();
    let r = app
        .call(
            "POST",
            "/v1/orders",
            Some(order("SO-1", "m", &[no], 0, 0, None)),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let again = app.call("POST", "/v1/members/m/coupons", Some(body)).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(
        again.body["items"], first.body["items"],
        "as issued, not as used since"
    );
    let other = app
        .call(
            "POST",
            "/v1/members/m/coupons",
            Some(json!({"id": "welcome", "template": "books_20"})),
        )
        .await;
    assert_eq!(other.code(), "client_id_conflict", "{}", other.text);
}

/// 16 copies of one purchase at once, on both databases: one subscription, one term, and
/// every copy answered with it.
async fn concurrent_retries_of_a_purchase_replay(backend: tessera_testkit::Backend) {
    let Some(app) = TestApp::on(backend).await else {
        return;
    };
    app.add_member("m").await;
    let r = app
        .call(
            "POST",
            "/v1/admin/code-pools/iqiyi_vip",
            Some(json!({"codes": ["IQ-1", "IQ-2"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let app = std::sync::Arc::new(app);
    let body = json!({"member_id": "m", "plan": "plus", "payment_ref": "pay-1"});
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (app, body) = (app.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            app.call("POST", "/v1/subscriptions", Some(body)).await
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        let r = t.await.unwrap();
        assert!(
            r.status == StatusCode::CREATED || r.status == StatusCode::OK,
            "{}",
            r.text
        );
        ids.push(r.body["id"].as_i64().unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one subscription: {ids:?}");
    let s = app
        .call("GET", &format!("/v1/subscriptions/{}", ids[0]), None)
        .await;
    assert_eq!(s.body["terms"].as_array().unwrap().len(), 1, "{}", s.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_retries_of_a_purchase_replay_sqlite() {
    concurrent_retries_of_a_purchase_replay(tessera_testkit::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_retries_of_a_purchase_replay_postgres() {
    concurrent_retries_of_a_purchase_replay(tessera_testkit::Backend::Postgres).await;
}

/// The ledger check reads one snapshot: while batches of orders commit, every check run
/// finds the books balanced (a check that read its figures at different instants would
/// see the postings of an order and not yet its balances).
async fn the_check_finds_a_live_ledger_balanced(backend: tessera_testkit::Backend) {
    let Some(app) = TestApp::on(backend).await else {
        return;
    };
    for m in 0..8 {
        app.add_member(&format!("m{m}")).await;
    }
    let app = std::sync::Arc::new(app);
    let writer = {
        let app = app.clone();
        tokio::spawn(async move {
            for k in 0..40 {
                let events: Vec<Value> = (0..8)
                    .map(|m| paid(&format!("e{k}-{m}"), &format!("m{m}")))
                    .collect();
                let r = app
                    .call(
                        "POST",
                        "/v1/events/batch",
                        Some(json!({ "events": events })),
                    )
                    .await;
                assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            }
        })
    };
    // As many checks as the writer leaves time for (how many depends on the machine: no
    // count is asserted), each of which must find the books balanced.
    while !writer.is_finished() {
        app.assert_ledger_balanced().await;
    }
    writer.await.unwrap();
    app.assert_ledger_balanced().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_check_finds_a_live_ledger_balanced_sqlite() {
    the_check_finds_a_live_ledger_balanced(tessera_testkit::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_check_finds_a_live_ledger_balanced_postgres() {
    the_check_finds_a_live_ledger_balanced(tessera_testkit::Backend::Postgres).await;
}

#[tokio::test]
async fn whole_numbers_written_as_decimals_are_integers() {
    let app = TestApp::sqlite().await;
    app.add_member("m").await;
    let mut e = paid("p", "m");
    e["lines"][0]["quantity"] = json!(2.0);
    e["lines"][0]["unit_price_minor"] = json!(3000.0);
    e["total_minor"] = json!(6600.0);
    let r = app.call("POST", "/v1/events", Some(e)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    // The same event written with integers is the same event.
    let r = app.call("POST", "/v1/events", Some(paid("p", "m"))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // A fraction is still refused.
    let mut e = paid("q", "m");
    e["lines"][0]["quantity"] = json!(2.5);
    let r = app.call("POST", "/v1/events", Some(e)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.code(), "invalid_request", "{}", r.text);
}

#[tokio::test]
async fn an_old_coupon_still_issued_is_never_cut_from_a_quote() {
    let app = TestApp::sqlite().await;
    app.add_member("m").await;
    let first = app
        .call(
            "POST",
            "/v1/members/m/coupons",
            Some(json!({"id": "old", "template": "ten_off_99"})),
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let old = first.body["items"][0]["coupon"].as_i64().unwrap();
    // 600 newer coupons, used up by nobody: the old one is far past any page of them.
    for k in 0..6 {
        let r = app
            .call(
                "POST",
                "/v1/members/m/coupons",
                Some(json!({"id": format!("pack-{k}"), "template": "books_20", "count": 100})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let quote = json!({"member_id": "m", "lines": [{"sku": "TEA", "category": "grocery",
        "quantity": 2, "unit_price_minor": 5900}], "coupons": [old]});
    let q = app.call("POST", "/v1/quotes", Some(quote)).await;
    assert_eq!(q.status, StatusCode::OK, "{}", q.text);
    assert_eq!(q.body["coupons_refused"], json!([]), "{}", q.text);
    assert_eq!(q.body["total_minor"], 11800 - 1000, "{}", q.text);
}
