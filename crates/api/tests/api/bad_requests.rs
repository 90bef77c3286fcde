//! Bad requests, each answered with its documented 4xx code and changing nothing.

use crate::helpers::*;
use axum::body::Body;
use axum::http::Request;
use serde_json::json;

#[derive(Clone, Copy)]
enum Key {
    Admin,
    Storefront,
    Partner,
    None,
    Unknown,
    Basic,
}

struct Case {
    name: &'static str,
    key: Key,
    method: &'static str,
    path: String,
    content_type: Option<&'static str>,
    body: String,
    headers: Vec<(&'static str, String)>,
    status: u16,
    code: &'static str,
}

fn case(
    name: &'static str,
    method: &'static str,
    path: &str,
    body: impl Into<String>,
    status: u16,
    code: &'static str,
) -> Case {
    Case {
        name,
        key: Key::Admin,
        method,
        path: path.to_owned(),
        content_type: Some("application/json"),
        body: body.into(),
        headers: vec![],
        status,
        code,
    }
}

impl Case {
    fn key(mut self, key: Key) -> Self {
        self.key = key;
        self
    }
    fn content_type(mut self, ct: Option<&'static str>) -> Self {
        self.content_type = ct;
        self
    }
    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

fn event_with(change: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut e = paid("e-new", "u1");
    change(&mut e);
    e.to_string()
}

fn cases() -> Vec<Case> {
    let long_id = "x".repeat(129);
    let big_attributes =
        json!({"member_id": "big", "attributes": {"s": "x".repeat(17 * 1024)}}).to_string();
    let huge_body = format!(
        "{{\"member_id\":\"h\",\"attributes\":{{\"s\":\"{}\"}}}}",
        "x".repeat(300 * 1024)
    );
    let batch = |n: usize| {
        json!({"events": (0..n).map(|i| paid(&format!("b{i}"), "u1")).collect::<Vec<_>>()})
            .to_string()
    };
    let activity = |name: &str| {
        json!({"id": "a-new", "type": "activity", "member_id": "u1", "occurred_at": START, "activity": name}).to_string()
    };
    vec![
        case("malformed JSON", "POST", "/v1/members", "{", 400, "malformed_json"),
        case("trailing garbage", "POST", "/v1/members", r#"{"member_id":"x"} x"#, 400, "malformed_json"),
        case("wrong type", "POST", "/v1/members", r#"{"member_id":5}"#, 422, "invalid_request"),
        case("missing field", "POST", "/v1/members", "{}", 422, "invalid_request"),
        case("unknown field", "POST", "/v1/members", r#"{"member_id":"x","colour":1}"#, 422, "invalid_request"),
        case("empty id", "POST", "/v1/members", r#"{"member_id":""}"#, 422, "invalid_field"),
        case("id too long", "POST", "/v1/members", json!({"member_id": long_id}).to_string(), 422, "string_too_long"),
        case("attributes not an object", "POST", "/v1/members", r#"{"member_id":"x","attributes":[1]}"#, 422, "invalid_field"),
        case("attributes too large", "POST", "/v1/members", big_attributes, 422, "attributes_too_large"),
        case("duplicate member", "POST", "/v1/members", r#"{"member_id":"u1"}"#, 409, "member_exists"),
        case("wrong content type", "POST", "/v1/members", r#"{"member_id":"x"}"#, 415, "unsupported_media_type").content_type(Some("text/plain")),
        case("no content type", "POST", "/v1/members", r#"{"member_id":"x"}"#, 415, "unsupported_media_type").content_type(None),
        case("body too large", "POST", "/v1/members", huge_body, 413, "body_too_large"),
        case("unknown member", "GET", "/v1/members/nobody", "", 404, "member_not_found"),
        case("patch unknown member", "PATCH", "/v1/members/nobody", r#"{"status":"frozen"}"#, 404, "member_not_found"),
        case("patch to closed", "PATCH", "/v1/members/u1", r#"{"status":"closed"}"#, 422, "invalid_request"),
        case("patch a closed member", "PATCH", "/v1/members/gone", r#"{"status":"active"}"#, 409, "member_closed"),
        case("event for unknown member", "POST", "/v1/events", paid("e-x", "nobody").to_string(), 404, "member_not_found"),
        case("event with a bad instant", "POST", "/v1/events", event_with(|e| e["occurred_at"] = json!("yesterday")), 422, "invalid_field"),
        case("event of unknown type", "POST", "/v1/events", event_with(|e| e["type"] = json!("order.lost")), 422, "invalid_request"),
        case("negative price", "POST", "/v1/events", event_with(|e| e["lines"][0]["unit_price_minor"] = json!(-1)), 422, "invalid_field"),
        case("zero quantity", "POST", "/v1/events", event_with(|e| e["lines"][0]["quantity"] = json!(0)), 422, "invalid_field"),
        case("total above the limit", "POST", "/v1/events", event_with(|e| e["total_minor"] = json!(1_000_000_000_001i64)), 422, "invalid_field"),
        case("quantity above the limit", "POST", "/v1/events", event_with(|e| e["lines"][0]["quantity"] = json!(10_001)), 422, "invalid_field"),
        case("too many lines", "POST", "/v1/events", event_with(|e| e["lines"] = json!(vec![e["lines"][0].clone(); 501])), 422, "too_many_items"),
        case("price beyond 64 bits", "POST", "/v1/events", event_with(|e| e["lines"][0]["unit_price_minor"] = json!(u64::MAX)), 422, "invalid_request"),
        case("too many tags", "POST", "/v1/events", event_with(|e| e["lines"][0]["tags"] = json!((0..33).map(|i| format!("t{i}")).collect::<Vec<_>>())), 422, "too_many_items"),
        case("same event id, other body", "POST", "/v1/events", event_with(|e| { e["id"] = json!("e1"); e["total_minor"] = json!(1) }), 409, "event_conflict"),
        case("undeclared activity", "POST", "/v1/events", activity("juggling"), 422, "unknown_activity"),
        case("refund by lines and amount", "POST", "/v1/events",
            json!({"id": "r1", "type": "order.refunded", "member_id": "u1", "occurred_at": START, "order_id": "o-e1",
                   "refund": {"lines": [{"sku": "A1", "quantity": 1}], "amount_minor": 100}}).to_string(), 422, "invalid_request"),
        case("refund of no lines", "POST", "/v1/events",
            json!({"id": "r1", "type": "order.refunded", "member_id": "u1", "occurred_at": START, "order_id": "o-e1",
                   "refund": {"lines": []}}).to_string(), 422, "invalid_field"),
        case("order for a closed member", "POST", "/v1/events", paid("e-gone", "gone").to_string(), 409, "member_closed"),
        case("batch too large", "POST", "/v1/events/batch", batch(1001), 422, "batch_too_large"),
        case("empty batch", "POST", "/v1/events/batch", r#"{"events":[]}"#, 422, "invalid_field"),
        case("batch not a list", "POST", "/v1/events/batch", r#"{"events":{}}"#, 422, "invalid_request"),
        case("no key", "GET", "/v1/members/u1", "", 401, "unauthenticated").key(Key::None),
        case("unknown key", "GET", "/v1/members/u1", "", 401, "unauthenticated").key(Key::Unknown),
        case("basic auth", "GET", "/v1/members/u1", "", 401, "unauthenticated").key(Key::Basic),
        case("storefront replaces the programme", "PUT", "/v1/programme", "name = \"x\"", 403, "forbidden").key(Key::Storefront),
        case("partner reads a member", "GET", "/v1/members/u1", "", 403, "forbidden").key(Key::Partner),
        case("partner reads events", "GET", "/v1/members/u1/events", "", 403, "forbidden").key(Key::Partner),
        case("partner posts an event", "POST", "/v1/events", paid("e-p", "u1").to_string(), 403, "forbidden").key(Key::Partner),
        case("storefront moves the clock", "POST", "/v1/admin/clock", json!({"now": "2030-01-01T00:00:00Z"}).to_string(), 403, "forbidden").key(Key::Storefront),
        case("storefront closes a member", "POST", "/v1/members/u1/close", "", 403, "forbidden").key(Key::Storefront),
        case("idempotency key reused with another body", "POST", "/v1/members", r#"{"member_id":"other"}"#, 409, "idempotency_conflict")
            .header("idempotency-key", "k-used"),
        case("idempotency key too long", "POST", "/v1/members", r#"{"member_id":"x"}"#, 400, "idempotency_key_invalid")
            .header("idempotency-key", "k".repeat(256)),
        case("clock backwards", "POST", "/v1/admin/clock", json!({"now": "2020-01-01T00:00:00Z"}).to_string(), 409, "clock_backwards"),
        case("clock not an instant", "POST", "/v1/admin/clock", r#"{"now":"soon"}"#, 422, "invalid_field"),
        case("page size zero", "GET", "/v1/members/u1/events?limit=0", "", 422, "page_size_out_of_range"),
        case("page size too big", "GET", "/v1/members/u1/events?limit=500", "", 422, "page_size_out_of_range"),
        case("forged cursor", "GET", "/v1/members/u1/events?cursor=abc", "", 400, "invalid_cursor"),
        case("cursor of another listing", "GET", "/v1/programme/versions?cursor=ZToxMA", "", 400, "invalid_cursor"),
        case("unknown query parameter", "GET", "/v1/members/u1/events?colour=red", "", 400, "invalid_query"),
        case("unknown route", "GET", "/v1/nothing", "", 404, "route_not_found"),
        case("wrong method", "DELETE", "/v1/members/u1", "", 405, "method_not_allowed"),
        case("invalid programme", "PUT", "/v1/programme", "name = \"x\"\ncurrency = \"CNY\"\n", 422, "programme_invalid").content_type(Some("application/toml")),
    ]
}

#[tokio::test]
async fn every_bad_request_gets_its_code_and_changes_nothing() {
    let app = TestApp::sqlite().await;
    app.call(
        "POST",
        "/v1/members",
        Some(json!({"member_id": "u1", "attributes": {"city": "Beijing"}})),
    )
    .await;
    assert_eq!(
        app.call("POST", "/v1/events", Some(paid("e1", "u1")))
            .await
            .status,
        201
    );
    app.add_member("gone").await;
    assert_eq!(
        app.call("POST", "/v1/members/gone/close", None)
            .await
            .status,
        200
    );
    let first = app
        .send(
            Request::post("/v1/members")
                .header("authorization", format!("Bearer {}", app.admin))
                .header("content-type", "application/json")
                .header("idempotency-key", "k-used")
                .body(Body::from(r#"{"member_id":"used"}"#))
                .unwrap(),
        )
        .await;
    assert_eq!(first.status, 201);

    let member_before = app.call("GET", "/v1/members/u1", None).await.body;
    let events_before = app.call("GET", "/v1/members/u1/events", None).await.body;
    let programme_before = app.call("GET", "/v1/programme", None).await.body;
    let counts_before = app.counts().await;
    let cases = cases();
    assert!(cases.len() >= 30, "the table keeps at least 30 cases");
    // Every error body, whole, in one snapshot: a change of a message or a field path is
    // a change of the API that a reviewer sees.
    let mut bodies = serde_json::Map::new();
    for c in cases {
        let mut req = Request::builder().method(c.method).uri(&c.path);
        req = match c.key {
            Key::Admin => req.header("authorization", format!("Bearer {}", app.admin)),
            Key::Storefront => req.header("authorization", format!("Bearer {}", app.storefront)),
            Key::Partner => req.header("authorization", format!("Bearer {}", app.partner)),
            Key::None => req,
            Key::Unknown => req.header("authorization", "Bearer tsk_not-a-key"),
            Key::Basic => req.header("authorization", "Basic dXNlcjpwYXNz"),
        };
        if let Some(ct) = c.content_type {
            req = req.header("content-type", ct);
        }
        for (name, value) in &c.headers {
            req = req.header(*name, value);
        }
        let reply = app
            .send(req.body(Body::from(c.body.clone())).unwrap())
            .await;
        assert_eq!(
            reply.status.as_u16(),
            c.status,
            "{}: {}",
            c.name,
            reply.text
        );
        assert_eq!(reply.code(), c.code, "{}: {}", c.name, reply.text);
        assert!(
            reply.body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{}",
            c.name
        );
        assert_eq!(
            app.counts().await,
            counts_before,
            "{} changed a table",
            c.name
        );
        bodies.insert(
            format!("{} {} ({})", c.status, c.code, c.name),
            reply.body.clone(),
        );
    }
    insta::assert_json_snapshot!("bad_request_bodies", bodies);
    assert_eq!(
        app.call("GET", "/v1/members/u1", None).await.body,
        member_before
    );
    assert_eq!(
        app.call("GET", "/v1/members/u1/events", None).await.body,
        events_before
    );
    assert_eq!(
        app.call("GET", "/v1/programme", None).await.body,
        programme_before
    );
}

/// A refused body names the field at fault by its full path, and its message speaks of
/// JSON (an integer, an object), never of the server's types.
#[tokio::test]
async fn refusals_name_the_full_path_and_no_server_type() {
    let app = TestApp::sqlite().await;
    app.add_member("m").await;
    let order = |lines: serde_json::Value| {
        json!({"id": "e1", "type": "order.paid", "member_id": "m",
            "occurred_at": "2026-11-22T10:00:00+08:00", "order_id": "o1",
            "lines": lines, "total_minor": 100})
    };
    let line = json!({"sku": "A", "category": "c", "quantity": 1, "unit_price_minor": 100});
    let mut bad_price = line.clone();
    bad_price["unit_price_minor"] = json!("x");
    let mut bad_quantity = line.clone();
    bad_quantity["quantity"] = json!(-1);
    let refund = |refund: serde_json::Value| {
        json!({"id": "e2", "type": "order.refunded", "member_id": "m",
            "occurred_at": "2026-11-22T10:00:00+08:00", "order_id": "o1", "refund": refund})
    };
    let cases: Vec<(&str, &str, serde_json::Value, &str)> = vec![
        (
            "a string for a price",
            "/v1/events",
            order(json!([line, bad_price])),
            "lines[1].unit_price_minor",
        ),
        (
            "a negative quantity",
            "/v1/events",
            order(json!([bad_quantity])),
            "lines[0].quantity",
        ),
        (
            "a refund of neither form",
            "/v1/events",
            refund(json!({})),
            "refund",
        ),
        (
            "a string for a refund amount",
            "/v1/events",
            refund(json!({"amount_minor": "x"})),
            "refund.amount_minor",
        ),
        (
            "a refund line without a sku",
            "/v1/events",
            refund(json!({"lines": [{"quantity": 1}]})),
            "refund.lines[0].sku",
        ),
        (
            "an unknown event type",
            "/v1/events",
            json!({"type": "order.lost"}),
            "type",
        ),
        (
            "a number for an id",
            "/v1/members",
            json!({"member_id": 5}),
            "member_id",
        ),
        ("an array for a member", "/v1/members", json!([]), ""),
        (
            "a number for a plan",
            "/v1/subscriptions",
            json!({"member_id": "m", "plan": 5, "payment_ref": "p"}),
            "plan",
        ),
        (
            "a string for a quantity in a quote",
            "/v1/quotes",
            json!({"member_id": "m", "lines": [line, line, {"sku": "A", "category": "c", "quantity": "2", "unit_price_minor": 1}]}),
            "lines[2].quantity",
        ),
        (
            "an unknown field",
            "/v1/members",
            json!({"member_id": "x", "colour": "red"}),
            "colour",
        ),
    ];
    const SERVER_TYPES: &[&str] = &[
        "i64", "i32", "u32", "u64", "u16", "u8", "f64", "usize", "struct", "enum", "variant",
        "Box", "RawValue",
    ];
    for (what, path, body, field) in cases {
        let r = app.call("POST", path, Some(body)).await;
        assert!(
            r.status.is_client_error(),
            "{what}: {} {}",
            r.status,
            r.text
        );
        assert_eq!(
            r.body["error"]["field"].as_str().unwrap_or_default(),
            field,
            "{what}: {}",
            r.text
        );
        let message = r.body["error"]["message"].as_str().unwrap();
        for word in SERVER_TYPES {
            assert!(!message.contains(word), "{what}: `{word}` in {message}");
        }
    }
}
