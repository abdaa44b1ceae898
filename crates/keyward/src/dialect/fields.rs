//! Reading the client's fields: the body as an object, the fields every dialect shares (`model`,
//! `stream`), the type checks, and the words error messages use for what was sent instead, so
//! every dialect refuses a wrongly typed field the same way: a 400 naming the field, saying what
//! was expected and what came, with any echoed client text cut short.

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::Invalid;

/// A JSON body that must be an object; the error says which it was instead.
pub(crate) fn parse_object(body: &[u8]) -> Result<Map<String, Value>, Invalid> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(Invalid::new(format!(
            "the request body must be a JSON object, not {}",
            json_kind(&other)
        ))),
        Err(e) => Err(Invalid::new(format!(
            "the request body is not valid JSON: {e}"
        ))),
    }
}

/// "a string", "an array", ... for error messages.
pub(crate) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A required, non-empty array field (`messages`), taken whole so its items can be freed one by
/// one as they are translated; `items` says what its items are.
pub(crate) fn non_empty_array(
    field: &str,
    value: Option<Value>,
    items: &str,
) -> Result<Vec<Value>, Invalid> {
    match value {
        Some(Value::Array(list)) if !list.is_empty() => Ok(list),
        Some(Value::Array(_)) => Err(Invalid::at(
            field,
            format!("`{field}` is empty: send at least one of its {items}"),
        )),
        None | Some(Value::Null) => Err(Invalid::at(
            field,
            format!("`{field}` is required: an array of {items}"),
        )),
        Some(other) => Err(Invalid::at(
            field,
            format!(
                "`{field}` must be an array of {items}, not {}",
                json_kind(&other)
            ),
        )),
    }
}

/// The optional boolean `stream` field.
pub(crate) fn stream_flag(body: &Map<String, Value>) -> Result<bool, Invalid> {
    match body.get("stream") {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(stream)) => Ok(*stream),
        Some(other) => Err(Invalid::at(
            "stream",
            format!("`stream` must be a boolean, not {}", json_kind(other)),
        )),
    }
}

/// The required string `model` field.
pub(crate) fn model_field(body: &Map<String, Value>) -> Result<String, Invalid> {
    match body.get("model") {
        Some(Value::String(model)) if !model.trim().is_empty() => Ok(model.clone()),
        Some(Value::String(_)) | None | Some(Value::Null) => Err(Invalid::at(
            "model",
            "`model` is required: name the model to use (GET /v1/models lists them)",
        )),
        Some(other) => Err(Invalid::at(
            "model",
            format!("`model` must be a string, not {}", json_kind(other)),
        )),
    }
}

/// How many characters of a client's text an error message echoes.
const ECHO_CHARS: usize = 64;

/// A client's text as an error message echoes it: whole when short, else its first
/// [`ECHO_CHARS`] characters and an ellipsis, so a megabyte-long name is not sent back whole.
pub(crate) fn cut_short(text: &str) -> Cow<'_, str> {
    match text.char_indices().nth(ECHO_CHARS) {
        Some((end, _)) => Cow::Owned(format!("{}…", &text[..end])),
        None => Cow::Borrowed(text),
    }
}

/// What the client sent, for an error message: the kind of value, with a scalar's value (cut
/// short): `the string "hot"`, `the number -1`, `true`, `an array`.
pub(crate) fn sent(value: &Value) -> String {
    match value {
        Value::String(text) => format!("the string \"{}\"", cut_short(text)),
        Value::Number(number) => format!("the number {number}"),
        Value::Bool(flag) => flag.to_string(),
        other => json_kind(other).to_string(),
    }
}

/// The JSON type a field must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expected {
    Number,
    /// A whole number, zero or more (a token count, a budget).
    Count,
    /// A whole number, of either sign (a seed).
    Integer,
    String,
    Boolean,
    Object,
}

impl Expected {
    fn fits(self, value: &Value) -> bool {
        match self {
            Self::Number => value.is_number(),
            Self::Count => value.is_u64(),
            Self::Integer => value.is_i64() || value.is_u64(),
            Self::String => value.is_string(),
            Self::Boolean => value.is_boolean(),
            Self::Object => value.is_object(),
        }
    }

    fn described(self) -> &'static str {
        match self {
            Self::Number => "a number",
            Self::Count => "a whole number, zero or more",
            Self::Integer => "a whole number",
            Self::String => "a string",
            Self::Boolean => "a boolean",
            Self::Object => "an object",
        }
    }
}

/// A field (`field` is its path, as `param` names it) that must have the `expected` type when
/// present; null counts as absent.
pub(crate) fn expect(
    field: &str,
    value: Option<&Value>,
    expected: Expected,
) -> Result<(), Invalid> {
    match value {
        Some(value) if !value.is_null() && !expected.fits(value) => {
            Err(wrong_type(field, expected.described(), value))
        }
        _ => Ok(()),
    }
}

/// The refusal of a field of the wrong type: "`field` must be `expected`, not what was sent".
pub(crate) fn wrong_type(field: &str, expected: &str, value: &Value) -> Invalid {
    Invalid::at(
        field,
        format!("`{field}` must be {expected}, not {}", sent(value)),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Short text is echoed whole; long text is cut at 64 characters (not bytes, so never inside
    /// a character) and marked.
    #[test]
    fn echoed_text_is_cut_short() {
        assert_eq!(cut_short("gpt-5"), "gpt-5");
        assert_eq!(cut_short(&"a".repeat(64)), "a".repeat(64));
        assert_eq!(cut_short(&"é".repeat(65)), format!("{}…", "é".repeat(64)));
    }

    /// What was sent is named by kind, with a scalar's value.
    #[test]
    fn sent_values_are_described() {
        assert_eq!(sent(&json!("hot")), "the string \"hot\"");
        assert_eq!(sent(&json!(-1)), "the number -1");
        assert_eq!(sent(&json!(false)), "false");
        assert_eq!(sent(&json!(null)), "null");
        assert_eq!(sent(&json!({"a": "b".repeat(1000)})), "an object");
    }

    /// A field is checked only when present and not null.
    #[test]
    fn expected_types_are_checked() {
        assert_eq!(expect("n", None, Expected::Count), Ok(()));
        assert_eq!(expect("n", Some(&json!(null)), Expected::Count), Ok(()));
        assert_eq!(expect("n", Some(&json!(3)), Expected::Count), Ok(()));
        assert_eq!(expect("seed", Some(&json!(-3)), Expected::Integer), Ok(()));
        assert_eq!(
            expect("n", Some(&json!(-3)), Expected::Count),
            Err(Invalid::at(
                "n",
                "`n` must be a whole number, zero or more, not the number -3"
            ))
        );
    }
}
