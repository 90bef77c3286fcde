//! The seven presets of PRODUCT.md §3 (`presets/*.toml`) through the API, with the manual
//! clock: one test per system, each step labelled with the fact it checks, and every window
//! the preset states (trial, refund, grace, return window, expiry, inactivity, retention,
//! thresholds, the 12-month and calendar-year windows) checked on both sides of its
//! boundary. The clock starts at `START` (2026-11-23T00:00:00Z: 08:00 in Shanghai, 16:00 on
//! 22 November in Los Angeles) and only moves forward, so each test is one timeline.

use crate::helpers::*;
use axum::http::StatusCode;
use serde_json::{json, Value};

const JD_PLUS: &str = include_str!("../../../../presets/jd-plus.toml");
const TAOBAO_88VIP: &str = include_str!("../../../../presets/taobao-88vip.toml");
const COSTCO: &str = include_str!("../../../../presets/costco.toml");
const AMAZON_PRIME: &str = include_str!("../../../../presets/amazon-prime.toml");
const SEPHORA: &str = include_str!("../../../../presets/sephora.toml");
const STARBUCKS: &str = include_str!("../../../../presets/starbucks.toml");
const YUNJI: &str = include_str!("../../../../presets/yunji.toml");

// ---- helpers ----

/// A fresh app running `source` as its programme, with these members.
async fn preset_app(source: &str, members: &[&str]) -> TestApp {
    let app = TestApp::sqlite().await;
    let r = app.put_programme(&app.admin, source).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "the preset is accepted: {}",
        r.text
    );
    for m in members {
        app.add_member(m).await;
    }
    app
}

/// A sign-up by the storefront with a body of its own (attributes, a referral code).
async fn join(app: &TestApp, body: Value) -> Value {
    let r = app
        .call_as(&app.storefront, "POST", "/v1/members", Some(body))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.body
}

async fn buy(app: &TestApp, member: &str, plan: &str, payment_ref: &str) -> Reply {
    app.call_as(
        &app.storefront,
        "POST",
        "/v1/subscriptions",
        Some(json!({"member_id": member, "plan": plan, "payment_ref": payment_ref})),
    )
    .await
}

async fn buy_ok(app: &TestApp, member: &str, plan: &str, payment_ref: &str) -> Value {
    let r = buy(app, member, plan, payment_ref).await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{member} buys {plan}: {}",
        r.text
    );
    r.body
}

async fn trial(app: &TestApp, member: &str, plan: &str) -> Reply {
    app.call_as(
        &app.storefront,
        "POST",
        "/v1/subscriptions",
        Some(json!({"member_id": member, "plan": plan, "trial": true})),
    )
    .await
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

async fn sub(app: &TestApp, id: &Value) -> Value {
    let r = app
        .call("GET", &format!("/v1/subscriptions/{id}"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body
}

/// Refunds a subscription; the answer's `calculation`.
async fn refund(app: &TestApp, id: &Value) -> Value {
    let r = app
        .call("POST", &format!("/v1/subscriptions/{id}/refunds"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["subscription"]["status"], "refunded", "{}", r.text);
    r.body["calculation"].clone()
}

/// (start, end, amount) of each term.
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

/// The plans a member holds at `at`.
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

/// The plan as this member may buy it now (`GET /v1/members/{id}/plans`).
async fn offer(app: &TestApp, member: &str, plan: &str) -> Value {
    let r = app
        .call("GET", &format!("/v1/members/{member}/plans"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["plan"] == plan)
        .unwrap_or_else(|| panic!("no offer of {plan}: {}", r.text))
        .clone()
}

/// An order of one line of `cents`, paid at `at`, without shipping.
async fn order(app: &TestApp, member: &str, id: &str, at: &str, cents: i64) {
    let e = json!({"id": id, "type": "order.paid", "member_id": member, "occurred_at": at,
        "order_id": id,
        "lines": [{"sku": "GOODS", "category": "general", "quantity": 1, "unit_price_minor": cents}],
        "shipping_minor": 0, "total_minor": cents});
    let r = app.call("POST", "/v1/events", Some(e)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

async fn activity(app: &TestApp, member: &str, id: &str, at: &str, kind: &str) {
    let e = json!({"id": id, "type": "activity", "member_id": member, "occurred_at": at,
        "activity": kind});
    let r = app.call("POST", "/v1/events", Some(e)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

/// The member's points view (`balances`, `next_expiry`, `inactive_at`, ...).
async fn points_view(app: &TestApp, member: &str) -> Value {
    let r = app
        .call("GET", &format!("/v1/members/{member}/points"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body
}

/// (pending, available) points.
async fn points(app: &TestApp, member: &str) -> (i64, i64) {
    let v = points_view(app, member).await;
    (
        v["balances"]["pending"].as_i64().unwrap(),
        v["balances"]["available"].as_i64().unwrap(),
    )
}

async fn redeem_reward(app: &TestApp, member: &str, id: &str, reward: &str) -> Reply {
    app.call(
        "POST",
        &format!("/v1/members/{member}/points/redemptions"),
        Some(json!({"id": id, "reward": reward})),
    )
    .await
}

async fn tier(app: &TestApp, member: &str) -> Value {
    let r = app
        .call("GET", &format!("/v1/members/{member}/tier"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body
}

/// A quote of `lines` for `member` (or a shopper who is not one).
async fn quote(
    app: &TestApp,
    member: Option<&str>,
    lines: &Value,
    shipping_minor: i64,
    points: i64,
) -> Value {
    let body = json!({"member_id": member, "lines": lines, "shipping_minor": shipping_minor,
        "points": points});
    let r = app
        .call_as(&app.storefront, "POST", "/v1/quotes", Some(body))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body
}

/// A quote of `lines` for `member` with these of their coupons.
async fn quote_coupons(
    app: &TestApp,
    member: &str,
    lines: &Value,
    shipping_minor: i64,
    coupons: &[i64],
) -> Value {
    let body = json!({"member_id": member, "lines": lines, "shipping_minor": shipping_minor,
        "coupons": coupons});
    let r = app
        .call_as(&app.storefront, "POST", "/v1/quotes", Some(body))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body
}

/// The benefits a member holds now, as the member view lists them.
async fn benefits(app: &TestApp, member: &str) -> Vec<Value> {
    let r = app
        .call("GET", &format!("/v1/members/{member}"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["benefits"].as_array().unwrap().clone()
}

fn benefit<'a>(list: &'a [Value], id: &str) -> &'a Value {
    list.iter()
        .find(|b| b["benefit"] == id)
        .unwrap_or_else(|| panic!("benefit {id} not held: {list:?}"))
}

// ---- JD PLUS + 京享值 ----

/// JD PLUS + 京享值 (CNY, Asia/Shanghai): PLUS 149 元 a year; a 30-day trial for eligible
/// users; free shipping, member prices, free return pickup, priority service; the iQIYI
/// joint card; 京豆 on purchases, 100 京豆 = 1 元; 京享值 over the last 12 months, settled
/// monthly. Preset's choices checked too: the 7-day full refund, the 7-day return window,
/// expiry at the end of the next year, the redemption minimum and share.
#[tokio::test]
async fn jd_plus_facts_hold() {
    let app = preset_app(
        JD_PLUS,
        &[
            "plain", "payer", "late", "keeper", "joint", "jing", "s2000", "s1999", "s1990",
        ],
    )
    .await;
    join(
        &app,
        json!({"member_id": "eligible", "attributes": {"plus_trial_eligible": true}}),
    )
    .await;

    // PLUS: 149 元/year; trial 30 days for eligible users (the shop flags them).
    let o = offer(&app, "plain", "plus").await;
    assert_eq!(
        (
            o["price_minor"].as_i64(),
            o["trial_days"].as_i64(),
            o["trial_available"].as_bool()
        ),
        (Some(14900), Some(30), Some(false)),
        "PLUS 149 元; no trial for a member the shop did not flag: {o}"
    );
    assert_eq!(
        offer(&app, "eligible", "plus").await["trial_available"],
        true,
        "trial for an eligible member"
    );
    let r = trial(&app, "plain", "plus").await;
    assert_eq!(
        r.code(),
        "trial_not_eligible",
        "trial: not eligible: {}",
        r.text
    );
    let r = trial(&app, "eligible", "plus").await;
    assert_eq!(r.status, StatusCode::CREATED, "trial: eligible: {}", r.text);
    assert_eq!(r.body["status"], "trialing");
    // 30 days from 2026-11-23 08:00 Shanghai.
    assert_eq!(
        r.body["access_end"], "2026-12-23T00:00:00Z",
        "trial 30 days"
    );
    assert_eq!(
        (
            &r.body["terms"][0]["kind"],
            &r.body["terms"][0]["amount_minor"]
        ),
        (&json!("trial"), &json!(0))
    );
    let trial_sub = r.body["id"].clone();
    let r = trial(&app, "eligible", "plus").await;
    assert_eq!(
        r.code(),
        "plan_already_held",
        "one trial at a time: {}",
        r.text
    );
    // The trial's end is exclusive: held a second before, not at the instant.
    assert_eq!(
        held(&app, "eligible", "2026-12-22T23:59:59Z").await,
        ["plus"],
        "trial 30 days: last second inside"
    );
    assert!(
        held(&app, "eligible", "2026-12-23T00:00:00Z")
            .await
            .is_empty(),
        "trial 30 days: over at start + 30 days"
    );

    // PLUS: 149 元 a year, a year from the payment (08:00 Shanghai to 08:00 a year on).
    let mut plus_subs = Vec::new();
    for member in ["payer", "late", "keeper"] {
        let v = buy_ok(&app, member, "plus", &format!("p-{member}")).await;
        assert_eq!(
            terms(&v),
            [(START.into(), "2027-11-23T00:00:00Z".into(), 14900)],
            "PLUS 149 元/year: {member}"
        );
        assert_eq!(v["terms"][0]["price_basis"], "list");
        plus_subs.push(v["id"].clone());
    }
    let (payer, late) = (&plus_subs[0], &plus_subs[1]);

    // Joint card with iQIYI: a PLUS year with an iQIYI code from the pool, 198 元.
    let r = buy(&app, "joint", "plus_iqiyi", "p-joint-0").await;
    assert_eq!(
        r.code(),
        "partner_codes_exhausted",
        "joint card: no code, no sale: {}",
        r.text
    );
    let r = app
        .call(
            "POST",
            "/v1/admin/code-pools/iqiyi_vip",
            Some(json!({"codes": ["IQ-0001"]})),
        )
        .await;
    assert_eq!(r.body["available"], 1, "{}", r.text);
    let joint = buy_ok(&app, "joint", "plus_iqiyi", "p-joint-1").await;
    assert_eq!(joint["terms"][0]["amount_minor"], 19800, "joint card price");
    assert_eq!(
        (
            &joint["partner_codes"][0]["right"],
            &joint["partner_codes"][0]["code"]
        ),
        (&json!("iqiyi_vip"), &json!("IQ-0001")),
        "joint card: the iQIYI code: {joint}"
    );
    let r = app
        .call("GET", "/v1/members/joint/entitlements", None)
        .await;
    assert_eq!(r.body["plans"][0]["plan"], "plus_iqiyi", "{}", r.text);
    assert_eq!(
        r.body["plans"][0]["rights"],
        json!([{"right": "iqiyi_vip", "partner": "iqiyi"}]),
        "joint card: iQIYI checks the right: {}",
        r.text
    );
    let iqiyi = app.engine.create_partner_key("iqiyi").await.unwrap();
    let r = app
        .call_as(
            &iqiyi,
            "POST",
            "/v1/partner/redemptions",
            Some(json!({"id": "iq-use-1", "member_id": "joint", "right": "iqiyi_vip"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["cost_minor"], 5000);

    // 京豆: 1 per 1.00 元 paid, rounded down per order; pending for the 7-day return
    // window. 京享值: 1 per 5.00 元, 10 per review.
    order(&app, "jing", "o-jing", START, 12_345).await; // 123.45 元: 123 京豆
    order(&app, "keeper", "o-keeper", START, 200_000).await; // 2,000 京豆
    order(&app, "s2000", "o-s2000", START, 1_000_000).await; // 10,000 元: 2,000 京享值
    order(&app, "s1999", "o-s1999", START, 999_500).await; // 9,995 元: 1,999
    order(&app, "s1990", "o-s1990", START, 995_000).await; // 9,950 元: 1,990
    activity(&app, "s1990", "rv-s1990", START, "review").await; // + 10 = 2,000
    assert_eq!(points(&app, "jing").await, (123, 0), "京豆: floor, pending");
    assert_eq!(points(&app, "keeper").await, (2000, 0));
    assert_eq!(
        points_view(&app, "jing").await["next_expiry"],
        json!({"at": "2027-12-31T16:00:00Z", "points": 123}),
        "京豆 earned in 2026 expire at 1 January 2028, Shanghai"
    );
    for (member, score) in [("s2000", 2000), ("s1999", 1999), ("s1990", 2000)] {
        let v = tier(&app, member).await;
        assert_eq!(
            (v["tier"].as_str(), v["score"].as_i64()),
            (Some("registered"), Some(score)),
            "京享值 counts at once, the tier waits for the settlement: {member}: {v}"
        );
        assert_eq!(
            v["next_evaluation"], "2026-11-30T16:00:00Z",
            "settled on the 1st, 00:00 Shanghai"
        );
    }

    // PLUS benefits at checkout: the member price, free shipping (also in the trial and
    // on the joint card); none for a member without PLUS.
    let cart = json!([{"sku": "JD-EXAMPLE-SKU", "category": "self_operated", "quantity": 1,
        "unit_price_minor": 9900}]);
    let q = quote(&app, Some("keeper"), &cart, 600, 0).await;
    assert_eq!(
        q["lines"][0]["adjustments"],
        json!([{"step": "member_price", "source": "benefit:plus_prices", "amount_minor": 1000}]),
        "member prices: 99 → 89 元: {q}"
    );
    assert_eq!(
        (
            &q["shipping_minor"],
            &q["shipping_waived_by"],
            &q["total_minor"]
        ),
        (
            &json!(0),
            &json!("benefit:plus_free_shipping"),
            &json!(8900)
        ),
        "free shipping: {q}"
    );
    assert_eq!(
        q["benefits_used"],
        json!([{"benefit": "plus_free_shipping", "cost_minor": 600}, {"benefit": "plus_prices", "cost_minor": 0}])
    );
    let q = quote(&app, Some("plain"), &cart, 600, 0).await;
    assert_eq!(
        (
            &q["lines"][0]["net_minor"],
            &q["shipping_minor"],
            &q["total_minor"]
        ),
        (&json!(9900), &json!(600), &json!(10500)),
        "no PLUS, no benefit: {q}"
    );
    for member in ["eligible", "joint"] {
        let q = quote(&app, Some(member), &cart, 600, 0).await;
        assert_eq!(
            (&q["shipping_minor"], &q["total_minor"]),
            (&json!(0), &json!(8900)),
            "PLUS benefits for {member}: {q}"
        );
    }
    // The older form's 6 元 shipping coupon (declared; its monthly grant is not live),
    // valid 31 days (preset's choice). A PLUS holder is not made to spend one.
    let mut coupon_of = Vec::new();
    for member in ["plain", "keeper"] {
        let r = app
            .call(
                "POST",
                &format!("/v1/members/{member}/coupons"),
                Some(json!({"id": format!("ship-{member}"), "template": "shipping_coupon_6"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        assert_eq!(
            r.body["items"][0]["valid_until"], "2026-12-24T00:00:00Z",
            "31 days from 2026-11-23 08:00 Shanghai"
        );
        coupon_of.push(r.body["items"][0]["coupon"].as_i64().unwrap());
    }
    let q = quote_coupons(&app, "keeper", &cart, 600, &[coupon_of[1]]).await;
    assert_eq!(
        (&q["shipping_waived_by"], &q["coupons_refused"]),
        (
            &json!("benefit:plus_free_shipping"),
            &json!([{"coupon": coupon_of[1], "reason": "not_needed"}])
        ),
        "free shipping first; the coupon is kept: {q}"
    );
    // Free return pickup (1,000 a month stands in for "no limit") and priority service.
    let held_benefits = benefits(&app, "keeper").await;
    let pickup = benefit(&held_benefits, "plus_return_pickup");
    assert_eq!(
        (
            &pickup["kind"],
            &pickup["per_month"],
            &pickup["left_this_month"]
        ),
        (&json!("free_returns"), &json!(1000), &json!(1000)),
        "free return pickup"
    );
    assert_eq!(
        benefit(&held_benefits, "plus_priority_service")["kind"],
        "priority_service",
        "priority service"
    );
    assert!(
        benefits(&app, "plain").await.is_empty(),
        "no PLUS benefits without PLUS"
    );

    // Refund (preset's choice): in full within 7 days of the payment if no benefit was
    // used, else nothing. The window ends at paid_at + 7 days, exclusive.
    app.set_clock("2026-11-29T23:59:59Z").await;
    assert_eq!(
        points(&app, "jing").await,
        (123, 0),
        "return window 7 days: still pending a second before"
    );
    let c = refund(&app, payer).await;
    assert_eq!(
        (&c["refund_minor"], &c["terms"][0]["rule"]),
        (&json!(14900), &json!("full_within_days")),
        "refund within 7 days: {c}"
    );
    let c = refund(&app, &joint["id"]).await;
    assert_eq!(
        (&c["refund_minor"], &c["terms"][0]["rule"]),
        (&json!(0), &json!("none")),
        "refund within 7 days but the iQIYI right was used: {c}"
    );

    app.set_clock("2026-11-30T00:00:00Z").await;
    assert_eq!(
        points(&app, "jing").await,
        (0, 123),
        "return window 7 days: available at occurred_at + 7 × 24 h"
    );
    assert_eq!(points(&app, "keeper").await, (0, 2000));
    let c = refund(&app, late).await;
    assert_eq!(
        (&c["refund_minor"], &c["terms"][0]["rule"]),
        (&json!(0), &json!("none")),
        "refund at exactly 7 days: none: {c}"
    );

    // 100 京豆 = 1 元 at checkout; at least 1,000 per use, at most half of the goods.
    // (goods, 京豆 asked, used, value, total)
    let cases: &[(i64, i64, i64, i64, i64, &str)] = &[
        (10_000, 1000, 1000, 1000, 9000, "1,000 京豆 = 10 元"),
        // 999 rounds down to whole steps of 100: 900, under the minimum.
        (10_000, 999, 0, 0, 10_000, "under the 1,000 minimum"),
        // Half of 30 元 is 15 元: 1,500 京豆.
        (3000, 2000, 1500, 1500, 1500, "at most half of the goods"),
    ];
    for (goods, asked, used, value, total, fact) in cases {
        let cart = json!([{"sku": "X", "category": "general", "quantity": 1,
            "unit_price_minor": goods}]);
        let q = quote(&app, Some("keeper"), &cart, 0, *asked).await;
        assert_eq!(
            (
                q["points_used"].as_i64(),
                q["points_value_minor"].as_i64(),
                q["total_minor"].as_i64()
            ),
            (Some(*used), Some(*value), Some(*total)),
            "京豆 at checkout: {fact}: {q}"
        );
    }

    // 京享值 settled monthly: nobody moves before the 1st, 00:00 Shanghai; at it, 2,000
    // (spend, or spend and a review) reaches silver, 1,999 does not.
    app.set_clock("2026-11-30T15:59:59Z").await;
    for member in ["s2000", "s1999", "s1990"] {
        assert_eq!(
            tier(&app, member).await["tier"],
            "registered",
            "settled monthly: not before the settlement: {member}"
        );
    }
    app.set_clock("2026-11-30T16:00:00Z").await;
    for (member, expected) in [
        ("s2000", "silver"),
        ("s1999", "registered"),
        ("s1990", "silver"),
    ] {
        assert_eq!(
            tier(&app, member).await["tier"],
            expected,
            "settled monthly, threshold 2,000 inclusive: {member}"
        );
    }

    // The trial ended unpaid: expired, and it is not given twice.
    app.set_clock("2026-12-23T00:00:00Z").await;
    assert_eq!(sub(&app, &trial_sub).await["status"], "expired");
    let r = trial(&app, "eligible", "plus").await;
    assert_eq!(
        r.code(),
        "trial_already_used",
        "one trial per member: {}",
        r.text
    );

    // The shipping coupon waives a non-member's shipping until issue + 31 days, exclusive.
    app.set_clock("2026-12-23T23:59:59Z").await;
    let q = quote_coupons(&app, "plain", &cart, 600, &[coupon_of[0]]).await;
    assert_eq!(
        (&q["shipping_minor"], &q["shipping_waived_by"]),
        (&json!(0), &json!(format!("coupon:{}", coupon_of[0]))),
        "shipping coupon: the last second of its 31 days: {q}"
    );
    app.set_clock("2026-12-24T00:00:00Z").await;
    let q = quote_coupons(&app, "plain", &cart, 600, &[coupon_of[0]]).await;
    assert_eq!(
        (&q["shipping_minor"], &q["coupons_refused"]),
        (
            &json!(600),
            &json!([{"coupon": coupon_of[0], "reason": "expired"}])
        ),
        "shipping coupon: expired at issue + 31 days: {q}"
    );

    // 京享值 over the last 12 months: the order of 2026-11-23 08:00 Shanghai counts up to
    // that instant a year on (inclusive), not a second after; the tier follows at the next
    // settlement only.
    app.set_clock("2027-10-31T16:00:00Z").await;
    assert_eq!(
        tier(&app, "s2000").await["tier"],
        "silver",
        "the 1 November settlement still counts November 2026"
    );
    app.set_clock("2027-11-23T00:00:00Z").await;
    assert_eq!(
        tier(&app, "s2000").await["score"],
        2000,
        "12-month window: the window's first instant counts"
    );
    app.set_clock("2027-11-23T00:00:01Z").await;
    let v = tier(&app, "s2000").await;
    assert_eq!(
        (v["score"].as_i64(), v["tier"].as_str()),
        (Some(0), Some("silver")),
        "12-month window: out a second later; the tier waits for the settlement: {v}"
    );
    app.set_clock("2027-11-30T16:00:00Z").await;
    assert_eq!(
        tier(&app, "s2000").await["tier"],
        "registered",
        "settled monthly: down at the 1 December settlement"
    );

    // 京豆 expire at the end of the year after the year of earning (Shanghai time).
    app.set_clock("2027-12-31T15:59:59Z").await;
    assert_eq!(
        points(&app, "jing").await,
        (0, 123),
        "京豆: last second of 2027"
    );
    app.set_clock("2027-12-31T16:00:00Z").await;
    assert_eq!(
        points(&app, "jing").await,
        (0, 0),
        "京豆: expired 1 January 2028"
    );
    app.assert_ledger_balanced().await;
}

// ---- Taobao 88VIP + 淘气值 ----

/// Taobao 88VIP + 淘气值 (CNY, Asia/Shanghai): 88 元 a year at 淘气值 ≥ 1,000, else 888 元,
/// judged at purchase and at renewal on the last 12 months; 5% off Tmall Supermarket and
/// listed brands; video, music and food-delivery partner memberships; 5 free return
/// pickups a month; 淘气值 from purchases and interaction, capped per order, day and month.
#[tokio::test]
async fn taobao_88vip_facts_hold() {
    let app = preset_app(TAOBAO_88VIP, &["high", "nearly", "social", "plain"]).await;

    // 淘气值 from purchases (1 per 5.00 元), capped at 100 an order, 200 a day and 1,000 a
    // month (preset's caps). (occurred at, goods in fen, 淘气值 after, fact)
    let steps: &[(&str, i64, i64, &str)] = &[
        (
            "2026-11-18T10:00:00+08:00",
            60_000,
            100,
            "600 元 is 120: the order cap, 100",
        ),
        ("2026-11-18T11:00:00+08:00", 60_000, 200, "a second order"),
        (
            "2026-11-18T12:00:00+08:00",
            60_000,
            200,
            "the day's cap, 200",
        ),
        ("2026-11-19T10:00:00+08:00", 60_000, 300, "a new day"),
        ("2026-11-19T11:00:00+08:00", 60_000, 400, ""),
        ("2026-11-20T10:00:00+08:00", 60_000, 500, ""),
        ("2026-11-20T11:00:00+08:00", 60_000, 600, ""),
        ("2026-11-21T10:00:00+08:00", 60_000, 700, ""),
        ("2026-11-21T11:00:00+08:00", 60_000, 800, ""),
        ("2026-11-22T10:00:00+08:00", 60_000, 900, ""),
        ("2026-11-22T11:00:00+08:00", 60_000, 1000, "exactly 1,000"),
        (
            "2026-11-23T07:00:00+08:00",
            60_000,
            1000,
            "the month's cap, 1,000",
        ),
    ];
    for (i, (at, fen, score, fact)) in steps.iter().enumerate() {
        order(&app, "high", &format!("o-high-{i}"), at, *fen).await;
        let v = tier(&app, "high").await;
        assert_eq!(v["score"], *score, "淘气值 caps, step {i} ({fact}): {v}");
    }
    // 999: four days of 200, then 100 and 99 (495 元).
    for (i, (at, fen)) in [
        ("2026-11-18T10:00:00+08:00", 60_000),
        ("2026-11-18T11:00:00+08:00", 60_000),
        ("2026-11-19T10:00:00+08:00", 60_000),
        ("2026-11-19T11:00:00+08:00", 60_000),
        ("2026-11-20T10:00:00+08:00", 60_000),
        ("2026-11-20T11:00:00+08:00", 60_000),
        ("2026-11-21T10:00:00+08:00", 60_000),
        ("2026-11-21T11:00:00+08:00", 60_000),
        ("2026-11-22T10:00:00+08:00", 60_000),
        ("2026-11-22T11:00:00+08:00", 49_500),
    ]
    .iter()
    .enumerate()
    {
        order(&app, "nearly", &format!("o-nearly-{i}"), at, *fen).await;
    }
    assert_eq!(tier(&app, "nearly").await["score"], 999);

    // 淘气值 from interaction (preset's values): review 5, share 2, check-in 1.
    for (i, (kind, score)) in [("review", 5), ("share", 7), ("check_in", 8)]
        .iter()
        .enumerate()
    {
        activity(&app, "social", &format!("act-{i}"), START, kind).await;
        assert_eq!(
            tier(&app, "social").await["score"],
            *score,
            "淘气值 from interaction: {kind}"
        );
    }

    // 88VIP: 88 元 at 淘气值 1,000 (inclusive), 888 元 at 999.
    let cases = [
        ("high", 8800, "rule:taoqizhi_1000"),
        ("nearly", 88800, "list"),
    ];
    for (member, price, basis) in cases {
        let o = offer(&app, member, "vip88").await;
        assert_eq!(
            (o["price_minor"].as_i64(), o["price_basis"].as_str()),
            (Some(price), Some(basis)),
            "88VIP price by 淘气值: {member}: {o}"
        );
        let v = buy_ok(&app, member, "vip88", &format!("p-{member}")).await;
        assert_eq!(
            (
                v["terms"][0]["amount_minor"].as_i64(),
                v["terms"][0]["price_basis"].as_str()
            ),
            (Some(price), Some(basis)),
            "88VIP charged by 淘气值 at purchase: {member}"
        );
        assert_eq!(v["terms"][0]["end"], "2027-11-23T00:00:00Z", "a year");
    }

    // Partner memberships bundled: video, music, food delivery, once a paid year each.
    let r = app.call("GET", "/v1/members/high/entitlements", None).await;
    assert_eq!(
        r.body["plans"][0]["rights"],
        json!([
            {"right": "youku_vip", "partner": "youku"},
            {"right": "netease_music_vip", "partner": "netease_music"},
            {"right": "eleme_svip", "partner": "eleme"}
        ]),
        "partner memberships: {}",
        r.text
    );
    for (partner, right, cost) in [
        ("youku", "youku_vip", 3000),
        ("netease_music", "netease_music_vip", 2000),
        ("eleme", "eleme_svip", 2000),
    ] {
        let key = app.engine.create_partner_key(partner).await.unwrap();
        let use_once =
            |id: &str, member: &str| json!({"id": id, "member_id": member, "right": right});
        let r = app
            .call_as(
                &key,
                "POST",
                "/v1/partner/redemptions",
                Some(use_once(&format!("{partner}-1"), "high")),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{partner}: {}", r.text);
        assert_eq!(
            (r.body["uses_left"].as_i64(), r.body["cost_minor"].as_i64()),
            (Some(0), Some(cost)),
            "{partner}: {}",
            r.text
        );
        let r = app
            .call_as(
                &key,
                "POST",
                "/v1/partner/redemptions",
                Some(use_once(&format!("{partner}-2"), "high")),
            )
            .await;
        assert_eq!(
            r.code(),
            "partner_right_used_up",
            "{partner}: once a year: {}",
            r.text
        );
        let r = app
            .call_as(
                &key,
                "POST",
                "/v1/partner/redemptions",
                Some(use_once(&format!("{partner}-3"), "plain")),
            )
            .await;
        assert_eq!(r.code(), "not_entitled", "{partner}: not without 88VIP");
    }

    // 5% off Tmall Supermarket (by category) and listed brands (by tag), rounded down per
    // line; nothing off other goods, nothing for a member without 88VIP.
    let cart = json!([
        {"sku": "MILK", "category": "tmall_supermarket", "quantity": 1, "unit_price_minor": 1999},
        {"sku": "LIPSTICK", "category": "beauty", "quantity": 2, "unit_price_minor": 10_000, "tags": ["88vip_brand"]},
        {"sku": "NOVEL", "category": "books", "quantity": 1, "unit_price_minor": 5000}
    ]);
    let q = quote(&app, Some("high"), &cart, 0, 0).await;
    // 19.99 元 × 5% = 0.9995: 0.99 off; 200 元 × 5% = 10 元 off; the novel untouched.
    let nets: Vec<i64> = q["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["net_minor"].as_i64().unwrap())
        .collect();
    assert_eq!(nets, [1900, 19_000, 5000], "5% off: {q}");
    assert_eq!(
        q["lines"][0]["adjustments"],
        json!([{"step": "percent_off", "source": "benefit:vip88_five_percent_off", "amount_minor": 99}])
    );
    assert_eq!(q["total_minor"], 25_900);
    let q = quote(&app, Some("plain"), &cart, 0, 0).await;
    assert_eq!(q["total_minor"], 26_999, "no 88VIP, no discount: {q}");

    // 5 free return pickups per month.
    let held_benefits = benefits(&app, "high").await;
    let pickups = benefit(&held_benefits, "vip88_return_pickups");
    assert_eq!(
        (&pickups["per_month"], &pickups["left_this_month"]),
        (&json!(5), &json!(5)),
        "5 free return pickups per month"
    );

    // Tiers (preset's choice): super_member at 1,000, settled on the 8th, 00:00 Shanghai.
    app.set_clock("2026-12-07T15:59:59Z").await;
    assert_eq!(tier(&app, "high").await["tier"], "member");
    app.set_clock("2026-12-07T16:00:00Z").await;
    assert_eq!(tier(&app, "high").await["tier"], "super_member");
    assert_eq!(tier(&app, "nearly").await["tier"], "member");

    // The renewal is priced at its notice, 7 days before the end, on the 淘气值 of the 12
    // months before it: 1,000 still counts then.
    app.set_clock("2027-11-16T00:00:00Z").await;
    let r = app.call("GET", "/v1/renewals?state=open", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    for (member, amount) in [("high", 8800), ("nearly", 88800)] {
        let due = r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["member_id"] == member)
            .unwrap_or_else(|| panic!("no renewal of {member}: {}", r.text))
            .clone();
        assert_eq!(
            (due["amount_minor"].as_i64(), due["due_at"].as_str()),
            (Some(amount), Some("2027-11-16T00:00:00Z")),
            "88VIP renewal priced by 淘气值: {member}"
        );
    }
    // A year after those orders the 淘气值 has left its 12-month window: 888 元 again.
    app.set_clock("2027-11-23T00:00:01Z").await;
    assert_eq!(tier(&app, "high").await["score"], 0);
    let o = offer(&app, "high", "vip88").await;
    assert_eq!(
        (o["price_minor"].as_i64(), o["price_basis"].as_str()),
        (Some(88800), Some("list")),
        "淘气值 of the last 12 months only: {o}"
    );
}

// ---- Costco ----

/// Costco (USD, America/Los_Angeles): Gold Star $65 and Executive $130 a year;
/// members-only buying; the fee refundable in full at any time; a renewal within 2 months
/// after expiry back-dated (no access meanwhile), a later one starting at the payment.
#[tokio::test]
async fn costco_facts_hold() {
    let app = preset_app(
        COSTCO,
        &[
            "plain",
            "gold",
            "exec",
            "grace_in",
            "grace_out",
            "refund_late",
        ],
    )
    .await;

    // Gold Star $65/year; Executive $130/year.
    assert_eq!(offer(&app, "plain", "gold_star").await["price_minor"], 6500);
    assert_eq!(
        offer(&app, "plain", "executive").await["price_minor"],
        13000
    );
    // 2026-11-22 16:00 Los Angeles, a year on.
    let gold = buy_ok(&app, "gold", "gold_star", "p-gold").await;
    assert_eq!(
        terms(&gold),
        [(START.into(), "2027-11-23T00:00:00Z".into(), 6500)],
        "Gold Star $65/year"
    );
    let exec = buy_ok(&app, "exec", "executive", "p-exec").await;
    assert_eq!(
        terms(&exec),
        [(START.into(), "2027-11-23T00:00:00Z".into(), 13000)],
        "Executive $130/year"
    );
    let grace_in = buy_ok(&app, "grace_in", "gold_star", "p-in-1").await;
    let grace_out = buy_ok(&app, "grace_out", "gold_star", "p-out-1").await;
    let refund_late = buy_ok(&app, "refund_late", "gold_star", "p-late-1").await;

    // Members-only buying: a line tagged `members_only` only for Gold Star or Executive.
    let cart = json!([
        {"sku": "KS-1", "category": "grocery", "quantity": 1, "unit_price_minor": 10_000, "tags": ["members_only"]},
        {"sku": "BAG", "category": "supplies", "quantity": 1, "unit_price_minor": 500}
    ]);
    for who in [None, Some("plain")] {
        let q = quote(&app, who, &cart, 0, 0).await;
        assert_eq!(
            q["lines"][0]["refused"], "members only: needs `members_only_buying`",
            "members-only buying: {who:?}: {q}"
        );
        assert_eq!(
            (&q["lines"][1]["refused"], &q["payable"], &q["total_minor"]),
            (&Value::Null, &json!(false), &json!(500)),
            "{who:?}: {q}"
        );
        let upsell: Vec<&str> = q["upsell"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["plan"].as_str().unwrap())
            .collect();
        assert_eq!(upsell, ["gold_star", "executive"]);
        assert_eq!(q["upsell"][0]["unlocks"], json!(["KS-1"]));
    }
    for member in ["gold", "exec"] {
        let q = quote(&app, Some(member), &cart, 0, 0).await;
        assert_eq!(
            (&q["lines"][0]["refused"], &q["payable"], &q["total_minor"]),
            (&Value::Null, &json!(true), &json!(10_500)),
            "members-only buying: {member} may buy: {q}"
        );
    }

    // Refundable in full at any time: the day after, and after a whole year, in the grace.
    app.set_clock("2026-11-24T00:00:00Z").await;
    let c = refund(&app, &exec["id"]).await;
    assert_eq!(
        (&c["refund_minor"], &c["terms"][0]["rule"]),
        (&json!(13000), &json!("full")),
        "Executive fee back in full: {c}"
    );

    app.set_clock("2027-11-22T23:59:59Z").await;
    let v = sub(&app, &grace_in["id"]).await;
    assert_eq!(
        (v["status"].as_str(), v["access"].as_bool()),
        (Some("active"), Some(true)),
        "the last second of the year"
    );

    app.set_clock("2027-11-23T00:00:00Z").await;
    let v = sub(&app, &grace_in["id"]).await;
    assert_eq!(
        (
            v["status"].as_str(),
            v["access"].as_bool(),
            v["grace_until"].as_str()
        ),
        (Some("grace"), Some(false), Some("2028-01-23T00:00:00Z")),
        "expired: a 2-month grace without access: {v}"
    );
    assert!(held(&app, "grace_in", "2027-11-23T00:00:00Z")
        .await
        .is_empty());
    let q = quote(&app, Some("grace_in"), &cart, 0, 0).await;
    assert_eq!(
        q["payable"], false,
        "members-only goods not sold in the grace: {q}"
    );
    let c = refund(&app, &refund_late["id"]).await;
    assert_eq!(
        (&c["refund_minor"], &c["terms"][0]["rule"]),
        (&json!(6500), &json!("full")),
        "Gold Star fee back in full after a whole year: {c}"
    );

    // Within 2 months of expiry (the last second of the grace): back-dated to the old end.
    app.set_clock("2028-01-22T23:59:59Z").await;
    let r = pay(&app, &grace_in["id"], "p-in-2").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["status"], "active");
    assert_eq!(
        terms(&r.body)[1],
        (
            "2027-11-23T00:00:00Z".into(),
            "2028-11-23T00:00:00Z".into(),
            6500
        ),
        "renewal within 2 months is back-dated: {}",
        r.text
    );
    assert!(
        r.body["history"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["cause"] == "renewed_in_grace"),
        "{}",
        r.text
    );
    assert_eq!(
        held(&app, "grace_in", "2027-12-15T00:00:00Z").await,
        ["gold_star"],
        "the back-dated term covers the grace months"
    );

    // At exactly 2 months: expired; the new year starts at the payment.
    app.set_clock("2028-01-23T00:00:00Z").await;
    assert_eq!(
        sub(&app, &grace_out["id"]).await["status"],
        "expired",
        "the grace ends at expiry + 2 months, exclusive"
    );
    let r = pay(&app, &grace_out["id"], "p-out-2").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(
        terms(&r.body)[1],
        (
            "2028-01-23T00:00:00Z".into(),
            "2029-01-23T00:00:00Z".into(),
            6500
        ),
        "renewal after 2 months starts at the payment: {}",
        r.text
    );
    assert!(held(&app, "grace_out", "2028-01-22T00:00:00Z")
        .await
        .is_empty());
    assert_eq!(
        held(&app, "grace_out", "2028-01-23T00:00:00Z").await,
        ["gold_star"]
    );
}

// ---- Amazon Prime ----

/// Amazon Prime (USD, America/Los_Angeles): $139 a year or $14.99 a month; a 30-day trial
/// (on the monthly plan); free shipping; video as a functional right. Preset's choices
/// checked too: the full refund within 3 days, then pro rata (annual) or nothing (monthly).
#[tokio::test]
async fn amazon_prime_facts_hold() {
    let app = preset_app(
        AMAZON_PRIME,
        &[
            "plain",
            "prime",
            "annual_in",
            "annual_out",
            "monthly_in",
            "monthly_out",
            "trial_lapse",
            "trial_convert",
        ],
    )
    .await;

    // $139/year or $14.99/month; the 30-day trial on the monthly plan.
    let annual = offer(&app, "plain", "prime_annual").await;
    assert_eq!(
        (
            annual["price_minor"].as_i64(),
            annual["trial_days"].as_i64(),
            annual["term"].as_str()
        ),
        (Some(13900), None, Some("1 year")),
        "{annual}"
    );
    let monthly = offer(&app, "plain", "prime_monthly").await;
    assert_eq!(
        (
            monthly["price_minor"].as_i64(),
            monthly["trial_days"].as_i64(),
            monthly["trial_available"].as_bool(),
            monthly["term"].as_str()
        ),
        (Some(1499), Some(30), Some(true), Some("1 month")),
        "{monthly}"
    );
    let a = buy_ok(&app, "prime", "prime_annual", "p-prime").await;
    assert_eq!(
        terms(&a),
        [(START.into(), "2027-11-23T00:00:00Z".into(), 13900)],
        "$139/year"
    );
    let annual_in = buy_ok(&app, "annual_in", "prime_annual", "p-ain").await;
    let annual_out = buy_ok(&app, "annual_out", "prime_annual", "p-aout").await;
    let monthly_in = buy_ok(&app, "monthly_in", "prime_monthly", "p-min").await;
    assert_eq!(
        terms(&monthly_in),
        [(START.into(), "2026-12-23T00:00:00Z".into(), 1499)],
        "$14.99/month"
    );
    let monthly_out = buy_ok(&app, "monthly_out", "prime_monthly", "p-mout").await;

    // 30-day trial: once per member, the annual plan has none.
    let r = trial(&app, "trial_lapse", "prime_annual").await;
    assert_eq!(
        r.code(),
        "trial_not_eligible",
        "no trial on the annual plan"
    );
    let mut trials = Vec::new();
    for member in ["trial_lapse", "trial_convert"] {
        let r = trial(&app, member, "prime_monthly").await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        assert_eq!(
            (r.body["status"].as_str(), r.body["access_end"].as_str()),
            (Some("trialing"), Some("2026-12-23T00:00:00Z")),
            "30-day trial: {member}"
        );
        trials.push(r.body["id"].clone());
    }
    assert_eq!(
        held(&app, "trial_lapse", "2026-12-22T23:59:59Z").await,
        ["prime_monthly"],
        "30-day trial: the last second"
    );
    assert!(
        held(&app, "trial_lapse", "2026-12-23T00:00:00Z")
            .await
            .is_empty(),
        "30-day trial: over at start + 30 days"
    );

    // Free shipping (also in the trial); none without Prime.
    let cart =
        json!([{"sku": "B0-BOOK", "category": "books", "quantity": 1, "unit_price_minor": 5000}]);
    for member in ["prime", "trial_lapse"] {
        let q = quote(&app, Some(member), &cart, 599, 0).await;
        assert_eq!(
            (
                &q["shipping_minor"],
                &q["shipping_waived_by"],
                &q["total_minor"]
            ),
            (
                &json!(0),
                &json!("benefit:prime_free_shipping"),
                &json!(5000)
            ),
            "free shipping: {member}: {q}"
        );
        assert_eq!(
            q["benefits_used"],
            json!([{"benefit": "prime_free_shipping", "cost_minor": 599}])
        );
    }
    let q = quote(&app, Some("plain"), &cart, 599, 0).await;
    assert_eq!(
        (&q["shipping_minor"], &q["total_minor"]),
        (&json!(599), &json!(5599)),
        "no Prime, shipping paid: {q}"
    );

    // Video as a functional right: the feature flag in the member view.
    let held_benefits = benefits(&app, "prime").await;
    let video = benefit(&held_benefits, "prime_video");
    assert_eq!(
        (&video["kind"], &video["terms"]),
        (&json!("feature"), &json!({"feature": "prime_video"})),
        "video as a functional right"
    );
    assert!(
        benefits(&app, "plain").await.is_empty(),
        "no video right without Prime"
    );

    // Refund (preset's choice): in full within 3 days of the payment; then the annual
    // plan pro rata, the monthly nothing. The window ends at paid_at + 3 days, exclusive.
    app.set_clock("2026-11-25T23:59:59Z").await;
    for (s, fee) in [(&annual_in, 13900), (&monthly_in, 1499)] {
        let c = refund(&app, &s["id"]).await;
        assert_eq!(
            (&c["refund_minor"], &c["terms"][0]["rule"]),
            (&json!(fee), &json!("full_within_days")),
            "refund within 3 days: {c}"
        );
    }
    app.set_clock("2026-11-26T00:00:00Z").await;
    // Los Angeles days 22 Nov 2026 to 22 Nov 2027: 365; the 22nd to the 25th (today counts)
    // used: 4; 13,900 × 361 / 365 = 13,747.67, rounded down.
    let c = refund(&app, &annual_out["id"]).await;
    assert_eq!(
        (
            &c["refund_minor"],
            &c["terms"][0]["rule"],
            &c["terms"][0]["term_days"],
            &c["terms"][0]["unused_days"]
        ),
        (&json!(13747), &json!("pro_rata"), &json!(365), &json!(361)),
        "annual refund at 3 days: pro rata: {c}"
    );
    let c = refund(&app, &monthly_out["id"]).await;
    assert_eq!(
        (&c["refund_minor"], &c["terms"][0]["rule"]),
        (&json!(0), &json!("none")),
        "monthly refund at 3 days: none: {c}"
    );

    // The trial converts into the monthly plan when paid: the paid month follows it.
    app.set_clock("2026-12-20T00:00:00Z").await;
    let r = pay(&app, &trials[1], "p-convert").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["status"], "trialing");
    assert_eq!(
        terms(&r.body)[1],
        (
            "2026-12-23T00:00:00Z".into(),
            "2027-01-23T00:00:00Z".into(),
            1499
        ),
        "{}",
        r.text
    );
    app.set_clock("2026-12-23T00:00:00Z").await;
    assert_eq!(sub(&app, &trials[1]).await["status"], "active");
    assert_eq!(
        held(&app, "trial_convert", "2026-12-23T00:00:00Z").await,
        ["prime_monthly"]
    );
    assert_eq!(sub(&app, &trials[0]).await["status"], "expired");
    let r = trial(&app, "trial_lapse", "prime_monthly").await;
    assert_eq!(
        r.code(),
        "trial_already_used",
        "one trial per member: {}",
        r.text
    );
}

// ---- Sephora Beauty Insider ----

/// Sephora Beauty Insider (USD, America/Los_Angeles): Insider free; VIB at $350 and Rouge
/// at $1,000 spent in a calendar year; status kept for the rest of that year and the
/// next; 1 point per $; points expire after 18 months without activity. Preset's choice
/// checked too: the 30-day return window.
#[tokio::test]
async fn sephora_facts_hold() {
    let app = preset_app(
        SEPHORA,
        &[
            "pts",
            "active",
            "under",
            "at",
            "rouge_under",
            "rouge",
            "split",
        ],
    )
    .await;

    // Insider free: everyone's tier, no plan.
    assert_eq!(tier(&app, "pts").await["tier"], "insider", "Insider free");

    // 1 point per $, rounded down; pending for the 30-day return window.
    order(&app, "pts", "o-pts", START, 12_345).await;
    order(&app, "active", "o-active-1", START, 10_000).await;
    assert_eq!(points(&app, "pts").await, (123, 0), "1 point per $");

    // VIB at $350.00, Rouge at $1,000.00 (inclusive). (member, spend, tier)
    let cases = [
        ("under", 34_999, "insider"),
        ("at", 35_000, "vib"),
        ("rouge_under", 99_999, "vib"),
        ("rouge", 100_000, "rouge"),
    ];
    for (member, cents, expected) in cases {
        order(&app, member, &format!("o-{member}"), START, cents).await;
        let v = tier(&app, member).await;
        assert_eq!(
            (v["tier"].as_str(), v["value"].as_i64()),
            (Some(expected), Some(cents)),
            "calendar-year spend thresholds: {member}: {v}"
        );
    }
    assert_eq!(
        tier(&app, "under").await["next"],
        json!({"tier": "vib", "threshold": 35000, "missing": 1})
    );
    // Kept for the rest of 2026 and all of 2027: until 1 January 2028, 00:00 Los Angeles.
    assert_eq!(
        tier(&app, "at").await["retained_until"],
        "2028-01-01T08:00:00Z"
    );

    // The return window: 30 × 24 h after the order.
    app.set_clock("2026-12-22T23:59:59Z").await;
    assert_eq!(points(&app, "pts").await, (123, 0), "30-day return window");
    app.set_clock("2026-12-23T00:00:00Z").await;
    assert_eq!(
        points(&app, "pts").await,
        (0, 123),
        "30-day return window: over"
    );
    assert_eq!(
        points_view(&app, "pts").await["inactive_at"],
        "2028-05-22T23:00:00Z",
        "18 months after the last earning (16:00 Los Angeles)"
    );

    // A calendar year, in Los Angeles: $200 on the last second of 2026 and $200 on the
    // first second of 2027 are not $400 in one year.
    app.set_clock("2027-01-01T07:59:59Z").await;
    order(&app, "split", "o-split-1", "2027-01-01T07:59:59Z", 20_000).await;
    app.set_clock("2027-01-01T08:00:00Z").await;
    order(&app, "split", "o-split-2", "2027-01-01T08:00:00Z", 20_000).await;
    let v = tier(&app, "split").await;
    assert_eq!(
        (v["tier"].as_str(), v["value"].as_i64()),
        (Some("insider"), Some(20_000)),
        "calendar-year window: {v}"
    );
    assert_eq!(
        tier(&app, "at").await["tier"],
        "vib",
        "kept through the next calendar year (1 January 2027 evaluation)"
    );

    // Activity keeps the points: a second order in June 2027.
    app.set_clock("2027-06-01T00:00:00Z").await;
    order(&app, "active", "o-active-2", "2027-06-01T00:00:00Z", 1000).await;

    // Status ends with the year after the qualifying year: at 1 January 2028, 00:00 Los
    // Angeles, exclusive.
    app.set_clock("2028-01-01T07:59:59Z").await;
    for member in ["at", "rouge"] {
        let expected = if member == "at" { "vib" } else { "rouge" };
        assert_eq!(
            tier(&app, member).await["tier"],
            expected,
            "status kept to the end of the next year: {member}"
        );
    }
    app.set_clock("2028-01-01T08:00:00Z").await;
    for member in ["at", "rouge"] {
        assert_eq!(
            tier(&app, member).await["tier"],
            "insider",
            "status not earned again in 2027: down on 1 January 2028: {member}"
        );
    }

    // 18 months without activity: every point expires at the deadline, exclusive.
    app.set_clock("2028-05-22T22:59:59Z").await;
    assert_eq!(
        points(&app, "pts").await,
        (0, 123),
        "18 months: the last second"
    );
    app.set_clock("2028-05-22T23:00:00Z").await;
    assert_eq!(
        points(&app, "pts").await,
        (0, 0),
        "18 months without activity"
    );
    // 100 + 10 points, the last earned on 1 June 2027: their deadline is December 2028.
    assert_eq!(
        points(&app, "active").await,
        (0, 110),
        "activity moves the 18 months"
    );
    app.assert_ledger_balanced().await;
}

// ---- Starbucks Rewards ----

/// Starbucks Rewards 2026 (USD, America/Los_Angeles): Green; Gold at 500 stars in 12
/// months; Reserve at 2,500; 1 / 1.2 / 1.7 stars per $; Gold and Reserve stars never
/// expire; redemption at 25 / 60 / 100 / 200 / 300 / 400 stars; status kept 12 months.
/// Preset's choice checked too: Green stars expire after 6 months.
#[tokio::test]
async fn starbucks_facts_hold() {
    let app = preset_app(STARBUCKS, &["green", "gold", "reserve", "fan"]).await;

    // Green; 1 star per $ (rounded down), available at once.
    assert_eq!(tier(&app, "green").await["tier"], "green", "Green");
    order(&app, "green", "o-green", START, 12_345).await;
    assert_eq!(
        points(&app, "green").await,
        (0, 123),
        "1 star per $ for Green"
    );

    // Gold at 500 stars in 12 months (inclusive); then 1.2 stars per $.
    order(&app, "gold", "o-gold-1", START, 49_999).await; // 499 stars
    let v = tier(&app, "gold").await;
    assert_eq!(
        (v["tier"].as_str(), v["value"].as_i64()),
        (Some("green"), Some(499)),
        "499 stars: Green: {v}"
    );
    order(&app, "gold", "o-gold-2", START, 100).await; // 1 star, earned as Green
    let v = tier(&app, "gold").await;
    assert_eq!(
        (v["tier"].as_str(), v["value"].as_i64()),
        (Some("gold"), Some(500)),
        "Gold at 500 stars: {v}"
    );
    // Kept 12 months from qualifying (2026-11-22 16:00 Los Angeles).
    assert_eq!(v["retained_until"], "2027-11-23T00:00:00Z");
    order(&app, "gold", "o-gold-3", START, 10_000).await; // $100 × 1.2 = 120
    order(&app, "gold", "o-gold-4", START, 1001).await; // $10.01 × 1.2 = 12.012: 12
    assert_eq!(
        points(&app, "gold").await,
        (0, 499 + 1 + 120 + 12),
        "1.2 stars per $ for Gold"
    );

    // Reserve at 2,500 (inclusive); then 1.7 stars per $.
    order(&app, "reserve", "o-res-1", START, 249_999).await; // 2,499 stars: Gold
    assert_eq!(tier(&app, "reserve").await["tier"], "gold");
    order(&app, "reserve", "o-res-2", START, 100).await; // $1 × 1.2 = 1.2: 1 → 2,500
    let v = tier(&app, "reserve").await;
    assert_eq!(
        (v["tier"].as_str(), v["value"].as_i64()),
        (Some("reserve"), Some(2500)),
        "Reserve at 2,500 stars: {v}"
    );
    order(&app, "reserve", "o-res-3", START, 10_000).await; // $100 × 1.7 = 170
    assert_eq!(
        points(&app, "reserve").await,
        (0, 2499 + 1 + 170),
        "1.7 stars per $ for Reserve"
    );

    // Redemption at 25 / 60 / 100 / 200 / 300 / 400 stars (1,085 in all).
    order(&app, "fan", "o-fan", START, 108_500).await;
    let mut left: i64 = 1085;
    for (i, stars) in [25i64, 60, 100, 200, 300, 400].into_iter().enumerate() {
        let r = redeem_reward(&app, "fan", &format!("rw-{i}"), &format!("stars_{stars}")).await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "reward of {stars}: {}",
            r.text
        );
        left -= stars;
        assert_eq!(
            points(&app, "fan").await,
            (0, left),
            "redemption at {stars} stars"
        );
    }
    let r = redeem_reward(&app, "fan", "rw-more", "stars_25").await;
    assert_eq!(r.code(), "insufficient_points", "no stars left: {}", r.text);

    // Green stars expire 6 months after earning (preset's choice); Gold and Reserve stars
    // never. The override is judged when a lot is earned.
    app.set_clock("2027-05-22T22:59:59Z").await;
    assert_eq!(
        points(&app, "green").await,
        (0, 123),
        "6 months: the last second"
    );
    app.set_clock("2027-05-22T23:00:00Z").await;
    assert_eq!(points(&app, "green").await, (0, 0), "Green stars: 6 months");
    assert_eq!(
        points(&app, "gold").await,
        (0, 120 + 12),
        "Gold stars never expire; those earned as Green do"
    );
    assert_eq!(
        points(&app, "reserve").await,
        (0, 1 + 170),
        "Gold and Reserve stars never expire"
    );

    // Status kept 12 months (retained through the 1 November evaluation), then requalify:
    // down at the first monthly evaluation after, 1 December 00:00 Los Angeles.
    app.set_clock("2027-11-01T07:00:00Z").await;
    assert_eq!(
        tier(&app, "gold").await["tier"],
        "gold",
        "kept 12 months after qualifying"
    );
    app.set_clock("2027-12-01T07:59:59Z").await;
    assert_eq!(tier(&app, "gold").await["tier"], "gold");
    app.set_clock("2027-12-01T08:00:00Z").await;
    let v = tier(&app, "gold").await;
    assert_eq!(
        (v["tier"].as_str(), v["value"].as_i64()),
        (Some("green"), Some(0)),
        "no stars in the last 12 months: Green: {v}"
    );
    assert_eq!(
        points(&app, "gold").await,
        (0, 132),
        "Gold stars still there after the downgrade"
    );
    app.assert_ledger_balanced().await;
}

// ---- Yunji ----

/// The reward of a referee's referral: (state, taken back).
async fn referral_reward(app: &TestApp, referee: &str) -> (String, i64) {
    let r = app
        .call("GET", &format!("/v1/members/{referee}/referrals"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let reward = r.body["rewards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["reward_id"] == "entry_fee_quarter")
        .unwrap_or_else(|| panic!("no reward: {}", r.text))
        .clone();
    (
        reward["state"].as_str().unwrap().to_owned(),
        reward["clawed_back"].as_i64().unwrap(),
    )
}

async fn bonus(app: &TestApp, member: &str) -> i64 {
    let r = app
        .call("GET", &format!("/v1/members/{member}/stored-value"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["bonus_minor"].as_i64().unwrap()
}

/// Yunji (CNY, Asia/Shanghai): 398 元 paid entry; members buy at a discount; a referral
/// bonus of about a quarter of the fee (100 元) to the referrer. Preset's choices checked
/// too: 10% off, the bonus paid as stored value once the referee's 7-day full-refund
/// window has passed, and taken back by a later refund.
#[tokio::test]
async fn yunji_facts_hold() {
    let app = TestApp::sqlite().await;
    let r = app.put_programme(&app.admin, YUNJI).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "the preset is accepted: {}",
        r.text
    );
    let alice = join(&app, json!({"member_id": "alice"})).await;
    let code = alice["referral_code"].as_str().unwrap().to_owned();
    for referee in ["bob", "carol", "dave"] {
        let v = join(&app, json!({"member_id": referee, "referral_code": code})).await;
        assert_eq!(v["referred_by"], json!(code), "{v}");
    }

    // 398 元 paid entry, for a year, not renewed automatically.
    let mut subs = Vec::new();
    for referee in ["bob", "carol", "dave"] {
        let v = buy_ok(&app, referee, "yunji_member", &format!("p-{referee}")).await;
        assert_eq!(
            terms(&v),
            [(START.into(), "2027-11-23T00:00:00Z".into(), 39800)],
            "398 元 paid entry"
        );
        assert_eq!(v["auto_renew"], false);
        subs.push(v["id"].clone());
    }

    // Members buy at a discount: 10% off every line, rounded down per line.
    let cart = json!([
        {"sku": "SOAP", "category": "home", "quantity": 1, "unit_price_minor": 9999},
        {"sku": "TEA", "category": "food", "quantity": 3, "unit_price_minor": 1000}
    ]);
    let q = quote(&app, Some("bob"), &cart, 0, 0).await;
    // 99.99 元 - 9.99 (9.999 rounded down) = 90.00; 30 元 - 3 = 27.
    assert_eq!(
        (
            &q["lines"][0]["net_minor"],
            &q["lines"][1]["net_minor"],
            &q["total_minor"]
        ),
        (&json!(9000), &json!(2700), &json!(11_700)),
        "members buy at a discount: {q}"
    );
    let q = quote(&app, Some("alice"), &cart, 0, 0).await;
    assert_eq!(
        q["total_minor"], 12_999,
        "no discount without the entry: {q}"
    );

    // The referral bonus waits 7 × 24 h after the referee's payment.
    assert_eq!(
        referral_reward(&app, "bob").await,
        ("pending".to_owned(), 0)
    );
    assert_eq!(bonus(&app, "alice").await, 0);
    app.set_clock("2026-11-29T23:59:59Z").await;
    assert_eq!(bonus(&app, "alice").await, 0, "not before the 7 days");
    // A refund within 7 days: the whole fee, and the bonus is not paid.
    let c = refund(&app, &subs[1]).await;
    assert_eq!(
        (&c["refund_minor"], &c["terms"][0]["rule"]),
        (&json!(39800), &json!("full_within_days")),
        "refund within 7 days: {c}"
    );
    assert_eq!(
        referral_reward(&app, "carol").await,
        ("canceled".to_owned(), 0)
    );

    app.set_clock("2026-11-30T00:00:00Z").await;
    assert_eq!(
        bonus(&app, "alice").await,
        20_000,
        "referral bonus: 100 元 for each referee who kept the entry"
    );
    assert_eq!(
        referral_reward(&app, "bob").await,
        ("granted".to_owned(), 0)
    );
    // A "refund" at 7 days gives nothing back: the shop keeps the fee, so the referrer
    // keeps the bonus the entry earned.
    let c = refund(&app, &subs[2]).await;
    assert_eq!(
        (&c["refund_minor"], &c["terms"][0]["rule"]),
        (&json!(0), &json!("none")),
        "refund at exactly 7 days: none: {c}"
    );
    assert_eq!(
        referral_reward(&app, "dave").await,
        ("granted".to_owned(), 0)
    );
    assert_eq!(bonus(&app, "alice").await, 20_000);
    app.assert_ledger_balanced().await;
}
