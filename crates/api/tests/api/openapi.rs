use crate::helpers::*;
use std::collections::BTreeSet;
use tessera_api::error::ErrorCode;

/// Every route the router serves, as (method, path).
const ROUTES: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("get", "/v1/programme"),
    ("put", "/v1/programme"),
    ("get", "/v1/programme/versions"),
    ("post", "/v1/programme/dry-run"),
    ("post", "/v1/members"),
    ("get", "/v1/members/{member_id}"),
    ("patch", "/v1/members/{member_id}"),
    ("post", "/v1/members/{member_id}/close"),
    ("post", "/v1/members/{member_id}/erase"),
    ("get", "/v1/members"),
    ("get", "/v1/events/{event_id}"),
    ("get", "/v1/programme/versions/{version}"),
    ("get", "/v1/orders/{order_id}"),
    ("get", "/v1/members/{member_id}/export"),
    ("post", "/v1/events"),
    ("post", "/v1/events/batch"),
    ("get", "/v1/members/{member_id}/events"),
    ("get", "/v1/members/{member_id}/points"),
    ("get", "/v1/members/{member_id}/ledger"),
    ("post", "/v1/members/{member_id}/points/redemptions"),
    ("post", "/v1/members/{member_id}/points/adjustments"),
    ("get", "/v1/points/expiring"),
    ("get", "/v1/members/{member_id}/tier"),
    ("get", "/v1/members/{member_id}/tier/history"),
    ("get", "/v1/admin/clock"),
    ("post", "/v1/admin/clock"),
    ("get", "/v1/admin/keys"),
    ("post", "/v1/admin/keys"),
    ("post", "/v1/admin/keys/{id}/revoke"),
    ("post", "/v1/admin/keys/{id}/rotate"),
    ("post", "/v1/subscriptions"),
    ("get", "/v1/subscriptions/{id}"),
    ("post", "/v1/subscriptions/{id}/payments"),
    ("post", "/v1/subscriptions/{id}/cancel"),
    ("post", "/v1/subscriptions/{id}/refunds"),
    ("get", "/v1/members/{member_id}/subscriptions"),
    ("get", "/v1/members/{member_id}/plans"),
    ("get", "/v1/members/{member_id}/entitlements"),
    ("get", "/v1/renewals"),
    ("get", "/v1/admin/code-pools/{pool}"),
    ("post", "/v1/admin/code-pools/{pool}"),
    ("get", "/v1/partner/members/{member_id}"),
    ("post", "/v1/partner/redemptions"),
    ("post", "/v1/quotes"),
    ("post", "/v1/orders"),
    ("post", "/v1/orders/{order_id}/refunds"),
    ("get", "/v1/members/{member_id}/stored-value"),
    ("get", "/v1/members/{member_id}/referrals"),
    ("post", "/v1/members/{member_id}/referrer"),
    ("get", "/v1/referrals"),
    ("get", "/v1/offers/{offer_id}"),
    ("post", "/v1/offers/{offer_id}/exposures"),
    ("post", "/v1/offers/{offer_id}/acceptances"),
    ("get", "/v1/members/{member_id}/offers"),
    ("post", "/v1/members/{member_id}/stored-value"),
    ("post", "/v1/members/{member_id}/stored-value/refunds"),
    ("get", "/v1/members/{member_id}/coupons"),
    ("post", "/v1/members/{member_id}/coupons"),
];

#[tokio::test]
async fn the_document_is_openapi_3_1_and_lists_every_route() {
    let app = TestApp::sqlite().await;
    let doc = app.call_as("", "GET", "/openapi.json", None).await.body;
    assert_eq!(doc["openapi"], "3.1.0");
    let mut listed = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            listed.insert((method.clone(), path.clone()));
        }
    }
    let expected: BTreeSet<_> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(listed, expected);
    // Every listed route answers something other than route_not_found.
    for (method, path) in ROUTES {
        let path = path
            .replace("{member_id}", "nobody")
            .replace("{id}", "1")
            .replace("{pool}", "nothing")
            .replace("{order_id}", "o-1");
        let reply = app.call(&method.to_uppercase(), &path, None).await;
        assert_ne!(reply.code(), "route_not_found", "{method} {path}");
    }
    // Every schema a response names exists.
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let text = doc.to_string();
    for part in text.split("#/components/schemas/").skip(1) {
        let name = part.split('"').next().unwrap();
        assert!(schemas.contains_key(name), "missing schema {name}");
    }
}

#[test]
fn the_error_table_in_the_docs_matches_the_code() {
    let docs = include_str!("../../../../docs/ERRORS.md");
    let mut numbers = BTreeSet::new();
    for code in ErrorCode::ALL {
        let row = format!(
            "| {} | `{}` | {} |",
            code.number(),
            code.as_str(),
            code.status().as_u16()
        );
        assert!(docs.contains(&row), "docs/ERRORS.md lacks the row `{row}`");
        assert!(
            numbers.insert(code.number()),
            "number {} is used twice",
            code.number()
        );
    }
}

/// The document reads as one: every schema and property is described (a property that
/// refers to a schema is described by it), every request body has an example, the event
/// types have a discriminator, the error codes are an enum, and there is a server.
#[tokio::test]
async fn every_schema_property_and_request_is_described() {
    let app = TestApp::sqlite().await;
    let doc = app.call_as("", "GET", "/openapi.json", None).await.body;
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let described = |schema: &serde_json::Value| -> bool {
        if schema["description"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
        {
            return true;
        }
        // A reference (alone, or next to null) is described by the schema it names.
        let refs: Vec<&str> = std::iter::once(schema)
            .chain(schema["oneOf"].as_array().into_iter().flatten())
            .chain(schema["allOf"].as_array().into_iter().flatten())
            .chain(schema["items"].as_object().map(|_| &schema["items"]))
            .filter_map(|s| s["$ref"].as_str())
            .collect();
        !refs.is_empty()
            && refs.iter().all(|r| {
                let name = r.trim_start_matches("#/components/schemas/");
                schemas[name]["description"]
                    .as_str()
                    .is_some_and(|d| !d.is_empty())
            })
    };
    let mut missing = Vec::new();
    for (name, schema) in schemas {
        if !described(schema) {
            missing.push(name.clone());
        }
        for (property, p) in schema["properties"].as_object().into_iter().flatten() {
            if !described(p) {
                missing.push(format!("{name}.{property}"));
            }
        }
    }
    assert!(missing.is_empty(), "not described: {missing:?}");
    let mut without_example = Vec::new();
    for (path, methods) in doc["paths"].as_object().unwrap() {
        for (method, op) in methods.as_object().unwrap() {
            for (media, content) in op["requestBody"]["content"]
                .as_object()
                .into_iter()
                .flatten()
            {
                let named = content["schema"]["$ref"]
                    .as_str()
                    .map(|r| &schemas[r.trim_start_matches("#/components/schemas/")]);
                if content.get("example").is_none()
                    && named.is_none_or(|s| s.get("example").is_none())
                {
                    without_example.push(format!("{method} {path} {media}"));
                }
            }
        }
    }
    assert!(
        without_example.is_empty(),
        "no example: {without_example:?}"
    );
    let mapping = doc["components"]["schemas"]["EventIn"]["discriminator"]["mapping"]
        .as_object()
        .unwrap();
    assert_eq!(mapping.len(), 4);
    let codes = doc["components"]["schemas"]["ErrorDetail"]["properties"]["code"]["enum"]
        .as_array()
        .unwrap();
    assert_eq!(codes.len(), ErrorCode::ALL.len());
    assert!(doc["servers"][0]["url"].is_string());
}
