//! The non-streamed Gemini answer: one `GenerateContentResponse` made from the assembled
//! response, ending at a stop sequence as the stream would have.

use serde_json::Value;

use super::{
    finish_reason, message_text, response, response_id, thought, usage_metadata, GeminiAnswer,
    Parts,
};
use crate::dialect::responses::{output_items, reasoning_summary, Ending, Usage};
use crate::dialect::stop::StopMatcher;

/// The `GenerateContentResponse` made from the assembled response.
pub(super) fn reply(answer: &GeminiAnswer, response_object: &Value) -> Value {
    let mut parts = Vec::new();
    let mut signer = Parts::default();
    for item in output_items(response_object) {
        match item.get("type").and_then(Value::as_str) {
            Some("reasoning") => {
                let summary = reasoning_summary(item);
                if answer.thoughts && !summary.is_empty() {
                    parts.push(thought(&summary));
                }
                signer.reasoning(item);
            }
            Some("message") => {
                let (text, stop) = StopMatcher::cut(&answer.stops, &message_text(item));
                if !text.is_empty() {
                    parts.push(signer.text(&text));
                }
                if stop.is_some() {
                    // The answer ends at the stop sequence: nothing after it is shown.
                    break;
                }
            }
            Some("function_call") => parts.push(signer.call(item)),
            _ => {}
        }
    }
    parts.extend(signer.leftover());
    let usage = usage_metadata(Usage::of(response_object));
    response(
        parts,
        Some(finish_reason(Ending::of(response_object))),
        Some(usage),
        &answer.model,
        &response_id(response_object.get("id")),
    )
}
