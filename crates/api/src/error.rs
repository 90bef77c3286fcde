//! The one error shape of the API and the table of its stable codes.
//!
//! A code is a contract: it is never renamed, renumbered or reused for another meaning.
//! `docs/ERRORS.md` is this table, and a test keeps the two equal.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tessera_domain::{FieldError, FieldErrorCode};
use tessera_engine::EngineError;
use utoipa::ToSchema;

macro_rules! error_codes {
    ($($variant:ident = $number:literal, $code:literal, $status:literal, $meaning:literal;)*) => {
        /// Every error code of the API.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ErrorCode {
            $($variant,)*
        }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $code,)* }
            }

            pub fn number(self) -> u16 {
                match self { $(ErrorCode::$variant => $number,)* }
            }

            pub fn status(self) -> StatusCode {
                match self {
                    $(ErrorCode::$variant => StatusCode::from_u16($status).expect("valid status in the table"),)*
                }
            }

            pub fn meaning(self) -> &'static str {
                match self { $(ErrorCode::$variant => $meaning,)* }
            }
        }
    };
}

error_codes! {
    MalformedJson = 1, "malformed_json", 400, "The body is not valid JSON.";
    InvalidRequest = 2, "invalid_request", 422, "The JSON does not match the schema: a missing field, a wrong type, an unknown field.";
    InvalidField = 3, "invalid_field", 422, "A field has the right type but an unacceptable value (empty, negative, not a date).";
    StringTooLong = 4, "string_too_long", 422, "A string is longer than its limit.";
    TooManyItems = 5, "too_many_items", 422, "A list has more items than its limit (order lines, tags).";
    AttributesTooLarge = 6, "attributes_too_large", 422, "Member attributes are larger than 16 KiB or nested deeper than 8 levels.";
    AmountOverflow = 7, "amount_overflow", 422, "A sum of amounts does not fit in 64 bits.";
    BodyTooLarge = 8, "body_too_large", 413, "The request body is larger than the route accepts.";
    BatchTooLarge = 9, "batch_too_large", 422, "A batch has more than 1,000 items.";
    UnsupportedMediaType = 10, "unsupported_media_type", 415, "The Content-Type is not the one the route reads.";
    InvalidQuery = 11, "invalid_query", 400, "A query parameter is malformed.";
    InvalidCursor = 12, "invalid_cursor", 400, "The pagination cursor was not issued by this server.";
    PageSizeOutOfRange = 13, "page_size_out_of_range", 422, "`limit` is not between 1 and 200.";
    Unauthenticated = 14, "unauthenticated", 401, "No API key, or an unknown or revoked one.";
    Forbidden = 15, "forbidden", 403, "The API key's role may not use this route.";
    RouteNotFound = 16, "route_not_found", 404, "No route has this path.";
    MethodNotAllowed = 17, "method_not_allowed", 405, "The route does not take this method.";
    IdempotencyKeyInvalid = 18, "idempotency_key_invalid", 400, "The Idempotency-Key header is empty, too long or not printable ASCII.";
    IdempotencyConflict = 19, "idempotency_conflict", 409, "The Idempotency-Key was used before with another request body.";
    IdempotencyInProgress = 20, "idempotency_in_progress", 409, "The first request with this Idempotency-Key is still running.";
    ProgrammeInvalid = 21, "programme_invalid", 422, "The programme file was refused; `details` lists each problem with its line and field.";
    ProgrammeMissing = 22, "programme_missing", 409, "No programme is loaded yet.";
    MemberNotFound = 23, "member_not_found", 404, "No member has this member_id.";
    MemberExists = 24, "member_exists", 409, "A member with this member_id already exists.";
    MemberClosed = 25, "member_closed", 409, "The member's account is closed.";
    EventConflict = 26, "event_conflict", 409, "The event id was received before with another body.";
    UnknownActivity = 27, "unknown_activity", 422, "The activity is neither built in nor declared in the programme.";
    ClockBackwards = 28, "clock_backwards", 409, "The clock only moves forward.";
    ClockNotManual = 29, "clock_not_manual", 409, "The server runs on the system clock.";
    Unavailable = 30, "unavailable", 503, "The database is unreachable; retry later.";
    Internal = 31, "internal", 500, "A bug in Tessera; the server log has the cause.";
    MemberFrozen = 32, "member_frozen", 409, "The member's account is frozen: it cannot spend.";
    PointsDisabled = 33, "points_disabled", 409, "The programme has no `[points]` section.";
    InsufficientPoints = 34, "insufficient_points", 409, "The member's available points do not cover the request; nothing was spent.";
    PointsOverflow = 35, "points_overflow", 422, "The balance would exceed the largest number of points.";
    RedemptionBelowMinimum = 36, "redemption_below_minimum", 422, "Fewer points than the programme's minimum redemption.";
    UnknownReward = 37, "unknown_reward", 422, "The programme's catalogue has no reward with this id.";
    RewardOutOfStock = 38, "reward_out_of_stock", 409, "The reward's stock is used up; nothing was spent.";
    OperationConflict = 39, "operation_conflict", 409, "A redemption or adjustment with this id was made before with another request.";
    OrderAlreadyPaid = 40, "order_already_paid", 409, "The order was already paid, under another event id.";
    RefundExceedsOrder = 41, "refund_exceeds_order", 422, "The refund asks for more than is left of the order (quantities or amount).";
    TiersDisabled = 42, "tiers_disabled", 409, "The programme has no `[[tiers]]`.";
    UnknownPlan = 43, "unknown_plan", 422, "The programme has no plan with this id.";
    SubscriptionNotFound = 44, "subscription_not_found", 404, "No subscription has this id.";
    TrialNotEligible = 45, "trial_not_eligible", 409, "The plan has no trial, or the member does not meet its condition.";
    TrialAlreadyUsed = 46, "trial_already_used", 409, "The member has had this plan's trial before.";
    PaymentRefConflict = 47, "payment_ref_conflict", 409, "The payment_ref was confirmed before with another request; nothing was recorded.";
    PlanAlreadyHeld = 48, "plan_already_held", 409, "The member holds this plan and it does not stack.";
    PartnerCodesExhausted = 49, "partner_codes_exhausted", 409, "A partner right's code pool is empty; nothing was recorded.";
    SubscriptionEnded = 50, "subscription_ended", 409, "The subscription is canceled, refunded or expired: it cannot take this request.";
    PriceChanged = 51, "price_changed", 409, "The amount confirmed is not the plan's price for this member now; nothing was recorded.";
    NotEntitled = 52, "not_entitled", 409, "The member holds no plan carrying this right now.";
    PartnerRightUsedUp = 53, "partner_right_used_up", 409, "The right's uses for this term are used up.";
    UnknownPartnerRight = 54, "unknown_partner_right", 422, "No plan carries a partner right with this id (for this partner, or with a code pool).";
    UnknownCoupon = 55, "unknown_coupon", 422, "The programme has no coupon template with this id.";
    OrderNotPayable = 56, "order_not_payable", 409, "A line cannot be sold to this member, or a chosen coupon does not apply (used, expired, not needed); nothing was spent.";
    QuoteChanged = 57, "quote_changed", 409, "The order no longer comes to `expected_total_minor` (a quota or a price changed); nothing was spent.";
    OrderNotFound = 58, "order_not_found", 404, "No order with this id was committed through `POST /v1/orders` for this member.";
    StoredValueDisabled = 59, "stored_value_disabled", 409, "The programme has no `[stored_value]` section.";
    UnknownOffer = 60, "unknown_offer", 422, "The programme has no stored-value offer with this id.";
    InsufficientStoredValue = 61, "insufficient_stored_value", 409, "The member's stored value does not cover the request; nothing was spent.";
    IdempotencyKeyReused = 62, "idempotency_key_reused", 422, "The Idempotency-Key was used before on another route; each request needs its own key.";
    OrderOfAnotherMember = 63, "order_of_another_member", 409, "The order id belongs to another member: an order id is used by one member only.";
    OccurredAtOutOfRange = 64, "occurred_at_out_of_range", 422, "`occurred_at` lies too far in the past or in the future (see docs/LIMITS.md).";
    ClientIdConflict = 65, "client_id_conflict", 409, "This client id was used before with another request; its first answer stands.";
    UriTooLong = 66, "uri_too_long", 414, "The request's path and query are longer than 8 KiB.";
    HeadersTooLarge = 67, "headers_too_large", 431, "The request has more than 100 headers, or they are larger than 16 KiB.";
    RequestTimeout = 68, "request_timeout", 408, "The request body did not arrive in time (30 s).";
    KeyNotFound = 69, "key_not_found", 404, "No API key has this id.";
    KeyRevoked = 70, "key_revoked", 409, "The API key is revoked: it cannot be rotated.";
    UnknownPartner = 71, "unknown_partner", 422, "The programme declares no such partner (in a plan's partner_rights).";
    IdempotencyNotSupported = 72, "idempotency_not_supported", 400, "This route answers a new API key, which is stored nowhere: it takes no Idempotency-Key.";
    LastAdminKey = 73, "last_admin_key", 409, "The key is the last admin key; make another admin key (or rotate this one) first.";
    ProgrammeStrandsValue = 74, "programme_strands_value", 409, "The programme change would take from members what they hold (a plan, tier or coupon template removed while held; currency or time zone changed on a ledger with entries); `stranded` lists each item and the members affected. Nothing was saved.";
    MemberNotClosed = 75, "member_not_closed", 409, "Only a closed member can be erased: close the account first (`POST /v1/members/{id}/close`).";
    EventNotFound = 76, "event_not_found", 404, "No event has this id.";
    VersionNotFound = 77, "version_not_found", 404, "No programme version has this number.";
    RateLimited = 78, "rate_limited", 429, "The API key is over the server's per-key rate (`serve --key-rate`); retry after the `Retry-After` seconds.";
    ReferralDisabled = 79, "referral_disabled", 409, "The programme has no `[referral]` section.";
    ReferralCodeUnknown = 80, "referral_code_unknown", 422, "No member has this referral code.";
    ReferralSelf = 81, "referral_self", 422, "A member cannot refer themselves: the code is their own, its owner shares an identity attribute with them (`referral.identity`), or its owner joined after them.";
    ReferralSecondReferrer = 82, "referral_second_referrer", 409, "The member was referred already: a member has one referrer.";
    ReferralCodeUnusable = 83, "referral_code_unusable", 409, "The code has brought its limit of members (`referral.max_referrals_per_code`), or its owner is not an active member.";
    ReferralTooLate = 84, "referral_too_late", 409, "A referrer's code is taken when the member is created, or within the programme's `referral.late_days` of it.";
    OfferNotFound = 85, "offer_not_found", 404, "The programme has no conversion offer with this id.";
    OfferNotOpen = 86, "offer_not_open", 409, "The offer's window is not open now (it opens at `starts_at` and closes at `ends_at`, exclusive).";
    OfferNotEligible = 87, "offer_not_eligible", 409, "The member is not in the offer's segment (its `condition` does not hold for them now).";
    OfferAlreadyUsed = 88, "offer_already_used", 409, "The member has taken this offer before: an offer is taken once per member.";
    OfferMismatch = 89, "offer_mismatch", 422, "The offer is for another plan, or gives something other than what the request asks for (a trial, a paid first term, a coupon).";
}

/// An item a refused programme change would take from members.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StrandedBody {
    /// `plans`, `tiers`, `coupons`, `currency` or `timezone`.
    pub section: String,
    /// The item's id (the setting's name for `currency` and `timezone`).
    pub id: String,
    /// Members who hold it (for `currency` and `timezone`: members with ledger entries).
    pub members: i64,
    /// Why the change would take it from members, and how to keep it (keep the item, or
    /// rename it with `renamed_from`), in words.
    pub reason: String,
}

impl StrandedBody {
    pub fn of(s: &tessera_domain::programme::change::Stranded) -> Self {
        StrandedBody {
            section: s.section.as_str().to_owned(),
            id: s.id.clone(),
            members: s.members,
            reason: s.reason.clone(),
        }
    }
}

/// A problem in a refused programme file.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProgrammeIssueBody {
    /// The problem's line in the file, from 1; 0 when the problem has no place in the file
    /// (the file is too large, or a required section is missing).
    pub line: u32,
    /// The problem's column in the line, from 1; 0 with line 0.
    pub column: u32,
    /// The dotted path of the key at fault, such as `segments[1].condition`; empty when the
    /// problem has no key (a TOML syntax error, a file too large).
    pub field: String,
    /// What is wrong, in words.
    pub reason: String,
}

/// What went wrong: a stable code to act on, a message for people, and, when they apply,
/// the request field at fault and the details of a refused programme.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable code from the table of error codes.
    pub code: String,
    /// What went wrong, in words for a person. Its wording may change: a client acts on
    /// `code`.
    pub message: String,
    /// The request field at fault, as a dotted path, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For `programme_invalid`: every problem found in the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Vec<ProgrammeIssueBody>>,
    /// For `programme_strands_value`: each item the change would take from members.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stranded: Option<Vec<StrandedBody>>,
}

/// The one error shape of the API.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub field: Option<String>,
    pub details: Option<Vec<ProgrammeIssueBody>>,
    pub stranded: Option<Vec<StrandedBody>>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            field: None,
            details: None,
            stranded: None,
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        let field = field.into();
        self.field = if field.is_empty() { None } else { Some(field) };
        self
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code.as_str().to_owned(),
                message: self.message.clone(),
                field: self.field.clone(),
                details: self.details.clone(),
                stranded: self.stranded.clone(),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.code.status(), axum::Json(self.body())).into_response()
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        let code = match e.code {
            FieldErrorCode::InvalidField => ErrorCode::InvalidField,
            FieldErrorCode::StringTooLong => ErrorCode::StringTooLong,
            FieldErrorCode::TooManyItems => ErrorCode::TooManyItems,
            FieldErrorCode::AttributesTooLarge => ErrorCode::AttributesTooLarge,
            FieldErrorCode::AmountOverflow => ErrorCode::AmountOverflow,
        };
        let message = if e.field.is_empty() {
            e.message
        } else {
            format!("{}: {}", e.field, e.message)
        };
        ApiError::new(code, message).with_field(e.field)
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        let code = match &e {
            EngineError::Field(f) => return ApiError::from(f.clone()),
            EngineError::ProgrammeInvalid(issues) => {
                let mut err = ApiError::new(
                    ErrorCode::ProgrammeInvalid,
                    format!(
                        "the programme was refused: {}",
                        issues.first().map(ToString::to_string).unwrap_or_default()
                    ),
                );
                err.field = issues
                    .first()
                    .map(|i| i.field.clone())
                    .filter(|f| !f.is_empty());
                err.details = Some(
                    issues
                        .iter()
                        .map(|i| ProgrammeIssueBody {
                            line: i.line,
                            column: i.column,
                            field: i.field.clone(),
                            reason: i.reason.clone(),
                        })
                        .collect(),
                );
                return err;
            }
            EngineError::ProgrammeStrands(assessment) => {
                let members: i64 = assessment
                    .stranded
                    .iter()
                    .map(|s| s.members)
                    .max()
                    .unwrap_or(0);
                let mut err = ApiError::new(
                    ErrorCode::ProgrammeStrandsValue,
                    format!(
                        "the programme change was refused: {} (at least {members} member(s) affected; nothing was saved)",
                        assessment
                            .stranded
                            .iter()
                            .map(|s| s.reason.as_str())
                            .collect::<Vec<_>>()
                            .join("; ")
                    ),
                );
                err.stranded = Some(assessment.stranded.iter().map(StrandedBody::of).collect());
                return err;
            }
            EngineError::ProgrammeMissing => ErrorCode::ProgrammeMissing,
            EngineError::MemberNotFound(_) => ErrorCode::MemberNotFound,
            EngineError::MemberExists(_) => ErrorCode::MemberExists,
            EngineError::OfferNotFound(_) => ErrorCode::OfferNotFound,
            EngineError::OfferAlreadyUsed(_) => ErrorCode::OfferAlreadyUsed,
            EngineError::OfferRefused(r) => {
                use tessera_domain::offers::OfferRefusal;
                match r {
                    OfferRefusal::NotOpen => ErrorCode::OfferNotOpen,
                    OfferRefusal::NotEligible(_) => ErrorCode::OfferNotEligible,
                    OfferRefusal::AlreadyTaken => ErrorCode::OfferAlreadyUsed,
                    OfferRefusal::Mismatch(_) => ErrorCode::OfferMismatch,
                }
            }
            EngineError::ReferralDisabled => ErrorCode::ReferralDisabled,
            EngineError::ReferralCodeUnknown(_) => ErrorCode::ReferralCodeUnknown,
            EngineError::ReferralRefused(r) => {
                use tessera_domain::referral::Refusal;
                match r {
                    Refusal::SelfReferral(_) => ErrorCode::ReferralSelf,
                    Refusal::SecondReferrer => ErrorCode::ReferralSecondReferrer,
                    Refusal::CodeUnusable(_) => ErrorCode::ReferralCodeUnusable,
                    Refusal::TooLate { .. } => ErrorCode::ReferralTooLate,
                }
            }
            EngineError::MemberClosed(_) => ErrorCode::MemberClosed,
            EngineError::MemberNotClosed(_) => ErrorCode::MemberNotClosed,
            EngineError::EventConflict(_) => ErrorCode::EventConflict,
            EngineError::UnknownActivity(_) => ErrorCode::UnknownActivity,
            EngineError::ClockBackwards { .. } => ErrorCode::ClockBackwards,
            EngineError::ClockNotManual => ErrorCode::ClockNotManual,
            EngineError::MemberFrozen(_) => ErrorCode::MemberFrozen,
            EngineError::PointsDisabled => ErrorCode::PointsDisabled,
            EngineError::InsufficientPoints { .. } => ErrorCode::InsufficientPoints,
            EngineError::PointsOverflow => ErrorCode::PointsOverflow,
            EngineError::BelowMinimum { .. } => ErrorCode::RedemptionBelowMinimum,
            EngineError::UnknownReward(_) => ErrorCode::UnknownReward,
            EngineError::RewardOutOfStock(_) => ErrorCode::RewardOutOfStock,
            EngineError::OperationConflict(_) => ErrorCode::OperationConflict,
            EngineError::OrderAlreadyPaid(_) => ErrorCode::OrderAlreadyPaid,
            EngineError::RefundExceedsOrder(_) => ErrorCode::RefundExceedsOrder,
            EngineError::TiersDisabled => ErrorCode::TiersDisabled,
            EngineError::UnknownPlan(_) => ErrorCode::UnknownPlan,
            EngineError::SubscriptionNotFound(_) => ErrorCode::SubscriptionNotFound,
            EngineError::TrialNotEligible(_) => ErrorCode::TrialNotEligible,
            EngineError::TrialAlreadyUsed(_) => ErrorCode::TrialAlreadyUsed,
            EngineError::PaymentRefConflict(_) => ErrorCode::PaymentRefConflict,
            EngineError::PlanAlreadyHeld(_) => ErrorCode::PlanAlreadyHeld,
            EngineError::PartnerCodesExhausted(_) => ErrorCode::PartnerCodesExhausted,
            EngineError::SubscriptionEnded(..) => ErrorCode::SubscriptionEnded,
            EngineError::PriceChanged { .. } => ErrorCode::PriceChanged,
            EngineError::NotEntitled(_) => ErrorCode::NotEntitled,
            EngineError::PartnerRightUsedUp(_) => ErrorCode::PartnerRightUsedUp,
            EngineError::UnknownPartnerRight(_) => ErrorCode::UnknownPartnerRight,
            EngineError::UnknownCoupon(_) => ErrorCode::UnknownCoupon,
            EngineError::OrderNotPayable(_) => ErrorCode::OrderNotPayable,
            EngineError::QuoteChanged { .. } => ErrorCode::QuoteChanged,
            EngineError::OrderNotFound(_) => ErrorCode::OrderNotFound,
            EngineError::StoredValueDisabled => ErrorCode::StoredValueDisabled,
            EngineError::UnknownOffer(_) => ErrorCode::UnknownOffer,
            EngineError::InsufficientStoredValue { .. } => ErrorCode::InsufficientStoredValue,
            EngineError::OrderOfAnotherMember(_) => ErrorCode::OrderOfAnotherMember,
            EngineError::OccurredAtOutOfRange(_) => ErrorCode::OccurredAtOutOfRange,
            EngineError::ClientIdConflict(_) => ErrorCode::ClientIdConflict,
            EngineError::KeyNotFound(_) => ErrorCode::KeyNotFound,
            EngineError::KeyRevoked(_) => ErrorCode::KeyRevoked,
            EngineError::UnknownPartner(_) => ErrorCode::UnknownPartner,
            EngineError::LastAdminKey(_) => ErrorCode::LastAdminKey,
            EngineError::Store(tessera_engine::StoreError::Unavailable(cause)) => {
                tracing::error!(%cause, "database unavailable");
                return ApiError::new(
                    ErrorCode::Unavailable,
                    "the database is unavailable; retry later",
                );
            }
            EngineError::Store(cause) => {
                tracing::error!(%cause, "internal error");
                return ApiError::new(
                    ErrorCode::Internal,
                    "internal error; the server log has the cause",
                );
            }
        };
        ApiError::new(code, e.to_string())
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
