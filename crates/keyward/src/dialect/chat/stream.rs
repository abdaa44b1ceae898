//! The streamed chat answer: the shared chunk stream (`dialect::chunks`) plus what only chat
//! streams: reasoning summaries as `reasoning_content`, refusals, and function calls as
//! `tool_calls` deltas, each call under its own `index` in the order the calls started.

use serde_json::{json, Value};

use crate::dialect::chunks::{ChunkStream, Shape};
use crate::dialect::responses::{ItemRef, StreamEvent};
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
    pub(super) fn new(model: String, stops: Vec<String>, include_usage: bool) -> Self {
        Self {
            chunks: ChunkStream::new(Shape::Chat, model, stops, include_usage),
            calls: Vec::new(),
            summary_at: None,
        }
    }

    /// The index of the streamed call an event belongs to.
    fn call_of(&self, item_ref: &ItemRef) -> Option<usize> {
        let item_id = item_ref.item_id.as_deref();
        self.calls
            .iter()
            .position(|call| match (item_ref.output_index, call.output_index) {
                (Some(wanted), Some(known)) => wanted == known,
                _ => item_id.is_some() && call.item_id.as_deref() == item_id,
            })
    }

    /// A function call begins: its id and name, with empty arguments.
    fn call_started(&mut self, item_ref: &ItemRef, item: &Value, out: &mut Vec<u8>) -> usize {
        if let Some(index) = self.call_of(item_ref) {
            return index;
        }
        self.chunks.flush_text(out);
        let index = self.calls.len();
        self.calls.push(StreamedCall {
            output_index: item_ref.output_index,
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

    /// A piece of a reasoning summary; `at` is its `(output_index, summary_index)`.
    fn reasoning(&mut self, at: (Option<u64>, Option<u64>), delta: &str, out: &mut Vec<u8>) {
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
    fn event(&mut self, event: &StreamEvent, out: &mut Vec<u8>) -> Flow {
        let called_tools = !self.calls.is_empty();
        if let Some(flow) = self.chunks.shared_event(event, called_tools, out) {
            return flow;
        }
        match event {
            StreamEvent::ReasoningSummaryTextDelta {
                output_index,
                summary_index,
                delta,
            } if !delta.is_empty() => self.reasoning((*output_index, *summary_index), delta, out),
            StreamEvent::RefusalDelta { delta, .. } if !delta.is_empty() => {
                self.chunks.send_delta(json!({"refusal": delta}), out)
            }
            StreamEvent::OutputItemAdded { item_ref, item } => {
                if let Some(call) = function_call(item.as_ref()) {
                    self.call_started(item_ref, call, out);
                }
            }
            StreamEvent::OutputItemDone { item_ref, item } => {
                if let Some(call) = function_call(item.as_ref()) {
                    let index = self.call_started(item_ref, call, out);
                    let arguments = call.get("arguments").and_then(Value::as_str).unwrap_or("");
                    self.call_completed(index, arguments, out);
                }
            }
            StreamEvent::FunctionCallArgumentsDelta { item_ref, delta } => {
                if let Some(index) = self.call_of(item_ref) {
                    self.call_arguments(index, delta, out);
                }
            }
            StreamEvent::FunctionCallArgumentsDone {
                item_ref,
                arguments: Some(arguments),
            } => {
                if let Some(index) = self.call_of(item_ref) {
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

/// An output item, if it is a function call.
fn function_call(item: Option<&Value>) -> Option<&Value> {
    item.filter(|item| item.get("type").and_then(Value::as_str) == Some("function_call"))
}
