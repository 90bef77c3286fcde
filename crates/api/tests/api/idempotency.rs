use crate::helpers::*;
use axum::body::Body;
use axum::http::Request;

fn post(app: &TestApp, key: &str, body: &str) -> Request<Body> {
    Request::post("/v1/members")
        .header("authorization", format!("Bearer {}", app.admin))
        .header("content-type", "application/json")
        .header("idempotency-key", key)
        .body(Body::from(body.to_owned()))
        .unwrap()
}

#[tokio::test]
async fn the_same_key_and_body_replay_the_first_answer() {
    let app = TestApp::sqlite().await;
    let first = app.send(post(&app, "k1", r#"{"member_id":"u1"}"#)).await;
    assert_eq!(first.status, 201);
    assert!(first.headers.get("idempotent-replayed").is_none());
    let again = app.send(post(&app, "k1", r#"{"member_id":"u1"}"#)).await;
    assert_eq!(again.status, 201, "not member_exists: the first answer");
    assert_eq!(again.text, first.text);
    assert_eq!(again.headers.get("idempotent-replayed").unwrap(), "true");
    let other = app.send(post(&app, "k1", r#"{"member_id":"u2"}"#)).await;
    assert_eq!(other.code(), "idempotency_conflict");
    assert_eq!(
        app.call("GET", "/v1/members/u2", None).await.code(),
        "member_not_found"
    );
    // Without the key, the same body is a new request and meets the duplicate.
    let plain = app
        .call(
            "POST",
            "/v1/members",
            Some(serde_json::json!({"member_id": "u1"})),
        )
        .await;
    assert_eq!(plain.code(), "member_exists");
}

#[tokio::test]
async fn a_refused_answer_frees_the_key_for_a_corrected_body() {
    let app = TestApp::sqlite().await;
    let first = app.send(post(&app, "k2", r#"{"member_id":""}"#)).await;
    assert_eq!(first.code(), "invalid_field");
    // The same body again runs again (it is refused again, not replayed) ...
    let again = app.send(post(&app, "k2", r#"{"member_id":""}"#)).await;
    assert_eq!(again.code(), "invalid_field");
    assert!(again.headers.get("idempotent-replayed").is_none());
    // ... and the client may correct the body under the same key.
    let fixed = app.send(post(&app, "k2", r#"{"member_id":"u9"}"#)).await;
    assert_eq!(fixed.status, 201, "{}", fixed.text);
    let replay = app.send(post(&app, "k2", r#"{"member_id":"u9"}"#)).await;
    assert_eq!(replay.text, fixed.text);
    assert_eq!(replay.headers.get("idempotent-replayed").unwrap(), "true");
}

#[tokio::test]
async fn bodies_are_compared_as_json_and_routes_apart() {
    let app = TestApp::sqlite().await;
    let first = app
        .send(post(
            &app,
            "k3",
            r#"{"member_id":"u3","attributes":{"a":1,"b":2}}"#,
        ))
        .await;
    assert_eq!(first.status, 201, "{}", first.text);
    // Other spacing and key order: the same JSON, so the same request.
    let same = app
        .send(post(
            &app,
            "k3",
            "{ \"attributes\": {\"b\": 2, \"a\": 1},\n  \"member_id\": \"u3\" }",
        ))
        .await;
    assert_eq!(same.text, first.text);
    assert_eq!(same.headers.get("idempotent-replayed").unwrap(), "true");
    // The key on another route is refused with its own code, naming the first route.
    let other_route = Request::post("/v1/events")
        .header("authorization", format!("Bearer {}", app.admin))
        .header("content-type", "application/json")
        .header("idempotency-key", "k3")
        .body(Body::from(r#"{"member_id":"u3"}"#))
        .unwrap();
    let other = app.send(other_route).await;
    assert_eq!(other.status, 422);
    assert_eq!(other.code(), "idempotency_key_reused");
    assert!(other.text.contains("POST /v1/members"), "{}", other.text);
}
