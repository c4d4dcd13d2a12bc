//! Typed reads of a `serde_json::Value` that name where they failed ([`At`]): what the loader
//! uses for every value it takes from the document.

use std::fmt::Write as _;

use serde_json::{Map, Number, Value};

use crate::error::{At, ModelError};

/// How much of an unexpected value an error shows.
const FOUND_CHARS_MAX: usize = 60;

/// `value`, short enough for an error message.
pub(crate) fn found(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(FOUND_CHARS_MAX) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

fn type_error(value: &Value, at: &At<'_>, expected: &'static str) -> ModelError {
    ModelError::Type {
        at: at.to_string(),
        expected,
        found: found(value),
    }
}

/// `value` (a `what` at `at`) must not be over `max`, the limit named `limit`.
pub(crate) fn within(
    at: &At<'_>,
    what: &'static str,
    value: u64,
    limit: &'static str,
    max: usize,
) -> Result<(), ModelError> {
    if value > max as u64 {
        return Err(ModelError::Limit {
            at: at.to_string(),
            what,
            value,
            limit,
            max: max as u64,
        });
    }
    Ok(())
}

pub(crate) fn object<'v>(
    value: &'v Value,
    at: &At<'_>,
) -> Result<&'v Map<String, Value>, ModelError> {
    value
        .as_object()
        .ok_or_else(|| type_error(value, at, "an object"))
}

/// The value of `key` in the object `value` (at `at`), which must be there.
pub(crate) fn field<'v>(value: &'v Value, at: &At<'_>, key: &str) -> Result<&'v Value, ModelError> {
    object(value, at)?
        .get(key)
        .ok_or_else(|| ModelError::Missing {
            at: at.key(key).to_string(),
        })
}

pub(crate) fn string<'v>(value: &'v Value, at: &At<'_>) -> Result<&'v str, ModelError> {
    value
        .as_str()
        .ok_or_else(|| type_error(value, at, "a string"))
}

pub(crate) fn array<'v>(value: &'v Value, at: &At<'_>) -> Result<&'v [Value], ModelError> {
    value
        .as_array()
        .map(Vec::as_slice)
        .ok_or_else(|| type_error(value, at, "an array"))
}

pub(crate) fn integer(value: &Value, at: &At<'_>) -> Result<i64, ModelError> {
    value
        .as_i64()
        .ok_or_else(|| type_error(value, at, "an integer"))
}

/// A count XGBoost writes as a decimal string (its parameters: `"num_feature": "6"`).
pub(crate) fn count_string(value: &Value, at: &At<'_>) -> Result<u64, ModelError> {
    value
        .as_str()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| type_error(value, at, "a count as a string (\"6\")"))
}

/// A flag XGBoost writes as 0 or 1 (`default_left` since 2.0), or as a boolean.
pub(crate) fn flag(value: &Value, at: &At<'_>) -> Result<bool, ModelError> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::Number(n) if n.as_u64() == Some(0) => Ok(false),
        Value::Number(n) if n.as_u64() == Some(1) => Ok(true),
        _ => Err(type_error(value, at, "0, 1 or a boolean")),
    }
}

/// A number as XGBoost holds it, a finite `f32`, exactly: see [`f32_of`].
pub(crate) fn float32(value: &Value, at: &At<'_>) -> Result<f32, ModelError> {
    let Value::Number(number) = value else {
        return Err(type_error(value, at, "a number"));
    };
    let (wide, narrow) = f32_of(number);
    if narrow.is_finite() {
        Ok(narrow)
    } else {
        Err(ModelError::NonFinite {
            at: at.to_string(),
            value: wide,
        })
    }
}

/// A decimal string (`"5E-1"`) as a finite `f32`, parsed directly as `f32`.
pub(crate) fn float32_text(text: &str, at: &At<'_>) -> Result<f32, ModelError> {
    let value: f32 = text.trim().parse().map_err(|_| ModelError::Type {
        at: at.to_string(),
        expected: "a decimal number",
        found: format!("{text:?}"),
    })?;
    if value.is_finite() {
        Ok(value)
    } else {
        Err(ModelError::NonFinite {
            at: at.to_string(),
            value: f64::from(value),
        })
    }
}

/// The `f32` nearest the decimal written in the document (and that decimal as `f64`).
///
/// XGBoost writes each `f32` as the shortest decimal that reads back as it (9 significant
/// digits at most). serde_json reads it as the nearest `f64`; rounding that `f64` to `f32`
/// would round twice, which can land on the wrong `f32` when the decimal lies near the middle
/// of two. Instead the `f64` is written back as its shortest decimal, which is the document's
/// (no other decimal of 15 digits or fewer reads as the same `f64`), and that is parsed as
/// `f32`, rounded once.
pub(crate) fn f32_of(number: &Number) -> (f64, f32) {
    let wide = number.as_f64().unwrap_or(f64::NAN);
    if !wide.is_finite() {
        return (wide, f32::NAN);
    }
    let mut text = ShortText::new();
    // `{:e}` of an f64 is its shortest round-trip decimal: `1.2345678e-1`.
    let narrow = match write!(text, "{wide:e}") {
        Ok(()) => text.as_str().parse().unwrap_or(wide as f32),
        Err(_) => wide as f32,
    };
    (wide, narrow)
}

/// A fixed buffer for one formatted number (no allocation per number).
struct ShortText {
    bytes: [u8; 32],
    len: usize,
}

impl ShortText {
    fn new() -> ShortText {
        ShortText {
            bytes: [0; 32],
            len: 0,
        }
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

impl std::fmt::Write for ShortText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let room = self.bytes.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        room.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f32_of_rounds_once_from_the_decimal() {
        for text in [
            "0.1",
            "-1.2345678E-1",
            "5E-1",
            "3.4028235E38",
            "1E-45",
            "0",
            "-0",
        ] {
            let number: Number = serde_json::from_str(text).unwrap();
            let expected: f32 = text.parse().unwrap();
            assert_eq!(f32_of(&number).1.to_bits(), expected.to_bits(), "{text}");
        }
        // Every f32 written as its shortest decimal reads back as itself.
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        for _ in 0..100_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let x = f32::from_bits(state as u32);
            if !x.is_finite() {
                continue;
            }
            let number: Number = serde_json::from_str(&format!("{x:e}")).unwrap();
            assert_eq!(f32_of(&number).1.to_bits(), x.to_bits(), "{x:e}");
        }
    }

    #[test]
    fn found_is_cut_short() {
        let long = Value::String("x".repeat(500));
        assert!(found(&long).len() < 70);
        assert_eq!(found(&Value::Bool(true)), "true");
    }
}
