//! The non-streamed Messages answer: one `message` object made from the assembled response,
//! ending at a stop sequence as the stream would have.

use serde_json::{json, Value};

use super::{message_id, message_text, message_usage, signature, stop_reason, MessagesAnswer};
use crate::dialect::responses::{output_items, reasoning_summary, Ending, Usage};
use crate::dialect::stop::StopMatcher;

/// The `message` object made from the assembled response.
pub(super) fn reply(answer: &MessagesAnswer, response: &Value) -> Value {
    let mut content = Vec::new();
    let mut matched = None;
    let mut tool_use = false;
    let mut refused = false;
    for item in output_items(response) {
        match item.get("type").and_then(Value::as_str) {
            Some("reasoning") if answer.thinking => content.push(json!({
                "type": "thinking",
                "thinking": reasoning_summary(item),
                "signature": signature(item),
            })),
            Some("message") => {
                let (text, refusal) = message_text(item);
                refused |= refusal;
                let (text, stop) = StopMatcher::cut(&answer.stops, &text);
                if !text.is_empty() {
                    content.push(json!({"type": "text", "text": text}));
                }
                if stop.is_some() {
                    // The answer ends at the stop sequence: nothing after it is shown.
                    matched = stop;
                    break;
                }
            }
            Some("function_call") => {
                tool_use = true;
                let text = |key: &str| item.get(key).and_then(Value::as_str).unwrap_or("");
                content.push(json!({
                    "type": "tool_use",
                    "id": text("call_id"),
                    "name": text("name"),
                    "input": tool_input(text("arguments")),
                }));
            }
            _ => {}
        }
    }
    let stop_sequence = matched.and_then(|i| answer.stops.get(i));
    let stop_reason = match stop_sequence {
        Some(_) => "stop_sequence",
        None => stop_reason(Ending::of(response), tool_use, refused),
    };
    json!({
        "id": message_id(response.get("id")),
        "type": "message",
        "role": "assistant",
        "model": answer.model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": message_usage(Usage::of(response)),
    })
}

/// A function call's arguments as a tool_use `input`, which must be an object.
pub(super) fn tool_input(arguments: &str) -> Value {
    if arguments.trim().is_empty() {
        return json!({});
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(input @ Value::Object(_)) => input,
        _ => json!({ "arguments": arguments }),
    }
}
