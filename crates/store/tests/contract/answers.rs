//! First answers to requests with a client id, and the owner of each order id.

use super::*;

both_backends!(
    a_client_id_keeps_its_first_answer,
    |url: String| async move {
        let store = store(&url).await;
        let a = add_member(&store, "a").await.id;
        let b = add_member(&store, "b").await.id;
        let answer = |sha: &str, body: &str| ClientAnswerRow {
            request_sha256: sha.into(),
            answer: body.into(),
        };
        let mut tx = store.begin().await.unwrap();
        assert_eq!(tx.client_answer_get(a, "refund", "c1").await.unwrap(), None);
        tx.client_answer_put(a, "refund", "c1", &answer("s1", r#"{"ok":1}"#), 5)
            .await
            .unwrap();
        // The same client id under another kind or member is another request.
        tx.client_answer_put(a, "topup", "c1", &answer("s2", "{}"), 5)
            .await
            .unwrap();
        tx.client_answer_put(b, "refund", "c1", &answer("s3", "{}"), 5)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let mut tx = store.begin().await.unwrap();
        assert_eq!(
            tx.client_answer_get(a, "refund", "c1").await.unwrap(),
            Some(answer("s1", r#"{"ok":1}"#))
        );
        assert_eq!(
            tx.client_answer_get(b, "refund", "c1").await.unwrap(),
            Some(answer("s3", "{}"))
        );
        let second = tx
            .client_answer_put(a, "refund", "c1", &answer("s9", "{}"), 6)
            .await;
        assert!(is_conflict(&second), "{second:?}");
    }
);

both_backends!(
    an_order_id_belongs_to_its_first_member,
    |url: String| async move {
        let store = store(&url).await;
        let a = add_member(&store, "a").await.id;
        let b = add_member(&store, "b").await.id;
        let mut tx = store.begin().await.unwrap();
        assert_eq!(
            tx.order_owners_insert(&[("o1", a), ("o2", b)])
                .await
                .unwrap(),
            2
        );
        assert_eq!(
            tx.order_owners_insert(&[("o1", b), ("o3", a)])
                .await
                .unwrap(),
            1,
            "o1 is a's"
        );
        assert_eq!(
            tx.order_owners_insert(&[("x", a), ("x", b)]).await.unwrap(),
            1,
            "the first row of a call wins"
        );
        assert_eq!(tx.order_owners_insert(&[]).await.unwrap(), 0);
        tx.commit().await.unwrap();
        let mut tx = store.begin().await.unwrap();
        let mut owners = tx
            .order_owners_get(&["o1", "o2", "o3", "o4", "x"])
            .await
            .unwrap();
        owners.sort();
        assert_eq!(
            owners,
            [
                ("o1".into(), a),
                ("o2".into(), b),
                ("o3".into(), a),
                ("x".into(), a)
            ]
        );
        assert_eq!(tx.order_owners_get(&[]).await.unwrap(), []);
        // More ids than one statement or IN list holds (100).
        let ids: Vec<String> = (0..150).map(|i| format!("m{i}")).collect();
        let pairs: Vec<(&str, i64)> = ids.iter().map(|id| (id.as_str(), b)).collect();
        assert_eq!(tx.order_owners_insert(&pairs).await.unwrap(), 150);
        let names: Vec<&str> = ids.iter().map(String::as_str).collect();
        assert_eq!(tx.order_owners_get(&names).await.unwrap().len(), 150);
    }
);
