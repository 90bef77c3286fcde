//! Layers every request passes: metrics and logs, authentication, idempotency keys.

use crate::error::{ApiError, ErrorCode};
use crate::extract::{read_body, Caller, BATCH_BODY_BYTES_MAX};
use crate::AppState;
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Instant;
use tessera_domain::limits::IDEMPOTENCY_KEY_LEN_MAX;
use tessera_engine::sha256_hex;
use tessera_engine::IdempotencyClaim;

/// The process-wide Prometheus recorder, installed on first use.
pub fn metrics_handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&[
                0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ])
            .expect("bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (several apps in one test process);
        // the first one then keeps counting and this handle renders nothing new.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// Counts requests by route and status, times them, and logs each one.
pub async fn observe(req: Request, next: Next) -> Response {
    use tracing::Instrument;
    metrics_handle();
    let started = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    // The client's request id when it sent a usable one, else one of ours; every log line
    // of the request carries it (and the key's id, once authentication knows it), and the
    // answer echoes it.
    let request_id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| {
            (1..=REQUEST_ID_LEN_MAX).contains(&id.len())
                && id.bytes().all(|b| (0x21..0x7f).contains(&b))
        })
        .map(str::to_owned)
        .or_else(|| tessera_engine::Engine::claim_token().ok())
        .unwrap_or_default();
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        key_id = tracing::field::Empty
    );
    let mut response = async move {
        let response = next.run(req).await;
        let elapsed = started.elapsed();
        let status = response.status().as_u16().to_string();
        metrics::counter!("tessera_http_requests_total", "method" => method.to_string(), "route" => route.clone(), "status" => status.clone())
            .increment(1);
        metrics::histogram!("tessera_http_request_duration_seconds", "method" => method.to_string(), "route" => route.clone())
            .record(elapsed.as_secs_f64());
        tracing::info!(%method, %route, status = %status, latency_us = elapsed.as_micros() as u64, "request");
        response
    }
    .instrument(span)
    .await;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

/// The header that carries a request's id, in and out.
const REQUEST_ID: &str = "x-request-id";
/// The longest request id taken from a client (a longer one is replaced by ours).
const REQUEST_ID_LEN_MAX: usize = 128;

/// The longest path and query a request may have.
pub const URI_BYTES_MAX: usize = 8 * 1024;
/// The most header bytes (names and values) a request may have.
pub const HEADER_BYTES_MAX: usize = 16 * 1024;
/// The most headers a request may have.
pub const HEADERS_MAX: usize = 100;

/// Refuses a request whose path and query or headers are too large, with the error shape
/// (the server itself only cuts off requests far beyond these limits).
pub async fn limits(req: Request, next: Next) -> Response {
    let uri = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if uri > URI_BYTES_MAX {
        return ApiError::new(
            ErrorCode::UriTooLong,
            format!("the path and query have {uri} bytes; at most {URI_BYTES_MAX} are read"),
        )
        .into_response();
    }
    let headers: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if req.headers().len() > HEADERS_MAX {
        return ApiError::new(
            ErrorCode::HeadersTooLarge,
            format!(
                "the request has {} headers; at most {HEADERS_MAX} are read",
                req.headers().len()
            ),
        )
        .into_response();
    }
    if headers > HEADER_BYTES_MAX {
        return ApiError::new(
            ErrorCode::HeadersTooLarge,
            format!("the headers have {headers} bytes; at most {HEADER_BYTES_MAX} are read"),
        )
        .into_response();
    }
    next.run(req).await
}

/// Finds the caller of a `/v1` request from `Authorization: Bearer <key>`.
pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let key = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(key) = key.filter(|k| !k.is_empty()) else {
        return ApiError::new(
            ErrorCode::Unauthenticated,
            "send an API key as `Authorization: Bearer <key>`",
        )
        .into_response();
    };
    match state.engine.authenticate(key).await {
        Ok(Some(api_key)) => {
            // Every log line of the request names the key that made it.
            tracing::Span::current().record("key_id", api_key.id);
            if let Some(limiter) = &state.limiter {
                if let Err(wait) = limiter.take(api_key.id, std::time::Instant::now()) {
                    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                    let mut response = ApiError::new(
                        ErrorCode::RateLimited,
                        format!("this API key is over its rate; retry in {seconds} s"),
                    )
                    .into_response();
                    response.headers_mut().insert(
                        axum::http::header::RETRY_AFTER,
                        axum::http::HeaderValue::from(seconds.max(1)),
                    );
                    return response;
                }
            }
            req.extensions_mut().insert(Caller(api_key));
            next.run(req).await
        }
        Ok(None) => ApiError::new(
            ErrorCode::Unauthenticated,
            "the API key is unknown or revoked",
        )
        .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// `Idempotency-Key` on a POST: the same key and body (compared as parsed JSON, so spacing
/// and key order do not matter) replay the first answer; the same key with another body,
/// or on another route, is refused with its own code. Only successful answers are kept: a
/// refused or failed request frees its key, so the client can correct the body and retry.
/// A claim is a lease renewed while its request runs, so the key of a request that died
/// (a crash, a dropped connection) frees up within seconds.
pub async fn idempotency(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let Some(raw_key) = req.headers().get("idempotency-key").cloned() else {
        return next.run(req).await;
    };
    // An answer that holds a new API key is stored nowhere, so it cannot be replayed.
    if crate::routes::keys::answers_a_key(req.method(), req.uri().path()) {
        return ApiError::new(
            ErrorCode::IdempotencyNotSupported,
            "this route answers a new API key, which is stored nowhere: send it without Idempotency-Key",
        )
        .into_response();
    }
    let key = match raw_key.to_str() {
        Ok(k)
            if !k.is_empty()
                && k.len() <= IDEMPOTENCY_KEY_LEN_MAX
                && k.bytes().all(|b| (0x21..0x7f).contains(&b)) =>
        {
            k.to_owned()
        }
        _ => {
            return ApiError::new(
                ErrorCode::IdempotencyKeyInvalid,
                format!(
                "Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_LEN_MAX} printable ASCII characters"
            ),
            )
            .into_response()
        }
    };
    let Some(caller) = req.extensions().get::<Caller>().copied() else {
        return next.run(req).await;
    };
    let (parts, body) = req.into_parts();
    let bytes = match read_body(Request::new(body), BATCH_BODY_BYTES_MAX).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let route = format!("{} {}", parts.method, parts.uri.path());
    let request_sha = sha256_hex(&body_fingerprint(&bytes));
    let engine = &state.engine;
    let token = match tessera_engine::Engine::claim_token() {
        Ok(t) => t,
        Err(e) => return ApiError::from(e).into_response(),
    };
    match engine
        .idempotency_begin(caller.0, &key, &route, &request_sha, &token)
        .await
    {
        Err(e) => return ApiError::from(e).into_response(),
        Ok(claim) => {
            if let Some(answer) = answer_to_claimed_key(claim) {
                return answer;
            }
        }
    }
    // The lease is renewed while the request runs; most requests end before the first
    // renewal is due.
    // Aborted when dropped: also when the request's future is dropped (a client gone, a
    // server shutting down), so a dead request stops renewing and its claim lapses.
    let renewal = AbortOnDrop(tokio::spawn({
        let engine = engine.clone();
        let (key, token) = (key.clone(), token.clone());
        async move {
            loop {
                tokio::time::sleep(tessera_engine::IDEMPOTENCY_RENEW_EVERY).await;
                match engine.idempotency_renew(caller.0, &key, &token).await {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(e) => tracing::warn!(error = %e, "could not renew an idempotency claim"),
                }
            }
        }
    }));
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    drop(renewal);
    let status = response.status();
    if !status.is_success() {
        if let Err(e) = engine.idempotency_abandon(caller.0, &key, &token).await {
            tracing::error!(error = %e, "could not release an idempotency key");
        }
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "could not read a response body");
            return ApiError::new(ErrorCode::Internal, "internal error").into_response();
        }
    };
    let text = String::from_utf8_lossy(&bytes);
    match engine
        .idempotency_complete(caller.0, &key, &token, status.as_u16(), &text)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!("an idempotency claim was taken over before its answer was stored")
        }
        Err(e) => tracing::error!(error = %e, "could not store an idempotent answer"),
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// The answer to a request whose Idempotency-Key another request claimed (a refusal, or the
/// first answer replayed); `None` when this request holds the claim and runs.
fn answer_to_claimed_key(claim: IdempotencyClaim) -> Option<Response> {
    match claim {
        IdempotencyClaim::Mismatch => Some(
            ApiError::new(
                ErrorCode::IdempotencyConflict,
                "this Idempotency-Key was used with another request body",
            )
            .into_response(),
        ),
        IdempotencyClaim::OtherRoute { route: first } => Some(
            ApiError::new(
                ErrorCode::IdempotencyKeyReused,
                format!("this Idempotency-Key was used on another route ({first}): use a new key for each request"),
            )
            .into_response(),
        ),
        IdempotencyClaim::InProgress => {
            let mut response = ApiError::new(
                ErrorCode::IdempotencyInProgress,
                "the first request with this Idempotency-Key is still running",
            )
            .into_response();
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, HeaderValue::from_static("1"));
            Some(response)
        }
        IdempotencyClaim::Done { status, body } => {
            let mut response = (
                StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
                [(
                    axum::http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                body,
            )
                .into_response();
            response
                .headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            Some(response)
        }
        IdempotencyClaim::Claimed => None,
    }
}

/// What identifies a request body: its JSON in one stable form (keys sorted, no spacing),
/// so that the same body sent again with other spacing or key order is the same request;
/// a body that is not JSON is taken byte for byte.
fn body_fingerprint(bytes: &[u8]) -> Vec<u8> {
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(mut value) => {
            crate::extract::whole_numbers_as_integers(&mut value);
            value.to_string().into_bytes()
        }
        Err(_) => bytes.to_vec(),
    }
}

/// A task that is aborted when this handle is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
