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

#[derive(Serialize, ToSchema)]
pub struct TermView {
    pub term: i64,
    /// `trial` or `paid`.
    pub kind: String,
    #[schema(format = DateTime)]
    pub start: String,
    #[schema(format = DateTime)]
    pub end: String,
    pub amount_minor: i64,
    /// Why the price was what it was: `list`, `first_term`, `rule:NAME` or `trial`.
    pub price_basis: String,
    pub payment_ref: Option<String>,
    #[schema(format = DateTime)]
    pub paid_at: String,
    pub refunded_minor: i64,
}

#[derive(Serialize, ToSchema)]
pub struct CodeView {
    /// The partner right the code is for.
    pub right: String,
    pub code: String,
    pub term: i64,
    #[schema(format = DateTime)]
    pub assigned_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct SubscriptionEventView {
    #[schema(format = DateTime)]
    pub at: String,
    /// `status`, `payment`, `renewal_due`, `cancel` or `refund`.
    pub kind: String,
    pub from: Option<String>,
    pub to: Option<String>,
    /// What caused it: `paid`, `trial_started`, `trial_converted`, `trial_ended`,
    /// `term_ended`, `grace_ended`, `renewed_in_grace`, `reactivated`, `renewal_notice`,
    /// `cancel_at_period_end`, `cancel_now`, `canceled_at_period_end`, `canceled_now`,
    /// `refund`, `refunded`.
    pub cause: String,
    pub payment_ref: Option<String>,
    pub amount_minor: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct RenewalDueView {
    pub subscription: i64,
    pub member_id: Option<String>,
    pub plan: Option<String>,
    /// The end of the period this renewal continues.
    #[schema(format = DateTime)]
    pub period_end: String,
    #[schema(format = DateTime)]
    pub due_at: String,
    /// The price of the next term at the notice.
    pub amount_minor: i64,
    /// `open`, `paid` or `lapsed`.
    pub state: String,
}

#[derive(Serialize, ToSchema)]
pub struct SubscriptionOut {
    pub id: i64,
    pub plan: String,
    pub plan_name: Option<String>,
    /// The member who holds it.
    pub member_id: String,
    /// The member who paid (another member for a gift).
    pub buyer: String,
    pub gift: bool,
    /// `trialing`, `active`, `grace`, `expired`, `canceled` or `refunded`.
    pub status: String,
    /// Whether the member holds the plan's rights now.
    pub access: bool,
    /// Access ends here unless renewed.
    #[schema(format = DateTime)]
    pub access_end: String,
    #[schema(format = DateTime)]
    pub grace_until: Option<String>,
    pub auto_renew: bool,
    pub cancel_at_period_end: bool,
    pub paid_total_minor: i64,
    pub terms: Vec<TermView>,
    pub partner_codes: Vec<CodeView>,
    pub renewals: Vec<RenewalDueView>,
    /// Every change, oldest first.
    pub history: Vec<SubscriptionEventView>,
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

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionIn {
    /// The member who buys; they hold it too unless `gift_to` names someone else.
    #[schema(value_type = crate::schema::IdText)]
    pub member_id: String,
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
        (status = 409, description = "plan_already_held, trial_already_used, trial_not_eligible, payment_ref_conflict, partner_codes_exhausted, price_changed, member_closed", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
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
        })
        .await?;
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

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
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

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelIn {
    /// `true` (the default): access stays until the period ends, then no renewal.
    /// `false`: access ends now.
    pub at_period_end: Option<bool>,
}

/// Cancels at the end of the period, or now. Refunds are `POST .../refund`.
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

#[derive(Serialize, ToSchema)]
pub struct TermRefundView {
    pub term: i64,
    /// What was paid for the term and not refunded before.
    pub paid_minor: i64,
    /// The policy's rule that applied: `full`, `none`, `pro_rata` or `full_within_days`.
    pub rule: String,
    /// For `pro_rata`: the term's days and those not yet begun (today counts as used).
    pub term_days: i64,
    pub unused_days: i64,
    pub refund_minor: i64,
}

#[derive(Serialize, ToSchema)]
pub struct RefundCalculationView {
    /// `none`, `full`, `pro_rata` or `full_within_days`.
    pub policy: String,
    pub terms: Vec<TermRefundView>,
    pub gross_minor: i64,
    /// The cost of benefits used, subtracted when the plan refunds net of them.
    pub benefit_cost_minor: i64,
    /// What the shop owes back; the shop's payment system pays it.
    pub refund_minor: i64,
}

#[derive(Serialize, ToSchema)]
pub struct RefundOut {
    pub calculation: RefundCalculationView,
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

#[derive(Serialize, ToSchema)]
pub struct PlanOfferView {
    pub plan: String,
    pub name: String,
    /// `1 month`, `1 quarter`, `1 year`, `N days`.
    pub term: String,
    pub list_price_minor: i64,
    /// What this member would pay for a term now.
    pub price_minor: i64,
    /// `list`, `first_term` or `rule:NAME`.
    pub price_basis: String,
    pub trial_days: Option<i64>,
    /// Whether this member may start the trial now.
    pub trial_available: bool,
    /// Whether the member holds the plan now.
    pub held: bool,
    pub auto_renew: bool,
}

#[derive(Serialize, ToSchema)]
pub struct PlanOffers {
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

#[derive(Serialize, ToSchema)]
pub struct RightView {
    pub right: String,
    pub partner: String,
}

#[derive(Serialize, ToSchema)]
pub struct EntitlementView {
    pub plan: String,
    pub subscription: i64,
    pub status: String,
    #[schema(format = DateTime)]
    pub until: String,
    pub rights: Vec<RightView>,
}

#[derive(Serialize, ToSchema)]
pub struct Entitlements {
    #[schema(format = DateTime)]
    pub at: String,
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

#[derive(Serialize, ToSchema)]
pub struct RenewalList {
    pub items: Vec<RenewalDueView>,
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
    // The cursor is the last row's position: due instant and subscription, packed as
    // one number would lose bits, so the page's last subscription id is the cursor and
    // its due instant is looked up again.
    let page = Page::from_parts(q.limit, q.cursor, "n")?;
    let after = match page.after {
        None => (i64::MIN, 0),
        Some(sub) => {
            let due = state
                .engine
                .store()
                .renewals_of(sub)
                .await
                .map_err(tessera_engine::EngineError::from)?
                .into_iter()
                .filter(|r| r.state == wanted)
                .map(|r| r.due_at_us)
                .max()
                .unwrap_or(i64::MIN);
            (due, sub)
        }
    };
    let rows = state.engine.renewals(&wanted, after, page.limit).await?;
    let next = (rows.len() == page.limit as usize)
        .then(|| {
            rows.last()
                .map(|(r, _, _)| encode_cursor("n", r.subscription_id))
        })
        .flatten();
    Ok(Json(RenewalList {
        items: rows
            .iter()
            .map(|(r, m, p)| renewal_view(r, Some(m.clone()), Some(p.clone())))
            .collect(),
        next_cursor: next,
    }))
}

// ---- code pools ----

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodesIn {
    /// 1 to 10,000 codes; a code already in the pool is skipped.
    #[schema(min_items = 1, max_items = 10000, value_type = Vec<crate::schema::IdText>)]
    pub codes: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct PoolView {
    /// The partner right the pool serves.
    pub pool: String,
    pub total: i64,
    pub assigned: i64,
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

#[derive(Serialize, ToSchema)]
pub struct PartnerRightHeld {
    pub right: String,
    #[schema(format = DateTime)]
    pub until: String,
}

#[derive(Serialize, ToSchema)]
pub struct PartnerMemberView {
    pub member_id: String,
    /// Whether the member holds a plan carrying this partner's rights now.
    pub holds: bool,
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

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartnerRedemptionIn {
    /// The partner's id of this use: the same id again replays the first answer.
    #[schema(value_type = crate::schema::IdText)]
    pub id: String,
    #[schema(value_type = crate::schema::IdText)]
    pub member_id: String,
    /// The partner right used.
    #[schema(value_type = crate::schema::NameText)]
    pub right: String,
}

#[derive(Serialize, ToSchema)]
pub struct PartnerRedemptionOut {
    pub id: String,
    pub member_id: String,
    pub right: String,
    pub subscription: i64,
    /// What the use costs the shop.
    pub cost_minor: i64,
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
