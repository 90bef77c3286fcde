//! Identifiers given by the shop. Each is a parsed type with a private field: past the
//! edge, an `ExternalId` is known to be non-empty, short and free of control characters.

use crate::limits::{ID_LEN_MAX, NAME_LEN_MAX};
use crate::{FieldError, FieldErrorCode};
use std::fmt;

fn check_text(value: &str, len_max: usize) -> Result<(), FieldError> {
    if value.is_empty() {
        return Err(FieldError::invalid("", "must not be empty"));
    }
    if value.chars().count() > len_max {
        return Err(FieldError::new(
            FieldErrorCode::StringTooLong,
            "",
            format!("must be at most {len_max} characters"),
        ));
    }
    if value.chars().any(|c| c.is_control()) {
        return Err(FieldError::invalid(
            "",
            "must not contain control characters",
        ));
    }
    if value.trim() != value {
        return Err(FieldError::invalid(
            "",
            "must not start or end with whitespace",
        ));
    }
    Ok(())
}

macro_rules! text_id {
    ($(#[$doc:meta])* $name:ident, $len_max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            pub fn parse(value: impl Into<String>) -> Result<Self, FieldError> {
                let value = value.into();
                check_text(&value, $len_max)?;
                Ok(Self(value))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

text_id!(
    /// The shop's own identifier of a member.
    ExternalId,
    ID_LEN_MAX
);
text_id!(
    /// The id of an incoming event, unique across the whole deployment.
    EventId,
    ID_LEN_MAX
);
text_id!(
    /// The shop's identifier of an order.
    OrderId,
    ID_LEN_MAX
);
text_id!(
    /// A stock-keeping unit.
    Sku,
    ID_LEN_MAX
);
text_id!(
    /// A product category.
    Category,
    ID_LEN_MAX
);
text_id!(
    /// A free tag on an order line (brand, campaign, "members_only").
    Tag,
    NAME_LEN_MAX
);
text_id!(
    /// The name of a custom activity declared in the programme.
    ActivityName,
    NAME_LEN_MAX
);
text_id!(
    /// A member's referral code.
    ReferralCode,
    NAME_LEN_MAX
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_ids_are_checked() {
        let cases: &[(&str, Option<FieldErrorCode>)] = &[
            ("u-1", None),
            ("会员-42", None),
            ("", Some(FieldErrorCode::InvalidField)),
            (" padded", Some(FieldErrorCode::InvalidField)),
            ("tab\there", Some(FieldErrorCode::InvalidField)),
        ];
        for (input, expected) in cases {
            let got = ExternalId::parse(*input).err().map(|e| e.code);
            assert_eq!(got, *expected, "input {input:?}");
        }
        let long = "x".repeat(ID_LEN_MAX + 1);
        assert_eq!(
            ExternalId::parse(long).unwrap_err().code,
            FieldErrorCode::StringTooLong
        );
        assert!(ExternalId::parse("x".repeat(ID_LEN_MAX)).is_ok());
    }
}
