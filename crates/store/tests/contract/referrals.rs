//! Referral: codes, links, reward rows and the figures.

use super::*;

fn reward(referee: i64, referrer: i64, id: &str, state: &str, due_at_us: i64) -> ReferralRewardRow {
    ReferralRewardRow {
        referee_id: referee,
        reward_id: id.into(),
        referrer_id: referrer,
        beneficiary_id: referrer,
        trigger: "join".into(),
        kind: "points".into(),
        amount: 100,
        item: None,
        state: state.into(),
        source_ref: None,
        due_at_us,
        created_at_us: 1_000,
        settled_at_us: None,
        granted_ref: None,
        clawed_back: 0,
        clawed_at_us: None,
    }
}

both_backends!(
    codes_link_members_and_rewards_are_kept_per_referral,
    |url: String| async move {
        let store = store(&url).await;
        let owner = add_member(&store, "owner").await;
        let referee = add_member(&store, "referee").await;
        let other = add_member(&store, "other").await;

        let mut tx = store.begin().await.unwrap();
        tx.referral_code_set(owner.id, "OWNER001").await.unwrap();
        // A code is given once: a second one does not replace it.
        tx.referral_code_set(owner.id, "OWNER002").await.unwrap();
        tx.commit().await.unwrap();
        let mut tx = store.begin().await.unwrap();
        let err = tx
            .referral_code_set(other.id, "OWNER001")
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::Conflict(ref on) if on.contains("referral_code")),
            "{err:?}"
        );
        drop(tx);

        let mut tx = store.begin().await.unwrap();
        let found = tx
            .referral_owner_for_update("OWNER001")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (found.member_id, found.referral_code.as_deref()),
            (owner.id, Some("OWNER001"))
        );
        assert_eq!(tx.referral_owner_for_update("NOPE").await.unwrap(), None);
        assert_eq!(tx.referees_count(owner.id).await.unwrap(), 0);
        tx.referrer_set(referee.id, owner.id, "OWNER001", 2_000)
            .await
            .unwrap();
        assert_eq!(tx.referees_count(owner.id).await.unwrap(), 1);
        assert_eq!(
            tx.referrers_of(&[owner.id, referee.id, other.id])
                .await
                .unwrap(),
            vec![(referee.id, owner.id, Some(2_000))]
        );
        let link = tx
            .referral_link_for_update(referee.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (link.referrer_id, link.referred_at_us),
            (Some(owner.id), Some(2_000))
        );
        tx.referral_rewards_insert(&[
            reward(referee.id, owner.id, "a", "pending", 5_000),
            reward(referee.id, owner.id, "b", "clawback_due", 9_000),
        ])
        .await
        .unwrap();
        // A row for the same (referee, reward) is left as it is.
        tx.referral_rewards_insert(&[reward(referee.id, owner.id, "a", "granted", 1)])
            .await
            .unwrap();
        tx.commit().await.unwrap();

        let link = store.referral_link_of("referee").await.unwrap().unwrap();
        assert_eq!(link.referrer_id, Some(owner.id));
        let by_id = store.referral_link_by_id(owner.id).await.unwrap().unwrap();
        assert_eq!(by_id.external_id, "owner");
        let page = store.referees_page(owner.id, 0, 10).await.unwrap();
        assert_eq!(
            page.iter().map(|r| r.member_id).collect::<Vec<_>>(),
            vec![referee.id]
        );
        assert!(store
            .referees_page(owner.id, referee.id, 10)
            .await
            .unwrap()
            .is_empty());

        // Due: rewards to grant and to take back, each by its `due_at_us`.
        assert!(store
            .referral_rewards_due(4_999, 10)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(
            store.referral_rewards_due(5_000, 10).await.unwrap(),
            vec![(referee.id, "a".to_owned())]
        );
        assert_eq!(
            store.referral_rewards_due(9_000, 10).await.unwrap().len(),
            2
        );
        let owner_link = store.referral_owner_of("OWNER001").await.unwrap().unwrap();
        assert_eq!(owner_link.member_id, owner.id);
        assert_eq!(store.referral_owner_of("NOPE").await.unwrap(), None);

        let mut tx = store.begin().await.unwrap();
        let mut rows = tx.referral_rewards_of_referee(referee.id).await.unwrap();
        assert_eq!(
            rows.iter().map(|r| r.state.as_str()).collect::<Vec<_>>(),
            ["pending", "clawback_due"]
        );
        rows[0].state = "granted".into();
        rows[0].settled_at_us = Some(6_000);
        rows[0].granted_ref = Some(3);
        tx.referral_reward_update(&rows[0]).await.unwrap();
        assert_eq!(
            tx.referrer_rewards_settled_since(
                owner.id,
                &["granted", "clawback_due", "clawed_back"],
                Some(6_000)
            )
            .await
            .unwrap(),
            1
        );
        assert_eq!(
            tx.referrer_rewards_settled_since(
                owner.id,
                &["granted", "clawback_due", "clawed_back"],
                Some(6_001)
            )
            .await
            .unwrap(),
            0
        );
        assert_eq!(
            tx.referrer_rewards_settled_since(
                owner.id,
                &["granted", "clawback_due", "clawed_back"],
                None
            )
            .await
            .unwrap(),
            1
        );
        tx.commit().await.unwrap();
        let all = store
            .referral_rewards_of(&[referee.id, other.id])
            .await
            .unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(
            all.iter().find(|r| r.reward_id == "a").unwrap().granted_ref,
            Some(3)
        );

        let figures = store.referral_figures().await.unwrap();
        assert_eq!(
            (
                figures.members,
                figures.referred_members,
                figures.referred_paying,
                figures.unreferred_paying
            ),
            (3, 1, 0, 0)
        );
        assert_eq!(
            figures.rewards,
            vec![
                ("points".to_owned(), "clawback_due".to_owned(), 1, 100, 0),
                ("points".to_owned(), "granted".to_owned(), 1, 100, 0)
            ]
        );
    }
);

both_backends!(
    a_coupon_is_voided_only_while_unused,
    |url: String| async move {
        let store = store(&url).await;
        let m = add_member(&store, "m").await;
        let mut tx = store.begin().await.unwrap();
        let issued = tx
            .coupons_issue(&[
                crate::commerce::coupon(m.id, None, 10_000),
                crate::commerce::coupon(m.id, None, 10_000),
            ])
            .await
            .unwrap();
        assert!(tx.coupon_void(m.id, issued[0].coupon_no).await.unwrap());
        assert!(
            !tx.coupon_void(m.id, issued[0].coupon_no).await.unwrap(),
            "voided already"
        );
        tx.commit().await.unwrap();
    }
);
