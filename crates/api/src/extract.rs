//! Extractors that turn a request into parsed values or into one of the API's errors.

use crate::error::{ApiError, ErrorCode};
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use tessera_domain::limits::{PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX};
use tessera_engine::{ApiKey, Role};

/// How long a client may take to send a request body.
pub const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Bytes of a JSON body up to `limit`, or `body_too_large`; `request_timeout` when the
/// body does not arrive within `BODY_READ_TIMEOUT`.
pub async fn read_body(req: Request, limit: usize) -> Result<Bytes, ApiError> {
    let read = axum::body::to_bytes(req.into_body(), limit);
    match tokio::time::timeout(BODY_READ_TIMEOUT, read).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => Err(ApiError::new(
            ErrorCode::BodyTooLarge,
            format!("the body is larger than {limit} bytes"),
        )),
        Err(_) => Err(ApiError::new(
            ErrorCode::RequestTimeout,
            format!(
                "the body did not arrive within {} s",
                BODY_READ_TIMEOUT.as_secs()
            ),
        )),
    }
}

/// The default limit of a JSON body.
pub const BODY_BYTES_MAX: usize = 256 * 1024;
/// The limit of a batch of events.
pub const BATCH_BODY_BYTES_MAX: usize = 8 * 1024 * 1024;

/// A JSON body parsed into `T`, with errors that name the field at fault.
pub struct ApiJson<T>(pub T);

pub fn require_content_type(
    parts_ct: Option<&axum::http::HeaderValue>,
    wanted: &[&str],
) -> Result<(), ApiError> {
    let ct = parts_ct.and_then(|v| v.to_str().ok()).unwrap_or("");
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if wanted.iter().any(|w| *w == mime) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!("Content-Type must be {}", wanted.join(" or ")),
        ))
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // The common case, a valid body, takes the plain parser; only a refused body is parsed
    // again with path tracking, to name the field at fault.
    if let Ok(value) = serde_json::from_slice(bytes) {
        return Ok(value);
    }
    // A whole number written as a decimal (`1319.0`) is an integer in JSON Schema, so the
    // OpenAPI document admits it where an integer is asked: it is taken as that integer.
    if let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(bytes) {
        if whole_numbers_as_integers(&mut value) {
            if let Ok(parsed) = serde_json::from_value(value) {
                return Ok(parsed);
            }
        }
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut *de).and_then(|v| {
        de.end().map(|()| v).map_err(|e| {
            serde_path_to_error::Error::new(serde_path_to_error::Track::new().path(), e)
        })
    });
    value.map_err(refusal)
}

/// Parses a JSON value already read into `T`, naming the field at fault by its full path,
/// as `parse_json` does.
pub fn parse_value<T: DeserializeOwned>(mut value: serde_json::Value) -> Result<T, ApiError> {
    if let Ok(parsed) = serde_json::from_value(value.clone()) {
        return Ok(parsed);
    }
    whole_numbers_as_integers(&mut value);
    serde_path_to_error::deserialize(value).map_err(refusal)
}

/// The refusal of a body serde could not read: the field at fault by its full path, and
/// a message in the terms of JSON (never the server's type names).
fn refusal(e: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    use serde_json::error::Category;
    let path = e.path().to_string();
    let inner = e.into_inner();
    match inner.classify() {
        Category::Syntax | Category::Eof | Category::Io => ApiError::new(
            ErrorCode::MalformedJson,
            format!("the body is not valid JSON: {inner}"),
        ),
        Category::Data => {
            let message = inner.to_string();
            let field = match field_of_serde_message(&message) {
                Some(key) if path == "." || path.is_empty() => key,
                Some(key) if message.starts_with("missing field") => format!("{path}.{key}"),
                _ => path.clone(),
            };
            let field = if field == "." { String::new() } else { field };
            ApiError::new(ErrorCode::InvalidRequest, in_json_terms(&message)).with_field(field)
        }
    }
}

/// serde's message with the server's types named as JSON names them: `expected i64` is
/// `expected an integer`, `expected struct MemberCreate` is `expected an object`; the
/// position serde appends is dropped (the field names the place).
pub fn in_json_terms(message: &str) -> String {
    let message = match message.rfind(" at line ") {
        Some(i) if message[i..].contains(" column ") => &message[..i],
        _ => message,
    };
    if message.starts_with("data did not match any variant of untagged enum") {
        return "does not match any of the accepted forms of this field".to_owned();
    }
    const NUMBERS: &[(&str, &str)] = &[
        ("i8", "an integer from -128 to 127"),
        ("i16", "an integer from -32768 to 32767"),
        ("i32", "an integer from -2147483648 to 2147483647"),
        (
            "i64",
            "an integer from -9223372036854775808 to 9223372036854775807",
        ),
        ("u8", "a whole number from 0 to 255"),
        ("u16", "a whole number from 0 to 65535"),
        ("u32", "a whole number from 0 to 4294967295"),
        ("u64", "a whole number from 0 to 18446744073709551615"),
        ("usize", "a whole number from 0 to 18446744073709551615"),
        ("f32", "a number"),
        ("f64", "a number"),
    ];
    let mut out = message.to_owned();
    for (rust, json) in NUMBERS {
        let before = format!("expected {rust}");
        if let Some(i) = out.find(&before) {
            let end = i + before.len();
            // Only the whole word: `expected u32`, not `expected u32x`.
            if out[end..]
                .chars()
                .next()
                .is_none_or(|c| !c.is_alphanumeric())
            {
                out.replace_range(i..end, &format!("expected {json}"));
            }
        }
    }
    for (kind, json) in [
        ("struct", "an object"),
        ("internally tagged enum", "an object"),
        ("enum", "one of the documented values"),
        ("tuple struct", "an array"),
    ] {
        let before = format!("expected {kind} ");
        if let Some(i) = out.find(&before) {
            let name_end = out[i + before.len()..]
                .find(|c: char| !c.is_alphanumeric() && c != '_')
                .map_or(out.len(), |n| i + before.len() + n);
            out.replace_range(i..name_end, &format!("expected {json}"));
        }
    }
    out.replace("a sequence", "an array")
        .replace("a map", "an object")
        .replace("unknown variant", "unknown value")
}

/// Rewrites every number with a zero fraction that fits 64 bits (`1319.0`, `-2.0`) as the
/// integer it is; returns whether any was rewritten.
pub fn whole_numbers_as_integers(value: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::Number(n) if !n.is_i64() && !n.is_u64() => {
            let Some(f) = n.as_f64() else { return false };
            // i64::MAX as f64 rounds up to 2^63, which does not fit: the bound is exclusive.
            if f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64 {
                *value = Value::from(f as i64);
                true
            } else {
                false
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |changed, v| whole_numbers_as_integers(v) | changed),
        Value::Object(map) => map
            .values_mut()
            .fold(false, |changed, v| whole_numbers_as_integers(v) | changed),
        _ => false,
    }
}

/// serde names the offending field in backticks for missing and unknown fields.
fn field_of_serde_message(message: &str) -> Option<String> {
    if message.starts_with("missing field") || message.starts_with("unknown field") {
        message.split('`').nth(1).map(str::to_owned)
    } else {
        None
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        require_content_type(req.headers().get(CONTENT_TYPE), &["application/json"])?;
        let bytes = read_body(req, BODY_BYTES_MAX).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// The caller of the request, put there by the authentication layer.
#[derive(Debug, Clone, Copy)]
pub struct Caller(pub ApiKey);

impl Caller {
    /// Refuses the request unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.0.role) {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorCode::Forbidden,
                format!("a {} key may not use this route", self.0.role.as_str()),
            ))
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .copied()
            .ok_or_else(|| ApiError::new(ErrorCode::Unauthenticated, "an API key is required"))
    }
}

/// `?limit=&cursor=` of a listing.
#[derive(Debug, Clone)]
pub struct Page {
    pub limit: u32,
    /// The position after which the page starts, decoded from the cursor.
    pub after: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    limit: Option<String>,
    cursor: Option<String>,
}

/// Cursors are opaque to clients: a kind tag and a position, base64url-encoded.
pub fn encode_cursor(kind: &str, position: i64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{kind}:{position}"))
}

/// A cursor of a listing ordered by two numbers (an instant, then an id).
pub fn encode_cursor_pair(kind: &str, first: i64, second: i64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{kind}:{first}:{second}"))
}

/// The two numbers of a cursor made by `encode_cursor_pair` for `kind`; a cursor of
/// another listing, or none at all, is `invalid_cursor`.
pub fn decode_cursor_pair(cursor: &str, kind: &str) -> Result<(i64, i64), ApiError> {
    let refuse = || {
        ApiError::new(
            ErrorCode::InvalidCursor,
            "the cursor was not issued for this listing",
        )
        .with_field("cursor")
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| refuse())?;
    let text = String::from_utf8(bytes).map_err(|_| refuse())?;
    let mut parts = text.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(k), Some(a), Some(b)) if k == kind => Ok((
            a.parse().map_err(|_| refuse())?,
            b.parse().map_err(|_| refuse())?,
        )),
        _ => Err(refuse()),
    }
}

fn decode_cursor(cursor: &str) -> Option<(String, i64)> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (kind, position) = text.split_once(':')?;
    Some((kind.to_owned(), position.parse().ok()?))
}

impl Page {
    fn from_uri(uri: &axum::http::Uri, cursor_kind: &str) -> Result<Page, ApiError> {
        let axum::extract::Query(q) = axum::extract::Query::<PageQuery>::try_from_uri(uri)
            .map_err(|e| ApiError::new(ErrorCode::InvalidQuery, e.body_text()))?;
        Page::from_parts(q.limit, q.cursor, cursor_kind)
    }

    /// The page of a listing whose query has more parameters than `limit` and `cursor`.
    pub fn from_parts(
        limit: Option<String>,
        cursor: Option<String>,
        cursor_kind: &str,
    ) -> Result<Page, ApiError> {
        let q = PageQuery { limit, cursor };
        let limit = match q.limit {
            None => PAGE_SIZE_DEFAULT,
            Some(raw) => match raw.parse::<u32>() {
                Ok(n) if (1..=PAGE_SIZE_MAX).contains(&n) => n,
                _ => {
                    return Err(ApiError::new(
                        ErrorCode::PageSizeOutOfRange,
                        format!("limit must be a whole number between 1 and {PAGE_SIZE_MAX}"),
                    )
                    .with_field("limit"))
                }
            },
        };
        let after = match q.cursor.filter(|c| !c.is_empty()) {
            None => None,
            Some(c) => match decode_cursor(&c) {
                Some((kind, position)) if kind == cursor_kind => Some(position),
                _ => {
                    return Err(ApiError::new(
                        ErrorCode::InvalidCursor,
                        "the cursor was not issued for this listing",
                    )
                    .with_field("cursor"))
                }
            },
        };
        Ok(Page { limit, after })
    }
}

/// A listing's page extractor: `?limit=&cursor=` with cursors of its own kind, so that a
/// cursor of one listing is refused by another.
macro_rules! page_of_kind {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        pub struct $name(pub Page);

        impl<S: Send + Sync> FromRequestParts<S> for $name {
            type Rejection = ApiError;
            async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
                Page::from_uri(&parts.uri, $kind).map($name)
            }
        }
    };
}

page_of_kind!(
    /// A page of events (`cursor` kind `e`).
    EventPage,
    "e"
);
page_of_kind!(
    /// A page of programme versions (`cursor` kind `v`).
    VersionPage,
    "v"
);
page_of_kind!(
    /// A page of a member's journal (`cursor` kind `j`).
    LedgerPage,
    "j"
);
page_of_kind!(
    /// A page of a member's coupons, newest first (`cursor` kind `c`).
    CouponPage,
    "c"
);
page_of_kind!(
    /// A page of API keys, oldest first (`cursor` kind `k`).
    KeyPage,
    "k"
);
page_of_kind!(
    /// A page of a member's tier history, newest first (`cursor` kind `h`).
    TierHistoryPage,
    "h"
);
page_of_kind!(
    /// A page of a member's subscriptions, newest first (`cursor` kind `s`).
    SubscriptionPage,
    "s"
);
page_of_kind!(
    /// A page of the members a member brought, oldest first (`cursor` kind `r`).
    ReferralPage,
    "r"
);
