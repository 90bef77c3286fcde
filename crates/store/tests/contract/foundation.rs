//! The foundation tables: programme versions, API keys, members, events, idempotency
//! keys, the clock; and what every transaction promises (commit, rollback, locks).

use super::*;

both_backends!(migrations_run_twice, |url: String| async move {
    let store = store(&url).await;
    store.migrate().await.expect("a second migrate is a no-op");
    assert_eq!(store.count(Table::Members).await.unwrap(), 0);
});

both_backends!(programme_versions_are_numbered, |url: String| async move {
    let store = store(&url).await;
    assert_eq!(store.programme_latest().await.unwrap(), None);
    assert_eq!(store.programme_latest_version().await.unwrap(), None);
    for (i, source) in ["a", "b", "c"].iter().enumerate() {
        let mut tx = store.begin().await.unwrap();
        let row = tx.programme_insert(source, "sha", 10).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(row.version, i as i64 + 1);
        assert_eq!(
            store.programme_latest_version().await.unwrap(),
            Some(row.version)
        );
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
    assert!(store.idempotency_renew(1, "a", "t7", 60).await.unwrap());
    assert!(
        !store.idempotency_renew(1, "a", "other", 60).await.unwrap(),
        "another token renews nothing"
    );
    assert_eq!(
        claim("a", "s", "t8", 70, 50).await,
        IdempotencyClaim::InProgress
    );
    assert_eq!(
        claim("a", "s", "t8", 100, 61).await,
        IdempotencyClaim::Claimed
    );
    // The claim taken over belongs to its new token.
    assert!(!store.idempotency_renew(1, "a", "t7", 101).await.unwrap());
    assert!(!store
        .idempotency_complete(1, "a", "t7", 201, "{}")
        .await
        .unwrap());
    assert!(store
        .idempotency_complete(1, "a", "t8", 201, "{}")
        .await
        .unwrap());
});

fn key<'a>(hash: &'a str, prefix: &'a str, role: &'a str, now_us: i64) -> NewApiKey<'a> {
    NewApiKey {
        key_sha256: hash,
        prefix,
        role,
        partner: None,
        label: None,
        expires_at_us: None,
        now_us,
    }
}

both_backends!(api_keys_and_clock, |url: String| async move {
    let store = store(&url).await;
    assert_eq!(store.api_key_count("admin").await.unwrap(), 0);
    let mut tx = store.begin().await.unwrap();
    let id = tx
        .api_key_insert(&key("hash-1", "tsk_abc", "admin", 1))
        .await
        .unwrap()
        .id;
    assert!(matches!(
        tx.api_key_insert(&key("hash-1", "tsk_abc", "admin", 1))
            .await,
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
        .api_key_insert(&key("hash-1", "tsk_abc", "admin", 1))
        .await
        .unwrap()
        .id;
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

both_backends!(
    connect_names_the_backend_and_counts_commits,
    |url: String| async move {
        let store = store(&url).await;
        let expected = if url.starts_with("sqlite:") {
            "sqlite"
        } else {
            "postgres"
        };
        assert_eq!(store.backend_name(), expected);
        store.ping().await.unwrap();
        assert_eq!(store.generation(), 0, "migrations are no write transaction");
        let tx = store.begin().await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(store.generation(), 1);
        drop(store.begin().await.unwrap());
        assert_eq!(store.generation(), 1, "a rollback moves nothing");
        {
            let store = store.clone();
            store.begin().await.unwrap().commit().await.unwrap();
        }
        assert_eq!(store.generation(), 2, "clones share the counter");
        // The claim of an idempotency key commits a transaction of its own; its completion
        // is a single statement outside any `Tx`, and moves nothing.
        let request = IdempotencyRequest {
            api_key_id: 1,
            key: "k",
            route: "POST /v1/events",
            request_sha256: "s",
            token: "t",
            now_us: 1,
            stale_before_us: 0,
        };
        store.idempotency_begin(&request).await.unwrap();
        assert_eq!(store.generation(), 3);
        assert!(store
            .idempotency_complete(1, "k", "t", 200, "{}")
            .await
            .unwrap());
        assert_eq!(store.generation(), 3);

        // Another connection to the same database sees what this one committed.
        add_member(&store, "u1").await;
        let other = Store::connect(&url).await.unwrap();
        assert!(other.member_get("u1").await.unwrap().is_some());
        assert_eq!(other.generation(), 0, "each store counts its own commits");

        store.close().await;
        assert!(matches!(
            store.ping().await,
            Err(StoreError::Unavailable(_))
        ));
        assert!(matches!(
            store.begin().await,
            Err(StoreError::Unavailable(_))
        ));
    }
);

both_backends!(
    connect_existing_refuses_a_database_without_the_schema,
    |url: String| async move {
        // Before any migration: the SQLite file does not exist, the PostgreSQL database
        // has no tables.
        let refused = Store::connect_existing(&url).await;
        assert!(
            matches!(refused, Err(StoreError::Unavailable(_))),
            "{:?}",
            refused.err()
        );
        let store = store(&url).await;
        add_member(&store, "u1").await;
        let store = Store::connect_existing(&url).await.unwrap();
        assert_eq!(
            store.member_get("u1").await.unwrap().unwrap().external_id,
            "u1"
        );
    }
);

both_backends!(count_counts_each_table, |url: String| async move {
    let store = store(&url).await;
    let tables = [
        Table::Members,
        Table::Events,
        Table::ProgrammeVersions,
        Table::ApiKeys,
        Table::IdempotencyKeys,
        Table::PointEntries,
    ];
    for table in tables {
        assert_eq!(store.count(table).await.unwrap(), 0, "{table:?}");
    }
    let a = add_member(&store, "a").await;
    add_member(&store, "b").await;
    let mut tx = store.begin().await.unwrap();
    tx.events_insert_many(&[event("e1", a.id, "{}", "h"), event("e2", a.id, "{}", "h")])
        .await
        .unwrap();
    tx.programme_insert("p", "sha", 1).await.unwrap();
    tx.api_key_insert(&key("hash", "tsk", "admin", 1))
        .await
        .unwrap();
    tx.entries_insert(&[crate::points::entry(a.id, 1, &[])])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    store
        .idempotency_begin(&IdempotencyRequest {
            api_key_id: 1,
            key: "k",
            route: "r",
            request_sha256: "s",
            token: "t",
            now_us: 1,
            stale_before_us: 0,
        })
        .await
        .unwrap();
    let expected = [2, 2, 1, 1, 1, 1];
    for (table, n) in tables.into_iter().zip(expected) {
        assert_eq!(store.count(table).await.unwrap(), n, "{table:?}");
    }
});

both_backends!(
    a_dropped_transaction_leaves_no_table_touched,
    |url: String| async move {
        let store = store(&url).await;
        let mut tx = store.begin().await.unwrap();
        let m = tx.member_insert(&new_member("gone")).await.unwrap();
        tx.events_insert_many(&[event("e", m.id, "{}", "h")])
            .await
            .unwrap();
        tx.programme_insert("p", "sha", 1).await.unwrap();
        tx.api_key_insert(&key("hash", "tsk", "admin", 1))
            .await
            .unwrap();
        tx.clock_set(5).await.unwrap();
        tx.lots_insert(&[crate::points::lot(m.id, 1, "available", 5, 5)])
            .await
            .unwrap();
        tx.entries_insert(&[crate::points::entry(m.id, 1, &[])])
            .await
            .unwrap();
        assert!(tx.reward_take("r", Some(1)).await.unwrap());
        drop(tx);
        for table in [
            Table::Members,
            Table::Events,
            Table::ProgrammeVersions,
            Table::ApiKeys,
            Table::PointEntries,
        ] {
            assert_eq!(store.count(table).await.unwrap(), 0, "{table:?}");
        }
        assert_eq!(store.clock_get().await.unwrap(), None);
        assert_eq!(store.account_get(m.id).await.unwrap(), None);
        assert_eq!(store.lots_list(m.id, true).await.unwrap(), []);
        assert_eq!(store.generation(), 0);
        let mut tx = store.begin().await.unwrap();
        assert!(
            tx.reward_take("r", Some(1)).await.unwrap(),
            "the unit taken in the dropped transaction is back"
        );
    }
);

both_backends!(
    a_member_is_made_with_its_account_and_tier,
    |url: String| async move {
        let store = store(&url).await;
        let mut tx = store.begin().await.unwrap();
        let row = tx
            .member_insert(&NewMember {
                external_id: "r",
                attributes: r#"{"k":"v"}"#,
                referred_by_code: Some("REF1"),
                referral_code: Some("OWNCODE1"),
                now_us: 7,
            })
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(
            row,
            MemberRow {
                id: row.id,
                external_id: "r".into(),
                status: "active".into(),
                attributes: r#"{"k":"v"}"#.into(),
                referred_by_code: Some("REF1".into()),
                referral_code: Some("OWNCODE1".into()),
                created_at_us: 7,
                updated_at_us: 7,
                closed_at_us: None,
                erased_at_us: None,
            }
        );
        assert_eq!(store.member_get("r").await.unwrap(), Some(row.clone()));
        assert_eq!(
            store.account_get(row.id).await.unwrap(),
            Some(PointAccountRow {
                member_id: row.id,
                pending: 0,
                available: 0,
                debt: 0,
                next_lot_no: 1,
                next_entry_no: 1,
                paid_orders: 0,
                last_activity_us: None,
                inactive_at_us: None,
            })
        );
        assert_eq!(
            store.tier_get(row.id).await.unwrap(),
            Some(TierRow {
                member_id: row.id,
                next_history_no: 1,
                ..TierRow::default()
            })
        );

        // An update writes status, attributes and times; the external id and the referral
        // code are fixed at insert.
        let mut tx = store.begin().await.unwrap();
        assert_eq!(tx.member_for_update("nobody").await.unwrap(), None);
        let mut changed = row.clone();
        changed.status = "closed".into();
        changed.closed_at_us = Some(9);
        changed.updated_at_us = 9;
        changed.external_id = "renamed".into();
        changed.referred_by_code = None;
        tx.member_update(&changed).await.unwrap();
        tx.commit().await.unwrap();
        let stored = store.member_get("r").await.unwrap().unwrap();
        assert_eq!(
            (
                stored.status.as_str(),
                stored.closed_at_us,
                stored.updated_at_us
            ),
            ("closed", Some(9), 9)
        );
        assert_eq!(stored.referred_by_code.as_deref(), Some("REF1"));
        assert_eq!(store.member_get("renamed").await.unwrap(), None);
    }
);

both_backends!(member_ids_and_external_ids, |url: String| async move {
    let store = store(&url).await;
    let a = add_member(&store, "a").await;
    let b = add_member(&store, "b").await;
    assert!(b.id > a.id, "ids grow");
    assert_eq!(
        store.external_id_of(a.id).await.unwrap().as_deref(),
        Some("a")
    );
    assert_eq!(
        store.external_id_of(b.id).await.unwrap().as_deref(),
        Some("b")
    );
    assert_eq!(store.external_id_of(b.id + 1).await.unwrap(), None);
});

both_backends!(many_events_in_one_call, |url: String| async move {
    let store = store(&url).await;
    let m = add_member(&store, "m").await;
    // More rows than one statement carries (50) and more ids than one IN list (100).
    let ids: Vec<String> = (0..120).map(|i| format!("e{i:03}")).collect();
    let events: Vec<NewEvent> = ids.iter().map(|id| event(id, m.id, "{}", "h")).collect();
    let mut tx = store.begin().await.unwrap();
    let stored = tx.events_insert_many(&events).await.unwrap();
    assert_eq!(stored.len(), 120);
    assert!(stored.windows(2).all(|w| w[0].seq < w[1].seq));
    // The same id twice in one call is stored once.
    let twice = tx
        .events_insert_many(&[event("x", m.id, "{}", "1"), event("x", m.id, "{}", "2")])
        .await
        .unwrap();
    assert_eq!(twice.len(), 1);
    assert_eq!(twice[0].body_sha256, "1");
    let mut asked: Vec<String> = ids.clone();
    asked.extend((0..40).map(|i| format!("unknown{i}")));
    let asked: Vec<&str> = asked.iter().map(String::as_str).collect();
    let mut found = tx.events_get_many(&asked).await.unwrap();
    found.sort_by_key(|e| e.seq);
    assert_eq!(found, stored);
    tx.commit().await.unwrap();
    let mut paged = Vec::new();
    let mut after = 0;
    loop {
        let page = store.events_list(m.id, after, 50).await.unwrap();
        assert!(page.len() <= 50);
        let Some(last) = page.last() else { break };
        after = last.seq;
        paged.extend(page);
    }
    assert_eq!(paged.len(), 121);
    assert_eq!(paged[..120], stored[..]);
    assert_eq!(
        paged[0],
        EventRow {
            seq: stored[0].seq,
            event_id: "e000".into(),
            member_id: m.id,
            event_type: "activity".into(),
            order_id: None,
            occurred_at_us: 5,
            received_at_us: 6,
            body: "{}".into(),
            body_sha256: "h".into(),
        }
    );
});

both_backends!(programme_pages_end, |url: String| async move {
    let store = store(&url).await;
    let mut tx = store.begin().await.unwrap();
    let row = tx.programme_insert("src", "abc", 42).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        row,
        ProgrammeVersionRow {
            version: 1,
            source: "src".into(),
            sha256: "abc".into(),
            created_at_us: 42,
        }
    );
    assert_eq!(store.programme_latest().await.unwrap(), Some(row.clone()));
    assert_eq!(store.programme_versions(Some(1), 10).await.unwrap(), []);
    assert_eq!(store.programme_versions(None, 0).await.unwrap(), []);
    assert_eq!(store.programme_versions(None, 10).await.unwrap(), [row]);
});

both_backends!(api_key_rows_and_partners, |url: String| async move {
    let store = store(&url).await;
    let mut tx = store.begin().await.unwrap();
    let admin = tx
        .api_key_insert(&key("h1", "tsk_a", "admin", 3))
        .await
        .unwrap();
    let partner = tx
        .api_key_insert(&NewApiKey {
            partner: Some("acme"),
            label: Some("acme's checker"),
            expires_at_us: Some(99),
            ..key("h2", "tsk_p", "partner", 4)
        })
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let want = ApiKeyRow {
        id: partner.id,
        prefix: "tsk_p".into(),
        role: "partner".into(),
        partner: Some("acme".into()),
        label: Some("acme's checker".into()),
        created_at_us: 4,
        expires_at_us: Some(99),
        revoked_at_us: None,
        last_used_at_us: None,
    };
    assert_eq!(partner, want);
    assert_eq!(
        store.api_key_by_hash("h2").await.unwrap(),
        Some(want.clone())
    );
    assert_eq!(store.api_key_count("partner").await.unwrap(), 1);
    assert_eq!(store.api_key_count("nobody").await.unwrap(), 0);
    assert_eq!(
        store.api_key_partner(partner.id).await.unwrap().as_deref(),
        Some("acme")
    );
    assert_eq!(store.api_key_partner(admin.id).await.unwrap(), None);
    assert_eq!(store.api_key_partner(partner.id + 100).await.unwrap(), None);
    // Listed in id order, a page at a time.
    assert_eq!(
        store.api_keys_list(0, 10).await.unwrap(),
        [admin.clone(), want.clone()]
    );
    assert_eq!(store.api_keys_list(admin.id, 10).await.unwrap(), [want]);
    let admin_id = admin.id;
    assert_eq!(store.api_keys_list(0, 1).await.unwrap(), [admin]);
    // Use is recorded, never moved back.
    store.api_key_used(partner.id, 50).await.unwrap();
    store.api_key_used(partner.id, 40).await.unwrap();
    let used = store.api_key_by_hash("h2").await.unwrap().unwrap();
    assert_eq!(used.last_used_at_us, Some(50));
    // Revoked once: a second revocation keeps the first instant.
    let mut tx = store.begin().await.unwrap();
    let unrevoked = |rows: Vec<ApiKeyRow>| rows.iter().map(|k| k.id).collect::<Vec<_>>();
    assert_eq!(
        unrevoked(tx.api_keys_unrevoked_for_update("partner").await.unwrap()),
        [partner.id]
    );
    assert_eq!(
        tx.api_key_for_update(partner.id).await.unwrap(),
        Some(used.clone())
    );
    assert_eq!(tx.api_key_for_update(partner.id + 100).await.unwrap(), None);
    tx.api_key_revoke(partner.id, 60).await.unwrap();
    tx.api_key_revoke(partner.id, 70).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        store
            .api_key_by_hash("h2")
            .await
            .unwrap()
            .unwrap()
            .revoked_at_us,
        Some(60)
    );
    assert_eq!(store.api_key_count("partner").await.unwrap(), 0);
    let mut tx = store.begin().await.unwrap();
    assert_eq!(
        unrevoked(tx.api_keys_unrevoked_for_update("partner").await.unwrap()),
        Vec::<i64>::new()
    );
    assert_eq!(
        unrevoked(tx.api_keys_unrevoked_for_update("admin").await.unwrap()),
        [admin_id]
    );
});

both_backends!(the_clock_is_read_under_lock, |url: String| async move {
    let store = store(&url).await;
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.clock_get_for_update().await.unwrap(), None);
    tx.clock_set(5).await.unwrap();
    assert_eq!(
        tx.clock_get_for_update().await.unwrap(),
        Some(5),
        "a transaction reads its own write, and locks the row twice without deadlock"
    );
    assert_eq!(store.clock_get().await.unwrap(), None, "not committed yet");
    tx.commit().await.unwrap();
    assert_eq!(store.clock_get().await.unwrap(), Some(5));
    // The clock may move back: the store keeps what it is given.
    let mut tx = store.begin().await.unwrap();
    tx.clock_set(3).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.clock_get().await.unwrap(), Some(3));
});

both_backends!(
    locks_taken_twice_in_one_transaction_do_not_deadlock,
    |url: String| async move {
        let store = store(&url).await;
        let m = add_member(&store, "m").await;
        let mut tx = store.begin().await.unwrap();
        assert!(tx.member_for_update("m").await.unwrap().is_some());
        assert!(tx.member_for_update("m").await.unwrap().is_some());
        let locked = tx
            .members_with_accounts_for_update(&["m", "m"])
            .await
            .unwrap();
        assert_eq!(locked.len(), 1);
        let again = tx.member_account_for_update(m.id).await.unwrap().unwrap();
        assert_eq!(again.account, locked[0].account);
        tx.commit().await.unwrap();
    }
);

both_backends!(
    concurrent_writers_of_one_account_lose_no_update,
    |url: String| async move {
        let store = store(&url).await;
        let m = add_member(&store, "m").await;
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move {
                    let mut tx = store.begin().await.unwrap();
                    let mut row = tx.member_account_for_update(m.id).await.unwrap().unwrap();
                    row.account.available += 1;
                    tx.accounts_put_many(&[&row.account]).await.unwrap();
                    tx.commit().await.unwrap();
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(store.account_get(m.id).await.unwrap().unwrap().available, 8);
    }
);

both_backends!(a_snapshot_sees_one_instant, |url: String| async move {
    let store = store(&url).await;
    add_member(&store, "a").await;
    let b = add_member(&store, "b").await;
    let mut check_snapshot = store.check_snapshot().await.unwrap();
    assert_eq!(check_snapshot.member_count().await.unwrap(), 2);
    assert_eq!(check_snapshot.member_id_max().await.unwrap(), b.id);
    let c = add_member(&store, "c").await;
    assert_eq!(
        check_snapshot.member_count().await.unwrap(),
        2,
        "a member committed after the snapshot began is not in it"
    );
    assert_eq!(check_snapshot.member_id_max().await.unwrap(), b.id);
    drop(check_snapshot);
    let mut check_snapshot = store.check_snapshot().await.unwrap();
    assert_eq!(check_snapshot.member_count().await.unwrap(), 3);
    assert_eq!(check_snapshot.member_id_max().await.unwrap(), c.id);
});

both_backends!(
    an_empty_database_has_member_id_max_zero,
    |url: String| async move {
        let store = store(&url).await;
        let mut check_snapshot = store.check_snapshot().await.unwrap();
        assert_eq!(check_snapshot.member_count().await.unwrap(), 0);
        assert_eq!(check_snapshot.member_id_max().await.unwrap(), 0);
    }
);

both_backends!(the_schema_describes_itself, |url: String| async move {
    let store = store(&url).await;
    let schema = store.schema_description().await.unwrap();
    let columns = |table: &str| {
        schema
            .tables
            .iter()
            .find(|(name, _)| name == table)
            .map(|(_, columns)| columns.join(" "))
    };
    // A few tables in full (columns sorted); the migrations' own table is not one.
    let cases = [
        ("clock", Some("id now_us")),
        (
            "members",
            Some("attributes closed_at_us created_at_us erased_at_us external_id id referral_code referred_at_us referred_by_code referrer_id status updated_at_us"),
        ),
        ("job_marks", Some("done_until_us job")),
        ("order_owners", Some("member_id order_id")),
        ("_sqlx_migrations", None),
    ];
    for (table, expected) in cases {
        assert_eq!(columns(table).as_deref(), expected, "{table}");
    }
    let names: Vec<&str> = schema
        .tables
        .iter()
        .map(|(name, _)| name.as_str())
        .collect();
    assert!(
        names.windows(2).all(|w| w[0] < w[1]),
        "tables by name: {names:?}"
    );
    // Named indexes only: not those the database makes for keys and UNIQUE columns.
    for index in ["events_by_member", "coupons_issue", "renewals_due_state"] {
        assert!(
            schema.indexes.contains(&index.to_owned()),
            "{index}: {:?}",
            schema.indexes
        );
    }
    assert!(schema.indexes.windows(2).all(|w| w[0] < w[1]));
    assert!(
        !schema
            .indexes
            .iter()
            .any(|i| i.contains("autoindex") || i.ends_with("_pkey")),
        "{:?}",
        schema.indexes
    );
});

both_backends!(
    table_row_counts_cover_every_table,
    |url: String| async move {
        let store = store(&url).await;
        let a = add_member(&store, "a").await;
        add_member(&store, "b").await;
        let mut tx = store.begin().await.unwrap();
        tx.events_insert_many(&[event("e1", a.id, "{}", "h")])
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let counts = store.table_row_counts().await.unwrap();
        let schema = store.schema_description().await.unwrap();
        assert_eq!(
            counts.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>(),
            schema
                .tables
                .iter()
                .map(|(t, _)| t.as_str())
                .collect::<Vec<_>>()
        );
        // A member comes with a point account and a tier state.
        let expected = [
            ("events", 1),
            ("member_tiers", 2),
            ("members", 2),
            ("point_accounts", 2),
        ];
        for (table, n) in &counts {
            let want = expected
                .iter()
                .find(|(t, _)| t == table)
                .map_or(0, |(_, n)| *n);
            assert_eq!(*n, want, "{table}");
        }
    }
);

both_backends!(
    two_programme_versions_saved_at_once,
    |url: String| async move {
        let store = store(&url).await;
        let mut tx = store.begin().await.unwrap();
        assert_eq!(
            tx.programme_insert("a", "sha-a", 1).await.unwrap().version,
            1
        );
        // A second writer starts while the first has not committed.
        let second = {
            let store = store.clone();
            tokio::spawn(async move {
                let mut tx = store.begin().await?;
                let row = tx.programme_insert("b", "sha-b", 2).await?;
                tx.commit().await?;
                Ok::<_, StoreError>(row.version)
            })
        };
        if !is_sqlite(&store) {
            wait_for_a_lock_wait(&url).await;
        }
        tx.commit().await.unwrap();
        let second = second.await.unwrap();
        // `programme_insert` numbers a version `MAX(version) + 1` as its transaction sees
        // the table. On SQLite the one writer runs the second save after the first:
        // version 2. On PostgreSQL both read 0, the second waits on the first's key and
        // then fails with a conflict on the primary key, which the engine's
        // `put_programme` answers by trying again (tested through the API).
        if is_sqlite(&store) {
            assert_eq!(second.unwrap(), 2);
        } else {
            assert!(is_conflict(&second), "{second:?}");
        }
    }
);

/// Returns once some session of this PostgreSQL database waits on a lock. Polls, with a
/// bound, rather than sleeping for a guessed time.
async fn wait_for_a_lock_wait(url: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    for _ in 0..100_000 {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        if waiting > 0 {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("no session came to wait on a lock");
}
