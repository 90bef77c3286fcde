//! The points ledger of one member, as a pure state machine: balances, lots, and the
//! journal entries each movement makes.
//!
//! Double entry: every movement is an `Entry` whose postings sum to zero over accounts.
//! The member's accounts are `pending`, `available` and `debt` (a debt is a negative
//! balance: what the member owes after a refund took back points already spent). The
//! shop's accounts (`issuance`, `redeemed`, `expired`, `adjustment`) are only ever the
//! other side of a member's posting and are never stored as balances: their totals are
//! sums over postings, so that no row is shared by every order.
//!
//! The engine loads a member's balances and the lots an operation needs, calls the
//! methods here, and writes back `changes()`. A broken invariant is a bug and asserts.

use jiff::Timestamp;

/// One account of the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Account {
    MemberPending,
    MemberAvailable,
    MemberDebt,
    ShopIssuance,
    ShopRedeemed,
    ShopExpired,
    ShopAdjustment,
}

impl Account {
    pub const ALL: [Account; 7] = [
        Account::MemberPending,
        Account::MemberAvailable,
        Account::MemberDebt,
        Account::ShopIssuance,
        Account::ShopRedeemed,
        Account::ShopExpired,
        Account::ShopAdjustment,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Account::MemberPending => "member:pending",
            Account::MemberAvailable => "member:available",
            Account::MemberDebt => "member:debt",
            Account::ShopIssuance => "shop:issuance",
            Account::ShopRedeemed => "shop:redeemed",
            Account::ShopExpired => "shop:expired",
            Account::ShopAdjustment => "shop:adjustment",
        }
    }

    pub fn parse(s: &str) -> Option<Account> {
        Account::ALL.into_iter().find(|a| a.as_str() == s)
    }

    pub fn is_member(self) -> bool {
        matches!(
            self,
            Account::MemberPending | Account::MemberAvailable | Account::MemberDebt
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LotState {
    Pending,
    Available,
    Expired,
}

impl LotState {
    pub fn as_str(self) -> &'static str {
        match self {
            LotState::Pending => "pending",
            LotState::Available => "available",
            LotState::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<LotState> {
        match s {
            "pending" => Some(LotState::Pending),
            "available" => Some(LotState::Available),
            "expired" => Some(LotState::Expired),
            _ => None,
        }
    }

    fn account(self) -> Account {
        match self {
            LotState::Pending => Account::MemberPending,
            LotState::Available | LotState::Expired => Account::MemberAvailable,
        }
    }
}

/// Where a lot's points came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LotSource {
    Order,
    Activity,
    Adjustment,
}

impl LotSource {
    /// The sources whose points the per-day and per-month earning caps count: what events
    /// earned, not what an operator credited by hand.
    pub const CAPPED: [LotSource; 2] = [LotSource::Order, LotSource::Activity];

    pub fn as_str(self) -> &'static str {
        match self {
            LotSource::Order => "order",
            LotSource::Activity => "activity",
            LotSource::Adjustment => "adjustment",
        }
    }

    pub fn parse(s: &str) -> Option<LotSource> {
        match s {
            "order" => Some(LotSource::Order),
            "activity" => Some(LotSource::Activity),
            "adjustment" => Some(LotSource::Adjustment),
            _ => None,
        }
    }
}

/// Points earned together, spent and expired together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lot {
    /// Numbered per member, from 1.
    pub no: i64,
    pub source: LotSource,
    pub order_id: Option<String>,
    pub earned_at: Timestamp,
    /// When it leaves pending.
    pub available_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub points: i64,
    pub remaining: i64,
    pub state: LotState,
}

impl Lot {
    /// Whether a refund of `order_id` under `policy` takes points back from this lot
    /// before it touches the balance: the order's own earned lot, with points left, in a
    /// state the policy reverses.
    pub fn reversible_for(&self, order_id: &str, policy: crate::points::RefundPolicy) -> bool {
        self.order_id.as_deref() == Some(order_id)
            && self.source == LotSource::Order
            && self.remaining > 0
            && match policy {
                crate::points::RefundPolicy::OnlyPending => self.state == LotState::Pending,
                _ => self.state != LotState::Expired,
            }
    }

    /// Spend order: the lot that expires first, then the oldest, then the lowest number.
    fn spend_key(&self) -> (bool, Timestamp, Timestamp, i64) {
        (
            self.expires_at.is_none(),
            self.expires_at.unwrap_or(Timestamp::MAX),
            self.earned_at,
            self.no,
        )
    }
}

/// What a journal entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Earn,
    Release,
    Redeem,
    Expire,
    Reverse,
    Adjust,
    /// Points a member loses when their account is closed.
    Forfeit,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Earn => "earn",
            EntryKind::Release => "release",
            EntryKind::Redeem => "redeem",
            EntryKind::Expire => "expire",
            EntryKind::Reverse => "reverse",
            EntryKind::Adjust => "adjust",
            EntryKind::Forfeit => "forfeit",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posting {
    pub account: Account,
    /// The member's lot the points moved in or out of.
    pub lot: Option<i64>,
    pub amount: i64,
}

/// One balanced movement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: EntryKind,
    /// When it took effect (a late event's entries carry their own instants).
    pub at: Timestamp,
    pub order_id: Option<String>,
    pub postings: Vec<Posting>,
    /// The member's balances once this entry is applied.
    pub after: Balances,
}

/// A member's balances: pending and available points, and the debt (owed, ≥ 0).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Balances {
    pub pending: i64,
    pub available: i64,
    pub debt: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("{needed} points are needed but {available} are available")]
    InsufficientPoints { needed: i64, available: i64 },
    #[error("the balance would exceed the largest number of points")]
    Overflow,
}

/// How a refund's reversal was covered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reversal {
    /// Taken from the order's own lots.
    pub from_order_lots: i64,
    /// Taken from the member's other available points.
    pub from_balance: i64,
    /// Added to the member's debt.
    pub to_debt: i64,
    /// Not taken back, as the refund policy says.
    pub forgiven: i64,
}

/// A lot about to be added.
struct NewLot {
    source: LotSource,
    order_id: Option<String>,
    earned_at: Timestamp,
    available_at: Timestamp,
    expires_at: Option<Timestamp>,
    points: i64,
}

/// The ledger of one member while an operation runs.
#[derive(Debug, Clone)]
pub struct MemberLedger {
    balances: Balances,
    next_lot_no: i64,
    lots: Vec<Lot>,
    changed: Vec<usize>,
    new_from: usize,
    entries: Vec<Entry>,
    last_activity: Option<Timestamp>,
}

/// What an operation changed, for the engine to write.
pub struct Changes<'a> {
    pub balances: Balances,
    pub next_lot_no: i64,
    pub last_activity: Option<Timestamp>,
    pub new_lots: Vec<&'a Lot>,
    pub changed_lots: Vec<&'a Lot>,
    pub entries: &'a [Entry],
}

impl MemberLedger {
    /// A member's ledger with the lots the operation needs. `lots` must include every lot
    /// the operation may touch: all open lots for spends and refunds; none for earning.
    pub fn new(
        balances: Balances,
        next_lot_no: i64,
        last_activity: Option<Timestamp>,
        lots: Vec<Lot>,
    ) -> Self {
        let new_from = lots.len();
        MemberLedger {
            balances,
            next_lot_no,
            lots,
            changed: Vec::new(),
            new_from,
            entries: Vec::new(),
            last_activity,
        }
    }

    pub fn balances(&self) -> Balances {
        self.balances
    }

    pub fn last_activity(&self) -> Option<Timestamp> {
        self.last_activity
    }

    pub fn lots(&self) -> &[Lot] {
        &self.lots
    }

    pub fn changes(&self) -> Changes<'_> {
        let mut changed: Vec<usize> = self
            .changed
            .iter()
            .copied()
            .filter(|i| *i < self.new_from)
            .collect();
        changed.sort_unstable();
        changed.dedup();
        Changes {
            balances: self.balances,
            next_lot_no: self.next_lot_no,
            last_activity: self.last_activity,
            new_lots: self.lots[self.new_from..].iter().collect(),
            changed_lots: changed.into_iter().map(|i| &self.lots[i]).collect(),
            entries: &self.entries,
        }
    }

    fn touch_activity(&mut self, at: Timestamp) {
        self.last_activity = Some(self.last_activity.map_or(at, |t| t.max(at)));
    }

    fn post(
        &mut self,
        kind: EntryKind,
        at: Timestamp,
        order_id: Option<&str>,
        postings: Vec<Posting>,
    ) {
        let postings: Vec<Posting> = postings.into_iter().filter(|p| p.amount != 0).collect();
        if postings.is_empty() {
            return;
        }
        assert_eq!(
            postings.iter().map(|p| i128::from(p.amount)).sum::<i128>(),
            0,
            "a journal entry must balance: {postings:?}"
        );
        for p in &postings {
            let b = &mut self.balances;
            match p.account {
                Account::MemberPending => b.pending += p.amount,
                Account::MemberAvailable => b.available += p.amount,
                Account::MemberDebt => b.debt -= p.amount,
                _ => {}
            }
        }
        assert!(
            self.balances.pending >= 0 && self.balances.available >= 0 && self.balances.debt >= 0,
            "balances went negative: {:?}",
            self.balances
        );
        self.entries.push(Entry {
            kind,
            at,
            order_id: order_id.map(str::to_owned),
            postings,
            after: self.balances,
        });
    }

    /// Earns a lot of `points`: pending until `available_at`, or available at once when
    /// that instant has passed at `now`; expired at once if its expiry has passed too.
    /// A debt is repaid from the new lot first. Returns the lot's number.
    #[allow(clippy::too_many_arguments)]
    pub fn earn(
        &mut self,
        source: LotSource,
        order_id: Option<&str>,
        earned_at: Timestamp,
        available_at: Timestamp,
        expires_at: Option<Timestamp>,
        points: i64,
        now: Timestamp,
    ) -> Result<i64, LedgerError> {
        assert!(points >= 0, "a lot has non-negative points");
        let lot = NewLot {
            source,
            order_id: order_id.map(str::to_owned),
            earned_at,
            available_at,
            expires_at,
            points,
        };
        self.add_lot(EntryKind::Earn, Account::ShopIssuance, lot, now)
    }

    /// Adds a lot counter to a shop account (issuance for earnings, adjustment for
    /// credits): one entry at the lot's earning instant, the debt repaid from it first.
    fn add_lot(
        &mut self,
        kind: EntryKind,
        counter: Account,
        new: NewLot,
        now: Timestamp,
    ) -> Result<i64, LedgerError> {
        let points = new.points;
        let total = self
            .balances
            .pending
            .checked_add(self.balances.available)
            .and_then(|t| t.checked_add(points));
        if total.is_none_or(|t| t > crate::points::HELD_MAX) {
            return Err(LedgerError::Overflow);
        }
        let no = self.next_lot_no;
        self.next_lot_no += 1;
        let state = if new.available_at <= now {
            LotState::Available
        } else {
            LotState::Pending
        };
        let repay = self.balances.debt.min(points);
        let (earned_at, expires_at) = (new.earned_at, new.expires_at);
        let order_id = new.order_id.clone();
        self.lots.push(Lot {
            no,
            source: new.source,
            order_id: new.order_id,
            earned_at,
            available_at: new.available_at,
            expires_at,
            points,
            remaining: points - repay,
            state,
        });
        self.post(
            kind,
            earned_at,
            order_id.as_deref(),
            vec![
                Posting {
                    account: counter,
                    lot: None,
                    amount: -points,
                },
                Posting {
                    account: state.account(),
                    lot: Some(no),
                    amount: points - repay,
                },
                Posting {
                    account: Account::MemberDebt,
                    lot: None,
                    amount: repay,
                },
            ],
        );
        self.touch_activity(earned_at);
        if expires_at.is_some_and(|e| e <= now) {
            let index = self.lots.len() - 1;
            self.expire_index(index);
        }
        Ok(no)
    }

    fn index_of(&self, no: i64) -> usize {
        self.lots
            .iter()
            .position(|l| l.no == no)
            .unwrap_or_else(|| panic!("lot {no} was not loaded"))
    }

    /// The work the clock made due by `now` among the loaded lots, in the order the
    /// clock's jobs do it: pending lots past their return window become available, then
    /// lots past their expiry expire. A spend applies it first, so that points past their
    /// expiry are never spent and points past their return window are, between job runs.
    /// Returns whether anything moved.
    pub fn apply_due(&mut self, now: Timestamp) -> bool {
        let releases: Vec<i64> = self
            .lots
            .iter()
            .filter(|l| l.state == LotState::Pending && l.available_at <= now)
            .map(|l| l.no)
            .collect();
        for no in &releases {
            self.release(*no);
        }
        let expiries: Vec<i64> = self
            .lots
            .iter()
            .filter(|l| l.state != LotState::Expired && l.expires_at.is_some_and(|e| e <= now))
            .map(|l| l.no)
            .collect();
        for no in &expiries {
            self.expire(*no);
        }
        !releases.is_empty() || !expiries.is_empty()
    }

    /// A pending lot's return window passed: its points become available.
    pub fn release(&mut self, no: i64) {
        let i = self.index_of(no);
        let lot = &mut self.lots[i];
        if lot.state != LotState::Pending {
            return;
        }
        lot.state = LotState::Available;
        let (at, amount, order) = (lot.available_at, lot.remaining, lot.order_id.clone());
        self.changed.push(i);
        self.post(
            EntryKind::Release,
            at,
            order.as_deref(),
            vec![
                Posting {
                    account: Account::MemberPending,
                    lot: Some(no),
                    amount: -amount,
                },
                Posting {
                    account: Account::MemberAvailable,
                    lot: Some(no),
                    amount,
                },
            ],
        );
    }

    /// A lot reached its expiry: what is left of it expires.
    pub fn expire(&mut self, no: i64) {
        let i = self.index_of(no);
        self.expire_index(i);
    }

    fn expire_index(&mut self, i: usize) {
        let lot = &mut self.lots[i];
        if lot.state == LotState::Expired {
            return;
        }
        let at = lot.expires_at.unwrap_or(lot.available_at);
        self.expire_at(i, at);
    }

    fn expire_at(&mut self, i: usize, at: Timestamp) {
        self.end_lot(i, at, EntryKind::Expire);
    }

    /// The member's account is closed at `at`: what is left of every pending and available
    /// lot is forfeited, to the shop's expired account. Returns (pending, available)
    /// points forfeited. A debt stays owed.
    pub fn forfeit_all(&mut self, at: Timestamp) -> (i64, i64) {
        let before = self.balances;
        for i in 0..self.lots.len() {
            if self.lots[i].state != LotState::Expired && self.lots[i].remaining > 0 {
                self.end_lot(i, at, EntryKind::Forfeit);
            }
        }
        (
            before.pending - self.balances.pending,
            before.available - self.balances.available,
        )
    }

    fn end_lot(&mut self, i: usize, at: Timestamp, kind: EntryKind) {
        let lot = &mut self.lots[i];
        let account = lot.state.account();
        let (no, amount, order) = (lot.no, lot.remaining, lot.order_id.clone());
        lot.state = LotState::Expired;
        lot.remaining = 0;
        self.changed.push(i);
        self.post(
            kind,
            at,
            order.as_deref(),
            vec![
                Posting {
                    account,
                    lot: Some(no),
                    amount: -amount,
                },
                Posting {
                    account: Account::ShopExpired,
                    lot: None,
                    amount,
                },
            ],
        );
    }

    /// Inactivity: every available lot expires at `at`. Returns the points expired.
    pub fn expire_all_available(&mut self, at: Timestamp) -> i64 {
        let before = self.balances.available;
        for i in 0..self.lots.len() {
            if self.lots[i].state == LotState::Available && self.lots[i].remaining > 0 {
                self.expire_at(i, at);
            }
        }
        before - self.balances.available
    }

    /// Spends `points` from the available lots that expire first; returns what each lot
    /// gave. Refused whole when the balance is short.
    pub fn spend(
        &mut self,
        points: i64,
        kind: EntryKind,
        at: Timestamp,
    ) -> Result<Vec<(i64, i64)>, LedgerError> {
        assert!(points > 0, "a spend is of a positive number of points");
        if points > self.balances.available {
            return Err(LedgerError::InsufficientPoints {
                needed: points,
                available: self.balances.available,
            });
        }
        let counter = match kind {
            EntryKind::Adjust => Account::ShopAdjustment,
            _ => Account::ShopRedeemed,
        };
        let draws = self.draw_available(points, None);
        let drawn: i64 = draws.iter().map(|(_, k)| k).sum();
        assert_eq!(
            drawn, points,
            "available lots must cover the available balance"
        );
        let mut postings: Vec<Posting> = draws
            .iter()
            .map(|(no, k)| Posting {
                account: Account::MemberAvailable,
                lot: Some(*no),
                amount: -k,
            })
            .collect();
        postings.push(Posting {
            account: counter,
            lot: None,
            amount: points,
        });
        self.post(kind, at, None, postings);
        self.touch_activity(at);
        Ok(draws)
    }

    /// Takes up to `points` from available lots in spend order, skipping the lots of
    /// `except_order`; returns (lot, taken) pairs.
    fn draw_available(&mut self, points: i64, except_order: Option<&str>) -> Vec<(i64, i64)> {
        let mut order: Vec<usize> = (0..self.lots.len())
            .filter(|&i| {
                let l = &self.lots[i];
                l.state == LotState::Available
                    && l.remaining > 0
                    && (except_order.is_none() || l.order_id.as_deref() != except_order)
            })
            .collect();
        order.sort_by_key(|&i| self.lots[i].spend_key());
        let mut left = points;
        let mut draws = Vec::new();
        for i in order {
            if left == 0 {
                break;
            }
            let take = left.min(self.lots[i].remaining);
            self.lots[i].remaining -= take;
            self.changed.push(i);
            left -= take;
            draws.push((self.lots[i].no, take));
        }
        draws
    }

    /// A refund takes back `points` of what order `order_id` earned: from the order's
    /// own lots (pending first), then as `policy` says.
    pub fn reverse_order(
        &mut self,
        order_id: &str,
        points: i64,
        policy: crate::points::RefundPolicy,
        at: Timestamp,
    ) -> Reversal {
        use crate::points::RefundPolicy;
        assert!(points >= 0);
        let mut left = points;
        let mut postings = Vec::new();
        let mut reversal = Reversal::default();
        let mut own: Vec<usize> = (0..self.lots.len())
            .filter(|&i| self.lots[i].reversible_for(order_id, policy))
            .collect();
        // Pending before available: what was never usable goes first.
        own.sort_by_key(|&i| (self.lots[i].state != LotState::Pending, self.lots[i].no));
        for i in own {
            if left == 0 {
                break;
            }
            let lot = &mut self.lots[i];
            let take = left.min(lot.remaining);
            lot.remaining -= take;
            left -= take;
            reversal.from_order_lots += take;
            postings.push(Posting {
                account: lot.state.account(),
                lot: Some(lot.no),
                amount: -take,
            });
            self.changed.push(i);
        }
        if left > 0 && policy != RefundPolicy::OnlyPending {
            for (no, take) in self.draw_available(left, Some(order_id)) {
                left -= take;
                reversal.from_balance += take;
                postings.push(Posting {
                    account: Account::MemberAvailable,
                    lot: Some(no),
                    amount: -take,
                });
            }
        }
        if left > 0 && policy == RefundPolicy::AllowNegative {
            // A debt stops at `HELD_MAX`; what would pass it is forgiven, and says so.
            let room = (crate::points::HELD_MAX - self.balances.debt).max(0);
            let owed = left.min(room);
            reversal.to_debt = owed;
            postings.push(Posting {
                account: Account::MemberDebt,
                lot: None,
                amount: -owed,
            });
            left -= owed;
        }
        reversal.forgiven = left;
        let taken = points - left;
        postings.push(Posting {
            account: Account::ShopIssuance,
            lot: None,
            amount: taken,
        });
        self.post(EntryKind::Reverse, at, Some(order_id), postings);
        reversal
    }

    /// A manual credit: an available lot, counter to the adjustment account. A debt is
    /// repaid from it first. Returns the lot's number.
    pub fn credit(
        &mut self,
        points: i64,
        at: Timestamp,
        expires_at: Option<Timestamp>,
    ) -> Result<i64, LedgerError> {
        assert!(points > 0);
        let lot = NewLot {
            source: LotSource::Adjustment,
            order_id: None,
            earned_at: at,
            available_at: at,
            expires_at,
            points,
        };
        self.add_lot(EntryKind::Adjust, Account::ShopAdjustment, lot, at)
    }

    /// Checks that the loaded lots explain the balances; valid only when every open lot
    /// was loaded.
    pub fn lots_match_balances(&self) -> bool {
        let sum = |s: LotState| {
            self.lots
                .iter()
                .filter(|l| l.state == s)
                .map(|l| l.remaining)
                .sum::<i64>()
        };
        sum(LotState::Pending) == self.balances.pending
            && sum(LotState::Available) == self.balances.available
            && self
                .lots
                .iter()
                .all(|l| l.remaining >= 0 && l.remaining <= l.points)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::points::RefundPolicy;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn ledger() -> MemberLedger {
        MemberLedger::new(Balances::default(), 1, None, vec![])
    }

    #[test]
    fn earn_release_spend_expire_balance_at_every_step() {
        let now = t("2026-01-10T00:00:00Z");
        let mut l = ledger();
        let a = l
            .earn(
                LotSource::Order,
                Some("o1"),
                now,
                t("2026-01-17T00:00:00Z"),
                Some(t("2026-06-01T00:00:00Z")),
                100,
                now,
            )
            .unwrap();
        let b = l
            .earn(
                LotSource::Order,
                Some("o2"),
                now,
                now,
                Some(t("2026-03-01T00:00:00Z")),
                50,
                now,
            )
            .unwrap();
        assert_eq!(
            l.balances(),
            Balances {
                pending: 100,
                available: 50,
                debt: 0
            }
        );
        l.release(a);
        assert_eq!(
            l.balances(),
            Balances {
                pending: 0,
                available: 150,
                debt: 0
            }
        );
        // Lot b expires first, so it is drawn first.
        let draws = l.spend(70, EntryKind::Redeem, now).unwrap();
        assert_eq!(draws, vec![(b, 50), (a, 20)]);
        assert_eq!(
            l.spend(81, EntryKind::Redeem, now),
            Err(LedgerError::InsufficientPoints {
                needed: 81,
                available: 80
            })
        );
        l.expire(a);
        assert_eq!(l.balances(), Balances::default());
        assert!(l.lots_match_balances());
        for e in l.changes().entries {
            assert_eq!(e.postings.iter().map(|p| p.amount).sum::<i64>(), 0);
        }
    }

    #[test]
    fn refund_policies_when_points_were_spent() {
        // Earn 100 on o1 (available) and 40 on o2 (available), spend 120, then refund
        // all of o1: its lot has 0 left (it was drawn first: it expires first).
        let now = t("2026-01-10T00:00:00Z");
        let cases = [
            (
                RefundPolicy::OnlyPending,
                Reversal {
                    forgiven: 100,
                    ..Default::default()
                },
                Balances {
                    pending: 0,
                    available: 20,
                    debt: 0,
                },
            ),
            (
                RefundPolicy::WithinBalance,
                Reversal {
                    from_balance: 20,
                    forgiven: 80,
                    ..Default::default()
                },
                Balances::default(),
            ),
            (
                RefundPolicy::AllowNegative,
                Reversal {
                    from_balance: 20,
                    to_debt: 80,
                    ..Default::default()
                },
                Balances {
                    pending: 0,
                    available: 0,
                    debt: 80,
                },
            ),
        ];
        for (policy, want, balances) in cases {
            let mut l = ledger();
            l.earn(
                LotSource::Order,
                Some("o1"),
                now,
                now,
                Some(t("2026-02-01T00:00:00Z")),
                100,
                now,
            )
            .unwrap();
            l.earn(
                LotSource::Order,
                Some("o2"),
                now,
                now,
                Some(t("2026-05-01T00:00:00Z")),
                40,
                now,
            )
            .unwrap();
            l.spend(120, EntryKind::Redeem, now).unwrap();
            assert_eq!(l.reverse_order("o1", 100, policy, now), want, "{policy:?}");
            assert_eq!(l.balances(), balances, "{policy:?}");
            assert!(l.lots_match_balances());
        }
    }

    #[test]
    fn debt_is_repaid_by_the_next_earnings() {
        let now = t("2026-01-10T00:00:00Z");
        let mut l = MemberLedger::new(
            Balances {
                pending: 0,
                available: 0,
                debt: 30,
            },
            1,
            None,
            vec![],
        );
        let no = l
            .earn(LotSource::Order, Some("o"), now, now, None, 20, now)
            .unwrap();
        assert_eq!(
            l.balances(),
            Balances {
                pending: 0,
                available: 0,
                debt: 10
            }
        );
        assert_eq!(l.lots()[0].remaining, 0);
        l.credit(25, now, None).unwrap();
        assert_eq!(
            l.balances(),
            Balances {
                pending: 0,
                available: 15,
                debt: 0
            }
        );
        assert_eq!(no, 1);
    }

    #[test]
    fn a_late_lot_is_available_or_expired_at_once() {
        let now = t("2026-06-01T00:00:00Z");
        let earned = t("2026-01-01T00:00:00Z");
        let mut l = ledger();
        l.earn(
            LotSource::Order,
            Some("late"),
            earned,
            t("2026-01-08T00:00:00Z"),
            Some(t("2026-12-31T00:00:00Z")),
            10,
            now,
        )
        .unwrap();
        assert_eq!(l.balances().available, 10);
        l.earn(
            LotSource::Order,
            Some("later"),
            earned,
            t("2026-01-08T00:00:00Z"),
            Some(t("2026-03-01T00:00:00Z")),
            5,
            now,
        )
        .unwrap();
        assert_eq!(l.balances().available, 10);
        assert_eq!(l.lots()[1].state, LotState::Expired);
        let kinds: Vec<_> = l.changes().entries.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            vec![EntryKind::Earn, EntryKind::Earn, EntryKind::Expire]
        );
    }
}

#[cfg(test)]
mod model_tests;
