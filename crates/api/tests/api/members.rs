use crate::helpers::*;
use serde_json::json;

#[tokio::test]
async fn a_member_lives_and_closes() {
    let app = TestApp::sqlite().await;
    let created = app
        .call("POST", "/v1/members", Some(json!({"member_id": "u1", "attributes": {"city": "Beijing", "vip": {"since": 2020}}, "referral_code": "FRIEND1"})))
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.body["status"], "active");
    assert_eq!(created.body["referred_by"], "FRIEND1");
    assert_eq!(
        app.call("GET", "/v1/members/u1", None).await.body,
        created.body
    );

    let patched = app
        .call(
            "PATCH",
            "/v1/members/u1",
            Some(json!({"attributes": {"city": null, "vip": {"level": 2}}, "status": "frozen"})),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(
        patched.body["attributes"],
        json!({"vip": {"since": 2020, "level": 2}})
    );
    assert_eq!(patched.body["status"], "frozen");

    assert_eq!(
        app.call("POST", "/v1/events", Some(paid("e1", "u1")))
            .await
            .status,
        201
    );
    let closed = app.call("POST", "/v1/members/u1/close", None).await;
    assert_eq!(closed.body["status"], "closed");
    assert_eq!(closed.body["attributes"], json!({}));
    assert_eq!(closed.body["closed_at"], START);
    // Closing again changes nothing; the history stays, and so does a refund's way in.
    assert_eq!(
        app.call("POST", "/v1/members/u1/close", None).await.body,
        closed.body
    );
    let repeat = app.call("POST", "/v1/events", Some(paid("e1", "u1"))).await;
    assert_eq!(
        repeat.status, 200,
        "a repeat after closing is still the first result: {}",
        repeat.text
    );
    assert_eq!(
        app.call("POST", "/v1/events", Some(paid("e2", "u1")))
            .await
            .code(),
        "member_closed"
    );
    let events = app.call("GET", "/v1/members/u1/events", None).await;
    assert_eq!(events.body["items"].as_array().unwrap().len(), 1);
    let refund = json!({"id": "r1", "type": "order.refunded", "member_id": "u1", "occurred_at": START,
        "order_id": "o-e1", "refund": {"amount_minor": 1000}});
    assert_eq!(
        app.call("POST", "/v1/events", Some(refund)).await.status,
        201
    );
}

/// Ids that print alike are one member or an error, never two members.
#[tokio::test]
async fn look_alike_ids_are_one_member_or_refused() {
    let app = TestApp::sqlite().await;
    let created = app
        .call(
            "POST",
            "/v1/members",
            Some(json!({"member_id": "caf\u{00E9}"})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    // The same name with a combining accent is the same member, in the body and the path.
    let again = app
        .call(
            "POST",
            "/v1/members",
            Some(json!({"member_id": "cafe\u{0301}"})),
        )
        .await;
    assert_eq!(again.code(), "member_exists", "{}", again.text);
    let found = app.call("GET", "/v1/members/cafe%CC%81", None).await;
    assert_eq!(found.status, 200, "{}", found.text);
    assert_eq!(found.body["member_id"], "caf\u{00E9}");
    // An invisible character is refused where it stands.
    for id in ["u\u{200B}1", "\u{FEFF}u1", "u1\u{202E}"] {
        let r = app
            .call("POST", "/v1/members", Some(json!({"member_id": id})))
            .await;
        assert_eq!(r.code(), "invalid_field", "{id:?}: {}", r.text);
        assert_eq!(r.body["error"]["field"], "member_id");
    }
    let r = app.call("GET", "/v1/members/u%E2%80%8B1", None).await;
    assert_eq!(r.code(), "invalid_field", "{}", r.text);
}

/// A member who holds a plan with partner rights, a coupon, stored value and points is
/// closed (each holding ended, and said so), exported whole, and erased (no trace of their
/// id or attributes left in what Tessera answers), with the books balanced throughout.
#[tokio::test]
async fn closing_exporting_and_erasing_a_member_who_holds_everything() {
    use axum::http::StatusCode;
    const WHO: &str = "alice@example.com";
    let app = TestApp::sqlite().await;
    let r = app
        .call(
            "POST",
            "/v1/members",
            Some(json!({"member_id": WHO, "attributes": {"phone": "+86 138 0000 0000"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let me = format!("/v1/members/{WHO}");
    // A plan with a partner's right, a coupon, stored value, pending and available points.
    let r = app
        .call_as(
            &app.storefront,
            "POST",
            "/v1/subscriptions",
            Some(json!({"member_id": WHO, "plan": "vip88", "payment_ref": "pay-1"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let youku = app.engine.create_partner_key("youku").await.unwrap();
    let partner_view = format!("/v1/partner/members/{WHO}");
    let r = app.call_as(&youku, "GET", &partner_view, None).await;
    assert_eq!(r.body["holds"], true, "{}", r.text);
    crate::orders::coupon(&app, WHO, "ten_off_99").await;
    let r = app
        .call_as(
            &app.storefront,
            "POST",
            &format!("{me}/stored-value"),
            Some(json!({"offer": "pay_1000_get_1100", "payment_ref": "tp-1"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app.call("POST", "/v1/events", Some(paid("e1", WHO))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app
        .call(
            "POST",
            &format!("{me}/points/adjustments"),
            Some(json!({"id": "a1", "points": 100, "reason": "welcome"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    // An order committed through Tessera: its summary names the member too.
    let r = app
        .call_as(
            &app.storefront,
            "POST",
            "/v1/orders",
            Some(json!({"member_id": WHO, "order_id": "SO-9", "stored_value_minor": 1000,
                "lines": [{"sku": "TEA-500G", "category": "grocery", "quantity": 1, "unit_price_minor": 3000}]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let before = app.call("GET", &format!("{me}/points"), None).await.body;
    let pending = before["balances"]["pending"].as_i64().unwrap();
    assert!(pending > 0, "{before}");

    // Closing ends each holding, and says what it ended.
    let closed = app.call("POST", &format!("{me}/close"), None).await;
    assert_eq!(closed.status, StatusCode::OK, "{}", closed.text);
    assert_eq!(closed.body["status"], "closed");
    assert_eq!(closed.body["attributes"], json!({}));
    let closing = &closed.body["closing"];
    assert_eq!(closing["subscriptions"][0]["plan"], "vip88", "{closing}");
    assert_eq!(closing["subscriptions"][0]["status_before"], "active");
    assert_eq!(
        closing["subscriptions"][0]["refund_minor"],
        88800 * 364 / 365,
        "pro rata by whole days, the day of purchase counted as used"
    );
    assert_eq!(closing["coupons_voided"], 1);
    // 1,000.00 paid in, 10.00 of it spent on SO-9 (principal first), the rest owed back.
    assert_eq!(closing["stored_value_owed_minor"], 99_000);
    assert_eq!(closing["stored_value_bonus_forfeited_minor"], 10_000);
    assert_eq!(closing["points_pending_forfeited"], pending);
    assert_eq!(closing["points_available_forfeited"], 100);
    assert_eq!(closing["points_debt"], 0);
    // A retry answers as the first close.
    let again = app.call("POST", &format!("{me}/close"), None).await;
    assert_eq!(again.body, closed.body);
    // Each effect, seen from the reads.
    let r = app.call_as(&youku, "GET", &partner_view, None).await;
    assert_ne!(r.body["holds"], true, "partner access ended: {}", r.text);
    let r = app.call("GET", &format!("{me}/entitlements"), None).await;
    assert_eq!(r.body["plans"], json!([]), "{}", r.text);
    let r = app.call("GET", &format!("{me}/subscriptions"), None).await;
    assert_eq!(r.body["items"][0]["status"], "refunded", "{}", r.text);
    assert_eq!(r.body["items"][0]["auto_renew"], false, "{}", r.text);
    let r = app.call("GET", &format!("{me}/coupons"), None).await;
    assert_eq!(r.body["items"][0]["state"], "voided", "{}", r.text);
    let r = app.call("GET", &format!("{me}/stored-value"), None).await;
    assert_eq!(
        (&r.body["principal_minor"], &r.body["bonus_minor"]),
        (&json!(0), &json!(0)),
        "{}",
        r.text
    );
    let r = app.call("GET", &format!("{me}/points"), None).await;
    assert_eq!(
        r.body["balances"],
        json!({"pending": 0, "available": 0, "debt": 0})
    );
    app.assert_ledger_balanced().await;
    // A refund of SO-9 after the close gives nothing back onto the account: its stored
    // value is owed back like the rest.
    let refund = json!({"id": "e-refund", "type": "order.refunded", "member_id": WHO,
        "occurred_at": "2026-11-23T00:00:00Z", "order_id": "SO-9", "refund": {"amount_minor": 2850}});
    let r = app.call("POST", "/v1/events", Some(refund)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app.call("GET", &format!("{me}/stored-value"), None).await;
    assert_eq!(r.body["principal_minor"], 0, "{}", r.text);
    let r = app.call("GET", &format!("{me}/points"), None).await;
    assert_eq!(r.body["balances"]["available"], 0, "{}", r.text);
    app.assert_ledger_balanced().await;

    // The export holds everything, whole.
    let export = app.call("GET", &format!("{me}/export"), None).await;
    assert_eq!(export.status, StatusCode::OK, "{}", export.text);
    let x = &export.body;
    assert_eq!(x["member"]["member_id"], WHO);
    assert_eq!(x["subscriptions"][0]["status"], "refunded");
    assert_eq!(x["coupons"][0]["state"], "voided");
    assert_eq!(x["events"][0]["event"]["member_id"], WHO);
    let kinds: Vec<&str> = x["journal"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    for kind in ["earn", "adjust", "sv_topup", "sv_refund", "forfeit"] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    // Only a closed member can be erased.
    app.add_member("bob").await;
    let r = app.call("POST", "/v1/members/bob/erase", None).await;
    assert_eq!(r.code(), "member_not_closed", "{}", r.text);

    // Erased: no trace of the id or the attributes; the books still balance.
    let erased = app.call("POST", &format!("{me}/erase"), None).await;
    assert_eq!(erased.status, StatusCode::OK, "{}", erased.text);
    let pseudonym = erased.body["member_id"].as_str().unwrap().to_owned();
    assert!(pseudonym.starts_with("erased-"), "{pseudonym}");
    assert!(erased.body["erased_at"].is_string());
    assert_eq!(app.call("GET", &me, None).await.code(), "member_not_found");
    let r = app
        .call("POST", &format!("/v1/members/{pseudonym}/erase"), None)
        .await;
    assert_eq!(r.body, erased.body, "erasing again changes nothing");
    let export = app
        .call("GET", &format!("/v1/members/{pseudonym}/export"), None)
        .await;
    assert_eq!(export.status, StatusCode::OK, "{}", export.text);
    assert!(!export.text.contains(WHO), "{}", export.text);
    let order = app.call("GET", "/v1/orders/SO-9", None).await;
    assert_eq!(order.status, StatusCode::OK, "{}", order.text);
    assert!(!order.text.contains(WHO), "{}", order.text);
    assert_eq!(order.body["commit"]["member_id"], pseudonym.as_str());
    // The pseudonyms' prefix is reserved.
    let r = app
        .call(
            "POST",
            "/v1/members",
            Some(json!({"member_id": "erased-999"})),
        )
        .await;
    assert_eq!(r.code(), "invalid_field", "{}", r.text);
    assert!(!export.text.contains("138 0000"), "{}", export.text);
    assert_eq!(
        export.body["events"][0]["event"]["member_id"],
        pseudonym.as_str()
    );
    assert_eq!(
        export.body["journal"].as_array().map(Vec::len),
        Some(kinds.len()),
        "the books are whole"
    );
    app.assert_ledger_balanced().await;
}

/// The reads a shop needs: members found by status, tier, plan and attributes a page at a
/// time; one order, one event, one programme version.
#[tokio::test]
async fn members_orders_events_and_versions_are_read() {
    use axum::http::StatusCode;
    let app = TestApp::sqlite().await;
    for (id, attributes) in [
        ("a", json!({"city": "Beijing", "vip": true})),
        ("b", json!({"city": "Shanghai"})),
        ("c", json!({"city": "Beijing", "vip": false})),
        ("d", json!({"city": "Beijing"})),
    ] {
        let r = app
            .call(
                "POST",
                "/v1/members",
                Some(json!({"member_id": id, "attributes": attributes})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let r = app
        .call_as(
            &app.storefront,
            "POST",
            "/v1/subscriptions",
            Some(json!({"member_id": "b", "plan": "vip88", "payment_ref": "p1"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    // Closing empties the attributes: `d` is found by its status only.
    app.call("POST", "/v1/members/d/close", None).await;
    let ids = |r: &Reply| -> Vec<String> {
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["member_id"].as_str().unwrap().to_owned())
            .collect()
    };
    for (query, want) in [
        ("", vec!["a", "b", "c", "d"]),
        ("?status=closed", vec!["d"]),
        ("?attribute=city:Beijing", vec!["a", "c"]),
        ("?attribute=city:Beijing&attribute=vip:true", vec!["a"]),
        ("?plan=vip88", vec!["b"]),
        ("?tier=member", vec!["a", "b", "c", "d"]),
        ("?tier=gold", vec![]),
    ] {
        let r = app.call("GET", &format!("/v1/members{query}"), None).await;
        assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.text);
        assert_eq!(ids(&r), want, "{query}");
    }
    let first = app.call("GET", "/v1/members?limit=2", None).await;
    assert_eq!(ids(&first), ["a", "b"]);
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let rest = app
        .call("GET", &format!("/v1/members?limit=2&cursor={cursor}"), None)
        .await;
    assert_eq!(ids(&rest), ["c", "d"]);
    assert!(rest.body["next_cursor"].is_null());
    for (query, code) in [
        ("?status=gone", "invalid_query"),
        ("?attribute=nokey", "invalid_query"),
        ("?attribute=a%22b:1", "invalid_query"),
        ("?colour=red", "invalid_query"),
        ("?limit=0", "page_size_out_of_range"),
    ] {
        let r = app.call("GET", &format!("/v1/members{query}"), None).await;
        assert_eq!(r.code(), code, "{query}: {}", r.text);
    }

    let r = app.call("POST", "/v1/events", Some(paid("e1", "a"))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let event = app.call("GET", "/v1/events/e1", None).await;
    assert_eq!(event.status, StatusCode::OK, "{}", event.text);
    assert_eq!(event.body["event"], r.body["event"]);
    assert_eq!(
        app.call("GET", "/v1/events/nope", None).await.code(),
        "event_not_found"
    );
    let order = app.call("GET", "/v1/orders/o-e1", None).await;
    assert_eq!(order.status, StatusCode::OK, "{}", order.text);
    assert_eq!(order.body["member_id"], "a");
    assert_eq!(order.body["total_minor"], 6600);
    assert_eq!(order.body["state"], "paid");
    assert!(
        order.body["points_earned"].as_i64().unwrap() > 0,
        "{}",
        order.text
    );
    assert!(order.body["commit"].is_null());
    assert_eq!(
        app.call("GET", "/v1/orders/nope", None).await.code(),
        "order_not_found"
    );
    let version = app.call("GET", "/v1/programme/versions/1", None).await;
    assert_eq!(version.status, StatusCode::OK, "{}", version.text);
    assert_eq!(version.body["source"], DEMO);
    assert_eq!(
        app.call("GET", "/v1/programme/versions/9", None)
            .await
            .code(),
        "version_not_found"
    );
    assert_eq!(
        app.call("GET", "/v1/programme/versions/x", None)
            .await
            .code(),
        "invalid_field"
    );
}
