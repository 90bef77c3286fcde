//! Score (成长值, 京享值, 淘气值) and tiers, as pure rules: what an order or an activity
//! adds to the score (with caps), which window a measure is counted over, which tier a
//! value qualifies for, how long a status is kept, when evaluations happen, and what an
//! evaluation or a warning decides.
//!
//! Every function here is a decision over values given as arguments; the engine stores the
//! measures and tier states and calls these when events arrive and when evaluations fall
//! due.

use crate::event::ActivityKind;
use crate::points::{cut_to_caps, EarnContext};
use crate::rule::Condition;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

/// The span a measure (score, spend, points earned) is counted over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    Lifetime,
    /// The last N months up to the instant (Starbucks: 12).
    RollingMonths(i64),
    /// The calendar year of the instant, in the programme's time zone (Sephora).
    CalendarYear,
}

impl Window {
    /// The first instant counted at `at`: a measure at `at` sums what happened in
    /// `[start(at), at]`.
    pub fn start(self, at: Timestamp, tz: &TimeZone) -> Timestamp {
        match self {
            Window::Lifetime => Timestamp::MIN,
            Window::RollingMonths(n) => at
                .to_zoned(tz.clone())
                .checked_sub(n.months())
                .map_or(Timestamp::MIN, |z| z.timestamp()),
            Window::CalendarYear => {
                let year = at.to_zoned(tz.clone()).year();
                start_of(Date::new(year, 1, 1).ok(), tz)
            }
        }
    }
}

fn start_of(date: Option<Date>, tz: &TimeZone) -> Timestamp {
    date.and_then(|d| d.to_zoned(tz.clone()).ok())
        .map_or(Timestamp::MAX, |z| z.timestamp())
}

/// What tier thresholds are measured in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Measure {
    Score,
    /// Minor units paid for goods, net of refunds (Sephora).
    Spend,
    /// Points earned, net of reversals (Starbucks stars).
    Points,
}

/// When downgrades are considered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// Every month on this day (1 to 28), at the start of the day.
    Monthly { day: i8 },
    /// Every year on this date.
    Yearly { month: i8, day: i8 },
    /// Every year on the day the member joined.
    Anniversary,
}

impl Schedule {
    /// The first evaluation instant strictly after `after`.
    pub fn next_after(self, after: Timestamp, tz: &TimeZone, joined: Timestamp) -> Timestamp {
        let today = after.to_zoned(tz.clone()).date();
        let candidate = |date: Date| start_of(Some(date), tz);
        match self {
            Schedule::Monthly { day } => {
                let this = Date::new(today.year(), today.month(), day).ok();
                let t = start_of(this, tz);
                if t > after {
                    t
                } else {
                    candidate(
                        today
                            .first_of_month()
                            .checked_add(1.month())
                            .ok()
                            .and_then(|d| Date::new(d.year(), d.month(), day).ok())
                            .unwrap_or(today),
                    )
                }
            }
            Schedule::Yearly { .. } | Schedule::Anniversary => {
                let (month, day) = match self {
                    Schedule::Yearly { month, day } => (month, day),
                    _ => {
                        let j = joined.to_zoned(tz.clone()).date();
                        // A member who joined on 29 February is evaluated on 28 February.
                        (j.month(), j.day().min(28))
                    }
                };
                let this = start_of(Date::new(today.year(), month, day).ok(), tz);
                if this > after {
                    this
                } else {
                    start_of(Date::new(today.year() + 1, month, day).ok(), tz)
                }
            }
        }
    }
}

/// How long a status is kept once qualified for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    /// Only until the next evaluation.
    None,
    /// The rest of the qualifying year and the whole next calendar year (Sephora).
    RestOfYearAndNext,
    /// N months after qualifying (Starbucks: 12).
    Months(i64),
}

impl Retention {
    /// The instant from which an evaluation may downgrade a status qualified for at
    /// `qualified_at`; `None` when any evaluation may.
    pub fn until(self, qualified_at: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        match self {
            Retention::None => None,
            Retention::RestOfYearAndNext => {
                let year = qualified_at.to_zoned(tz.clone()).year();
                Some(start_of(Date::new(year + 2, 1, 1).ok(), tz))
            }
            Retention::Months(n) => qualified_at
                .to_zoned(tz.clone())
                .checked_add(n.months())
                .ok()
                .map(|z| z.timestamp()),
        }
    }
}

/// How far an evaluation downgrades.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DowngradeMode {
    /// To the tier the measure qualifies for now.
    Recompute,
    /// One tier down at most per evaluation.
    OneStepDown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tier {
    pub name: String,
    /// The measure in the window at which the tier is reached; the first tier's is 0.
    pub threshold: i64,
}

/// The tier rules of a programme. `tiers` ascend by threshold, the first at 0.
#[derive(Debug, Clone)]
pub struct TierRules {
    pub measure: Measure,
    pub window: Window,
    pub tiers: Vec<Tier>,
    pub schedule: Schedule,
    pub retention: Retention,
    pub mode: DowngradeMode,
    /// How long before an evaluation a warning is recorded.
    pub warning_days: i64,
    /// Upgrades at once (`true`), or tiers move only at evaluations, up or down (JD's
    /// 京享值, settled monthly).
    pub live: bool,
}

/// A member's tier as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TierState {
    /// Index into `TierRules::tiers`.
    pub tier: usize,
    pub since: Timestamp,
    /// Before this instant no evaluation downgrades the member.
    pub retained_until: Option<Timestamp>,
    /// A lower tier earned again meanwhile, and until when it holds: an evaluation never
    /// goes below it (Sephora: Rouge from last year runs out, VIB earned this year stays).
    pub floor: Option<(usize, Timestamp)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The measure crossed a higher threshold.
    Upgrade,
    /// An evaluation found the status no longer earned.
    Downgrade,
}

/// What a measure change or an evaluation decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Unchanged,
    /// The member earned their tier again: it is kept longer.
    Requalified {
        retained_until: Option<Timestamp>,
    },
    Changed {
        to: usize,
        cause: Cause,
        retained_until: Option<Timestamp>,
    },
    /// A tier below the current one was earned: it holds until `until`.
    Floor {
        tier: usize,
        until: Timestamp,
    },
}

impl Decision {
    /// The state after the decision, taken at `at`.
    pub fn apply(self, state: TierState, at: Timestamp) -> TierState {
        match self {
            Decision::Unchanged => state,
            Decision::Requalified { retained_until } => TierState {
                retained_until,
                ..state
            },
            Decision::Floor { tier, until } => TierState {
                floor: Some((tier, until)),
                ..state
            },
            Decision::Changed {
                to, retained_until, ..
            } => TierState {
                tier: to,
                since: at,
                retained_until,
                floor: state.floor.filter(|(t, _)| *t < to),
            },
        }
    }
}

/// What a member must still do to keep their tier at the coming evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub tier: usize,
    /// The tier the evaluation would give.
    pub would_be: usize,
    /// How much more of the measure, in the window, keeps the tier.
    pub needed: i64,
    pub evaluation_at: Timestamp,
}

impl TierRules {
    /// The highest tier whose threshold `value` reaches.
    pub fn qualifying(&self, value: i64) -> usize {
        self.tiers
            .iter()
            .rposition(|t| value >= t.threshold)
            .unwrap_or(0)
    }

    /// The measure changed at `at` to `value` (in the window at `at`): upgrade at once,
    /// or extend the retention of a tier earned again. Never downgrades.
    pub fn on_change(
        &self,
        state: TierState,
        value: i64,
        at: Timestamp,
        tz: &TimeZone,
    ) -> Decision {
        let qualified = self.qualifying(value);
        if let Some(up) = self.upgrade(state, qualified, at, tz) {
            return up;
        }
        if qualified == state.tier && state.tier > 0 {
            let until = self.retention.until(at, tz);
            if until > state.retained_until {
                return Decision::Requalified {
                    retained_until: until,
                };
            }
        }
        if qualified > 0 && qualified < state.tier {
            if let Some(until) = self.retention.until(at, tz) {
                let better = match state.floor {
                    None => true,
                    Some((t, u)) => qualified > t || (qualified == t && until > u) || u <= at,
                };
                if better {
                    return Decision::Floor {
                        tier: qualified,
                        until,
                    };
                }
            }
        }
        Decision::Unchanged
    }

    /// An evaluation at `at`, with `value` the measure in the window at `at`. A status
    /// still retained is kept; otherwise the member goes down as `mode` says, never below
    /// what `value` qualifies for. Evaluating the result again at the same instant
    /// changes nothing.
    pub fn evaluate(&self, state: TierState, value: i64, at: Timestamp) -> Decision {
        if state.tier == 0 || state.retained_until.is_some_and(|u| u > at) {
            return Decision::Unchanged;
        }
        let floor = state.floor.filter(|(_, until)| *until > at);
        let qualified = self.qualifying(value).max(floor.map_or(0, |(t, _)| t));
        if qualified >= state.tier {
            return Decision::Unchanged;
        }
        let to = match self.mode {
            DowngradeMode::Recompute => qualified,
            DowngradeMode::OneStepDown => (state.tier - 1).max(qualified),
        };
        Decision::Changed {
            to,
            cause: Cause::Downgrade,
            // The floor's own retention when the member lands on it; otherwise the lower
            // status holds until the next evaluation only.
            retained_until: match floor {
                Some((t, until)) if t == to => Some(until),
                _ => Some(at),
            },
        }
    }

    /// An evaluation at `at` under the programme's settlement: live programmes only go
    /// down here (they went up on events); settled ones go up or down.
    pub fn settle(&self, state: TierState, value: i64, at: Timestamp, tz: &TimeZone) -> Decision {
        if !self.live {
            if let Some(up) = self.upgrade(state, self.qualifying(value), at, tz) {
                return up;
            }
        }
        self.evaluate(state, value, at)
    }

    /// Up to `qualified` at `at`, retained from then, when it is above the current tier.
    fn upgrade(
        &self,
        state: TierState,
        qualified: usize,
        at: Timestamp,
        tz: &TimeZone,
    ) -> Option<Decision> {
        (qualified > state.tier).then(|| Decision::Changed {
            to: qualified,
            cause: Cause::Upgrade,
            retained_until: self.retention.until(at, tz),
        })
    }

    /// The warning due before the evaluation at `evaluation_at`, if that evaluation
    /// would downgrade the member: `value_now` is the measure in the window now.
    pub fn warning(
        &self,
        state: TierState,
        value_now: i64,
        evaluation_at: Timestamp,
    ) -> Option<Warning> {
        match self.evaluate(state, value_now, evaluation_at) {
            Decision::Changed { to, .. } => Some(Warning {
                tier: state.tier,
                would_be: to,
                needed: self.tiers[state.tier].threshold - value_now,
                evaluation_at,
            }),
            _ => None,
        }
    }

    /// The next tier above `tier` and how much of the measure is missing to reach it.
    pub fn next_tier(&self, tier: usize, value: i64) -> Option<(&Tier, i64)> {
        self.tiers
            .get(tier + 1)
            .map(|t| (t, (t.threshold - value).max(0)))
    }
}

/// What fires a score rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScoreTrigger {
    Order,
    Activity(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScoreAmount {
    /// `score` per `per_minor` minor units paid for goods (floor, per order).
    PerMinor { score: i64, per_minor: i64 },
    /// A fixed amount per event.
    Fixed(i64),
}

#[derive(Debug, Clone)]
pub struct ScoreRule {
    pub name: String,
    pub on: ScoreTrigger,
    pub amount: ScoreAmount,
    /// Over `member` and `event`.
    pub condition: Option<Condition>,
}

/// The score rules of a programme.
#[derive(Debug, Clone)]
pub struct ScoreRules {
    pub window: Window,
    pub cap_per_order: Option<i64>,
    pub cap_per_day: Option<i64>,
    pub cap_per_month: Option<i64>,
    pub rules: Vec<ScoreRule>,
}

impl ScoreRules {
    /// Whether any rule has a condition (which needs the member and event as values).
    pub fn uses_conditions(&self) -> bool {
        self.rules.iter().any(|r| r.condition.is_some())
    }

    /// The score an order adds: each order rule that holds, then the caps, exactly.
    /// `goods_minor` is the goods part of what was paid (`allocate_paid`); `ctx.earned` is
    /// the score already added in the order's day and month.
    pub fn score_order(&self, goods_minor: i64, ctx: &EarnContext<'_>) -> i64 {
        let total = self
            .rules
            .iter()
            .filter(|r| r.on == ScoreTrigger::Order && r.holds(ctx))
            .map(|r| match r.amount {
                ScoreAmount::PerMinor { score, per_minor } => i64::try_from(
                    i128::from(goods_minor) * i128::from(score) / i128::from(per_minor),
                )
                .unwrap_or(i64::MAX),
                ScoreAmount::Fixed(n) => n,
            })
            .fold(0i64, i64::saturating_add);
        cut_to_caps(
            total,
            self.cap_per_order,
            self.cap_per_day,
            self.cap_per_month,
            ctx.earned,
        )
    }

    /// The score an activity adds, after the day and month caps.
    pub fn score_activity(&self, kind: &ActivityKind, ctx: &EarnContext<'_>) -> i64 {
        let total = self
            .rules
            .iter()
            .filter(|r| {
                matches!(&r.on, ScoreTrigger::Activity(a) if a == kind.name()) && r.holds(ctx)
            })
            .map(|r| match r.amount {
                ScoreAmount::Fixed(n) => n,
                ScoreAmount::PerMinor { .. } => 0,
            })
            .fold(0i64, i64::saturating_add);
        cut_to_caps(
            total,
            None,
            self.cap_per_day,
            self.cap_per_month,
            ctx.earned,
        )
    }
}

impl ScoreRule {
    fn holds(&self, ctx: &EarnContext<'_>) -> bool {
        self.condition.as_ref().is_none_or(|c| {
            c.evaluate(&[("member", ctx.member), ("event", ctx.event)])
                .unwrap_or(false)
        })
    }
}

/// One change of a member's tier: the instant, the tier before and the tier after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierChange {
    pub at: Timestamp,
    pub from: String,
    pub to: String,
}

/// The spans `[start, end)` in which a member held one of `tiers`, from the changes of
/// their tier in time order (those a window needs: from the last one before it on). With
/// no change the member held `current` throughout, from `since`; before the first change
/// they held its `from` tier, and after each change its `to` tier until the next.
pub fn holding_spans(
    tiers: &[String],
    changes: &[TierChange],
    current: &str,
    since: Timestamp,
) -> Vec<(Timestamp, Timestamp)> {
    let holds = |t: &str| tiers.iter().any(|x| x == t);
    let Some(first) = changes.first() else {
        return if holds(current) {
            vec![(since, Timestamp::MAX)]
        } else {
            Vec::new()
        };
    };
    let mut out = Vec::new();
    if holds(&first.from) {
        out.push((Timestamp::MIN, first.at));
    }
    for (i, change) in changes.iter().enumerate() {
        let end = changes.get(i + 1).map_or(Timestamp::MAX, |next| next.at);
        if holds(&change.to) && change.at < end {
            out.push((change.at, end));
        }
    }
    out
}

#[cfg(test)]
mod tests {

    #[test]
    fn holding_spans_follow_the_changes_of_a_window() {
        let t = |s: i64| Timestamp::from_second(1_800_000_000 + s).unwrap();
        let change = |at: i64, from: &str, to: &str| TierChange {
            at: t(at),
            from: from.into(),
            to: to.into(),
        };
        let gold = ["gold".to_owned(), "diamond".to_owned()];
        let (min, max) = (Timestamp::MIN, Timestamp::MAX);
        type Case<'a> = (&'a [TierChange], &'a str, Vec<(Timestamp, Timestamp)>);
        let cases: [Case; 6] = [
            (&[], "gold", vec![(t(5), max)]),
            (&[], "silver", vec![]),
            // Gold before the window, down to silver in it.
            (
                &[change(10, "gold", "silver")],
                "silver",
                vec![(min, t(10))],
            ),
            // Up, up again (both held), down.
            (
                &[
                    change(10, "silver", "gold"),
                    change(20, "gold", "diamond"),
                    change(30, "diamond", "silver"),
                ],
                "silver",
                vec![(t(10), t(20)), (t(20), t(30))],
            ),
            // Down and back up: two spans.
            (
                &[change(10, "gold", "silver"), change(20, "silver", "gold")],
                "gold",
                vec![(min, t(10)), (t(20), max)],
            ),
            // A requalification changes nothing.
            (
                &[change(10, "gold", "gold")],
                "gold",
                vec![(min, t(10)), (t(10), max)],
            ),
        ];
        for (changes, current, want) in cases {
            assert_eq!(
                holding_spans(&gold, changes, current, t(5)),
                want,
                "{changes:?}"
            );
        }
    }

    use super::*;
    use crate::points::EarnedSoFar;
    use serde_json::Value;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn utc() -> TimeZone {
        TimeZone::UTC
    }

    #[test]
    fn windows() {
        let tz = TimeZone::get("Asia/Shanghai").unwrap();
        let at = t("2027-03-15T10:00:00+08:00");
        let cases = [
            (Window::Lifetime, Timestamp::MIN),
            (Window::RollingMonths(12), t("2026-03-15T10:00:00+08:00")),
            (Window::RollingMonths(1), t("2027-02-15T10:00:00+08:00")),
            (Window::CalendarYear, t("2027-01-01T00:00:00+08:00")),
        ];
        for (window, start) in cases {
            assert_eq!(window.start(at, &tz), start, "{window:?}");
        }
    }

    #[test]
    fn schedules() {
        let tz = utc();
        let joined = t("2025-06-20T08:00:00Z");
        let cases = [
            (
                Schedule::Monthly { day: 1 },
                "2026-11-23T00:00:00Z",
                "2026-12-01T00:00:00Z",
            ),
            (
                Schedule::Monthly { day: 1 },
                "2026-12-01T00:00:00Z",
                "2027-01-01T00:00:00Z",
            ),
            (
                Schedule::Monthly { day: 25 },
                "2026-11-23T00:00:00Z",
                "2026-11-25T00:00:00Z",
            ),
            (
                Schedule::Yearly { month: 1, day: 1 },
                "2026-11-23T00:00:00Z",
                "2027-01-01T00:00:00Z",
            ),
            (
                Schedule::Yearly { month: 1, day: 1 },
                "2027-01-01T00:00:00Z",
                "2028-01-01T00:00:00Z",
            ),
            (
                Schedule::Anniversary,
                "2026-06-19T00:00:00Z",
                "2026-06-20T00:00:00Z",
            ),
            (
                Schedule::Anniversary,
                "2026-06-20T00:00:00Z",
                "2027-06-20T00:00:00Z",
            ),
        ];
        for (schedule, after, next) in cases {
            assert_eq!(
                schedule.next_after(t(after), &tz, joined),
                t(next),
                "{schedule:?} after {after}"
            );
        }
    }

    #[test]
    fn retention() {
        let tz = utc();
        let q = t("2026-05-10T12:00:00Z");
        assert_eq!(
            Retention::RestOfYearAndNext.until(q, &tz),
            Some(t("2028-01-01T00:00:00Z"))
        );
        assert_eq!(
            Retention::Months(12).until(q, &tz),
            Some(t("2027-05-10T12:00:00Z"))
        );
        assert_eq!(Retention::None.until(q, &tz), None);
    }

    fn sephora() -> TierRules {
        TierRules {
            measure: Measure::Spend,
            window: Window::CalendarYear,
            tiers: vec![
                Tier {
                    name: "insider".into(),
                    threshold: 0,
                },
                Tier {
                    name: "vib".into(),
                    threshold: 35_000,
                },
                Tier {
                    name: "rouge".into(),
                    threshold: 100_000,
                },
            ],
            schedule: Schedule::Yearly { month: 1, day: 1 },
            retention: Retention::RestOfYearAndNext,
            mode: DowngradeMode::Recompute,
            warning_days: 30,
            live: true,
        }
    }

    /// A small driver: spend events (instant, cents) and evaluations on the schedule, in
    /// time order; returns the tier name after each step.
    fn drive(rules: &TierRules, steps: &[(&str, i64)], until: &str) -> Vec<(String, String)> {
        let tz = utc();
        let joined = t("2025-01-01T00:00:00Z");
        let mut state = TierState {
            tier: 0,
            since: joined,
            retained_until: None,
            floor: None,
        };
        let mut history: Vec<(Timestamp, i64)> = Vec::new();
        let mut out = Vec::new();
        let value_at = |history: &[(Timestamp, i64)], at: Timestamp| -> i64 {
            let start = rules.window.start(at, &tz);
            history
                .iter()
                .filter(|(t, _)| *t >= start && *t <= at)
                .map(|(_, v)| v)
                .sum()
        };
        let mut next_eval = rules.schedule.next_after(joined, &tz, joined);
        let mut steps: Vec<(Timestamp, i64)> = steps.iter().map(|(a, v)| (t(a), *v)).collect();
        steps.push((t(until), 0));
        for (at, amount) in steps {
            while next_eval <= at {
                let decision = rules.evaluate(state, value_at(&history, next_eval), next_eval);
                state = decision.apply(state, next_eval);
                // Evaluating again at the same instant changes nothing.
                assert_eq!(
                    rules.evaluate(state, value_at(&history, next_eval), next_eval),
                    Decision::Unchanged
                );
                out.push((next_eval.to_string(), rules.tiers[state.tier].name.clone()));
                next_eval = rules.schedule.next_after(next_eval, &tz, joined);
            }
            if amount != 0 {
                history.push((at, amount));
                let decision = rules.on_change(state, value_at(&history, at), at, &tz);
                state = decision.apply(state, at);
                out.push((at.to_string(), rules.tiers[state.tier].name.clone()));
            }
        }
        out
    }

    #[test]
    fn sephora_across_two_year_ends() {
        let names = |v: Vec<(String, String)>| v.into_iter().map(|(_, n)| n).collect::<Vec<_>>();
        // $350 in 2026: VIB at once, kept through 2027; nothing in 2027: Insider on 1 Jan 2028.
        let got = drive(
            &sephora(),
            &[
                ("2026-03-01T00:00:00Z", 20_000),
                ("2026-09-01T00:00:00Z", 15_000),
            ],
            "2028-01-02T00:00:00Z",
        );
        // Steps: the evaluation of 1 Jan 2026, $200 (Insider), $150 more (VIB), the
        // evaluations of 1 Jan 2027 (kept) and 1 Jan 2028 (not earned again: Insider).
        assert_eq!(names(got), ["insider", "insider", "vib", "vib", "insider"]);
        // Requalifying in 2027 keeps VIB through 2028; Rouge at $1,000 in one year.
        let got = drive(
            &sephora(),
            &[
                ("2026-03-01T00:00:00Z", 35_000),
                ("2027-06-01T00:00:00Z", 35_000),
                ("2028-02-01T00:00:00Z", 100_000),
            ],
            "2030-01-02T00:00:00Z",
        );
        assert_eq!(
            got.iter()
                .map(|(a, n)| format!("{} {n}", &a[..10]))
                .collect::<Vec<_>>(),
            [
                "2026-01-01 insider",
                "2026-03-01 vib",
                "2027-01-01 vib",
                "2027-06-01 vib",
                "2028-01-01 vib",
                "2028-02-01 rouge",
                "2029-01-01 rouge",
                "2030-01-01 insider",
            ]
        );
    }

    #[test]
    fn starbucks_twelve_months_after_qualifying() {
        let rules = TierRules {
            measure: Measure::Points,
            window: Window::RollingMonths(12),
            tiers: vec![
                Tier {
                    name: "green".into(),
                    threshold: 0,
                },
                Tier {
                    name: "gold".into(),
                    threshold: 500,
                },
                Tier {
                    name: "reserve".into(),
                    threshold: 2_500,
                },
            ],
            schedule: Schedule::Monthly { day: 1 },
            retention: Retention::Months(12),
            mode: DowngradeMode::Recompute,
            warning_days: 30,
            live: true,
        };
        let got = drive(
            &rules,
            &[("2026-02-10T00:00:00Z", 300), ("2026-04-10T00:00:00Z", 250)],
            "2027-05-02T00:00:00Z",
        );
        let at = |date: &str| {
            got.iter()
                .find(|(a, _)| a.starts_with(date))
                .map(|(_, n)| n.as_str())
        };
        assert_eq!(at("2026-02-10"), Some("green"));
        assert_eq!(at("2026-04-10"), Some("gold"), "500 stars within 12 months");
        assert_eq!(
            at("2027-04-01"),
            Some("gold"),
            "kept for 12 months after qualifying"
        );
        assert_eq!(
            at("2027-05-01"),
            Some("green"),
            "the first evaluation after the 12 months"
        );
    }

    #[test]
    fn downgrade_modes_and_warnings() {
        let mut rules = sephora();
        let rouge = TierState {
            tier: 2,
            since: t("2026-01-01T00:00:00Z"),
            retained_until: Some(t("2027-01-01T00:00:00Z")),
            floor: None,
        };
        let at = t("2027-01-01T00:00:00Z");
        assert_eq!(
            rules.evaluate(rouge, 0, at),
            Decision::Changed {
                to: 0,
                cause: Cause::Downgrade,
                retained_until: Some(at)
            }
        );
        rules.mode = DowngradeMode::OneStepDown;
        assert_eq!(
            rules.evaluate(rouge, 0, at),
            Decision::Changed {
                to: 1,
                cause: Cause::Downgrade,
                retained_until: Some(at)
            }
        );
        // Still retained: no downgrade, no warning.
        assert_eq!(
            rules.evaluate(rouge, 0, t("2026-12-31T00:00:00Z")),
            Decision::Unchanged
        );
        let warning = rules.warning(rouge, 60_000, at).unwrap();
        assert_eq!((warning.would_be, warning.needed), (1, 40_000));
        assert_eq!(rules.warning(rouge, 100_000, at), None);
        let (next, missing) = rules.next_tier(1, 50_000).unwrap();
        assert_eq!((next.name.as_str(), missing), ("rouge", 50_000));
        assert!(rules.next_tier(2, 0).is_none());
    }

    #[test]
    fn score_caps_cut_exactly() {
        let rules = ScoreRules {
            window: Window::RollingMonths(12),
            cap_per_order: Some(300),
            cap_per_day: Some(500),
            cap_per_month: Some(1_200),
            rules: vec![
                ScoreRule {
                    name: "spend".into(),
                    on: ScoreTrigger::Order,
                    amount: ScoreAmount::PerMinor {
                        score: 1,
                        per_minor: 100,
                    },
                    condition: None,
                },
                ScoreRule {
                    name: "order".into(),
                    on: ScoreTrigger::Order,
                    amount: ScoreAmount::Fixed(5),
                    condition: None,
                },
                ScoreRule {
                    name: "review".into(),
                    on: ScoreTrigger::Activity("review".into()),
                    amount: ScoreAmount::Fixed(20),
                    condition: None,
                },
            ],
        };
        let tz = utc();
        let null = Value::Null;
        let ctx = |day: i64, month: i64| EarnContext {
            tz: &tz,
            occurred_at: t("2026-11-23T00:00:00Z"),
            member: &null,
            event: &null,
            first_order: false,
            earned: EarnedSoFar { day, month },
        };
        let cases = [
            (10_050, 0, 0, 105),     // 100 for spend (floor) + 5 per order
            (50_000, 0, 0, 300),     // the order cap
            (50_000, 400, 400, 100), // what is left of the day
            (50_000, 0, 1_150, 50),  // what is left of the month
            (50_000, 500, 500, 0),
        ];
        for (total, day, month, want) in cases {
            assert_eq!(
                rules.score_order(total, &ctx(day, month)),
                want,
                "{total} {day} {month}"
            );
        }
        assert_eq!(
            rules.score_activity(&ActivityKind::Review, &ctx(490, 0)),
            10
        );
        assert_eq!(rules.score_activity(&ActivityKind::Share, &ctx(0, 0)), 0);
        // A rule with a condition adds only for the members it selects.
        let mut vip_only = rules.clone();
        vip_only.rules[0].condition = Some(
            crate::rule::Condition::compile("member.attributes.vip == true", &["member", "event"])
                .unwrap(),
        );
        let (vip, plain) = (
            serde_json::json!({"attributes": {"vip": true}}),
            serde_json::json!({"attributes": {"vip": false}}),
        );
        let with = |member| EarnContext {
            member,
            ..ctx(0, 0)
        };
        assert_eq!(vip_only.score_order(10_050, &with(&vip)), 105);
        assert_eq!(vip_only.score_order(10_050, &with(&plain)), 5);
    }
}
