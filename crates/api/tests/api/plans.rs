//! Paid plans through the API, with the manual clock: Costco's refund and back-dated
//! renewal, Prime's trial and cancel at period end, 88VIP's price by score, JD PLUS's trial
//! and partner codes, every refund policy, payment references, gifts, partners, and
//! purchases racing for one pool of codes on both databases.

use crate::helpers::*;
use axum::http::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::Arc;
use tessera_testkit::Backend;

const HEAD: &str = "name = \"t\"\ncurrency = \"USD\"\ntimezone = \"UTC\"\n";

async fn app_with(programme: &str, members: &[&str]) -> TestApp {
    let app = TestApp::sqlite().await;
    let r = app
        .put_programme(&app.admin, &format!("{HEAD}{programme}"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    for m in members {
        app.add_member(m).await;
    }
    app
}

async fn buy(app: &TestApp, body: Value) -> Reply {
    app.call_as(&app.storefront, "POST", "/v1/subscriptions", Some(body))
        .await
}

async fn buy_ok(app: &TestApp, member: &str, plan: &str, payment_ref: &str) -> Value {
    let r = buy(
        app,
        json!({"member_id": member, "plan": plan, "payment_ref": payment_ref}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.body
}

async fn sub(app: &TestApp, id: &Value) -> Value {
    let r = app
        .call("GET", &format!("/v1/subscriptions/{id}"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body
}

async fn pay(app: &TestApp, id: &Value, payment_ref: &str) -> Reply {
    app.call_as(
        &app.storefront,
        "POST",
        &format!("/v1/subscriptions/{id}/payments"),
        Some(json!({"payment_ref": payment_ref})),
    )
    .await
}

fn terms(view: &Value) -> Vec<(String, String, i64)> {
    view["terms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["start"].as_str().unwrap().to_owned(),
                t["end"].as_str().unwrap().to_owned(),
                t["amount_minor"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn causes(view: &Value) -> Vec<String> {
    view["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            format!(
                "{} {}",
                h["cause"].as_str().unwrap(),
                h["to"].as_str().unwrap_or("")
            )
            .trim()
            .to_owned()
        })
        .collect()
}

async fn held(app: &TestApp, member: &str, at: &str) -> Vec<String> {
    let r = app
        .call(
            "GET",
            &format!("/v1/members/{member}/entitlements?at={at}"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["plans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["plan"].as_str().unwrap().to_owned())
        .collect()
}

const COSTCO: &str = r#"
[[plans]]
id = "gold_star"
name = "Gold Star"
term = "year"
price_minor = 6500
refund = { policy = "full" }
grace = { months = 2, backdate = true }
"#;

/// Costco: $65 a year, the whole fee back at any time, a renewal within two months of
/// expiry back-dated to the old expiry, a later one starting on the payment date.
#[tokio::test]
async fn costco_gold_star() {
    let app = app_with(COSTCO, &["early", "late", "refunder"]).await;
    let early = buy_ok(&app, "early", "gold_star", "pay-e1").await;
    let late = buy_ok(&app, "late", "gold_star", "pay-l1").await;
    let refunder = buy_ok(&app, "refunder", "gold_star", "pay-r1").await;
    assert_eq!(
        terms(&early),
        [(START.into(), "2027-11-23T00:00:00Z".into(), 6500)]
    );

    // Ten months in, the whole fee comes back.
    app.set_clock("2027-09-23T00:00:00Z").await;
    let r = app
        .call(
            "POST",
            &format!("/v1/subscriptions/{}/refunds", refunder["id"]),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["calculation"]["refund_minor"], 6500, "{}", r.text);
    assert_eq!(r.body["calculation"]["terms"][0]["rule"], "full");
    assert_eq!(r.body["subscription"]["status"], "refunded");
    assert_eq!(r.body["subscription"]["access"], false);

    // Six weeks after expiry: in grace, and the renewal is back-dated.
    app.set_clock("2028-01-04T00:00:00Z").await;
    assert_eq!(sub(&app, &early["id"]).await["status"], "grace");
    let r = pay(&app, &early["id"], "pay-e2").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["status"], "active");
    assert_eq!(
        terms(&r.body)[1],
        (
            "2027-11-23T00:00:00Z".into(),
            "2028-11-23T00:00:00Z".into(),
            6500
        )
    );
    assert_eq!(
        causes(&r.body),
        [
            "paid",
            "term_ended grace",
            "paid",
            "renewed_in_grace active"
        ]
    );

    // Three months after expiry: expired, and the new term starts on the payment date.
    app.set_clock("2028-02-23T00:00:00Z").await;
    assert_eq!(sub(&app, &late["id"]).await["status"], "expired");
    assert!(held(&app, "late", "2028-02-23T00:00:00Z").await.is_empty());
    let r = pay(&app, &late["id"], "pay-l2").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(
        terms(&r.body)[1],
        (
            "2028-02-23T00:00:00Z".into(),
            "2029-02-23T00:00:00Z".into(),
            6500
        )
    );
    assert_eq!(
        causes(&r.body),
        [
            "paid",
            "term_ended grace",
            "grace_ended expired",
            "paid",
            "reactivated active"
        ]
    );
    // Access had a gap: held before, not in the gap, held again.
    assert_eq!(
        held(&app, "late", "2027-06-01T00:00:00Z").await,
        ["gold_star"]
    );
    assert!(held(&app, "late", "2028-01-01T00:00:00Z").await.is_empty());
    assert_eq!(
        held(&app, "late", "2028-03-01T00:00:00Z").await,
        ["gold_star"]
    );
}

const PRIME: &str = r#"
[[plans]]
id = "prime_monthly"
term = "month"
price_minor = 1499
auto_renew = true
renewal_notice_days = 3
trial = { days = 30 }
refund = { policy = "pro_rata" }

[[plans]]
id = "prime_yearly"
term = "year"
price_minor = 13900
auto_renew = true
renewal_notice_days = 3
trial = { days = 30 }
"#;

/// A renewal already due when the member cancels at period end is closed: the shop's
/// billing must not charge it.
#[tokio::test]
async fn a_cancel_at_period_end_closes_the_renewal_due() {
    let app = app_with(PRIME, &["d"]).await;
    let m = buy_ok(&app, "d", "prime_monthly", "prime-d-1").await;
    assert_eq!(m["access_end"], "2026-12-23T00:00:00Z");
    app.set_clock("2026-12-21T00:00:00Z").await;
    let due = app.call("GET", "/v1/renewals?state=open", None).await;
    assert_eq!(
        due.body["items"].as_array().unwrap().len(),
        1,
        "{}",
        due.text
    );
    let r = app
        .call_as(
            &app.storefront,
            "POST",
            &format!("/v1/subscriptions/{}/cancel", m["id"]),
            Some(json!({"at_period_end": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.body["access"], true,
        "access runs to the end of the period"
    );
    let open = app.call("GET", "/v1/renewals?state=open", None).await;
    assert_eq!(open.body["items"], json!([]), "{}", open.text);
    let lapsed = app.call("GET", "/v1/renewals?state=lapsed", None).await;
    assert_eq!(
        lapsed.body["items"].as_array().unwrap().len(),
        1,
        "{}",
        lapsed.text
    );
}

/// Renewals come a page at a time in the order they fall due, every one of them, though
/// one subscription has several in the state asked for.
#[tokio::test]
async fn renewals_come_a_page_at_a_time_in_due_order() {
    let app = app_with(PRIME, &["a", "b"]).await;
    let first = buy_ok(&app, "a", "prime_monthly", "pa-1").await;
    app.set_clock("2026-12-01T00:00:00Z").await;
    let second = buy_ok(&app, "b", "prime_monthly", "pb-1").await;
    // `a` falls due on 20 December and is paid; `b` on 29 December, paid; `a` again on
    // 20 January, paid.
    for (at, id, payment) in [
        ("2026-12-20T00:00:00Z", &first["id"], "pa-2"),
        ("2026-12-29T00:00:00Z", &second["id"], "pb-2"),
        ("2027-01-20T00:00:00Z", &first["id"], "pa-3"),
    ] {
        app.set_clock(at).await;
        let r = pay(&app, id, payment).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let r = app
            .call(
                "GET",
                &format!("/v1/renewals?state=paid&limit=1{cursor}"),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        for item in r.body["items"].as_array().unwrap() {
            seen.push((
                item["member_id"].as_str().unwrap().to_owned(),
                item["due_at"].as_str().unwrap().to_owned(),
            ));
        }
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    let members: Vec<&str> = seen.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(members, ["a", "b", "a"], "{seen:?}");
    let r = app
        .call("GET", "/v1/renewals?state=paid&cursor=bm9wZQ", None)
        .await;
    assert_eq!(r.code(), "invalid_cursor", "{}", r.text);
}

/// Prime: monthly or yearly; a 30-day trial once per member that converts when paid;
/// cancel at period end keeps access until then; the clock's changes happen once.
#[tokio::test]
async fn prime_trial_and_cancel_at_period_end() {
    let app = app_with(PRIME, &["t", "c"]).await;
    let trial = buy(
        &app,
        json!({"member_id": "t", "plan": "prime_yearly", "trial": true}),
    )
    .await;
    assert_eq!(trial.status, StatusCode::CREATED, "{}", trial.text);
    assert_eq!(trial.body["status"], "trialing");
    assert_eq!(trial.body["access_end"], "2026-12-23T00:00:00Z");
    let again = buy(
        &app,
        json!({"member_id": "t", "plan": "prime_yearly", "trial": true}),
    )
    .await;
    assert_eq!(again.code(), "plan_already_held", "{}", again.text);

    // The renewal falls due 3 days before the trial ends, for the shop's billing.
    app.set_clock("2026-12-20T00:00:00Z").await;
    let due = app.call("GET", "/v1/renewals", None).await;
    assert_eq!(
        due.body["items"].as_array().unwrap().len(),
        1,
        "{}",
        due.text
    );
    assert_eq!(due.body["items"][0]["amount_minor"], 13900);
    assert_eq!(due.body["items"][0]["member_id"], "t");
    let id = &trial.body["id"];
    let r = pay(&app, id, "prime-t-1").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(
        r.body["status"], "trialing",
        "the paid year starts when the trial ends"
    );
    assert_eq!(
        terms(&r.body)[1],
        (
            "2026-12-23T00:00:00Z".into(),
            "2027-12-23T00:00:00Z".into(),
            13900
        )
    );
    let open = app.call("GET", "/v1/renewals", None).await;
    assert_eq!(open.body["items"], json!([]), "{}", open.text);
    app.set_clock("2026-12-24T00:00:00Z").await;
    let v = sub(&app, id).await;
    assert_eq!(v["status"], "active");
    assert_eq!(
        causes(&v),
        [
            "trial_started trialing",
            "renewal_notice",
            "paid",
            "trial_converted active"
        ]
    );
    // Running the clock's work again changes nothing.
    let again = app
        .engine
        .run_due_work("2026-12-24T00:00:00Z".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(again.subscription_changes, 0);
    assert_eq!(causes(&sub(&app, id).await).len(), 4);

    // A second trial of the same plan, once the first has ended, is refused.
    let r = app
        .call_as(
            &app.storefront,
            "POST",
            &format!("/v1/subscriptions/{id}/cancel"),
            Some(json!({"at_period_end": false})),
        )
        .await;
    assert_eq!(r.body["status"], "canceled", "{}", r.text);
    let r = buy(
        &app,
        json!({"member_id": "t", "plan": "prime_yearly", "trial": true}),
    )
    .await;
    assert_eq!(r.code(), "trial_already_used", "{}", r.text);

    // Monthly, canceled at period end: access until the end, then canceled, no renewal.
    let m = buy_ok(&app, "c", "prime_monthly", "prime-c-1").await;
    assert_eq!(m["access_end"], "2027-01-24T00:00:00Z");
    let r = app
        .call_as(
            &app.storefront,
            "POST",
            &format!("/v1/subscriptions/{}/cancel", m["id"]),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        (
            &r.body["status"],
            &r.body["cancel_at_period_end"],
            &r.body["access"]
        ),
        (&json!("active"), &json!(true), &json!(true))
    );
    app.set_clock("2027-01-23T23:59:59Z").await;
    assert_eq!(sub(&app, &m["id"]).await["access"], true);
    assert!(app.call("GET", "/v1/renewals", None).await.body["items"]
        .as_array()
        .unwrap()
        .is_empty());
    app.set_clock("2027-01-24T00:00:00Z").await;
    let v = sub(&app, &m["id"]).await;
    assert_eq!(
        (&v["status"], &v["access"]),
        (&json!("canceled"), &json!(false))
    );
    assert_eq!(
        causes(&v),
        [
            "paid",
            "cancel_at_period_end",
            "canceled_at_period_end canceled"
        ]
    );
    assert_eq!(
        held(&app, "c", "2027-01-10T00:00:00Z").await,
        ["prime_monthly"]
    );
    let member = app.call("GET", "/v1/members/c", None).await;
    assert_eq!(member.body["plans"], json!([]), "{}", member.text);
}

/// 88VIP: 88 with a score of 1,000 or more at purchase, else 888 (the demo programme).
#[tokio::test]
async fn vip88_price_follows_the_score() {
    let app = TestApp::sqlite().await;
    for m in ["high", "low"] {
        app.add_member(m).await;
    }
    let order = json!({"id": "o1", "type": "order.paid", "member_id": "high",
        "occurred_at": "2026-11-22T10:00:00+08:00", "order_id": "o1",
        "lines": [{"sku": "A", "category": "books", "quantity": 1, "unit_price_minor": 120000}],
        "total_minor": 120000});
    assert_eq!(
        app.call("POST", "/v1/events", Some(order)).await.status,
        StatusCode::CREATED
    );
    let offer = |body: &Value| -> (i64, String) {
        let p = body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["plan"] == "vip88")
            .unwrap();
        (
            p["price_minor"].as_i64().unwrap(),
            p["price_basis"].as_str().unwrap().to_owned(),
        )
    };
    let high = app.call("GET", "/v1/members/high/plans", None).await;
    assert_eq!(
        offer(&high.body),
        (8800, "rule:score_1000".into()),
        "{}",
        high.text
    );
    let low = app.call("GET", "/v1/members/low/plans", None).await;
    assert_eq!(offer(&low.body), (88800, "list".into()));

    let r = buy(
        &app,
        json!({"member_id": "low", "plan": "vip88", "payment_ref": "v-low", "amount_minor": 8800}),
    )
    .await;
    assert_eq!(r.code(), "price_changed", "{}", r.text);
    let r = buy(
        &app,
        json!({"member_id": "high", "plan": "vip88", "payment_ref": "v-high", "amount_minor": 8800}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["terms"][0]["price_basis"], "rule:score_1000");
    let r = buy(
        &app,
        json!({"member_id": "low", "plan": "vip88", "payment_ref": "v-low"}),
    )
    .await;
    assert_eq!(r.body["terms"][0]["amount_minor"], 88800, "{}", r.text);
    // VIP88 does not stack.
    let r = buy(
        &app,
        json!({"member_id": "high", "plan": "vip88", "payment_ref": "v-high-2"}),
    )
    .await;
    assert_eq!(r.code(), "plan_already_held", "{}", r.text);
}

/// JD PLUS (the demo): 149 a year, a trial for eligible members, an iQIYI code from the
/// pool with every paid year; partners see only their own rights.
#[tokio::test]
async fn jd_plus_trial_codes_and_partners() {
    let app = TestApp::sqlite().await;
    for m in ["a", "frozen", "gifter"] {
        app.add_member(m).await;
    }
    let r = app
        .call(
            "PATCH",
            "/v1/members/frozen",
            Some(json!({"status": "frozen"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = buy(
        &app,
        json!({"member_id": "frozen", "plan": "plus", "trial": true}),
    )
    .await;
    assert_eq!(r.code(), "trial_not_eligible", "{}", r.text);

    let r = buy(
        &app,
        json!({"member_id": "a", "plan": "plus", "payment_ref": "p-1"}),
    )
    .await;
    assert_eq!(r.code(), "partner_codes_exhausted", "{}", r.text);
    assert_eq!(
        app.call("GET", "/v1/members/a/subscriptions", None)
            .await
            .body["items"],
        json!([]),
        "an empty pool records nothing"
    );
    let r = app
        .call(
            "POST",
            "/v1/admin/code-pools/iqiyi_vip",
            Some(json!({"codes": ["IQ-1", "IQ-2", "IQ-2", "IQ-3"]})),
        )
        .await;
    assert_eq!(
        (r.body["added"].as_i64(), r.body["available"].as_i64()),
        (Some(3), Some(3)),
        "{}",
        r.text
    );
    let r = app
        .call(
            "POST",
            "/v1/admin/code-pools/no_such_right",
            Some(json!({"codes": ["x"]})),
        )
        .await;
    assert_eq!(r.code(), "unknown_partner_right");

    let v = buy_ok(&app, "a", "plus", "p-1").await;
    assert_eq!(v["terms"][0]["amount_minor"], 14900);
    assert_eq!(v["partner_codes"][0]["code"], "IQ-1");
    assert_eq!(v["partner_codes"][0]["right"], "iqiyi_vip");
    // A gift: the gifter pays, the friend holds it.
    app.add_member("friend").await;
    let g = buy(
        &app,
        json!({"member_id": "gifter", "plan": "plus", "payment_ref": "p-gift", "gift_to": "friend"}),
    )
    .await;
    assert_eq!(g.status, StatusCode::CREATED, "{}", g.text);
    assert_eq!(
        (&g.body["member_id"], &g.body["buyer"], &g.body["gift"]),
        (&json!("friend"), &json!("gifter"), &json!(true))
    );
    assert_eq!(g.body["partner_codes"][0]["code"], "IQ-2");
    assert_eq!(held(&app, "friend", START).await, ["plus"]);
    assert!(held(&app, "gifter", START).await.is_empty());
    let bought = app
        .call("GET", "/v1/members/gifter/subscriptions", None)
        .await;
    assert_eq!(bought.body["items"][0]["member_id"], "friend");

    let iqiyi = app.engine.create_partner_key("iqiyi").await.unwrap();
    let youku = app.engine.create_partner_key("youku").await.unwrap();
    let r = app
        .call_as(&iqiyi, "GET", "/v1/partner/members/a", None)
        .await;
    assert_eq!(r.body["holds"], true, "{}", r.text);
    assert_eq!(r.body["rights"][0]["right"], "iqiyi_vip");
    let keys: Vec<&String> = r.body.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["holds", "member_id", "rights"],
        "a partner sees nothing else"
    );
    let r = app
        .call_as(&youku, "GET", "/v1/partner/members/a", None)
        .await;
    assert_eq!(r.body["holds"], false, "{}", r.text);
    let r = app
        .call_as(&app.partner, "GET", "/v1/partner/members/a", None)
        .await;
    assert_eq!(r.code(), "forbidden", "a partner key bound to no partner");
    let r = app.call_as(&iqiyi, "GET", "/v1/members/a", None).await;
    assert_eq!(r.code(), "forbidden");

    // Youku's bundle rides on VIP88: two uses a term, then used up.
    let redeem =
        |id: &str, member: &str| json!({"id": id, "member_id": member, "right": "video_bundle"});
    let r = app
        .call_as(
            &youku,
            "POST",
            "/v1/partner/redemptions",
            Some(redeem("y1", "a")),
        )
        .await;
    assert_eq!(r.code(), "not_entitled", "{}", r.text);
    buy_ok(&app, "a", "vip88", "v-a").await;
    for (id, status, left) in [
        ("y1", 201, Some(1)),
        ("y1", 200, None),
        ("y2", 201, Some(0)),
    ] {
        let r = app
            .call_as(
                &youku,
                "POST",
                "/v1/partner/redemptions",
                Some(redeem(id, "a")),
            )
            .await;
        assert_eq!(r.status.as_u16(), status, "{id}: {}", r.text);
        assert_eq!(r.body["uses_left"].as_i64(), left, "{id}: {}", r.text);
        assert_eq!(r.body["cost_minor"], 1000);
    }
    let r = app
        .call_as(
            &youku,
            "POST",
            "/v1/partner/redemptions",
            Some(redeem("y3", "a")),
        )
        .await;
    assert_eq!(r.code(), "partner_right_used_up", "{}", r.text);
    let r = app
        .call_as(
            &iqiyi,
            "POST",
            "/v1/partner/redemptions",
            Some(redeem("i1", "a")),
        )
        .await;
    assert_eq!(
        r.code(),
        "unknown_partner_right",
        "not iQIYI's right: {}",
        r.text
    );

    // The trial, for an eligible member who never had it.
    app.add_member("newbie").await;
    let r = buy(
        &app,
        json!({"member_id": "newbie", "plan": "plus", "trial": true}),
    )
    .await;
    assert_eq!(
        (r.status, &r.body["status"]),
        (StatusCode::CREATED, &json!("trialing")),
        "{}",
        r.text
    );
    assert_eq!(r.body["partner_codes"], json!([]), "a trial draws no code");
}

const REFUNDS: &str = r#"
[[plans]]
id = "full"
term = "days"
term_days = 365
price_minor = 36500
refund = { policy = "full" }

[[plans]]
id = "none"
term = "days"
term_days = 365
price_minor = 36500
refund = { policy = "none" }

[[plans]]
id = "pro_rata"
term = "days"
term_days = 365
price_minor = 36500
refund = { policy = "pro_rata" }

[[plans]]
id = "within"
term = "days"
term_days = 365
price_minor = 36500
refund = { policy = "full_within_days", days = 7, otherwise = "pro_rata", net_of_benefit_cost = true }

[[plans.partner_rights]]
id = "lounge"
partner = "airport"
cost_minor = 2000
"#;

/// Every refund policy, on the manual clock: (plan, days after purchase, a benefit used
/// first, refund due, the rule applied).
#[tokio::test]
async fn refund_policies() {
    let cases: &[(&str, &str, bool, i64, &str)] = &[
        ("full", "2027-09-01T00:00:00Z", false, 36500, "full"),
        ("none", "2026-11-24T00:00:00Z", false, 0, "none"),
        // 61 of 365 days used (the day of the refund counts): 304 / 365 of the fee.
        ("pro_rata", "2027-01-22T12:00:00Z", false, 30400, "pro_rata"),
        (
            "within",
            "2026-11-26T00:00:00Z",
            false,
            36500,
            "full_within_days",
        ),
        // A benefit used: no longer "full if unused"; pro rata (4 days used), net of its cost.
        (
            "within",
            "2026-11-26T00:00:00Z",
            true,
            36100 - 2000,
            "pro_rata",
        ),
        // Past the 7 days: pro rata (11 of 365 days used), no benefit used.
        ("within", "2026-12-03T00:00:00Z", false, 35400, "pro_rata"),
    ];
    for (i, (plan, at, used, due, rule)) in cases.iter().enumerate() {
        let member = format!("m{i}");
        let app = app_with(REFUNDS, &[&member]).await;
        let v = buy_ok(&app, &member, plan, &format!("pay-{i}")).await;
        if *used {
            let key = app.engine.create_partner_key("airport").await.unwrap();
            let r = app
                .call_as(
                    &key,
                    "POST",
                    "/v1/partner/redemptions",
                    Some(json!({"id": "l1", "member_id": member, "right": "lounge"})),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        }
        app.set_clock(at).await;
        let r = app
            .call(
                "POST",
                &format!("/v1/subscriptions/{}/refunds", v["id"]),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{plan} at {at}: {}", r.text);
        let c = &r.body["calculation"];
        assert_eq!(c["refund_minor"], *due, "{plan} at {at} used={used}: {c}");
        assert_eq!(c["terms"][0]["rule"], *rule, "{plan} at {at}: {c}");
        assert_eq!(
            c["gross_minor"].as_i64().unwrap() - c["benefit_cost_minor"].as_i64().unwrap(),
            *due
        );
        assert_eq!(r.body["subscription"]["status"], "refunded");
        let again = app
            .call(
                "POST",
                &format!("/v1/subscriptions/{}/refunds", v["id"]),
                None,
            )
            .await;
        assert_eq!(again.code(), "subscription_ended", "{}", again.text);
    }
}

/// The same payment reference confirmed twice has one effect; reused for something else it
/// is refused and records nothing.
#[tokio::test]
async fn a_payment_ref_confirmed_twice_has_one_effect() {
    let app = app_with(COSTCO, &["m", "n"]).await;
    let body = json!({"member_id": "m", "plan": "gold_star", "payment_ref": "pay-1"});
    let first = buy(&app, body.clone()).await;
    let second = buy(&app, body.clone()).await;
    assert_eq!(
        (first.status, second.status),
        (StatusCode::CREATED, StatusCode::OK)
    );
    assert_eq!(first.body, second.body);
    let r = buy(
        &app,
        json!({"member_id": "n", "plan": "gold_star", "payment_ref": "pay-1"}),
    )
    .await;
    assert_eq!(r.code(), "payment_ref_conflict", "{}", r.text);
    let r = pay(&app, &first.body["id"], "pay-1").await;
    assert_eq!(r.code(), "payment_ref_conflict", "{}", r.text);
    let renew = pay(&app, &first.body["id"], "pay-2").await;
    let again = pay(&app, &first.body["id"], "pay-2").await;
    assert_eq!(
        (renew.status, again.status),
        (StatusCode::CREATED, StatusCode::OK)
    );
    assert_eq!(terms(&again.body).len(), 2);
    assert_eq!(again.body["access_end"], "2028-11-23T00:00:00Z");
    assert_eq!(again.body, renew.body);
    let n = app.call("GET", "/v1/members/n/subscriptions", None).await;
    assert_eq!(n.body["items"], json!([]));
    // A retry after the subscription moved on (renewed, then cancelled) still gets the
    // first answer of its payment, not the subscription as it is now.
    let cancel = app
        .call(
            "POST",
            &format!("/v1/subscriptions/{}/cancel", first.body["id"]),
            Some(json!({"at_period_end": false})),
        )
        .await;
    assert_eq!(cancel.status, StatusCode::OK, "{}", cancel.text);
    assert_ne!(cancel.body["status"], first.body["status"]);
    let late = buy(&app, body.clone()).await;
    assert_eq!(late.status, StatusCode::OK, "{}", late.text);
    assert_eq!(late.body, first.body, "the purchase's first answer");
    let late = pay(&app, &first.body["id"], "pay-2").await;
    assert_eq!(late.status, StatusCode::OK, "{}", late.text);
    assert_eq!(late.body, renew.body, "the renewal's first answer");
    // Also once the member is closed; anything new is refused.
    let closed = app.call("POST", "/v1/members/m/close", None).await;
    assert_eq!(closed.status, StatusCode::OK, "{}", closed.text);
    let late = buy(&app, body).await;
    assert_eq!(late.status, StatusCode::OK, "{}", late.text);
    assert_eq!(late.body, first.body);
    let late = pay(&app, &first.body["id"], "pay-2").await;
    assert_eq!(late.body, renew.body, "{}", late.text);
    let r = buy(
        &app,
        json!({"member_id": "m", "plan": "gold_star", "payment_ref": "pay-9"}),
    )
    .await;
    assert_eq!(r.code(), "member_closed", "{}", r.text);
    let r = pay(&app, &first.body["id"], "pay-10").await;
    assert_eq!(r.code(), "member_closed", "{}", r.text);
}

const POOL: &str = r#"
[[plans]]
id = "plus"
term = "year"
price_minor = 14900
stacking = true

[[plans.partner_rights]]
id = "iqiyi"
partner = "iqiyi"
code_pool = true
"#;

/// 32 purchases at once by one member, then by 32 members, against a pool of 10 codes:
/// exactly 10 succeed each time, no code is handed out twice, and the stacked member's
/// access ends exactly 10 years on.
async fn purchases_race_for_codes(backend: Backend) {
    let Some(app) = TestApp::on(backend).await else {
        return;
    };
    let r = app
        .put_programme(&app.admin, &format!("{HEAD}{POOL}"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let codes: Vec<String> = (0..20).map(|i| format!("C{i:02}")).collect();
    let r = app
        .call(
            "POST",
            "/v1/admin/code-pools/iqiyi",
            Some(json!({"codes": codes[..10]})),
        )
        .await;
    assert_eq!(r.body["available"], 10, "{}", r.text);
    app.add_member("one").await;
    for i in 0..32 {
        app.add_member(&format!("m{i}")).await;
    }
    let app = Arc::new(app);
    let race = |member_of: fn(usize) -> String, prefix: &'static str| {
        let app = app.clone();
        async move {
            let tasks: Vec<_> = (0..32)
                .map(|i| {
                    let app = app.clone();
                    let member = member_of(i);
                    tokio::spawn(async move {
                        buy(&app, json!({"member_id": member, "plan": "plus", "payment_ref": format!("{prefix}{i}")})).await
                    })
                })
                .collect();
            let mut replies = Vec::new();
            for t in tasks {
                replies.push(t.await.unwrap());
            }
            let won: Vec<&Reply> = replies
                .iter()
                .filter(|r| r.status == StatusCode::CREATED)
                .collect();
            let empty = replies
                .iter()
                .filter(|r| r.code() == "partner_codes_exhausted")
                .count();
            assert_eq!(
                (won.len(), empty),
                (10, 22),
                "{:?}",
                replies.iter().map(|r| &r.text).collect::<Vec<_>>()
            );
            replies
        }
    };
    race(|_| "one".to_owned(), "one-").await;
    let v = app.call("GET", "/v1/members/one/subscriptions", None).await;
    let items = v.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", v.text);
    assert_eq!(items[0]["terms"].as_array().unwrap().len(), 10);
    assert_eq!(items[0]["access_end"], "2036-11-23T00:00:00Z");
    let mut given: Vec<String> = items[0]["partner_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["code"].as_str().unwrap().to_owned())
        .collect();
    given.sort();
    assert_eq!(given, codes[..10]);

    let r = app
        .call(
            "POST",
            "/v1/admin/code-pools/iqiyi",
            Some(json!({"codes": codes[10..]})),
        )
        .await;
    assert_eq!(r.body["available"], 10, "{}", r.text);
    let replies = race(|i| format!("m{i}"), "m-").await;
    let second: BTreeSet<String> = replies
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .map(|r| {
            r.body["partner_codes"][0]["code"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(second.into_iter().collect::<Vec<_>>(), codes[10..]);
    let r = app.call("GET", "/v1/admin/code-pools/iqiyi", None).await;
    assert_eq!(
        (r.body["assigned"].as_i64(), r.body["available"].as_i64()),
        (Some(20), Some(0))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn purchases_race_for_codes_sqlite() {
    purchases_race_for_codes(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn purchases_race_for_codes_postgres() {
    purchases_race_for_codes(Backend::Postgres).await;
}

/// Bad plan requests get their codes and record nothing.
#[tokio::test]
async fn bad_plan_requests() {
    let app = app_with(PRIME, &["m"]).await;
    let cases: &[(&str, &str, Option<Value>, &str)] = &[
        (
            "POST",
            "/v1/subscriptions",
            Some(json!({"member_id": "m", "plan": "gold", "payment_ref": "x"})),
            "unknown_plan",
        ),
        (
            "POST",
            "/v1/subscriptions",
            Some(json!({"member_id": "m", "plan": "prime_monthly"})),
            "invalid_field",
        ),
        (
            "POST",
            "/v1/subscriptions",
            Some(
                json!({"member_id": "m", "plan": "prime_monthly", "payment_ref": "x", "trial": true}),
            ),
            "invalid_field",
        ),
        (
            "POST",
            "/v1/subscriptions",
            Some(
                json!({"member_id": "m", "plan": "prime_monthly", "payment_ref": "x", "gift_to": "m"}),
            ),
            "invalid_field",
        ),
        (
            "POST",
            "/v1/subscriptions",
            Some(
                json!({"member_id": "m", "plan": "prime_monthly", "payment_ref": "x", "amount_minor": -1}),
            ),
            "invalid_field",
        ),
        (
            "POST",
            "/v1/subscriptions",
            Some(json!({"member_id": "ghost", "plan": "prime_monthly", "payment_ref": "x"})),
            "member_not_found",
        ),
        (
            "POST",
            "/v1/subscriptions",
            Some(
                json!({"member_id": "m", "plan": "prime_monthly", "payment_ref": "x", "colour": 1}),
            ),
            "invalid_request",
        ),
        (
            "GET",
            "/v1/subscriptions/999",
            None,
            "subscription_not_found",
        ),
        ("GET", "/v1/subscriptions/abc", None, "invalid_field"),
        (
            "POST",
            "/v1/subscriptions/999/cancel",
            Some(json!({})),
            "subscription_not_found",
        ),
        (
            "POST",
            "/v1/subscriptions/999/payments",
            Some(json!({"payment_ref": "y"})),
            "subscription_not_found",
        ),
        (
            "GET",
            "/v1/members/m/entitlements?at=yesterday",
            None,
            "invalid_query",
        ),
        ("GET", "/v1/renewals?state=maybe", None, "invalid_query"),
        (
            "POST",
            "/v1/admin/code-pools/x",
            Some(json!({"codes": []})),
            "too_many_items",
        ),
    ];
    for (method, path, body, code) in cases {
        let r = app.call(method, path, body.clone()).await;
        assert_eq!(r.code(), *code, "{method} {path}: {}", r.text);
        assert!(r.status.is_client_error(), "{method} {path}: {}", r.status);
    }
    let r = app.call("GET", "/v1/members/m/subscriptions", None).await;
    assert_eq!(r.body["items"], json!([]));
}

/// A member's subscriptions come a page at a time, newest first, with a cursor of their
/// own: nothing is cut at a fixed count.
#[tokio::test]
async fn member_subscriptions_come_a_page_at_a_time() {
    let app = app_with(PRIME, &["gifter", "f1", "f2", "f3"]).await;
    for (i, friend) in ["f1", "f2", "f3"].iter().enumerate() {
        let r = buy(
            &app,
            json!({"member_id": "gifter", "plan": "prime_yearly", "payment_ref": format!("p-{i}"), "gift_to": friend}),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            None => "/v1/members/gifter/subscriptions?limit=2".to_owned(),
            Some(c) => format!("/v1/members/gifter/subscriptions?limit=2&cursor={c}"),
        };
        let r = app.call("GET", &path, None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        for s in r.body["items"].as_array().unwrap() {
            seen.push(s["member_id"].as_str().unwrap().to_owned());
        }
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ["f3", "f2", "f1"]);
    let all = app
        .call("GET", "/v1/members/gifter/subscriptions", None)
        .await;
    assert_eq!(all.body["items"].as_array().unwrap().len(), 3);
    assert_eq!(all.body["next_cursor"], Value::Null);
    // A cursor of another listing, and a page size out of range, are refused.
    let ledger = app
        .call("GET", "/v1/members/gifter/ledger?limit=1", None)
        .await;
    assert_eq!(ledger.status, StatusCode::OK, "{}", ledger.text);
    for (query, code) in [
        ("limit=0", "page_size_out_of_range"),
        ("limit=201", "page_size_out_of_range"),
        ("cursor=Yzo0", "invalid_cursor"),
    ] {
        let r = app
            .call(
                "GET",
                &format!("/v1/members/gifter/subscriptions?{query}"),
                None,
            )
            .await;
        assert_eq!(r.code(), code, "{query}: {}", r.text);
    }
}
