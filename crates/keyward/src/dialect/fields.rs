//! Reading the client's top-level fields: the body as an object, the fields every dialect shares
//! (`model`, `stream`), and the words error messages use for what was sent instead, so every
//! dialect refuses a wrongly typed field the same way.

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

/// A required, non-empty array field (`messages`); `items` says what its items are.
pub(crate) fn non_empty_array<'a>(
    field: &str,
    value: Option<&'a Value>,
    items: &str,
) -> Result<&'a [Value], Invalid> {
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
                json_kind(other)
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
