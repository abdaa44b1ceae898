//! The non-streamed chat answer: one `chat.completion` object made from the assembled response,
//! cut at a stop sequence as the stream would have been.

use serde_json::{json, Map, Value};

use crate::dialect::chunks::{answer_id, created_at, finish_reason, Shape, SERVICE_TIER};
use crate::dialect::responses::{self, Ending, Usage};
use crate::dialect::stop::StopMatcher;

/// The `chat.completion` object made from the assembled response, under the client's `model`.
pub(super) fn reply(model: &str, stops: &[String], response: &Value) -> Value {
    let mut stop = StopMatcher::new(stops.to_vec());
    let mut text = String::new();
    let mut refusal = String::new();
    let mut reasoning = Vec::new();
    let mut tool_calls = Vec::new();
    let mut stopped = false;
    // The items in order, as the stream would have sent them: a stop sequence ends the
    // answer where it matched, tool calls after it included.
    'items: for item in responses::output_items(response) {
        match item.get("type").and_then(Value::as_str) {
            Some("message") => {
                for part in content_parts(item) {
                    match part.get("type").and_then(Value::as_str) {
                        Some("output_text") => {
                            let delta = part.get("text").and_then(Value::as_str).unwrap_or("");
                            let released = stop.push(delta);
                            text.push_str(&released.text);
                            if released.stopped.is_some() {
                                stopped = true;
                                break 'items;
                            }
                        }
                        Some("refusal") => refusal
                            .push_str(part.get("refusal").and_then(Value::as_str).unwrap_or("")),
                        _ => {}
                    }
                }
            }
            Some("function_call") => {
                text.push_str(&stop.flush());
                tool_calls.push(json!({
                    "id": item.get("call_id").cloned().unwrap_or(Value::Null),
                    "type": "function",
                    "function": {
                        "name": item.get("name").cloned().unwrap_or(Value::Null),
                        "arguments": item.get("arguments").and_then(Value::as_str).unwrap_or(""),
                    },
                }));
            }
            Some("reasoning") => {
                let summary = responses::reasoning_summary(item);
                if !summary.is_empty() {
                    reasoning.push(summary);
                }
            }
            _ => {}
        }
    }
    text.push_str(&stop.flush());
    let finish = if stopped {
        "stop"
    } else {
        finish_reason(Ending::of(response), !tool_calls.is_empty())
    };

    let mut message = Map::new();
    message.insert("role".into(), "assistant".into());
    message.insert("annotations".into(), json!([]));
    let content = if text.is_empty() && (!tool_calls.is_empty() || !refusal.is_empty()) {
        Value::Null
    } else {
        Value::String(text)
    };
    message.insert("content".into(), content);
    message.insert(
        "refusal".into(),
        if refusal.is_empty() {
            Value::Null
        } else {
            Value::String(refusal)
        },
    );
    if !tool_calls.is_empty() {
        message.insert("tool_calls".into(), Value::Array(tool_calls));
    }
    if !reasoning.is_empty() {
        message.insert("reasoning_content".into(), reasoning.join("\n\n").into());
    }
    json!({
        "id": answer_id(Shape::Chat, response),
        "object": "chat.completion",
        "created": created_at(response),
        "model": model,
        "service_tier": SERVICE_TIER,
        "system_fingerprint": null,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": finish,
        }],
        "usage": Shape::Chat.usage(Usage::of(response)),
    })
}

/// A message item's content parts.
fn content_parts(item: &Value) -> impl Iterator<Item = &Value> {
    item.get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}
