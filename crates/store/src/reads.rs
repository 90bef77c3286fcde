//! The reads a shop's operator needs beyond a member's own listings: members found by what
//! they are, one order, one event, one programme version.

use crate::points::{OrderRow, ORDER_SELECT};
use crate::{EventRow, MemberRow, ProgrammeVersionRow, Result, Store, EVENT_SELECT};
use sqlx::Row;

/// What a member search asks; every part given must hold.
#[derive(Debug, Clone, Default)]
pub struct MemberSearch<'a> {
    pub status: Option<&'a str>,
    /// Members at this tier. Members at the first tier may have no tier recorded:
    /// `tier_is_first` counts them in.
    pub tier: Option<&'a str>,
    pub tier_is_first: bool,
    /// Members with a subscription to this plan in one of `live_statuses`, or whose access
    /// runs past `now_us`.
    pub plan: Option<&'a str>,
    pub live_statuses: &'a [&'a str],
    pub now_us: i64,
    /// Attributes equal to a JSON scalar, given as its JSON text (`"Beijing"`, `true`, `3`).
    pub attributes: &'a [(&'a str, &'a str)],
}

/// An order as Tessera knows it, and the summary of its commit when it went through
/// `POST /v1/orders`.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderRecord {
    pub order: OrderRow,
    pub external_id: String,
    pub commit_summary: Option<String>,
}

impl Store {
    /// Members matching `search` with an internal id above `after_id`, in id order.
    pub async fn members_search(
        &self,
        search: &MemberSearch<'_>,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<MemberRow>> {
        enum Bind<'b> {
            Text(&'b str),
            Int(i64),
        }
        let mut binds = vec![Bind::Int(after_id)];
        let mut sql = String::from(
            "SELECT m.id, m.external_id, m.status, m.attributes, m.referred_by_code, \
             m.referral_code, m.created_at_us, m.updated_at_us, m.closed_at_us, m.erased_at_us \
             FROM members m WHERE m.id > $1",
        );
        macro_rules! p {
            ($bind:expr) => {{
                binds.push($bind);
                format!("${}", binds.len())
            }};
        }
        if let Some(status) = search.status {
            let p = p!(Bind::Text(status));
            sql.push_str(&format!(" AND m.status = {p}"));
        }
        if let Some(tier) = search.tier {
            let p = p!(Bind::Text(tier));
            sql.push_str(&if search.tier_is_first {
                format!(
                    " AND NOT EXISTS (SELECT 1 FROM member_tiers t WHERE t.member_id = m.id \
                     AND t.tier IS NOT NULL AND t.tier <> {p})"
                )
            } else {
                format!(
                    " AND EXISTS (SELECT 1 FROM member_tiers t WHERE t.member_id = m.id AND t.tier = {p})"
                )
            });
        }
        if let Some(plan) = search.plan {
            let p = p!(Bind::Text(plan));
            let statuses: Vec<String> = search
                .live_statuses
                .iter()
                .map(|s| p!(Bind::Text(s)))
                .collect();
            let now = p!(Bind::Int(search.now_us));
            sql.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM subscriptions s WHERE s.member_id = m.id AND s.plan = {p} \
                 AND (s.status IN ({}) OR (s.cut = 0 AND s.access_end_us > {now})))",
                statuses.join(", ")
            ));
        }
        for (key, json) in search.attributes {
            let k = p!(Bind::Text(key));
            let v = p!(Bind::Text(json));
            // The attribute's JSON text, compared with the value's.
            let extract = if self.backend_name() == "postgres" {
                format!("(CAST(m.attributes AS jsonb) -> {k})::text")
            } else {
                format!("(m.attributes -> ('$.\"' || {k} || '\"'))")
            };
            sql.push_str(&format!(" AND {extract} = {v}"));
        }
        let limit_param = p!(Bind::Int(i64::from(limit)));
        sql.push_str(&format!(" ORDER BY m.id LIMIT {limit_param}"));
        let mut query = sqlx::query(&sql);
        for b in &binds {
            query = match b {
                Bind::Text(t) => query.bind(*t),
                Bind::Int(i) => query.bind(*i),
            };
        }
        let rows = query.fetch_all(&self.read).await?;
        rows.iter().map(MemberRow::from_row).collect()
    }

    /// One order by its id (an order id belongs to one member), with its commit's summary.
    pub async fn order_record(&self, order_id: &str) -> Result<Option<OrderRecord>> {
        let Some(owner) = sqlx::query("SELECT member_id FROM order_owners WHERE order_id = $1")
            .bind(order_id)
            .fetch_optional(&self.read)
            .await?
        else {
            return Ok(None);
        };
        let member_id: i64 = owner.try_get("member_id")?;
        let Some(row) = sqlx::query(&format!(
            "{ORDER_SELECT} WHERE member_id = $1 AND order_id = $2"
        ))
        .bind(member_id)
        .bind(order_id)
        .fetch_optional(&self.read)
        .await?
        else {
            return Ok(None);
        };
        let order = OrderRow::from_row(&row)?;
        let external_id: String = sqlx::query("SELECT external_id FROM members WHERE id = $1")
            .bind(member_id)
            .fetch_one(&self.read)
            .await?
            .try_get("external_id")?;
        let commit_summary =
            sqlx::query("SELECT summary FROM order_commits WHERE member_id = $1 AND order_id = $2")
                .bind(member_id)
                .bind(order_id)
                .fetch_optional(&self.read)
                .await?
                .map(|r| r.try_get("summary"))
                .transpose()?;
        Ok(Some(OrderRecord {
            order,
            external_id,
            commit_summary,
        }))
    }

    /// One stored event by its id.
    pub async fn event_by_id(&self, event_id: &str) -> Result<Option<EventRow>> {
        let row = sqlx::query(&format!("{EVENT_SELECT} WHERE event_id = $1"))
            .bind(event_id)
            .fetch_optional(&self.read)
            .await?;
        row.map(|r| EventRow::from_row(&r)).transpose()
    }

    /// One programme version, with its source.
    pub async fn programme_version(&self, version: i64) -> Result<Option<ProgrammeVersionRow>> {
        let row = sqlx::query(
            "SELECT version, source, sha256, created_at_us FROM programme_versions WHERE version = $1",
        )
        .bind(version)
        .fetch_optional(&self.read)
        .await?;
        row.map(|r| ProgrammeVersionRow::from_row(&r)).transpose()
    }
}
