use crate::helpers::*;
use serde_json::json;
use std::sync::Arc;
use tessera_engine::{Engine, SystemClock};

#[tokio::test]
async fn the_manual_clock_moves_forward_only_and_survives_a_restart() {
    let app = TestApp::sqlite().await;
    assert_eq!(
        app.call("GET", "/v1/admin/clock", None).await.body,
        json!({"now": START, "manual": true})
    );
    let later = "2026-12-01T00:00:00Z";
    let moved = app
        .call("POST", "/v1/admin/clock", Some(json!({"now": later})))
        .await;
    assert_eq!(
        moved.body,
        json!({"now": later, "manual": true}),
        "{}",
        moved.text
    );
    assert_eq!(
        app.call("POST", "/v1/admin/clock", Some(json!({"now": later})))
            .await
            .status,
        200,
        "same instant: no-op"
    );
    let back = app
        .call("POST", "/v1/admin/clock", Some(json!({"now": START})))
        .await;
    assert_eq!(back.code(), "clock_backwards");
    // Members created now carry the manual instant.
    app.add_member("u1").await;
    assert_eq!(
        app.call("GET", "/v1/members/u1", None).await.body["created_at"],
        later
    );
    // A restarted engine resumes where the clock stopped, and refuses to start earlier.
    let resumed = Engine::manual_clock(&app.store, None).await.unwrap();
    assert_eq!(tessera_engine::Clock::now(&resumed).to_string(), later);
    assert!(
        Engine::manual_clock(&app.store, Some(START.parse().unwrap()))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn the_system_clock_cannot_be_set() {
    let app = TestApp::sqlite().await;
    let engine = Arc::new(
        Engine::start(app.store.clone(), Arc::new(SystemClock), None)
            .await
            .unwrap(),
    );
    let router = tessera_api::app(engine);
    let app = TestApp { router, ..app };
    let r = app
        .call(
            "POST",
            "/v1/admin/clock",
            Some(json!({"now": "2030-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(r.code(), "clock_not_manual");
    assert_eq!(
        app.call("GET", "/v1/admin/clock", None).await.body["manual"],
        false
    );
}
