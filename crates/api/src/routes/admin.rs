//! The manual clock.

use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::extract::{ApiJson, Caller};
use crate::routes::rfc3339;
use crate::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tessera_engine::Role;
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/admin/clock", get(get_clock).post(set_clock))
}

/// A move of the manual clock: the instant it should read. A server on the system clock
/// refuses it (`clock_not_manual`).
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"now": "2026-12-01T00:00:00Z"}))]
pub struct ClockSet {
    /// The instant to move the clock to, RFC 3339. Never before the current one.
    #[schema(format = DateTime, example = "2026-12-01T00:00:00Z")]
    pub now: String,
}

/// The engine's clock: the instant it reads now, and whether an admin can move it.
#[derive(Serialize, ToSchema)]
pub struct ClockView {
    /// The engine's current instant, RFC 3339.
    #[schema(format = DateTime)]
    pub now: String,
    /// Whether the clock is manual (`--clock manual`).
    pub manual: bool,
}

/// The engine's clock.
#[utoipa::path(get, path = "/v1/admin/clock", tag = "admin", security(("api_key" = [])),
    responses((status = 200, body = ClockView),
        (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
pub async fn get_clock(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<ClockView>> {
    caller.require(&[Role::Admin])?;
    Ok(Json(ClockView {
        now: rfc3339(state.engine.now()),
        manual: state.engine.is_manual_clock(),
    }))
}

/// Moves the manual clock forward; the time-driven work that became due runs once.
#[utoipa::path(post, path = "/v1/admin/clock", tag = "admin", security(("api_key" = [])),
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$", description = "Replays the first answer for the same key and body")),
    request_body = ClockSet,
    responses((status = 200, body = ClockView),
        (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 409, description = "clock_backwards, clock_not_manual, idempotency_conflict", body = crate::error::ErrorBody),
        (status = 413, body = crate::error::ErrorBody), (status = 415, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
pub async fn set_clock(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<ClockSet>,
) -> ApiResult<Json<ClockView>> {
    caller.require(&[Role::Admin])?;
    let to: jiff::Timestamp = body.now.parse().map_err(|_| {
        ApiError::new(
            ErrorCode::InvalidField,
            "now must be an RFC 3339 instant such as 2026-12-01T00:00:00Z",
        )
        .with_field("now")
    })?;
    let now = state.engine.advance_clock(to).await?;
    Ok(Json(ClockView {
        now: rfc3339(now),
        manual: true,
    }))
}
