//! The `[score]`, `[[tiers]]` and `[tier_rules]` sections of a programme file.

use super::points_section::{choice, condition, name, ranged};
use super::{Issues, BUILT_IN_ACTIVITIES};
use crate::limits::AMOUNT_MINOR_MAX;
use crate::points::POINTS_MAX;
use crate::tiers::{
    DowngradeMode, Measure, Retention, Schedule, ScoreAmount, ScoreRule, ScoreRules, ScoreTrigger,
    Tier, TierRules, Window,
};
use serde::Deserialize;
use std::collections::BTreeSet;
use toml::Spanned;

/// Variables a score rule's condition may use.
pub const SCORE_VARIABLES: &[&str] = &["member", "event"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ScoreFile {
    window: Spanned<WindowFile>,
    cap_per_order: Option<Spanned<i64>>,
    cap_per_day: Option<Spanned<i64>>,
    cap_per_month: Option<Spanned<i64>>,
    #[serde(default)]
    rules: Vec<ScoreRuleFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WindowFile {
    kind: Spanned<String>,
    months: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScoreRuleFile {
    name: Spanned<String>,
    on: Spanned<String>,
    score: Spanned<i64>,
    per_minor: Option<Spanned<i64>>,
    condition: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TierFile {
    pub(super) name: Spanned<String>,
    pub(super) renamed_from: Option<Spanned<String>>,
    threshold: Spanned<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TierRulesFile {
    measure: Option<Spanned<String>>,
    window: Option<Spanned<WindowFile>>,
    evaluation: Spanned<ScheduleFile>,
    retention: Option<Spanned<RetentionFile>>,
    mode: Option<Spanned<String>>,
    warning_days: Option<Spanned<i64>>,
    settlement: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduleFile {
    schedule: Spanned<String>,
    month: Option<Spanned<i64>>,
    day: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RetentionFile {
    kind: Spanned<String>,
    months: Option<Spanned<i64>>,
}

fn window(issues: &mut Issues, w: &Spanned<WindowFile>, field: &str) -> Option<Window> {
    let f = w.get_ref();
    match f.kind.get_ref().as_str() {
        "lifetime" => Some(Window::Lifetime),
        "calendar_year" => Some(Window::CalendarYear),
        "rolling_months" => match &f.months {
            Some(m) => {
                ranged(issues, m, &format!("{field}.months"), 1, 120).map(Window::RollingMonths)
            }
            None => {
                issues.add(
                    &f.kind,
                    &format!("{field}.months"),
                    "`rolling_months` needs `months`",
                );
                None
            }
        },
        _ => {
            issues.add(
                &f.kind,
                &format!("{field}.kind"),
                "must be one of: lifetime, rolling_months, calendar_year",
            );
            None
        }
    }
}

fn caps(issues: &mut Issues, v: &Option<Spanned<i64>>, field: &str) -> Option<Option<i64>> {
    match v {
        Some(v) => ranged(issues, v, field, 0, POINTS_MAX).map(Some),
        None => Some(None),
    }
}

pub(super) fn parse_score(
    file: &ScoreFile,
    declared_activities: &BTreeSet<String>,
    issues: &mut Issues,
) -> Option<ScoreRules> {
    let before = issues.found.len();
    let window = window(issues, &file.window, "score.window");
    let cap_per_order = caps(issues, &file.cap_per_order, "score.cap_per_order");
    let cap_per_day = caps(issues, &file.cap_per_day, "score.cap_per_day");
    let cap_per_month = caps(issues, &file.cap_per_month, "score.cap_per_month");
    let mut names = BTreeSet::new();
    let mut rules = Vec::new();
    for (i, r) in file.rules.iter().enumerate() {
        let field = format!("score.rules[{i}]");
        let n = name(issues, &r.name, &format!("{field}.name"), &mut names);
        let on = match r.on.get_ref().as_str() {
            "order" => Some(ScoreTrigger::Order),
            a if BUILT_IN_ACTIVITIES.contains(&a) || declared_activities.contains(a) => {
                Some(ScoreTrigger::Activity(a.to_owned()))
            }
            other => {
                issues.add(
                    &r.on,
                    &format!("{field}.on"),
                    &format!(
                        "`{other}` is neither `order`, a built-in activity nor a declared activity"
                    ),
                );
                None
            }
        };
        let score = ranged(issues, &r.score, &format!("{field}.score"), 1, POINTS_MAX);
        let amount = match (&r.per_minor, &on, score) {
            (Some(p), Some(ScoreTrigger::Order), Some(score)) => ranged(
                issues,
                p,
                &format!("{field}.per_minor"),
                1,
                AMOUNT_MINOR_MAX,
            )
            .and_then(|per_minor| {
                // The largest order's score fits the largest score, so no sum overflows.
                let most = i128::from(AMOUNT_MINOR_MAX) * i128::from(score) / i128::from(per_minor);
                if most > i128::from(POINTS_MAX) {
                    issues.add(
                        &r.score,
                        &format!("{field}.score"),
                        &format!(
                            "an order of {AMOUNT_MINOR_MAX} minor units would score {most}, \
                             more than {POINTS_MAX}: lower the rate"
                        ),
                    );
                    return None;
                }
                Some(ScoreAmount::PerMinor { score, per_minor })
            }),
            (Some(p), Some(ScoreTrigger::Activity(_)), _) => {
                issues.add(
                    p,
                    &format!("{field}.per_minor"),
                    "an activity has no amount: give a fixed `score`",
                );
                None
            }
            (None, _, Some(score)) => Some(ScoreAmount::Fixed(score)),
            _ => None,
        };
        let cond = condition(
            issues,
            &r.condition,
            &format!("{field}.condition"),
            SCORE_VARIABLES,
        );
        if let (Some(name), Some(on), Some(amount), Some(condition)) = (n, on, amount, cond) {
            rules.push(ScoreRule {
                name,
                on,
                amount,
                condition,
            });
        }
    }
    if issues.found.len() > before {
        return None;
    }
    Some(ScoreRules {
        window: window?,
        cap_per_order: cap_per_order?,
        cap_per_day: cap_per_day?,
        cap_per_month: cap_per_month?,
        rules,
    })
}

/// Checks `[[tiers]]` and `[tier_rules]` together; `score_window` is the score's window,
/// the default of the tiers' window.
pub(super) fn parse_tiers(
    tiers: &[TierFile],
    rules: Option<&Spanned<TierRulesFile>>,
    score_window: Option<Window>,
    has_score: bool,
    has_points: bool,
    issues: &mut Issues,
) -> Option<TierRules> {
    let before = issues.found.len();
    let Some(rules_spanned) = rules else {
        issues.add_at_start(
            "tier_rules",
            "`[[tiers]]` needs a `[tier_rules]` section (measure, window, evaluation)",
        );
        return None;
    };
    let r = rules_spanned.get_ref();
    let mut levels = Vec::new();
    let mut names = BTreeSet::new();
    let mut last: Option<i64> = None;
    for (i, t) in tiers.iter().enumerate() {
        let field = format!("tiers[{i}]");
        let n = name(issues, &t.name, &format!("{field}.name"), &mut names);
        let threshold = ranged(
            issues,
            &t.threshold,
            &format!("{field}.threshold"),
            0,
            AMOUNT_MINOR_MAX.saturating_mul(1000),
        );
        if let Some(th) = threshold {
            if i == 0 && th != 0 {
                issues.add(
                    &t.threshold,
                    &format!("{field}.threshold"),
                    "the first tier is everyone's: its threshold is 0",
                );
            }
            if last.is_some_and(|l| th <= l) {
                issues.add(
                    &t.threshold,
                    &format!("{field}.threshold"),
                    "thresholds must rise from one tier to the next",
                );
            }
            last = Some(th);
        }
        if let (Some(name), Some(threshold)) = (n, threshold) {
            levels.push(Tier { name, threshold });
        }
    }
    if tiers.len() < 2 {
        issues.add(
            rules_spanned,
            "tiers",
            "declare at least two `[[tiers]]`, the first with threshold 0",
        );
    }
    let measure = choice(
        issues,
        &r.measure,
        "tier_rules.measure",
        Measure::Score,
        &[
            ("score", Measure::Score),
            ("spend", Measure::Spend),
            ("points", Measure::Points),
        ],
    );
    match (measure, &r.measure) {
        (Some(Measure::Score), m) if !has_score => {
            let reason = "tiers measured in score need a `[score]` section";
            match m {
                Some(m) => issues.add(m, "tier_rules.measure", reason),
                None => issues.add(rules_spanned, "tier_rules.measure", reason),
            }
        }
        (Some(Measure::Points), Some(m)) if !has_points => issues.add(
            m,
            "tier_rules.measure",
            "tiers measured in points need a `[points]` section",
        ),
        _ => {}
    }
    let window = match (&r.window, score_window) {
        (Some(w), _) => window(issues, w, "tier_rules.window"),
        (None, Some(w)) => Some(w),
        (None, None) => {
            issues.add(
                rules_spanned,
                "tier_rules.window",
                "give the window the measure is counted over",
            );
            None
        }
    };
    let e = r.evaluation.get_ref();
    let day = |issues: &mut Issues, max: i64| -> Option<i8> {
        match &e.day {
            Some(d) => ranged(issues, d, "tier_rules.evaluation.day", 1, max)
                .map(|d| i8::try_from(d).unwrap_or(1)),
            None => {
                issues.add(
                    &e.schedule,
                    "tier_rules.evaluation.day",
                    "this schedule needs `day`",
                );
                None
            }
        }
    };
    let schedule = match e.schedule.get_ref().as_str() {
        "monthly" => day(issues, 28).map(|day| Schedule::Monthly { day }),
        "yearly" => {
            let month = match &e.month {
                Some(m) => ranged(issues, m, "tier_rules.evaluation.month", 1, 12)
                    .map(|m| i8::try_from(m).unwrap_or(1)),
                None => {
                    issues.add(
                        &e.schedule,
                        "tier_rules.evaluation.month",
                        "a yearly schedule needs `month`",
                    );
                    None
                }
            };
            let d = day(issues, 28);
            month
                .zip(d)
                .map(|(month, day)| Schedule::Yearly { month, day })
        }
        "anniversary" => Some(Schedule::Anniversary),
        _ => {
            issues.add(
                &e.schedule,
                "tier_rules.evaluation.schedule",
                "must be one of: monthly, yearly, anniversary",
            );
            None
        }
    };
    let retention = match &r.retention {
        None => Some(Retention::None),
        Some(spanned) => {
            let f = spanned.get_ref();
            match f.kind.get_ref().as_str() {
                "none" => Some(Retention::None),
                "rest_of_year_and_next" => Some(Retention::RestOfYearAndNext),
                "months" => match &f.months {
                    Some(m) => ranged(issues, m, "tier_rules.retention.months", 1, 120)
                        .map(Retention::Months),
                    None => {
                        issues.add(
                            &f.kind,
                            "tier_rules.retention.months",
                            "`months` retention needs `months`",
                        );
                        None
                    }
                },
                _ => {
                    issues.add(
                        &f.kind,
                        "tier_rules.retention.kind",
                        "must be one of: none, rest_of_year_and_next, months",
                    );
                    None
                }
            }
        }
    };
    let mode = choice(
        issues,
        &r.mode,
        "tier_rules.mode",
        DowngradeMode::Recompute,
        &[
            ("recompute", DowngradeMode::Recompute),
            ("one_step_down", DowngradeMode::OneStepDown),
        ],
    );
    let warning_days = match &r.warning_days {
        Some(w) => ranged(issues, w, "tier_rules.warning_days", 0, 365),
        None => Some(30),
    };
    let live = choice(
        issues,
        &r.settlement,
        "tier_rules.settlement",
        true,
        &[("live", true), ("at_evaluation", false)],
    );
    if issues.found.len() > before {
        return None;
    }
    Some(TierRules {
        measure: measure?,
        window: window?,
        tiers: levels,
        schedule: schedule?,
        retention: retention?,
        mode: mode?,
        warning_days: warning_days?,
        live: live?,
    })
}
