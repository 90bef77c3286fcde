//! The paid track: subscriptions, their terms and history, renewals due, trials, partner
//! code pools, benefit uses, periodic grants and job marks.

use super::*;

pub(crate) fn subscription(member_id: i64, plan: &str) -> SubscriptionRow {
    SubscriptionRow {
        id: 0,
        member_id,
        buyer_member_id: member_id,
        plan: plan.into(),
        status: "active".into(),
        auto_renew: true,
        cancel_at_period_end: false,
        access_end_us: 1_000,
        cut: false,
        grace_until_us: None,
        renewal_noticed_for_us: None,
        next_due_us: None,
        created_at_us: 10,
        updated_at_us: 10,
        next_term_no: 1,
        next_history_no: 1,
    }
}

fn term(subscription_id: i64, term_no: i64, member_id: i64, payment_ref: Option<&str>) -> TermRow {
    TermRow {
        subscription_id,
        term_no,
        member_id,
        kind: "paid".into(),
        start_us: 100 * term_no,
        end_us: 100 * term_no + 100,
        amount_minor: 990,
        price_basis: "list".into(),
        paid_at_us: 100 * term_no,
        refunded_minor: 0,
        payment_ref: payment_ref.map(str::to_owned),
        request_sha256: Some("sha".into()),
    }
}

fn renewal(subscription_id: i64, period_end_us: i64, member_id: i64, due_at_us: i64) -> RenewalRow {
    RenewalRow {
        subscription_id,
        period_end_us,
        member_id,
        due_at_us,
        amount_minor: 990,
        state: "open".into(),
    }
}

fn benefit_use(
    member_id: i64,
    subscription_id: Option<i64>,
    partner: Option<&str>,
    reference: Option<&str>,
) -> BenefitUseRow {
    BenefitUseRow {
        id: 0,
        member_id,
        subscription_id,
        term_no: subscription_id.map(|_| 1),
        benefit: "lounge".into(),
        partner: partner.map(str::to_owned),
        reference: reference.map(str::to_owned),
        cost_minor: 250,
        at_us: 50,
    }
}

/// Stores `rows` in one transaction; returns them with their ids.
pub(crate) async fn add_subscriptions(
    store: &Store,
    rows: &[SubscriptionRow],
) -> Vec<SubscriptionRow> {
    let mut tx = store.begin().await.unwrap();
    let mut out = Vec::new();
    for row in rows {
        let id = tx.subscription_insert(row).await.unwrap();
        out.push(SubscriptionRow { id, ..row.clone() });
    }
    tx.commit().await.unwrap();
    out
}

both_backends!(
    subscriptions_are_stored_and_updated,
    |url: String| async move {
        let store = store(&url).await;
        let m = add_member(&store, "m").await.id;
        let buyer = add_member(&store, "buyer").await.id;
        let rows = add_subscriptions(
            &store,
            &[
                subscription(m, "gold"),
                SubscriptionRow {
                    buyer_member_id: buyer,
                    auto_renew: false,
                    cancel_at_period_end: true,
                    cut: true,
                    grace_until_us: Some(1),
                    renewal_noticed_for_us: Some(2),
                    next_due_us: Some(3),
                    next_term_no: 4,
                    next_history_no: 5,
                    ..subscription(m, "silver")
                },
            ],
        )
        .await;
        assert!(rows[1].id > rows[0].id);
        let mut tx = store.begin().await.unwrap();
        for row in &rows {
            assert_eq!(
                tx.subscription_get(row.id).await.unwrap().as_ref(),
                Some(row)
            );
            assert_eq!(
                store.subscription_read(row.id).await.unwrap().as_ref(),
                Some(row)
            );
        }
        assert_eq!(tx.subscription_get(rows[1].id + 1).await.unwrap(), None);
        assert_eq!(store.subscription_read(rows[1].id + 1).await.unwrap(), None);

        // An update writes the state; the holder, buyer, plan and creation are fixed.
        let changed = SubscriptionRow {
            status: "canceled".into(),
            auto_renew: false,
            cancel_at_period_end: true,
            access_end_us: 2_000,
            cut: true,
            grace_until_us: Some(7),
            renewal_noticed_for_us: Some(8),
            next_due_us: Some(9),
            updated_at_us: 11,
            next_term_no: 2,
            next_history_no: 3,
            ..rows[0].clone()
        };
        tx.subscription_update(&SubscriptionRow {
            member_id: buyer,
            buyer_member_id: buyer,
            plan: "other".into(),
            created_at_us: 99,
            ..changed.clone()
        })
        .await
        .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(
            store.subscription_read(rows[0].id).await.unwrap(),
            Some(changed)
        );
        assert_eq!(
            store.subscription_read(rows[1].id).await.unwrap().as_ref(),
            Some(&rows[1])
        );
    }
);

both_backends!(
    a_members_subscriptions_by_plan_and_role,
    |url: String| async move {
        let store = store(&url).await;
        let a = add_member(&store, "a").await.id;
        let c = add_member(&store, "c").await.id;
        let subs = add_subscriptions(
            &store,
            &[
                subscription(a, "gold"),
                subscription(a, "silver"),
                subscription(a, "gold"),
                SubscriptionRow {
                    buyer_member_id: a,
                    ..subscription(c, "gold")
                },
            ],
        )
        .await;
        let terms = [
            term(subs[0].id, 1, a, Some("p1")),
            term(subs[0].id, 2, a, None),
            term(subs[2].id, 1, a, None),
            term(subs[3].id, 1, c, Some("p4")),
        ];
        let mut tx = store.begin().await.unwrap();
        // Inserted out of order, read in order.
        for t in [&terms[1], &terms[3], &terms[0], &terms[2]] {
            tx.term_insert(t).await.unwrap();
        }
        assert_eq!(
            tx.subscriptions_of_plan(a, "gold").await.unwrap(),
            [subs[2].clone(), subs[0].clone()]
        );
        assert_eq!(tx.subscriptions_of_plan(a, "bronze").await.unwrap(), []);
        assert_eq!(
            tx.subscriptions_of_plan(c, "gold").await.unwrap(),
            [subs[3].clone()]
        );
        let held_by_a = vec![
            (subs[2].clone(), vec![terms[2].clone()]),
            (subs[1].clone(), vec![]),
            (subs[0].clone(), vec![terms[0].clone(), terms[1].clone()]),
        ];
        let held_by_c = vec![(subs[3].clone(), vec![terms[3].clone()])];
        assert_eq!(tx.held_subscriptions(a).await.unwrap(), held_by_a);
        assert_eq!(tx.held_subscriptions(c).await.unwrap(), held_by_c);
        tx.commit().await.unwrap();
        assert_eq!(store.held_subscriptions(a).await.unwrap(), held_by_a);
        assert_eq!(store.held_subscriptions(c).await.unwrap(), held_by_c);
        assert_eq!(store.held_subscriptions(c + 1).await.unwrap(), []);
        // Held or bought, newest first.
        let ids = |rows: Vec<SubscriptionRow>| rows.iter().map(|s| s.id).collect::<Vec<_>>();
        assert_eq!(
            ids(store
                .subscriptions_of_member(a, i64::MAX, 10)
                .await
                .unwrap()),
            [subs[3].id, subs[2].id, subs[1].id, subs[0].id]
        );
        assert_eq!(
            ids(store
                .subscriptions_of_member(c, i64::MAX, 10)
                .await
                .unwrap()),
            [subs[3].id]
        );
    }
);

both_backends!(
    subscriptions_of_member_page_past_any_number,
    |url: String| async move {
        let store = store(&url).await;
        let m = add_member(&store, "m").await.id;
        let rows = vec![subscription(m, "gold"); 201];
        let subs = add_subscriptions(&store, &rows).await;
        let first = store
            .subscriptions_of_member(m, i64::MAX, 200)
            .await
            .unwrap();
        assert_eq!(first.len(), 200);
        assert_eq!(first[0].id, subs[200].id);
        assert_eq!(first[199].id, subs[1].id);
        // The next page starts below the last id shown: the oldest is there.
        let rest = store
            .subscriptions_of_member(m, first[199].id, 200)
            .await
            .unwrap();
        assert_eq!(rest.iter().map(|s| s.id).collect::<Vec<_>>(), [subs[0].id]);
    }
);

both_backends!(
    terms_by_subscription_and_payment_ref,
    |url: String| async move {
        let store = store(&url).await;
        let m = add_member(&store, "m").await.id;
        let subs =
            add_subscriptions(&store, &[subscription(m, "gold"), subscription(m, "gold")]).await;
        let (s, other) = (subs[0].id, subs[1].id);
        let terms = [
            TermRow {
                kind: "trial".into(),
                amount_minor: 0,
                payment_ref: None,
                request_sha256: None,
                ..term(s, 1, m, None)
            },
            term(s, 2, m, Some("pay-2")),
            term(s, 3, m, None),
        ];
        let mut tx = store.begin().await.unwrap();
        for t in terms.iter().rev() {
            tx.term_insert(t).await.unwrap();
        }
        assert_eq!(tx.terms_get(s).await.unwrap(), terms);
        assert_eq!(tx.terms_get(other).await.unwrap(), []);
        assert_eq!(
            tx.term_by_payment_ref("pay-2").await.unwrap(),
            Some(terms[1].clone())
        );
        assert_eq!(tx.term_by_payment_ref("pay-9").await.unwrap(), None);
        tx.term_set_refunded(s, 2, 400).await.unwrap();
        tx.term_set_span(s, 3, terms[2].start_us - 5, terms[2].start_us)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let refunded = TermRow {
            refunded_minor: 400,
            ..terms[1].clone()
        };
        let ended = TermRow {
            start_us: terms[2].start_us - 5,
            end_us: terms[2].start_us,
            ..terms[2].clone()
        };
        assert_eq!(
            store.terms_of(s).await.unwrap(),
            [terms[0].clone(), refunded, ended]
        );
        assert_eq!(store.terms_of(other).await.unwrap(), []);

        let conflicts = [
            ("the same term number", term(s, 1, m, None)),
            (
                "the same payment reference",
                term(other, 1, m, Some("pay-2")),
            ),
        ];
        for (what, t) in conflicts {
            let mut tx = store.begin().await.unwrap();
            let result = tx.term_insert(&t).await;
            assert!(is_conflict(&result), "{what}: {result:?}");
        }
    }
);

both_backends!(subscription_history_in_order, |url: String| async move {
    let store = store(&url).await;
    let m = add_member(&store, "m").await.id;
    let s = add_subscriptions(&store, &[subscription(m, "gold")]).await[0].id;
    let row = |history_no: i64, kind: &str| SubscriptionHistoryRow {
        subscription_id: s,
        history_no,
        member_id: m,
        at_us: 10 * history_no,
        kind: kind.into(),
        from_status: Some("trialing".into()),
        to_status: Some("active".into()),
        cause: "payment".into(),
        payment_ref: Some(format!("p{history_no}")),
        amount_minor: Some(990),
    };
    let rows = [
        row(1, "status"),
        SubscriptionHistoryRow {
            from_status: None,
            to_status: None,
            payment_ref: None,
            amount_minor: None,
            ..row(2, "renewal_due")
        },
        row(3, "payment"),
    ];
    let mut tx = store.begin().await.unwrap();
    tx.subscription_history_insert(&[rows[2].clone(), rows[0].clone(), rows[1].clone()])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.subscription_history(s).await.unwrap(), rows);
    assert_eq!(store.subscription_history(s + 1).await.unwrap(), []);
    let mut tx = store.begin().await.unwrap();
    let again = tx.subscription_history_insert(&[row(2, "cancel")]).await;
    assert!(is_conflict(&again), "{again:?}");
});

both_backends!(
    renewals_are_recorded_once_and_closed,
    |url: String| async move {
        let store = store(&url).await;
        let m = add_member(&store, "m").await.id;
        let subs =
            add_subscriptions(&store, &[subscription(m, "gold"), subscription(m, "gold")]).await;
        let (s, t) = (subs[0].id, subs[1].id);
        let mut tx = store.begin().await.unwrap();
        let lapsed = RenewalRow {
            state: "lapsed".into(),
            ..renewal(s, 100, m, 90)
        };
        tx.renewal_insert(&lapsed).await.unwrap();
        tx.renewal_insert(&renewal(s, 300, m, 290)).await.unwrap();
        tx.renewal_insert(&renewal(s, 200, m, 190)).await.unwrap();
        // The same period again is the record made first.
        tx.renewal_insert(&RenewalRow {
            amount_minor: 1,
            due_at_us: 1,
            ..renewal(s, 200, m, 190)
        })
        .await
        .unwrap();
        tx.renewal_insert(&renewal(t, 200, m, 190)).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(
            store.renewals_of(s).await.unwrap(),
            [
                lapsed.clone(),
                renewal(s, 200, m, 190),
                renewal(s, 300, m, 290)
            ]
        );

        // Listed oldest due first, after a cursor of (due, subscription).
        let open = |rows: Vec<RenewalRow>| {
            rows.iter()
                .map(|r| (r.due_at_us, r.subscription_id))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            open(store.renewals_list("open", (0, 0), 10).await.unwrap()),
            [(190, s), (190, t), (290, s)]
        );
        assert_eq!(
            open(store.renewals_list("open", (190, s), 10).await.unwrap()),
            [(190, t), (290, s)]
        );
        assert_eq!(
            open(store.renewals_list("open", (0, 0), 1).await.unwrap()),
            [(190, s)]
        );
        assert_eq!(
            open(store.renewals_list("lapsed", (0, 0), 10).await.unwrap()),
            [(90, s)]
        );

        // Closing touches the open renewals of that subscription only.
        let mut tx = store.begin().await.unwrap();
        tx.renewals_close(s, "paid").await.unwrap();
        tx.commit().await.unwrap();
        let states: Vec<String> = store
            .renewals_of(s)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.state)
            .collect();
        assert_eq!(states, ["lapsed", "paid", "paid"]);
        assert_eq!(
            open(store.renewals_list("open", (0, 0), 10).await.unwrap()),
            [(190, t)]
        );
    }
);

both_backends!(trials_are_taken_once_per_plan, |url: String| async move {
    let store = store(&url).await;
    let m = add_member(&store, "m").await.id;
    let n = add_member(&store, "n").await.id;
    let mut tx = store.begin().await.unwrap();
    assert!(!tx.trial_taken(m, "gold").await.unwrap());
    assert!(tx.trial_insert(m, "gold", 1, 10).await.unwrap());
    assert!(tx.trial_taken(m, "gold").await.unwrap());
    assert!(
        !tx.trial_insert(m, "gold", 2, 20).await.unwrap(),
        "a second trial"
    );
    assert!(!tx.trial_taken(m, "silver").await.unwrap());
    assert!(!tx.trial_taken(n, "gold").await.unwrap());
    assert!(tx.trial_insert(n, "gold", 3, 30).await.unwrap());
    drop(tx);
    let mut tx = store.begin().await.unwrap();
    assert!(!tx.trial_taken(m, "gold").await.unwrap(), "rolled back");
});

both_backends!(
    partner_codes_are_handed_out_oldest_first,
    |url: String| async move {
        let store = store(&url).await;
        let m = add_member(&store, "m").await.id;
        let s = add_subscriptions(&store, &[subscription(m, "gold")]).await[0].id;
        let mut tx = store.begin().await.unwrap();
        assert_eq!(
            tx.codes_insert("p", &["c1", "c2", "c1"], 5).await.unwrap(),
            2
        );
        assert_eq!(tx.codes_insert("p", &["c2", "c3"], 6).await.unwrap(), 1);
        assert_eq!(
            tx.codes_insert("q", &["c1"], 7).await.unwrap(),
            1,
            "pools are apart"
        );
        assert_eq!(tx.codes_insert("q", &[], 7).await.unwrap(), 0);
        tx.commit().await.unwrap();
        assert_eq!(
            store.pool_counts("p").await.unwrap(),
            PoolCounts {
                total: 3,
                assigned: 0
            }
        );
        assert_eq!(
            store.pool_counts("none").await.unwrap(),
            PoolCounts::default()
        );

        let mut tx = store.begin().await.unwrap();
        let mut taken = Vec::new();
        for term_no in 1..=4 {
            taken.push(
                tx.code_take("p", m, s, term_no, 100 + term_no)
                    .await
                    .unwrap(),
            );
        }
        tx.commit().await.unwrap();
        assert_eq!(
            taken,
            [
                Some("c1".into()),
                Some("c2".into()),
                Some("c3".into()),
                None
            ]
        );
        assert_eq!(
            store.pool_counts("p").await.unwrap(),
            PoolCounts {
                total: 3,
                assigned: 3
            }
        );
        assert_eq!(
            store.pool_counts("q").await.unwrap(),
            PoolCounts {
                total: 1,
                assigned: 0
            }
        );
        let assigned = |code: &str, term_no: i64| AssignedCodeRow {
            pool: "p".into(),
            code: code.into(),
            term_no,
            assigned_at_us: 100 + term_no,
        };
        assert_eq!(
            store.codes_of_subscription(s).await.unwrap(),
            [assigned("c1", 1), assigned("c2", 2), assigned("c3", 3)]
        );
        assert_eq!(store.codes_of_subscription(s + 1).await.unwrap(), []);

        // More codes than one statement carries (100).
        let many: Vec<String> = (0..150).map(|i| format!("m{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let mut tx = store.begin().await.unwrap();
        assert_eq!(tx.codes_insert("big", &many, 1).await.unwrap(), 150);
        tx.commit().await.unwrap();
        assert_eq!(store.pool_counts("big").await.unwrap().total, 150);
    }
);

both_backends!(
    concurrent_takers_never_share_a_code,
    |url: String| async move {
        let store = store(&url).await;
        let m = add_member(&store, "m").await.id;
        let s = add_subscriptions(&store, &[subscription(m, "gold")]).await[0].id;
        let codes: Vec<String> = (0..10).map(|i| format!("c{i}")).collect();
        let codes: Vec<&str> = codes.iter().map(String::as_str).collect();
        let mut tx = store.begin().await.unwrap();
        tx.codes_insert("p", &codes, 1).await.unwrap();
        tx.commit().await.unwrap();
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let mut tx = store.begin().await.unwrap();
                    let code = tx.code_take("p", m, s, i, 5).await.unwrap();
                    tx.commit().await.unwrap();
                    code
                })
            })
            .collect();
        let mut got = Vec::new();
        for t in tasks {
            got.extend(t.await.unwrap());
        }
        got.sort();
        let mut expected: Vec<String> = codes.iter().map(|c| (*c).to_owned()).collect();
        expected.sort();
        assert_eq!(got, expected, "each code once, and every code taken");
    }
);

both_backends!(
    benefit_uses_by_subscription_and_reference,
    |url: String| async move {
        let store = store(&url).await;
        let m = add_member(&store, "m").await.id;
        let s = add_subscriptions(&store, &[subscription(m, "gold")]).await[0].id;
        let rows = [
            benefit_use(m, Some(s), Some("acme"), Some("r1")),
            benefit_use(m, Some(s), None, None),
            benefit_use(m, Some(s), None, None),
            benefit_use(m, None, Some("acme"), Some("r2")),
        ];
        let mut tx = store.begin().await.unwrap();
        let mut stored = Vec::new();
        for row in &rows {
            let id = tx.benefit_use_insert(row).await.unwrap();
            stored.push(BenefitUseRow { id, ..row.clone() });
        }
        assert!(stored.windows(2).all(|w| w[0].id < w[1].id));
        assert_eq!(
            tx.benefit_use_by_reference("acme", "r1").await.unwrap(),
            Some(stored[0].clone())
        );
        assert_eq!(
            tx.benefit_use_by_reference("acme", "r9").await.unwrap(),
            None
        );
        assert_eq!(
            tx.benefit_use_by_reference("other", "r1").await.unwrap(),
            None
        );
        assert_eq!(tx.benefit_uses_of(s).await.unwrap(), stored[..3]);
        assert_eq!(tx.benefit_uses_of(s + 1).await.unwrap(), []);
        tx.commit().await.unwrap();
        assert_eq!(store.benefit_uses_read(s).await.unwrap(), stored[..3]);
        // A partner's reference is used once; uses without one repeat freely (above).
        let mut tx = store.begin().await.unwrap();
        let again = tx
            .benefit_use_insert(&benefit_use(m, None, Some("acme"), Some("r1")))
            .await;
        assert!(is_conflict(&again), "{again:?}");
    }
);

both_backends!(due_subscriptions_in_time_order, |url: String| async move {
    let store = store(&url).await;
    let m = add_member(&store, "m").await.id;
    let n = add_member(&store, "n").await.id;
    let due = |member_id, next_due_us| SubscriptionRow {
        next_due_us,
        ..subscription(member_id, "gold")
    };
    let subs = add_subscriptions(
        &store,
        &[
            due(m, Some(300)),
            due(n, Some(100)),
            due(m, None),
            due(m, Some(100)),
        ],
    )
    .await;
    let pair = |i: usize| (subs[i].id, subs[i].member_id);
    for (to, limit, expected) in [
        (300, 10, vec![pair(1), pair(3), pair(0)]),
        (100, 10, vec![pair(1), pair(3)]),
        (300, 2, vec![pair(1), pair(3)]),
        (99, 10, vec![]),
    ] {
        assert_eq!(
            store.due_subscriptions(to, limit).await.unwrap(),
            expected,
            "{to} {limit}"
        );
    }
});

both_backends!(
    grant_candidates_hold_the_benefit_and_have_no_grant,
    |url: String| async move {
        let store = store(&url).await;
        let members = add_members(&store, "m", 6).await;
        let id = |i: usize| members[i].id;
        // m0 subscribes to gold until after `since`, m1 until before; m2 is silver, m3 gold
        // tier; m4 and m5 are in the first tier (m5 under the name "").
        add_subscriptions(
            &store,
            &[
                SubscriptionRow {
                    access_end_us: 200,
                    ..subscription(id(0), "gold")
                },
                SubscriptionRow {
                    access_end_us: 200,
                    ..subscription(id(0), "gold")
                },
                SubscriptionRow {
                    access_end_us: 50,
                    ..subscription(id(1), "gold")
                },
            ],
        )
        .await;
        let tier = |i: usize, name: Option<&str>| TierRow {
            member_id: id(i),
            tier: name.map(str::to_owned),
            next_history_no: 1,
            ..TierRow::default()
        };
        let tiers = [
            tier(0, Some("silver")),
            tier(1, Some("silver")),
            tier(2, Some("silver")),
            tier(3, Some("gold")),
            tier(4, None),
            tier(5, Some("")),
        ];
        let refs: Vec<&TierRow> = tiers.iter().collect();
        let mut tx = store.begin().await.unwrap();
        tx.tiers_put_many(&refs).await.unwrap();
        tx.commit().await.unwrap();
        let plans = vec!["gold".to_owned()];
        let plans = &plans;
        let candidates = |tiers: Vec<Option<String>>, after: i64, limit: u32| {
            let store = store.clone();
            async move {
                store
                    .grant_candidates("coffee", "2026-01", plans, 100, &tiers, after, limit)
                    .await
                    .unwrap()
            }
        };
        let gold = || vec![Some("gold".to_owned())];
        assert_eq!(candidates(vec![], 0, 10).await, [id(0)], "by plan, once");
        assert_eq!(candidates(gold(), 0, 10).await, [id(0), id(3)]);
        assert_eq!(candidates(vec![None], 0, 10).await, [id(0), id(4), id(5)]);
        assert_eq!(
            candidates(gold(), id(0), 10).await,
            [id(3)],
            "after a member"
        );
        assert_eq!(
            candidates(vec![None], 0, 2).await,
            [id(0), id(4)],
            "a limit"
        );
        // A grant for the period removes the member; another period or benefit does not.
        let mut tx = store.begin().await.unwrap();
        assert!(tx
            .grant_insert(id(0), "coffee", "2026-01", 7)
            .await
            .unwrap());
        assert!(!tx
            .grant_insert(id(0), "coffee", "2026-01", 8)
            .await
            .unwrap());
        assert!(tx
            .grant_insert(id(3), "coffee", "2026-02", 7)
            .await
            .unwrap());
        assert!(tx.grant_insert(id(3), "tea", "2026-01", 7).await.unwrap());
        tx.commit().await.unwrap();
        assert_eq!(candidates(gold(), 0, 10).await, [id(3)]);
    }
);

both_backends!(job_marks_never_move_back, |url: String| async move {
    let store = store(&url).await;
    assert_eq!(store.job_mark_get("grants").await.unwrap(), None);
    for (set, expected) in [(100, 100), (50, 100), (100, 100), (200, 200)] {
        let mut tx = store.begin().await.unwrap();
        tx.job_mark_set("grants", set).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(
            store.job_mark_get("grants").await.unwrap(),
            Some(expected),
            "after {set}"
        );
    }
    assert_eq!(store.job_mark_get("other").await.unwrap(), None);
});

both_backends!(
    a_subscription_record_holds_everything_its_view_shows,
    |url: String| async move {
        let store = store(&url).await;
        let holder = add_member(&store, "holder").await.id;
        let buyer = add_member(&store, "buyer").await.id;
        let other = add_subscriptions(&store, &[subscription(holder, "silver")]).await[0].id;
        let gift = SubscriptionRow {
            buyer_member_id: buyer,
            ..subscription(holder, "gold")
        };
        let s = add_subscriptions(&store, &[gift]).await[0].clone();
        let history = SubscriptionHistoryRow {
            subscription_id: s.id,
            history_no: 1,
            member_id: holder,
            at_us: 100,
            kind: "payment".into(),
            from_status: None,
            to_status: Some("active".into()),
            cause: "paid".into(),
            payment_ref: Some("p1".into()),
            amount_minor: Some(990),
        };
        let mut tx = store.begin().await.unwrap();
        for t in [
            term(s.id, 2, holder, Some("p2")),
            term(s.id, 1, holder, Some("p1")),
        ] {
            tx.term_insert(&t).await.unwrap();
        }
        tx.term_insert(&term(other, 1, holder, Some("p3")))
            .await
            .unwrap();
        tx.subscription_history_insert(std::slice::from_ref(&history))
            .await
            .unwrap();
        tx.renewal_insert(&renewal(s.id, 300, holder, 250))
            .await
            .unwrap();
        tx.codes_insert("pool", &["c1"], 5).await.unwrap();
        tx.code_take("pool", holder, s.id, 1, 7).await.unwrap();
        let want = SubscriptionRecord {
            row: s.clone(),
            holder: "holder".into(),
            buyer: "buyer".into(),
            terms: vec![
                term(s.id, 1, holder, Some("p1")),
                term(s.id, 2, holder, Some("p2")),
            ],
            codes: vec![AssignedCodeRow {
                pool: "pool".into(),
                code: "c1".into(),
                term_no: 1,
                assigned_at_us: 7,
            }],
            history: vec![history],
            renewals: vec![renewal(s.id, 300, holder, 250)],
        };
        // Inside the write that made them, and after it.
        assert_eq!(
            tx.subscription_record(s.id).await.unwrap().as_ref(),
            Some(&want)
        );
        assert_eq!(tx.subscription_record(s.id + 9).await.unwrap(), None);
        tx.commit().await.unwrap();
        assert_eq!(store.subscription_record(s.id).await.unwrap(), Some(want));
        assert_eq!(store.subscription_record(s.id + 9).await.unwrap(), None);
    }
);

both_backends!(
    subscriptions_are_counted_by_status,
    |url: String| async move {
        let store = store(&url).await;
        assert_eq!(store.subscriptions_by_status().await.unwrap(), []);
        let m = add_member(&store, "m").await.id;
        let canceled = SubscriptionRow {
            status: "canceled".into(),
            ..subscription(m, "gold")
        };
        add_subscriptions(
            &store,
            &[subscription(m, "gold"), canceled, subscription(m, "silver")],
        )
        .await;
        assert_eq!(
            store.subscriptions_by_status().await.unwrap(),
            [("active".to_owned(), 2), ("canceled".to_owned(), 1)]
        );
    }
);
