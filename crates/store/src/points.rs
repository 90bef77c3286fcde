//! The points ledger's tables: accounts (per-member balances), lots, journal entries with
//! their postings, orders, client-keyed operations and reward stock.

use crate::{Result, Store, Tx};
use sqlx::any::AnyRow;
use sqlx::Row;

/// A member's balances and counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointAccountRow {
    pub member_id: i64,
    pub pending: i64,
    pub available: i64,
    pub debt: i64,
    pub next_lot_no: i64,
    pub next_entry_no: i64,
    pub paid_orders: i64,
    pub last_activity_us: Option<i64>,
    pub inactive_at_us: Option<i64>,
}

impl PointAccountRow {
    fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(Self {
            member_id: r.try_get("member_id")?,
            pending: r.try_get("pending")?,
            available: r.try_get("available")?,
            debt: r.try_get("debt")?,
            next_lot_no: r.try_get("next_lot_no")?,
            next_entry_no: r.try_get("next_entry_no")?,
            paid_orders: r.try_get("paid_orders")?,
            last_activity_us: r.try_get("last_activity_us")?,
            inactive_at_us: r.try_get("inactive_at_us")?,
        })
    }
}

/// A member, as a write needs it, with its point account.
#[derive(Debug, Clone)]
pub struct MemberAccountRow {
    pub external_id: String,
    pub status: String,
    pub attributes: String,
    pub created_at_us: i64,
    pub account: PointAccountRow,
}

impl MemberAccountRow {
    fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(Self {
            external_id: r.try_get("external_id")?,
            status: r.try_get("status")?,
            attributes: r.try_get("attributes")?,
            created_at_us: r.try_get("created_at_us")?,
            account: PointAccountRow::from_row(r)?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LotRow {
    pub member_id: i64,
    pub lot_no: i64,
    pub source: String,
    pub order_id: Option<String>,
    pub earned_at_us: i64,
    pub available_at_us: i64,
    pub expires_at_us: Option<i64>,
    pub points: i64,
    pub remaining: i64,
    pub state: String,
}

impl LotRow {
    fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(Self {
            member_id: r.try_get("member_id")?,
            lot_no: r.try_get("lot_no")?,
            source: r.try_get("source")?,
            order_id: r.try_get("order_id")?,
            earned_at_us: r.try_get("earned_at_us")?,
            available_at_us: r.try_get("available_at_us")?,
            expires_at_us: r.try_get("expires_at_us")?,
            points: r.try_get("points")?,
            remaining: r.try_get("remaining")?,
            state: r.try_get("state")?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostingRow {
    pub account: String,
    pub lot_no: Option<i64>,
    pub amount: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRow {
    pub member_id: i64,
    pub entry_no: i64,
    pub kind: String,
    pub at_us: i64,
    pub recorded_at_us: i64,
    pub order_id: Option<String>,
    pub event_id: Option<String>,
    pub reference: Option<String>,
    /// The catalogue reward a redemption bought.
    pub reward_id: Option<String>,
    pub reason: Option<String>,
    pub pending_after: i64,
    pub available_after: i64,
    pub debt_after: i64,
    pub postings: Vec<PostingRow>,
}

impl EntryRow {
    fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(Self {
            member_id: r.try_get("member_id")?,
            entry_no: r.try_get("entry_no")?,
            kind: r.try_get("kind")?,
            at_us: r.try_get("at_us")?,
            recorded_at_us: r.try_get("recorded_at_us")?,
            order_id: r.try_get("order_id")?,
            event_id: r.try_get("event_id")?,
            reference: r.try_get("reference")?,
            reward_id: r.try_get("reward_id")?,
            reason: r.try_get("reason")?,
            pending_after: r.try_get("pending_after")?,
            available_after: r.try_get("available_after")?,
            debt_after: r.try_get("debt_after")?,
            postings: Vec::new(),
        })
    }
}

/// An order as the ledger knows it. `lines` and `waiting_refunds` are JSON the engine
/// writes and reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRow {
    pub member_id: i64,
    pub order_id: String,
    /// `paid`, or `awaiting_paid` when only refunds have arrived so far.
    pub state: String,
    pub paid_at_us: Option<i64>,
    pub total_minor: i64,
    pub goods_minor: i64,
    pub lines: String,
    pub points_earned: i64,
    pub points_reversed: i64,
    pub refunded_goods_minor: i64,
    pub refunded_total_minor: i64,
    pub waiting_refunds: String,
    pub score_earned: i64,
    pub score_reversed: i64,
}

impl OrderRow {
    pub(crate) fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(Self {
            member_id: r.try_get("member_id")?,
            order_id: r.try_get("order_id")?,
            state: r.try_get("state")?,
            paid_at_us: r.try_get("paid_at_us")?,
            total_minor: r.try_get("total_minor")?,
            goods_minor: r.try_get("goods_minor")?,
            lines: r.try_get("lines")?,
            points_earned: r.try_get("points_earned")?,
            points_reversed: r.try_get("points_reversed")?,
            refunded_goods_minor: r.try_get("refunded_goods_minor")?,
            refunded_total_minor: r.try_get("refunded_total_minor")?,
            waiting_refunds: r.try_get("waiting_refunds")?,
            score_earned: r.try_get("score_earned")?,
            score_reversed: r.try_get("score_reversed")?,
        })
    }
}

/// One violated invariant found by `Store::check_*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub member_id: Option<i64>,
    pub what: String,
}

const ACCOUNT_COLUMNS: &str = "a.member_id, a.pending, a.available, a.debt, a.next_lot_no, \
    a.next_entry_no, a.paid_orders, a.last_activity_us, a.inactive_at_us";
const LOT_SELECT: &str =
    "SELECT member_id, lot_no, source, order_id, earned_at_us, available_at_us, \
    expires_at_us, points, remaining, state FROM point_lots";
const ENTRY_SELECT: &str =
    "SELECT member_id, entry_no, kind, at_us, recorded_at_us, order_id, event_id, \
    reference, reward_id, reason, pending_after, available_after, debt_after FROM point_entries";
pub(crate) const ORDER_SELECT: &str =
    "SELECT member_id, order_id, state, paid_at_us, total_minor, goods_minor, lines, \
    points_earned, points_reversed, refunded_goods_minor, refunded_total_minor, waiting_refunds, \
    score_earned, score_reversed FROM orders";

/// `($1, $2, $3), ($4, $5, $6), ...` (or all `?` when `anonymous`) for `rows` rows of
/// `columns` parameters.
pub(crate) fn placeholders(rows: usize, columns: usize, anonymous: bool) -> String {
    let mut s = String::with_capacity(rows * columns * 5);
    for r in 0..rows {
        if r > 0 {
            s.push_str(", ");
        }
        s.push('(');
        for c in 0..columns {
            if c > 0 {
                s.push_str(", ");
            }
            if anonymous {
                s.push('?');
            } else {
                s.push('$');
                s.push_str(&(r * columns + c + 1).to_string());
            }
        }
        s.push(')');
    }
    s
}

/// Rows per multi-row statement. SQLite's binding looks each parameter up by name, which
/// costs time in proportion to the parameters of the statement: small chunks keep it linear.
const INSERT_CHUNK_ROWS: usize = 50;
/// Values in one `IN (...)` list, for the same reason.
pub(crate) const IN_LIST_MAX: usize = 100;

/// `$from, $from+1, ...` (or `?, ?, ...` when `anonymous`) for `n` parameters.
pub(crate) fn list(from: usize, n: usize, anonymous: bool) -> String {
    (from..from + n)
        .map(|i| {
            if anonymous {
                "?".to_owned()
            } else {
                format!("${i}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Hands out the placeholders of a statement in the order its values are bound: `?` when
/// `anonymous`, else `$1`, `$2`, ...
pub(crate) struct Placeholders {
    anonymous: bool,
    next: usize,
}

impl Placeholders {
    pub(crate) fn new(anonymous: bool) -> Self {
        Placeholders { anonymous, next: 1 }
    }

    /// One placeholder.
    pub(crate) fn one(&mut self) -> String {
        self.list(1)
    }

    /// `n` placeholders separated by commas, for an `IN (...)` list.
    pub(crate) fn list(&mut self, n: usize) -> String {
        let out = list(self.next, n, self.anonymous);
        self.next += n;
        out
    }
}

impl Tx {
    /// The stored orders among these (member, order id) pairs.
    pub async fn orders_get_many(&mut self, keys: &[(i64, &str)]) -> Result<Vec<OrderRow>> {
        let mut out = Vec::new();
        for chunk in keys.chunks(INSERT_CHUNK_ROWS) {
            // SQLite reads a row-value list only from VALUES; PostgreSQL plans the plain
            // list as index look-ups, but VALUES as a join it may scan for.
            let sql = if self.anonymous {
                format!(
                    "{ORDER_SELECT} WHERE (member_id, order_id) IN (VALUES {})",
                    placeholders(chunk.len(), 2, true)
                )
            } else {
                format!(
                    "{ORDER_SELECT} WHERE (member_id, order_id) IN ({})",
                    placeholders(chunk.len(), 2, false)
                )
            };
            let mut q = sqlx::query(&sql);
            for (m, o) in chunk {
                q = q.bind(*m).bind(*o);
            }
            for r in q.fetch_all(&mut *self.tx).await? {
                out.push(OrderRow::from_row(&r)?);
            }
        }
        Ok(out)
    }

    /// The points each of these members earned in lots of these sources in `[from, to)`:
    /// (member, points), for the members that earned any.
    pub async fn earnings_between_many(
        &mut self,
        member_ids: &[i64],
        sources: &[&str],
        from_us: i64,
        to_us: i64,
    ) -> Result<Vec<(i64, i64)>> {
        let mut out = Vec::new();
        for chunk in member_ids.chunks(IN_LIST_MAX) {
            let mut p = Placeholders::new(self.anonymous);
            let sql = format!(
                "SELECT member_id, CAST(SUM(points) AS BIGINT) AS points FROM point_lots \
                 WHERE member_id IN ({}) AND earned_at_us >= {} AND earned_at_us < {} AND source IN ({}) \
                 GROUP BY member_id",
                p.list(chunk.len()),
                p.one(),
                p.one(),
                p.list(sources.len()),
            );
            let mut q = sqlx::query(&sql);
            for m in chunk {
                q = q.bind(*m);
            }
            q = q.bind(from_us).bind(to_us);
            for source in sources {
                q = q.bind(*source);
            }
            for r in q.fetch_all(&mut *self.tx).await? {
                out.push((r.try_get("member_id")?, r.try_get("points")?));
            }
        }
        Ok(out)
    }

    /// Inserts or replaces orders, a few statements for many.
    pub async fn orders_put_many(&mut self, orders: &[OrderRow]) -> Result<()> {
        for chunk in orders.chunks(INSERT_CHUNK_ROWS) {
            let sql = format!(
                "INSERT INTO orders (member_id, order_id, state, paid_at_us, total_minor, goods_minor, lines, \
                 points_earned, points_reversed, refunded_goods_minor, refunded_total_minor, waiting_refunds, \
                 score_earned, score_reversed) VALUES {} \
                 ON CONFLICT (member_id, order_id) DO UPDATE SET state = excluded.state, paid_at_us = excluded.paid_at_us, \
                 score_earned = excluded.score_earned, score_reversed = excluded.score_reversed, \
                 total_minor = excluded.total_minor, goods_minor = excluded.goods_minor, lines = excluded.lines, \
                 points_earned = excluded.points_earned, points_reversed = excluded.points_reversed, \
                 refunded_goods_minor = excluded.refunded_goods_minor, refunded_total_minor = excluded.refunded_total_minor, \
                 waiting_refunds = excluded.waiting_refunds",
                placeholders(chunk.len(), 14, self.anonymous)
            );
            let mut q = sqlx::query(&sql);
            for o in chunk {
                q = q
                    .bind(o.member_id)
                    .bind(&o.order_id)
                    .bind(&o.state)
                    .bind(o.paid_at_us)
                    .bind(o.total_minor)
                    .bind(o.goods_minor)
                    .bind(&o.lines)
                    .bind(o.points_earned)
                    .bind(o.points_reversed)
                    .bind(o.refunded_goods_minor)
                    .bind(o.refunded_total_minor)
                    .bind(&o.waiting_refunds)
                    .bind(o.score_earned)
                    .bind(o.score_reversed);
            }
            q.execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    /// Writes back members' accounts, a few statements for many.
    pub async fn accounts_put_many(&mut self, accounts: &[&PointAccountRow]) -> Result<()> {
        for chunk in accounts.chunks(INSERT_CHUNK_ROWS) {
            let sql = format!(
                "INSERT INTO point_accounts (member_id, pending, available, debt, next_lot_no, next_entry_no, \
                 last_activity_us, inactive_at_us, paid_orders) VALUES {} ON CONFLICT (member_id) DO UPDATE SET \
                 pending = excluded.pending, available = excluded.available, debt = excluded.debt, \
                 next_lot_no = excluded.next_lot_no, next_entry_no = excluded.next_entry_no, \
                 last_activity_us = excluded.last_activity_us, inactive_at_us = excluded.inactive_at_us, \
                 paid_orders = excluded.paid_orders",
                placeholders(chunk.len(), 9, self.anonymous)
            );
            let mut q = sqlx::query(&sql);
            for a in chunk {
                q = q
                    .bind(a.member_id)
                    .bind(a.pending)
                    .bind(a.available)
                    .bind(a.debt)
                    .bind(a.next_lot_no)
                    .bind(a.next_entry_no)
                    .bind(a.last_activity_us)
                    .bind(a.inactive_at_us)
                    .bind(a.paid_orders);
            }
            q.execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    /// The members with these external ids and their accounts, locked in member order so
    /// that concurrent batches never deadlock.
    pub async fn members_with_accounts_for_update(
        &mut self,
        external_ids: &[&str],
    ) -> Result<Vec<MemberAccountRow>> {
        // The ids first, unlocked; then the rows, locked in one global order of member id
        // across every chunk. Locking by external id would order each chunk differently.
        let mut member_ids = Vec::with_capacity(external_ids.len());
        for chunk in external_ids.chunks(IN_LIST_MAX) {
            let sql = format!(
                "SELECT id FROM members WHERE external_id IN ({})",
                list(1, chunk.len(), self.anonymous)
            );
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(*id);
            }
            for r in q.fetch_all(&mut *self.tx).await? {
                member_ids.push(r.try_get::<i64, _>("id")?);
            }
        }
        member_ids.sort_unstable();
        member_ids.dedup();
        let mut out = Vec::with_capacity(member_ids.len());
        for chunk in member_ids.chunks(IN_LIST_MAX) {
            let sql = format!(
                "SELECT m.external_id, m.status, m.attributes, m.created_at_us, {ACCOUNT_COLUMNS} \
                 FROM point_accounts a JOIN members m ON m.id = a.member_id \
                 WHERE a.member_id IN ({}) ORDER BY a.member_id{}",
                list(1, chunk.len(), self.anonymous),
                self.lock
            );
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(*id);
            }
            for r in q.fetch_all(&mut *self.tx).await? {
                out.push(MemberAccountRow::from_row(&r)?);
            }
        }
        Ok(out)
    }

    pub async fn member_account_for_update(
        &mut self,
        member_id: i64,
    ) -> Result<Option<MemberAccountRow>> {
        let sql = format!(
            "SELECT m.external_id, m.status, m.attributes, m.created_at_us, {ACCOUNT_COLUMNS} \
             FROM members m JOIN point_accounts a ON a.member_id = m.id WHERE m.id = $1{}",
            self.lock
        );
        let row = sqlx::query(&sql)
            .bind(member_id)
            .fetch_optional(&mut *self.tx)
            .await?;
        row.map(|r| MemberAccountRow::from_row(&r)).transpose()
    }

    /// Every lot of a member that is not expired.
    pub async fn lots_open(&mut self, member_id: i64) -> Result<Vec<LotRow>> {
        let rows = sqlx::query(&format!(
            "{LOT_SELECT} WHERE member_id = $1 AND state <> 'expired' ORDER BY lot_no"
        ))
        .bind(member_id)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(LotRow::from_row).collect()
    }

    /// A member's lots the clock may have made due by `now_us` (pending past their return
    /// window, or past their expiry): candidates, re-checked by the ledger.
    pub async fn lots_due(&mut self, member_id: i64, now_us: i64) -> Result<Vec<LotRow>> {
        lots_due_on(&mut *self.tx, member_id, now_us).await
    }

    /// The lots of one order (for its refunds), whatever their state.
    pub async fn lots_of_order(&mut self, member_id: i64, order_id: &str) -> Result<Vec<LotRow>> {
        let rows = sqlx::query(&format!(
            "{LOT_SELECT} WHERE member_id = $1 AND order_id = $2 ORDER BY lot_no"
        ))
        .bind(member_id)
        .bind(order_id)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(LotRow::from_row).collect()
    }

    /// Up to `limit` of a member's available lots with points left, in the order a spend
    /// draws them (the lot that expires first, then the oldest, then the lowest number; a
    /// lot that never expires last), after the lot `after` of that order.
    pub async fn lots_in_spend_order(
        &mut self,
        member_id: i64,
        after: Option<&LotRow>,
        limit: u32,
    ) -> Result<Vec<LotRow>> {
        let key = "COALESCE(expires_at_us, 9223372036854775807)";
        let (expires, earned, no) = after.map_or((i64::MIN, i64::MIN, i64::MIN), |l| {
            (
                l.expires_at_us.unwrap_or(i64::MAX),
                l.earned_at_us,
                l.lot_no,
            )
        });
        let rows = sqlx::query(&format!(
            "{LOT_SELECT} WHERE member_id = $1 AND state = 'available' AND remaining > 0 \
             AND ({key}, earned_at_us, lot_no) > ($2, $3, $4) \
             ORDER BY {key}, earned_at_us, lot_no LIMIT $5"
        ))
        .bind(member_id)
        .bind(expires)
        .bind(earned)
        .bind(no)
        .bind(i64::from(limit))
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(LotRow::from_row).collect()
    }

    pub async fn lots_get(&mut self, member_id: i64, lot_nos: &[i64]) -> Result<Vec<LotRow>> {
        let mut out = Vec::with_capacity(lot_nos.len());
        for chunk in lot_nos.chunks(IN_LIST_MAX) {
            let list = (2..chunk.len() + 2)
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ");
            let sql =
                format!("{LOT_SELECT} WHERE member_id = $1 AND lot_no IN ({list}) ORDER BY lot_no");
            let mut q = sqlx::query(&sql).bind(member_id);
            for no in chunk {
                q = q.bind(*no);
            }
            for r in q.fetch_all(&mut *self.tx).await? {
                out.push(LotRow::from_row(&r)?);
            }
        }
        Ok(out)
    }

    pub async fn lots_insert(&mut self, lots: &[LotRow]) -> Result<()> {
        for chunk in lots.chunks(INSERT_CHUNK_ROWS) {
            let sql = format!(
                "INSERT INTO point_lots (member_id, lot_no, source, order_id, earned_at_us, \
                 available_at_us, expires_at_us, points, remaining, state) VALUES {}",
                placeholders(chunk.len(), 10, self.anonymous)
            );
            let mut q = sqlx::query(&sql);
            for l in chunk {
                q = q
                    .bind(l.member_id)
                    .bind(l.lot_no)
                    .bind(&l.source)
                    .bind(&l.order_id)
                    .bind(l.earned_at_us)
                    .bind(l.available_at_us)
                    .bind(l.expires_at_us)
                    .bind(l.points)
                    .bind(l.remaining)
                    .bind(&l.state);
            }
            q.execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    pub async fn lot_update(&mut self, l: &LotRow) -> Result<()> {
        sqlx::query(
            "UPDATE point_lots SET remaining = $3, state = $4 WHERE member_id = $1 AND lot_no = $2",
        )
        .bind(l.member_id)
        .bind(l.lot_no)
        .bind(l.remaining)
        .bind(&l.state)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Writes journal entries and their postings, a few statements for many entries.
    pub async fn entries_insert(&mut self, entries: &[EntryRow]) -> Result<()> {
        for chunk in entries.chunks(INSERT_CHUNK_ROWS) {
            let sql = format!(
                "INSERT INTO point_entries (member_id, entry_no, kind, at_us, recorded_at_us, order_id, \
                 event_id, reference, reward_id, reason, pending_after, available_after, debt_after) VALUES {}",
                placeholders(chunk.len(), 13, self.anonymous)
            );
            let mut q = sqlx::query(&sql);
            for e in chunk {
                q = q
                    .bind(e.member_id)
                    .bind(e.entry_no)
                    .bind(&e.kind)
                    .bind(e.at_us)
                    .bind(e.recorded_at_us)
                    .bind(&e.order_id)
                    .bind(&e.event_id)
                    .bind(&e.reference)
                    .bind(&e.reward_id)
                    .bind(&e.reason)
                    .bind(e.pending_after)
                    .bind(e.available_after)
                    .bind(e.debt_after);
            }
            q.execute(&mut *self.tx).await?;
        }
        let postings: Vec<(&EntryRow, usize, &PostingRow)> = entries
            .iter()
            .flat_map(|e| e.postings.iter().enumerate().map(move |(i, p)| (e, i, p)))
            .collect();
        for chunk in postings.chunks(INSERT_CHUNK_ROWS) {
            let sql = format!(
                "INSERT INTO point_postings (member_id, entry_no, posting_no, account, lot_no, amount) VALUES {}",
                placeholders(chunk.len(), 6, self.anonymous)
            );
            let mut q = sqlx::query(&sql);
            for (e, i, p) in chunk {
                q = q
                    .bind(e.member_id)
                    .bind(e.entry_no)
                    .bind(i64::try_from(*i).unwrap_or(i64::MAX))
                    .bind(&p.account)
                    .bind(p.lot_no)
                    .bind(p.amount);
            }
            q.execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    /// The request hash and journal entry of an earlier operation with this id.
    pub async fn operation_get(
        &mut self,
        member_id: i64,
        operation_id: &str,
    ) -> Result<Option<(String, i64)>> {
        let row = sqlx::query(
            "SELECT request_sha256, entry_no FROM point_operations WHERE member_id = $1 AND operation_id = $2",
        )
        .bind(member_id)
        .bind(operation_id)
        .fetch_optional(&mut *self.tx)
        .await?;
        row.map(|r| -> Result<_> { Ok((r.try_get("request_sha256")?, r.try_get("entry_no")?)) })
            .transpose()
    }

    pub async fn operation_insert(
        &mut self,
        member_id: i64,
        operation_id: &str,
        sha: &str,
        entry_no: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO point_operations (member_id, operation_id, request_sha256, entry_no) VALUES ($1, $2, $3, $4)",
        )
        .bind(member_id)
        .bind(operation_id)
        .bind(sha)
        .bind(entry_no)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Takes one unit of a reward's stock; `false` when none is left.
    pub async fn reward_take(&mut self, reward_id: &str, stock: Option<i64>) -> Result<bool> {
        sqlx::query("INSERT INTO reward_stock (reward_id, redeemed) VALUES ($1, 0) ON CONFLICT (reward_id) DO NOTHING")
            .bind(reward_id)
            .execute(&mut *self.tx)
            .await?;
        let taken = sqlx::query(
            "UPDATE reward_stock SET redeemed = redeemed + 1 WHERE reward_id = $1 AND redeemed < $2",
        )
        .bind(reward_id)
        .bind(stock.unwrap_or(i64::MAX))
        .execute(&mut *self.tx)
        .await?;
        Ok(taken.rows_affected() == 1)
    }

    pub async fn entry_get(&mut self, member_id: i64, entry_no: i64) -> Result<Option<EntryRow>> {
        let row = sqlx::query(&format!(
            "{ENTRY_SELECT} WHERE member_id = $1 AND entry_no = $2"
        ))
        .bind(member_id)
        .bind(entry_no)
        .fetch_optional(&mut *self.tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let mut entry = EntryRow::from_row(&row)?;
        let postings = sqlx::query(
            "SELECT account, lot_no, amount FROM point_postings WHERE member_id = $1 AND entry_no = $2 ORDER BY posting_no",
        )
        .bind(member_id)
        .bind(entry_no)
        .fetch_all(&mut *self.tx)
        .await?;
        for p in postings {
            entry.postings.push(PostingRow {
                account: p.try_get("account")?,
                lot_no: p.try_get("lot_no")?,
                amount: p.try_get("amount")?,
            });
        }
        Ok(Some(entry))
    }
}

impl Store {
    pub async fn account_get(&self, member_id: i64) -> Result<Option<PointAccountRow>> {
        let row = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM point_accounts a WHERE a.member_id = $1"
        ))
        .bind(member_id)
        .fetch_optional(&self.read)
        .await?;
        row.map(|r| PointAccountRow::from_row(&r)).transpose()
    }

    /// A member's lots, newest first; the expired ones only when asked.
    /// `Tx::lots_due` on the read pool (a quote's view of what the clock made due).
    pub async fn lots_due_read(&self, member_id: i64, now_us: i64) -> Result<Vec<LotRow>> {
        lots_due_on(&self.read, member_id, now_us).await
    }

    pub async fn lots_list(&self, member_id: i64, with_expired: bool) -> Result<Vec<LotRow>> {
        let filter = if with_expired {
            ""
        } else {
            " AND state <> 'expired' AND (remaining > 0 OR state = 'pending')"
        };
        let rows = sqlx::query(&format!(
            "{LOT_SELECT} WHERE member_id = $1{filter} ORDER BY lot_no DESC"
        ))
        .bind(member_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(LotRow::from_row).collect()
    }

    /// A page of a member's journal after `after_entry_no`, with postings.
    pub async fn entries_page(
        &self,
        member_id: i64,
        after_entry_no: i64,
        limit: u32,
    ) -> Result<Vec<EntryRow>> {
        let rows = sqlx::query(&format!(
            "{ENTRY_SELECT} WHERE member_id = $1 AND entry_no > $2 ORDER BY entry_no LIMIT $3"
        ))
        .bind(member_id)
        .bind(after_entry_no)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        let mut entries = rows
            .iter()
            .map(EntryRow::from_row)
            .collect::<Result<Vec<_>>>()?;
        let (Some(first), Some(last)) = (
            entries.first().map(|e| e.entry_no),
            entries.last().map(|e| e.entry_no),
        ) else {
            return Ok(entries);
        };
        let postings = sqlx::query(
            "SELECT entry_no, account, lot_no, amount FROM point_postings \
             WHERE member_id = $1 AND entry_no >= $2 AND entry_no <= $3 ORDER BY entry_no, posting_no",
        )
        .bind(member_id)
        .bind(first)
        .bind(last)
        .fetch_all(&self.read)
        .await?;
        let mut i = 0;
        for p in postings {
            let no: i64 = p.try_get("entry_no")?;
            while i < entries.len() && entries[i].entry_no < no {
                i += 1;
            }
            if let Some(e) = entries.get_mut(i).filter(|e| e.entry_no == no) {
                e.postings.push(PostingRow {
                    account: p.try_get("account")?,
                    lot_no: p.try_get("lot_no")?,
                    amount: p.try_get("amount")?,
                });
            }
        }
        Ok(entries)
    }

    /// Pending lots whose return window ends at or before `to_us`: (member, lot).
    pub async fn due_releases(&self, to_us: i64, limit: u32) -> Result<Vec<(i64, i64)>> {
        self.due(
            "SELECT member_id, lot_no FROM point_lots WHERE state = 'pending' AND available_at_us <= $1 \
             ORDER BY available_at_us, member_id, lot_no LIMIT $2",
            to_us,
            limit,
        )
        .await
    }

    /// Unexpired lots whose expiry is at or before `to_us`: (member, lot).
    pub async fn due_expiries(&self, to_us: i64, limit: u32) -> Result<Vec<(i64, i64)>> {
        self.due(
            "SELECT member_id, lot_no FROM point_lots WHERE state <> 'expired' AND expires_at_us IS NOT NULL \
             AND expires_at_us <= $1 ORDER BY expires_at_us, member_id, lot_no LIMIT $2",
            to_us,
            limit,
        )
        .await
    }

    /// Members whose inactivity deadline is at or before `to_us`.
    pub async fn due_inactive(&self, to_us: i64, limit: u32) -> Result<Vec<i64>> {
        let rows = sqlx::query(
            "SELECT member_id FROM point_accounts WHERE inactive_at_us IS NOT NULL AND inactive_at_us <= $1 \
             ORDER BY inactive_at_us, member_id LIMIT $2",
        )
        .bind(to_us)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<i64, _>("member_id")?))
            .collect()
    }

    async fn due(&self, sql: &str, to_us: i64, limit: u32) -> Result<Vec<(i64, i64)>> {
        let rows = sqlx::query(sql)
            .bind(to_us)
            .bind(i64::from(limit))
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get::<i64, _>("member_id")?,
                    r.try_get::<i64, _>("lot_no")?,
                ))
            })
            .collect()
    }

    /// Members with points expiring at or before `before_us` (by lot, or all their
    /// available points under an inactivity deadline), after `after_member_id`, by member
    /// id: (member id, external id, points, first instant).
    pub async fn expiring_by_member(
        &self,
        before_us: i64,
        after_member_id: i64,
        limit: u32,
    ) -> Result<Vec<(i64, String, i64, i64)>> {
        let rows = sqlx::query(
            "SELECT x.member_id, m.external_id, CAST(MAX(x.points) AS BIGINT) AS points, MIN(x.at_us) AS at_us FROM ( \
               SELECT member_id, CAST(SUM(remaining) AS BIGINT) AS points, MIN(expires_at_us) AS at_us FROM point_lots \
               WHERE state <> 'expired' AND remaining > 0 AND expires_at_us IS NOT NULL AND expires_at_us <= $1 \
               AND member_id > $2 GROUP BY member_id \
               UNION ALL \
               SELECT member_id, available AS points, inactive_at_us AS at_us FROM point_accounts \
               WHERE inactive_at_us IS NOT NULL AND inactive_at_us <= $1 AND available > 0 AND member_id > $2 \
             ) x JOIN members m ON m.id = x.member_id \
             GROUP BY x.member_id, m.external_id ORDER BY x.member_id LIMIT $3",
        )
        .bind(before_us)
        .bind(after_member_id)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get::<i64, _>("member_id")?,
                    r.try_get::<String, _>("external_id")?,
                    r.try_get::<i64, _>("points")?,
                    r.try_get::<i64, _>("at_us")?,
                ))
            })
            .collect()
    }
}

impl Store {
    /// A member and their point account by external id, read without a lock (quotes read
    /// this).
    pub async fn member_account_read(&self, external_id: &str) -> Result<Option<MemberAccountRow>> {
        let sql = format!(
            "SELECT m.external_id, m.status, m.attributes, m.created_at_us, {ACCOUNT_COLUMNS} \
             FROM members m JOIN point_accounts a ON a.member_id = m.id WHERE m.external_id = $1"
        );
        let row = sqlx::query(&sql)
            .bind(external_id)
            .fetch_optional(&self.read)
            .await?;
        row.map(|r| MemberAccountRow::from_row(&r)).transpose()
    }
}

/// The lots the clock may have made due, on a transaction or the read pool.
async fn lots_due_on<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    e: E,
    member_id: i64,
    now_us: i64,
) -> Result<Vec<LotRow>> {
    // Two index ranges, one per kind of due work; a lot due both ways comes once.
    let rows = sqlx::query(&format!(
        "{LOT_SELECT} WHERE member_id = $1 AND state = 'pending' AND available_at_us <= $2 \
         UNION {LOT_SELECT} WHERE member_id = $1 AND state <> 'expired' \
         AND expires_at_us IS NOT NULL AND expires_at_us <= $2 ORDER BY lot_no"
    ))
    .bind(member_id)
    .bind(now_us)
    .fetch_all(e)
    .await?;
    rows.iter().map(LotRow::from_row).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_number_rows_and_columns() {
        assert_eq!(
            super::placeholders(2, 3, false),
            "($1, $2, $3), ($4, $5, $6)"
        );
        assert_eq!(super::placeholders(1, 1, false), "($1)");
        assert_eq!(super::placeholders(2, 2, true), "(?, ?), (?, ?)");
        assert_eq!(super::list(3, 2, false), "$3, $4");
    }
}
