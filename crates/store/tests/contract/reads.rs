//! The operator's reads: members found by what they are, one order, one event, one
//! programme version.

use super::*;

both_backends!(
    members_are_found_by_status_tier_plan_and_attributes,
    |url: String| async move {
        let store = store(&url).await;
        let mut tx = store.begin().await.unwrap();
        let mut ids = Vec::new();
        for (name, attributes) in [
            ("a", r#"{"city":"Beijing","vip":true,"level":3}"#),
            ("b", r#"{"city":"Shanghai","vip":false}"#),
            ("c", r#"{"city":"Beijing","code":"007"}"#),
            ("d", "{}"),
        ] {
            let row = tx
                .member_insert(&NewMember {
                    external_id: name,
                    attributes,
                    referred_by_code: None,
                    referral_code: None,
                    now_us: 1,
                })
                .await
                .unwrap();
            ids.push(row.id);
        }
        tx.commit().await.unwrap();
        let (a, b, c, d) = (ids[0], ids[1], ids[2], ids[3]);
        let mut closed = store.member_get("d").await.unwrap().unwrap();
        closed.status = "closed".into();
        let mut tx = store.begin().await.unwrap();
        tx.member_update(&closed).await.unwrap();
        tx.commit().await.unwrap();
        crate::tiers::put_tiers(
            &store,
            &[
                TierRow {
                    member_id: a,
                    tier: Some("gold".into()),
                    ..TierRow::default()
                },
                TierRow {
                    member_id: b,
                    tier: Some("base".into()),
                    ..TierRow::default()
                },
            ],
        )
        .await;
        let mut lapsed = crate::subscriptions::subscription(c, "plus");
        lapsed.status = "expired".into();
        crate::subscriptions::add_subscriptions(
            &store,
            &[crate::subscriptions::subscription(b, "plus"), lapsed],
        )
        .await;

        let find = |search: MemberSearch<'static>| {
            let store = store.clone();
            async move {
                store
                    .members_search(&search, 0, 10)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|m| m.external_id)
                    .collect::<Vec<_>>()
            }
        };
        let base = MemberSearch {
            live_statuses: &["trialing", "active", "grace"],
            now_us: 2_000,
            ..MemberSearch::default()
        };
        assert_eq!(find(base.clone()).await, ["a", "b", "c", "d"]);
        assert_eq!(
            find(MemberSearch {
                status: Some("closed"),
                ..base.clone()
            })
            .await,
            ["d"]
        );
        assert_eq!(
            find(MemberSearch {
                tier: Some("gold"),
                ..base.clone()
            })
            .await,
            ["a"]
        );
        // The first tier counts members with no tier recorded.
        assert_eq!(
            find(MemberSearch {
                tier: Some("base"),
                tier_is_first: true,
                ..base.clone()
            })
            .await,
            ["b", "c", "d"]
        );
        assert_eq!(
            find(MemberSearch {
                plan: Some("plus"),
                ..base.clone()
            })
            .await,
            ["b"]
        );
        for (attributes, want) in [
            (&[("city", "\"Beijing\"")][..], &["a", "c"][..]),
            (&[("city", "\"Beijing\""), ("vip", "true")][..], &["a"][..]),
            (&[("vip", "false")][..], &["b"][..]),
            (&[("level", "3")][..], &["a"][..]),
            (&[("code", "\"007\"")][..], &["c"][..]),
            (&[("code", "7")][..], &[][..]),
            (&[("it's", "\"x\"")][..], &[][..]),
        ] {
            let search = MemberSearch {
                attributes,
                ..base.clone()
            };
            let found: Vec<String> = store
                .members_search(&search, 0, 10)
                .await
                .unwrap()
                .into_iter()
                .map(|m| m.external_id)
                .collect();
            assert_eq!(found, want, "{attributes:?}");
        }
        // Paged by internal number.
        let page = store.members_search(&base, a, 2).await.unwrap();
        assert_eq!(page.iter().map(|m| m.id).collect::<Vec<_>>(), [b, c]);
        assert!(page.iter().all(|m| m.id != d));
    }
);

both_backends!(
    an_order_an_event_and_a_version_are_read_by_id,
    |url: String| async move {
        let store = store(&url).await;
        let m = add_member(&store, "m").await.id;
        let mut tx = store.begin().await.unwrap();
        tx.events_insert_many(&[event("e1", m, "{\"x\":1}", "sha")])
            .await
            .unwrap();
        tx.programme_insert("name = \"p\"", "sha-p", 5)
            .await
            .unwrap();
        tx.order_owners_insert(&[("o1", m)]).await.unwrap();
        tx.orders_put_many(&[crate::points::order(m, "o1")])
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let e = store.event_by_id("e1").await.unwrap().unwrap();
        assert_eq!((e.member_id, e.body.as_str()), (m, "{\"x\":1}"));
        assert!(store.event_by_id("e2").await.unwrap().is_none());
        let mut tx = store.begin().await.unwrap();
        assert!(tx
            .programme_latest_for_update()
            .await
            .unwrap()
            .is_some_and(|v| v.version == 1));
        tx.programme_insert("name = \"q\"", "sha-q", 6)
            .await
            .unwrap();
        assert_eq!(
            tx.programme_latest_for_update()
                .await
                .unwrap()
                .map(|v| v.sha256),
            Some("sha-q".to_owned())
        );
        drop(tx);
        let v = store.programme_version(1).await.unwrap().unwrap();
        assert_eq!(
            (v.source.as_str(), v.sha256.as_str()),
            ("name = \"p\"", "sha-p")
        );
        assert!(store.programme_version(2).await.unwrap().is_none());
        let o = store.order_record("o1").await.unwrap().unwrap();
        assert_eq!(
            (
                o.order.order_id.as_str(),
                o.external_id.as_str(),
                o.commit_summary
            ),
            ("o1", "m", None)
        );
        assert!(store.order_record("o2").await.unwrap().is_none());
    }
);
