//! The first answers to requests that carry a client id, and the owner of each order id.

use crate::points::IN_LIST_MAX;
use crate::{Result, Tx};
use sqlx::Row;

/// A stored first answer: the fingerprint of the request that made it, and the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAnswerRow {
    pub request_sha256: String,
    pub answer: String,
}

impl Tx {
    /// The first answer to the request with this client id, if there was one.
    pub async fn client_answer_get(
        &mut self,
        member_id: i64,
        kind: &str,
        client_id: &str,
    ) -> Result<Option<ClientAnswerRow>> {
        let row = sqlx::query(
            "SELECT request_sha256, answer FROM client_answers \
             WHERE member_id = $1 AND kind = $2 AND client_id = $3",
        )
        .bind(member_id)
        .bind(kind)
        .bind(client_id)
        .fetch_optional(&mut *self.tx)
        .await?;
        row.map(|r| {
            Ok(ClientAnswerRow {
                request_sha256: r.try_get("request_sha256")?,
                answer: r.try_get("answer")?,
            })
        })
        .transpose()
    }

    /// Keeps the first answer; a second answer for the same id is a conflict.
    pub async fn client_answer_put(
        &mut self,
        member_id: i64,
        kind: &str,
        client_id: &str,
        row: &ClientAnswerRow,
        at_us: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO client_answers (member_id, kind, client_id, request_sha256, answer, created_at_us) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(member_id)
        .bind(kind)
        .bind(client_id)
        .bind(&row.request_sha256)
        .bind(&row.answer)
        .bind(at_us)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// The members owning these order ids, for the ids that have one.
    pub async fn order_owners_get(&mut self, order_ids: &[&str]) -> Result<Vec<(String, i64)>> {
        let mut out = Vec::new();
        for chunk in order_ids.chunks(IN_LIST_MAX) {
            let list = (1..=chunk.len())
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ");
            let sql =
                format!("SELECT order_id, member_id FROM order_owners WHERE order_id IN ({list})");
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(*id);
            }
            for r in q.fetch_all(&mut *self.tx).await? {
                out.push((r.try_get("order_id")?, r.try_get("member_id")?));
            }
        }
        Ok(out)
    }

    /// Records owners of new order ids; returns how many were recorded (an id taken by a
    /// concurrent transaction meanwhile is skipped, and the caller compares the count).
    pub async fn order_owners_insert(&mut self, owners: &[(&str, i64)]) -> Result<u64> {
        let mut inserted = 0;
        for chunk in owners.chunks(IN_LIST_MAX) {
            let values = (0..chunk.len())
                .map(|r| format!("(${}, ${})", 2 * r + 1, 2 * r + 2))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "INSERT INTO order_owners (order_id, member_id) VALUES {values} \
                 ON CONFLICT (order_id) DO NOTHING"
            );
            let mut q = sqlx::query(&sql);
            for (order_id, member_id) in chunk {
                q = q.bind(*order_id).bind(*member_id);
            }
            inserted += q.execute(&mut *self.tx).await?.rows_affected();
        }
        Ok(inserted)
    }
}
