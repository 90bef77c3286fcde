//! API keys through `/v1/admin/keys`: made with a role, partner, label and expiry; listed
//! without the keys themselves; revoked and rotated, refused at once on this process.

use crate::helpers::*;
use axum::http::StatusCode;
use serde_json::{json, Value};

async fn make(app: &TestApp, body: Value) -> Reply {
    app.call("POST", "/v1/admin/keys", Some(body)).await
}

async fn listed(app: &TestApp) -> Vec<Value> {
    let r = app.call("GET", "/v1/admin/keys?limit=200", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn keys_are_made_listed_revoked_and_rotated() {
    let app = TestApp::sqlite().await;
    app.add_member("m").await;
    let r = make(&app, json!({"role": "storefront", "label": "checkout"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let key = r.body["key"].as_str().unwrap().to_owned();
    let id = r.body["id"].as_i64().unwrap();
    assert!(key.starts_with(r.body["prefix"].as_str().unwrap()));
    assert_eq!(
        (&r.body["role"], &r.body["label"]),
        (&json!("storefront"), &json!("checkout"))
    );
    // The key works for its role, and its use is recorded.
    let m = app.call_as(&key, "GET", "/v1/members/m", None).await;
    assert_eq!(m.status, StatusCode::OK, "{}", m.text);
    let forbidden = app.call_as(&key, "GET", "/v1/admin/keys", None).await;
    assert_eq!(forbidden.code(), "forbidden");
    let all = listed(&app).await;
    let mine = all.iter().find(|k| k["id"] == id).unwrap();
    assert!(mine["last_used_at"].is_string(), "{mine}");
    assert!(
        all.iter().all(|k| k.get("key").is_none()),
        "a listing never shows a key"
    );

    // Rotated: a new key with the same role and label; the old one is refused at once.
    let r = app
        .call("POST", &format!("/v1/admin/keys/{id}/rotate"), None)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let rotated = r.body["key"].as_str().unwrap().to_owned();
    let rotated_id = r.body["id"].as_i64().unwrap();
    assert_ne!(rotated_id, id);
    assert_eq!(r.body["label"], "checkout");
    assert_eq!(
        app.call_as(&key, "GET", "/v1/members/m", None).await.code(),
        "unauthenticated"
    );
    assert_eq!(
        app.call_as(&rotated, "GET", "/v1/members/m", None)
            .await
            .status,
        StatusCode::OK
    );
    let again = app
        .call("POST", &format!("/v1/admin/keys/{id}/rotate"), None)
        .await;
    assert_eq!(again.code(), "key_revoked", "{}", again.text);

    // Revoked: refused at once; revoking again answers as the first time.
    let r = app
        .call("POST", &format!("/v1/admin/keys/{rotated_id}/revoke"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let revoked_at = r.body["revoked_at"].clone();
    assert!(revoked_at.is_string());
    assert_eq!(
        app.call_as(&rotated, "GET", "/v1/members/m", None)
            .await
            .code(),
        "unauthenticated"
    );
    let r = app
        .call("POST", &format!("/v1/admin/keys/{rotated_id}/revoke"), None)
        .await;
    assert_eq!(r.body["revoked_at"], revoked_at);
    for (path, code) in [
        ("/v1/admin/keys/999/revoke", "key_not_found"),
        ("/v1/admin/keys/999/rotate", "key_not_found"),
        ("/v1/admin/keys/0/revoke", "invalid_field"),
        ("/v1/admin/keys/x/rotate", "invalid_field"),
    ] {
        assert_eq!(app.call("POST", path, None).await.code(), code, "{path}");
    }
}

#[tokio::test]
async fn keys_refused_as_made() {
    let app = TestApp::sqlite().await;
    // A partner's key names a partner the programme declares; no other role names one.
    let r = make(&app, json!({"role": "partner", "partner": "iqiyi"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["partner"], "iqiyi");
    for (body, code, field) in [
        (
            json!({"role": "partner", "partner": "netflix"}),
            "unknown_partner",
            None,
        ),
        (json!({"role": "partner"}), "invalid_field", Some("partner")),
        (
            json!({"role": "storefront", "partner": "iqiyi"}),
            "invalid_field",
            Some("partner"),
        ),
        (json!({"role": "root"}), "invalid_field", Some("role")),
        (
            json!({"role": "admin", "label": ""}),
            "invalid_field",
            Some("label"),
        ),
        (
            json!({"role": "admin", "label": "x".repeat(129)}),
            "invalid_field",
            Some("label"),
        ),
        (
            json!({"role": "admin", "label": "red\u{1b}[31m"}),
            "invalid_field",
            Some("label"),
        ),
        (
            json!({"role": "admin", "expires_at": "2000-01-01T00:00:00Z"}),
            "invalid_field",
            Some("expires_at"),
        ),
        (
            json!({"role": "admin", "expires_at": "soon"}),
            "invalid_field",
            Some("expires_at"),
        ),
        (
            json!({"role": "admin", "colour": "red"}),
            "invalid_request",
            None,
        ),
    ] {
        let r = make(&app, body.clone()).await;
        assert_eq!(r.code(), code, "{body}: {}", r.text);
        if let Some(field) = field {
            assert_eq!(r.body["error"]["field"], field, "{body}");
        }
    }
    // An answer that holds a key is stored nowhere: no Idempotency-Key.
    let r = app
        .send(
            axum::http::Request::builder()
                .method("POST")
                .uri("/v1/admin/keys")
                .header("authorization", format!("Bearer {}", app.admin))
                .header("content-type", "application/json")
                .header("idempotency-key", "k-1")
                .body(axum::body::Body::from(r#"{"role":"admin"}"#))
                .unwrap(),
        )
        .await;
    assert_eq!(r.code(), "idempotency_not_supported", "{}", r.text);
}

/// A key past its expiry is refused; the last admin key cannot be revoked.
#[tokio::test]
async fn expired_keys_and_the_last_admin_key() {
    let app = TestApp::sqlite().await;
    // Instants are kept to the microsecond; a whole second keeps its text.
    let soon = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second() + 3600)
        .unwrap()
        .to_string();
    let r = make(&app, json!({"role": "storefront", "expires_at": soon})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["expires_at"], json!(soon));
    // One stored as already expired (the route refuses to make one).
    let plain = "tsk_expired_for_the_test";
    let mut tx = app.store.begin().await.unwrap();
    for (plain, role) in [(plain, "storefront"), ("tsk_expired_admin", "admin")] {
        tx.api_key_insert(&tessera_store::NewApiKey {
            key_sha256: &tessera_engine::keys::key_sha256(plain),
            prefix: "tsk_expire",
            role,
            partner: None,
            label: None,
            expires_at_us: Some(1),
            now_us: 0,
        })
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    assert_eq!(
        app.call_as(plain, "GET", "/v1/programme", None)
            .await
            .code(),
        "unauthenticated"
    );

    let admins: Vec<i64> = listed(&app)
        .await
        .iter()
        .filter(|k| k["role"] == "admin" && k["revoked_at"].is_null() && k["expires_at"].is_null())
        .map(|k| k["id"].as_i64().unwrap())
        .collect();
    assert_eq!(admins.len(), 1);
    let r = app
        .call(
            "POST",
            &format!("/v1/admin/keys/{}/revoke", admins[0]),
            None,
        )
        .await;
    assert_eq!(
        r.code(),
        "last_admin_key",
        "an expired admin key lets nobody in, so it does not count: {}",
        r.text
    );
    // With a second admin key, the first can go.
    let second = make(&app, json!({"role": "admin"})).await.body["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .call_as(
            &second,
            "POST",
            &format!("/v1/admin/keys/{}/revoke", admins[0]),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        app.call("GET", "/v1/admin/keys", None).await.code(),
        "unauthenticated"
    );
}
