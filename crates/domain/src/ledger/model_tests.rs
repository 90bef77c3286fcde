//! A model-based property test of `MemberLedger`.
//!
//! Random sequences of operations (earns pending or available, with and without expiry,
//! releases, spends of any size, expiries, inactivity, refund reversals under every
//! policy, credits, the clock moving) run on the ledger and on `Model`, a reference kept
//! for this test only: plain lots, a debt counter and per-order counters, each operation
//! done the plainest way docs/POINTS.md states it. After every step the two must agree on
//! the balances, every lot, the journal entries the step made, which lots a spend or a
//! reversal drew, and what each order can still give back; and the ledger's own books
//! must hold (balances are sums of lots, every entry balances, every account is the sum of
//! its postings, the shop's liability is what the member holds).
//!
//! Numbers lean to 0, 1, powers of two, `POINTS_MAX` and the ledger's limit on what a
//! member holds, and some amounts are relative to the state (the available balance ± 2,
//! the headroom under the limit ± 2, what an order can give back ± 2, the debt ± 2), so
//! that the edges are hit on purpose rather than by luck.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;
use crate::points::{RefundPolicy, POINTS_MAX};

/// `add_lot` refuses a lot that would take pending + available above this, and a debt
/// stops at it (the rest of a reversal is forgiven).
const HELD_MAX: i64 = crate::points::HELD_MAX;
const DAY_S: i64 = 86_400;
/// 2026-01-01T00:00:00Z: the test's instants are seconds after (or before) it.
const EPOCH_S: i64 = 1_767_225_600;
const ORDERS: [&str; 3] = ["o0", "o1", "o2"];
const POLICIES: [RefundPolicy; 3] = [
    RefundPolicy::OnlyPending,
    RefundPolicy::WithinBalance,
    RefundPolicy::AllowNegative,
];

fn instant(s: i64) -> Timestamp {
    Timestamp::from_second(EPOCH_S + s).expect("the test's instants are in range")
}

fn seconds(t: Timestamp) -> i64 {
    t.as_second() - EPOCH_S
}

fn order_name(order: Option<&str>) -> Option<&'static str> {
    order.map(|o| {
        *ORDERS
            .iter()
            .find(|known| **known == o)
            .expect("only the test's orders")
    })
}

fn account_of(state: LotState) -> Account {
    match state {
        LotState::Pending => Account::MemberPending,
        LotState::Available | LotState::Expired => Account::MemberAvailable,
    }
}

// ---------------------------------------------------------------------------------------
// The reference model.

#[derive(Debug, Clone, PartialEq, Eq)]
struct ModelLot {
    no: i64,
    source: LotSource,
    order: Option<&'static str>,
    earned_s: i64,
    available_s: i64,
    expires_s: Option<i64>,
    points: i64,
    remaining: i64,
    state: LotState,
}

impl ModelLot {
    fn of(lot: &Lot) -> ModelLot {
        ModelLot {
            no: lot.no,
            source: lot.source,
            order: order_name(lot.order_id.as_deref()),
            earned_s: seconds(lot.earned_at),
            available_s: seconds(lot.available_at),
            expires_s: lot.expires_at.map(seconds),
            points: lot.points,
            remaining: lot.remaining,
            state: lot.state,
        }
    }

    fn to_lot(&self) -> Lot {
        Lot {
            no: self.no,
            source: self.source,
            order_id: self.order.map(str::to_owned),
            earned_at: instant(self.earned_s),
            available_at: instant(self.available_s),
            expires_at: self.expires_s.map(instant),
            points: self.points,
            remaining: self.remaining,
            state: self.state,
        }
    }

    /// The spend order of docs/POINTS.md: the lot that expires first (a lot that never
    /// expires comes last), then the oldest, then the lowest number.
    fn spend_order(&self, other: &ModelLot) -> Ordering {
        let expiry = match (self.expires_s, other.expires_s) {
            (Some(a), Some(b)) => a.cmp(&b),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        };
        expiry
            .then(self.earned_s.cmp(&other.earned_s))
            .then(self.no.cmp(&other.no))
    }
}

/// A journal entry as the model expects it; postings sorted, zero postings left out.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Expected {
    kind: EntryKind,
    at_s: i64,
    order: Option<&'static str>,
    postings: Vec<(Account, Option<i64>, i64)>,
}

impl Expected {
    fn of(entry: &Entry) -> Expected {
        let mut postings: Vec<_> = entry
            .postings
            .iter()
            .map(|p| (p.account, p.lot, p.amount))
            .collect();
        postings.sort_unstable();
        Expected {
            kind: entry.kind,
            at_s: seconds(entry.at),
            order: order_name(entry.order_id.as_deref()),
            postings,
        }
    }
}

/// What the shop's accounts should add up to, counted as the model goes.
#[derive(Debug, Clone, Default)]
struct Totals {
    issued: i128,
    reversed: i128,
    redeemed: i128,
    expired: i128,
    credited: i128,
    debited: i128,
}

/// One order's refunds: what they asked, took and forgave (summed wide: repeated
/// reversals of up to `i64::MAX` each).
#[derive(Debug, Clone, Default)]
struct OrderBook {
    earned: i64,
    asked: i128,
    taken: i128,
    forgiven: i128,
}

#[derive(Debug, Clone)]
struct Model {
    lots: Vec<ModelLot>,
    debt: i64,
    next_no: i64,
    last_activity_s: Option<i64>,
    totals: Totals,
    orders: BTreeMap<&'static str, OrderBook>,
    /// The entries the current step should have made, in order.
    made: Vec<Expected>,
}

impl Model {
    fn sum(&self, state: LotState) -> i64 {
        self.lots
            .iter()
            .filter(|l| l.state == state)
            .map(|l| l.remaining)
            .sum()
    }

    fn balances(&self) -> Balances {
        Balances {
            pending: self.sum(LotState::Pending),
            available: self.sum(LotState::Available),
            debt: self.debt,
        }
    }

    /// What a reversal of `order` can take from the order's own lots under `policy`.
    fn givable(&self, order: &str, policy: RefundPolicy) -> i64 {
        self.lots
            .iter()
            .filter(|l| l.order == Some(order) && l.source == LotSource::Order)
            .filter(|l| match policy {
                RefundPolicy::OnlyPending => l.state == LotState::Pending,
                _ => l.state != LotState::Expired,
            })
            .map(|l| l.remaining)
            .sum()
    }

    /// The points an amount stands for now; `base` is what a share is of (the
    /// available balance for a spend, what the order earned for a reversal, the debt for
    /// an earn or a credit, or 1,000 when there is none).
    fn resolve(&self, amount: Amount, order: Option<&str>, base: i64) -> i64 {
        let b = self.balances();
        match amount {
            Amount::Exactly(n) => n,
            Amount::Share { eighths, plus } => {
                let share = i128::from(base) * i128::from(eighths) / 8;
                i64::try_from(share).expect("a share of a balance") + plus
            }
            Amount::AvailablePlus(d) => b.available + d,
            Amount::HeadroomPlus(d) => HELD_MAX - b.pending - b.available + d,
            Amount::GivablePlus(d) => {
                order.map_or(0, |o| self.givable(o, RefundPolicy::WithinBalance)) + d
            }
            Amount::DebtPlus(d) => self.debt + d,
        }
    }

    fn record(
        &mut self,
        kind: EntryKind,
        at_s: i64,
        order: Option<&'static str>,
        postings: Vec<(Account, Option<i64>, i64)>,
    ) {
        let mut postings: Vec<_> = postings.into_iter().filter(|p| p.2 != 0).collect();
        if postings.is_empty() {
            return;
        }
        postings.sort_unstable();
        self.made.push(Expected {
            kind,
            at_s,
            order,
            postings,
        });
    }

    fn touch(&mut self, at_s: i64) {
        self.last_activity_s = Some(self.last_activity_s.map_or(at_s, |t| t.max(at_s)));
    }

    /// A lot for an explicit release or expiry: mostly one in `state` (where the call
    /// does something), sometimes any lot (where it must do nothing, or expire a pending
    /// lot).
    fn pick(&self, pick: usize, state: LotState) -> Option<i64> {
        let wanted: Vec<i64> = self
            .lots
            .iter()
            .filter(|l| pick % 4 == 3 || l.state == state)
            .map(|l| l.no)
            .collect();
        (!wanted.is_empty()).then(|| wanted[pick / 4 % wanted.len()])
    }

    fn index(&self, no: i64) -> usize {
        self.lots
            .iter()
            .position(|l| l.no == no)
            .expect("a known lot")
    }

    #[allow(clippy::too_many_arguments)]
    fn add_lot(
        &mut self,
        kind: EntryKind,
        source: LotSource,
        order: Option<&'static str>,
        earned_s: i64,
        available_s: i64,
        expires_s: Option<i64>,
        points: i64,
        now_s: i64,
    ) -> Result<i64, LedgerError> {
        let b = self.balances();
        // The limit is judged on what is held plus the whole lot, before any debt is
        // repaid from it: that is what the ledger does (see the report).
        if i128::from(b.pending) + i128::from(b.available) + i128::from(points)
            > i128::from(HELD_MAX)
        {
            return Err(LedgerError::Overflow);
        }
        let no = self.next_no;
        self.next_no += 1;
        // NOTE: a late lot whose return window has passed goes straight to available in
        // its earn entry (at the earning instant), with no release entry at the end of its
        // window. docs/POINTS.md says a late event's release and expiry are "recorded in
        // the journal at their own instants"; only the expiry is. The model follows the
        // ledger (and the unit test `a_late_lot_is_available_or_expired_at_once`).
        let state = if available_s <= now_s {
            LotState::Available
        } else {
            LotState::Pending
        };
        let repaid = self.debt.min(points);
        self.debt -= repaid;
        self.lots.push(ModelLot {
            no,
            source,
            order,
            earned_s,
            available_s,
            expires_s,
            points,
            remaining: points - repaid,
            state,
        });
        let counter = if kind == EntryKind::Earn {
            self.totals.issued += i128::from(points);
            Account::ShopIssuance
        } else {
            self.totals.credited += i128::from(points);
            Account::ShopAdjustment
        };
        if let Some(o) = order {
            self.orders.entry(o).or_default().earned += points;
        }
        self.record(
            kind,
            earned_s,
            order,
            vec![
                (counter, None, -points),
                (account_of(state), Some(no), points - repaid),
                (Account::MemberDebt, None, repaid),
            ],
        );
        self.touch(earned_s);
        if let Some(e) = expires_s.filter(|e| *e <= now_s) {
            let i = self.lots.len() - 1;
            self.expire_at(i, e);
        }
        Ok(no)
    }

    fn release(&mut self, no: i64) {
        let i = self.index(no);
        if self.lots[i].state != LotState::Pending {
            return;
        }
        self.lots[i].state = LotState::Available;
        let lot = self.lots[i].clone();
        self.record(
            EntryKind::Release,
            lot.available_s,
            lot.order,
            vec![
                (Account::MemberPending, Some(no), -lot.remaining),
                (Account::MemberAvailable, Some(no), lot.remaining),
            ],
        );
    }

    fn expire(&mut self, no: i64) {
        let i = self.index(no);
        let at_s = self.lots[i].expires_s.unwrap_or(self.lots[i].available_s);
        self.expire_at(i, at_s);
    }

    fn expire_at(&mut self, i: usize, at_s: i64) {
        let lot = self.lots[i].clone();
        if lot.state == LotState::Expired {
            return;
        }
        self.lots[i].state = LotState::Expired;
        self.lots[i].remaining = 0;
        self.totals.expired += i128::from(lot.remaining);
        self.record(
            EntryKind::Expire,
            at_s,
            lot.order,
            vec![
                (account_of(lot.state), Some(lot.no), -lot.remaining),
                (Account::ShopExpired, None, lot.remaining),
            ],
        );
    }

    fn apply_due(&mut self, now_s: i64) -> bool {
        let releases: Vec<i64> = self
            .lots
            .iter()
            .filter(|l| l.state == LotState::Pending && l.available_s <= now_s)
            .map(|l| l.no)
            .collect();
        for no in &releases {
            self.release(*no);
        }
        let expiries: Vec<i64> = self
            .lots
            .iter()
            .filter(|l| l.state != LotState::Expired && l.expires_s.is_some_and(|e| e <= now_s))
            .map(|l| l.no)
            .collect();
        for no in &expiries {
            self.expire(*no);
        }
        !releases.is_empty() || !expiries.is_empty()
    }

    fn expire_all_available(&mut self, at_s: i64) -> i64 {
        let mut expired = 0;
        for i in 0..self.lots.len() {
            if self.lots[i].state == LotState::Available && self.lots[i].remaining > 0 {
                expired += self.lots[i].remaining;
                self.expire_at(i, at_s);
            }
        }
        expired
    }

    /// Takes up to `points` from available lots, one lot at a time, always the first in
    /// spend order among those left, never from the lots of `except`.
    fn draw(&mut self, points: i64, except: Option<&str>) -> Vec<(i64, i64)> {
        let mut left = points;
        let mut draws = Vec::new();
        while left > 0 {
            let next = (0..self.lots.len())
                .filter(|&i| {
                    let l = &self.lots[i];
                    l.state == LotState::Available
                        && l.remaining > 0
                        && (except.is_none() || l.order != except)
                })
                .min_by(|&a, &b| self.lots[a].spend_order(&self.lots[b]));
            let Some(i) = next else { break };
            let take = left.min(self.lots[i].remaining);
            self.lots[i].remaining -= take;
            left -= take;
            draws.push((self.lots[i].no, take));
        }
        draws
    }

    fn spend(
        &mut self,
        points: i64,
        kind: EntryKind,
        at_s: i64,
    ) -> Result<Vec<(i64, i64)>, LedgerError> {
        let available = self.balances().available;
        if points > available {
            return Err(LedgerError::InsufficientPoints {
                needed: points,
                available,
            });
        }
        let draws = self.draw(points, None);
        let counter = if kind == EntryKind::Adjust {
            self.totals.debited += i128::from(points);
            Account::ShopAdjustment
        } else {
            self.totals.redeemed += i128::from(points);
            Account::ShopRedeemed
        };
        let mut postings: Vec<_> = draws
            .iter()
            .map(|(no, k)| (Account::MemberAvailable, Some(*no), -k))
            .collect();
        postings.push((counter, None, points));
        self.record(kind, at_s, None, postings);
        self.touch(at_s);
        Ok(draws)
    }

    fn reverse(
        &mut self,
        order: &'static str,
        points: i64,
        policy: RefundPolicy,
        at_s: i64,
    ) -> Reversal {
        let mut left = points;
        let mut postings = Vec::new();
        let mut reversal = Reversal::default();
        // The order's own lots, pending ones first (what was never usable goes first),
        // each group by lot number; only the pending ones under `only_pending`.
        let mut states = vec![LotState::Pending];
        if policy != RefundPolicy::OnlyPending {
            states.push(LotState::Available);
        }
        for state in states {
            for i in 0..self.lots.len() {
                let l = &mut self.lots[i];
                if left == 0 || l.order != Some(order) || l.source != LotSource::Order {
                    continue;
                }
                if l.state != state || l.remaining == 0 {
                    continue;
                }
                let take = left.min(l.remaining);
                l.remaining -= take;
                left -= take;
                reversal.from_order_lots += take;
                postings.push((account_of(state), Some(l.no), -take));
            }
        }
        if policy != RefundPolicy::OnlyPending {
            for (no, take) in self.draw(left, Some(order)) {
                left -= take;
                reversal.from_balance += take;
                postings.push((Account::MemberAvailable, Some(no), -take));
            }
        }
        if policy == RefundPolicy::AllowNegative {
            let owed = left.min(HELD_MAX - self.debt);
            reversal.to_debt = owed;
            self.debt += owed;
            postings.push((Account::MemberDebt, None, -owed));
            left -= owed;
        }
        reversal.forgiven = left;
        let taken = points - left;
        postings.push((Account::ShopIssuance, None, taken));
        self.totals.reversed += i128::from(taken);
        let book = self.orders.entry(order).or_default();
        book.asked += i128::from(points);
        book.taken += i128::from(taken);
        book.forgiven += i128::from(left);
        self.record(EntryKind::Reverse, at_s, Some(order), postings);
        reversal
    }
}

// ---------------------------------------------------------------------------------------
// Operations and how they are generated.

/// An amount, absolute or relative to the state when the step runs.
#[derive(Debug, Clone, Copy)]
enum Amount {
    Exactly(i64),
    /// `eighths`/8 of the step's base (pro rata), plus `plus`.
    Share {
        eighths: i64,
        plus: i64,
    },
    AvailablePlus(i64),
    HeadroomPlus(i64),
    /// What the step's order can give back (from its own lots), plus this.
    GivablePlus(i64),
    DebtPlus(i64),
}

#[derive(Debug, Clone)]
enum Op {
    Earn {
        /// An index into `ORDERS`; none earns an activity's lot.
        order: Option<usize>,
        late_s: i64,
        window_s: i64,
        expiry_s: Option<i64>,
        amount: Amount,
    },
    Release {
        pick: usize,
    },
    Expire {
        pick: usize,
    },
    ExpireAllAvailable {
        before_s: i64,
    },
    Spend {
        amount: Amount,
        debit: bool,
    },
    Reverse {
        order: usize,
        amount: Amount,
        policy: RefundPolicy,
    },
    Credit {
        amount: Amount,
        expiry_s: Option<i64>,
    },
    /// The clock moves on by this much, then `apply_due`.
    Advance {
        by_s: i64,
    },
}

/// Where a case starts: an empty ledger, one close to the limit on what a member holds,
/// or one in debt (with a pending lot, which a debt may sit next to).
#[derive(Debug, Clone)]
enum Start {
    Empty,
    NearLimit { below: i64, pending: bool },
    InDebt { debt: i64, pending: bool },
}

fn number() -> impl Strategy<Value = i64> {
    prop_oneof![
        2 => Just(0i64),
        3 => Just(1i64),
        1 => Just(2i64),
        8 => 0i64..1_000,
        3 => (0u32..20).prop_map(|k| 1i64 << k),
        1 => (20u32..63).prop_map(|k| 1i64 << k),
        2 => (0u32..62, -1i64..=1).prop_map(|(k, d)| (1i64 << k) + d),
        2 => Just(POINTS_MAX),
        1 => prop::sample::select(vec![POINTS_MAX - 1, POINTS_MAX + 1]),
        1 => prop::sample::select(vec![HELD_MAX - 1, HELD_MAX, HELD_MAX + 1]),
        1 => Just(i64::MAX),
        1 => 0..=POINTS_MAX,
    ]
}

/// An amount, with weights for each kind in the order of `Amount`'s variants: each
/// operation leans to the amounts that reach its edges (a spend to what the balance
/// covers, a reversal to a share of what the order earned).
fn amount(weights: [u32; 6]) -> impl Strategy<Value = Amount> {
    let nudge = || -2i64..=2;
    prop_oneof![
        weights[0] => number().prop_map(Amount::Exactly),
        weights[1] => (1i64..=8, -1i64..=1)
            .prop_map(|(eighths, plus)| Amount::Share { eighths, plus }),
        weights[2] => nudge().prop_map(Amount::AvailablePlus),
        weights[3] => nudge().prop_map(Amount::HeadroomPlus),
        weights[4] => nudge().prop_map(Amount::GivablePlus),
        weights[5] => nudge().prop_map(Amount::DebtPlus),
    ]
}

/// Offsets in time lean to whole days so that expiries and earning instants tie often,
/// which is where the spend order's tie-breaks matter.
fn offset_s() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => Just(0i64),
        2 => Just(1i64),
        3 => Just(DAY_S),
        1 => Just(DAY_S - 1),
        2 => Just(7 * DAY_S),
        1 => Just(30 * DAY_S),
        1 => Just(365 * DAY_S),
        2 => (0i64..60).prop_map(|d| d * DAY_S),
    ]
}

fn policy() -> impl Strategy<Value = RefundPolicy> {
    prop::sample::select(POLICIES.to_vec())
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (
            prop::option::weighted(0.8, 0..ORDERS.len()),
            prop_oneof![3 => Just(0i64), 1 => offset_s()],
            prop_oneof![3 => Just(0i64), 2 => offset_s()],
            prop::option::of(offset_s()),
            amount([14, 2, 1, 1, 1, 1]),
        )
            .prop_map(|(order, late_s, window_s, expiry_s, amount)| Op::Earn {
                order,
                late_s,
                window_s,
                expiry_s,
                amount,
            }),
        1 => (0usize..16).prop_map(|pick| Op::Release { pick }),
        1 => (0usize..16).prop_map(|pick| Op::Expire { pick }),
        1 => prop_oneof![Just(0i64), offset_s()]
            .prop_map(|before_s| Op::ExpireAllAvailable { before_s }),
        4 => (amount([3, 4, 3, 1, 1, 1]), any::<bool>())
            .prop_map(|(amount, debit)| Op::Spend { amount, debit }),
        5 => (0..ORDERS.len(), amount([1, 6, 1, 1, 3, 1]), policy())
            .prop_map(|(order, amount, policy)| Op::Reverse { order, amount, policy }),
        2 => (amount([6, 1, 1, 1, 1, 3]), prop::option::of(offset_s()))
            .prop_map(|(amount, expiry_s)| Op::Credit { amount, expiry_s }),
        3 => offset_s().prop_map(|by_s| Op::Advance { by_s }),
    ]
}

fn start() -> impl Strategy<Value = Start> {
    let below = prop_oneof![
        Just(0i64),
        Just(1i64),
        Just(2i64),
        Just(POINTS_MAX),
        (0u32..40).prop_map(|k| 1i64 << k)
    ];
    prop_oneof![
        6 => Just(Start::Empty),
        1 => (below, any::<bool>())
            .prop_map(|(below, pending)| Start::NearLimit { below, pending }),
        1 => (number(), any::<bool>())
            .prop_map(|(debt, pending)| Start::InDebt { debt: debt.min(HELD_MAX), pending }),
    ]
}

impl Start {
    fn model(&self) -> Model {
        let lot = |no, source, order, available_s, expires_s, points| ModelLot {
            no,
            source,
            order,
            earned_s: -DAY_S,
            available_s,
            expires_s,
            points,
            remaining: points,
            state: if available_s <= 0 {
                LotState::Available
            } else {
                LotState::Pending
            },
        };
        let (lots, debt) = match *self {
            Start::Empty => (Vec::new(), 0),
            Start::NearLimit { below, pending } => {
                let mut lots = vec![lot(
                    1,
                    LotSource::Adjustment,
                    None,
                    -DAY_S,
                    Some(30 * DAY_S),
                    HELD_MAX - below,
                )];
                if pending {
                    let points = below / 2;
                    lots.push(lot(
                        2,
                        LotSource::Order,
                        Some(ORDERS[0]),
                        7 * DAY_S,
                        None,
                        points,
                    ));
                }
                (lots, 0)
            }
            Start::InDebt { debt, pending } => {
                let lots = if pending {
                    vec![lot(
                        1,
                        LotSource::Order,
                        Some(ORDERS[1]),
                        DAY_S,
                        Some(DAY_S),
                        POINTS_MAX,
                    )]
                } else {
                    Vec::new()
                };
                (lots, debt)
            }
        };
        let mut orders: BTreeMap<&'static str, OrderBook> = BTreeMap::new();
        for l in &lots {
            if let Some(o) = l.order {
                orders.entry(o).or_default().earned += l.points;
            }
        }
        Model {
            next_no: lots.len() as i64 + 1,
            lots,
            debt,
            last_activity_s: None,
            totals: Totals::default(),
            orders,
            made: Vec::new(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Running a case.

/// What a refused operation must leave as it was.
#[derive(Debug, PartialEq)]
struct Snapshot {
    balances: Balances,
    lots: Vec<Lot>,
    entries: usize,
    next_lot_no: i64,
    last_activity: Option<Timestamp>,
}

impl Snapshot {
    fn of(ledger: &MemberLedger) -> Snapshot {
        let changes = ledger.changes();
        Snapshot {
            balances: ledger.balances(),
            lots: ledger.lots().to_vec(),
            entries: changes.entries.len(),
            next_lot_no: changes.next_lot_no,
            last_activity: ledger.last_activity(),
        }
    }
}

/// The ledger's answer must be the model's.
fn agree<T: PartialEq + std::fmt::Debug>(
    got: &T,
    want: &T,
    what: &str,
    done: &str,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(got, want, "{}: {} (left: ledger, right: model)", done, what);
    Ok(())
}

/// A refused operation changes nothing at all.
fn unchanged_if_refused<T>(
    got: &Result<T, LedgerError>,
    ledger: &MemberLedger,
    before: Snapshot,
    done: &str,
) -> Result<(), TestCaseError> {
    if got.is_err() {
        prop_assert_eq!(
            Snapshot::of(ledger),
            before,
            "{}: refused, yet changed (left: after, right: before)",
            done
        );
    }
    Ok(())
}

/// Runs one step on both; returns what it did, in words, for the failure messages.
fn step(
    ledger: &mut MemberLedger,
    model: &mut Model,
    now_s: &mut i64,
    op: &Op,
    fixed_policy: Option<RefundPolicy>,
) -> Result<String, TestCaseError> {
    let now = *now_s;
    match *op {
        Op::Earn {
            order,
            late_s,
            window_s,
            expiry_s,
            amount,
        } => {
            let order = order.map(|i| ORDERS[i]);
            let points = model.resolve(amount, order, model.debt.max(1_000)).max(0);
            let earned_s = now - late_s;
            let expires_s = expiry_s.map(|e| earned_s + e);
            earn(
                ledger, model, order, points, earned_s, window_s, expires_s, now,
            )
        }
        Op::Release { pick } => Ok(match model.pick(pick, LotState::Pending) {
            Some(no) => {
                ledger.release(no);
                model.release(no);
                format!("release lot {no}")
            }
            None => "no lot to release".to_owned(),
        }),
        Op::Expire { pick } => Ok(match model.pick(pick, LotState::Available) {
            Some(no) => {
                ledger.expire(no);
                model.expire(no);
                format!("expire lot {no}")
            }
            None => "no lot to expire".to_owned(),
        }),
        Op::ExpireAllAvailable { before_s } => {
            let at_s = now - before_s;
            let got = ledger.expire_all_available(instant(at_s));
            let want = model.expire_all_available(at_s);
            let done = format!("inactivity at {at_s}s: {got}");
            agree(&got, &want, "the points inactivity expired", &done)?;
            Ok(done)
        }
        Op::Spend { amount, debit } => {
            let available = model.balances().available;
            let points = model.resolve(amount, None, available).max(1);
            let kind = if debit {
                EntryKind::Adjust
            } else {
                EntryKind::Redeem
            };
            spend(ledger, model, points, kind, now)
        }
        Op::Reverse {
            order,
            amount,
            policy,
        } => {
            let order = ORDERS[order];
            let earned = model.orders.get(order).map_or(0, |b| b.earned);
            let points = model.resolve(amount, Some(order), earned).max(0);
            let policy = fixed_policy.unwrap_or(policy);
            reverse(ledger, model, order, points, policy, now)
        }
        Op::Credit { amount, expiry_s } => {
            let points = model.resolve(amount, None, model.debt.max(1_000)).max(1);
            credit(ledger, model, points, expiry_s.map(|e| now + e), now)
        }
        Op::Advance { by_s } => {
            *now_s += by_s;
            let got = ledger.apply_due(instant(*now_s));
            let want = model.apply_due(*now_s);
            let done = format!("clock to {}s, apply_due: {got}", *now_s);
            agree(&got, &want, "whether apply_due moved anything", &done)?;
            Ok(done)
        }
    }
}

/// A spend on both: the same lots drawn, or the same refusal with nothing changed.
fn spend(
    ledger: &mut MemberLedger,
    model: &mut Model,
    points: i64,
    kind: EntryKind,
    now: i64,
) -> Result<String, TestCaseError> {
    let before = Snapshot::of(ledger);
    let got = ledger.spend(points, kind, instant(now));
    let want = model.spend(points, kind, now);
    let done = format!("spend {points} ({kind:?}) at {now}s: {got:?}");
    let what = "the lots drawn (the lot that expires first, then the oldest, then the \
                lowest number), or the refusal";
    agree(&got, &want, what, &done)?;
    unchanged_if_refused(&got, ledger, before, &done)?;
    Ok(done)
}

/// A refund's reversal on both, covered the same way.
fn reverse(
    ledger: &mut MemberLedger,
    model: &mut Model,
    order: &'static str,
    points: i64,
    policy: RefundPolicy,
    now: i64,
) -> Result<String, TestCaseError> {
    let got = ledger.reverse_order(order, points, policy, instant(now));
    let want = model.reverse(order, points, policy, now);
    let done = format!("reverse {points} of {order} under {policy:?} at {now}s: {got:?}");
    agree(&got, &want, "how the reversal was covered", &done)?;
    prop_assert_eq!(
        got.from_order_lots + got.from_balance + got.to_debt + got.forgiven,
        points,
        "{}: a reversal accounts for every point asked",
        done
    );
    Ok(done)
}

/// A credit on both: the same lot (the debt repaid from it first), or the same refusal.
fn credit(
    ledger: &mut MemberLedger,
    model: &mut Model,
    points: i64,
    expires_s: Option<i64>,
    now: i64,
) -> Result<String, TestCaseError> {
    let before = Snapshot::of(ledger);
    let got = ledger.credit(points, instant(now), expires_s.map(instant));
    let want = model.add_lot(
        EntryKind::Adjust,
        LotSource::Adjustment,
        None,
        now,
        now,
        expires_s,
        points,
        now,
    );
    let done = format!("credit {points} at {now}s, expires {expires_s:?}: {got:?}");
    agree(&got, &want, "the credit's outcome", &done)?;
    unchanged_if_refused(&got, ledger, before, &done)?;
    Ok(done)
}

/// An earn on both: an order's lot, or an activity's when `order` is none.
#[allow(clippy::too_many_arguments)]
fn earn(
    ledger: &mut MemberLedger,
    model: &mut Model,
    order: Option<&'static str>,
    points: i64,
    earned_s: i64,
    window_s: i64,
    expires_s: Option<i64>,
    now: i64,
) -> Result<String, TestCaseError> {
    let source = if order.is_some() {
        LotSource::Order
    } else {
        LotSource::Activity
    };
    let available_s = earned_s + window_s;
    let before = Snapshot::of(ledger);
    let got = ledger.earn(
        source,
        order,
        instant(earned_s),
        instant(available_s),
        expires_s.map(instant),
        points,
        instant(now),
    );
    let want = model.add_lot(
        EntryKind::Earn,
        source,
        order,
        earned_s,
        available_s,
        expires_s,
        points,
        now,
    );
    let done = format!(
        "earn {points} for {order:?} at {now}s, earned {earned_s}s, available {available_s}s, \
         expires {expires_s:?}: {got:?}"
    );
    agree(&got, &want, "the earn's outcome", &done)?;
    unchanged_if_refused(&got, ledger, before, &done)?;
    Ok(done)
}

/// Everything that must hold after every step.
fn check(
    ledger: &MemberLedger,
    model: &Model,
    begin: Balances,
    initial: &[Lot],
    seen: usize,
    done: &str,
) -> Result<(), TestCaseError> {
    check_lots(ledger, model, done)?;
    check_journal(ledger, model, begin, seen, done)?;
    check_orders(ledger, model, done)?;
    check_changes(ledger, model, initial, done)
}

/// The balances are the model's and the sums of the ledger's own lots; every lot is the
/// model's, and none is below zero or above its points.
fn check_lots(ledger: &MemberLedger, model: &Model, done: &str) -> Result<(), TestCaseError> {
    let b = ledger.balances();
    let lots = ledger.lots();
    prop_assert_eq!(
        b,
        model.balances(),
        "{}: balances (left: ledger, right: model)",
        done
    );
    let sum = |state: LotState| -> i64 {
        lots.iter()
            .filter(|l| l.state == state)
            .map(|l| l.remaining)
            .sum()
    };
    prop_assert_eq!(
        b.pending,
        sum(LotState::Pending),
        "{}: pending is the sum of pending lots",
        done
    );
    prop_assert_eq!(
        b.available,
        sum(LotState::Available),
        "{}: available is the sum of available lots",
        done
    );
    prop_assert!(
        b.pending >= 0 && b.available >= 0 && b.debt >= 0,
        "{}: a negative balance {:?}",
        done,
        b
    );
    for l in lots {
        prop_assert!(
            0 <= l.remaining && l.remaining <= l.points,
            "{}: lot {} has {} of {} left",
            done,
            l.no,
            l.remaining,
            l.points
        );
        prop_assert!(
            l.state != LotState::Expired || l.remaining == 0,
            "{}: expired lot {} has points left",
            done,
            l.no
        );
    }
    prop_assert!(
        ledger.lots_match_balances(),
        "{}: lots_match_balances",
        done
    );

    let got: Vec<ModelLot> = lots.iter().map(ModelLot::of).collect();
    prop_assert_eq!(
        &got,
        &model.lots,
        "{}: the lots (left: ledger, right: model)",
        done
    );
    Ok(())
}

/// The step made the entries the model expects (which lots, which accounts, when); every
/// entry balances and its `after` is the running balance; every account is the sum of its
/// postings and what the model counted; the shop's liability is what the member holds.
fn check_journal(
    ledger: &MemberLedger,
    model: &Model,
    begin: Balances,
    seen: usize,
    done: &str,
) -> Result<(), TestCaseError> {
    let b = ledger.balances();
    let changes = ledger.changes();
    let entries = changes.entries;
    let made: Vec<Expected> = entries[seen..].iter().map(Expected::of).collect();
    prop_assert_eq!(
        &made,
        &model.made,
        "{}: the step's journal entries (left: ledger, right: model)",
        done
    );

    let mut running = begin;
    let mut sums: BTreeMap<Account, i128> = BTreeMap::new();
    for (n, e) in entries.iter().enumerate() {
        let total: i128 = e.postings.iter().map(|p| i128::from(p.amount)).sum();
        prop_assert_eq!(total, 0, "{}: entry {} does not balance: {:?}", done, n, e);
        prop_assert!(
            e.postings.iter().all(|p| p.amount != 0),
            "{}: entry {} has a zero posting",
            done,
            n
        );
        for p in &e.postings {
            *sums.entry(p.account).or_default() += i128::from(p.amount);
            match p.account {
                Account::MemberPending => running.pending += p.amount,
                Account::MemberAvailable => running.available += p.amount,
                Account::MemberDebt => running.debt -= p.amount,
                _ => {}
            }
        }
        prop_assert_eq!(e.after, running, "{}: entry {}'s balances after", done, n);
    }
    prop_assert_eq!(running, b, "{}: the journal explains the balances", done);
    let account = |a: Account| sums.get(&a).copied().unwrap_or(0);
    let t = &model.totals;
    let delta = |now: i64, then: i64| i128::from(now) - i128::from(then);
    let (pending, available, debt) = (
        delta(b.pending, begin.pending),
        delta(b.available, begin.available),
        delta(b.debt, begin.debt),
    );
    let expected = [
        (Account::MemberPending, pending),
        (Account::MemberAvailable, available),
        (Account::MemberDebt, -debt),
        (Account::ShopIssuance, t.reversed - t.issued),
        (Account::ShopRedeemed, t.redeemed),
        (Account::ShopExpired, t.expired),
        (Account::ShopAdjustment, t.debited - t.credited),
    ];
    for (a, want) in expected {
        prop_assert_eq!(account(a), want, "{}: the sum of {}", done, a.as_str());
    }
    prop_assert_eq!(
        Account::ALL.iter().map(|a| account(*a)).sum::<i128>(),
        0,
        "{}: the journal sums to zero",
        done
    );
    // Issued − reversed + credited − debited − redeemed − expired is what the member
    // came to hold (the shop's liability), over this run.
    let shop: i128 = Account::ALL
        .iter()
        .filter(|a| !a.is_member())
        .map(|a| account(*a))
        .sum();
    let outstanding = t.issued - t.reversed + t.credited - t.debited - t.redeemed - t.expired;
    prop_assert_eq!(
        outstanding,
        pending + available - debt,
        "{}: outstanding points",
        done
    );
    prop_assert_eq!(-shop, outstanding, "{}: the shop's liability", done);
    Ok(())
}

/// What each order earned, asked back and can still give back under each policy.
fn check_orders(ledger: &MemberLedger, model: &Model, done: &str) -> Result<(), TestCaseError> {
    let lots = ledger.lots();
    for order in ORDERS {
        let own = || {
            lots.iter()
                .filter(move |l| l.order_id.as_deref() == Some(order))
                .filter(|l| l.source == LotSource::Order)
        };
        let book = model.orders.get(order).cloned().unwrap_or_default();
        prop_assert_eq!(
            own().map(|l| l.points).sum::<i64>(),
            book.earned,
            "{}: what {} earned",
            done,
            order
        );
        prop_assert_eq!(
            book.asked,
            book.taken + book.forgiven,
            "{}: {}'s refunds",
            done,
            order
        );
        for policy in POLICIES {
            let givable: i64 = own()
                .filter(|l| match policy {
                    RefundPolicy::OnlyPending => l.state == LotState::Pending,
                    _ => l.state != LotState::Expired,
                })
                .map(|l| l.remaining)
                .sum();
            prop_assert_eq!(
                givable,
                model.givable(order, policy),
                "{}: what {} can still give back under {:?} (left: ledger, right: model)",
                done,
                order,
                policy
            );
        }
    }

    Ok(())
}

/// What the engine writes back: the new lots, the loaded lots that changed, the
/// balances and counters.
fn check_changes(
    ledger: &MemberLedger,
    model: &Model,
    initial: &[Lot],
    done: &str,
) -> Result<(), TestCaseError> {
    let (b, lots, changes) = (ledger.balances(), ledger.lots(), ledger.changes());
    let n0 = initial.len();
    let new_nos: Vec<i64> = changes.new_lots.iter().map(|l| l.no).collect();
    let want_new: Vec<i64> = lots[n0..].iter().map(|l| l.no).collect();
    prop_assert_eq!(new_nos, want_new, "{}: changes().new_lots", done);
    let changed: BTreeSet<i64> = changes.changed_lots.iter().map(|l| l.no).collect();
    let want_changed: BTreeSet<i64> = lots[..n0]
        .iter()
        .zip(initial)
        .filter(|(now, then)| now != then)
        .map(|(l, _)| l.no)
        .collect();
    prop_assert_eq!(changed, want_changed, "{}: changes().changed_lots", done);
    prop_assert_eq!(changes.balances, b, "{}: changes().balances", done);
    prop_assert_eq!(
        changes.next_lot_no,
        model.next_no,
        "{}: changes().next_lot_no",
        done
    );
    let last_activity = model.last_activity_s.map(instant);
    prop_assert_eq!(
        ledger.last_activity(),
        last_activity,
        "{}: last activity",
        done
    );
    prop_assert_eq!(
        changes.last_activity,
        last_activity,
        "{}: changes().last_activity",
        done
    );
    Ok(())
}

fn run(start: &Start, ops: &[Op], fixed_policy: Option<RefundPolicy>) -> Result<(), TestCaseError> {
    let mut model = start.model();
    let initial: Vec<Lot> = model.lots.iter().map(ModelLot::to_lot).collect();
    let begin = model.balances();
    let mut ledger = MemberLedger::new(begin, model.next_no, None, initial.clone());
    check(&ledger, &model, begin, &initial, 0, "the start")?;
    let mut now_s = 0;
    for (n, op) in ops.iter().enumerate() {
        let seen = ledger.changes().entries.len();
        model.made.clear();
        let done =
            step(&mut ledger, &mut model, &mut now_s, op, fixed_policy).map_err(|e| match e {
                TestCaseError::Fail(why) => {
                    TestCaseError::fail(format!("step {n}: {}", why.message()))
                }
                reject => reject,
            })?;
        check(
            &ledger,
            &model,
            begin,
            &initial,
            seen,
            &format!("step {n}: {done}"),
        )?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The ledger and the model agree after every step; the refund policy is either one
    /// for the whole case (as a programme has) or chosen per reversal.
    #[test]
    fn ledger_agrees_with_the_model_after_every_step(
        start in start(),
        fixed_policy in prop::option::of(policy()),
        ops in prop::collection::vec(op(), 1..96),
    ) {
        run(&start, &ops, fixed_policy)?;
    }
}
