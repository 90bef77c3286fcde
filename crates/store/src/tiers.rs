//! The tables of score and tiers: measure entries, members' tier states, tier history.

use crate::points::{list, placeholders, IN_LIST_MAX};
use crate::{Result, Store, Tx};
use sqlx::any::AnyRow;
use sqlx::Row;

/// A member's tier state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TierRow {
    pub member_id: i64,
    /// The tier's name; `None` is the first tier.
    pub tier: Option<String>,
    pub since_us: Option<i64>,
    pub retained_until_us: Option<i64>,
    pub floor_tier: Option<String>,
    pub floor_until_us: Option<i64>,
    pub next_evaluation_us: Option<i64>,
    pub next_warning_us: Option<i64>,
    pub last_evaluated_us: Option<i64>,
    pub next_history_no: i64,
}

impl TierRow {
    fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(Self {
            member_id: r.try_get("member_id")?,
            tier: r.try_get("tier")?,
            since_us: r.try_get("since_us")?,
            retained_until_us: r.try_get("retained_until_us")?,
            floor_tier: r.try_get("floor_tier")?,
            floor_until_us: r.try_get("floor_until_us")?,
            next_evaluation_us: r.try_get("next_evaluation_us")?,
            next_warning_us: r.try_get("next_warning_us")?,
            last_evaluated_us: r.try_get("last_evaluated_us")?,
            next_history_no: r.try_get("next_history_no")?,
        })
    }
}

/// One change of a measure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeasureRow {
    pub member_id: i64,
    /// `score`, `spend` or `points`.
    pub measure: String,
    pub at_us: i64,
    pub amount: i64,
    /// The event that changed the measure (one entry per event and measure).
    pub event_id: String,
    pub order_id: Option<String>,
}

/// One line of a member's tier history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    pub member_id: i64,
    pub history_no: i64,
    pub at_us: i64,
    /// `upgrade`, `downgrade`, `requalify` or `warning`.
    pub kind: String,
    pub from_tier: Option<String>,
    pub to_tier: Option<String>,
    pub measure_value: i64,
    pub needed: Option<i64>,
    pub evaluation_at_us: Option<i64>,
}

impl HistoryRow {
    fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(Self {
            member_id: r.try_get("member_id")?,
            history_no: r.try_get("history_no")?,
            at_us: r.try_get("at_us")?,
            kind: r.try_get("kind")?,
            from_tier: r.try_get("from_tier")?,
            to_tier: r.try_get("to_tier")?,
            measure_value: r.try_get("measure_value")?,
            needed: r.try_get("needed")?,
            evaluation_at_us: r.try_get("evaluation_at_us")?,
        })
    }
}

const TIER_SELECT: &str =
    "SELECT member_id, tier, since_us, retained_until_us, floor_tier, floor_until_us, \
    next_evaluation_us, next_warning_us, last_evaluated_us, next_history_no FROM member_tiers";
const HISTORY_SELECT: &str = "SELECT member_id, history_no, at_us, kind, from_tier, to_tier, \
    measure_value, needed, evaluation_at_us FROM tier_history";
const CHUNK: usize = 50;
/// A member's measure summed over `[$3, $4]`.
const MEASURE_SUM: &str =
    "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) AS n FROM measure_entries \
    WHERE member_id = $1 AND measure = $2 AND at_us >= $3 AND at_us <= $4";

impl Tx {
    pub async fn tiers_get_many(&mut self, member_ids: &[i64]) -> Result<Vec<TierRow>> {
        let mut out = Vec::with_capacity(member_ids.len());
        for chunk in member_ids.chunks(IN_LIST_MAX) {
            let sql = format!(
                "{TIER_SELECT} WHERE member_id IN ({})",
                list(1, chunk.len(), self.anonymous)
            );
            let mut q = sqlx::query(&sql);
            for m in chunk {
                q = q.bind(*m);
            }
            for r in q.fetch_all(&mut *self.tx).await? {
                out.push(TierRow::from_row(&r)?);
            }
        }
        Ok(out)
    }

    pub async fn tiers_put_many(&mut self, rows: &[&TierRow]) -> Result<()> {
        for chunk in rows.chunks(CHUNK) {
            let sql = format!(
                "INSERT INTO member_tiers (member_id, tier, since_us, retained_until_us, next_evaluation_us, \
                 next_warning_us, last_evaluated_us, next_history_no, floor_tier, floor_until_us) VALUES {} \
                 ON CONFLICT (member_id) DO UPDATE SET tier = excluded.tier, since_us = excluded.since_us, \
                 floor_tier = excluded.floor_tier, floor_until_us = excluded.floor_until_us, \
                 retained_until_us = excluded.retained_until_us, next_evaluation_us = excluded.next_evaluation_us, \
                 next_warning_us = excluded.next_warning_us, last_evaluated_us = excluded.last_evaluated_us, \
                 next_history_no = excluded.next_history_no",
                placeholders(chunk.len(), 10, self.anonymous)
            );
            let mut q = sqlx::query(&sql);
            for t in chunk {
                q = q
                    .bind(t.member_id)
                    .bind(&t.tier)
                    .bind(t.since_us)
                    .bind(t.retained_until_us)
                    .bind(t.next_evaluation_us)
                    .bind(t.next_warning_us)
                    .bind(t.last_evaluated_us)
                    .bind(t.next_history_no)
                    .bind(&t.floor_tier)
                    .bind(t.floor_until_us);
            }
            q.execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    /// The measure entries of these members in `[lo_us, hi_us)` or from `from_us` on:
    /// (member, measure, at, amount).
    pub async fn measures_raw_many(
        &mut self,
        member_ids: &[i64],
        lo_us: i64,
        hi_us: i64,
        from_us: i64,
    ) -> Result<Vec<(i64, String, i64, i64)>> {
        let mut out = Vec::new();
        for chunk in member_ids.chunks(IN_LIST_MAX) {
            let sql = format!(
                // Two index ranges rather than an OR, which a planner may read as a scan.
                "SELECT member_id, measure, at_us, amount FROM measure_entries \
                 WHERE at_us >= {} AND at_us < {} AND member_id IN ({}) \
                 UNION ALL SELECT member_id, measure, at_us, amount FROM measure_entries \
                 WHERE at_us >= {} AND member_id IN ({})",
                self.param(1),
                self.param(2),
                list(3, chunk.len(), self.anonymous),
                self.param(chunk.len() + 3),
                list(chunk.len() + 4, chunk.len(), self.anonymous)
            );
            let mut q = sqlx::query(&sql).bind(lo_us).bind(hi_us.min(from_us));
            for m in chunk {
                q = q.bind(*m);
            }
            q = q.bind(from_us);
            for m in chunk {
                q = q.bind(*m);
            }
            for r in q.fetch_all(&mut *self.tx).await? {
                out.push((
                    r.try_get("member_id")?,
                    r.try_get("measure")?,
                    r.try_get("at_us")?,
                    r.try_get("amount")?,
                ));
            }
        }
        Ok(out)
    }

    /// Each member's measures summed over `[from_us, to_us)`, only the positive entries
    /// when `gains_only`: (member, measure, sum).
    pub async fn measures_sum_many(
        &mut self,
        member_ids: &[i64],
        from_us: i64,
        to_us: i64,
        gains_only: bool,
    ) -> Result<Vec<(i64, String, i64)>> {
        let mut out = Vec::new();
        for chunk in member_ids.chunks(IN_LIST_MAX) {
            let sql = format!(
                "SELECT member_id, measure, CAST(SUM(amount) AS BIGINT) AS total FROM measure_entries \
                 WHERE at_us >= {} AND at_us < {}{} AND member_id IN ({}) GROUP BY member_id, measure",
                self.param(1),
                self.param(2),
                if gains_only { " AND amount > 0" } else { "" },
                list(3, chunk.len(), self.anonymous)
            );
            let mut q = sqlx::query(&sql).bind(from_us).bind(to_us);
            for m in chunk {
                q = q.bind(*m);
            }
            for r in q.fetch_all(&mut *self.tx).await? {
                out.push((
                    r.try_get("member_id")?,
                    r.try_get("measure")?,
                    r.try_get("total")?,
                ));
            }
        }
        Ok(out)
    }

    /// A member's measure summed over `[from_us, to_us]`.
    pub async fn measure_sum(
        &mut self,
        member_id: i64,
        measure: &str,
        from_us: i64,
        to_us: i64,
    ) -> Result<i64> {
        let row = sqlx::query(MEASURE_SUM)
            .bind(member_id)
            .bind(measure)
            .bind(from_us)
            .bind(to_us)
            .fetch_one(&mut *self.tx)
            .await?;
        Ok(row.try_get::<i64, _>("n")?)
    }

    pub async fn measures_insert(&mut self, rows: &[MeasureRow]) -> Result<()> {
        for chunk in rows.chunks(CHUNK) {
            let sql = format!(
                "INSERT INTO measure_entries (member_id, measure, at_us, amount, event_id, order_id) VALUES {}",
                placeholders(chunk.len(), 6, self.anonymous)
            );
            let mut q = sqlx::query(&sql);
            for m in chunk {
                q = q
                    .bind(m.member_id)
                    .bind(&m.measure)
                    .bind(m.at_us)
                    .bind(m.amount)
                    .bind(&m.event_id)
                    .bind(&m.order_id);
            }
            q.execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    pub async fn history_insert(&mut self, rows: &[HistoryRow]) -> Result<()> {
        for chunk in rows.chunks(CHUNK) {
            let sql = format!(
                "INSERT INTO tier_history (member_id, history_no, at_us, kind, from_tier, to_tier, measure_value, \
                 needed, evaluation_at_us) VALUES {}",
                placeholders(chunk.len(), 9, self.anonymous)
            );
            let mut q = sqlx::query(&sql);
            for h in chunk {
                q = q
                    .bind(h.member_id)
                    .bind(h.history_no)
                    .bind(h.at_us)
                    .bind(&h.kind)
                    .bind(&h.from_tier)
                    .bind(&h.to_tier)
                    .bind(h.measure_value)
                    .bind(h.needed)
                    .bind(h.evaluation_at_us);
            }
            q.execute(&mut *self.tx).await?;
        }
        Ok(())
    }
}

impl Store {
    pub async fn tier_get(&self, member_id: i64) -> Result<Option<TierRow>> {
        let row = sqlx::query(&format!("{TIER_SELECT} WHERE member_id = $1"))
            .bind(member_id)
            .fetch_optional(&self.read)
            .await?;
        row.map(|r| TierRow::from_row(&r)).transpose()
    }

    /// A member's tier history, newest first.
    pub async fn tier_history(&self, member_id: i64, limit: u32) -> Result<Vec<HistoryRow>> {
        let rows = sqlx::query(&format!(
            "{HISTORY_SELECT} WHERE member_id = $1 ORDER BY history_no DESC LIMIT $2"
        ))
        .bind(member_id)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(HistoryRow::from_row).collect()
    }

    /// A member's measure summed over `[from_us, to_us]`.
    pub async fn measure_sum_read(
        &self,
        member_id: i64,
        measure: &str,
        from_us: i64,
        to_us: i64,
    ) -> Result<i64> {
        let row = sqlx::query(MEASURE_SUM)
            .bind(member_id)
            .bind(measure)
            .bind(from_us)
            .bind(to_us)
            .fetch_one(&self.read)
            .await?;
        Ok(row.try_get::<i64, _>("n")?)
    }

    /// Members with an evaluation at or before `to_us`.
    pub async fn due_evaluations(&self, to_us: i64, limit: u32) -> Result<Vec<i64>> {
        self.due_members(
            "SELECT member_id FROM member_tiers WHERE next_evaluation_us IS NOT NULL AND next_evaluation_us <= $1 \
             ORDER BY next_evaluation_us, member_id LIMIT $2",
            to_us,
            limit,
        )
        .await
    }

    /// Members with a warning due at or before `to_us`.
    pub async fn due_warnings(&self, to_us: i64, limit: u32) -> Result<Vec<i64>> {
        self.due_members(
            "SELECT member_id FROM member_tiers WHERE next_warning_us IS NOT NULL AND next_warning_us <= $1 \
             ORDER BY next_warning_us, member_id LIMIT $2",
            to_us,
            limit,
        )
        .await
    }

    async fn due_members(&self, sql: &str, to_us: i64, limit: u32) -> Result<Vec<i64>> {
        let rows = sqlx::query(sql)
            .bind(to_us)
            .bind(i64::from(limit))
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<i64, _>("member_id")?))
            .collect()
    }
}
