//! Conversion offers: exposures and acceptances per member and offer, and the reads of a
//! member's recent orders that offers target by.

use crate::{Result, Store, Tx};
use sqlx::Row;

/// What an offer did: members shown it, times shown, members who took it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OfferCounts {
    pub exposed_members: i64,
    pub exposures: i64,
    pub accepted_members: i64,
}

/// A member's acceptance of an offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferAcceptanceRow {
    pub member_id: i64,
    pub offer_id: String,
    pub at_us: i64,
    pub subscription_id: Option<i64>,
    pub coupon_no: Option<i64>,
}

impl Store {
    /// A member's paid orders since `since_us` (exclusive): when paid, and what was paid
    /// net of refunds.
    pub async fn member_orders_since(
        &self,
        member_id: i64,
        since_us: i64,
    ) -> Result<Vec<(i64, i64)>> {
        let rows = sqlx::query(
            "SELECT paid_at_us, total_minor - refunded_total_minor AS net FROM orders \
             WHERE member_id = $1 AND paid_at_us > $2 AND state = 'paid' ORDER BY paid_at_us",
        )
        .bind(member_id)
        .bind(since_us)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("paid_at_us")?, r.try_get("net")?)))
            .collect()
    }

    /// When the member's last paid order was paid.
    pub async fn member_last_order_at(&self, member_id: i64) -> Result<Option<i64>> {
        let row = sqlx::query(
            "SELECT MAX(paid_at_us) AS at FROM orders WHERE member_id = $1 AND state = 'paid'",
        )
        .bind(member_id)
        .fetch_one(&self.read)
        .await?;
        Ok(row.try_get::<Option<i64>, _>("at")?)
    }

    /// The offers a member took.
    pub async fn offer_acceptances_of(&self, member_id: i64) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT offer_id FROM offer_acceptances WHERE member_id = $1 ORDER BY offer_id",
        )
        .bind(member_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(|r| Ok(r.try_get("offer_id")?)).collect()
    }

    pub async fn offer_counts(&self, offer_id: &str) -> Result<OfferCounts> {
        let exposed = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT) AS members, CAST(COALESCE(SUM(exposures), 0) AS BIGINT) AS n \
             FROM offer_exposures WHERE offer_id = $1",
        )
        .bind(offer_id)
        .fetch_one(&self.read)
        .await?;
        let accepted = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT) AS members FROM offer_acceptances WHERE offer_id = $1",
        )
        .bind(offer_id)
        .fetch_one(&self.read)
        .await?;
        Ok(OfferCounts {
            exposed_members: exposed.try_get("members")?,
            exposures: exposed.try_get("n")?,
            accepted_members: accepted.try_get("members")?,
        })
    }
}

impl Tx {
    /// Records that a member was shown an offer `count` times between `first_us` and
    /// `last_us`: the first time with its source, then counted.
    pub async fn offer_exposure_record(
        &mut self,
        member_id: i64,
        offer_id: &str,
        source: &str,
        (first_us, last_us): (i64, i64),
        count: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO offer_exposures (member_id, offer_id, first_at_us, last_at_us, exposures, source) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (member_id, offer_id) DO UPDATE SET \
             last_at_us = excluded.last_at_us, exposures = offer_exposures.exposures + excluded.exposures",
        )
        .bind(member_id)
        .bind(offer_id)
        .bind(first_us)
        .bind(last_us)
        .bind(count)
        .bind(source)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Counts a member as shown an offer if they were not yet (an acceptance without an
    /// exposure through Tessera).
    pub async fn offer_exposure_ensure(
        &mut self,
        member_id: i64,
        offer_id: &str,
        source: &str,
        at_us: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO offer_exposures (member_id, offer_id, first_at_us, last_at_us, exposures, source) \
             VALUES ($1, $2, $3, $3, 1, $4) ON CONFLICT (member_id, offer_id) DO NOTHING",
        )
        .bind(member_id)
        .bind(offer_id)
        .bind(at_us)
        .bind(source)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Records a member's acceptance of an offer; `false` when they had accepted it before.
    pub async fn offer_acceptance_insert(&mut self, a: &OfferAcceptanceRow) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO offer_acceptances (member_id, offer_id, at_us, subscription_id, coupon_no) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (member_id, offer_id) DO NOTHING",
        )
        .bind(a.member_id)
        .bind(&a.offer_id)
        .bind(a.at_us)
        .bind(a.subscription_id)
        .bind(a.coupon_no)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn offer_acceptance_get(
        &mut self,
        member_id: i64,
        offer_id: &str,
    ) -> Result<Option<OfferAcceptanceRow>> {
        let row = sqlx::query(
            "SELECT member_id, offer_id, at_us, subscription_id, coupon_no FROM offer_acceptances \
             WHERE member_id = $1 AND offer_id = $2",
        )
        .bind(member_id)
        .bind(offer_id)
        .fetch_optional(&mut *self.tx)
        .await?;
        row.map(|r| {
            Ok(OfferAcceptanceRow {
                member_id: r.try_get("member_id")?,
                offer_id: r.try_get("offer_id")?,
                at_us: r.try_get("at_us")?,
                subscription_id: r.try_get("subscription_id")?,
                coupon_no: r.try_get("coupon_no")?,
            })
        })
        .transpose()
    }
}
