//! Score and tiers: measure entries, members' tier states, tier history.

use super::*;

fn measure(member_id: i64, measure: &str, at_us: i64, amount: i64, event_id: &str) -> MeasureRow {
    MeasureRow {
        member_id,
        measure: measure.into(),
        at_us,
        amount,
        event_id: event_id.into(),
        order_id: None,
    }
}

fn history(member_id: i64, history_no: i64, kind: &str) -> HistoryRow {
    HistoryRow {
        member_id,
        history_no,
        at_us: 10 * history_no,
        kind: kind.into(),
        from_tier: None,
        to_tier: Some("gold".into()),
        measure_value: 100 + history_no,
        needed: Some(100),
        evaluation_at_us: Some(1_000),
    }
}

pub(crate) async fn put_tiers(store: &Store, tiers: &[TierRow]) {
    let refs: Vec<&TierRow> = tiers.iter().collect();
    let mut tx = store.begin().await.unwrap();
    tx.tiers_put_many(&refs).await.unwrap();
    tx.commit().await.unwrap();
}

both_backends!(tiers_are_upserted_and_read, |url: String| async move {
    let store = store(&url).await;
    let members = add_members(&store, "m", 120).await;
    let tiers: Vec<TierRow> = members
        .iter()
        .zip(0..)
        .map(|(m, i)| TierRow {
            member_id: m.id,
            tier: (i % 2 == 0).then(|| format!("t{i}")),
            since_us: Some(i),
            retained_until_us: Some(i + 1),
            floor_tier: (i % 3 == 0).then(|| "silver".to_owned()),
            floor_until_us: Some(i + 2),
            next_evaluation_us: Some(i + 3),
            next_warning_us: None,
            last_evaluated_us: Some(i + 4),
            next_history_no: i + 5,
        })
        .collect();
    put_tiers(&store, &tiers).await;
    assert_eq!(
        store.tier_get(members[7].id).await.unwrap().as_ref(),
        Some(&tiers[7])
    );
    assert_eq!(store.tier_get(members[119].id + 1).await.unwrap(), None);
    let mut ids: Vec<i64> = members.iter().map(|m| m.id).collect();
    ids.push(members[119].id + 1);
    let mut tx = store.begin().await.unwrap();
    let mut got = tx.tiers_get_many(&ids).await.unwrap();
    got.sort_by_key(|t| t.member_id);
    assert_eq!(got, tiers);
    assert_eq!(tx.tiers_get_many(&[]).await.unwrap(), []);
    // Back to the first tier: every field is written, `None` too.
    let reset = TierRow {
        member_id: members[0].id,
        next_history_no: 9,
        ..TierRow::default()
    };
    tx.tiers_put_many(&[&reset]).await.unwrap();
    assert_eq!(tx.tiers_get_many(&[members[0].id]).await.unwrap(), [reset]);
});

both_backends!(measures_are_summed_over_windows, |url: String| async move {
    let store = store(&url).await;
    let a = add_member(&store, "a").await.id;
    let b = add_member(&store, "b").await.id;
    let mut tx = store.begin().await.unwrap();
    tx.measures_insert(&[
        measure(a, "score", 10, 5, "e1"),
        measure(a, "score", 20, 7, "e2"),
        measure(a, "spend", 20, 100, "e2"),
        measure(a, "score", 30, -3, "e3"),
        MeasureRow {
            order_id: Some("o4".into()),
            ..measure(a, "score", 40, 11, "e4")
        },
        measure(b, "score", 20, 1, "e5"),
    ])
    .await
    .unwrap();
    tx.commit().await.unwrap();

    // `measure_sum` and `measure_sum_read`: both ends included.
    let sums = [
        ("score", 10, 30, 9),
        ("score", 11, 29, 7),
        ("score", 10, 40, 20),
        ("spend", 0, 100, 100),
        ("points", 0, 100, 0),
    ];
    let mut tx = store.begin().await.unwrap();
    for (name, from, to, expected) in sums {
        assert_eq!(
            tx.measure_sum(a, name, from, to).await.unwrap(),
            expected,
            "{name} [{from}, {to}]"
        );
        assert_eq!(
            store.measure_sum_read(a, name, from, to).await.unwrap(),
            expected,
            "{name} [{from}, {to}]"
        );
    }

    // `measures_sum_many`: the end excluded.
    const ALL: &[&str] = &["points", "score", "spend"];
    let mut got = tx.measures_sum_many(&[a, b], ALL, 10, 40).await.unwrap();
    got.sort();
    assert_eq!(
        got,
        [
            (a, "score".into(), 9),
            (a, "spend".into(), 100),
            (b, "score".into(), 1)
        ]
    );
    // Only the measures asked for.
    assert_eq!(
        tx.measures_sum_many(&[a, b], &["spend"], 10, 40)
            .await
            .unwrap(),
        [(a, "spend".into(), 100)]
    );
    // `measure_gains_many`: only the positive entries of one measure.
    assert_eq!(
        tx.measure_gains_many(&[a], "score", 10, 41).await.unwrap(),
        [(a, 23)]
    );
    assert_eq!(
        tx.measure_gains_many(&[a], "spend", 10, 41).await.unwrap(),
        [(a, 100)]
    );
    let ids = ids_of(150);
    let mut got = tx.measure_gains_many(&ids, "score", 0, 100).await.unwrap();
    got.sort();
    assert_eq!(got, [(a, 23), (b, 1)], "more ids than one IN list");
    assert_eq!(
        tx.measures_sum_many(&ids, ALL, 0, 100).await.unwrap().len(),
        3
    );

    // `measures_raw_many`: [lo, hi) and from `from` on, each entry once.
    let raw = |rows: Vec<(i64, String, i64, i64)>| {
        let mut rows: Vec<(i64, i64, String)> = rows
            .into_iter()
            .map(|(m, name, at, _)| (m, at, name))
            .collect();
        rows.sort();
        rows
    };
    let got = raw(tx.measures_raw_many(&[a], ALL, 20, 30, 40).await.unwrap());
    assert_eq!(
        got,
        [
            (a, 20, "score".into()),
            (a, 20, "spend".into()),
            (a, 40, "score".into())
        ]
    );
    let got = raw(tx
        .measures_raw_many(&[a, b], ALL, 10, 40, 30)
        .await
        .unwrap());
    assert_eq!(
        got.len(),
        6,
        "overlapping windows read each entry once: {got:?}"
    );
    let got = tx.measures_raw_many(&[a], ALL, 0, 15, 40).await.unwrap();
    let mut amounts: Vec<i64> = got.iter().map(|r| r.3).collect();
    amounts.sort();
    assert_eq!(amounts, [5, 11]);
    let got = raw(tx.measures_raw_many(&ids, ALL, 0, 0, 20).await.unwrap());
    assert_eq!(got.len(), 5, "more ids than one IN list");
    let got = raw(tx
        .measures_raw_many(&ids, &["spend"], 0, 0, 0)
        .await
        .unwrap());
    assert_eq!(
        got,
        [(a, 20, "spend".into())],
        "only the measures asked for"
    );

    // One entry per member, event and measure.
    let again = tx
        .measures_insert(&[measure(a, "score", 50, 1, "e1")])
        .await;
    assert!(is_conflict(&again), "{again:?}");
});

fn ids_of(n: i64) -> Vec<i64> {
    (1..=n).collect()
}

// A window's sum reads whole days from `measure_days` and the entries of the partial days
// at its ends: for any window, on any day boundary, it equals the sum of the entries.
both_backends!(
    day_totals_sum_exactly_like_their_entries,
    |url: String| async move {
        const DAY: i64 = 86_400_000_000;
        let store = store(&url).await;
        let a = add_member(&store, "a").await.id;
        let b = add_member(&store, "b").await.id;
        // A seeded sequence: entries on both sides of day boundaries (some before 1970), in
        // two batches so that day totals are added to, not only created.
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |n: i64| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            ((seed >> 33) as i64).rem_euclid(n)
        };
        let mut entries = Vec::new();
        for i in 0..400 {
            let day = next(12) - 3;
            let at = day * DAY + [0, 1, DAY - 1, next(DAY)][next(4) as usize];
            let member = if i % 5 == 0 { b } else { a };
            let amount = [1, -1, 0, 7, -3, 1 << 20][next(6) as usize];
            entries.push(measure(member, "score", at, amount, &format!("e{i}")));
        }
        for half in entries.chunks(200) {
            let mut tx = store.begin().await.unwrap();
            tx.measures_insert(half).await.unwrap();
            tx.commit().await.unwrap();
        }
        let expected = |member: i64, from: i64, to: i64| -> i64 {
            entries
                .iter()
                .filter(|e| e.member_id == member && e.at_us >= from && e.at_us < to)
                .map(|e| e.amount)
                .sum()
        };
        let edge = |k: i64| k * DAY + [0, 1, -1, DAY / 2][(k.rem_euclid(4)) as usize];
        let mut tx = store.begin().await.unwrap();
        for from_day in -4..10 {
            for to_day in from_day..11 {
                let (from, to) = (edge(from_day), edge(to_day) + 3);
                let mut got = tx
                    .measures_sum_many(&[a, b], &["score"], from, to)
                    .await
                    .unwrap();
                got.sort();
                let want: Vec<(i64, String, i64)> = [a, b]
                    .iter()
                    .filter(|m| {
                        entries
                            .iter()
                            .any(|e| e.member_id == **m && e.at_us >= from && e.at_us < to)
                    })
                    .map(|m| (*m, "score".to_owned(), expected(*m, from, to)))
                    .collect();
                assert_eq!(got, want, "[{from}, {to})");
                assert_eq!(
                    tx.measure_sum(a, "score", from, to - 1).await.unwrap(),
                    expected(a, from, to),
                    "[{from}, {to})"
                );
                assert_eq!(
                    store
                        .measure_sum_read(b, "score", from, to - 1)
                        .await
                        .unwrap(),
                    expected(b, from, to),
                    "[{from}, {to})"
                );
            }
        }
        // The widest window a lifetime measure asks for.
        assert_eq!(
            tx.measure_sum(a, "score", i64::MIN / 2, i64::MAX / 2)
                .await
                .unwrap(),
            expected(a, i64::MIN, i64::MAX)
        );
    }
);

both_backends!(tier_history_newest_first, |url: String| async move {
    let store = store(&url).await;
    let m = add_member(&store, "m").await.id;
    let n = add_member(&store, "n").await.id;
    let rows: Vec<HistoryRow> = (1..=60).map(|no| history(m, no, "upgrade")).collect();
    let mut tx = store.begin().await.unwrap();
    tx.history_insert(&rows).await.unwrap();
    let warning = HistoryRow {
        from_tier: Some("gold".into()),
        to_tier: None,
        needed: None,
        evaluation_at_us: None,
        ..history(n, 1, "warning")
    };
    tx.history_insert(std::slice::from_ref(&warning))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        store.tier_history(m, i64::MAX, 2).await.unwrap(),
        [rows[59].clone(), rows[58].clone()]
    );
    assert_eq!(
        store.tier_history(m, i64::MAX, 100).await.unwrap().len(),
        60
    );
    assert_eq!(
        store.tier_history(n, i64::MAX, 10).await.unwrap(),
        [warning]
    );
    assert_eq!(store.tier_history(m, i64::MAX, 0).await.unwrap(), []);
    // Below a number: the page after one that ended there.
    let older = store.tier_history(m, 3, 10).await.unwrap();
    assert_eq!(older, [rows[1].clone(), rows[0].clone()]);
    let mut tx = store.begin().await.unwrap();
    let again = tx.history_insert(&[history(m, 3, "downgrade")]).await;
    assert!(is_conflict(&again), "{again:?}");
});

both_backends!(
    due_evaluations_and_warnings_in_time_order,
    |url: String| async move {
        let store = store(&url).await;
        let members = add_members(&store, "m", 4).await;
        let id = |i: usize| members[i].id;
        let at = [Some(300), Some(100), Some(100), None];
        let tiers: Vec<TierRow> = (0..4)
            .map(|i| TierRow {
                member_id: id(i),
                next_evaluation_us: at[i],
                next_warning_us: at[i].map(|t| t + 1_000),
                next_history_no: 1,
                ..TierRow::default()
            })
            .collect();
        put_tiers(&store, &tiers).await;
        for (to, limit, expected) in [
            (300, 10, vec![id(1), id(2), id(0)]),
            (100, 10, vec![id(1), id(2)]),
            (300, 1, vec![id(1)]),
            (99, 10, vec![]),
        ] {
            assert_eq!(
                store.due_evaluations(to, limit).await.unwrap(),
                expected,
                "{to}"
            );
            assert_eq!(
                store.due_warnings(to + 1_000, limit).await.unwrap(),
                expected,
                "{to}"
            );
        }
        assert_eq!(
            store.due_warnings(300, 10).await.unwrap(),
            Vec::<i64>::new()
        );
    }
);

both_backends!(
    tier_changes_in_a_window_and_who_made_them,
    |url: String| async move {
        let store = store(&url).await;
        let ids: Vec<i64> = add_members(&store, "m", 4)
            .await
            .iter()
            .map(|m| m.id)
            .collect();
        let line = |member_id, history_no, at_us, kind: &str, from: &str, to: &str| HistoryRow {
            member_id,
            history_no,
            at_us,
            kind: kind.into(),
            from_tier: Some(from.into()),
            to_tier: Some(to.into()),
            measure_value: 0,
            needed: None,
            evaluation_at_us: None,
        };
        let rows = [
            line(ids[0], 1, 10, "upgrade", "member", "gold"),
            line(ids[0], 2, 20, "downgrade", "gold", "member"),
            line(ids[0], 3, 30, "upgrade", "member", "silver"),
            line(ids[1], 1, 15, "warning", "gold", "silver"),
            line(ids[2], 1, 25, "upgrade", "member", "silver"),
            line(ids[3], 1, 18, "downgrade", "gold", "member"),
        ];
        let mut tx = store.begin().await.unwrap();
        tx.history_insert(&rows).await.unwrap();
        // The changes of the kinds asked after an instant, with the last one at or
        // before it, in time order; one member's.
        let nos = |rows: Vec<HistoryRow>| rows.iter().map(|h| h.history_no).collect::<Vec<_>>();
        const CHANGES: &[&str] = &["upgrade", "downgrade"];
        assert_eq!(
            nos(tx.tier_changes_since(ids[0], CHANGES, 15).await.unwrap()),
            [1, 2, 3]
        );
        assert_eq!(
            nos(tx.tier_changes_since(ids[0], CHANGES, 20).await.unwrap()),
            [2, 3]
        );
        assert_eq!(
            nos(tx.tier_changes_since(ids[0], CHANGES, 5).await.unwrap()),
            [1, 2, 3]
        );
        assert_eq!(
            nos(tx.tier_changes_since(ids[0], CHANGES, 99).await.unwrap()),
            [3]
        );
        assert_eq!(
            nos(tx.tier_changes_since(ids[1], CHANGES, 0).await.unwrap()),
            Vec::<i64>::new()
        );
        assert_eq!(
            nos(tx
                .tier_changes_since(ids[1], &["warning"], 0)
                .await
                .unwrap()),
            [1]
        );
        // A grant of the benefit for the period takes a member out.
        tx.grant_insert(ids[3], "pack", "2027-01", 5).await.unwrap();
        tx.commit().await.unwrap();
        let gold = ["gold".to_owned()];
        let changers =
            |tiers: &[String], kinds: &'static [&'static str], after, after_member, limit| {
                let store = store.clone();
                let tiers = tiers.to_vec();
                async move {
                    store
                        .tier_changers("pack", "2027-01", &tiers, kinds, after, after_member, limit)
                        .await
                        .unwrap()
                }
            };
        // Leaving or reaching gold after 0: m0 (twice, listed once), not m1 (a warning is
        // no change), not m3 (granted), not m2 (silver).
        assert_eq!(changers(&gold, CHANGES, 0, 0, 10).await, [ids[0]]);
        assert_eq!(
            changers(&gold, CHANGES, 0, ids[0], 10).await,
            Vec::<i64>::new()
        );
        assert_eq!(changers(&gold, &["warning"], 0, 0, 10).await, [ids[1]]);
        assert_eq!(changers(&gold, CHANGES, 20, 0, 10).await, Vec::<i64>::new());
        let silver = ["silver".to_owned()];
        assert_eq!(changers(&silver, CHANGES, 0, 0, 10).await, [ids[0], ids[2]]);
        assert_eq!(changers(&silver, CHANGES, 0, 0, 1).await, [ids[0]]);
        assert_eq!(changers(&[], CHANGES, 0, 0, 10).await, Vec::<i64>::new());
    }
);
