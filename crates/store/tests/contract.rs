//! The store contract: every test here runs against SQLite and against PostgreSQL, and
//! both must behave the same.

use tessera_store::*;
use tessera_testkit::both_backends;

async fn store(url: &str) -> Store {
    let store = Store::connect(url).await.expect("connect");
    store.migrate().await.expect("migrate");
    store
}

fn new_member(external_id: &str) -> NewMember<'_> {
    NewMember {
        external_id,
        attributes: "{}",
        referred_by_code: None,
        now_us: 1_000,
    }
}

async fn add_member(store: &Store, external_id: &str) -> MemberRow {
    let mut tx = store.begin().await.unwrap();
    let row = tx.member_insert(&new_member(external_id)).await.unwrap();
    tx.commit().await.unwrap();
    row
}

fn event<'a>(event_id: &'a str, member_id: i64, body: &'a str, sha: &'a str) -> NewEvent<'a> {
    NewEvent {
        event_id,
        member_id,
        event_type: "activity",
        order_id: None,
        occurred_at_us: 5,
        received_at_us: 6,
        body,
        body_sha256: sha,
    }
}

both_backends!(migrations_run_twice, |url: String| async move {
    let store = store(&url).await;
    store.migrate().await.expect("a second migrate is a no-op");
    assert_eq!(store.count(Table::Members).await.unwrap(), 0);
});

both_backends!(programme_versions_are_numbered, |url: String| async move {
    let store = store(&url).await;
    assert_eq!(store.programme_latest().await.unwrap(), None);
    for (i, source) in ["a", "b", "c"].iter().enumerate() {
        let mut tx = store.begin().await.unwrap();
        let row = tx.programme_insert(source, "sha", 10).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(row.version, i as i64 + 1);
    }
    assert_eq!(store.programme_latest().await.unwrap().unwrap().source, "c");
    let page = store.programme_versions(None, 2).await.unwrap();
    assert_eq!(page.iter().map(|r| r.version).collect::<Vec<_>>(), [3, 2]);
    let next = store.programme_versions(Some(2), 2).await.unwrap();
    assert_eq!(next.iter().map(|r| r.version).collect::<Vec<_>>(), [1]);
});

both_backends!(
    a_rolled_back_transaction_leaves_nothing,
    |url: String| async move {
        let store = store(&url).await;
        let mut tx = store.begin().await.unwrap();
        tx.member_insert(&new_member("gone")).await.unwrap();
        drop(tx);
        assert_eq!(store.member_get("gone").await.unwrap(), None);
    }
);

both_backends!(members_are_unique_and_updatable, |url: String| async move {
    let store = store(&url).await;
    let row = add_member(&store, "u1").await;
    let mut tx = store.begin().await.unwrap();
    let err = tx.member_insert(&new_member("u1")).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    drop(tx);
    let mut tx = store.begin().await.unwrap();
    let mut locked = tx.member_for_update("u1").await.unwrap().unwrap();
    assert_eq!(locked, row);
    locked.status = "frozen".into();
    locked.attributes = r#"{"a":1}"#.into();
    locked.updated_at_us = 2_000;
    tx.member_update(&locked).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.member_get("u1").await.unwrap().unwrap(), locked);
    assert_eq!(store.member_get("u2").await.unwrap(), None);
});

both_backends!(events_are_stored_once_per_id, |url: String| async move {
    let store = store(&url).await;
    let member = add_member(&store, "u1").await;
    let mut tx = store.begin().await.unwrap();
    let first = tx
        .events_insert_many(&[event("e1", member.id, "{}", "h1")])
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    let again = tx
        .events_insert_many(&[event("e1", member.id, "{\"x\":1}", "h2")])
        .await
        .unwrap();
    assert!(again.is_empty(), "a taken id is skipped");
    assert_eq!(
        tx.events_get_many(&["e1", "e2"]).await.unwrap(),
        first,
        "the first row is stored, whatever the second body"
    );
    tx.commit().await.unwrap();
    assert_eq!(store.count(Table::Events).await.unwrap(), 1);
});

both_backends!(
    one_event_id_sent_32_times_at_once_is_stored_once,
    |url: String| async move {
        let store = store(&url).await;
        let member = add_member(&store, "u1").await;
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move {
                    let mut tx = store.begin().await.unwrap();
                    let inserted = tx
                        .events_insert_many(&[event("same", member.id, "{}", "h")])
                        .await
                        .unwrap();
                    tx.commit().await.unwrap();
                    inserted.len()
                })
            })
            .collect();
        let mut inserted = 0;
        for t in tasks {
            inserted += t.await.unwrap();
        }
        assert_eq!(inserted, 1);
        assert_eq!(store.count(Table::Events).await.unwrap(), 1);
    }
);

both_backends!(events_page_in_arrival_order, |url: String| async move {
    let store = store(&url).await;
    let a = add_member(&store, "a").await;
    let b = add_member(&store, "b").await;
    let mut tx = store.begin().await.unwrap();
    let ids: Vec<(String, String)> = (0..5).map(|i| (format!("a{i}"), format!("b{i}"))).collect();
    let events: Vec<_> = ids
        .iter()
        .flat_map(|(ea, eb)| [event(ea, a.id, "{}", "h"), event(eb, b.id, "{}", "h")])
        .collect();
    assert_eq!(tx.events_insert_many(&events).await.unwrap().len(), 10);
    tx.commit().await.unwrap();
    let first = store.events_list(a.id, 0, 3).await.unwrap();
    assert_eq!(
        first
            .iter()
            .map(|e| e.event_id.as_str())
            .collect::<Vec<_>>(),
        ["a0", "a1", "a2"]
    );
    let rest = store.events_list(a.id, first[2].seq, 3).await.unwrap();
    assert_eq!(
        rest.iter().map(|e| e.event_id.as_str()).collect::<Vec<_>>(),
        ["a3", "a4"]
    );
});

both_backends!(idempotency_claims, |url: String| async move {
    let store = store(&url).await;
    let begin = |api_key_id: i64,
                 key: &'static str,
                 route: &'static str,
                 sha: &'static str,
                 token: &'static str,
                 now: i64,
                 stale: i64| {
        let store = store.clone();
        async move {
            store
                .idempotency_begin(&IdempotencyRequest {
                    api_key_id,
                    key,
                    route,
                    request_sha256: sha,
                    token,
                    now_us: now,
                    stale_before_us: stale,
                })
                .await
                .unwrap()
        }
    };
    let claim =
        |key: &'static str, sha: &'static str, token: &'static str, now: i64, stale: i64| {
            begin(1, key, "POST /v1/events", sha, token, now, stale)
        };
    assert_eq!(
        claim("k", "s1", "t1", 10, 0).await,
        IdempotencyClaim::Claimed
    );
    assert_eq!(
        claim("k", "s1", "t2", 11, 0).await,
        IdempotencyClaim::InProgress
    );
    assert_eq!(
        claim("k", "s2", "t2", 11, 0).await,
        IdempotencyClaim::Mismatch
    );
    // The same key on another route is its own refusal, before the body is compared.
    assert_eq!(
        begin(1, "k", "POST /v1/members", "s2", "t2", 11, 0).await,
        IdempotencyClaim::OtherRoute {
            route: "POST /v1/events".into()
        }
    );
    // Only the claim's own token completes it.
    assert!(!store
        .idempotency_complete(1, "k", "t2", 201, "{}")
        .await
        .unwrap());
    assert!(store
        .idempotency_complete(1, "k", "t1", 201, "{\"ok\":true}")
        .await
        .unwrap());
    assert!(!store
        .idempotency_complete(1, "k", "t1", 200, "{}")
        .await
        .unwrap());
    assert_eq!(
        claim("k", "s1", "t3", 12, 0).await,
        IdempotencyClaim::Done {
            status: 201,
            body: "{\"ok\":true}".into()
        }
    );
    // Another caller's key of the same name is another key.
    assert_eq!(
        begin(2, "k", "POST /v1/events", "s9", "t4", 12, 0).await,
        IdempotencyClaim::Claimed
    );
    // An abandoned claim can be claimed again (another token cannot abandon it).
    assert_eq!(
        claim("a", "s", "t5", 10, 0).await,
        IdempotencyClaim::Claimed
    );
    store.idempotency_abandon(1, "a", "t6").await.unwrap();
    assert_eq!(
        claim("a", "s", "t6", 10, 0).await,
        IdempotencyClaim::InProgress
    );
    store.idempotency_abandon(1, "a", "t5").await.unwrap();
    assert_eq!(
        claim("a", "s", "t7", 10, 0).await,
        IdempotencyClaim::Claimed
    );
    // A renewed lease is not stale; one not renewed since `stale` is taken over.
    store.idempotency_renew(1, "a", "t7", 60).await.unwrap();
    assert_eq!(
        claim("a", "s", "t8", 70, 50).await,
        IdempotencyClaim::InProgress
    );
    assert_eq!(
        claim("a", "s", "t8", 100, 61).await,
        IdempotencyClaim::Claimed
    );
    // The claim taken over belongs to its new token.
    assert!(!store
        .idempotency_complete(1, "a", "t7", 201, "{}")
        .await
        .unwrap());
    assert!(store
        .idempotency_complete(1, "a", "t8", 201, "{}")
        .await
        .unwrap());
});

both_backends!(api_keys_and_clock, |url: String| async move {
    let store = store(&url).await;
    assert_eq!(store.api_key_count("admin").await.unwrap(), 0);
    let mut tx = store.begin().await.unwrap();
    let id = tx
        .api_key_insert("hash-1", "tsk_abc", "admin", 1)
        .await
        .unwrap();
    assert!(matches!(
        tx.api_key_insert("hash-1", "tsk_abc", "admin", 1).await,
        Err(StoreError::Conflict(_))
    ));
    drop(tx);
    assert_eq!(
        store.api_key_by_hash("hash-1").await.unwrap(),
        None,
        "rolled back"
    );
    let mut tx = store.begin().await.unwrap();
    let id2 = tx
        .api_key_insert("hash-1", "tsk_abc", "admin", 1)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(id2 >= id);
    assert_eq!(
        store.api_key_by_hash("hash-1").await.unwrap().unwrap().role,
        "admin"
    );
    assert_eq!(store.api_key_count("admin").await.unwrap(), 1);

    assert_eq!(store.clock_get().await.unwrap(), None);
    for now in [100, 200] {
        let mut tx = store.begin().await.unwrap();
        tx.clock_set(now).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(store.clock_get().await.unwrap(), Some(now));
    }
});

#[tokio::test]
async fn an_unknown_url_is_refused() {
    assert!(matches!(
        Store::connect("mysql://x").await,
        Err(StoreError::UnsupportedUrl(_))
    ));
}
