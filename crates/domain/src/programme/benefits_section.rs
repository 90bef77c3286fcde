//! The `[[benefits]]` and `[[coupons]]` sections of a programme file.

use super::points_section::{name, ranged};
use super::Issues;
use crate::limits::AMOUNT_MINOR_MAX;
use crate::quote::{Benefit, BenefitKind, CouponKind, CouponTemplate, HeldBy};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BenefitFile {
    pub(super) id: Spanned<String>,
    pub(super) renamed_from: Option<Spanned<String>>,
    kind: Spanned<String>,
    #[serde(default)]
    plans: Vec<Spanned<String>>,
    #[serde(default)]
    tiers: Vec<Spanned<String>>,
    cost_per_use_minor: Option<Spanned<i64>>,
    prices: Option<Spanned<BTreeMap<String, i64>>>,
    percent: Option<Spanned<i64>>,
    categories: Option<Vec<String>>,
    tags: Option<Vec<String>>,
    skus: Option<Vec<String>>,
    days_of_month: Option<Spanned<Vec<i64>>>,
    minimum_minor: Option<Spanned<i64>>,
    per_month: Option<Spanned<i64>>,
    coupon: Option<Spanned<String>>,
    count: Option<Spanned<i64>>,
    days: Option<Spanned<i64>>,
    feature: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CouponFile {
    pub(super) id: Spanned<String>,
    pub(super) renamed_from: Option<Spanned<String>>,
    kind: Spanned<String>,
    amount_minor: Option<Spanned<i64>>,
    percent: Option<Spanned<i64>>,
    cap_minor: Option<Spanned<i64>>,
    minimum_minor: Option<Spanned<i64>>,
    #[serde(default)]
    categories: Vec<String>,
    valid_days: Spanned<i64>,
    stacking_group: Option<String>,
}

fn money(issues: &mut Issues, v: &Option<Spanned<i64>>, field: &str) -> Option<i64> {
    match v {
        Some(v) => ranged(issues, v, field, 0, AMOUNT_MINOR_MAX),
        None => Some(0),
    }
}

fn need<T: Clone>(
    issues: &mut Issues,
    v: &Option<Spanned<T>>,
    kind: &Spanned<String>,
    field: &str,
) -> Option<Spanned<T>> {
    if v.is_none() {
        issues.add(
            kind,
            field,
            &format!("kind `{}` needs this field", kind.get_ref()),
        );
    }
    v.clone()
}

pub(super) fn parse_coupons(
    files: &[CouponFile],
    issues: &mut Issues,
) -> Option<Vec<CouponTemplate>> {
    let before = issues.found.len();
    let mut ids = BTreeSet::new();
    let mut out = Vec::new();
    for (i, c) in files.iter().enumerate() {
        let f = format!("coupons[{i}]");
        let id = name(issues, &c.id, &format!("{f}.id"), &mut ids);
        let kind = match c.kind.get_ref().as_str() {
            "amount_off" => need(
                issues,
                &c.amount_minor,
                &c.kind,
                &format!("{f}.amount_minor"),
            )
            .and_then(|a| {
                ranged(
                    issues,
                    &a,
                    &format!("{f}.amount_minor"),
                    1,
                    AMOUNT_MINOR_MAX,
                )
            })
            .map(CouponKind::AmountOff),
            "percent_off" => {
                let p = need(issues, &c.percent, &c.kind, &format!("{f}.percent"))
                    .and_then(|p| ranged(issues, &p, &format!("{f}.percent"), 1, 100));
                let cap = c
                    .cap_minor
                    .as_ref()
                    .map(|v| ranged(issues, v, &format!("{f}.cap_minor"), 1, AMOUNT_MINOR_MAX));
                match (p, cap) {
                    (Some(percent), None) => Some(CouponKind::PercentOff {
                        percent,
                        cap_minor: None,
                    }),
                    (Some(percent), Some(Some(cap))) => Some(CouponKind::PercentOff {
                        percent,
                        cap_minor: Some(cap),
                    }),
                    _ => None,
                }
            }
            "free_shipping" => Some(CouponKind::FreeShipping),
            _ => {
                issues.add(
                    &c.kind,
                    &format!("{f}.kind"),
                    "must be one of: amount_off, percent_off, free_shipping",
                );
                None
            }
        };
        let minimum = money(issues, &c.minimum_minor, &format!("{f}.minimum_minor"));
        let valid_days = ranged(issues, &c.valid_days, &format!("{f}.valid_days"), 1, 3660);
        if let (Some(id), Some(kind), Some(minimum_minor), Some(valid_days)) =
            (id, kind, minimum, valid_days)
        {
            out.push(CouponTemplate {
                stacking_group: c.stacking_group.clone().unwrap_or_else(|| id.clone()),
                id,
                kind,
                minimum_minor,
                categories: crate::ids::nfc_names(&c.categories),
                valid_days,
            });
        }
    }
    (issues.found.len() == before).then_some(out)
}

pub(super) fn parse_benefits(
    files: &[BenefitFile],
    plan_ids: &BTreeSet<String>,
    tier_names: &BTreeSet<String>,
    coupon_ids: &BTreeSet<String>,
    issues: &mut Issues,
) -> Option<Vec<Benefit>> {
    let before = issues.found.len();
    let mut ids = BTreeSet::new();
    let mut out = Vec::new();
    for (i, b) in files.iter().enumerate() {
        let f = format!("benefits[{i}]");
        let id = name(issues, &b.id, &format!("{f}.id"), &mut ids);
        for p in &b.plans {
            if !plan_ids.contains(p.get_ref()) {
                issues.add(
                    p,
                    &format!("{f}.plans"),
                    &format!("no plan is named `{}`", p.get_ref()),
                );
            }
        }
        for t in &b.tiers {
            if !tier_names.contains(t.get_ref()) {
                issues.add(
                    t,
                    &format!("{f}.tiers"),
                    &format!("no tier is named `{}`", t.get_ref()),
                );
            }
        }
        if b.plans.is_empty() && b.tiers.is_empty() {
            issues.add(
                &b.id,
                &format!("{f}.plans"),
                "a benefit is held through `plans`, `tiers` or both",
            );
        }
        let cost = money(
            issues,
            &b.cost_per_use_minor,
            &format!("{f}.cost_per_use_minor"),
        );
        let present = [
            ("prices", b.prices.is_some()),
            ("percent", b.percent.is_some()),
            ("categories", b.categories.is_some()),
            ("tags", b.tags.is_some()),
            ("skus", b.skus.is_some()),
            ("days_of_month", b.days_of_month.is_some()),
            ("minimum_minor", b.minimum_minor.is_some()),
            ("per_month", b.per_month.is_some()),
            ("coupon", b.coupon.is_some()),
            ("count", b.count.is_some()),
            ("days", b.days.is_some()),
            ("feature", b.feature.is_some()),
        ];
        let allowed: &[&str] = match b.kind.get_ref().as_str() {
            "member_price" => &["prices"],
            "percent_off" => &["percent", "categories", "tags", "days_of_month"],
            "free_shipping" => &["minimum_minor", "per_month"],
            "coupon_grant" => &["coupon", "count"],
            "free_returns" => &["per_month"],
            "extended_returns" => &["days"],
            "feature" => &["feature"],
            "members_only" => &["skus", "categories", "tags"],
            _ => &[],
        };
        for (field, is_there) in present {
            if is_there && !allowed.contains(&field) {
                issues.add(
                    &b.kind,
                    &format!("{f}.{field}"),
                    &format!("kind `{}` does not take `{field}`", b.kind.get_ref()),
                );
            }
        }
        let list =
            |v: &Option<Vec<String>>| crate::ids::nfc_names(v.as_deref().unwrap_or_default());
        let kind = match b.kind.get_ref().as_str() {
            "member_price" => {
                need(issues, &b.prices, &b.kind, &format!("{f}.prices")).and_then(|p| {
                    let bad = p
                        .get_ref()
                        .values()
                        .any(|v| !(0..=AMOUNT_MINOR_MAX).contains(v));
                    if bad {
                        issues.add(
                            &p,
                            &format!("{f}.prices"),
                            &format!("prices must be between 0 and {AMOUNT_MINOR_MAX}"),
                        );
                        None
                    } else {
                        Some(BenefitKind::MemberPrice(p.into_inner()))
                    }
                })
            }
            "percent_off" => {
                let percent = need(issues, &b.percent, &b.kind, &format!("{f}.percent"))
                    .and_then(|p| ranged(issues, &p, &format!("{f}.percent"), 1, 100));
                let days = match &b.days_of_month {
                    Some(d) if d.get_ref().iter().any(|x| !(1..=31).contains(x)) => {
                        issues.add(
                            d,
                            &format!("{f}.days_of_month"),
                            "days of the month are 1 to 31",
                        );
                        None
                    }
                    Some(d) => Some(d.get_ref().iter().map(|x| *x as i8).collect()),
                    None => Some(Vec::new()),
                };
                percent
                    .zip(days)
                    .map(|(percent, days_of_month)| BenefitKind::PercentOff {
                        percent,
                        categories: list(&b.categories),
                        tags: list(&b.tags),
                        days_of_month,
                    })
            }
            "free_shipping" => {
                let minimum = money(issues, &b.minimum_minor, &format!("{f}.minimum_minor"));
                let per_month = b
                    .per_month
                    .as_ref()
                    .map(|p| ranged(issues, p, &format!("{f}.per_month"), 1, 1000));
                match (minimum, per_month) {
                    (Some(minimum_minor), None) => Some(BenefitKind::FreeShipping {
                        minimum_minor,
                        per_month: None,
                    }),
                    (Some(minimum_minor), Some(Some(n))) => Some(BenefitKind::FreeShipping {
                        minimum_minor,
                        per_month: Some(n),
                    }),
                    _ => None,
                }
            }
            "coupon_grant" => {
                let coupon =
                    need(issues, &b.coupon, &b.kind, &format!("{f}.coupon")).and_then(|c| {
                        if coupon_ids.contains(c.get_ref()) {
                            Some(c.into_inner())
                        } else {
                            issues.add(
                                &c,
                                &format!("{f}.coupon"),
                                &format!("no coupon is named `{}`", c.get_ref()),
                            );
                            None
                        }
                    });
                let count = need(issues, &b.count, &b.kind, &format!("{f}.count"))
                    .and_then(|c| ranged(issues, &c, &format!("{f}.count"), 1, 100));
                coupon
                    .zip(count)
                    .map(|(coupon, count)| BenefitKind::CouponGrant { coupon, count })
            }
            "free_returns" => need(issues, &b.per_month, &b.kind, &format!("{f}.per_month"))
                .and_then(|p| ranged(issues, &p, &format!("{f}.per_month"), 1, 1000))
                .map(|per_month| BenefitKind::FreeReturns { per_month }),
            "extended_returns" => need(issues, &b.days, &b.kind, &format!("{f}.days"))
                .and_then(|d| ranged(issues, &d, &format!("{f}.days"), 1, 3660))
                .map(|days| BenefitKind::ExtendedReturns { days }),
            "priority_service" => Some(BenefitKind::PriorityService),
            "feature" => need(issues, &b.feature, &b.kind, &format!("{f}.feature"))
                .and_then(|x| name(issues, &x, &format!("{f}.feature"), &mut BTreeSet::new()))
                .map(BenefitKind::Feature),
            "members_only" => {
                let k = BenefitKind::MembersOnly {
                    skus: list(&b.skus),
                    categories: list(&b.categories),
                    tags: list(&b.tags),
                };
                if b.skus.is_none() && b.categories.is_none() && b.tags.is_none() {
                    issues.add(
                        &b.kind,
                        &format!("{f}.skus"),
                        "`members_only` needs `skus`, `categories` or `tags`",
                    );
                    None
                } else {
                    Some(k)
                }
            }
            _ => {
                issues.add(
                    &b.kind,
                    &format!("{f}.kind"),
                    "must be one of: member_price, percent_off, free_shipping, coupon_grant, free_returns, \
                     extended_returns, priority_service, feature, members_only",
                );
                None
            }
        };
        if let (Some(id), Some(kind), Some(cost_per_use_minor)) = (id, kind, cost) {
            out.push(Benefit {
                id,
                kind,
                held_by: HeldBy {
                    plans: b.plans.iter().map(|p| p.get_ref().clone()).collect(),
                    tiers: b.tiers.iter().map(|t| t.get_ref().clone()).collect(),
                },
                cost_per_use_minor,
            });
        }
    }
    (issues.found.len() == before).then_some(out)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StoredValueFile {
    spend_order: Option<Spanned<String>>,
    #[serde(default)]
    offers: Vec<OfferFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OfferFile {
    id: Spanned<String>,
    pay_minor: Spanned<i64>,
    credit_minor: Spanned<i64>,
}

pub(super) fn parse_stored_value(
    file: &StoredValueFile,
    issues: &mut Issues,
) -> Option<crate::stored_value::StoredValueRules> {
    use crate::stored_value::{Offer, SpendOrder, StoredValueRules};
    let before = issues.found.len();
    let spend_order = super::points_section::choice(
        issues,
        &file.spend_order,
        "stored_value.spend_order",
        SpendOrder::PrincipalFirst,
        &[
            ("principal_first", SpendOrder::PrincipalFirst),
            ("bonus_first", SpendOrder::BonusFirst),
        ],
    );
    let mut ids = BTreeSet::new();
    let mut offers = Vec::new();
    for (i, o) in file.offers.iter().enumerate() {
        let f = format!("stored_value.offers[{i}]");
        let id = name(issues, &o.id, &format!("{f}.id"), &mut ids);
        let pay = ranged(
            issues,
            &o.pay_minor,
            &format!("{f}.pay_minor"),
            1,
            AMOUNT_MINOR_MAX,
        );
        let credit = ranged(
            issues,
            &o.credit_minor,
            &format!("{f}.credit_minor"),
            1,
            AMOUNT_MINOR_MAX,
        );
        if let (Some(p), Some(c)) = (pay, credit) {
            if c < p {
                issues.add(
                    &o.credit_minor,
                    &format!("{f}.credit_minor"),
                    "an offer credits at least what is paid",
                );
            }
        }
        if let (Some(id), Some(pay_minor), Some(credit_minor)) = (id, pay, credit) {
            offers.push(Offer {
                id,
                pay_minor,
                credit_minor,
            });
        }
    }
    if issues.found.len() > before {
        return None;
    }
    Some(StoredValueRules {
        spend_order: spend_order?,
        offers,
    })
}
