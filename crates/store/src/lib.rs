//! Tessera's storage: one `Store` over SQLite (the embedded default) or PostgreSQL.
//!
//! Architecture invariant: the store knows tables, rows and transactions, never business
//! rules. It returns plain rows; the engine turns them into domain values and decides.
//! Uniqueness (event ids, external ids, idempotency keys, API keys) is enforced by the
//! database, and a violated constraint comes back as `StoreError::Conflict`.

mod answers;
mod backend;
mod bench;
mod check;
mod closing;
mod offers;
mod points;
mod programme;
mod reads;
mod referrals;
mod rows;
mod subscriptions;
mod tiers;

pub use answers::*;
pub use backend::{Backend, Postgres, Sqlite};
pub use check::CheckSnapshot;
pub use offers::*;
use points::IN_LIST_MAX;
pub use points::*;
pub use reads::{MemberSearch, OrderRecord};
pub use referrals::*;
pub use rows::*;
pub use subscriptions::*;
pub use tiers::*;

use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use sqlx::{AnyPool, Row};
use std::borrow::Cow;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached, or did not answer in time.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A uniqueness constraint refused the write.
    #[error("conflict on {0}")]
    Conflict(String),
    /// The URL names no supported database.
    #[error("unsupported database URL `{0}`: use sqlite://PATH or postgres://...")]
    UnsupportedUrl(String),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("database error: {0}")]
    Database(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(
                db.constraint()
                    .map_or_else(|| db.message().to_owned(), str::to_owned),
            ),
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                StoreError::Unavailable(e.to_string())
            }
            _ => StoreError::Database(e.to_string()),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A handle on the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn Backend>,
    write: AnyPool,
    read: AnyPool,
    /// Counts committed write transactions: a cache of what was read is valid while this
    /// has not moved.
    generation: Arc<std::sync::atomic::AtomicU64>,
}

/// A write transaction. Dropped without `commit`, it rolls back.
pub struct Tx {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    generation: Arc<std::sync::atomic::AtomicU64>,
    lock: &'static str,
    skip_locked: &'static str,
    /// Whether statements built with many parameters use anonymous `?` placeholders
    /// (SQLite, where binding `$n` by name costs time in proportion to the parameters).
    anonymous: bool,
}

impl Store {
    /// Connects to `sqlite://PATH` (created if missing) or `postgres://...`.
    pub async fn connect(url: &str) -> Result<Store> {
        Self::connect_with(url, true).await
    }

    /// Connects to a database that must exist already, with its schema: a missing SQLite
    /// file, or a database Tessera never migrated, is an error.
    pub async fn connect_existing(url: &str) -> Result<Store> {
        let store = Self::connect_with(url, false).await?;
        let migrated = sqlx::query("SELECT COUNT(*) AS n FROM _sqlx_migrations")
            .fetch_one(&store.read)
            .await
            .is_ok();
        if !migrated {
            return Err(StoreError::Unavailable(format!(
                "{url} holds no Tessera schema (run `tessera migrate` on a new database)"
            )));
        }
        Ok(store)
    }

    async fn connect_with(url: &str, create: bool) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let (backend, pools): (Arc<dyn Backend>, _) = if url.starts_with("sqlite:") {
            (Arc::new(Sqlite), backend::connect_sqlite(url, create).await)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Arc::new(Postgres), backend::connect_postgres(url).await)
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        };
        let pools = pools.map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(Store {
            backend,
            write: pools.write,
            read: pools.read,
            generation: Arc::default(),
        })
    }

    /// The number of write transactions committed through this store so far.
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    pub fn backend_name(&self) -> &'static str {
        self.backend.name()
    }

    /// Brings the schema up to date; safe to run at every start.
    pub async fn migrate(&self) -> Result<()> {
        let source = Embedded(self.backend.migrations());
        let migrator = Migrator::new(source)
            .await
            .map_err(|e| StoreError::Migration(e.to_string()))?;
        migrator
            .run(&self.write)
            .await
            .map_err(|e| StoreError::Migration(e.to_string()))
    }

    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }

    pub async fn begin(&self) -> Result<Tx> {
        Ok(Tx {
            tx: self.write.begin().await?,
            generation: self.generation.clone(),
            lock: self.backend.lock_clause(),
            skip_locked: self.backend.skip_locked_clause(),
            anonymous: self.backend.name() == "sqlite",
        })
    }

    /// Whether the database answers at all.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    // ---- programme versions ----

    pub async fn programme_latest(&self) -> Result<Option<ProgrammeVersionRow>> {
        let row = sqlx::query(
            "SELECT version, source, sha256, created_at_us FROM programme_versions \
             ORDER BY version DESC LIMIT 1",
        )
        .fetch_optional(&self.read)
        .await?;
        row.map(|r| ProgrammeVersionRow::from_row(&r)).transpose()
    }

    /// The number of the newest version, if any (one index read: what a process asks
    /// every second to learn that another process saved a version).
    pub async fn programme_latest_version(&self) -> Result<Option<i64>> {
        let row = sqlx::query("SELECT MAX(version) AS v FROM programme_versions")
            .fetch_one(&self.read)
            .await?;
        Ok(row.try_get::<Option<i64>, _>("v")?)
    }

    /// Versions newest first, older than `before` when given.
    pub async fn programme_versions(
        &self,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<ProgrammeVersionRow>> {
        let rows = sqlx::query(
            "SELECT version, source, sha256, created_at_us FROM programme_versions \
             WHERE version < $1 ORDER BY version DESC LIMIT $2",
        )
        .bind(before.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(ProgrammeVersionRow::from_row).collect()
    }

    // ---- API keys ----

    pub async fn api_key_by_hash(&self, key_sha256: &str) -> Result<Option<ApiKeyRow>> {
        let row = sqlx::query(&format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE key_sha256 = $1"
        ))
        .bind(key_sha256)
        .fetch_optional(&self.read)
        .await?;
        row.map(|r| ApiKeyRow::from_row(&r)).transpose()
    }

    /// Keys with ids above `after_id`, oldest first, at most `limit` (revoked ones too).
    pub async fn api_keys_list(&self, after_id: i64, limit: u32) -> Result<Vec<ApiKeyRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE id > $1 ORDER BY id LIMIT $2"
        ))
        .bind(after_id)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(ApiKeyRow::from_row).collect()
    }

    /// Records that a key was used at `at_us` (never moving the record back).
    pub async fn api_key_used(&self, id: i64, at_us: i64) -> Result<()> {
        sqlx::query(
            "UPDATE api_keys SET last_used_at_us = $2 WHERE id = $1 \
             AND (last_used_at_us IS NULL OR last_used_at_us < $2)",
        )
        .bind(id)
        .bind(at_us)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    pub async fn api_key_count(&self, role: &str) -> Result<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM api_keys WHERE role = $1 AND revoked_at_us IS NULL",
        )
        .bind(role)
        .fetch_one(&self.read)
        .await?;
        Ok(row.try_get::<i64, _>("n")?)
    }

    // ---- members and events (reads) ----

    pub async fn member_get(&self, external_id: &str) -> Result<Option<MemberRow>> {
        let row = sqlx::query(&format!("{MEMBER_SELECT} WHERE external_id = $1"))
            .bind(external_id)
            .fetch_optional(&self.read)
            .await?;
        row.map(|r| MemberRow::from_row(&r)).transpose()
    }

    /// A member's events in arrival order, after `after_seq`.
    pub async fn events_list(
        &self,
        member_id: i64,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<EventRow>> {
        let rows = sqlx::query(&events_of_member_sql())
            .bind(member_id)
            .bind(after_seq)
            .bind(i64::from(limit))
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(EventRow::from_row).collect()
    }

    // ---- idempotency keys (each a short write of its own) ----

    /// Claims `key` for a request, or tells what became of an earlier claim. A claim is a
    /// lease: one not renewed since `stale_before_us` belongs to a request that died, and
    /// this request takes it over with its own token.
    pub async fn idempotency_begin(&self, r: &IdempotencyRequest<'_>) -> Result<IdempotencyClaim> {
        let mut tx = self.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (api_key_id, idempotency_key, request_sha256, \
             created_at_us, route, claim_token) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (api_key_id, idempotency_key) DO NOTHING \
             RETURNING api_key_id",
        )
        .bind(r.api_key_id)
        .bind(r.key)
        .bind(r.request_sha256)
        .bind(r.now_us)
        .bind(r.route)
        .bind(r.token)
        .fetch_optional(&mut *tx.tx)
        .await?;
        if inserted.is_some() {
            tx.commit().await?;
            return Ok(IdempotencyClaim::Claimed);
        }
        let row = sqlx::query(&format!(
            "SELECT request_sha256, status, response, created_at_us, route FROM idempotency_keys \
             WHERE api_key_id = $1 AND idempotency_key = $2{}",
            tx.lock
        ))
        .bind(r.api_key_id)
        .bind(r.key)
        .fetch_one(&mut *tx.tx)
        .await?;
        let stored_sha: String = row.try_get("request_sha256")?;
        let status: Option<i64> = row.try_get("status")?;
        let response: Option<String> = row.try_get("response")?;
        let created_at_us: i64 = row.try_get("created_at_us")?;
        let route: String = row.try_get("route")?;
        // Keys claimed before routes were recorded have an empty route.
        let claim = if !route.is_empty() && route != r.route {
            IdempotencyClaim::OtherRoute { route }
        } else if stored_sha != r.request_sha256 {
            IdempotencyClaim::Mismatch
        } else if let (Some(status), Some(body)) = (status, response) {
            let status = u16::try_from(status)
                .map_err(|_| StoreError::Database(format!("corrupt stored status {status}")))?;
            IdempotencyClaim::Done { status, body }
        } else if created_at_us < r.stale_before_us {
            // The first request died before answering; this one takes its place.
            sqlx::query(
                "UPDATE idempotency_keys SET created_at_us = $3, claim_token = $4 \
                 WHERE api_key_id = $1 AND idempotency_key = $2",
            )
            .bind(r.api_key_id)
            .bind(r.key)
            .bind(r.now_us)
            .bind(r.token)
            .execute(&mut *tx.tx)
            .await?;
            IdempotencyClaim::Claimed
        } else {
            IdempotencyClaim::InProgress
        };
        tx.commit().await?;
        Ok(claim)
    }

    /// Stores the answer of the claim `token` holds; false when the claim was taken over.
    pub async fn idempotency_complete(
        &self,
        api_key_id: i64,
        key: &str,
        token: &str,
        status: u16,
        body: &str,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE idempotency_keys SET status = $3, response = $4 \
             WHERE api_key_id = $1 AND idempotency_key = $2 AND claim_token = $5 AND status IS NULL",
        )
        .bind(api_key_id)
        .bind(key)
        .bind(i64::from(status))
        .bind(body)
        .bind(token)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Extends the lease of a claim whose request is still running; false when the claim
    /// is no longer held by `token`.
    pub async fn idempotency_renew(
        &self,
        api_key_id: i64,
        key: &str,
        token: &str,
        now_us: i64,
    ) -> Result<bool> {
        let renewed = sqlx::query(
            "UPDATE idempotency_keys SET created_at_us = $3 \
             WHERE api_key_id = $1 AND idempotency_key = $2 AND claim_token = $4 AND status IS NULL",
        )
        .bind(api_key_id)
        .bind(key)
        .bind(now_us)
        .bind(token)
        .execute(&self.write)
        .await?;
        Ok(renewed.rows_affected() == 1)
    }

    /// Forgets a claim whose request was refused or failed, so that a retry (perhaps with a
    /// corrected body) runs.
    pub async fn idempotency_abandon(&self, api_key_id: i64, key: &str, token: &str) -> Result<()> {
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE api_key_id = $1 AND idempotency_key = $2 \
             AND claim_token = $3 AND status IS NULL",
        )
        .bind(api_key_id)
        .bind(key)
        .bind(token)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    // ---- clock ----

    pub async fn clock_get(&self) -> Result<Option<i64>> {
        let row = sqlx::query("SELECT now_us FROM clock WHERE id = 1")
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map(|r| r.try_get::<i64, _>("now_us")).transpose()?)
    }

    // ---- the schema, for tests and checks ----

    /// Every table of Tessera's schema with its columns, sorted, and the names of the
    /// indexes made by the migrations: what the SQLite and PostgreSQL migrations must agree
    /// on.
    pub async fn schema_description(&self) -> Result<SchemaDescription> {
        let (tables_sql, indexes_sql) = if self.backend.name() == "sqlite" {
            (
                "SELECT m.name AS table_name, p.name AS column_name \
                 FROM sqlite_master m JOIN pragma_table_info(m.name) p \
                 WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE '_sqlx%'",
                "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL",
            )
        } else {
            (
                "SELECT table_name::TEXT AS table_name, column_name::TEXT AS column_name \
                 FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name NOT LIKE '_sqlx%'",
                "SELECT indexname::TEXT AS name FROM pg_indexes WHERE schemaname = current_schema() \
                 AND indexname NOT LIKE '%_pkey' AND indexname NOT LIKE '%_key'",
            )
        };
        let mut tables: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for r in sqlx::query(tables_sql).fetch_all(&self.read).await? {
            tables
                .entry(r.try_get("table_name")?)
                .or_default()
                .push(r.try_get("column_name")?);
        }
        for columns in tables.values_mut() {
            columns.sort();
        }
        let mut indexes: Vec<String> = sqlx::query(indexes_sql)
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(|r| r.try_get("name"))
            .collect::<std::result::Result<_, _>>()?;
        indexes.sort();
        Ok(SchemaDescription {
            tables: tables.into_iter().collect(),
            indexes,
        })
    }

    /// The number of rows of every table, by name (tests: "a refused request changed
    /// nothing").
    pub async fn table_row_counts(&self) -> Result<Vec<(String, i64)>> {
        let mut out = Vec::new();
        for (table, _) in self.schema_description().await?.tables {
            let row = sqlx::query(&format!("SELECT COUNT(*) AS n FROM {table}"))
                .fetch_one(&self.read)
                .await?;
            out.push((table, row.try_get::<i64, _>("n")?));
        }
        Ok(out)
    }

    // ---- whole-table counts, for tests and checks ----

    pub async fn count(&self, table: Table) -> Result<i64> {
        let row = sqlx::query(&format!("SELECT COUNT(*) AS n FROM {}", table.name()))
            .fetch_one(&self.read)
            .await?;
        Ok(row.try_get::<i64, _>("n")?)
    }
}

/// The shape of the schema: tables with their sorted columns, and index names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaDescription {
    pub tables: Vec<(String, Vec<String>)>,
    pub indexes: Vec<String>,
}

/// Tables whose rows can be counted.
#[derive(Debug, Clone, Copy)]
pub enum Table {
    Members,
    Events,
    ProgrammeVersions,
    ApiKeys,
    IdempotencyKeys,
    PointEntries,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Members => "members",
            Table::Events => "events",
            Table::ProgrammeVersions => "programme_versions",
            Table::ApiKeys => "api_keys",
            Table::IdempotencyKeys => "idempotency_keys",
            Table::PointEntries => "point_entries",
        }
    }
}

const MEMBER_SELECT: &str = "SELECT id, external_id, status, attributes, referred_by_code, \
    referral_code, created_at_us, updated_at_us, closed_at_us, erased_at_us FROM members";
/// A page of a member's events after a sequence number: `$1` member, `$2` after, `$3` limit.
pub(crate) fn events_of_member_sql() -> String {
    format!("{EVENT_SELECT} WHERE member_id = $1 AND seq > $2 ORDER BY seq LIMIT $3")
}

pub(crate) const EVENT_SELECT: &str =
    "SELECT seq, event_id, member_id, type, order_id, occurred_at_us, \
    received_at_us, body, body_sha256 FROM events";

impl Tx {
    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    pub async fn programme_insert(
        &mut self,
        source: &str,
        sha256: &str,
        now_us: i64,
    ) -> Result<ProgrammeVersionRow> {
        let row = sqlx::query(
            "INSERT INTO programme_versions (version, source, sha256, created_at_us) \
             SELECT COALESCE(MAX(version), 0) + 1, $1, $2, $3 FROM programme_versions \
             RETURNING version, source, sha256, created_at_us",
        )
        .bind(source)
        .bind(sha256)
        .bind(now_us)
        .fetch_one(&mut *self.tx)
        .await?;
        ProgrammeVersionRow::from_row(&row)
    }

    /// The newest saved version, locked until the transaction ends (on PostgreSQL): a save
    /// judges its change against it.
    pub async fn programme_latest_for_update(&mut self) -> Result<Option<ProgrammeVersionRow>> {
        let row = sqlx::query(&format!(
            "SELECT version, source, sha256, created_at_us FROM programme_versions \
             ORDER BY version DESC LIMIT 1{}",
            self.lock
        ))
        .fetch_optional(&mut *self.tx)
        .await?;
        row.map(|r| ProgrammeVersionRow::from_row(&r)).transpose()
    }

    pub async fn api_key_insert(&mut self, new: &NewApiKey<'_>) -> Result<ApiKeyRow> {
        let row = sqlx::query(&format!(
            "INSERT INTO api_keys (key_sha256, prefix, role, partner, label, expires_at_us, created_at_us) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {API_KEY_COLUMNS}"
        ))
        .bind(new.key_sha256)
        .bind(new.prefix)
        .bind(new.role)
        .bind(new.partner)
        .bind(new.label)
        .bind(new.expires_at_us)
        .bind(new.now_us)
        .fetch_one(&mut *self.tx)
        .await?;
        ApiKeyRow::from_row(&row)
    }

    /// A key by id, locked for the rest of the transaction.
    pub async fn api_key_for_update(&mut self, id: i64) -> Result<Option<ApiKeyRow>> {
        let row = sqlx::query(&format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE id = $1{}",
            self.lock
        ))
        .bind(id)
        .fetch_optional(&mut *self.tx)
        .await?;
        row.map(|r| ApiKeyRow::from_row(&r)).transpose()
    }

    /// The keys of a role not revoked, locked for the rest of the transaction: two
    /// revocations at once see each other's.
    pub async fn api_keys_unrevoked_for_update(&mut self, role: &str) -> Result<Vec<ApiKeyRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE role = $1 AND revoked_at_us IS NULL \
             ORDER BY id{}",
            self.lock
        ))
        .bind(role)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(ApiKeyRow::from_row).collect()
    }

    /// Revokes a key at `now_us`; a key revoked before keeps its first instant.
    pub async fn api_key_revoke(&mut self, id: i64, now_us: i64) -> Result<()> {
        sqlx::query(
            "UPDATE api_keys SET revoked_at_us = $2 WHERE id = $1 AND revoked_at_us IS NULL",
        )
        .bind(id)
        .bind(now_us)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn member_insert(&mut self, new: &NewMember<'_>) -> Result<MemberRow> {
        let row = sqlx::query(
            "INSERT INTO members (external_id, status, attributes, referred_by_code, created_at_us, updated_at_us, referral_code) \
             VALUES ($1, 'active', $2, $3, $4, $4, $5) \
             RETURNING id, external_id, status, attributes, referred_by_code, referral_code, created_at_us, updated_at_us, closed_at_us, erased_at_us",
        )
        .bind(new.external_id)
        .bind(new.attributes)
        .bind(new.referred_by_code)
        .bind(new.now_us)
        .bind(new.referral_code)
        .fetch_one(&mut *self.tx)
        .await?;
        let member = MemberRow::from_row(&row)?;
        sqlx::query("INSERT INTO point_accounts (member_id) VALUES ($1)")
            .bind(member.id)
            .execute(&mut *self.tx)
            .await?;
        sqlx::query("INSERT INTO member_tiers (member_id) VALUES ($1)")
            .bind(member.id)
            .execute(&mut *self.tx)
            .await?;
        Ok(member)
    }

    /// Reads a member and, on PostgreSQL, locks the row until the transaction ends.
    pub async fn member_for_update(&mut self, external_id: &str) -> Result<Option<MemberRow>> {
        let row = sqlx::query(&format!(
            "{MEMBER_SELECT} WHERE external_id = $1{}",
            self.lock
        ))
        .bind(external_id)
        .fetch_optional(&mut *self.tx)
        .await?;
        row.map(|r| MemberRow::from_row(&r)).transpose()
    }

    pub async fn member_update(&mut self, member: &MemberRow) -> Result<()> {
        sqlx::query(
            "UPDATE members SET status = $2, attributes = $3, updated_at_us = $4, closed_at_us = $5 WHERE id = $1",
        )
        .bind(member.id)
        .bind(&member.status)
        .bind(&member.attributes)
        .bind(member.updated_at_us)
        .bind(member.closed_at_us)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// The stored events with these ids.
    pub async fn events_get_many(&mut self, event_ids: &[&str]) -> Result<Vec<EventRow>> {
        let mut out = Vec::new();
        for chunk in event_ids.chunks(IN_LIST_MAX) {
            let list = (1..=chunk.len())
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!("{EVENT_SELECT} WHERE event_id IN ({list})");
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(*id);
            }
            for r in q.fetch_all(&mut *self.tx).await? {
                out.push(EventRow::from_row(&r)?);
            }
        }
        Ok(out)
    }

    /// Stores events whose ids are free, a few statements for many; returns the rows
    /// stored. An id taken meanwhile is skipped: the caller compares what came back.
    pub async fn events_insert_many(&mut self, events: &[NewEvent<'_>]) -> Result<Vec<EventRow>> {
        let mut out = Vec::with_capacity(events.len());
        for chunk in events.chunks(50) {
            let values = (0..chunk.len())
                .map(|r| {
                    let b = r * 8;
                    format!(
                        "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                        b + 1,
                        b + 2,
                        b + 3,
                        b + 4,
                        b + 5,
                        b + 6,
                        b + 7,
                        b + 8
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "INSERT INTO events (event_id, member_id, type, order_id, occurred_at_us, received_at_us, body, body_sha256) \
                 VALUES {values} ON CONFLICT (event_id) DO NOTHING \
                 RETURNING seq, event_id, member_id, type, order_id, occurred_at_us, received_at_us, body, body_sha256"
            );
            let mut q = sqlx::query(&sql);
            for e in chunk {
                q = q
                    .bind(e.event_id)
                    .bind(e.member_id)
                    .bind(e.event_type)
                    .bind(e.order_id)
                    .bind(e.occurred_at_us)
                    .bind(e.received_at_us)
                    .bind(e.body)
                    .bind(e.body_sha256);
            }
            for r in q.fetch_all(&mut *self.tx).await? {
                out.push(EventRow::from_row(&r)?);
            }
        }
        Ok(out)
    }

    /// The stored manual-clock instant, locked until the transaction ends.
    pub async fn clock_get_for_update(&mut self) -> Result<Option<i64>> {
        let row = sqlx::query(&format!(
            "SELECT now_us FROM clock WHERE id = 1{}",
            self.lock
        ))
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(row.map(|r| r.try_get::<i64, _>("now_us")).transpose()?)
    }

    pub async fn clock_set(&mut self, now_us: i64) -> Result<()> {
        sqlx::query("INSERT INTO clock (id, now_us) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET now_us = $1")
            .bind(now_us)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }
}

#[derive(Debug)]
struct Embedded(&'static [(i64, &'static str, &'static str)]);

impl<'s> MigrationSource<'s> for Embedded {
    fn resolve(
        self,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<Vec<Migration>, sqlx::error::BoxDynError>>
                + Send
                + 's,
        >,
    > {
        Box::pin(async move {
            Ok(self
                .0
                .iter()
                .map(|(version, description, sql)| {
                    Migration::new(
                        *version,
                        Cow::Borrowed(*description),
                        MigrationType::Simple,
                        Cow::Borrowed(*sql),
                        false,
                    )
                })
                .collect())
        })
    }
}
