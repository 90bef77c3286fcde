//! The order commit: an order Tessera priced becomes paid. In one transaction, under the
//! member's lock, the cart is priced again, what the price used is consumed (coupons,
//! free-shipping quotas and other benefit uses, points), and the order is taken in as an
//! `order.paid` through intake, so it earns exactly as any paid order does. Anything no
//! longer available refuses the whole commit and changes nothing. The same order id again
//! answers with the first commit.

use crate::answers::ClientRequest;
use crate::clock::to_us;
use crate::events::IngestItem;
use crate::points::{ledger_error, write_ledger_change, EntrySource, MemberState};
use crate::quote::QuoteRequest;
use crate::{sha256_hex, ActiveProgramme, Engine, EngineError, IngestOutcome, Result};
use jiff::Timestamp;
use serde_json::json;
use tessera_domain::event::{Event, EventBody, OrderPaid};
use tessera_domain::ledger::{EntryKind, Lot};
use tessera_domain::quote::Quote;
use tessera_domain::{AmountMinor, EventId, ExternalId, OrderId};
use tessera_store::{BenefitUseRow, Tx};

#[derive(Debug, Clone)]
pub struct CommitRequest {
    pub order_id: OrderId,
    pub quote: QuoteRequest,
    /// The total the shopper agreed to (from the quote); a different price now refuses.
    pub expected_total_minor: Option<i64>,
}

impl Engine {
    /// Commits an order; returns its summary (JSON) and whether it replays an earlier one.
    pub async fn commit_order(&self, req: &CommitRequest) -> Result<(String, bool)> {
        let programme = self.programme()?;
        let member = req
            .quote
            .member
            .clone()
            .ok_or_else(|| EngineError::MemberNotFound(String::new()))?;
        let order_id = req.order_id.as_str();
        let request_sha = sha256_hex(commit_fingerprint(req).to_string().as_bytes());
        let mut tx = self.store.begin().await?;
        let mut state = self.lock_member(&mut tx, &member).await?;
        let member_id = state.member_id();
        // A retry answers as the first time, even if the member was frozen or closed since.
        if let Some((sha, summary)) = tx.commit_get(member_id, order_id).await? {
            return if sha == request_sha {
                Ok((summary, true))
            } else {
                Err(EngineError::OrderAlreadyPaid(order_id.to_owned()))
            };
        }
        let spends = req.quote.points > 0
            || !req.quote.coupons.is_empty()
            || req.quote.stored_value_minor > 0;
        match state.row.status.as_str() {
            "closed" => return Err(EngineError::MemberClosed(member.to_string())),
            "frozen" if spends => return Err(EngineError::MemberFrozen(member.to_string())),
            _ => {}
        }
        let now = self.now();
        let (q, lots) = self
            .price_under_lock(&mut tx, &mut state, &programme, req, now)
            .await?;
        let sv_drawn = self
            .consume(&mut tx, &mut state, &programme, &q, lots, order_id, now)
            .await?;
        self.take_in_paid(&mut tx, (&member, member_id), req, &q, now)
            .await?;
        let order = tx.orders_get_many(&[(member_id, order_id)]).await?.pop();
        let summary = commit_summary(&member, order_id, &q, order.as_ref(), now);
        tx.commit_insert(
            member_id,
            order_id,
            &request_sha,
            &summary,
            q.points_used,
            to_us(now),
        )
        .await?;
        if sv_drawn != (0, 0) {
            tx.commit_set_stored_value(member_id, order_id, sv_drawn.0, sv_drawn.1, 0)
                .await?;
        }
        // Refunds of this order that arrived before it give back what it spent now.
        self.settle_commit(&mut tx, &programme, (&member, member_id), order_id, now)
            .await?;
        tx.commit().await?;
        Ok((summary, false))
    }

    /// The cart priced again under the member's lock: every writer of this member waits
    /// for it, so what the price reads is what the commit consumes. Returns the price and
    /// the lots a points payment draws from; refuses what is no longer payable.
    async fn price_under_lock(
        &self,
        tx: &mut Tx,
        state: &mut MemberState,
        programme: &ActiveProgramme,
        req: &CommitRequest,
        now: Timestamp,
    ) -> Result<(Quote, Vec<Lot>)> {
        // Points the clock made available or expired since the jobs last ran are settled
        // first, so that the price sees the balance as it is now.
        let lots = if req.quote.points > 0 {
            crate::points::lots_for_spend(tx, state, programme, now, req.quote.points).await?
        } else {
            Vec::new()
        };
        let holdings = self
            .holdings_in(tx, MemberState::new(state.row.clone()), now)
            .await?;
        let q = self.price_with(&req.quote, Some(&holdings), now)?;
        if let Some(line) = q.lines.iter().find(|l| l.refused.is_some()) {
            return Err(EngineError::OrderNotPayable(format!(
                "{}: {}",
                line.sku,
                line.refused.clone().unwrap_or_default()
            )));
        }
        if let Some((no, reason)) = q.coupons_refused.first() {
            return Err(EngineError::OrderNotPayable(format!(
                "coupon {no}: {reason}"
            )));
        }
        if let Some(expected) = req.expected_total_minor {
            if expected != q.total_minor {
                return Err(EngineError::QuoteChanged {
                    expected,
                    total: q.total_minor,
                });
            }
        }
        Ok((q, lots))
    }

    /// Consumes what the price used: coupons, benefit uses, points, stored value. Returns
    /// the stored value drawn (principal, bonus).
    #[allow(clippy::too_many_arguments)]
    async fn consume(
        &self,
        tx: &mut Tx,
        state: &mut MemberState,
        programme: &ActiveProgramme,
        q: &Quote,
        lots: Vec<Lot>,
        order_id: &str,
        now: Timestamp,
    ) -> Result<(i64, i64)> {
        let member_id = state.member_id();
        for c in &q.coupons_applied {
            if !tx.coupon_use(member_id, c.no, order_id, to_us(now)).await? {
                return Err(EngineError::OrderNotPayable(format!(
                    "coupon {}: no longer usable",
                    c.no
                )));
            }
        }
        for (benefit, cost) in &q.benefits_used {
            tx.benefit_use_insert(&BenefitUseRow {
                id: 0,
                member_id,
                subscription_id: None,
                term_no: None,
                benefit: benefit.clone(),
                partner: None,
                reference: Some(order_id.to_owned()),
                cost_minor: *cost,
                at_us: to_us(now),
            })
            .await?;
        }
        if q.points_used > 0 {
            let mut ledger = state.ledger(lots);
            ledger
                .spend(q.points_used, EntryKind::Redeem, now)
                .map_err(ledger_error)?;
            let source = EntrySource {
                reference: Some(order_id),
                reason: Some("order payment"),
                ..Default::default()
            };
            write_ledger_change(tx, state, &ledger, source, programme, now).await?;
        }

        if q.stored_value_used_minor == 0 {
            return Ok((0, 0));
        }
        draw_stored_value(
            tx,
            state,
            programme,
            q.stored_value_used_minor,
            order_id,
            now,
        )
        .await
    }

    /// Takes the order in as an `order.paid` through intake, in this transaction, so that
    /// it earns exactly as any paid order does.
    async fn take_in_paid(
        &self,
        tx: &mut Tx,
        (member, member_id): (&ExternalId, i64),
        req: &CommitRequest,
        q: &Quote,
        now: Timestamp,
    ) -> Result<()> {
        let order_id = req.order_id.as_str();
        // The order as paid: the lines at their list prices, the shipping charged, and
        // what the member paid in money.
        let lines: Vec<_> = req.quote.lines.clone();
        let paid_total = q.total_minor + q.stored_value_used_minor;
        let money = |v: i64| AmountMinor::parse(v).map_err(EngineError::Field);
        let paid = OrderPaid::new(
            req.order_id.clone(),
            lines.clone(),
            money(q.shipping_minor)?,
            money(paid_total)?,
        )?;
        let event_id = EventId::parse(format!("commit:{order_id}")).map_err(EngineError::Field)?;
        let canonical_json = json!({
            "type": "order.paid",
            "id": event_id.as_str(),
            "member_id": member.as_str(),
            "occurred_at": now.to_string(),
            "order_id": order_id,
            "lines": lines_json(&lines),
            "shipping_minor": q.shipping_minor,
            "total_minor": paid_total,
        })
        .to_string();
        let item = IngestItem {
            event: Event {
                id: event_id,
                member: member.clone(),
                occurred_at: now,
                body: EventBody::OrderPaid(paid),
            },
            canonical_json,
        };
        let outcomes = self
            .ingest_in(tx, &[item])
            .await
            .map_err(|e| order_race(e, order_id))?;
        match outcomes.into_iter().next() {
            Some(Ok(IngestOutcome::Accepted(_))) => {}
            Some(Ok(IngestOutcome::Duplicate(_))) => {
                return Err(EngineError::OrderAlreadyPaid(order_id.to_owned()))
            }
            // The commit's event id is the order's: taken with another body, it is another
            // member's order (looked up only then, off the path of every commit).
            Some(Err(EngineError::EventConflict(_)))
                if tx
                    .order_owners_get(&[order_id])
                    .await?
                    .iter()
                    .any(|(_, owner)| *owner != member_id) =>
            {
                return Err(EngineError::OrderOfAnotherMember(order_id.to_owned()))
            }
            Some(Err(e)) => return Err(e),
            None => return Err(EngineError::OrderAlreadyPaid(order_id.to_owned())),
        }
        Ok(())
    }

    /// An order commit's summary, if the order was committed.
    pub async fn order_commit(
        &self,
        member: &ExternalId,
        order_id: &OrderId,
    ) -> Result<Option<String>> {
        let m = self.member(member).await?;
        let mut tx = self.store.begin().await?;
        let found = tx
            .commit_get(m.id, order_id.as_str())
            .await?
            .map(|(_, s)| s);
        drop(tx);
        Ok(found)
    }
}

/// What identifies a commit request: every parsed field, in a stable form.
fn commit_fingerprint(req: &CommitRequest) -> serde_json::Value {
    let q = &req.quote;
    json!({
        "order_id": req.order_id.as_str(),
        "member": q.member.as_ref().map(|m| m.as_str()),
        "lines": lines_json(&q.lines),
        "shipping_minor": q.shipping_minor,
        "coupons": q.coupons,
        "points": q.points,
        "stored_value_minor": q.stored_value_minor,
        "expected_total_minor": req.expected_total_minor,
    })
}

/// Order lines as the events route takes them.
fn lines_json(lines: &[tessera_domain::event::OrderLine]) -> serde_json::Value {
    lines
        .iter()
        .map(|l| {
            json!({
                "sku": l.sku.as_str(), "category": l.category.as_str(), "quantity": l.quantity(),
                "unit_price_minor": l.unit_price.get(),
                "tags": l.tags.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
            })
        })
        .collect()
}

/// The part of `amount` (points or stored value an order spent) that its refunds so far
/// give back: in the proportion of the goods refunded, rounded down, and all of it once
/// the order is refunded in full.
fn refunded_share(amount: i64, order: &tessera_store::OrderRow, full: bool) -> i64 {
    if full || order.goods_minor == 0 {
        return amount;
    }
    i64::try_from(
        i128::from(amount) * i128::from(order.refunded_goods_minor) / i128::from(order.goods_minor),
    )
    .unwrap_or(amount)
    .min(amount)
}

/// What a refund of a committed order did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OrderRefundAnswer {
    pub order_id: String,
    /// Whether the order is now refunded in full.
    pub full: bool,
    /// Earned points and score taken back so far, over all refunds of the order.
    pub points_reversed: i64,
    pub score_reversed: i64,
    /// Points the order spent given back so far (in proportion to the goods refunded).
    pub points_returned: i64,
    /// Coupons and benefit uses given back by this refund (on the full refund).
    pub coupons_restored: u64,
    pub benefit_uses_released: u64,
    /// Stored value the order spent given back so far.
    pub stored_value_returned_minor: i64,
    #[serde(skip)]
    pub replayed: bool,
}

/// What the refunds of a committed order have given back of what it spent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Settlement {
    /// Whether the order is refunded in full.
    pub full: bool,
    /// Spent points given back so far, over all refunds.
    pub points_returned: i64,
    /// Spent stored value given back so far, over all refunds.
    pub stored_value_returned_minor: i64,
    /// Coupons and benefit uses given back now (on the full refund, once).
    pub coupons_restored: u64,
    pub benefit_uses_released: u64,
}

impl Engine {
    /// Refunds part or all of an order Tessera committed: the refund goes through intake as
    /// the order's `order.refunded`, which takes back earned points and score pro rata and
    /// gives back what the order spent (see `settle_commit`). One transaction. The refund's
    /// id is looked up under the member's lock: a retry replays the first answer.
    pub async fn refund_order(&self, item: IngestItem) -> Result<OrderRefundAnswer> {
        let member = item.event.member.clone();
        let EventBody::OrderRefunded(refund) = &item.event.body else {
            return Err(EngineError::RefundExceedsOrder("not a refund".into()));
        };
        let order_id = refund.order_id.as_str().to_owned();
        // The refund's fingerprint is its request without the instant the server gave it.
        let mut fingerprint: serde_json::Value = serde_json::from_str(&item.canonical_json)
            .map_err(|_| EngineError::RefundExceedsOrder("not a refund".into()))?;
        if let Some(map) = fingerprint.as_object_mut() {
            map.remove("occurred_at");
        }
        let request = ClientRequest::new("order_refund", item.event.id.as_str(), &fingerprint);
        let mut tx = self.store.begin().await?;
        let row = tx
            .members_with_accounts_for_update(&[member.as_str()])
            .await?
            .pop()
            .ok_or_else(|| EngineError::MemberNotFound(member.to_string()))?;
        let member_id = row.account.member_id;
        if let Some(mut answer) = request
            .replay::<OrderRefundAnswer>(&mut tx, member_id)
            .await?
        {
            answer.replayed = true;
            return Ok(answer);
        }
        if tx.commit_points(member_id, &order_id).await?.is_none() {
            return Err(EngineError::OrderNotFound(order_id));
        }
        let (mut outcomes, settlements) = self
            .ingest_settled(&mut tx, std::slice::from_ref(&item))
            .await
            .map_err(|e| order_race(e, &order_id))?;
        match outcomes.pop() {
            Some(Ok(IngestOutcome::Accepted(_))) => {}
            // The event id was taken by an `order.refunded` sent to the events route.
            Some(Ok(IngestOutcome::Duplicate(_))) => {
                return Err(EngineError::ClientIdConflict(item.event.id.to_string()))
            }
            Some(Err(e)) => return Err(e),
            None => return Err(EngineError::OrderNotFound(order_id)),
        }
        let settled = settlements
            .into_iter()
            .next()
            .map(|(_, s)| s)
            .unwrap_or_default();
        let order = tx
            .orders_get_many(&[(member_id, order_id.as_str())])
            .await?
            .pop()
            .ok_or_else(|| EngineError::OrderNotFound(order_id.clone()))?;
        let answer = OrderRefundAnswer {
            order_id,
            full: settled.full,
            points_reversed: order.points_reversed,
            score_reversed: order.score_reversed,
            points_returned: settled.points_returned,
            coupons_restored: settled.coupons_restored,
            benefit_uses_released: settled.benefit_uses_released,
            stored_value_returned_minor: settled.stored_value_returned_minor,
            replayed: false,
        };
        request
            .remember(&mut tx, member_id, &answer, self.now())
            .await?;
        tx.commit().await?;
        self.settle_referral_after(member_id).await;
        Ok(answer)
    }

    /// Gives back what a committed order spent, as far as its refunds so far reach: spent
    /// points and stored value in the proportion of the goods refunded (exactly in full on
    /// the full refund), coupons and benefit uses (quotas) on the full refund. Idempotent:
    /// each measure moves to its target once, whichever path the refunds came by (the
    /// refund route, `order.refunded` events, refunds that arrived before the commit).
    /// `None` when the order was not committed through Tessera. The member is locked.
    pub(crate) async fn settle_commit(
        &self,
        tx: &mut tessera_store::Tx,
        programme: &crate::ActiveProgramme,
        member: (&ExternalId, i64),
        order_id: &str,
        now: jiff::Timestamp,
    ) -> Result<Option<Settlement>> {
        let (member, member_id) = member;
        // Most refunds are of orders Tessera did not commit: one read tells, before the
        // member's row is read again.
        let Some((points_used, points_returned)) = tx.commit_points(member_id, order_id).await?
        else {
            return Ok(None);
        };
        let row = self.lock_member(tx, member).await?.row;
        // A closed account holds nothing: what a refund gives back after the close goes
        // where the close sent the rest (stored value owed back, points and coupons not
        // given back), never onto the account.
        let closed = row.status == crate::MemberStatus::Closed.as_str();
        let Some(order) = tx.orders_get_many(&[(member_id, order_id)]).await?.pop() else {
            return Ok(None);
        };
        let full = order.goods_minor > 0 && order.refunded_goods_minor >= order.goods_minor
            || order.goods_minor == 0
                && order.refunded_total_minor >= order.total_minor
                && order.refunded_total_minor > 0;
        let mut settled = Settlement {
            full,
            points_returned,
            ..Settlement::default()
        };
        let reference = format!("refund:{order_id}");
        let target = refunded_share(points_used, &order, full);
        if target > points_returned && !closed {
            let mut state = MemberState::new(row);
            (state.tier, state.score) =
                crate::tiers::member_now(tx, programme, member_id, now).await?;
            return_points(
                tx,
                &mut state,
                programme,
                target - points_returned,
                &reference,
                now,
            )
            .await?;
            tx.commit_set_points_returned(member_id, order_id, target)
                .await?;
            settled.points_returned = target;
        }
        // Stored value spent comes back in the same proportion, to principal and bonus as
        // they were drawn.
        let (sv_p, sv_b, sv_returned) = tx.commit_stored_value(member_id, order_id).await?;
        settled.stored_value_returned_minor = sv_returned;
        let sv_target = refunded_share(sv_p + sv_b, &order, full);
        if sv_target > sv_returned {
            let (pt, bt) = tessera_domain::stored_value::give_back(sv_p, sv_b, sv_target);
            let (pr, br) = tessera_domain::stored_value::give_back(sv_p, sv_b, sv_returned);
            let mut state = self.lock_member(tx, member).await?;
            if closed {
                owe_back_stored_value(tx, &mut state, (pt - pr) + (bt - br), &reference, now)
                    .await?;
            } else {
                return_stored_value(tx, &mut state, (pt - pr, bt - br), &reference, now).await?;
            }
            tx.commit_set_stored_value(member_id, order_id, sv_p, sv_b, sv_target)
                .await?;
            settled.stored_value_returned_minor = sv_target;
        }
        if full {
            if !closed {
                settled.coupons_restored = tx.coupons_restore(member_id, order_id).await?;
            }
            settled.benefit_uses_released = tx.benefit_uses_release(member_id, order_id).await?;
        }
        Ok(Some(settled))
    }
}

fn checked(sum: Option<i64>) -> Result<i64> {
    sum.ok_or_else(|| {
        EngineError::Field(tessera_domain::FieldError::new(
            tessera_domain::FieldErrorCode::AmountOverflow,
            "",
            "the stored value would exceed the largest amount",
        ))
    })
}

/// One member's order write can lose a race only for its order id, to another member
/// that used the same id at the same instant (PostgreSQL): that member owns it now.
fn order_race(e: EngineError, order_id: &str) -> EngineError {
    match e {
        EngineError::Store(tessera_store::StoreError::Conflict(what))
            if what == crate::events::RACE =>
        {
            EngineError::OrderOfAnotherMember(order_id.to_owned())
        }
        other => other,
    }
}

/// What a commit answers, and every retry of it replays.
fn commit_summary(
    member: &ExternalId,
    order_id: &str,
    q: &Quote,
    order: Option<&tessera_store::OrderRow>,
    now: Timestamp,
) -> String {
    json!({
        "order_id": order_id,
        "member_id": member.as_str(),
        "committed_at": now.to_string(),
        "lines": q.lines.iter().map(|l| json!({
            "sku": l.sku, "quantity": l.quantity, "list_minor": l.list_minor, "net_minor": l.net_minor,
        })).collect::<Vec<_>>(),
        "goods_minor": q.goods_minor,
        "shipping_minor": q.shipping_minor,
        "shipping_waived_by": q.shipping_waived_by,
        "coupons_used": q.coupons_applied.iter().map(|c| c.no).collect::<Vec<_>>(),
        "points_used": q.points_used,
        "points_value_minor": q.points_value_minor,
        "stored_value_used_minor": q.stored_value_used_minor,
        "total_minor": q.total_minor,
        "benefits_used": q.benefits_used.iter().map(|(b, c)| json!({"benefit": b, "cost_minor": c})).collect::<Vec<_>>(),
        "earned": {
            "points": order.map_or(0, |o| o.points_earned),
            "score": order.map_or(0, |o| o.score_earned),
        },
    })
.to_string()
}

/// Draws `amount` of stored value for an order, principal and bonus as the programme
/// says; returns what was drawn of each.
async fn draw_stored_value(
    tx: &mut Tx,
    state: &mut MemberState,
    programme: &ActiveProgramme,
    amount: i64,
    order_id: &str,
    now: Timestamp,
) -> Result<(i64, i64)> {
    let rules = programme
        .programme
        .stored_value
        .as_ref()
        .ok_or(EngineError::StoredValueDisabled)?;
    let mut balance = tx.stored_value_get(state.member_id()).await?;
    let (p, b) = rules.draw(balance.principal, balance.bonus, amount);
    balance.principal -= p;
    balance.bonus -= b;
    let entry = crate::stored_value::sv_entry(
        state,
        "sv_spend",
        now,
        Some(order_id),
        &[
            (crate::stored_value::PRINCIPAL, -p),
            (crate::stored_value::BONUS, -b),
            ("shop:sv_spent", p + b),
        ],
    );
    crate::stored_value::write_sv(tx, state, balance, &[entry]).await?;
    Ok((p, b))
}

/// Credits `points` an order spent back to the member, as a refund gives them back.
async fn return_points(
    tx: &mut Tx,
    state: &mut MemberState,
    programme: &ActiveProgramme,
    points: i64,
    reference: &str,
    now: Timestamp,
) -> Result<()> {
    // Points spent come back even if the programme has dropped `[points]` since: they
    // then never expire.
    let expires =
        programme.programme.points.as_ref().and_then(|config| {
            config.lot_expiry(now, &programme.programme.timezone, &state.value())
        });
    let mut ledger = state.ledger(Vec::new());
    ledger.credit(points, now, expires).map_err(ledger_error)?;
    let source = EntrySource {
        reference: Some(reference),
        reason: Some("points of a refunded order"),
        ..Default::default()
    };
    write_ledger_change(tx, state, &ledger, source, programme, now).await?;
    Ok(())
}

/// Gives stored value an order spent back, to (principal, bonus).
/// Stored value an order spent, refunded after its member's account closed: owed back to
/// the customer as the close's balance was (`shop:sv_spent` to `shop:sv_refunded`), the
/// account untouched.
async fn owe_back_stored_value(
    tx: &mut Tx,
    state: &mut MemberState,
    amount: i64,
    reference: &str,
    now: Timestamp,
) -> Result<()> {
    let balance = tx.stored_value_get(state.member_id()).await?;
    let entry = crate::stored_value::sv_entry(
        state,
        "sv_refund",
        now,
        Some(reference),
        &[("shop:sv_spent", -amount), ("shop:sv_refunded", amount)],
    );
    crate::stored_value::write_sv(tx, state, balance, &[entry]).await
}

async fn return_stored_value(
    tx: &mut Tx,
    state: &mut MemberState,
    (p, b): (i64, i64),
    reference: &str,
    now: Timestamp,
) -> Result<()> {
    let mut balance = tx.stored_value_get(state.member_id()).await?;
    balance.principal = checked(balance.principal.checked_add(p))?;
    balance.bonus = checked(balance.bonus.checked_add(b))?;
    let entry = crate::stored_value::sv_entry(
        state,
        "sv_return",
        now,
        Some(reference),
        &[
            (crate::stored_value::PRINCIPAL, p),
            (crate::stored_value::BONUS, b),
            ("shop:sv_spent", -(p + b)),
        ],
    );
    crate::stored_value::write_sv(tx, state, balance, &[entry]).await
}
