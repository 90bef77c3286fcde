//! Event intake: validated events are stored once per id, durably; the same id with the
//! same body answers with what was stored the first time.

use crate::clock::to_us;
use crate::orders::Settlement;
use crate::points::{effect_of, Batch, MemberState};
use crate::{sha256_hex, ActiveProgramme, Engine, EngineError, Result};
use jiff::Timestamp;
use std::collections::HashMap;
use std::sync::Arc;
use tessera_domain::event::Event;
use tessera_domain::event::{ActivityKind, EventBody};
use tessera_domain::ExternalId;
use tessera_store::{EventRow, NewEvent, Tx};

/// Whether an event's instant lies in the window intake takes: a documented span into the
/// past (late events) and a small skew into the future (the shop's clock running ahead).
/// A manual clock is moved by whoever drives it (tests, a replay), who may send a day's
/// events before moving the clock past them, so only the past bound applies to it.
fn occurred_in_range(
    occurred_at: jiff::Timestamp,
    now: jiff::Timestamp,
    manual_clock: bool,
) -> Result<()> {
    use tessera_domain::limits::{OCCURRED_AT_FUTURE_SECONDS_MAX, OCCURRED_AT_PAST_DAYS_MAX};
    let seconds = occurred_at.as_second() - now.as_second();
    if seconds > OCCURRED_AT_FUTURE_SECONDS_MAX && !manual_clock {
        return Err(EngineError::OccurredAtOutOfRange(format!(
            "{occurred_at} is more than {OCCURRED_AT_FUTURE_SECONDS_MAX} seconds after the engine's clock ({now})"
        )));
    }
    if -seconds > OCCURRED_AT_PAST_DAYS_MAX * 86_400 {
        return Err(EngineError::OccurredAtOutOfRange(format!(
            "{occurred_at} is more than {OCCURRED_AT_PAST_DAYS_MAX} days before the engine's clock ({now})"
        )));
    }
    Ok(())
}

/// The marker of a batch that lost a race for an event id and is run again.
pub(crate) const RACE: &str = "event id taken by a concurrent batch";

/// One event to take in, with its canonical JSON (what is stored and hashed).
pub struct IngestItem {
    pub event: Event,
    pub canonical_json: String,
}

/// What became of one event.
#[derive(Debug)]
pub enum IngestOutcome {
    /// Stored now.
    Accepted(EventRow),
    /// Stored before with the same body: the first result.
    Duplicate(EventRow),
}

impl IngestOutcome {
    pub fn row(&self) -> &EventRow {
        match self {
            IngestOutcome::Accepted(row) | IngestOutcome::Duplicate(row) => row,
        }
    }
}

impl Engine {
    /// Takes in a batch of events in one transaction; each item gets its own outcome, and a
    /// refused item does not stop the others. What an event earns or takes back (points,
    /// refunds) is written in the same transaction as the event itself.
    pub async fn ingest(&self, items: &[IngestItem]) -> Result<Vec<Result<IngestOutcome>>> {
        // Another transaction may store one of these event ids between our look-up and our
        // insert (PostgreSQL); the batch then starts over and finds it stored.
        let mut attempts = 0;
        loop {
            match self.ingest_once(items).await {
                Err(EngineError::Store(tessera_store::StoreError::Conflict(what)))
                    if what == RACE && attempts < 3 =>
                {
                    attempts += 1;
                }
                other => return other,
            }
        }
    }

    async fn ingest_once(&self, items: &[IngestItem]) -> Result<Vec<Result<IngestOutcome>>> {
        let mut tx = self.store.begin().await?;
        let outcomes = self.ingest_in(&mut tx, items).await?;
        tx.commit().await?;
        // Counted once committed: events taken in, by type.
        for (item, outcome) in items.iter().zip(&outcomes) {
            if let Ok(IngestOutcome::Accepted(row)) = outcome {
                metrics::counter!("tessera_events_ingested_total", "type" => item.event.body.type_name())
                    .increment(1);
                // A refund may have marked referral rewards to take back: at once, not
                // at the clock's next run, so that nothing given is spent meanwhile.
                if let EventBody::OrderRefunded(_) = item.event.body {
                    self.settle_referral_after(row.member_id).await;
                }
            }
        }
        Ok(outcomes)
    }

    /// Intake inside the caller's transaction (an order commit takes in its `order.paid`
    /// in the transaction that spends what the order used). The caller commits.
    pub(crate) async fn ingest_in(
        &self,
        tx: &mut tessera_store::Tx,
        items: &[IngestItem],
    ) -> Result<Vec<Result<IngestOutcome>>> {
        Ok(self.ingest_settled(tx, items).await?.0)
    }

    /// Intake, and for each accepted refund of a committed order (by its item's index)
    /// what the order's refunds have given back of what it spent.
    pub(crate) async fn ingest_settled(
        &self,
        tx: &mut tessera_store::Tx,
        items: &[IngestItem],
    ) -> Result<(Vec<Result<IngestOutcome>>, Vec<(usize, Settlement)>)> {
        let shas: Vec<String> = items
            .iter()
            .map(|i| sha256_hex(i.canonical_json.as_bytes()))
            .collect();
        let mut intake = Intake::load(self, tx, items, &shas).await?;
        let mut pending = Vec::with_capacity(items.len());
        for k in 0..items.len() {
            let decided = match intake.admit(k) {
                Some(decided) => decided,
                None => intake.apply(tx, k).await?,
            };
            pending.push(decided);
        }
        // Settled by the programme and the instant the batch was taken in by.
        let (programme, now) = (intake.programme.clone(), intake.now);
        let (inserted, members) = intake.write(tx).await?;
        // A refund of an order Tessera committed also gives back what the order spent,
        // whether it came through the refund route or as an event.
        let mut settlements = Vec::new();
        for (k, p) in pending.iter().enumerate() {
            let event = &items[k].event;
            let (Pending::Insert, EventBody::OrderRefunded(refund)) = (p, &event.body) else {
                continue;
            };
            let member = (&event.member, members[event.member.as_str()]);
            let order_id = refund.order_id.as_str();
            if let Some(s) = self
                .settle_commit(tx, &programme, member, order_id, now)
                .await?
            {
                settlements.push((k, s));
            }
        }
        self.referral_after_intake(tx, &programme, items, &pending, &members)
            .await?;
        let row_of = |k: usize| inserted[items[k].event.id.as_str()].clone();
        let outcomes = pending
            .into_iter()
            .enumerate()
            .map(|(k, p)| match p {
                Pending::Done(outcome) => outcome,
                Pending::Insert => Ok(IngestOutcome::Accepted(row_of(k))),
                Pending::SameAs(first) => Ok(IngestOutcome::Duplicate(row_of(first))),
            })
            .collect();
        Ok((outcomes, settlements))
    }

    /// Referral: each accepted payment of a referee may set off their first-order rewards;
    /// each refund that leaves nothing of its order paid cancels or takes them back.
    async fn referral_after_intake(
        &self,
        tx: &mut Tx,
        programme: &ActiveProgramme,
        items: &[IngestItem],
        pending: &[Pending],
        members: &HashMap<String, i64>,
    ) -> Result<()> {
        let first_order_rewards = programme.programme.referral.as_ref().is_some_and(|r| {
            r.rewards_on(tessera_domain::referral::Trigger::FirstOrder)
                .next()
                .is_some()
        });
        let mut paid = Vec::new();
        let mut refunded = Vec::new();
        for (item, p) in items.iter().zip(pending) {
            let Pending::Insert = p else { continue };
            let event = &item.event;
            let member = members[event.member.as_str()];
            match &event.body {
                EventBody::OrderPaid(o) if first_order_rewards => {
                    paid.push((member, o.order_id.to_string(), event.occurred_at));
                }
                // Refunds are looked at whatever the running programme says: a reward
                // given under an earlier version is taken back all the same.
                EventBody::OrderRefunded(r) => refunded.push((member, r.order_id.to_string())),
                _ => {}
            }
        }
        if paid.is_empty() && refunded.is_empty() {
            return Ok(());
        }
        let keys: Vec<(i64, &str)> = paid
            .iter()
            .map(|(m, o, _)| (*m, o.as_str()))
            .chain(refunded.iter().map(|(m, o)| (*m, o.as_str())))
            .collect();
        let in_full: Vec<(i64, String)> = tx
            .orders_get_many(&keys)
            .await?
            .into_iter()
            .filter(|o| {
                o.state == "paid"
                    && tessera_domain::referral::refunded_in_full(
                        (o.goods_minor, o.refunded_goods_minor),
                        (o.total_minor, o.refunded_total_minor),
                    )
            })
            .map(|o| (o.member_id, o.order_id))
            .collect();
        // An order refunded in full before its payment arrived sets nothing off.
        paid.retain(|(m, o, _)| !in_full.iter().any(|(fm, fo)| fm == m && fo == o));
        let fully_refunded: Vec<(i64, String)> = in_full
            .into_iter()
            .filter(|(m, o)| refunded.iter().any(|(rm, ro)| rm == m && ro == o))
            .collect();
        self.referral_on_paid_orders(tx, programme, &paid).await?;
        self.referral_on_refunded_orders(tx, &fully_refunded).await
    }

    /// A member's events in arrival order, a page at a time: the rows after `after_seq`,
    /// and the cursor of the next page when there is one.
    pub async fn member_events(
        &self,
        external_id: &ExternalId,
        after_seq: i64,
        limit: u32,
    ) -> Result<(Vec<EventRow>, Option<i64>)> {
        let member = self.member(external_id).await?;
        let rows = self
            .store
            .events_list(member.id, after_seq, limit + 1)
            .await?;
        Ok(crate::page::page_of(rows, limit, |r| r.seq))
    }
}

/// What intake decided for one item of a batch.
enum Pending {
    /// Answered without writing: a refusal, or a repeat of an event stored before.
    Done(Result<IngestOutcome>),
    /// Stored by this batch.
    Insert,
    /// The same id and body as an earlier item of this batch.
    SameAs(usize),
}

/// One batch's intake: the members locked, the events already stored, who owns each order
/// id, and what the batch writes. Each item is admitted or refused (`admit`), then takes
/// effect (`apply`); `write` stores it all.
struct Intake<'a> {
    programme: Arc<ActiveProgramme>,
    now: Timestamp,
    manual_clock: bool,
    items: &'a [IngestItem],
    shas: &'a [String],
    members: HashMap<String, MemberState>,
    stored: HashMap<String, EventRow>,
    batch: Batch,
    /// Order id → the member who used it first (stored, or earlier in this batch).
    owners: HashMap<String, i64>,
    new_owners: Vec<(&'a str, i64)>,
    first_in_batch: HashMap<&'a str, usize>,
    new_events: Vec<NewEvent<'a>>,
}

impl<'a> Intake<'a> {
    async fn load(
        engine: &Engine,
        tx: &mut Tx,
        items: &'a [IngestItem],
        shas: &'a [String],
    ) -> Result<Intake<'a>> {
        let programme = engine.programme()?;
        let now = engine.now();
        // Every member of the batch is locked up front, in member order, so that two
        // batches never wait on each other in a cycle.
        let mut external_ids: Vec<&str> = items.iter().map(|i| i.event.member.as_str()).collect();
        external_ids.sort_unstable();
        external_ids.dedup();
        let mut members: HashMap<String, MemberState> = tx
            .members_with_accounts_for_update(&external_ids)
            .await?
            .into_iter()
            .map(|row| (row.external_id.clone(), MemberState::new(row)))
            .collect();
        let ids: Vec<&str> = items.iter().map(|i| i.event.id.as_str()).collect();
        let stored = tx
            .events_get_many(&ids)
            .await?
            .into_iter()
            .map(|r| (r.event_id.clone(), r))
            .collect();
        let known: Vec<(i64, &Event)> = items
            .iter()
            .filter_map(|i| {
                members
                    .get(i.event.member.as_str())
                    .map(|m| (m.member_id(), &i.event))
            })
            .collect();
        let batch = Batch::load(tx, &programme, &known, now).await?;
        if let Some(tiers) = &batch.tiers {
            for state in members.values_mut() {
                (state.tier, state.score) = tiers.member_view(&programme, state.member_id(), now);
            }
        }
        // An order id belongs to the member who used it first.
        let order_ids: Vec<&str> = items
            .iter()
            .filter_map(|i| i.event.body.order_id().map(|o| o.as_str()))
            .collect();
        let owners = tx.order_owners_get(&order_ids).await?.into_iter().collect();
        Ok(Intake {
            programme,
            now,
            manual_clock: engine.is_manual_clock(),
            items,
            shas,
            members,
            stored,
            batch,
            owners,
            new_owners: Vec::new(),
            first_in_batch: HashMap::new(),
            new_events: Vec::with_capacity(items.len()),
        })
    }

    /// What item `k` gets without taking effect: `None` when it is admitted.
    fn admit(&self, k: usize) -> Option<Pending> {
        let event = &self.items[k].event;
        let sha = &self.shas[k];
        let refuse = |e: EngineError| Some(Pending::Done(Err(e)));
        // A repeat answers with the first result, even where the event would now be
        // refused (a closed account, an order since refunded, an activity no longer in the
        // programme, an instant now out of range).
        if let Some(row) = self.stored.get(event.id.as_str()) {
            return Some(Pending::Done(if row.body_sha256 == *sha {
                Ok(IngestOutcome::Duplicate(row.clone()))
            } else {
                Err(EngineError::EventConflict(event.id.to_string()))
            }));
        }
        if let Err(e) = occurred_in_range(event.occurred_at, self.now, self.manual_clock) {
            return refuse(e);
        }
        if let EventBody::Activity(ActivityKind::Custom(name)) = &event.body {
            if self
                .programme
                .programme
                .custom_activity(name.as_str())
                .is_none()
            {
                return refuse(EngineError::UnknownActivity(name.to_string()));
            }
        }
        let Some(state) = self.members.get(event.member.as_str()) else {
            return refuse(EngineError::MemberNotFound(event.member.to_string()));
        };
        if let Some(&first) = self.first_in_batch.get(event.id.as_str()) {
            return Some(if self.shas[first] == *sha {
                Pending::SameAs(first)
            } else {
                Pending::Done(Err(EngineError::EventConflict(event.id.to_string())))
            });
        }
        if let Some(order_id) = event.body.order_id() {
            if self
                .owners
                .get(order_id.as_str())
                .is_some_and(|&owner| owner != state.member_id())
            {
                return refuse(EngineError::OrderOfAnotherMember(order_id.to_string()));
            }
        }
        // A closed account earns nothing new, but what it already bought can still be
        // completed or refunded.
        let earns = matches!(event.body, EventBody::OrderPaid(_) | EventBody::Activity(_));
        if state.row.status == "closed" && earns {
            return refuse(EngineError::MemberClosed(event.member.to_string()));
        }
        None
    }

    /// Item `k`, admitted, takes effect: what it earns or takes back joins the batch's
    /// writes, or a refusal decided by the rules is its answer.
    async fn apply(&mut self, tx: &mut Tx, k: usize) -> Result<Pending> {
        let item = &self.items[k];
        let event = &item.event;
        let state = self
            .members
            .get_mut(event.member.as_str())
            .expect("admitted: the member was locked");
        let effect = match effect_of(
            tx,
            &mut self.batch,
            &self.programme,
            state,
            event,
            &item.canonical_json,
            self.now,
        )
        .await
        {
            Ok(effect) => effect,
            Err(EngineError::Store(e)) => return Err(e.into()),
            Err(refusal) => return Ok(Pending::Done(Err(refusal))),
        };
        effect.write(&mut self.batch, &self.programme, state, event, self.now);
        let order_id = event.body.order_id().map(|o| o.as_str());
        self.new_events.push(NewEvent {
            event_id: event.id.as_str(),
            member_id: state.member_id(),
            event_type: event.body.type_name(),
            order_id,
            occurred_at_us: to_us(event.occurred_at),
            received_at_us: to_us(self.now),
            body: &item.canonical_json,
            body_sha256: &self.shas[k],
        });
        // The order id becomes the member's with the first event stored for it.
        if let Some(order_id) = order_id {
            if !self.owners.contains_key(order_id) {
                self.owners.insert(order_id.to_owned(), state.member_id());
                self.new_owners.push((order_id, state.member_id()));
            }
        }
        self.first_in_batch.insert(event.id.as_str(), k);
        Ok(Pending::Insert)
    }

    /// Stores the batch's events, order owners, ledger, measures and balances: the events
    /// stored by id, and each member's id by external id.
    async fn write(self, tx: &mut Tx) -> Result<(HashMap<String, EventRow>, HashMap<String, i64>)> {
        let inserted: HashMap<String, EventRow> = tx
            .events_insert_many(&self.new_events)
            .await?
            .into_iter()
            .map(|r| (r.event_id.clone(), r))
            .collect();
        if inserted.len() != self.new_events.len() {
            return Err(tessera_store::StoreError::Conflict(RACE.into()).into());
        }
        // A new order id taken by another member's concurrent batch: start over.
        if tx.order_owners_insert(&self.new_owners).await? != self.new_owners.len() as u64 {
            return Err(tessera_store::StoreError::Conflict(RACE.into()).into());
        }
        self.batch.finish(tx).await?;
        let accounts: Vec<_> = self
            .members
            .values()
            .filter(|s| s.dirty)
            .map(|s| &s.row.account)
            .collect();
        tx.accounts_put_many(&accounts).await?;
        let ids = self
            .members
            .iter()
            .map(|(external, state)| (external.clone(), state.member_id()))
            .collect();
        Ok((inserted, ids))
    }
}
