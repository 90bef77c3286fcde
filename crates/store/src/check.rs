//! The reads of `tessera check`, in one read-only snapshot: on a live database every
//! figure is of the same instant, so a write committed between two statements cannot make
//! the books look unbalanced.

use crate::points::Violation;
use crate::{Result, Store};
use sqlx::Row;

/// A read-only transaction that sees one instant of the database.
pub struct CheckSnapshot {
    tx: sqlx::Transaction<'static, sqlx::Any>,
}

impl Store {
    /// Opens a snapshot for the ledger check (PostgreSQL: repeatable read, read only;
    /// SQLite: one read transaction, which sees one state of the WAL).
    pub async fn check_snapshot(&self) -> Result<CheckSnapshot> {
        let mut tx = self.read.begin().await?;
        if self.backend.name() == "postgres" {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *tx)
                .await?;
        }
        Ok(CheckSnapshot { tx })
    }
}

impl CheckSnapshot {
    /// The number of members.
    pub async fn member_count(&mut self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM members")
            .fetch_one(&mut *self.tx)
            .await?;
        Ok(row.try_get::<i64, _>("n")?)
    }

    /// The highest member id, for checks that walk members in ranges.
    pub async fn member_id_max(&mut self) -> Result<i64> {
        let row = sqlx::query("SELECT COALESCE(MAX(id), 0) AS n FROM members")
            .fetch_one(&mut *self.tx)
            .await?;
        Ok(row.try_get::<i64, _>("n")?)
    }

    /// The ledger invariants for members with ids in `[from, to)`: balances equal the
    /// lots and the postings, every entry balances, every lot is within bounds.
    pub async fn check_members(&mut self, from: i64, to: i64) -> Result<Vec<Violation>> {
        let mut found = Vec::new();
        let lots = sqlx::query(
            "SELECT a.member_id, a.pending, a.available, \
             CAST(COALESCE(l.pending, 0) AS BIGINT) AS lot_pending, \
             CAST(COALESCE(l.available, 0) AS BIGINT) AS lot_available \
             FROM point_accounts a LEFT JOIN ( \
               SELECT member_id, \
                 SUM(CASE WHEN state = 'pending' THEN remaining ELSE 0 END) AS pending, \
                 SUM(CASE WHEN state = 'available' THEN remaining ELSE 0 END) AS available \
               FROM point_lots WHERE member_id >= $1 AND member_id < $2 GROUP BY member_id \
             ) l ON l.member_id = a.member_id \
             WHERE a.member_id >= $1 AND a.member_id < $2",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&mut *self.tx)
        .await?;
        for r in lots {
            let (m, p, a): (i64, i64, i64) = (
                r.try_get("member_id")?,
                r.try_get("pending")?,
                r.try_get("available")?,
            );
            let (lp, la): (i64, i64) = (r.try_get("lot_pending")?, r.try_get("lot_available")?);
            if p != lp {
                found.push(Violation {
                    member_id: Some(m),
                    what: format!("pending balance {p} but pending lots hold {lp}"),
                });
            }
            if a != la {
                found.push(Violation {
                    member_id: Some(m),
                    what: format!("available balance {a} but available lots hold {la}"),
                });
            }
        }
        let postings = sqlx::query(
            "SELECT a.member_id, a.pending, a.available, a.debt, \
             CAST(COALESCE(p.pending, 0) AS BIGINT) AS post_pending, \
             CAST(COALESCE(p.available, 0) AS BIGINT) AS post_available, \
             CAST(COALESCE(p.debt, 0) AS BIGINT) AS post_debt \
             FROM point_accounts a LEFT JOIN ( \
               SELECT member_id, \
                 SUM(CASE WHEN account = 'member:pending' THEN amount ELSE 0 END) AS pending, \
                 SUM(CASE WHEN account = 'member:available' THEN amount ELSE 0 END) AS available, \
                 SUM(CASE WHEN account = 'member:debt' THEN amount ELSE 0 END) AS debt \
               FROM point_postings WHERE member_id >= $1 AND member_id < $2 GROUP BY member_id \
             ) p ON p.member_id = a.member_id \
             WHERE a.member_id >= $1 AND a.member_id < $2",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&mut *self.tx)
        .await?;
        for r in postings {
            let m: i64 = r.try_get("member_id")?;
            for (balance, posted, name, sign) in [
                ("pending", "post_pending", "pending", 1),
                ("available", "post_available", "available", 1),
                ("debt", "post_debt", "debt", -1),
            ] {
                let b: i64 = r.try_get(balance)?;
                let p: i64 = r.try_get(posted)?;
                if b != sign * p {
                    found.push(Violation {
                        member_id: Some(m),
                        what: format!("{name} balance {b} but its postings sum to {}", sign * p),
                    });
                }
            }
        }
        let unbalanced = sqlx::query(
            "SELECT member_id, entry_no, CAST(SUM(amount) AS BIGINT) AS total FROM point_postings \
             WHERE member_id >= $1 AND member_id < $2 GROUP BY member_id, entry_no HAVING SUM(amount) <> 0",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&mut *self.tx)
        .await?;
        for r in unbalanced {
            let (m, e, t): (i64, i64, i64) = (
                r.try_get("member_id")?,
                r.try_get("entry_no")?,
                r.try_get("total")?,
            );
            found.push(Violation {
                member_id: Some(m),
                what: format!("journal entry {e} sums to {t}, not 0"),
            });
        }
        let bad_lots = sqlx::query(
            "SELECT member_id, lot_no, points, remaining, state FROM point_lots WHERE member_id >= $1 AND member_id < $2 \
             AND (remaining < 0 OR remaining > points OR (state = 'expired' AND remaining <> 0))",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&mut *self.tx)
        .await?;
        for r in bad_lots {
            let (m, l, p, rem): (i64, i64, i64, i64) = (
                r.try_get("member_id")?,
                r.try_get("lot_no")?,
                r.try_get("points")?,
                r.try_get("remaining")?,
            );
            let state: String = r.try_get("state")?;
            found.push(Violation {
                member_id: Some(m),
                what: format!("lot {l} ({state}) has {rem} left of {p}"),
            });
        }
        let negative = sqlx::query(
            "SELECT member_id, pending, available, debt FROM point_accounts WHERE member_id >= $1 AND member_id < $2 \
             AND (pending < 0 OR available < 0 OR debt < 0)",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&mut *self.tx)
        .await?;
        for r in negative {
            let m: i64 = r.try_get("member_id")?;
            found.push(Violation {
                member_id: Some(m),
                what: "a negative balance".into(),
            });
        }
        // Each day total of a measure is the sum of that day's entries.
        let days = sqlx::query(
            "SELECT member_id, measure, day, CAST(SUM(t) AS BIGINT) AS gap FROM ( \
               SELECT member_id, measure, day, total AS t FROM measure_days \
               WHERE member_id >= $1 AND member_id < $2 \
               UNION ALL SELECT member_id, measure, \
                 (at_us - ((at_us % 86400000000) + 86400000000) % 86400000000) / 86400000000, -amount \
               FROM measure_entries WHERE member_id >= $1 AND member_id < $2 \
             ) d GROUP BY member_id, measure, day HAVING SUM(t) <> 0",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&mut *self.tx)
        .await?;
        for r in days {
            let (m, measure, day, gap): (i64, String, i64, i64) = (
                r.try_get("member_id")?,
                r.try_get("measure")?,
                r.try_get("day")?,
                r.try_get("gap")?,
            );
            found.push(Violation {
                member_id: Some(m),
                what: format!("{measure} total of day {day} is {gap} off the sum of its entries"),
            });
        }
        Ok(found)
    }

    /// Totals over the whole ledger: each account's sum of postings, and the members'
    /// outstanding points (pending + available − debt).
    pub async fn ledger_totals(&mut self) -> Result<(Vec<(String, i64)>, i64)> {
        let rows = sqlx::query("SELECT account, CAST(COALESCE(SUM(amount), 0) AS BIGINT) AS total FROM point_postings GROUP BY account ORDER BY account")
            .fetch_all(&mut *self.tx)
            .await?;
        let accounts = rows
            .iter()
            .map(|r| {
                Ok((
                    r.try_get::<String, _>("account")?,
                    r.try_get::<i64, _>("total")?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let row = sqlx::query("SELECT CAST(COALESCE(SUM(pending + available - debt), 0) AS BIGINT) AS n FROM point_accounts")
            .fetch_one(&mut *self.tx)
            .await?;
        Ok((accounts, row.try_get::<i64, _>("n")?))
    }

    /// The sum of every member's stored value (for the ledger check).
    pub async fn stored_value_total(&mut self) -> Result<i64> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(principal + bonus), 0) AS BIGINT) AS n FROM stored_value_accounts",
        )
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(row.try_get("n")?)
    }
}
