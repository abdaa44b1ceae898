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
pub(crate) mod messages;
pub(crate) mod responses;
pub(crate) mod sse;
pub(crate) mod stop;
#[cfg(test)]
pub(crate) mod testing;

use serde_json::{Map, Value};

pub(crate) use fields::{cut_short, parse_object};
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
}

impl Dialect {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Responses => "responses",
            Self::Chat => "chat",
            Self::Completions => "completions",
            Self::Messages => "messages",
        }
    }

    /// Whether errors take Anthropic's shape rather than OpenAI's.
    pub(crate) fn is_anthropic(self) -> bool {
        matches!(self, Self::Messages)
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
    /// One upstream event; appends frames to `out`.
    fn event(&mut self, event: &StreamEvent, out: &mut Vec<u8>) -> Flow;

    /// The upstream stream ended. `broken` says why when it ended without a terminal event
    /// (`response.completed`, `.incomplete`, `.failed`, `error`) because the transport failed;
    /// `None` when it closed normally (with or without a terminal event). Appends the closing
    /// frames; a stream that ended without a terminal event is reported as an error in the
    /// dialect.
    fn finish(&mut self, broken: Option<&str>, out: &mut Vec<u8>);
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
pub(crate) fn write_frame(out: &mut Vec<u8>, event: Option<&str>, data: &Value) {
    if let Some(event) = event {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(event.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(b"data: ");
    // Writing a `Value` into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, data);
    out.extend_from_slice(b"\n\n");
}

/// Seconds since the Unix epoch, for `created` fields.
pub(crate) fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}
