//! Tessera's REST API.
//!
//! Architecture invariant: this crate knows HTTP and JSON, and no SQL. Every handler
//! parses its input into domain types, calls one engine use case, and renders the result;
//! every failure becomes the one error shape with a code from `error::ErrorCode`.

pub mod error;
mod extract;
mod middleware;
pub mod openapi;
mod rate;
mod routes;
pub mod schema;
mod serve;
pub use rate::KeyRate;
pub use serve::{serve, serve_with};

/// The limits of requests and bodies, as `docs/LIMITS.md` states them.
pub mod limits {
    pub use crate::extract::{BATCH_BODY_BYTES_MAX, BODY_BYTES_MAX};
    pub use crate::middleware::{HEADERS_MAX, HEADER_BYTES_MAX, URI_BYTES_MAX};
}

use axum::extract::DefaultBodyLimit;
use axum::Router;
use std::sync::Arc;
use tessera_engine::Engine;

pub use middleware::metrics_handle;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    /// Per-key rate limits, when the server has them.
    pub(crate) limiter: Option<Arc<rate::RateLimiter>>,
}

/// What a server may set beyond its engine.
#[derive(Debug, Clone, Default)]
pub struct AppOptions {
    /// A rate every API key gets; over it, `429 rate_limited` with `Retry-After`.
    pub key_rate: Option<KeyRate>,
}

/// The whole API as a router, without a socket: `serve` binds it, tests call it directly.
pub fn app(engine: Arc<Engine>) -> Router {
    app_with(engine, AppOptions::default())
}

/// `app` with options (per-key rate limits).
pub fn app_with(engine: Arc<Engine>, options: AppOptions) -> Router {
    let state = AppState {
        engine,
        limiter: options
            .key_rate
            .map(|rate| Arc::new(rate::RateLimiter::new(rate))),
    };
    let v1 = Router::new()
        .merge(routes::programme::router())
        .merge(routes::members::router())
        .merge(routes::events::router())
        .merge(routes::points::router())
        .merge(routes::tiers::router())
        .merge(routes::subscriptions::router())
        .merge(routes::quotes::router())
        .merge(routes::admin::router())
        .merge(routes::keys::router())
        .merge(routes::referrals::router())
        .merge(routes::offers::router())
        // Idempotency runs inside authentication: a key is scoped to its caller.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::idempotency,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::authenticate,
        ));
    Router::new()
        .merge(routes::system::router())
        .merge(v1)
        .fallback(routes::system::route_not_found)
        .method_not_allowed_fallback(routes::system::method_not_allowed)
        // Handlers read bodies through `extract::read_body` with their own limits.
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn(middleware::limits))
        .layer(axum::middleware::from_fn(middleware::observe))
        .with_state(state)
}
