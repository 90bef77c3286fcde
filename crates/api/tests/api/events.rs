use crate::helpers::*;
use serde_json::json;
use std::sync::Arc;
use tessera_store::Table;
use tessera_testkit::Backend;

async fn one_event_posted_32_times_at_once_is_stored_once(backend: Backend) {
    let Some(app) = TestApp::on(backend).await else {
        return;
    };
    app.add_member("u1").await;
    let app = Arc::new(app);
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move {
                app.call("POST", "/v1/events", Some(paid("e-same", "u1")))
                    .await
            })
        })
        .collect();
    let mut replies = Vec::new();
    for t in tasks {
        replies.push(t.await.unwrap());
    }
    let created = replies.iter().filter(|r| r.status == 201).count();
    let repeated = replies.iter().filter(|r| r.status == 200).count();
    assert_eq!(
        (created, repeated),
        (1, 31),
        "{:?}",
        replies.iter().map(|r| &r.text).collect::<Vec<_>>()
    );
    assert!(
        replies.iter().all(|r| r.body == replies[0].body),
        "every answer is the first result"
    );
    assert_eq!(app.store.count(Table::Events).await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_duplicates_sqlite() {
    one_event_posted_32_times_at_once_is_stored_once(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_duplicates_postgres() {
    one_event_posted_32_times_at_once_is_stored_once(Backend::Postgres).await;
}

#[tokio::test]
async fn every_event_type_is_accepted_and_canonical() {
    let app = TestApp::sqlite().await;
    app.add_member("u1").await;
    let events = [
        paid("e1", "u1"),
        json!({"id": "e2", "type": "order.completed", "member_id": "u1", "occurred_at": START, "order_id": "o-e1"}),
        json!({"id": "e3", "type": "order.refunded", "member_id": "u1", "occurred_at": START, "order_id": "o-e1",
               "refund": {"lines": [{"sku": "A1", "quantity": 1}]}}),
        json!({"id": "e4", "type": "order.refunded", "member_id": "u1", "occurred_at": START, "order_id": "o-e1", "refund": {"amount_minor": 500}}),
        json!({"id": "e5", "type": "activity", "member_id": "u1", "occurred_at": START, "activity": "review"}),
        json!({"id": "e6", "type": "activity", "member_id": "u1", "occurred_at": START, "activity": "check_in"}),
        json!({"id": "e7", "type": "activity", "member_id": "u1", "occurred_at": START, "activity": "share"}),
        json!({"id": "e8", "type": "activity", "member_id": "u1", "occurred_at": START, "activity": "survey_answered"}),
    ];
    for e in &events {
        let r = app.call("POST", "/v1/events", Some(e.clone())).await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    // The same instant written in another offset is the same body.
    let mut same = paid("e1", "u1");
    same["occurred_at"] = json!("2026-11-22T02:00:00Z");
    let r = app.call("POST", "/v1/events", Some(same)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["event"]["occurred_at"], "2026-11-22T02:00:00Z");
}

#[tokio::test]
async fn a_batch_answers_each_item_and_pages_list_them() {
    let app = TestApp::sqlite().await;
    app.add_member("u1").await;
    app.call("POST", "/v1/events", Some(paid("e0", "u1"))).await;
    let mut items: Vec<_> = (1..=5).map(|i| paid(&format!("e{i}"), "u1")).collect();
    items.push(paid("e0", "u1")); // a duplicate of an earlier event
    items.push(paid("x", "nobody")); // an unknown member
    items.push(json!({"id": "broken"})); // no type
    items.push(paid("e1", "u1")); // a duplicate within the batch
    let r = app
        .call("POST", "/v1/events/batch", Some(json!({ "events": items })))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (
            r.body["accepted"].as_u64(),
            r.body["duplicates"].as_u64(),
            r.body["rejected"].as_u64()
        ),
        (Some(5), Some(2), Some(2))
    );
    let statuses: Vec<_> = r.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [201, 201, 201, 201, 201, 200, 404, 422, 200]);
    assert_eq!(r.body["results"][6]["error"]["code"], "member_not_found");

    let mut seen = Vec::new();
    let mut path = "/v1/members/u1/events?limit=4".to_owned();
    loop {
        let page = app.call("GET", &path, None).await;
        assert_eq!(page.status, 200, "{}", page.text);
        for item in page.body["items"].as_array().unwrap() {
            seen.push(item["event"]["id"].as_str().unwrap().to_owned());
        }
        match page.body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/members/u1/events?limit=4&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, ["e0", "e1", "e2", "e3", "e4", "e5"]);
}
