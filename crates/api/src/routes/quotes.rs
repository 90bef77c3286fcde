//! Checkout quotes and members' coupons.

use crate::error::{ApiError, ApiResult, ErrorBody, ErrorCode};
use crate::extract::{encode_cursor, ApiJson, Caller, CouponPage};
use crate::routes::events::{parse_lines, LineIn};
use crate::routes::{rfc3339, MemberPath};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tessera_domain::limits::{AMOUNT_MINOR_MAX, ORDER_LINES_MAX};
use tessera_domain::points::POINTS_MAX;
use tessera_domain::quote::ORDER;
use tessera_domain::ExternalId;
use tessera_engine::clock::from_us;
use tessera_engine::{CouponRow, QuoteRequest, Role};
use utoipa::ToSchema;

/// Most coupons chosen in one quote.
const COUPONS_PER_QUOTE_MAX: usize = 20;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/quotes", post(post_quote))
        .route("/v1/orders", post(post_order))
        .route("/v1/orders/{order_id}", get(get_order))
        .route("/v1/orders/{order_id}/refunds", post(post_order_refund))
        .route(
            "/v1/members/{member_id}/stored-value",
            get(get_stored_value).post(post_top_up),
        )
        .route(
            "/v1/members/{member_id}/stored-value/refunds",
            post(post_stored_value_refund),
        )
        .route(
            "/v1/members/{member_id}/coupons",
            get(list_coupons).post(issue_coupons),
        )
}

/// A cart to price, for a member or a shopper who is not one, with the coupons, points and
/// stored value the shopper would pay with.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"member_id": "u-1001", "lines": [{"sku": "TEA-500G", "category": "grocery", "quantity": 2, "unit_price_minor": 5000}], "shipping_minor": 600, "coupons": [1]}))]
pub struct QuoteIn {
    /// The member; absent for a shopper who is not one.
    #[schema(value_type = Option<crate::schema::IdText>)]
    pub member_id: Option<String>,
    /// The cart's lines, 1 to 500, each at its list unit price.
    #[schema(min_items = 1, max_items = 500)]
    pub lines: Vec<LineIn>,
    /// The shipping fee the shop would charge, in minor units; absent is 0. A held
    /// free-shipping benefit or a free-shipping coupon may waive it.
    #[schema(minimum = 0, maximum = 1_000_000_000_000i64)]
    pub shipping_minor: Option<i64>,
    /// Numbers of the member's coupons to apply, in this order.
    #[schema(max_items = 20)]
    pub coupons: Option<Vec<i64>>,
    /// Points to spend as money.
    #[schema(minimum = 0, maximum = 1_000_000_000_000i64)]
    pub points: Option<i64>,
    /// Stored value to pay with, in minor units (at most what is left to pay is used).
    #[schema(minimum = 0, maximum = 1_000_000_000_000i64)]
    pub stored_value_minor: Option<i64>,
}

/// What one adjustment took off a line, and the benefit or coupon that caused it.
#[derive(Serialize, ToSchema)]
pub struct AdjustmentView {
    /// `member_price`, `percent_off` or `coupons`.
    pub step: String,
    /// `benefit:ID` or `coupon:NO`.
    pub source: String,
    /// What it took off the line, in minor units (positive).
    pub amount_minor: i64,
}

/// One line of the cart as priced: its list value, each adjustment, and what it comes to.
#[derive(Serialize, ToSchema)]
pub struct QuotedLineView {
    /// The line's SKU, as sent.
    pub sku: String,
    /// Units, as sent.
    pub quantity: i64,
    /// The line's list value (unit price × quantity), in minor units.
    pub list_minor: i64,
    /// What was taken off the line, in the order the steps apply (see `order`).
    pub adjustments: Vec<AdjustmentView>,
    /// The line after its adjustments, in minor units: `list_minor` less every
    /// adjustment's `amount_minor`. A refused line's is not counted in `goods_minor`.
    pub net_minor: i64,
    /// Why this line cannot be sold to this shopper (members-only goods).
    pub refused: Option<String>,
}

/// A chosen coupon that applied, and what it took off.
#[derive(Serialize, ToSchema)]
pub struct AppliedCouponView {
    /// The coupon's number, per member.
    pub coupon: i64,
    /// The coupon's template in the programme (`[[coupons]]`).
    pub template: String,
    /// What it took off, in minor units: spread over the lines it covers, or the shipping
    /// fee it waived (a free-shipping coupon).
    pub amount_minor: i64,
}

/// A chosen coupon that does not apply, and why; one makes the cart not payable.
#[derive(Serialize, ToSchema)]
pub struct RefusedCouponView {
    /// The coupon's number, as chosen.
    pub coupon: i64,
    /// `not_found`, `used`, `expired`, `voided`, `unknown_template`, `stacking_group`,
    /// `minimum_not_reached` or `not_needed` (free shipping already).
    pub reason: String,
}

/// A benefit the order would use, and what that costs the shop.
#[derive(Serialize, ToSchema)]
pub struct BenefitUseView {
    /// The benefit's id in the programme (`[[benefits]]`).
    pub benefit: String,
    /// What its uses cost the shop, in minor units: the benefit's `cost_per_use_minor`
    /// times its uses (each line it prices and each shipping fee it waives is one use).
    pub cost_minor: i64,
}

/// What the order would earn, counted as an `order.paid` of the money paid; both 0 for a
/// shopper who is not a member.
#[derive(Serialize, ToSchema)]
pub struct EarnView {
    /// Points and score the order would earn, before the day and month caps.
    pub points: i64,
    /// The score the order would earn, before the day and month caps.
    pub score: i64,
}

/// What this cart would cost with a plan the member (or shopper) does not hold.
#[derive(Serialize, ToSchema)]
pub struct UpsellView {
    /// The plan's id in the programme (`[[plans]]`).
    pub plan: String,
    /// The plan's display name.
    pub name: String,
    /// What a term of the plan would cost this member.
    pub plan_price_minor: i64,
    /// What the lines this shopper can buy now would cost with the plan.
    pub total_minor: i64,
    /// What the plan would save on this cart, in minor units: this quote's `total_minor`
    /// less the plan's `total_minor`.
    pub saving_minor: i64,
    /// Members-only goods of the cart the plan would unlock.
    pub unlocks: Vec<String>,
    /// A conversion offer of the plan, open now and targeting this member; absent when
    /// there is none. Showing it here records an exposure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offer: Option<crate::routes::offers::OfferTerms>,
}

/// A priced cart: every line with its adjustments, the shipping, coupons, points, stored
/// value and total, what the order would earn, and the upsell. A quote changes nothing.
#[derive(Serialize, ToSchema)]
pub struct QuoteOut {
    /// The member priced for; null for a shopper who is not a member.
    pub member_id: Option<String>,
    /// The member's tier now; null for a shopper who is not a member, or when the
    /// programme has no tiers.
    pub tier: Option<String>,
    /// Plans the member holds now.
    pub plans: Vec<String>,
    /// The order in which adjustments apply.
    pub order: Vec<String>,
    /// The cart's lines as priced, in the order sent.
    pub lines: Vec<QuotedLineView>,
    /// List value of the lines that can be sold.
    pub list_minor: i64,
    /// The goods after every line adjustment.
    pub goods_minor: i64,
    /// The shipping fee asked for (the request's `shipping_minor`), in minor units.
    pub shipping_fee_minor: i64,
    /// The shipping charged, in minor units: the fee, or 0 when a benefit or coupon
    /// waived it.
    pub shipping_minor: i64,
    /// What waived the shipping fee: `benefit:ID` or `coupon:NO`; null when nothing did
    /// or the fee was 0.
    pub shipping_waived_by: Option<String>,
    /// The chosen coupons that apply, in the order they applied (a free-shipping coupon
    /// last).
    pub coupons_applied: Vec<AppliedCouponView>,
    /// The chosen coupons that do not apply, with the reason.
    pub coupons_refused: Vec<RefusedCouponView>,
    /// Points the order would spend: at most those asked for, in whole steps of the
    /// programme's rate and within its share of the goods; 0 below the minimum.
    pub points_used: i64,
    /// What `points_used` take off, in minor units, at the programme's redemption rate.
    pub points_value_minor: i64,
    /// Stored value the order would spend, in minor units: at most the request's
    /// `stored_value_minor` and what is left to pay after points.
    pub stored_value_used_minor: i64,
    /// What is left to pay in money, in minor units: `goods_minor` plus `shipping_minor`,
    /// less `points_value_minor` and `stored_value_used_minor`.
    pub total_minor: i64,
    /// Whether every line can be sold and every chosen coupon applies.
    pub payable: bool,
    /// The benefits the order would use, with their cost to the shop.
    pub benefits_used: Vec<BenefitUseView>,
    /// What the order would earn.
    pub earn: EarnView,
    /// For each plan the member does not hold: this cart with it.
    pub upsell: Vec<UpsellView>,
}

/// Prices a cart: each line with every adjustment and what caused it, shipping, coupons,
/// points, the total, what the order earns, and what it would cost with each plan the
/// member does not hold. Changes nothing; the same inputs and state give the same bytes.
#[utoipa::path(post, path = "/v1/quotes", tag = "quotes", security(("api_key" = [])),
    request_body = QuoteIn,
    responses((status = 200, body = QuoteOut),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "insufficient_points, points_disabled, member_closed, programme_missing, idempotency_conflict", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn post_quote(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<QuoteIn>,
) -> ApiResult<Json<QuoteOut>> {
    caller.require(&[Role::Admin, Role::Storefront])?;
    let request = quote_request(
        body.member_id,
        &body.lines,
        body.shipping_minor,
        body.coupons,
        body.points,
        body.stored_value_minor,
    )?;
    let a = state.engine.quote(&request).await?;
    let q = a.quote;
    Ok(Json(QuoteOut {
        member_id: a.member,
        tier: a.tier,
        plans: a.plans,
        order: ORDER.iter().map(|s| (*s).to_owned()).collect(),
        payable: q.is_payable(),
        lines: q
            .lines
            .into_iter()
            .map(|l| QuotedLineView {
                sku: l.sku,
                quantity: l.quantity,
                list_minor: l.list_minor,
                adjustments: l
                    .adjustments
                    .into_iter()
                    .map(|x| AdjustmentView {
                        step: x.step.to_owned(),
                        source: x.source,
                        amount_minor: x.amount_minor,
                    })
                    .collect(),
                net_minor: l.net_minor,
                refused: l.refused,
            })
            .collect(),
        list_minor: q.list_minor,
        goods_minor: q.goods_minor,
        shipping_fee_minor: q.shipping_fee_minor,
        shipping_minor: q.shipping_minor,
        shipping_waived_by: q.shipping_waived_by,
        coupons_applied: q
            .coupons_applied
            .into_iter()
            .map(|c| AppliedCouponView {
                coupon: c.no,
                template: c.template,
                amount_minor: c.amount_minor,
            })
            .collect(),
        coupons_refused: q
            .coupons_refused
            .into_iter()
            .map(|(coupon, reason)| RefusedCouponView { coupon, reason })
            .collect(),
        points_used: q.points_used,
        points_value_minor: q.points_value_minor,
        stored_value_used_minor: q.stored_value_used_minor,
        total_minor: q.total_minor,
        benefits_used: q
            .benefits_used
            .into_iter()
            .map(|(benefit, cost_minor)| BenefitUseView {
                benefit,
                cost_minor,
            })
            .collect(),
        earn: EarnView {
            points: a.earn_points,
            score: a.earn_score,
        },
        upsell: a
            .upsell
            .into_iter()
            .map(|u| UpsellView {
                plan: u.plan,
                name: u.name,
                plan_price_minor: u.plan_price_minor,
                total_minor: u.total_minor,
                saving_minor: u.saving_minor,
                unlocks: u.unlocks,
                offer: u.offer.as_ref().map(crate::routes::offers::OfferTerms::of),
            })
            .collect(),
    }))
}

/// Parses the cart part of a quote or an order at the edge.
fn quote_request(
    member: Option<String>,
    lines: &[LineIn],
    shipping_minor: Option<i64>,
    coupons: Option<Vec<i64>>,
    points: Option<i64>,
    stored_value_minor: Option<i64>,
) -> Result<QuoteRequest, ApiError> {
    let member = member
        .map(|m| ExternalId::parse(m).map_err(|e| ApiError::from(e.within("member_id"))))
        .transpose()?;
    if lines.is_empty() || lines.len() > ORDER_LINES_MAX {
        return Err(ApiError::new(
            ErrorCode::TooManyItems,
            format!("lines must hold 1 to {ORDER_LINES_MAX} lines"),
        )
        .with_field("lines"));
    }
    let lines = parse_lines(lines)?;
    let shipping = shipping_minor.unwrap_or(0);
    if !(0..=AMOUNT_MINOR_MAX).contains(&shipping) {
        return Err(ApiError::new(
            ErrorCode::InvalidField,
            format!("shipping_minor must be between 0 and {AMOUNT_MINOR_MAX}"),
        )
        .with_field("shipping_minor"));
    }
    let coupons = coupons.unwrap_or_default();
    if coupons.len() > COUPONS_PER_QUOTE_MAX {
        return Err(ApiError::new(
            ErrorCode::TooManyItems,
            format!("at most {COUPONS_PER_QUOTE_MAX} coupons"),
        )
        .with_field("coupons"));
    }
    let points = points.unwrap_or(0);
    if !(0..=POINTS_MAX).contains(&points) {
        return Err(ApiError::new(
            ErrorCode::InvalidField,
            format!("points must be between 0 and {POINTS_MAX}"),
        )
        .with_field("points"));
    }
    let stored_value_minor = stored_value_minor.unwrap_or(0);
    if !(0..=AMOUNT_MINOR_MAX).contains(&stored_value_minor) {
        return Err(ApiError::new(
            ErrorCode::InvalidField,
            format!("stored_value_minor must be between 0 and {AMOUNT_MINOR_MAX}"),
        )
        .with_field("stored_value_minor"));
    }
    Ok(QuoteRequest {
        member,
        lines,
        shipping_minor: shipping,
        coupons,
        points,
        stored_value_minor,
    })
}

/// An order to commit: the cart of a quote, with the shop's order id and, optionally, the
/// total the shopper accepted.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"order_id": "SO-2", "member_id": "u-1001", "lines": [{"sku": "TEA-500G", "category": "grocery", "quantity": 1, "unit_price_minor": 5000}], "shipping_minor": 600, "expected_total_minor": 5600}))]
pub struct OrderIn {
    /// The shop's order id: the same id again answers with the first commit.
    #[schema(value_type = crate::schema::IdText)]
    pub order_id: String,
    /// The member who orders (`external_id`): a commit needs a member.
    #[schema(value_type = crate::schema::IdText)]
    pub member_id: String,
    /// The cart's lines, 1 to 500, each at its list unit price.
    #[schema(min_items = 1, max_items = 500)]
    pub lines: Vec<LineIn>,
    /// The shipping fee the shop charges, in minor units; absent is 0.
    #[schema(minimum = 0, maximum = 1_000_000_000_000i64)]
    pub shipping_minor: Option<i64>,
    /// Numbers of the member's coupons to use, in this order; one that does not apply
    /// refuses the order (`order_not_payable`).
    #[schema(max_items = 20)]
    pub coupons: Option<Vec<i64>>,
    /// Points to spend as money, as in a quote; more than the member has refuses the order
    /// (`insufficient_points`).
    #[schema(minimum = 0, maximum = 1_000_000_000_000i64)]
    pub points: Option<i64>,
    /// Stored value to pay with, in minor units (at most what is left to pay is used);
    /// more than the member holds refuses the order (`insufficient_stored_value`).
    #[schema(minimum = 0, maximum = 1_000_000_000_000i64)]
    pub stored_value_minor: Option<i64>,
    /// The total of the quote the shopper accepted: if the order now comes to another
    /// amount (a quota used meanwhile), the commit is refused with `quote_changed`.
    #[schema(minimum = 0, maximum = 1_000_000_000_000i64)]
    pub expected_total_minor: Option<i64>,
}

/// A line of a committed order, as the commit priced it.
#[derive(Deserialize, Serialize, ToSchema)]
pub struct CommittedLine {
    /// The line's SKU.
    pub sku: String,
    /// Units ordered.
    pub quantity: i64,
    /// The line's list value (unit price × quantity), in minor units.
    pub list_minor: i64,
    /// The line after member prices, discounts and coupons, in minor units.
    pub net_minor: i64,
}

/// What a committed order earned through its `order.paid`.
#[derive(Deserialize, Serialize, ToSchema)]
pub struct Earned {
    /// Points earned, after the programme's caps.
    pub points: i64,
    /// Score earned, after the programme's caps.
    pub score: i64,
}

/// A benefit a committed order used, and what that cost the shop.
#[derive(Deserialize, Serialize, ToSchema)]
pub struct BenefitCost {
    /// The benefit's id in the programme (`[[benefits]]`).
    pub benefit: String,
    /// What its uses cost the shop, in minor units (`cost_per_use_minor` times the uses).
    pub cost_minor: i64,
}

/// A committed order, as the commit answered: how it was priced, what it spent and what it
/// earned. The same order id and request again answer the same.
#[derive(Deserialize, Serialize, ToSchema)]
pub struct OrderOut {
    /// The shop's order id.
    pub order_id: String,
    /// (Summaries stored before the field was named `member_id` call it `member`.)
    #[serde(alias = "member")]
    pub member_id: String,
    /// When Tessera committed the order, as an RFC 3339 instant.
    #[schema(format = DateTime)]
    pub committed_at: String,
    /// The order's lines, as priced at the commit.
    pub lines: Vec<CommittedLine>,
    /// The goods after every line adjustment, in minor units.
    pub goods_minor: i64,
    /// The shipping charged, in minor units (0 when waived).
    pub shipping_minor: i64,
    /// What waived the shipping fee: `benefit:ID` or `coupon:NO`; null when nothing did.
    pub shipping_waived_by: Option<String>,
    /// Coupons the order used.
    pub coupons_used: Vec<i64>,
    /// Points the order spent.
    pub points_used: i64,
    /// What those points took off, in minor units.
    pub points_value_minor: i64,
    /// Stored value the order spent, in minor units; 0 in summaries stored before orders
    /// could spend stored value.
    #[serde(default)]
    pub stored_value_used_minor: i64,
    /// What the member pays.
    pub total_minor: i64,
    /// The benefits the order used, with their cost to the shop.
    pub benefits_used: Vec<BenefitCost>,
    /// Points (pending through the return window) and score the order earned.
    pub earned: Earned,
}

/// Commits an order Tessera priced: prices it again and, in one transaction, uses its
/// coupons, free-shipping quota and points and records what it earns (as its `order.paid`);
/// or refuses the whole order with the reason and changes nothing. 201 the first time; 200
/// with the first answer for the same order id and request.
#[utoipa::path(post, path = "/v1/orders", tag = "quotes", security(("api_key" = [])),
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$", description = "Replays the first answer for the same key and body")),
    request_body = OrderIn,
    responses((status = 201, body = OrderOut),
        (status = 200, description = "The same order id and request as before: the first answer", body = OrderOut),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "order_not_payable, quote_changed, insufficient_points, order_already_paid, member_closed, member_frozen", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn post_order(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<OrderIn>,
) -> ApiResult<(StatusCode, Json<OrderOut>)> {
    caller.require(&[Role::Admin, Role::Storefront])?;
    let order_id = tessera_domain::OrderId::parse(body.order_id)
        .map_err(|e| ApiError::from(e.within("order_id")))?;
    let quote = quote_request(
        Some(body.member_id),
        &body.lines,
        body.shipping_minor,
        body.coupons,
        body.points,
        body.stored_value_minor,
    )?;
    if let Some(t) = body.expected_total_minor {
        if !(0..=AMOUNT_MINOR_MAX).contains(&t) {
            return Err(ApiError::new(
                ErrorCode::InvalidField,
                "expected_total_minor is out of range",
            )
            .with_field("expected_total_minor"));
        }
    }
    let (summary, replayed) = state
        .engine
        .commit_order(&tessera_engine::CommitRequest {
            order_id,
            quote,
            expected_total_minor: body.expected_total_minor,
        })
        .await?;
    let out: OrderOut = serde_json::from_str(&summary).map_err(|e| {
        tracing::error!(error = %e, "a stored order summary does not parse");
        ApiError::new(
            ErrorCode::Internal,
            "internal error; the server log has the cause",
        )
    })?;
    let status = if replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(out)))
}

/// A refund of an order committed through `POST /v1/orders`: some of its units, or an
/// amount of its goods.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"id": "rf-1", "member_id": "u-1001", "refund": {"lines": [{"sku": "TEA-500G", "quantity": 1}]}}))]
pub struct OrderRefundIn {
    /// Your id of this refund: the same id again answers as the first time.
    #[schema(value_type = crate::schema::IdText)]
    pub id: String,
    /// The member whose order it is (`external_id`).
    #[schema(value_type = crate::schema::IdText)]
    pub member_id: String,
    /// What is refunded: some lines, or an amount.
    pub refund: crate::routes::events::RefundIn,
}

/// What a refund of a committed order did: the order's totals over its refunds so far, and
/// what this refund gave back of its coupons and quotas.
#[derive(Serialize, ToSchema)]
pub struct OrderRefundOut {
    /// The order's id.
    pub order_id: String,
    /// Whether the order is now refunded in full.
    pub full: bool,
    /// Earned points and score taken back so far, over all refunds of the order.
    pub points_reversed: i64,
    /// Earned score taken back so far, over all refunds of the order.
    pub score_reversed: i64,
    /// Points the order spent, given back so far in proportion to the goods refunded.
    pub points_returned: i64,
    /// Coupons and benefit uses (quotas) this refund gave back: on the full refund.
    pub coupons_restored: u64,
    /// Benefit uses (monthly quotas) this refund gave back: on the full refund, else 0.
    pub benefit_uses_released: u64,
    /// Stored value the order spent, given back so far in the same proportion.
    pub stored_value_returned_minor: i64,
}

/// Refunds part or all of an order committed through `POST /v1/orders`: earned points and
/// score are taken back pro rata (as by its `order.refunded`), spent points come back in
/// the same proportion, and the full refund gives back the order's coupons and quotas.
#[utoipa::path(post, path = "/v1/orders/{order_id}/refunds", tag = "quotes", security(("api_key" = [])),
    params(("order_id" = crate::schema::IdText, Path),
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$", description = "Replays the first answer for the same key and body")),
    request_body = OrderRefundIn,
    responses((status = 201, body = OrderRefundOut),
        (status = 200, description = "The same refund id as before", body = OrderRefundOut),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "event_conflict, member_closed, idempotency_conflict", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn post_order_refund(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::Path(order_id): axum::extract::Path<String>,
    ApiJson(body): ApiJson<OrderRefundIn>,
) -> ApiResult<(StatusCode, Json<OrderRefundOut>)> {
    caller.require(&[Role::Admin, Role::Storefront])?;
    let order = tessera_domain::OrderId::parse(order_id)
        .map_err(|e| ApiError::from(e.within("order_id")))?;
    let id = ExternalId::parse(body.id).map_err(|e| ApiError::from(e.within("id")))?;
    body.refund.check("refund")?;
    let event =
        crate::routes::events::EventIn::OrderRefunded(crate::routes::events::OrderRefundedIn {
            kind: crate::routes::events::OrderRefundedType::OrderRefunded,
            id: format!("refund:{order}:{id}"),
            member_id: body.member_id,
            occurred_at: state.engine.now().to_string(),
            order_id: order.to_string(),
            refund: body.refund,
        });
    let (item, _) = crate::routes::events::prepare(event)?;
    let a = state.engine.refund_order(item).await?;
    let status = if a.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        Json(OrderRefundOut {
            order_id: a.order_id,
            full: a.full,
            points_reversed: a.points_reversed,
            score_reversed: a.score_reversed,
            points_returned: a.points_returned,
            coupons_restored: a.coupons_restored,
            benefit_uses_released: a.benefit_uses_released,
            stored_value_returned_minor: a.stored_value_returned_minor,
        }),
    ))
}

/// A coupon a member holds: an instance of a template, in the state it is in now.
#[derive(Serialize, ToSchema)]
pub struct CouponView {
    /// The coupon's number, per member: what a quote or an order names in `coupons`.
    pub coupon: i64,
    /// The coupon's template in the programme (`[[coupons]]`).
    pub template: String,
    /// `issued`, `used`, `expired` or `voided` (its holder closed their account).
    pub state: String,
    /// `manual` (issued by `POST .../coupons`) or `grant:BENEFIT` (a benefit's monthly pack).
    pub source: String,
    /// When it was issued, as an RFC 3339 instant.
    #[schema(format = DateTime)]
    pub issued_at: String,
    /// When its validity ends, as an RFC 3339 instant: the template's `valid_days` after
    /// the issue. From then on a coupon not used is `expired`.
    #[schema(format = DateTime)]
    pub valid_until: String,
    /// The order that used it; null unless it is `used`.
    pub order_id: Option<String>,
}

fn coupon_view(c: CouponRow) -> CouponView {
    CouponView {
        coupon: c.coupon_no,
        template: c.template,
        state: c.state,
        source: c.source,
        issued_at: rfc3339(from_us(c.issued_at_us)),
        valid_until: rfc3339(from_us(c.valid_until_us)),
        order_id: c.order_id,
    }
}

/// The coupons an issue made.
#[derive(Serialize, ToSchema)]
pub struct CouponList {
    /// The coupons, by number, each as it was issued.
    pub items: Vec<CouponView>,
}

/// A page of a member's coupons.
#[derive(Serialize, ToSchema)]
pub struct CouponPageOut {
    /// Newest first.
    pub items: Vec<CouponView>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A member's coupons, newest first, a page at a time.
#[utoipa::path(get, path = "/v1/members/{member_id}/coupons", tag = "quotes", security(("api_key" = [])),
    params(("member_id" = crate::schema::IdText, Path),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "1 to 200, default 50"),
        ("cursor" = Option<String>, Query, description = "From `next_cursor` of the previous page")),
    responses((status = 200, body = CouponPageOut),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_coupons(
    State(state): State<AppState>,
    caller: Caller,
    MemberPath(external_id): MemberPath,
    CouponPage(page): CouponPage,
) -> ApiResult<Json<CouponPageOut>> {
    caller.require(&[Role::Admin, Role::Storefront])?;
    let (rows, next) = state
        .engine
        .member_coupons(&external_id, page.after, page.limit)
        .await?;
    Ok(Json(CouponPageOut {
        items: rows.into_iter().map(coupon_view).collect(),
        next_cursor: next.map(|n| encode_cursor("c", n)),
    }))
}

/// A manual issue of coupons of one template to a member.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"id": "issue-1", "template": "ten_off_99", "count": 2}))]
pub struct CouponIssueIn {
    /// Your id of this issue: the same id again returns the first issue.
    #[schema(value_type = crate::schema::IdText)]
    pub id: String,
    /// The template to issue, by its id in the programme (`[[coupons]]`).
    #[schema(value_type = crate::schema::NameText)]
    pub template: String,
    /// 1 to 100; default 1.
    #[schema(minimum = 1, maximum = 100)]
    pub count: Option<i64>,
}

/// Issues coupons of a template to a member by hand (admin).
#[utoipa::path(post, path = "/v1/members/{member_id}/coupons", tag = "quotes", security(("api_key" = [])),
    params(("member_id" = crate::schema::IdText, Path),
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$", description = "Replays the first answer for the same key and body")),
    request_body = CouponIssueIn,
    responses((status = 201, body = CouponList),
        (status = 200, description = "The same id as before: the first issue", body = CouponList),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "member_closed, operation_conflict, programme_missing, idempotency_conflict", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn issue_coupons(
    State(state): State<AppState>,
    caller: Caller,
    MemberPath(external_id): MemberPath,
    ApiJson(body): ApiJson<CouponIssueIn>,
) -> ApiResult<(StatusCode, Json<CouponList>)> {
    caller.require(&[Role::Admin])?;
    let id = ExternalId::parse(body.id).map_err(|e| ApiError::from(e.within("id")))?;
    let template = tessera_domain::Tag::parse(body.template)
        .map_err(|e| ApiError::from(e.within("template")))?;
    let count = body.count.unwrap_or(1);
    if !(1..=tessera_engine::quote::COUPONS_PER_ISSUE_MAX).contains(&count) {
        return Err(
            ApiError::new(ErrorCode::InvalidField, "count must be between 1 and 100")
                .with_field("count"),
        );
    }
    let (rows, replayed) = state
        .engine
        .issue_coupons(&external_id, template.as_str(), count, &id, "manual")
        .await?;
    let status = if replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        Json(CouponList {
            items: rows.into_iter().map(coupon_view).collect(),
        }),
    ))
}

/// A top-up offer of the programme: pay this much, and the balance gains that much.
#[derive(Serialize, ToSchema)]
pub struct StoredValueOffer {
    /// The offer's id, as a top-up names it.
    pub offer: String,
    /// What the member pays, in minor units.
    pub pay_minor: i64,
    /// What the balance gains, in minor units; the part above `pay_minor` is bonus.
    pub credit_minor: i64,
}

/// A member's stored value (a prepaid balance), with the programme's spend order and
/// top-up offers.
#[derive(Serialize, ToSchema)]
pub struct StoredValueView {
    /// What the member paid in and has left.
    pub principal_minor: i64,
    /// What offers added and is left; refunds do not return it.
    pub bonus_minor: i64,
    /// What the member can spend: principal plus bonus, in minor units.
    pub total_minor: i64,
    /// `principal_first` or `bonus_first`.
    pub spend_order: String,
    /// The programme's top-up offers.
    pub offers: Vec<StoredValueOffer>,
}

async fn stored_value_view(state: &AppState, member: &ExternalId) -> ApiResult<StoredValueView> {
    let v = state.engine.stored_value(member).await?;
    balance_view(state, v)
}

/// A balance with the programme's offers and spend order.
fn balance_view(state: &AppState, v: tessera_engine::StoredValueRow) -> ApiResult<StoredValueView> {
    let programme = state.engine.programme()?;
    let rules = programme
        .programme
        .stored_value
        .as_ref()
        .ok_or(tessera_engine::EngineError::StoredValueDisabled)?;
    Ok(StoredValueView {
        principal_minor: v.principal,
        bonus_minor: v.bonus,
        total_minor: v.principal + v.bonus,
        spend_order: match rules.spend_order {
            tessera_domain::stored_value::SpendOrder::PrincipalFirst => "principal_first",
            tessera_domain::stored_value::SpendOrder::BonusFirst => "bonus_first",
        }
        .to_owned(),
        offers: rules
            .offers
            .iter()
            .map(|o| StoredValueOffer {
                offer: o.id.clone(),
                pay_minor: o.pay_minor,
                credit_minor: o.credit_minor,
            })
            .collect(),
    })
}

/// A member's stored value, and the top-up offers.
#[utoipa::path(get, path = "/v1/members/{member_id}/stored-value", tag = "quotes", security(("api_key" = [])),
    params(("member_id" = crate::schema::IdText, Path)),
    responses((status = 200, body = StoredValueView),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn get_stored_value(
    State(state): State<AppState>,
    caller: Caller,
    MemberPath(external_id): MemberPath,
) -> ApiResult<Json<StoredValueView>> {
    caller.require(&[Role::Admin, Role::Storefront])?;
    Ok(Json(stored_value_view(&state, &external_id).await?))
}

/// A top-up of one of the programme's offers, which the shop's payment confirmed.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"offer": "pay_1000_get_1100", "payment_ref": "topup-1"}))]
pub struct TopUpIn {
    /// The offer, by its id in the programme (`[[stored_value.offers]]`).
    #[schema(value_type = crate::schema::NameText)]
    pub offer: String,
    /// The shop's payment of the top-up: the same reference again answers as the first time.
    #[schema(value_type = crate::schema::IdText)]
    pub payment_ref: String,
}

/// A top-up as recorded: what it added, and the balance right after it.
#[derive(Serialize, ToSchema)]
pub struct TopUpOut {
    /// The shop's payment of the top-up, as sent.
    pub payment_ref: String,
    /// The offer topped up.
    pub offer: String,
    /// What the top-up added to the principal (the offer's `pay_minor`), in minor units.
    pub principal_minor: i64,
    /// What it added as bonus (`credit_minor` less `pay_minor`), in minor units.
    pub bonus_minor: i64,
    /// The journal entry it made.
    pub entry: i64,
    /// The member's stored value right after this top-up; a replay shows it as the first
    /// answer did.
    pub balance: StoredValueView,
}

/// A top-up of an offer ("pay 1,000, get 1,100"), confirmed by the shop's payment.
#[utoipa::path(post, path = "/v1/members/{member_id}/stored-value", tag = "quotes", security(("api_key" = [])),
    params(("member_id" = crate::schema::IdText, Path),
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$", description = "Replays the first answer for the same key and body")),
    request_body = TopUpIn,
    responses((status = 201, body = TopUpOut),
        (status = 200, description = "The same payment_ref as before", body = TopUpOut),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "stored_value_disabled, payment_ref_conflict, member_closed, idempotency_conflict", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn post_top_up(
    State(state): State<AppState>,
    caller: Caller,
    MemberPath(external_id): MemberPath,
    ApiJson(body): ApiJson<TopUpIn>,
) -> ApiResult<(StatusCode, Json<TopUpOut>)> {
    caller.require(&[Role::Admin, Role::Storefront])?;
    let offer =
        tessera_domain::Tag::parse(body.offer).map_err(|e| ApiError::from(e.within("offer")))?;
    let payment_ref =
        ExternalId::parse(body.payment_ref).map_err(|e| ApiError::from(e.within("payment_ref")))?;
    let t = state
        .engine
        .top_up(&external_id, offer.as_str(), &payment_ref)
        .await?;
    let status = if t.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        Json(TopUpOut {
            payment_ref: t.payment_ref,
            offer: t.offer,
            principal_minor: t.principal,
            bonus_minor: t.bonus,
            entry: t.entry_no,
            balance: balance_view(&state, t.balance)?,
        }),
    ))
}

/// A refund of a member's whole stored-value balance.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"id": "svr-1"}))]
pub struct StoredValueRefundIn {
    /// Your id of this refund, kept as the journal entry's reference.
    #[schema(value_type = crate::schema::IdText)]
    pub id: String,
}

/// What a stored-value refund did; both amounts are 0 when the balance was already empty.
#[derive(Serialize, ToSchema)]
pub struct StoredValueRefundOut {
    /// The principal the shop pays back.
    pub principal_refunded_minor: i64,
    /// The bonus, forfeited.
    pub bonus_forfeited_minor: i64,
}

/// Refunds a member's stored value: the principal is paid back (by the shop), the bonus
/// is forfeited; the balance is then zero (admin).
#[utoipa::path(post, path = "/v1/members/{member_id}/stored-value/refunds", tag = "quotes", security(("api_key" = [])),
    params(("member_id" = crate::schema::IdText, Path),
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$", description = "Replays the first answer for the same key and body")),
    request_body = StoredValueRefundIn,
    responses((status = 200, body = StoredValueRefundOut),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn post_stored_value_refund(
    State(state): State<AppState>,
    caller: Caller,
    MemberPath(external_id): MemberPath,
    ApiJson(body): ApiJson<StoredValueRefundIn>,
) -> ApiResult<Json<StoredValueRefundOut>> {
    caller.require(&[Role::Admin])?;
    let id = ExternalId::parse(body.id).map_err(|e| ApiError::from(e.within("id")))?;
    let (p, b) = state.engine.refund_stored_value(&external_id, &id).await?;
    Ok(Json(StoredValueRefundOut {
        principal_refunded_minor: p,
        bonus_forfeited_minor: b,
    }))
}

/// An order as Tessera knows it from its `order.paid` (and its refunds).
#[derive(Serialize, ToSchema)]
pub struct OrderView {
    /// The order's id.
    pub order_id: String,
    /// The member whose order it is (`external_id`).
    pub member_id: String,
    /// `paid`, or `awaiting_paid` when only refunds have arrived so far.
    pub state: String,
    /// When the order was paid (its `order.paid`'s `occurred_at`), as an RFC 3339 instant;
    /// null while it is `awaiting_paid`.
    #[schema(format = DateTime)]
    pub paid_at: Option<String>,
    /// What the member paid in all, in minor units.
    pub total_minor: i64,
    /// What the goods came to, in minor units.
    pub goods_minor: i64,
    /// The order's lines as the ledger keeps them: `sku`, `quantity`, `paid_minor` (the
    /// line's share of what was paid), `refunded_quantity`, `refunded_minor`.
    #[schema(value_type = Vec<Object>)]
    pub lines: serde_json::Value,
    /// Points the order earned, after the programme's caps.
    pub points_earned: i64,
    /// Earned points its refunds took back so far.
    pub points_reversed: i64,
    /// Score the order earned, after the programme's caps.
    pub score_earned: i64,
    /// Earned score its refunds took back so far.
    pub score_reversed: i64,
    /// Refunded so far, goods and in all, in minor units.
    pub refunded_goods_minor: i64,
    /// Refunded so far in all, in minor units.
    pub refunded_total_minor: i64,
    /// When the order was committed through `POST /v1/orders`: what that answered.
    pub commit: Option<OrderOut>,
}

/// One order by its id.
#[utoipa::path(get, path = "/v1/orders/{order_id}", tag = "quotes", security(("api_key" = [])),
    params(("order_id" = crate::schema::IdText, Path)),
    responses((status = 200, body = OrderView),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "order_not_found", body = ErrorBody),
        (status = 422, description = "the id is not a valid id", body = ErrorBody)))]
pub async fn get_order(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::Path(order_id): axum::extract::Path<String>,
) -> ApiResult<Json<OrderView>> {
    caller.require(&[Role::Admin, Role::Storefront])?;
    let id = tessera_domain::OrderId::parse(order_id)
        .map_err(|e| ApiError::from(e.within("order_id")))?;
    let internal = || {
        ApiError::new(
            ErrorCode::Internal,
            "internal error; the server log has the cause",
        )
    };
    let record = state
        .engine
        .order_record(id.as_str())
        .await?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::OrderNotFound,
                format!("no order has the id `{id}`"),
            )
        })?;
    let o = record.order;
    let lines = serde_json::from_str(&o.lines).map_err(|e| {
        tracing::error!(error = %e, order = %o.order_id, "stored order lines do not parse");
        internal()
    })?;
    let commit = record
        .commit_summary
        .map(|s| {
            serde_json::from_str::<OrderOut>(&s).map_err(|e| {
                tracing::error!(error = %e, order = %o.order_id, "a stored order summary does not parse");
                internal()
            })
        })
        .transpose()?;
    Ok(Json(OrderView {
        order_id: o.order_id,
        member_id: record.external_id,
        state: o.state,
        paid_at: o
            .paid_at_us
            .map(|t| crate::routes::rfc3339(tessera_engine::clock::from_us(t))),
        total_minor: o.total_minor,
        goods_minor: o.goods_minor,
        lines,
        points_earned: o.points_earned,
        points_reversed: o.points_reversed,
        score_earned: o.score_earned,
        score_reversed: o.score_reversed,
        refunded_goods_minor: o.refunded_goods_minor,
        refunded_total_minor: o.refunded_total_minor,
        commit,
    }))
}
