//! The benchmarks' baseline of plain inserts.

use super::*;

both_backends!(
    baseline_inserts_commit_each_batch_and_clean_up,
    |url: String| async move {
        let store = store(&url).await;
        let member = add_member(&store, "m").await;
        let before = store.generation();
        // 10 rows in batches of 3: four transactions, from two writers.
        store.baseline_inserts(10, 3, 2, "{}").await.unwrap();
        assert_eq!(store.generation(), before + 4);
        // The scratch table was dropped: a second run starts afresh (a leftover row would
        // collide on its primary key).
        store.baseline_inserts(5, 5, 0, "{}").await.unwrap();
        assert_eq!(
            store.generation(),
            before + 5,
            "no writer asked still makes one"
        );
        store.baseline_inserts(0, 3, 2, "{}").await.unwrap();
        assert_eq!(store.generation(), before + 5, "no rows, no transaction");
        assert_eq!(
            store.member_get("m").await.unwrap(),
            Some(member),
            "nothing else touched"
        );
        assert_eq!(store.count(Table::Members).await.unwrap(), 1);
    }
);

both_backends!(
    baseline_inserts_with_batches_of_zero,
    |url: String| async move {
        let store = store(&url).await;
        // A batch of 0 rows is an error, not a division by zero.
        let outcome = store.baseline_inserts(10, 0, 1, "{}").await;
        assert!(outcome.is_err(), "{outcome:?}");
        // The store is still usable, and the next run starts afresh.
        store.baseline_inserts(3, 1, 1, "{}").await.unwrap();
    }
);
