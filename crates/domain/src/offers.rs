//! Conversion offers: a plan offered to a segment of members, with a trial, a first-term
//! price or a coupon, in a window. Pure decisions: whether an offer is open, whom it
//! targets, and the member statistics its condition reads.

use crate::rule::Condition;
use jiff::Timestamp;
use serde_json::{json, Value};

/// Variables an offer's condition may read.
pub const OFFER_VARIABLES: &[&str] = &["member", "stats"];

/// One `[[offers]]` entry.
#[derive(Debug, Clone)]
pub struct ConversionOffer {
    pub id: String,
    /// The plan offered.
    pub plan: String,
    /// Whom it targets; every member when absent.
    pub condition: Option<Condition>,
    /// The window: open from `starts_at` (inclusive) to `ends_at` (exclusive).
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    pub kind: OfferKind,
}

/// What the offer gives a member who takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OfferKind {
    /// A trial of the plan for this many days (in place of the plan's own trial).
    Trial { days: i64 },
    /// The first paid term at this price.
    FirstTermPrice { price_minor: i64 },
    /// A coupon of this template, claimed by accepting the offer.
    Coupon { template: String },
}

impl OfferKind {
    pub fn name(&self) -> &'static str {
        match self {
            OfferKind::Trial { .. } => "trial",
            OfferKind::FirstTermPrice { .. } => "first_term_price",
            OfferKind::Coupon { .. } => "coupon",
        }
    }
}

/// Why a member cannot take an offer now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OfferRefusal {
    /// Before `starts_at` or from `ends_at` on.
    NotOpen,
    /// The member may not take it: not in the offer's segment, or they had what it gives
    /// (the plan's trial, a paid term of the plan).
    NotEligible(String),
    /// The member took it before: an offer is taken once.
    AlreadyTaken,
    /// The offer is for another plan, or of another kind than the request.
    Mismatch(String),
}

impl ConversionOffer {
    pub fn is_open(&self, now: Timestamp) -> bool {
        self.starts_at <= now && now < self.ends_at
    }

    /// Whether the member is in the offer's segment. A condition that cannot be evaluated
    /// (a missing attribute, a member who never ordered compared by
    /// `days_since_last_order`) does not hold.
    pub fn targets(&self, member: &Value, stats: &MemberStats) -> bool {
        let stats = stats.to_value();
        self.condition
            .as_ref()
            .is_none_or(|c| c.evaluate(&[("member", member), ("stats", &stats)]) == Ok(true))
    }

    /// Whether the member may take the offer now; the first reason they may not.
    pub fn refusal(
        &self,
        now: Timestamp,
        member: &Value,
        stats: &MemberStats,
        history: History,
    ) -> Option<OfferRefusal> {
        if history.accepted {
            return Some(OfferRefusal::AlreadyTaken);
        }
        if !self.is_open(now) {
            return Some(OfferRefusal::NotOpen);
        }
        match self.kind {
            OfferKind::Trial { .. } if history.trialed => {
                return Some(OfferRefusal::NotEligible(format!(
                    "the member has had the trial of `{}`",
                    self.plan
                )))
            }
            OfferKind::FirstTermPrice { .. } if history.paid => {
                return Some(OfferRefusal::NotEligible(format!(
                    "the member paid for `{}` before: the offer prices a first term",
                    self.plan
                )))
            }
            _ => {}
        }
        if !self.targets(member, stats) {
            return Some(OfferRefusal::NotEligible(
                "the member is not in the offer's segment".to_owned(),
            ));
        }
        None
    }

    /// This offer's history for a member: from the offers they took and the plans they
    /// trialed and paid for.
    pub fn history_of(&self, accepted: &[String], trialed: &[String], paid: &[String]) -> History {
        History {
            accepted: accepted.contains(&self.id),
            trialed: trialed.contains(&self.plan),
            paid: paid.contains(&self.plan),
        }
    }
}

/// What a member did before with an offer and its plan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct History {
    /// They took this offer.
    pub accepted: bool,
    /// They had the plan's trial.
    pub trialed: bool,
    /// They paid for a term of the plan.
    pub paid: bool,
}

/// The price of a first term taken with a first-term-price offer `(id, price)`: the
/// offer's, unless the member's own price is lower (an offer never charges more than the
/// member would pay without it). Refused when it would not be the member's first paid
/// term of the plan.
pub fn offered_price(
    plan: &crate::plans::Plan,
    member: &Value,
    first_term: bool,
    (id, price_minor): (&str, i64),
) -> Result<(i64, crate::plans::PriceBasis), OfferRefusal> {
    if !first_term {
        return Err(OfferRefusal::NotEligible(format!(
            "the member paid for `{}` before: offer `{id}` prices a first term",
            plan.id
        )));
    }
    let own = plan.price(member, true);
    Ok(if own.0 < price_minor {
        own
    } else {
        (price_minor, crate::plans::PriceBasis::Offer(id.to_owned()))
    })
}

/// An offer's conversion: members who took it over members shown it, in basis points
/// (1/100 of a percent), rounded down; 0 while nobody was shown it.
pub fn conversion_bp(accepted_members: i64, exposed_members: i64) -> i64 {
    if exposed_members <= 0 {
        return 0;
    }
    accepted_members.saturating_mul(10_000) / exposed_members
}

/// What a member did lately, as an offer's condition reads it (`stats`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberStats {
    pub orders_30d: i64,
    pub orders_90d: i64,
    pub orders_365d: i64,
    pub spend_30d_minor: i64,
    pub spend_90d_minor: i64,
    pub spend_365d_minor: i64,
    /// Whole days since the last paid order; `None` when the member never ordered.
    pub days_since_last_order: Option<i64>,
    /// Plans the member holds now.
    pub plans: Vec<String>,
    /// Plans the member ever held (now included).
    pub plans_ever: Vec<String>,
}

/// The longest window the statistics count, in days.
pub const STATS_DAYS_MAX: i64 = 365;

impl MemberStats {
    /// The statistics at `now` from the member's paid orders of the last 365 days (when
    /// paid, and what was paid net of refunds), the instant of their last paid order,
    /// and the plans they hold and held. A window of N days is `(now - N × 24 h, now]`.
    pub fn at(
        now: Timestamp,
        orders: &[(Timestamp, i64)],
        last_order_at: Option<Timestamp>,
        plans: Vec<String>,
        plans_ever: Vec<String>,
    ) -> MemberStats {
        let within = |days: i64| {
            let since = now
                .checked_sub(jiff::SignedDuration::from_hours(24 * days))
                .unwrap_or(Timestamp::MIN);
            orders
                .iter()
                .filter(move |(at, _)| *at > since && *at <= now)
        };
        let count = |days| within(days).count() as i64;
        let spend = |days| within(days).map(|(_, amount)| *amount).sum::<i64>();
        MemberStats {
            orders_30d: count(30),
            orders_90d: count(90),
            orders_365d: count(STATS_DAYS_MAX),
            spend_30d_minor: spend(30),
            spend_90d_minor: spend(90),
            spend_365d_minor: spend(STATS_DAYS_MAX),
            days_since_last_order: last_order_at
                .filter(|at| *at <= now)
                .map(|at| now.duration_since(at).as_hours() / 24),
            plans,
            plans_ever,
        }
    }

    pub fn to_value(&self) -> Value {
        json!({
            "orders_30d": self.orders_30d,
            "orders_90d": self.orders_90d,
            "orders_365d": self.orders_365d,
            "spend_30d_minor": self.spend_30d_minor,
            "spend_90d_minor": self.spend_90d_minor,
            "spend_365d_minor": self.spend_365d_minor,
            "days_since_last_order": self.days_since_last_order,
            "plans": self.plans,
            "plans_ever": self.plans_ever,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn offer(condition: Option<&str>) -> ConversionOffer {
        ConversionOffer {
            id: "o".into(),
            plan: "plus".into(),
            condition: condition.map(|c| Condition::compile(c, OFFER_VARIABLES).unwrap()),
            starts_at: t("2026-12-01T00:00:00Z"),
            ends_at: t("2027-01-01T00:00:00Z"),
            kind: OfferKind::Trial { days: 30 },
        }
    }

    #[test]
    fn conversion_is_taken_over_shown_rounded_down() {
        for (accepted, exposed, bp) in [(1, 3, 3333), (2, 3, 6666), (0, 0, 0), (3, 3, 10_000)] {
            assert_eq!(conversion_bp(accepted, exposed), bp, "{accepted}/{exposed}");
        }
    }

    #[test]
    fn the_window_is_open_from_its_start_to_before_its_end() {
        let o = offer(None);
        let cases = [
            ("2026-11-30T23:59:59Z", false),
            ("2026-12-01T00:00:00Z", true),
            ("2026-12-31T23:59:59Z", true),
            ("2027-01-01T00:00:00Z", false),
        ];
        for (at, open) in cases {
            assert_eq!(o.is_open(t(at)), open, "{at}");
        }
    }

    #[test]
    fn statistics_count_each_window_up_to_now() {
        let now = t("2026-12-31T00:00:00Z");
        let orders = [
            (t("2026-12-30T00:00:00Z"), 1000),
            (t("2026-12-01T00:00:00Z"), 2000), // exactly 30 days before: outside 30d
            (t("2026-10-02T00:00:00Z"), 4000), // exactly 90 days before: outside 90d
            (t("2026-01-01T00:00:00Z"), 8000),
        ];
        let s = MemberStats::at(now, &orders, Some(orders[0].0), vec![], vec!["plus".into()]);
        assert_eq!((s.orders_30d, s.orders_90d, s.orders_365d), (1, 2, 4));
        assert_eq!(
            (s.spend_30d_minor, s.spend_90d_minor, s.spend_365d_minor),
            (1000, 3000, 15000)
        );
        assert_eq!(s.days_since_last_order, Some(1));
        let never = MemberStats::at(now, &[], None, vec![], vec![]);
        assert_eq!(never.days_since_last_order, None);
    }

    #[test]
    fn a_condition_picks_its_segment() {
        let now = t("2026-12-15T00:00:00Z");
        let member = json!({"score": 1200, "tier": "silver"});
        let lapsed = MemberStats {
            orders_90d: 4,
            days_since_last_order: Some(40),
            plans_ever: vec!["plus".into()],
            ..MemberStats::default()
        };
        let o = offer(Some(
            "stats.orders_90d >= 3 && 'plus' in stats.plans_ever && !('plus' in stats.plans) && member.score >= 1000",
        ));
        let none = History::default();
        assert_eq!(o.refusal(now, &member, &lapsed, none), None);
        let holding = MemberStats {
            plans: vec!["plus".into()],
            ..lapsed.clone()
        };
        assert!(matches!(
            o.refusal(now, &member, &holding, none),
            Some(OfferRefusal::NotEligible(_))
        ));
        assert_eq!(
            o.refusal(t("2027-01-01T00:00:00Z"), &member, &lapsed, none),
            Some(OfferRefusal::NotOpen)
        );
        // Taken once; a trial offer to a member who had the trial is not theirs to take.
        let taken = History {
            accepted: true,
            ..none
        };
        assert_eq!(
            o.refusal(now, &member, &lapsed, taken),
            Some(OfferRefusal::AlreadyTaken)
        );
        let trialed = History {
            trialed: true,
            ..none
        };
        assert!(matches!(
            o.refusal(now, &member, &lapsed, trialed),
            Some(OfferRefusal::NotEligible(_))
        ));
        // A member who never ordered is not "inactive for 30 days": the comparison with a
        // null does not hold.
        let o = offer(Some("stats.days_since_last_order >= 30"));
        assert!(!o.targets(&member, &MemberStats::default()));
    }
}
