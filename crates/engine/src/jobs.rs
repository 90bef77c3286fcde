//! Time-driven work: pending lots become available when their return window ends, lots
//! expire, and inactive members' points expire. Each job selects what is due at `to`,
//! re-checks it under the member's lock, and commits in bounded batches; what a batch did
//! is visible in the data itself (a lot's state), so running a job twice for the same
//! instant, or again after a crash in the middle, does everything exactly once.

use crate::clock::{from_us, to_us};
use crate::points::{apply_ledger, inactivity_rule, lot_from_row, EntrySource, MemberState};
use crate::{Engine, Result};
use jiff::Timestamp;
use std::collections::BTreeMap;
use tessera_domain::ledger::LotState;
use tessera_store::{EntryRow, Tx};

/// Lots or members handled per transaction by a job.
pub const JOB_BATCH_MAX: u32 = 500;

/// What one run of the time-driven jobs did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DueWork {
    pub lots_released: u64,
    pub lots_expired: u64,
    pub members_expired_for_inactivity: u64,
    /// Tier warnings recorded, evaluations run, and tiers they changed.
    pub tiers: crate::tiers::TierWork,
    /// Subscription changes: renewals due, trial ends, grace, expiries.
    pub subscription_changes: u64,
    /// Coupons issued by monthly grants.
    pub coupons_granted: u64,
    /// Referral rewards granted, capped, canceled or taken back.
    pub referral_rewards: u64,
    /// (member, offer) exposures of quotes written.
    pub offer_exposures: u64,
}

/// Writes a job batch's journal entries and the accounts it changed, and commits.
async fn finish_batch(mut tx: Tx, entries: &[EntryRow], states: &[MemberState]) -> Result<()> {
    tx.entries_insert(entries).await?;
    let accounts: Vec<_> = states
        .iter()
        .filter(|s| s.dirty)
        .map(|s| &s.row.account)
        .collect();
    tx.accounts_put_many(&accounts).await?;
    tx.commit().await?;
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum LotJob {
    Release,
    Expire,
}

impl Engine {
    /// Runs everything that is due at `to`.
    pub async fn run_due_work(&self, to: Timestamp) -> Result<DueWork> {
        let started = std::time::Instant::now();
        let mut done = DueWork {
            lots_released: self.run_lot_job(to, LotJob::Release).await?,
            ..DueWork::default()
        };
        done.lots_expired = self.run_lot_job(to, LotJob::Expire).await?;
        done.members_expired_for_inactivity = self.run_inactivity_job(to).await?;
        done.tiers = self.run_tier_jobs(to).await?;
        done.subscription_changes = self.run_subscription_jobs(to).await?;
        done.coupons_granted = self.run_coupon_grants(to).await?;
        done.referral_rewards = self.run_referral_rewards(to).await?;
        done.offer_exposures = self.write_quote_exposures().await?;
        let seconds = started.elapsed().as_secs_f64();
        metrics::counter!("tessera_job_runs_total").increment(1);
        metrics::histogram!("tessera_job_run_duration_seconds").record(seconds);
        if done != DueWork::default() {
            tracing::info!(
                to = %to,
                lots_released = done.lots_released,
                lots_expired = done.lots_expired,
                members_expired_for_inactivity = done.members_expired_for_inactivity,
                tier_warnings = done.tiers.warnings,
                tier_evaluations = done.tiers.evaluations,
                tier_changes = done.tiers.changes,
                subscription_changes = done.subscription_changes,
                coupons_granted = done.coupons_granted,
                referral_rewards = done.referral_rewards,
                offer_exposures = done.offer_exposures,
                duration_ms = (seconds * 1000.0) as u64,
                "time-driven work ran"
            );
        }
        Ok(done)
    }

    /// Runs what is due now on the engine's clock (the scheduler of `serve` calls this).
    pub async fn tick(&self) -> Result<DueWork> {
        self.run_due_work(self.now()).await
    }

    async fn run_lot_job(&self, to: Timestamp, job: LotJob) -> Result<u64> {
        let programme = self.programme().ok();
        let inactivity = programme.as_deref().and_then(inactivity_rule);
        let to_us_ = to_us(to);
        let mut handled = 0u64;
        loop {
            let due = match job {
                LotJob::Release => self.store.due_releases(to_us_, JOB_BATCH_MAX).await?,
                LotJob::Expire => self.store.due_expiries(to_us_, JOB_BATCH_MAX).await?,
            };
            if due.is_empty() {
                break;
            }
            let mut by_member: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
            for (member, lot) in &due {
                by_member.entry(*member).or_default().push(*lot);
            }
            let mut tx = self.store.begin().await?;
            let mut entries = Vec::new();
            let mut states = Vec::new();
            for (member, lot_nos) in by_member {
                let Some(row) = tx.member_account_for_update(member).await? else {
                    continue;
                };
                let mut state = MemberState::new(row);
                let lots: Vec<_> = tx
                    .lots_get(member, &lot_nos)
                    .await?
                    .iter()
                    .map(lot_from_row)
                    .collect();
                let mut ledger = state.ledger(lots.clone());
                for lot in &lots {
                    // Re-checked under the lock: another run may have done it already.
                    match job {
                        LotJob::Release
                            if lot.state == LotState::Pending && lot.available_at <= to =>
                        {
                            ledger.release(lot.no);
                            handled += 1;
                        }
                        LotJob::Expire
                            if lot.state != LotState::Expired
                                && lot.expires_at.is_some_and(|e| e <= to) =>
                        {
                            ledger.expire(lot.no);
                            handled += 1;
                        }
                        _ => {}
                    }
                }
                apply_ledger(
                    &mut tx,
                    &mut state,
                    &ledger,
                    EntrySource::default(),
                    inactivity.as_ref(),
                    to,
                    &mut entries,
                )
                .await?;
                states.push(state);
            }
            finish_batch(tx, &entries, &states).await?;
            if due.len() < JOB_BATCH_MAX as usize {
                break;
            }
        }
        Ok(handled)
    }

    async fn run_inactivity_job(&self, to: Timestamp) -> Result<u64> {
        let programme = self.programme().ok();
        let inactivity = programme.as_deref().and_then(inactivity_rule);
        let mut handled = 0u64;
        loop {
            let due = self.store.due_inactive(to_us(to), JOB_BATCH_MAX).await?;
            if due.is_empty() {
                break;
            }
            let mut tx = self.store.begin().await?;
            let mut entries = Vec::new();
            let mut states = Vec::new();
            for member in &due {
                let Some(row) = tx.member_account_for_update(*member).await? else {
                    continue;
                };
                let mut state = MemberState {
                    dirty: true,
                    ..MemberState::new(row)
                };
                let Some(deadline) = state.row.account.inactive_at_us.filter(|t| *t <= to_us(to))
                else {
                    continue;
                };
                if inactivity.is_none() {
                    // The programme no longer expires points for inactivity.
                    state.row.account.inactive_at_us = None;
                    states.push(state);
                    continue;
                }
                let lots = tx
                    .lots_open(*member)
                    .await?
                    .iter()
                    .map(lot_from_row)
                    .collect();
                let mut ledger = state.ledger(lots);
                ledger.expire_all_available(from_us(deadline));
                apply_ledger(
                    &mut tx,
                    &mut state,
                    &ledger,
                    EntrySource::default(),
                    inactivity.as_ref(),
                    to,
                    &mut entries,
                )
                .await?;
                state.row.account.inactive_at_us = None;
                handled += 1;
                states.push(state);
            }
            finish_batch(tx, &entries, &states).await?;
            if due.len() < JOB_BATCH_MAX as usize {
                break;
            }
        }
        Ok(handled)
    }
}
