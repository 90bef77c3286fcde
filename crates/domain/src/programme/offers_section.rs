//! The `[[offers]]` section of a programme file: conversion offers.

use super::points_section::{condition, name, ranged};
use super::Issues;
use crate::limits::AMOUNT_MINOR_MAX;
use crate::offers::{ConversionOffer, OfferKind, OFFER_VARIABLES};
use serde::Deserialize;
use std::collections::BTreeSet;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OfferFile {
    pub(super) id: Spanned<String>,
    plan: Spanned<String>,
    condition: Option<Spanned<String>>,
    starts_at: Spanned<String>,
    ends_at: Spanned<String>,
    trial_days: Option<Spanned<i64>>,
    first_term_price_minor: Option<Spanned<i64>>,
    coupon: Option<Spanned<String>>,
}

/// Longest offered trial, in days.
const TRIAL_DAYS_MAX: i64 = 3_660;

pub(super) fn parse(
    files: &[OfferFile],
    plans: &BTreeSet<String>,
    coupons: &BTreeSet<String>,
    issues: &mut Issues,
) -> Option<Vec<ConversionOffer>> {
    let before = issues.found.len();
    let mut ids = BTreeSet::new();
    let mut out = Vec::new();
    for (i, o) in files.iter().enumerate() {
        let f = format!("offers[{i}]");
        let id = name(issues, &o.id, &format!("{f}.id"), &mut ids);
        if !plans.contains(o.plan.get_ref()) {
            issues.add(
                &o.plan,
                &format!("{f}.plan"),
                &format!("no plan `{}` is declared", o.plan.get_ref()),
            );
        }
        let cond = condition(
            issues,
            &o.condition,
            &format!("{f}.condition"),
            OFFER_VARIABLES,
        );
        let starts_at = instant(issues, &o.starts_at, &format!("{f}.starts_at"));
        let ends_at = instant(issues, &o.ends_at, &format!("{f}.ends_at"));
        if let (Some(s), Some(e)) = (starts_at, ends_at) {
            if e <= s {
                issues.add(
                    &o.ends_at,
                    &format!("{f}.ends_at"),
                    "must be after `starts_at`",
                );
            }
        }
        let kind = kind(o, &f, coupons, issues);
        if let (Some(id), Some(condition), Some(starts_at), Some(ends_at), Some(kind)) =
            (id, cond, starts_at, ends_at, kind)
        {
            out.push(ConversionOffer {
                id,
                plan: o.plan.get_ref().clone(),
                condition,
                starts_at,
                ends_at,
                kind,
            });
        }
    }
    (issues.found.len() == before).then_some(out)
}

fn instant(issues: &mut Issues, v: &Spanned<String>, field: &str) -> Option<jiff::Timestamp> {
    match v.get_ref().parse::<jiff::Timestamp>() {
        Ok(t) => Some(t),
        Err(_) => {
            issues.add(
                v,
                field,
                "must be an RFC 3339 instant with its offset, such as 2026-12-01T00:00:00+08:00",
            );
            None
        }
    }
}

fn kind(
    o: &OfferFile,
    f: &str,
    coupons: &BTreeSet<String>,
    issues: &mut Issues,
) -> Option<OfferKind> {
    let given = [
        o.trial_days.is_some(),
        o.first_term_price_minor.is_some(),
        o.coupon.is_some(),
    ]
    .iter()
    .filter(|g| **g)
    .count();
    if given != 1 {
        issues.add(
            &o.id,
            f,
            "an offer gives exactly one of `trial_days`, `first_term_price_minor`, `coupon`",
        );
        return None;
    }
    if let Some(d) = &o.trial_days {
        return ranged(issues, d, &format!("{f}.trial_days"), 1, TRIAL_DAYS_MAX)
            .map(|days| OfferKind::Trial { days });
    }
    if let Some(p) = &o.first_term_price_minor {
        return ranged(
            issues,
            p,
            &format!("{f}.first_term_price_minor"),
            0,
            AMOUNT_MINOR_MAX,
        )
        .map(|price_minor| OfferKind::FirstTermPrice { price_minor });
    }
    let c = o.coupon.as_ref()?;
    if !coupons.contains(c.get_ref()) {
        issues.add(
            c,
            &format!("{f}.coupon"),
            &format!("no coupon template `{}` is declared", c.get_ref()),
        );
        return None;
    }
    Some(OfferKind::Coupon {
        template: c.get_ref().clone(),
    })
}
