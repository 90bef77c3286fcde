//! A member's attributes: a JSON object the shop owns, usable in rules as
//! `member.attributes`. Bounded in size and depth.

use crate::limits::{ATTRIBUTES_BYTES_MAX, ATTRIBUTES_DEPTH_MAX};
use crate::{FieldError, FieldErrorCode};
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Attributes(Map<String, Value>);

impl Attributes {
    pub fn parse(value: Value) -> Result<Self, FieldError> {
        let Value::Object(map) = value else {
            return Err(FieldError::invalid("", "must be a JSON object"));
        };
        let attributes = Self(map);
        attributes.check()?;
        Ok(attributes)
    }

    fn check(&self) -> Result<(), FieldError> {
        let depth = depth_of(&Value::Object(self.0.clone()));
        if depth > ATTRIBUTES_DEPTH_MAX {
            return Err(FieldError::new(
                FieldErrorCode::AttributesTooLarge,
                "",
                format!("nesting depth {depth} is more than {ATTRIBUTES_DEPTH_MAX}"),
            ));
        }
        let bytes = self.to_json_string().len();
        if bytes > ATTRIBUTES_BYTES_MAX {
            return Err(FieldError::new(
                FieldErrorCode::AttributesTooLarge,
                "",
                format!("{bytes} bytes is more than {ATTRIBUTES_BYTES_MAX}"),
            ));
        }
        Ok(())
    }

    /// Applies a JSON merge patch (RFC 7396): keys set to `null` are removed, objects are
    /// merged recursively, anything else replaces. The result is checked against the limits.
    pub fn merge_patch(&self, patch: Value) -> Result<Self, FieldError> {
        let Value::Object(_) = patch else {
            return Err(FieldError::invalid("", "must be a JSON object"));
        };
        let mut merged = Value::Object(self.0.clone());
        merge(&mut merged, patch);
        Self::parse(merged)
    }

    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    /// The canonical serialization: keys in sorted order (serde_json's map is a BTreeMap).
    pub fn to_json_string(&self) -> String {
        Value::Object(self.0.clone()).to_string()
    }
}

fn merge(target: &mut Value, patch: Value) {
    match patch {
        Value::Object(patch) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            let Value::Object(target) = target else {
                unreachable!("made an object above")
            };
            for (key, value) in patch {
                if value.is_null() {
                    target.remove(&key);
                } else {
                    merge(target.entry(key).or_insert(Value::Null), value);
                }
            }
        }
        other => *target = other,
    }
}

fn depth_of(value: &Value) -> usize {
    match value {
        Value::Object(map) => 1 + map.values().map(depth_of).max().unwrap_or(0),
        Value::Array(items) => 1 + items.iter().map(depth_of).max().unwrap_or(0),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let cases = [
            (json!({"a": 1}), json!({"b": 2}), json!({"a": 1, "b": 2})),
            (json!({"a": 1, "b": 2}), json!({"a": null}), json!({"b": 2})),
            (
                json!({"a": {"x": 1, "y": 2}}),
                json!({"a": {"y": null, "z": 3}}),
                json!({"a": {"x": 1, "z": 3}}),
            ),
            (json!({"a": [1, 2]}), json!({"a": [3]}), json!({"a": [3]})),
            (
                json!({"a": 1}),
                json!({"a": {"b": 1}}),
                json!({"a": {"b": 1}}),
            ),
        ];
        for (before, patch, after) in cases {
            let got = Attributes::parse(before.clone())
                .unwrap()
                .merge_patch(patch.clone())
                .unwrap();
            assert_eq!(
                Value::Object(got.as_map().clone()),
                after,
                "{before} + {patch}"
            );
        }
    }

    #[test]
    fn limits() {
        assert_eq!(
            Attributes::parse(json!([1])).unwrap_err().code,
            FieldErrorCode::InvalidField
        );
        let deep = (0..ATTRIBUTES_DEPTH_MAX).fold(json!(1), |inner, _| json!({ "k": inner }));
        assert!(Attributes::parse(deep.clone()).is_ok());
        assert_eq!(
            Attributes::parse(json!({ "k": deep })).unwrap_err().code,
            FieldErrorCode::AttributesTooLarge
        );
        let big = json!({ "s": "x".repeat(ATTRIBUTES_BYTES_MAX) });
        assert_eq!(
            Attributes::parse(big).unwrap_err().code,
            FieldErrorCode::AttributesTooLarge
        );
    }
}
