//! A member's account closed and their personal data erased: the few writes these need
//! beyond the ones other use cases share.

use crate::{EventRow, Result, Tx};
use sqlx::Row;
use tessera_domain::coupons::CouponState;

impl Tx {
    /// Marks `state_to` every coupon of the member in `state_from` whose validity runs
    /// past `now_us` (a closed account's coupons); answers how many.
    pub async fn coupons_set_state(
        &mut self,
        member_id: i64,
        state_from: CouponState,
        state_to: CouponState,
        now_us: i64,
    ) -> Result<u64> {
        Ok(sqlx::query(
            "UPDATE coupons SET state = $3 \
             WHERE member_id = $1 AND state = $2 AND valid_until_us > $4",
        )
        .bind(member_id)
        .bind(state_from.as_str())
        .bind(state_to.as_str())
        .bind(now_us)
        .execute(&mut *self.tx)
        .await?
        .rows_affected())
    }

    /// Replaces the member's external id by `pseudonym` and empties their attributes and
    /// referral code; drops the first answers kept for their retries (which may quote
    /// them). The ledger, keyed by the internal id, is untouched.
    pub async fn member_erase(
        &mut self,
        member_id: i64,
        pseudonym: &str,
        now_us: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE members SET external_id = $2, attributes = '{}', referred_by_code = NULL, referral_code = NULL, \
             updated_at_us = $3, erased_at_us = $3 WHERE id = $1",
        )
        .bind(member_id)
        .bind(pseudonym)
        .bind(now_us)
        .execute(&mut *self.tx)
        .await?;
        sqlx::query("DELETE FROM client_answers WHERE member_id = $1")
            .bind(member_id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Drops the answers kept under `Idempotency-Key` headers whose stored answer holds
    /// `quoted` (a JSON string, quotes included, such as `"alice@example.com"`) or whose
    /// route names `/members/{segment}`; answers how many. A scan of every kept answer: it
    /// serves an erasure, not a hot path.
    pub async fn idempotency_forget(&mut self, quoted: &str, segment: &str) -> Result<u64> {
        // A case-sensitive substring search (SQLite's LIKE ignores ASCII case).
        let find = if self.anonymous { "instr" } else { "strpos" };
        Ok(sqlx::query(&format!(
            "DELETE FROM idempotency_keys WHERE {find}(response, $1) > 0 \
             OR {find}(route, $2) > 0 OR substr(route, length(route) - length($3) + 1) = $3"
        ))
        .bind(quoted)
        .bind(format!("/members/{segment}/"))
        .bind(format!("/members/{segment}"))
        .execute(&mut *self.tx)
        .await?
        .rows_affected())
    }

    /// The summaries of the member's committed orders: (order id, summary).
    pub async fn commit_summaries_of(&mut self, member_id: i64) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT order_id, summary FROM order_commits WHERE member_id = $1 ORDER BY order_id",
        )
        .bind(member_id)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("order_id")?, r.try_get("summary")?)))
            .collect()
    }

    /// Rewrites a committed order's summary (its request fingerprint stays).
    pub async fn commit_summary_set(
        &mut self,
        member_id: i64,
        order_id: &str,
        summary: &str,
    ) -> Result<()> {
        sqlx::query("UPDATE order_commits SET summary = $3 WHERE member_id = $1 AND order_id = $2")
            .bind(member_id)
            .bind(order_id)
            .bind(summary)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// A page of the member's events after `after_seq`, inside the transaction.
    pub async fn events_of_member(
        &mut self,
        member_id: i64,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<EventRow>> {
        let rows = sqlx::query(&crate::events_of_member_sql())
            .bind(member_id)
            .bind(after_seq)
            .bind(i64::from(limit))
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(EventRow::from_row).collect()
    }

    /// Rewrites an event's stored body (its fingerprint stays: a retry of the original
    /// event is still recognised as the same event).
    pub async fn event_body_set(&mut self, seq: i64, body: &str) -> Result<()> {
        sqlx::query("UPDATE events SET body = $2 WHERE seq = $1")
            .bind(seq)
            .bind(body)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }
}
