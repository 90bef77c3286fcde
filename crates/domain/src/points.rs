//! The `[points]` section of a programme and the arithmetic of earning: how many points an
//! order or an activity earns, when a lot becomes available, when it expires, and how much
//! a refund takes back. Everything here is pure: the instant, the member and what the
//! member already earned today come in as arguments.
//!
//! Rounding happens at one place: `Rounding::apply`, once per order, on the exact sum of
//! the order's lines (each line's points are kept as an exact fraction until then).

use crate::event::{ActivityKind, OrderPaid};
use crate::rule::Condition;
use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp, ToSpan};
use serde_json::Value;

/// Largest number of points any one rule, cap, reward or adjustment may name.
pub const POINTS_MAX: i64 = 1_000_000_000_000;
/// Most points a member may hold (pending and available together), and most a member may
/// owe: a lot that would pass it is refused, a reversal that would pass it forgives the
/// rest. Sums over many members then stay far from overflowing 64 bits.
pub const HELD_MAX: i64 = POINTS_MAX * 1000;
/// Largest multiplier, in percent (×100).
pub const MULTIPLIER_PERCENT_MAX: u32 = 10_000;

/// The points rules of a programme.
#[derive(Debug, Clone)]
pub struct PointsConfig {
    /// `earn_points` points per `earn_per_minor` minor units paid.
    pub earn_points: i64,
    pub earn_per_minor: i64,
    pub rounding: Rounding,
    pub stacking: Stacking,
    pub return_window_days: i64,
    pub refund_policy: RefundPolicy,
    pub expiry: ExpiryPolicy,
    pub expiry_overrides: Vec<ExpiryOverride>,
    pub cap_per_order: Option<i64>,
    pub cap_per_day: Option<i64>,
    pub cap_per_month: Option<i64>,
    pub multipliers: Vec<Multiplier>,
    pub bonuses: Vec<Bonus>,
    pub redemption: Option<RedemptionRule>,
    pub rewards: Vec<Reward>,
}

/// How the exact points of an order become a whole number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rounding {
    Floor,
    HalfUp,
    Ceil,
}

impl Rounding {
    /// `numerator / denominator` rounded; both non-negative, denominator positive.
    pub fn apply(self, numerator: i128, denominator: i128) -> i128 {
        debug_assert!(numerator >= 0 && denominator > 0);
        match self {
            Rounding::Floor => numerator / denominator,
            Rounding::Ceil => (numerator + denominator - 1) / denominator,
            Rounding::HalfUp => (2 * numerator + denominator) / (2 * denominator),
        }
    }
}

/// How several multipliers that apply to one line combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stacking {
    /// Their extra percentages add up: ×2 and ×1.2 give ×2.2.
    Add,
    /// Only the highest applies: ×2 and ×1.2 give ×2.
    Highest,
}

/// What happens when a refund takes back points that were already spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundPolicy {
    /// Only what is still pending on the order's own lots is taken back.
    OnlyPending,
    /// The order's own lots, then the member's other available points, never below zero.
    WithinBalance,
    /// As `WithinBalance`, and the rest becomes a debt repaid by the next earnings.
    AllowNegative,
}

impl RefundPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            RefundPolicy::OnlyPending => "only_pending",
            RefundPolicy::WithinBalance => "within_balance",
            RefundPolicy::AllowNegative => "allow_negative",
        }
    }
}

/// When the points of a lot expire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryPolicy {
    Never,
    /// Each lot expires this long after it was earned.
    RollingDays(i64),
    RollingMonths(i64),
    /// At the end of the Nth calendar year after the year of earning (0: the same year).
    EndOfYear {
        years_after: i64,
    },
    /// Every point expires after this many months without earning or spending.
    Inactivity {
        months: i64,
    },
}

impl ExpiryPolicy {
    pub fn describe(self) -> String {
        match self {
            ExpiryPolicy::Never => "never".into(),
            ExpiryPolicy::RollingDays(d) => format!("{d} days after earning"),
            ExpiryPolicy::RollingMonths(m) => format!("{m} months after earning"),
            ExpiryPolicy::EndOfYear { years_after: 0 } => {
                "at the end of the calendar year of earning".into()
            }
            ExpiryPolicy::EndOfYear { years_after } => {
                format!("at the end of the calendar year {years_after} year(s) after earning")
            }
            ExpiryPolicy::Inactivity { months } => {
                format!("all points after {months} months without activity")
            }
        }
    }

    /// The expiry instant of a lot earned at `earned_at`, for the per-lot policies.
    /// `Never` and `Inactivity` give `None`: inactivity is judged per member, not per lot.
    pub fn lot_expiry(self, earned_at: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let zoned = earned_at.to_zoned(tz.clone());
        match self {
            ExpiryPolicy::Never | ExpiryPolicy::Inactivity { .. } => None,
            ExpiryPolicy::RollingDays(d) => zoned.checked_add(d.days()).ok().map(|z| z.timestamp()),
            ExpiryPolicy::RollingMonths(m) => {
                zoned.checked_add(m.months()).ok().map(|z| z.timestamp())
            }
            ExpiryPolicy::EndOfYear { years_after } => {
                let year = i64::from(zoned.year()) + years_after + 1;
                let year = i16::try_from(year).ok()?;
                Date::new(year, 1, 1)
                    .ok()?
                    .to_zoned(tz.clone())
                    .ok()
                    .map(|z| z.timestamp())
            }
        }
    }

    /// The instant at which every point of a member inactive since `last_activity` expires.
    pub fn inactivity_deadline(self, last_activity: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        match self {
            ExpiryPolicy::Inactivity { months } => last_activity
                .to_zoned(tz.clone())
                .checked_add(months.months())
                .ok()
                .map(|z| z.timestamp()),
            _ => None,
        }
    }
}

/// A different expiry policy for the members a condition selects (Starbucks: Gold stars
/// never expire). Judged when the lot is earned.
#[derive(Debug, Clone)]
pub struct ExpiryOverride {
    pub name: String,
    pub condition: Condition,
    pub expiry: ExpiryPolicy,
}

/// Extra points on lines that match: a tier, a category, a member day.
#[derive(Debug, Clone)]
pub struct Multiplier {
    pub name: String,
    /// 200 doubles the base rate.
    pub percent: u32,
    pub categories: Vec<String>,
    pub tags: Vec<String>,
    pub weekdays: Vec<Weekday>,
    pub days_of_month: Vec<i8>,
    /// Inclusive civil dates in the programme's time zone.
    pub from: Option<Date>,
    pub until: Option<Date>,
    /// Over `member`, `event` and `line`.
    pub condition: Option<Condition>,
}

/// A fixed number of points for an event.
#[derive(Debug, Clone)]
pub struct Bonus {
    pub name: String,
    pub on: BonusTrigger,
    pub points: i64,
    /// Over `member` and `event`.
    pub condition: Option<Condition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BonusTrigger {
    /// Every paid order.
    Order,
    /// The member's first paid order.
    FirstOrder,
    /// An activity of this name (built in or declared).
    Activity(String),
}

/// Points used as money at checkout: `points` points are worth `value_minor`.
#[derive(Debug, Clone)]
pub struct RedemptionRule {
    pub points: i64,
    pub value_minor: i64,
    pub minimum_points: i64,
    pub max_order_share_percent: u32,
}

impl RedemptionRule {
    /// The money value of `points`, rounded down.
    pub fn value_of(&self, points: i64) -> i64 {
        let v = i128::from(points) * i128::from(self.value_minor) / i128::from(self.points);
        i64::try_from(v).unwrap_or(i64::MAX)
    }
}

/// A catalogue reward bought with points.
#[derive(Debug, Clone)]
pub struct Reward {
    pub id: String,
    pub name: String,
    pub points: i64,
    /// How many can ever be redeemed; `None` is unlimited.
    pub stock: Option<i64>,
}

impl PointsConfig {
    pub fn reward(&self, id: &str) -> Option<&Reward> {
        self.rewards.iter().find(|r| r.id == id)
    }

    /// The expiry of a lot earned at `earned_at` by `member`: the first matching override,
    /// else the programme's policy.
    pub fn lot_expiry(
        &self,
        earned_at: Timestamp,
        tz: &TimeZone,
        member: &Value,
    ) -> Option<Timestamp> {
        self.policy_for(member).lot_expiry(earned_at, tz)
    }

    /// The expiry policy that applies to `member` now.
    pub fn policy_for(&self, member: &Value) -> ExpiryPolicy {
        self.expiry_overrides
            .iter()
            .find(|o| o.condition.evaluate(&[("member", member)]).unwrap_or(false))
            .map_or(self.expiry, |o| o.expiry)
    }

    /// When a lot earned at `earned_at` leaves pending: after the return window.
    pub fn available_at(&self, earned_at: Timestamp) -> Timestamp {
        earned_at
            .checked_add(Span::new().hours(24 * self.return_window_days))
            .unwrap_or(Timestamp::MAX)
    }
}

/// The paid amount of one order line: its share of what the member paid for goods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinePaid {
    pub sku: String,
    pub quantity: u32,
    pub paid_minor: i64,
}

/// What the member already earned from events in the day and month of the new event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EarnedSoFar {
    pub day: i64,
    pub month: i64,
}

/// `points` cut to the caps: per order, then what is left of the day's and the month's
/// (`earned` is what was earned there already). Points and score caps both cut this way.
pub fn cut_to_caps(
    points: i64,
    per_order: Option<i64>,
    per_day: Option<i64>,
    per_month: Option<i64>,
    earned: EarnedSoFar,
) -> i64 {
    let mut points = points;
    for cap in [
        per_order,
        per_day.map(|c| c - earned.day),
        per_month.map(|c| c - earned.month),
    ]
    .into_iter()
    .flatten()
    {
        points = points.min(cap.max(0));
    }
    points
}

/// The start of the day and of the month (in `tz`) that contain `at`, and their ends.
pub fn day_and_month(
    at: Timestamp,
    tz: &TimeZone,
) -> ((Timestamp, Timestamp), (Timestamp, Timestamp)) {
    let zoned = at.to_zoned(tz.clone());
    let date = zoned.date();
    let start = |d: Date| {
        d.to_zoned(tz.clone())
            .map(|z| z.timestamp())
            .unwrap_or(Timestamp::MIN)
    };
    let day = (
        start(date),
        date.tomorrow().map(start).unwrap_or(Timestamp::MAX),
    );
    let first = date.first_of_month();
    let next = first
        .checked_add(1.month())
        .map(start)
        .unwrap_or(Timestamp::MAX);
    (day, (start(first), next))
}

/// Splits the goods part of an order's total over its lines in proportion to their list
/// value; the remainder of the integer division goes to the lines with the largest
/// fractional parts (then the first), so the shares add up exactly.
pub fn allocate_paid(order: &OrderPaid) -> (i64, Vec<LinePaid>) {
    let list: Vec<i128> = order
        .lines()
        .iter()
        .map(|l| i128::from(l.amount().get()))
        .collect();
    let list_total: i128 = list.iter().sum();
    let goods =
        (i128::from(order.total.get()) - i128::from(order.shipping.get())).clamp(0, list_total);
    let mut shares: Vec<i128> = Vec::with_capacity(list.len());
    let mut remainders: Vec<(i128, usize)> = Vec::with_capacity(list.len());
    for (i, value) in list.iter().enumerate() {
        if list_total == 0 {
            shares.push(0);
            remainders.push((0, i));
        } else {
            shares.push(goods * value / list_total);
            remainders.push((goods * value % list_total, i));
        }
    }
    let mut left = goods - shares.iter().sum::<i128>();
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, i) in remainders {
        if left == 0 {
            break;
        }
        shares[i] += 1;
        left -= 1;
    }
    let lines = order
        .lines()
        .iter()
        .zip(shares)
        .map(|(l, s)| LinePaid {
            sku: l.sku.as_str().to_owned(),
            quantity: l.quantity(),
            // A share is at most the goods part, which fits in i64.
            paid_minor: i64::try_from(s).unwrap_or(i64::MAX),
        })
        .collect();
    (i64::try_from(goods).unwrap_or(i64::MAX), lines)
}

/// The context of one event for the rules: the member, the event, when it happened.
pub struct EarnContext<'a> {
    pub tz: &'a TimeZone,
    pub occurred_at: Timestamp,
    pub member: &'a Value,
    pub event: &'a Value,
    pub first_order: bool,
    pub earned: EarnedSoFar,
}

impl PointsConfig {
    /// The points an order earns; `paid` is its lines' paid shares (`allocate_paid`).
    pub fn earn_order(&self, order: &OrderPaid, paid: &[LinePaid], ctx: &EarnContext<'_>) -> i64 {
        let date = ctx.occurred_at.to_zoned(ctx.tz.clone()).date();
        // Each line's points are `paid × earn_points × percent / (earn_per_minor × 100)`;
        // summed exactly over the common denominator and rounded once.
        let mut numerator: i128 = 0;
        // A condition that does not read `line` has one answer for the whole order.
        let mut order_level: Vec<Option<bool>> = vec![None; self.multipliers.len()];
        for (line, paid) in order.lines().iter().zip(paid) {
            let mut line_value: Option<Value> = None;
            let mut percent_extra: u32 = 0;
            let mut highest: u32 = 100;
            for (k, m) in self.multipliers.iter().enumerate() {
                if !m.applies_on(date)
                    || (!m.categories.is_empty()
                        && !m.categories.iter().any(|c| c == line.category.as_str()))
                    || (!m.tags.is_empty()
                        && !line
                            .tags
                            .iter()
                            .any(|t| m.tags.iter().any(|mt| mt == t.as_str())))
                {
                    continue;
                }
                if let Some(condition) = &m.condition {
                    let holds = match order_level[k] {
                        Some(known) => known,
                        None if !condition.uses("line") => {
                            let vars = [("member", ctx.member), ("event", ctx.event)];
                            let holds = condition.evaluate(&vars).unwrap_or(false);
                            order_level[k] = Some(holds);
                            holds
                        }
                        None => {
                            let value = line_value.get_or_insert_with(|| line_json(line));
                            let vars = [
                                ("member", ctx.member),
                                ("event", ctx.event),
                                ("line", &*value),
                            ];
                            condition.evaluate(&vars).unwrap_or(false)
                        }
                    };
                    if !holds {
                        continue;
                    }
                }
                percent_extra = percent_extra.saturating_add(m.percent.saturating_sub(100));
                highest = highest.max(m.percent);
            }
            let percent = match self.stacking {
                Stacking::Add => 100 + percent_extra,
                Stacking::Highest => highest,
            };
            numerator +=
                i128::from(paid.paid_minor) * i128::from(self.earn_points) * i128::from(percent);
        }
        let denominator = i128::from(self.earn_per_minor) * 100;
        let base_points = clamp_points(self.rounding.apply(numerator, denominator));
        let mut bonus_points: i64 = 0;
        for b in &self.bonuses {
            let fires = match &b.on {
                BonusTrigger::Order => true,
                BonusTrigger::FirstOrder => ctx.first_order,
                BonusTrigger::Activity(_) => false,
            };
            if fires && b.condition_holds(ctx) {
                bonus_points = bonus_points.saturating_add(b.points);
            }
        }
        let earned = base_points.saturating_add(bonus_points).min(POINTS_MAX);
        cut_to_caps(
            earned,
            self.cap_per_order,
            self.cap_per_day,
            self.cap_per_month,
            ctx.earned,
        )
    }

    /// The points an activity earns (its bonuses), after the day and month caps.
    pub fn earn_activity(&self, activity: &ActivityKind, ctx: &EarnContext<'_>) -> i64 {
        let points = self
            .bonuses
            .iter()
            .filter(|b| {
                matches!(&b.on, BonusTrigger::Activity(name) if name == activity.name())
                    && b.condition_holds(ctx)
            })
            .fold(0i64, |sum, b| sum.saturating_add(b.points));
        cut_to_caps(
            points.min(POINTS_MAX),
            None,
            self.cap_per_day,
            self.cap_per_month,
            ctx.earned,
        )
    }

    /// Whether any cap needs what the member earned in the day and month.
    pub fn has_period_caps(&self) -> bool {
        self.cap_per_day.is_some() || self.cap_per_month.is_some()
    }

    /// Whether any rule has a CEL condition (which needs the member and event as values).
    pub fn uses_conditions(&self) -> bool {
        self.multipliers.iter().any(|m| m.condition.is_some())
            || self.bonuses.iter().any(|b| b.condition.is_some())
            || !self.expiry_overrides.is_empty()
    }

    /// Whether an activity of this name can earn anything.
    pub fn rewards_activity(&self, name: &str) -> bool {
        self.bonuses
            .iter()
            .any(|b| matches!(&b.on, BonusTrigger::Activity(a) if a == name))
    }

    /// Whether any rule needs to know if an order is the member's first.
    pub fn has_first_order_bonus(&self) -> bool {
        self.bonuses
            .iter()
            .any(|b| b.on == BonusTrigger::FirstOrder)
    }
}

impl Multiplier {
    fn applies_on(&self, date: Date) -> bool {
        (self.weekdays.is_empty() || self.weekdays.contains(&date.weekday()))
            && (self.days_of_month.is_empty() || self.days_of_month.contains(&date.day()))
            && self.from.is_none_or(|f| date >= f)
            && self.until.is_none_or(|u| date <= u)
    }
}

impl Bonus {
    fn condition_holds(&self, ctx: &EarnContext<'_>) -> bool {
        self.condition.as_ref().is_none_or(|c| {
            c.evaluate(&[("member", ctx.member), ("event", ctx.event)])
                .unwrap_or(false)
        })
    }
}

fn line_json(line: &crate::event::OrderLine) -> Value {
    serde_json::json!({
        "sku": line.sku.as_str(),
        "category": line.category.as_str(),
        "quantity": line.quantity(),
        "unit_price_minor": line.unit_price.get(),
        "amount_minor": line.amount().get(),
        "tags": line.tags.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
    })
}

fn clamp_points(v: i128) -> i64 {
    i64::try_from(v.clamp(0, i128::from(POINTS_MAX))).unwrap_or(POINTS_MAX)
}

/// How much of an order's points a refund takes back, so that after all its refunds the
/// member keeps exactly `earned × (1 − refunded / paid)`, rounded down in their favour
/// at each step and exact when the order is refunded in full.
pub fn reversal_target(earned: i64, paid_minor: i64, refunded_minor: i64) -> i64 {
    if paid_minor <= 0 || refunded_minor >= paid_minor {
        return earned;
    }
    let v = i128::from(earned) * i128::from(refunded_minor.max(0)) / i128::from(paid_minor);
    i64::try_from(v).unwrap_or(earned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::OrderLine;
    use crate::ids::{Category, OrderId, Sku, Tag};
    use crate::money::AmountMinor;

    fn order(lines: &[(i64, u32, &str)], shipping: i64, total: i64) -> OrderPaid {
        let lines = lines
            .iter()
            .enumerate()
            .map(|(i, (price, qty, cat))| {
                OrderLine::new(
                    Sku::parse(format!("s{i}")).unwrap(),
                    Category::parse(*cat).unwrap(),
                    *qty,
                    AmountMinor::parse(*price).unwrap(),
                    vec![Tag::parse("t").unwrap()],
                )
                .unwrap()
            })
            .collect();
        OrderPaid::new(
            OrderId::parse("o").unwrap(),
            lines,
            AmountMinor::parse(shipping).unwrap(),
            AmountMinor::parse(total).unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn allocation_adds_up_exactly() {
        // (lines, shipping, total) -> goods, shares
        type Case<'a> = (&'a [(i64, u32, &'a str)], i64, i64, i64, &'a [i64]);
        let cases: &[Case] = &[
            (&[(1000, 2, "a")], 600, 2600, 2000, &[2000]),
            (
                &[(1000, 1, "a"), (2000, 1, "b")],
                0,
                3000,
                3000,
                &[1000, 2000],
            ),
            // A shop discount of 1.00 spread over three equal lines: 33, 33, 34 would be
            // wrong order; the remainder goes to the first largest fraction.
            (
                &[(100, 1, "a"), (100, 1, "a"), (100, 1, "a")],
                0,
                200,
                200,
                &[67, 67, 66],
            ),
            // Taxes do not earn: goods are capped at the list value.
            (&[(1000, 1, "a")], 0, 1300, 1000, &[1000]),
            // Shipping larger than the total leaves nothing for goods.
            (&[(1000, 1, "a")], 600, 500, 0, &[0]),
            (&[(0, 1, "a")], 0, 0, 0, &[0]),
        ];
        for (lines, shipping, total, goods, shares) in cases {
            let (g, l) = allocate_paid(&order(lines, *shipping, *total));
            assert_eq!(g, *goods, "{lines:?}");
            assert_eq!(
                l.iter().map(|x| x.paid_minor).collect::<Vec<_>>(),
                *shares,
                "{lines:?}"
            );
        }
    }

    #[test]
    fn rounding_modes() {
        let cases = [
            (Rounding::Floor, 7, 2, 3),
            (Rounding::Ceil, 7, 2, 4),
            (Rounding::HalfUp, 7, 2, 4),
            (Rounding::HalfUp, 5, 4, 1),
            (Rounding::Floor, 0, 3, 0),
            (Rounding::Ceil, 6, 3, 2),
        ];
        for (r, n, d, want) in cases {
            assert_eq!(r.apply(n, d), want, "{r:?} {n}/{d}");
        }
    }

    #[test]
    fn reversal_is_pro_rata_and_exact_in_full() {
        let cases = [
            (100, 1000, 0, 0),
            (100, 1000, 333, 33),
            (100, 1000, 1000, 100),
            (100, 1000, 5000, 100),
            (7, 3, 1, 2),
            (50, 0, 0, 50),
        ];
        for (earned, paid, refunded, want) in cases {
            assert_eq!(
                reversal_target(earned, paid, refunded),
                want,
                "{earned} {paid} {refunded}"
            );
        }
    }

    #[test]
    fn expiry_policies() {
        let tz = TimeZone::get("Asia/Shanghai").unwrap();
        let earned: Timestamp = "2026-03-15T10:00:00+08:00".parse().unwrap();
        let at = |s: &str| Some(s.parse::<Timestamp>().unwrap());
        let cases = [
            (ExpiryPolicy::Never, None),
            (
                ExpiryPolicy::RollingDays(30),
                at("2026-04-14T10:00:00+08:00"),
            ),
            (
                ExpiryPolicy::RollingMonths(12),
                at("2027-03-15T10:00:00+08:00"),
            ),
            (
                ExpiryPolicy::EndOfYear { years_after: 1 },
                at("2028-01-01T00:00:00+08:00"),
            ),
            (
                ExpiryPolicy::EndOfYear { years_after: 0 },
                at("2027-01-01T00:00:00+08:00"),
            ),
            (ExpiryPolicy::Inactivity { months: 18 }, None),
        ];
        for (policy, want) in cases {
            assert_eq!(policy.lot_expiry(earned, &tz), want, "{policy:?}");
        }
        assert_eq!(
            ExpiryPolicy::Inactivity { months: 18 }.inactivity_deadline(earned, &tz),
            at("2027-09-15T10:00:00+08:00")
        );
    }
}
