//! What differs between the SQL databases Tessera runs on. Everything else in the store is
//! one body of SQL written in the subset SQLite and PostgreSQL share (`$n` parameters,
//! `ON CONFLICT`, `RETURNING`), run through sqlx's `Any` driver.

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor};
use std::time::Duration;

/// One SQL database Tessera can store its state in.
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// `sqlite` or `postgres`.
    fn name(&self) -> &'static str;
    /// The schema migrations, in order: (version, description, SQL).
    fn migrations(&self) -> &'static [(i64, &'static str, &'static str)];
    /// The clause that locks the rows a `SELECT` read until the transaction ends.
    /// SQLite has a single writer, so its write transactions are already exclusive.
    fn lock_clause(&self) -> &'static str;
    /// The clause that locks the rows a `SELECT` read and skips rows other transactions
    /// hold (a queue: partner codes).
    fn skip_locked_clause(&self) -> &'static str;
}

#[derive(Debug)]
pub struct Sqlite;

#[derive(Debug)]
pub struct Postgres;

impl Backend for Sqlite {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    fn migrations(&self) -> &'static [(i64, &'static str, &'static str)] {
        &[
            (
                1,
                "foundation",
                include_str!("migrations/sqlite_0001_foundation.sql"),
            ),
            (
                2,
                "points",
                include_str!("migrations/sqlite_0002_points.sql"),
            ),
            (3, "tiers", include_str!("migrations/sqlite_0003_tiers.sql")),
            (4, "plans", include_str!("migrations/sqlite_0004_plans.sql")),
            (
                5,
                "coupons",
                include_str!("migrations/sqlite_0005_coupons.sql"),
            ),
            (
                6,
                "retries",
                include_str!("migrations/sqlite_0006_retries.sql"),
            ),
            (
                7,
                "spend order",
                include_str!("migrations/sqlite_0007_spend_order.sql"),
            ),
            (
                8,
                "measure days",
                include_str!("migrations/sqlite_0008_measure_days.sql"),
            ),
            (9, "keys", include_str!("migrations/sqlite_0009_keys.sql")),
            (
                10,
                "erasure",
                include_str!("migrations/sqlite_0010_erasure.sql"),
            ),
            (
                11,
                "referral",
                include_str!("migrations/sqlite_0011_referral.sql"),
            ),
            (
                12,
                "offers",
                include_str!("migrations/sqlite_0012_offers.sql"),
            ),
        ]
    }

    fn lock_clause(&self) -> &'static str {
        ""
    }

    fn skip_locked_clause(&self) -> &'static str {
        ""
    }
}

impl Backend for Postgres {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn migrations(&self) -> &'static [(i64, &'static str, &'static str)] {
        &[
            (
                1,
                "foundation",
                include_str!("migrations/postgres_0001_foundation.sql"),
            ),
            (
                2,
                "points",
                include_str!("migrations/postgres_0002_points.sql"),
            ),
            (
                3,
                "tiers",
                include_str!("migrations/postgres_0003_tiers.sql"),
            ),
            (
                4,
                "plans",
                include_str!("migrations/postgres_0004_plans.sql"),
            ),
            (
                5,
                "coupons",
                include_str!("migrations/postgres_0005_coupons.sql"),
            ),
            (
                6,
                "retries",
                include_str!("migrations/postgres_0006_retries.sql"),
            ),
            (
                7,
                "spend order",
                include_str!("migrations/postgres_0007_spend_order.sql"),
            ),
            (
                8,
                "measure days",
                include_str!("migrations/postgres_0008_measure_days.sql"),
            ),
            (9, "keys", include_str!("migrations/postgres_0009_keys.sql")),
            (
                10,
                "erasure",
                include_str!("migrations/postgres_0010_erasure.sql"),
            ),
            (
                11,
                "referral",
                include_str!("migrations/postgres_0011_referral.sql"),
            ),
            (
                12,
                "offers",
                include_str!("migrations/postgres_0012_offers.sql"),
            ),
        ]
    }

    fn lock_clause(&self) -> &'static str {
        " FOR UPDATE"
    }

    fn skip_locked_clause(&self) -> &'static str {
        " FOR UPDATE SKIP LOCKED"
    }
}

/// The pools of one store: writes go through `write`, reads through `read`.
pub(crate) struct Pools {
    pub write: AnyPool,
    pub read: AnyPool,
}

/// SQLite: one writer connection (SQLite admits one writer at a time, and a queue in the
/// pool is fairer and faster than `SQLITE_BUSY` retries), several readers (WAL lets them
/// read while the writer writes). Every commit is fsynced (`synchronous = FULL`).
/// `create` makes the file when it is missing (`serve`, `migrate`); without it a missing
/// file is an error (`check`: a mistyped path must not pass as an empty, balanced ledger).
pub(crate) async fn connect_sqlite(url: &str, create: bool) -> Result<Pools, sqlx::Error> {
    let url = if url.contains('?') {
        url.to_owned()
    } else if create {
        format!("{url}?mode=rwc")
    } else {
        format!("{url}?mode=rw")
    };
    let write = AnyPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(30))
        .after_connect(|conn, _| Box::pin(sqlite_pragmas(conn)))
        .connect(&url)
        .await?;
    let read = AnyPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(30))
        .after_connect(|conn, _| Box::pin(sqlite_pragmas(conn)))
        .connect(&url)
        .await?;
    Ok(Pools { write, read })
}

pub(crate) async fn connect_postgres(url: &str) -> Result<Pools, sqlx::Error> {
    let pool = AnyPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await?;
    Ok(Pools {
        write: pool.clone(),
        read: pool,
    })
}

async fn sqlite_pragmas(conn: &mut sqlx::AnyConnection) -> Result<(), sqlx::Error> {
    conn.execute(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
         PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; \
         PRAGMA cache_size = -65536; PRAGMA wal_autocheckpoint = 16384;",
    )
    .await
    .map(|_| ())
}
