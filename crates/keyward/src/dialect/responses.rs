//! The Responses API itself: the dialect keyward's upstreams speak. Its requests need no
//! translation (only the upstream's own normalisation); its event stream is read here, and
//! assembled into one response object for a client that did not ask for a stream.

use serde_json::{json, Map, Value};

use super::fields::{json_kind, model_field, parse_object, stream_flag};
use super::sse::Event;
use super::{Invalid, Translated};

/// A `/v1/responses` request, checked for the fields keyward itself needs.
pub(crate) fn translate(body: &[u8]) -> Result<Translated, Invalid> {
    let body = parse_object(body)?;
    let model = model_field(&body)?;
    let stream = stream_flag(&body)?;
    match body.get("input") {
        None | Some(Value::String(_)) | Some(Value::Array(_)) => {}
        Some(other) => {
            return Err(Invalid::at(
                "input",
                format!(
                    "`input` must be a string or an array of items, not {}",
                    json_kind(other)
                ),
            ))
        }
    }
    Ok(Translated {
        body,
        model,
        stream,
        dropped: Vec::new(),
        renamed: Vec::new(),
        answer: None,
    })
}

/// The JSON of one upstream event, with `type` filled in from the SSE event name when the data
/// lacks it. `None` for data that is not a JSON object (a keep-alive, `[DONE]`).
pub(crate) fn parse_event(event: &Event) -> Option<Value> {
    let mut value: Value = serde_json::from_str(&event.data).ok()?;
    let object = value.as_object_mut()?;
    if !object.contains_key("type") {
        let name = event.event.clone()?;
        object.insert("type".into(), Value::String(name));
    }
    Some(value)
}

/// The `type` of an event.
pub(crate) fn event_type(event: &Value) -> &str {
    event.get("type").and_then(Value::as_str).unwrap_or("")
}

/// Token counts of a response, from its `usage` object (absent parts count 0).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    pub input: u64,
    pub cached_input: u64,
    pub output: u64,
    pub reasoning: u64,
    pub total: u64,
}

impl Usage {
    /// From a response object (`response.usage`).
    pub fn of(response: &Value) -> Self {
        let usage = &response["usage"];
        let count = |pointer: &str| usage.pointer(pointer).and_then(Value::as_u64).unwrap_or(0);
        let input = count("/input_tokens");
        let output = count("/output_tokens");
        Self {
            input,
            cached_input: count("/input_tokens_details/cached_tokens"),
            output,
            reasoning: count("/output_tokens_details/reasoning_tokens"),
            total: usage
                .get("total_tokens")
                .and_then(Value::as_u64)
                // The counts come from upstream: a sum past u64 must not panic (or wrap).
                .unwrap_or(input.saturating_add(output)),
        }
    }
}

/// Why a response ended short of `completed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    Completed,
    /// Cut at the output token limit.
    Length,
    /// Stopped by the content filter.
    ContentFilter,
}

impl Ending {
    /// From a final response object's `status` and `incomplete_details.reason`.
    pub fn of(response: &Value) -> Self {
        if response.get("status").and_then(Value::as_str) != Some("incomplete") {
            return Self::Completed;
        }
        match response
            .pointer("/incomplete_details/reason")
            .and_then(Value::as_str)
        {
            Some("content_filter") => Self::ContentFilter,
            _ => Self::Length,
        }
    }
}

/// An upstream failure reported inside a stream (`response.failed` or `error`), or a stream that
/// ended without an answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StreamFailure {
    /// The HTTP status that best describes it, for a non-streamed answer.
    pub status: u16,
    pub code: Option<String>,
    pub message: String,
}

impl StreamFailure {
    /// From a `response.failed` or `error` event.
    pub fn from_event(event: &Value) -> Self {
        let error = event
            .pointer("/response/error")
            .filter(|e| e.is_object())
            .or_else(|| event.get("error").filter(|e| e.is_object()))
            .unwrap_or(event);
        let code = error
            .get("code")
            .or_else(|| error.get("type"))
            .and_then(Value::as_str)
            .filter(|c| *c != "error")
            .map(str::to_string);
        let message = error
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("the upstream reported a failure without a message")
            .to_string();
        let status = match code.as_deref() {
            Some(
                "context_length_exceeded"
                | "invalid_prompt"
                | "invalid_request_error"
                | "invalid_image"
                | "unsupported_parameter"
                | "invalid_value",
            ) => 400,
            Some("rate_limit_exceeded" | "usage_limit_reached" | "insufficient_quota") => 429,
            Some("server_is_overloaded" | "slow_down") => 503,
            _ => 502,
        };
        Self {
            status,
            code,
            message,
        }
    }

    /// The stream ended (or broke) before the response was complete.
    pub fn cut_short(detail: Option<&str>) -> Self {
        Self {
            status: 502,
            code: Some("stream_interrupted".into()),
            message: match detail {
                Some(detail) => format!(
                    "the upstream stream broke off before the answer was complete: {detail}"
                ),
                None => "the upstream stream ended before the answer was complete".into(),
            },
        }
    }

    /// An OpenAI-shaped error object (`{"message","type","code","param"}`).
    pub fn openai_error(&self) -> Value {
        json!({
            "message": self.message,
            "type": if self.status == 400 { "invalid_request_error" } else { "upstream_error" },
            "code": self.code,
            "param": null,
        })
    }
}

/// Collects a Responses event stream into the final response object, as the Responses API
/// answers a request with `stream: false`.
#[derive(Debug, Default)]
pub(crate) struct Assembler {
    items: Vec<(u64, Value)>,
    done: Option<Result<Value, StreamFailure>>,
}

impl Assembler {
    pub fn push(&mut self, event: &Value) {
        if self.done.is_some() {
            return;
        }
        match event_type(event) {
            "response.output_item.done" => {
                if let Some(item) = event.get("item") {
                    let index = event
                        .get("output_index")
                        .and_then(Value::as_u64)
                        .unwrap_or(self.items.len() as u64);
                    self.items.push((index, item.clone()));
                }
            }
            "response.completed" | "response.incomplete" => {
                if let Some(response) = event.get("response").filter(|r| r.is_object()) {
                    self.done = Some(Ok(response.clone()));
                }
            }
            "response.failed" | "error" => self.done = Some(Err(StreamFailure::from_event(event))),
            _ => {}
        }
    }

    /// Whether a terminal event arrived.
    pub fn is_done(&self) -> bool {
        self.done.is_some()
    }

    /// The final response object; `broken` is the transport error, if the stream broke.
    pub fn finish(self, broken: Option<&str>) -> Result<Value, StreamFailure> {
        let mut response = match self.done {
            Some(done) => done?,
            None => return Err(StreamFailure::cut_short(broken)),
        };
        // The backend may leave the final object's `output` empty and send the items only as
        // `output_item.done` events.
        let empty = response
            .get("output")
            .and_then(Value::as_array)
            .is_none_or(|o| o.is_empty());
        if empty && !self.items.is_empty() {
            let mut items = self.items;
            items.sort_by_key(|(index, _)| *index);
            if let Some(object) = response.as_object_mut() {
                object.insert(
                    "output".into(),
                    Value::Array(items.into_iter().map(|(_, item)| item).collect()),
                );
            }
        }
        Ok(response)
    }
}

/// The text of every `output_text` part of a response's assistant messages, joined.
pub(crate) fn output_text(response: &Value) -> String {
    let mut text = String::new();
    for item in output_items(response) {
        if item.get("type").and_then(Value::as_str) != Some("message") {
            continue;
        }
        for part in item
            .get("content")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if part.get("type").and_then(Value::as_str) == Some("output_text") {
                text.push_str(part.get("text").and_then(Value::as_str).unwrap_or(""));
            }
        }
    }
    text
}

/// A response's output items.
pub(crate) fn output_items(response: &Value) -> impl Iterator<Item = &Value> {
    response
        .get("output")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// The concatenated summary text of a reasoning item.
pub(crate) fn reasoning_summary(item: &Value) -> String {
    item.get("summary")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|part| part.get("text").and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// A message input item in the Responses shape.
pub(crate) fn message_item(role: &str, content: Vec<Value>) -> Value {
    let mut item = Map::new();
    item.insert("type".into(), "message".into());
    item.insert("role".into(), role.into());
    item.insert("content".into(), Value::Array(content));
    Value::Object(item)
}

/// A text content part: `output_text` in assistant messages, `input_text` elsewhere.
pub(crate) fn text_part(role: &str, text: &str) -> Value {
    let kind = if role == "assistant" {
        "output_text"
    } else {
        "input_text"
    };
    json!({"type": kind, "text": text})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(list: &[Value]) -> Assembler {
        let mut assembler = Assembler::default();
        for event in list {
            assembler.push(event);
        }
        assembler
    }

    #[test]
    fn assembles_items_into_an_empty_final_output() {
        let assembler = events(&[
            json!({"type": "response.output_item.done", "output_index": 1, "item": {"type": "function_call", "name": "f"}}),
            json!({"type": "response.output_item.done", "output_index": 0, "item": {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "hi"}]}}),
            json!({"type": "response.completed", "response": {"status": "completed", "output": [], "usage": {"input_tokens": 3, "output_tokens": 2}}}),
        ]);
        let response = assembler.finish(None).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(output_text(&response), "hi");
        assert_eq!(response["output"][1]["name"], "f");
        assert_eq!(
            Usage::of(&response),
            Usage {
                input: 3,
                output: 2,
                total: 5,
                ..Usage::default()
            }
        );
        assert_eq!(Ending::of(&response), Ending::Completed);
    }

    /// Usage counts near u64::MAX without a `total_tokens` give a saturated total, not an
    /// overflow panic (a `chat_stream`/`messages_stream` fuzz input: any upstream could send it).
    #[test]
    fn usage_total_of_huge_counts_does_not_overflow() {
        let response = json!({"usage": {"input_tokens": u64::MAX, "output_tokens": 1}});
        assert_eq!(
            Usage::of(&response),
            Usage {
                input: u64::MAX,
                output: 1,
                total: u64::MAX,
                ..Usage::default()
            }
        );
    }

    #[test]
    fn failures_and_cut_streams_are_reported() {
        let failed = events(&[
            json!({"type": "response.failed", "response": {"status": "failed", "error": {"code": "context_length_exceeded", "message": "too long"}}}),
        ])
        .finish(None);
        assert_eq!(
            failed.map_err(|f| (f.status, f.code, f.message)),
            Err((
                400,
                Some("context_length_exceeded".into()),
                "too long".into()
            ))
        );
        let cut =
            events(&[json!({"type": "response.created", "response": {}})]).finish(Some("reset"));
        assert!(matches!(cut, Err(StreamFailure { status: 502, .. })));
        let incomplete =
            json!({"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}});
        assert_eq!(Ending::of(&incomplete), Ending::Length);
    }

    #[test]
    fn event_type_comes_from_the_sse_name_when_missing() {
        let event = Event {
            event: Some("response.created".into()),
            data: "{\"response\":{}}".into(),
        };
        let parsed = parse_event(&event).unwrap_or_default();
        assert_eq!(event_type(&parsed), "response.created");
        let done = Event {
            event: None,
            data: "[DONE]".into(),
        };
        assert!(parse_event(&done).is_none());
    }

    #[test]
    fn responses_requests_are_checked() {
        assert!(translate(br#"{"model":"m","input":"hi"}"#).is_ok());
        let no_model = translate(br#"{"input":"hi"}"#).err();
        assert_eq!(no_model.and_then(|e| e.param), Some("model".into()));
        assert!(translate(br#"{"model":"m","input":3}"#).is_err());
        assert!(translate(br#"{"model":"m","stream":"yes"}"#).is_err());
        assert!(translate(b"[1]").is_err());
    }
}
