//! Tessera's functional core.
//!
//! Architecture invariant: this crate does no I/O, has no async code, never reads the
//! wall clock and knows nothing of HTTP, SQL or the JSON wire format. Every function takes
//! the instant it needs (`now`) and the state it works on as arguments and returns a
//! decision; the `engine` crate applies decisions inside a transaction.

pub mod attributes;
pub mod coupons;
pub mod event;
pub mod grants;
pub mod ids;
pub mod ledger;
pub mod limits;
pub mod money;
pub mod offers;
pub mod plans;
pub mod points;
pub mod programme;
pub mod quote;
pub mod referral;
pub mod rule;
pub mod stored_value;
pub mod tiers;

pub use attributes::Attributes;
pub use ids::{ActivityName, Category, EventId, ExternalId, OrderId, ReferralCode, Sku, Tag};
pub use money::{AmountMinor, Currency};
pub use programme::{Programme, ProgrammeIssue};

/// A value that failed to parse at the edge: which field, and why.
///
/// `code` is one of the stable error codes of the API (`invalid_field`,
/// `string_too_long`, ...); the API maps it to a status without guessing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub code: FieldErrorCode,
    pub field: String,
    pub message: String,
}

/// Why a field was refused. Each variant is an error code of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldErrorCode {
    /// The value is of the right type but not acceptable (empty, negative, unknown name).
    InvalidField,
    /// A string is longer than its limit.
    StringTooLong,
    /// A list has more items than its limit.
    TooManyItems,
    /// The member attributes are too large or too deeply nested.
    AttributesTooLarge,
    /// A sum of amounts does not fit in 64 bits.
    AmountOverflow,
}

impl FieldError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: FieldErrorCode::InvalidField,
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn new(code: FieldErrorCode, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code,
            field: field.into(),
            message: message.into(),
        }
    }

    /// The same error, seen from one level up (`lines[2]` + `.sku`).
    pub fn within(mut self, prefix: &str) -> Self {
        self.field = if self.field.is_empty() {
            prefix.to_owned()
        } else if self.field.starts_with('[') {
            format!("{prefix}{}", self.field)
        } else {
            format!("{prefix}.{}", self.field)
        };
        self
    }
}
