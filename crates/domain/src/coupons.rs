//! A member's coupons: the states one passes through and when it may be used. What a
//! coupon takes off an order is the quote's (`quote`); who holds one is the store's record.

use jiff::Timestamp;

/// Where a coupon stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CouponState {
    /// Held and not used; usable until its validity ends.
    Issued,
    /// Spent on an order (a full refund of the order issues it again).
    Used,
    /// Past its validity without being used.
    Expired,
    /// Ended unused when its holder closed their account.
    Voided,
}

impl CouponState {
    pub fn as_str(self) -> &'static str {
        match self {
            CouponState::Issued => "issued",
            CouponState::Used => "used",
            CouponState::Expired => "expired",
            CouponState::Voided => "voided",
        }
    }

    pub fn parse(s: &str) -> Option<CouponState> {
        match s {
            "issued" => Some(CouponState::Issued),
            "used" => Some(CouponState::Used),
            "expired" => Some(CouponState::Expired),
            "voided" => Some(CouponState::Voided),
            _ => None,
        }
    }

    /// The state at `now`: an issued coupon is expired from the instant its validity
    /// ends, whether or not a job has marked it yet.
    pub fn at(self, valid_until: Timestamp, now: Timestamp) -> CouponState {
        match self {
            CouponState::Issued if valid_until <= now => CouponState::Expired,
            state => state,
        }
    }
}

/// Why a coupon a cart names cannot be used now, as the quote reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CouponRefusal {
    NotFound,
    Used,
    Expired,
    /// Voided when its holder closed their account.
    Voided,
    /// The programme no longer has the coupon's template.
    UnknownTemplate,
}

impl CouponRefusal {
    pub fn as_str(self) -> &'static str {
        match self {
            CouponRefusal::NotFound => "not_found",
            CouponRefusal::Used => "used",
            CouponRefusal::Expired => "expired",
            CouponRefusal::Voided => "voided",
            CouponRefusal::UnknownTemplate => "unknown_template",
        }
    }
}

/// Whether a coupon in `state`, valid until `valid_until`, may be used at `now`; `held`
/// is `None` when the member holds no coupon of that number.
pub fn refusal(
    held: Option<(CouponState, Timestamp)>,
    template_known: bool,
    now: Timestamp,
) -> Option<CouponRefusal> {
    let Some((state, valid_until)) = held else {
        return Some(CouponRefusal::NotFound);
    };
    match state.at(valid_until, now) {
        CouponState::Used => Some(CouponRefusal::Used),
        CouponState::Expired => Some(CouponRefusal::Expired),
        CouponState::Voided => Some(CouponRefusal::Voided),
        CouponState::Issued if !template_known => Some(CouponRefusal::UnknownTemplate),
        CouponState::Issued => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_coupon_is_usable_only_while_issued_and_valid() {
        let t = |s: i64| Timestamp::from_second(1_800_000_000 + s).unwrap();
        let until = t(100);
        let cases = [
            (None, true, t(0), Some(CouponRefusal::NotFound)),
            (Some(CouponState::Issued), true, t(99), None),
            (
                Some(CouponState::Issued),
                true,
                t(100),
                Some(CouponRefusal::Expired),
            ),
            (
                Some(CouponState::Issued),
                false,
                t(99),
                Some(CouponRefusal::UnknownTemplate),
            ),
            (
                Some(CouponState::Used),
                true,
                t(0),
                Some(CouponRefusal::Used),
            ),
            (
                Some(CouponState::Used),
                true,
                t(200),
                Some(CouponRefusal::Used),
            ),
            (
                Some(CouponState::Expired),
                true,
                t(0),
                Some(CouponRefusal::Expired),
            ),
        ];
        for (state, known, now, want) in cases {
            assert_eq!(
                refusal(state.map(|s| (s, until)), known, now),
                want,
                "{state:?} known={known} at {now}"
            );
        }
        for state in [CouponState::Issued, CouponState::Used, CouponState::Expired] {
            assert_eq!(CouponState::parse(state.as_str()), Some(state));
        }
        assert_eq!(CouponState::parse("lost"), None);
    }
}
