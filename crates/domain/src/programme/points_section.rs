//! The `[points]` section of a programme file, checked into a `PointsConfig`.

use super::{is_identifier, Issues, BUILT_IN_ACTIVITIES};
use crate::limits::{AMOUNT_MINOR_MAX, POINT_VALUE_MINOR_MAX};
use crate::points::{
    Bonus, BonusTrigger, ExpiryOverride, ExpiryPolicy, Multiplier, PointsConfig, RedemptionRule,
    RefundPolicy, Reward, Rounding, Stacking, MULTIPLIER_PERCENT_MAX, POINTS_MAX,
};
use crate::rule::Condition;
use jiff::civil::{Date, Weekday};
use serde::Deserialize;
use std::collections::BTreeSet;
use toml::Spanned;

/// Variables a multiplier condition may use.
pub const MULTIPLIER_VARIABLES: &[&str] = &["member", "event", "line"];
/// Variables a bonus condition may use.
pub const BONUS_VARIABLES: &[&str] = &["member", "event"];
/// Variables an expiry override may use.
pub const OVERRIDE_VARIABLES: &[&str] = &["member"];
/// Longest return window, in days.
const RETURN_WINDOW_DAYS_MAX: i64 = 3650;
/// Longest rolling expiry, in days or months.
const EXPIRY_SPAN_MAX: i64 = 1200;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PointsFile {
    earn_points: Spanned<i64>,
    earn_per_minor: Spanned<i64>,
    rounding: Option<Spanned<String>>,
    stacking: Option<Spanned<String>>,
    return_window_days: Option<Spanned<i64>>,
    refund_policy: Option<Spanned<String>>,
    expiry: Option<Spanned<ExpiryFile>>,
    cap_per_order: Option<Spanned<i64>>,
    cap_per_day: Option<Spanned<i64>>,
    cap_per_month: Option<Spanned<i64>>,
    #[serde(default)]
    multipliers: Vec<MultiplierFile>,
    #[serde(default)]
    bonuses: Vec<BonusFile>,
    #[serde(default)]
    expiry_overrides: Vec<OverrideFile>,
    redemption: Option<RedemptionFile>,
    #[serde(default)]
    rewards: Vec<RewardFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpiryFile {
    policy: Spanned<String>,
    days: Option<Spanned<i64>>,
    months: Option<Spanned<i64>>,
    years_after: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MultiplierFile {
    name: Spanned<String>,
    percent: Spanned<i64>,
    #[serde(default)]
    categories: Vec<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    weekdays: Vec<Spanned<String>>,
    #[serde(default)]
    days_of_month: Vec<Spanned<i64>>,
    from: Option<Spanned<String>>,
    until: Option<Spanned<String>>,
    condition: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BonusFile {
    name: Spanned<String>,
    on: Spanned<String>,
    points: Spanned<i64>,
    condition: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OverrideFile {
    name: Spanned<String>,
    condition: Spanned<String>,
    expiry: Spanned<ExpiryFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RedemptionFile {
    points: Spanned<i64>,
    value_minor: Spanned<i64>,
    #[serde(default)]
    minimum_points: Option<Spanned<i64>>,
    max_order_share_percent: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RewardFile {
    id: Spanned<String>,
    name: Spanned<String>,
    points: Spanned<i64>,
    stock: Option<Spanned<i64>>,
}

impl PointsFile {
    /// The return window as written (0 when absent), for sections that default to it.
    pub(super) fn return_window_days(&self) -> i64 {
        self.return_window_days.as_ref().map_or(0, |v| *v.get_ref())
    }
}

/// A number within `min..=max`, or an issue at its place.
pub(super) fn ranged(
    issues: &mut Issues,
    v: &Spanned<i64>,
    field: &str,
    min: i64,
    max: i64,
) -> Option<i64> {
    let value = *v.get_ref();
    if (min..=max).contains(&value) {
        Some(value)
    } else {
        issues.add(v, field, &format!("must be between {min} and {max}"));
        None
    }
}

pub(super) fn choice<T: Copy>(
    issues: &mut Issues,
    v: &Option<Spanned<String>>,
    field: &str,
    default: T,
    options: &[(&str, T)],
) -> Option<T> {
    let Some(v) = v else { return Some(default) };
    match options.iter().find(|(name, _)| name == v.get_ref()) {
        Some((_, value)) => Some(*value),
        None => {
            let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
            issues.add(v, field, &format!("must be one of: {}", names.join(", ")));
            None
        }
    }
}

pub(super) fn condition(
    issues: &mut Issues,
    v: &Option<Spanned<String>>,
    field: &str,
    vars: &[&str],
) -> Option<Option<Condition>> {
    match v {
        None => Some(None),
        Some(source) => match Condition::compile_with(source.get_ref(), vars, issues.type_check) {
            Ok(c) => Some(Some(c)),
            Err(problems) => {
                issues.add_condition(source, field, &problems);
                None
            }
        },
    }
}

pub(super) fn name(
    issues: &mut Issues,
    v: &Spanned<String>,
    field: &str,
    seen: &mut BTreeSet<String>,
) -> Option<String> {
    let n = v.get_ref();
    if !is_identifier(n) {
        issues.add(
            v,
            field,
            "must be lower_snake_case: letters, digits and `_`, starting with a letter",
        );
        None
    } else if !seen.insert(n.clone()) {
        issues.add(v, field, &format!("`{n}` is declared twice"));
        None
    } else {
        Some(n.clone())
    }
}

fn expiry(issues: &mut Issues, spanned: &Spanned<ExpiryFile>, field: &str) -> Option<ExpiryPolicy> {
    let e = spanned.get_ref();
    let need = |issues: &mut Issues, v: &Option<Spanned<i64>>, what: &str| -> Option<i64> {
        match v {
            Some(v) => ranged(issues, v, &format!("{field}.{what}"), 1, EXPIRY_SPAN_MAX),
            None => {
                issues.add(
                    &e.policy,
                    &format!("{field}.{what}"),
                    &format!("policy `{}` needs `{what}`", e.policy.get_ref()),
                );
                None
            }
        }
    };
    let extra = |issues: &mut Issues, allowed: &[&str]| {
        for (key, v) in [
            ("days", &e.days),
            ("months", &e.months),
            ("years_after", &e.years_after),
        ] {
            if let Some(v) = v {
                if !allowed.contains(&key) {
                    issues.add(
                        v,
                        &format!("{field}.{key}"),
                        &format!("policy `{}` takes no `{key}`", e.policy.get_ref()),
                    );
                }
            }
        }
    };
    match e.policy.get_ref().as_str() {
        "never" => {
            extra(issues, &[]);
            Some(ExpiryPolicy::Never)
        }
        "rolling" => match (&e.days, &e.months) {
            (Some(_), Some(m)) => {
                issues.add(
                    m,
                    &format!("{field}.months"),
                    "give `days` or `months`, not both",
                );
                None
            }
            (Some(_), None) => {
                extra(issues, &["days"]);
                need(issues, &e.days, "days").map(ExpiryPolicy::RollingDays)
            }
            _ => {
                extra(issues, &["months"]);
                need(issues, &e.months, "months").map(ExpiryPolicy::RollingMonths)
            }
        },
        "end_of_year" => {
            extra(issues, &["years_after"]);
            let years_after = match &e.years_after {
                Some(v) => ranged(issues, v, &format!("{field}.years_after"), 0, 100)?,
                None => 0,
            };
            Some(ExpiryPolicy::EndOfYear { years_after })
        }
        "inactivity" => {
            extra(issues, &["months"]);
            need(issues, &e.months, "months").map(|months| ExpiryPolicy::Inactivity { months })
        }
        _ => {
            issues.add(
                &e.policy,
                &format!("{field}.policy"),
                "must be one of: never, rolling, end_of_year, inactivity",
            );
            None
        }
    }
}

fn weekday(s: &str) -> Option<Weekday> {
    Some(match s {
        "monday" => Weekday::Monday,
        "tuesday" => Weekday::Tuesday,
        "wednesday" => Weekday::Wednesday,
        "thursday" => Weekday::Thursday,
        "friday" => Weekday::Friday,
        "saturday" => Weekday::Saturday,
        "sunday" => Weekday::Sunday,
        _ => return None,
    })
}

fn date(issues: &mut Issues, v: &Option<Spanned<String>>, field: &str) -> Option<Option<Date>> {
    match v {
        None => Some(None),
        Some(s) => match s.get_ref().parse::<Date>() {
            Ok(d) => Some(Some(d)),
            Err(_) => {
                issues.add(s, field, "must be a date such as 2026-11-11");
                None
            }
        },
    }
}

/// Checks the section; `None` when an issue was recorded.
pub(super) fn parse(
    file: &PointsFile,
    declared_activities: &BTreeSet<String>,
    issues: &mut Issues,
) -> Option<PointsConfig> {
    let before = issues.found.len();
    let earn_points = ranged(
        issues,
        &file.earn_points,
        "points.earn_points",
        0,
        POINTS_MAX,
    );
    let earn_per_minor = ranged(
        issues,
        &file.earn_per_minor,
        "points.earn_per_minor",
        1,
        AMOUNT_MINOR_MAX,
    );
    let rounding = choice(
        issues,
        &file.rounding,
        "points.rounding",
        Rounding::Floor,
        &[
            ("floor", Rounding::Floor),
            ("half_up", Rounding::HalfUp),
            ("ceil", Rounding::Ceil),
        ],
    );
    let stacking = choice(
        issues,
        &file.stacking,
        "points.stacking",
        Stacking::Add,
        &[("add", Stacking::Add), ("highest", Stacking::Highest)],
    );
    let refund_policy = choice(
        issues,
        &file.refund_policy,
        "points.refund_policy",
        RefundPolicy::WithinBalance,
        &[
            ("only_pending", RefundPolicy::OnlyPending),
            ("within_balance", RefundPolicy::WithinBalance),
            ("allow_negative", RefundPolicy::AllowNegative),
        ],
    );
    let return_window_days = match &file.return_window_days {
        Some(v) => ranged(
            issues,
            v,
            "points.return_window_days",
            0,
            RETURN_WINDOW_DAYS_MAX,
        ),
        None => Some(0),
    };
    let expiry_policy = match &file.expiry {
        Some(e) => expiry(issues, e, "points.expiry"),
        None => Some(ExpiryPolicy::Never),
    };
    let cap = |issues: &mut Issues, v: &Option<Spanned<i64>>, field: &str| -> Option<Option<i64>> {
        match v {
            Some(v) => ranged(issues, v, field, 0, POINTS_MAX).map(Some),
            None => Some(None),
        }
    };
    let cap_per_order = cap(issues, &file.cap_per_order, "points.cap_per_order");
    let cap_per_day = cap(issues, &file.cap_per_day, "points.cap_per_day");
    let cap_per_month = cap(issues, &file.cap_per_month, "points.cap_per_month");

    let mut names = BTreeSet::new();
    let mut multipliers = Vec::new();
    for (i, m) in file.multipliers.iter().enumerate() {
        let field = format!("points.multipliers[{i}]");
        let n = name(issues, &m.name, &format!("{field}.name"), &mut names);
        let percent = ranged(
            issues,
            &m.percent,
            &format!("{field}.percent"),
            0,
            i64::from(MULTIPLIER_PERCENT_MAX),
        );
        let mut weekdays = Vec::new();
        for (j, w) in m.weekdays.iter().enumerate() {
            match weekday(w.get_ref()) {
                Some(day) => weekdays.push(day),
                None => issues.add(
                    w,
                    &format!("{field}.weekdays[{j}]"),
                    "must be a day name such as `wednesday`",
                ),
            }
        }
        let mut days_of_month = Vec::new();
        for (j, d) in m.days_of_month.iter().enumerate() {
            if let Some(d) = ranged(issues, d, &format!("{field}.days_of_month[{j}]"), 1, 31) {
                days_of_month.push(i8::try_from(d).unwrap_or(1));
            }
        }
        let from = date(issues, &m.from, &format!("{field}.from"));
        let until = date(issues, &m.until, &format!("{field}.until"));
        if let (Some(Some(f)), Some(Some(u)), Some(span)) = (from, until, &m.until) {
            if u < f {
                issues.add(span, &format!("{field}.until"), "must not be before `from`");
            }
        }
        let cond = condition(
            issues,
            &m.condition,
            &format!("{field}.condition"),
            MULTIPLIER_VARIABLES,
        );
        if let (Some(name), Some(percent), Some(from), Some(until), Some(condition)) =
            (n, percent, from, until, cond)
        {
            multipliers.push(Multiplier {
                name,
                percent: u32::try_from(percent).unwrap_or(100),
                categories: crate::ids::nfc_names(&m.categories),
                tags: crate::ids::nfc_names(&m.tags),
                weekdays,
                days_of_month,
                from,
                until,
                condition,
            });
        }
    }

    let mut bonuses = Vec::new();
    for (i, b) in file.bonuses.iter().enumerate() {
        let field = format!("points.bonuses[{i}]");
        let n = name(issues, &b.name, &format!("{field}.name"), &mut names);
        let on = match b.on.get_ref().as_str() {
            "order" => Some(BonusTrigger::Order),
            "first_order" => Some(BonusTrigger::FirstOrder),
            a if BUILT_IN_ACTIVITIES.contains(&a) || declared_activities.contains(a) => {
                Some(BonusTrigger::Activity(a.to_owned()))
            }
            other => {
                issues.add(&b.on, &format!("{field}.on"), &format!(
                    "`{other}` is neither `order`, `first_order`, a built-in activity ({}) nor a declared activity",
                    BUILT_IN_ACTIVITIES.join(", ")
                ));
                None
            }
        };
        let points = ranged(issues, &b.points, &format!("{field}.points"), 1, POINTS_MAX);
        let cond = condition(
            issues,
            &b.condition,
            &format!("{field}.condition"),
            BONUS_VARIABLES,
        );
        if let (Some(name), Some(on), Some(points), Some(condition)) = (n, on, points, cond) {
            bonuses.push(Bonus {
                name,
                on,
                points,
                condition,
            });
        }
    }

    let mut expiry_overrides = Vec::new();
    for (i, o) in file.expiry_overrides.iter().enumerate() {
        let field = format!("points.expiry_overrides[{i}]");
        let n = name(issues, &o.name, &format!("{field}.name"), &mut names);
        let cond = condition(
            issues,
            &Some(o.condition.clone()),
            &format!("{field}.condition"),
            OVERRIDE_VARIABLES,
        );
        let policy = expiry(issues, &o.expiry, &format!("{field}.expiry"));
        if let Some(ExpiryPolicy::Inactivity { .. }) = policy {
            issues.add(
                &o.expiry,
                &format!("{field}.expiry"),
                "an override is a per-lot policy: never, rolling or end_of_year",
            );
        }
        if let (Some(name), Some(Some(condition)), Some(expiry)) = (n, cond, policy) {
            expiry_overrides.push(ExpiryOverride {
                name,
                condition,
                expiry,
            });
        }
    }

    let redemption = file.redemption.as_ref().and_then(|r| {
        let points = ranged(issues, &r.points, "points.redemption.points", 1, POINTS_MAX);
        let value_minor = ranged(
            issues,
            &r.value_minor,
            "points.redemption.value_minor",
            0,
            AMOUNT_MINOR_MAX,
        );
        // A point is worth at most 1,000 minor units, so that the value of the largest
        // balance still fits a 64-bit amount.
        if let (Some(p), Some(v)) = (points, value_minor) {
            if i128::from(v) > i128::from(p) * i128::from(POINT_VALUE_MINOR_MAX) {
                issues.add(
                    &r.value_minor,
                    "points.redemption.value_minor",
                    &format!(
                        "a point may be worth at most {POINT_VALUE_MINOR_MAX} minor units: \
                         value_minor must be at most {POINT_VALUE_MINOR_MAX} × points"
                    ),
                );
            }
        }
        let minimum_points = match &r.minimum_points {
            Some(v) => ranged(issues, v, "points.redemption.minimum_points", 0, POINTS_MAX),
            None => Some(0),
        };
        let share = match &r.max_order_share_percent {
            Some(v) => ranged(
                issues,
                v,
                "points.redemption.max_order_share_percent",
                1,
                100,
            ),
            None => Some(100),
        };
        Some(RedemptionRule {
            points: points?,
            value_minor: value_minor?,
            minimum_points: minimum_points?,
            max_order_share_percent: u32::try_from(share?).unwrap_or(100),
        })
    });

    let mut reward_ids = BTreeSet::new();
    let mut rewards = Vec::new();
    for (i, r) in file.rewards.iter().enumerate() {
        let field = format!("points.rewards[{i}]");
        let id = name(issues, &r.id, &format!("{field}.id"), &mut reward_ids);
        let title = r.name.get_ref().trim();
        if title.is_empty() {
            issues.add(&r.name, &format!("{field}.name"), "must not be empty");
        }
        let points = ranged(issues, &r.points, &format!("{field}.points"), 1, POINTS_MAX);
        let stock = match &r.stock {
            Some(v) => ranged(issues, v, &format!("{field}.stock"), 0, POINTS_MAX).map(Some),
            None => Some(None),
        };
        if let (Some(id), Some(points), Some(stock)) = (id, points, stock) {
            rewards.push(Reward {
                id,
                name: title.to_owned(),
                points,
                stock,
            });
        }
    }

    // The most one order can earn (the largest total, every multiplier, every bonus) fits
    // the largest number of points, so earning never cuts silently.
    if let (Some(points), Some(per_minor), Some(stacking)) = (earn_points, earn_per_minor, stacking)
    {
        let percent = match stacking {
            Stacking::Add => {
                multipliers
                    .iter()
                    .map(|m| i128::from(m.percent.saturating_sub(100)))
                    .sum::<i128>()
                    + 100
            }
            Stacking::Highest => multipliers
                .iter()
                .map(|m| i128::from(m.percent))
                .max()
                .unwrap_or(100)
                .max(100),
        };
        let most = i128::from(AMOUNT_MINOR_MAX) * i128::from(points) * percent
            / (i128::from(per_minor) * 100)
            + bonuses.iter().map(|b| i128::from(b.points)).sum::<i128>();
        if most > i128::from(POINTS_MAX) {
            issues.add(
                &file.earn_points,
                "points.earn_points",
                &format!(
                    "an order of {AMOUNT_MINOR_MAX} minor units would earn {most} points with \
                     every multiplier and bonus, more than {POINTS_MAX}: lower the rate"
                ),
            );
        }
    }
    if issues.found.len() > before {
        return None;
    }
    Some(PointsConfig {
        earn_points: earn_points?,
        earn_per_minor: earn_per_minor?,
        rounding: rounding?,
        stacking: stacking?,
        return_window_days: return_window_days?,
        refund_policy: refund_policy?,
        expiry: expiry_policy?,
        expiry_overrides,
        cap_per_order: cap_per_order?,
        cap_per_day: cap_per_day?,
        cap_per_month: cap_per_month?,
        multipliers,
        bonuses,
        redemption,
        rewards,
    })
}
