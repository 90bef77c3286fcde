//! Checkout quotes on the demo programme, snapshotted whole: a shopper who is not a
//! member, a tier member, a paid member, and a member with both, on a member day, with
//! coupons and points; plus coupons issued by hand and the refusals.

use crate::helpers::*;
use axum::http::StatusCode;
use serde_json::{json, Value};

async fn order(app: &TestApp, member: &str, id: &str, yuan: i64) {
    let e = json!({"id": id, "type": "order.paid", "member_id": member,
        "occurred_at": "2026-11-22T10:00:00+08:00", "order_id": id,
        "lines": [{"sku": "X", "category": "misc", "quantity": 1, "unit_price_minor": yuan * 100}],
        "total_minor": yuan * 100});
    let r = app.call("POST", "/v1/events", Some(e)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

async fn issue(app: &TestApp, member: &str, id: &str, template: &str, count: i64) -> Vec<i64> {
    let r = app
        .call(
            "POST",
            &format!("/v1/members/{member}/coupons"),
            Some(json!({"id": id, "template": template, "count": count})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["coupon"].as_i64().unwrap())
        .collect()
}

fn cart(member: Option<&str>, coupons: &[i64], points: i64) -> Value {
    json!({
        "member_id": member,
        "lines": [
            {"sku": "TEA-500G", "category": "grocery", "quantity": 2, "unit_price_minor": 5900},
            {"sku": "RICE-5KG", "category": "grocery", "quantity": 1, "unit_price_minor": 6900},
            {"sku": "NOVEL-1", "category": "books", "quantity": 1, "unit_price_minor": 4500},
            {"sku": "NOVEL-2", "category": "books", "quantity": 3, "unit_price_minor": 3333},
            {"sku": "PEN", "category": "office", "quantity": 10, "unit_price_minor": 250},
            {"sku": "MUG", "category": "home", "quantity": 1, "unit_price_minor": 3900},
            {"sku": "SOAP", "category": "home", "quantity": 4, "unit_price_minor": 899},
            {"sku": "OIL-1L", "category": "grocery", "quantity": 1, "unit_price_minor": 2990},
            {"sku": "SALT", "category": "grocery", "quantity": 2, "unit_price_minor": 350},
            {"sku": "WINE-CLUB", "category": "drinks", "quantity": 1, "unit_price_minor": 29900, "tags": ["members_only"]}
        ],
        "shipping_minor": 800,
        "coupons": coupons,
        "points": points
    })
}

async fn quote(app: &TestApp, body: Value) -> Value {
    let r = app
        .call_as(&app.storefront, "POST", "/v1/quotes", Some(body.clone()))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // A quote changes nothing: the same request again gives the same bytes.
    let again = app
        .call_as(&app.storefront, "POST", "/v1/quotes", Some(body))
        .await;
    assert_eq!(r.text, again.text);
    r.body
}

#[tokio::test]
async fn quotes_for_every_kind_of_member() {
    let app = TestApp::sqlite().await;
    for m in ["tiered", "paid", "both"] {
        app.add_member(m).await;
    }
    // Score 1,200 → silver; 2,000 a day (the demo's cap) on three days → gold.
    order(&app, "tiered", "o-t", 1200).await;
    for (i, day) in ["20", "21", "22"].iter().enumerate() {
        let e = json!({"id": format!("o-b{i}"), "type": "order.paid", "member_id": "both",
            "occurred_at": format!("2026-11-{day}T10:00:00+08:00"), "order_id": format!("o-b{i}"),
            "lines": [{"sku": "X", "category": "misc", "quantity": 1, "unit_price_minor": 200_000}],
            "total_minor": 200_000});
        assert_eq!(
            app.call("POST", "/v1/events", Some(e)).await.status,
            StatusCode::CREATED
        );
    }
    let r = app
        .call(
            "POST",
            "/v1/admin/code-pools/iqiyi_vip",
            Some(json!({"codes": ["IQ-1", "IQ-2"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    for (m, refs) in [("paid", "pay-p"), ("both", "pay-b")] {
        let r = app
            .call_as(
                &app.storefront,
                "POST",
                "/v1/subscriptions",
                Some(json!({"member_id": m, "plan": "plus", "payment_ref": refs})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let r = app
        .call(
            "POST",
            "/v1/members/both/points/adjustments",
            Some(json!({"id": "adj-1", "points": 2000, "reason": "welcome"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let ten_off = issue(&app, "both", "c-1", "ten_off_99", 2).await;
    let books = issue(&app, "both", "c-2", "books_20", 1).await;
    let both_coupons = [ten_off[0], books[0]];
    let tiered_coupons = issue(&app, "tiered", "c-3", "ten_off_99", 1).await;
    // The 28th in Shanghai: the gold member day.
    let r = app
        .call(
            "POST",
            "/v1/admin/clock",
            Some(json!({"now": "2026-11-28T02:00:00Z"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);

    insta::assert_json_snapshot!("quote_non_member", quote(&app, cart(None, &[], 0)).await);
    insta::assert_json_snapshot!(
        "quote_tier_member",
        quote(&app, cart(Some("tiered"), &tiered_coupons, 0)).await
    );
    insta::assert_json_snapshot!(
        "quote_paid_member",
        quote(&app, cart(Some("paid"), &[], 0)).await
    );
    let q = quote(&app, cart(Some("both"), &both_coupons, 1550)).await;
    assert_eq!(q["payable"], true);
    insta::assert_json_snapshot!("quote_tier_and_plan", q);
    // The service and extended benefits the quote does not price are in the member view,
    // with what is left of each monthly quota: every kind, over PLUS, VIP88 and gold.
    let r = app
        .call_as(
            &app.storefront,
            "POST",
            "/v1/subscriptions",
            Some(json!({"member_id": "paid", "plan": "vip88", "payment_ref": "pay-v"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    for m in ["paid", "both"] {
        let view = app.call("GET", &format!("/v1/members/{m}"), None).await;
        insta::assert_json_snapshot!(format!("benefits_{m}"), view.body["benefits"]);
    }
    // A second coupon of the same stacking group, and a free-shipping coupon not needed,
    // are refused (and would not be spent).
    let ship = issue(&app, "both", "c-4", "free_ship", 1).await;
    let q = quote(
        &app,
        cart(Some("both"), &[ten_off[0], ten_off[1], ship[0]], 0),
    )
    .await;
    assert_eq!(
        q["coupons_refused"],
        json!([{"coupon": ten_off[1], "reason": "stacking_group"}, {"coupon": ship[0], "reason": "not_needed"}])
    );
    assert_eq!(q["payable"], false);
}

#[tokio::test]
async fn members_only_goods_and_refusals() {
    let app = TestApp::sqlite().await;
    app.add_member("m").await;
    let q = quote(&app, cart(None, &[], 0)).await;
    let wine = q["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["sku"] == "WINE-CLUB")
        .unwrap();
    assert_eq!(wine["refused"], "members only: needs `club_goods`");
    assert_eq!(q["payable"], false);
    assert_eq!(
        q["upsell"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["plan"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["plus", "vip88"]
    );
    // Points the member does not have, a coupon of someone else, an unknown template.
    let r = app
        .call("POST", "/v1/quotes", Some(cart(Some("m"), &[], 100)))
        .await;
    assert_eq!(r.code(), "insufficient_points", "{}", r.text);
    let r = app
        .call("POST", "/v1/quotes", Some(cart(None, &[], 100)))
        .await;
    assert_eq!(r.code(), "insufficient_points", "{}", r.text);
    let q = quote(&app, cart(Some("m"), &[7], 0)).await;
    assert_eq!(
        q["coupons_refused"],
        json!([{"coupon": 7, "reason": "not_found"}])
    );
    let r = app
        .call(
            "POST",
            "/v1/members/m/coupons",
            Some(json!({"id": "x", "template": "nope"})),
        )
        .await;
    assert_eq!(r.code(), "unknown_coupon", "{}", r.text);
    // Issuing is idempotent by id.
    let first = issue(&app, "m", "i-1", "ten_off_99", 3).await;
    let r = app
        .call(
            "POST",
            "/v1/members/m/coupons",
            Some(json!({"id": "i-1", "template": "ten_off_99", "count": 3})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(first, [1, 2, 3]);
    let listed = app.call("GET", "/v1/members/m/coupons", None).await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 3);
    for (body, code) in [
        (json!({"lines": []}), "too_many_items"),
        (
            json!({"lines": [{"sku": "A", "category": "c", "quantity": 0, "unit_price_minor": 1}]}),
            "invalid_field",
        ),
        (
            json!({"lines": [{"sku": "A", "category": "c", "quantity": 1, "unit_price_minor": 1}], "shipping_minor": -1}),
            "invalid_field",
        ),
        (
            json!({"lines": [{"sku": "A", "category": "c", "quantity": 1, "unit_price_minor": 1}], "member_id": "ghost"}),
            "member_not_found",
        ),
    ] {
        let r = app.call("POST", "/v1/quotes", Some(body.clone())).await;
        assert_eq!(r.code(), code, "{body}: {}", r.text);
    }
}

/// A member's coupons come a page at a time, newest first, however many there are.
#[tokio::test]
async fn coupon_lists_page_past_any_count() {
    let app = TestApp::sqlite().await;
    app.add_member("m").await;
    let mut issued = Vec::new();
    for (id, count) in [("a", 100), ("b", 100), ("c", 50)] {
        issued.extend(issue(&app, "m", id, "ten_off_99", count).await);
    }
    assert_eq!(issued.len(), 250);
    let mut seen = Vec::new();
    let mut path = "/v1/members/m/coupons?limit=200".to_owned();
    let mut pages = 0;
    loop {
        let r = app.call("GET", &path, None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        pages += 1;
        for c in r.body["items"].as_array().unwrap() {
            seen.push(c["coupon"].as_i64().unwrap());
        }
        match r.body["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/members/m/coupons?limit=200&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(pages, 2);
    issued.reverse();
    assert_eq!(seen, issued, "every coupon once, newest first");
    let first = app.call("GET", "/v1/members/m/coupons", None).await;
    assert_eq!(
        first.body["items"].as_array().unwrap().len(),
        50,
        "the default page"
    );
    assert!(first.body["next_cursor"].is_string());
    // A subscriptions cursor is not a coupons cursor.
    let r = app
        .call("GET", "/v1/members/m/coupons?cursor=czo5", None)
        .await;
    assert_eq!(r.code(), "invalid_cursor", "{}", r.text);
}
