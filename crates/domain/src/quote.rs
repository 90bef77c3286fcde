//! Checkout pricing: what a cart costs a member, with every adjustment and the benefit or
//! coupon that caused it, and what it would cost with each plan the member does not hold.
//!
//! A quote is a pure function of the cart, the member's holdings (tier, plans, quotas
//! left, coupons, balances) and the programme. The same inputs give the same quote.
//!
//! Adjustments apply in this order, stated in every answer (`ORDER`):
//! 1. `member_price`: the lowest member price of the line's SKU among the benefits held;
//! 2. `percent_off`: the largest percentage among the held benefits that cover the line
//!    (by category or tag, on its days), on the price after step 1, rounded down per line;
//! 3. `coupons`: amount-off and percent-off coupons on the lines they cover, in the order
//!    chosen, each spread over its lines in proportion to their price (largest remainder);
//! 4. `shipping`: waived by a held free-shipping benefit whose minimum the goods reach and
//!    whose quota is not used up, or else by a free-shipping coupon (one that is not
//!    needed is refused as `not_needed`, so that it is not spent);
//! 5. `points`: points spent as money at the programme's rate, at most its share of the order;
//! 6. `stored_value`: prepaid balance, at most what is left to pay.

use std::collections::BTreeMap;

/// The steps, in the order they apply.
pub const ORDER: &[&str] = &[
    "member_price",
    "percent_off",
    "coupons",
    "shipping",
    "points",
    "stored_value",
];

/// Who holds a benefit: members of any listed plan, or of any listed tier.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeldBy {
    pub plans: Vec<String>,
    pub tiers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BenefitKind {
    /// SKU → member unit price.
    MemberPrice(BTreeMap<String, i64>),
    /// A percentage off lines of these categories or tags (all lines when both are empty),
    /// on these days of the month (every day when empty): 88VIP's 5%, member days.
    PercentOff {
        percent: i64,
        categories: Vec<String>,
        tags: Vec<String>,
        days_of_month: Vec<i8>,
    },
    /// Free shipping when the goods reach `minimum_minor`, at most `per_month` times.
    FreeShipping {
        minimum_minor: i64,
        per_month: Option<i64>,
    },
    /// A pack of coupons granted every month (issued by the clock).
    CouponGrant {
        coupon: String,
        count: i64,
    },
    /// Service rights the shop's own systems act on.
    FreeReturns {
        per_month: i64,
    },
    ExtendedReturns {
        days: i64,
    },
    PriorityService,
    /// A functional right: a feature flag such as members-only video.
    Feature(String),
    /// Lines of these SKUs, categories or tags are sold only to holders.
    MembersOnly {
        skus: Vec<String>,
        categories: Vec<String>,
        tags: Vec<String>,
    },
}

impl BenefitKind {
    pub fn name(&self) -> &'static str {
        match self {
            BenefitKind::MemberPrice(_) => "member_price",
            BenefitKind::PercentOff { .. } => "percent_off",
            BenefitKind::FreeShipping { .. } => "free_shipping",
            BenefitKind::CouponGrant { .. } => "coupon_grant",
            BenefitKind::FreeReturns { .. } => "free_returns",
            BenefitKind::ExtendedReturns { .. } => "extended_returns",
            BenefitKind::PriorityService => "priority_service",
            BenefitKind::Feature(_) => "feature",
            BenefitKind::MembersOnly { .. } => "members_only",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Benefit {
    pub id: String,
    pub kind: BenefitKind,
    pub held_by: HeldBy,
    /// What one use costs the shop (a shipment waived, a coupon pack), for the economics.
    pub cost_per_use_minor: i64,
}

/// What a member holds, as benefits see it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holding {
    pub tier: Option<String>,
    pub plans: Vec<String>,
}

impl Benefit {
    pub fn held(&self, h: &Holding) -> bool {
        self.held_by.plans.iter().any(|p| h.plans.contains(p))
            || h.tier
                .as_ref()
                .is_some_and(|t| self.held_by.tiers.contains(t))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CouponKind {
    AmountOff(i64),
    PercentOff {
        percent: i64,
        cap_minor: Option<i64>,
    },
    FreeShipping,
}

impl CouponKind {
    /// The kind as the programme file names it.
    pub fn as_str(&self) -> &'static str {
        match self {
            CouponKind::AmountOff(_) => "amount_off",
            CouponKind::PercentOff { .. } => "percent_off",
            CouponKind::FreeShipping => "free_shipping",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CouponTemplate {
    pub id: String,
    pub kind: CouponKind,
    /// The goods (after member prices and discounts) of the covered lines must reach this.
    pub minimum_minor: i64,
    /// Lines of these categories (all lines when empty).
    pub categories: Vec<String>,
    /// Days an issued coupon stays valid.
    pub valid_days: i64,
    /// At most one coupon of a group per order.
    pub stacking_group: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CartLine {
    pub sku: String,
    pub category: String,
    pub quantity: i64,
    pub unit_price_minor: i64,
    pub tags: Vec<String>,
}

/// A coupon the member chose, as the engine found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChosenCoupon<'a> {
    pub no: i64,
    /// `None` when the member has no such usable coupon; `Some(reason)` refuses it.
    pub refused: Option<&'static str>,
    pub template: Option<&'a CouponTemplate>,
}

/// Points spent as money.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PointsRate {
    pub points: i64,
    pub value_minor: i64,
    pub minimum_points: i64,
    pub max_order_share_percent: i64,
}

#[derive(Debug, Clone)]
pub struct QuoteInput<'a> {
    pub lines: &'a [CartLine],
    pub shipping_minor: i64,
    /// `None` for a shopper who is not a member.
    pub holding: Option<Holding>,
    pub benefits: &'a [Benefit],
    /// Free-shipping uses left this month, by benefit (absent: unlimited).
    pub shipping_uses_left: &'a BTreeMap<String, i64>,
    pub day_of_month: i8,
    pub coupons: Vec<ChosenCoupon<'a>>,
    pub points: i64,
    pub points_rate: Option<PointsRate>,
    pub stored_value_minor: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adjustment {
    pub step: &'static str,
    /// The benefit or coupon that caused it: `benefit:ID` or `coupon:NO`.
    pub source: String,
    /// Taken off the line (positive).
    pub amount_minor: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotedLine {
    pub sku: String,
    pub quantity: i64,
    pub list_minor: i64,
    pub adjustments: Vec<Adjustment>,
    pub net_minor: i64,
    /// Why the line cannot be sold to this shopper (members-only goods).
    pub refused: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedCoupon {
    pub no: i64,
    pub template: String,
    pub amount_minor: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    pub lines: Vec<QuotedLine>,
    pub list_minor: i64,
    pub goods_minor: i64,
    pub shipping_fee_minor: i64,
    pub shipping_minor: i64,
    pub shipping_waived_by: Option<String>,
    pub coupons_applied: Vec<AppliedCoupon>,
    pub coupons_refused: Vec<(i64, String)>,
    pub points_used: i64,
    pub points_value_minor: i64,
    pub stored_value_used_minor: i64,
    pub total_minor: i64,
    /// Benefits this order uses, with their cost: (benefit, cost).
    pub benefits_used: Vec<(String, i64)>,
}

impl Quote {
    /// Whether every line can be sold and every chosen coupon applies.
    pub fn is_payable(&self) -> bool {
        self.lines.iter().all(|l| l.refused.is_none()) && self.coupons_refused.is_empty()
    }
}

fn covers(categories: &[String], tags: &[String], line: &CartLine) -> bool {
    (categories.is_empty() && tags.is_empty())
        || categories.contains(&line.category)
        || line.tags.iter().any(|t| tags.contains(t))
}

/// Spreads `amount` over `weights` in proportion, the remainder to the largest fractional
/// parts (then the first), so the shares add up exactly.
fn spread(amount: i64, weights: &[i64]) -> Vec<i64> {
    let total: i128 = weights.iter().map(|w| i128::from(*w)).sum();
    if total == 0 {
        return vec![0; weights.len()];
    }
    let mut shares: Vec<i64> = Vec::with_capacity(weights.len());
    let mut rest: Vec<(i128, usize)> = Vec::with_capacity(weights.len());
    for (i, w) in weights.iter().enumerate() {
        let n = i128::from(amount) * i128::from(*w);
        shares.push(i64::try_from(n / total).unwrap_or(0));
        rest.push((n % total, i));
    }
    let mut left = amount - shares.iter().sum::<i64>();
    rest.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, i) in rest {
        if left <= 0 {
            break;
        }
        shares[i] += 1;
        left -= 1;
    }
    shares
}

/// Prices a cart. Amounts are checked by the caller to fit (each line at most 10^12 ×
/// 10^4); sums are taken in i128 and the results clamped at zero.
pub fn quote(input: &QuoteInput<'_>) -> Quote {
    let holding = input.holding.as_ref();
    let held: Vec<&Benefit> = match holding {
        Some(h) => input.benefits.iter().filter(|b| b.held(h)).collect(),
        None => Vec::new(),
    };
    let mut used: BTreeMap<String, i64> = BTreeMap::new();
    let mut lines = Vec::with_capacity(input.lines.len());
    for line in input.lines {
        let list = line.unit_price_minor.saturating_mul(line.quantity);
        let mut q = QuotedLine {
            sku: line.sku.clone(),
            quantity: line.quantity,
            list_minor: list,
            adjustments: Vec::new(),
            net_minor: list,
            refused: None,
        };
        // Access: members-only goods for holders of a members-only benefit.
        for b in input.benefits {
            if let BenefitKind::MembersOnly {
                skus,
                categories,
                tags,
            } = &b.kind
            {
                let restricted = skus.contains(&line.sku)
                    || categories.contains(&line.category)
                    || line.tags.iter().any(|t| tags.contains(t));
                if restricted && !holding.is_some_and(|h| b.held(h)) {
                    q.refused = Some(format!("members only: needs `{}`", b.id));
                }
            }
        }
        // 1. The lowest member price.
        let member_price = held
            .iter()
            .filter_map(|b| match &b.kind {
                BenefitKind::MemberPrice(prices) => prices.get(&line.sku).map(|p| (*p, &b.id)),
                _ => None,
            })
            .filter(|(p, _)| *p < line.unit_price_minor)
            .min();
        if let Some((price, id)) = member_price {
            let off = (line.unit_price_minor - price).saturating_mul(line.quantity);
            q.adjustments.push(Adjustment {
                step: "member_price",
                source: format!("benefit:{id}"),
                amount_minor: off,
            });
            q.net_minor -= off;
            *used.entry(id.clone()).or_default() += 1;
        }
        // 2. The largest percentage off.
        let percent = held
            .iter()
            .filter_map(|b| match &b.kind {
                BenefitKind::PercentOff {
                    percent,
                    categories,
                    tags,
                    days_of_month,
                } if covers(categories, tags, line)
                    && (days_of_month.is_empty()
                        || days_of_month.contains(&input.day_of_month)) =>
                {
                    Some((*percent, &b.id))
                }
                _ => None,
            })
            .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(a.1)));
        if let Some((percent, id)) = percent {
            let off =
                i64::try_from(i128::from(q.net_minor) * i128::from(percent) / 100).unwrap_or(0);
            if off > 0 {
                q.adjustments.push(Adjustment {
                    step: "percent_off",
                    source: format!("benefit:{id}"),
                    amount_minor: off,
                });
                q.net_minor -= off;
                *used.entry(id.clone()).or_default() += 1;
            }
        }
        lines.push(q);
    }

    // 3. Coupons.
    let mut coupons_applied = Vec::new();
    let mut coupons_refused = Vec::new();
    let mut groups: Vec<&str> = Vec::new();
    let mut free_shipping_coupon = None;
    for c in &input.coupons {
        let Some(t) = c.template.filter(|_| c.refused.is_none()) else {
            coupons_refused.push((c.no, c.refused.unwrap_or("not_found").to_owned()));
            continue;
        };
        if groups.contains(&t.stacking_group.as_str()) {
            coupons_refused.push((c.no, "stacking_group".to_owned()));
            continue;
        }
        let covered: Vec<usize> = input
            .lines
            .iter()
            .enumerate()
            .filter(|(i, l)| {
                lines[*i].refused.is_none()
                    && (t.categories.is_empty() || t.categories.contains(&l.category))
            })
            .map(|(i, _)| i)
            .collect();
        let base: i64 = covered.iter().map(|i| lines[*i].net_minor).sum();
        if covered.is_empty() || base < t.minimum_minor {
            coupons_refused.push((c.no, "minimum_not_reached".to_owned()));
            continue;
        }
        groups.push(&t.stacking_group);
        let amount = match t.kind {
            CouponKind::AmountOff(a) => a.min(base),
            CouponKind::PercentOff { percent, cap_minor } => {
                let v = i64::try_from(i128::from(base) * i128::from(percent) / 100).unwrap_or(0);
                cap_minor.map_or(v, |cap| v.min(cap))
            }
            CouponKind::FreeShipping => {
                // Applied, or refused as not needed, at the shipping step.
                free_shipping_coupon = Some((c.no, t.id.clone()));
                continue;
            }
        };
        if amount > 0 {
            let weights: Vec<i64> = covered.iter().map(|i| lines[*i].net_minor).collect();
            for (i, share) in covered.iter().zip(spread(amount, &weights)) {
                if share > 0 {
                    lines[*i].adjustments.push(Adjustment {
                        step: "coupons",
                        source: format!("coupon:{}", c.no),
                        amount_minor: share,
                    });
                    lines[*i].net_minor -= share;
                }
            }
        }
        coupons_applied.push(AppliedCoupon {
            no: c.no,
            template: t.id.clone(),
            amount_minor: amount,
        });
    }

    let sellable = lines.iter().filter(|l| l.refused.is_none());
    let list_minor: i64 = lines
        .iter()
        .filter(|l| l.refused.is_none())
        .map(|l| l.list_minor)
        .sum();
    let goods: i64 = sellable.map(|l| l.net_minor).sum();

    // 4. Shipping.
    let fee = input.shipping_minor;
    let waiver = held
        .iter()
        .filter_map(|b| match &b.kind {
            BenefitKind::FreeShipping { minimum_minor, .. }
                if goods >= *minimum_minor
                    && input
                        .shipping_uses_left
                        .get(&b.id)
                        .is_none_or(|left| *left > 0) =>
            {
                Some(b.id.clone())
            }
            _ => None,
        })
        .next();
    let shipping_waived_by = if fee == 0 {
        None
    } else if let Some(id) = waiver {
        *used.entry(id.clone()).or_default() += 1;
        Some(format!("benefit:{id}"))
    } else if let Some((no, template)) = &free_shipping_coupon {
        coupons_applied.push(AppliedCoupon {
            no: *no,
            template: template.clone(),
            amount_minor: fee,
        });
        Some(format!("coupon:{no}"))
    } else {
        None
    };
    if let Some((no, _)) = free_shipping_coupon {
        if shipping_waived_by != Some(format!("coupon:{no}")) {
            // A free-shipping coupon is not spent on an order whose shipping is free anyway.
            coupons_refused.push((no, "not_needed".to_owned()));
        }
    }
    let shipping = if shipping_waived_by.is_some() { 0 } else { fee };

    // 5. Points, 6. stored value.
    let due = goods + shipping;
    let (points_used, points_value) = match input.points_rate {
        Some(rate) if input.points > 0 => {
            // In 128 bits: no product of a balance and a rate can overflow here.
            let (per, worth) = (i128::from(rate.points.max(1)), i128::from(rate.value_minor));
            let max_value = i128::from(goods) * i128::from(rate.max_order_share_percent) / 100;
            let value = |p: i128| p * worth / per;
            // Whole steps of the rate only: points that buy no whole minor unit are kept.
            let mut p = i128::from(input.points);
            if value(p) > max_value && worth > 0 {
                p = max_value * per / worth;
            }
            p -= p % per;
            // Both are at most what was asked for and what the goods allow: they fit.
            let (p, v) = (
                i64::try_from(p).unwrap_or(0),
                i64::try_from(value(p)).unwrap_or(0),
            );
            if p < rate.minimum_points || v == 0 && worth > 0 {
                (0, 0)
            } else {
                (p, v)
            }
        }
        _ => (0, 0),
    };
    let stored = input.stored_value_minor.min(due - points_value).max(0);
    let benefits_used = used
        .into_iter()
        .map(|(id, uses)| {
            let cost = input
                .benefits
                .iter()
                .find(|b| b.id == id)
                .map_or(0, |b| b.cost_per_use_minor.saturating_mul(uses));
            (id, cost)
        })
        .collect();
    Quote {
        lines,
        list_minor,
        goods_minor: goods,
        shipping_fee_minor: fee,
        shipping_minor: shipping,
        shipping_waived_by,
        coupons_applied,
        coupons_refused,
        points_used,
        points_value_minor: points_value,
        stored_value_used_minor: stored,
        total_minor: (due - points_value - stored).max(0),
        benefits_used,
    }
}

#[cfg(test)]
mod tests;
