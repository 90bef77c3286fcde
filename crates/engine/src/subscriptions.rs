//! The paid track's use cases: purchases and trials, payments that renew, cancels and
//! refunds, the entitlement question, partner checks and redemptions, code pools, and the
//! time-driven moves of subscriptions (renewals due, trial ends, grace, expiry).
//!
//! Every write locks the member who holds the subscription (a gift locks the buyer too,
//! both in member-id order), reads the subscription, first applies what the clock made
//! due, then applies the request: so a request never acts on a stale status.

use crate::answers::ClientRequest;
use crate::clock::{from_us, to_us};
use crate::points::MemberState;
use crate::{sha256_hex, ActiveProgramme, Engine, EngineError, Result};
use jiff::Timestamp;
use tessera_domain::offers::OfferKind;
use tessera_domain::plans::{
    refund_calculation, Change, Plan, RefundCalculation, Status, SubscriptionState, Term, TermKind,
};
use tessera_domain::ExternalId;
use tessera_store::{
    AssignedCodeRow, BenefitUseRow, PoolCounts, RenewalRow, StoreError, SubscriptionHistoryRow,
    SubscriptionRecord, SubscriptionRow, TermRow, Tx,
};

/// The kind under which a payment's first answer is kept, by its reference.
const PAYMENT_ANSWER: &str = "subscription_payment";

/// How a purchase is paid for.
#[derive(Debug, Clone)]
pub enum Purchase {
    /// Confirmed by the shop's payment; `amount_minor`, when given, must be the price.
    Paid {
        payment_ref: ExternalId,
        amount_minor: Option<i64>,
    },
    Trial,
}

#[derive(Debug, Clone)]
pub struct SubscribeRequest {
    /// The member who buys (and holds it, unless it is a gift).
    pub member: ExternalId,
    pub plan: String,
    pub purchase: Purchase,
    pub gift_to: Option<ExternalId>,
    /// Defaults to the plan's `auto_renew`; `true` is refused by a plan that does not renew.
    pub auto_renew: Option<bool>,
    /// A conversion offer the purchase takes: its trial, or its first-term price.
    pub offer: Option<String>,
}

/// A subscription with everything a view shows. A payment's view is also its first
/// answer, kept with the payment and replayed to every retry of its reference.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SubscriptionView {
    pub row: SubscriptionRow,
    pub holder: String,
    pub buyer: String,
    pub plan_name: Option<String>,
    pub terms: Vec<TermRow>,
    pub codes: Vec<AssignedCodeRow>,
    pub history: Vec<SubscriptionHistoryRow>,
    pub renewals: Vec<RenewalRow>,
    pub access_now: bool,
    /// Whether this answer replays an earlier one with the same payment reference.
    pub replayed: bool,
}

/// A plan as one member may buy it now.
#[derive(Debug, Clone)]
pub struct PlanOffer {
    pub plan: String,
    pub name: String,
    pub term: String,
    pub list_price_minor: i64,
    pub price_minor: i64,
    pub price_basis: String,
    pub trial_days: Option<i64>,
    pub trial_available: bool,
    pub held: bool,
    pub auto_renew: bool,
}

/// A plan a member holds at an instant, and the rights it carries.
#[derive(Debug, Clone)]
pub struct Entitlement {
    pub subscription_id: i64,
    pub plan: String,
    pub status: String,
    pub until: Timestamp,
    pub rights: Vec<(String, String)>,
}

/// A partner benefit used, as recorded.
#[derive(Debug, Clone)]
pub struct PartnerRedemption {
    pub id: String,
    pub member: String,
    pub right: String,
    pub subscription_id: i64,
    pub cost_minor: i64,
    pub at: Timestamp,
    pub uses_left: Option<i64>,
    pub replayed: bool,
}

pub(crate) fn state_of(row: &SubscriptionRow) -> SubscriptionState {
    SubscriptionState {
        status: Status::parse(&row.status).unwrap_or(Status::Expired),
        auto_renew: row.auto_renew,
        cancel_at_period_end: row.cancel_at_period_end,
        access_end: from_us(row.access_end_us),
        cut: row.cut,
        grace_until: row.grace_until_us.map(from_us),
        renewal_noticed_for: row.renewal_noticed_for_us.map(from_us),
    }
}

fn put_state(row: &mut SubscriptionRow, s: &SubscriptionState) {
    row.status = s.status.as_str().to_owned();
    row.auto_renew = s.auto_renew;
    row.cancel_at_period_end = s.cancel_at_period_end;
    row.access_end_us = to_us(s.access_end);
    row.cut = s.cut;
    row.grace_until_us = s.grace_until.map(to_us);
    row.renewal_noticed_for_us = s.renewal_noticed_for.map(to_us);
}

pub(crate) fn term_of(r: &TermRow) -> Term {
    Term {
        no: r.term_no,
        kind: match r.kind.as_str() {
            "trial" => TermKind::Trial,
            "reward" => TermKind::Reward,
            _ => TermKind::Paid,
        },
        start: from_us(r.start_us),
        end: from_us(r.end_us),
        amount_minor: r.amount_minor,
        paid_at: from_us(r.paid_at_us),
        refunded_minor: r.refunded_minor,
    }
}

/// One subscription loaded for a write, with the history it gains.
struct Loaded {
    row: SubscriptionRow,
    state: SubscriptionState,
    terms: Vec<TermRow>,
    history: Vec<SubscriptionHistoryRow>,
}

impl Loaded {
    fn domain_terms(&self) -> Vec<Term> {
        self.terms.iter().map(term_of).collect()
    }

    /// The next term of the holder that nobody pays for (a trial, days given as a reward):
    /// `[start, end)`, its price basis, recorded `now`; takes the next term number.
    fn unpaid_term(
        &mut self,
        kind: &str,
        (start, end): (Timestamp, Timestamp),
        basis: &str,
        now: Timestamp,
    ) -> TermRow {
        let term_no = self.row.next_term_no;
        self.row.next_term_no += 1;
        TermRow {
            subscription_id: self.row.id,
            term_no,
            member_id: self.row.member_id,
            kind: kind.to_owned(),
            start_us: to_us(start),
            end_us: to_us(end),
            amount_minor: 0,
            price_basis: basis.to_owned(),
            paid_at_us: to_us(now),
            refunded_minor: 0,
            payment_ref: None,
            request_sha256: None,
        }
    }

    fn record(&mut self, at: Timestamp, kind: &str, cause: &str, change: Option<(Status, Status)>) {
        let no = self.row.next_history_no;
        self.row.next_history_no += 1;
        self.history.push(SubscriptionHistoryRow {
            subscription_id: self.row.id,
            history_no: no,
            member_id: self.row.member_id,
            at_us: to_us(at),
            kind: kind.to_owned(),
            from_status: change.map(|(f, _)| f.as_str().to_owned()),
            to_status: change.map(|(_, t)| t.as_str().to_owned()),
            cause: cause.to_owned(),
            payment_ref: None,
            amount_minor: None,
        });
    }

    fn record_change(&mut self, change: &Change) {
        if let Change::Status {
            at,
            from,
            to,
            cause,
        } = change
        {
            self.record(*at, "status", cause, Some((*from, *to)));
        }
    }
}

fn plan_of<'p>(programme: &'p ActiveProgramme, id: &str) -> Result<&'p Plan> {
    programme
        .programme
        .plan(id)
        .ok_or_else(|| EngineError::UnknownPlan(id.to_owned()))
}

/// A subscription ended by its holder's account closing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EndedSubscription {
    pub id: i64,
    pub plan: String,
    /// Its status before the close (`trialing`, `active`, `grace` or `canceled`).
    pub status_before: String,
    /// What the plan's refund policy gives back, for the shop to pay.
    pub refund_minor: i64,
}

impl Engine {
    /// Locks members in member-id order (every writer's order) and returns their states.
    pub(crate) async fn lock_members(
        &self,
        tx: &mut Tx,
        ids: &[&ExternalId],
    ) -> Result<Vec<MemberState>> {
        let keys: Vec<&str> = ids.iter().map(|i| i.as_str()).collect();
        let rows = tx.members_with_accounts_for_update(&keys).await?;
        let mut out = Vec::new();
        for id in ids {
            let row = rows
                .iter()
                .find(|r| r.external_id == id.as_str())
                .cloned()
                .ok_or_else(|| EngineError::MemberNotFound(id.to_string()))?;
            out.push(MemberState::new(row));
        }
        Ok(out)
    }

    /// Refuses a request of closed members. Called after a retry was looked up: a retry
    /// answers as the first time, even if the member was closed since.
    pub(crate) fn refuse_closed(members: &[MemberState]) -> Result<()> {
        match members.iter().find(|m| m.row.status == "closed") {
            Some(m) => Err(EngineError::MemberClosed(m.row.external_id.clone())),
            None => Ok(()),
        }
    }

    /// The member as price rules and trial conditions see it (with tier and score).
    async fn member_value(
        &self,
        tx: &mut Tx,
        programme: &ActiveProgramme,
        state: &mut MemberState,
        now: Timestamp,
    ) -> Result<serde_json::Value> {
        (state.tier, state.score) =
            crate::tiers::member_now(tx, programme, state.member_id(), now).await?;
        Ok(state.value())
    }

    /// Loads a subscription under its holder's lock and applies what is due at `now`.
    async fn load_subscription(
        &self,
        tx: &mut Tx,
        programme: &ActiveProgramme,
        row: SubscriptionRow,
        now: Timestamp,
    ) -> Result<Loaded> {
        let terms = tx.terms_get(row.id).await?;
        let mut loaded = Loaded {
            state: state_of(&row),
            row,
            terms,
            history: Vec::new(),
        };
        self.apply_due(tx, programme, &mut loaded, now).await?;
        Ok(loaded)
    }

    /// Moves a loaded subscription through what is due at `to`, recording each change.
    async fn apply_due(
        &self,
        tx: &mut Tx,
        programme: &ActiveProgramme,
        s: &mut Loaded,
        to: Timestamp,
    ) -> Result<usize> {
        let plan = programme.programme.plan(&s.row.plan);
        let tz = &programme.programme.timezone;
        let changes = s.state.advance(plan, &s.domain_terms(), to, tz);
        for change in &changes {
            match change {
                Change::RenewalDue { at, period_end } => {
                    let amount = match plan {
                        Some(plan) => {
                            let mut holder = MemberState::new(
                                tx.member_account_for_update(s.row.member_id)
                                    .await?
                                    .ok_or_else(|| corrupt("subscription holder"))?,
                            );
                            let value = self.member_value(tx, programme, &mut holder, *at).await?;
                            plan.price(&value, false).0
                        }
                        None => 0,
                    };
                    tx.renewal_insert(&RenewalRow {
                        subscription_id: s.row.id,
                        period_end_us: to_us(*period_end),
                        member_id: s.row.member_id,
                        due_at_us: to_us(*at),
                        amount_minor: amount,
                        state: "open".to_owned(),
                    })
                    .await?;
                    s.record(*at, "renewal_due", "renewal_notice", None);
                    s.history.last_mut().expect("just recorded").amount_minor = Some(amount);
                }
                Change::Status { to: new, .. } => {
                    s.record_change(change);
                    if !new.is_live() {
                        tx.renewals_close(s.row.id, "lapsed").await?;
                    }
                }
            }
        }
        Ok(changes.len())
    }

    /// Writes a subscription back with its next due instant and its new history.
    async fn save(
        &self,
        tx: &mut Tx,
        programme: &ActiveProgramme,
        s: &mut Loaded,
        now: Timestamp,
    ) -> Result<()> {
        put_state(&mut s.row, &s.state);
        s.row.next_due_us = s
            .state
            .next_due(
                programme.programme.plan(&s.row.plan),
                &s.domain_terms(),
                &programme.programme.timezone,
            )
            .map(to_us);
        s.row.updated_at_us = to_us(now);
        tx.subscription_update(&s.row).await?;
        tx.subscription_history_insert(&s.history).await?;
        s.history.clear();
        Ok(())
    }

    /// Adds a paid term to a loaded subscription: its start follows the status (after the
    /// current end, back-dated in grace, or now), partner codes are drawn, open renewals
    /// are settled. Refused whole when a code pool is empty.
    #[allow(clippy::too_many_arguments)]
    async fn add_paid_term(
        &self,
        tx: &mut Tx,
        programme: &ActiveProgramme,
        plan: &Plan,
        s: &mut Loaded,
        price: (i64, String),
        payment_ref: &str,
        request_sha: &str,
        now: Timestamp,
    ) -> Result<()> {
        let (start, cause) = s
            .state
            .next_term_start(plan, now)
            .ok_or_else(|| EngineError::SubscriptionEnded(s.row.id, s.row.status.clone()))?;
        let end = plan.term.after(start, &programme.programme.timezone);
        let term_no = s.row.next_term_no;
        s.row.next_term_no += 1;
        let term = TermRow {
            subscription_id: s.row.id,
            term_no,
            member_id: s.row.member_id,
            kind: "paid".to_owned(),
            start_us: to_us(start),
            end_us: to_us(end),
            amount_minor: price.0,
            price_basis: price.1,
            paid_at_us: to_us(now),
            refunded_minor: 0,
            payment_ref: Some(payment_ref.to_owned()),
            request_sha256: Some(request_sha.to_owned()),
        };
        match tx.term_insert(&term).await {
            Err(StoreError::Conflict(_)) => {
                return Err(EngineError::PaymentRefConflict(payment_ref.to_owned()))
            }
            other => other?,
        }
        s.terms.push(term);
        // A first term priced at nothing (a free offer) is not a paid plan for referral.
        if price.0 > 0 {
            self.referral_on_plan(tx, programme, s.row.member_id, &plan.id, s.row.id, now)
                .await?;
        }
        for right in plan.partner_rights.iter().filter(|r| r.code_pool) {
            if tx
                .code_take(&right.id, s.row.member_id, s.row.id, term_no, to_us(now))
                .await?
                .is_none()
            {
                return Err(EngineError::PartnerCodesExhausted(right.id.clone()));
            }
        }
        let change = s.state.add_paid_term(start, end, now, cause);
        s.record(now, "payment", "paid", None);
        let last = s.history.last_mut().expect("just recorded");
        last.payment_ref = Some(payment_ref.to_owned());
        last.amount_minor = Some(s.terms.last().map_or(0, |t| t.amount_minor));
        if let Some(change) = change {
            s.record_change(&change);
        }
        tx.renewals_close(s.row.id, "paid").await?;
        Ok(())
    }

    /// A member's running subscription to a plan, brought up to date (the others are saved
    /// as the clock moved them), and whether they ever paid for a term of the plan.
    async fn live_subscription(
        &self,
        tx: &mut Tx,
        programme: &ActiveProgramme,
        member_id: i64,
        plan_id: &str,
        now: Timestamp,
    ) -> Result<(Option<Loaded>, bool)> {
        let mut live = None;
        let mut ever_paid = false;
        for row in tx.subscriptions_of_plan(member_id, plan_id).await? {
            let mut loaded = self.load_subscription(tx, programme, row, now).await?;
            ever_paid |= loaded.terms.iter().any(|t| t.kind == "paid");
            if live.is_none() && loaded.state.status.is_live() {
                live = Some(loaded);
            } else if !loaded.history.is_empty() {
                self.save(tx, programme, &mut loaded, now).await?;
            }
        }
        Ok((live, ever_paid))
    }

    /// Days of a plan given free (a referral reward), inside the caller's transaction: a
    /// term of kind `reward` after the member's running subscription of the plan (back-
    /// dated in a back-dating grace, as a payment would be), or a new subscription from
    /// now. `basis` names the reward on the term. The subscription's id, or `None` when the
    /// programme no longer has the plan.
    pub(crate) async fn give_plan_days(
        &self,
        tx: &mut Tx,
        programme: &ActiveProgramme,
        member_id: i64,
        (plan_id, days): (&str, i64),
        basis: &str,
        now: Timestamp,
    ) -> Result<Option<i64>> {
        let Some(plan) = programme.programme.plan(plan_id) else {
            return Ok(None);
        };
        let (live, _) = self
            .live_subscription(tx, programme, member_id, plan_id, now)
            .await?;
        let mut s = match live {
            Some(s) => s,
            None => {
                self.new_subscription(
                    tx,
                    plan,
                    member_id,
                    member_id,
                    now,
                    Status::Active,
                    Some(false),
                    now,
                )
                .await?
            }
        };
        let (start, _) = s.state.next_term_start(plan, now).unwrap_or((now, None));
        let end =
            tessera_domain::plans::Length::Days(days).after(start, &programme.programme.timezone);
        let term = s.unpaid_term("reward", (start, end), basis, now);
        tx.term_insert(&term).await?;
        s.terms.push(term);
        let change = s.state.add_free_term(end, now);
        s.record(now, "reward", basis, None);
        if let Some(change) = change {
            s.record_change(&change);
        }
        // A renewal due for the old end is not charged: the notice comes again before the
        // new end.
        tx.renewals_close(s.row.id, "lapsed").await?;
        s.state.renewal_noticed_for = None;
        self.save(tx, programme, &mut s, now).await?;
        Ok(Some(s.row.id))
    }

    /// Takes back what is left of the days `give_plan_days` gave (the reward's term named
    /// `basis`): the term ends now (or does not start), and access with it when nothing
    /// runs after it. The days taken back, whole.
    pub(crate) async fn take_plan_days(
        &self,
        tx: &mut Tx,
        programme: &ActiveProgramme,
        subscription_id: i64,
        basis: &str,
        now: Timestamp,
    ) -> Result<i64> {
        let Some(row) = tx.subscription_get(subscription_id).await? else {
            return Ok(0);
        };
        let mut s = self.load_subscription(tx, programme, row, now).await?;
        let Some(k) = s
            .terms
            .iter()
            .position(|t| t.kind == "reward" && t.price_basis == basis)
        else {
            return Ok(0);
        };
        let (start, end) = (from_us(s.terms[k].start_us), from_us(s.terms[k].end_us));
        let cut = now.max(start);
        if cut >= end || !s.state.status.is_live() {
            return Ok(0);
        }
        let removed = end.duration_since(cut);
        // The term ends at the cut, and the terms after it move up by what was taken back,
        // so that a paid term that followed the free days starts at once, with no gap.
        let removed_us = to_us(end) - to_us(cut);
        for t in s.terms.iter_mut().filter(|t| t.start_us >= to_us(end)) {
            t.start_us -= removed_us;
            t.end_us -= removed_us;
            tx.term_set_span(subscription_id, t.term_no, t.start_us, t.end_us)
                .await?;
        }
        let reward = &mut s.terms[k];
        reward.end_us = to_us(cut);
        tx.term_set_span(
            subscription_id,
            reward.term_no,
            reward.start_us,
            reward.end_us,
        )
        .await?;
        let last_end = s.terms.iter().map(|t| t.end_us).max().unwrap_or(to_us(cut));
        s.state.access_end = from_us(last_end);
        // A renewal noticed for the old end is closed; the notice comes again.
        tx.renewals_close(subscription_id, "lapsed").await?;
        s.state.renewal_noticed_for = None;
        s.record(now, "reward_taken_back", basis, None);
        // What fell due at the new end (the term ended, grace) applies now.
        let changes = s.state.advance(
            programme.programme.plan(&s.row.plan),
            &s.domain_terms(),
            now,
            &programme.programme.timezone,
        );
        for c in &changes {
            s.record_change(c);
        }
        self.save(tx, programme, &mut s, now).await?;
        Ok(removed.as_hours() / 24)
    }

    /// The first answer of a payment reference seen before; a conflict if its request
    /// differed. Payment references are unique across members, so the term is found by
    /// its reference alone; the answer is kept under the term's holder.
    async fn payment_replay(
        &self,
        tx: &mut Tx,
        payment_ref: &str,
        request_sha: &str,
        answer: &ClientRequest,
    ) -> Result<Option<SubscriptionView>> {
        let term = match tx.term_by_payment_ref(payment_ref).await? {
            None => return Ok(None),
            Some(t) if t.request_sha256.as_deref() == Some(request_sha) => t,
            Some(_) => return Err(EngineError::PaymentRefConflict(payment_ref.to_owned())),
        };
        let mut view = match answer.replay(tx, term.member_id).await? {
            Some(view) => view,
            // Paid before this version kept first answers: the subscription as it is.
            None => self.view_in(tx, term.subscription_id).await?,
        };
        view.replayed = true;
        Ok(Some(view))
    }

    /// The view of a subscription inside a write, kept as the first answer of `answer`
    /// (a payment) with the holder `member_id`.
    async fn answer_payment(
        &self,
        tx: &mut Tx,
        answer: &ClientRequest,
        subscription_id: i64,
        now: Timestamp,
    ) -> Result<SubscriptionView> {
        let view = self.view_in(tx, subscription_id).await?;
        answer.remember(tx, view.row.member_id, &view, now).await?;
        Ok(view)
    }

    /// Buys a plan (a paid term or a trial), for the member or as a gift. The same
    /// `payment_ref` again, looked up under the members' lock, replays the purchase.
    pub async fn subscribe(&self, req: SubscribeRequest) -> Result<SubscriptionView> {
        let programme = self.programme()?;
        let plan = plan_of(&programme, &req.plan)?;
        let request_sha = sha256_hex(subscribe_fingerprint(&req).to_string().as_bytes());
        if req.gift_to.as_ref() == Some(&req.member) {
            return Err(EngineError::Field(tessera_domain::FieldError::invalid(
                "gift_to",
                "a gift is for another member",
            )));
        }
        if req.gift_to.is_some() && matches!(req.purchase, Purchase::Trial) {
            return Err(EngineError::Field(tessera_domain::FieldError::invalid(
                "trial",
                "a gift is a paid term, not a trial",
            )));
        }
        if req.auto_renew == Some(true) && !plan.auto_renew {
            return Err(EngineError::Field(tessera_domain::FieldError::invalid(
                "auto_renew",
                format!("plan `{}` does not renew automatically", plan.id),
            )));
        }
        let mut tx = self.store.begin().await?;
        let mut ids = vec![&req.member];
        if let Some(g) = &req.gift_to {
            ids.push(g);
        }
        let mut members = self.lock_members(&mut tx, &ids).await?;
        let answer = match &req.purchase {
            Purchase::Paid { payment_ref, .. } => Some(ClientRequest::new(
                PAYMENT_ANSWER,
                payment_ref.as_str(),
                &subscribe_fingerprint(&req),
            )),
            Purchase::Trial => None,
        };
        // Looked up under the lock: concurrent retries wait for the first and replay it.
        if let (Purchase::Paid { payment_ref, .. }, Some(answer)) = (&req.purchase, &answer) {
            if let Some(view) = self
                .payment_replay(&mut tx, payment_ref.as_str(), &request_sha, answer)
                .await?
            {
                return Ok(view);
            }
        }
        Self::refuse_closed(&members)?;
        // After the replay: a retry answers as the first time, even once the offer closed.
        let offer = self.offer_of_purchase(&programme, &req).await?;
        let now = self.now();
        let buyer_value = self
            .member_value(&mut tx, &programme, &mut members[0], now)
            .await?;
        let holder = members.last().expect("one member at least");
        let holder_member_id = holder.member_id();
        let buyer_member_id = members[0].member_id();

        let (live, ever_paid) = self
            .live_subscription(&mut tx, &programme, holder_member_id, &plan.id, now)
            .await?;

        let mut s = match (&req.purchase, live) {
            (Purchase::Trial, Some(_)) => {
                return Err(EngineError::PlanAlreadyHeld(plan.id.clone()))
            }
            (Purchase::Trial, None) => {
                if tx.trial_taken(holder_member_id, &plan.id).await? {
                    return Err(EngineError::TrialAlreadyUsed(plan.id.clone()));
                }
                let days = trial_days(plan, offer.as_ref(), &buyer_value, &req.member)?;
                let end = tessera_domain::plans::Length::Days(days)
                    .after(now, &programme.programme.timezone);
                let mut s = self
                    .new_subscription(
                        &mut tx,
                        plan,
                        holder_member_id,
                        buyer_member_id,
                        end,
                        Status::Trialing,
                        req.auto_renew,
                        now,
                    )
                    .await?;
                let term = s.unpaid_term("trial", (now, end), "trial", now);
                tx.term_insert(&term).await?;
                s.terms.push(term);
                if !tx
                    .trial_insert(holder_member_id, &plan.id, s.row.id, to_us(now))
                    .await?
                {
                    return Err(EngineError::TrialAlreadyUsed(plan.id.clone()));
                }
                s.record(
                    now,
                    "status",
                    "trial_started",
                    Some((Status::Trialing, Status::Trialing)),
                );
                s.history.last_mut().expect("just recorded").from_status = None;
                s
            }
            (
                Purchase::Paid {
                    payment_ref,
                    amount_minor,
                },
                live,
            ) => {
                let price = match offer.as_ref().map(|o| (&o.id, &o.kind)) {
                    Some((id, OfferKind::FirstTermPrice { price_minor })) => {
                        tessera_domain::offers::offered_price(
                            plan,
                            &buyer_value,
                            !ever_paid,
                            (id, *price_minor),
                        )
                        .map_err(EngineError::OfferRefused)?
                    }
                    _ => plan.price(&buyer_value, !ever_paid),
                };
                if let Some(given) = amount_minor {
                    if *given != price.0 {
                        return Err(EngineError::PriceChanged {
                            price: price.0,
                            given: *given,
                        });
                    }
                }
                let mut s = match live {
                    Some(s) => {
                        let paid_ahead = s
                            .terms
                            .iter()
                            .any(|t| t.kind == "paid" && from_us(t.end_us) > now);
                        if !plan.stacking && paid_ahead {
                            return Err(EngineError::PlanAlreadyHeld(plan.id.clone()));
                        }
                        s
                    }
                    None => {
                        self.new_subscription(
                            &mut tx,
                            plan,
                            holder_member_id,
                            buyer_member_id,
                            now,
                            Status::Active,
                            req.auto_renew,
                            now,
                        )
                        .await?
                    }
                };
                self.add_paid_term(
                    &mut tx,
                    &programme,
                    plan,
                    &mut s,
                    (price.0, price.1.describe()),
                    payment_ref.as_str(),
                    &request_sha,
                    now,
                )
                .await?;
                s
            }
        };
        self.save(&mut tx, &programme, &mut s, now).await?;
        if let Some(o) = &offer {
            self.accepted(&mut tx, holder_member_id, &o.id, Some(s.row.id), None, now)
                .await?;
        }
        let view = match &answer {
            Some(answer) => self.answer_payment(&mut tx, answer, s.row.id, now).await?,
            None => self.view_in(&mut tx, s.row.id).await?,
        };
        tx.commit().await?;
        self.settle_referral_after(s.row.member_id).await;
        Ok(view)
    }

    #[allow(clippy::too_many_arguments)]
    async fn new_subscription(
        &self,
        tx: &mut Tx,
        plan: &Plan,
        member_id: i64,
        buyer_member_id: i64,
        access_end: Timestamp,
        status: Status,
        auto_renew: Option<bool>,
        now: Timestamp,
    ) -> Result<Loaded> {
        let mut row = SubscriptionRow {
            id: 0,
            member_id,
            buyer_member_id,
            plan: plan.id.clone(),
            status: status.as_str().to_owned(),
            auto_renew: auto_renew.unwrap_or(plan.auto_renew) && plan.auto_renew,
            cancel_at_period_end: false,
            access_end_us: to_us(access_end),
            cut: false,
            grace_until_us: None,
            renewal_noticed_for_us: None,
            next_due_us: None,
            created_at_us: to_us(now),
            updated_at_us: to_us(now),
            next_term_no: 1,
            next_history_no: 1,
        };
        row.id = tx.subscription_insert(&row).await?;
        Ok(Loaded {
            state: state_of(&row),
            row,
            terms: Vec::new(),
            history: Vec::new(),
        })
    }

    /// Locks a subscription's holder and loads it, brought up to date at `now`.
    async fn lock_subscription(
        &self,
        tx: &mut Tx,
        programme: &ActiveProgramme,
        id: i64,
        now: Timestamp,
    ) -> Result<Loaded> {
        let (loaded, holder) = self
            .lock_subscription_of_any(tx, programme, id, now)
            .await?;
        Self::refuse_closed(&[holder])?;
        Ok(loaded)
    }

    /// `lock_subscription` for a holder who may be closed (a retry answers as the first
    /// time); returns the holder too.
    async fn lock_subscription_of_any(
        &self,
        tx: &mut Tx,
        programme: &ActiveProgramme,
        id: i64,
        now: Timestamp,
    ) -> Result<(Loaded, MemberState)> {
        let member_id = self
            .store
            .subscription_read(id)
            .await?
            .ok_or(EngineError::SubscriptionNotFound(id))?
            .member_id;
        let holder = tx
            .member_account_for_update(member_id)
            .await?
            .ok_or_else(|| corrupt("subscription holder"))?;
        let row = tx
            .subscription_get(id)
            .await?
            .ok_or(EngineError::SubscriptionNotFound(id))?;
        let loaded = self.load_subscription(tx, programme, row, now).await?;
        Ok((loaded, MemberState::new(holder)))
    }

    /// A renewal (or a reactivation) confirmed by the shop's payment.
    pub async fn pay_subscription(
        &self,
        id: i64,
        payment_ref: &ExternalId,
        amount_minor: Option<i64>,
    ) -> Result<SubscriptionView> {
        let programme = self.programme()?;
        let fingerprint = serde_json::json!({
            "pay": id, "payment_ref": payment_ref.as_str(), "amount_minor": amount_minor,
        });
        let request_sha = sha256_hex(fingerprint.to_string().as_bytes());
        let answer = ClientRequest::new(PAYMENT_ANSWER, payment_ref.as_str(), &fingerprint);
        let mut tx = self.store.begin().await?;
        let now = self.now();
        let (mut s, holder) = self
            .lock_subscription_of_any(&mut tx, &programme, id, now)
            .await?;
        // Looked up under the lock: concurrent retries wait for the first and replay it.
        if let Some(view) = self
            .payment_replay(&mut tx, payment_ref.as_str(), &request_sha, &answer)
            .await?
        {
            tx.commit().await?;
            return Ok(view);
        }
        Self::refuse_closed(&[holder])?;
        let plan = plan_of(&programme, &s.row.plan)?;
        let mut holder = MemberState::new(
            tx.member_account_for_update(s.row.member_id)
                .await?
                .ok_or_else(|| corrupt("subscription holder"))?,
        );
        let value = self
            .member_value(&mut tx, &programme, &mut holder, now)
            .await?;
        let price = plan.price(&value, false);
        if let Some(given) = amount_minor {
            if given != price.0 {
                return Err(EngineError::PriceChanged {
                    price: price.0,
                    given,
                });
            }
        }
        self.add_paid_term(
            &mut tx,
            &programme,
            plan,
            &mut s,
            (price.0, price.1.describe()),
            payment_ref.as_str(),
            &request_sha,
            now,
        )
        .await?;
        self.save(&mut tx, &programme, &mut s, now).await?;
        let view = self.answer_payment(&mut tx, &answer, id, now).await?;
        tx.commit().await?;
        self.settle_referral_after(s.row.member_id).await;
        Ok(view)
    }

    /// Cancels at the end of the period (access stays, no renewal) or now.
    pub async fn cancel_subscription(
        &self,
        id: i64,
        at_period_end: bool,
    ) -> Result<SubscriptionView> {
        let programme = self.programme()?;
        let mut tx = self.store.begin().await?;
        let now = self.now();
        let mut s = self.lock_subscription(&mut tx, &programme, id, now).await?;
        if !s.state.status.is_live() {
            return Err(EngineError::SubscriptionEnded(
                id,
                s.state.status.as_str().to_owned(),
            ));
        }
        let cause = if at_period_end && s.state.status != Status::Grace {
            "cancel_at_period_end"
        } else {
            "cancel_now"
        };
        let change = s.state.cancel(at_period_end, now);
        s.record(now, "cancel", cause, None);
        if let Some(change) = change {
            s.record_change(&change);
        }
        // A canceled subscription renews no more, now or at the period's end: a renewal
        // already due is closed, so the shop's billing does not charge it.
        tx.renewals_close(id, "lapsed").await?;
        self.save(&mut tx, &programme, &mut s, now).await?;
        tx.commit().await?;
        self.subscription_view_of(id).await
    }

    /// Refunds under the plan's policy: access ends now; returns the calculation.
    pub async fn refund_subscription(
        &self,
        id: i64,
    ) -> Result<(SubscriptionView, RefundCalculation)> {
        let programme = self.programme()?;
        let mut tx = self.store.begin().await?;
        let now = self.now();
        let mut s = self.lock_subscription(&mut tx, &programme, id, now).await?;
        if matches!(s.state.status, Status::Refunded | Status::Expired) {
            return Err(EngineError::SubscriptionEnded(
                id,
                s.state.status.as_str().to_owned(),
            ));
        }
        let plan = plan_of(&programme, &s.row.plan)?;
        let calc = self
            .refund_loaded(&mut tx, &programme, Some(plan), &mut s, "refund", now)
            .await?
            .ok_or_else(|| corrupt("a refund with its plan has a calculation"))?;
        tx.commit().await?;
        self.settle_referral_after(s.row.member_id).await;
        Ok((self.subscription_view_of(id).await?, calc))
    }

    /// Refunds a loaded subscription under `plan`'s policy and ends its access now,
    /// recording `cause`; saves it. Without a plan (one no version declares any more),
    /// access ends and nothing is due: no calculation.
    async fn refund_loaded(
        &self,
        tx: &mut Tx,
        programme: &ActiveProgramme,
        plan: Option<&tessera_domain::plans::Plan>,
        s: &mut Loaded,
        cause: &'static str,
        now: Timestamp,
    ) -> Result<Option<RefundCalculation>> {
        let id = s.row.id;
        let calc = match plan {
            Some(plan) => {
                let uses: Vec<(Timestamp, i64)> = tx
                    .benefit_uses_of(id)
                    .await?
                    .iter()
                    .map(|u| (from_us(u.at_us), u.cost_minor))
                    .collect();
                let calc = refund_calculation(
                    plan.refund,
                    &s.domain_terms(),
                    &uses,
                    now,
                    &programme.programme.timezone,
                );
                for t in &calc.terms {
                    tx.term_set_refunded(id, t.term, t.refund_minor).await?;
                }
                Some(calc)
            }
            None => None,
        };
        let change = s.state.refund(now);
        s.record(now, "refund", cause, None);
        s.history.last_mut().expect("just recorded").amount_minor =
            calc.as_ref().map(|c| c.refund_minor);
        s.record_change(&change);
        tx.renewals_close(id, "lapsed").await?;
        // Money given back takes back what the purchase earned its referrer; a refund of
        // nothing (a policy that keeps the fee) does not.
        if calc.as_ref().is_some_and(|c| c.refund_minor > 0) {
            self.referral_on_plan_refund(tx, s.row.member_id, id)
                .await?;
        }
        self.save(tx, programme, s, now).await?;
        Ok(calc)
    }

    /// Ends every subscription `member_id` holds when their account closes: each one still
    /// running (or canceled with access left) is refunded under its plan's policy and its
    /// access ends now. Subscriptions the member bought for others are theirs to keep.
    pub(crate) async fn end_subscriptions_of(
        &self,
        tx: &mut Tx,
        programme: &ActiveProgramme,
        member_id: i64,
        now: Timestamp,
    ) -> Result<Vec<EndedSubscription>> {
        let mut ended = Vec::new();
        for (row, _) in tx.held_subscriptions(member_id).await? {
            let mut s = self.load_subscription(tx, programme, row, now).await?;
            let before = s.state.status;
            if matches!(before, Status::Refunded | Status::Expired) {
                self.save(tx, programme, &mut s, now).await?;
                continue;
            }
            let plan = programme.programme.plan(&s.row.plan);
            let refund_minor = self
                .refund_loaded(tx, programme, plan, &mut s, "member_closed", now)
                .await?
                .map_or(0, |calc| calc.refund_minor);
            ended.push(EndedSubscription {
                id: s.row.id,
                plan: s.row.plan.clone(),
                status_before: before.as_str().to_owned(),
                refund_minor,
            });
        }
        Ok(ended)
    }

    // ---- reads ----

    pub async fn subscription_view(&self, id: i64) -> Result<SubscriptionView> {
        self.subscription_view_of(id).await
    }

    async fn subscription_view_of(&self, id: i64) -> Result<SubscriptionView> {
        let record = self
            .store
            .subscription_record(id)
            .await?
            .ok_or(EngineError::SubscriptionNotFound(id))?;
        self.view_of_record(record)
    }

    /// `subscription_view_of` inside a write: what the transaction wrote is in it.
    async fn view_in(&self, tx: &mut Tx, id: i64) -> Result<SubscriptionView> {
        let record = tx
            .subscription_record(id)
            .await?
            .ok_or(EngineError::SubscriptionNotFound(id))?;
        self.view_of_record(record)
    }

    fn view_of_record(&self, record: SubscriptionRecord) -> Result<SubscriptionView> {
        let programme = self.programme()?;
        let plan = programme.programme.plan(&record.row.plan);
        let state = state_of(&record.row);
        let domain_terms: Vec<Term> = record.terms.iter().map(term_of).collect();
        let access_now = state.grants_access(
            plan.and_then(|p| p.grace),
            &domain_terms,
            self.now(),
            &programme.programme.timezone,
        );
        Ok(SubscriptionView {
            holder: record.holder,
            buyer: record.buyer,
            plan_name: plan.map(|p| p.name.clone()),
            codes: record.codes,
            history: record.history,
            renewals: record.renewals,
            terms: record.terms,
            access_now,
            replayed: false,
            row: record.row,
        })
    }

    /// How many subscriptions are in each status, for metrics: read from the database at
    /// most every 15 s, by one caller at a time (an open route never makes the database do
    /// more than that).
    pub async fn subscriptions_by_status(&self) -> Result<Vec<(String, i64)>> {
        let mut cached = self.status_counts.lock().await;
        if let Some((at, counts)) = cached.as_ref() {
            if at.elapsed() < std::time::Duration::from_secs(15) {
                return Ok(counts.clone());
            }
        }
        let counts = self.store.subscriptions_by_status().await?;
        *cached = Some((std::time::Instant::now(), counts.clone()));
        Ok(counts)
    }

    /// The subscriptions a member holds, and those bought for others, with ids below
    /// `before_id`, newest first, a page of `limit` at a time; and the id the next page
    /// starts below.
    pub async fn member_subscriptions(
        &self,
        member: &ExternalId,
        before_id: Option<i64>,
        limit: u32,
    ) -> Result<(Vec<SubscriptionView>, Option<i64>)> {
        let m = self.member(member).await?;
        let rows = self
            .store
            .subscriptions_of_member(m.id, before_id.unwrap_or(i64::MAX), limit + 1)
            .await?;
        let (rows, next) = crate::page::page_of(rows, limit, |s| s.id);
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(self.subscription_view_of(row.id).await?);
        }
        Ok((out, next))
    }

    /// Which plans a member holds at `at`, with their rights. Read from the terms, so it
    /// holds between two runs of the clock's jobs too.
    pub async fn entitlements(
        &self,
        member: &ExternalId,
        at: Timestamp,
    ) -> Result<Vec<Entitlement>> {
        let programme = self.programme()?;
        let m = self.member(member).await?;
        let mut out = Vec::new();
        for (row, terms) in self.store.held_subscriptions(m.id).await? {
            let Some(plan) = programme.programme.plan(&row.plan) else {
                continue;
            };
            let terms: Vec<Term> = terms.iter().map(term_of).collect();
            let state = state_of(&row);
            if state.grants_access(plan.grace, &terms, at, &programme.programme.timezone) {
                out.push(Entitlement {
                    subscription_id: row.id,
                    plan: plan.id.clone(),
                    status: row.status.clone(),
                    until: state.access_end,
                    rights: plan
                        .partner_rights
                        .iter()
                        .map(|r| (r.id.clone(), r.partner.clone()))
                        .collect(),
                });
            }
        }
        Ok(out)
    }

    /// Each plan as this member may buy it now, from the holdings quotes read (no write
    /// transaction, no read per plan).
    pub async fn plan_offers(&self, member: &ExternalId) -> Result<Vec<PlanOffer>> {
        let programme = self.programme()?;
        let h = self.cached_holdings(member, self.now()).await?;
        Ok(programme
            .programme
            .plans
            .iter()
            .map(|plan| {
                let held = h.holding.plans.contains(&plan.id);
                let (price, basis) = plan.price(&h.value, !h.paid_plans.contains(&plan.id));
                PlanOffer {
                    plan: plan.id.clone(),
                    name: plan.name.clone(),
                    term: plan.term.describe(),
                    list_price_minor: plan.price_minor,
                    price_minor: price,
                    price_basis: basis.describe(),
                    trial_days: plan.trial.as_ref().map(|t| t.days),
                    trial_available: plan.trial_allowed(&h.value)
                        && !h.trialed_plans.contains(&plan.id)
                        && !held,
                    held,
                    auto_renew: plan.auto_renew,
                }
            })
            .collect())
    }

    // ---- partners ----

    /// The partner an API key answers for.
    pub async fn partner_of(&self, key: crate::ApiKey) -> Result<Option<String>> {
        Ok(self.store.api_key_partner(key.id).await?)
    }

    /// Makes a partner's key: it answers only for `partner`'s rights.
    pub async fn create_partner_key(&self, partner: &str) -> Result<String> {
        let new = crate::keys::NewKey {
            role: crate::Role::Partner,
            partner: Some(partner.to_owned()),
            label: None,
            expires_at: None,
        };
        Ok(self.create_key_with(&new).await?.0)
    }

    /// The rights of `partner` that the member holds now: (right, plan, until).
    pub async fn partner_check(
        &self,
        partner: &str,
        member: &ExternalId,
    ) -> Result<Vec<(String, String, Timestamp)>> {
        let now = self.now();
        Ok(self
            .entitlements(member, now)
            .await?
            .into_iter()
            .flat_map(|e| {
                let (plan, until) = (e.plan, e.until);
                e.rights
                    .into_iter()
                    .filter(|(_, p)| p == partner)
                    .map(move |(r, _)| (r, plan.clone(), until))
            })
            .collect())
    }

    /// Records a use of a partner right by the partner: refused when the member does not
    /// hold it now or has used it up this term. The same id again replays the first answer.
    pub async fn partner_redeem(
        &self,
        partner: &str,
        id: &ExternalId,
        member: &ExternalId,
        right: &str,
    ) -> Result<PartnerRedemption> {
        let programme = self.programme()?;
        let mut tx = self.store.begin().await?;
        let state = self.lock_members(&mut tx, &[member]).await?.remove(0);
        if let Some(u) = tx.benefit_use_by_reference(partner, id.as_str()).await? {
            if u.member_id != state.member_id() || u.benefit != right {
                return Err(EngineError::OperationConflict(id.to_string()));
            }
            return Ok(PartnerRedemption {
                id: id.to_string(),
                member: member.to_string(),
                right: u.benefit,
                subscription_id: u.subscription_id.unwrap_or_default(),
                cost_minor: u.cost_minor,
                at: from_us(u.at_us),
                uses_left: None,
                replayed: true,
            });
        }
        Self::refuse_closed(std::slice::from_ref(&state))?;
        let known = programme
            .programme
            .plans
            .iter()
            .flat_map(|p| &p.partner_rights)
            .any(|r| r.id == right && r.partner == partner);
        if !known {
            return Err(EngineError::UnknownPartnerRight(right.to_owned()));
        }
        let now = self.now();
        let mut found = None;
        for (row, terms) in tx.held_subscriptions(state.member_id()).await? {
            let Some(plan) = programme.programme.plan(&row.plan) else {
                continue;
            };
            let Some(r) = plan.right(right).filter(|r| r.partner == partner) else {
                continue;
            };
            let terms: Vec<Term> = terms.iter().map(term_of).collect();
            if state_of(&row).grants_access(plan.grace, &terms, now, &programme.programme.timezone)
            {
                let term_no = tessera_domain::plans::term_at(&terms, now)
                    .or(terms.last())
                    .map_or(0, |t| t.no);
                found = Some((row.id, term_no, r.clone()));
                break;
            }
        }
        let (sub_id, term_no, r) = found.ok_or_else(|| {
            EngineError::NotEntitled(format!("{member} holds no plan with `{right}`"))
        })?;
        let used = tx
            .benefit_uses_of(sub_id)
            .await?
            .iter()
            .filter(|u| u.benefit == right && u.term_no == Some(term_no))
            .count() as i64;
        if let Some(limit) = r.uses_per_term {
            if used >= limit {
                return Err(EngineError::PartnerRightUsedUp(right.to_owned()));
            }
        }
        tx.benefit_use_insert(&BenefitUseRow {
            id: 0,
            member_id: state.member_id(),
            subscription_id: Some(sub_id),
            term_no: Some(term_no),
            benefit: right.to_owned(),
            partner: Some(partner.to_owned()),
            reference: Some(id.to_string()),
            cost_minor: r.cost_minor,
            at_us: to_us(now),
        })
        .await?;
        tx.commit().await?;
        Ok(PartnerRedemption {
            id: id.to_string(),
            member: member.to_string(),
            right: right.to_owned(),
            subscription_id: sub_id,
            cost_minor: r.cost_minor,
            at: now,
            uses_left: r.uses_per_term.map(|l| l - used - 1),
            replayed: false,
        })
    }

    // ---- code pools ----

    /// Adds codes to the pool of a partner right the programme declares with `code_pool`.
    pub async fn upload_codes(&self, pool: &str, codes: &[&str]) -> Result<(u64, PoolCounts)> {
        let programme = self.programme()?;
        let declared = programme
            .programme
            .plans
            .iter()
            .flat_map(|p| &p.partner_rights)
            .any(|r| r.id == pool && r.code_pool);
        if !declared {
            return Err(EngineError::UnknownPartnerRight(pool.to_owned()));
        }
        let mut tx = self.store.begin().await?;
        let added = tx.codes_insert(pool, codes, to_us(self.now())).await?;
        tx.commit().await?;
        Ok((added, self.store.pool_counts(pool).await?))
    }

    pub async fn pool_counts(&self, pool: &str) -> Result<PoolCounts> {
        Ok(self.store.pool_counts(pool).await?)
    }

    pub async fn renewals(
        &self,
        state: &str,
        after: (i64, i64),
        limit: u32,
    ) -> Result<Vec<(RenewalRow, String, String)>> {
        let rows = self.store.renewals_list(state, after, limit).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let member = self
                .store
                .external_id_of(r.member_id)
                .await?
                .unwrap_or_default();
            let plan = self
                .store
                .subscription_read(r.subscription_id)
                .await?
                .map(|s| s.plan)
                .unwrap_or_default();
            out.push((r, member, plan));
        }
        Ok(out)
    }

    // ---- the clock ----

    /// Moves every subscription with something due at `to`; returns the changes made.
    pub(crate) async fn run_subscription_jobs(&self, to: Timestamp) -> Result<u64> {
        let Ok(programme) = self.programme() else {
            return Ok(0);
        };
        let mut changes = 0u64;
        loop {
            let due = self
                .store
                .due_subscriptions(to_us(to), crate::jobs::JOB_BATCH_MAX)
                .await?;
            if due.is_empty() {
                break;
            }
            let mut tx = self.store.begin().await?;
            let mut members: Vec<i64> = due.iter().map(|(_, m)| *m).collect();
            members.sort_unstable();
            members.dedup();
            for m in members {
                tx.member_account_for_update(m).await?;
            }
            for (id, _) in &due {
                // Re-read under the lock: another run may have moved it already.
                let Some(row) = tx.subscription_get(*id).await? else {
                    continue;
                };
                if row.next_due_us.is_none_or(|d| d > to_us(to)) {
                    continue;
                }
                let terms = tx.terms_get(row.id).await?;
                let mut s = Loaded {
                    state: state_of(&row),
                    row,
                    terms,
                    history: Vec::new(),
                };
                changes += self.apply_due(&mut tx, &programme, &mut s, to).await? as u64;
                self.save(&mut tx, &programme, &mut s, to).await?;
            }
            tx.commit().await?;
            if due.len() < crate::jobs::JOB_BATCH_MAX as usize {
                break;
            }
        }
        Ok(changes)
    }
}

fn corrupt(what: &str) -> EngineError {
    EngineError::Store(StoreError::Database(format!("missing {what}")))
}

/// What identifies a purchase: every parsed field, in a stable form.
/// The days of a trial: an offer's trial stands in for the plan's own, for the offer's
/// segment; else the plan's trial, for the members its condition admits.
fn trial_days(
    plan: &Plan,
    offer: Option<&tessera_domain::offers::ConversionOffer>,
    buyer: &serde_json::Value,
    member: &ExternalId,
) -> Result<i64> {
    if let Some(OfferKind::Trial { days }) = offer.map(|o| &o.kind) {
        return Ok(*days);
    }
    let trial = plan
        .trial
        .as_ref()
        .ok_or_else(|| EngineError::TrialNotEligible(format!("plan `{}` has no trial", plan.id)))?;
    if !plan.trial_allowed(buyer) {
        return Err(EngineError::TrialNotEligible(format!(
            "member `{member}` is not eligible for the trial of `{}`",
            plan.id
        )));
    }
    Ok(trial.days)
}

fn subscribe_fingerprint(req: &SubscribeRequest) -> serde_json::Value {
    let purchase = match &req.purchase {
        Purchase::Paid {
            payment_ref,
            amount_minor,
        } => serde_json::json!({"payment_ref": payment_ref.as_str(), "amount_minor": amount_minor}),
        Purchase::Trial => serde_json::json!("trial"),
    };
    let mut fingerprint = serde_json::json!({
        "subscribe": req.member.as_str(),
        "plan": req.plan,
        "purchase": purchase,
        "gift_to": req.gift_to.as_ref().map(|g| g.as_str()),
        "auto_renew": req.auto_renew,
    });
    // Only when given: the fingerprints of requests made before offers stay the same.
    if let Some(offer) = &req.offer {
        fingerprint["offer"] = serde_json::json!(offer);
    }
    fingerprint
}
