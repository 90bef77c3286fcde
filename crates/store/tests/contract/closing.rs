//! A member's account closed and their personal data erased.

use super::*;
use tessera_domain::coupons::CouponState;

both_backends!(
    coupons_change_state_and_erasure_leaves_no_personal_data,
    |url: String| async move {
        let store = store(&url).await;
        let a = add_member(&store, "alice@example.com").await.id;
        let b = add_member(&store, "b").await.id;
        // Live, expired and used coupons of `a`, and a live one of `b`.
        let mut used = crate::commerce::coupon(a, None, 5_000);
        used.state = "used".into();
        crate::commerce::issue(
            &store,
            &[
                crate::commerce::coupon(a, None, 5_000),
                crate::commerce::coupon(a, None, 100),
                used,
                crate::commerce::coupon(b, None, 5_000),
            ],
        )
        .await;
        let mut tx = store.begin().await.unwrap();
        assert_eq!(
            tx.coupons_set_state(a, CouponState::Issued, CouponState::Voided, 2_000)
                .await
                .unwrap(),
            1
        );
        let states: Vec<String> = tx
            .coupons_of_member(a, i64::MAX, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.state)
            .collect();
        assert_eq!(states, ["used", "issued", "voided"]);
        assert_eq!(
            tx.coupons_of_member(b, i64::MAX, 10).await.unwrap()[0].state,
            "issued"
        );

        // Events, paged inside the transaction, and rewritten.
        let bodies: Vec<String> = (0..3)
            .map(|i| format!(r#"{{"id":"e{i}","member_id":"alice@example.com"}}"#))
            .collect();
        let ids: Vec<String> = (0..3).map(|i| format!("e{i}")).collect();
        let news: Vec<NewEvent> = ids
            .iter()
            .zip(&bodies)
            .map(|(id, body)| event(id, a, body, "sha"))
            .collect();
        tx.events_insert_many(&news).await.unwrap();
        tx.events_insert_many(&[event("other", b, "{}", "sha")])
            .await
            .unwrap();
        let first = tx.events_of_member(a, 0, 2).await.unwrap();
        assert_eq!(first.len(), 2);
        let rest = tx.events_of_member(a, first[1].seq, 2).await.unwrap();
        assert_eq!(rest.len(), 1);
        for e in first.iter().chain(&rest) {
            tx.event_body_set(e.seq, r#"{"member_id":"erased"}"#)
                .await
                .unwrap();
        }
        let answer = ClientAnswerRow {
            request_sha256: "sha".into(),
            answer: r#"{"member":"alice@example.com"}"#.into(),
        };
        tx.client_answer_put(a, "kind", "c1", &answer, 1)
            .await
            .unwrap();
        tx.commit_insert(a, "o2", "sha", r#"{"member_id":"alice@example.com"}"#, 0, 1)
            .await
            .unwrap();
        tx.commit_insert(a, "o1", "sha", "{}", 0, 1).await.unwrap();
        let summaries = tx.commit_summaries_of(a).await.unwrap();
        assert_eq!(
            summaries
                .iter()
                .map(|(o, _)| o.as_str())
                .collect::<Vec<_>>(),
            ["o1", "o2"]
        );
        tx.commit_summary_set(a, "o2", r#"{"member_id":"erased-1"}"#)
            .await
            .unwrap();
        assert_eq!(
            tx.commit_get(a, "o2").await.unwrap(),
            Some(("sha".to_owned(), r#"{"member_id":"erased-1"}"#.to_owned())),
            "the summary is rewritten, its fingerprint kept"
        );
        tx.member_erase(a, "erased-1", 3_000).await.unwrap();
        tx.commit().await.unwrap();

        assert!(store
            .member_get("alice@example.com")
            .await
            .unwrap()
            .is_none());
        let erased = store.member_get("erased-1").await.unwrap().unwrap();
        assert_eq!(
            (
                erased.attributes.as_str(),
                erased.erased_at_us,
                erased.referred_by_code
            ),
            ("{}", Some(3_000), None)
        );
        let events = store.events_list(a, 0, 10).await.unwrap();
        assert!(events.iter().all(|e| !e.body.contains("alice")));
        assert_eq!(events[0].body_sha256, "sha", "the fingerprint stays");
        let mut tx = store.begin().await.unwrap();
        assert!(tx
            .client_answer_get(a, "kind", "c1")
            .await
            .unwrap()
            .is_none());
        assert_eq!(store.events_list(b, 0, 10).await.unwrap()[0].body, "{}");
    }
);

both_backends!(
    an_erasure_forgets_the_idempotent_answers_that_name_the_member,
    |url: String| async move {
        let store = store(&url).await;
        // (key, route, answer): two name the member (by answer, by route), one another
        // member whose id only contains the erased one, one a literal `%`.
        let kept = [
            ("k1", "POST /v1/members", r#"{"external_id":"al_ice"}"#),
            ("k2", "POST /v1/members/al_ice/close", "{}"),
            ("k3", "POST /v1/members", r#"{"external_id":"al_ice2"}"#),
            ("k4", "POST /v1/members/alxice/close", r#"{"note":"100%"}"#),
        ];
        for (key, route, answer) in kept {
            let claim = store
                .idempotency_begin(&IdempotencyRequest {
                    api_key_id: 1,
                    key,
                    route,
                    request_sha256: "sha",
                    token: "t",
                    now_us: 1,
                    stale_before_us: 0,
                })
                .await
                .unwrap();
            assert_eq!(claim, IdempotencyClaim::Claimed);
            store
                .idempotency_complete(1, key, "t", 200, answer)
                .await
                .unwrap();
        }
        let mut tx = store.begin().await.unwrap();
        assert_eq!(
            tx.idempotency_forget(r#""al_ice""#, "al_ice")
                .await
                .unwrap(),
            2
        );
        tx.commit().await.unwrap();
        for (key, expect_kept) in [("k1", false), ("k2", false), ("k3", true), ("k4", true)] {
            let claim = store
                .idempotency_begin(&IdempotencyRequest {
                    api_key_id: 1,
                    key,
                    route: "POST /v1/members",
                    request_sha256: "sha",
                    token: "t2",
                    now_us: 2,
                    stale_before_us: 0,
                })
                .await
                .unwrap();
            assert_eq!(
                claim != IdempotencyClaim::Claimed,
                expect_kept,
                "{key}: {claim:?}"
            );
        }
    }
);
