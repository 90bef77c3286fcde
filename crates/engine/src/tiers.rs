//! Score and tiers in the engine: the measures events add (inside intake's transaction),
//! upgrades at once, evaluations and warnings as time passes, and the member's tier view.

use crate::clock::{from_us, to_us};
use crate::points::{MemberState, PeriodSums};
use crate::{ActiveProgramme, Engine, EngineError, Result};
use jiff::Timestamp;
use std::collections::{BTreeSet, HashMap};
use tessera_domain::event::Event;
use tessera_domain::points::EarnedSoFar;
use tessera_domain::tiers::{Cause, Decision, Measure, TierRules, TierState, Window};
use tessera_domain::ExternalId;
use tessera_store::{HistoryRow, MeasureRow, TierRow, Tx};

pub(crate) fn measure_name(m: Measure) -> &'static str {
    match m {
        Measure::Score => "score",
        Measure::Spend => "spend",
        Measure::Points => "points",
    }
}

fn measure_of(name: &str) -> Option<Measure> {
    match name {
        "score" => Some(Measure::Score),
        "spend" => Some(Measure::Spend),
        "points" => Some(Measure::Points),
        _ => None,
    }
}

/// The index of a stored tier name in the running rules; a name the programme no longer
/// has counts as the first tier.
pub(crate) fn tier_index(rules: &TierRules, name: Option<&str>) -> usize {
    name.and_then(|n| rules.tiers.iter().position(|t| t.name == n))
        .unwrap_or(0)
}

/// The running name of a stored tier (see `tier_index`).
fn tier_name_of(rules: &TierRules, stored: Option<&str>) -> String {
    rules.tiers[tier_index(rules, stored)].name.clone()
}

fn state_of(rules: &TierRules, row: &TierRow, joined: Timestamp) -> TierState {
    TierState {
        tier: tier_index(rules, row.tier.as_deref()),
        since: row.since_us.map_or(joined, from_us),
        retained_until: row.retained_until_us.map(from_us),
        floor: row
            .floor_tier
            .as_deref()
            .map(|n| tier_index(rules, Some(n)))
            .filter(|t| *t > 0)
            .zip(row.floor_until_us.map(from_us)),
    }
}

/// The kinds of tier history lines that change a member's tier. A `requalify` line
/// extends a retention or records a floor (a lower tier earned again), and a `warning`
/// announces: neither changes the tier.
pub(crate) const TIER_CHANGES: [&str; 2] = ["upgrade", "downgrade"];

/// Which measures a programme records: the score when it has score rules, and the tiers'
/// measure when that is spend or points.
pub(crate) fn recorded(programme: &ActiveProgramme, m: Measure) -> bool {
    let p = &programme.programme;
    match m {
        Measure::Score => p.score.is_some(),
        _ => p.tiers.as_ref().is_some_and(|t| t.measure == m),
    }
}

/// A member's tier name and score now, read inside a write transaction (for rule
/// conditions outside intake).
pub(crate) async fn member_now(
    tx: &mut Tx,
    programme: &ActiveProgramme,
    member_id: i64,
    now: Timestamp,
) -> Result<(Option<String>, i64)> {
    let p = &programme.programme;
    let tier = match &p.tiers {
        Some(rules) => {
            let row = tx
                .tiers_get_many(&[member_id])
                .await?
                .pop()
                .unwrap_or_default();
            Some(tier_name_of(rules, row.tier.as_deref()))
        }
        None => None,
    };
    let score = match &p.score {
        Some(s) => {
            tx.measure_sum(
                member_id,
                "score",
                to_us(s.window.start(now, &p.timezone)),
                to_us(now),
            )
            .await?
        }
        None => 0,
    };
    Ok((tier, score))
}

/// What intake knows of measures and tiers across one batch.
///
/// A measure in a window at an instant is `base`, the sum over `[start(first), first)` read
/// in one grouped query (where `first` is the batch's earliest instant), minus the entries
/// that left the window since, plus the entries from `first` on; only those entries are
/// read one by one. A batch of recent events so reads little more than itself.
pub(crate) struct TierBatch {
    rows: HashMap<i64, TierRow>,
    /// The batch's earliest instant (its events' and now).
    first_us: i64,
    /// (member, measure, window start at `first`) → the sum over `[start, first)`.
    base: HashMap<(i64, Measure, i64), i64>,
    /// Score gained in the batch's days and months, when the score is capped.
    score_caps: Option<PeriodSums>,
    /// Per member: (measure, instant, amount) of the entries read one by one and written.
    measures: HashMap<i64, Vec<(Measure, i64, i64)>>,
    new_measures: Vec<MeasureRow>,
    history: Vec<HistoryRow>,
    dirty: BTreeSet<i64>,
}

impl TierBatch {
    /// Reads the tier states of the batch's members and what their measures' windows and
    /// the score caps need. `None` when the programme keeps neither a score nor tiers.
    pub(crate) async fn load(
        tx: &mut Tx,
        programme: &ActiveProgramme,
        events: &[(i64, &Event)],
        now: Timestamp,
    ) -> Result<Option<TierBatch>> {
        let p = &programme.programme;
        if p.score.is_none() && p.tiers.is_none() {
            return Ok(None);
        }
        let tz = &p.timezone;
        let mut member_ids: Vec<i64> = events.iter().map(|(m, _)| *m).collect();
        member_ids.sort_unstable();
        member_ids.dedup();
        let instants: Vec<Timestamp> = events
            .iter()
            .map(|(_, e)| e.occurred_at)
            .chain([now])
            .collect();
        let first = instants.iter().copied().min().unwrap_or(now);
        let last = instants.iter().copied().max().unwrap_or(now);
        let windows: BTreeSet<(i64, i64)> = p
            .score
            .iter()
            .map(|s| s.window)
            .chain(p.tiers.iter().map(|t| t.window))
            .map(|w| (to_us(w.start(first, tz)), to_us(w.start(last, tz))))
            .collect();
        let rows = tx
            .tiers_get_many(&member_ids)
            .await?
            .into_iter()
            .map(|r| (r.member_id, r))
            .collect();
        let names: Vec<&str> = [Measure::Score, Measure::Spend, Measure::Points]
            .into_iter()
            .filter(|m| recorded(programme, *m))
            .map(measure_name)
            .collect();
        // Entries that leave a window during the batch, and every entry from `first` on.
        let lo = windows.iter().map(|w| w.0).min().unwrap_or(to_us(first));
        let hi = windows.iter().map(|w| w.1).max().unwrap_or(to_us(first));
        let mut measures: HashMap<i64, Vec<(Measure, i64, i64)>> = HashMap::new();
        for (m, name, at, amount) in tx
            .measures_raw_many(&member_ids, &names, lo, hi, to_us(first))
            .await?
        {
            if let Some(measure) = measure_of(&name) {
                measures.entry(m).or_default().push((measure, at, amount));
            }
        }
        let mut base = HashMap::new();
        for (start, _) in &windows {
            if *start >= to_us(first) {
                continue;
            }
            for (m, name, total) in tx
                .measures_sum_many(&member_ids, &names, *start, to_us(first))
                .await?
            {
                if let Some(measure) = measure_of(&name) {
                    base.insert((m, measure, *start), total);
                }
            }
        }
        let score_caps = match &p.score {
            Some(rules) if rules.cap_per_day.is_some() || rules.cap_per_month.is_some() => {
                let mut sums = PeriodSums::new(tz);
                for ((from, to), members) in PeriodSums::periods(events, tz) {
                    let score = measure_name(Measure::Score);
                    for (m, total) in tx.measure_gains_many(&members, score, from, to).await? {
                        sums.set(m, from, total);
                    }
                }
                Some(sums)
            }
            _ => None,
        };
        Ok(Some(TierBatch {
            rows,
            first_us: to_us(first),
            base,
            score_caps,
            measures,
            new_measures: Vec::new(),
            history: Vec::new(),
            dirty: BTreeSet::new(),
        }))
    }

    /// A member's measure in `window` at `at` (an instant no earlier than the batch's first).
    pub(crate) fn value(
        &self,
        member_id: i64,
        measure: Measure,
        window: Window,
        at: Timestamp,
        tz: &jiff::tz::TimeZone,
    ) -> i64 {
        let first = from_us(self.first_us);
        let at = at.max(first);
        let (base_start, start, to) = (
            to_us(window.start(first, tz)),
            to_us(window.start(at, tz)),
            to_us(at),
        );
        let base = if base_start < self.first_us {
            self.base
                .get(&(member_id, measure, base_start))
                .copied()
                .unwrap_or(0)
        } else {
            0
        };
        let entries = self.measures.get(&member_id).map_or(&[][..], Vec::as_slice);
        // What left the window since `first` (it was in `base`), and what came after.
        let left: i64 = entries
            .iter()
            .filter(|(m, t, _)| *m == measure && *t >= base_start && *t < start.min(self.first_us))
            .map(|(_, _, a)| a)
            .sum();
        let since: i64 = entries
            .iter()
            .filter(|(m, t, _)| *m == measure && *t >= start.max(self.first_us) && *t <= to)
            .map(|(_, _, a)| a)
            .sum();
        base - left + since
    }

    /// The score gained in the day and month of `at`, for the score caps.
    pub(crate) fn score_so_far(&self, member_id: i64, at: Timestamp) -> EarnedSoFar {
        self.score_caps
            .as_ref()
            .map_or(EarnedSoFar::default(), |c| c.so_far(member_id, at))
    }

    /// The member's tier name and score now, for rule conditions.
    pub(crate) fn member_view(
        &self,
        programme: &ActiveProgramme,
        member_id: i64,
        now: Timestamp,
    ) -> (Option<String>, i64) {
        let p = &programme.programme;
        let tier = p.tiers.as_ref().map(|rules| {
            tier_name_of(
                rules,
                self.rows.get(&member_id).and_then(|r| r.tier.as_deref()),
            )
        });
        let score = p.score.as_ref().map_or(0, |s| {
            self.value(member_id, Measure::Score, s.window, now, &p.timezone)
        });
        (tier, score)
    }

    /// Records measure changes of an event at `at`, then lets the tier follow.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn record(
        &mut self,
        programme: &ActiveProgramme,
        state: &mut MemberState,
        changes: &[(Measure, i64)],
        at: Timestamp,
        event_id: &str,
        order_id: Option<&str>,
        now: Timestamp,
    ) {
        let member_id = state.member_id();
        if !self.rows.contains_key(&member_id) {
            return;
        }
        let mut changed = false;
        for (measure, amount) in changes.iter().filter(|(_, a)| *a != 0) {
            self.new_measures.push(MeasureRow {
                member_id,
                measure: measure_name(*measure).to_owned(),
                at_us: to_us(at),
                amount: *amount,
                event_id: event_id.to_owned(),
                order_id: order_id.map(str::to_owned),
            });
            self.measures
                .entry(member_id)
                .or_default()
                .push((*measure, to_us(at), *amount));
            if let (Measure::Score, Some(caps)) = (measure, &mut self.score_caps) {
                if *amount > 0 {
                    caps.add(member_id, at, *amount);
                }
            }
            changed = true;
        }
        if !changed {
            return;
        }
        let p = &programme.programme;
        let Some(rules) = &p.tiers else { return };
        let joined = from_us(state.row.created_at_us);
        let value = self.value(member_id, rules.measure, rules.window, at, &p.timezone);
        let row = self.rows.get_mut(&member_id).expect("loaded above");
        // The row is written back only when the tier state moved.
        let before = row.clone();
        let current = state_of(rules, row, joined);
        if rules.live {
            let decision = rules.on_change(current, value, at, &p.timezone);
            apply(rules, row, current, decision, at, value, &mut self.history);
        }
        // A member who can go down (or, when tiers settle at evaluations, anyone with a
        // measure) gets evaluations.
        let tier_now = tier_index(rules, row.tier.as_deref());
        if row.next_evaluation_us.is_none() && (tier_now > 0 || !rules.live) {
            schedule(rules, row, now, joined, &p.timezone);
        }
        if *row != before {
            self.dirty.insert(member_id);
        }
        state.tier = Some(rules.tiers[tier_now].name.clone());
        if let Some(s) = &p.score {
            state.score = self.value(
                member_id,
                Measure::Score,
                s.window,
                now.max(at),
                &p.timezone,
            );
        }
    }

    pub(crate) async fn finish(self, tx: &mut Tx) -> Result<()> {
        tx.measures_insert(&self.new_measures).await?;
        tx.history_insert(&self.history).await?;
        let rows: Vec<&TierRow> = self.dirty.iter().filter_map(|m| self.rows.get(m)).collect();
        tx.tiers_put_many(&rows).await?;
        Ok(())
    }
}

/// Sets the next evaluation after `after`, and its warning.
fn schedule(
    rules: &TierRules,
    row: &mut TierRow,
    after: Timestamp,
    joined: Timestamp,
    tz: &jiff::tz::TimeZone,
) {
    let next = rules.schedule.next_after(after, tz, joined);
    row.next_evaluation_us = Some(to_us(next));
    row.next_warning_us = next
        .checked_sub(jiff::Span::new().hours(24 * rules.warning_days))
        .ok()
        .filter(|_| rules.warning_days > 0)
        .map(to_us);
}

/// Applies a decision to a stored tier row, with its line of history.
fn apply(
    rules: &TierRules,
    row: &mut TierRow,
    current: TierState,
    decision: Decision,
    at: Timestamp,
    value: i64,
    history: &mut Vec<HistoryRow>,
) {
    let after = decision.apply(current, at);
    let (kind, to) = match decision {
        Decision::Unchanged => return,
        Decision::Requalified { .. } => ("requalify", current.tier),
        Decision::Floor { tier, .. } => ("requalify", tier),
        Decision::Changed {
            to,
            cause: Cause::Upgrade,
            ..
        } => ("upgrade", to),
        Decision::Changed {
            to,
            cause: Cause::Downgrade,
            ..
        } => ("downgrade", to),
    };
    history.push(HistoryRow {
        member_id: row.member_id,
        history_no: row.next_history_no,
        at_us: to_us(at),
        kind: kind.into(),
        from_tier: Some(rules.tiers[current.tier].name.clone()),
        to_tier: Some(rules.tiers[to].name.clone()),
        measure_value: value,
        needed: None,
        evaluation_at_us: None,
    });
    row.next_history_no += 1;
    row.tier = if after.tier == 0 {
        None
    } else {
        Some(rules.tiers[after.tier].name.clone())
    };
    row.since_us = Some(to_us(after.since));
    row.retained_until_us = after.retained_until.map(to_us);
    row.floor_tier = after.floor.map(|(t, _)| rules.tiers[t].name.clone());
    row.floor_until_us = after.floor.map(|(_, u)| to_us(u));
}

/// Jobs: warnings and evaluations that fell due.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TierWork {
    pub warnings: u64,
    pub evaluations: u64,
    pub changes: u64,
}

/// Members handled per transaction by the tier jobs.
const TIER_BATCH_MAX: u32 = 500;

impl Engine {
    /// Runs every warning and evaluation due at or before `to`, in time order: a clock
    /// that jumps past several evaluations runs each of them, once.
    pub(crate) async fn run_tier_jobs(&self, to: Timestamp) -> Result<TierWork> {
        let Ok(programme) = self.programme() else {
            return Ok(TierWork::default());
        };
        let Some(rules) = &programme.programme.tiers else {
            return Ok(TierWork::default());
        };
        let tz = &programme.programme.timezone;
        let mut work = TierWork::default();
        loop {
            let warnings = self.store.due_warnings(to_us(to), TIER_BATCH_MAX).await?;
            let evaluations = self
                .store
                .due_evaluations(to_us(to), TIER_BATCH_MAX)
                .await?;
            if warnings.is_empty() && evaluations.is_empty() {
                break;
            }
            let mut members: Vec<i64> = warnings.iter().chain(&evaluations).copied().collect();
            members.sort_unstable();
            members.dedup();
            let mut tx = self.store.begin().await?;
            let mut history = Vec::new();
            let mut rows_out = Vec::new();
            for member in members {
                // The account lock serializes this with intake and the points jobs.
                let Some(account) = tx.member_account_for_update(member).await? else {
                    continue;
                };
                let Some(mut row) = tx.tiers_get_many(&[member]).await?.pop() else {
                    continue;
                };
                let joined = from_us(account.created_at_us);
                let measure = measure_name(rules.measure);
                // The earlier of the two comes first: a warning precedes its evaluation.
                let warning_due = row.next_warning_us.filter(|w| *w <= to_us(to));
                let evaluation_due = row.next_evaluation_us.filter(|e| *e <= to_us(to));
                match (warning_due, evaluation_due) {
                    (Some(w), e) if e.is_none_or(|e| w < e) => {
                        let at = from_us(w);
                        let current = state_of(rules, &row, joined);
                        let value = tx
                            .measure_sum(member, measure, to_us(rules.window.start(at, tz)), w)
                            .await?;
                        if let Some(evaluation_at) = row.next_evaluation_us.map(from_us) {
                            if let Some(warning) = rules.warning(current, value, evaluation_at) {
                                history.push(HistoryRow {
                                    member_id: member,
                                    history_no: row.next_history_no,
                                    at_us: w,
                                    kind: "warning".into(),
                                    from_tier: Some(rules.tiers[warning.tier].name.clone()),
                                    to_tier: Some(rules.tiers[warning.would_be].name.clone()),
                                    measure_value: value,
                                    needed: Some(warning.needed),
                                    evaluation_at_us: Some(to_us(evaluation_at)),
                                });
                                row.next_history_no += 1;
                                work.warnings += 1;
                            }
                        }
                        row.next_warning_us = None;
                    }
                    (_, Some(e)) => {
                        let at = from_us(e);
                        let current = state_of(rules, &row, joined);
                        let value = tx
                            .measure_sum(member, measure, to_us(rules.window.start(at, tz)), e)
                            .await?;
                        let decision = rules.settle(current, value, at, tz);
                        if matches!(decision, Decision::Changed { .. }) {
                            work.changes += 1;
                        }
                        apply(rules, &mut row, current, decision, at, value, &mut history);
                        row.last_evaluated_us = Some(e);
                        work.evaluations += 1;
                        if tier_index(rules, row.tier.as_deref()) > 0 || !rules.live {
                            schedule(rules, &mut row, at, joined, tz);
                        } else {
                            row.next_evaluation_us = None;
                            row.next_warning_us = None;
                        }
                    }
                    _ => continue,
                }
                rows_out.push(row);
            }
            tx.history_insert(&history).await?;
            let refs: Vec<&TierRow> = rows_out.iter().collect();
            tx.tiers_put_many(&refs).await?;
            tx.commit().await?;
        }
        Ok(work)
    }

    /// The name of a member's tier, when the programme has tiers.
    pub async fn tier_name(&self, member_id: i64) -> Result<Option<String>> {
        let Ok(programme) = self.programme() else {
            return Ok(None);
        };
        let Some(rules) = &programme.programme.tiers else {
            return Ok(None);
        };
        let row = self.store.tier_get(member_id).await?.unwrap_or_default();
        Ok(Some(tier_name_of(rules, row.tier.as_deref())))
    }

    /// A member's tier: where they stand, what the next tier needs, what keeps this one,
    /// and the history.
    pub async fn tier_view(&self, member: &ExternalId, history_limit: u32) -> Result<TierView> {
        let programme = self.programme()?;
        let rules = programme
            .programme
            .tiers
            .as_ref()
            .ok_or(EngineError::TiersDisabled)?;
        let tz = &programme.programme.timezone;
        let m = self.member(member).await?;
        let row = self.store.tier_get(m.id).await?.unwrap_or_default();
        let now = self.now();
        let current = state_of(rules, &row, m.created_at);
        let window_start = rules.window.start(now, tz);
        let value = self
            .store
            .measure_sum_read(
                m.id,
                measure_name(rules.measure),
                to_us(window_start),
                to_us(now),
            )
            .await?;
        let score = match &programme.programme.score {
            Some(s) => Some(
                self.store
                    .measure_sum_read(m.id, "score", to_us(s.window.start(now, tz)), to_us(now))
                    .await?,
            ),
            None => None,
        };
        let (history, history_next) = self.tier_history_page(member, None, history_limit).await?;
        let next_evaluation = row.next_evaluation_us.map(from_us);
        let keep =
            next_evaluation.and_then(|e| rules.warning(current, value, e).map(|w| (w.needed, e)));
        Ok(TierView {
            tier: rules.tiers[current.tier].name.clone(),
            since: row.since_us.map(from_us),
            retained_until: current.retained_until,
            measure: measure_name(rules.measure),
            value,
            window_start: (window_start > Timestamp::MIN).then_some(window_start),
            score,
            next: rules
                .next_tier(current.tier, value)
                .map(|(t, missing)| (t.name.clone(), t.threshold, missing)),
            keep,
            next_evaluation,
            history,
            history_next,
        })
    }

    /// A member's tier history numbered below `before_no`, newest first, a page of
    /// `limit` at a time; and the number the next page starts below.
    pub async fn tier_history_page(
        &self,
        member: &ExternalId,
        before_no: Option<i64>,
        limit: u32,
    ) -> Result<(Vec<HistoryRow>, Option<i64>)> {
        let m = self.member(member).await?;
        let rows = self
            .store
            .tier_history(m.id, before_no.unwrap_or(i64::MAX), limit + 1)
            .await?;
        Ok(crate::page::page_of(rows, limit, |h| h.history_no))
    }
}

/// A member's tier, as `GET /v1/members/{id}/tier` shows it.
#[derive(Debug, Clone)]
pub struct TierView {
    pub tier: String,
    pub since: Option<Timestamp>,
    pub retained_until: Option<Timestamp>,
    pub measure: &'static str,
    /// The measure in the window now.
    pub value: i64,
    /// `None` for a lifetime window.
    pub window_start: Option<Timestamp>,
    pub score: Option<i64>,
    /// The next tier: name, threshold, what is missing.
    pub next: Option<(String, i64, i64)>,
    /// What the member still needs, and by when, to keep the tier at the next evaluation.
    pub keep: Option<(i64, Timestamp)>,
    pub next_evaluation: Option<Timestamp>,
    /// The newest lines of history.
    pub history: Vec<HistoryRow>,
    /// Where the older lines start, when there are more (see `tier_history_page`).
    pub history_next: Option<i64>,
}
