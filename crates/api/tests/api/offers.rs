//! Conversion offers through the API: who sees which offer, exposures by a call and by
//! the quote's upsell, acceptance within and outside the window, the offer's price
//! charged, and the conversion on a hand-computed example.

use crate::helpers::*;
use axum::http::StatusCode;
use serde_json::json;

const PROGRAMME: &str = r#"
name = "offers"
currency = "USD"
timezone = "UTC"

[[coupons]]
id = "ten_off"
kind = "amount_off"
amount_minor = 1000
valid_days = 30

[[plans]]
id = "plus"
term = "year"
price_minor = 9900
trial = { days = 7 }

[[benefits]]
id = "plus_five"
kind = "percent_off"
plans = ["plus"]
percent = 5

# Members with two orders in 90 days who never held plus: the first year at half price.
[[offers]]
id = "plus_half"
plan = "plus"
condition = "stats.orders_90d >= 2 && !('plus' in stats.plans_ever)"
starts_at = "2026-11-23T00:00:00Z"
ends_at = "2026-12-01T00:00:00Z"
first_term_price_minor = 4900

# Members with no order in a year: a 60-day trial.
[[offers]]
id = "plus_long_trial"
plan = "plus"
condition = "stats.orders_365d == 0"
starts_at = "2026-11-01T00:00:00Z"
ends_at = "2027-11-01T00:00:00Z"
trial_days = 60

# Everyone, in December: a coupon.
[[offers]]
id = "december_coupon"
plan = "plus"
starts_at = "2026-12-01T00:00:00Z"
ends_at = "2027-01-01T00:00:00Z"
coupon = "ten_off"
"#;

async fn order(app: &TestApp, member: &str, n: u32) {
    let event = json!({"id": format!("{member}-{n}"), "type": "order.paid", "member_id": member,
        "occurred_at": START, "order_id": format!("{member}-o{n}"),
        "lines": [{"sku": "A1", "category": "books", "quantity": 1, "unit_price_minor": 2000}],
        "shipping_minor": 0, "total_minor": 2000});
    let r = app.call("POST", "/v1/events", Some(event)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

async fn offers_of(app: &TestApp, member: &str) -> Vec<String> {
    let r = app
        .call("GET", &format!("/v1/members/{member}/offers"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["offer_id"].as_str().unwrap().to_owned())
        .collect()
}

async fn buy(app: &TestApp, body: serde_json::Value) -> Reply {
    app.call_as(&app.storefront, "POST", "/v1/subscriptions", Some(body))
        .await
}

#[tokio::test]
async fn offers_reach_their_segment_and_count_their_conversion() {
    let app = TestApp::sqlite().await;
    let r = app.put_programme(&app.admin, PROGRAMME).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    for m in ["m1", "m2", "m3", "m4", "m5"] {
        app.add_member(m).await;
    }
    for m in ["m1", "m2", "m3"] {
        order(&app, m, 1).await;
        order(&app, m, 2).await;
    }
    order(&app, "m4", 1).await;

    // A member sees only the offers open now whose segment holds them.
    for (member, expected) in [
        ("m1", vec!["plus_half"]),
        ("m4", vec![]),
        ("m5", vec!["plus_long_trial"]),
    ] {
        assert_eq!(offers_of(&app, member).await, expected, "{member}");
    }

    // Exposures: by a call (twice for m1: one member, two showings), by the upsell of a
    // quote; a member outside the segment is refused and not counted.
    for m in ["m1", "m1", "m2"] {
        let r = app
            .call_as(
                &app.storefront,
                "POST",
                "/v1/offers/plus_half/exposures",
                Some(json!({"member_id": m})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["price_minor"], 4900);
    }
    let r = app
        .call_as(
            &app.storefront,
            "POST",
            "/v1/offers/plus_half/exposures",
            Some(json!({"member_id": "m4"})),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, "offer_not_eligible")
    );
    let quote = json!({"member_id": "m3", "lines": [{"sku": "A1", "category": "books", "quantity": 1, "unit_price_minor": 2000}]});
    let r = app
        .call_as(&app.storefront, "POST", "/v1/quotes", Some(quote))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.body["upsell"][0]["offer"]["offer_id"], "plus_half",
        "{}",
        r.text
    );
    assert_eq!(r.body["upsell"][0]["saving_minor"], 100, "5% of 20.00");
    // A quote writes nothing: the clock's jobs write the exposures it noted.
    let r = app.call("GET", "/v1/offers/plus_half", None).await;
    assert_eq!(r.body["exposed_members"], 2, "{}", r.text);
    app.set_clock(START).await;

    // Acceptance: the offer's price is what the first term is charged; a price other than
    // the offer's is refused; an offer taken once is not taken again.
    let r = buy(&app, json!({"member_id": "m1", "plan": "plus", "payment_ref": "p1", "offer": "plus_half", "amount_minor": 4900})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["terms"][0]["amount_minor"], 4900, "{}", r.text);
    assert_eq!(
        r.body["terms"][0]["price_basis"], "offer:plus_half",
        "{}",
        r.text
    );
    let r = buy(&app, json!({"member_id": "m2", "plan": "plus", "payment_ref": "p2", "offer": "plus_half", "amount_minor": 9900})).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, "price_changed"),
        "{}",
        r.text
    );
    let cases = [
        (
            "an unknown offer",
            json!({"member_id": "m2", "plan": "plus", "payment_ref": "p3", "offer": "nope"}),
            StatusCode::NOT_FOUND,
            "offer_not_found",
        ),
        (
            "a member outside the segment",
            json!({"member_id": "m4", "plan": "plus", "payment_ref": "p4", "offer": "plus_half"}),
            StatusCode::CONFLICT,
            "offer_not_eligible",
        ),
        (
            "a trial asked of a price offer",
            json!({"member_id": "m2", "plan": "plus", "trial": true, "offer": "plus_half"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "offer_mismatch",
        ),
        (
            "a coupon offer before its window",
            json!({"member_id": "m2", "plan": "plus", "payment_ref": "p5", "offer": "december_coupon"}),
            StatusCode::CONFLICT,
            "offer_not_open",
        ),
    ];
    for (case, body, status, code) in cases {
        let r = buy(&app, body).await;
        assert_eq!((r.status, r.code()), (status, code), "{case}: {}", r.text);
    }

    // Conversion: m1, m2 and m3 were shown it (m4's refused exposure does not count),
    // m1 took it: 1 / 3 = 3,333 basis points, rounded down.
    let r = app.call("GET", "/v1/offers/plus_half", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        (
            &r.body["exposed_members"],
            &r.body["exposures"],
            &r.body["accepted_members"],
            &r.body["conversion_bp"],
            &r.body["open"]
        ),
        (&json!(3), &json!(4), &json!(1), &json!(3333), &json!(true)),
        "{}",
        r.text
    );

    // Outside the window (its end is exclusive), the offer is refused and nothing moves.
    app.set_clock("2026-12-01T00:00:00Z").await;
    let r = buy(&app, json!({"member_id": "m2", "plan": "plus", "payment_ref": "p6", "offer": "plus_half", "amount_minor": 4900})).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, "offer_not_open"),
        "{}",
        r.text
    );
    let r = app.call("GET", "/v1/offers/plus_half", None).await;
    assert_eq!(
        (&r.body["accepted_members"], &r.body["open"]),
        (&json!(1), &json!(false))
    );
    // The first purchase's retry still answers as the first time.
    let r = buy(&app, json!({"member_id": "m1", "plan": "plus", "payment_ref": "p1", "offer": "plus_half", "amount_minor": 4900})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    // A coupon offer is taken by claiming it: once per member.
    let r = app
        .call_as(
            &app.storefront,
            "POST",
            "/v1/offers/december_coupon/acceptances",
            Some(json!({"member_id": "m2"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let coupon = r.body["coupon"].clone();
    let r = app
        .call_as(
            &app.storefront,
            "POST",
            "/v1/offers/december_coupon/acceptances",
            Some(json!({"member_id": "m2"})),
        )
        .await;
    assert_eq!(
        (r.status, &r.body["coupon"]),
        (StatusCode::OK, &coupon),
        "{}",
        r.text
    );
    let r = app.call("GET", "/v1/offers/december_coupon", None).await;
    assert_eq!(
        (
            &r.body["exposed_members"],
            &r.body["accepted_members"],
            &r.body["conversion_bp"]
        ),
        (&json!(1), &json!(1), &json!(10000))
    );
    let r = app
        .call_as(
            &app.storefront,
            "POST",
            "/v1/offers/plus_half/acceptances",
            Some(json!({"member_id": "m2"})),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, "offer_not_open")
    );

    // A trial offer gives its own days in place of the plan's 7.
    let r = buy(
        &app,
        json!({"member_id": "m5", "plan": "plus", "trial": true, "offer": "plus_long_trial"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(
        r.body["terms"][0]["end"], "2027-01-30T00:00:00Z",
        "60 days: {}",
        r.text
    );
    let r = app.call("GET", "/v1/offers/plus_long_trial", None).await;
    assert_eq!(r.body["accepted_members"], 1);

    // A closed member may take nothing: an empty list, not a refusal.
    let r = app.call("POST", "/v1/members/m4/close", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(offers_of(&app, "m4").await.is_empty());
}
