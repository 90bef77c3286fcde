//! The paid track: plans on offer, subscriptions (purchase, trial, gift, renewal payments,
//! cancel, refund), entitlements, renewals due, partner code pools, and the partner role.

use crate::error::{ApiError, ApiResult, ErrorBody, ErrorCode};
use crate::extract::{encode_cursor, ApiJson, Caller, Page, SubscriptionPage};
use crate::routes::{rfc3339, MemberPath};
use crate::AppState;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tessera_domain::limits::AMOUNT_MINOR_MAX;
use tessera_domain::ExternalId;
use tessera_engine::clock::from_us;
use tessera_engine::{Purchase, Role, SubscribeRequest, SubscriptionView};
use utoipa::ToSchema;

/// Most codes in one upload.
const CODES_PER_UPLOAD_MAX: usize = 10_000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/subscriptions", post(create_subscription))
        .route("/v1/subscriptions/{id}", get(get_subscription))
        .route("/v1/subscriptions/{id}/payments", post(post_payment))
        .route("/v1/subscriptions/{id}/cancel", post(post_cancel))
        .route("/v1/subscriptions/{id}/refunds", post(post_refund))
        .route(
            "/v1/members/{member_id}/subscriptions",
            get(member_subscriptions),
        )
        .route("/v1/members/{member_id}/plans", get(member_plans))
        .route(
            "/v1/members/{member_id}/entitlements",
            get(member_entitlements),
        )
        .route("/v1/renewals", get(list_renewals))
        .route(
            "/v1/admin/code-pools/{pool}",
            get(get_pool).post(post_codes),
        )
        .route("/v1/partner/members/{member_id}", get(partner_member))
        .route("/v1/partner/redemptions", post(partner_redemption))
}

/// The `{id}` of a subscription route.
pub struct SubscriptionPath(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for SubscriptionPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        super::positive_id(parts, state, "subscription")
            .await
            .map(SubscriptionPath)
    }
}

fn id_field(raw: String, field: &str) -> Result<ExternalId, ApiError> {
    ExternalId::parse(raw).map_err(|e| ApiError::from(e.within(field)))
}

fn amount(v: Option<i64>) -> Result<Option<i64>, ApiError> {
    match v {
        Some(a) if !(0..=AMOUNT_MINOR_MAX).contains(&a) => Err(ApiError::new(
            ErrorCode::InvalidField,
            format!("amount_minor must be between 0 and {AMOUNT_MINOR_MAX}"),
        )
        .with_field("amount_minor")),
        other => Ok(other),
    }
}

// ---- views ----

/// One term of a subscription: a trial or a paid period `[start, end)`, with what was charged for
/// it and how much of that was refunded.
#[derive(Serialize, ToSchema)]
pub struct TermView {
    /// The term's number within the subscription, from 1, in the order the terms run.
    pub term: i64,
    /// `trial`, `paid`, or `reward` (days of the plan given free by a referral reward:
    /// nothing to refund, and not a paid term for a first-term price).
    pub kind: String,
    /// When the term begins, an RFC 3339 instant in UTC. A paid term begins at the previous end
    /// while the subscription is trialing or active (stacking), at the old end in a back-dating
    /// grace, and at its payment otherwise.
    #[schema(format = DateTime)]
    pub start: String,
    /// When the term ends (exclusive), an RFC 3339 instant in UTC. A cancel now or a refund can end
    /// access earlier: see `access_end` of the subscription.
    #[schema(format = DateTime)]
    pub end: String,
    /// What was charged for the term, in minor units of the programme's currency; 0 for a trial.
    pub amount_minor: i64,
    /// Why the price was what it was: `list`, `first_term`, `rule:NAME`, `offer:ID` (a
    /// conversion offer's first-term price), `trial`, or on a `reward` term the reward that
    /// gave it (`referral:REFEREE:REWARD`).
    pub price_basis: String,
    /// The shop's reference of the payment that paid for the term; null for a trial, which nobody
    /// pays for.
    pub payment_ref: Option<String>,
    /// When the payment was confirmed, an RFC 3339 instant in UTC; for a trial, when it started.
    #[schema(format = DateTime)]
    pub paid_at: String,
    /// How much of `amount_minor` a refund gave back, in minor units of the programme's currency; 0
    /// until a refund. It is the term's own share before the cost of benefits used is subtracted,
    /// so the terms' sum can exceed what the shop owed back.
    pub refunded_minor: i64,
}

/// A partner code handed out with a paid term, taken from the pool of a right that has
/// `code_pool = true`; no code is ever handed out twice.
#[derive(Serialize, ToSchema)]
pub struct CodeView {
    /// The partner right the code is for.
    pub right: String,
    /// The code as uploaded to the pool, for the member to use at the partner.
    pub code: String,
    /// The number of the paid term that drew the code (`term` in `terms`).
    pub term: i64,
    /// When the code was handed out, which is when the term's payment was confirmed, an RFC 3339
    /// instant in UTC.
    #[schema(format = DateTime)]
    pub assigned_at: String,
}

/// One entry of a subscription's history: a status change, a payment, a renewal falling due, a
/// cancel or a refund.
#[derive(Serialize, ToSchema)]
pub struct SubscriptionEventView {
    /// When it happened, an RFC 3339 instant in UTC. A change the clock made is recorded at the
    /// instant it fell due, not when the job ran.
    #[schema(format = DateTime)]
    pub at: String,
    /// `status`, `payment`, `renewal_due`, `cancel`, `refund`, `reward` (free days added)
    /// or `reward_taken_back`.
    pub kind: String,
    /// The status before, on a `status` entry; null on every other kind, and on `trial_started`,
    /// which has no status before.
    pub from: Option<String>,
    /// The status after, on a `status` entry; null on every other kind.
    pub to: Option<String>,
    /// What caused it: `paid`, `trial_started`, `trial_converted`, `trial_ended`,
    /// `term_ended`, `grace_ended`, `renewed_in_grace`, `reactivated`, `renewal_notice`,
    /// `cancel_at_period_end`, `cancel_now`, `canceled_at_period_end`, `canceled_now`,
    /// `refund`, `refunded`, `member_closed` (a refund because the holder closed their
    /// account).
    pub cause: String,
    /// The shop's payment reference, on a `payment`; null on every other kind.
    pub payment_ref: Option<String>,
    /// An amount in minor units of the programme's currency: the term's price on a `payment`, the
    /// price of the next term on a `renewal_due`, and what is owed back on a `refund`; null on
    /// `status` and `cancel`, and on the refund of a plan the programme no longer declares.
    pub amount_minor: Option<i64>,
}

/// A renewal for the shop's billing to charge. It is recorded `renewal_notice_days` before the
/// access ends, for a subscription that renews automatically and is not canceled; the next payment
/// marks it `paid`, and it becomes `lapsed` when the subscription ends unpaid, is canceled now or
/// is refunded.
#[derive(Serialize, ToSchema)]
pub struct RenewalDueView {
    /// The id of the subscription to renew.
    pub subscription: i64,
    /// The holder's `external_id`, in `GET /v1/renewals`; null inside a subscription, whose own
    /// `member_id` says it.
    pub member_id: Option<String>,
    /// The plan's id, in `GET /v1/renewals`; null inside a subscription, whose own `plan` says it.
    pub plan: Option<String>,
    /// The end of the period this renewal continues.
    #[schema(format = DateTime)]
    pub period_end: String,
    /// When the renewal fell due, an RFC 3339 instant in UTC: `renewal_notice_days` before
    /// `period_end`, but never before the last term began.
    #[schema(format = DateTime)]
    pub due_at: String,
    /// The price of the next term at the notice.
    pub amount_minor: i64,
    /// `open`, `paid` or `lapsed`.
    pub state: String,
}

/// A subscription to a plan: who holds it and who paid, its status and access, and its terms,
/// partner codes, renewals due and history.
#[derive(Serialize, ToSchema)]
pub struct SubscriptionOut {
    /// The subscription's id, the `{id}` of the `/v1/subscriptions/{id}` routes.
    pub id: i64,
    /// The plan's id in the programme.
    pub plan: String,
    /// The plan's display name; null when the active programme no longer declares the plan.
    pub plan_name: Option<String>,
    /// The member who holds it.
    pub member_id: String,
    /// The member who paid (another member for a gift).
    pub buyer: String,
    /// Whether it is a gift: `buyer` is another member than the holder.
    pub gift: bool,
    /// `trialing`, `active`, `grace`, `expired`, `canceled` or `refunded`.
    pub status: String,
    /// Whether the member holds the plan's rights now.
    pub access: bool,
    /// Access ends here unless renewed.
    #[schema(format = DateTime)]
    pub access_end: String,
    /// When the grace ends, an RFC 3339 instant in UTC, while the status is `grace`; null in every
    /// other status.
    #[schema(format = DateTime)]
    pub grace_until: Option<String>,
    /// Whether renewals fall due for the shop's billing to charge. Always false for a plan that
    /// does not renew, and set to false by a cancel at period end.
    pub auto_renew: bool,
    /// Whether a cancel at period end is pending: access stays until `access_end`, then the status
    /// becomes `canceled`. A payment before then withdraws it.
    pub cancel_at_period_end: bool,
    /// The sum of every term's `amount_minor`, in minor units of the programme's currency: what was
    /// charged, not net of refunds.
    pub paid_total_minor: i64,
    /// Its terms in order, the trial (if any) first.
    pub terms: Vec<TermView>,
    /// The partner codes its paid terms drew, in the order they were handed out.
    pub partner_codes: Vec<CodeView>,
    /// Every renewal that fell due for it, in any state, by `period_end`; here their `member_id`
    /// and `plan` are null.
    pub renewals: Vec<RenewalDueView>,
    /// Every change, oldest first.
    pub history: Vec<SubscriptionEventView>,
    /// When it was bought or its trial started, an RFC 3339 instant in UTC.
    #[schema(format = DateTime)]
    pub created_at: String,
}

fn t(us: i64) -> String {
    rfc3339(from_us(us))
}

fn renewal_view(
    r: &tessera_engine::RenewalRow,
    member: Option<String>,
    plan: Option<String>,
) -> RenewalDueView {
    RenewalDueView {
        subscription: r.subscription_id,
        member_id: member,
        plan,
        period_end: t(r.period_end_us),
        due_at: t(r.due_at_us),
        amount_minor: r.amount_minor,
        state: r.state.clone(),
    }
}

fn subscription_out(v: SubscriptionView) -> SubscriptionOut {
    let r = &v.row;
    SubscriptionOut {
        id: r.id,
        plan: r.plan.clone(),
        plan_name: v.plan_name.clone(),
        gift: r.member_id != r.buyer_member_id,
        member_id: v.holder.clone(),
        buyer: v.buyer.clone(),
        status: r.status.clone(),
        access: v.access_now,
        access_end: t(r.access_end_us),
        grace_until: r.grace_until_us.map(t),
        auto_renew: r.auto_renew,
        cancel_at_period_end: r.cancel_at_period_end,
        paid_total_minor: v.terms.iter().map(|t| t.amount_minor).sum(),
        terms: v
            .terms
            .iter()
            .map(|x| TermView {
                term: x.term_no,
                kind: x.kind.clone(),
                start: t(x.start_us),
                end: t(x.end_us),
                amount_minor: x.amount_minor,
                price_basis: x.price_basis.clone(),
                payment_ref: x.payment_ref.clone(),
                paid_at: t(x.paid_at_us),
                refunded_minor: x.refunded_minor,
            })
            .collect(),
        partner_codes: v
            .codes
            .iter()
            .map(|c| CodeView {
                right: c.pool.clone(),
                code: c.code.clone(),
                term: c.term_no,
                assigned_at: t(c.assigned_at_us),
            })
            .collect(),
        renewals: v
            .renewals
            .iter()
            .map(|x| renewal_view(x, None, None))
            .collect(),
        history: v
            .history
            .iter()
            .map(|h| SubscriptionEventView {
                at: t(h.at_us),
                kind: h.kind.clone(),
                from: h.from_status.clone(),
                to: h.to_status.clone(),
                cause: h.cause.clone(),
                payment_ref: h.payment_ref.clone(),
                amount_minor: h.amount_minor,
            })
            .collect(),
        created_at: t(r.created_at_us),
    }
}

fn reply(v: SubscriptionView, created: bool) -> (StatusCode, Json<SubscriptionOut>) {
    let status = if created && !v.replayed {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    (status, Json(subscription_out(v)))
}

// ---- subscriptions ----

/// A purchase of a plan: a paid term confirmed by the shop's `payment_ref`, or the plan's trial,
/// for the buyer or as a gift to another member.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"member_id": "u-1001", "plan": "plus", "payment_ref": "pay-2026-0001", "amount_minor": 14900, "auto_renew": true}))]
pub struct SubscriptionIn {
    /// The member who buys; they hold it too unless `gift_to` names someone else.
    #[schema(value_type = crate::schema::IdText)]
    pub member_id: String,
    /// The plan's id in the programme (its `[[plans]]` `id`), such as `plus`.
    #[schema(value_type = crate::schema::NameText)]
    pub plan: String,
    /// The shop's payment that paid for the term: the same reference again replays the
    /// first answer. Give this or `trial`.
    #[schema(value_type = Option<crate::schema::IdText>)]
    pub payment_ref: Option<String>,
    /// The amount the shop charged; when given it must be the price (`GET .../plans`).
    #[schema(minimum = 0, maximum = 1_000_000_000_000i64)]
    pub amount_minor: Option<i64>,
    /// Start the plan's trial instead of paying.
    pub trial: Option<bool>,
    /// A gift: the member who receives the term.
    #[schema(value_type = Option<crate::schema::IdText>)]
    pub gift_to: Option<String>,
    /// Renew automatically; defaults to the plan's setting.
    pub auto_renew: Option<bool>,
    /// A conversion offer to take (`GET /v1/members/{id}/offers`): its trial (with
    /// `trial: true`) or its first-term price (with `payment_ref`; `amount_minor`, when
    /// given, must be the offer's price). Refused when closed, not for this member, or
    /// taken before.
    #[schema(value_type = Option<crate::schema::NameText>)]
    pub offer: Option<String>,
}

/// Buys a plan: a paid term confirmed by `payment_ref`, or the trial. A second purchase
/// of a stacking plan extends the end. 201 the first time; 200 with the first answer for
/// the same `payment_ref` and body. Partner codes are drawn on activation; an empty pool
/// refuses the purchase and records nothing.
#[utoipa::path(post, path = "/v1/subscriptions", tag = "plans", security(("api_key" = [])),
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$", description = "Replays the first answer for the same key and body")),
    request_body = SubscriptionIn,
    responses((status = 201, body = SubscriptionOut),
        (status = 200, description = "The same payment_ref and body as before: the first answer", body = SubscriptionOut),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "plan_already_held, trial_already_used, trial_not_eligible, payment_ref_conflict, partner_codes_exhausted, price_changed, member_closed, offer_not_open, offer_not_eligible, offer_already_used", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, description = "offer_mismatch, invalid_field, ...", body = ErrorBody)))]
pub async fn create_subscription(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<SubscriptionIn>,
) -> ApiResult<(StatusCode, Json<SubscriptionOut>)> {
    caller.require(&[Role::Admin, Role::Storefront])?;
    let member = id_field(body.member_id, "member_id")?;
    let plan =
        tessera_domain::Tag::parse(body.plan).map_err(|e| ApiError::from(e.within("plan")))?;
    let gift_to = body.gift_to.map(|g| id_field(g, "gift_to")).transpose()?;
    let offer = body
        .offer
        .map(|o| tessera_domain::Tag::parse(o).map_err(|e| ApiError::from(e.within("offer"))))
        .transpose()?
        .map(|o| o.as_str().to_owned());
    let amount_minor = amount(body.amount_minor)?;
    let purchase = match (body.payment_ref, body.trial.unwrap_or(false)) {
        (Some(r), false) => Purchase::Paid {
            payment_ref: id_field(r, "payment_ref")?,
            amount_minor,
        },
        (None, true) if amount_minor.is_none() => Purchase::Trial,
        (None, true) => {
            return Err(
                ApiError::new(ErrorCode::InvalidField, "a trial has no amount")
                    .with_field("amount_minor"),
            )
        }
        (Some(_), true) => {
            return Err(ApiError::new(
                ErrorCode::InvalidField,
                "give either `payment_ref` or `trial: true`, not both",
            )
            .with_field("trial"))
        }
        (None, false) => {
            return Err(ApiError::new(
                ErrorCode::InvalidField,
                "give `payment_ref` (a paid term) or `trial: true`",
            )
            .with_field("payment_ref"))
        }
    };
    let view = state
        .engine
        .subscribe(SubscribeRequest {
            member,
            plan: plan.as_str().to_owned(),
            purchase,
            gift_to,
            auto_renew: body.auto_renew,
            offer,
        })
        .await
        .map_err(|e| crate::routes::offers::at_offer(e, "offer"))?;
    Ok(reply(view, true))
}

/// A subscription: status, access, terms, partner codes, renewals due and history.
#[utoipa::path(get, path = "/v1/subscriptions/{id}", tag = "plans", security(("api_key" = [])),
    params(("id" = i64, Path, minimum = 1)),
    responses((status = 200, body = SubscriptionOut),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn get_subscription(
    State(state): State<AppState>,
    caller: Caller,
    SubscriptionPath(id): SubscriptionPath,
) -> ApiResult<Json<SubscriptionOut>> {
    caller.require(&[Role::Admin, Role::Storefront])?;
    Ok(Json(subscription_out(
        state.engine.subscription_view(id).await?,
    )))
}

/// A renewal payment of a subscription, as the shop's payment system confirmed it. It adds a term
/// after the current end, or from now once the subscription expired.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"payment_ref": "pay-2026-0002", "amount_minor": 14900}))]
pub struct PaymentIn {
    /// The shop's payment of the renewal: the same reference again replays the first answer.
    #[schema(value_type = crate::schema::IdText)]
    pub payment_ref: String,
    /// The amount charged; when given it must be the price now.
    #[schema(minimum = 0, maximum = 1_000_000_000_000i64)]
    pub amount_minor: Option<i64>,
}

/// A renewal paid: a new term after the current end, back-dated to the old end when paid
/// in a back-dating grace, or from now once expired.
#[utoipa::path(post, path = "/v1/subscriptions/{id}/payments", tag = "plans", security(("api_key" = [])),
    params(("id" = i64, Path, minimum = 1),
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$", description = "Replays the first answer for the same key and body")),
    request_body = PaymentIn,
    responses((status = 201, body = SubscriptionOut),
        (status = 200, description = "The same payment_ref and body as before: the first answer", body = SubscriptionOut),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "subscription_ended, payment_ref_conflict, partner_codes_exhausted, price_changed", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn post_payment(
    State(state): State<AppState>,
    caller: Caller,
    SubscriptionPath(id): SubscriptionPath,
    ApiJson(body): ApiJson<PaymentIn>,
) -> ApiResult<(StatusCode, Json<SubscriptionOut>)> {
    caller.require(&[Role::Admin, Role::Storefront])?;
    let payment_ref = id_field(body.payment_ref, "payment_ref")?;
    let amount_minor = amount(body.amount_minor)?;
    let view = state
        .engine
        .pay_subscription(id, &payment_ref, amount_minor)
        .await?;
    Ok(reply(view, true))
}

/// How to cancel a subscription: at the end of the paid period (the default) or now.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"at_period_end": true}))]
pub struct CancelIn {
    /// `true` (the default): access stays until the period ends, then no renewal.
    /// `false`: access ends now.
    pub at_period_end: Option<bool>,
}

/// Cancels at the end of the period, or now. Refunds are `POST .../refunds`.
#[utoipa::path(post, path = "/v1/subscriptions/{id}/cancel", tag = "plans", security(("api_key" = [])),
    params(("id" = i64, Path, minimum = 1),
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$", description = "Replays the first answer for the same key and body")),
    request_body = CancelIn,
    responses((status = 200, body = SubscriptionOut),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "subscription_ended", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn post_cancel(
    State(state): State<AppState>,
    caller: Caller,
    SubscriptionPath(id): SubscriptionPath,
    ApiJson(body): ApiJson<CancelIn>,
) -> ApiResult<Json<SubscriptionOut>> {
    caller.require(&[Role::Admin, Role::Storefront])?;
    let view = state
        .engine
        .cancel_subscription(id, body.at_period_end.unwrap_or(true))
        .await?;
    Ok(Json(subscription_out(view)))
}

/// What a refund gives back of one paid term not refunded before, and the rule that reckoned it.
#[derive(Serialize, ToSchema)]
pub struct TermRefundView {
    /// The number of the paid term (`term` in the subscription's `terms`).
    pub term: i64,
    /// What was paid for the term and not refunded before.
    pub paid_minor: i64,
    /// The policy's rule that applied: `full`, `none`, `pro_rata` or `full_within_days`.
    pub rule: String,
    /// For `pro_rata`: the term's days and those not yet begun (today counts as used).
    pub term_days: i64,
    /// For `pro_rata`: the term's calendar days not yet begun, in the programme's time zone; 0
    /// under every other rule, as is `term_days`.
    pub unused_days: i64,
    /// What this term gives back under `rule`, in minor units of the programme's currency, before
    /// the cost of benefits used is subtracted.
    pub refund_minor: i64,
}

/// How a refund was reckoned under the plan's refund policy: term by term, then the sum less the
/// cost of the benefits used when the plan refunds net of them.
#[derive(Serialize, ToSchema)]
pub struct RefundCalculationView {
    /// `none`, `full`, `pro_rata` or `full_within_days`.
    pub policy: String,
    /// One entry per paid term with something not refunded before, in term order; a trial has none.
    pub terms: Vec<TermRefundView>,
    /// The sum of the terms' `refund_minor`, in minor units of the programme's currency, before the
    /// cost of benefits is subtracted.
    pub gross_minor: i64,
    /// The cost of benefits used, subtracted when the plan refunds net of them.
    pub benefit_cost_minor: i64,
    /// What the shop owes back; the shop's payment system pays it.
    pub refund_minor: i64,
}

/// The answer to a refund: how much the shop owes back and how it was reckoned, and the
/// subscription as it is after the refund.
#[derive(Serialize, ToSchema)]
pub struct RefundOut {
    /// What the shop owes back, and how it was reckoned.
    pub calculation: RefundCalculationView,
    /// The subscription after the refund: `refunded`, with its access ended now.
    pub subscription: SubscriptionOut,
}

/// Refunds under the plan's policy: access ends now, and the answer says how much is due
/// back and how it was reckoned.
#[utoipa::path(post, path = "/v1/subscriptions/{id}/refunds", tag = "plans", security(("api_key" = [])),
    params(("id" = i64, Path, minimum = 1),
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$", description = "Replays the first answer for the same key and body")),
    responses((status = 200, body = RefundOut),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "subscription_ended", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn post_refund(
    State(state): State<AppState>,
    caller: Caller,
    SubscriptionPath(id): SubscriptionPath,
) -> ApiResult<Json<RefundOut>> {
    caller.require(&[Role::Admin])?;
    let programme = state.engine.programme()?;
    let (view, calc) = state.engine.refund_subscription(id).await?;
    let policy = programme
        .programme
        .plan(&view.row.plan)
        .map(|p| match p.refund.policy {
            tessera_domain::plans::RefundPolicy::None => "none",
            tessera_domain::plans::RefundPolicy::Full => "full",
            tessera_domain::plans::RefundPolicy::ProRata => "pro_rata",
            tessera_domain::plans::RefundPolicy::FullWithinDays { .. } => "full_within_days",
        })
        .unwrap_or("none");
    Ok(Json(RefundOut {
        calculation: RefundCalculationView {
            policy: policy.to_owned(),
            terms: calc
                .terms
                .iter()
                .map(|x| TermRefundView {
                    term: x.term,
                    paid_minor: x.paid_minor,
                    rule: x.rule.to_owned(),
                    term_days: x.term_days,
                    unused_days: x.unused_days,
                    refund_minor: x.refund_minor,
                })
                .collect(),
            gross_minor: calc.gross_minor,
            benefit_cost_minor: calc.benefit_cost_minor,
            refund_minor: calc.refund_minor,
        },
        subscription: subscription_out(view),
    }))
}

/// A page of a member's subscriptions: those they hold and those they bought as gifts.
#[derive(Serialize, ToSchema)]
pub struct SubscriptionList {
    /// Held by the member or bought by them as gifts, newest first.
    pub items: Vec<SubscriptionOut>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A member's subscriptions, and those they bought for others, a page at a time.
#[utoipa::path(get, path = "/v1/members/{member_id}/subscriptions", tag = "plans", security(("api_key" = [])),
    params(("member_id" = crate::schema::IdText, Path),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "1 to 200, default 50"),
        ("cursor" = Option<String>, Query, description = "From `next_cursor` of the previous page")),
    responses((status = 200, body = SubscriptionList),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn member_subscriptions(
    State(state): State<AppState>,
    caller: Caller,
    MemberPath(external_id): MemberPath,
    SubscriptionPage(page): SubscriptionPage,
) -> ApiResult<Json<SubscriptionList>> {
    caller.require(&[Role::Admin, Role::Storefront])?;
    let (views, next) = state
        .engine
        .member_subscriptions(&external_id, page.after, page.limit)
        .await?;
    Ok(Json(SubscriptionList {
        items: views.into_iter().map(subscription_out).collect(),
        next_cursor: next.map(|n| encode_cursor("s", n)),
    }))
}

/// A plan as one member may buy it now: its term, the price they would pay and why, and whether
/// they may start its trial.
#[derive(Serialize, ToSchema)]
pub struct PlanOfferView {
    /// The plan's id, as `plan` of `POST /v1/subscriptions` takes it.
    pub plan: String,
    /// The plan's display name (its id when the programme gives none).
    pub name: String,
    /// `1 month`, `1 quarter`, `1 year`, `N days`.
    pub term: String,
    /// The plan's list price of a term, in minor units of the programme's currency.
    pub list_price_minor: i64,
    /// What this member would pay for a term now.
    pub price_minor: i64,
    /// `list`, `first_term` or `rule:NAME`.
    pub price_basis: String,
    /// How many days the plan's trial lasts; null when the plan has no trial.
    pub trial_days: Option<i64>,
    /// Whether this member may start the trial now.
    pub trial_available: bool,
    /// Whether the member holds the plan now.
    pub held: bool,
    /// The plan's setting: whether its subscriptions renew automatically unless the purchase says
    /// otherwise. When false, a purchase may not ask for it.
    pub auto_renew: bool,
}

/// Every plan of the programme as this member may buy it now.
#[derive(Serialize, ToSchema)]
pub struct PlanOffers {
    /// One entry per plan, in the programme's order.
    pub items: Vec<PlanOfferView>,
}

/// Every plan as this member may buy it now: price (by score, tier, first term) and trial.
#[utoipa::path(get, path = "/v1/members/{member_id}/plans", tag = "plans", security(("api_key" = [])),
    params(("member_id" = crate::schema::IdText, Path)),
    responses((status = 200, body = PlanOffers),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn member_plans(
    State(state): State<AppState>,
    caller: Caller,
    MemberPath(external_id): MemberPath,
) -> ApiResult<Json<PlanOffers>> {
    caller.require(&[Role::Admin, Role::Storefront])?;
    let items = state
        .engine
        .plan_offers(&external_id)
        .await?
        .into_iter()
        .map(|o| PlanOfferView {
            plan: o.plan,
            name: o.name,
            term: o.term,
            list_price_minor: o.list_price_minor,
            price_minor: o.price_minor,
            price_basis: o.price_basis,
            trial_days: o.trial_days,
            trial_available: o.trial_available,
            held: o.held,
            auto_renew: o.auto_renew,
        })
        .collect();
    Ok(Json(PlanOffers { items }))
}

/// A partner right that a held plan carries, and the partner who checks and redeems it.
#[derive(Serialize, ToSchema)]
pub struct RightView {
    /// The right's id from the programme's `[[plans.partner_rights]]`; it also names the right's
    /// code pool.
    pub right: String,
    /// The partner whose API key checks and redeems the right.
    pub partner: String,
}

/// A plan the member holds at the instant asked about, through one subscription, with the partner
/// rights it carries.
#[derive(Serialize, ToSchema)]
pub struct EntitlementView {
    /// The plan's id in the programme.
    pub plan: String,
    /// The id of the subscription that grants the plan.
    pub subscription: i64,
    /// The subscription's status as last recorded (`trialing`, `active`, `grace`, `canceled`, ...):
    /// its status now, not at `at`.
    pub status: String,
    /// When access ends unless renewed (the subscription's `access_end`), an RFC 3339 instant in
    /// UTC. In a grace that keeps access, the member holds the plan past it.
    #[schema(format = DateTime)]
    pub until: String,
    /// The partner rights the plan carries; empty when it carries none.
    pub rights: Vec<RightView>,
}

/// The plans a member holds at one instant, read from the subscriptions' terms, so the answer does
/// not wait for the clock's jobs and holds for past instants too.
#[derive(Serialize, ToSchema)]
pub struct Entitlements {
    /// The instant asked about (`at` of the query, else now), an RFC 3339 instant in UTC.
    #[schema(format = DateTime)]
    pub at: String,
    /// One entry per subscription that grants access at `at`, newest subscription first; empty when
    /// the member holds no plan then.
    pub plans: Vec<EntitlementView>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AtQuery {
    at: Option<String>,
}

/// Which plans the member holds at `at` (default now), with their rights.
#[utoipa::path(get, path = "/v1/members/{member_id}/entitlements", tag = "plans", security(("api_key" = [])),
    params(("member_id" = crate::schema::IdText, Path),
        ("at" = Option<String>, Query, format = DateTime, description = "An RFC 3339 instant; default now")),
    responses((status = 200, body = Entitlements),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn member_entitlements(
    State(state): State<AppState>,
    caller: Caller,
    MemberPath(external_id): MemberPath,
    uri: axum::http::Uri,
) -> ApiResult<Json<Entitlements>> {
    caller.require(&[Role::Admin, Role::Storefront])?;
    let axum::extract::Query(q) = axum::extract::Query::<AtQuery>::try_from_uri(&uri)
        .map_err(|e| ApiError::new(ErrorCode::InvalidQuery, e.body_text()))?;
    let at = match q.at {
        None => state.engine.now(),
        Some(raw) => raw.parse().map_err(|_| {
            ApiError::new(ErrorCode::InvalidQuery, "at must be an RFC 3339 instant")
                .with_field("at")
        })?,
    };
    let plans = state
        .engine
        .entitlements(&external_id, at)
        .await?
        .into_iter()
        .map(|e| EntitlementView {
            plan: e.plan,
            subscription: e.subscription_id,
            status: e.status,
            until: rfc3339(e.until),
            rights: e
                .rights
                .into_iter()
                .map(|(right, partner)| RightView { right, partner })
                .collect(),
        })
        .collect();
    Ok(Json(Entitlements {
        at: rfc3339(at),
        plans,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RenewalQuery {
    state: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// A page of renewals in one state, for the shop's billing to act on.
#[derive(Serialize, ToSchema)]
pub struct RenewalList {
    /// Renewals in the asked state, oldest due first (by `due_at`, then by subscription).
    pub items: Vec<RenewalDueView>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Renewals for the shop's billing to act on: `open` (default), `paid` or `lapsed`,
/// oldest due first.
#[utoipa::path(get, path = "/v1/renewals", tag = "plans", security(("api_key" = [])),
    params(("state" = Option<String>, Query, pattern = "^(open|paid|lapsed)$"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "1 to 200, default 50"),
        ("cursor" = Option<String>, Query, description = "From `next_cursor` of the previous page")),
    responses((status = 200, body = RenewalList),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn list_renewals(
    State(state): State<AppState>,
    caller: Caller,
    uri: axum::http::Uri,
) -> ApiResult<Json<RenewalList>> {
    caller.require(&[Role::Admin, Role::Storefront])?;
    let axum::extract::Query(q) = axum::extract::Query::<RenewalQuery>::try_from_uri(&uri)
        .map_err(|e| ApiError::new(ErrorCode::InvalidQuery, e.body_text()))?;
    let wanted = q.state.unwrap_or_else(|| "open".to_owned());
    if !["open", "paid", "lapsed"].contains(&wanted.as_str()) {
        return Err(ApiError::new(
            ErrorCode::InvalidQuery,
            "state must be open, paid or lapsed",
        )
        .with_field("state"));
    }
    // The cursor is the last row's position in the listing's order: its due instant and
    // subscription.
    let page = Page::from_parts(q.limit, None, "n")?;
    let after = match q.cursor.filter(|c| !c.is_empty()) {
        None => (i64::MIN, 0),
        Some(c) => crate::extract::decode_cursor_pair(&c, "n")?,
    };
    let mut rows = state
        .engine
        .renewals(&wanted, after, page.limit + 1)
        .await?;
    let next = if rows.len() > page.limit as usize {
        rows.truncate(page.limit as usize);
        rows.last().map(|(r, _, _)| {
            crate::extract::encode_cursor_pair("n", r.due_at_us, r.subscription_id)
        })
    } else {
        None
    };
    Ok(Json(RenewalList {
        items: rows
            .iter()
            .map(|(r, m, p)| renewal_view(r, Some(m.clone()), Some(p.clone())))
            .collect(),
        next_cursor: next,
    }))
}

// ---- code pools ----

/// Codes to add to the pool of a partner right declared with `code_pool = true`.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"codes": ["IQ-7F3K-2M9P-0001", "IQ-8H4L-3N0Q-0002"]}))]
pub struct CodesIn {
    /// 1 to 10,000 codes; a code already in the pool is skipped.
    #[schema(min_items = 1, max_items = 10000, value_type = Vec<crate::schema::IdText>)]
    pub codes: Vec<String>,
}

/// The counts of a partner right's code pool, and after an upload how many codes it added.
#[derive(Serialize, ToSchema)]
pub struct PoolView {
    /// The partner right the pool serves.
    pub pool: String,
    /// Every code ever uploaded to the pool, handed out or not.
    pub total: i64,
    /// The codes handed out with paid terms.
    pub assigned: i64,
    /// The codes left to hand out (`total` minus `assigned`); each paid term takes the oldest, and
    /// a purchase or renewal is refused when none is left.
    pub available: i64,
    /// Codes this upload added (absent on a read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub added: Option<u64>,
}

fn pool_name(raw: String) -> Result<String, ApiError> {
    tessera_domain::Tag::parse(raw)
        .map(|t| t.as_str().to_owned())
        .map_err(|e| ApiError::from(e.within("pool")))
}

/// A code pool's counts.
#[utoipa::path(get, path = "/v1/admin/code-pools/{pool}", tag = "plans", security(("api_key" = [])),
    params(("pool" = crate::schema::NameText, Path)),
    responses((status = 200, body = PoolView),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn get_pool(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::Path(pool): axum::extract::Path<String>,
) -> ApiResult<Json<PoolView>> {
    caller.require(&[Role::Admin])?;
    let pool = pool_name(pool)?;
    let c = state.engine.pool_counts(&pool).await?;
    Ok(Json(PoolView {
        pool,
        total: c.total,
        assigned: c.assigned,
        available: c.total - c.assigned,
        added: None,
    }))
}

/// Uploads codes for a partner right with a code pool (admin). Each activation of a plan
/// carrying the right takes one, never the same one twice.
#[utoipa::path(post, path = "/v1/admin/code-pools/{pool}", tag = "plans", security(("api_key" = [])),
    params(("pool" = crate::schema::NameText, Path),
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$", description = "Replays the first answer for the same key and body")),
    request_body = CodesIn,
    responses((status = 200, body = PoolView),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, description = "idempotency_conflict, programme_missing", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn post_codes(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::Path(pool): axum::extract::Path<String>,
    ApiJson(body): ApiJson<CodesIn>,
) -> ApiResult<Json<PoolView>> {
    caller.require(&[Role::Admin])?;
    let pool = pool_name(pool)?;
    if body.codes.is_empty() || body.codes.len() > CODES_PER_UPLOAD_MAX {
        return Err(ApiError::new(
            ErrorCode::TooManyItems,
            format!("codes must hold 1 to {CODES_PER_UPLOAD_MAX} codes"),
        )
        .with_field("codes"));
    }
    let mut codes = Vec::with_capacity(body.codes.len());
    for (i, c) in body.codes.into_iter().enumerate() {
        codes.push(id_field(c, &format!("codes[{i}]"))?);
    }
    let refs: Vec<&str> = codes.iter().map(|c| c.as_str()).collect();
    let (added, c) = state.engine.upload_codes(&pool, &refs).await?;
    Ok(Json(PoolView {
        pool,
        total: c.total,
        assigned: c.assigned,
        available: c.total - c.assigned,
        added: Some(added),
    }))
}

// ---- the partner role ----

async fn partner_name(state: &AppState, caller: &Caller) -> ApiResult<String> {
    caller.require(&[Role::Partner])?;
    state.engine.partner_of(caller.0).await?.ok_or_else(|| {
        ApiError::new(
            ErrorCode::Forbidden,
            "this partner key is bound to no partner; make one with `tessera keys create --role partner --partner NAME`",
        )
    })
}

/// One of the calling partner's rights that the member holds now, and until when.
#[derive(Serialize, ToSchema)]
pub struct PartnerRightHeld {
    /// The right's id from the programme's `[[plans.partner_rights]]`.
    pub right: String,
    /// When the member's access through the plan ends unless renewed (the subscription's
    /// `access_end`), an RFC 3339 instant in UTC. In a grace that keeps access, the right holds
    /// past it.
    #[schema(format = DateTime)]
    pub until: String,
}

/// What a partner may know of a member: whether they hold a plan carrying the partner's rights now,
/// and which rights until when. Nothing else about the member is shown.
#[derive(Serialize, ToSchema)]
pub struct PartnerMemberView {
    /// The member asked about: their `external_id`, as in the path.
    pub member_id: String,
    /// Whether the member holds a plan carrying this partner's rights now.
    pub holds: bool,
    /// The calling partner's rights the member holds now; empty when `holds` is false.
    pub rights: Vec<PartnerRightHeld>,
}

/// For a partner: does this member hold a plan carrying our rights now? Nothing else about
/// the member is shown.
#[utoipa::path(get, path = "/v1/partner/members/{member_id}", tag = "partner", security(("api_key" = [])),
    params(("member_id" = crate::schema::IdText, Path)),
    responses((status = 200, body = PartnerMemberView),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn partner_member(
    State(state): State<AppState>,
    caller: Caller,
    MemberPath(external_id): MemberPath,
) -> ApiResult<Json<PartnerMemberView>> {
    let partner = partner_name(&state, &caller).await?;
    let rights = state.engine.partner_check(&partner, &external_id).await?;
    Ok(Json(PartnerMemberView {
        member_id: external_id.to_string(),
        holds: !rights.is_empty(),
        rights: rights
            .into_iter()
            .map(|(right, _, until)| PartnerRightHeld {
                right,
                until: rfc3339(until),
            })
            .collect(),
    }))
}

/// A partner's record of one use of its right by a member who holds it now.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"id": "youku-use-0001", "member_id": "u-1001", "right": "video_bundle"}))]
pub struct PartnerRedemptionIn {
    /// The partner's id of this use: the same id again replays the first answer.
    #[schema(value_type = crate::schema::IdText)]
    pub id: String,
    /// The member who used the right: their `external_id`.
    #[schema(value_type = crate::schema::IdText)]
    pub member_id: String,
    /// The partner right used.
    #[schema(value_type = crate::schema::NameText)]
    pub right: String,
}

/// A recorded use of a partner right: the subscription it counts against, what it costs the shop,
/// and how many uses are left this term.
#[derive(Serialize, ToSchema)]
pub struct PartnerRedemptionOut {
    /// The partner's id of the use, as sent.
    pub id: String,
    /// The member who used the right: their `external_id`.
    pub member_id: String,
    /// The partner right used.
    pub right: String,
    /// The id of the subscription whose current term the use counts against.
    pub subscription: i64,
    /// What the use costs the shop.
    pub cost_minor: i64,
    /// When the use was recorded, an RFC 3339 instant in UTC; on a replay, when it was first
    /// recorded.
    #[schema(format = DateTime)]
    pub at: String,
    /// Uses left this term, when the right is limited (absent on a replay).
    pub uses_left: Option<i64>,
}

/// For a partner: records a use of one of its rights by a member who holds it now.
#[utoipa::path(post, path = "/v1/partner/redemptions", tag = "partner", security(("api_key" = [])),
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$", description = "Replays the first answer for the same key and body")),
    request_body = PartnerRedemptionIn,
    responses((status = 201, body = PartnerRedemptionOut),
        (status = 200, description = "The same id as before: the first answer", body = PartnerRedemptionOut),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "not_entitled, partner_right_used_up, operation_conflict, member_closed", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn partner_redemption(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<PartnerRedemptionIn>,
) -> ApiResult<(StatusCode, Json<PartnerRedemptionOut>)> {
    let partner = partner_name(&state, &caller).await?;
    let id = id_field(body.id, "id")?;
    let member = id_field(body.member_id, "member_id")?;
    let right =
        tessera_domain::Tag::parse(body.right).map_err(|e| ApiError::from(e.within("right")))?;
    let r = state
        .engine
        .partner_redeem(&partner, &id, &member, right.as_str())
        .await?;
    let status = if r.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        Json(PartnerRedemptionOut {
            id: r.id,
            member_id: r.member,
            right: r.right,
            subscription: r.subscription_id,
            cost_minor: r.cost_minor,
            at: rfc3339(r.at),
            uses_left: r.uses_left,
        }),
    ))
}
