//! Referral: members' own codes, who brought whom, and the rewards of each referral.

use crate::{Result, Store, Tx};
use sqlx::any::AnyRow;
use sqlx::Row;

/// A member as a referral sees them: their code and who brought them.
#[derive(Debug, Clone, PartialEq)]
pub struct ReferralLinkRow {
    pub member_id: i64,
    pub external_id: String,
    pub status: String,
    pub attributes: String,
    pub created_at_us: i64,
    /// The member's own code; `None` until it is first given out.
    pub referral_code: Option<String>,
    pub referrer_id: Option<i64>,
    pub referred_at_us: Option<i64>,
}

const LINK_SELECT: &str = "SELECT id, external_id, status, attributes, created_at_us, \
    referral_code, referrer_id, referred_at_us FROM members";

impl ReferralLinkRow {
    fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(Self {
            member_id: r.try_get("id")?,
            external_id: r.try_get("external_id")?,
            status: r.try_get("status")?,
            attributes: r.try_get("attributes")?,
            created_at_us: r.try_get("created_at_us")?,
            referral_code: r.try_get("referral_code")?,
            referrer_id: r.try_get("referrer_id")?,
            referred_at_us: r.try_get("referred_at_us")?,
        })
    }
}

/// One reward of one referral, as stored: what it gives is kept on the row, so a later
/// programme version does not change a reward already promised.
#[derive(Debug, Clone, PartialEq)]
pub struct ReferralRewardRow {
    pub referee_id: i64,
    pub reward_id: String,
    pub referrer_id: i64,
    pub beneficiary_id: i64,
    /// `join`, `first_order` or `first_plan`.
    pub trigger: String,
    /// `points`, `coupon`, `stored_value` or `plan_days`.
    pub kind: String,
    /// Points, minor units, 1 coupon, or days.
    pub amount: i64,
    /// The coupon template or the plan it gives.
    pub item: Option<String>,
    /// A `referral::RewardState` name.
    pub state: String,
    pub source_ref: Option<String>,
    pub due_at_us: i64,
    pub created_at_us: i64,
    pub settled_at_us: Option<i64>,
    pub granted_ref: Option<i64>,
    pub clawed_back: i64,
    pub clawed_at_us: Option<i64>,
}

const REWARD_COLUMNS: &str = "referee_id, reward_id, referrer_id, beneficiary_id, trigger_kind, \
    kind, amount, item, state, source_ref, due_at_us, created_at_us, settled_at_us, \
    granted_ref, clawed_back, clawed_at_us";

impl ReferralRewardRow {
    fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(Self {
            referee_id: r.try_get("referee_id")?,
            reward_id: r.try_get("reward_id")?,
            referrer_id: r.try_get("referrer_id")?,
            beneficiary_id: r.try_get("beneficiary_id")?,
            trigger: r.try_get("trigger_kind")?,
            kind: r.try_get("kind")?,
            amount: r.try_get("amount")?,
            item: r.try_get("item")?,
            state: r.try_get("state")?,
            source_ref: r.try_get("source_ref")?,
            due_at_us: r.try_get("due_at_us")?,
            created_at_us: r.try_get("created_at_us")?,
            settled_at_us: r.try_get("settled_at_us")?,
            granted_ref: r.try_get("granted_ref")?,
            clawed_back: r.try_get("clawed_back")?,
            clawed_at_us: r.try_get("clawed_at_us")?,
        })
    }
}

/// Referral as a whole, for the KPIs: members brought, how many of each side came to pay
/// for a plan, and what rewards cost.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReferralFigures {
    pub members: i64,
    pub referred_members: i64,
    /// Referred members with a paid term of any plan.
    pub referred_paying: i64,
    /// Members not referred with a paid term of any plan.
    pub unreferred_paying: i64,
    /// Per reward kind and state: (kind, state, rewards, amount, taken back).
    pub rewards: Vec<(String, String, i64, i64, i64)>,
}

impl Store {
    pub async fn referral_link_of(&self, external_id: &str) -> Result<Option<ReferralLinkRow>> {
        let row = sqlx::query(&format!("{LINK_SELECT} WHERE external_id = $1"))
            .bind(external_id)
            .fetch_optional(&self.read)
            .await?;
        row.map(|r| ReferralLinkRow::from_row(&r)).transpose()
    }

    /// The owner of a code, read without a lock.
    pub async fn referral_owner_of(&self, code: &str) -> Result<Option<ReferralLinkRow>> {
        let row = sqlx::query(&format!("{LINK_SELECT} WHERE referral_code = $1"))
            .bind(code)
            .fetch_optional(&self.read)
            .await?;
        row.map(|r| ReferralLinkRow::from_row(&r)).transpose()
    }

    pub async fn referral_link_by_id(&self, member_id: i64) -> Result<Option<ReferralLinkRow>> {
        let row = sqlx::query(&format!("{LINK_SELECT} WHERE id = $1"))
            .bind(member_id)
            .fetch_optional(&self.read)
            .await?;
        row.map(|r| ReferralLinkRow::from_row(&r)).transpose()
    }

    /// The members a referrer brought, in the order they joined, after `after_id`.
    pub async fn referees_page(
        &self,
        referrer_id: i64,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<ReferralLinkRow>> {
        let rows = sqlx::query(&format!(
            "{LINK_SELECT} WHERE referrer_id = $1 AND id > $2 ORDER BY id LIMIT $3"
        ))
        .bind(referrer_id)
        .bind(after_id)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(ReferralLinkRow::from_row).collect()
    }

    /// The rewards of the referrals of these referees.
    pub async fn referral_rewards_of(&self, referee_ids: &[i64]) -> Result<Vec<ReferralRewardRow>> {
        let mut out = Vec::new();
        for chunk in referee_ids.chunks(crate::IN_LIST_MAX) {
            if chunk.is_empty() {
                continue;
            }
            let list = crate::points::list(1, chunk.len(), false);
            let sql = format!(
                "SELECT {REWARD_COLUMNS} FROM referral_rewards WHERE referee_id IN ({list}) \
                 ORDER BY referee_id, created_at_us, reward_id"
            );
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(*id);
            }
            for r in q.fetch_all(&self.read).await? {
                out.push(ReferralRewardRow::from_row(&r)?);
            }
        }
        Ok(out)
    }

    /// Rewards with work to do: pending ones due by `now_us`, and those to take back;
    /// (referee, reward id), at most `limit`.
    pub async fn referral_rewards_due(
        &self,
        now_us: i64,
        limit: u32,
    ) -> Result<Vec<(i64, String)>> {
        let rows = sqlx::query(
            "SELECT referee_id, reward_id FROM referral_rewards \
             WHERE state IN ('pending', 'clawback_due') AND due_at_us <= $1 \
             ORDER BY due_at_us, referee_id, reward_id LIMIT $2",
        )
        .bind(now_us)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("referee_id")?, r.try_get("reward_id")?)))
            .collect()
    }

    pub async fn referral_figures(&self) -> Result<ReferralFigures> {
        let counts = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT) AS members, \
             CAST(COALESCE(SUM(CASE WHEN m.referrer_id IS NULL THEN 0 ELSE 1 END), 0) AS BIGINT) AS referred, \
             CAST(COALESCE(SUM(CASE WHEN m.referrer_id IS NOT NULL AND p.member_id IS NOT NULL THEN 1 ELSE 0 END), 0) AS BIGINT) AS referred_paying, \
             CAST(COALESCE(SUM(CASE WHEN m.referrer_id IS NULL AND p.member_id IS NOT NULL THEN 1 ELSE 0 END), 0) AS BIGINT) AS unreferred_paying \
             FROM members m LEFT JOIN \
             (SELECT DISTINCT member_id FROM subscription_terms WHERE kind = 'paid') p \
             ON p.member_id = m.id",
        )
        .fetch_one(&self.read)
        .await?;
        let rows = sqlx::query(
            "SELECT kind, state, CAST(COUNT(*) AS BIGINT) AS n, \
             CAST(COALESCE(SUM(amount), 0) AS BIGINT) AS amount, \
             CAST(COALESCE(SUM(clawed_back), 0) AS BIGINT) AS clawed \
             FROM referral_rewards GROUP BY kind, state ORDER BY kind, state",
        )
        .fetch_all(&self.read)
        .await?;
        Ok(ReferralFigures {
            members: counts.try_get("members")?,
            referred_members: counts.try_get("referred")?,
            referred_paying: counts.try_get("referred_paying")?,
            unreferred_paying: counts.try_get("unreferred_paying")?,
            rewards: rows
                .iter()
                .map(|r| {
                    Ok((
                        r.try_get("kind")?,
                        r.try_get("state")?,
                        r.try_get("n")?,
                        r.try_get("amount")?,
                        r.try_get("clawed")?,
                    ))
                })
                .collect::<Result<_>>()?,
        })
    }
}

impl Tx {
    /// The owner of a code, locked until the transaction ends (the count of members the
    /// code brought and the rewards of its cap are decided under this lock).
    pub async fn referral_owner_for_update(
        &mut self,
        code: &str,
    ) -> Result<Option<ReferralLinkRow>> {
        let row = sqlx::query(&format!(
            "{LINK_SELECT} WHERE referral_code = $1{}",
            self.lock
        ))
        .bind(code)
        .fetch_optional(&mut *self.tx)
        .await?;
        row.map(|r| ReferralLinkRow::from_row(&r)).transpose()
    }

    pub async fn referral_link_for_update(
        &mut self,
        member_id: i64,
    ) -> Result<Option<ReferralLinkRow>> {
        let row = sqlx::query(&format!("{LINK_SELECT} WHERE id = $1{}", self.lock))
            .bind(member_id)
            .fetch_optional(&mut *self.tx)
            .await?;
        row.map(|r| ReferralLinkRow::from_row(&r)).transpose()
    }

    /// Gives a member their code; a code another member holds is a `Conflict`.
    pub async fn referral_code_set(&mut self, member_id: i64, code: &str) -> Result<()> {
        sqlx::query(
            "UPDATE members SET referral_code = $2 WHERE id = $1 AND referral_code IS NULL",
        )
        .bind(member_id)
        .bind(code)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Records who brought a member, with the code they gave.
    pub async fn referrer_set(
        &mut self,
        member_id: i64,
        referrer_id: i64,
        code: &str,
        at_us: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE members SET referrer_id = $2, referred_by_code = $3, referred_at_us = $4 \
             WHERE id = $1",
        )
        .bind(member_id)
        .bind(referrer_id)
        .bind(code)
        .bind(at_us)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// How many members a referrer brought.
    pub async fn referees_count(&mut self, referrer_id: i64) -> Result<i64> {
        let row =
            sqlx::query("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM members WHERE referrer_id = $1")
                .bind(referrer_id)
                .fetch_one(&mut *self.tx)
                .await?;
        Ok(row.try_get("n")?)
    }

    /// Who brought each of these members, for those someone brought: (member, referrer,
    /// when they were referred).
    pub async fn referrers_of(
        &mut self,
        member_ids: &[i64],
    ) -> Result<Vec<(i64, i64, Option<i64>)>> {
        let mut out = Vec::new();
        for chunk in member_ids.chunks(crate::IN_LIST_MAX) {
            if chunk.is_empty() {
                continue;
            }
            let list = crate::points::list(1, chunk.len(), self.anonymous);
            let sql = format!(
                "SELECT id, referrer_id, referred_at_us FROM members WHERE id IN ({list}) AND referrer_id IS NOT NULL"
            );
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(*id);
            }
            for r in q.fetch_all(&mut *self.tx).await? {
                out.push((
                    r.try_get("id")?,
                    r.try_get("referrer_id")?,
                    r.try_get("referred_at_us")?,
                ));
            }
        }
        Ok(out)
    }

    /// Writes reward rows; a row for a (referee, reward) that exists is left as it is.
    pub async fn referral_rewards_insert(&mut self, rows: &[ReferralRewardRow]) -> Result<()> {
        for r in rows {
            sqlx::query(&format!(
                "INSERT INTO referral_rewards ({REWARD_COLUMNS}) VALUES \
                 ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
                 ON CONFLICT (referee_id, reward_id) DO NOTHING"
            ))
            .bind(r.referee_id)
            .bind(&r.reward_id)
            .bind(r.referrer_id)
            .bind(r.beneficiary_id)
            .bind(&r.trigger)
            .bind(&r.kind)
            .bind(r.amount)
            .bind(&r.item)
            .bind(&r.state)
            .bind(&r.source_ref)
            .bind(r.due_at_us)
            .bind(r.created_at_us)
            .bind(r.settled_at_us)
            .bind(r.granted_ref)
            .bind(r.clawed_back)
            .bind(r.clawed_at_us)
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(())
    }

    /// A referee's rewards, locked until the transaction ends.
    pub async fn referral_rewards_of_referee(
        &mut self,
        referee_id: i64,
    ) -> Result<Vec<ReferralRewardRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {REWARD_COLUMNS} FROM referral_rewards WHERE referee_id = $1 \
             ORDER BY reward_id{}",
            self.lock
        ))
        .bind(referee_id)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(ReferralRewardRow::from_row).collect()
    }

    /// Writes what changed of a reward: its state, source, due instant and settlement.
    pub async fn referral_reward_update(&mut self, r: &ReferralRewardRow) -> Result<()> {
        sqlx::query(
            "UPDATE referral_rewards SET state = $3, source_ref = $4, due_at_us = $5, \
             settled_at_us = $6, granted_ref = $7, clawed_back = $8, clawed_at_us = $9 \
             WHERE referee_id = $1 AND reward_id = $2",
        )
        .bind(r.referee_id)
        .bind(&r.reward_id)
        .bind(&r.state)
        .bind(&r.source_ref)
        .bind(r.due_at_us)
        .bind(r.settled_at_us)
        .bind(r.granted_ref)
        .bind(r.clawed_back)
        .bind(r.clawed_at_us)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Rewards to a referrer as referrer, in one of `states`, settled since `since_us` (all
    /// time when `None`): what a cap counts (the domain names the states).
    pub async fn referrer_rewards_settled_since(
        &mut self,
        referrer_id: i64,
        states: &[&str],
        since_us: Option<i64>,
    ) -> Result<i64> {
        let list = crate::points::list(3, states.len(), false);
        let sql = format!(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM referral_rewards \
             WHERE beneficiary_id = $1 AND referrer_id = $1 AND settled_at_us >= $2 \
             AND state IN ({list})"
        );
        let mut q = sqlx::query(&sql)
            .bind(referrer_id)
            .bind(since_us.unwrap_or(i64::MIN));
        for s in states {
            q = q.bind(*s);
        }
        let row = q.fetch_one(&mut *self.tx).await?;
        Ok(row.try_get("n")?)
    }

    /// Voids one coupon if it is still unused; whether it was.
    pub async fn coupon_void(&mut self, member_id: i64, coupon_no: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE coupons SET state = 'voided' WHERE member_id = $1 AND coupon_no = $2 \
             AND state = 'issued'",
        )
        .bind(member_id)
        .bind(coupon_no)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
