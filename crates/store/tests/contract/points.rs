//! The points ledger: accounts, lots, journal entries and postings, orders, client-keyed
//! operations, reward stock, the time-driven reads and the ledger check.

use super::*;

pub(crate) fn lot(member_id: i64, lot_no: i64, state: &str, points: i64, remaining: i64) -> LotRow {
    LotRow {
        member_id,
        lot_no,
        source: "order".into(),
        order_id: None,
        earned_at_us: 10 * lot_no,
        available_at_us: 100,
        expires_at_us: None,
        points,
        remaining,
        state: state.into(),
    }
}

/// A journal entry with these postings: (account, lot, amount).
pub(crate) fn entry(
    member_id: i64,
    entry_no: i64,
    postings: &[(&str, Option<i64>, i64)],
) -> EntryRow {
    EntryRow {
        member_id,
        entry_no,
        kind: "earn".into(),
        at_us: 100 + entry_no,
        recorded_at_us: 200 + entry_no,
        order_id: Some(format!("o{entry_no}")),
        event_id: None,
        reference: Some("ref".into()),
        reward_id: None,
        reason: Some("why".into()),
        pending_after: entry_no,
        available_after: 2 * entry_no,
        debt_after: 0,
        postings: postings
            .iter()
            .map(|(account, lot_no, amount)| PostingRow {
                account: (*account).into(),
                lot_no: *lot_no,
                amount: *amount,
            })
            .collect(),
    }
}

pub(crate) fn order(member_id: i64, order_id: &str) -> OrderRow {
    OrderRow {
        member_id,
        order_id: order_id.into(),
        state: "awaiting_paid".into(),
        paid_at_us: None,
        total_minor: 1_000,
        goods_minor: 900,
        lines: "[]".into(),
        points_earned: 0,
        points_reversed: 0,
        refunded_goods_minor: 0,
        refunded_total_minor: 0,
        waiting_refunds: "[]".into(),
        score_earned: 0,
        score_reversed: 0,
    }
}

fn account(member_id: i64, i: i64) -> PointAccountRow {
    PointAccountRow {
        member_id,
        pending: i,
        available: 2 * i,
        debt: i % 3,
        next_lot_no: i + 2,
        next_entry_no: i + 3,
        paid_orders: i,
        last_activity_us: Some(i),
        inactive_at_us: (i % 2 == 0).then_some(1_000 + i),
    }
}

async fn put_accounts(store: &Store, accounts: &[PointAccountRow]) {
    let refs: Vec<&PointAccountRow> = accounts.iter().collect();
    let mut tx = store.begin().await.unwrap();
    tx.accounts_put_many(&refs).await.unwrap();
    tx.commit().await.unwrap();
}

async fn insert_lots(store: &Store, lots: &[LotRow]) {
    let mut tx = store.begin().await.unwrap();
    tx.lots_insert(lots).await.unwrap();
    tx.commit().await.unwrap();
}

async fn insert_entries(store: &Store, entries: &[EntryRow]) {
    let mut tx = store.begin().await.unwrap();
    tx.entries_insert(entries).await.unwrap();
    tx.commit().await.unwrap();
}

both_backends!(
    accounts_are_written_back_and_read_with_their_member,
    |url: String| async move {
        let store = store(&url).await;
        // More than one statement's rows (50) and one IN list (100).
        let members = add_members(&store, "m", 120).await;
        let accounts: Vec<PointAccountRow> = members
            .iter()
            .zip(0..)
            .map(|(m, i)| account(m.id, i))
            .collect();
        put_accounts(&store, &accounts).await;
        for a in &accounts {
            assert_eq!(
                store.account_get(a.member_id).await.unwrap().as_ref(),
                Some(a)
            );
        }
        let unknown = members.last().unwrap().id + 1;
        assert_eq!(store.account_get(unknown).await.unwrap(), None);

        let read = store.member_account_read("m3").await.unwrap().unwrap();
        assert_eq!(
            (
                read.external_id.as_str(),
                read.status.as_str(),
                read.attributes.as_str()
            ),
            ("m3", "active", "{}")
        );
        assert_eq!(read.created_at_us, 1_000);
        assert_eq!(read.account, accounts[3]);
        assert!(store.member_account_read("nobody").await.unwrap().is_none());

        let mut tx = store.begin().await.unwrap();
        let one = tx
            .member_account_for_update(members[5].id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (one.external_id.as_str(), &one.account),
            ("m5", &accounts[5])
        );
        assert!(tx
            .member_account_for_update(unknown)
            .await
            .unwrap()
            .is_none());
        // Asked in any order, with repeats and unknown ids: each member once, by id.
        let some = tx
            .members_with_accounts_for_update(&["m7", "m2", "m7", "nobody"])
            .await
            .unwrap();
        let got: Vec<(&str, &PointAccountRow)> = some
            .iter()
            .map(|r| (r.external_id.as_str(), &r.account))
            .collect();
        assert_eq!(got, [("m2", &accounts[2]), ("m7", &accounts[7])]);
        let names: Vec<String> = (0..120).rev().map(|i| format!("m{i}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let all = tx.members_with_accounts_for_update(&names).await.unwrap();
        let ids: Vec<i64> = all.iter().map(|r| r.account.member_id).collect();
        assert_eq!(ids, members.iter().map(|m| m.id).collect::<Vec<_>>());
        tx.commit().await.unwrap();
    }
);

both_backends!(
    orders_are_upserted_and_read_by_key,
    |url: String| async move {
        let store = store(&url).await;
        let a = add_member(&store, "a").await;
        let b = add_member(&store, "b").await;
        let ids: Vec<String> = (0..60).map(|i| format!("o{i}")).collect();
        let mut orders: Vec<OrderRow> = ids.iter().map(|id| order(a.id, id)).collect();
        orders.push(order(b.id, "o0"));
        let mut tx = store.begin().await.unwrap();
        tx.orders_put_many(&orders).await.unwrap();
        let mut some = tx
            .orders_get_many(&[(a.id, "o1"), (b.id, "o0"), (a.id, "missing"), (b.id, "o1")])
            .await
            .unwrap();
        some.sort_by(|x, y| (x.member_id, &x.order_id).cmp(&(y.member_id, &y.order_id)));
        assert_eq!(some, [orders[1].clone(), orders[60].clone()]);
        let keys: Vec<(i64, &str)> = ids.iter().map(|id| (a.id, id.as_str())).collect();
        assert_eq!(tx.orders_get_many(&keys).await.unwrap().len(), 60);
        assert_eq!(tx.orders_get_many(&[]).await.unwrap(), []);
        tx.commit().await.unwrap();

        let paid = OrderRow {
            state: "paid".into(),
            paid_at_us: Some(77),
            total_minor: 1_500,
            goods_minor: 1_400,
            lines: r#"[{"sku":"x"}]"#.into(),
            points_earned: 14,
            points_reversed: 2,
            refunded_goods_minor: 100,
            refunded_total_minor: 110,
            waiting_refunds: r#"[{"r":1}]"#.into(),
            score_earned: 5,
            score_reversed: 1,
            ..orders[1].clone()
        };
        let mut tx = store.begin().await.unwrap();
        tx.orders_put_many(std::slice::from_ref(&paid))
            .await
            .unwrap();
        assert_eq!(tx.orders_get_many(&[(a.id, "o1")]).await.unwrap(), [paid]);
        assert_eq!(
            tx.orders_get_many(&[(b.id, "o0")]).await.unwrap(),
            [orders[60].clone()],
            "the same order id of another member is another order"
        );
    }
);

both_backends!(
    an_upsert_batch_that_names_one_key_twice,
    |url: String| async move {
        let store = store(&url).await;
        let a = add_member(&store, "a").await;
        let first = order(a.id, "o1");
        let second = OrderRow {
            total_minor: 99,
            ..first.clone()
        };
        let (acc, acc2) = (account(a.id, 1), account(a.id, 2));
        let tier = TierRow {
            member_id: a.id,
            tier: Some("gold".into()),
            next_history_no: 1,
            ..TierRow::default()
        };
        // Each in a transaction of its own: on PostgreSQL an error ends the transaction.
        let mut tx = store.begin().await.unwrap();
        let orders = tx.orders_put_many(&[first, second.clone()]).await;
        let stored = tx.orders_get_many(&[(a.id, "o1")]).await;
        drop(tx);
        let mut tx = store.begin().await.unwrap();
        let accounts = tx.accounts_put_many(&[&acc, &acc2]).await;
        drop(tx);
        let mut tx = store.begin().await.unwrap();
        let tiers = tx.tiers_put_many(&[&tier, &tier]).await;
        drop(tx);
        // BUG: the backends disagree on a batch that names one key twice. SQLite applies
        // the rows in turn (the last wins); PostgreSQL refuses the whole statement ("ON
        // CONFLICT DO UPDATE command cannot affect row a second time") with a plain
        // `Database` error. Nothing in the signatures keeps a caller from sending one.
        if is_sqlite(&store) {
            orders.unwrap();
            accounts.unwrap();
            tiers.unwrap();
            assert_eq!(stored.unwrap(), [second]);
        } else {
            for (what, result) in [("orders", orders), ("accounts", accounts), ("tiers", tiers)] {
                assert!(
                    matches!(&result, Err(StoreError::Database(m)) if m.contains("second time")),
                    "{what}: {result:?}"
                );
            }
        }
    }
);

both_backends!(
    lots_are_listed_opened_and_updated,
    |url: String| async move {
        let store = store(&url).await;
        let m = add_member(&store, "m").await;
        let other = add_member(&store, "other").await;
        let lots = [
            LotRow {
                expires_at_us: Some(500),
                ..lot(m.id, 1, "available", 10, 10)
            },
            lot(m.id, 2, "pending", 5, 5),
            lot(m.id, 3, "available", 4, 0),
            lot(m.id, 4, "expired", 3, 0),
            LotRow {
                source: "activity".into(),
                order_id: Some("o5".into()),
                ..lot(m.id, 5, "available", 7, 7)
            },
            lot(other.id, 1, "available", 1, 1),
        ];
        insert_lots(&store, &lots).await;
        let nos = |rows: &[LotRow]| rows.iter().map(|l| l.lot_no).collect::<Vec<_>>();
        assert_eq!(
            nos(&store.lots_list(m.id, false).await.unwrap()),
            [5, 2, 1],
            "newest first; neither expired nor used up (unless pending)"
        );
        let all = store.lots_list(m.id, true).await.unwrap();
        assert_eq!(all, [4, 3, 2, 1, 0].map(|i| lots[i].clone()));

        let mut tx = store.begin().await.unwrap();
        assert_eq!(nos(&tx.lots_open(m.id).await.unwrap()), [1, 2, 3, 5]);
        assert_eq!(
            tx.lots_get(m.id, &[5, 1, 9]).await.unwrap(),
            [lots[0].clone(), lots[4].clone()]
        );
        assert_eq!(tx.lots_get(m.id, &[]).await.unwrap(), []);
        // An update writes what is left and the state, nothing else.
        let spent = LotRow {
            remaining: 0,
            state: "expired".into(),
            points: 999,
            source: "changed".into(),
            ..lots[0].clone()
        };
        tx.lot_update(&spent).await.unwrap();
        assert_eq!(
            tx.lots_get(m.id, &[1]).await.unwrap(),
            [LotRow {
                remaining: 0,
                state: "expired".into(),
                ..lots[0].clone()
            }]
        );
        assert_eq!(nos(&tx.lots_open(m.id).await.unwrap()), [2, 3, 5]);
        tx.commit().await.unwrap();

        let mut tx = store.begin().await.unwrap();
        let taken = tx.lots_insert(&[lot(m.id, 2, "available", 1, 1)]).await;
        assert!(is_conflict(&taken), "{taken:?}");
        drop(tx);
        // A row the schema's CHECK refuses is a database error, not a conflict.
        let mut tx = store.begin().await.unwrap();
        let over = tx.lots_insert(&[lot(m.id, 9, "available", 1, 2)]).await;
        assert!(matches!(over, Err(StoreError::Database(_))), "{over:?}");
        drop(tx);

        // More lots than one statement (50) and one IN list (100).
        let many: Vec<LotRow> = (2..=121)
            .map(|n| lot(other.id, n, "available", 1, 1))
            .collect();
        insert_lots(&store, &many).await;
        let nos_asked: Vec<i64> = (1..=150).collect();
        let mut tx = store.begin().await.unwrap();
        assert_eq!(tx.lots_get(other.id, &nos_asked).await.unwrap().len(), 121);
        assert_eq!(tx.lots_open(other.id).await.unwrap().len(), 121);
    }
);

both_backends!(
    entries_keep_their_postings_in_order,
    |url: String| async move {
        let store = store(&url).await;
        let m = add_member(&store, "m").await;
        let n = add_member(&store, "n").await;
        let entries = vec![
            entry(
                m.id,
                1,
                &[
                    ("member:available", Some(1), 10),
                    ("shop:issued", None, -10),
                ],
            ),
            entry(
                m.id,
                2,
                &[("b", None, 1), ("a", None, -1), ("c", Some(2), 0)],
            ),
            entry(m.id, 3, &[]),
            EntryRow {
                kind: "redeem".into(),
                order_id: None,
                event_id: Some("e4".into()),
                reference: None,
                reward_id: Some("mug".into()),
                reason: None,
                debt_after: 3,
                ..entry(
                    m.id,
                    4,
                    &[
                        ("member:available", Some(1), -4),
                        ("shop:redeemed", None, 4),
                    ],
                )
            },
            entry(m.id, 5, &[("x", None, 0)]),
            entry(n.id, 1, &[("n", None, 0)]),
        ];
        insert_entries(&store, &entries).await;
        let mut tx = store.begin().await.unwrap();
        assert_eq!(
            tx.entry_get(m.id, 2).await.unwrap(),
            Some(entries[1].clone())
        );
        assert_eq!(
            tx.entry_get(m.id, 3).await.unwrap(),
            Some(entries[2].clone())
        );
        assert_eq!(tx.entry_get(m.id, 6).await.unwrap(), None);
        let taken = tx.entries_insert(&[entry(m.id, 5, &[])]).await;
        assert!(is_conflict(&taken), "{taken:?}");
        drop(tx);
        assert_eq!(store.entries_page(m.id, 0, 2).await.unwrap(), entries[0..2]);
        assert_eq!(
            store.entries_page(m.id, 2, 10).await.unwrap(),
            entries[2..5]
        );
        assert_eq!(store.entries_page(m.id, 5, 10).await.unwrap(), []);
        assert_eq!(
            store.entries_page(n.id, 0, 10).await.unwrap(),
            entries[5..6]
        );

        // More entries and postings than one statement carries (50).
        let o = add_member(&store, "o").await;
        let many: Vec<EntryRow> = (1..=60)
            .map(|no| {
                entry(
                    o.id,
                    no,
                    &[("member:available", None, no), ("shop", None, -no)],
                )
            })
            .collect();
        insert_entries(&store, &many).await;
        assert_eq!(store.entries_page(o.id, 0, 100).await.unwrap(), many);
        assert_eq!(store.entries_page(o.id, 55, 3).await.unwrap(), many[55..58]);
    }
);

both_backends!(operations_replay_by_client_id, |url: String| async move {
    let store = store(&url).await;
    let m = add_member(&store, "m").await;
    let n = add_member(&store, "n").await;
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.operation_get(m.id, "op1").await.unwrap(), None);
    tx.operation_insert(m.id, "op1", "sha", 4).await.unwrap();
    tx.commit().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    assert_eq!(
        tx.operation_get(m.id, "op1").await.unwrap(),
        Some(("sha".into(), 4))
    );
    assert_eq!(tx.operation_get(n.id, "op1").await.unwrap(), None);
    tx.operation_insert(n.id, "op1", "other", 1).await.unwrap();
    let again = tx.operation_insert(m.id, "op1", "sha2", 5).await;
    assert!(is_conflict(&again), "{again:?}");
});

both_backends!(
    reward_stock_is_taken_until_none_is_left,
    |url: String| async move {
        let store = store(&url).await;
        let cases: [(&str, Option<i64>, &[bool]); 4] = [
            ("two", Some(2), &[true, true, false, false]),
            ("none", Some(0), &[false]),
            ("negative", Some(-1), &[false]),
            ("unlimited", None, &[true, true, true]),
        ];
        for (reward, stock, expected) in cases {
            for (i, want) in expected.iter().enumerate() {
                let mut tx = store.begin().await.unwrap();
                assert_eq!(
                    tx.reward_take(reward, stock).await.unwrap(),
                    *want,
                    "{reward}, take {i}"
                );
                tx.commit().await.unwrap();
            }
        }
    }
);

both_backends!(
    earnings_count_the_lots_of_the_sources_asked_in_the_window,
    |url: String| async move {
        let store = store(&url).await;
        let a = add_member(&store, "a").await;
        let b = add_member(&store, "b").await;
        let c = add_member(&store, "c").await;
        let earned = |member_id, lot_no, source: &str, points, at_us| LotRow {
            source: source.into(),
            earned_at_us: at_us,
            ..lot(member_id, lot_no, "available", points, 0)
        };
        insert_lots(
            &store,
            &[
                earned(a.id, 1, "order", 10, 100),
                earned(a.id, 2, "activity", 5, 150),
                earned(a.id, 3, "adjustment", 100, 120),
                earned(a.id, 4, "order", 7, 200),
                earned(a.id, 5, "order", 3, 99),
                earned(b.id, 1, "activity", 4, 100),
                earned(c.id, 1, "manual", 4, 100),
            ],
        )
        .await;
        const CAPPED: &[&str] = &["order", "activity"];
        let mut tx = store.begin().await.unwrap();
        let mut got = tx
            .earnings_between_many(&[a.id, b.id, c.id], CAPPED, 100, 200)
            .await
            .unwrap();
        got.sort_unstable();
        assert_eq!(
            got,
            [(a.id, 15), (b.id, 4)],
            "[from, to), orders and activities"
        );
        // More ids than one IN list holds.
        let ids: Vec<i64> = (1..=150).collect();
        let mut got = tx
            .earnings_between_many(&ids, CAPPED, 0, 1_000)
            .await
            .unwrap();
        got.sort_unstable();
        assert_eq!(got, [(a.id, 25), (b.id, 4)]);
        assert_eq!(
            tx.earnings_between_many(&[], CAPPED, 0, 1_000)
                .await
                .unwrap(),
            []
        );
        // Only the sources asked for.
        assert_eq!(
            tx.earnings_between_many(&[a.id, c.id], &["adjustment", "manual"], 0, 1_000)
                .await
                .unwrap()
                .len(),
            2
        );
    }
);

both_backends!(due_lots_come_in_time_order, |url: String| async move {
    let store = store(&url).await;
    let a = add_member(&store, "a").await;
    let b = add_member(&store, "b").await;
    let at = |l: LotRow, available_at_us, expires_at_us| LotRow {
        available_at_us,
        expires_at_us,
        ..l
    };
    insert_lots(
        &store,
        &[
            at(lot(a.id, 1, "pending", 5, 5), 300, None),
            at(lot(a.id, 2, "pending", 5, 5), 100, None),
            at(lot(a.id, 3, "available", 5, 5), 50, None),
            at(lot(a.id, 4, "available", 5, 5), 0, Some(200)),
            at(lot(a.id, 5, "expired", 5, 0), 0, Some(100)),
            at(lot(a.id, 6, "available", 5, 0), 0, Some(150)),
            at(lot(b.id, 1, "pending", 5, 5), 100, Some(400)),
            at(lot(b.id, 2, "available", 5, 5), 0, Some(150)),
        ],
    )
    .await;
    let releases = [
        (300, 10, vec![(a.id, 2), (b.id, 1), (a.id, 1)]),
        (100, 10, vec![(a.id, 2), (b.id, 1)]),
        (300, 1, vec![(a.id, 2)]),
        (99, 10, vec![]),
    ];
    for (to, limit, expected) in releases {
        assert_eq!(
            store.due_releases(to, limit).await.unwrap(),
            expected,
            "{to} {limit}"
        );
    }
    let expiries = [
        (200, 10, vec![(a.id, 6), (b.id, 2), (a.id, 4)]),
        (400, 10, vec![(a.id, 6), (b.id, 2), (a.id, 4), (b.id, 1)]),
        (200, 2, vec![(a.id, 6), (b.id, 2)]),
        (149, 10, vec![]),
    ];
    for (to, limit, expected) in expiries {
        assert_eq!(
            store.due_expiries(to, limit).await.unwrap(),
            expected,
            "{to} {limit}"
        );
    }
});

both_backends!(
    due_inactive_members_in_time_order,
    |url: String| async move {
        let store = store(&url).await;
        let members = add_members(&store, "m", 4).await;
        let deadlines = [Some(500), Some(400), None, Some(400)];
        let accounts: Vec<PointAccountRow> = members
            .iter()
            .zip(deadlines)
            .map(|(m, inactive_at_us)| PointAccountRow {
                inactive_at_us,
                ..account(m.id, 0)
            })
            .collect();
        put_accounts(&store, &accounts).await;
        let id = |i: usize| members[i].id;
        for (to, limit, expected) in [
            (500, 10, vec![id(1), id(3), id(0)]),
            (450, 10, vec![id(1), id(3)]),
            (500, 1, vec![id(1)]),
            (399, 10, vec![]),
        ] {
            assert_eq!(
                store.due_inactive(to, limit).await.unwrap(),
                expected,
                "{to} {limit}"
            );
        }
    }
);

both_backends!(
    expiring_points_are_summed_by_member,
    |url: String| async move {
        let store = store(&url).await;
        let members = add_members(&store, "m", 4).await;
        let (a, b, c, d) = (members[0].id, members[1].id, members[2].id, members[3].id);
        let expiring = |member_id, lot_no, state: &str, remaining, expires_at_us| LotRow {
            expires_at_us: Some(expires_at_us),
            ..lot(member_id, lot_no, state, 10, remaining)
        };
        insert_lots(
            &store,
            &[
                expiring(a, 1, "available", 10, 100),
                expiring(a, 2, "available", 5, 200),
                expiring(a, 3, "expired", 0, 50),
                expiring(a, 4, "available", 0, 60),
                expiring(c, 1, "available", 10, 100),
                expiring(d, 1, "available", 10, 300),
            ],
        )
        .await;
        let inactive = |member_id, available, inactive_at_us| PointAccountRow {
            available,
            inactive_at_us: Some(inactive_at_us),
            ..account(member_id, 0)
        };
        put_accounts(
            &store,
            &[
                inactive(b, 30, 120),
                inactive(c, 50, 130),
                inactive(d, 0, 100),
            ],
        )
        .await;
        let row = |id: i64, points, at| {
            (
                id,
                format!("m{}", members.iter().position(|m| m.id == id).unwrap()),
                points,
                at,
            )
        };
        // By lot, by inactivity, or both (the larger amount, the first instant).
        assert_eq!(
            store.expiring_by_member(150, 0, 10).await.unwrap(),
            [row(a, 10, 100), row(b, 30, 120), row(c, 50, 100)]
        );
        assert_eq!(
            store.expiring_by_member(250, 0, 10).await.unwrap(),
            [row(a, 15, 100), row(b, 30, 120), row(c, 50, 100)]
        );
        assert_eq!(
            store.expiring_by_member(150, a, 1).await.unwrap(),
            [row(b, 30, 120)]
        );
        assert_eq!(store.expiring_by_member(99, 0, 10).await.unwrap(), []);
    }
);

both_backends!(
    check_members_finds_each_broken_invariant,
    |url: String| async move {
        let store = store(&url).await;
        let members = add_members(&store, "m", 6).await;
        let id = |i: usize| members[i].id;
        let balances = |i: usize, pending, available, debt| PointAccountRow {
            pending,
            available,
            debt,
            ..account(id(i), 0)
        };
        put_accounts(
            &store,
            &[
                balances(0, 0, 10, 0), // sound
                balances(1, 5, 0, 0),  // pending with neither lots nor postings
                balances(2, 0, 3, 0),  // an entry that does not balance
                balances(3, 0, 0, 0),  // an expired lot with points left
                balances(4, 0, 0, 4),  // a debt with its postings
                balances(5, 0, 0, 4),  // a debt without postings
            ],
        )
        .await;
        insert_lots(
            &store,
            &[
                lot(id(0), 1, "available", 10, 10),
                lot(id(2), 1, "available", 3, 3),
                lot(id(3), 1, "expired", 5, 2),
            ],
        )
        .await;
        insert_entries(
            &store,
            &[
                entry(
                    id(0),
                    1,
                    &[
                        ("member:available", Some(1), 10),
                        ("shop:issued", None, -10),
                    ],
                ),
                entry(id(2), 1, &[("member:available", Some(1), 3)]),
                entry(
                    id(4),
                    1,
                    &[("member:debt", None, -4), ("shop:clawback", None, 4)],
                ),
            ],
        )
        .await;
        // A day total of a measure that its entries do not add up to.
        let mut tx = store.begin().await.unwrap();
        tx.measures_insert(&[MeasureRow {
            member_id: id(3),
            measure: "score".into(),
            at_us: 86_400_000_000 + 5,
            amount: 9,
            event_id: "e1".into(),
            order_id: None,
        }])
        .await
        .unwrap();
        tx.commit().await.unwrap();
        corrupt(
            &url,
            "UPDATE measure_days SET total = total + 2 WHERE member_id = $1",
            id(3),
        )
        .await;
        let expected: [&[&str]; 6] = [
            &[],
            &[
                "pending balance 5 but pending lots hold 0",
                "pending balance 5 but its postings sum to 0",
            ],
            &["journal entry 1 sums to 3, not 0"],
            &[
                "lot 1 (expired) has 2 left of 5",
                "score total of day 1 is 2 off the sum of its entries",
            ],
            &[],
            &["debt balance 4 but its postings sum to 0"],
        ];
        let mut check_snapshot = store.check_snapshot().await.unwrap();
        for (i, want) in expected.iter().enumerate() {
            let found = check_snapshot
                .check_members(id(i), id(i) + 1)
                .await
                .unwrap();
            let what: Vec<&str> = found.iter().map(|v| v.what.as_str()).collect();
            assert_eq!(what, *want, "member {i}");
            assert!(found.iter().all(|v| v.member_id == Some(id(i))));
        }
        let all = check_snapshot.check_members(0, id(5) + 1).await.unwrap();
        assert_eq!(all.len(), 6);
        assert_eq!(
            check_snapshot
                .check_members(id(5) + 1, i64::MAX)
                .await
                .unwrap(),
            []
        );
    }
);

both_backends!(
    ledger_totals_sum_postings_by_account,
    |url: String| async move {
        let store = store(&url).await;
        let mut check_snapshot = store.check_snapshot().await.unwrap();
        assert_eq!(check_snapshot.ledger_totals().await.unwrap(), (vec![], 0));
        drop(check_snapshot);
        let a = add_member(&store, "a").await;
        let b = add_member(&store, "b").await;
        insert_entries(
            &store,
            &[
                entry(
                    a.id,
                    1,
                    &[("member:available", None, 10), ("shop:issued", None, -10)],
                ),
                entry(
                    a.id,
                    2,
                    &[("member:pending", None, 4), ("shop:issued", None, -4)],
                ),
                entry(
                    b.id,
                    1,
                    &[("member:debt", None, -2), ("shop:clawback", None, 2)],
                ),
            ],
        )
        .await;
        put_accounts(
            &store,
            &[
                PointAccountRow {
                    pending: 4,
                    available: 10,
                    debt: 0,
                    ..account(a.id, 0)
                },
                PointAccountRow {
                    pending: 0,
                    available: 0,
                    debt: 2,
                    ..account(b.id, 0)
                },
            ],
        )
        .await;
        let mut check_snapshot = store.check_snapshot().await.unwrap();
        let (accounts, outstanding) = check_snapshot.ledger_totals().await.unwrap();
        let expected = [
            ("member:available", 10),
            ("member:debt", -2),
            ("member:pending", 4),
            ("shop:clawback", 2),
            ("shop:issued", -14),
        ]
        .map(|(name, n)| (name.to_owned(), n));
        assert_eq!(accounts, expected);
        assert_eq!(outstanding, 12, "pending + available - debt");
    }
);

both_backends!(
    lots_are_found_in_spend_order_due_and_by_order,
    |url: String| async move {
        let store = store(&url).await;
        let m = add_member(&store, "m").await;
        let other = add_member(&store, "other").await;
        let expiring = |no: i64, at: Option<i64>, earned: i64| LotRow {
            expires_at_us: at,
            earned_at_us: earned,
            ..lot(m.id, no, "available", 10, 10)
        };
        let lots = [
            expiring(1, None, 1),
            expiring(2, Some(900), 5),
            expiring(3, Some(500), 9),
            expiring(4, Some(500), 2),
            expiring(5, None, 0),
            LotRow {
                remaining: 0,
                ..expiring(6, Some(100), 1)
            },
            LotRow {
                state: "pending".into(),
                available_at_us: 300,
                order_id: Some("o7".into()),
                ..expiring(7, Some(400), 1)
            },
            LotRow {
                state: "expired".into(),
                remaining: 0,
                order_id: Some("o7".into()),
                ..expiring(8, Some(50), 1)
            },
            LotRow {
                order_id: Some("o7".into()),
                ..expiring(9, Some(2_000), 1)
            },
            lot(other.id, 1, "available", 1, 1),
        ];
        insert_lots(&store, &lots).await;
        let nos = |rows: &[LotRow]| rows.iter().map(|l| l.lot_no).collect::<Vec<_>>();
        let mut tx = store.begin().await.unwrap();
        // Expiring first (by instant, then earned, then number), never-expiring last; the
        // used-up and pending lots are not spendable.
        let all = tx.lots_in_spend_order(m.id, None, 100).await.unwrap();
        assert_eq!(nos(&all), [4, 3, 2, 9, 5, 1]);
        // A page at a time, after the last lot of the page before.
        let first = tx.lots_in_spend_order(m.id, None, 2).await.unwrap();
        assert_eq!(nos(&first), [4, 3]);
        let next = tx.lots_in_spend_order(m.id, first.last(), 3).await.unwrap();
        assert_eq!(nos(&next), [2, 9, 5]);
        let last = tx.lots_in_spend_order(m.id, next.last(), 3).await.unwrap();
        assert_eq!(nos(&last), [1]);
        assert_eq!(
            tx.lots_in_spend_order(m.id, last.last(), 3).await.unwrap(),
            []
        );
        // Due by 450: the pending lot past its window and every unexpired lot past its
        // expiry (the used-up one too: its state still moves); by 500, the two at 500.
        assert_eq!(nos(&tx.lots_due(m.id, 450).await.unwrap()), [6, 7]);
        assert_eq!(nos(&tx.lots_due(m.id, 500).await.unwrap()), [3, 4, 6, 7]);
        assert_eq!(
            nos(&tx.lots_due(m.id, 99).await.unwrap()),
            Vec::<i64>::new()
        );
        assert_eq!(
            nos(&store.lots_due_read(m.id, 500).await.unwrap()),
            [3, 4, 6, 7]
        );
        // Every lot of an order, whatever its state, in lot order: the ledger decides
        // which of them a refund may take from.
        assert_eq!(nos(&tx.lots_of_order(m.id, "o7").await.unwrap()), [7, 8, 9]);
        assert_eq!(tx.lots_of_order(other.id, "o7").await.unwrap(), []);
    }
);
