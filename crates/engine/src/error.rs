use tessera_domain::{FieldError, ProgrammeIssue};
use tessera_store::StoreError;

/// Every way a use case can refuse. The API maps each to one stable error code.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Field(#[from] FieldError),
    #[error("the programme is invalid")]
    ProgrammeInvalid(Vec<ProgrammeIssue>),
    #[error("the programme change would strand what members hold")]
    ProgrammeStrands(tessera_domain::programme::change::Assessment),
    #[error("no programme is loaded: start with --programme FILE or --demo, or PUT /v1/programme")]
    ProgrammeMissing,
    #[error("no member has member_id `{0}`")]
    MemberNotFound(String),
    #[error("a member with member_id `{0}` already exists")]
    MemberExists(String),
    #[error("member `{0}` is closed")]
    MemberClosed(String),
    #[error("member `{0}` is not closed: close the account before erasing it")]
    MemberNotClosed(String),
    #[error("event `{0}` was already received with another body")]
    EventConflict(String),
    #[error("activity `{0}` is neither built in nor declared in the programme")]
    UnknownActivity(String),
    #[error("the clock is at {now}; it cannot go back to {requested}")]
    ClockBackwards {
        now: jiff::Timestamp,
        requested: jiff::Timestamp,
    },
    #[error("the server runs on the system clock; start it with --clock manual to set the time")]
    ClockNotManual,
    #[error("member `{0}` is frozen")]
    MemberFrozen(String),
    #[error("the programme has no [points] section")]
    PointsDisabled,
    #[error("{needed} points are needed but {available} are available")]
    InsufficientPoints { needed: i64, available: i64 },
    #[error("the balance would exceed the largest number of points")]
    PointsOverflow,
    #[error("at least {minimum} points must be redeemed at once")]
    BelowMinimum { minimum: i64 },
    #[error("the programme has no reward `{0}`")]
    UnknownReward(String),
    #[error("reward `{0}` is out of stock")]
    RewardOutOfStock(String),
    #[error("operation `{0}` was made before with another request")]
    OperationConflict(String),
    #[error("order `{0}` was already paid")]
    OrderAlreadyPaid(String),
    #[error("{0}")]
    RefundExceedsOrder(String),
    #[error("the programme has no tiers")]
    TiersDisabled,
    #[error("the programme has no plan `{0}`")]
    UnknownPlan(String),
    #[error("no subscription has id {0}")]
    SubscriptionNotFound(i64),
    #[error("{0}")]
    TrialNotEligible(String),
    #[error("the member has already had the trial of plan `{0}`")]
    TrialAlreadyUsed(String),
    #[error("payment_ref `{0}` was confirmed before with another request")]
    PaymentRefConflict(String),
    #[error("the member already holds plan `{0}`, which does not stack")]
    PlanAlreadyHeld(String),
    #[error("the code pool of `{0}` is empty; nothing was recorded")]
    PartnerCodesExhausted(String),
    #[error("subscription {0} is {1}")]
    SubscriptionEnded(i64, String),
    #[error("the price is {price}, not {given}")]
    PriceChanged { price: i64, given: i64 },
    #[error("{0}")]
    NotEntitled(String),
    #[error("the right `{0}` is used up for this term")]
    PartnerRightUsedUp(String),
    #[error("no plan carries a partner right `{0}` of this kind")]
    UnknownPartnerRight(String),
    #[error("the programme has no [stored_value] section")]
    StoredValueDisabled,
    #[error("the programme has no stored-value offer `{0}`")]
    UnknownOffer(String),
    #[error("{needed} of stored value is needed but {available} is available")]
    InsufficientStoredValue { needed: i64, available: i64 },
    #[error("no order `{0}` was committed for this member")]
    OrderNotFound(String),
    #[error("order `{0}` belongs to another member")]
    OrderOfAnotherMember(String),
    #[error("occurred_at {0}")]
    OccurredAtOutOfRange(String),
    #[error("client id `{0}` was used before with another request")]
    ClientIdConflict(String),
    #[error("the order cannot be paid as it stands: {0}")]
    OrderNotPayable(String),
    #[error("the order now comes to {total}, not {expected}")]
    QuoteChanged { expected: i64, total: i64 },
    #[error("the programme has no coupon `{0}`")]
    UnknownCoupon(String),
    #[error("no API key has id {0}")]
    KeyNotFound(i64),
    #[error("API key {0} is revoked")]
    KeyRevoked(i64),
    #[error("the programme declares no partner `{0}` (in a plan's partner_rights)")]
    UnknownPartner(String),
    #[error("key {0} is the last admin key: make another admin key (or rotate this one) first")]
    LastAdminKey(i64),
    #[error("the programme has no [referral] section")]
    ReferralDisabled,
    #[error("no member has the referral code `{0}`")]
    ReferralCodeUnknown(String),
    #[error("{}", describe_refusal(.0))]
    ReferralRefused(tessera_domain::referral::Refusal),
    #[error("the programme has no conversion offer `{0}`")]
    OfferNotFound(String),
    #[error("{}", describe_offer_refusal(.0))]
    OfferRefused(tessera_domain::offers::OfferRefusal),
    #[error("the member has taken offer `{0}` before")]
    OfferAlreadyUsed(String),
    #[error("storage: {0}")]
    Store(#[from] StoreError),
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

fn describe_offer_refusal(r: &tessera_domain::offers::OfferRefusal) -> String {
    use tessera_domain::offers::OfferRefusal;
    match r {
        OfferRefusal::NotOpen => "the offer is not open now".to_owned(),
        OfferRefusal::NotEligible(why) => why.clone(),
        OfferRefusal::AlreadyTaken => "the member has taken this offer before".to_owned(),
        OfferRefusal::Mismatch(why) => why.clone(),
    }
}

fn describe_refusal(r: &tessera_domain::referral::Refusal) -> String {
    use tessera_domain::referral::Refusal;
    match r {
        Refusal::SelfReferral(why) => format!("a member cannot refer themselves: {why}"),
        Refusal::SecondReferrer => {
            "the member was referred already; a member has one referrer".to_owned()
        }
        Refusal::CodeUnusable(why) => format!("the code cannot be used: {why}"),
        Refusal::TooLate { days: 0 } => {
            "a referral code is taken only when the member is created".to_owned()
        }
        Refusal::TooLate { days } => {
            format!("a referral code is taken only within {days} days of joining")
        }
    }
}
