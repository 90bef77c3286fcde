//! What members hold by a programme's ids: counted for a programme change, and moved to a
//! new id when a version renames an item.

use super::*;
use tessera_domain::programme::change::{Rename, Section};

both_backends!(
    holders_are_counted_and_renames_move_what_they_hold,
    |url: String| async move {
        let store = store(&url).await;
        let a = add_member(&store, "a").await.id;
        let b = add_member(&store, "b").await.id;
        let c = add_member(&store, "c").await.id;
        // `a` holds plan `plus`; `b`'s expired; `c` canceled it with access running to 5,000.
        let mut expired = crate::subscriptions::subscription(b, "plus");
        expired.status = "expired".into();
        let mut canceled = crate::subscriptions::subscription(c, "plus");
        canceled.status = "canceled".into();
        canceled.access_end_us = 5_000;
        crate::subscriptions::add_subscriptions(
            &store,
            &[
                crate::subscriptions::subscription(a, "plus"),
                expired,
                canceled,
            ],
        )
        .await;
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
                    tier: Some("silver".into()),
                    floor_tier: Some("gold".into()),
                    ..TierRow::default()
                },
            ],
        )
        .await;
        // A live coupon for `a`, an expired one for `b`, a used one for `c`.
        let mut used = crate::commerce::coupon(c, None, 5_000);
        used.state = "used".into();
        crate::commerce::issue(
            &store,
            &[
                crate::commerce::coupon(a, None, 5_000),
                crate::commerce::coupon(b, None, 100),
                used,
            ],
        )
        .await;
        let mut tx = store.begin().await.unwrap();
        tx.entries_insert(&[crate::points::entry(a, 1, &[])])
            .await
            .unwrap();
        tx.commit().await.unwrap();

        let live = ["trialing", "active", "grace"];
        let mut tx = store.begin().await.unwrap();
        assert_eq!(tx.member_ids_after(0, 2).await.unwrap(), [a, b]);
        assert_eq!(tx.member_ids_after(b, 2).await.unwrap(), [c]);
        let holders = tx.programme_holders(&live, 2_000).await.unwrap();
        let map = |pairs: &[(&str, i64)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect::<std::collections::BTreeMap<_, _>>()
        };
        assert_eq!(holders.plans, map(&[("plus", 2)]));
        assert_eq!(holders.tiers, map(&[("gold", 2), ("silver", 1)]));
        assert_eq!(holders.coupons, map(&[("ten-off", 1)]));
        assert_eq!(holders.ledger_members, 1);

        let rename = |section, from: &str, to: &str| Rename {
            section,
            from: from.into(),
            to: to.into(),
        };
        // `a` trialed both the old id and the new one (a version long ago used `prime`).
        assert!(tx.trial_insert(a, "plus", 1, 10).await.unwrap());
        assert!(tx.trial_insert(a, "prime", 1, 10).await.unwrap());
        // Three subscriptions move; `a`'s trial of `plus` is the one already held as
        // `prime` (dropped, one statement each).
        assert_eq!(
            tx.rename_held(&rename(Section::Plans, "plus", "prime"))
                .await
                .unwrap(),
            4
        );
        assert!(
            !tx.trial_insert(a, "prime", 2, 20).await.unwrap(),
            "one trial row of the new id"
        );
        assert_eq!(
            tx.rename_held(&rename(Section::Tiers, "gold", "golden"))
                .await
                .unwrap(),
            2
        );
        assert_eq!(
            tx.rename_held(&rename(Section::Coupons, "ten-off", "tenner"))
                .await
                .unwrap(),
            3
        );
        assert_eq!(
            tx.rename_held(&rename(Section::Benefits, "nothing", "else"))
                .await
                .unwrap(),
            0
        );
        let after = tx.programme_holders(&live, 2_000).await.unwrap();
        assert_eq!(after.plans, map(&[("prime", 2)]));
        assert_eq!(after.tiers, map(&[("golden", 2), ("silver", 1)]));
        assert_eq!(after.coupons, map(&[("tenner", 1)]));
        // Dropped, the transaction moved nothing.
        drop(tx);
        let mut tx = store.begin().await.unwrap();
        assert_eq!(
            tx.programme_holders(&live, 2_000).await.unwrap().plans,
            map(&[("plus", 2)])
        );
    }
);
