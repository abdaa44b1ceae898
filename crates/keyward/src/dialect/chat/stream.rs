//! The streamed chat answer: the shared chunk stream (`dialect::chunks`) plus what only chat
//! streams: reasoning summaries as `reasoning_content`, refusals, and function calls as
//! `tool_calls` deltas, each call under its own `index` in the order the calls started.

use serde_json::{json, Value};

use crate::dialect::chunks::{ChunkStream, Shape};
use crate::dialect::responses::event_type;
use crate::dialect::{Flow, StreamTranslator};

/// A function call being streamed: where its events come from, and the arguments sent so far.
#[derive(Debug)]
struct StreamedCall {
    output_index: Option<u64>,
    item_id: Option<String>,
    arguments: String,
}

/// Turns Responses events into `chat.completion.chunk` frames, as they arrive.
pub(super) struct ChatStream {
    chunks: ChunkStream,
    /// Function calls in the order they started; the position is the chat `index`.
    calls: Vec<StreamedCall>,
    /// `(output_index, summary_index)` of the reasoning summary being streamed, so the next
    /// summary part starts on its own paragraph as in the non-streamed answer.
    summary_at: Option<(Option<u64>, Option<u64>)>,
}

impl ChatStream {
    pub fn new(model: String, stops: Vec<String>, include_usage: bool) -> Self {
        Self {
            chunks: ChunkStream::new(Shape::Chat, model, stops, include_usage),
            calls: Vec::new(),
            summary_at: None,
        }
    }

    /// The index of the streamed call an event belongs to.
    fn call_of(&self, event: &Value) -> Option<usize> {
        let output_index = event.get("output_index").and_then(Value::as_u64);
        let item_id = event
            .get("item_id")
            .or_else(|| event.pointer("/item/id"))
            .and_then(Value::as_str);
        self.calls
            .iter()
            .position(|call| match (output_index, call.output_index) {
                (Some(wanted), Some(known)) => wanted == known,
                _ => item_id.is_some() && call.item_id.as_deref() == item_id,
            })
    }

    /// A function call begins: its id and name, with empty arguments.
    fn call_started(&mut self, event: &Value, item: &Value, out: &mut Vec<u8>) -> usize {
        if let Some(index) = self.call_of(event) {
            return index;
        }
        self.chunks.flush_text(out);
        let index = self.calls.len();
        self.calls.push(StreamedCall {
            output_index: event.get("output_index").and_then(Value::as_u64),
            item_id: item.get("id").and_then(Value::as_str).map(str::to_string),
            arguments: String::new(),
        });
        self.chunks.send_delta(
            json!({"tool_calls": [{
                "index": index,
                "id": item.get("call_id").cloned().unwrap_or(Value::Null),
                "type": "function",
                "function": {
                    "name": item.get("name").cloned().unwrap_or(Value::Null),
                    "arguments": "",
                },
            }]}),
            out,
        );
        index
    }

    fn call_arguments(&mut self, index: usize, delta: &str, out: &mut Vec<u8>) {
        if delta.is_empty() {
            return;
        }
        if let Some(call) = self.calls.get_mut(index) {
            call.arguments.push_str(delta);
        }
        self.chunks.send_delta(
            json!({"tool_calls": [{"index": index, "function": {"arguments": delta}}]}),
            out,
        );
    }

    /// A call's complete arguments arrived: sends whatever the deltas did not.
    fn call_completed(&mut self, index: usize, arguments: &str, out: &mut Vec<u8>) {
        let sent = self
            .calls
            .get(index)
            .map_or("", |call| call.arguments.as_str());
        if let Some(rest) = arguments.strip_prefix(sent) {
            let rest = rest.to_string();
            self.call_arguments(index, &rest, out);
        }
    }

    fn reasoning(&mut self, event: &Value, delta: &str, out: &mut Vec<u8>) {
        let at = (
            event.get("output_index").and_then(Value::as_u64),
            event.get("summary_index").and_then(Value::as_u64),
        );
        let mut text = String::new();
        if self.summary_at.is_some_and(|previous| previous != at) {
            text.push_str("\n\n");
        }
        self.summary_at = Some(at);
        text.push_str(delta);
        self.chunks
            .send_delta(json!({"reasoning_content": text}), out);
    }
}

impl StreamTranslator for ChatStream {
    fn event(&mut self, event: &Value, out: &mut Vec<u8>) -> Flow {
        let called_tools = !self.calls.is_empty();
        if let Some(flow) = self.chunks.shared_event(event, called_tools, out) {
            return flow;
        }
        let delta = event.get("delta").and_then(Value::as_str).unwrap_or("");
        match event_type(event) {
            "response.reasoning_summary_text.delta" if !delta.is_empty() => {
                self.reasoning(event, delta, out)
            }
            "response.refusal.delta" if !delta.is_empty() => {
                self.chunks.send_delta(json!({"refusal": delta}), out)
            }
            "response.output_item.added" | "response.output_item.done" => {
                let item = event.get("item").unwrap_or(&Value::Null);
                if item.get("type").and_then(Value::as_str) != Some("function_call") {
                    return Flow::Continue;
                }
                let index = self.call_started(event, item, out);
                if event_type(event) == "response.output_item.done" {
                    let arguments = item.get("arguments").and_then(Value::as_str).unwrap_or("");
                    self.call_completed(index, arguments, out);
                }
            }
            "response.function_call_arguments.delta" => {
                if let Some(index) = self.call_of(event) {
                    self.call_arguments(index, delta, out);
                }
            }
            "response.function_call_arguments.done" => {
                if let (Some(index), Some(arguments)) = (
                    self.call_of(event),
                    event.get("arguments").and_then(Value::as_str),
                ) {
                    self.call_completed(index, arguments, out);
                }
            }
            _ => {}
        }
        Flow::Continue
    }

    fn finish(&mut self, broken: Option<&str>, out: &mut Vec<u8>) {
        self.chunks.finish(broken, out);
    }
}
