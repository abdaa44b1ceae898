//! OpenAI's chunked answers (`chat.completion.chunk`, legacy `text_completion`): the frames both
//! OpenAI dialects stream, how an answer is named, dated and ended, and its usage. Chat and
//! legacy completions differ only in how a piece of text is framed ([`Shape`]); what only chat
//! streams is in `chat::stream`.

use serde::Serialize;
use serde_json::{json, Value};

use super::count_tokens::count_text;
use super::responses::{Ending, StreamEvent, StreamFailure, Usage};
use super::stop::StopMatcher;
use super::{unix_now, write_frame, Flow, StreamTranslator};

/// A chunk frame, written without a JSON tree: a stream is mostly these, and a tree of each (maps
/// with hashed keys) cost more than the rest of a translation. Fields in the order OpenAI sends.
#[derive(Serialize)]
struct Chunk<'a, C> {
    id: &'a str,
    object: &'static str,
    created: i64,
    model: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    service_tier: Option<&'static str>,
    system_fingerprint: (),
    choices: C,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Value>,
}

/// A chat chunk's one choice; `()` writes `null`.
#[derive(Serialize)]
struct ChatChoice<D> {
    index: u32,
    delta: D,
    logprobs: (),
    finish_reason: (),
}

#[derive(Serialize)]
struct ContentDelta<'a> {
    content: &'a str,
}

/// A legacy completion chunk's one choice.
#[derive(Serialize)]
struct TextChoice<'a> {
    text: &'a str,
    index: u32,
    logprobs: (),
    finish_reason: (),
}

/// The `finish_reason` of a response that was not cut by a stop sequence.
pub(crate) fn finish_reason(ending: Ending, called_tools: bool) -> &'static str {
    match ending {
        Ending::Length => "length",
        Ending::ContentFilter => "content_filter",
        Ending::Completed if called_tools => "tool_calls",
        Ending::Completed => "stop",
    }
}

/// The answer's id: the upstream response's, under this dialect's prefix (so logs on both sides
/// match), or a random one when the upstream gave none.
pub(crate) fn answer_id(shape: Shape, response: &Value) -> String {
    let id = match response.get("id").and_then(Value::as_str) {
        Some(id) if !id.is_empty() => id.strip_prefix("resp_").unwrap_or(id).to_string(),
        _ => format!(
            "{:016x}{:08x}",
            rand::random::<u64>(),
            rand::random::<u32>()
        ),
    };
    format!("{}{id}", shape.id_prefix())
}

/// The response's creation time, or now.
pub(crate) fn created_at(response: &Value) -> i64 {
    response
        .get("created_at")
        .and_then(Value::as_i64)
        .unwrap_or_else(unix_now)
}

/// The `service_tier` a chat answer names: the Codex backend serves at its default tier.
pub(crate) const SERVICE_TIER: &str = "default";

/// The two OpenAI answer shapes keyward speaks besides Responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// `chat.completion` objects and `chat.completion.chunk` deltas.
    Chat,
    /// Legacy `text_completion` objects, streamed as `text` pieces.
    Completion,
}

impl Shape {
    fn id_prefix(self) -> &'static str {
        match self {
            Self::Chat => "chatcmpl-",
            Self::Completion => "cmpl-",
        }
    }

    fn chunk_object(self) -> &'static str {
        match self {
            Self::Chat => "chat.completion.chunk",
            Self::Completion => "text_completion",
        }
    }

    /// The answer's `usage` object.
    pub(super) fn usage(self, usage: Usage) -> Value {
        match self {
            // Every count the API sends, those no Codex answer has at 0.
            Self::Chat => json!({
                "prompt_tokens": usage.input,
                "completion_tokens": usage.output,
                "total_tokens": usage.total,
                "prompt_tokens_details": {"cached_tokens": usage.cached_input, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": usage.reasoning,
                    "audio_tokens": 0,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                },
            }),
            Self::Completion => json!({
                "prompt_tokens": usage.input,
                "completion_tokens": usage.output,
                "total_tokens": usage.total,
            }),
        }
    }
}

/// Turns Responses events into OpenAI chunks (`chat.completion.chunk`, or legacy
/// `text_completion`), as they arrive. Legacy completions stream with it alone; chat wraps it to
/// stream reasoning, refusals and tool calls too.
pub(crate) struct ChunkStream {
    shape: Shape,
    model: String,
    include_usage: bool,
    stop: StopMatcher,
    /// Text sent before the answer (legacy completions with `echo`).
    echo: Option<String>,
    /// Set by the first upstream event.
    id: String,
    created: i64,
    started: bool,
    /// The last frame was written; later events are ignored.
    ended: bool,
    /// The answer text sent, to estimate its tokens when a stop sequence ends the stream.
    sent: String,
}

impl ChunkStream {
    pub(super) fn new(
        shape: Shape,
        model: String,
        stops: Vec<String>,
        include_usage: bool,
    ) -> Self {
        Self {
            shape,
            model,
            include_usage,
            stop: StopMatcher::new(stops),
            echo: None,
            id: String::new(),
            created: 0,
            started: false,
            ended: false,
            sent: String::new(),
        }
    }

    /// Sends `prompt` before the answer.
    pub(super) fn with_echo(mut self, prompt: Option<String>) -> Self {
        self.echo = prompt;
        self
    }

    /// The events both shapes answer alike: a failure, the first event (which opens the answer),
    /// answer text, and the end (`called_tools`: whether the answer called tools, for its
    /// `finish_reason`). `None` for any other event, which only chat reads.
    pub(super) fn shared_event(
        &mut self,
        event: &StreamEvent,
        called_tools: bool,
        out: &mut Vec<u8>,
    ) -> Option<Flow> {
        if self.ended {
            return Some(Flow::Continue);
        }
        if let Some(failure) = event.failure() {
            self.fail(failure, out);
            return Some(Flow::Continue);
        }
        self.start(event.response(), out);
        match event {
            StreamEvent::OutputTextDelta { delta, .. } => Some(self.text(delta, out)),
            StreamEvent::Completed { response } | StreamEvent::Incomplete { response } => {
                self.flush_text(out);
                let finish = finish_reason(Ending::of(response), called_tools);
                self.end(finish, Usage::of(response), out);
                Some(Flow::Continue)
            }
            _ => None,
        }
    }

    /// The first event: fixes the answer's id and time (from the response it carries, if any),
    /// and opens the answer.
    fn start(&mut self, response: &Value, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        self.id = answer_id(self.shape, response);
        self.created = created_at(response);
        match self.shape {
            Shape::Chat => self.send_delta(json!({"role": "assistant", "content": ""}), out),
            Shape::Completion => {
                if let Some(prompt) = self.echo.take() {
                    self.send_text(&prompt, out);
                }
            }
        }
    }

    /// A chunk of this answer around `choices`.
    fn chunk<C: Serialize>(&self, choices: C) -> Chunk<'_, C> {
        Chunk {
            id: &self.id,
            object: self.shape.chunk_object(),
            created: self.created,
            model: &self.model,
            service_tier: (self.shape == Shape::Chat).then_some(SERVICE_TIER),
            system_fingerprint: (),
            choices,
            // OpenAI puts `usage: null` on every chunk but the last when usage is asked for.
            usage: self.include_usage.then_some(Value::Null),
        }
    }

    /// One chat `delta` chunk.
    pub(super) fn send_delta<D: Serialize>(&self, delta: D, out: &mut Vec<u8>) {
        let choice = ChatChoice {
            index: 0,
            delta,
            logprobs: (),
            finish_reason: (),
        };
        write_frame(out, None, &self.chunk([choice]));
    }

    fn send_text(&self, text: &str, out: &mut Vec<u8>) {
        if text.is_empty() {
            return;
        }
        match self.shape {
            Shape::Chat => self.send_delta(ContentDelta { content: text }, out),
            Shape::Completion => {
                let choice = TextChoice {
                    text,
                    index: 0,
                    logprobs: (),
                    finish_reason: (),
                };
                write_frame(out, None, &self.chunk([choice]));
            }
        }
    }

    /// Releases answer text through the stop sequences; `Flow::Stop` once one matched.
    fn text(&mut self, delta: &str, out: &mut Vec<u8>) -> Flow {
        let released = self.stop.push(delta);
        self.send_text(&released.text, out);
        self.sent.push_str(&released.text);
        if released.stopped.is_none() {
            return Flow::Continue;
        }
        // The upstream's usage will never arrive: the completion is estimated from what was
        // sent, the prompt is unknown.
        let completion = count_text(&self.sent);
        let usage = Usage {
            output: completion,
            total: completion,
            ..Usage::default()
        };
        self.end("stop", usage, out);
        Flow::Stop
    }

    /// Sends text the stop sequences held back, when something else comes after it.
    pub(super) fn flush_text(&mut self, out: &mut Vec<u8>) {
        let held = self.stop.flush();
        self.send_text(&held, out);
        self.sent.push_str(&held);
    }

    /// The closing chunk, the usage chunk when asked for, and `[DONE]`.
    fn end(&mut self, finish: &str, usage: Usage, out: &mut Vec<u8>) {
        let choice = match self.shape {
            Shape::Chat => {
                json!({"index": 0, "delta": {}, "logprobs": null, "finish_reason": finish})
            }
            Shape::Completion => {
                json!({"text": "", "index": 0, "logprobs": null, "finish_reason": finish})
            }
        };
        write_frame(out, None, &self.chunk([choice]));
        if self.include_usage {
            let mut chunk = self.chunk([(); 0]);
            chunk.usage = Some(self.shape.usage(usage));
            write_frame(out, None, &chunk);
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
        self.ended = true;
    }

    /// An error chunk, which OpenAI's SDKs raise on; no `[DONE]` follows it.
    fn fail(&mut self, failure: &StreamFailure, out: &mut Vec<u8>) {
        write_frame(out, None, &json!({"error": failure.openai_error()}));
        self.ended = true;
    }
}

impl StreamTranslator for ChunkStream {
    fn event(&mut self, event: &StreamEvent, out: &mut Vec<u8>) -> Flow {
        self.shared_event(event, false, out)
            .unwrap_or(Flow::Continue)
    }

    fn finish(&mut self, broken: Option<&str>, out: &mut Vec<u8>) {
        if !self.ended {
            self.fail(&StreamFailure::cut_short(broken), out);
        }
    }
}
