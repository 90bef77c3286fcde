//! Conversion offers: what a member may take now, exposures, the claim of a coupon offer,
//! and what each offer did.

use crate::error::{ApiError, ApiResult, ErrorBody, ErrorCode};
use crate::extract::{ApiJson, Caller};
use crate::routes::{rfc3339, MemberPath};
use crate::AppState;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tessera_domain::offers::OfferKind;
use tessera_domain::ExternalId;
use tessera_engine::offers::OfferShown;
use tessera_engine::Role;
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/offers/{offer_id}", get(get_offer))
        .route("/v1/offers/{offer_id}/exposures", post(post_exposure))
        .route("/v1/offers/{offer_id}/acceptances", post(post_acceptance))
        .route("/v1/members/{member_id}/offers", get(member_offers))
}

/// A refusal of an offer, naming the request's field that named it.
pub fn at_offer(e: tessera_engine::EngineError, field: &str) -> ApiError {
    use tessera_engine::EngineError;
    let names_offer = matches!(
        e,
        EngineError::OfferNotFound(_)
            | EngineError::OfferRefused(_)
            | EngineError::OfferAlreadyUsed(_)
    );
    let err = ApiError::from(e);
    if names_offer {
        err.with_field(field)
    } else {
        err
    }
}

/// The `{offer_id}` of an offer route.
pub struct OfferPath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for OfferPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|e| {
                    ApiError::new(ErrorCode::InvalidField, e.body_text()).with_field("offer_id")
                })?;
        // An offer id is a programme name, parsed as the `offer` of a purchase is.
        tessera_domain::Tag::parse(raw)
            .map(|id| OfferPath(id.as_str().to_owned()))
            .map_err(|e| ApiError::from(e.within("offer_id")))
    }
}

/// An offer a member may take: the plan, what it gives, until when.
#[derive(Serialize, ToSchema, Clone)]
pub struct OfferTerms {
    /// The offer's id in the programme (`[[offers]]`).
    pub offer_id: String,
    /// The plan offered.
    pub plan: String,
    /// `trial`, `first_term_price` or `coupon`.
    pub kind: String,
    /// For `trial`: its days.
    pub trial_days: Option<i64>,
    /// For `first_term_price`: what the first paid term costs with the offer.
    pub price_minor: Option<i64>,
    /// For `coupon`: the coupon template it gives.
    pub coupon: Option<String>,
    /// The window's end (exclusive), RFC 3339.
    #[schema(format = DateTime)]
    pub ends_at: String,
}

impl OfferTerms {
    pub fn of(o: &OfferShown) -> OfferTerms {
        let (trial_days, price_minor, coupon) = kind_fields(&o.kind);
        OfferTerms {
            offer_id: o.id.clone(),
            plan: o.plan.clone(),
            kind: o.kind.name().to_owned(),
            trial_days,
            price_minor,
            coupon,
            ends_at: rfc3339(o.ends_at),
        }
    }
}

fn kind_fields(k: &OfferKind) -> (Option<i64>, Option<i64>, Option<String>) {
    match k {
        OfferKind::Trial { days } => (Some(*days), None, None),
        OfferKind::FirstTermPrice { price_minor } => (None, Some(*price_minor), None),
        OfferKind::Coupon { template } => (None, None, Some(template.clone())),
    }
}

/// The offers a member may take now.
#[derive(Serialize, ToSchema)]
pub struct MemberOffers {
    /// Open offers whose segment holds the member, in the programme's order.
    pub items: Vec<OfferTerms>,
}

/// An offer and what it did: members shown it, members who took it, and the conversion.
#[derive(Serialize, ToSchema)]
pub struct OfferReportView {
    /// The offer's id.
    pub offer_id: String,
    /// The plan offered.
    pub plan: String,
    /// `trial`, `first_term_price` or `coupon`.
    pub kind: String,
    /// For `trial`: its days.
    pub trial_days: Option<i64>,
    /// For `first_term_price`: the first term's price with the offer.
    pub price_minor: Option<i64>,
    /// For `coupon`: the template it gives.
    pub coupon: Option<String>,
    /// The window's start (inclusive), RFC 3339.
    #[schema(format = DateTime)]
    pub starts_at: String,
    /// The window's end (exclusive), RFC 3339.
    #[schema(format = DateTime)]
    pub ends_at: String,
    /// Whether the window is open now.
    pub open: bool,
    /// Members shown the offer (by a call, a quote's upsell, or when they took it).
    pub exposed_members: i64,
    /// Times it was shown in all.
    pub exposures: i64,
    /// Members who took it (a purchase that used it, or a coupon claimed).
    pub accepted_members: i64,
    /// `accepted_members` over `exposed_members`, in basis points (1/100 of a percent),
    /// rounded down; 0 while nobody was shown it.
    pub conversion_bp: i64,
}

/// The member an exposure or acceptance is for.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"member_id": "u-1001"}))]
pub struct OfferMemberIn {
    /// The member shown the offer, or taking it.
    #[schema(value_type = crate::schema::IdText)]
    pub member_id: String,
}

/// A coupon offer taken: the coupon it gave.
#[derive(Serialize, ToSchema)]
pub struct AcceptanceOut {
    /// The offer taken.
    pub offer_id: String,
    /// The member who took it.
    pub member_id: String,
    /// The coupon's number (what a quote or an order names in `coupons`).
    pub coupon: i64,
    /// The coupon's template.
    pub template: String,
    /// When its validity ends, RFC 3339.
    #[schema(format = DateTime)]
    pub valid_until: String,
}

/// An offer, and how many members were shown it and took it.
#[utoipa::path(get, path = "/v1/offers/{offer_id}", tag = "plans", security(("api_key" = [])),
    params(("offer_id" = crate::schema::NameText, Path)),
    responses((status = 200, body = OfferReportView),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "offer_not_found", body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn get_offer(
    State(state): State<AppState>,
    caller: Caller,
    OfferPath(offer_id): OfferPath,
) -> ApiResult<Json<OfferReportView>> {
    caller.require(&[Role::Admin])?;
    let r = state
        .engine
        .offer_report(&offer_id)
        .await
        .map_err(|e| at_offer(e, "offer_id"))?;
    let (trial_days, price_minor, coupon) = kind_fields(&r.offer.kind);
    let c = r.counts;
    Ok(Json(OfferReportView {
        offer_id: r.offer.id.clone(),
        plan: r.offer.plan.clone(),
        kind: r.offer.kind.name().to_owned(),
        trial_days,
        price_minor,
        coupon,
        starts_at: rfc3339(r.offer.starts_at),
        ends_at: rfc3339(r.offer.ends_at),
        open: r.open,
        exposed_members: c.exposed_members,
        exposures: c.exposures,
        accepted_members: c.accepted_members,
        conversion_bp: tessera_domain::offers::conversion_bp(c.accepted_members, c.exposed_members),
    }))
}

fn member_of(body: OfferMemberIn) -> Result<ExternalId, ApiError> {
    ExternalId::parse(body.member_id).map_err(|e| ApiError::from(e.within("member_id")))
}

/// Records that the shop showed a member an offer (a banner, an e-mail). Only a member
/// the offer targets, while it is open: otherwise `offer_not_open` or
/// `offer_not_eligible`, and nothing is recorded.
#[utoipa::path(post, path = "/v1/offers/{offer_id}/exposures", tag = "plans", security(("api_key" = [])),
    params(("offer_id" = crate::schema::NameText, Path),
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$", description = "Replays the first answer for the same key and body")),
    request_body = OfferMemberIn,
    responses((status = 200, description = "Recorded; the offer's terms for the member", body = OfferTerms),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "offer_not_found, member_not_found", body = ErrorBody),
        (status = 409, description = "offer_not_open, offer_not_eligible, member_closed", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn post_exposure(
    State(state): State<AppState>,
    caller: Caller,
    OfferPath(offer_id): OfferPath,
    ApiJson(body): ApiJson<OfferMemberIn>,
) -> ApiResult<Json<OfferTerms>> {
    caller.require(&[Role::Admin, Role::Storefront])?;
    let member = member_of(body)?;
    let shown = state
        .engine
        .expose_offer(&offer_id, &member)
        .await
        .map_err(|e| at_offer(e, "offer_id"))?;
    Ok(Json(OfferTerms::of(&shown)))
}

/// Takes a coupon offer: the coupon is issued once per member (201); the same request
/// again answers the same coupon (200). Offers of a trial or a first-term price are taken
/// by buying the plan with `offer` (`POST /v1/subscriptions`).
#[utoipa::path(post, path = "/v1/offers/{offer_id}/acceptances", tag = "plans", security(("api_key" = [])),
    params(("offer_id" = crate::schema::NameText, Path),
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$", description = "Replays the first answer for the same key and body")),
    request_body = OfferMemberIn,
    responses((status = 201, body = AcceptanceOut),
        (status = 200, description = "Taken before: the first coupon", body = AcceptanceOut),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "offer_not_found, member_not_found", body = ErrorBody),
        (status = 409, description = "offer_not_open, offer_not_eligible, member_closed", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, description = "offer_mismatch (not a coupon offer)", body = ErrorBody)))]
pub async fn post_acceptance(
    State(state): State<AppState>,
    caller: Caller,
    OfferPath(offer_id): OfferPath,
    ApiJson(body): ApiJson<OfferMemberIn>,
) -> ApiResult<(StatusCode, Json<AcceptanceOut>)> {
    caller.require(&[Role::Admin, Role::Storefront])?;
    let member = member_of(body)?;
    let (coupon, replayed) = state
        .engine
        .accept_coupon_offer(&offer_id, &member)
        .await
        .map_err(|e| at_offer(e, "offer_id"))?;
    let status = if replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        Json(AcceptanceOut {
            offer_id,
            member_id: member.to_string(),
            coupon: coupon.coupon_no,
            template: coupon.template,
            valid_until: rfc3339(tessera_engine::clock::from_us(coupon.valid_until_us)),
        }),
    ))
}

/// The conversion offers a member may take now: open, and targeting them.
#[utoipa::path(get, path = "/v1/members/{member_id}/offers", tag = "plans", security(("api_key" = [])),
    params(("member_id" = crate::schema::IdText, Path)),
    responses((status = 200, body = MemberOffers),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn member_offers(
    State(state): State<AppState>,
    caller: Caller,
    MemberPath(member): MemberPath,
) -> ApiResult<Json<MemberOffers>> {
    caller.require(&[Role::Admin, Role::Storefront])?;
    let offers = state.engine.member_offers(&member).await?;
    Ok(Json(MemberOffers {
        items: offers.iter().map(OfferTerms::of).collect(),
    }))
}
