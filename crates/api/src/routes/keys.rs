//! API keys: list, make, revoke and rotate (admin). A key is shown once, in the answer
//! that makes it, and stored nowhere but as its hash: the routes that answer a key take
//! no `Idempotency-Key` (a lost answer: revoke the key by its prefix and make another).

use crate::error::{ApiError, ApiResult, ErrorBody, ErrorCode};
use crate::extract::{encode_cursor, ApiJson, Caller, KeyPage};
use crate::routes::rfc3339;
use crate::AppState;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tessera_engine::keys::{KeyView, NewKey};
use tessera_engine::Role;
use utoipa::ToSchema;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/keys", get(list_keys).post(create_key))
        .route("/v1/admin/keys/{id}/revoke", post(revoke_key))
        .route("/v1/admin/keys/{id}/rotate", post(rotate_key))
}

/// Whether a route answers a new key (and so takes no `Idempotency-Key`).
pub fn answers_a_key(method: &axum::http::Method, path: &str) -> bool {
    method == axum::http::Method::POST
        && (path == "/v1/admin/keys"
            || path
                .strip_prefix("/v1/admin/keys/")
                .is_some_and(|rest| rest.ends_with("/rotate")))
}

/// The `{id}` of a key route, parsed.
pub struct KeyPath(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for KeyPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        super::positive_id(parts, state, "key").await.map(KeyPath)
    }
}

/// An API key as an operator sees it: its id, prefix, role and dates, never the key
/// itself.
#[derive(Serialize, ToSchema)]
pub struct KeyOut {
    /// The key's id, for `POST /v1/admin/keys/{id}/revoke` and `.../rotate`.
    pub id: i64,
    /// The key's first characters, to tell keys apart.
    pub prefix: String,
    /// `admin`, `storefront` or `partner`.
    pub role: String,
    /// For a partner's key: the partner it acts for; absent for other roles.
    pub partner: Option<String>,
    /// The note given when the key was made (a rotation keeps it); absent when none was.
    pub label: Option<String>,
    /// When the key was made, by the server's wall clock (never the manual clock),
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// From this instant on (wall clock) the key is refused, RFC 3339; absent when it
    /// never expires.
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    /// When the key was revoked, by a revocation or a rotation (wall clock), RFC 3339;
    /// absent while it is not revoked.
    #[schema(format = DateTime)]
    pub revoked_at: Option<String>,
    /// Recorded at most once a minute per key and server process.
    #[schema(format = DateTime)]
    pub last_used_at: Option<String>,
}

fn key_out(k: KeyView) -> KeyOut {
    KeyOut {
        id: k.id,
        prefix: k.prefix,
        role: k.role.as_str().to_owned(),
        partner: k.partner,
        label: k.label,
        created_at: rfc3339(k.created_at),
        expires_at: k.expires_at.map(rfc3339),
        revoked_at: k.revoked_at.map(rfc3339),
        last_used_at: k.last_used_at.map(rfc3339),
    }
}

/// A key just made (by `POST /v1/admin/keys` or a rotation), with the key itself.
#[derive(Serialize, ToSchema)]
pub struct NewKeyOut {
    /// The key itself: shown this once, stored nowhere.
    pub key: String,
    /// The key's details, as `GET /v1/admin/keys` lists them.
    #[serde(flatten)]
    pub view: KeyOut,
}

/// A page of API keys.
#[derive(Serialize, ToSchema)]
pub struct KeyList {
    /// Oldest first, revoked keys too.
    pub items: Vec<KeyOut>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Every API key (never the keys themselves).
#[utoipa::path(get, path = "/v1/admin/keys", tag = "admin", security(("api_key" = [])),
    params(("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "1 to 200, default 50"),
        ("cursor" = Option<String>, Query, description = "From `next_cursor` of the previous page")),
    responses((status = 200, body = KeyList),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn list_keys(
    State(state): State<AppState>,
    caller: Caller,
    KeyPage(page): KeyPage,
) -> ApiResult<Json<KeyList>> {
    caller.require(&[Role::Admin])?;
    let (keys, next) = state
        .engine
        .keys_page(page.after.unwrap_or(0), page.limit)
        .await?;
    Ok(Json(KeyList {
        items: keys.into_iter().map(key_out).collect(),
        next_cursor: next.map(|n| encode_cursor("k", n)),
    }))
}

/// A key to make: its role, and optionally its partner, a label and an expiry.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"role": "storefront", "label": "web checkout", "expires_at": "2027-12-31T00:00:00Z"}))]
pub struct KeyIn {
    /// `admin`, `storefront` or `partner`.
    #[schema(pattern = "^(admin|storefront|partner)$")]
    pub role: String,
    /// For a partner's key: a partner the programme declares in a plan's partner rights.
    pub partner: Option<String>,
    /// A note to tell keys apart, 1 to 128 characters.
    #[schema(min_length = 1, max_length = 128)]
    pub label: Option<String>,
    /// After this instant the key is refused (RFC 3339, in the future).
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
}

/// Makes a key; the answer shows it once.
#[utoipa::path(post, path = "/v1/admin/keys", tag = "admin", security(("api_key" = [])),
    request_body = KeyIn,
    responses((status = 201, body = NewKeyOut),
        (status = 400, description = "idempotency_not_supported", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, description = "invalid_field, unknown_partner", body = ErrorBody)))]
pub async fn create_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<KeyIn>,
) -> ApiResult<(StatusCode, Json<NewKeyOut>)> {
    caller.require(&[Role::Admin])?;
    let role = Role::parse(&body.role).ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidField,
            "role is `admin`, `storefront` or `partner`",
        )
        .with_field("role")
    })?;
    let expires_at = body
        .expires_at
        .as_deref()
        .map(|s| {
            s.parse::<jiff::Timestamp>().map_err(|_| {
                ApiError::new(
                    ErrorCode::InvalidField,
                    "expires_at must be an RFC 3339 instant such as 2027-01-01T00:00:00Z",
                )
                .with_field("expires_at")
            })
        })
        .transpose()?;
    let new = NewKey {
        role,
        partner: body.partner,
        label: body.label,
        expires_at,
    };
    let (key, view) = state.engine.create_key_with(&new).await?;
    Ok((
        StatusCode::CREATED,
        Json(NewKeyOut {
            key,
            view: key_out(view),
        }),
    ))
}

/// Revokes a key: every server on the database refuses it within 2 s. Revoking a revoked
/// key answers as the first time.
#[utoipa::path(post, path = "/v1/admin/keys/{id}/revoke", tag = "admin", security(("api_key" = [])),
    params(("id" = i64, Path, minimum = 1)),
    responses((status = 200, body = KeyOut),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "key_not_found", body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 409, description = "last_admin_key", body = crate::error::ErrorBody)))]
pub async fn revoke_key(
    State(state): State<AppState>,
    caller: Caller,
    KeyPath(id): KeyPath,
) -> ApiResult<Json<KeyOut>> {
    caller.require(&[Role::Admin])?;
    Ok(Json(key_out(state.engine.revoke_key(id).await?)))
}

/// Replaces a key by a new one with the same role, partner, label and expiry, and revokes
/// the old one; the answer shows the new key once.
#[utoipa::path(post, path = "/v1/admin/keys/{id}/rotate", tag = "admin", security(("api_key" = [])),
    params(("id" = i64, Path, minimum = 1)),
    responses((status = 201, body = NewKeyOut),
        (status = 400, description = "idempotency_not_supported", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "key_not_found", body = ErrorBody),
        (status = 409, description = "key_revoked", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn rotate_key(
    State(state): State<AppState>,
    caller: Caller,
    KeyPath(id): KeyPath,
) -> ApiResult<(StatusCode, Json<NewKeyOut>)> {
    caller.require(&[Role::Admin])?;
    let (key, view) = state.engine.rotate_key(id).await?;
    Ok((
        StatusCode::CREATED,
        Json(NewKeyOut {
            key,
            view: key_out(view),
        }),
    ))
}
