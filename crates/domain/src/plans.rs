//! The paid track: plans (a term, a price, price rules, a trial, a refund policy, a renewal
//! grace, stacking, partner rights) and the life of a subscription to one, as pure
//! decisions over its stored state and `now`.
//!
//! A subscription is a run of terms: a trial term or paid terms, one after the other (a gap
//! only where an expired subscription was paid for again). Access at an instant is "some
//! term covers it and nothing cut it short", so the entitlement answer never waits for a
//! job; the status (`trialing`, `active`, `grace`, `expired`, `canceled`, `refunded`) and
//! the renewal notices are moved forward by `advance` as the clock passes.

use crate::rule::Condition;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use serde_json::Value;

/// A term's length: whole days, or calendar months in the programme's time zone
/// (a month is 1, a quarter 3, a year 12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Length {
    Days(i64),
    Months(i64),
}

impl Length {
    /// The instant this length after `start`, counted in `tz` (a month from 31 January is
    /// the last day of February).
    pub fn after(self, start: Timestamp, tz: &TimeZone) -> Timestamp {
        let zoned = start.to_zoned(tz.clone());
        let end = match self {
            Length::Days(d) => zoned.checked_add(d.days()),
            Length::Months(m) => zoned.checked_add(m.months()),
        };
        end.map_or(Timestamp::MAX, |z| z.timestamp())
    }

    /// The instant this length before `end`, counted in `tz`.
    pub fn before(self, end: Timestamp, tz: &TimeZone) -> Timestamp {
        let zoned = end.to_zoned(tz.clone());
        let start = match self {
            Length::Days(d) => zoned.checked_sub(d.days()),
            Length::Months(m) => zoned.checked_sub(m.months()),
        };
        start.map_or(Timestamp::MIN, |z| z.timestamp())
    }

    pub fn describe(self) -> String {
        match self {
            Length::Days(d) => format!("{d} days"),
            Length::Months(12) => "1 year".to_owned(),
            Length::Months(3) => "1 quarter".to_owned(),
            Length::Months(1) => "1 month".to_owned(),
            Length::Months(m) => format!("{m} months"),
        }
    }
}

/// A price that applies when its condition holds over the member.
#[derive(Debug, Clone)]
pub struct PriceRule {
    pub name: String,
    pub condition: Condition,
    pub price_minor: i64,
}

#[derive(Debug, Clone)]
pub struct Trial {
    pub days: i64,
    /// Who may trial; everyone when absent. A member trials a plan at most once.
    pub eligible: Option<Condition>,
}

/// What a refund gives back of each paid term.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundPolicy {
    /// Nothing.
    None,
    /// The whole fee, at any time (Costco).
    Full,
    /// The share of the term's days not yet begun; the day of the refund counts as used.
    ProRata,
    /// The whole fee within `days` of the term's payment if no benefit was used since;
    /// otherwise `otherwise` (`None` or `ProRata`).
    FullWithinDays { days: i64, otherwise: Fallback },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    None,
    ProRata,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefundRules {
    pub policy: RefundPolicy,
    /// Subtract the cost of the benefits the subscription used.
    pub net_of_benefit_cost: bool,
}

/// After a term ends unpaid, paying within the grace renews the subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grace {
    pub length: Length,
    /// The renewed term starts at the old end (Costco), not at the payment.
    pub backdate: bool,
    /// The member keeps the plan's rights during the grace.
    pub keeps_access: bool,
}

/// A right from a partner that the plan carries (a video site's membership, an offline
/// discount the partner verifies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerRight {
    pub id: String,
    /// The partner whose API key verifies and redeems it.
    pub partner: String,
    /// Each paid term takes one code from the pool named after the right.
    pub code_pool: bool,
    /// What one use costs the shop, for refunds net of benefits and for the economics.
    pub cost_minor: i64,
    /// How many uses a term allows; unlimited when absent.
    pub uses_per_term: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub id: String,
    pub name: String,
    pub term: Length,
    pub price_minor: i64,
    pub first_term_price_minor: Option<i64>,
    pub prices: Vec<PriceRule>,
    pub trial: Option<Trial>,
    /// Whether a subscription may renew automatically (the shop's billing charges it when
    /// Tessera says a renewal is due).
    pub auto_renew: bool,
    /// How many days before a term ends its renewal falls due.
    pub renewal_notice_days: i64,
    pub refund: RefundRules,
    pub grace: Option<Grace>,
    /// A second purchase while the plan is held extends its end; without stacking it is
    /// refused.
    pub stacking: bool,
    pub partner_rights: Vec<PartnerRight>,
}

/// Why a price is what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PriceBasis {
    List,
    FirstTerm,
    Rule(String),
    /// A conversion offer's first-term price.
    Offer(String),
}

impl PriceBasis {
    pub fn describe(&self) -> String {
        match self {
            PriceBasis::List => "list".to_owned(),
            PriceBasis::FirstTerm => "first_term".to_owned(),
            PriceBasis::Rule(name) => format!("rule:{name}"),
            PriceBasis::Offer(id) => format!("offer:{id}"),
        }
    }
}

impl Plan {
    /// The price of a term for this member: the lowest of the list price, the first-term
    /// price (for a member's first paid term of the plan) and the first price rule whose
    /// condition holds. A condition that cannot be evaluated (a missing attribute) does
    /// not hold.
    pub fn price(&self, member: &Value, first_term: bool) -> (i64, PriceBasis) {
        let mut best = (self.price_minor, PriceBasis::List);
        if let (true, Some(p)) = (first_term, self.first_term_price_minor) {
            if p < best.0 {
                best = (p, PriceBasis::FirstTerm);
            }
        }
        if let Some(rule) = self
            .prices
            .iter()
            .find(|r| r.condition.evaluate(&[("member", member)]) == Ok(true))
        {
            if rule.price_minor < best.0 {
                best = (rule.price_minor, PriceBasis::Rule(rule.name.clone()));
            }
        }
        best
    }

    /// Whether this member may trial the plan (ignoring an earlier trial).
    pub fn trial_allowed(&self, member: &Value) -> bool {
        match &self.trial {
            None => false,
            Some(t) => t
                .eligible
                .as_ref()
                .is_none_or(|c| c.evaluate(&[("member", member)]) == Ok(true)),
        }
    }

    pub fn right(&self, id: &str) -> Option<&PartnerRight> {
        self.partner_rights.iter().find(|r| r.id == id)
    }
}

// ---- the life of a subscription ----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Trialing,
    Active,
    Grace,
    Expired,
    Canceled,
    Refunded,
}

impl Status {
    /// The statuses in which a subscription still runs (`is_live`).
    pub const LIVE: [Status; 3] = [Status::Trialing, Status::Active, Status::Grace];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Trialing => "trialing",
            Status::Active => "active",
            Status::Grace => "grace",
            Status::Expired => "expired",
            Status::Canceled => "canceled",
            Status::Refunded => "refunded",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "trialing" => Status::Trialing,
            "active" => Status::Active,
            "grace" => Status::Grace,
            "expired" => Status::Expired,
            "canceled" => Status::Canceled,
            "refunded" => Status::Refunded,
            _ => return None,
        })
    }

    /// Still running: it may renew, be canceled or refunded.
    pub fn is_live(self) -> bool {
        matches!(self, Status::Trialing | Status::Active | Status::Grace)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TermKind {
    Trial,
    Paid,
    /// Days given free (a referral reward): access, nothing to refund.
    Reward,
}

/// One term of a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    pub no: i64,
    pub kind: TermKind,
    pub start: Timestamp,
    pub end: Timestamp,
    pub amount_minor: i64,
    pub paid_at: Timestamp,
    pub refunded_minor: i64,
}

/// The part of a subscription that time and payments move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionState {
    pub status: Status,
    pub auto_renew: bool,
    pub cancel_at_period_end: bool,
    /// Access ends here: the last term's end, or earlier when canceled now or refunded.
    pub access_end: Timestamp,
    /// Whether access was cut short at `access_end` (cancel now, refund).
    pub cut: bool,
    /// End of the grace, while in grace.
    pub grace_until: Option<Timestamp>,
    /// The `access_end` whose renewal notice was given.
    pub renewal_noticed_for: Option<Timestamp>,
}

/// A change the clock or a request made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The status moved, at `at`, for `cause`.
    Status {
        at: Timestamp,
        from: Status,
        to: Status,
        cause: &'static str,
    },
    /// A renewal fell due: the shop's billing should charge the term after `period_end`.
    RenewalDue {
        at: Timestamp,
        period_end: Timestamp,
    },
}

/// The term covering `at`, if any (terms are in order and do not overlap).
pub fn term_at(terms: &[Term], at: Timestamp) -> Option<&Term> {
    terms.iter().find(|t| t.start <= at && at < t.end)
}

impl SubscriptionState {
    /// Whether the subscription gives access at `at` (the plan's rights hold).
    pub fn grants_access(
        &self,
        plan_grace: Option<Grace>,
        terms: &[Term],
        at: Timestamp,
        tz: &TimeZone,
    ) -> bool {
        if self.status == Status::Refunded && self.access_end <= at {
            return false;
        }
        if at < self.access_end && term_at(terms, at).is_some() {
            return true;
        }
        // The grace follows the last term when nothing cut access short.
        !self.cut
            && self.status.is_live()
            && plan_grace.is_some_and(|g| {
                g.keeps_access && at >= self.access_end && at < g.length.after(self.access_end, tz)
            })
            && self.grace_until.is_none_or(|u| at < u)
    }

    /// The spans `[start, end)` in which the subscription gives access: exactly the instants
    /// where `grants_access` holds (a term, cut at `access_end`, then a grace that keeps
    /// access).
    pub fn access_spans(
        &self,
        plan_grace: Option<Grace>,
        terms: &[Term],
        tz: &TimeZone,
    ) -> Vec<(Timestamp, Timestamp)> {
        let mut spans: Vec<(Timestamp, Timestamp)> = terms
            .iter()
            .map(|t| (t.start, t.end.min(self.access_end)))
            .filter(|(start, end)| start < end)
            .collect();
        if let Some(g) = plan_grace {
            if !self.cut && self.status.is_live() && g.keeps_access {
                let mut end = g.length.after(self.access_end, tz);
                if let Some(until) = self.grace_until {
                    end = end.min(until);
                }
                if self.access_end < end {
                    spans.push((self.access_end, end));
                }
            }
        }
        spans
    }

    /// When the renewal of the current end falls due, if it will.
    fn notice_at(&self, plan: &Plan, terms: &[Term], tz: &TimeZone) -> Option<Timestamp> {
        if !self.auto_renew
            || self.cancel_at_period_end
            || !matches!(self.status, Status::Trialing | Status::Active)
            || self.renewal_noticed_for == Some(self.access_end)
        {
            return None;
        }
        let start = terms.last().map_or(self.access_end, |t| t.start);
        let at = self
            .access_end
            .to_zoned(tz.clone())
            .checked_sub(plan.renewal_notice_days.days())
            .map_or(start, |z| z.timestamp());
        Some(at.max(start))
    }

    /// The next instant at which `advance` has something to do.
    pub fn next_due(
        &self,
        plan: Option<&Plan>,
        terms: &[Term],
        tz: &TimeZone,
    ) -> Option<Timestamp> {
        let mut due: Vec<Timestamp> = Vec::new();
        match self.status {
            Status::Trialing | Status::Active => {
                due.push(self.access_end);
                if let Some(n) = plan.and_then(|p| self.notice_at(p, terms, tz)) {
                    due.push(n);
                }
                if self.status == Status::Trialing {
                    if let Some(t) = terms.iter().find(|t| t.kind == TermKind::Trial) {
                        if t.end < self.access_end {
                            due.push(t.end);
                        }
                    }
                }
            }
            Status::Grace => due.extend(self.grace_until),
            _ => {}
        }
        due.into_iter().min()
    }

    /// Moves the subscription through everything due at or before `to`, in time order;
    /// returns the changes, each at the instant it was due.
    pub fn advance(
        &mut self,
        plan: Option<&Plan>,
        terms: &[Term],
        to: Timestamp,
        tz: &TimeZone,
    ) -> Vec<Change> {
        let mut changes = Vec::new();
        // Each round takes the earliest due thing; a subscription has at most a few.
        for _ in 0..8 {
            let Some(at) = self.next_due(plan, terms, tz).filter(|d| *d <= to) else {
                break;
            };
            if let Some(n) = plan.and_then(|p| self.notice_at(p, terms, tz)) {
                if n == at {
                    self.renewal_noticed_for = Some(self.access_end);
                    changes.push(Change::RenewalDue {
                        at,
                        period_end: self.access_end,
                    });
                    continue;
                }
            }
            let from = self.status;
            match self.status {
                Status::Trialing if at < self.access_end => {
                    // The trial ended and a paid term follows.
                    self.status = Status::Active;
                    changes.push(Change::Status {
                        at,
                        from,
                        to: Status::Active,
                        cause: "trial_converted",
                    });
                }
                Status::Trialing | Status::Active => {
                    let ended = if from == Status::Trialing {
                        "trial_ended"
                    } else {
                        "term_ended"
                    };
                    let (to_status, cause) = if self.cancel_at_period_end {
                        (Status::Canceled, "canceled_at_period_end")
                    } else if let Some(g) = plan.and_then(|p| p.grace) {
                        self.grace_until = Some(g.length.after(self.access_end, tz));
                        (Status::Grace, ended)
                    } else {
                        (Status::Expired, ended)
                    };
                    self.status = to_status;
                    changes.push(Change::Status {
                        at,
                        from,
                        to: to_status,
                        cause,
                    });
                }
                Status::Grace => {
                    self.status = Status::Expired;
                    self.grace_until = None;
                    changes.push(Change::Status {
                        at,
                        from,
                        to: Status::Expired,
                        cause: "grace_ended",
                    });
                }
                _ => break,
            }
        }
        changes
    }

    /// Where a newly paid term starts, and the status change it makes (after `advance`
    /// to `now`). `None` when the subscription can no longer be paid for.
    pub fn next_term_start(
        &self,
        plan: &Plan,
        now: Timestamp,
    ) -> Option<(Timestamp, Option<&'static str>)> {
        match self.status {
            Status::Trialing | Status::Active => Some((self.access_end.max(now), None)),
            Status::Grace => {
                let backdate = plan.grace.is_some_and(|g| g.backdate);
                let start = if backdate { self.access_end } else { now };
                Some((start, Some("renewed_in_grace")))
            }
            Status::Expired => Some((now, Some("reactivated"))),
            Status::Canceled | Status::Refunded => None,
        }
    }

    /// Records a free term (days given as a reward) ending at `end`: access runs to it.
    /// Unlike a payment it withdraws no cancel at period end; a subscription that ended
    /// runs again.
    pub fn add_free_term(&mut self, end: Timestamp, now: Timestamp) -> Option<Change> {
        let from = self.status;
        self.access_end = self.access_end.max(end);
        self.cut = false;
        self.grace_until = None;
        let to = match from {
            Status::Trialing | Status::Active => from,
            _ => Status::Active,
        };
        self.status = to;
        (from != to).then_some(Change::Status {
            at: now,
            from,
            to,
            cause: "reward",
        })
    }

    /// Records a paid term `[start, end)`: access runs to its end, a cancel at period end
    /// is withdrawn, and the status follows where `now` falls.
    pub fn add_paid_term(
        &mut self,
        start: Timestamp,
        end: Timestamp,
        now: Timestamp,
        cause: Option<&'static str>,
    ) -> Option<Change> {
        let from = self.status;
        self.access_end = self.access_end.max(end);
        self.cut = false;
        self.cancel_at_period_end = false;
        self.grace_until = None;
        let to = if from == Status::Trialing && start > now {
            Status::Trialing
        } else {
            Status::Active
        };
        self.status = to;
        (from != to).then(|| Change::Status {
            at: now,
            from,
            to,
            cause: cause.unwrap_or("paid"),
        })
    }

    /// Cancels: at the end of the period (access stays until then, no renewal), or now.
    pub fn cancel(&mut self, at_period_end: bool, now: Timestamp) -> Option<Change> {
        if at_period_end && self.status != Status::Grace {
            self.cancel_at_period_end = true;
            self.auto_renew = false;
            return None;
        }
        let from = self.status;
        self.status = Status::Canceled;
        self.access_end = self.access_end.min(now);
        self.cut = true;
        self.grace_until = None;
        Some(Change::Status {
            at: now,
            from,
            to: Status::Canceled,
            cause: "canceled_now",
        })
    }

    pub fn refund(&mut self, now: Timestamp) -> Change {
        let from = self.status;
        self.status = Status::Refunded;
        self.access_end = self.access_end.min(now);
        self.cut = true;
        self.grace_until = None;
        Change::Status {
            at: now,
            from,
            to: Status::Refunded,
            cause: "refunded",
        }
    }
}

// ---- refunds ----

/// What a refund gives back of one paid term, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TermRefund {
    pub term: i64,
    pub paid_minor: i64,
    /// `full`, `none`, `pro_rata`, `full_within_days`.
    pub rule: &'static str,
    pub term_days: i64,
    pub unused_days: i64,
    pub refund_minor: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundCalculation {
    pub terms: Vec<TermRefund>,
    /// The sum over the terms, before benefits.
    pub gross_minor: i64,
    /// The cost of benefits used, subtracted when the policy says so.
    pub benefit_cost_minor: i64,
    pub refund_minor: i64,
}

/// Days between two civil dates.
fn days_between(a: Date, b: Date) -> i64 {
    a.until(b).map_or(0, |s| i64::from(s.get_days()))
}

fn pro_rata(term: &Term, remaining: i64, now: Timestamp, tz: &TimeZone) -> (i64, i64, i64) {
    let start = term.start.to_zoned(tz.clone()).date();
    let end = term.end.to_zoned(tz.clone()).date();
    let term_days = days_between(start, end).max(1);
    if now < term.start {
        return (term_days, term_days, remaining);
    }
    let used = (days_between(start, now.to_zoned(tz.clone()).date()) + 1).min(term_days);
    let unused = term_days - used;
    let amount = i128::from(term.amount_minor) * i128::from(unused) / i128::from(term_days);
    let amount = i64::try_from(amount).unwrap_or(i64::MAX).min(remaining);
    (term_days, unused, amount)
}

/// The refund of every paid term not yet refunded, under `rules`. `benefit_uses` are the
/// instants and costs of the benefits the subscription used.
pub fn refund_calculation(
    rules: RefundRules,
    terms: &[Term],
    benefit_uses: &[(Timestamp, i64)],
    now: Timestamp,
    tz: &TimeZone,
) -> RefundCalculation {
    let mut out = Vec::new();
    for term in terms.iter().filter(|t| t.kind == TermKind::Paid) {
        let remaining = term.amount_minor - term.refunded_minor;
        if remaining <= 0 {
            continue;
        }
        let (rule, term_days, unused_days, refund) = match rules.policy {
            RefundPolicy::None => ("none", 0, 0, 0),
            RefundPolicy::Full => ("full", 0, 0, remaining),
            RefundPolicy::ProRata => {
                let (d, u, a) = pro_rata(term, remaining, now, tz);
                ("pro_rata", d, u, a)
            }
            RefundPolicy::FullWithinDays { days, otherwise } => {
                let window_end = Length::Days(days).after(term.paid_at, tz);
                let used = benefit_uses.iter().any(|(at, _)| *at >= term.paid_at);
                if now < window_end && !used {
                    ("full_within_days", 0, 0, remaining)
                } else {
                    match otherwise {
                        Fallback::None => ("none", 0, 0, 0),
                        Fallback::ProRata => {
                            let (d, u, a) = pro_rata(term, remaining, now, tz);
                            ("pro_rata", d, u, a)
                        }
                    }
                }
            }
        };
        out.push(TermRefund {
            term: term.no,
            paid_minor: remaining,
            rule,
            term_days,
            unused_days,
            refund_minor: refund,
        });
    }
    // Each term's refund is at most what it paid (at most `AMOUNT_MINOR_MAX`), and a term
    // lasts a day or more, so the gross fits 64 bits for millennia of terms; the benefits'
    // cost only ever lowers the refund, so where it would pass 64 bits it saturates and
    // the refund is 0 either way.
    let gross = out
        .iter()
        .fold(0i64, |sum, t| sum.saturating_add(t.refund_minor));
    let cost = if rules.net_of_benefit_cost {
        benefit_uses
            .iter()
            .fold(0i64, |sum, (_, c)| sum.saturating_add(*c))
    } else {
        0
    };
    RefundCalculation {
        terms: out,
        gross_minor: gross,
        benefit_cost_minor: cost,
        refund_minor: (gross - cost).max(0),
    }
}

#[cfg(test)]
mod tests;
