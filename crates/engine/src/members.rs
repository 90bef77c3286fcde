//! Members: sign-up, look-up, changes, closing.

use crate::answers::ClientRequest;
use crate::clock::{from_us, to_us};
use crate::{Engine, EngineError, Result};
use jiff::Timestamp;
use tessera_domain::coupons::CouponState;
use tessera_domain::{Attributes, ExternalId, ReferralCode};
use tessera_store::{MemberRow, NewMember, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberStatus {
    Active,
    Frozen,
    Closed,
}

impl MemberStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberStatus::Active => "active",
            MemberStatus::Frozen => "frozen",
            MemberStatus::Closed => "closed",
        }
    }

    fn parse(s: &str) -> MemberStatus {
        match s {
            "frozen" => MemberStatus::Frozen,
            "closed" => MemberStatus::Closed,
            _ => MemberStatus::Active,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub id: i64,
    pub external_id: String,
    pub status: MemberStatus,
    pub attributes: serde_json::Value,
    pub referred_by: Option<String>,
    /// The member's own referral code (`None` for members who joined before codes were
    /// given, until `GET /v1/members/{id}/referrals` gives one).
    pub referral_code: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub closed_at: Option<Timestamp>,
    pub erased_at: Option<Timestamp>,
}

impl Member {
    fn from_row(row: MemberRow) -> Member {
        Member {
            id: row.id,
            external_id: row.external_id,
            status: MemberStatus::parse(&row.status),
            attributes: serde_json::from_str(&row.attributes)
                .unwrap_or_else(|_| serde_json::json!({})),
            referred_by: row.referred_by_code,
            referral_code: row.referral_code,
            created_at: from_us(row.created_at_us),
            updated_at: from_us(row.updated_at_us),
            closed_at: row.closed_at_us.map(from_us),
            erased_at: row.erased_at_us.map(from_us),
        }
    }
}

/// What a member search asks; every part given must hold.
#[derive(Debug, Default, Clone)]
pub struct MemberFilter {
    pub status: Option<MemberStatus>,
    pub tier: Option<String>,
    /// A plan the member holds now.
    pub plan: Option<String>,
    /// Attributes equal to a JSON scalar: (key, the value's JSON text).
    pub attributes: Vec<(String, String)>,
}

/// A change to a member: attributes by JSON merge patch, and/or a new status.
#[derive(Debug, Default)]
pub struct MemberPatch {
    pub attributes: Option<serde_json::Value>,
    /// `Active` or `Frozen`; closing has its own use case.
    pub status: Option<MemberStatus>,
}

impl Engine {
    pub async fn create_member(
        &self,
        external_id: &ExternalId,
        attributes: &Attributes,
        referred_by: Option<&ReferralCode>,
    ) -> Result<Member> {
        if external_id.as_str().starts_with(ERASED_PREFIX) {
            return Err(EngineError::Field(tessera_domain::FieldError::invalid(
                "member_id",
                "`erased-` starts the ids of erased members; choose another id",
            )));
        }
        let programme = self.programme().ok();
        let rules = programme
            .as_ref()
            .and_then(|p| p.programme.referral.as_ref());
        // Another member may have drawn the same code (40 random bits): draw again.
        let mut attempts = 0;
        loop {
            match self
                .create_member_once(external_id, attributes, referred_by, rules)
                .await
            {
                Err(EngineError::Store(StoreError::Conflict(on)))
                    if on.contains("referral_code") && attempts < 3 =>
                {
                    attempts += 1;
                }
                Err(EngineError::Store(StoreError::Conflict(_))) => {
                    return Err(EngineError::MemberExists(external_id.to_string()))
                }
                Ok(member) => {
                    if rules.is_some() && referred_by.is_some() {
                        self.settle_referral_after(member.id).await;
                    }
                    return Ok(member);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One try at a sign-up: the member, their own code, and (under a `[referral]`
    /// section) the link to the code they joined with and the rewards it sets off. Without
    /// the section a code is kept as given, and nothing else.
    async fn create_member_once(
        &self,
        external_id: &ExternalId,
        attributes: &Attributes,
        referred_by: Option<&ReferralCode>,
        rules: Option<&tessera_domain::referral::ReferralRules>,
    ) -> Result<Member> {
        let attributes = attributes.to_json_string();
        let own_code = Self::new_referral_code()?;
        let now = self.now();
        let new = NewMember {
            external_id: external_id.as_str(),
            attributes: &attributes,
            referred_by_code: referred_by
                .filter(|_| rules.is_none())
                .map(ReferralCode::as_str),
            referral_code: Some(&own_code),
            now_us: to_us(now),
        };
        let mut tx = self.store.begin().await?;
        let row = match tx.member_insert(&new).await {
            Err(StoreError::Conflict(on)) if !on.contains("referral_code") => {
                return Err(EngineError::MemberExists(external_id.to_string()))
            }
            other => other?,
        };
        let mut member = Member::from_row(row);
        if let (Some(rules), Some(code)) = (rules, referred_by) {
            let link = tx
                .referral_link_for_update(member.id)
                .await?
                .ok_or_else(|| EngineError::MemberNotFound(external_id.to_string()))?;
            self.link_referral(&mut tx, rules, &link, code, false, now)
                .await
                .map_err(|e| match e {
                    EngineError::Field(f) => EngineError::Field(f.within("referral_code")),
                    other => other,
                })?;
            member.referred_by = Some(tessera_domain::referral::normalise_code(code.as_str()));
        }
        tx.commit().await?;
        Ok(member)
    }

    /// Members found by status, tier, plan held and attributes, a page at a time in the
    /// order they joined (`after` is the last internal number of the previous page).
    pub async fn search_members(
        &self,
        filter: &MemberFilter,
        after: Option<i64>,
        limit: u32,
    ) -> Result<(Vec<Member>, Option<i64>)> {
        let programme = self.programme().ok();
        let first_tier = programme
            .as_ref()
            .and_then(|p| p.programme.tiers.as_ref())
            .and_then(|t| t.tiers.first())
            .map(|t| t.name.clone());
        let live = tessera_domain::plans::Status::LIVE.map(tessera_domain::plans::Status::as_str);
        let attributes: Vec<(&str, &str)> = filter
            .attributes
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let search = tessera_store::MemberSearch {
            status: filter.status.map(MemberStatus::as_str),
            tier: filter.tier.as_deref(),
            tier_is_first: filter.tier.is_some() && filter.tier == first_tier,
            plan: filter.plan.as_deref(),
            live_statuses: &live,
            now_us: to_us(self.now()),
            attributes: &attributes,
        };
        let rows = self
            .store
            .members_search(&search, after.unwrap_or(0), limit + 1)
            .await?;
        let (rows, next) = crate::page::page_of(rows, limit, |m| m.id);
        Ok((rows.into_iter().map(Member::from_row).collect(), next))
    }

    pub async fn member(&self, external_id: &ExternalId) -> Result<Member> {
        self.store
            .member_get(external_id.as_str())
            .await?
            .map(Member::from_row)
            .ok_or_else(|| EngineError::MemberNotFound(external_id.to_string()))
    }

    pub async fn patch_member(
        &self,
        external_id: &ExternalId,
        patch: MemberPatch,
    ) -> Result<Member> {
        let mut tx = self.store.begin().await?;
        let mut row = tx
            .member_for_update(external_id.as_str())
            .await?
            .ok_or_else(|| EngineError::MemberNotFound(external_id.to_string()))?;
        if row.status == MemberStatus::Closed.as_str() {
            return Err(EngineError::MemberClosed(external_id.to_string()));
        }
        if let Some(patch) = patch.attributes {
            let current: serde_json::Value =
                serde_json::from_str(&row.attributes).unwrap_or_else(|_| serde_json::json!({}));
            let current = Attributes::parse(current).unwrap_or_default();
            row.attributes = current
                .merge_patch(patch)
                .map_err(|e| e.within("attributes"))?
                .to_json_string();
        }
        if let Some(status) = patch.status {
            row.status = status.as_str().to_owned();
        }
        row.updated_at_us = to_us(self.now());
        tx.member_update(&row).await?;
        tx.commit().await?;
        Ok(Member::from_row(row))
    }

    /// Closes an account, ending what the member holds (stated in `Closing`), in one
    /// transaction under the member's lock. A retry answers as the first close did.
    pub async fn close_member(&self, external_id: &ExternalId) -> Result<(Member, Closing)> {
        // What closing ends (subscriptions, points) is judged by the programme.
        let programme = self.programme()?;
        let request = ClientRequest::new("member_close", "close", &serde_json::json!({}));
        let mut tx = self.store.begin().await?;
        let mut state = self.lock_members(&mut tx, &[external_id]).await?.remove(0);
        let member_id = state.member_id();
        if let Some(first) = request.replay::<Closing>(&mut tx, member_id).await? {
            drop(tx);
            return Ok((self.member(external_id).await?, first));
        }
        let mut row = tx
            .member_for_update(external_id.as_str())
            .await?
            .ok_or_else(|| EngineError::MemberNotFound(external_id.to_string()))?;
        if row.status == MemberStatus::Closed.as_str() {
            // Closed before closes kept their answer: nothing is left to end.
            return Ok((Member::from_row(row), Closing::default()));
        }
        let now = self.now();
        let mut closing = Closing {
            subscriptions: self
                .end_subscriptions_of(&mut tx, &programme, member_id, now)
                .await?,
            ..Closing::default()
        };
        closing.coupons_voided = tx
            .coupons_set_state(
                member_id,
                CouponState::Issued,
                CouponState::Voided,
                to_us(now),
            )
            .await?;
        let balance =
            crate::stored_value::refund_balance(&mut tx, &mut state, now, "member_closed").await?;
        closing.stored_value_owed_minor = balance.principal;
        closing.stored_value_bonus_forfeited_minor = balance.bonus;
        let lots: Vec<_> = tx
            .lots_open(member_id)
            .await?
            .iter()
            .map(crate::points::lot_from_row)
            .collect();
        let mut ledger = state.ledger(lots);
        // What the clock made due first (releases, expiries), as a job would have.
        ledger.apply_due(now);
        (
            closing.points_pending_forfeited,
            closing.points_available_forfeited,
        ) = ledger.forfeit_all(now);
        closing.points_debt = ledger.balances().debt;
        let source = crate::points::EntrySource {
            reason: Some("member closed"),
            ..Default::default()
        };
        crate::points::write_ledger_change(&mut tx, &mut state, &ledger, source, &programme, now)
            .await?;
        row.status = MemberStatus::Closed.as_str().to_owned();
        row.attributes = "{}".to_owned();
        row.updated_at_us = to_us(now);
        row.closed_at_us = Some(to_us(now));
        tx.member_update(&row).await?;
        request.remember(&mut tx, member_id, &closing, now).await?;
        tx.commit().await?;
        self.settle_referral_after(member_id).await;
        tracing::info!(
            member = member_id,
            subscriptions = closing.subscriptions.len(),
            coupons_voided = closing.coupons_voided,
            stored_value_owed_minor = closing.stored_value_owed_minor,
            points_forfeited =
                closing.points_pending_forfeited + closing.points_available_forfeited,
            "member closed"
        );
        Ok((Member::from_row(row), closing))
    }

    /// Erases a closed member's personal data everywhere Tessera keeps it: the external id
    /// becomes `erased-<n>`, attributes and referral code are emptied, every stored event
    /// names the pseudonym instead of the member, and the first answers kept for retries
    /// are dropped. The books (ledger, orders, subscriptions), keyed by the internal id,
    /// stay whole and balanced. Erasing an erased member changes nothing.
    pub async fn erase_member(&self, external_id: &ExternalId) -> Result<Member> {
        let mut tx = self.store.begin().await?;
        let row = tx
            .member_for_update(external_id.as_str())
            .await?
            .ok_or_else(|| EngineError::MemberNotFound(external_id.to_string()))?;
        if row.status != MemberStatus::Closed.as_str() {
            return Err(EngineError::MemberNotClosed(external_id.to_string()));
        }
        if row.erased_at_us.is_some() {
            return Ok(Member::from_row(row));
        }
        let pseudonym = format!("{ERASED_PREFIX}{}", row.id);
        let mut after = 0;
        loop {
            let events = tx.events_of_member(row.id, after, ERASE_PAGE).await?;
            let Some(last) = events.last() else { break };
            after = last.seq;
            for event in &events {
                let mut body: serde_json::Value = serde_json::from_str(&event.body)
                    .map_err(|_| crate::points::corrupt("event body"))?;
                if let Some(member) = body.get_mut("member_id") {
                    *member = serde_json::Value::String(pseudonym.clone());
                }
                tx.event_body_set(event.seq, &body.to_string()).await?;
            }
        }
        // The committed orders' summaries name the member too.
        for (order_id, summary) in tx.commit_summaries_of(row.id).await? {
            let mut summary: serde_json::Value = serde_json::from_str(&summary)
                .map_err(|_| crate::points::corrupt("order summary"))?;
            for key in ["member_id", "member"] {
                if let Some(member) = summary.get_mut(key) {
                    *member = serde_json::Value::String(pseudonym.clone());
                }
            }
            tx.commit_summary_set(row.id, &order_id, &summary.to_string())
                .await?;
        }
        let quoted = serde_json::Value::String(row.external_id.clone()).to_string();
        tx.idempotency_forget(&quoted, &row.external_id).await?;
        let now = to_us(self.now());
        tx.member_erase(row.id, &pseudonym, now).await?;
        tx.commit().await?;
        tracing::info!(member = row.id, "member erased");
        let row = self
            .store
            .member_get(&pseudonym)
            .await?
            .ok_or_else(|| crate::points::corrupt("erased member"))?;
        Ok(Member::from_row(row))
    }
}

/// What an erased member's id starts with; no other member's id may.
const ERASED_PREFIX: &str = "erased-";

/// Events rewritten per statement batch when a member is erased.
const ERASE_PAGE: u32 = 500;

/// What closing a member ended, in the close's answer (and every retry's). The journal
/// holds each movement: the subscriptions' refunds and history, the stored value's
/// `sv_refund` entry, the points' `forfeit` entries.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Closing {
    /// Each subscription the member held that still ran (or had access left): refunded
    /// under its plan's policy, access (partner rights included) ended now.
    pub subscriptions: Vec<crate::subscriptions::EndedSubscription>,
    /// Unused, unexpired coupons, now `voided`.
    pub coupons_voided: u64,
    /// The stored value's principal, owed back to the member.
    pub stored_value_owed_minor: i64,
    /// The stored value's bonus, forfeited.
    pub stored_value_bonus_forfeited_minor: i64,
    pub points_pending_forfeited: i64,
    pub points_available_forfeited: i64,
    /// Points the member still owes (a refund's debt), left on the books.
    pub points_debt: i64,
}
