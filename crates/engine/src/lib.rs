//! Tessera's use cases. Each public method of `Engine` is one use case: it loads what it
//! needs, asks the domain, and saves the outcome in one transaction.
//!
//! Architecture invariant: the engine knows neither HTTP nor which SQL database it runs
//! on. It reads time only from its injected `Clock`.

mod answers;
pub mod clock;
mod error;
mod events;
pub mod jobs;
pub mod keys;
mod members;
pub mod offers;
pub mod orders;
mod page;
pub mod points;
pub mod quote;
pub mod referrals;
pub mod stored_value;
pub mod subscriptions;
pub mod tiers;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{EngineError, Result};
pub use events::{IngestItem, IngestOutcome};
pub use jobs::DueWork;
pub use keys::{ApiKey, Role};
pub use members::{Closing, Member, MemberFilter, MemberPatch, MemberStatus};
pub use orders::{CommitRequest, OrderRefundAnswer};
pub use points::{
    AdjustmentRequest, LedgerReport, Operation, PointsSummary, RedemptionRequest, RedemptionTarget,
};
pub use quote::{HeldBenefit, QuoteAnswer, QuoteRequest, Upsell};
pub use subscriptions::{
    Entitlement, PartnerRedemption, PlanOffer, Purchase, SubscribeRequest, SubscriptionView,
};
pub use tiers::{TierView, TierWork};
// Row types the API renders; the API itself never touches the store.
pub use tessera_store::{
    AssignedCodeRow, CouponRow, EntryRow, EventRow, HistoryRow, IdempotencyClaim, LotRow,
    PoolCounts, RenewalRow, StoreError, StoredValueRow, SubscriptionHistoryRow, SubscriptionRow,
    TermRow,
};

use clock::{from_us, to_us};
use jiff::Timestamp;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tessera_domain::plans;
use tessera_domain::programme::change::{self, Assessment};
use tessera_domain::Programme;
use tessera_store::{ProgrammeVersionRow, Store, Tx};

/// Whether an assessment counts the members who would change tier: a read of every
/// member's measures, done for a dry run, not inside a save.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recount {
    Tiers,
    No,
}

/// The programme version in force.
#[derive(Debug, Clone)]
pub struct ActiveProgramme {
    pub version: i64,
    pub source: String,
    pub sha256: String,
    pub created_at: Timestamp,
    pub programme: Programme,
}

/// How long a process trusts a key it looked up: a key revoked by another process is
/// refused everywhere within this.
const KEY_CACHE_TTL: Duration = Duration::from_secs(1);
/// How often a process records that a key was used.
const KEY_USE_RECORD_EVERY: Duration = Duration::from_secs(60);

/// A key as one process last looked it up.
struct CachedKey {
    /// `None`: unknown, revoked or expired.
    key: Option<ApiKey>,
    fetched: Instant,
    /// When this process last recorded the key's use.
    use_recorded: Option<Instant>,
}

/// How often `serve` looks for a programme version saved by another process.
pub const PROGRAMME_REFRESH: Duration = Duration::from_secs(1);
/// How long an idempotency claim lasts without renewal: a request that runs longer renews
/// it every `IDEMPOTENCY_RENEW_EVERY`, so a claim older than this belongs to a request that
/// died (a crash, a lost connection) and the client's retry takes it over.
const IDEMPOTENCY_LEASE_US: i64 = 15_000_000;
/// How often a running request renews its idempotency claim: often enough that a renewal
/// waiting on a busy writer for seconds still lands well within the lease.
pub const IDEMPOTENCY_RENEW_EVERY: Duration = Duration::from_secs(3);

pub struct Engine {
    store: Store,
    clock: Arc<dyn Clock>,
    programme: RwLock<Option<Arc<ActiveProgramme>>>,
    /// Keys looked up, by hash: unknown and refused keys too, so that a flood of bad keys
    /// costs one read a second each.
    key_cache: Mutex<HashMap<String, CachedKey>>,
    /// Members' holdings as quotes read them, with the store generation and the instant
    /// they were read at (see `quote::cached_holdings`).
    holdings_cache: Mutex<HashMap<String, quote::CachedHoldings>>,
    /// Whether quotes reuse holdings (benchmarks turn it off to measure the reads).
    reuse_holdings: std::sync::atomic::AtomicBool,
    /// A newer stored version this build could not parse (logged once, not retried).
    unreadable_version: std::sync::atomic::AtomicI64,
    /// Subscriptions by status as metrics last read them, and when.
    status_counts: tokio::sync::Mutex<Option<StatusCounts>>,
    /// Offers quotes showed since the clock's jobs last wrote them: (member, offer) →
    /// (first and last instant shown, times shown). A quote writes nothing.
    quote_exposures: Mutex<HashMap<(i64, String), offers::Noted>>,
}

/// Subscriptions by status, and when they were read.
type StatusCounts = (Instant, Vec<(String, i64)>);

pub fn sha256_hex(data: &[u8]) -> String {
    keys::hex(&Sha256::digest(data))
}

impl Engine {
    /// Starts an engine on a migrated store. `programme_source`, when given and different
    /// from the newest stored version, becomes a new version.
    pub async fn start(
        store: Store,
        clock: Arc<dyn Clock>,
        programme_source: Option<&str>,
    ) -> Result<Engine> {
        let engine = Engine {
            store,
            clock,
            programme: RwLock::new(None),
            key_cache: Mutex::new(HashMap::new()),
            holdings_cache: Mutex::new(HashMap::new()),
            reuse_holdings: std::sync::atomic::AtomicBool::new(true),
            unreadable_version: std::sync::atomic::AtomicI64::new(0),
            status_counts: tokio::sync::Mutex::new(None),
            quote_exposures: Mutex::new(HashMap::new()),
        };
        if let Some(row) = engine.store.programme_latest().await? {
            let programme =
                Programme::parse_stored(&row.source).map_err(EngineError::ProgrammeInvalid)?;
            engine.set_active(row, programme);
        }
        if let Some(source) = programme_source {
            engine.put_programme(source).await?;
        }
        Ok(engine)
    }

    /// Makes a manual clock that resumes where the database's stored clock stopped.
    /// `start`, when given, must not be before that instant.
    pub async fn manual_clock(store: &Store, start: Option<Timestamp>) -> Result<ManualClock> {
        let stored = store.clock_get().await?.map(from_us);
        let now = match (start, stored) {
            (Some(start), Some(stored)) if start < stored => {
                return Err(EngineError::ClockBackwards {
                    now: stored,
                    requested: start,
                })
            }
            (Some(start), _) => start,
            (None, Some(stored)) => stored,
            (None, None) => Timestamp::now(),
        };
        // The start is stored at once: a process that stops before the clock is first
        // moved starts again at the same instant, not at the wall clock's.
        if stored != Some(now) {
            let mut tx = store.begin().await?;
            tx.clock_set(to_us(now)).await?;
            tx.commit().await?;
        }
        Ok(ManualClock::new(now))
    }

    /// Turns the reuse of members' holdings by quotes on or off (for measurements).
    pub fn set_holdings_reuse(&self, on: bool) {
        self.reuse_holdings
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The engine's time, to the microsecond: what is stored is what was answered.
    pub fn now(&self) -> Timestamp {
        let now = self.clock.now();
        Timestamp::from_microsecond(now.as_microsecond()).unwrap_or(now)
    }

    pub fn is_manual_clock(&self) -> bool {
        self.clock.as_manual().is_some()
    }

    // ---- programme ----

    pub fn programme(&self) -> Result<Arc<ActiveProgramme>> {
        self.programme
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or(EngineError::ProgrammeMissing)
    }

    /// Makes a stored version the running one, unless a newer one already runs (a save
    /// of this process and a refresh from another may cross).
    fn set_active(&self, row: ProgrammeVersionRow, programme: Programme) -> Arc<ActiveProgramme> {
        let mut running = self.programme.write().unwrap_or_else(|p| p.into_inner());
        if let Some(current) = running.as_ref().filter(|c| c.version >= row.version) {
            return current.clone();
        }
        let active = Arc::new(ActiveProgramme {
            version: row.version,
            source: row.source,
            sha256: row.sha256,
            created_at: from_us(row.created_at_us),
            programme,
        });
        *running = Some(active.clone());
        active
    }

    /// Runs the newest stored version when another process saved one since: every
    /// process on one database runs the same programme within one refresh period
    /// (`serve` refreshes every `PROGRAMME_REFRESH`). Returns the version now running when
    /// it changed. A newer version this build cannot read is logged and not run.
    pub async fn refresh_programme(&self) -> Result<Option<i64>> {
        let Some(latest) = self.store.programme_latest_version().await? else {
            return Ok(None);
        };
        let unreadable = &self.unreadable_version;
        if self.programme().is_ok_and(|p| p.version >= latest)
            || unreadable.load(std::sync::atomic::Ordering::Relaxed) == latest
        {
            return Ok(None);
        }
        let Some(row) = self.store.programme_latest().await? else {
            return Ok(None);
        };
        let programme = match Programme::parse_stored(&row.source) {
            Ok(programme) => programme,
            Err(issues) => {
                unreadable.store(row.version, std::sync::atomic::Ordering::Relaxed);
                tracing::error!(
                    version = row.version,
                    issues = issues.len(),
                    "a newer programme version does not parse here; the running one stays"
                );
                return Ok(None);
            }
        };
        let version = row.version;
        let running = self.set_active(row, programme);
        tracing::info!(
            version = running.version,
            "programme version saved by another process"
        );
        Ok((running.version == version).then_some(version))
    }

    /// Saves a programme file as the next version, unless it would strand what members
    /// hold (`ProgrammeStrands`); refused, the running version stays. The change is judged
    /// against the newest saved version, read in the saving transaction (locked on
    /// PostgreSQL), so two saves at once never judge against the same old one. The renames
    /// it declares move what members hold in the same transaction. The same text as the
    /// newest version makes no new version. Answers the running version and whether it is
    /// new.
    pub async fn put_programme(&self, source: &str) -> Result<(Arc<ActiveProgramme>, bool)> {
        let programme = Programme::parse(source).map_err(EngineError::ProgrammeInvalid)?;
        let sha = sha256_hex(source.as_bytes());
        // Two saves at once both number their version after the same latest one; the one
        // that loses the race takes the next number (PostgreSQL refuses the duplicate key)
        // and is judged again against the version that won.
        let mut attempts = 0;
        let row = loop {
            let mut tx = self.store.begin().await?;
            let latest = tx.programme_latest_for_update().await?;
            if let Some(latest) = &latest {
                if latest.sha256 == sha {
                    drop(tx);
                    self.refresh_programme().await?;
                    return Ok((self.programme()?, false));
                }
            }
            // The newest version is usually the one running here; another process's newer
            // one is parsed.
            let running = self
                .programme()
                .ok()
                .filter(|a| latest.as_ref().is_some_and(|row| row.version == a.version));
            let parsed = match (&running, &latest) {
                (None, Some(row)) => Programme::parse_stored(&row.source).ok(),
                _ => None,
            };
            let current = running.as_ref().map(|a| &a.programme).or(parsed.as_ref());
            if let Some(current) = current {
                let assessment = self
                    .assess_in(&mut tx, current, &programme, Recount::No)
                    .await?;
                if !assessment.stranded.is_empty() {
                    return Err(EngineError::ProgrammeStrands(assessment));
                }
                for rename in &assessment.renames {
                    let moved = tx.rename_held(rename).await?;
                    tracing::info!(
                        section = rename.section.as_str(),
                        from = %rename.from,
                        to = %rename.to,
                        rows = moved,
                        "renamed in what members hold"
                    );
                }
            }
            match tx.programme_insert(source, &sha, to_us(self.now())).await {
                Ok(row) => {
                    tx.commit().await?;
                    break row;
                }
                Err(tessera_store::StoreError::Conflict(_)) if attempts < 5 => attempts += 1,
                Err(e) => return Err(e.into()),
            }
        };
        tracing::info!(version = row.version, "programme version accepted");
        Ok((self.set_active(row, programme), true))
    }

    /// What saving `source` would change, without saving it: every item added, removed,
    /// changed or renamed, the members each touches, and what it would strand. Against
    /// no running programme, every item is added.
    pub async fn assess_programme(&self, source: &str) -> Result<Assessment> {
        let programme = Programme::parse(source).map_err(EngineError::ProgrammeInvalid)?;
        self.refresh_programme().await?;
        let mut tx = self.store.begin().await?;
        let assessment = match self.programme() {
            Ok(current) => {
                self.assess_in(&mut tx, &current.programme, &programme, Recount::Tiers)
                    .await?
            }
            Err(_) => change::first(&programme),
        };
        // Nothing was written: the transaction only read, and is dropped.
        drop(tx);
        Ok(assessment)
    }

    /// The change from `old` to `new` as it would land on this database's members (the
    /// CLI's `programme diff --database`).
    pub async fn assess_change(&self, old: &Programme, new: &Programme) -> Result<Assessment> {
        let mut tx = self.store.begin().await?;
        let assessment = self.assess_in(&mut tx, old, new, Recount::Tiers).await?;
        drop(tx);
        Ok(assessment)
    }

    /// How many members' measures qualify them for another tier under `new`'s tier rules
    /// than under `old`'s, now: every member's measure in each window, read a page of
    /// members at a time. Zero when the tier rules are the same (or either has none).
    async fn members_changing_tier(
        &self,
        tx: &mut Tx,
        old: &Programme,
        new: &Programme,
    ) -> Result<i64> {
        let (Some(before), Some(after)) = (&old.tiers, &new.tiers) else {
            return Ok(0);
        };
        if format!("{before:?}") == format!("{after:?}") && old.timezone_name == new.timezone_name {
            return Ok(0);
        }
        let now = self.now();
        let window = |p: &Programme, rules: &tessera_domain::tiers::TierRules| {
            (
                tiers::measure_name(rules.measure),
                to_us(rules.window.start(now, &p.timezone)),
            )
        };
        let (old_measure, old_from) = window(old, before);
        let (new_measure, new_from) = window(new, after);
        let mut moving = 0;
        let mut after_id = 0;
        loop {
            let ids = tx.member_ids_after(after_id, 1000).await?;
            let Some(&last) = ids.last() else { break };
            after_id = last;
            let sums = |rows: Vec<(i64, String, i64)>| -> std::collections::HashMap<i64, i64> {
                rows.into_iter().map(|(m, _, n)| (m, n)).collect()
            };
            let old_sums = sums(
                tx.measures_sum_many(&ids, &[old_measure], old_from, to_us(now))
                    .await?,
            );
            let new_sums = sums(
                tx.measures_sum_many(&ids, &[new_measure], new_from, to_us(now))
                    .await?,
            );
            for id in &ids {
                let (o, n) = (
                    old_sums.get(id).copied().unwrap_or(0),
                    new_sums.get(id).copied().unwrap_or(0),
                );
                if change::changes_tier(before, o, after, n) {
                    moving += 1;
                }
            }
        }
        Ok(moving)
    }

    async fn assess_in(
        &self,
        tx: &mut Tx,
        old: &Programme,
        new: &Programme,
        recount: Recount,
    ) -> Result<Assessment> {
        let live = plans::Status::LIVE.map(plans::Status::as_str);
        let holders = tx.programme_holders(&live, to_us(self.now())).await?;
        let mut assessment = change::assess(old, new, &holders);
        if recount == Recount::Tiers {
            assessment.members_changing_tier = self.members_changing_tier(tx, old, new).await?;
        }
        Ok(assessment)
    }

    pub async fn programme_versions(
        &self,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<ProgrammeVersionRow>> {
        Ok(self.store.programme_versions(before, limit).await?)
    }

    /// One programme version with its source.
    pub async fn programme_version(&self, version: i64) -> Result<Option<ProgrammeVersionRow>> {
        Ok(self.store.programme_version(version).await?)
    }

    /// One order by its id, with its commit's summary when `POST /v1/orders` made it.
    pub async fn order_record(&self, order_id: &str) -> Result<Option<tessera_store::OrderRecord>> {
        Ok(self.store.order_record(order_id).await?)
    }

    /// One stored event by its id.
    pub async fn event_by_id(&self, event_id: &str) -> Result<Option<tessera_store::EventRow>> {
        Ok(self.store.event_by_id(event_id).await?)
    }

    // ---- API keys ----

    /// The caller a key belongs to, or `None` for an unknown, revoked or expired key. A
    /// key is looked up again after `KEY_CACHE_TTL`; its use is recorded at most once a
    /// minute per process. Expiry and use are timed by the wall clock: keys are the
    /// server's, not the business clock's.
    pub async fn authenticate(&self, key: &str) -> Result<Option<ApiKey>> {
        let hash = keys::key_sha256(key);
        let recorded = {
            let cache = self.key_cache.lock().unwrap_or_else(|p| p.into_inner());
            match cache.get(&hash) {
                Some(cached) if cached.fetched.elapsed() < KEY_CACHE_TTL => {
                    return Ok(cached.key);
                }
                Some(cached) => cached.use_recorded,
                None => None,
            }
        };
        let wall = jiff::Timestamp::now();
        let found = self.store.api_key_by_hash(&hash).await?.and_then(|row| {
            let role = Role::parse(&row.role).filter(|_| keys::usable_at(&row, wall))?;
            Some(ApiKey { id: row.id, role })
        });
        let use_recorded = match found {
            Some(api_key) if recorded.is_none_or(|at| at.elapsed() >= KEY_USE_RECORD_EVERY) => {
                // Best effort: a busy database never fails a request for its bookkeeping.
                if let Err(e) = self.store.api_key_used(api_key.id, to_us(wall)).await {
                    tracing::warn!(error = %e, key_id = api_key.id, "the key's last use was not recorded");
                }
                Some(Instant::now())
            }
            _ => recorded,
        };
        let mut cache = self.key_cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(
            hash,
            CachedKey {
                key: found,
                fetched: Instant::now(),
                use_recorded,
            },
        );
        Ok(found)
    }

    /// Makes a key (shown once: only its hash is kept). A partner's key names a partner
    /// the running programme declares.
    pub async fn create_key_with(&self, new: &keys::NewKey) -> Result<(String, keys::KeyView)> {
        let programme = self.programme().ok();
        keys::check_new_key(
            new,
            programme.as_ref().map(|p| &p.programme),
            jiff::Timestamp::now(),
        )?;
        let mut tx = self.store.begin().await?;
        let (key, row) = keys::insert_key(&mut tx, new, jiff::Timestamp::now()).await?;
        tx.commit().await?;
        Ok((key, keys::KeyView::of(row)?))
    }

    /// The keys with ids above `after_id`, oldest first, a page of `limit`, revoked ones
    /// too; and the id the next page starts after.
    pub async fn keys_page(
        &self,
        after_id: i64,
        limit: u32,
    ) -> Result<(Vec<keys::KeyView>, Option<i64>)> {
        let rows = self.store.api_keys_list(after_id, limit + 1).await?;
        let (rows, next) = page::page_of(rows, limit, |k| k.id);
        let views = rows
            .into_iter()
            .map(keys::KeyView::of)
            .collect::<Result<_>>()?;
        Ok((views, next))
    }

    /// Revokes a key: every process refuses it within `KEY_CACHE_TTL`. Revoking a revoked
    /// key answers as the first time. The last admin key is not revoked (nobody could
    /// make keys through the API any more).
    pub async fn revoke_key(&self, id: i64) -> Result<keys::KeyView> {
        let mut tx = self.store.begin().await?;
        // The admin keys are locked first, in id order, by every revocation: two at once
        // neither deadlock nor both revoke the last two admin keys.
        let admins = tx
            .api_keys_unrevoked_for_update(Role::Admin.as_str())
            .await?;
        let key = tx
            .api_key_for_update(id)
            .await?
            .ok_or(EngineError::KeyNotFound(id))?;
        // Expired admin keys do not count: they let nobody in.
        let now = jiff::Timestamp::now();
        let usable: Vec<_> = admins.iter().filter(|a| keys::usable_at(a, now)).collect();
        if usable.len() <= 1 && usable.iter().any(|a| a.id == key.id) {
            return Err(EngineError::LastAdminKey(id));
        }
        tx.api_key_revoke(id, to_us(jiff::Timestamp::now())).await?;
        let row = tx
            .api_key_for_update(id)
            .await?
            .ok_or(EngineError::KeyNotFound(id))?;
        tx.commit().await?;
        self.forget_cached_keys();
        keys::KeyView::of(row)
    }

    /// Replaces a key by a new one with the same role, partner, label and expiry, and
    /// revokes the old one, in one transaction.
    pub async fn rotate_key(&self, id: i64) -> Result<(String, keys::KeyView)> {
        let now = jiff::Timestamp::now();
        let mut tx = self.store.begin().await?;
        let old = tx
            .api_key_for_update(id)
            .await?
            .ok_or(EngineError::KeyNotFound(id))?;
        if old.revoked_at_us.is_some() {
            return Err(EngineError::KeyRevoked(id));
        }
        let old = keys::KeyView::of(old)?;
        let new = keys::NewKey {
            role: old.role,
            partner: old.partner,
            label: old.label,
            expires_at: old.expires_at,
        };
        // The new key must be one that could be made now: not expired, its partner still
        // declared.
        let programme = self.programme().ok();
        keys::check_new_key(&new, programme.as_ref().map(|p| &p.programme), now)?;
        let (key, row) = keys::insert_key(&mut tx, &new, now).await?;
        tx.api_key_revoke(id, to_us(now)).await?;
        tx.commit().await?;
        self.forget_cached_keys();
        Ok((key, keys::KeyView::of(row)?))
    }

    /// This process looks every key up again (another process still trusts its cache for
    /// at most `KEY_CACHE_TTL`).
    fn forget_cached_keys(&self) {
        self.key_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    pub async fn create_key(&self, role: Role) -> Result<String> {
        keys::create_key(&self.store, role, self.now()).await
    }

    /// Whether the database has no usable admin key (none, or all revoked or expired).
    pub async fn needs_admin_key(&self) -> Result<bool> {
        let mut tx = self.store.begin().await?;
        let admins = tx
            .api_keys_unrevoked_for_update(Role::Admin.as_str())
            .await?;
        drop(tx);
        Ok(!admins
            .iter()
            .any(|k| keys::usable_at(k, jiff::Timestamp::now())))
    }

    /// Creates an admin key if the database has no usable one; returns it to be shown once.
    pub async fn ensure_admin_key(&self) -> Result<Option<String>> {
        if !self.needs_admin_key().await? {
            return Ok(None);
        }
        Ok(Some(self.create_key(Role::Admin).await?))
    }

    // ---- idempotency keys ----

    /// Claims `key` for one request on `route` (method and path); the claim's token is
    /// what completes, renews or abandons it.
    pub async fn idempotency_begin(
        &self,
        caller: ApiKey,
        key: &str,
        route: &str,
        request_sha256: &str,
        token: &str,
    ) -> Result<IdempotencyClaim> {
        // A claim is a lease of the server's own, not a business fact: it is timed by the
        // wall clock even when the business clock is manual, so a dead request's key frees up.
        let now = to_us(Timestamp::now());
        Ok(self
            .store
            .idempotency_begin(&tessera_store::IdempotencyRequest {
                api_key_id: caller.id,
                key,
                route,
                request_sha256,
                token,
                now_us: now,
                stale_before_us: now - IDEMPOTENCY_LEASE_US,
            })
            .await?)
    }

    /// Stores the answer of a claim; false when the claim had been taken over meanwhile.
    pub async fn idempotency_complete(
        &self,
        caller: ApiKey,
        key: &str,
        token: &str,
        status: u16,
        body: &str,
    ) -> Result<bool> {
        Ok(self
            .store
            .idempotency_complete(caller.id, key, token, status, body)
            .await?)
    }

    /// Extends the lease of a claim whose request still runs; false when the claim is no
    /// longer this request's (answered, abandoned or taken over).
    pub async fn idempotency_renew(&self, caller: ApiKey, key: &str, token: &str) -> Result<bool> {
        let now = to_us(Timestamp::now());
        Ok(self
            .store
            .idempotency_renew(caller.id, key, token, now)
            .await?)
    }

    pub async fn idempotency_abandon(&self, caller: ApiKey, key: &str, token: &str) -> Result<()> {
        Ok(self
            .store
            .idempotency_abandon(caller.id, key, token)
            .await?)
    }

    /// A fresh random token (128 bits, hex) for a claim.
    pub fn claim_token() -> Result<String> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(|e| {
            tessera_store::StoreError::Database(format!(
                "no randomness from the operating system: {e}"
            ))
        })?;
        Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    // ---- clock ----

    /// Moves the manual clock forward to `to` and runs the work that became due. Moving
    /// to the current instant is a no-op; going back is refused.
    pub async fn advance_clock(&self, to: Timestamp) -> Result<Timestamp> {
        let manual = self.clock.as_manual().ok_or(EngineError::ClockNotManual)?;
        let mut tx = self.store.begin().await?;
        let stored = tx.clock_get_for_update().await?.map(from_us);
        let now = manual.now().max(stored.unwrap_or(Timestamp::MIN));
        if to < now {
            return Err(EngineError::ClockBackwards { now, requested: to });
        }
        tx.clock_set(to_us(to)).await?;
        tx.commit().await?;
        let from = manual
            .advance(to)
            .map_err(|now| EngineError::ClockBackwards { now, requested: to })?;
        tracing::debug!(%from, %to, "clock advanced");
        self.run_due_work(to).await?;
        Ok(to)
    }
}
