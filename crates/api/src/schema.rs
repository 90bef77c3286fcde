//! Schemas of the OpenAPI document for values whose rules live in the domain, so that a
//! client (or a fuzzer) can tell a valid value from the document alone.

use std::borrow::Cow;
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::RefOr;

/// No control characters anywhere, no whitespace at either end.
const TEXT_PATTERN: &str = r"^[^\u0000-\u001F\u007F-\u009F\s](?:[^\u0000-\u001F\u007F-\u009F]*[^\u0000-\u001F\u007F-\u009F\s])?$";

fn text(max_length: usize, description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(SchemaType::new(Type::String))
        .min_length(Some(1))
        .max_length(Some(max_length))
        .pattern(Some(TEXT_PATTERN))
        .description(Some(description))
        .into()
}

/// An identifier the shop gives: member, event, order, SKU, category.
pub struct IdText;

impl utoipa::PartialSchema for IdText {
    fn schema() -> RefOr<Schema> {
        text(
            tessera_domain::limits::ID_LEN_MAX,
            "An identifier: 1 to 128 characters, no control characters, no whitespace at either end.",
        )
    }
}

impl utoipa::ToSchema for IdText {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Id")
    }
}

/// A short name: a tag, an activity, a referral code.
pub struct NameText;

impl utoipa::PartialSchema for NameText {
    fn schema() -> RefOr<Schema> {
        text(
            tessera_domain::limits::NAME_LEN_MAX,
            "A name: 1 to 64 characters, no control characters, no whitespace at either end.",
        )
    }
}

impl utoipa::ToSchema for NameText {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Name")
    }
}
