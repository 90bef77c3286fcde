use crate::helpers::*;
use serde_json::json;

#[tokio::test]
async fn roles_open_only_their_routes() {
    let app = TestApp::sqlite().await;
    app.add_member("u1").await;
    let source = DEMO.replace("Tessera demo shop", "Renamed");
    assert_eq!(
        app.put_programme(&app.storefront, &source).await.code(),
        "forbidden"
    );
    assert_eq!(
        app.call("GET", "/v1/programme", None).await.body["name"],
        "Tessera demo shop"
    );
    for path in ["/v1/members/u1", "/v1/members/u1/events", "/v1/programme"] {
        assert_eq!(
            app.call_as(&app.partner, "GET", path, None).await.code(),
            "forbidden",
            "{path}"
        );
    }
    // The storefront reads members and sends events; only an admin changes a member.
    assert_eq!(
        app.call_as(&app.storefront, "GET", "/v1/members/u1", None)
            .await
            .status,
        200
    );
    assert_eq!(
        app.call_as(
            &app.storefront,
            "POST",
            "/v1/events",
            Some(paid("e1", "u1"))
        )
        .await
        .status,
        201
    );
    let patch = Some(json!({"status": "frozen"}));
    assert_eq!(
        app.call_as(&app.storefront, "PATCH", "/v1/members/u1", patch.clone())
            .await
            .code(),
        "forbidden"
    );
    assert_eq!(app.call("PATCH", "/v1/members/u1", patch).await.status, 200);
    assert_eq!(app.put_programme(&app.admin, &source).await.status, 200);
}

#[tokio::test]
async fn keys_are_stored_hashed() {
    let app = TestApp::sqlite().await;
    let path = app.url.trim_start_matches("sqlite://").to_owned();
    app.store.close().await;
    let bytes = std::fs::read(&path).unwrap();
    let wal = std::fs::read(format!("{path}-wal")).unwrap_or_default();
    for key in [&app.admin, &app.storefront, &app.partner] {
        let secret = key.trim_start_matches("tsk_").as_bytes();
        let found = |hay: &[u8]| hay.windows(secret.len()).any(|w| w == secret);
        assert!(
            !found(&bytes) && !found(&wal),
            "a key is stored in clear text"
        );
    }
}

#[tokio::test]
async fn public_routes_need_no_key() {
    let app = TestApp::sqlite().await;
    let health = app.call_as("", "GET", "/healthz", None).await;
    assert_eq!(health.status, 200);
    assert_eq!(health.body["database"], "sqlite");
    assert_eq!(health.body["programme_version"], 1);
    app.call("GET", "/v1/members/nobody", None).await;
    // Business counters: an event taken in, points issued, adjusted and spent, a
    // subscription, a run of the jobs.
    app.add_member("m").await;
    let order = serde_json::json!({"id": "e-1", "type": "order.paid", "member_id": "m",
        "occurred_at": "2026-11-23T00:00:00Z", "order_id": "o-1",
        "lines": [{"sku": "A", "category": "misc", "quantity": 1, "unit_price_minor": 100}], "total_minor": 100});
    assert_eq!(
        app.call("POST", "/v1/events", Some(order)).await.status,
        201
    );
    let plan = serde_json::json!({"member_id": "m", "plan": "vip88", "payment_ref": "p-1"});
    let bought = app.call("POST", "/v1/subscriptions", Some(plan)).await;
    assert_eq!(bought.status, 201, "{}", bought.text);
    let adjust = serde_json::json!({"id": "a-1", "points": 500, "reason": "welcome"});
    let r = app
        .call("POST", "/v1/members/m/points/adjustments", Some(adjust))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let redeem = serde_json::json!({"id": "r-1", "points": 100});
    let r = app
        .call("POST", "/v1/members/m/points/redemptions", Some(redeem))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    app.engine.tick().await.unwrap();
    let metrics = app.call_as("", "GET", "/metrics", None).await;
    for line in [
        "tessera_events_ingested_total{type=\"order.paid\"}",
        "tessera_points_total{movement=\"issued\"}",
        "tessera_points_total{movement=\"adjusted\"}",
        "tessera_points_total{movement=\"spent\"}",
        "tessera_subscriptions{status=\"active\"}",
        "tessera_job_runs_total",
        "tessera_job_run_duration_seconds_bucket",
    ] {
        assert!(metrics.text.contains(line), "{line} in {}", metrics.text);
    }
    assert_eq!(metrics.status, 200);
    assert!(
        metrics.text.contains("tessera_http_requests_total{method=\"GET\",route=\"/v1/members/{member_id}\",status=\"404\"}"),
        "{}",
        metrics.text
    );
    assert!(
        metrics
            .text
            .contains("tessera_http_request_duration_seconds_bucket"),
        "latency histogram"
    );
}

/// With `--key-rate`, each key has its own bucket: over it, `429 rate_limited` with
/// `Retry-After`, and another key is not slowed.
#[tokio::test]
async fn each_key_has_its_own_rate() {
    use tower::ServiceExt;
    let app = TestApp::sqlite().await;
    let router = tessera_api::app_with(
        app.engine.clone(),
        tessera_api::AppOptions {
            key_rate: Some(tessera_api::KeyRate {
                per_second: 1,
                burst: 2,
            }),
        },
    );
    let get = |key: &str| {
        axum::http::Request::builder()
            .uri("/v1/programme")
            .header("authorization", format!("Bearer {key}"))
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let r = router.clone().oneshot(get(&app.admin)).await.unwrap();
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            assert_eq!(r.headers()["retry-after"], "1");
            let body = axum::body::to_bytes(r.into_body(), usize::MAX)
                .await
                .unwrap();
            let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(body["error"]["code"], "rate_limited");
        }
    }
    assert_eq!(statuses, [200, 200, 429]);
    let other = router.clone().oneshot(get(&app.storefront)).await.unwrap();
    assert_eq!(other.status(), 200, "another key has its own bucket");
    // The plain app has no limit.
    for _ in 0..5 {
        assert_eq!(app.call("GET", "/v1/programme", None).await.status, 200);
    }
}
