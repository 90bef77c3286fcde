//! The points ledger's use cases: what an event earns or takes back (inside intake's
//! transaction), redemptions, adjustments, the member's view, and the ledger check.

use crate::clock::{from_us, to_us};
use crate::tiers::{recorded, TierBatch};
use crate::{sha256_hex, ActiveProgramme, Engine, EngineError, Result};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use tessera_domain::event::{Event, EventBody, OrderPaid, OrderRefund, RefundBy};
use tessera_domain::ledger::{
    Account, Balances, Entry, EntryKind, LedgerError, Lot, LotSource, LotState, MemberLedger,
};
use tessera_domain::points::{
    day_and_month, reversal_target, EarnContext, EarnedSoFar, ExpiryPolicy, PointsConfig,
    RefundPolicy,
};
use tessera_domain::tiers::Measure;
use tessera_domain::ExternalId;
use tessera_store::{EntryRow, LotRow, MemberAccountRow, OrderRow, PostingRow, Tx, Violation};

/// A member as intake and the ledger's use cases hold it during one transaction.
pub(crate) struct MemberState {
    pub row: MemberAccountRow,
    /// The account changed and must be written back.
    pub dirty: bool,
    /// The member's tier and score, as rule conditions see them (`member.tier`,
    /// `member.score`), when the programme has tiers or a score.
    pub tier: Option<String>,
    pub score: i64,
}

impl MemberState {
    pub fn new(row: MemberAccountRow) -> Self {
        MemberState {
            row,
            dirty: false,
            tier: None,
            score: 0,
        }
    }

    pub fn member_id(&self) -> i64 {
        self.row.account.member_id
    }

    fn balances(&self) -> Balances {
        Balances {
            pending: self.row.account.pending,
            available: self.row.account.available,
            debt: self.row.account.debt,
        }
    }

    /// The member as rule conditions see it: `member.attributes`, `member.points`, ...
    pub(crate) fn value(&self) -> Value {
        let attributes: Value =
            serde_json::from_str(&self.row.attributes).unwrap_or_else(|_| json!({}));
        json!({
            "external_id": self.row.external_id,
            "status": self.row.status,
            "attributes": attributes,
            "created_at": from_us(self.row.created_at_us).to_string(),
            "points": {"available": self.row.account.available, "pending": self.row.account.pending},
            "tier": self.tier,
            "score": self.score,
        })
    }

    pub(crate) fn ledger(&self, lots: Vec<Lot>) -> MemberLedger {
        MemberLedger::new(
            self.balances(),
            self.row.account.next_lot_no,
            self.row.account.last_activity_us.map(from_us),
            lots,
        )
    }
}

pub(crate) fn lot_from_row(r: &LotRow) -> Lot {
    Lot {
        no: r.lot_no,
        source: LotSource::parse(&r.source).unwrap_or(LotSource::Order),
        order_id: r.order_id.clone(),
        earned_at: from_us(r.earned_at_us),
        available_at: from_us(r.available_at_us),
        expires_at: r.expires_at_us.map(from_us),
        points: r.points,
        remaining: r.remaining,
        state: LotState::parse(&r.state).unwrap_or(LotState::Expired),
    }
}

fn lot_to_row(member_id: i64, l: &Lot) -> LotRow {
    LotRow {
        member_id,
        lot_no: l.no,
        source: l.source.as_str().to_owned(),
        order_id: l.order_id.clone(),
        earned_at_us: to_us(l.earned_at),
        available_at_us: to_us(l.available_at),
        expires_at_us: l.expires_at.map(to_us),
        points: l.points,
        remaining: l.remaining,
        state: l.state.as_str().to_owned(),
    }
}

/// Where a journal entry came from, for its row.
#[derive(Default, Clone)]
pub(crate) struct EntrySource<'a> {
    pub event_id: Option<&'a str>,
    pub reference: Option<&'a str>,
    pub reward_id: Option<&'a str>,
    pub reason: Option<&'a str>,
}

/// The rows a ledger operation produced: lots to insert and to update, and the numbers of
/// its journal entries (the entries themselves go into the caller's buffer).
pub(crate) struct LedgerRows {
    pub new_lots: Vec<LotRow>,
    pub changed_lots: Vec<LotRow>,
    pub entry_numbers: Vec<i64>,
}

/// The inactivity policy and the programme's time zone, when points expire that way.
pub(crate) type InactivityRule = (ExpiryPolicy, jiff::tz::TimeZone);

/// Turns what a ledger operation changed into rows: entries into `entries`, balances and
/// counters into the member's state; the lots are returned for the caller to write.
pub(crate) fn ledger_rows(
    state: &mut MemberState,
    ledger: &MemberLedger,
    source: EntrySource<'_>,
    inactivity: Option<&InactivityRule>,
    recorded_at: Timestamp,
    entries: &mut Vec<EntryRow>,
) -> LedgerRows {
    let member_id = state.member_id();
    let changes = ledger.changes();
    let new_lots = changes
        .new_lots
        .iter()
        .map(|l| lot_to_row(member_id, l))
        .collect();
    let changed_lots = changes
        .changed_lots
        .iter()
        .map(|l| lot_to_row(member_id, l))
        .collect();
    let mut entry_numbers = Vec::with_capacity(changes.entries.len());
    for e in changes.entries {
        let no = state.row.account.next_entry_no;
        state.row.account.next_entry_no += 1;
        entry_numbers.push(no);
        count_points_moved(e);
        entries.push(entry_row(member_id, no, e, &source, recorded_at));
    }
    let a = &mut state.row.account;
    a.pending = changes.balances.pending;
    a.available = changes.balances.available;
    a.debt = changes.balances.debt;
    a.next_lot_no = changes.next_lot_no;
    a.last_activity_us = changes.last_activity.map(to_us);
    if let Some((policy, tz)) = inactivity {
        a.inactive_at_us = changes
            .last_activity
            .and_then(|t| policy.inactivity_deadline(t, tz))
            .filter(|_| a.available > 0)
            .map(to_us);
    }
    state.dirty = true;
    LedgerRows {
        new_lots,
        changed_lots,
        entry_numbers,
    }
}

/// Writes one ledger change of a single member at once: its lots, journal entries and
/// balances (a spend or a credit outside intake and the jobs); the entries' numbers.
pub(crate) async fn write_ledger_change(
    tx: &mut Tx,
    state: &mut MemberState,
    ledger: &MemberLedger,
    source: EntrySource<'_>,
    programme: &ActiveProgramme,
    now: Timestamp,
) -> Result<Vec<i64>> {
    let mut entries = Vec::new();
    let inactivity = inactivity_rule(programme);
    let numbers = apply_ledger(
        tx,
        state,
        ledger,
        source,
        inactivity.as_ref(),
        now,
        &mut entries,
    )
    .await?;
    tx.entries_insert(&entries).await?;
    tx.accounts_put_many(&[&state.row.account]).await?;
    Ok(numbers)
}

/// How many lots a spend reads at a time, in the order it draws them.
const SPEND_PAGE_LOTS: u32 = 128;

/// The lots a spend of `points` needs, with the work the clock made due by `now` applied
/// and written first (releases, expiries, the inactivity deadline), as the jobs would have:
/// the due lots, and the available lots in the order a spend draws them until they cover
/// `points`. A member with years of open lots costs about what a new one does; the
/// ledger's spend asserts that the lots cover what it draws. The member is locked.
pub(crate) async fn lots_for_spend(
    tx: &mut Tx,
    state: &mut MemberState,
    programme: &ActiveProgramme,
    now: Timestamp,
    points: i64,
) -> Result<Vec<Lot>> {
    let member_id = state.member_id();
    let inactivity = inactivity_rule(programme);
    let deadline = state
        .row
        .account
        .inactive_at_us
        .filter(|t| *t <= to_us(now));
    // The inactivity deadline expires every available lot: the rare case reads them all.
    let lots = if deadline.is_some() && inactivity.is_some() {
        tx.lots_open(member_id)
            .await?
            .iter()
            .map(lot_from_row)
            .collect()
    } else {
        let due = tx.lots_due(member_id, to_us(now)).await?;
        // A spend larger than all the member could have is refused by the ledger without
        // drawing: no page is read for it.
        let releasing: i64 = due
            .iter()
            .filter(|l| l.state == LotState::Pending.as_str())
            .map(|l| l.remaining)
            .sum();
        let reachable = state.row.account.available.saturating_add(releasing);
        let points = if points > reachable { 0 } else { points };
        // A lot past its expiry is in the due lots and expires before the spend.
        let counts = |l: &LotRow| l.expires_at_us.is_none_or(|e| e > to_us(now));
        with_spend_order_prefix(tx, member_id, due, points, counts).await?
    };
    let mut ledger = state.ledger(lots);
    let mut moved = ledger.apply_due(now);
    if let Some(deadline) = deadline {
        if inactivity.is_some() {
            ledger.expire_all_available(from_us(deadline));
        }
        state.row.account.inactive_at_us = None;
        state.dirty = true;
        moved = true;
    }
    if moved {
        write_ledger_change(tx, state, &ledger, EntrySource::default(), programme, now).await?;
    }
    Ok(ledger
        .lots()
        .iter()
        .filter(|l| l.state != LotState::Expired)
        .cloned()
        .collect())
}

/// The lots a refund that takes back `points` of `order_id` needs: the order's own, and,
/// when what the policy lets it take from them falls short, the available lots in spend
/// order until they cover the rest (a refund whose points were spent takes them from the
/// balance).
pub(crate) async fn lots_for_reversal(
    tx: &mut Tx,
    member_id: i64,
    order_id: &str,
    points: i64,
    policy: RefundPolicy,
) -> Result<Vec<Lot>> {
    let own = tx.lots_of_order(member_id, order_id).await?;
    let from_own = own
        .iter()
        .map(lot_from_row)
        .filter(|l| l.reversible_for(order_id, policy))
        .fold(0i64, |sum, l| sum.saturating_add(l.remaining));
    let counts = |l: &LotRow| l.order_id.as_deref() != Some(order_id);
    with_spend_order_prefix(tx, member_id, own, points.saturating_sub(from_own), counts).await
}

/// `lots`, and the member's available lots in the order a spend draws them, a page at a
/// time, until those that `counts` count cover `points` or none is left.
async fn with_spend_order_prefix(
    tx: &mut Tx,
    member_id: i64,
    lots: Vec<LotRow>,
    points: i64,
    counts: impl Fn(&LotRow) -> bool,
) -> Result<Vec<Lot>> {
    let mut found: BTreeMap<i64, Lot> = lots.iter().map(|r| (r.lot_no, lot_from_row(r))).collect();
    let mut covered = 0i64;
    let mut after: Option<LotRow> = None;
    while covered < points {
        let page = tx
            .lots_in_spend_order(member_id, after.as_ref(), SPEND_PAGE_LOTS)
            .await?;
        for row in &page {
            if counts(row) {
                covered = covered.saturating_add(row.remaining);
            }
            found.entry(row.lot_no).or_insert_with(|| lot_from_row(row));
        }
        if page.len() < SPEND_PAGE_LOTS as usize {
            break;
        }
        after = page.last().cloned();
    }
    Ok(found.into_values().collect())
}

/// `ledger_rows`, with the lots written now.
pub(crate) async fn apply_ledger(
    tx: &mut Tx,
    state: &mut MemberState,
    ledger: &MemberLedger,
    source: EntrySource<'_>,
    inactivity: Option<&InactivityRule>,
    recorded_at: Timestamp,
    entries: &mut Vec<EntryRow>,
) -> Result<Vec<i64>> {
    let rows = ledger_rows(state, ledger, source, inactivity, recorded_at, entries);
    if !rows.new_lots.is_empty() {
        tx.lots_insert(&rows.new_lots).await?;
    }
    for l in &rows.changed_lots {
        tx.lot_update(l).await?;
    }
    Ok(rows.entry_numbers)
}

/// `tessera_points_total{movement}`: the points each kind of entry moves (the sum of its
/// positive postings), counted as the entry is written. A write that is then rolled back
/// (a conflict, a crash) is counted anyway: this is an operational rate, not the books,
/// which `tessera check` verifies.
fn count_points_moved(e: &Entry) {
    let movement = match e.kind {
        EntryKind::Earn => "issued",
        EntryKind::Release => "released",
        EntryKind::Redeem => "spent",
        EntryKind::Expire => "expired",
        EntryKind::Reverse => "reversed",
        EntryKind::Adjust => "adjusted",
        EntryKind::Forfeit => "forfeited",
    };
    let moved: i64 = e.postings.iter().map(|p| p.amount.max(0)).sum();
    metrics::counter!("tessera_points_total", "movement" => movement)
        .increment(u64::try_from(moved).unwrap_or(0));
}

fn entry_row(
    member_id: i64,
    no: i64,
    e: &Entry,
    source: &EntrySource<'_>,
    recorded_at: Timestamp,
) -> EntryRow {
    EntryRow {
        member_id,
        entry_no: no,
        kind: e.kind.as_str().to_owned(),
        at_us: to_us(e.at),
        recorded_at_us: to_us(recorded_at),
        order_id: e.order_id.clone(),
        event_id: source.event_id.map(str::to_owned),
        reference: source.reference.map(str::to_owned),
        reward_id: source.reward_id.map(str::to_owned),
        reason: source.reason.map(str::to_owned),
        pending_after: e.after.pending,
        available_after: e.after.available,
        debt_after: e.after.debt,
        postings: e
            .postings
            .iter()
            .map(|p| PostingRow {
                account: p.account.as_str().to_owned(),
                lot_no: p.lot,
                amount: p.amount,
            })
            .collect(),
    }
}

// ---- orders as the ledger keeps them ----

#[derive(Serialize, Deserialize, Clone, Debug)]
struct StoredLine {
    sku: String,
    quantity: u32,
    paid_minor: i64,
    #[serde(default)]
    refunded_quantity: u32,
    #[serde(default)]
    refunded_minor: i64,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
struct WaitingRefund {
    event_id: String,
    occurred_at_us: i64,
    #[serde(default)]
    lines: Option<Vec<(String, u32)>>,
    #[serde(default)]
    amount_minor: Option<i64>,
}

impl WaitingRefund {
    fn by(&self) -> Option<RefundSpec> {
        match (&self.lines, self.amount_minor) {
            (Some(lines), _) => Some(RefundSpec::Lines(lines.clone())),
            (None, Some(a)) => Some(RefundSpec::Amount(a)),
            (None, None) => None,
        }
    }
}

enum RefundSpec {
    Lines(Vec<(String, u32)>),
    Amount(i64),
}

fn spec_of(refund: &OrderRefund) -> RefundSpec {
    match &refund.by {
        RefundBy::Lines(lines) => RefundSpec::Lines(
            lines
                .iter()
                .map(|l| (l.sku.as_str().to_owned(), l.quantity()))
                .collect(),
        ),
        RefundBy::Amount(a) => RefundSpec::Amount(a.get()),
    }
}

fn empty_order(member_id: i64, order_id: &str) -> OrderRow {
    OrderRow {
        member_id,
        order_id: order_id.to_owned(),
        state: "awaiting_paid".into(),
        paid_at_us: None,
        total_minor: 0,
        goods_minor: 0,
        lines: "[]".into(),
        points_earned: 0,
        points_reversed: 0,
        refunded_goods_minor: 0,
        refunded_total_minor: 0,
        waiting_refunds: "[]".into(),
        score_earned: 0,
        score_reversed: 0,
    }
}

pub(crate) fn corrupt(what: &str) -> EngineError {
    EngineError::Store(tessera_store::StoreError::Database(format!(
        "corrupt stored {what}"
    )))
}

/// What one refund takes back from its order.
#[derive(Debug, Clone, Copy, Default)]
struct RefundDelta {
    points: i64,
    goods: i64,
    score: i64,
}

impl RefundDelta {
    /// The measures it lowers, for score and tiers.
    fn measures(self) -> Vec<(Measure, i64)> {
        vec![
            (Measure::Score, -self.score),
            (Measure::Spend, -self.goods),
            (Measure::Points, -self.points),
        ]
    }
}

/// Records a refund on a paid order and returns what it takes back: points and score pro
/// rata, and the goods refunded. `strict` refuses a refund larger than what is left; a
/// refund that arrived before its order is applied with `strict = false`, clamped.
fn record_refund(order: &mut OrderRow, spec: &RefundSpec, strict: bool) -> Result<RefundDelta> {
    let mut lines: Vec<StoredLine> =
        serde_json::from_str(&order.lines).map_err(|_| corrupt("order lines"))?;
    let (goods_delta, money_delta) = match spec {
        RefundSpec::Lines(refund_lines) => {
            let mut goods = 0i64;
            for (sku, quantity) in refund_lines {
                let left: u32 = lines
                    .iter()
                    .filter(|l| &l.sku == sku)
                    .map(|l| l.quantity - l.refunded_quantity)
                    .sum();
                if *quantity > left && strict {
                    return Err(EngineError::RefundExceedsOrder(format!(
                        "order `{}` has {left} of `{sku}` left to refund, not {quantity}",
                        order.order_id
                    )));
                }
                let mut q = (*quantity).min(left);
                for l in lines.iter_mut().filter(|l| &l.sku == sku) {
                    let take = q.min(l.quantity - l.refunded_quantity);
                    if take == 0 {
                        continue;
                    }
                    l.refunded_quantity += take;
                    q -= take;
                    let now_refunded = i64::try_from(
                        i128::from(l.paid_minor) * i128::from(l.refunded_quantity)
                            / i128::from(l.quantity),
                    )
                    .unwrap_or(l.paid_minor);
                    goods += now_refunded - l.refunded_minor;
                    l.refunded_minor = now_refunded;
                }
            }
            // Lines refunded after a refund by amount: the money refunded never passes
            // what was paid, whatever mix of shapes the refunds came in.
            let goods_left = (order.goods_minor - order.refunded_goods_minor).max(0);
            let money_left = (order.total_minor - order.refunded_total_minor).max(0);
            if goods > goods_left.min(money_left) && strict {
                return Err(EngineError::RefundExceedsOrder(format!(
                    "order `{}` has {} left to refund, and these lines come to {goods}",
                    order.order_id,
                    goods_left.min(money_left)
                )));
            }
            let goods = goods.min(goods_left).min(money_left);
            (goods, goods)
        }
        RefundSpec::Amount(amount) => {
            let left = (order.total_minor - order.refunded_total_minor).max(0);
            if *amount > left && strict {
                return Err(EngineError::RefundExceedsOrder(format!(
                    "order `{}` has {left} left to refund, not {amount}",
                    order.order_id
                )));
            }
            let money = (*amount).min(left);
            (
                money.min((order.goods_minor - order.refunded_goods_minor).max(0)),
                money,
            )
        }
    };
    order.lines = serde_json::to_string(&lines).map_err(|_| corrupt("order lines"))?;
    order.refunded_goods_minor += goods_delta;
    order.refunded_total_minor += money_delta;
    let target = reversal_target(
        order.points_earned,
        order.goods_minor,
        order.refunded_goods_minor,
    );
    let points = (target - order.points_reversed).max(0);
    order.points_reversed += points;
    let score_target = reversal_target(
        order.score_earned,
        order.goods_minor,
        order.refunded_goods_minor,
    );
    let score = (score_target - order.score_reversed).max(0);
    order.score_reversed += score;
    Ok(RefundDelta {
        points,
        goods: goods_delta,
        score,
    })
}

/// What members gained in each day and month a batch's events fall in: what the caps of
/// points and of the score count. Read once per period, kept current as the batch adds.
pub(crate) struct PeriodSums {
    tz: jiff::tz::TimeZone,
    /// (member, start of the day or month) → the sum.
    sums: HashMap<(i64, i64), i64>,
}

impl PeriodSums {
    pub(crate) fn new(tz: &jiff::tz::TimeZone) -> Self {
        PeriodSums {
            tz: tz.clone(),
            sums: HashMap::new(),
        }
    }

    /// Each day and month `[from, to)` the events fall in, with the members who have
    /// events there.
    pub(crate) fn periods(
        events: &[(i64, &Event)],
        tz: &jiff::tz::TimeZone,
    ) -> BTreeMap<(i64, i64), Vec<i64>> {
        let mut periods: BTreeMap<(i64, i64), Vec<i64>> = BTreeMap::new();
        for (m, e) in events {
            let (day, month) = day_and_month(e.occurred_at, tz);
            for (from, to) in [day, month] {
                periods
                    .entry((to_us(from), to_us(to)))
                    .or_default()
                    .push(*m);
            }
        }
        for members in periods.values_mut() {
            members.sort_unstable();
            members.dedup();
        }
        periods
    }

    pub(crate) fn set(&mut self, member_id: i64, from_us: i64, sum: i64) {
        self.sums.insert((member_id, from_us), sum);
    }

    /// What the member gained in the day and in the month of `at`.
    pub(crate) fn so_far(&self, member_id: i64, at: Timestamp) -> EarnedSoFar {
        let (day, month) = day_and_month(at, &self.tz);
        let sum = |from: Timestamp| {
            self.sums
                .get(&(member_id, to_us(from)))
                .copied()
                .unwrap_or(0)
        };
        EarnedSoFar {
            day: sum(day.0),
            month: sum(month.0),
        }
    }

    /// Counts a gain of the batch at `at`.
    pub(crate) fn add(&mut self, member_id: i64, at: Timestamp, amount: i64) {
        let (day, month) = day_and_month(at, &self.tz);
        for (from, _) in [day, month] {
            *self.sums.entry((member_id, to_us(from))).or_insert(0) += amount;
        }
    }
}

/// What intake knows across one batch: the orders its events name, what members earned
/// in the batch's days and months (for caps), and the rows to write at the end. Reading all of it up front, and writing in multi-row statements, is
/// what lets a batch of a thousand orders cost a few dozen statements.
pub(crate) struct Batch {
    orders: HashMap<(i64, String), OrderRow>,
    dirty_orders: BTreeSet<(i64, String)>,
    /// Points earned from events in the batch's days and months, when points are capped.
    caps: Option<PeriodSums>,
    lots_new: Vec<LotRow>,
    lot_updates: Vec<LotRow>,
    pub entries: Vec<EntryRow>,
    inactivity: Option<InactivityRule>,
    /// Measures and tier states, when the programme keeps a score or tiers.
    pub(crate) tiers: Option<TierBatch>,
}

impl Batch {
    /// Reads what the batch's events need. `events` pairs each event with its member id.
    pub(crate) async fn load(
        tx: &mut Tx,
        programme: &ActiveProgramme,
        events: &[(i64, &Event)],
        now: Timestamp,
    ) -> Result<Batch> {
        let tiers = TierBatch::load(tx, programme, events, now).await?;
        let mut keys: Vec<(i64, &str)> = events
            .iter()
            .filter_map(|(m, e)| e.body.order_id().map(|o| (*m, o.as_str())))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let orders = tx
            .orders_get_many(&keys)
            .await?
            .into_iter()
            .map(|o| ((o.member_id, o.order_id.clone()), o))
            .collect();
        let tz = &programme.programme.timezone;
        let caps = match programme.programme.points.as_ref() {
            Some(c) if c.has_period_caps() => {
                let mut sums = PeriodSums::new(tz);
                let sources = LotSource::CAPPED.map(LotSource::as_str);
                for ((from, to), members) in PeriodSums::periods(events, tz) {
                    for (m, points) in tx
                        .earnings_between_many(&members, &sources, from, to)
                        .await?
                    {
                        sums.set(m, from, points);
                    }
                }
                Some(sums)
            }
            _ => None,
        };
        Ok(Batch {
            orders,
            dirty_orders: BTreeSet::new(),
            caps,
            lots_new: Vec::new(),
            lot_updates: Vec::new(),
            entries: Vec::new(),
            inactivity: inactivity_rule(programme),
            tiers,
        })
    }

    /// Points the member earned from events in the day and month of `at`.
    fn points_so_far(&self, member_id: i64, at: Timestamp) -> EarnedSoFar {
        self.caps
            .as_ref()
            .map_or(EarnedSoFar::default(), |c| c.so_far(member_id, at))
    }

    /// A member's open lots as they stand, with what the batch changed so far.
    async fn open_lots(&mut self, tx: &mut Tx, member_id: i64) -> Result<Vec<Lot>> {
        self.flush_lots(tx).await?;
        Ok(tx
            .lots_open(member_id)
            .await?
            .iter()
            .map(lot_from_row)
            .collect())
    }

    async fn flush_lots(&mut self, tx: &mut Tx) -> Result<()> {
        if !self.lots_new.is_empty() {
            tx.lots_insert(&self.lots_new).await?;
            self.lots_new.clear();
        }
        for l in self.lot_updates.drain(..) {
            tx.lot_update(&l).await?;
        }
        Ok(())
    }

    /// Writes everything the batch buffered.
    pub(crate) async fn finish(mut self, tx: &mut Tx) -> Result<()> {
        self.flush_lots(tx).await?;
        let orders: Vec<OrderRow> = self
            .dirty_orders
            .iter()
            .filter_map(|k| self.orders.remove(k))
            .collect();
        tx.orders_put_many(&orders).await?;
        tx.entries_insert(&self.entries).await?;
        if let Some(tiers) = self.tiers {
            tiers.finish(tx).await?;
        }
        Ok(())
    }
}

/// What one event does to the ledger, computed before the event is stored.
pub(crate) struct Effect {
    ledger: Option<MemberLedger>,
    order: Option<OrderRow>,
    /// Changes of the measures tiers and the score count (kept only when recorded).
    measures: Vec<(Measure, i64)>,
}

fn policy(programme: &ActiveProgramme) -> RefundPolicy {
    programme
        .programme
        .points
        .as_ref()
        .map_or(RefundPolicy::WithinBalance, |p| p.refund_policy)
}

/// Works out what `event` does for the member; writes nothing (it may flush what the
/// batch buffered, to read a member's lots).
pub(crate) async fn effect_of(
    tx: &mut Tx,
    batch: &mut Batch,
    programme: &ActiveProgramme,
    state: &MemberState,
    event: &Event,
    canonical_json: &str,
    now: Timestamp,
) -> Result<Effect> {
    let config = programme.programme.points.as_ref();
    let tz = &programme.programme.timezone;
    let member_id = state.member_id();
    match &event.body {
        EventBody::OrderPaid(paid) => {
            let key = (member_id, paid.order_id.as_str().to_owned());
            let existing = batch.orders.get(&key);
            if existing.is_some_and(|o| o.state == "paid") {
                return Err(EngineError::OrderAlreadyPaid(paid.order_id.to_string()));
            }
            let waiting: Vec<WaitingRefund> = match existing {
                Some(o) => serde_json::from_str(&o.waiting_refunds)
                    .map_err(|_| corrupt("waiting refunds"))?,
                None => Vec::new(),
            };
            order_paid_effect(
                tx,
                batch,
                programme,
                config,
                tz,
                state,
                event,
                paid,
                canonical_json,
                waiting,
                now,
            )
            .await
        }
        EventBody::OrderRefunded(refund) => {
            let key = (member_id, refund.order_id.as_str().to_owned());
            let mut order = batch
                .orders
                .get(&key)
                .cloned()
                .unwrap_or_else(|| empty_order(member_id, refund.order_id.as_str()));
            if order.state != "paid" {
                // The refund came before its order: kept, and applied when the order arrives.
                let mut waiting: Vec<WaitingRefund> = serde_json::from_str(&order.waiting_refunds)
                    .map_err(|_| corrupt("waiting refunds"))?;
                let spec = spec_of(refund);
                waiting.push(WaitingRefund {
                    event_id: event.id.as_str().to_owned(),
                    occurred_at_us: to_us(event.occurred_at),
                    lines: match &spec {
                        RefundSpec::Lines(l) => Some(l.clone()),
                        RefundSpec::Amount(_) => None,
                    },
                    amount_minor: match spec {
                        RefundSpec::Amount(a) => Some(a),
                        RefundSpec::Lines(_) => None,
                    },
                });
                order.waiting_refunds =
                    serde_json::to_string(&waiting).map_err(|_| corrupt("waiting refunds"))?;
                return Ok(Effect {
                    ledger: None,
                    order: Some(order),
                    measures: Vec::new(),
                });
            }
            let delta = record_refund(&mut order, &spec_of(refund), true)?;
            let points = delta.points;
            let ledger = if points > 0 {
                batch.flush_lots(tx).await?;
                let lots = lots_for_reversal(
                    tx,
                    member_id,
                    refund.order_id.as_str(),
                    points,
                    policy(programme),
                )
                .await?;
                let mut ledger = state.ledger(lots);
                ledger.reverse_order(
                    refund.order_id.as_str(),
                    points,
                    policy(programme),
                    event.occurred_at,
                );
                Some(ledger)
            } else {
                None
            };
            Ok(Effect {
                ledger,
                order: Some(order),
                measures: delta.measures(),
            })
        }
        EventBody::Activity(kind) => {
            let custom = programme.programme.custom_activity(kind.name());
            let gated = custom.is_some_and(|a| a.condition.is_some() || a.segment.is_some());
            let score = programme.programme.score.as_ref();
            let config = config.filter(|c| c.rewards_activity(kind.name()));
            let (member, event_value) = condition_values(
                gated
                    || score.is_some_and(|r| r.uses_conditions())
                    || config.is_some_and(|c| c.uses_conditions()),
                state,
                canonical_json,
            );
            // An activity declared for some members earns nothing for the others: the
            // event is kept, and does nothing.
            if gated
                && !programme
                    .programme
                    .activity_earns(kind.name(), &member, &event_value)
            {
                return Ok(Effect {
                    ledger: None,
                    order: None,
                    measures: Vec::new(),
                });
            }
            let ctx = |earned| EarnContext {
                tz,
                occurred_at: event.occurred_at,
                member: &member,
                event: &event_value,
                first_order: false,
                earned,
            };
            let mut measures = Vec::new();
            if let (Some(rules), Some(t)) = (score, &batch.tiers) {
                let earned = t.score_so_far(member_id, event.occurred_at);
                measures.push((Measure::Score, rules.score_activity(kind, &ctx(earned))));
            }
            let points = match config {
                Some(c) => c.earn_activity(
                    kind,
                    &ctx(batch.points_so_far(member_id, event.occurred_at)),
                ),
                None => 0,
            };
            let Some(config) = config.filter(|_| points > 0) else {
                return Ok(Effect {
                    ledger: None,
                    order: None,
                    measures,
                });
            };
            let mut ledger = state.ledger(Vec::new());
            let expires = config.lot_expiry(event.occurred_at, tz, &member);
            ledger
                .earn(
                    LotSource::Activity,
                    None,
                    event.occurred_at,
                    event.occurred_at,
                    expires,
                    points,
                    now,
                )
                .map_err(ledger_error)?;
            measures.push((Measure::Points, points));
            Ok(Effect {
                ledger: Some(ledger),
                order: None,
                measures,
            })
        }
        EventBody::OrderCompleted { .. } => Ok(Effect {
            ledger: None,
            order: None,
            measures: Vec::new(),
        }),
    }
}

/// The member and the event as rule conditions see them, or nulls when no rule looks.
fn condition_values(needed: bool, state: &MemberState, canonical_json: &str) -> (Value, Value) {
    if needed {
        (state.value(), event_value(canonical_json))
    } else {
        (Value::Null, Value::Null)
    }
}

fn event_value(canonical_json: &str) -> Value {
    serde_json::from_str(canonical_json).unwrap_or(Value::Null)
}

#[allow(clippy::too_many_arguments)]
async fn order_paid_effect(
    tx: &mut Tx,
    batch: &mut Batch,
    programme: &ActiveProgramme,
    config: Option<&PointsConfig>,
    tz: &jiff::tz::TimeZone,
    state: &MemberState,
    event: &Event,
    paid: &OrderPaid,
    canonical_json: &str,
    waiting: Vec<WaitingRefund>,
    now: Timestamp,
) -> Result<Effect> {
    let member_id = state.member_id();
    let order_id = paid.order_id.as_str();
    let (goods, lines) = tessera_domain::points::allocate_paid(paid);
    let mut order = OrderRow {
        member_id,
        order_id: order_id.to_owned(),
        state: "paid".into(),
        paid_at_us: Some(to_us(event.occurred_at)),
        total_minor: paid.total.get(),
        goods_minor: goods,
        lines: serde_json::to_string(
            &lines
                .iter()
                .map(|l| StoredLine {
                    sku: l.sku.clone(),
                    quantity: l.quantity,
                    paid_minor: l.paid_minor,
                    refunded_quantity: 0,
                    refunded_minor: 0,
                })
                .collect::<Vec<_>>(),
        )
        .map_err(|_| corrupt("order lines"))?,
        points_earned: 0,
        points_reversed: 0,
        refunded_goods_minor: 0,
        refunded_total_minor: 0,
        waiting_refunds: "[]".into(),
        score_earned: 0,
        score_reversed: 0,
    };
    let score = programme.programme.score.as_ref();
    let (member, event_value) = condition_values(
        score.is_some_and(|r| r.uses_conditions()) || config.is_some_and(|c| c.uses_conditions()),
        state,
        canonical_json,
    );
    let ctx = |earned| EarnContext {
        tz,
        occurred_at: event.occurred_at,
        member: &member,
        event: &event_value,
        first_order: state.row.account.paid_orders == 0,
        earned,
    };
    let mut measures = vec![(Measure::Spend, goods)];
    if let (Some(rules), Some(t)) = (score, &batch.tiers) {
        let earned = t.score_so_far(member_id, event.occurred_at);
        order.score_earned = rules.score_order(goods, &ctx(earned));
        measures.push((Measure::Score, order.score_earned));
    }
    let Some(config) = config else {
        for w in &waiting {
            if let Some(spec) = w.by() {
                measures.extend(record_refund(&mut order, &spec, false)?.measures());
            }
        }
        return Ok(Effect {
            ledger: None,
            order: Some(order),
            measures,
        });
    };
    let points = config.earn_order(
        paid,
        &lines,
        &ctx(batch.points_so_far(member_id, event.occurred_at)),
    );
    order.points_earned = points;
    // Refunds that came first need every open lot; a plain order needs none.
    let lots = if waiting.is_empty() {
        Vec::new()
    } else {
        batch.open_lots(tx, member_id).await?
    };
    let mut ledger = state.ledger(lots);
    if points > 0 {
        let expires = config.lot_expiry(event.occurred_at, tz, &member);
        ledger
            .earn(
                LotSource::Order,
                Some(order_id),
                event.occurred_at,
                config.available_at(event.occurred_at),
                expires,
                points,
                now,
            )
            .map_err(ledger_error)?;
    }
    measures.push((Measure::Points, points));
    for w in &waiting {
        if let Some(spec) = w.by() {
            let delta = record_refund(&mut order, &spec, false)?;
            measures.extend(delta.measures());
            let points = delta.points;
            if points > 0 {
                ledger.reverse_order(
                    order_id,
                    points,
                    config.refund_policy,
                    from_us(w.occurred_at_us).max(event.occurred_at),
                );
            }
        }
    }
    Ok(Effect {
        ledger: Some(ledger),
        order: Some(order),
        measures,
    })
}

impl Effect {
    /// Records the effect of an event that will be stored with the batch.
    pub(crate) fn write(
        self,
        batch: &mut Batch,
        programme: &ActiveProgramme,
        state: &mut MemberState,
        event: &Event,
        recorded_at: Timestamp,
    ) {
        let event_id = event.id.as_str();
        let member_id = state.member_id();
        if let Some(order) = self.order {
            // Counts orders: a refund of a paid order returns the order too.
            if order.state == "paid" && matches!(event.body, EventBody::OrderPaid(_)) {
                state.row.account.paid_orders += 1;
                state.dirty = true;
            }
            let key = (member_id, order.order_id.clone());
            batch.dirty_orders.insert(key.clone());
            batch.orders.insert(key, order);
        }
        if let Some(ledger) = &self.ledger {
            let source = EntrySource {
                event_id: Some(event_id),
                ..Default::default()
            };
            let rows = ledger_rows(
                state,
                ledger,
                source,
                batch.inactivity.as_ref(),
                recorded_at,
                &mut batch.entries,
            );
            if let Some(caps) = &mut batch.caps {
                for l in rows
                    .new_lots
                    .iter()
                    .filter(|l| l.source != LotSource::Adjustment.as_str())
                {
                    caps.add(member_id, from_us(l.earned_at_us), l.points);
                }
            }
            batch.lots_new.extend(rows.new_lots);
            batch.lot_updates.extend(rows.changed_lots);
        }
        if let Some(tiers) = &mut batch.tiers {
            // One change per measure and event: an order that takes in refunds that came
            // before it both adds and takes back, and its entries are keyed by event.
            let mut measures: Vec<(Measure, i64)> = Vec::new();
            for (m, amount) in self.measures {
                if !recorded(programme, m) {
                    continue;
                }
                match measures.iter_mut().find(|(seen, _)| *seen == m) {
                    Some((_, sum)) => *sum += amount,
                    None => measures.push((m, amount)),
                }
            }
            tiers.record(
                programme,
                state,
                &measures,
                event.occurred_at,
                event_id,
                event.body.order_id().map(|o| o.as_str()),
                recorded_at,
            );
        }
    }
}

/// The inactivity policy and time zone, when the programme expires points that way.
pub(crate) fn inactivity_rule(programme: &ActiveProgramme) -> Option<InactivityRule> {
    programme
        .programme
        .points
        .as_ref()
        .filter(|c| matches!(c.expiry, ExpiryPolicy::Inactivity { .. }))
        .map(|c| (c.expiry, programme.programme.timezone.clone()))
}

pub(crate) fn ledger_error(e: LedgerError) -> EngineError {
    match e {
        LedgerError::InsufficientPoints { needed, available } => {
            EngineError::InsufficientPoints { needed, available }
        }
        LedgerError::Overflow => EngineError::PointsOverflow,
    }
}

// ---- redemptions and adjustments ----

/// What a redemption asks for.
#[derive(Debug, Clone)]
pub enum RedemptionTarget {
    Points(i64),
    Reward(String),
}

#[derive(Debug, Clone)]
pub struct RedemptionRequest {
    /// The client's id of this redemption: the same id replays the first answer.
    pub id: ExternalId,
    pub target: RedemptionTarget,
    pub reason: Option<String>,
}

#[derive(Debug, Clone)]
pub struct AdjustmentRequest {
    pub id: ExternalId,
    /// Positive credits, negative debits.
    pub points: i64,
    pub reason: String,
}

/// A redemption or adjustment as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    pub id: String,
    pub entry_no: i64,
    pub kind: &'static str,
    pub points: i64,
    pub reward: Option<String>,
    /// The money value of the points at the programme's redemption rate, if it has one.
    pub value_minor: Option<i64>,
    pub reason: Option<String>,
    /// (lot, points) drawn, or the lot credited.
    pub lots: Vec<(i64, i64)>,
    pub at: Timestamp,
    pub balances: Balances,
    /// Whether this answer replays an earlier one with the same id.
    pub replayed: bool,
}

impl Engine {
    pub(crate) async fn lock_member(
        &self,
        tx: &mut Tx,
        external_id: &ExternalId,
    ) -> Result<MemberState> {
        let row = tx
            .members_with_accounts_for_update(&[external_id.as_str()])
            .await?
            .pop()
            .ok_or_else(|| EngineError::MemberNotFound(external_id.to_string()))?;
        Ok(MemberState::new(row))
    }

    /// Spends points on a catalogue reward or as a number of points; refused whole, with
    /// nothing changed, when the balance or the stock is short.
    pub async fn redeem(
        &self,
        member: &ExternalId,
        request: RedemptionRequest,
    ) -> Result<Operation> {
        let programme = self.programme()?;
        let config = programme
            .programme
            .points
            .as_ref()
            .ok_or(EngineError::PointsDisabled)?;
        let target = match &request.target {
            RedemptionTarget::Points(p) => serde_json::json!({ "points": p }),
            RedemptionTarget::Reward(id) => serde_json::json!({ "reward": id }),
        };
        let request_sha = sha256_hex(
            serde_json::json!({"redeem": target, "reason": request.reason})
                .to_string()
                .as_bytes(),
        );
        let mut tx = self.store.begin().await?;
        let mut state = self.lock_member(&mut tx, member).await?;
        if let Some(op) = self
            .replay(&mut tx, &state, &request.id, &request_sha, config)
            .await?
        {
            return Ok(op);
        }
        match state.row.status.as_str() {
            "closed" => return Err(EngineError::MemberClosed(member.to_string())),
            "frozen" => return Err(EngineError::MemberFrozen(member.to_string())),
            _ => {}
        }
        let (points, reward) = match &request.target {
            RedemptionTarget::Points(p) => {
                let minimum = config
                    .redemption
                    .as_ref()
                    .map_or(1, |r| r.minimum_points.max(1));
                if *p < minimum {
                    return Err(EngineError::BelowMinimum { minimum });
                }
                (*p, None)
            }
            RedemptionTarget::Reward(id) => {
                let reward = config
                    .reward(id)
                    .ok_or_else(|| EngineError::UnknownReward(id.clone()))?;
                (reward.points, Some(reward))
            }
        };
        // Stock first: an out-of-stock reward is refused whatever the balance. Either
        // refusal drops the transaction, so nothing is taken.
        if let Some(reward) = reward {
            if !tx.reward_take(&reward.id, reward.stock).await? {
                return Err(EngineError::RewardOutOfStock(reward.id.clone()));
            }
        }
        let now = self.now();
        let lots = lots_for_spend(&mut tx, &mut state, &programme, now, points).await?;
        let mut ledger = state.ledger(lots);
        ledger
            .spend(points, EntryKind::Redeem, now)
            .map_err(ledger_error)?;
        let source = EntrySource {
            reference: Some(request.id.as_str()),
            reward_id: reward.map(|r| r.id.as_str()),
            reason: request.reason.as_deref(),
            ..Default::default()
        };
        let entry = Self::commit_operation(
            tx,
            &mut state,
            &ledger,
            source,
            &programme,
            now,
            &request_sha,
        )
        .await?;
        Ok(operation_of(&request.id, &entry, config, false))
    }

    /// A manual credit (a new available lot) or debit (drawn like a redemption).
    pub async fn adjust(
        &self,
        member: &ExternalId,
        request: AdjustmentRequest,
    ) -> Result<Operation> {
        let programme = self.programme()?;
        let config = programme
            .programme
            .points
            .as_ref()
            .ok_or(EngineError::PointsDisabled)?;
        let request_sha =
            sha256_hex(format!("adjust|{}|{}", request.points, request.reason).as_bytes());
        let mut tx = self.store.begin().await?;
        let mut state = self.lock_member(&mut tx, member).await?;
        if let Some(op) = self
            .replay(&mut tx, &state, &request.id, &request_sha, config)
            .await?
        {
            return Ok(op);
        }
        if state.row.status == "closed" {
            return Err(EngineError::MemberClosed(member.to_string()));
        }
        let now = self.now();
        let mut ledger;
        if request.points > 0 {
            ledger = credited(&mut tx, &mut state, &programme, request.points, now).await?;
        } else {
            let lots =
                lots_for_spend(&mut tx, &mut state, &programme, now, -request.points).await?;
            ledger = state.ledger(lots);
            ledger
                .spend(-request.points, EntryKind::Adjust, now)
                .map_err(ledger_error)?;
        }
        let source = EntrySource {
            reference: Some(request.id.as_str()),
            reason: Some(&request.reason),
            ..Default::default()
        };
        let entry = Self::commit_operation(
            tx,
            &mut state,
            &ledger,
            source,
            &programme,
            now,
            &request_sha,
        )
        .await?;
        Ok(operation_of(&request.id, &entry, config, false))
    }

    /// Writes a redemption's or adjustment's one journal entry, its lots, the operation id
    /// and the balances, and commits; returns the entry.
    async fn commit_operation(
        mut tx: Tx,
        state: &mut MemberState,
        ledger: &MemberLedger,
        source: EntrySource<'_>,
        programme: &ActiveProgramme,
        now: Timestamp,
        request_sha: &str,
    ) -> Result<EntryRow> {
        let operation_id = source.reference.unwrap_or_default().to_owned();
        let mut entries = Vec::new();
        let inactivity = inactivity_rule(programme);
        let numbers = apply_ledger(
            &mut tx,
            state,
            ledger,
            source,
            inactivity.as_ref(),
            now,
            &mut entries,
        )
        .await?;
        tx.entries_insert(&entries).await?;
        tx.operation_insert(state.member_id(), &operation_id, request_sha, numbers[0])
            .await?;
        tx.accounts_put_many(&[&state.row.account]).await?;
        tx.commit().await?;
        Ok(entries.swap_remove(0))
    }

    /// The first answer of an operation id seen before; a conflict if its request differed.
    async fn replay(
        &self,
        tx: &mut Tx,
        state: &MemberState,
        id: &ExternalId,
        request_sha: &str,
        config: &PointsConfig,
    ) -> Result<Option<Operation>> {
        let Some((sha, entry_no)) = tx.operation_get(state.member_id(), id.as_str()).await? else {
            return Ok(None);
        };
        if sha != request_sha {
            return Err(EngineError::OperationConflict(id.to_string()));
        }
        let entry = tx
            .entry_get(state.member_id(), entry_no)
            .await?
            .ok_or_else(|| corrupt("operation entry"))?;
        Ok(Some(operation_of(id, &entry, config, true)))
    }
}

/// A redemption or adjustment as its journal entry records it: the first answer and every
/// replay are built the same way, so they are the same.
fn operation_of(
    id: &ExternalId,
    entry: &EntryRow,
    config: &PointsConfig,
    replayed: bool,
) -> Operation {
    let redemption = entry.kind == EntryKind::Redeem.as_str();
    // Spent points are posted positive to the shop, credited points negative.
    let to_shop: i64 = entry
        .postings
        .iter()
        .filter(|p| {
            p.account == Account::ShopRedeemed.as_str()
                || p.account == Account::ShopAdjustment.as_str()
        })
        .map(|p| p.amount)
        .sum();
    let credit = to_shop < 0;
    let lots = entry
        .postings
        .iter()
        .filter(|p| p.account == Account::MemberAvailable.as_str())
        .filter_map(|p| {
            p.lot_no
                .map(|l| (l, if credit { p.amount } else { -p.amount }))
        })
        .collect();
    Operation {
        id: id.to_string(),
        entry_no: entry.entry_no,
        kind: if redemption {
            "redemption"
        } else {
            "adjustment"
        },
        points: if redemption { to_shop } else { -to_shop },
        reward: entry.reward_id.clone(),
        value_minor: if redemption {
            config.redemption.as_ref().map(|r| r.value_of(to_shop))
        } else {
            None
        },
        reason: entry.reason.clone(),
        lots,
        at: from_us(entry.at_us),
        balances: Balances {
            pending: entry.pending_after,
            available: entry.available_after,
            debt: entry.debt_after,
        },
        replayed,
    }
}

// ---- views ----

/// A member's points: balances, the next expiry, what expires soon, and the lots.
#[derive(Debug, Clone)]
pub struct PointsSummary {
    pub balances: Balances,
    pub next_expiry: Option<(Timestamp, i64)>,
    pub expiring_within_days: i64,
    pub expiring_points: i64,
    pub inactive_at: Option<Timestamp>,
    pub lots: Vec<Lot>,
}

impl Engine {
    pub async fn points_summary(
        &self,
        member: &ExternalId,
        within_days: i64,
        with_closed_lots: bool,
    ) -> Result<PointsSummary> {
        let m = self.member(member).await?;
        let account = self
            .store
            .account_get(m.id)
            .await?
            .ok_or_else(|| corrupt("point account"))?;
        let lots: Vec<Lot> = self
            .store
            .lots_list(m.id, with_closed_lots)
            .await?
            .iter()
            .map(lot_from_row)
            .collect();
        let now = self.now();
        let horizon = now
            .checked_add(jiff::Span::new().hours(24 * within_days))
            .unwrap_or(Timestamp::MAX);
        let open = lots
            .iter()
            .filter(|l| l.state != LotState::Expired && l.remaining > 0);
        let mut next: Option<(Timestamp, i64)> = None;
        let mut expiring = 0;
        for l in open {
            if let Some(e) = l.expires_at {
                match &mut next {
                    Some((t, p)) if *t == e => *p += l.remaining,
                    Some((t, _)) if *t < e => {}
                    _ => next = Some((e, l.remaining)),
                }
                if e <= horizon {
                    expiring += l.remaining;
                }
            }
        }
        let inactive_at = account.inactive_at_us.map(from_us);
        if let Some(t) = inactive_at {
            if t <= horizon {
                expiring = account.available;
            }
            if next.is_none_or(|(e, _)| t < e) {
                next = Some((t, account.available));
            }
        }
        Ok(PointsSummary {
            balances: Balances {
                pending: account.pending,
                available: account.available,
                debt: account.debt,
            },
            next_expiry: next,
            expiring_within_days: within_days,
            expiring_points: expiring,
            inactive_at,
            lots,
        })
    }

    /// Members whose points expire within `within_days` of now, by member id, a page at a
    /// time: (external id, points, first expiry), and the next cursor if any.
    pub async fn expiring_points(
        &self,
        within_days: i64,
        after_member_id: i64,
        limit: u32,
    ) -> Result<(Vec<(String, i64, Timestamp)>, Option<i64>)> {
        let horizon = self
            .now()
            .checked_add(jiff::Span::new().hours(24 * within_days))
            .unwrap_or(Timestamp::MAX);
        let rows = self
            .store
            .expiring_by_member(to_us(horizon), after_member_id, limit + 1)
            .await?;
        let (rows, next) = crate::page::page_of(rows, limit, |r| r.0);
        Ok((
            rows.into_iter()
                .map(|(_, external, points, at)| (external, points, from_us(at)))
                .collect(),
            next,
        ))
    }

    /// A page of a member's journal after `after_entry_no`; the next cursor if any.
    pub async fn ledger_page(
        &self,
        member: &ExternalId,
        after_entry_no: i64,
        limit: u32,
    ) -> Result<(Vec<EntryRow>, Option<i64>)> {
        let m = self.member(member).await?;
        let rows = self
            .store
            .entries_page(m.id, after_entry_no, limit + 1)
            .await?;
        Ok(crate::page::page_of(rows, limit, |r| r.entry_no))
    }
}

// ---- the ledger check ----

/// What `tessera check` found.
#[derive(Debug, Clone, Default)]
pub struct LedgerReport {
    pub members_checked: i64,
    pub violations: Vec<Violation>,
    /// Each account's sum of postings.
    pub accounts: Vec<(String, i64)>,
    /// Points outstanding on members' accounts (pending + available − debt).
    pub outstanding: i64,
    /// The shop's liability as the postings give it: minus the shop accounts' sum.
    pub liability: i64,
    /// Stored value held on members' accounts, in minor units.
    pub stored_value: i64,
}

impl LedgerReport {
    pub fn is_balanced(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Members checked per query of `check_ledger`.
pub const CHECK_CHUNK_MEMBERS: i64 = 5_000;

impl Engine {
    /// Checks every invariant of the ledger; `progress(done, total)` is called per chunk.
    pub async fn check_ledger(&self, mut progress: impl FnMut(i64, i64)) -> Result<LedgerReport> {
        // Every figure from one snapshot: a write committed meanwhile is seen by all or none.
        let mut store = self.store.check_snapshot().await?;
        let max = store.member_id_max().await?;
        let mut report = LedgerReport::default();
        let mut from = 0;
        while from <= max {
            let to = from + CHECK_CHUNK_MEMBERS;
            report
                .violations
                .extend(store.check_members(from, to).await?);
            from = to;
            progress(from.min(max), max);
        }
        report.members_checked = store.member_count().await?;
        let (accounts, outstanding) = store.ledger_totals().await?;
        // Stored value shares the journal on accounts of its own, in money: it is checked
        // apart from points.
        let sum = |prefix: &str| -> i64 {
            accounts
                .iter()
                .filter(|(a, _)| a.starts_with(prefix) && !a.contains(":sv_"))
                .map(|(_, v)| v)
                .sum()
        };
        let (shop, member) = (sum("shop:"), sum("member:"));
        let sv_sum = |prefix: &str| -> i64 {
            accounts
                .iter()
                .filter(|(a, _)| a.starts_with(prefix))
                .map(|(_, v)| v)
                .sum()
        };
        let (sv_shop, sv_member) = (sv_sum("shop:sv_"), sv_sum("member:sv_"));
        let sv_held = store.stored_value_total().await?;
        if sv_member + sv_shop != 0 || sv_member != sv_held {
            report.violations.push(Violation {
                member_id: None,
                what: format!(
                    "stored value: members' postings {sv_member}, the shop's {sv_shop}, balances {sv_held}"
                ),
            });
        }
        report.stored_value = sv_held;
        report.liability = -shop;
        report.outstanding = outstanding;
        if member + shop != 0 {
            report.violations.push(Violation {
                member_id: None,
                what: format!("the postings sum to {}, not 0", member + shop),
            });
        }
        if report.liability != outstanding {
            report.violations.push(Violation {
                member_id: None,
                what: format!(
                    "the shop's liability is {} but members hold {outstanding}",
                    report.liability
                ),
            });
        }
        report.accounts = accounts;
        Ok(report)
    }
}

/// Credits `points` to a locked member as a new available lot, inside the caller's
/// transaction (an adjustment entry with `source`); the entry's number.
pub(crate) async fn credit_points_in(
    tx: &mut Tx,
    state: &mut MemberState,
    programme: &ActiveProgramme,
    points: i64,
    source: EntrySource<'_>,
    now: Timestamp,
) -> Result<i64> {
    let ledger = credited(tx, state, programme, points, now).await?;
    Ok(write_ledger_change(tx, state, &ledger, source, programme, now).await?[0])
}

/// The member's ledger with `points` credited as a new available lot, expiring as the
/// programme's expiry says for the member now (their tier and score read first).
async fn credited(
    tx: &mut Tx,
    state: &mut MemberState,
    programme: &ActiveProgramme,
    points: i64,
    now: Timestamp,
) -> Result<MemberLedger> {
    let config = programme
        .programme
        .points
        .as_ref()
        .ok_or(EngineError::PointsDisabled)?;
    (state.tier, state.score) =
        crate::tiers::member_now(tx, programme, state.member_id(), now).await?;
    let expires = config.lot_expiry(now, &programme.programme.timezone, &state.value());
    let mut ledger = state.ledger(Vec::new());
    ledger.credit(points, now, expires).map_err(ledger_error)?;
    Ok(ledger)
}

/// Takes up to `points` from a locked member's available points, inside the caller's
/// transaction: what was taken, and its entry (none when nothing was available).
pub(crate) async fn take_points_in(
    tx: &mut Tx,
    state: &mut MemberState,
    programme: &ActiveProgramme,
    points: i64,
    source: EntrySource<'_>,
    now: Timestamp,
) -> Result<(i64, Option<i64>)> {
    let mut take = points.min(state.row.account.available).max(0);
    if take == 0 {
        return Ok((0, None));
    }
    let lots = lots_for_spend(tx, state, programme, now, take).await?;
    let mut ledger = state.ledger(lots);
    // The stored balance may still count lots the clock has since expired: take what
    // is available now.
    match ledger.spend(take, EntryKind::Adjust, now) {
        Ok(_) => {}
        Err(LedgerError::InsufficientPoints { available, .. }) => {
            take = available.min(take);
            if take <= 0 {
                return Ok((0, None));
            }
            ledger
                .spend(take, EntryKind::Adjust, now)
                .map_err(ledger_error)?;
        }
        Err(e) => return Err(ledger_error(e)),
    }
    let entries = write_ledger_change(tx, state, &ledger, source, programme, now).await?;
    Ok((take, Some(entries[0])))
}
