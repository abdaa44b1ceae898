//! Google's Gemini API (`POST /v1beta/models/{model}:generateContent`, `:streamGenerateContent`,
//! `:countTokens`, and the same under `/v1/`), the dialect of the Gemini CLI and the
//! `google-genai` SDKs, translated to the public Responses API and back.
//!
//! Gemini names the model and whether to stream in the path, not the body: a [`Call`] carries
//! both from the route to the translator.
//!
//! Requests: `systemInstruction` becomes a system message; each content's parts become Responses
//! items in the order the Responses API wants them (a user turn's function responses first,
//! right after the calls they answer; a model turn's reasoning, then its text, then its calls).
//! Field names are read in lowerCamel and in snake_case alike (`google-genai` sends both, even
//! in one request). Every field is mapped, dropped and reported, or refused with a 400 naming
//! it, as in the other dialects; a field of the wrong type is refused.
//!
//! Function calls: the upstream's `call_id` goes out as `functionCall.id` and a
//! `functionResponse.id` maps back to it. `google-genai` sends responses without ids: a response
//! is then paired with the earliest unanswered call of the same name (and calls without ids get
//! ids of keyward's, good for the one request).
//!
//! Reasoning: the upstream's encrypted reasoning goes out in the `thoughtSignature` of the first
//! part that follows it, which Gemini clients keep in their history and send back (the Gemini CLI
//! drops `thought` parts from its history, so the signature never rides on one). A signature is
//! base64, as Gemini's own are and as typed clients decode them (`google-genai` keeps it as bytes
//! and sends it back URL-safe), of keyward's prefix and the encrypted content; a signature
//! without the prefix (the Gemini CLI's `skip_thought_signature_validator`, Gemini's own) means
//! nothing upstream and is dropped. Reasoning summaries are shown as `thought: true` parts when
//! `thinkingConfig.includeThoughts` asks for them.
//!
//! Answers: one `GenerateContentResponse`, or a stream of them (server-sent events with
//! `alt=sse`, else one JSON array sent as it grows). Every stream ends with a chunk carrying
//! `finishReason` and `usageMetadata` (the Gemini CLI retries a stream that ends without one), or
//! with an error object in Google's shape. Stop sequences are applied here.

mod conversation;
mod keys;
mod reply;
mod request;
mod schema;
mod signature;
#[cfg(test)]
pub(crate) mod strategies;
mod stream;
#[cfg(test)]
mod tests;

use serde_json::{json, Map, Value};

pub(crate) use request::{translate, translate_count};
#[cfg(test)]
pub(crate) use signature::encode as sign;

use super::responses::{Ending, Usage};
use super::{Answer, StreamTranslator};
use stream::GeminiStream;

/// How the answer to a Gemini call is framed, as its path asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// `:generateContent`: one `GenerateContentResponse`.
    Whole,
    /// `:streamGenerateContent?alt=sse`: one server-sent event per chunk.
    Sse,
    /// `:streamGenerateContent` without `alt=sse`: a JSON array of chunks, sent as it grows.
    Array,
}

/// What a Gemini route's path says and its body does not: the model, and the framing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Call {
    pub model: String,
    pub framing: Framing,
}

/// How to answer one Gemini request.
struct GeminiAnswer {
    model: String,
    /// Whether reasoning summaries are shown (`thinkingConfig.includeThoughts`).
    thoughts: bool,
    stops: Vec<String>,
    framing: Framing,
}

impl Answer for GeminiAnswer {
    fn stream(self: Box<Self>) -> Box<dyn StreamTranslator> {
        Box::new(GeminiStream::new(*self))
    }

    fn reply(&self, response: &Value) -> Value {
        reply::reply(self, response)
    }
}

/// The `google.rpc.Code` name Google's APIs give an HTTP status, for the `status` of an error.
pub(crate) fn status_name(status: u16) -> &'static str {
    match status {
        400 | 411 | 413 | 415 | 422 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        405 | 501 => "UNIMPLEMENTED",
        408 | 504 => "DEADLINE_EXCEEDED",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        502 | 503 => "UNAVAILABLE",
        400..=499 => "FAILED_PRECONDITION",
        _ => "INTERNAL",
    }
}

/// Google's error object (`{"code", "message", "status"}`), as it goes under `error`.
pub(crate) fn error_object(status: u16, message: &str) -> Map<String, Value> {
    let mut error = Map::with_capacity(4);
    error.insert("code".into(), status.into());
    error.insert("message".into(), message.into());
    error.insert("status".into(), status_name(status).into());
    error
}

/// Why the answer ended, as Gemini says it (a stop sequence is a `STOP` too).
fn finish_reason(ending: Ending) -> &'static str {
    match ending {
        Ending::Completed => "STOP",
        Ending::Length => "MAX_TOKENS",
        Ending::ContentFilter => "SAFETY",
    }
}

/// Gemini's token counts: its candidates exclude the thoughts, which OpenAI's output includes,
/// and its prompt includes what the cache served.
fn usage_metadata(usage: Usage) -> Value {
    let mut metadata = Map::with_capacity(5);
    metadata.insert("promptTokenCount".into(), usage.input.into());
    metadata.insert(
        "candidatesTokenCount".into(),
        usage.output.saturating_sub(usage.reasoning).into(),
    );
    metadata.insert("totalTokenCount".into(), usage.total.into());
    if usage.reasoning > 0 {
        metadata.insert("thoughtsTokenCount".into(), usage.reasoning.into());
    }
    if usage.cached_input > 0 {
        metadata.insert("cachedContentTokenCount".into(), usage.cached_input.into());
    }
    Value::Object(metadata)
}

/// The upstream response's id without its `resp_`, or a fresh one.
fn response_id(response_id: Option<&Value>) -> String {
    match response_id
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
    {
        Some(id) => id.strip_prefix("resp_").unwrap_or(id).to_string(),
        None => format!("{:016x}", rand::random::<u64>()),
    }
}

/// One `GenerateContentResponse` (an answer, or one chunk of a streamed one).
fn response(
    parts: Vec<Value>,
    finish: Option<&str>,
    usage: Option<Value>,
    model: &str,
    id: &str,
) -> Value {
    let mut candidate = Map::with_capacity(3);
    candidate.insert("content".into(), json!({"role": "model", "parts": parts}));
    if let Some(finish) = finish {
        candidate.insert("finishReason".into(), finish.into());
    }
    candidate.insert("index".into(), 0.into());
    let mut answer = Map::with_capacity(4);
    answer.insert("candidates".into(), json!([candidate]));
    if let Some(usage) = usage {
        answer.insert("usageMetadata".into(), usage);
    }
    answer.insert("modelVersion".into(), model.into());
    answer.insert("responseId".into(), id.into());
    Value::Object(answer)
}

/// The parts of one answer as they are made, in order: reasoning's encrypted content waits for
/// the next part to carry it as its `thoughtSignature`.
#[derive(Debug, Default)]
struct Parts {
    signature: Option<String>,
}

impl Parts {
    /// A reasoning item is done: its encrypted content rides on the next part.
    fn reasoning(&mut self, item: &Value) {
        if let Some(encrypted) = item
            .get("encrypted_content")
            .and_then(Value::as_str)
            .filter(|e| !e.is_empty())
        {
            self.signature = Some(signature::encode(encrypted));
        }
    }

    /// A part, carrying the waiting signature if there is one.
    fn signed(&mut self, mut part: Map<String, Value>) -> Value {
        if let Some(signature) = self.signature.take() {
            part.insert("thoughtSignature".into(), signature.into());
        }
        Value::Object(part)
    }

    fn text(&mut self, text: &str) -> Value {
        let mut part = Map::with_capacity(2);
        part.insert("text".into(), text.into());
        self.signed(part)
    }

    /// A function call item as a `functionCall` part: its `call_id` as the id, its arguments as
    /// the `args` object.
    fn call(&mut self, item: &Value) -> Value {
        let text = |key: &str| item.get(key).and_then(Value::as_str).unwrap_or("");
        let mut part = Map::with_capacity(2);
        part.insert(
            "functionCall".into(),
            json!({"id": text("call_id"), "name": text("name"), "args": call_args(text("arguments"))}),
        );
        self.signed(part)
    }

    /// A signature no part came to carry (the answer ended after its reasoning): an empty text
    /// part carries it, as Gemini's own last chunks do.
    fn leftover(&mut self) -> Option<Value> {
        self.signature.is_some().then(|| self.text(""))
    }
}

/// A message item's text: its output text and refusals, joined (a refusal is the model's answer
/// here: Gemini has no other place for it).
fn message_text(item: &Value) -> String {
    let mut text = String::new();
    for part in item
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = match part.get("type").and_then(Value::as_str) {
            Some("output_text") => "text",
            Some("refusal") => "refusal",
            _ => continue,
        };
        text.push_str(part.get(key).and_then(Value::as_str).unwrap_or(""));
    }
    text
}

/// A `bytes` field of Gemini's JSON (inline data, a thought signature) as standard, padded base64.
/// Protobuf's JSON takes standard and URL-safe base64, padded or not, and `google-genai` sends
/// URL-safe; a data URL, and whoever decodes it upstream, wants the standard alphabet.
fn standard_base64(data: &str) -> String {
    let mut standard: String = data
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            other => other,
        })
        .collect();
    while !standard.len().is_multiple_of(4) {
        standard.push('=');
    }
    standard
}

/// A reasoning summary as a `thought` part.
fn thought(text: &str) -> Value {
    json!({"text": text, "thought": true})
}

/// A function call's arguments as `args`, which must be an object.
fn call_args(arguments: &str) -> Value {
    if arguments.trim().is_empty() {
        return json!({});
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(args @ Value::Object(_)) => args,
        _ => json!({ "arguments": arguments }),
    }
}
