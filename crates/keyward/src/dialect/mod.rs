//! The API dialects clients speak to keyward, translated to and from the public OpenAI Responses
//! API, which is what every upstream keyward knows is reached through.
//!
//! Everything here is pure: request bytes in, a Responses request out; Responses stream events
//! in, the client's frames out. No HTTP, no I/O, no provider knowledge (what the Codex backend
//! refuses lives in `codex::backend`), so each translator is unit-tested on its own and fuzzed.
//!
//! Per dialect, a module offers `translate(body) -> Translated`: the Responses request, plus an
//! [`Answer`] that knows how to speak back to this client: a [`StreamTranslator`] for a streamed
//! answer, or one reply object from the assembled Responses object for a non-streamed one.

#[cfg(test)]
mod acceptance;
pub(crate) mod chat;
mod chunks;
pub(crate) mod completions;
pub(crate) mod count_tokens;
mod draft;
mod fields;
pub(crate) mod gemini;
pub(crate) mod messages;
pub(crate) mod responses;
pub(crate) mod sse;
pub(crate) mod stop;
#[cfg(test)]
pub(crate) mod testing;

use serde_json::{Map, Value};

pub(crate) use fields::{cut_short, model_field, parse_object, stream_flag};
use responses::StreamEvent;

/// The dialect a client speaks, which decides the shape of every answer, errors included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// OpenAI Responses (`/v1/responses`).
    Responses,
    /// OpenAI Chat Completions (`/v1/chat/completions`).
    Chat,
    /// OpenAI legacy text completions (`/v1/completions`).
    Completions,
    /// Anthropic Messages (`/v1/messages`).
    Messages,
    /// Google's Gemini API (`/v1beta/models/{model}:generateContent`, ...).
    Gemini,
}

impl Dialect {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Responses => "responses",
            Self::Chat => "chat",
            Self::Completions => "completions",
            Self::Messages => "messages",
            Self::Gemini => "gemini",
        }
    }

    /// Whether errors take Anthropic's shape rather than OpenAI's.
    pub(crate) fn is_anthropic(self) -> bool {
        matches!(self, Self::Messages)
    }
}

/// A model endpoint as its route names it: the dialect, and what the path says that the body
/// does not (Gemini names the model and whether to stream in its path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// A dialect whose body says everything.
    Plain(Dialect),
    Gemini(gemini::Call),
}

impl Endpoint {
    pub(crate) fn dialect(&self) -> Dialect {
        match self {
            Self::Plain(dialect) => *dialect,
            Self::Gemini(_) => Dialect::Gemini,
        }
    }

    /// The caller's body as a Responses request.
    pub(crate) fn translate(&self, body: &[u8]) -> Result<Translated, Invalid> {
        match self {
            Self::Plain(Dialect::Responses) => responses::translate(body),
            Self::Plain(Dialect::Chat) => chat::translate(body),
            Self::Plain(Dialect::Completions) => completions::translate(body),
            Self::Plain(Dialect::Messages) => messages::translate(body),
            Self::Gemini(call) => gemini::translate(call, body),
            Self::Plain(Dialect::Gemini) => Err(Invalid::new(
                "a Gemini request needs its path: POST /v1beta/models/{model}:generateContent",
            )),
        }
    }
}

/// A client request translated into the public Responses API. `B` is the request body: a tree
/// as translators build it, or whatever the gateway carries it as.
pub(crate) struct Translated<B = Map<String, Value>> {
    /// The Responses request body. Its `model` is still the name the client asked for.
    pub body: B,
    /// The model name the client asked for, echoed in the answer.
    pub model: String,
    /// Whether the client asked for a streamed answer.
    pub stream: bool,
    /// Client fields with no Responses equivalent, dropped (reported to the client), by the
    /// client's own names.
    pub dropped: Vec<String>,
    /// `(Responses field, client field)` for fields carried under another name, so a field the
    /// upstream cannot honour is reported by the name the client used.
    pub renamed: Vec<(&'static str, &'static str)>,
    /// How to answer this client; `None` for the Responses dialect, whose answer is the
    /// upstream's own (passed through, never re-encoded).
    pub answer: Option<Box<dyn Answer>>,
}

impl<B> Translated<B> {
    /// The same request with its body carried as `wrap` makes it.
    pub(crate) fn map_body<C>(self, wrap: impl FnOnce(B) -> C) -> Translated<C> {
        Translated {
            body: wrap(self.body),
            model: self.model,
            stream: self.stream,
            dropped: self.dropped,
            renamed: self.renamed,
            answer: self.answer,
        }
    }
}

impl<B> std::fmt::Debug for Translated<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Translated")
            .field("model", &self.model)
            .field("stream", &self.stream)
            .field("dropped", &self.dropped)
            .finish_non_exhaustive()
    }
}

/// The client's name for a field it sent under another name (`renamed` as in [`Translated`]).
pub(crate) fn client_name<'a>(
    renamed: &'a [(&'static str, &'static str)],
    field: &'a str,
) -> &'a str {
    renamed
        .iter()
        .find(|(ours, _)| *ours == field)
        .map_or(field, |(_, theirs)| theirs)
}

/// A request keyward refuses before sending anything: a 400 in the caller's dialect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invalid {
    pub message: String,
    /// The offending field, as a path (`messages[2].content`), when there is one.
    pub param: Option<String>,
}

impl Invalid {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            param: None,
        }
    }

    pub(crate) fn at(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            param: Some(param.into()),
        }
    }
}

/// Whether a stream translator wants more upstream events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    /// The translator wrote its last frame (a stop sequence matched): stop reading upstream.
    Stop,
}

/// Turns the upstream's Responses event stream into one client's frames, incrementally: every
/// event is translated as it arrives, nothing is held back except what a stop sequence needs.
pub(crate) trait StreamTranslator: Send {
    /// The answer's content type: server-sent events, unless the dialect frames its stream
    /// otherwise (Gemini's JSON array).
    fn content_type(&self) -> &'static str {
        "text/event-stream"
    }

    /// One upstream event; appends frames to `out`.
    fn event(&mut self, event: &StreamEvent, out: &mut Vec<u8>) -> Flow;

    /// The upstream stream ended. `broken` says why when it ended without a terminal event
    /// (`response.completed`, `.incomplete`, `.failed`, `error`) because the transport failed;
    /// `None` when it closed normally (with or without a terminal event). Appends the closing
    /// frames; a stream that ended without a terminal event is reported as an error in the
    /// dialect.
    fn finish(&mut self, broken: Option<&str>, out: &mut Vec<u8>);
}

/// Turns the upstream's server-sent events into one client's frames, as they arrive: a
/// [`StreamTranslator`] over the typed events, or a translator that needs each event whole.
pub(crate) trait SseTranslator: Send {
    /// The answer's content type (as for [`StreamTranslator::content_type`]).
    fn content_type(&self) -> &'static str {
        "text/event-stream"
    }

    /// One upstream event; appends frames to `out`.
    fn event(&mut self, event: &sse::Event, out: &mut Vec<u8>) -> Flow;

    /// The upstream stream ended (`broken`: as for [`StreamTranslator::finish`]).
    fn finish(&mut self, broken: Option<&str>, out: &mut Vec<u8>);
}

impl SseTranslator for Box<dyn StreamTranslator> {
    fn content_type(&self) -> &'static str {
        StreamTranslator::content_type(self.as_ref())
    }

    fn event(&mut self, event: &sse::Event, out: &mut Vec<u8>) -> Flow {
        match responses::parse_event(event) {
            Some(event) => StreamTranslator::event(self.as_mut(), &event, out),
            None => Flow::Continue,
        }
    }

    fn finish(&mut self, broken: Option<&str>, out: &mut Vec<u8>) {
        StreamTranslator::finish(self.as_mut(), broken, out);
    }
}

/// How to speak back to one client.
pub(crate) trait Answer: Send {
    /// The streaming translator for this request.
    fn stream(self: Box<Self>) -> Box<dyn StreamTranslator>;

    /// The non-streamed answer, from the assembled Responses object (status `completed` or
    /// `incomplete`).
    fn reply(&self, response: &Value) -> Value;
}

/// Appends one server-sent event frame: `event:` (when named) and a one-line `data:`.
pub(crate) fn write_frame<T: serde::Serialize + ?Sized>(
    out: &mut Vec<u8>,
    event: Option<&str>,
    data: &T,
) {
    // Writing JSON into a Vec cannot fail: keyward's frames have string keys only.
    write_frame_with(out, event, |out| {
        let _ = serde_json::to_writer(out, data);
    });
}

/// [`write_frame`] with the data (one line of JSON) written by `write`.
pub(crate) fn write_frame_with(
    out: &mut Vec<u8>,
    event: Option<&str>,
    write: impl FnOnce(&mut Vec<u8>),
) {
    // A name that would break its line (an upstream's event type may be any string) is left
    // out: the data names the event too.
    if let Some(event) = event.filter(|e| memchr::memchr2(b'\n', b'\r', e.as_bytes()).is_none()) {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(event.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(b"data: ");
    write(out);
    out.extend_from_slice(b"\n\n");
}

/// Seconds since the Unix epoch, for `created` fields.
pub(crate) fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}
