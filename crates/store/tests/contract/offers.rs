//! Conversion offers: exposures and acceptances per member and offer, and a member's
//! recent orders.

use super::*;

both_backends!(
    exposures_and_acceptances_are_counted_per_member,
    |url: String| async move {
        let store = store(&url).await;
        let a = add_member(&store, "a").await;
        let b = add_member(&store, "b").await;
        let mut tx = store.begin().await.unwrap();
        tx.offer_exposure_record(a.id, "half", "call", (10, 10), 1)
            .await
            .unwrap();
        tx.offer_exposure_record(a.id, "half", "quote", (15, 20), 1)
            .await
            .unwrap();
        // An acceptance without an exposure counts the member once, and no more.
        tx.offer_exposure_ensure(b.id, "half", "acceptance", 30)
            .await
            .unwrap();
        tx.offer_exposure_ensure(b.id, "half", "acceptance", 40)
            .await
            .unwrap();
        let accepted = OfferAcceptanceRow {
            member_id: b.id,
            offer_id: "half".into(),
            at_us: 30,
            subscription_id: Some(7),
            coupon_no: None,
        };
        assert!(tx.offer_acceptance_insert(&accepted).await.unwrap());
        assert!(
            !tx.offer_acceptance_insert(&accepted).await.unwrap(),
            "once per member"
        );
        assert_eq!(
            tx.offer_acceptance_get(b.id, "half").await.unwrap(),
            Some(accepted)
        );
        assert_eq!(tx.offer_acceptance_get(a.id, "half").await.unwrap(), None);
        tx.commit().await.unwrap();
        assert_eq!(
            store.offer_counts("half").await.unwrap(),
            OfferCounts {
                exposed_members: 2,
                exposures: 3,
                accepted_members: 1
            }
        );
        assert_eq!(
            store.offer_counts("other").await.unwrap(),
            OfferCounts::default()
        );
        assert_eq!(store.offer_acceptances_of(b.id).await.unwrap(), ["half"]);
        assert!(store.offer_acceptances_of(a.id).await.unwrap().is_empty());
    }
);

both_backends!(
    a_members_recent_paid_orders_are_read_net_of_refunds,
    |url: String| async move {
        let store = store(&url).await;
        let m = add_member(&store, "m").await;
        let paid = |id: &str, at: i64, refunded: i64| OrderRow {
            state: "paid".into(),
            paid_at_us: Some(at),
            refunded_total_minor: refunded,
            ..crate::points::order(m.id, id)
        };
        let mut tx = store.begin().await.unwrap();
        tx.orders_put_many(&[
            paid("old", 100, 0),
            paid("new", 300, 250),
            crate::points::order(m.id, "unpaid"),
        ])
        .await
        .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(
            store.member_orders_since(m.id, 100).await.unwrap(),
            vec![(300, 750)]
        );
        assert_eq!(store.member_orders_since(m.id, 99).await.unwrap().len(), 2);
        assert_eq!(store.member_last_order_at(m.id).await.unwrap(), Some(300));
        let n = add_member(&store, "n").await;
        assert_eq!(store.member_last_order_at(n.id).await.unwrap(), None);
    }
);
