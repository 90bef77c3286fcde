//! The tables of score and tiers: measure entries, members' tier states, tier history.

use crate::points::{list, placeholders, Placeholders, IN_LIST_MAX};
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
/// One member's measure over a window: whole days from `measure_days` (`$3..=$4`), and the
/// entries of the partial days at either end (`[$5, $6)` and `[$7, $8)`).
const MEASURE_SUM: &str = "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) AS n FROM ( \
    SELECT total AS n FROM measure_days WHERE member_id = $1 AND measure = $2 AND day >= $3 AND day <= $4 \
    UNION ALL SELECT amount AS n FROM measure_entries \
    WHERE member_id = $1 AND measure = $2 AND at_us >= $5 AND at_us < $6 \
    UNION ALL SELECT amount AS n FROM measure_entries \
    WHERE member_id = $1 AND measure = $2 AND at_us >= $7 AND at_us < $8) s";

/// A day of `measure_days`: a UTC day, as microseconds since the epoch.
const DAY_US: i64 = 86_400_000_000;

/// How a sum over `[from_us, to_us)` is read: the whole days `first_day..=last_day` from
/// their totals, and the entries of `head` and `tail`, the partial days at either end. A
/// window of months so reads about one row per day, whatever its entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DaySplit {
    first_day: i64,
    last_day: i64,
    head: (i64, i64),
    tail: (i64, i64),
}

impl DaySplit {
    fn of(from_us: i64, to_us: i64) -> DaySplit {
        let first_day = from_us.div_euclid(DAY_US) + i64::from(from_us.rem_euclid(DAY_US) != 0);
        let last_day = to_us.div_euclid(DAY_US) - 1;
        if first_day > last_day {
            // No whole day inside: every entry is read.
            return DaySplit {
                first_day,
                last_day,
                head: (from_us, to_us),
                tail: (to_us, to_us),
            };
        }
        DaySplit {
            first_day,
            last_day,
            head: (from_us, first_day * DAY_US),
            tail: ((last_day + 1) * DAY_US, to_us),
        }
    }

    /// `[from_us, to_us]`, both ends included.
    fn inclusive(from_us: i64, to_us: i64) -> DaySplit {
        DaySplit::of(from_us, to_us.saturating_add(1))
    }
}

fn measure_sum_query<'q>(
    member_id: i64,
    measure: &'q str,
    split: &DaySplit,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    sqlx::query(MEASURE_SUM)
        .bind(member_id)
        .bind(measure)
        .bind(split.first_day)
        .bind(split.last_day)
        .bind(split.head.0)
        .bind(split.head.1)
        .bind(split.tail.0)
        .bind(split.tail.1)
}

/// The day of an instant, as `measure_days` keys it.
fn day_of(at_us: i64) -> i64 {
    at_us.div_euclid(DAY_US)
}

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

    /// The entries of these measures of these members in `[lo_us, hi_us)` or from
    /// `from_us` on: (member, measure, at, amount).
    pub async fn measures_raw_many(
        &mut self,
        member_ids: &[i64],
        measures: &[&str],
        lo_us: i64,
        hi_us: i64,
        from_us: i64,
    ) -> Result<Vec<(i64, String, i64, i64)>> {
        let mut out = Vec::new();
        for chunk in member_ids.chunks(IN_LIST_MAX) {
            // Two index ranges rather than an OR, which a planner may read as a scan; the
            // measures named so that the index's third column bounds each range.
            let mut p = Placeholders::new(self.anonymous);
            let sql = format!(
                "SELECT member_id, measure, at_us, amount FROM measure_entries \
                 WHERE member_id IN ({}) AND measure IN ({}) AND at_us >= {} AND at_us < {} \
                 UNION ALL SELECT member_id, measure, at_us, amount FROM measure_entries \
                 WHERE member_id IN ({}) AND measure IN ({}) AND at_us >= {}",
                p.list(chunk.len()),
                p.list(measures.len()),
                p.one(),
                p.one(),
                p.list(chunk.len()),
                p.list(measures.len()),
                p.one(),
            );
            let mut q = sqlx::query(&sql);
            for range in [vec![lo_us, hi_us.min(from_us)], vec![from_us]] {
                for m in chunk {
                    q = q.bind(*m);
                }
                for name in measures {
                    q = q.bind(*name);
                }
                for at in range {
                    q = q.bind(at);
                }
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

    /// Each member's sum of each of these measures over `[from_us, to_us)`: (member,
    /// measure, sum). Whole days are read from their totals (see `DaySplit`).
    pub async fn measures_sum_many(
        &mut self,
        member_ids: &[i64],
        measures: &[&str],
        from_us: i64,
        to_us: i64,
    ) -> Result<Vec<(i64, String, i64)>> {
        let split = DaySplit::of(from_us, to_us);
        let mut out = Vec::new();
        for chunk in member_ids.chunks(IN_LIST_MAX) {
            let mut p = Placeholders::new(self.anonymous);
            // Days `[first, last]`, then entries `[lo, hi)` twice.
            let mut part = |table: &str, n: &str, at: &str, below: &str| {
                format!(
                    "SELECT member_id, measure, {n} AS n FROM {table} \
                     WHERE member_id IN ({}) AND measure IN ({}) AND {at} >= {} AND {at} {below} {}",
                    p.list(chunk.len()),
                    p.list(measures.len()),
                    p.one(),
                    p.one(),
                )
            };
            let sql = format!(
                "SELECT member_id, measure, CAST(SUM(n) AS BIGINT) AS total FROM ({} UNION ALL {} UNION ALL {}) s \
                 GROUP BY member_id, measure",
                part("measure_days", "total", "day", "<="),
                part("measure_entries", "amount", "at_us", "<"),
                part("measure_entries", "amount", "at_us", "<"),
            );
            let mut q = sqlx::query(&sql);
            for (lo, hi) in [(split.first_day, split.last_day), split.head, split.tail] {
                for m in chunk {
                    q = q.bind(*m);
                }
                for name in measures {
                    q = q.bind(*name);
                }
                q = q.bind(lo).bind(hi);
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

    /// Each member's gains (the positive entries) of one measure over `[from_us, to_us)`:
    /// (member, sum), for members with entries there. The score caps read a day or a
    /// month of them.
    pub async fn measure_gains_many(
        &mut self,
        member_ids: &[i64],
        measure: &str,
        from_us: i64,
        to_us: i64,
    ) -> Result<Vec<(i64, i64)>> {
        let mut out = Vec::new();
        for chunk in member_ids.chunks(IN_LIST_MAX) {
            let mut p = Placeholders::new(self.anonymous);
            let sql = format!(
                "SELECT member_id, CAST(SUM(amount) AS BIGINT) AS total FROM measure_entries \
                 WHERE member_id IN ({}) AND measure = {} AND at_us >= {} AND at_us < {} AND amount > 0 \
                 GROUP BY member_id",
                p.list(chunk.len()),
                p.one(),
                p.one(),
                p.one(),
            );
            let mut q = sqlx::query(&sql);
            for m in chunk {
                q = q.bind(*m);
            }
            q = q.bind(measure).bind(from_us).bind(to_us);
            for r in q.fetch_all(&mut *self.tx).await? {
                out.push((r.try_get("member_id")?, r.try_get("total")?));
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
        let split = DaySplit::inclusive(from_us, to_us);
        let row = measure_sum_query(member_id, measure, &split)
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
        let mut days: std::collections::BTreeMap<(i64, &str, i64), i64> = Default::default();
        for m in rows {
            let total = days
                .entry((m.member_id, m.measure.as_str(), day_of(m.at_us)))
                .or_default();
            *total = total.checked_add(m.amount).ok_or_else(|| {
                crate::StoreError::Database("a day's measure total overflows".into())
            })?;
        }
        let days: Vec<_> = days.into_iter().collect();
        for chunk in days.chunks(CHUNK) {
            let sql = format!(
                "INSERT INTO measure_days (member_id, measure, day, total) VALUES {} \
                 ON CONFLICT (member_id, measure, day) DO UPDATE SET total = measure_days.total + excluded.total",
                placeholders(chunk.len(), 4, self.anonymous)
            );
            let mut q = sqlx::query(&sql);
            for ((member_id, measure, day), total) in chunk {
                q = q.bind(*member_id).bind(*measure).bind(*day).bind(*total);
            }
            q.execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    /// A member's history lines of these kinds after `after_us`, and the last one at or
    /// before it, in time order (what a periodic grant needs to know who held a tier
    /// when), inside a write.
    pub async fn tier_changes_since(
        &mut self,
        member_id: i64,
        kinds: &[&str],
        after_us: i64,
    ) -> Result<Vec<HistoryRow>> {
        let mut p = Placeholders::new(self.anonymous);
        let sql = format!(
            "SELECT * FROM ({HISTORY_SELECT} WHERE member_id = {} AND kind IN ({}) AND at_us > {}) a \
             UNION ALL SELECT * FROM ({HISTORY_SELECT} WHERE member_id = {} AND kind IN ({}) AND at_us <= {} \
               ORDER BY at_us DESC, history_no DESC LIMIT 1) b \
             ORDER BY at_us, history_no",
            p.one(),
            p.list(kinds.len()),
            p.one(),
            p.one(),
            p.list(kinds.len()),
            p.one(),
        );
        let mut q = sqlx::query(&sql);
        for _ in 0..2 {
            q = q.bind(member_id);
            for k in kinds {
                q = q.bind(*k);
            }
            q = q.bind(after_us);
        }
        let rows = q.fetch_all(&mut *self.tx).await?;
        rows.iter().map(HistoryRow::from_row).collect()
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

    /// Members above `after_member` with a history line of these kinds after `after_us`
    /// that leaves or reaches one of `tiers`, and no grant of `benefit` for `period`, in
    /// member order, at most `limit`: who may have held a tier benefit in a window though
    /// their tier is another now.
    #[allow(clippy::too_many_arguments)]
    pub async fn tier_changers(
        &self,
        benefit: &str,
        period: &str,
        tiers: &[String],
        kinds: &[&str],
        after_us: i64,
        after_member: i64,
        limit: u32,
    ) -> Result<Vec<i64>> {
        if tiers.is_empty() || kinds.is_empty() {
            return Ok(Vec::new());
        }
        // Numbered placeholders: a read statement of few parameters.
        let mut p = Placeholders::new(false);
        let sql = format!(
            "SELECT DISTINCT h.member_id FROM tier_history h \
             WHERE h.at_us > {} AND h.member_id > {} AND h.kind IN ({}) \
             AND (h.from_tier IN ({}) OR h.to_tier IN ({})) \
             AND NOT EXISTS (SELECT 1 FROM coupon_grants g WHERE g.member_id = h.member_id \
               AND g.benefit = {} AND g.period = {}) \
             ORDER BY h.member_id LIMIT {}",
            p.one(),
            p.one(),
            p.list(kinds.len()),
            p.list(tiers.len()),
            p.list(tiers.len()),
            p.one(),
            p.one(),
            p.one(),
        );
        let mut q = sqlx::query(&sql).bind(after_us).bind(after_member);
        for k in kinds {
            q = q.bind(*k);
        }
        for _ in 0..2 {
            for t in tiers {
                q = q.bind(t.as_str());
            }
        }
        q = q.bind(benefit).bind(period).bind(i64::from(limit));
        q.fetch_all(&self.read)
            .await?
            .iter()
            .map(|r| Ok(r.try_get::<i64, _>("member_id")?))
            .collect()
    }

    /// A member's tier history numbered below `before_no`, newest first, at most `limit`.
    pub async fn tier_history(
        &self,
        member_id: i64,
        before_no: i64,
        limit: u32,
    ) -> Result<Vec<HistoryRow>> {
        let rows = sqlx::query(&format!(
            "{HISTORY_SELECT} WHERE member_id = $1 AND history_no < $2 ORDER BY history_no DESC LIMIT $3"
        ))
        .bind(member_id)
        .bind(before_no)
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
        let split = DaySplit::inclusive(from_us, to_us);
        let row = measure_sum_query(member_id, measure, &split)
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
