//! The streamed Gemini answer: Responses events as `GenerateContentResponse` chunks, one per
//! piece of text or thought and one per function call (Gemini sends calls whole), then a last
//! chunk with `finishReason` and `usageMetadata`. Framed as server-sent events (`alt=sse`) or as
//! one JSON array written as it grows. Text is held back only as far as a stop sequence needs.

use serde_json::{Map, Value};

use super::{
    error_object, finish_reason, message_text, response, response_id, thought, usage_metadata,
    Framing, GeminiAnswer, Parts,
};
use crate::dialect::count_tokens::count_text;
use crate::dialect::responses::{reasoning_summary, Ending, StreamEvent, StreamFailure, Usage};
use crate::dialect::stop::StopMatcher;
use crate::dialect::{write_frame, Flow, StreamTranslator};

/// Turns the Responses event stream into Gemini's chunks.
pub(super) struct GeminiStream {
    model: String,
    thoughts: bool,
    framing: Framing,
    stop: StopMatcher,
    parts: Parts,
    /// The answer's `responseId`, fixed by the first event that names the response.
    id: Option<String>,
    /// Chunks written (the array's first one opens it).
    chunks: usize,
    /// The last frame was written (the last chunk, or an error).
    ended: bool,
    /// Ended at a stop sequence.
    stopped: bool,
    /// Output items whose text or summary arrived as deltas (their `done` repeats it).
    streamed: Vec<Option<u64>>,
    /// The summary part last streamed, `(output index, summary index)`, to separate parts.
    summary_at: Option<(Option<u64>, Option<u64>)>,
    /// All answer text sent, to estimate the output tokens when a stop sequence cuts the stream.
    text_sent: String,
}

impl GeminiStream {
    pub(super) fn new(answer: GeminiAnswer) -> Self {
        Self {
            model: answer.model,
            thoughts: answer.thoughts,
            framing: answer.framing,
            stop: StopMatcher::new(answer.stops),
            parts: Parts::default(),
            id: None,
            chunks: 0,
            ended: false,
            stopped: false,
            streamed: Vec::new(),
            summary_at: None,
            text_sent: String::new(),
        }
    }

    fn id(&mut self) -> String {
        self.id.get_or_insert_with(|| response_id(None)).clone()
    }

    /// Writes one value in the stream's framing.
    fn write(&mut self, value: &Value, out: &mut Vec<u8>) {
        match self.framing {
            Framing::Sse | Framing::Whole => write_frame(out, None, value),
            Framing::Array => {
                out.extend_from_slice(if self.chunks == 0 { b"[" } else { b",\r\n" });
                // Writing a `Value` into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut *out, value);
            }
        }
        self.chunks += 1;
    }

    fn chunk(
        &mut self,
        parts: Vec<Value>,
        finish: Option<&str>,
        usage: Option<Value>,
        out: &mut Vec<u8>,
    ) {
        let id = self.id();
        let chunk = response(parts, finish, usage, &self.model, &id);
        self.write(&chunk, out);
    }

    /// The stream's end: an array is closed.
    fn close(&mut self, out: &mut Vec<u8>) {
        if self.framing == Framing::Array {
            if self.chunks == 0 {
                out.push(b'[');
            }
            out.push(b']');
        }
        self.ended = true;
    }

    fn mark_streamed(&mut self, output_index: Option<u64>) {
        if !self.streamed.contains(&output_index) {
            self.streamed.push(output_index);
        }
    }

    fn send_text(&mut self, text: &str, out: &mut Vec<u8>) {
        if text.is_empty() {
            return;
        }
        self.text_sent.push_str(text);
        let part = self.parts.text(text);
        self.chunk(vec![part], None, None, out);
    }

    /// Answer text, through the stop sequences.
    fn text(&mut self, text: &str, out: &mut Vec<u8>) -> Flow {
        let released = self.stop.push(text);
        self.send_text(&released.text, out);
        if released.stopped.is_none() {
            return Flow::Continue;
        }
        // The upstream's count is not known yet: estimate what the client received.
        let usage = usage_metadata(Usage {
            output: count_text(&self.text_sent),
            total: count_text(&self.text_sent),
            ..Usage::default()
        });
        self.chunk(Vec::new(), Some("STOP"), Some(usage), out);
        self.close(out);
        self.stopped = true;
        Flow::Stop
    }

    /// A piece of summary part `part` of the reasoning at `output_index`.
    fn summary_delta(
        &mut self,
        output_index: Option<u64>,
        part: Option<u64>,
        delta: &str,
        out: &mut Vec<u8>,
    ) {
        self.mark_streamed(output_index);
        if !self.thoughts || delta.is_empty() {
            return;
        }
        // Summary parts are separate paragraphs, as in `reasoning_summary`.
        let separator = match self.summary_at {
            Some((index, summary)) if index == output_index && summary != part => "\n\n",
            _ => "",
        };
        self.summary_at = Some((output_index, part));
        self.chunk(
            vec![thought(&format!("{separator}{delta}"))],
            None,
            None,
            out,
        );
    }

    fn item_done(&mut self, output_index: Option<u64>, item: &Value, out: &mut Vec<u8>) -> Flow {
        let streamed = self.streamed.contains(&output_index);
        match item.get("type").and_then(Value::as_str) {
            Some("reasoning") => {
                let summary = reasoning_summary(item);
                if self.thoughts && !streamed && !summary.is_empty() {
                    self.chunk(vec![thought(&summary)], None, None, out);
                }
                self.parts.reasoning(item);
            }
            Some("message") => {
                if !streamed && self.text(&message_text(item), out) == Flow::Stop {
                    return Flow::Stop;
                }
                let rest = self.stop.flush();
                self.send_text(&rest, out);
            }
            Some("function_call") => {
                let part = self.parts.call(item);
                self.chunk(vec![part], None, None, out);
            }
            _ => {}
        }
        Flow::Continue
    }

    /// The final response arrived: the last chunk, with why it ended and its usage.
    fn complete(&mut self, response: &Value, out: &mut Vec<u8>) {
        let rest = self.stop.flush();
        self.send_text(&rest, out);
        let parts = self.parts.leftover().into_iter().collect();
        let finish = finish_reason(Ending::of(response));
        let usage = usage_metadata(Usage::of(response));
        self.chunk(parts, Some(finish), Some(usage), out);
        self.close(out);
    }

    /// The answer failed: Google's error object, and nothing after it.
    fn fail(&mut self, failure: &StreamFailure, out: &mut Vec<u8>) {
        let mut error = Map::with_capacity(1);
        error.insert(
            "error".into(),
            Value::Object(error_object(failure.status, &failure.message)),
        );
        self.write(&Value::Object(error), out);
        self.close(out);
    }
}

impl StreamTranslator for GeminiStream {
    fn content_type(&self) -> &'static str {
        match self.framing {
            Framing::Array => "application/json",
            Framing::Sse | Framing::Whole => "text/event-stream",
        }
    }

    fn event(&mut self, event: &StreamEvent, out: &mut Vec<u8>) -> Flow {
        if self.ended {
            return if self.stopped {
                Flow::Stop
            } else {
                Flow::Continue
            };
        }
        if let Some(failure) = event.failure() {
            self.fail(failure, out);
            return Flow::Continue;
        }
        if self.id.is_none() {
            if let Some(id) = event.response().get("id").filter(|id| id.is_string()) {
                self.id = Some(response_id(Some(id)));
            }
        }
        match event {
            StreamEvent::ReasoningSummaryTextDelta {
                output_index,
                summary_index,
                delta,
            } => self.summary_delta(*output_index, *summary_index, delta, out),
            StreamEvent::OutputTextDelta {
                output_index,
                delta,
            }
            | StreamEvent::RefusalDelta {
                output_index,
                delta,
            } => {
                self.mark_streamed(*output_index);
                return self.text(delta, out);
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
