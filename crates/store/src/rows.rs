//! Plain rows as the store reads and writes them. Times are microseconds since the epoch.

use crate::Result;
use sqlx::any::AnyRow;
use sqlx::Row;

#[derive(Debug, Clone, PartialEq)]
pub struct ProgrammeVersionRow {
    pub version: i64,
    pub source: String,
    pub sha256: String,
    pub created_at_us: i64,
}

impl ProgrammeVersionRow {
    pub(crate) fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(Self {
            version: r.try_get("version")?,
            source: r.try_get("source")?,
            sha256: r.try_get("sha256")?,
            created_at_us: r.try_get("created_at_us")?,
        })
    }
}

/// An API key as stored: never the key itself, only its hash and first characters.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyRow {
    pub id: i64,
    /// The key's first characters, to tell keys apart.
    pub prefix: String,
    pub role: String,
    /// For a partner's key: the partner whose rights it answers for.
    pub partner: Option<String>,
    pub label: Option<String>,
    pub created_at_us: i64,
    pub expires_at_us: Option<i64>,
    pub revoked_at_us: Option<i64>,
    pub last_used_at_us: Option<i64>,
}

pub(crate) const API_KEY_COLUMNS: &str = "id, prefix, role, partner, label, created_at_us, \
    expires_at_us, revoked_at_us, last_used_at_us";

impl ApiKeyRow {
    pub(crate) fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(Self {
            id: r.try_get("id")?,
            prefix: r.try_get("prefix")?,
            role: r.try_get("role")?,
            partner: r.try_get("partner")?,
            label: r.try_get("label")?,
            created_at_us: r.try_get("created_at_us")?,
            expires_at_us: r.try_get("expires_at_us")?,
            revoked_at_us: r.try_get("revoked_at_us")?,
            last_used_at_us: r.try_get("last_used_at_us")?,
        })
    }
}

/// A key to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewApiKey<'a> {
    pub key_sha256: &'a str,
    pub prefix: &'a str,
    pub role: &'a str,
    pub partner: Option<&'a str>,
    pub label: Option<&'a str>,
    pub expires_at_us: Option<i64>,
    pub now_us: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MemberRow {
    pub id: i64,
    pub external_id: String,
    pub status: String,
    /// Canonical JSON of the attributes object.
    pub attributes: String,
    pub referred_by_code: Option<String>,
    /// The member's own referral code; `None` for members who joined before codes were
    /// given (one is given when first asked for).
    pub referral_code: Option<String>,
    pub created_at_us: i64,
    pub updated_at_us: i64,
    pub closed_at_us: Option<i64>,
    /// When the member's personal data was erased (`Tx::member_erase`).
    pub erased_at_us: Option<i64>,
}

impl MemberRow {
    pub(crate) fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(Self {
            id: r.try_get("id")?,
            external_id: r.try_get("external_id")?,
            status: r.try_get("status")?,
            attributes: r.try_get("attributes")?,
            referred_by_code: r.try_get("referred_by_code")?,
            referral_code: r.try_get("referral_code")?,
            created_at_us: r.try_get("created_at_us")?,
            updated_at_us: r.try_get("updated_at_us")?,
            closed_at_us: r.try_get("closed_at_us")?,
            erased_at_us: r.try_get("erased_at_us")?,
        })
    }
}

pub struct NewMember<'a> {
    pub external_id: &'a str,
    pub attributes: &'a str,
    pub referred_by_code: Option<&'a str>,
    /// The member's own referral code.
    pub referral_code: Option<&'a str>,
    pub now_us: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    pub seq: i64,
    pub event_id: String,
    pub member_id: i64,
    pub event_type: String,
    pub order_id: Option<String>,
    pub occurred_at_us: i64,
    pub received_at_us: i64,
    /// The event as accepted, in canonical JSON.
    pub body: String,
    pub body_sha256: String,
}

impl EventRow {
    pub(crate) fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(Self {
            seq: r.try_get("seq")?,
            event_id: r.try_get("event_id")?,
            member_id: r.try_get("member_id")?,
            event_type: r.try_get("type")?,
            order_id: r.try_get("order_id")?,
            occurred_at_us: r.try_get("occurred_at_us")?,
            received_at_us: r.try_get("received_at_us")?,
            body: r.try_get("body")?,
            body_sha256: r.try_get("body_sha256")?,
        })
    }
}

pub struct NewEvent<'a> {
    pub event_id: &'a str,
    pub member_id: i64,
    pub event_type: &'a str,
    pub order_id: Option<&'a str>,
    pub occurred_at_us: i64,
    pub received_at_us: i64,
    pub body: &'a str,
    pub body_sha256: &'a str,
}

/// What became of an attempt to claim an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// The key is new (or its first request died): run the request.
    Claimed,
    /// The same key and body answered before: replay this answer.
    Done { status: u16, body: String },
    /// The same key came with another body.
    Mismatch,
    /// The first request with this key is still running.
    InProgress,
    /// The key was first used on another route (method and path).
    OtherRoute { route: String },
}

/// A request that claims an idempotency key.
#[derive(Debug, Clone, Copy)]
pub struct IdempotencyRequest<'a> {
    pub api_key_id: i64,
    pub key: &'a str,
    /// The method and path, e.g. `POST /v1/events`.
    pub route: &'a str,
    pub request_sha256: &'a str,
    /// This claim's own random token.
    pub token: &'a str,
    pub now_us: i64,
    /// A claim not renewed since this instant belongs to a request that died.
    pub stale_before_us: i64,
}
