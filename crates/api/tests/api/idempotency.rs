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
    let first = app.send(post(&app, "k1", r#"{"external_id":"u1"}"#)).await;
    assert_eq!(first.status, 201);
    assert!(first.headers.get("idempotent-replayed").is_none());
    let again = app.send(post(&app, "k1", r#"{"external_id":"u1"}"#)).await;
    assert_eq!(again.status, 201, "not member_exists: the first answer");
    assert_eq!(again.text, first.text);
    assert_eq!(again.headers.get("idempotent-replayed").unwrap(), "true");
    let other = app.send(post(&app, "k1", r#"{"external_id":"u2"}"#)).await;
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
            Some(serde_json::json!({"external_id": "u1"})),
        )
        .await;
    assert_eq!(plain.code(), "member_exists");
}

#[tokio::test]
async fn a_refused_answer_is_replayed_too() {
    let app = TestApp::sqlite().await;
    let first = app.send(post(&app, "k2", r#"{"external_id":""}"#)).await;
    assert_eq!(first.code(), "invalid_field");
    let again = app.send(post(&app, "k2", r#"{"external_id":""}"#)).await;
    assert_eq!(again.text, first.text);
    assert_eq!(again.headers.get("idempotent-replayed").unwrap(), "true");
}
