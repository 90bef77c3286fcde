//! Event intake (one event, or a batch of up to 1,000) and a member's event list.

use crate::error::{ApiError, ApiResult, ErrorBody, ErrorCode};
use crate::extract::{
    encode_cursor, parse_json, parse_value, read_body, require_content_type, Caller, EventPage,
    BATCH_BODY_BYTES_MAX, BODY_BYTES_MAX,
};
use crate::routes::{rfc3339, MemberPath};
use crate::AppState;
use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tessera_domain::event::{
    ActivityKind, Event, EventBody, OrderLine, OrderPaid, OrderRefund, RefundLine,
};
use tessera_domain::limits::BATCH_ITEMS_MAX;
use tessera_domain::{
    ActivityName, AmountMinor, Category, EventId, ExternalId, FieldError, OrderId, Sku, Tag,
};
use tessera_engine::EventRow;
use tessera_engine::{IngestItem, IngestOutcome, Role};
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/events", post(post_event))
        .route("/v1/events/batch", post(post_batch))
        .route("/v1/events/{event_id}", get(get_event))
        .route("/v1/members/{member_id}/events", get(list_events))
}

/// An event from the shop. `type` selects the variant; `id` is unique across the
/// deployment, and the same id with the same body is a no-op that answers as the first time.
#[derive(Serialize, ToSchema, Clone)]
#[serde(untagged)]
pub enum EventIn {
    /// An order was paid: it earns points and score by the programme.
    OrderPaid(OrderPaidIn),
    /// An order was delivered or otherwise completed.
    OrderCompleted(OrderCompletedIn),
    /// Part or all of an order was refunded: what it earned is taken back in proportion.
    OrderRefunded(OrderRefundedIn),
    /// Something the member did: a review, a check-in, a share, or a declared activity.
    Activity(ActivityIn),
}

// The `type` of each event, one value each: the discriminator of `EventIn`. (Written out:
// the OpenAPI derive does not read a `rename` that a macro passes on.)

/// `order.paid`
#[derive(Deserialize, Serialize, ToSchema, Clone, Copy, PartialEq, Eq)]
pub enum OrderPaidType {
    #[serde(rename = "order.paid")]
    OrderPaid,
}

/// `order.completed`
#[derive(Deserialize, Serialize, ToSchema, Clone, Copy, PartialEq, Eq)]
pub enum OrderCompletedType {
    #[serde(rename = "order.completed")]
    OrderCompleted,
}

/// `order.refunded`
#[derive(Deserialize, Serialize, ToSchema, Clone, Copy, PartialEq, Eq)]
pub enum OrderRefundedType {
    #[serde(rename = "order.refunded")]
    OrderRefunded,
}

/// `activity`
#[derive(Deserialize, Serialize, ToSchema, Clone, Copy, PartialEq, Eq)]
pub enum ActivityType {
    #[serde(rename = "activity")]
    Activity,
}

/// The event types, as `type` spells them.
pub const EVENT_TYPES: [&str; 4] = [
    "order.paid",
    "order.completed",
    "order.refunded",
    "activity",
];

/// An `order.paid` event.
#[derive(Deserialize, Serialize, ToSchema, Clone)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"type": "order.paid", "id": "evt-1", "member_id": "u-1001", "occurred_at": "2026-11-23T10:00:00+08:00", "order_id": "SO-1", "lines": [{"sku": "TEA-500G", "category": "grocery", "quantity": 2, "unit_price_minor": 3000, "tags": ["promo"]}], "shipping_minor": 600, "total_minor": 6600}))]
pub struct OrderPaidIn {
    /// `order.paid`.
    #[serde(rename = "type")]
    pub kind: OrderPaidType,
    /// Your id of the event: the same id again is the same event (answered as the first time).
    #[schema(value_type = crate::schema::IdText)]
    pub id: String,
    /// The member's id (`external_id`).
    #[schema(value_type = crate::schema::IdText)]
    pub member_id: String,
    /// When it happened (RFC 3339, with its offset).
    #[schema(format = DateTime)]
    pub occurred_at: String,
    /// Your id of the order.
    #[schema(value_type = crate::schema::IdText)]
    pub order_id: String,
    /// The order's lines.
    #[schema(min_items = 1, max_items = 500)]
    pub lines: Vec<LineIn>,
    /// Shipping paid, in minor units (earns nothing).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1_000_000_000_000i64)]
    pub shipping_minor: i64,
    /// What the member paid in all, in minor units: goods after discounts, plus shipping.
    #[schema(minimum = 0, maximum = 1_000_000_000_000i64)]
    pub total_minor: i64,
}

/// An `order.completed` event.
#[derive(Deserialize, Serialize, ToSchema, Clone)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"type": "order.completed", "id": "evt-2", "member_id": "u-1001", "occurred_at": "2026-11-25T10:00:00+08:00", "order_id": "SO-1"}))]
pub struct OrderCompletedIn {
    /// `order.completed`.
    #[serde(rename = "type")]
    pub kind: OrderCompletedType,
    /// Your id of the event.
    #[schema(value_type = crate::schema::IdText)]
    pub id: String,
    /// The member's id (`external_id`).
    #[schema(value_type = crate::schema::IdText)]
    pub member_id: String,
    /// When it happened (RFC 3339, with its offset).
    #[schema(format = DateTime)]
    pub occurred_at: String,
    /// Your id of the order.
    #[schema(value_type = crate::schema::IdText)]
    pub order_id: String,
}

/// An `order.refunded` event.
#[derive(Deserialize, Serialize, ToSchema, Clone)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"type": "order.refunded", "id": "evt-3", "member_id": "u-1001", "occurred_at": "2026-11-26T10:00:00+08:00", "order_id": "SO-1", "refund": {"lines": [{"sku": "TEA-500G", "quantity": 1}]}}))]
pub struct OrderRefundedIn {
    /// `order.refunded`.
    #[serde(rename = "type")]
    pub kind: OrderRefundedType,
    /// Your id of the event.
    #[schema(value_type = crate::schema::IdText)]
    pub id: String,
    /// The member's id (`external_id`).
    #[schema(value_type = crate::schema::IdText)]
    pub member_id: String,
    /// When it happened (RFC 3339, with its offset).
    #[schema(format = DateTime)]
    pub occurred_at: String,
    /// Your id of the order.
    #[schema(value_type = crate::schema::IdText)]
    pub order_id: String,
    /// What is refunded: some lines, or an amount.
    pub refund: RefundIn,
}

/// An `activity` event.
#[derive(Deserialize, Serialize, ToSchema, Clone)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"type": "activity", "id": "evt-4", "member_id": "u-1001", "occurred_at": "2026-11-23T12:00:00+08:00", "activity": "review"}))]
pub struct ActivityIn {
    /// `activity`.
    #[serde(rename = "type")]
    pub kind: ActivityType,
    /// Your id of the event.
    #[schema(value_type = crate::schema::IdText)]
    pub id: String,
    /// The member's id (`external_id`).
    #[schema(value_type = crate::schema::IdText)]
    pub member_id: String,
    /// When it happened (RFC 3339, with its offset).
    #[schema(format = DateTime)]
    pub occurred_at: String,
    /// `review`, `check_in`, `share`, or an activity the programme declares.
    #[schema(value_type = crate::schema::NameText)]
    pub activity: String,
}

impl EventIn {
    /// Parses an event: its `type` picks the shape, and the shape is parsed with every
    /// field's full path (`lines[1].unit_price_minor`).
    pub fn parse_json(bytes: &[u8]) -> Result<EventIn, ApiError> {
        let value: serde_json::Value = parse_json(bytes)?;
        Self::from_value(value)
    }

    pub fn from_value(mut value: serde_json::Value) -> Result<EventIn, ApiError> {
        let expected = EVENT_TYPES
            .iter()
            .map(|t| format!("`{t}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let refuse =
            |message: String| ApiError::new(ErrorCode::InvalidRequest, message).with_field("type");
        let serde_json::Value::Object(map) = &mut value else {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "an event is a JSON object",
            ));
        };
        let kind = match map.get("type") {
            Some(serde_json::Value::String(kind)) => kind.clone(),
            Some(_) => return Err(refuse(format!("`type` is a string: one of {expected}"))),
            None => return Err(refuse(format!("missing field `type`: one of {expected}"))),
        };
        match kind.as_str() {
            "order.paid" => parse_value(value).map(EventIn::OrderPaid),
            "order.completed" => parse_value(value).map(EventIn::OrderCompleted),
            "order.refunded" => {
                let event: OrderRefundedIn = parse_value(value)?;
                event.refund.check("refund")?;
                Ok(EventIn::OrderRefunded(event))
            }
            "activity" => parse_value(value).map(EventIn::Activity),
            other => Err(refuse(format!(
                "unknown event type `{other}`, expected one of {expected}"
            ))),
        }
    }

    /// The fields every event has: its id, the member's id, and when it happened.
    fn common(&mut self) -> (&mut String, &mut String, &mut String) {
        match self {
            EventIn::OrderPaid(e) => (&mut e.id, &mut e.member_id, &mut e.occurred_at),
            EventIn::OrderCompleted(e) => (&mut e.id, &mut e.member_id, &mut e.occurred_at),
            EventIn::OrderRefunded(e) => (&mut e.id, &mut e.member_id, &mut e.occurred_at),
            EventIn::Activity(e) => (&mut e.id, &mut e.member_id, &mut e.occurred_at),
        }
    }
}

/// One line of an order (in an `order.paid` event, a quote or an order): the goods, how
/// many, their unit list price, and tags.
#[derive(Deserialize, Serialize, ToSchema, Clone)]
#[serde(deny_unknown_fields)]
pub struct LineIn {
    /// The shop's SKU of the goods; a refund by lines names the line by it.
    #[schema(value_type = crate::schema::IdText)]
    pub sku: String,
    /// The goods' category, which multipliers, benefits and coupons match.
    #[schema(value_type = crate::schema::IdText)]
    pub category: String,
    /// Units bought, 1 to 10,000.
    #[schema(minimum = 1, maximum = 10000)]
    pub quantity: u32,
    /// Unit list price in minor units.
    #[schema(minimum = 0, maximum = 1_000_000_000_000i64)]
    pub unit_price_minor: i64,
    /// The shop's labels of the line (such as `promo`), at most 32, which multipliers,
    /// benefits and rule conditions (`line.tags`) match; none when absent.
    #[serde(default)]
    #[schema(value_type = Vec<crate::schema::NameText>, max_items = 32)]
    pub tags: Vec<String>,
}

/// Some units of one line of the paid order, refunded.
#[derive(Deserialize, Serialize, ToSchema, Clone)]
#[serde(deny_unknown_fields)]
pub struct RefundLineIn {
    /// The SKU of a line of the paid order.
    #[schema(value_type = crate::schema::IdText)]
    pub sku: String,
    /// Units of that SKU refunded, 1 to 10,000; more than the order has left of it is
    /// refused (`refund_exceeds_order`).
    #[schema(minimum = 1, maximum = 10000)]
    pub quantity: u32,
}

/// What a refund takes back: exactly one of `lines` (some units of some lines, by SKU and
/// quantity) or `amount_minor` (an amount of the goods), never both.
#[derive(Deserialize, Serialize, ToSchema, Clone)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"lines": [{"sku": "TEA-500G", "quantity": 1}]}))]
pub struct RefundIn {
    /// The units refunded, line by line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_items = 1, max_items = 500)]
    pub lines: Option<Vec<RefundLineIn>>,
    /// The amount of goods refunded, in minor units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 1_000_000_000_000i64)]
    pub amount_minor: Option<i64>,
}

impl RefundIn {
    /// Refuses a refund that gives both forms or neither, as a body of the wrong shape.
    pub fn check(&self, field: &str) -> Result<(), ApiError> {
        if self.lines.is_some() == self.amount_minor.is_some() {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "give exactly one of `lines` (units of lines) or `amount_minor`",
            )
            .with_field(field));
        }
        Ok(())
    }
}

fn amount(value: i64, field: &str) -> Result<AmountMinor, FieldError> {
    AmountMinor::parse(value).map_err(|e| e.within(field))
}

fn text<T>(
    parse: fn(String) -> Result<T, FieldError>,
    value: &str,
    field: &str,
) -> Result<T, FieldError> {
    parse(value.to_owned()).map_err(|e| e.within(field))
}

/// Parses order lines at the edge (events and quotes share them).
pub(crate) fn parse_lines(lines: &[LineIn]) -> Result<Vec<OrderLine>, FieldError> {
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let at = format!("lines[{i}]");
            OrderLine::new(
                text(Sku::parse, &l.sku, "sku")?,
                text(Category::parse, &l.category, "category")?,
                l.quantity,
                amount(l.unit_price_minor, "unit_price_minor")?,
                l.tags
                    .iter()
                    .enumerate()
                    .map(|(j, t)| text(Tag::parse, t, &format!("tags[{j}]")))
                    .collect::<Result<_, _>>()?,
            )
            .map_err(|e| e.within(&at))
        })
        .collect()
}

impl EventIn {
    /// Parses into a domain event, and rewrites `occurred_at` in its canonical form so
    /// that the same instant written two ways is the same body.
    fn parse(mut self) -> Result<(Event, EventIn), FieldError> {
        let (id, member_id, occurred_at) = self.common();
        let (id, member_id) = (id.clone(), member_id.clone());
        let instant: jiff::Timestamp = occurred_at.parse().map_err(|_| {
            FieldError::invalid(
                "occurred_at",
                "must be an RFC 3339 instant such as 2026-11-23T10:00:00+08:00",
            )
        })?;
        *occurred_at = instant.to_string();
        let id = text(EventId::parse, &id, "id")?;
        let member = text(ExternalId::parse, &member_id, "member_id")?;
        let body = match &self {
            EventIn::OrderPaid(OrderPaidIn {
                order_id,
                lines,
                shipping_minor,
                total_minor,
                ..
            }) => {
                let lines = parse_lines(lines)?;
                EventBody::OrderPaid(OrderPaid::new(
                    text(OrderId::parse, order_id, "order_id")?,
                    lines,
                    amount(*shipping_minor, "shipping_minor")?,
                    amount(*total_minor, "total_minor")?,
                )?)
            }
            EventIn::OrderCompleted(OrderCompletedIn { order_id, .. }) => {
                EventBody::OrderCompleted {
                    order_id: text(OrderId::parse, order_id, "order_id")?,
                }
            }
            EventIn::OrderRefunded(OrderRefundedIn {
                order_id, refund, ..
            }) => {
                let (lines, amount_minor) = match (&refund.lines, refund.amount_minor) {
                    (Some(lines), None) => (Some(lines), None),
                    (None, Some(amount)) => (None, Some(amount)),
                    _ => {
                        return Err(FieldError::invalid(
                            "refund",
                            "give exactly one of `lines` (units of lines) or `amount_minor`",
                        ))
                    }
                };
                let lines = lines
                    .map(|lines| {
                        lines
                            .iter()
                            .enumerate()
                            .map(|(i, l)| {
                                RefundLine::new(text(Sku::parse, &l.sku, "sku")?, l.quantity)
                                    .map_err(|e| e.within(&format!("refund.lines[{i}]")))
                            })
                            .collect::<Result<Vec<_>, FieldError>>()
                    })
                    .transpose()?;
                let amount_minor = amount_minor
                    .map(|a| amount(a, "refund.amount_minor"))
                    .transpose()?;
                let order_id = text(OrderId::parse, order_id, "order_id")?;
                EventBody::OrderRefunded(
                    OrderRefund::new(order_id, lines, amount_minor)
                        .map_err(|e| e.within("refund"))?,
                )
            }
            EventIn::Activity(ActivityIn { activity, .. }) => {
                EventBody::Activity(match activity.as_str() {
                    "review" => ActivityKind::Review,
                    "check_in" => ActivityKind::CheckIn,
                    "share" => ActivityKind::Share,
                    other => ActivityKind::Custom(text(ActivityName::parse, other, "activity")?),
                })
            }
        };
        Ok((
            Event {
                id,
                member,
                occurred_at: instant,
                body,
            },
            self,
        ))
    }
}

/// An event as stored.
#[derive(Serialize, ToSchema)]
pub struct EventView {
    /// When Tessera received it the first time.
    #[schema(format = DateTime)]
    pub received_at: String,
    /// The event as accepted, `occurred_at` in canonical form.
    pub event: EventIn,
}

impl EventView {
    fn of(row: &EventRow) -> Result<EventView, ApiError> {
        let event = EventIn::parse_json(row.body.as_bytes()).map_err(|e| {
            tracing::error!(event_id = %row.event_id, error = %e.message, "stored event does not parse");
            ApiError::new(
                ErrorCode::Internal,
                "internal error; the server log has the cause",
            )
        })?;
        Ok(EventView {
            received_at: rfc3339(tessera_engine::clock::from_us(row.received_at_us)),
            event,
        })
    }
}

/// The event to ingest, and its canonical wire form (what an accepted event answers).
pub(crate) fn prepare(value: EventIn) -> Result<(IngestItem, EventIn), ApiError> {
    let (event, canonical) = value.parse()?;
    let canonical_json = serde_json::to_string(&canonical).map_err(|e| {
        tracing::error!(error = %e, "an event does not serialize");
        ApiError::new(
            ErrorCode::Internal,
            "internal error; the server log has the cause",
        )
    })?;
    Ok((
        IngestItem {
            event,
            canonical_json,
        },
        canonical,
    ))
}

/// The answer for one event. An accepted event is stored as `canonical`, so that is its
/// answer; a repeat answers with the body stored the first time.
fn outcome_response(
    outcome: IngestOutcome,
    canonical: EventIn,
) -> Result<(StatusCode, EventView), ApiError> {
    match outcome {
        IngestOutcome::Accepted(row) => Ok((
            StatusCode::CREATED,
            EventView {
                received_at: rfc3339(tessera_engine::clock::from_us(row.received_at_us)),
                event: canonical,
            },
        )),
        IngestOutcome::Duplicate(row) => Ok((StatusCode::OK, EventView::of(&row)?)),
    }
}

/// Takes in one event. 201 the first time; 200 with the same answer for a repeat.
#[utoipa::path(post, path = "/v1/events", tag = "events", security(("api_key" = [])),
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$", description = "Replays the first answer for the same key and body")),
    request_body = EventIn,
    responses((status = 201, description = "Stored", body = EventView),
        (status = 200, description = "Already stored with the same body: the first answer", body = EventView),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "member_not_found", body = ErrorBody),
        (status = 409, description = "event_conflict, member_closed, idempotency_conflict", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn post_event(
    State(state): State<AppState>,
    caller: Caller,
    req: Request,
) -> ApiResult<(StatusCode, Json<EventView>)> {
    caller.require(&[Role::Admin, Role::Storefront])?;
    require_content_type(req.headers().get(CONTENT_TYPE), &["application/json"])?;
    let bytes = read_body(req, BODY_BYTES_MAX).await?;
    let (item, canonical) = prepare(EventIn::parse_json(&bytes)?)?;
    let mut outcomes = state.engine.ingest(std::slice::from_ref(&item)).await?;
    let outcome = outcomes
        .pop()
        .ok_or_else(|| ApiError::new(ErrorCode::Internal, "internal error"))??;
    let (status, view) = outcome_response(outcome, canonical)?;
    Ok((status, Json(view)))
}

/// One event, as it was accepted.
#[utoipa::path(get, path = "/v1/events/{event_id}", tag = "events", security(("api_key" = [])),
    params(("event_id" = crate::schema::IdText, Path)),
    responses((status = 200, body = EventView),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "event_not_found", body = ErrorBody),
        (status = 422, description = "the id is not a valid id", body = ErrorBody)))]
pub async fn get_event(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::Path(event_id): axum::extract::Path<String>,
) -> ApiResult<Json<EventView>> {
    caller.require(&[Role::Admin, Role::Storefront])?;
    let id = text(EventId::parse, &event_id, "event_id")?;
    let row = state
        .engine
        .event_by_id(id.as_str())
        .await?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::EventNotFound,
                format!("no event has the id `{id}`"),
            )
        })?;
    Ok(Json(EventView::of(&row)?))
}

/// A batch of up to 1,000 events, taken in by one durable write; each event is parsed and
/// judged on its own, so a bad one refuses only itself.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"events": [{"type": "order.paid", "id": "evt-1", "member_id": "u-1001", "occurred_at": "2026-11-23T10:00:00+08:00", "order_id": "SO-1", "lines": [{"sku": "TEA-500G", "category": "grocery", "quantity": 2, "unit_price_minor": 3000, "tags": ["promo"]}], "shipping_minor": 600, "total_minor": 6600}]}))]
pub struct BatchIn {
    /// 1 to 1,000 events; each is judged on its own.
    #[schema(value_type = Vec<EventIn>, min_items = 1, max_items = 1000)]
    pub events: Vec<Box<serde_json::value::RawValue>>,
}

/// What became of one event of a batch: what `POST /v1/events` would have answered for it
/// alone.
#[derive(Serialize, ToSchema)]
pub struct BatchItemResult {
    /// Position of the event in the request.
    pub index: usize,
    /// The status this event would have had alone: 201, 200, or a 4xx.
    pub status: u16,
    /// The event as stored, when it was accepted (201) or had been stored before with the
    /// same id and body (200); absent when it was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<EventView>,
    /// Why the event was refused, as `POST /v1/events` would have said it; absent when it
    /// was stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<crate::error::ErrorDetail>,
}

/// The answer to a batch: how many events were stored, repeated and refused, and one
/// result per event.
#[derive(Serialize, ToSchema)]
pub struct BatchResult {
    /// Events this batch stored (status 201).
    pub accepted: usize,
    /// Events stored before, or earlier in this batch, with the same id and body (status
    /// 200): they changed nothing.
    pub duplicates: usize,
    /// Events refused (status 400 or more); the rest of the batch still counts.
    pub rejected: usize,
    /// One result per event, in the order of `events`.
    pub results: Vec<BatchItemResult>,
}

/// Takes in up to 1,000 events in one durable write, with one result per event.
#[utoipa::path(post, path = "/v1/events/batch", tag = "events", security(("api_key" = [])),
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$", description = "Replays the first answer for the same key and body")),
    request_body = BatchIn,
    responses((status = 200, body = BatchResult),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, description = "idempotency_conflict", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn post_batch(
    State(state): State<AppState>,
    caller: Caller,
    req: Request,
) -> ApiResult<Json<BatchResult>> {
    caller.require(&[Role::Admin, Role::Storefront])?;
    require_content_type(req.headers().get(CONTENT_TYPE), &["application/json"])?;
    let bytes = read_body(req, BATCH_BODY_BYTES_MAX).await?;
    let batch: BatchIn = parse_json(&bytes)?;
    if batch.events.len() > BATCH_ITEMS_MAX {
        return Err(ApiError::new(
            ErrorCode::BatchTooLarge,
            format!(
                "a batch has at most {BATCH_ITEMS_MAX} events; this one has {}",
                batch.events.len()
            ),
        )
        .with_field("events"));
    }
    if batch.events.is_empty() {
        return Err(
            ApiError::new(ErrorCode::InvalidField, "a batch has at least one event")
                .with_field("events"),
        );
    }
    let mut results: Vec<Option<BatchItemResult>> = Vec::with_capacity(batch.events.len());
    let mut items = Vec::new();
    let mut canonicals = Vec::new();
    let mut positions = Vec::new();
    for (index, value) in batch.events.into_iter().enumerate() {
        // Each event is parsed on its own, so that one bad event refuses only itself.
        let prepared = EventIn::parse_json(value.get().as_bytes()).and_then(prepare);
        match prepared {
            Ok((item, canonical)) => {
                items.push(item);
                canonicals.push(canonical);
                positions.push(index);
                results.push(None);
            }
            Err(e) => results.push(Some(item_error(index, e))),
        }
    }
    let outcomes = state.engine.ingest(&items).await?;
    for ((index, outcome), canonical) in positions.into_iter().zip(outcomes).zip(canonicals) {
        let result = match outcome
            .map_err(ApiError::from)
            .and_then(|o| outcome_response(o, canonical))
        {
            Ok((status, view)) => BatchItemResult {
                index,
                status: status.as_u16(),
                event: Some(view),
                error: None,
            },
            Err(e) => item_error(index, e),
        };
        results[index] = Some(result);
    }
    let results: Vec<BatchItemResult> = results.into_iter().flatten().collect();
    let count = |s: u16| results.iter().filter(|r| r.status == s).count();
    Ok(Json(BatchResult {
        accepted: count(201),
        duplicates: count(200),
        rejected: results.iter().filter(|r| r.status >= 400).count(),
        results,
    }))
}

fn item_error(index: usize, e: ApiError) -> BatchItemResult {
    BatchItemResult {
        index,
        status: e.code.status().as_u16(),
        event: None,
        error: Some(e.body().error),
    }
}

/// A page of a member's events.
#[derive(Serialize, ToSchema)]
pub struct EventList {
    /// The member's events, in the order Tessera received them.
    pub items: Vec<EventView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A member's events in the order they arrived.
#[utoipa::path(get, path = "/v1/members/{member_id}/events", tag = "events", security(("api_key" = [])),
    params(("member_id" = crate::schema::IdText, Path),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "1 to 200, default 50"),
        ("cursor" = Option<String>, Query, description = "From `next_cursor` of the previous page")),
    responses((status = 200, body = EventList),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_events(
    State(state): State<AppState>,
    caller: Caller,
    MemberPath(external_id): MemberPath,
    EventPage(page): EventPage,
) -> ApiResult<Json<EventList>> {
    caller.require(&[Role::Admin, Role::Storefront])?;
    let (rows, next) = state
        .engine
        .member_events(&external_id, page.after.unwrap_or(0), page.limit)
        .await?;
    let items = rows.iter().map(EventView::of).collect::<Result<_, _>>()?;
    Ok(Json(EventList {
        items,
        next_cursor: next.map(|seq| encode_cursor("e", seq)),
    }))
}
