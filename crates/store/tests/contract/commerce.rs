//! What orders spend: coupons, order commits, stored value and top-ups, benefit uses by
//! order.

use super::*;

pub(crate) fn coupon(member_id: i64, issue_id: Option<&str>, valid_until_us: i64) -> CouponRow {
    CouponRow {
        member_id,
        coupon_no: 0,
        template: "ten-off".into(),
        state: "issued".into(),
        source: "manual".into(),
        issued_at_us: 1,
        valid_until_us,
        order_id: None,
        used_at_us: None,
        issue_id: issue_id.map(str::to_owned),
    }
}

pub(crate) async fn issue(store: &Store, rows: &[CouponRow]) -> Vec<CouponRow> {
    let mut tx = store.begin().await.unwrap();
    let issued = tx.coupons_issue(rows).await.unwrap();
    tx.commit().await.unwrap();
    issued
}

both_backends!(coupons_are_numbered_per_member, |url: String| async move {
    let store = store(&url).await;
    let a = add_member(&store, "a").await.id;
    let b = add_member(&store, "b").await.id;
    // The number given is ignored: the store numbers after the member's last coupon.
    let first = issue(
        &store,
        &[
            coupon(a, Some("i1"), 100),
            CouponRow {
                coupon_no: 77,
                ..coupon(a, Some("i1"), 100)
            },
        ],
    )
    .await;
    let second = issue(&store, &[coupon(a, Some("i2"), 100)]).await;
    let other = issue(&store, &[coupon(b, None, 100)]).await;
    let numbered = |row: CouponRow, coupon_no| CouponRow { coupon_no, ..row };
    assert_eq!(
        first,
        [
            numbered(coupon(a, Some("i1"), 100), 1),
            numbered(coupon(a, Some("i1"), 100), 2)
        ]
    );
    assert_eq!(second, [numbered(coupon(a, Some("i2"), 100), 3)]);
    assert_eq!(other, [numbered(coupon(b, None, 100), 1)]);
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.coupons_issue(&[]).await.unwrap(), []);
    assert_eq!(tx.coupons_by_issue(a, "i1").await.unwrap(), first);
    assert_eq!(tx.coupons_by_issue(a, "i2").await.unwrap(), second);
    assert_eq!(tx.coupons_by_issue(b, "i1").await.unwrap(), []);
    // Newest first, up to the limit, below a number.
    assert_eq!(
        tx.coupons_of_member(a, i64::MAX, 2).await.unwrap(),
        [second[0].clone(), first[1].clone()]
    );
    assert_eq!(
        tx.coupons_of_member(a, 2, 10).await.unwrap(),
        [first[0].clone()]
    );
    assert_eq!(tx.coupons_of_member(b, i64::MAX, 10).await.unwrap(), other);
    tx.commit().await.unwrap();
    assert_eq!(
        store.coupons_of_member(a, i64::MAX, 2).await.unwrap(),
        [second[0].clone(), first[1].clone()]
    );
    assert_eq!(
        store.coupons_of_member(a, 3, 10).await.unwrap(),
        first[..].iter().rev().cloned().collect::<Vec<_>>()
    );
    assert_eq!(store.coupons_of_member(a, 1, 10).await.unwrap(), []);
    assert_eq!(
        store
            .coupons_of_member(a, i64::MAX, 10)
            .await
            .unwrap()
            .len(),
        3
    );
    assert_eq!(store.coupons_of_member(a, i64::MAX, 0).await.unwrap(), []);
});

both_backends!(
    coupons_for_two_members_in_one_call,
    |url: String| async move {
        let store = store(&url).await;
        let a = add_member(&store, "a").await.id;
        let b = add_member(&store, "b").await.id;
        issue(&store, &[coupon(b, None, 100), coupon(b, None, 100)]).await;
        let mut tx = store.begin().await.unwrap();
        let mixed = tx
            .coupons_issue(&[coupon(a, None, 100), coupon(b, None, 100)])
            .await;
        // BUG: `coupons_issue` numbers every row after the *first* row's member's last
        // coupon. Here b's coupon gets number 2 (after a's none), which b already holds: a
        // conflict. Callers today pass one member per call; the store neither says so in
        // its signature nor refuses a mixed batch.
        assert!(is_conflict(&mixed), "{mixed:?}");
    }
);

both_backends!(
    a_coupon_is_used_once_while_valid,
    |url: String| async move {
        let store = store(&url).await;
        let a = add_member(&store, "a").await.id;
        let b = add_member(&store, "b").await.id;
        let issued = issue(
            &store,
            &[
                coupon(a, None, 100),
                coupon(a, None, 100),
                coupon(a, None, 100),
            ],
        )
        .await;
        let mut tx = store.begin().await.unwrap();
        assert!(tx.coupon_use(a, 1, "o1", 99).await.unwrap());
        assert!(
            !tx.coupon_use(a, 1, "o2", 99).await.unwrap(),
            "used already"
        );
        assert!(tx.coupon_use(a, 3, "o1", 50).await.unwrap());
        assert!(
            !tx.coupon_use(a, 9, "o1", 50).await.unwrap(),
            "no such coupon"
        );
        assert!(
            !tx.coupon_use(b, 2, "o1", 50).await.unwrap(),
            "another member's number"
        );
        let used = |row: &CouponRow, at| CouponRow {
            state: "used".into(),
            order_id: Some("o1".into()),
            used_at_us: Some(at),
            ..row.clone()
        };
        assert_eq!(
            tx.coupons_of_member(a, i64::MAX, 10).await.unwrap(),
            [
                used(&issued[2], 50),
                issued[1].clone(),
                used(&issued[0], 99)
            ]
        );
        // A full refund gives the order's coupons back, once.
        assert_eq!(tx.coupons_restore(a, "o2").await.unwrap(), 0);
        assert_eq!(tx.coupons_restore(a, "o1").await.unwrap(), 2);
        assert_eq!(tx.coupons_restore(a, "o1").await.unwrap(), 0);
        tx.commit().await.unwrap();
        assert_eq!(
            store.coupons_of_member(a, i64::MAX, 10).await.unwrap(),
            [issued[2].clone(), issued[1].clone(), issued[0].clone()]
        );
    }
);

both_backends!(
    order_commits_keep_what_they_spent,
    |url: String| async move {
        let store = store(&url).await;
        let a = add_member(&store, "a").await.id;
        let b = add_member(&store, "b").await.id;
        let mut tx = store.begin().await.unwrap();
        assert_eq!(tx.commit_get(a, "o1").await.unwrap(), None);
        assert_eq!(tx.commit_points(a, "o1").await.unwrap(), None);
        assert_eq!(
            tx.commit_stored_value(a, "o1").await.unwrap(),
            (0, 0, 0),
            "no commit reads as nothing spent"
        );
        tx.commit_insert(a, "o1", "sha", r#"{"total":1}"#, 7, 5)
            .await
            .unwrap();
        assert_eq!(
            tx.commit_get(a, "o1").await.unwrap(),
            Some(("sha".into(), r#"{"total":1}"#.into()))
        );
        assert_eq!(tx.commit_get(b, "o1").await.unwrap(), None);
        assert_eq!(tx.commit_points(a, "o1").await.unwrap(), Some((7, 0)));
        assert_eq!(tx.commit_stored_value(a, "o1").await.unwrap(), (0, 0, 0));
        tx.commit_set_points_returned(a, "o1", 3).await.unwrap();
        tx.commit_set_stored_value(a, "o1", 5, 6, 2).await.unwrap();
        // Setting on a commit that does not exist does nothing, and says nothing.
        tx.commit_set_points_returned(b, "o1", 3).await.unwrap();
        tx.commit_set_stored_value(b, "o1", 5, 6, 2).await.unwrap();
        tx.commit().await.unwrap();
        let mut tx = store.begin().await.unwrap();
        assert_eq!(tx.commit_points(a, "o1").await.unwrap(), Some((7, 3)));
        assert_eq!(tx.commit_stored_value(a, "o1").await.unwrap(), (5, 6, 2));
        assert_eq!(tx.commit_points(b, "o1").await.unwrap(), None);
        let again = tx.commit_insert(a, "o1", "sha2", "{}", 0, 6).await;
        assert!(is_conflict(&again), "{again:?}");
    }
);

both_backends!(stored_value_and_top_ups, |url: String| async move {
    let store = store(&url).await;
    let a = add_member(&store, "a").await.id;
    let b = add_member(&store, "b").await.id;
    let mut tx = store.begin().await.unwrap();
    assert_eq!(
        tx.stored_value_get(a).await.unwrap(),
        StoredValueRow::default()
    );
    tx.stored_value_put(
        a,
        StoredValueRow {
            principal: 10,
            bonus: 2,
        },
    )
    .await
    .unwrap();
    tx.stored_value_put(
        b,
        StoredValueRow {
            principal: 5,
            bonus: 0,
        },
    )
    .await
    .unwrap();
    assert_eq!(
        tx.stored_value_get(a).await.unwrap(),
        StoredValueRow {
            principal: 10,
            bonus: 2
        }
    );
    tx.commit().await.unwrap();
    assert_eq!(
        store.stored_value_read(b).await.unwrap(),
        StoredValueRow {
            principal: 5,
            bonus: 0
        }
    );
    assert_eq!(
        store.stored_value_read(b + 1).await.unwrap(),
        StoredValueRow::default()
    );
    let mut check_snapshot = store.check_snapshot().await.unwrap();
    assert_eq!(check_snapshot.stored_value_total().await.unwrap(), 17);
    drop(check_snapshot);
    let mut tx = store.begin().await.unwrap();
    tx.stored_value_put(
        a,
        StoredValueRow {
            principal: 1,
            bonus: 0,
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        store.stored_value_read(a).await.unwrap(),
        StoredValueRow {
            principal: 1,
            bonus: 0
        }
    );
    let mut check_snapshot = store.check_snapshot().await.unwrap();
    assert_eq!(check_snapshot.stored_value_total().await.unwrap(), 6);

    let top_up = TopUpRow {
        payment_ref: "pay-1".into(),
        member_id: a,
        offer: "100+10".into(),
        principal: 100,
        bonus: 10,
        entry_no: 3,
        at_us: 9,
    };
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.topup_get("pay-1").await.unwrap(), None);
    tx.topup_insert(&top_up).await.unwrap();
    assert_eq!(tx.topup_get("pay-1").await.unwrap(), Some(top_up.clone()));
    tx.commit().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    let again = tx
        .topup_insert(&TopUpRow {
            member_id: b,
            ..top_up
        })
        .await;
    assert!(is_conflict(&again), "{again:?}");
});

both_backends!(
    benefit_uses_counted_since_and_released_by_order,
    |url: String| async move {
        let store = store(&url).await;
        let a = add_member(&store, "a").await.id;
        let b = add_member(&store, "b").await.id;
        let used =
            |member_id, benefit: &str, at_us, partner: Option<&str>, reference: Option<&str>| {
                BenefitUseRow {
                    id: 0,
                    member_id,
                    subscription_id: None,
                    term_no: None,
                    benefit: benefit.into(),
                    partner: partner.map(str::to_owned),
                    reference: reference.map(str::to_owned),
                    cost_minor: 0,
                    at_us,
                }
            };
        let mut tx = store.begin().await.unwrap();
        for row in [
            used(a, "ship", 10, None, None),
            used(a, "ship", 20, None, Some("o1")),
            used(a, "ship", 30, None, Some("o1")),
            used(a, "lounge", 30, Some("acme"), Some("o1")),
            used(b, "ship", 30, None, Some("o1")),
        ] {
            tx.benefit_use_insert(&row).await.unwrap();
        }
        assert_eq!(tx.benefit_uses_since(a, "ship", 20).await.unwrap(), 2);
        assert_eq!(tx.benefit_uses_since(a, "ship", 0).await.unwrap(), 3);
        assert_eq!(tx.benefit_uses_since(a, "ship", 31).await.unwrap(), 0);
        tx.commit().await.unwrap();
        assert_eq!(store.benefit_uses_since(a, "ship", 20).await.unwrap(), 2);
        assert_eq!(store.benefit_uses_since(a, "lounge", 0).await.unwrap(), 1);
        // A full refund of o1 gives back a's own uses by that order, not a partner's.
        let mut tx = store.begin().await.unwrap();
        assert_eq!(tx.benefit_uses_release(a, "o1").await.unwrap(), 2);
        assert_eq!(tx.benefit_uses_release(a, "o1").await.unwrap(), 0);
        tx.commit().await.unwrap();
        assert_eq!(store.benefit_uses_since(a, "ship", 0).await.unwrap(), 1);
        assert_eq!(store.benefit_uses_since(a, "lounge", 0).await.unwrap(), 1);
        assert_eq!(store.benefit_uses_since(b, "ship", 0).await.unwrap(), 1);
    }
);

both_backends!(
    coupons_held_are_every_issued_one_and_the_newest_others,
    |url: String| async move {
        let store = store(&url).await;
        let a = add_member(&store, "a").await.id;
        let b = add_member(&store, "b").await.id;
        // Coupons 1..=6 of a; 1 and 2 stay issued, 3..=6 are used.
        let rows: Vec<CouponRow> = (0..6).map(|_| coupon(a, None, 100)).collect();
        issue(&store, &rows).await;
        issue(&store, &[coupon(b, None, 100)]).await;
        let mut tx = store.begin().await.unwrap();
        for no in 3..=6 {
            assert!(tx.coupon_use(a, no, &format!("o{no}"), 10).await.unwrap());
        }
        let nos = |rows: Vec<CouponRow>| rows.iter().map(|c| c.coupon_no).collect::<Vec<_>>();
        // The newest 2 of all, and every issued one however old, newest first.
        assert_eq!(nos(tx.coupons_held(a, 2).await.unwrap()), [6, 5, 2, 1]);
        assert_eq!(nos(tx.coupons_held(a, 0).await.unwrap()), [2, 1]);
        assert_eq!(nos(tx.coupons_held(b, 0).await.unwrap()), [1]);
        tx.commit().await.unwrap();
        assert_eq!(
            nos(store.coupons_held(a, 10).await.unwrap()),
            [6, 5, 4, 3, 2, 1]
        );
        assert_eq!(nos(store.coupons_held(a, 1).await.unwrap()), [6, 2, 1]);
    }
);
