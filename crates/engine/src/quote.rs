//! Checkout quotes and coupons: the member's holdings are read (tier, plans held,
//! free-shipping uses left this month, coupons, points), the domain prices the cart, and
//! the same cart is priced again for each plan the member does not hold (the upsell).
//! A quote writes nothing.

use crate::answers::ClientRequest;
use crate::clock::{from_us, to_us};
use crate::points::MemberState;
use crate::{Engine, EngineError, Result};
use jiff::Timestamp;
use std::collections::BTreeMap;
use std::sync::Arc;
use tessera_domain::coupons::{self, CouponRefusal, CouponState};
use tessera_domain::event::{OrderLine, OrderPaid};
use tessera_domain::points::{EarnContext, EarnedSoFar};
use tessera_domain::quote::{
    quote, BenefitKind, CartLine, ChosenCoupon, Holding, PointsRate, Quote, QuoteInput,
};
use tessera_domain::tiers::TierChange;
use tessera_domain::{AmountMinor, ExternalId, OrderId};
use tessera_store::CouponRow;

/// Most coupons a member may be issued at once.
pub const COUPONS_PER_ISSUE_MAX: i64 = 100;

#[derive(Debug, Clone)]
pub struct QuoteRequest {
    pub member: Option<ExternalId>,
    pub lines: Vec<OrderLine>,
    pub shipping_minor: i64,
    pub coupons: Vec<i64>,
    pub points: i64,
    /// Stored value to pay with, in minor units.
    pub stored_value_minor: i64,
}

/// What the same cart would cost with a plan the member does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upsell {
    pub plan: String,
    pub name: String,
    pub plan_price_minor: i64,
    pub total_minor: i64,
    pub saving_minor: i64,
    /// Members-only goods of the cart the plan would let this shopper buy.
    pub unlocks: Vec<String>,
    /// A conversion offer of the plan open now that targets this member (shown, so
    /// recorded as an exposure).
    pub offer: Option<crate::offers::OfferShown>,
}

#[derive(Debug, Clone)]
pub struct QuoteAnswer {
    pub quote: Quote,
    pub member: Option<String>,
    pub tier: Option<String>,
    pub plans: Vec<String>,
    /// Points and score the order would earn, before the day and month caps.
    pub earn_points: i64,
    pub earn_score: i64,
    pub upsell: Vec<Upsell>,
}

fn cart_lines(req: &QuoteRequest) -> Vec<CartLine> {
    req.lines
        .iter()
        .map(|l| CartLine {
            sku: l.sku.as_str().to_owned(),
            category: l.category.as_str().to_owned(),
            quantity: i64::from(l.quantity()),
            unit_price_minor: l.unit_price.get(),
            tags: l.tags.iter().map(|t| t.as_str().to_owned()).collect(),
        })
        .collect()
}

/// The domain's input for a cart: refuses points or stored value the member does not have,
/// and finds each chosen coupon among the member's.
fn quote_input<'a>(
    p: &'a tessera_domain::Programme,
    req: &QuoteRequest,
    holdings: Option<&'a Holdings>,
    now: Timestamp,
    lines: &'a [CartLine],
    empty: &'a BTreeMap<String, i64>,
    points_available_now: Option<i64>,
) -> Result<QuoteInput<'a>> {
    let rate = p
        .points
        .as_ref()
        .and_then(|c| c.redemption.as_ref())
        .map(|r| PointsRate {
            points: r.points,
            value_minor: r.value_minor,
            minimum_points: r.minimum_points,
            max_order_share_percent: i64::from(r.max_order_share_percent),
        });
    if req.points > 0 {
        let Some(h) = holdings else {
            return Err(EngineError::InsufficientPoints {
                needed: req.points,
                available: 0,
            });
        };
        if rate.is_none() {
            return Err(EngineError::PointsDisabled);
        }
        let available = points_available_now.unwrap_or(h.state.row.account.available);
        if available < req.points {
            return Err(EngineError::InsufficientPoints {
                needed: req.points,
                available,
            });
        }
    }
    if req.stored_value_minor > 0 {
        if p.stored_value.is_none() {
            return Err(EngineError::StoredValueDisabled);
        }
        let available = holdings.map_or(0, |h| h.stored_value.principal + h.stored_value.bonus);
        if available < req.stored_value_minor {
            return Err(EngineError::InsufficientStoredValue {
                needed: req.stored_value_minor,
                available,
            });
        }
    }
    let mut chosen: Vec<ChosenCoupon> = Vec::with_capacity(req.coupons.len());
    for no in &req.coupons {
        let found = holdings.and_then(|h| h.coupons.iter().find(|c| c.coupon_no == *no));
        let template = found.and_then(|c| p.coupon(&c.template));
        let held = found
            .map(|c| {
                CouponState::parse(&c.state)
                    .map(|state| (state, from_us(c.valid_until_us)))
                    .ok_or_else(|| crate::points::corrupt("coupon state"))
            })
            .transpose()?;
        chosen.push(ChosenCoupon {
            no: *no,
            refused: coupons::refusal(held, template.is_some(), now).map(CouponRefusal::as_str),
            template,
        });
    }
    let day_of_month = now.to_zoned(p.timezone.clone()).day();
    Ok(QuoteInput {
        lines,
        shipping_minor: req.shipping_minor,
        holding: holdings.map(|h| h.holding.clone()),
        benefits: &p.benefits,
        shipping_uses_left: holdings.map_or(empty, |h| &h.quota_left),
        day_of_month,
        coupons: chosen,
        points: req.points,
        points_rate: rate,
        stored_value_minor: req.stored_value_minor,
    })
}

/// The first instant of `now`'s month in the programme's time zone.
fn month_start(p: &tessera_domain::Programme, now: Timestamp) -> Timestamp {
    now.to_zoned(p.timezone.clone())
        .date()
        .first_of_month()
        .to_zoned(p.timezone.clone())
        .map_or(now, |z| z.timestamp())
}

/// The benefits with a monthly quota (free shipping, return pickups) that `holding`
/// holds: (id, uses per month).
fn quotas(p: &tessera_domain::Programme, holding: &Holding) -> Vec<(String, i64)> {
    p.benefits
        .iter()
        .filter(|b| b.held(holding))
        .filter_map(|b| match b.kind {
            BenefitKind::FreeShipping {
                per_month: Some(n), ..
            }
            | BenefitKind::FreeReturns { per_month: n } => Some((b.id.clone(), n)),
            _ => None,
        })
        .collect()
}

/// How long a member's holdings are reused by quotes when nothing was written meanwhile.
const HOLDINGS_REUSE: std::time::Duration = std::time::Duration::from_secs(1);
/// Most members whose holdings are kept.
const HOLDINGS_CACHE_MAX: usize = 100_000;

/// Holdings read for quotes, valid while the store has committed nothing since and the
/// engine's clock has not moved more than `HOLDINGS_REUSE`.
pub(crate) struct CachedHoldings {
    holdings: Arc<Holdings>,
    generation: u64,
    read_at: Timestamp,
    wall: std::time::Instant,
}

/// What a member holds, read once per quote.
pub(crate) struct Holdings {
    pub(crate) holding: Holding,
    pub(crate) value: serde_json::Value,
    pub(crate) state: MemberState,
    /// What is left this month of each held benefit with a monthly quota.
    pub(crate) quota_left: BTreeMap<String, i64>,
    pub(crate) coupons: Vec<CouponRow>,
    /// Plans the member ever paid a term of (a first-term price no longer applies).
    pub(crate) paid_plans: Vec<String>,
    /// Plans the member has trialed.
    pub(crate) trialed_plans: Vec<String>,
    pub(crate) stored_value: tessera_store::StoredValueRow,
}

impl Holdings {
    /// What the member's subscriptions say at `now`: the plans held (access from the
    /// terms), ever paid for, and trialed. Quotas, coupons and stored value are read by the
    /// caller.
    fn new(
        p: &tessera_domain::Programme,
        state: MemberState,
        subscriptions: &[(tessera_store::SubscriptionRow, Vec<tessera_store::TermRow>)],
        now: Timestamp,
    ) -> Holdings {
        let mut plans = Vec::new();
        let mut paid_plans = Vec::new();
        let mut trialed_plans = Vec::new();
        for (row, terms) in subscriptions {
            let add = |list: &mut Vec<String>| {
                if !list.contains(&row.plan) {
                    list.push(row.plan.clone());
                }
            };
            if terms.iter().any(|t| t.kind == "paid") {
                add(&mut paid_plans);
            }
            if terms.iter().any(|t| t.kind == "trial") {
                add(&mut trialed_plans);
            }
            let Some(plan) = p.plan(&row.plan) else {
                continue;
            };
            let terms: Vec<_> = terms.iter().map(crate::subscriptions::term_of).collect();
            if crate::subscriptions::state_of(row).grants_access(
                plan.grace,
                &terms,
                now,
                &p.timezone,
            ) {
                add(&mut plans);
            }
        }
        Holdings {
            holding: Holding {
                tier: state.tier.clone(),
                plans,
            },
            value: state.value(),
            state,
            quota_left: BTreeMap::new(),
            coupons: Vec::new(),
            paid_plans,
            trialed_plans,
            stored_value: tessera_store::StoredValueRow::default(),
        }
    }
}

impl Engine {
    async fn holdings(&self, member: &ExternalId, now: Timestamp) -> Result<Holdings> {
        let programme = self.programme()?;
        let p = &programme.programme;
        let row = self
            .store
            .member_account_read(member.as_str())
            .await?
            .ok_or_else(|| EngineError::MemberNotFound(member.to_string()))?;
        if row.status == "closed" {
            return Err(EngineError::MemberClosed(member.to_string()));
        }
        let mut state = MemberState::new(row);
        let member_id = state.member_id();
        state.tier = self.tier_name(member_id).await?;
        if let Some(score) = &p.score {
            state.score = self
                .store
                .measure_sum_read(
                    member_id,
                    "score",
                    to_us(score.window.start(now, &p.timezone)),
                    to_us(now),
                )
                .await?;
        }
        let subscriptions = self.store.held_subscriptions(member_id).await?;
        let mut h = Holdings::new(p, state, &subscriptions, now);
        for (id, per_month) in quotas(p, &h.holding) {
            let used = self
                .store
                .benefit_uses_since(member_id, &id, to_us(month_start(p, now)))
                .await?;
            h.quota_left.insert(id, (per_month - used).max(0));
        }
        // Every coupon still usable, however many; the newest others, to say why an old one
        // is refused.
        h.coupons = self.store.coupons_held(member_id, 500).await?;
        h.stored_value = self.store.stored_value_read(member_id).await?;
        Ok(h)
    }

    /// The holdings of a member locked by the caller's transaction, read inside it (an
    /// order commit prices with what it is about to consume).
    pub(crate) async fn holdings_in(
        &self,
        tx: &mut tessera_store::Tx,
        mut state: MemberState,
        now: Timestamp,
    ) -> Result<Holdings> {
        let programme = self.programme()?;
        let p = &programme.programme;
        let member_id = state.member_id();
        (state.tier, state.score) =
            crate::tiers::member_now(tx, &programme, member_id, now).await?;
        let subscriptions = tx.held_subscriptions(member_id).await?;
        let mut h = Holdings::new(p, state, &subscriptions, now);
        for (id, per_month) in quotas(p, &h.holding) {
            let used = tx
                .benefit_uses_since(member_id, &id, to_us(month_start(p, now)))
                .await?;
            h.quota_left.insert(id, (per_month - used).max(0));
        }
        h.coupons = tx.coupons_held(member_id, 500).await?;
        h.stored_value = tx.stored_value_get(member_id).await?;
        Ok(h)
    }

    /// Prices a cart for a member (or a shopper who is not one). Writes nothing.
    ///
    /// A member's holdings are read once and reused by the next quotes until any write
    /// commits or a second passes: the checkout prices many carts between two writes.
    /// A commit never uses them: it reads the holdings again inside its transaction, so
    /// a quote a moment stale can at worst be refused at commit (`quote_changed`), never
    /// charge or spend wrongly.
    pub async fn quote(&self, req: &QuoteRequest) -> Result<QuoteAnswer> {
        let now = self.now();
        let holdings = match &req.member {
            Some(m) => Some(self.cached_holdings(m, now).await?),
            None => None,
        };
        // A quote that spends points sees the balance as it is now, with the lots the clock
        // made available or expired since the jobs last ran.
        let points_now = match &holdings {
            Some(h) if req.points > 0 => Some(self.points_available_now(h, now).await?),
            _ => None,
        };
        let mut answer = self.quote_with(req, holdings.as_deref(), now, points_now)?;
        if let Some(h) = &holdings {
            // The offers are the upsell's extra: a failure to read them leaves them out
            // of this quote, and says so in the log.
            if let Err(e) = self.show_offers(&mut answer, h, now).await {
                tracing::warn!(error = %e, "conversion offers left out of a quote");
            }
        }
        Ok(answer)
    }

    /// Puts in the upsell the conversion offers the member may take now, and notes each
    /// as shown to them (written by the clock's jobs: a quote writes nothing).
    async fn show_offers(
        &self,
        answer: &mut QuoteAnswer,
        h: &Holdings,
        now: Timestamp,
    ) -> Result<()> {
        let programme = self.programme()?;
        if !programme.programme.offers.iter().any(|o| o.is_open(now)) {
            return Ok(());
        }
        let offers = self.offers_for(&programme, h, now).await?;
        let mut shown = Vec::new();
        for u in &mut answer.upsell {
            u.offer = offers.iter().find(|o| o.plan == u.plan).cloned();
            if let Some(o) = &u.offer {
                shown.push(o.id.clone());
            }
        }
        if !shown.is_empty() {
            self.note_quote_exposures(h.state.member_id(), &shown);
        }
        Ok(())
    }

    /// A member's available points at `now`, as if the clock's jobs had just run.
    async fn points_available_now(&self, h: &Holdings, now: Timestamp) -> Result<i64> {
        let programme = self.programme()?;
        let account = &h.state.row.account;
        if account.inactive_at_us.is_some_and(|t| t <= to_us(now))
            && crate::points::inactivity_rule(&programme).is_some()
        {
            return Ok(0);
        }
        // Only the lots the clock made due move the balance.
        let lots = self
            .store
            .lots_due_read(h.state.member_id(), to_us(now))
            .await?
            .iter()
            .map(crate::points::lot_from_row)
            .collect();
        let mut ledger = MemberState::new(h.state.row.clone()).ledger(lots);
        ledger.apply_due(now);
        Ok(ledger.balances().available)
    }

    pub(crate) async fn cached_holdings(
        &self,
        member: &ExternalId,
        now: Timestamp,
    ) -> Result<Arc<Holdings>> {
        // The generation is read before the holdings: a write committed meanwhile leaves
        // the entry already out of date.
        let generation = self.store.generation();
        if !self
            .reuse_holdings
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return Ok(Arc::new(self.holdings(member, now).await?));
        }
        {
            let cache = self
                .holdings_cache
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if let Some(c) = cache.get(member.as_str()) {
                let clock_moved =
                    (now.as_microsecond() - c.read_at.as_microsecond()).unsigned_abs();
                if c.generation == generation
                    && u128::from(clock_moved) < HOLDINGS_REUSE.as_micros()
                    && c.wall.elapsed() < HOLDINGS_REUSE
                {
                    return Ok(c.holdings.clone());
                }
            }
        }
        let holdings = Arc::new(self.holdings(member, now).await?);
        let mut cache = self
            .holdings_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if cache.len() >= HOLDINGS_CACHE_MAX {
            cache.clear();
        }
        cache.insert(
            member.to_string(),
            CachedHoldings {
                holdings: holdings.clone(),
                generation,
                read_at: now,
                wall: std::time::Instant::now(),
            },
        );
        Ok(holdings)
    }

    /// Prices a cart with the holdings already read: the quote alone, without earnings
    /// or upsell (what a commit needs).
    pub(crate) fn price_with(
        &self,
        req: &QuoteRequest,
        holdings: Option<&Holdings>,
        now: Timestamp,
    ) -> Result<Quote> {
        let programme = self.programme()?;
        let lines = cart_lines(req);
        let empty = BTreeMap::new();
        let input = quote_input(
            &programme.programme,
            req,
            holdings,
            now,
            &lines,
            &empty,
            None,
        )?;
        Ok(quote(&input))
    }

    /// Prices a cart with the holdings already read, with what it earns and the upsell.
    pub(crate) fn quote_with(
        &self,
        req: &QuoteRequest,
        holdings: Option<&Holdings>,
        now: Timestamp,
        points_available_now: Option<i64>,
    ) -> Result<QuoteAnswer> {
        let programme = self.programme()?;
        let p = &programme.programme;
        let lines = cart_lines(req);
        let empty = BTreeMap::new();
        let input = quote_input(p, req, holdings, now, &lines, &empty, points_available_now)?;
        let q = quote(&input);
        let (earn_points, earn_score) = self.earn_of(req, &q, holdings, now)?;

        let mut upsell = Vec::new();
        let held = holdings
            .as_ref()
            .map(|h| h.holding.plans.clone())
            .unwrap_or_default();
        // The upsell prices the lines this shopper can buy now, so that the saving is what
        // the plan saves on them; goods it would unlock are listed apart.
        let sellable: Vec<CartLine> = lines
            .iter()
            .zip(&q.lines)
            .filter(|(_, ql)| ql.refused.is_none())
            .map(|(l, _)| l.clone())
            .collect();
        for plan in p.plans.iter().filter(|plan| !held.contains(&plan.id)) {
            let mut with = input.clone();
            with.lines = &sellable;
            let mut holding = with.holding.clone().unwrap_or_default();
            holding.plans.push(plan.id.clone());
            with.holding = Some(holding);
            let q2 = quote(&with);
            // Goods the plan would unlock: only when some line is refused now.
            let unlocks = if sellable.len() == lines.len() {
                Vec::new()
            } else {
                let mut unlocked = input.clone();
                unlocked.holding = with.holding.clone();
                quote(&unlocked)
                    .lines
                    .iter()
                    .zip(&q.lines)
                    .filter(|(w, base)| base.refused.is_some() && w.refused.is_none())
                    .map(|(w, _)| w.sku.clone())
                    .collect()
            };
            let first_term = !holdings.is_some_and(|h| h.paid_plans.contains(&plan.id));
            let value = holdings
                .as_ref()
                .map_or(serde_json::Value::Null, |h| h.value.clone());
            upsell.push(Upsell {
                plan: plan.id.clone(),
                name: plan.name.clone(),
                plan_price_minor: plan.price(&value, first_term).0,
                total_minor: q2.total_minor,
                saving_minor: q.total_minor - q2.total_minor,
                unlocks,
                offer: None,
            });
        }
        Ok(QuoteAnswer {
            member: req.member.as_ref().map(ToString::to_string),
            tier: holdings.and_then(|h| h.holding.tier.clone()),
            plans: held,
            earn_points,
            earn_score,
            upsell,
            quote: q,
        })
    }

    /// What the priced order earns, through the same rules as an `order.paid`: the lines
    /// that can be sold, the shipping charged, and a total of what is paid in money.
    fn earn_of(
        &self,
        req: &QuoteRequest,
        q: &Quote,
        holdings: Option<&Holdings>,
        now: Timestamp,
    ) -> Result<(i64, i64)> {
        let programme = self.programme()?;
        let p = &programme.programme;
        let Some(h) = holdings else {
            return Ok((0, 0));
        };
        let lines: Vec<OrderLine> = req
            .lines
            .iter()
            .zip(&q.lines)
            .filter(|(_, ql)| ql.refused.is_none())
            .map(|(l, _)| l.clone())
            .collect();
        if lines.is_empty() {
            return Ok((0, 0));
        }
        let money = |v: i64| AmountMinor::parse(v.max(0)).map_err(EngineError::Field);
        let paid_total = q.total_minor + q.stored_value_used_minor;
        let order = OrderPaid::new(
            OrderId::parse("quote").map_err(EngineError::Field)?,
            lines,
            money(q.shipping_minor)?,
            money(paid_total)?,
        )?;
        let (goods, paid) = tessera_domain::points::allocate_paid(&order);
        let event = serde_json::json!({"type": "order.paid", "total_minor": paid_total, "shipping_minor": q.shipping_minor});
        let ctx = EarnContext {
            tz: &p.timezone,
            occurred_at: now,
            member: &h.value,
            event: &event,
            first_order: h.state.row.account.paid_orders == 0,
            earned: EarnedSoFar::default(),
        };
        let points = p
            .points
            .as_ref()
            .map_or(0, |c| c.earn_order(&order, &paid, &ctx));
        let score = p.score.as_ref().map_or(0, |s| s.score_order(goods, &ctx));
        Ok((points, score))
    }

    // ---- coupons ----

    /// Issues `count` coupons of a template to a member, valid for the template's days;
    /// the same `issue_id` again (looked up under the member's lock, unique in the
    /// database) answers with the first issue as it was made.
    pub async fn issue_coupons(
        &self,
        member: &ExternalId,
        template: &str,
        count: i64,
        issue_id: &ExternalId,
        source: &str,
    ) -> Result<(Vec<CouponRow>, bool)> {
        let programme = self.programme()?;
        let request = ClientRequest::new(
            "coupon_issue",
            issue_id.as_str(),
            &serde_json::json!({"template": template, "count": count, "source": source}),
        );
        let mut tx = self.store.begin().await?;
        let state = self.lock_members(&mut tx, &[member]).await?.remove(0);
        let member_id = state.member_id();
        if let Some(numbers) = request.replay::<Vec<i64>>(&mut tx, member_id).await? {
            let first = tx
                .coupons_by_issue(member_id, issue_id.as_str())
                .await?
                .into_iter()
                .filter(|c| numbers.contains(&c.coupon_no))
                .map(|mut c| {
                    // As issued: what became of them since is for the coupon list to say.
                    c.state = "issued".to_owned();
                    c.order_id = None;
                    c.used_at_us = None;
                    c
                })
                .collect();
            return Ok((first, true));
        }
        // Issues made before answers were kept are found by their id.
        let earlier = tx.coupons_by_issue(member_id, issue_id.as_str()).await?;
        if !earlier.is_empty() {
            if earlier[0].template != template || earlier.len() as i64 != count {
                return Err(EngineError::ClientIdConflict(issue_id.to_string()));
            }
            return Ok((earlier, true));
        }
        Self::refuse_closed(std::slice::from_ref(&state))?;
        let t = programme
            .programme
            .coupon(template)
            .ok_or_else(|| EngineError::UnknownCoupon(template.to_owned()))?;
        let now = self.now();
        let tz = &programme.programme.timezone;
        let rows: Vec<CouponRow> = (0..count)
            .map(|_| coupon_to_issue(member_id, t, source, issue_id.to_string(), now, tz))
            .collect();
        let issued = tx.coupons_issue(&rows).await?;
        let numbers: Vec<i64> = issued.iter().map(|c| c.coupon_no).collect();
        request.remember(&mut tx, member_id, &numbers, now).await?;
        tx.commit().await?;
        Ok((issued, false))
    }

    /// A member's coupons numbered below `before_no`, newest first, a page of `limit` at a
    /// time, each in the state it is in now; and the number the next page starts below.
    pub async fn member_coupons(
        &self,
        member: &ExternalId,
        before_no: Option<i64>,
        limit: u32,
    ) -> Result<(Vec<CouponRow>, Option<i64>)> {
        let m = self.member(member).await?;
        let now = self.now();
        let rows = self
            .store
            .coupons_of_member(m.id, before_no.unwrap_or(i64::MAX), limit + 1)
            .await?;
        let (mut rows, next) = crate::page::page_of(rows, limit, |c| c.coupon_no);
        for c in &mut rows {
            let state = CouponState::parse(&c.state)
                .ok_or_else(|| crate::points::corrupt("coupon state"))?;
            c.state = state.at(from_us(c.valid_until_us), now).as_str().to_owned();
        }
        Ok((rows, next))
    }
}

/// A benefit a member holds now, as the member view shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldBenefit {
    pub id: String,
    pub kind: &'static str,
    /// The kind's terms: a percentage, a minimum, a feature flag, a number of days ...
    pub terms: serde_json::Value,
    pub per_month: Option<i64>,
    /// What is left of the monthly quota this month.
    pub left_this_month: Option<i64>,
    pub cost_per_use_minor: i64,
}

impl Engine {
    /// The plans a member holds now, and the benefits held through their tier and plans
    /// with what is left of each monthly quota: one read of the holdings serves both.
    pub async fn member_holdings(
        &self,
        member: &ExternalId,
    ) -> Result<(Vec<String>, Vec<HeldBenefit>)> {
        let programme = self.programme()?;
        let p = &programme.programme;
        let holdings = self.cached_holdings(member, self.now()).await?;
        let mut out = Vec::new();
        for b in p.benefits.iter().filter(|b| b.held(&holdings.holding)) {
            let (terms, per_month) = match &b.kind {
                BenefitKind::MemberPrice(prices) => (serde_json::json!({"prices": prices}), None),
                BenefitKind::PercentOff {
                    percent,
                    categories,
                    tags,
                    days_of_month,
                } => (
                    serde_json::json!({"percent": percent, "categories": categories, "tags": tags, "days_of_month": days_of_month}),
                    None,
                ),
                BenefitKind::FreeShipping {
                    minimum_minor,
                    per_month,
                } => (
                    serde_json::json!({"minimum_minor": minimum_minor}),
                    *per_month,
                ),
                BenefitKind::CouponGrant { coupon, count } => {
                    (serde_json::json!({"coupon": coupon, "count": count}), None)
                }
                BenefitKind::FreeReturns { per_month } => (serde_json::json!({}), Some(*per_month)),
                BenefitKind::ExtendedReturns { days } => (serde_json::json!({"days": days}), None),
                BenefitKind::PriorityService => (serde_json::json!({}), None),
                BenefitKind::Feature(flag) => (serde_json::json!({"feature": flag}), None),
                BenefitKind::MembersOnly {
                    skus,
                    categories,
                    tags,
                } => (
                    serde_json::json!({"skus": skus, "categories": categories, "tags": tags}),
                    None,
                ),
            };
            let left = per_month.and(holdings.quota_left.get(&b.id).copied());
            out.push(HeldBenefit {
                id: b.id.clone(),
                kind: b.kind.name(),
                terms,
                per_month,
                left_this_month: left,
                cost_per_use_minor: b.cost_per_use_minor,
            });
        }
        Ok((holdings.holding.plans.clone(), out))
    }
}

/// The marks of the monthly coupon grants in `job_marks`, one a benefit.
const GRANTS_JOB: &str = "coupon_grants";

/// The instant just before the month of `at` began, in `tz`: a first run covers that month.
fn start_of_month(at: Timestamp, tz: &jiff::tz::TimeZone) -> Timestamp {
    at.to_zoned(tz.clone())
        .date()
        .first_of_month()
        .to_zoned(tz.clone())
        .map_or(at, |z| z.timestamp())
        .checked_sub(jiff::SignedDuration::from_micros(1))
        .unwrap_or(at)
}

impl Engine {
    /// Issues each `coupon_grant` benefit's monthly pack for every month whose first
    /// instant of holding fell in the time since the job last ran (`job_marks`), at that
    /// instant: a server that was down, or a clock that jumped over several months, grants
    /// what one that ran all along would have. Once per member, benefit and month (a grant
    /// row records it in the same transaction). Returns the coupons issued.
    pub(crate) async fn run_coupon_grants(&self, to: Timestamp) -> Result<u64> {
        let Ok(programme) = self.programme() else {
            return Ok(0);
        };
        let p = &programme.programme;
        let tz = &p.timezone;
        let period = to.to_zoned(tz.clone()).strftime("%Y-%m").to_string();
        let first_tier = p.tiers.as_ref().map(|t| t.tiers[0].name.clone());
        let mut issued = 0u64;
        for b in &p.benefits {
            let BenefitKind::CouponGrant { coupon, count } = &b.kind else {
                continue;
            };
            let Some(template) = p.coupon(coupon) else {
                continue;
            };
            // Each benefit has its own mark: one added to the programme later starts with
            // the month it was added in.
            let job = format!("{GRANTS_JOB}:{}", b.id);
            let after = match self.store.job_mark_get(&job).await? {
                Some(mark) => from_us(mark),
                None => start_of_month(to, tz),
            };
            if to <= after {
                continue;
            }
            let tiers: Vec<Option<String>> = b
                .held_by
                .tiers
                .iter()
                .map(|t| (Some(t) != first_tier.as_ref()).then(|| t.clone()))
                .collect();
            // A subscription in a grace that keeps access still holds after its end.
            let since = b
                .held_by
                .plans
                .iter()
                .filter_map(|id| p.plan(id).and_then(|plan| plan.grace))
                .filter(|g| g.keeps_access)
                .map(|g| g.length.before(after, tz))
                .min()
                .unwrap_or(after)
                .min(after);
            let mut after_member = 0;
            loop {
                let limit = crate::jobs::JOB_BATCH_MAX;
                let mut due = self
                    .store
                    .grant_candidates(
                        &b.id,
                        &period,
                        &b.held_by.plans,
                        to_us(since),
                        &tiers,
                        after_member,
                        limit,
                    )
                    .await?;
                // A member whose tier changed in the window may have held the benefit in
                // some of its months though their tier is another now.
                due.extend(
                    self.store
                        .tier_changers(
                            &b.id,
                            &period,
                            &b.held_by.tiers,
                            &crate::tiers::TIER_CHANGES,
                            to_us(after),
                            after_member,
                            limit,
                        )
                        .await?,
                );
                due.sort_unstable();
                due.dedup();
                due.truncate(limit as usize);
                let Some(&last) = due.last() else { break };
                after_member = last;
                let mut tx = self.store.begin().await?;
                for member_id in &due {
                    let Some(row) = tx.member_account_for_update(*member_id).await? else {
                        continue;
                    };
                    if row.status == "closed" {
                        continue;
                    }
                    let spans = self
                        .holding_spans(&mut tx, &programme, b, *member_id, after)
                        .await?;
                    for grant in tessera_domain::grants::monthly_grants(&spans, after, to, tz) {
                        // Re-checked under the lock: another run may have granted it.
                        if !tx
                            .grant_insert(*member_id, &b.id, &grant.period, to_us(grant.at))
                            .await?
                        {
                            continue;
                        }
                        let valid_until = tessera_domain::plans::Length::Days(template.valid_days)
                            .after(grant.at, tz);
                        let rows: Vec<CouponRow> = (0..*count)
                            .map(|_| CouponRow {
                                member_id: *member_id,
                                coupon_no: 0,
                                template: template.id.clone(),
                                state: "issued".to_owned(),
                                source: format!("grant:{}", b.id),
                                issued_at_us: to_us(grant.at),
                                valid_until_us: to_us(valid_until),
                                order_id: None,
                                used_at_us: None,
                                issue_id: Some(format!("grant:{}:{}", b.id, grant.period)),
                            })
                            .collect();
                        tx.coupons_issue(&rows).await?;
                        issued += u64::try_from(*count).unwrap_or(0);
                    }
                }
                tx.commit().await?;
                if due.len() < crate::jobs::JOB_BATCH_MAX as usize {
                    break;
                }
            }
            let mut tx = self.store.begin().await?;
            tx.job_mark_set(&job, to_us(to)).await?;
            tx.commit().await?;
        }
        Ok(issued)
    }

    /// The spans in which a member held a benefit, as far as a window after `after`
    /// needs them: the access of their subscriptions to the benefit's plans, and their
    /// tiers as the tier changes since the last one before `after` say (the current tier
    /// from when they reached it, when there was none). Changes after the window's end
    /// are read too: the member's tier now is not their tier at the window's end.
    async fn holding_spans(
        &self,
        tx: &mut tessera_store::Tx,
        programme: &crate::ActiveProgramme,
        benefit: &tessera_domain::quote::Benefit,
        member_id: i64,
        after: Timestamp,
    ) -> Result<Vec<(Timestamp, Timestamp)>> {
        let p = &programme.programme;
        let mut spans = Vec::new();
        if !benefit.held_by.plans.is_empty() {
            for (row, terms) in tx.held_subscriptions(member_id).await? {
                if !benefit.held_by.plans.contains(&row.plan) {
                    continue;
                }
                let grace = p.plan(&row.plan).and_then(|plan| plan.grace);
                let terms: Vec<_> = terms.iter().map(crate::subscriptions::term_of).collect();
                spans.extend(crate::subscriptions::state_of(&row).access_spans(
                    grace,
                    &terms,
                    &p.timezone,
                ));
            }
        }
        if let (false, Some(rules)) = (benefit.held_by.tiers.is_empty(), &p.tiers) {
            let first = &rules.tiers[0].name;
            let row = tx.tiers_get_many(&[member_id]).await?.pop();
            let current = row
                .as_ref()
                .and_then(|r| r.tier.clone())
                .unwrap_or_else(|| first.clone());
            let since = row.and_then(|r| r.since_us).map_or(Timestamp::MIN, from_us);
            let changes: Vec<TierChange> = tx
                .tier_changes_since(member_id, &crate::tiers::TIER_CHANGES, to_us(after))
                .await?
                .into_iter()
                .map(|h| TierChange {
                    at: from_us(h.at_us),
                    from: h.from_tier.unwrap_or_else(|| first.clone()),
                    to: h.to_tier.unwrap_or_else(|| first.clone()),
                })
                .collect();
            spans.extend(tessera_domain::tiers::holding_spans(
                &benefit.held_by.tiers,
                &changes,
                &current,
                since,
            ));
        }
        Ok(spans)
    }
}

/// A coupon of template `t` to issue to a member now, valid for the template's days in
/// the programme's time zone (the store numbers it).
pub(crate) fn coupon_to_issue(
    member_id: i64,
    t: &tessera_domain::quote::CouponTemplate,
    source: &str,
    issue_id: String,
    now: Timestamp,
    tz: &jiff::tz::TimeZone,
) -> CouponRow {
    let valid_until = tessera_domain::plans::Length::Days(t.valid_days).after(now, tz);
    CouponRow {
        member_id,
        coupon_no: 0,
        template: t.id.clone(),
        state: "issued".to_owned(),
        source: source.to_owned(),
        issued_at_us: to_us(now),
        valid_until_us: to_us(valid_until),
        order_id: None,
        used_at_us: None,
        issue_id: Some(issue_id),
    }
}
