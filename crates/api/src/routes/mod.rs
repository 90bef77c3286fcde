pub mod admin;
pub mod events;
pub mod keys;
pub mod members;
pub mod offers;
pub mod points;
pub mod programme;
pub mod quotes;
pub mod referrals;
pub mod subscriptions;
pub mod system;
pub mod tiers;

use crate::error::{ApiError, ErrorCode};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use tessera_domain::ExternalId;

/// RFC 3339 of an instant, as every response writes times.
pub fn rfc3339(t: jiff::Timestamp) -> String {
    t.to_string()
}

/// The `{id}` of a route whose resources are numbered (subscriptions, keys): a positive
/// whole number, else `invalid_field` on `id` saying what `what` ids are.
pub async fn positive_id<S: Send + Sync>(
    parts: &mut Parts,
    state: &S,
    what: &str,
) -> Result<i64, ApiError> {
    let axum::extract::Path(raw) = axum::extract::Path::<String>::from_request_parts(parts, state)
        .await
        .map_err(|e| ApiError::new(ErrorCode::InvalidField, e.body_text()).with_field("id"))?;
    match raw.parse::<i64>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(ApiError::new(
            ErrorCode::InvalidField,
            format!("a {what} id is a positive whole number"),
        )
        .with_field("id")),
    }
}

/// The `{member_id}` of a member route, parsed.
pub struct MemberPath(pub ExternalId);

impl<S: Send + Sync> FromRequestParts<S> for MemberPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|e| {
                    ApiError::new(ErrorCode::InvalidField, e.body_text()).with_field("member_id")
                })?;
        ExternalId::parse(raw)
            .map(MemberPath)
            .map_err(|e| ApiError::from(e.within("member_id")))
    }
}
