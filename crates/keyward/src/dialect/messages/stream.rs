//! The streamed Messages answer: Responses events as Anthropic's `message_start` ..
//! `message_stop` frames, one content block at a time (thinking, text, tool use), text held back
//! only as far as a stop sequence needs.

use serde::Serialize;
use serde_json::{json, Value};

use super::{
    message_id, message_text, message_usage, signature, stop_reason, usage, MessagesAnswer,
};
use crate::dialect::count_tokens::count_text;
use crate::dialect::responses::{reasoning_summary, Ending, StreamEvent, StreamFailure, Usage};
use crate::dialect::stop::StopMatcher;
use crate::dialect::{write_frame, Flow, StreamTranslator};

/// The Anthropic error type for an upstream failure.
fn error_type(failure: &StreamFailure) -> &'static str {
    match failure.status {
        400 => "invalid_request_error",
        429 => "rate_limit_error",
        503 => "overloaded_error",
        _ => "api_error",
    }
}

/// One Anthropic stream frame; its event name is the data's `type`.
fn send(out: &mut Vec<u8>, data: Value) {
    let kind = data
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    write_frame(out, Some(&kind), &data);
}

/// A `content_block_delta` frame of text, in the field order Anthropic sends.
#[derive(Serialize)]
struct TextDeltaFrame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    index: u64,
    delta: TextDelta<'a>,
}

#[derive(Serialize)]
struct TextDelta<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    text: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockKind {
    Thinking,
    Text,
    ToolUse,
}

/// The content block being streamed (Anthropic streams one block at a time, as the Responses
/// API streams one output item at a time).
#[derive(Debug)]
struct OpenBlock {
    kind: BlockKind,
    index: u64,
    /// The upstream output item it comes from.
    output_index: Option<u64>,
    /// Whether any delta was sent (if not, the item's final content is sent when it is done).
    streamed: bool,
    /// The reasoning summary part being streamed, to separate parts.
    summary_index: Option<u64>,
}

/// Turns the Responses event stream into Anthropic's `message_start` .. `message_stop` frames.
pub(super) struct MessagesStream {
    model: String,
    thinking: bool,
    stop: StopMatcher,
    started: bool,
    /// The last frame was written (`message_stop` or `error`).
    ended: bool,
    /// Ended at a stop sequence.
    stopped: bool,
    next_index: u64,
    open: Option<OpenBlock>,
    /// All text sent, to estimate output tokens when a stop sequence cuts the stream.
    text_sent: String,
    tool_use: bool,
    refused: bool,
}

impl MessagesStream {
    pub(super) fn new(answer: MessagesAnswer) -> Self {
        Self {
            model: answer.model,
            thinking: answer.thinking,
            stop: StopMatcher::new(answer.stops),
            started: false,
            ended: false,
            stopped: false,
            next_index: 0,
            open: None,
            text_sent: String::new(),
            tool_use: false,
            refused: false,
        }
    }

    /// The first event opens the message, named after the response it carries (if any).
    fn start(&mut self, response: &Value, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        send(
            out,
            json!({
                "type": "message_start",
                "message": {
                    "id": message_id(response.get("id")),
                    "type": "message",
                    "role": "assistant",
                    "model": self.model,
                    "content": [],
                    "stop_reason": null,
                    "stop_sequence": null,
                    // Counted by the upstream only at the end: `message_delta` has them.
                    "usage": message_usage(Usage::default()),
                },
            }),
        );
        send(out, json!({"type": "ping"}));
    }

    /// The open block's index, if it is of this kind and (when known) from this output item.
    fn open_index(&self, kind: BlockKind, output_index: Option<u64>) -> Option<u64> {
        self.open
            .as_ref()
            .filter(|open| {
                open.kind == kind
                    && (open.output_index.is_none()
                        || output_index.is_none()
                        || open.output_index == output_index)
            })
            .map(|open| open.index)
    }

    /// Starts a block (closing the open one); returns its index.
    fn open_block(
        &mut self,
        kind: BlockKind,
        output_index: Option<u64>,
        block: Value,
        out: &mut Vec<u8>,
    ) -> u64 {
        self.close_block(out);
        let index = self.next_index;
        self.next_index += 1;
        send(
            out,
            json!({"type": "content_block_start", "index": index, "content_block": block}),
        );
        self.open = Some(OpenBlock {
            kind,
            index,
            output_index,
            streamed: false,
            summary_index: None,
        });
        index
    }

    /// The open block of this kind for the item at `output_index`, opened if there is none (a
    /// tool use block opens with the call's id and name, from `item`).
    fn ensure_open(
        &mut self,
        kind: BlockKind,
        output_index: Option<u64>,
        item: &Value,
        out: &mut Vec<u8>,
    ) -> u64 {
        if let Some(index) = self.open_index(kind, output_index) {
            return index;
        }
        let field = |key: &str| item.get(key).and_then(Value::as_str).unwrap_or("");
        let block = match kind {
            BlockKind::Thinking => json!({"type": "thinking", "thinking": "", "signature": ""}),
            BlockKind::Text => json!({"type": "text", "text": ""}),
            BlockKind::ToolUse => {
                self.tool_use = true;
                json!({"type": "tool_use", "id": field("call_id"), "name": field("name"), "input": {}})
            }
        };
        self.open_block(kind, output_index, block, out)
    }

    /// Ends the open block; held-back text is released first.
    fn close_block(&mut self, out: &mut Vec<u8>) {
        let Some(open) = self.open.take() else {
            return;
        };
        if open.kind == BlockKind::Text {
            let rest = self.stop.flush();
            self.send_text(open.index, &rest, out);
        }
        send(
            out,
            json!({"type": "content_block_stop", "index": open.index}),
        );
    }

    fn delta(&mut self, index: u64, delta: Value, out: &mut Vec<u8>) {
        if let Some(open) = self.open.as_mut() {
            open.streamed = true;
        }
        send(
            out,
            json!({"type": "content_block_delta", "index": index, "delta": delta}),
        );
    }

    fn send_text(&mut self, index: u64, text: &str, out: &mut Vec<u8>) {
        if text.is_empty() {
            return;
        }
        self.text_sent.push_str(text);
        // Most of a stream's frames are these: written without a JSON tree.
        let frame = TextDeltaFrame {
            kind: "content_block_delta",
            index,
            delta: TextDelta {
                kind: "text_delta",
                text,
            },
        };
        write_frame(out, Some(frame.kind), &frame);
    }

    /// Answer text, through the stop sequences.
    fn text(&mut self, output_index: Option<u64>, text: &str, out: &mut Vec<u8>) -> Flow {
        let index = self.ensure_open(BlockKind::Text, output_index, &Value::Null, out);
        if let Some(open) = self.open.as_mut() {
            open.streamed = true;
        }
        let released = self.stop.push(text);
        self.send_text(index, &released.text, out);
        match released.stopped {
            Some(stop) => self.stop_at(stop, index, out),
            None => Flow::Continue,
        }
    }

    /// A stop sequence matched: the answer ends here.
    fn stop_at(&mut self, stop: usize, index: u64, out: &mut Vec<u8>) -> Flow {
        self.open = None;
        send(out, json!({"type": "content_block_stop", "index": index}));
        // The upstream's count is not known yet: estimate what the client received.
        send(
            out,
            json!({
                "type": "message_delta",
                "delta": {"stop_reason": "stop_sequence", "stop_sequence": self.stop.sequence(stop)},
                "usage": {
                    "input_tokens": 0,
                    "cache_read_input_tokens": 0,
                    "cache_creation_input_tokens": 0,
                    "output_tokens": count_text(&self.text_sent),
                },
            }),
        );
        send(out, json!({"type": "message_stop"}));
        self.ended = true;
        self.stopped = true;
        Flow::Stop
    }

    fn item_added(&mut self, output_index: Option<u64>, item: &Value, out: &mut Vec<u8>) {
        let kind = match item.get("type").and_then(Value::as_str) {
            Some("reasoning") if self.thinking => BlockKind::Thinking,
            Some("message") => BlockKind::Text,
            Some("function_call") => BlockKind::ToolUse,
            _ => return,
        };
        self.ensure_open(kind, output_index, item, out);
    }

    /// A piece of summary part `part` of the reasoning at `output_index`.
    fn summary_delta(
        &mut self,
        output_index: Option<u64>,
        part: Option<u64>,
        delta: &str,
        out: &mut Vec<u8>,
    ) {
        if !self.thinking {
            return;
        }
        let index = self.ensure_open(BlockKind::Thinking, output_index, &Value::Null, out);
        let Some(open) = self.open.as_mut() else {
            return;
        };
        // Summary parts are separate paragraphs, as in `reasoning_summary`.
        let separator = if open.streamed && part != open.summary_index {
            "\n\n"
        } else {
            ""
        };
        open.summary_index = part;
        self.delta(
            index,
            json!({"type": "thinking_delta", "thinking": format!("{separator}{delta}")}),
            out,
        );
    }

    fn item_done(&mut self, output_index: Option<u64>, item: &Value, out: &mut Vec<u8>) -> Flow {
        let streamed = |this: &Self| this.open.as_ref().is_some_and(|open| open.streamed);
        match item.get("type").and_then(Value::as_str) {
            Some("reasoning") if self.thinking => {
                let index = self.ensure_open(BlockKind::Thinking, output_index, item, out);
                let summary = reasoning_summary(item);
                if !streamed(self) && !summary.is_empty() {
                    self.delta(
                        index,
                        json!({"type": "thinking_delta", "thinking": summary}),
                        out,
                    );
                }
                let signature = signature(item);
                if !signature.is_empty() {
                    self.delta(
                        index,
                        json!({"type": "signature_delta", "signature": signature}),
                        out,
                    );
                }
                self.close_block(out);
            }
            Some("message") => {
                self.ensure_open(BlockKind::Text, output_index, item, out);
                if !streamed(self) {
                    let (text, refused) = message_text(item);
                    self.refused |= refused;
                    if self.text(output_index, &text, out) == Flow::Stop {
                        return Flow::Stop;
                    }
                }
                self.close_block(out);
            }
            Some("function_call") => {
                let index = self.ensure_open(BlockKind::ToolUse, output_index, item, out);
                let arguments = item.get("arguments").and_then(Value::as_str).unwrap_or("");
                if !streamed(self) && !arguments.is_empty() {
                    self.delta(
                        index,
                        json!({"type": "input_json_delta", "partial_json": arguments}),
                        out,
                    );
                }
                self.close_block(out);
            }
            _ => {}
        }
        Flow::Continue
    }

    /// The final response arrived: the closing frames, with its stop reason and usage.
    fn complete(&mut self, response: &Value, out: &mut Vec<u8>) {
        self.close_block(out);
        let stop_reason = stop_reason(Ending::of(response), self.tool_use, self.refused);
        send(
            out,
            json!({
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": null},
                "usage": usage(Usage::of(response)),
            }),
        );
        send(out, json!({"type": "message_stop"}));
        self.ended = true;
    }

    /// The answer failed: one error frame, and nothing after it.
    fn fail(&mut self, failure: &StreamFailure, out: &mut Vec<u8>) {
        send(
            out,
            json!({
                "type": "error",
                "error": {"type": error_type(failure), "message": failure.message},
            }),
        );
        self.ended = true;
    }
}

impl StreamTranslator for MessagesStream {
    fn event(&mut self, event: &StreamEvent, out: &mut Vec<u8>) -> Flow {
        if self.ended {
            return if self.stopped {
                Flow::Stop
            } else {
                Flow::Continue
            };
        }
        if let Some(failure) = event.failure() {
            // Anthropic reports an early failure without starting a message.
            self.fail(failure, out);
            return Flow::Continue;
        }
        self.start(event.response(), out);
        match event {
            StreamEvent::OutputItemAdded { item_ref, item } => {
                let item = item.as_ref().unwrap_or(&Value::Null);
                self.item_added(item_ref.output_index, item, out)
            }
            StreamEvent::ReasoningSummaryTextDelta {
                output_index,
                summary_index,
                delta,
            } => self.summary_delta(*output_index, *summary_index, delta, out),
            StreamEvent::OutputTextDelta {
                output_index,
                delta,
            } => return self.text(*output_index, delta, out),
            StreamEvent::RefusalDelta {
                output_index,
                delta,
            } => {
                self.refused = true;
                return self.text(*output_index, delta, out);
            }
            StreamEvent::FunctionCallArgumentsDelta { item_ref, delta } => {
                if let Some(index) = self.open_index(BlockKind::ToolUse, item_ref.output_index) {
                    self.delta(
                        index,
                        json!({"type": "input_json_delta", "partial_json": delta}),
                        out,
                    );
                }
            }
            StreamEvent::OutputItemDone { item_ref, item } => {
                let item = item.as_ref().unwrap_or(&Value::Null);
                return self.item_done(item_ref.output_index, item, out);
            }
            StreamEvent::Completed { response } | StreamEvent::Incomplete { response } => {
                self.complete(response, out)
            }
            _ => {}
        }
        Flow::Continue
    }

    fn finish(&mut self, broken: Option<&str>, out: &mut Vec<u8>) {
        if !self.ended {
            self.fail(&StreamFailure::cut_short(broken), out);
        }
    }
}
