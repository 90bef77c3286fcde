//! Referral (自来水): each member's code, joining with one, and the rewards of each
//! referral. A trigger (a join, a referee's first paid order, their first paid plan)
//! writes the rewards it sets off as `pending` rows in the transaction of the trigger
//! itself; granting them, and taking back those whose order or plan was refunded, is a
//! step of its own: one transaction per reward, under the beneficiary's lock, run right
//! after the trigger commits and by the clock's jobs (so a crash between the two only
//! delays it). The decisions are the domain's (`tessera_domain::referral`).

use crate::clock::{from_us, to_us};
use crate::points::{credit_points_in, take_points_in, EntrySource, MemberState};
use crate::stored_value::{sv_entry, write_sv, BONUS};
use crate::{ActiveProgramme, Engine, EngineError, Result};
use jiff::Timestamp;
use tessera_domain::referral::{
    self, Attempt, Beneficiary, ReferralRules, Referrer, RewardKind, RewardState, Trigger,
};
use tessera_domain::{ExternalId, ReferralCode};
use tessera_store::{ReferralFigures, ReferralLinkRow, ReferralRewardRow, Tx};

/// Rewards one run of the clock's jobs settles at most; the rest wait for the next run.
const SETTLE_BATCH_MAX: u32 = 500;
const BONUS_GRANTED: &str = "shop:sv_bonus_granted";

/// One reward of a referral, as answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewardView {
    pub reward_id: String,
    pub trigger: String,
    /// `referrer` or `referee`.
    pub to: &'static str,
    pub kind: String,
    pub amount: i64,
    /// The coupon template or the plan it gives.
    pub item: Option<String>,
    pub state: RewardState,
    pub source_ref: Option<String>,
    pub due_at: Timestamp,
    pub settled_at: Option<Timestamp>,
    pub clawed_back: i64,
}

/// A member this member brought, with the rewards of that referral.
#[derive(Debug, Clone)]
pub struct Referee {
    pub member_id: String,
    pub referred_at: Option<Timestamp>,
    pub rewards: Vec<RewardView>,
}

/// A member's referrals: their code, who brought them, whom they brought.
#[derive(Debug, Clone)]
pub struct Referrals {
    pub member_id: String,
    /// `None` for a closed member who had none.
    pub code: Option<String>,
    /// Who brought this member, and when.
    pub referred_by: Option<(String, Timestamp)>,
    /// The rewards of this member's own referral (to either side).
    pub own_rewards: Vec<RewardView>,
    pub referred: Vec<Referee>,
    /// The internal number the next page of `referred` starts after.
    pub next_after: Option<i64>,
}

impl Engine {
    /// A fresh code: 40 random bits in Crockford's base 32.
    pub(crate) fn new_referral_code() -> Result<String> {
        let mut bytes = [0u8; referral::CODE_LEN];
        getrandom::fill(&mut bytes)
            .map_err(|e| internal(format!("no randomness for a referral code: {e}")))?;
        Ok(referral::code_from_random(&bytes))
    }

    /// Gives a member their own code, if they have none yet, inside the caller's
    /// transaction. A code another member holds already is a `Conflict` (40 random bits:
    /// the caller's next try draws another).
    pub(crate) async fn ensure_referral_code(&self, tx: &mut Tx, member_id: i64) -> Result<()> {
        let code = Self::new_referral_code()?;
        tx.referral_code_set(member_id, &code).await?;
        Ok(())
    }

    /// Links a member to the owner of `code` inside the caller's transaction, after the
    /// domain's refusals, and writes the rewards a join sets off. `existing`: the member
    /// was created before (a code given later), so the late window applies.
    pub(crate) async fn link_referral(
        &self,
        tx: &mut Tx,
        rules: &ReferralRules,
        referee: &ReferralLinkRow,
        code: &ReferralCode,
        existing: bool,
        now: Timestamp,
    ) -> Result<()> {
        let code = referral::normalise_code(code.as_str());
        let owner = tx
            .referral_owner_for_update(&code)
            .await?
            .ok_or_else(|| EngineError::ReferralCodeUnknown(code.clone()))?;
        let referred_so_far = tx.referees_count(owner.member_id).await?;
        let owner_attributes = attributes_of(&owner)?;
        let referee_attributes = attributes_of(referee)?;
        let attempt = Attempt {
            referrer: Referrer {
                id: owner.member_id,
                attributes: &owner_attributes,
                joined_at: from_us(owner.created_at_us),
                active: owner.status == "active",
                referred_so_far,
            },
            referee_id: Some(referee.member_id).filter(|_| existing),
            referee_attributes: &referee_attributes,
            referee_joined_at: Some(from_us(referee.created_at_us)).filter(|_| existing),
            already_referred: referee.referrer_id.is_some(),
            now,
        };
        if let Some(refusal) = rules.refusal(&attempt) {
            return Err(EngineError::ReferralRefused(refusal));
        }
        tx.referrer_set(referee.member_id, owner.member_id, &code, to_us(now))
            .await?;
        let rows = reward_rows(
            rules,
            Trigger::Join,
            (referee.member_id, owner.member_id),
            None,
            now,
            now,
        );
        tx.referral_rewards_insert(&rows).await?;
        Ok(())
    }

    /// A referrer's code given by a member who exists already: taken only within the
    /// programme's `late_days` of joining, and never a second time.
    pub async fn attach_referrer(
        &self,
        member: &ExternalId,
        code: &ReferralCode,
    ) -> Result<Referrals> {
        let programme = self.programme()?;
        let rules = programme
            .programme
            .referral
            .as_ref()
            .ok_or(EngineError::ReferralDisabled)?;
        let now = self.now();
        // The member and the code's owner are locked together, in member-id order (every
        // writer's order); the owner is found first without a lock and found again under it.
        let normalised = referral::normalise_code(code.as_str());
        let owner = self
            .store
            .referral_owner_of(&normalised)
            .await?
            .ok_or_else(|| EngineError::ReferralCodeUnknown(normalised.clone()))?;
        let owner_id = ExternalId::parse(owner.external_id)
            .map_err(|e| internal(format!("a stored member id: {e}")))?;
        let mut tx = self.store.begin().await?;
        let states = self.lock_members(&mut tx, &[member, &owner_id]).await?;
        Self::refuse_closed(&states[..1])?;
        let link = tx
            .referral_link_for_update(states[0].member_id())
            .await?
            .ok_or_else(|| EngineError::MemberNotFound(member.to_string()))?;
        // The same code again (a retry) answers as the first time.
        if link.referrer_id.is_none() || link.referrer_id != Some(owner.member_id) {
            self.link_referral(&mut tx, rules, &link, code, true, now)
                .await?;
            tx.commit().await?;
            self.settle_referral_after(link.member_id).await;
        }
        self.referrals(member, None, tessera_domain::limits::PAGE_SIZE_DEFAULT)
            .await
    }

    /// Writes the rewards a referee's paid order sets off (their first, for each
    /// `first_order` reward), inside intake's transaction; `paid` is (member, order id,
    /// instant) of orders paid and not refunded in full. An order that occurred before
    /// the member was referred sets nothing off.
    pub(crate) async fn referral_on_paid_orders(
        &self,
        tx: &mut Tx,
        programme: &ActiveProgramme,
        paid: &[(i64, String, Timestamp)],
    ) -> Result<()> {
        let Some(rules) = programme.programme.referral.as_ref() else {
            return Ok(());
        };
        if rules.rewards_on(Trigger::FirstOrder).next().is_none() || paid.is_empty() {
            return Ok(());
        }
        let mut members: Vec<i64> = paid.iter().map(|p| p.0).collect();
        members.sort_unstable();
        members.dedup();
        let now = self.now();
        for (referee, referrer, referred_at_us) in tx.referrers_of(&members).await? {
            let referred_at = from_us(referred_at_us.unwrap_or(i64::MIN));
            for (_, order_id, at) in paid.iter().filter(|p| p.0 == referee && p.2 >= referred_at) {
                self.referral_triggered(
                    tx,
                    rules,
                    Trigger::FirstOrder,
                    (referee, referrer),
                    order_id,
                    *at,
                    now,
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Orders refunded in full: the rewards they set off are canceled or marked to be
    /// taken back, whatever the running programme says (the rows say what was given).
    pub(crate) async fn referral_on_refunded_orders(
        &self,
        tx: &mut Tx,
        fully_refunded: &[(i64, String)],
    ) -> Result<()> {
        if fully_refunded.is_empty() {
            return Ok(());
        }
        let mut members: Vec<i64> = fully_refunded.iter().map(|r| r.0).collect();
        members.sort_unstable();
        members.dedup();
        for (referee, _, _) in tx.referrers_of(&members).await? {
            for (_, order_id) in fully_refunded.iter().filter(|r| r.0 == referee) {
                referral_source_refunded(tx, referee, order_id).await?;
            }
        }
        Ok(())
    }

    /// A referee's first paid term of a plan: writes the `first_plan` rewards, inside the
    /// purchase's transaction.
    pub(crate) async fn referral_on_plan(
        &self,
        tx: &mut Tx,
        programme: &ActiveProgramme,
        member_id: i64,
        plan: &str,
        subscription_id: i64,
        now: Timestamp,
    ) -> Result<()> {
        let Some(rules) = programme.programme.referral.as_ref() else {
            return Ok(());
        };
        let counts =
            |r: &&referral::Reward| r.plans.is_empty() || r.plans.iter().any(|p| p == plan);
        if !rules.rewards_on(Trigger::FirstPlan).any(|r| counts(&r)) {
            return Ok(());
        }
        let Some((referee, referrer, _)) = tx.referrers_of(&[member_id]).await?.pop() else {
            return Ok(());
        };
        let existing = tx.referral_rewards_of_referee(referee).await?;
        let rows: Vec<ReferralRewardRow> = reward_rows(
            rules,
            Trigger::FirstPlan,
            (referee, referrer),
            Some(&subscription_id.to_string()),
            now,
            now,
        )
        .into_iter()
        .filter(|row| rules.reward(&row.reward_id).is_some_and(|r| counts(&r)))
        .filter(|row| !existing.iter().any(|e| e.reward_id == row.reward_id))
        .collect();
        tx.referral_rewards_insert(&rows).await?;
        Ok(())
    }

    /// A subscription refunded: the rewards it set off are canceled or taken back.
    pub(crate) async fn referral_on_plan_refund(
        &self,
        tx: &mut Tx,
        member_id: i64,
        subscription_id: i64,
    ) -> Result<()> {
        referral_source_refunded(tx, member_id, &subscription_id.to_string()).await
    }

    /// Writes a trigger's rewards for one referral; a reward a refund canceled before it
    /// was due is set off again by the next trigger of its kind.
    #[allow(clippy::too_many_arguments)]
    async fn referral_triggered(
        &self,
        tx: &mut Tx,
        rules: &ReferralRules,
        trigger: Trigger,
        pair: (i64, i64),
        source_ref: &str,
        at: Timestamp,
        now: Timestamp,
    ) -> Result<()> {
        let existing = tx.referral_rewards_of_referee(pair.0).await?;
        let mut new = Vec::new();
        for row in reward_rows(rules, trigger, pair, Some(source_ref), at, now) {
            match existing.iter().find(|e| e.reward_id == row.reward_id) {
                None => new.push(row),
                Some(e) if RewardState::parse(&e.state) == Some(RewardState::Canceled) => {
                    tx.referral_reward_update(&ReferralRewardRow {
                        state: RewardState::Pending.as_str().to_owned(),
                        settled_at_us: None,
                        ..row
                    })
                    .await?;
                }
                Some(_) => {}
            }
        }
        tx.referral_rewards_insert(&new)
            .await
            .map_err(EngineError::from)
    }

    /// Settles every reward with work to do (the clock's job); how many moved. Rewards
    /// settle by what their rows say, so they do even after the `[referral]` section is
    /// gone. One that fails is logged and left for the next run; the others go on.
    pub(crate) async fn run_referral_rewards(&self, to: Timestamp) -> Result<u64> {
        let due = self
            .store
            .referral_rewards_due(to_us(to), SETTLE_BATCH_MAX)
            .await?;
        let mut moved = 0;
        for (referee, reward_id) in due {
            match self.settle_reward(referee, &reward_id, to).await {
                Ok(true) => moved += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(referee, reward_id, error = %e, "referral reward not settled; retried at the next run");
                }
            }
        }
        Ok(moved)
    }

    /// After a write that may have set off or refunded a referral's rewards: settles
    /// what is due of them now. The write has committed, so a failure here is logged,
    /// not answered: the clock's jobs settle the rewards a moment later.
    pub(crate) async fn settle_referral_after(&self, member_id: i64) {
        if let Err(e) = self.settle_referral_rewards_of(member_id).await {
            tracing::warn!(member_id, error = %e, "referral rewards left for the clock's jobs");
        }
    }

    /// Settles what is due of one referee's rewards now (right after a trigger).
    pub(crate) async fn settle_referral_rewards_of(&self, referee_id: i64) -> Result<()> {
        let now = self.now();
        let rows = self.store.referral_rewards_of(&[referee_id]).await?;
        for row in rows {
            let state = RewardState::parse(&row.state).ok_or_else(|| corrupt_state(&row))?;
            if state.is_due(from_us(row.due_at_us), now) {
                if let Err(e) = self.settle_reward(referee_id, &row.reward_id, now).await {
                    tracing::warn!(referee_id, reward_id = row.reward_id, error = %e, "referral reward not settled; left for the clock's jobs");
                }
            }
        }
        Ok(())
    }

    /// Grants, caps, cancels or takes back one reward, in one transaction under the
    /// beneficiary's lock; whether it moved (another process may have settled it).
    async fn settle_reward(
        &self,
        referee_id: i64,
        reward_id: &str,
        now: Timestamp,
    ) -> Result<bool> {
        let programme = self.programme()?;
        let Some(peek) = self
            .store
            .referral_rewards_of(&[referee_id])
            .await?
            .into_iter()
            .find(|r| r.reward_id == reward_id)
        else {
            return Ok(false);
        };
        let Some(beneficiary) = self.store.referral_link_by_id(peek.beneficiary_id).await? else {
            return Ok(false);
        };
        let beneficiary = ExternalId::parse(beneficiary.external_id)
            .map_err(|e| internal(format!("a stored member id: {e}")))?;
        let mut tx = self.store.begin().await?;
        let mut member = self.lock_members(&mut tx, &[&beneficiary]).await?.remove(0);
        let Some(mut row) = tx
            .referral_rewards_of_referee(referee_id)
            .await?
            .into_iter()
            .find(|r| r.reward_id == reward_id)
        else {
            return Ok(false);
        };
        let state = RewardState::parse(&row.state).ok_or_else(|| corrupt_state(&row))?;
        if !state.is_due(from_us(row.due_at_us), now) || member.member_id() != row.beneficiary_id {
            return Ok(false);
        }
        let next = match state {
            RewardState::ClawbackDue => {
                let kind = reward_kind(&row)?;
                let taken = self
                    .take_back(&mut tx, &programme, &mut member, &row, &kind, now)
                    .await?;
                row.clawed_back += taken;
                row.clawed_at_us = Some(to_us(now));
                let (next, retry) =
                    RewardState::after_clawback(&kind, row.amount, row.clawed_back, now);
                if let Some(retry) = retry {
                    row.due_at_us = to_us(retry);
                }
                next
            }
            _ if member.row.status == "closed" => RewardState::Canceled,
            _ => {
                self.grant_pending(&mut tx, &programme, &mut member, &mut row, now)
                    .await?
            }
        };
        // Settled when it leaves `pending`: the instant the cap counts a grant at.
        if state == RewardState::Pending {
            row.settled_at_us = Some(to_us(now));
        }
        row.state = next.as_str().to_owned();
        tx.referral_reward_update(&row).await?;
        tx.commit().await?;
        metrics::counter!("tessera_referral_rewards_total", "state" => next.as_str()).increment(1);
        Ok(true)
    }

    /// A pending reward due now: capped when it goes to a referrer who reached the running
    /// programme's cap in its period, else given (or canceled when the programme can no
    /// longer give its kind).
    async fn grant_pending(
        &self,
        tx: &mut Tx,
        programme: &ActiveProgramme,
        member: &mut MemberState,
        row: &mut ReferralRewardRow,
        now: Timestamp,
    ) -> Result<RewardState> {
        let rules = programme.programme.referral.as_ref();
        let decided = match rules.and_then(|r| r.cap.map(|cap| (r, cap))) {
            Some((rules, cap)) if row.beneficiary_id == row.referrer_id => {
                let since = cap.period_start(now, &programme.programme.timezone);
                let given = RewardState::GIVEN.map(RewardState::as_str);
                let so_far = tx
                    .referrer_rewards_settled_since(row.referrer_id, &given, since.map(to_us))
                    .await?;
                rules.grant(Beneficiary::Referrer, so_far)
            }
            _ => RewardState::Granted,
        };
        if decided != RewardState::Granted {
            return Ok(decided);
        }
        Ok(match self.give(tx, programme, member, row, now).await? {
            Some(granted_ref) => {
                row.granted_ref = Some(granted_ref);
                RewardState::Granted
            }
            None => RewardState::Canceled,
        })
    }

    /// Gives a reward; the journal entry, coupon number or subscription that gave it, or
    /// `None` when the programme can no longer give its kind (its section, template or
    /// plan is gone, or the stored value is at its largest).
    async fn give(
        &self,
        tx: &mut Tx,
        programme: &ActiveProgramme,
        member: &mut MemberState,
        row: &ReferralRewardRow,
        now: Timestamp,
    ) -> Result<Option<i64>> {
        let reference = reward_reference(row);
        let reason = format!("referral reward {}", row.reward_id);
        match reward_kind(row)? {
            RewardKind::Points(points) => {
                if programme.programme.points.is_none() {
                    return Ok(None);
                }
                let source = EntrySource {
                    reference: Some(&reference),
                    reason: Some(&reason),
                    ..Default::default()
                };
                let entry = credit_points_in(tx, member, programme, points, source, now).await?;
                Ok(Some(entry))
            }
            RewardKind::Coupon(template) => {
                let Some(t) = programme.programme.coupon(&template) else {
                    return Ok(None);
                };
                let coupon = crate::quote::coupon_to_issue(
                    member.member_id(),
                    t,
                    "referral",
                    reference,
                    now,
                    &programme.programme.timezone,
                );
                let issued = tx.coupons_issue(&[coupon]).await?;
                Ok(issued.first().map(|c| c.coupon_no))
            }
            RewardKind::PlanDays { plan, days } => {
                self.give_plan_days(
                    tx,
                    programme,
                    member.member_id(),
                    (&plan, days),
                    &reference,
                    now,
                )
                .await
            }
            RewardKind::StoredValue(amount) => {
                if programme.programme.stored_value.is_none() {
                    return Ok(None);
                }
                give_stored_value(tx, member, amount, &reference, now).await
            }
        }
    }

    /// Takes back a reward given for an order or plan since refunded, as far as the
    /// member still holds it: points up to the available balance, an unused coupon,
    /// stored-value bonus up to the bonus balance. What was taken back.
    async fn take_back(
        &self,
        tx: &mut Tx,
        programme: &ActiveProgramme,
        member: &mut MemberState,
        row: &ReferralRewardRow,
        kind: &RewardKind,
        now: Timestamp,
    ) -> Result<i64> {
        let reference = reward_reference(row);
        let reason = format!(
            "referral reward {} taken back: its {} was refunded",
            row.reward_id,
            row.trigger.trim_start_matches("first_")
        );
        let owed = (row.amount - row.clawed_back).max(0);
        match kind {
            RewardKind::Points(_) => {
                let source = EntrySource {
                    reference: Some(&reference),
                    reason: Some(&reason),
                    ..Default::default()
                };
                Ok(take_points_in(tx, member, programme, owed, source, now)
                    .await?
                    .0)
            }
            RewardKind::Coupon(_) => match row.granted_ref {
                Some(no) => Ok(i64::from(tx.coupon_void(member.member_id(), no).await?)),
                None => Ok(0),
            },
            RewardKind::PlanDays { .. } => match row.granted_ref {
                Some(subscription) => {
                    self.take_plan_days(tx, programme, subscription, &reference, now)
                        .await
                }
                None => Ok(0),
            },
            RewardKind::StoredValue(_) => {
                let mut balance = tx.stored_value_get(member.member_id()).await?;
                let take = owed.min(balance.bonus).max(0);
                if take > 0 {
                    balance.bonus -= take;
                    let entry = sv_entry(
                        member,
                        "sv_referral_clawback",
                        now,
                        Some(&reference),
                        &[(BONUS, -take), (BONUS_GRANTED, take)],
                    );
                    write_sv(tx, member, balance, &[entry]).await?;
                }
                Ok(take)
            }
        }
    }

    /// A member's referrals: their code (given now if they had none), who brought them,
    /// and a page of the members they brought with each referral's rewards.
    pub async fn referrals(
        &self,
        member: &ExternalId,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Referrals> {
        let mut link = self
            .store
            .referral_link_of(member.as_str())
            .await?
            .ok_or_else(|| EngineError::MemberNotFound(member.to_string()))?;
        // A closed (or erased) member brings nobody: no code is given them.
        if link.referral_code.is_none() && link.status != "closed" {
            let mut tx = self.store.begin().await?;
            self.ensure_referral_code(&mut tx, link.member_id).await?;
            tx.commit().await?;
            link = self
                .store
                .referral_link_of(member.as_str())
                .await?
                .ok_or_else(|| EngineError::MemberNotFound(member.to_string()))?;
        }
        let referred_by = match link.referrer_id {
            Some(id) => self.store.referral_link_by_id(id).await?.map(|r| {
                (
                    r.external_id,
                    from_us(link.referred_at_us.unwrap_or(link.created_at_us)),
                )
            }),
            None => None,
        };
        let (page, next_after) = crate::page::page_of(
            self.store
                .referees_page(link.member_id, after.unwrap_or(0), limit + 1)
                .await?,
            limit,
            |r| r.member_id,
        );
        let mut ids: Vec<i64> = page.iter().map(|r| r.member_id).collect();
        ids.push(link.member_id);
        let rewards = self.store.referral_rewards_of(&ids).await?;
        let views_of = |referee: i64| -> Result<Vec<RewardView>> {
            rewards
                .iter()
                .filter(|r| r.referee_id == referee)
                .map(reward_view)
                .collect()
        };
        let referred = page
            .iter()
            .map(|r| {
                Ok(Referee {
                    member_id: r.external_id.clone(),
                    referred_at: r.referred_at_us.map(from_us),
                    rewards: views_of(r.member_id)?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Referrals {
            member_id: link.external_id,
            code: link.referral_code,
            referred_by,
            own_rewards: views_of(link.member_id)?,
            referred,
            next_after,
        })
    }

    /// Referral as a whole, for the KPIs.
    pub async fn referral_figures(&self) -> Result<ReferralFigures> {
        Ok(self.store.referral_figures().await?)
    }
}

/// Credits stored-value bonus; the entry, or `None` when the balance is at the largest
/// stored value (nothing is given).
async fn give_stored_value(
    tx: &mut Tx,
    member: &mut MemberState,
    amount: i64,
    reference: &str,
    now: Timestamp,
) -> Result<Option<i64>> {
    let mut balance = tx.stored_value_get(member.member_id()).await?;
    let Some(bonus) = balance.bonus.checked_add(amount).filter(|b| {
        b.saturating_add(balance.principal) <= tessera_domain::limits::STORED_VALUE_MAX_MINOR
    }) else {
        return Ok(None);
    };
    balance.bonus = bonus;
    let entry = sv_entry(
        member,
        "sv_referral",
        now,
        Some(reference),
        &[(BONUS, amount), (BONUS_GRANTED, -amount)],
    );
    let no = entry.entry_no;
    write_sv(tx, member, balance, &[entry]).await?;
    Ok(Some(no))
}

/// The rewards a trigger sets off for one referral, as pending rows.
fn reward_rows(
    rules: &ReferralRules,
    trigger: Trigger,
    (referee, referrer): (i64, i64),
    source_ref: Option<&str>,
    at: Timestamp,
    now: Timestamp,
) -> Vec<ReferralRewardRow> {
    rules
        .rewards_on(trigger)
        .map(|r| ReferralRewardRow {
            referee_id: referee,
            reward_id: r.id.clone(),
            referrer_id: referrer,
            beneficiary_id: match r.to {
                Beneficiary::Referrer => referrer,
                Beneficiary::Referee => referee,
            },
            trigger: trigger.as_str().to_owned(),
            kind: r.kind.name().to_owned(),
            amount: r.kind.amount(),
            item: r.kind.item().map(str::to_owned),
            state: RewardState::Pending.as_str().to_owned(),
            source_ref: source_ref.map(str::to_owned),
            due_at_us: to_us(referral::due_at(at, r.wait_days)),
            created_at_us: to_us(now),
            settled_at_us: None,
            granted_ref: None,
            clawed_back: 0,
            clawed_at_us: None,
        })
        .collect()
}

/// The order or subscription `source_ref` was refunded: each reward it set off for this
/// referee is canceled (not given yet) or marked to be taken back.
async fn referral_source_refunded(tx: &mut Tx, referee: i64, source_ref: &str) -> Result<()> {
    for mut row in tx.referral_rewards_of_referee(referee).await? {
        if row.source_ref.as_deref() != Some(source_ref) {
            continue;
        }
        let state = RewardState::parse(&row.state).ok_or_else(|| corrupt_state(&row))?;
        let next = state.on_refund();
        if next != state {
            row.state = next.as_str().to_owned();
            tx.referral_reward_update(&row).await?;
        }
    }
    Ok(())
}

/// What the journal and the coupon record name a reward by.
fn reward_reference(row: &ReferralRewardRow) -> String {
    format!("referral:{}:{}", row.referee_id, row.reward_id)
}

fn reward_view(row: &ReferralRewardRow) -> Result<RewardView> {
    Ok(RewardView {
        reward_id: row.reward_id.clone(),
        trigger: row.trigger.clone(),
        to: if row.beneficiary_id == row.referrer_id {
            Beneficiary::Referrer.as_str()
        } else {
            Beneficiary::Referee.as_str()
        },
        kind: row.kind.clone(),
        amount: row.amount,
        item: row.item.clone(),
        state: RewardState::parse(&row.state).ok_or_else(|| corrupt_state(row))?,
        source_ref: row.source_ref.clone(),
        due_at: from_us(row.due_at_us),
        settled_at: row.settled_at_us.map(from_us),
        clawed_back: row.clawed_back,
    })
}

/// A member's stored attributes; a row that is not a JSON object is an error, not `{}`
/// (which would pass every identity check).
fn attributes_of(link: &ReferralLinkRow) -> Result<serde_json::Map<String, serde_json::Value>> {
    serde_json::from_str(&link.attributes).map_err(|e| {
        internal(format!(
            "member {} has stored attributes that are not a JSON object: {e}",
            link.member_id
        ))
    })
}

fn internal(message: String) -> EngineError {
    EngineError::Store(tessera_store::StoreError::Database(message))
}

fn reward_kind(row: &ReferralRewardRow) -> Result<RewardKind> {
    RewardKind::from_parts(&row.kind, row.amount, row.item.as_deref())
        .ok_or_else(|| corrupt_state(row))
}

fn corrupt_state(row: &ReferralRewardRow) -> EngineError {
    internal(format!(
        "referral reward {}/{} has state `{}` and kind `{}`, which this version cannot read",
        row.referee_id, row.reward_id, row.state, row.kind
    ))
}
