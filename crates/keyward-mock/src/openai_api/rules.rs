//! What the public OpenAI Responses API (`POST /v1/responses`) refuses.
//!
//! The public API is far more lenient than the Codex backend: it streams or
//! not, stores or not, takes a string `input`, `system` messages, and the
//! sampling and limit parameters the backend refuses. What it still refuses,
//! and so the mock refuses with its error object
//! (`{"error": {"message", "type": "invalid_request_error", "param", "code"}}`):
//! - a body that is not a JSON object;
//! - a parameter it does not know (`Unknown parameter: 'x'.`);
//! - a missing or non-string `model`;
//! - an `input` that is neither a string nor an array, and malformed input
//!   items (the same item rules as the backend, except that `system` messages
//!   and string message contents are fine);
//! - tools not in the Responses shape: a Chat Completions tool
//!   (`{"type": "function", "function": {...}}`) has no top-level `name`, so
//!   `Missing required parameter: 'tools[0].name'.`;
//! - options of the wrong type, or out of range (`max_output_tokens` >= 16,
//!   `temperature` in 0..=2, `top_p` in 0..=1, `top_logprobs` in 0..=20);
//! - references to stored state, which the mock never has: `previous_response_id`,
//!   `conversation`, `item_reference` items and reasoning items without their
//!   `encrypted_content` are "not found" (404).
//!
//! `null` counts as absent, as in the API.

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::codex_rules::{
    check_call_output, check_enum, check_part, check_tool_choice, check_tools, expect_string,
    invalid_type, invalid_value, item_kind, missing, optional, require_string, unverified, Checked,
    Rejection, ASSISTANT_PARTS, EFFORTS, INPUT_PARTS, SUMMARIES,
};
use crate::reasoning_blob;

/// The public API's request parameters; any other is an unknown parameter.
const KNOWN_KEYS: &[&str] = &[
    "background",
    "context_management",
    "conversation",
    "include",
    "input",
    "instructions",
    "max_output_tokens",
    "max_tool_calls",
    "metadata",
    "model",
    "parallel_tool_calls",
    "previous_response_id",
    "prompt",
    "prompt_cache_key",
    "prompt_cache_retention",
    "reasoning",
    "safety_identifier",
    "service_tier",
    "store",
    "stream",
    "stream_options",
    "temperature",
    "text",
    "tool_choice",
    "tools",
    "top_logprobs",
    "top_p",
    "truncation",
    "user",
];
const ROLES: &[&str] = &["assistant", "system", "developer", "user"];
const SERVICE_TIERS: &[&str] = &["auto", "default", "flex", "scale", "priority"];
const TRUNCATIONS: &[&str] = &["auto", "disabled"];
const MIN_OUTPUT_TOKENS: i64 = 16;
const MAX_TOP_LOGPROBS: i64 = 20;

/// The API's answer to a body that is not JSON.
pub(crate) fn unreadable_body() -> Rejection {
    Rejection::invalid(
        400,
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't \
         using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was \
         sent was not valid JSON. If you have trouble figuring out how to fix this, please \
         contact us through our help center at help.openai.com.)"
            .into(),
        None,
        None,
    )
}

/// Applies the public API's rules to a parsed body.
pub(crate) fn check(body: &Value) -> Checked {
    let Some(request) = body.as_object() else {
        return Err(invalid_type("body", "an object", body));
    };
    if let Some(key) = request
        .keys()
        .find(|key| !KNOWN_KEYS.contains(&key.as_str()))
    {
        return Err(Rejection::invalid(
            400,
            format!("Unknown parameter: '{key}'."),
            Some(key),
            Some("unknown_parameter"),
        ));
    }
    require_string(request, "model", "model")?;
    check_stored_state(request)?;
    if let Some(instructions) = optional(request, "instructions") {
        expect_string(instructions, "instructions")?;
    }
    check_input(request)?;
    check_tools(request)?;
    check_tool_choice(request)?;
    check_options(request)
}

/// Anything that needs a stored response or conversation, which the mock never has.
fn check_stored_state(request: &Map<String, Value>) -> Checked {
    if let Some(previous) = optional(request, "previous_response_id") {
        let Some(id) = previous.as_str() else {
            return Err(invalid_type("previous_response_id", "a string", previous));
        };
        return Err(Rejection::invalid(
            404,
            format!("Previous response with id '{id}' not found."),
            Some("previous_response_id"),
            Some("previous_response_not_found"),
        ));
    }
    if let Some(conversation) = optional(request, "conversation") {
        let id = match conversation {
            Value::String(id) => id.as_str(),
            Value::Object(object) => require_string(object, "id", "conversation.id")?,
            other => {
                return Err(invalid_type(
                    "conversation",
                    "one of a string or an object",
                    other,
                ))
            }
        };
        return Err(Rejection::invalid(
            404,
            format!("Conversation with id '{id}' not found."),
            Some("conversation"),
            None,
        ));
    }
    Ok(())
}

fn not_found(id: &str) -> Rejection {
    Rejection::invalid(
        404,
        format!("Item with id '{id}' not found."),
        Some("input"),
        None,
    )
}

fn check_input(request: &Map<String, Value>) -> Checked {
    let items = match optional(request, "input") {
        None | Some(Value::String(_)) => return Ok(()),
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(invalid_type(
                "input",
                "one of a string or an array of input items",
                other,
            ))
        }
    };
    // Call ids made so far: a tool output may only answer one of them.
    let mut calls: HashSet<&str> = HashSet::new();
    for (index, item) in items.iter().enumerate() {
        let path = format!("input[{index}]");
        let Some(item) = item.as_object() else {
            return Err(invalid_type(&path, "an object", item));
        };
        if let Some(id) = optional(item, "id") {
            expect_string(id, &format!("{path}.id"))?;
        }
        match item_kind(item, &path)? {
            "message" => check_message(item, &path)?,
            "item_reference" => {
                return Err(not_found(require_string(
                    item,
                    "id",
                    &format!("{path}.id"),
                )?));
            }
            "function_call" => {
                require_string(item, "name", &format!("{path}.name"))?;
                require_string(item, "arguments", &format!("{path}.arguments"))?;
                calls.insert(require_string(item, "call_id", &format!("{path}.call_id"))?);
            }
            "function_call_output" => check_call_output(item, &path, &calls)?,
            "reasoning" => check_reasoning(item, &path)?,
            other if other.ends_with("_call") => {
                if let Some(call_id) = item.get("call_id").and_then(Value::as_str) {
                    calls.insert(call_id);
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// A message: a role the API knows, and a string content or parts of the role's kinds.
fn check_message(item: &Map<String, Value>, path: &str) -> Checked {
    let role_path = format!("{path}.role");
    let role = require_string(item, "role", &role_path)?;
    if !ROLES.contains(&role) {
        return Err(invalid_value(&role_path, role, ROLES));
    }
    let allowed_parts = if role == "assistant" {
        ASSISTANT_PARTS
    } else {
        INPUT_PARTS
    };
    let content_path = format!("{path}.content");
    let parts = match item.get("content") {
        None | Some(Value::Null) => return Err(missing(&content_path)),
        Some(Value::String(_)) => return Ok(()),
        Some(Value::Array(parts)) => parts,
        Some(other) => {
            return Err(invalid_type(
                &content_path,
                "one of a string or an array",
                other,
            ))
        }
    };
    for (index, part) in parts.iter().enumerate() {
        let part_path = format!("{content_path}[{index}]");
        let Some(part) = part.as_object() else {
            return Err(invalid_type(&part_path, "an object", part));
        };
        let type_path = format!("{part_path}.type");
        let kind = require_string(part, "type", &type_path)?;
        if !allowed_parts.contains(&kind) {
            return Err(invalid_value(&type_path, kind, allowed_parts));
        }
        check_part(part, kind, &part_path)?;
    }
    Ok(())
}

/// Reasoning replays from an `encrypted_content` this mock issued; without
/// one the API would fetch the item by id, and the mock stores nothing.
fn check_reasoning(item: &Map<String, Value>, path: &str) -> Checked {
    match item.get("summary") {
        Some(Value::Array(_)) => {}
        None | Some(Value::Null) => return Err(missing(&format!("{path}.summary"))),
        Some(other) => return Err(invalid_type(&format!("{path}.summary"), "an array", other)),
    }
    let id = item.get("id").and_then(Value::as_str);
    match optional(item, "encrypted_content") {
        Some(Value::String(blob)) if reasoning_blob::verify(blob) => Ok(()),
        Some(Value::String(_)) => Err(unverified(id.unwrap_or("reasoning"))),
        Some(other) => Err(invalid_type(
            &format!("{path}.encrypted_content"),
            "a string",
            other,
        )),
        None => Err(match id {
            Some(id) => not_found(id),
            None => unverified("reasoning"),
        }),
    }
}

fn check_options(request: &Map<String, Value>) -> Checked {
    for key in ["stream", "store", "background", "parallel_tool_calls"] {
        if let Some(value) = optional(request, key) {
            if !value.is_boolean() {
                return Err(invalid_type(key, "a boolean", value));
            }
        }
    }
    for key in ["user", "prompt_cache_key", "safety_identifier"] {
        if let Some(value) = optional(request, key) {
            expect_string(value, key)?;
        }
    }
    for key in ["text", "stream_options", "prompt"] {
        if let Some(value) = optional(request, key) {
            if !value.is_object() {
                return Err(invalid_type(key, "an object", value));
            }
        }
    }
    check_enum(request, "service_tier", "service_tier", SERVICE_TIERS)?;
    check_enum(request, "truncation", "truncation", TRUNCATIONS)?;
    check_integer(request, "max_output_tokens", Some(MIN_OUTPUT_TOKENS), None)?;
    check_integer(request, "max_tool_calls", Some(1), None)?;
    check_integer(request, "top_logprobs", Some(0), Some(MAX_TOP_LOGPROBS))?;
    check_decimal(request, "temperature", 2)?;
    check_decimal(request, "top_p", 1)?;
    if let Some(include) = optional(request, "include") {
        let Some(entries) = include.as_array() else {
            return Err(invalid_type("include", "an array", include));
        };
        for (index, entry) in entries.iter().enumerate() {
            expect_string(entry, &format!("include[{index}]"))?;
        }
    }
    if let Some(reasoning) = optional(request, "reasoning") {
        let Some(reasoning) = reasoning.as_object() else {
            return Err(invalid_type("reasoning", "an object", reasoning));
        };
        check_enum(reasoning, "effort", "reasoning.effort", EFFORTS)?;
        check_enum(reasoning, "summary", "reasoning.summary", SUMMARIES)?;
    }
    if let Some(metadata) = optional(request, "metadata") {
        let Some(metadata) = metadata.as_object() else {
            return Err(invalid_type("metadata", "an object", metadata));
        };
        for (key, value) in metadata {
            expect_string(value, &format!("metadata.{key}"))?;
        }
    }
    Ok(())
}

/// Which bound a value broke.
#[derive(Clone, Copy)]
enum Bound {
    Min,
    Max,
}

/// An integer parameter within its bounds, worded as the API words it.
fn check_integer(
    request: &Map<String, Value>,
    key: &str,
    min: Option<i64>,
    max: Option<i64>,
) -> Checked {
    let Some(value) = optional(request, key) else {
        return Ok(());
    };
    let Some(number) = value.as_i64() else {
        return Err(invalid_type(key, "an integer", value));
    };
    match (min, max) {
        (Some(min), _) if number < min => Err(out_of_range(
            key,
            "integer",
            Bound::Min,
            &min.to_string(),
            value,
        )),
        (_, Some(max)) if number > max => Err(out_of_range(
            key,
            "integer",
            Bound::Max,
            &max.to_string(),
            value,
        )),
        _ => Ok(()),
    }
}

/// A number parameter in `0..=max`.
fn check_decimal(request: &Map<String, Value>, key: &str, max: u8) -> Checked {
    let Some(value) = optional(request, key) else {
        return Ok(());
    };
    let Some(number) = value.as_f64() else {
        return Err(invalid_type(key, "a decimal", value));
    };
    if number < 0.0 {
        Err(out_of_range(key, "decimal", Bound::Min, "0", value))
    } else if number > f64::from(max) {
        Err(out_of_range(
            key,
            "decimal",
            Bound::Max,
            &max.to_string(),
            value,
        ))
    } else {
        Ok(())
    }
}

/// `Invalid 'temperature': decimal above maximum value. Expected a value <= 2,
/// but got 3 instead.`, code `decimal_above_max_value`.
fn out_of_range(key: &str, kind: &str, bound: Bound, limit: &str, got: &Value) -> Rejection {
    let (side, comparison, code_side) = match bound {
        Bound::Min => ("below minimum", ">=", "below_min"),
        Bound::Max => ("above maximum", "<=", "above_max"),
    };
    Rejection::invalid(
        400,
        format!(
            "Invalid '{key}': {kind} {side} value. Expected a value {comparison} {limit}, but \
             got {got} instead."
        ),
        Some(key),
        Some(&format!("{kind}_{code_side}_value")),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn base() -> Value {
        json!({"model": "gpt-4.1-mini", "input": "hi"})
    }

    fn with(key: &str, value: Value) -> Value {
        let mut body = base();
        body[key] = value;
        body
    }

    fn refusal(body: &Value) -> Rejection {
        match check(body) {
            Ok(()) => panic!("accepted, but the public API refuses it: {body}"),
            Err(rejection) => rejection,
        }
    }

    fn accepted(body: &Value) {
        if let Err(rejection) = check(body) {
            panic!("refused with {:?}: {body}", rejection.message());
        }
    }

    /// The requests the public API takes: string or array input, system
    /// messages, string contents, sampling and limits, streamed or not.
    #[test]
    fn lenient_requests_pass() {
        accepted(&base());
        accepted(&json!({"model": "gpt-4.1"}));
        accepted(&json!({
            "model": "gpt-5",
            "instructions": "Be brief.",
            "input": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": "What's the weather?"},
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "In Paris"}]},
                {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
                {"role": "assistant", "content": [{"type": "output_text", "text": "Sunny."}]},
            ],
            "max_output_tokens": 256,
            "temperature": 0.2,
            "top_p": 1,
            "store": true,
            "stream": false,
            "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}],
            "tool_choice": "auto",
            "reasoning": {"effort": "low", "summary": "auto"},
            "metadata": {"run": "1"},
            "text": {"format": {"type": "text"}},
            "user": "u-1",
            "service_tier": "auto",
            "truncation": "disabled",
            "include": ["reasoning.encrypted_content"],
            "parallel_tool_calls": null,
        }));
    }

    /// `input` of any other type is refused with the API's type error.
    #[test]
    fn input_must_be_a_string_or_an_array() {
        for input in [json!(5), json!({"role": "user"}), json!(true)] {
            let rejection = refusal(&with("input", input));
            assert_eq!(rejection.status, 400);
            assert_eq!(rejection.body["error"]["param"], "input");
            assert_eq!(rejection.body["error"]["code"], "invalid_type");
            assert!(
                rejection
                    .message()
                    .starts_with("Invalid type for 'input': expected one of a string or an array"),
                "{}",
                rejection.message()
            );
        }
    }

    /// A Chat Completions tool is refused as the API refuses it: no top-level name.
    #[test]
    fn chat_shaped_tools_are_refused() {
        let rejection = refusal(&with(
            "tools",
            json!([{"type": "function", "function": {"name": "f", "parameters": {}}}]),
        ));
        assert_eq!(
            rejection.body,
            json!({"error": {
                "message": "Missing required parameter: 'tools[0].name'.",
                "type": "invalid_request_error",
                "param": "tools[0].name",
                "code": "missing_required_parameter",
            }})
        );
    }

    /// Unknown parameters, a missing model and wrong option types are refused.
    #[test]
    fn unknown_and_mistyped_parameters_are_refused() {
        let rejection = refusal(&with("max_tokens", json!(10)));
        assert_eq!(rejection.message(), "Unknown parameter: 'max_tokens'.");
        assert_eq!(rejection.body["error"]["code"], "unknown_parameter");
        assert_eq!(rejection.body["error"]["param"], "max_tokens");

        let rejection = refusal(&json!({"input": "hi"}));
        assert_eq!(rejection.message(), "Missing required parameter: 'model'.");

        let rejection = refusal(&with("stream", json!("yes")));
        assert_eq!(
            rejection.message(),
            "Invalid type for 'stream': expected a boolean, but got a string instead."
        );
        assert_eq!(
            refusal(&json!([])).message(),
            "Invalid type for 'body': expected an object, but got an array instead."
        );
    }

    /// Limits are worded as the API words them, with their error codes.
    #[test]
    fn out_of_range_values_are_refused() {
        let rejection = refusal(&with("max_output_tokens", json!(5)));
        assert_eq!(
            rejection.message(),
            "Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 16, \
             but got 5 instead."
        );
        assert_eq!(rejection.body["error"]["code"], "integer_below_min_value");
        let rejection = refusal(&with("temperature", json!(2.5)));
        assert_eq!(
            rejection.message(),
            "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got \
             2.5 instead."
        );
        assert_eq!(rejection.body["error"]["code"], "decimal_above_max_value");
        assert_eq!(
            refusal(&with("top_p", json!(-1))).body["error"]["code"],
            "decimal_below_min_value"
        );
        assert_eq!(
            refusal(&with("max_output_tokens", json!(20.5))).body["error"]["code"],
            "invalid_type"
        );
    }

    /// Malformed items are refused with their path.
    #[test]
    fn malformed_items_are_refused() {
        let rejection = refusal(&with("input", json!([{"role": "robot", "content": "x"}])));
        assert_eq!(rejection.body["error"]["param"], "input[0].role");
        let rejection = refusal(&with(
            "input",
            json!([{"role": "assistant", "content": [{"type": "input_text", "text": "x"}]}]),
        ));
        assert_eq!(
            rejection.message(),
            "Invalid value: 'input_text'. Supported values are: 'output_text' and 'refusal'."
        );
        let rejection = refusal(&with(
            "input",
            json!([{"type": "function_call_output", "call_id": "nope", "output": "x"}]),
        ));
        assert_eq!(
            rejection.message(),
            "No tool call found for function call output with call_id nope."
        );
        assert_eq!(
            refusal(&with("input", json!(["hi"]))).body["error"]["param"],
            "input[0]"
        );
    }

    /// Stored state the mock never has is "not found".
    #[test]
    fn stored_state_is_not_found() {
        let rejection = refusal(&with("previous_response_id", json!("resp_1")));
        assert_eq!(rejection.status, 404);
        assert_eq!(
            rejection.body["error"]["code"],
            "previous_response_not_found"
        );
        let rejection = refusal(&with(
            "input",
            json!([{"type": "item_reference", "id": "msg_1"}]),
        ));
        assert_eq!(
            (rejection.status, rejection.message()),
            (404, "Item with id 'msg_1' not found.")
        );
        let rejection = refusal(&with(
            "input",
            json!([{"type": "reasoning", "id": "rs_1", "summary": []}]),
        ));
        assert_eq!(rejection.status, 404);
        accepted(&with(
            "input",
            json!([{"type": "reasoning", "id": "rs_1", "summary": [],
                    "encrypted_content": reasoning_blob::issue(1_764_166_000)}]),
        ));
        assert_eq!(refusal(&with("conversation", json!("conv_1"))).status, 404);
    }
}
