//! The tables of the paid track: subscriptions, their terms and history, renewals due,
//! trials taken, partner code pools and benefit uses.

use crate::{Result, Store, Tx};
use sqlx::any::AnyRow;
use sqlx::Row;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SubscriptionRow {
    pub id: i64,
    pub member_id: i64,
    pub buyer_member_id: i64,
    pub plan: String,
    pub status: String,
    pub auto_renew: bool,
    pub cancel_at_period_end: bool,
    pub access_end_us: i64,
    pub cut: bool,
    pub grace_until_us: Option<i64>,
    pub renewal_noticed_for_us: Option<i64>,
    pub next_due_us: Option<i64>,
    pub created_at_us: i64,
    pub updated_at_us: i64,
    pub next_term_no: i64,
    pub next_history_no: i64,
}

impl SubscriptionRow {
    fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(Self {
            id: r.try_get("id")?,
            member_id: r.try_get("member_id")?,
            buyer_member_id: r.try_get("buyer_member_id")?,
            plan: r.try_get("plan")?,
            status: r.try_get("status")?,
            auto_renew: r.try_get::<i64, _>("auto_renew")? != 0,
            cancel_at_period_end: r.try_get::<i64, _>("cancel_at_period_end")? != 0,
            access_end_us: r.try_get("access_end_us")?,
            cut: r.try_get::<i64, _>("cut")? != 0,
            grace_until_us: r.try_get("grace_until_us")?,
            renewal_noticed_for_us: r.try_get("renewal_noticed_for_us")?,
            next_due_us: r.try_get("next_due_us")?,
            created_at_us: r.try_get("created_at_us")?,
            updated_at_us: r.try_get("updated_at_us")?,
            next_term_no: r.try_get("next_term_no")?,
            next_history_no: r.try_get("next_history_no")?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TermRow {
    pub subscription_id: i64,
    pub term_no: i64,
    pub member_id: i64,
    /// `trial` or `paid`.
    pub kind: String,
    pub start_us: i64,
    pub end_us: i64,
    pub amount_minor: i64,
    pub price_basis: String,
    pub paid_at_us: i64,
    pub refunded_minor: i64,
    pub payment_ref: Option<String>,
    pub request_sha256: Option<String>,
}

impl TermRow {
    fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(Self {
            subscription_id: r.try_get("subscription_id")?,
            term_no: r.try_get("term_no")?,
            member_id: r.try_get("member_id")?,
            kind: r.try_get("kind")?,
            start_us: r.try_get("start_us")?,
            end_us: r.try_get("end_us")?,
            amount_minor: r.try_get("amount_minor")?,
            price_basis: r.try_get("price_basis")?,
            paid_at_us: r.try_get("paid_at_us")?,
            refunded_minor: r.try_get("refunded_minor")?,
            payment_ref: r.try_get("payment_ref")?,
            request_sha256: r.try_get("request_sha256")?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SubscriptionHistoryRow {
    pub subscription_id: i64,
    pub history_no: i64,
    pub member_id: i64,
    pub at_us: i64,
    /// `status`, `payment`, `renewal_due`, `cancel` or `refund`.
    pub kind: String,
    pub from_status: Option<String>,
    pub to_status: Option<String>,
    pub cause: String,
    pub payment_ref: Option<String>,
    pub amount_minor: Option<i64>,
}

impl SubscriptionHistoryRow {
    fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(Self {
            subscription_id: r.try_get("subscription_id")?,
            history_no: r.try_get("history_no")?,
            member_id: r.try_get("member_id")?,
            at_us: r.try_get("at_us")?,
            kind: r.try_get("kind")?,
            from_status: r.try_get("from_status")?,
            to_status: r.try_get("to_status")?,
            cause: r.try_get("cause")?,
            payment_ref: r.try_get("payment_ref")?,
            amount_minor: r.try_get("amount_minor")?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RenewalRow {
    pub subscription_id: i64,
    pub period_end_us: i64,
    pub member_id: i64,
    pub due_at_us: i64,
    pub amount_minor: i64,
    /// `open`, `paid` or `lapsed`.
    pub state: String,
}

impl RenewalRow {
    fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(Self {
            subscription_id: r.try_get("subscription_id")?,
            period_end_us: r.try_get("period_end_us")?,
            member_id: r.try_get("member_id")?,
            due_at_us: r.try_get("due_at_us")?,
            amount_minor: r.try_get("amount_minor")?,
            state: r.try_get("state")?,
        })
    }
}

/// A code handed out with a subscription's term.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AssignedCodeRow {
    pub pool: String,
    pub code: String,
    pub term_no: i64,
    pub assigned_at_us: i64,
}

impl AssignedCodeRow {
    fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(Self {
            pool: r.try_get("pool")?,
            code: r.try_get("code")?,
            term_no: r.try_get("term_no")?,
            assigned_at_us: r.try_get("assigned_at_us")?,
        })
    }
}

/// One use of a benefit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenefitUseRow {
    pub id: i64,
    pub member_id: i64,
    pub subscription_id: Option<i64>,
    pub term_no: Option<i64>,
    pub benefit: String,
    pub partner: Option<String>,
    pub reference: Option<String>,
    pub cost_minor: i64,
    pub at_us: i64,
}

impl BenefitUseRow {
    fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(Self {
            id: r.try_get("id")?,
            member_id: r.try_get("member_id")?,
            subscription_id: r.try_get("subscription_id")?,
            term_no: r.try_get("term_no")?,
            benefit: r.try_get("benefit")?,
            partner: r.try_get("partner")?,
            reference: r.try_get("reference")?,
            cost_minor: r.try_get("cost_minor")?,
            at_us: r.try_get("at_us")?,
        })
    }
}

/// How many codes a pool holds and how many are left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolCounts {
    pub total: i64,
    pub assigned: i64,
}

const SUBSCRIPTION_SELECT: &str =
    "SELECT id, member_id, buyer_member_id, plan, status, auto_renew, \
    cancel_at_period_end, access_end_us, cut, grace_until_us, renewal_noticed_for_us, next_due_us, \
    created_at_us, updated_at_us, next_term_no, next_history_no FROM subscriptions";
/// A holder's subscriptions, newest first, and all their terms (terms carry the holder).
const HELD_SELECT: &str = "SELECT id, member_id, buyer_member_id, plan, status, auto_renew, \
    cancel_at_period_end, access_end_us, cut, grace_until_us, renewal_noticed_for_us, next_due_us, \
    created_at_us, updated_at_us, next_term_no, next_history_no FROM subscriptions \
    WHERE member_id = $1 ORDER BY id DESC";
const HELD_TERMS_SELECT: &str =
    "SELECT subscription_id, term_no, member_id, kind, start_us, end_us, \
    amount_minor, price_basis, paid_at_us, refunded_minor, payment_ref, request_sha256 \
    FROM subscription_terms WHERE member_id = $1 ORDER BY subscription_id, term_no";

/// Pairs subscriptions with their terms.
fn with_terms(subs: &[AnyRow], terms: &[AnyRow]) -> Result<Vec<(SubscriptionRow, Vec<TermRow>)>> {
    let mut out: Vec<(SubscriptionRow, Vec<TermRow>)> = subs
        .iter()
        .map(|r| Ok((SubscriptionRow::from_row(r)?, Vec::new())))
        .collect::<Result<_>>()?;
    for r in terms {
        let t = TermRow::from_row(r)?;
        if let Some((_, ts)) = out.iter_mut().find(|(s, _)| s.id == t.subscription_id) {
            ts.push(t);
        }
    }
    Ok(out)
}

const TERM_SELECT: &str = "SELECT subscription_id, term_no, member_id, kind, start_us, end_us, \
    amount_minor, price_basis, paid_at_us, refunded_minor, payment_ref, request_sha256 \
    FROM subscription_terms";
const HISTORY_SELECT: &str = "SELECT subscription_id, history_no, member_id, at_us, kind, \
    from_status, to_status, cause, payment_ref, amount_minor FROM subscription_history";
const RENEWAL_SELECT: &str = "SELECT subscription_id, period_end_us, member_id, due_at_us, \
    amount_minor, state FROM renewals_due";
const CODES_SELECT: &str = "SELECT pool, code, term_no, assigned_at_us FROM partner_codes";
const USE_SELECT: &str = "SELECT id, member_id, subscription_id, term_no, benefit, partner, \
    reference, cost_minor, at_us FROM benefit_uses";

fn flag(b: bool) -> i64 {
    i64::from(b)
}

impl Tx {
    /// Stores a new subscription (its `id` is ignored) and returns its id.
    pub async fn subscription_insert(&mut self, s: &SubscriptionRow) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO subscriptions (member_id, buyer_member_id, plan, status, auto_renew, \
             cancel_at_period_end, access_end_us, cut, grace_until_us, renewal_noticed_for_us, next_due_us, \
             created_at_us, updated_at_us, next_term_no, next_history_no) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING id",
        )
        .bind(s.member_id)
        .bind(s.buyer_member_id)
        .bind(&s.plan)
        .bind(&s.status)
        .bind(flag(s.auto_renew))
        .bind(flag(s.cancel_at_period_end))
        .bind(s.access_end_us)
        .bind(flag(s.cut))
        .bind(s.grace_until_us)
        .bind(s.renewal_noticed_for_us)
        .bind(s.next_due_us)
        .bind(s.created_at_us)
        .bind(s.updated_at_us)
        .bind(s.next_term_no)
        .bind(s.next_history_no)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(row.try_get::<i64, _>("id")?)
    }

    pub async fn subscription_update(&mut self, s: &SubscriptionRow) -> Result<()> {
        sqlx::query(
            "UPDATE subscriptions SET status = $2, auto_renew = $3, cancel_at_period_end = $4, \
             access_end_us = $5, cut = $6, grace_until_us = $7, renewal_noticed_for_us = $8, next_due_us = $9, \
             updated_at_us = $10, next_term_no = $11, next_history_no = $12 WHERE id = $1",
        )
        .bind(s.id)
        .bind(&s.status)
        .bind(flag(s.auto_renew))
        .bind(flag(s.cancel_at_period_end))
        .bind(s.access_end_us)
        .bind(flag(s.cut))
        .bind(s.grace_until_us)
        .bind(s.renewal_noticed_for_us)
        .bind(s.next_due_us)
        .bind(s.updated_at_us)
        .bind(s.next_term_no)
        .bind(s.next_history_no)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn subscription_get(&mut self, id: i64) -> Result<Option<SubscriptionRow>> {
        let row = sqlx::query(&format!("{SUBSCRIPTION_SELECT} WHERE id = $1"))
            .bind(id)
            .fetch_optional(&mut *self.tx)
            .await?;
        row.map(|r| SubscriptionRow::from_row(&r)).transpose()
    }

    /// A member's subscriptions to a plan, newest first.
    pub async fn subscriptions_of_plan(
        &mut self,
        member_id: i64,
        plan: &str,
    ) -> Result<Vec<SubscriptionRow>> {
        let rows = sqlx::query(&format!(
            "{SUBSCRIPTION_SELECT} WHERE member_id = $1 AND plan = $2 ORDER BY id DESC"
        ))
        .bind(member_id)
        .bind(plan)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(SubscriptionRow::from_row).collect()
    }

    /// Every subscription a member holds, newest first, with its terms (two statements).
    pub async fn held_subscriptions(
        &mut self,
        member_id: i64,
    ) -> Result<Vec<(SubscriptionRow, Vec<TermRow>)>> {
        let subs = sqlx::query(HELD_SELECT)
            .bind(member_id)
            .fetch_all(&mut *self.tx)
            .await?;
        let terms = sqlx::query(HELD_TERMS_SELECT)
            .bind(member_id)
            .fetch_all(&mut *self.tx)
            .await?;
        with_terms(&subs, &terms)
    }

    pub async fn terms_get(&mut self, subscription_id: i64) -> Result<Vec<TermRow>> {
        let rows = sqlx::query(&format!(
            "{TERM_SELECT} WHERE subscription_id = $1 ORDER BY term_no"
        ))
        .bind(subscription_id)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(TermRow::from_row).collect()
    }

    /// The term a payment reference confirmed, if any.
    pub async fn term_by_payment_ref(&mut self, payment_ref: &str) -> Result<Option<TermRow>> {
        let row = sqlx::query(&format!("{TERM_SELECT} WHERE payment_ref = $1"))
            .bind(payment_ref)
            .fetch_optional(&mut *self.tx)
            .await?;
        row.map(|r| TermRow::from_row(&r)).transpose()
    }

    pub async fn term_insert(&mut self, t: &TermRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO subscription_terms (subscription_id, term_no, member_id, kind, start_us, end_us, \
             amount_minor, price_basis, paid_at_us, refunded_minor, payment_ref, request_sha256) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(t.subscription_id)
        .bind(t.term_no)
        .bind(t.member_id)
        .bind(&t.kind)
        .bind(t.start_us)
        .bind(t.end_us)
        .bind(t.amount_minor)
        .bind(&t.price_basis)
        .bind(t.paid_at_us)
        .bind(t.refunded_minor)
        .bind(&t.payment_ref)
        .bind(&t.request_sha256)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Moves a term (days given as a reward, taken back, and the terms after them).
    pub async fn term_set_span(
        &mut self,
        subscription_id: i64,
        term_no: i64,
        start_us: i64,
        end_us: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE subscription_terms SET start_us = $3, end_us = $4 WHERE subscription_id = $1 AND term_no = $2",
        )
        .bind(subscription_id)
        .bind(term_no)
        .bind(start_us)
        .bind(end_us)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn term_set_refunded(
        &mut self,
        subscription_id: i64,
        term_no: i64,
        refunded_minor: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE subscription_terms SET refunded_minor = $3 WHERE subscription_id = $1 AND term_no = $2",
        )
        .bind(subscription_id)
        .bind(term_no)
        .bind(refunded_minor)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn subscription_history_insert(
        &mut self,
        rows: &[SubscriptionHistoryRow],
    ) -> Result<()> {
        for h in rows {
            sqlx::query(
                "INSERT INTO subscription_history (subscription_id, history_no, member_id, at_us, kind, \
                 from_status, to_status, cause, payment_ref, amount_minor) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(h.subscription_id)
            .bind(h.history_no)
            .bind(h.member_id)
            .bind(h.at_us)
            .bind(&h.kind)
            .bind(&h.from_status)
            .bind(&h.to_status)
            .bind(&h.cause)
            .bind(&h.payment_ref)
            .bind(h.amount_minor)
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(())
    }

    /// Records a renewal due; the same period twice is one record.
    pub async fn renewal_insert(&mut self, r: &RenewalRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO renewals_due (subscription_id, period_end_us, member_id, due_at_us, amount_minor, state) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (subscription_id, period_end_us) DO NOTHING",
        )
        .bind(r.subscription_id)
        .bind(r.period_end_us)
        .bind(r.member_id)
        .bind(r.due_at_us)
        .bind(r.amount_minor)
        .bind(&r.state)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Closes a subscription's open renewals: `paid` or `lapsed`.
    pub async fn renewals_close(&mut self, subscription_id: i64, state: &str) -> Result<()> {
        sqlx::query(
            "UPDATE renewals_due SET state = $2 WHERE subscription_id = $1 AND state = 'open'",
        )
        .bind(subscription_id)
        .bind(state)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Records a member's trial of a plan; `false` when the member trialed it before.
    pub async fn trial_insert(
        &mut self,
        member_id: i64,
        plan: &str,
        subscription_id: i64,
        at_us: i64,
    ) -> Result<bool> {
        let row = sqlx::query(
            "INSERT INTO plan_trials (member_id, plan, subscription_id, at_us) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (member_id, plan) DO NOTHING RETURNING member_id",
        )
        .bind(member_id)
        .bind(plan)
        .bind(subscription_id)
        .bind(at_us)
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(row.is_some())
    }

    pub async fn trial_taken(&mut self, member_id: i64, plan: &str) -> Result<bool> {
        let row =
            sqlx::query("SELECT 1 AS one FROM plan_trials WHERE member_id = $1 AND plan = $2")
                .bind(member_id)
                .bind(plan)
                .fetch_optional(&mut *self.tx)
                .await?;
        Ok(row.is_some())
    }

    /// Hands out the pool's oldest free code to a subscription's term; `None` when the
    /// pool is empty. Concurrent takers never get the same code: PostgreSQL skips rows
    /// another transaction holds, SQLite has one writer.
    pub async fn code_take(
        &mut self,
        pool: &str,
        member_id: i64,
        subscription_id: i64,
        term_no: i64,
        now_us: i64,
    ) -> Result<Option<String>> {
        let sql = format!(
            "UPDATE partner_codes SET member_id = $2, subscription_id = $3, term_no = $4, assigned_at_us = $5 \
             WHERE id = (SELECT id FROM partner_codes WHERE pool = $1 AND member_id IS NULL \
             ORDER BY id LIMIT 1{}) AND member_id IS NULL RETURNING code",
            self.skip_locked
        );
        let row = sqlx::query(&sql)
            .bind(pool)
            .bind(member_id)
            .bind(subscription_id)
            .bind(term_no)
            .bind(now_us)
            .fetch_optional(&mut *self.tx)
            .await?;
        Ok(row.map(|r| r.try_get::<String, _>("code")).transpose()?)
    }

    /// Adds codes to a pool; a code already in it is skipped. Returns how many were added.
    pub async fn codes_insert(&mut self, pool: &str, codes: &[&str], now_us: i64) -> Result<u64> {
        let mut added = 0;
        for chunk in codes.chunks(100) {
            let values = (0..chunk.len())
                .map(|i| format!("($1, ${}, $2)", i + 3))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "INSERT INTO partner_codes (pool, code, uploaded_at_us) VALUES {values} \
                 ON CONFLICT (pool, code) DO NOTHING"
            );
            let mut q = sqlx::query(&sql).bind(pool).bind(now_us);
            for c in chunk {
                q = q.bind(*c);
            }
            added += q.execute(&mut *self.tx).await?.rows_affected();
        }
        Ok(added)
    }

    pub async fn benefit_use_insert(&mut self, u: &BenefitUseRow) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO benefit_uses (member_id, subscription_id, term_no, benefit, partner, reference, cost_minor, at_us) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(u.member_id)
        .bind(u.subscription_id)
        .bind(u.term_no)
        .bind(&u.benefit)
        .bind(&u.partner)
        .bind(&u.reference)
        .bind(u.cost_minor)
        .bind(u.at_us)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(row.try_get::<i64, _>("id")?)
    }

    pub async fn benefit_use_by_reference(
        &mut self,
        partner: &str,
        reference: &str,
    ) -> Result<Option<BenefitUseRow>> {
        let row = sqlx::query(&format!(
            "{USE_SELECT} WHERE partner = $1 AND reference = $2"
        ))
        .bind(partner)
        .bind(reference)
        .fetch_optional(&mut *self.tx)
        .await?;
        row.map(|r| BenefitUseRow::from_row(&r)).transpose()
    }

    pub async fn benefit_uses_of(&mut self, subscription_id: i64) -> Result<Vec<BenefitUseRow>> {
        let rows = sqlx::query(&format!(
            "{USE_SELECT} WHERE subscription_id = $1 ORDER BY id"
        ))
        .bind(subscription_id)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(BenefitUseRow::from_row).collect()
    }
}

impl Store {
    pub async fn subscription_read(&self, id: i64) -> Result<Option<SubscriptionRow>> {
        let row = sqlx::query(&format!("{SUBSCRIPTION_SELECT} WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        row.map(|r| SubscriptionRow::from_row(&r)).transpose()
    }

    /// The subscriptions a member holds or bought for someone else with ids below
    /// `before_id`, newest first, at most `limit`.
    pub async fn subscriptions_of_member(
        &self,
        member_id: i64,
        before_id: i64,
        limit: u32,
    ) -> Result<Vec<SubscriptionRow>> {
        let rows = sqlx::query(&format!(
            "{SUBSCRIPTION_SELECT} WHERE (member_id = $1 OR buyer_member_id = $1) AND id < $2 \
             ORDER BY id DESC LIMIT $3"
        ))
        .bind(member_id)
        .bind(before_id)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(SubscriptionRow::from_row).collect()
    }

    /// A subscription's terms, in order.
    pub async fn terms_of(&self, subscription_id: i64) -> Result<Vec<TermRow>> {
        let rows = sqlx::query(&format!(
            "{TERM_SELECT} WHERE subscription_id = $1 ORDER BY term_no"
        ))
        .bind(subscription_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(TermRow::from_row).collect()
    }

    /// Every subscription a member holds, newest first, with its terms (two statements).
    pub async fn held_subscriptions(
        &self,
        member_id: i64,
    ) -> Result<Vec<(SubscriptionRow, Vec<TermRow>)>> {
        let subs = sqlx::query(HELD_SELECT)
            .bind(member_id)
            .fetch_all(&self.read)
            .await?;
        let terms = sqlx::query(HELD_TERMS_SELECT)
            .bind(member_id)
            .fetch_all(&self.read)
            .await?;
        with_terms(&subs, &terms)
    }

    pub async fn subscription_history(
        &self,
        subscription_id: i64,
    ) -> Result<Vec<SubscriptionHistoryRow>> {
        let rows = sqlx::query(&format!(
            "{HISTORY_SELECT} WHERE subscription_id = $1 ORDER BY history_no"
        ))
        .bind(subscription_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(SubscriptionHistoryRow::from_row).collect()
    }

    pub async fn codes_of_subscription(
        &self,
        subscription_id: i64,
    ) -> Result<Vec<AssignedCodeRow>> {
        let rows = sqlx::query(&format!(
            "{CODES_SELECT} WHERE subscription_id = $1 ORDER BY id"
        ))
        .bind(subscription_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(AssignedCodeRow::from_row).collect()
    }

    pub async fn benefit_uses_read(&self, subscription_id: i64) -> Result<Vec<BenefitUseRow>> {
        let rows = sqlx::query(&format!(
            "{USE_SELECT} WHERE subscription_id = $1 ORDER BY id"
        ))
        .bind(subscription_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(BenefitUseRow::from_row).collect()
    }

    pub async fn pool_counts(&self, pool: &str) -> Result<PoolCounts> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS total, COUNT(member_id) AS assigned FROM partner_codes WHERE pool = $1",
        )
        .bind(pool)
        .fetch_one(&self.read)
        .await?;
        Ok(PoolCounts {
            total: row.try_get("total")?,
            assigned: row.try_get("assigned")?,
        })
    }

    /// Subscriptions with something due at or before `to_us`: (id, member).
    pub async fn due_subscriptions(&self, to_us: i64, limit: u32) -> Result<Vec<(i64, i64)>> {
        let rows = sqlx::query(
            "SELECT id, member_id FROM subscriptions WHERE next_due_us IS NOT NULL AND next_due_us <= $1 \
             ORDER BY next_due_us, id LIMIT $2",
        )
        .bind(to_us)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("member_id")?)))
            .collect()
    }

    /// Renewals in a state, oldest due first, after the cursor `(due_at_us, subscription_id)`.
    pub async fn renewals_list(
        &self,
        state: &str,
        after: (i64, i64),
        limit: u32,
    ) -> Result<Vec<RenewalRow>> {
        let rows = sqlx::query(&format!(
            "{RENEWAL_SELECT} WHERE state = $1 AND (due_at_us > $2 OR (due_at_us = $2 AND subscription_id > $3)) \
             ORDER BY due_at_us, subscription_id LIMIT $4"
        ))
        .bind(state)
        .bind(after.0)
        .bind(after.1)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(RenewalRow::from_row).collect()
    }

    pub async fn renewals_of(&self, subscription_id: i64) -> Result<Vec<RenewalRow>> {
        let rows = sqlx::query(&format!(
            "{RENEWAL_SELECT} WHERE subscription_id = $1 ORDER BY period_end_us"
        ))
        .bind(subscription_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(RenewalRow::from_row).collect()
    }

    /// The partner an API key answers for, if it is a partner's key.
    pub async fn api_key_partner(&self, key_id: i64) -> Result<Option<String>> {
        let row = sqlx::query("SELECT partner FROM api_keys WHERE id = $1")
            .bind(key_id)
            .fetch_optional(&self.read)
            .await?;
        Ok(row
            .map(|r| r.try_get::<Option<String>, _>("partner"))
            .transpose()?
            .flatten())
    }
}

impl Tx {
    /// `Store::subscription_record` inside a write: what the transaction wrote is in it.
    pub async fn subscription_record(&mut self, id: i64) -> Result<Option<SubscriptionRecord>> {
        subscription_record_on(&mut self.tx, id).await
    }
}

/// Everything a subscription's view shows, read on one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionRecord {
    pub row: SubscriptionRow,
    /// The external ids of the holder and of the buyer.
    pub holder: String,
    pub buyer: String,
    pub terms: Vec<TermRow>,
    pub codes: Vec<AssignedCodeRow>,
    pub history: Vec<SubscriptionHistoryRow>,
    pub renewals: Vec<RenewalRow>,
}

async fn rows_of(conn: &mut sqlx::AnyConnection, sql: &str, id: i64) -> Result<Vec<AnyRow>> {
    Ok(sqlx::query(sql).bind(id).fetch_all(conn).await?)
}

async fn subscription_record_on(
    conn: &mut sqlx::AnyConnection,
    id: i64,
) -> Result<Option<SubscriptionRecord>> {
    let Some(row) = sqlx::query(&format!("{SUBSCRIPTION_SELECT} WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    let row = SubscriptionRow::from_row(&row)?;
    let external = |member_id: i64| {
        sqlx::query("SELECT external_id FROM members WHERE id = $1").bind(member_id)
    };
    let holder: String = external(row.member_id)
        .fetch_one(&mut *conn)
        .await?
        .try_get("external_id")?;
    let buyer: String = external(row.buyer_member_id)
        .fetch_one(&mut *conn)
        .await?
        .try_get("external_id")?;
    let terms = rows_of(
        conn,
        &format!("{TERM_SELECT} WHERE subscription_id = $1 ORDER BY term_no"),
        id,
    )
    .await?;
    let history = rows_of(
        conn,
        &format!("{HISTORY_SELECT} WHERE subscription_id = $1 ORDER BY history_no"),
        id,
    )
    .await?;
    let renewals = rows_of(
        conn,
        &format!("{RENEWAL_SELECT} WHERE subscription_id = $1 ORDER BY period_end_us"),
        id,
    )
    .await?;
    let codes = rows_of(
        conn,
        &format!("{CODES_SELECT} WHERE subscription_id = $1 ORDER BY id"),
        id,
    )
    .await?;
    Ok(Some(SubscriptionRecord {
        terms: terms.iter().map(TermRow::from_row).collect::<Result<_>>()?,
        history: history
            .iter()
            .map(SubscriptionHistoryRow::from_row)
            .collect::<Result<_>>()?,
        renewals: renewals
            .iter()
            .map(RenewalRow::from_row)
            .collect::<Result<_>>()?,
        codes: codes
            .iter()
            .map(AssignedCodeRow::from_row)
            .collect::<Result<_>>()?,
        holder,
        buyer,
        row,
    }))
}

impl Store {
    /// A subscription with its terms, codes, history, renewals and members' external ids.
    pub async fn subscription_record(&self, id: i64) -> Result<Option<SubscriptionRecord>> {
        let mut conn = self.read.acquire().await?;
        subscription_record_on(&mut conn, id).await
    }

    /// How many subscriptions are in each status (for `/metrics`).
    pub async fn subscriptions_by_status(&self) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query(
            "SELECT status, COUNT(*) AS n FROM subscriptions GROUP BY status ORDER BY status",
        )
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("status")?, r.try_get("n")?)))
            .collect()
    }

    /// The external id of a member, by internal id.
    pub async fn external_id_of(&self, member_id: i64) -> Result<Option<String>> {
        let row = sqlx::query("SELECT external_id FROM members WHERE id = $1")
            .bind(member_id)
            .fetch_optional(&self.read)
            .await?;
        Ok(row
            .map(|r| r.try_get::<String, _>("external_id"))
            .transpose()?)
    }
}

/// A coupon issued to a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CouponRow {
    pub member_id: i64,
    pub coupon_no: i64,
    pub template: String,
    /// `issued`, `used` or `expired`.
    pub state: String,
    pub source: String,
    pub issued_at_us: i64,
    pub valid_until_us: i64,
    pub order_id: Option<String>,
    pub used_at_us: Option<i64>,
    pub issue_id: Option<String>,
}

impl CouponRow {
    fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(Self {
            member_id: r.try_get("member_id")?,
            coupon_no: r.try_get("coupon_no")?,
            template: r.try_get("template")?,
            state: r.try_get("state")?,
            source: r.try_get("source")?,
            issued_at_us: r.try_get("issued_at_us")?,
            valid_until_us: r.try_get("valid_until_us")?,
            order_id: r.try_get("order_id")?,
            used_at_us: r.try_get("used_at_us")?,
            issue_id: r.try_get("issue_id")?,
        })
    }
}

const COUPON_SELECT: &str = "SELECT member_id, coupon_no, template, state, source, issued_at_us, \
    valid_until_us, order_id, used_at_us, issue_id FROM coupons";

impl Tx {
    /// Issues coupons numbered after the member's last one (the caller holds the member's
    /// lock); returns them.
    pub async fn coupons_issue(&mut self, rows: &[CouponRow]) -> Result<Vec<CouponRow>> {
        let Some(first) = rows.first() else {
            return Ok(Vec::new());
        };
        let row = sqlx::query(
            "SELECT CAST(COALESCE(MAX(coupon_no), 0) AS BIGINT) AS n FROM coupons WHERE member_id = $1",
        )
        .bind(first.member_id)
        .fetch_one(&mut *self.tx)
        .await?;
        let mut next: i64 = row.try_get("n")?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            next += 1;
            let mut r = r.clone();
            r.coupon_no = next;
            sqlx::query(
                "INSERT INTO coupons (member_id, coupon_no, template, state, source, issued_at_us, valid_until_us, issue_id) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(r.member_id)
            .bind(r.coupon_no)
            .bind(&r.template)
            .bind(&r.state)
            .bind(&r.source)
            .bind(r.issued_at_us)
            .bind(r.valid_until_us)
            .bind(&r.issue_id)
            .execute(&mut *self.tx)
            .await?;
            out.push(r);
        }
        Ok(out)
    }

    /// The coupons an earlier issue with this id made.
    pub async fn coupons_by_issue(
        &mut self,
        member_id: i64,
        issue_id: &str,
    ) -> Result<Vec<CouponRow>> {
        let rows = sqlx::query(&format!(
            "{COUPON_SELECT} WHERE member_id = $1 AND issue_id = $2 ORDER BY coupon_no"
        ))
        .bind(member_id)
        .bind(issue_id)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(CouponRow::from_row).collect()
    }
}

impl Store {}

impl Tx {
    /// Marks an issued coupon used by an order at `used_at_us`; `false` when the member
    /// holds no issued coupon of that number. Whether it may be used (its validity) is the
    /// domain's to decide before.
    pub async fn coupon_use(
        &mut self,
        member_id: i64,
        coupon_no: i64,
        order_id: &str,
        used_at_us: i64,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE coupons SET state = 'used', order_id = $3, used_at_us = $4 \
             WHERE member_id = $1 AND coupon_no = $2 AND state = 'issued'",
        )
        .bind(member_id)
        .bind(coupon_no)
        .bind(order_id)
        .bind(used_at_us)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// An order commit made before: (request hash, summary).
    pub async fn commit_get(
        &mut self,
        member_id: i64,
        order_id: &str,
    ) -> Result<Option<(String, String)>> {
        let row = sqlx::query(
            "SELECT request_sha256, summary FROM order_commits WHERE member_id = $1 AND order_id = $2",
        )
        .bind(member_id)
        .bind(order_id)
        .fetch_optional(&mut *self.tx)
        .await?;
        row.map(|r| Ok((r.try_get("request_sha256")?, r.try_get("summary")?)))
            .transpose()
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn commit_insert(
        &mut self,
        member_id: i64,
        order_id: &str,
        request_sha256: &str,
        summary: &str,
        points_used: i64,
        now_us: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO order_commits (member_id, order_id, request_sha256, summary, points_used, created_at_us) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(member_id)
        .bind(order_id)
        .bind(request_sha256)
        .bind(summary)
        .bind(points_used)
        .bind(now_us)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}

impl Tx {}

impl Tx {
    /// Points an order commit spent and gave back so far.
    pub async fn commit_points(
        &mut self,
        member_id: i64,
        order_id: &str,
    ) -> Result<Option<(i64, i64)>> {
        let row = sqlx::query(
            "SELECT points_used, points_returned FROM order_commits WHERE member_id = $1 AND order_id = $2",
        )
        .bind(member_id)
        .bind(order_id)
        .fetch_optional(&mut *self.tx)
        .await?;
        row.map(|r| Ok((r.try_get("points_used")?, r.try_get("points_returned")?)))
            .transpose()
    }

    pub async fn commit_set_points_returned(
        &mut self,
        member_id: i64,
        order_id: &str,
        returned: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE order_commits SET points_returned = $3 WHERE member_id = $1 AND order_id = $2",
        )
        .bind(member_id)
        .bind(order_id)
        .bind(returned)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Gives an order's coupons back (a full refund); returns how many.
    pub async fn coupons_restore(&mut self, member_id: i64, order_id: &str) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE coupons SET state = 'issued', order_id = NULL, used_at_us = NULL \
             WHERE member_id = $1 AND order_id = $2 AND state = 'used'",
        )
        .bind(member_id)
        .bind(order_id)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected())
    }

    /// Gives an order's benefit uses back (a full refund), so quotas count them no more.
    pub async fn benefit_uses_release(&mut self, member_id: i64, order_id: &str) -> Result<u64> {
        let done = sqlx::query(
            "DELETE FROM benefit_uses WHERE member_id = $1 AND reference = $2 AND partner IS NULL",
        )
        .bind(member_id)
        .bind(order_id)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected())
    }
}

impl Store {
    /// Members who may hold a periodic grant's benefit after `since_us` and have no grant
    /// for `period` yet, in member order after `after_member`: subscribers of `plans`
    /// whose access ended after `since_us`, and members whose tier is one of `tiers`
    /// (`None` is the first tier). Candidates only: the engine decides, under the lock.
    #[allow(clippy::too_many_arguments)]
    pub async fn grant_candidates(
        &self,
        benefit: &str,
        period: &str,
        plans: &[String],
        since_us: i64,
        tiers: &[Option<String>],
        after_member: i64,
        limit: u32,
    ) -> Result<Vec<i64>> {
        let mut out = Vec::new();
        let not_granted =
            "NOT EXISTS (SELECT 1 FROM coupon_grants g WHERE g.member_id = x.member_id \
                           AND g.benefit = $1 AND g.period = $2)";
        for plan in plans {
            let rows = sqlx::query(&format!(
                "SELECT DISTINCT x.member_id FROM subscriptions x WHERE x.plan = $3 \
                 AND x.access_end_us > $4 AND x.member_id > $5 AND {not_granted} \
                 ORDER BY x.member_id LIMIT $6"
            ))
            .bind(benefit)
            .bind(period)
            .bind(plan)
            .bind(since_us)
            .bind(after_member)
            .bind(i64::from(limit))
            .fetch_all(&self.read)
            .await?;
            for r in rows {
                out.push(r.try_get::<i64, _>("member_id")?);
            }
        }
        for tier in tiers {
            let (cond, name) = match tier {
                Some(t) => ("x.tier = $3", t.clone()),
                None => ("(x.tier IS NULL OR x.tier = $3)", String::new()),
            };
            let rows = sqlx::query(&format!(
                "SELECT x.member_id FROM member_tiers x WHERE {cond} AND x.member_id > $4 \
                 AND {not_granted} ORDER BY x.member_id LIMIT $5"
            ))
            .bind(benefit)
            .bind(period)
            .bind(name)
            .bind(after_member)
            .bind(i64::from(limit))
            .fetch_all(&self.read)
            .await?;
            for r in rows {
                out.push(r.try_get::<i64, _>("member_id")?);
            }
        }
        out.sort_unstable();
        out.dedup();
        out.truncate(limit as usize);
        Ok(out)
    }

    /// How far a periodic job has run, if it ever ran.
    pub async fn job_mark_get(&self, job: &str) -> Result<Option<i64>> {
        let row = sqlx::query("SELECT done_until_us FROM job_marks WHERE job = $1")
            .bind(job)
            .fetch_all(&self.read)
            .await?;
        row.first()
            .map(|r| r.try_get::<i64, _>("done_until_us"))
            .transpose()
            .map_err(Into::into)
    }
}

impl Tx {
    /// Records that a periodic job ran up to `until_us` (never moving the mark back).
    pub async fn job_mark_set(&mut self, job: &str, until_us: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO job_marks (job, done_until_us) VALUES ($1, $2) \
             ON CONFLICT (job) DO UPDATE SET done_until_us = $2 \
             WHERE job_marks.done_until_us < $2",
        )
        .bind(job)
        .bind(until_us)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Records a grant; `false` when it was made before.
    pub async fn grant_insert(
        &mut self,
        member_id: i64,
        benefit: &str,
        period: &str,
        now_us: i64,
    ) -> Result<bool> {
        let row = sqlx::query(
            "INSERT INTO coupon_grants (member_id, benefit, period, issued_at_us) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (member_id, benefit, period) DO NOTHING RETURNING member_id",
        )
        .bind(member_id)
        .bind(benefit)
        .bind(period)
        .bind(now_us)
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(row.is_some())
    }
}

/// A member's stored value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoredValueRow {
    pub principal: i64,
    pub bonus: i64,
}

/// A top-up as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopUpRow {
    pub payment_ref: String,
    pub member_id: i64,
    pub offer: String,
    pub principal: i64,
    pub bonus: i64,
    pub entry_no: i64,
    pub at_us: i64,
}

impl Tx {
    pub async fn stored_value_put(&mut self, member_id: i64, v: StoredValueRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO stored_value_accounts (member_id, principal, bonus) VALUES ($1, $2, $3) \
             ON CONFLICT (member_id) DO UPDATE SET principal = excluded.principal, bonus = excluded.bonus",
        )
        .bind(member_id)
        .bind(v.principal)
        .bind(v.bonus)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn topup_get(&mut self, payment_ref: &str) -> Result<Option<TopUpRow>> {
        let row = sqlx::query(
            "SELECT payment_ref, member_id, offer, principal, bonus, entry_no, at_us FROM stored_value_topups WHERE payment_ref = $1",
        )
        .bind(payment_ref)
        .fetch_optional(&mut *self.tx)
        .await?;
        row.map(|r| {
            Ok(TopUpRow {
                payment_ref: r.try_get("payment_ref")?,
                member_id: r.try_get("member_id")?,
                offer: r.try_get("offer")?,
                principal: r.try_get("principal")?,
                bonus: r.try_get("bonus")?,
                entry_no: r.try_get("entry_no")?,
                at_us: r.try_get("at_us")?,
            })
        })
        .transpose()
    }

    pub async fn topup_insert(&mut self, t: &TopUpRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO stored_value_topups (payment_ref, member_id, offer, principal, bonus, entry_no, at_us) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&t.payment_ref)
        .bind(t.member_id)
        .bind(&t.offer)
        .bind(t.principal)
        .bind(t.bonus)
        .bind(t.entry_no)
        .bind(t.at_us)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Stored value an order commit spent, and how much refunds gave back.
    pub async fn commit_stored_value(
        &mut self,
        member_id: i64,
        order_id: &str,
    ) -> Result<(i64, i64, i64)> {
        let row = sqlx::query(
            "SELECT sv_principal_used, sv_bonus_used, sv_returned FROM order_commits WHERE member_id = $1 AND order_id = $2",
        )
        .bind(member_id)
        .bind(order_id)
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(match row {
            Some(r) => (
                r.try_get("sv_principal_used")?,
                r.try_get("sv_bonus_used")?,
                r.try_get("sv_returned")?,
            ),
            None => (0, 0, 0),
        })
    }

    pub async fn commit_set_stored_value(
        &mut self,
        member_id: i64,
        order_id: &str,
        principal_used: i64,
        bonus_used: i64,
        returned: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE order_commits SET sv_principal_used = $3, sv_bonus_used = $4, sv_returned = $5 \
             WHERE member_id = $1 AND order_id = $2",
        )
        .bind(member_id)
        .bind(order_id)
        .bind(principal_used)
        .bind(bonus_used)
        .bind(returned)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}

// Reads that both a write transaction and the read pool make: one body of SQL each, run on
// either executor.

async fn benefit_uses_since_on<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    e: E,
    member_id: i64,
    benefit: &str,
    since_us: i64,
) -> Result<i64> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM benefit_uses WHERE member_id = $1 AND benefit = $2 AND at_us >= $3",
    )
    .bind(member_id)
    .bind(benefit)
    .bind(since_us)
    .fetch_one(e)
    .await?;
    Ok(row.try_get("n")?)
}

async fn coupons_of_member_on<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    e: E,
    member_id: i64,
    before_no: i64,
    limit: u32,
) -> Result<Vec<CouponRow>> {
    let rows = sqlx::query(&format!(
        "{COUPON_SELECT} WHERE member_id = $1 AND coupon_no < $2 ORDER BY coupon_no DESC LIMIT $3"
    ))
    .bind(member_id)
    .bind(before_no)
    .bind(i64::from(limit))
    .fetch_all(e)
    .await?;
    rows.iter().map(CouponRow::from_row).collect()
}

async fn coupons_held_on<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    e: E,
    member_id: i64,
    recent: u32,
) -> Result<Vec<CouponRow>> {
    let rows = sqlx::query(&format!(
        "{COUPON_SELECT} WHERE member_id = $1 AND (state = 'issued' OR coupon_no > \
         (SELECT COALESCE(MAX(c.coupon_no), 0) FROM coupons c WHERE c.member_id = $1) - $2) \
         ORDER BY coupon_no DESC"
    ))
    .bind(member_id)
    .bind(i64::from(recent))
    .fetch_all(e)
    .await?;
    rows.iter().map(CouponRow::from_row).collect()
}

async fn stored_value_on<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    e: E,
    member_id: i64,
) -> Result<StoredValueRow> {
    let row =
        sqlx::query("SELECT principal, bonus FROM stored_value_accounts WHERE member_id = $1")
            .bind(member_id)
            .fetch_optional(e)
            .await?;
    Ok(match row {
        Some(r) => StoredValueRow {
            principal: r.try_get("principal")?,
            bonus: r.try_get("bonus")?,
        },
        None => StoredValueRow::default(),
    })
}

impl Tx {
    /// How often a member used a benefit from `since_us` on (inside a write).
    pub async fn benefit_uses_since(
        &mut self,
        member_id: i64,
        benefit: &str,
        since_us: i64,
    ) -> Result<i64> {
        benefit_uses_since_on(&mut *self.tx, member_id, benefit, since_us).await
    }

    /// A member's coupons numbered below `before_no`, newest first, at most `limit`
    /// (inside a write).
    pub async fn coupons_of_member(
        &mut self,
        member_id: i64,
        before_no: i64,
        limit: u32,
    ) -> Result<Vec<CouponRow>> {
        coupons_of_member_on(&mut *self.tx, member_id, before_no, limit).await
    }

    /// Every coupon of a member still in the `issued` state, however old, and the newest
    /// `recent` of the others, newest first (what a quote chooses from, inside a write).
    pub async fn coupons_held(&mut self, member_id: i64, recent: u32) -> Result<Vec<CouponRow>> {
        coupons_held_on(&mut *self.tx, member_id, recent).await
    }

    pub async fn stored_value_get(&mut self, member_id: i64) -> Result<StoredValueRow> {
        stored_value_on(&mut *self.tx, member_id).await
    }
}

impl Store {
    /// How often a member used a benefit from `since_us` on.
    pub async fn benefit_uses_since(
        &self,
        member_id: i64,
        benefit: &str,
        since_us: i64,
    ) -> Result<i64> {
        benefit_uses_since_on(&self.read, member_id, benefit, since_us).await
    }

    /// A member's coupons numbered below `before_no`, newest first, at most `limit`.
    pub async fn coupons_of_member(
        &self,
        member_id: i64,
        before_no: i64,
        limit: u32,
    ) -> Result<Vec<CouponRow>> {
        coupons_of_member_on(&self.read, member_id, before_no, limit).await
    }

    /// `Tx::coupons_held` on the read pool.
    pub async fn coupons_held(&self, member_id: i64, recent: u32) -> Result<Vec<CouponRow>> {
        coupons_held_on(&self.read, member_id, recent).await
    }

    pub async fn stored_value_read(&self, member_id: i64) -> Result<StoredValueRow> {
        stored_value_on(&self.read, member_id).await
    }
}
