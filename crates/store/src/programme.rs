//! What members hold by a programme's ids, counted for a programme change, and the move
//! of what they hold from one id to another when a version renames an item.

use crate::{Result, Tx};
use sqlx::Row;
use std::collections::BTreeMap;
use tessera_domain::programme::change::{Holders, Rename, Section};

impl Tx {
    /// Members holding each plan, tier and coupon template, and members with ledger
    /// entries. `live_statuses` are the subscription statuses that still run; a
    /// subscription in another status counts while its access lasts past `now_us`.
    pub async fn programme_holders(
        &mut self,
        live_statuses: &[&str],
        now_us: i64,
    ) -> Result<Holders> {
        let statuses = crate::points::list(2, live_statuses.len(), false);
        let sql = format!(
            "SELECT plan AS id, COUNT(DISTINCT member_id) AS n FROM subscriptions \
             WHERE status IN ({statuses}) OR (cut = 0 AND access_end_us > $1) GROUP BY plan"
        );
        let mut query = sqlx::query(&sql).bind(now_us);
        for status in live_statuses {
            query = query.bind(*status);
        }
        let plans = counts(query.fetch_all(&mut *self.tx).await?)?;
        let tiers = counts(
            sqlx::query(
                "SELECT id, COUNT(DISTINCT member_id) AS n FROM ( \
                   SELECT tier AS id, member_id FROM member_tiers WHERE tier IS NOT NULL \
                   UNION ALL \
                   SELECT floor_tier AS id, member_id FROM member_tiers WHERE floor_tier IS NOT NULL \
                 ) held GROUP BY id",
            )
            .fetch_all(&mut *self.tx)
            .await?,
        )?;
        let coupons = counts(
            sqlx::query(
                "SELECT template AS id, COUNT(DISTINCT member_id) AS n FROM coupons \
                 WHERE state = 'issued' AND valid_until_us > $1 GROUP BY template",
            )
            .bind(now_us)
            .fetch_all(&mut *self.tx)
            .await?,
        )?;
        let ledger_members: i64 =
            sqlx::query("SELECT COUNT(DISTINCT member_id) AS n FROM point_entries")
                .fetch_one(&mut *self.tx)
                .await?
                .try_get("n")?;
        Ok(Holders {
            plans,
            tiers,
            coupons,
            ledger_members,
        })
    }

    /// Moves what members hold from `rename.from` to `rename.to`: subscriptions and trials
    /// of a plan, current and past tiers, coupons of a template, a benefit's uses and
    /// grants. Answers how many rows moved.
    pub async fn rename_held(&mut self, rename: &Rename) -> Result<u64> {
        let statements: &[&str] = match rename.section {
            Section::Plans => &[
                "UPDATE subscriptions SET plan = $2 WHERE plan = $1",
                // A member who trialed both ids keeps one trial row (the trial is used).
                "UPDATE plan_trials SET plan = $2 WHERE plan = $1 AND NOT EXISTS \
                 (SELECT 1 FROM plan_trials t WHERE t.member_id = plan_trials.member_id AND t.plan = $2)",
                "DELETE FROM plan_trials WHERE plan = $1",
            ],
            Section::Tiers => &[
                "UPDATE member_tiers SET tier = $2 WHERE tier = $1",
                "UPDATE member_tiers SET floor_tier = $2 WHERE floor_tier = $1",
                "UPDATE tier_history SET from_tier = $2 WHERE from_tier = $1",
                "UPDATE tier_history SET to_tier = $2 WHERE to_tier = $1",
            ],
            Section::Coupons => &["UPDATE coupons SET template = $2 WHERE template = $1"],
            Section::Benefits => &[
                "UPDATE benefit_uses SET benefit = $2 WHERE benefit = $1",
                "UPDATE coupon_grants SET benefit = $2 WHERE benefit = $1",
            ],
            _ => &[],
        };
        let mut moved = 0;
        for sql in statements {
            moved += sqlx::query(sql)
                .bind(&rename.from)
                .bind(&rename.to)
                .execute(&mut *self.tx)
                .await?
                .rows_affected();
        }
        if rename.section == Section::Benefits {
            moved += sqlx::query("UPDATE coupons SET source = $2 WHERE source = $1")
                .bind(format!("grant:{}", rename.from))
                .bind(format!("grant:{}", rename.to))
                .execute(&mut *self.tx)
                .await?
                .rows_affected();
        }
        Ok(moved)
    }
}

impl Tx {
    /// A page of members' internal numbers after `after_id`, in order.
    pub async fn member_ids_after(&mut self, after_id: i64, limit: u32) -> Result<Vec<i64>> {
        let rows = sqlx::query("SELECT id FROM members WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(after_id)
            .bind(i64::from(limit))
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
    }
}

fn counts(rows: Vec<sqlx::any::AnyRow>) -> Result<BTreeMap<String, i64>> {
    rows.iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("n")?)))
        .collect()
}
