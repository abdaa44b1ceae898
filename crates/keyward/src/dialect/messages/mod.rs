//! Anthropic Messages (`POST /v1/messages`), the dialect of the `anthropic` SDKs and of Claude
//! Code, translated to the public Responses API and back.
//!
//! Requests: `system` and system-role messages become system message items; each message's
//! blocks become Responses items in the order the Responses API wants them (a user turn's tool
//! results first, right after the calls they answer; an assistant turn's reasoning, then its text,
//! then its calls). Claude Code sends more than the public docs show (`context_management`,
//! `output_config`, deferred tools, a billing header in `system`, system-role messages): all of it
//! is accepted, what has no Responses equivalent is dropped and reported in `dropped`, and only
//! input that cannot be read at all, or a field of the wrong type, is refused.
//!
//! Reasoning: the upstream's reasoning is encrypted, and must go back upstream on later turns to
//! keep the model's chain of thought across tool calls. It travels in the thinking block's
//! `signature` as `kwsig1.<encrypted_content>`, which Anthropic clients keep and send back
//! verbatim; only signatures with that prefix become reasoning items again (Anthropic's own
//! signatures, and `redacted_thinking`, mean nothing upstream and are dropped). Thinking blocks are
//! shown only when the request enabled thinking (`enabled` or `adaptive`), as Anthropic does;
//! without it the reasoning is neither shown nor carried to the next turn, and the model reasons
//! again from the visible conversation.
//!
//! Stop sequences, which the Responses API lacks, are applied here to the answer's text.
//!
//! Where Anthropic and the Responses API differ in more than names:
//! - Function tools are sent with `strict: false` (unless the tool asked for `strict`): Responses
//!   otherwise holds them to OpenAI's strict schema subset, which Anthropic schemas do not follow.
//! - `output_config.effort` sets the reasoning effort and `output_config.format` (or the older
//!   `output_format`) the structured output; only its other keys are reported as dropped.
//! - Anthropic-run tools other than web search (bash, text editor, computer use, code
//!   execution) and content only Anthropic can serve (server tool blocks, file ids, tool
//!   references) have nothing to run them upstream: dropped and reported.
//! - Usage: Anthropic's `input_tokens` excludes cache reads, reported apart; nothing is ever
//!   written to a cache as Anthropic bills it, so `cache_creation_input_tokens` is 0.

mod content;
mod reply;
mod request;
#[cfg(test)]
pub(crate) mod strategies;
mod stream;
#[cfg(test)]
mod tests;

use serde_json::{json, Value};

pub(crate) use request::{translate, translate_request};

use super::responses::{Ending, Usage};
use super::{Answer, StreamTranslator};
use stream::MessagesStream;

/// Marks a thinking block's signature as keyward's: the upstream's encrypted reasoning follows.
const SIGNATURE_PREFIX: &str = "kwsig1.";

/// How to answer one Messages request.
struct MessagesAnswer {
    model: String,
    /// Whether reasoning is shown as thinking blocks.
    thinking: bool,
    stops: Vec<String>,
}

impl Answer for MessagesAnswer {
    fn stream(self: Box<Self>) -> Box<dyn StreamTranslator> {
        Box::new(MessagesStream::new(*self))
    }

    fn reply(&self, response: &Value) -> Value {
        reply::reply(self, response)
    }
}

/// `msg_` and the upstream response's id, or a fresh one.
fn message_id(response_id: Option<&Value>) -> String {
    match response_id
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
    {
        Some(id) => format!("msg_{}", id.strip_prefix("resp_").unwrap_or(id)),
        None => format!(
            "msg_{:016x}{:08x}",
            rand::random::<u64>(),
            rand::random::<u32>()
        ),
    }
}

/// A reasoning item's encrypted content as a thinking block's signature.
fn signature(item: &Value) -> String {
    item.get("encrypted_content")
        .and_then(Value::as_str)
        .filter(|e| !e.is_empty())
        .map(|encrypted| format!("{SIGNATURE_PREFIX}{encrypted}"))
        .unwrap_or_default()
}

/// A message item's text (output text and refusals, joined), and whether it refused.
fn message_text(item: &Value) -> (String, bool) {
    let mut text = String::new();
    let mut refused = false;
    for part in item
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match part.get("type").and_then(Value::as_str) {
            Some("output_text") => text.push_str(part["text"].as_str().unwrap_or("")),
            Some("refusal") => {
                refused = true;
                text.push_str(part["refusal"].as_str().unwrap_or(""));
            }
            _ => {}
        }
    }
    (text, refused)
}

/// The `stop_reason` of a response that was not cut by a stop sequence.
fn stop_reason(ending: Ending, tool_use: bool, refused: bool) -> &'static str {
    match ending {
        Ending::Length => "max_tokens",
        Ending::ContentFilter => "refusal",
        Ending::Completed if tool_use => "tool_use",
        Ending::Completed if refused => "refusal",
        Ending::Completed => "end_turn",
    }
}

/// Anthropic's usage as `message_delta` carries it: its `input_tokens` leaves out what the
/// prompt cache served.
fn usage(usage: Usage) -> Value {
    json!({
        "input_tokens": usage.input.saturating_sub(usage.cached_input),
        "cache_read_input_tokens": usage.cached_input,
        "cache_creation_input_tokens": 0,
        "output_tokens": usage.output,
    })
}

/// Anthropic's usage as a `message` carries it: the counts, the cache writes by lifetime (none)
/// and the tier that served.
fn message_usage(counts: Usage) -> Value {
    let mut usage = usage(counts);
    if let Some(fields) = usage.as_object_mut() {
        fields.insert(
            "cache_creation".into(),
            json!({"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0}),
        );
        fields.insert("service_tier".into(), "standard".into());
    }
    usage
}
