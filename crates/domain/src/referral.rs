//! Referral (自来水): a member brings another with their code, and both may be rewarded on
//! a stated trigger. The rules here are pure decisions: whether a code may be used, whether
//! a reward is due, granted or capped, and what a refund does to a reward given for it.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;

/// The `[referral]` section of a programme.
#[derive(Debug, Clone, PartialEq)]
pub struct ReferralRules {
    /// Attributes that name one person (a phone, a device, a payment fingerprint): a
    /// referee who shares the value of any of them with the referrer is refusing to be
    /// two people, and is refused.
    pub identity: Vec<String>,
    /// How many members one code may bring in all; no limit when absent.
    pub max_referrals_per_code: Option<i64>,
    /// How many days after joining a member may still give a referrer's code; 0: only
    /// when the member is created.
    pub late_days: i64,
    /// How many rewards one referrer may be granted in a calendar period.
    pub cap: Option<Cap>,
    pub rewards: Vec<Reward>,
}

/// At most `rewards` referrer rewards granted in each `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cap {
    pub rewards: i64,
    pub period: CapPeriod,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapPeriod {
    /// A calendar month in the programme's time zone.
    Month,
    /// A calendar year in the programme's time zone.
    Year,
    /// Ever.
    Lifetime,
}

/// What sets a reward off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The referee joins with the code.
    Join,
    /// The referee's first paid order, once it has stood `wait_days` (its return window)
    /// without being refunded in full.
    FirstOrder,
    /// The referee's first paid term of a plan (of `plans`, when given).
    FirstPlan,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Join => "join",
            Trigger::FirstOrder => "first_order",
            Trigger::FirstPlan => "first_plan",
        }
    }

    pub fn parse(s: &str) -> Option<Trigger> {
        Some(match s {
            "join" => Trigger::Join,
            "first_order" => Trigger::FirstOrder,
            "first_plan" => Trigger::FirstPlan,
            _ => return None,
        })
    }
}

/// Who a reward goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beneficiary {
    Referrer,
    Referee,
}

impl Beneficiary {
    pub fn as_str(self) -> &'static str {
        match self {
            Beneficiary::Referrer => "referrer",
            Beneficiary::Referee => "referee",
        }
    }

    pub fn parse(s: &str) -> Option<Beneficiary> {
        Some(match s {
            "referrer" => Beneficiary::Referrer,
            "referee" => Beneficiary::Referee,
            _ => return None,
        })
    }
}

/// What a reward gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RewardKind {
    /// A lot of available points.
    Points(i64),
    /// One coupon of a template.
    Coupon(String),
    /// Stored value, credited as bonus (not principal: it was not paid in).
    StoredValue(i64),
    /// Days of a plan: a free term after the member's running subscription of it, or
    /// from the grant when they hold none.
    PlanDays { plan: String, days: i64 },
}

impl RewardKind {
    pub fn name(&self) -> &'static str {
        match self {
            RewardKind::Points(_) => "points",
            RewardKind::Coupon(_) => "coupon",
            RewardKind::StoredValue(_) => "stored_value",
            RewardKind::PlanDays { .. } => "plan_days",
        }
    }

    /// The amount the reward gives in its unit: points, minor units, 1 coupon, or days.
    pub fn amount(&self) -> i64 {
        match self {
            RewardKind::Points(p) => *p,
            RewardKind::Coupon(_) => 1,
            RewardKind::StoredValue(m) => *m,
            RewardKind::PlanDays { days, .. } => *days,
        }
    }

    /// The kind a stored reward names (`name`, `amount`, `item`); `None` for one this
    /// version does not know.
    pub fn from_parts(name: &str, amount: i64, item: Option<&str>) -> Option<RewardKind> {
        Some(match (name, item) {
            ("points", _) => RewardKind::Points(amount),
            ("stored_value", _) => RewardKind::StoredValue(amount),
            ("coupon", Some(t)) => RewardKind::Coupon(t.to_owned()),
            ("plan_days", Some(p)) => RewardKind::PlanDays {
                plan: p.to_owned(),
                days: amount,
            },
            _ => return None,
        })
    }

    /// Whether what could not be taken back stays owed: points and stored value come back
    /// to a balance (a refund of what they were spent on), so they are taken as they do;
    /// a used coupon or days already lived cannot come back.
    pub fn owed_until_recovered(&self) -> bool {
        matches!(self, RewardKind::Points(_) | RewardKind::StoredValue(_))
    }

    /// What the reward gives of the programme: the coupon template, or the plan.
    pub fn item(&self) -> Option<&str> {
        match self {
            RewardKind::Coupon(t) => Some(t),
            RewardKind::PlanDays { plan, .. } => Some(plan),
            _ => None,
        }
    }
}

/// One reward rule: on a trigger, to one side, one kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reward {
    pub id: String,
    pub trigger: Trigger,
    pub to: Beneficiary,
    pub kind: RewardKind,
    /// How long the trigger must stand before the reward is granted.
    pub wait_days: i64,
    /// For `first_plan`: the plans whose purchase counts; any plan when empty.
    pub plans: Vec<String>,
}

impl ReferralRules {
    pub fn rewards_on(&self, trigger: Trigger) -> impl Iterator<Item = &Reward> {
        self.rewards.iter().filter(move |r| r.trigger == trigger)
    }

    pub fn reward(&self, id: &str) -> Option<&Reward> {
        self.rewards.iter().find(|r| r.id == id)
    }

    /// Whether a referee may join with a referrer's code; the first reason it may not.
    pub fn refusal(&self, attempt: &Attempt<'_>) -> Option<Refusal> {
        if attempt.referee_id == Some(attempt.referrer.id) {
            return Some(Refusal::SelfReferral(
                "a member cannot use their own code".into(),
            ));
        }
        if let Some(key) = self.identity.iter().find(|key| {
            let of = |attributes: &serde_json::Map<String, serde_json::Value>| {
                attributes.get(key.as_str()).and_then(identity_value)
            };
            let mine = of(attempt.referee_attributes);
            mine.is_some() && mine == of(attempt.referrer.attributes)
        }) {
            return Some(Refusal::SelfReferral(format!(
                "the referrer has the same `{key}`"
            )));
        }
        if attempt.already_referred {
            return Some(Refusal::SecondReferrer);
        }
        if let Some(joined) = attempt.referee_joined_at {
            // A referrer must have joined first: nobody is brought by a later member,
            // so referrals never run in a circle.
            if attempt.referrer.joined_at >= joined {
                return Some(Refusal::SelfReferral(
                    "the code's owner did not join before this member".into(),
                ));
            }
            if attempt.now >= due_at(joined, self.late_days) {
                return Some(Refusal::TooLate {
                    days: self.late_days,
                });
            }
        }
        if !attempt.referrer.active {
            return Some(Refusal::CodeUnusable(
                "the code's owner is not an active member".into(),
            ));
        }
        if let Some(max) = self.max_referrals_per_code {
            if attempt.referrer.referred_so_far >= max {
                return Some(Refusal::CodeUnusable(format!(
                    "the code has brought its limit of {max} members"
                )));
            }
        }
        None
    }

    /// Whether a reward to the referrer is granted, given how many the referrer was
    /// granted in the cap's period so far.
    pub fn grant(&self, to: Beneficiary, granted_in_period: i64) -> RewardState {
        match (to, self.cap) {
            (Beneficiary::Referrer, Some(cap)) if granted_in_period >= cap.rewards => {
                RewardState::Capped
            }
            _ => RewardState::Granted,
        }
    }
}

impl Cap {
    /// The start of the period `now` falls in; `None` for a lifetime cap.
    pub fn period_start(self, now: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let today = now.to_zoned(tz.clone()).date();
        let first = match self.period {
            CapPeriod::Lifetime => return None,
            CapPeriod::Month => today.first_of_month(),
            CapPeriod::Year => Date::new(today.year(), 1, 1).unwrap_or(today),
        };
        first
            .to_zoned(tz.clone())
            .ok()
            .map(|z| z.timestamp())
            .or(Some(Timestamp::MIN))
    }
}

/// What is known of the code's owner when a code is given.
#[derive(Debug, Clone)]
pub struct Referrer<'a> {
    pub id: i64,
    pub attributes: &'a serde_json::Map<String, serde_json::Value>,
    pub joined_at: Timestamp,
    pub active: bool,
    /// Members this code brought so far.
    pub referred_so_far: i64,
}

/// A code given by a member (`referee_id`, `referee_joined_at` set when the member exists
/// already) or by one being created.
#[derive(Debug, Clone)]
pub struct Attempt<'a> {
    pub referrer: Referrer<'a>,
    pub referee_id: Option<i64>,
    pub referee_attributes: &'a serde_json::Map<String, serde_json::Value>,
    pub referee_joined_at: Option<Timestamp>,
    pub already_referred: bool,
    pub now: Timestamp,
}

/// Why a code was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The same member, or one who shares an identity attribute with the referrer.
    SelfReferral(String),
    /// The member has a referrer already.
    SecondReferrer,
    /// The code is past its limits, or its owner cannot refer.
    CodeUnusable(String),
    /// Given too long after the member joined.
    TooLate { days: i64 },
}

/// Where a reward stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RewardState {
    /// Waiting for its trigger to stand (`due_at`).
    Pending,
    /// Given to the beneficiary.
    Granted,
    /// Not given: the referrer had reached the cap in the period.
    Capped,
    /// Not given: its order or plan was refunded before it was due, or the beneficiary
    /// left.
    Canceled,
    /// Given, then its order or plan was refunded: to be taken back.
    ClawbackDue,
    /// Taken back (as far as the beneficiary still held it).
    ClawedBack,
}

impl RewardState {
    /// The states of a reward that was given: what a cap counts, whatever became of it
    /// since (a refund does not refill a cap).
    pub const GIVEN: [RewardState; 3] = [
        RewardState::Granted,
        RewardState::ClawbackDue,
        RewardState::ClawedBack,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RewardState::Pending => "pending",
            RewardState::Granted => "granted",
            RewardState::Capped => "capped",
            RewardState::Canceled => "canceled",
            RewardState::ClawbackDue => "clawback_due",
            RewardState::ClawedBack => "clawed_back",
        }
    }

    pub fn parse(s: &str) -> Option<RewardState> {
        Some(match s {
            "pending" => RewardState::Pending,
            "granted" => RewardState::Granted,
            "capped" => RewardState::Capped,
            "canceled" => RewardState::Canceled,
            "clawback_due" => RewardState::ClawbackDue,
            "clawed_back" => RewardState::ClawedBack,
            _ => return None,
        })
    }

    /// Its order or plan was refunded: a reward not given yet is canceled, one given is
    /// taken back; a settled one stays as it is.
    pub fn on_refund(self) -> RewardState {
        match self {
            RewardState::Pending => RewardState::Canceled,
            RewardState::Granted => RewardState::ClawbackDue,
            other => other,
        }
    }

    /// Whether the engine has work to do on it at `now` (grant, or take back what is
    /// still owed).
    pub fn is_due(self, due_at: Timestamp, now: Timestamp) -> bool {
        match self {
            RewardState::Pending | RewardState::ClawbackDue => due_at <= now,
            _ => false,
        }
    }
}

/// How long a reward still owed waits before it is taken back again.
pub const CLAWBACK_RETRY_HOURS: i64 = 1;

impl RewardState {
    /// After taking back `taken_so_far` of a reward of `amount`: taken back, or still
    /// due (and when) while what is owed can still come back.
    pub fn after_clawback(
        kind: &RewardKind,
        amount: i64,
        taken_so_far: i64,
        now: Timestamp,
    ) -> (RewardState, Option<Timestamp>) {
        if kind.owed_until_recovered() && taken_so_far < amount {
            let retry = now
                .checked_add(jiff::SignedDuration::from_hours(CLAWBACK_RETRY_HOURS))
                .unwrap_or(Timestamp::MAX);
            (RewardState::ClawbackDue, Some(retry))
        } else {
            (RewardState::ClawedBack, None)
        }
    }
}

/// An identity attribute's value as compared: the same phone, device or card written
/// another way is the same (text without case, spaces or punctuation; `13800000000` the
/// number and `"138-0000-0000"` the text; `1.0` and `1`). Null, empty text and a value
/// with nothing left to compare are no identity.
pub fn identity_value(v: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    let text = match v {
        Value::Null => return None,
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (_, Some(u), _) => u.to_string(),
            (_, _, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => (f as i64).to_string(),
            (_, _, Some(f)) => f.to_string(),
            _ => n.to_string(),
        },
        Value::String(s) => s
            .chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect(),
        other => other.to_string(),
    };
    (!text.is_empty()).then_some(text)
}

/// Whether an order's refunds leave nothing of it paid: all its goods, or its whole
/// total, each as (amount, refunded so far). A partial refund leaves the order standing.
pub fn refunded_in_full(goods: (i64, i64), total: (i64, i64)) -> bool {
    (goods.0 > 0 && goods.1 >= goods.0) || (total.0 > 0 && total.1 >= total.0)
}

/// A reward's due instant: its trigger's instant plus its wait.
pub fn due_at(trigger_at: Timestamp, wait_days: i64) -> Timestamp {
    trigger_at
        .checked_add(jiff::SignedDuration::from_hours(24 * wait_days))
        .unwrap_or(Timestamp::MAX)
}

/// The alphabet of referral codes: Crockford's base 32 (no I, L, O, U), so a code read
/// aloud or copied by hand is not mistaken.
pub const CODE_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Characters in a referral code: 40 random bits.
pub const CODE_LEN: usize = 8;

/// A referral code from random bytes (at least `CODE_LEN`).
pub fn code_from_random(bytes: &[u8]) -> String {
    assert!(bytes.len() >= CODE_LEN);
    bytes[..CODE_LEN]
        .iter()
        .map(|b| CODE_ALPHABET[(b & 31) as usize] as char)
        .collect()
}

/// A code as a person typed it, in the form codes are stored: upper case, without the
/// spaces and hyphens people add, and with the letters Crockford's alphabet reads as
/// digits (`O` → `0`, `I`/`L` → `1`).
pub fn normalise_code(typed: &str) -> String {
    typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Map, Value};

    fn rules() -> ReferralRules {
        ReferralRules {
            identity: vec!["phone".into()],
            max_referrals_per_code: Some(2),
            late_days: 7,
            cap: Some(Cap {
                rewards: 1,
                period: CapPeriod::Month,
            }),
            rewards: vec![],
        }
    }

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn refusals_are_decided_in_a_stated_order() {
        let alice = map(json!({"phone": "+86 1"}));
        let same_phone = map(json!({"phone": "+86 1"}));
        let other = map(json!({"phone": "+86 2"}));
        let null_phone = map(json!({"phone": null}));
        let referrer = |so_far: i64, active: bool| Referrer {
            id: 1,
            attributes: &alice,
            joined_at: t("2026-01-01T00:00:00Z"),
            active,
            referred_so_far: so_far,
        };
        // (case, attempt, expected)
        let cases: Vec<(&str, Attempt, Option<Refusal>)> = vec![
            (
                "a new member with another phone",
                Attempt {
                    referrer: referrer(0, true),
                    referee_id: None,
                    referee_attributes: &other,
                    referee_joined_at: None,
                    already_referred: false,
                    now: t("2026-02-01T00:00:00Z"),
                },
                None,
            ),
            (
                "the code's owner",
                Attempt {
                    referrer: referrer(0, true),
                    referee_id: Some(1),
                    referee_attributes: &alice,
                    referee_joined_at: Some(t("2026-01-01T00:00:00Z")),
                    already_referred: false,
                    now: t("2026-01-02T00:00:00Z"),
                },
                Some(Refusal::SelfReferral(
                    "a member cannot use their own code".into(),
                )),
            ),
            (
                "the same phone",
                Attempt {
                    referrer: referrer(0, true),
                    referee_id: None,
                    referee_attributes: &same_phone,
                    referee_joined_at: None,
                    already_referred: false,
                    now: t("2026-02-01T00:00:00Z"),
                },
                Some(Refusal::SelfReferral(
                    "the referrer has the same `phone`".into(),
                )),
            ),
            (
                "a null phone is no phone",
                Attempt {
                    referrer: referrer(0, true),
                    referee_id: None,
                    referee_attributes: &null_phone,
                    referee_joined_at: None,
                    already_referred: false,
                    now: t("2026-02-01T00:00:00Z"),
                },
                None,
            ),
            (
                "a second referrer",
                Attempt {
                    referrer: referrer(0, true),
                    referee_id: Some(2),
                    referee_attributes: &other,
                    referee_joined_at: Some(t("2026-02-01T00:00:00Z")),
                    already_referred: true,
                    now: t("2026-02-02T00:00:00Z"),
                },
                Some(Refusal::SecondReferrer),
            ),
            (
                "the last instant of the late window is 7 days after joining, exclusive",
                Attempt {
                    referrer: referrer(0, true),
                    referee_id: Some(2),
                    referee_attributes: &other,
                    referee_joined_at: Some(t("2026-02-01T00:00:00Z")),
                    already_referred: false,
                    now: t("2026-02-08T00:00:00Z"),
                },
                Some(Refusal::TooLate { days: 7 }),
            ),
            (
                "just inside the late window",
                Attempt {
                    referrer: referrer(0, true),
                    referee_id: Some(2),
                    referee_attributes: &other,
                    referee_joined_at: Some(t("2026-02-01T00:00:00Z")),
                    already_referred: false,
                    now: t("2026-02-07T23:59:59Z"),
                },
                None,
            ),
            (
                "a referrer who joined later",
                Attempt {
                    referrer: referrer(0, true),
                    referee_id: Some(2),
                    referee_attributes: &other,
                    referee_joined_at: Some(t("2025-12-01T00:00:00Z")),
                    already_referred: false,
                    now: t("2026-01-02T00:00:00Z"),
                },
                Some(Refusal::SelfReferral(
                    "the code's owner did not join before this member".into(),
                )),
            ),
            (
                "a code at its limit",
                Attempt {
                    referrer: referrer(2, true),
                    referee_id: None,
                    referee_attributes: &other,
                    referee_joined_at: None,
                    already_referred: false,
                    now: t("2026-02-01T00:00:00Z"),
                },
                Some(Refusal::CodeUnusable(
                    "the code has brought its limit of 2 members".into(),
                )),
            ),
            (
                "an owner who is not active",
                Attempt {
                    referrer: referrer(0, false),
                    referee_id: None,
                    referee_attributes: &other,
                    referee_joined_at: None,
                    already_referred: false,
                    now: t("2026-02-01T00:00:00Z"),
                },
                Some(Refusal::CodeUnusable(
                    "the code's owner is not an active member".into(),
                )),
            ),
        ];
        let rules = rules();
        for (case, attempt, expected) in cases {
            assert_eq!(rules.refusal(&attempt), expected, "{case}");
        }
    }

    #[test]
    fn identity_values_match_however_they_are_written() {
        let same = [
            (json!("13800000000"), json!(13800000000i64)),
            (json!("+86 138-0000-0000"), json!("8613800000000")),
            (json!("DEV-A"), json!("dev a")),
            (json!(1.0), json!(1)),
            (json!(["x"]), json!(["x"])),
        ];
        for (a, b) in same {
            assert_eq!(identity_value(&a), identity_value(&b), "{a} = {b}");
            assert!(identity_value(&a).is_some(), "{a}");
        }
        for nothing in [json!(null), json!(""), json!("--- ")] {
            assert_eq!(identity_value(&nothing), None, "{nothing}");
        }
        assert_ne!(identity_value(&json!("1")), identity_value(&json!(1.5)));
    }

    #[test]
    fn the_cap_counts_referrer_rewards_in_the_calendar_period() {
        let rules = rules();
        assert_eq!(rules.grant(Beneficiary::Referrer, 0), RewardState::Granted);
        assert_eq!(rules.grant(Beneficiary::Referrer, 1), RewardState::Capped);
        assert_eq!(rules.grant(Beneficiary::Referee, 5), RewardState::Granted);
        let tz = TimeZone::get("Asia/Shanghai").unwrap();
        let cap = rules.cap.unwrap();
        // 2026-03-01 00:30 in Shanghai is still February in UTC.
        assert_eq!(
            cap.period_start(t("2026-02-28T16:30:00Z"), &tz),
            Some(t("2026-02-28T16:00:00Z"))
        );
        let year = Cap {
            rewards: 1,
            period: CapPeriod::Year,
        };
        assert_eq!(
            year.period_start(t("2026-07-01T00:00:00Z"), &tz),
            Some(t("2025-12-31T16:00:00Z"))
        );
    }

    #[test]
    fn a_refund_cancels_what_is_pending_and_takes_back_what_was_given() {
        let cases = [
            (RewardState::Pending, RewardState::Canceled),
            (RewardState::Granted, RewardState::ClawbackDue),
            (RewardState::Capped, RewardState::Capped),
            (RewardState::Canceled, RewardState::Canceled),
            (RewardState::ClawedBack, RewardState::ClawedBack),
        ];
        for (from, to) in cases {
            assert_eq!(from.on_refund(), to, "{from:?}");
            assert_eq!(RewardState::parse(from.as_str()), Some(from));
        }
    }

    #[test]
    fn codes_are_normalised_as_people_type_them() {
        assert_eq!(normalise_code("ab-cd o1l i"), "ABCD0111");
        let code = code_from_random(&[0, 31, 32, 255, 7, 8, 9, 10]);
        assert_eq!(code.len(), CODE_LEN);
        assert_eq!(normalise_code(&code), code);
    }
}
