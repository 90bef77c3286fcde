//! The `[referral]` section of a programme file.

use super::points_section::{choice, name, ranged};
use super::Issues;
use crate::limits::AMOUNT_MINOR_MAX;
use crate::points::POINTS_MAX;
use crate::referral::{Beneficiary, Cap, CapPeriod, ReferralRules, Reward, RewardKind, Trigger};
use serde::Deserialize;
use std::collections::BTreeSet;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReferralFile {
    #[serde(default)]
    identity: Vec<Spanned<String>>,
    max_referrals_per_code: Option<Spanned<i64>>,
    late_days: Option<Spanned<i64>>,
    cap: Option<Spanned<CapFile>>,
    #[serde(default)]
    rewards: Vec<RewardFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CapFile {
    rewards: Spanned<i64>,
    period: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RewardFile {
    id: Spanned<String>,
    on: Spanned<String>,
    to: Spanned<String>,
    points: Option<Spanned<i64>>,
    coupon: Option<Spanned<String>>,
    stored_value_minor: Option<Spanned<i64>>,
    plan_days: Option<Spanned<PlanDaysFile>>,
    wait_days: Option<Spanned<i64>>,
    #[serde(default)]
    plans: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanDaysFile {
    plan: Spanned<String>,
    days: Spanned<i64>,
}

/// What the rest of the file declares, that rewards refer to.
pub(super) struct Declared<'a> {
    pub plans: &'a BTreeSet<String>,
    pub coupons: &'a BTreeSet<String>,
    /// The points section's return window, when the programme gives points.
    pub return_window_days: Option<i64>,
    pub stored_value: bool,
}

/// Days a referral setting may span: ten years.
const DAYS_MAX: i64 = 3_660;

pub(super) fn parse(
    file: &ReferralFile,
    declared: &Declared<'_>,
    issues: &mut Issues,
) -> Option<ReferralRules> {
    let before = issues.found.len();
    let mut identity = Vec::new();
    for (i, key) in file.identity.iter().enumerate() {
        let k = key.get_ref();
        if k.is_empty() || k.len() > crate::limits::SEARCH_ATTRIBUTE_KEY_LEN_MAX {
            issues.add(
                key,
                &format!("referral.identity[{i}]"),
                "must be an attribute name of 1 to 64 characters",
            );
        } else {
            identity.push(k.clone());
        }
    }
    let max_referrals_per_code = file.max_referrals_per_code.as_ref().map(|v| {
        ranged(
            issues,
            v,
            "referral.max_referrals_per_code",
            1,
            i64::from(u32::MAX),
        )
    });
    let late_days = file.late_days.as_ref().map_or(Some(0), |v| {
        ranged(issues, v, "referral.late_days", 0, DAYS_MAX)
    });
    let cap = file.cap.as_ref().map(|c| cap(c.get_ref(), issues));
    let mut ids = BTreeSet::new();
    let mut rewards = Vec::new();
    for (i, r) in file.rewards.iter().enumerate() {
        if let Some(reward) = parse_reward(
            r,
            &format!("referral.rewards[{i}]"),
            declared,
            &mut ids,
            issues,
        ) {
            rewards.push(reward);
        }
    }
    if issues.found.len() > before {
        return None;
    }
    Some(ReferralRules {
        identity,
        max_referrals_per_code: max_referrals_per_code.flatten(),
        late_days: late_days?,
        cap: cap.flatten(),
        rewards,
    })
}

fn parse_reward(
    r: &RewardFile,
    f: &str,
    declared: &Declared<'_>,
    ids: &mut BTreeSet<String>,
    issues: &mut Issues,
) -> Option<Reward> {
    let id = name(issues, &r.id, &format!("{f}.id"), ids);
    let trigger = match Trigger::parse(r.on.get_ref()) {
        Some(t) => Some(t),
        None => {
            issues.add(
                &r.on,
                &format!("{f}.on"),
                "must be one of: join, first_order, first_plan",
            );
            None
        }
    };
    let to = match Beneficiary::parse(r.to.get_ref()) {
        Some(b) => Some(b),
        None => {
            issues.add(
                &r.to,
                &format!("{f}.to"),
                "must be one of: referrer, referee",
            );
            None
        }
    };
    let kind = reward_kind(r, f, declared, issues);
    for (k, plan) in r.plans.iter().enumerate() {
        if !declared.plans.contains(plan.get_ref()) {
            issues.add(
                plan,
                &format!("{f}.plans[{k}]"),
                &format!("no plan `{}` is declared", plan.get_ref()),
            );
        }
    }
    if !r.plans.is_empty() && trigger.is_some_and(|t| t != Trigger::FirstPlan) {
        issues.add(
            &r.on,
            &format!("{f}.plans"),
            "`plans` narrows a `first_plan` reward only",
        );
    }
    let wait_days = match &r.wait_days {
        Some(v) => ranged(issues, v, &format!("{f}.wait_days"), 0, DAYS_MAX),
        // A first order is rewarded once its return window has passed.
        None if trigger == Some(Trigger::FirstOrder) => {
            Some(declared.return_window_days.unwrap_or(0))
        }
        None => Some(0),
    };
    Some(Reward {
        id: id?,
        trigger: trigger?,
        to: to?,
        kind: kind?,
        wait_days: wait_days?,
        plans: r.plans.iter().map(|p| p.get_ref().clone()).collect(),
    })
}

fn cap(c: &CapFile, issues: &mut Issues) -> Option<Cap> {
    let rewards = ranged(
        issues,
        &c.rewards,
        "referral.cap.rewards",
        0,
        i64::from(u32::MAX),
    );
    let period = choice(
        issues,
        &c.period,
        "referral.cap.period",
        CapPeriod::Month,
        &[
            ("month", CapPeriod::Month),
            ("year", CapPeriod::Year),
            ("lifetime", CapPeriod::Lifetime),
        ],
    );
    Some(Cap {
        rewards: rewards?,
        period: period?,
    })
}

fn plan_days(
    p: &PlanDaysFile,
    f: &str,
    declared: &Declared<'_>,
    issues: &mut Issues,
) -> Option<RewardKind> {
    if !declared.plans.contains(p.plan.get_ref()) {
        issues.add(
            &p.plan,
            &format!("{f}.plan_days.plan"),
            &format!("no plan `{}` is declared", p.plan.get_ref()),
        );
        return None;
    }
    ranged(issues, &p.days, &format!("{f}.plan_days.days"), 1, DAYS_MAX).map(|days| {
        RewardKind::PlanDays {
            plan: p.plan.get_ref().clone(),
            days,
        }
    })
}

fn reward_kind(
    r: &RewardFile,
    f: &str,
    declared: &Declared<'_>,
    issues: &mut Issues,
) -> Option<RewardKind> {
    let given = [
        r.points.is_some(),
        r.coupon.is_some(),
        r.stored_value_minor.is_some(),
        r.plan_days.is_some(),
    ]
    .iter()
    .filter(|g| **g)
    .count();
    if given != 1 {
        issues.add(
            &r.id,
            f,
            "a reward gives exactly one of `points`, `coupon`, `stored_value_minor`, `plan_days`",
        );
        return None;
    }
    if let Some(p) = &r.points {
        if declared.return_window_days.is_none() {
            issues.add(
                p,
                &format!("{f}.points"),
                "a points reward needs the `[points]` section",
            );
            return None;
        }
        return ranged(issues, p, &format!("{f}.points"), 1, POINTS_MAX).map(RewardKind::Points);
    }
    if let Some(c) = &r.coupon {
        if !declared.coupons.contains(c.get_ref()) {
            issues.add(
                c,
                &format!("{f}.coupon"),
                &format!("no coupon template `{}` is declared", c.get_ref()),
            );
            return None;
        }
        return Some(RewardKind::Coupon(c.get_ref().clone()));
    }
    if let Some(p) = &r.plan_days {
        return plan_days(p.get_ref(), f, declared, issues);
    }
    let v = r.stored_value_minor.as_ref()?;
    if !declared.stored_value {
        issues.add(
            v,
            &format!("{f}.stored_value_minor"),
            "a stored-value reward needs the `[stored_value]` section",
        );
        return None;
    }
    ranged(
        issues,
        v,
        &format!("{f}.stored_value_minor"),
        1,
        AMOUNT_MINOR_MAX,
    )
    .map(RewardKind::StoredValue)
}
