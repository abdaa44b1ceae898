//! Gemini's field names in either spelling. The API reads protobuf JSON, which takes lowerCamel
//! and the proto's snake_case names alike, and `google-genai` sends both (it passes nested dicts
//! through unconverted: `thinkingConfig: {"include_thoughts": true}`). Every field is read under
//! its lowerCamel name; only field names are converted, never what a client put inside free-form
//! values (function arguments, responses, schema property names).

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::dialect::fields::{json_kind, wrong_type};
use crate::dialect::Invalid;

/// A field name as lowerCamel: `max_output_tokens` → `maxOutputTokens`. A name without
/// underscores is returned as it is; a leading underscore is kept (`_responseJsonSchema`, an
/// older SDK's spelling, is read by that name).
pub(super) fn camel(key: &str) -> Cow<'_, str> {
    let Some(first) = key.find('_').filter(|&at| at > 0) else {
        return Cow::Borrowed(key);
    };
    let mut out = String::with_capacity(key.len());
    out.push_str(&key[..first]);
    let mut upper = false;
    for c in key[first..].chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A field name as snake_case: `maxOutputTokens` → `max_output_tokens`.
pub(super) fn snake(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The field `name` (lowerCamel) of `object`, in either spelling; null counts as absent.
pub(super) fn field<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object
        .get(name)
        .or_else(|| object.get(&snake(name)))
        .filter(|value| !value.is_null())
}

/// Takes the field `name` out of `object`, in either spelling.
pub(super) fn take(object: &mut Map<String, Value>, name: &str) -> Option<Value> {
    object
        .remove(name)
        .or_else(|| object.remove(&snake(name)))
        .filter(|value| !value.is_null())
}

/// A value that must be an object; `path` names it in the refusal.
pub(super) fn object<'a>(
    value: &'a Value,
    path: &str,
    example: &str,
) -> Result<&'a Map<String, Value>, Invalid> {
    value
        .as_object()
        .ok_or_else(|| wrong_type(path, &format!("an object such as {example}"), value))
}

/// A value that must be an array; `items` says what its items are.
pub(super) fn array<'a>(value: &'a Value, path: &str, items: &str) -> Result<&'a [Value], Invalid> {
    match value {
        Value::Array(list) => Ok(list),
        other => Err(Invalid::at(
            path,
            format!(
                "`{path}` must be an array of {items}, not {}",
                json_kind(other)
            ),
        )),
    }
}

/// An optional string field; a value of another type is refused.
pub(super) fn string<'a>(
    object: &'a Map<String, Value>,
    name: &str,
    path: &str,
) -> Result<Option<&'a str>, Invalid> {
    match field(object, name) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(other) => Err(wrong_type(&format!("{path}.{name}"), "a string", other)),
    }
}

/// A required, non-empty string field.
pub(super) fn required<'a>(
    object: &'a Map<String, Value>,
    name: &str,
    path: &str,
    what: &str,
) -> Result<&'a str, Invalid> {
    string(object, name, path)?
        .filter(|text| !text.is_empty())
        .ok_or_else(|| {
            Invalid::at(
                format!("{path}.{name}"),
                format!("{what} needs a non-empty string `{name}`"),
            )
        })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// snake_case names read as lowerCamel; others stay as they are.
    #[test]
    fn names_are_read_in_either_spelling() {
        assert_eq!(camel("max_output_tokens"), "maxOutputTokens");
        assert_eq!(camel("maxOutputTokens"), "maxOutputTokens");
        assert_eq!(camel("contents"), "contents");
        assert_eq!(camel("_responseJsonSchema"), "_responseJsonSchema");
        assert_eq!(snake("thinkingConfig"), "thinking_config");
        let object = json!({"include_thoughts": true, "thinkingLevel": "LOW", "topK": null});
        let object = object.as_object().unwrap_or_else(|| unreachable!());
        assert_eq!(field(object, "includeThoughts"), Some(&json!(true)));
        assert_eq!(field(object, "thinkingLevel"), Some(&json!("LOW")));
        assert_eq!(field(object, "topK"), None);
    }
}
