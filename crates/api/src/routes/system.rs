//! Routes outside `/v1`: health, metrics, the OpenAPI document, and the fallbacks.

use crate::error::{ApiError, ErrorCode};
use crate::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
}

/// The server's health: whether its database answers, which backend it is, and which
/// programme version runs.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok` when the database answers.
    pub status: String,
    /// `sqlite` or `postgres`.
    pub database: String,
    /// The running programme version, if one is loaded.
    pub programme_version: Option<i64>,
}

/// Whether the server and its database answer.
#[utoipa::path(get, path = "/healthz", tag = "system",
    responses((status = 200, body = Health), (status = 503, body = crate::error::ErrorBody)))]
pub async fn healthz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    let engine = &state.engine;
    engine.store().ping().await.map_err(|e| {
        tracing::error!(error = %e, "health check failed");
        ApiError::new(ErrorCode::Unavailable, "the database does not answer")
    })?;
    Ok(Json(Health {
        status: "ok".to_owned(),
        database: engine.store().backend_name().to_owned(),
        programme_version: engine.programme().ok().map(|p| p.version),
    }))
}

/// Prometheus metrics: requests by route and status with a latency histogram, events
/// ingested by type, runs of the time-driven work, and subscriptions by status.
#[utoipa::path(get, path = "/metrics", tag = "system",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    super::super::metrics_handle();
    let read = Some(state.engine.subscriptions_by_status().await);
    match read {
        None => {}
        Some(Ok(counts)) => {
            // A status no subscription is in any more reads 0, not its last count.
            static SEEN: std::sync::Mutex<std::collections::BTreeSet<String>> =
                std::sync::Mutex::new(std::collections::BTreeSet::new());
            let mut seen = SEEN.lock().unwrap_or_else(|p| p.into_inner());
            for status in seen.iter() {
                if !counts.iter().any(|(s, _)| s == status) {
                    metrics::gauge!("tessera_subscriptions", "status" => status.clone()).set(0.0);
                }
            }
            for (status, n) in counts {
                seen.insert(status.clone());
                metrics::gauge!("tessera_subscriptions", "status" => status).set(n as f64);
            }
        }
        Some(Err(e)) => {
            tracing::warn!(error = %e, "subscriptions by status are not in this scrape")
        }
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        super::super::metrics_handle().render(),
    )
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "system",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json", body = Object)))]
pub async fn openapi() -> impl IntoResponse {
    // The document is the same for the life of the process: built once.
    static DOCUMENT: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    Json(DOCUMENT.get_or_init(crate::openapi::document_json).clone())
}

pub async fn route_not_found() -> ApiError {
    ApiError::new(ErrorCode::RouteNotFound, "no route has this path")
}

pub async fn method_not_allowed() -> impl IntoResponse {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        Json(
            ApiError::new(
                ErrorCode::MethodNotAllowed,
                "this route does not take this method",
            )
            .body(),
        ),
    )
}
