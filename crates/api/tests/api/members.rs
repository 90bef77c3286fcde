use crate::helpers::*;
use serde_json::json;

#[tokio::test]
async fn a_member_lives_and_closes() {
    let app = TestApp::sqlite().await;
    let created = app
        .call("POST", "/v1/members", Some(json!({"external_id": "u1", "attributes": {"city": "Beijing", "vip": {"since": 2020}}, "referral_code": "FRIEND1"})))
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
            Some(json!({"external_id": "caf\u{00E9}"})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    // The same name with a combining accent is the same member, in the body and the path.
    let again = app
        .call(
            "POST",
            "/v1/members",
            Some(json!({"external_id": "cafe\u{0301}"})),
        )
        .await;
    assert_eq!(again.code(), "member_exists", "{}", again.text);
    let found = app.call("GET", "/v1/members/cafe%CC%81", None).await;
    assert_eq!(found.status, 200, "{}", found.text);
    assert_eq!(found.body["external_id"], "caf\u{00E9}");
    // An invisible character is refused where it stands.
    for id in ["u\u{200B}1", "\u{FEFF}u1", "u1\u{202E}"] {
        let r = app
            .call("POST", "/v1/members", Some(json!({"external_id": id})))
            .await;
        assert_eq!(r.code(), "invalid_field", "{id:?}: {}", r.text);
        assert_eq!(r.body["error"]["field"], "external_id");
    }
    let r = app.call("GET", "/v1/members/u%E2%80%8B1", None).await;
    assert_eq!(r.code(), "invalid_field", "{}", r.text);
}
