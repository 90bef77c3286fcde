//! The `[[plans]]` section of a programme file: the paid track.

use super::points_section::{choice, condition, name, ranged};
use super::Issues;
use crate::limits::AMOUNT_MINOR_MAX;
use crate::plans::{
    Fallback, Grace, Length, PartnerRight, Plan, PriceRule, RefundPolicy, RefundRules, Trial,
};
use serde::Deserialize;
use std::collections::BTreeSet;
use toml::Spanned;

/// Variables a plan's price rule or trial eligibility may use.
pub const PLAN_VARIABLES: &[&str] = &["member"];
/// Longest term, grace or trial, in days.
const DAYS_MAX: i64 = 3660;
/// Most months in a grace.
const MONTHS_MAX: i64 = 120;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PlanFile {
    pub(super) id: Spanned<String>,
    /// The plan's id in an earlier version, whose holders move to this id.
    pub(super) renamed_from: Option<Spanned<String>>,
    name: Option<String>,
    term: Spanned<String>,
    term_days: Option<Spanned<i64>>,
    price_minor: Spanned<i64>,
    first_term_price_minor: Option<Spanned<i64>>,
    #[serde(default)]
    prices: Vec<PriceFile>,
    trial: Option<Spanned<TrialFile>>,
    auto_renew: Option<bool>,
    renewal_notice_days: Option<Spanned<i64>>,
    refund: Option<Spanned<RefundFile>>,
    grace: Option<Spanned<GraceFile>>,
    stacking: Option<bool>,
    #[serde(default)]
    partner_rights: Vec<RightFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceFile {
    name: Spanned<String>,
    condition: Spanned<String>,
    price_minor: Spanned<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TrialFile {
    days: Spanned<i64>,
    eligible: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefundFile {
    policy: Spanned<String>,
    days: Option<Spanned<i64>>,
    otherwise: Option<Spanned<String>>,
    net_of_benefit_cost: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GraceFile {
    days: Option<Spanned<i64>>,
    months: Option<Spanned<i64>>,
    backdate: Option<bool>,
    keeps_access: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RightFile {
    id: Spanned<String>,
    partner: Spanned<String>,
    code_pool: Option<bool>,
    cost_minor: Option<Spanned<i64>>,
    uses_per_term: Option<Spanned<i64>>,
}

impl PlanFile {
    pub(super) fn id(&self) -> &str {
        self.id.get_ref()
    }
}

fn money(issues: &mut Issues, v: &Spanned<i64>, field: &str) -> Option<i64> {
    ranged(issues, v, field, 0, AMOUNT_MINOR_MAX)
}

fn term(issues: &mut Issues, p: &PlanFile, field: &str) -> Option<Length> {
    let length = match p.term.get_ref().as_str() {
        "month" => Length::Months(1),
        "quarter" => Length::Months(3),
        "year" => Length::Months(12),
        "days" => {
            return match &p.term_days {
                Some(d) => {
                    ranged(issues, d, &format!("{field}.term_days"), 1, DAYS_MAX).map(Length::Days)
                }
                None => {
                    issues.add(
                        &p.term,
                        &format!("{field}.term_days"),
                        "`days` needs `term_days`",
                    );
                    None
                }
            }
        }
        _ => {
            issues.add(
                &p.term,
                &format!("{field}.term"),
                "must be one of: month, quarter, year, days",
            );
            return None;
        }
    };
    if let Some(d) = &p.term_days {
        issues.add(
            d,
            &format!("{field}.term_days"),
            "only a term of `days` takes `term_days`",
        );
        return None;
    }
    Some(length)
}

fn refund(
    issues: &mut Issues,
    r: &Option<Spanned<RefundFile>>,
    field: &str,
) -> Option<RefundRules> {
    let Some(spanned) = r else {
        return Some(RefundRules {
            policy: RefundPolicy::None,
            net_of_benefit_cost: false,
        });
    };
    let f = spanned.get_ref();
    let field = format!("{field}.refund");
    let policy = match f.policy.get_ref().as_str() {
        "none" => Some(RefundPolicy::None),
        "full" => Some(RefundPolicy::Full),
        "pro_rata" => Some(RefundPolicy::ProRata),
        "full_within_days" => {
            let days = match &f.days {
                Some(d) => ranged(issues, d, &format!("{field}.days"), 1, DAYS_MAX),
                None => {
                    issues.add(
                        &f.policy,
                        &format!("{field}.days"),
                        "`full_within_days` needs `days`",
                    );
                    None
                }
            };
            let otherwise = choice(
                issues,
                &f.otherwise,
                &format!("{field}.otherwise"),
                Fallback::None,
                &[("none", Fallback::None), ("pro_rata", Fallback::ProRata)],
            );
            days.zip(otherwise)
                .map(|(days, otherwise)| RefundPolicy::FullWithinDays { days, otherwise })
        }
        _ => {
            issues.add(
                &f.policy,
                &format!("{field}.policy"),
                "must be one of: none, full, pro_rata, full_within_days",
            );
            None
        }
    }?;
    if !matches!(policy, RefundPolicy::FullWithinDays { .. }) {
        if let Some(d) = &f.days {
            issues.add(
                d,
                &format!("{field}.days"),
                "only `full_within_days` takes `days`",
            );
            return None;
        }
        if let Some(o) = &f.otherwise {
            issues.add(
                o,
                &format!("{field}.otherwise"),
                "only `full_within_days` takes `otherwise`",
            );
            return None;
        }
    }
    Some(RefundRules {
        policy,
        net_of_benefit_cost: f.net_of_benefit_cost.unwrap_or(false),
    })
}

fn grace(issues: &mut Issues, g: &Spanned<GraceFile>, field: &str) -> Option<Grace> {
    let f = g.get_ref();
    let field = format!("{field}.grace");
    let length = match (&f.days, &f.months) {
        (Some(d), None) => {
            ranged(issues, d, &format!("{field}.days"), 1, DAYS_MAX).map(Length::Days)
        }
        (None, Some(m)) => {
            ranged(issues, m, &format!("{field}.months"), 1, MONTHS_MAX).map(Length::Months)
        }
        _ => {
            issues.add(g, &field, "give `days` or `months`, one of them");
            None
        }
    }?;
    Some(Grace {
        length,
        backdate: f.backdate.unwrap_or(false),
        keeps_access: f.keeps_access.unwrap_or(false),
    })
}

/// Checks every plan; partner right ids are unique across the programme (a right's code
/// pool is named after it).
pub(super) fn parse_plans(files: &[PlanFile], issues: &mut Issues) -> Option<Vec<Plan>> {
    let before = issues.found.len();
    let mut ids = BTreeSet::new();
    let mut right_ids = BTreeSet::new();
    let mut plans = Vec::new();
    for (i, p) in files.iter().enumerate() {
        let field = format!("plans[{i}]");
        let id = name(issues, &p.id, &format!("{field}.id"), &mut ids);
        let term = term(issues, p, &field);
        let price = money(issues, &p.price_minor, &format!("{field}.price_minor"));
        let first = p
            .first_term_price_minor
            .as_ref()
            .map(|v| money(issues, v, &format!("{field}.first_term_price_minor")));
        let mut rule_names = BTreeSet::new();
        let mut prices = Vec::new();
        for (j, r) in p.prices.iter().enumerate() {
            let f = format!("{field}.prices[{j}]");
            let n = name(issues, &r.name, &format!("{f}.name"), &mut rule_names);
            let c = condition(
                issues,
                &Some(r.condition.clone()),
                &format!("{f}.condition"),
                PLAN_VARIABLES,
            );
            let amount = money(issues, &r.price_minor, &format!("{f}.price_minor"));
            if let (Some(name), Some(Some(condition)), Some(price_minor)) = (n, c, amount) {
                prices.push(PriceRule {
                    name,
                    condition,
                    price_minor,
                });
            }
        }
        let trial = p.trial.as_ref().map(|t| {
            let f = t.get_ref();
            let days = ranged(issues, &f.days, &format!("{field}.trial.days"), 1, DAYS_MAX);
            let eligible = condition(
                issues,
                &f.eligible,
                &format!("{field}.trial.eligible"),
                PLAN_VARIABLES,
            );
            days.zip(eligible)
                .map(|(days, eligible)| Trial { days, eligible })
        });
        let auto_renew = p.auto_renew.unwrap_or(false);
        let notice = match &p.renewal_notice_days {
            Some(n) if !auto_renew => {
                issues.add(
                    n,
                    &format!("{field}.renewal_notice_days"),
                    "only an `auto_renew` plan has renewal notices",
                );
                None
            }
            Some(n) => ranged(
                issues,
                n,
                &format!("{field}.renewal_notice_days"),
                1,
                DAYS_MAX,
            ),
            None => Some(7),
        };
        let refund = refund(issues, &p.refund, &field);
        let grace = p.grace.as_ref().map(|g| grace(issues, g, &field));
        let mut rights = Vec::new();
        for (j, r) in p.partner_rights.iter().enumerate() {
            let f = format!("{field}.partner_rights[{j}]");
            let rid = name(issues, &r.id, &format!("{f}.id"), &mut right_ids);
            let partner = name(
                issues,
                &r.partner,
                &format!("{f}.partner"),
                &mut BTreeSet::new(),
            );
            let cost = match &r.cost_minor {
                Some(c) => money(issues, c, &format!("{f}.cost_minor")),
                None => Some(0),
            };
            let uses = r
                .uses_per_term
                .as_ref()
                .map(|u| ranged(issues, u, &format!("{f}.uses_per_term"), 1, 1_000_000));
            if let (Some(id), Some(partner), Some(cost_minor)) = (rid, partner, cost) {
                rights.push(PartnerRight {
                    id,
                    partner,
                    code_pool: r.code_pool.unwrap_or(false),
                    cost_minor,
                    uses_per_term: uses.flatten(),
                });
            }
        }
        if let (Some(id), Some(term), Some(price_minor), Some(renewal_notice_days), Some(refund)) =
            (id, term, price, notice, refund)
        {
            let (Some(first_term_price_minor), Some(trial), Some(grace)) = (
                first.map_or(Some(None), |f| f.map(Some)),
                trial.map_or(Some(None), |t| t.map(Some)),
                grace.map_or(Some(None), |g| g.map(Some)),
            ) else {
                continue;
            };
            plans.push(Plan {
                name: p.name.clone().unwrap_or_else(|| id.clone()),
                id,
                term,
                price_minor,
                first_term_price_minor,
                prices,
                trial,
                auto_renew,
                renewal_notice_days,
                refund,
                grace,
                stacking: p.stacking.unwrap_or(false),
                partner_rights: rights,
            });
        }
    }
    (issues.found.len() == before).then_some(plans)
}
