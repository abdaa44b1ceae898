//! Anthropic's message threads (`anthropic-beta: message-threads-2026-08-12`), for Messages
//! callers a Responses upstream serves.
//!
//! Both Anthropic SDKs' tool runners thread by default: the first turn says
//! `thread: {"type": "create"}`, and each later one `{"type": "continue", "previous_message_id"}`
//! with only the new messages (a `tool_result`, usually) and without the create-time `system`
//! and `tools`: the server holds the rest. The upstream keyward translates to holds nothing, so
//! keyward does: each threaded reply is kept ([`store`]) with what a continue of it needs (the
//! turn's request fields and the whole conversation, the reply included as the client received
//! it, thinking signatures and all: [`reply`]), and a continue is expanded to the stored
//! conversation plus its new messages before the normal translation. So no request reaches the
//! upstream without the calls its results answer.
//!
//! What a continue cannot be served from is answered as Anthropic does, with the
//! `details.error_code` the SDKs act on: `thread_not_found` (404; kept only in memory, for
//! [`THREAD_TTL`], within [`THREAD_MEMORY`], and per caller) makes them replay the whole
//! conversation as a new thread; `thread_already_continued` and `thread_continue_in_flight`
//! (400) too. An Anthropic API-key profile is sent the caller's own request: Anthropic keeps its
//! threads itself.

mod reply;
mod store;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use super::error::ErrorExtras;
use super::ApiError;
use crate::dialect::responses::StreamEvent;
use crate::dialect::{parse_object, Answer, Flow, StreamTranslator};
use reply::Accumulator;
use store::{Claim, Refusal, Thread};
pub(crate) use store::{Owner, ThreadStore};

/// How long a reply's thread is kept.
pub(crate) const THREAD_TTL: Duration = Duration::from_secs(60 * 60);
/// How much memory all threads together may take (their JSON text).
pub(crate) const THREAD_MEMORY: usize = 256 << 20;
/// The request fields a thread keeps from its `create`: a `continue` must not send them.
const CREATE_ONLY: &[&str] = &["system", "tools"];
/// Fields of a turn that are not the thread's settings.
const PER_TURN: &[&str] = &["messages", "stream", "thread"];

/// A threaded Messages request, as a Responses upstream serves it.
pub(crate) enum Turn {
    /// A create: the request to translate (without `thread`), and what to keep of its answer.
    Threaded {
        request: Map<String, Value>,
        recording: Recording,
    },
    /// A continue, its thread claimed: [`Continued::expand`] makes it the request to translate.
    Continued(Continued),
    /// A continue keyward cannot serve: refused where a Responses upstream would serve it (an
    /// Anthropic upstream is sent the caller's own request). The model and stream flag route it.
    Refused {
        model: String,
        stream: bool,
        refusal: ApiError,
    },
}

/// What `thread` asks for.
enum Ask {
    Create,
    Continue { previous: String },
}

/// The threaded turn a Messages request body asks for, or `None` when it asks for none (or is
/// not an object: the translation says what is wrong with it).
pub(crate) fn turn(
    store: &Arc<ThreadStore>,
    owner: Option<Owner>,
    body: &[u8],
) -> Result<Option<Turn>, ApiError> {
    if !asks_for_thread(body) {
        return Ok(None);
    }
    let Ok(mut request) = parse_object(body) else {
        return Ok(None);
    };
    let ask = match request.remove("thread") {
        None | Some(Value::Null) => return Ok(None),
        Some(thread) => ask(&thread)?,
    };
    let owner = owner.unwrap_or_default();
    let previous = match ask {
        Ask::Create => {
            let recording = Recording::new(store.clone(), owner, &request, None);
            return Ok(Some(Turn::Threaded { request, recording }));
        }
        Ask::Continue { previous } => previous,
    };
    if let Some(field) = CREATE_ONLY
        .iter()
        .find(|f| request.get(**f).is_some_and(|v| !v.is_null()))
    {
        return Err(thread_error(
            StatusCode::BAD_REQUEST,
            "thread_fingerprint_mismatch",
            format!("`{field}` is kept by the thread from its `create`: a `continue` must not send it. To change it, start a new thread (`thread: {{\"type\": \"create\"}}` with the whole conversation)"),
        ));
    }
    let new_messages = match request.remove("messages") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(messages)) => messages,
        Some(_) => {
            return Err(ApiError {
                param: Some("messages".into()),
                ..ApiError::bad_request("`messages` must be an array of messages")
            })
        }
    };
    let claim = match store.claim(owner, &previous, Instant::now()) {
        Ok(claim) => claim,
        Err(refused) => {
            let model = crate::dialect::model_field(&request).map_err(ApiError::from)?;
            let stream = crate::dialect::stream_flag(&request).map_err(ApiError::from)?;
            return Ok(Some(Turn::Refused {
                model,
                stream,
                refusal: refusal(refused, &previous),
            }));
        }
    };
    Ok(Some(Turn::Continued(Continued {
        store: store.clone(),
        owner,
        claim,
        request,
        new_messages,
    })))
}

/// A continue whose thread is claimed, before it is expanded: the thread is up to a whole
/// request body, so the caller makes room for it ([`Continued::size`], [`Continued::work`]).
pub(crate) struct Continued {
    store: Arc<ThreadStore>,
    owner: Owner,
    claim: Claim,
    /// The continue's own fields, without `thread` and `messages`.
    request: Map<String, Value>,
    new_messages: Vec<Value>,
}

impl Continued {
    /// The thread's JSON text, in bytes.
    pub(crate) fn size(&self) -> usize {
        self.claim
            .thread()
            .map_or(0, |thread| thread.fields.len() + thread.messages.len())
    }

    /// The memory translating the thread takes, estimated as for a body of it.
    pub(crate) fn work(&self) -> usize {
        self.claim.thread().map_or(0, |thread| {
            super::memory::estimate(thread.fields.as_bytes())
                .saturating_add(super::memory::estimate(thread.messages.as_bytes()))
        })
    }

    /// The continue as its whole thread plus its new messages.
    pub(crate) fn expand(self) -> Result<(Map<String, Value>, Recording), ApiError> {
        let Self {
            store,
            owner,
            claim,
            request,
            new_messages,
        } = self;
        let expanded = claim
            .thread()
            .and_then(|thread| expand(thread, request, new_messages));
        let Some(expanded) = expanded else {
            // Threads are stored only as keyward wrote them.
            return Err(ApiError::upstream(
                "keyward's copy of the thread could not be read",
            ));
        };
        let recording = Recording::new(store, owner, &expanded, Some(claim));
        Ok((expanded, recording))
    }
}

/// Whether a request body has a `thread` field (not null), told without building its tree: most
/// requests have none, and a Claude Code request is hundreds of KB.
fn asks_for_thread(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Top<'a> {
        // `null` reads as `None`, as no thread at all.
        #[serde(borrow, default)]
        thread: Option<&'a RawValue>,
    }
    // A derived struct also reads from an array: only an object is a request.
    body.trim_ascii_start().first() == Some(&b'{')
        && serde_json::from_slice::<Top<'_>>(body).is_ok_and(|top| top.thread.is_some())
}

fn ask(thread: &Value) -> Result<Ask, ApiError> {
    let invalid = |message: &str| ApiError {
        param: Some("thread".into()),
        ..ApiError::bad_request(message)
    };
    match thread.get("type").and_then(Value::as_str) {
        Some("create") => Ok(Ask::Create),
        Some("continue") => match thread.get("previous_message_id").and_then(Value::as_str) {
            Some(previous) if !previous.is_empty() => Ok(Ask::Continue {
                previous: previous.to_string(),
            }),
            _ => Err(invalid("a `continue` thread names the reply it continues: `thread.previous_message_id`")),
        },
        _ => Err(invalid(
            "`thread` must be `{\"type\": \"create\"}` or `{\"type\": \"continue\", \"previous_message_id\": \"msg_…\"}`",
        )),
    }
}

/// A turn's fields a thread keeps: all but the messages, the stream flag and `thread`.
fn thread_fields(request: &Map<String, Value>) -> Map<String, Value> {
    request
        .iter()
        .filter(|(key, _)| !PER_TURN.contains(&key.as_str()))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect()
}

/// A continue as the whole request: the thread's fields, this turn's over them, and the
/// thread's conversation followed by this turn's messages.
fn expand(
    thread: &Thread,
    turn: Map<String, Value>,
    new_messages: Vec<Value>,
) -> Option<Map<String, Value>> {
    let mut request: Map<String, Value> = serde_json::from_str(&thread.fields).ok()?;
    let mut messages: Vec<Value> = serde_json::from_str(&thread.messages).ok()?;
    request.extend(turn);
    messages.extend(new_messages);
    request.insert("messages".into(), Value::Array(messages));
    Some(request)
}

/// An error Anthropic's SDKs read by its `details.error_code`.
fn thread_error(status: StatusCode, code: &str, message: String) -> ApiError {
    ApiError {
        status,
        extras: Some(Box::new(ErrorExtras {
            details: Some(json!({ "error_code": code })),
            ..Default::default()
        })),
        code: Some(code.into()),
        ..ApiError::bad_request(message)
    }
}

fn refusal(refused: Refusal, previous: &str) -> ApiError {
    let previous = crate::dialect::cut_short(previous);
    match refused {
        Refusal::NotFound => thread_error(
            StatusCode::NOT_FOUND,
            "thread_not_found",
            format!("keyward holds no thread for `previous_message_id` {previous}: it keeps threads in memory only, for an hour, per gateway key (and not across a restart). Replay the whole conversation with `thread: {{\"type\": \"create\"}}`"),
        ),
        Refusal::AlreadyContinued => thread_error(
            StatusCode::BAD_REQUEST,
            "thread_already_continued",
            format!("the thread of {previous} was already continued: continue from the reply to that turn, or replay the conversation as a new thread"),
        ),
        Refusal::InFlight => thread_error(
            StatusCode::BAD_REQUEST,
            "thread_continue_in_flight",
            format!("a continue of {previous} is being answered now: wait for it, or replay the conversation as a new thread"),
        ),
    }
}

/// What to keep of a threaded turn's answer: its request fields and conversation, the reply to
/// add, and, for a continue, the thread it continued (given back if no reply comes).
pub(crate) struct Recording {
    store: Arc<ThreadStore>,
    owner: Owner,
    fields: Map<String, Value>,
    messages: Vec<Value>,
    claim: Option<Claim>,
}

impl Recording {
    /// What to keep of the answer to `request` (a create's, or a continue expanded).
    fn new(
        store: Arc<ThreadStore>,
        owner: Owner,
        request: &Map<String, Value>,
        claim: Option<Claim>,
    ) -> Self {
        Self {
            store,
            owner,
            fields: thread_fields(request),
            messages: match request.get("messages") {
                Some(Value::Array(messages)) => messages.clone(),
                _ => Vec::new(),
            },
            claim,
        }
    }

    /// `answer`, keeping the reply it gives (streamed or not) as this turn's thread.
    pub(crate) fn answer(self, answer: Box<dyn Answer>) -> Box<dyn Answer> {
        Box::new(Recorded {
            inner: answer,
            recording: Mutex::new(Some(self)),
        })
    }

    /// The reply arrived whole: the thread it ends is kept under its id, and the thread it
    /// continued is marked continued.
    fn keep(mut self, message: &Value) {
        let id = message
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty());
        let (Some(id), Some(turn)) = (id, reply::as_turn(message)) else {
            return;
        };
        self.messages.push(turn);
        let thread = Thread {
            fields: Value::Object(std::mem::take(&mut self.fields)).to_string(),
            messages: Value::Array(std::mem::take(&mut self.messages)).to_string(),
        };
        self.store.insert(self.owner, id, thread, Instant::now());
        if let Some(claim) = self.claim.take() {
            claim.continued();
        }
    }
}

/// An answer whose reply is kept as a thread.
struct Recorded {
    inner: Box<dyn Answer>,
    /// Taken by the one reply given.
    recording: Mutex<Option<Recording>>,
}

impl Answer for Recorded {
    fn stream(self: Box<Self>) -> Box<dyn StreamTranslator> {
        let recording = self
            .recording
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Box::new(RecordedStream {
            inner: self.inner.stream(),
            recording,
            accumulator: Accumulator::default(),
        })
    }

    fn reply(&self, response: &Value) -> Value {
        let reply = self.inner.reply(response);
        let recording = self
            .recording
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(recording) = recording {
            recording.keep(&reply);
        }
        reply
    }
}

/// A stream whose frames, as they pass, add up to the reply to keep (at `message_stop`; a
/// stream cut before it keeps nothing).
struct RecordedStream {
    inner: Box<dyn StreamTranslator>,
    recording: Option<Recording>,
    accumulator: Accumulator,
}

impl RecordedStream {
    fn read(&mut self, frames: &[u8]) {
        if self.recording.is_none() || frames.is_empty() {
            return;
        }
        if let Some(message) = self.accumulator.push(frames) {
            if let Some(recording) = self.recording.take() {
                recording.keep(&message);
            }
        }
    }
}

impl StreamTranslator for RecordedStream {
    fn event(&mut self, event: &StreamEvent, out: &mut Vec<u8>) -> Flow {
        let start = out.len();
        let flow = self.inner.event(event, out);
        self.read(out.get(start..).unwrap_or_default());
        flow
    }

    fn finish(&mut self, broken: Option<&str>, out: &mut Vec<u8>) {
        let start = out.len();
        self.inner.finish(broken, out);
        self.read(out.get(start..).unwrap_or_default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::Dialect;

    const OWNER: Owner = [7; 32];

    fn store() -> Arc<ThreadStore> {
        ThreadStore::new(THREAD_TTL, 1 << 20, 1 << 20)
    }

    fn request(body: Value) -> Result<Option<Turn>, ApiError> {
        turn(
            &STORE.with(Clone::clone),
            Some(OWNER),
            body.to_string().as_bytes(),
        )
    }

    thread_local! {
        static STORE: Arc<ThreadStore> = store();
    }

    fn threaded(turn: Result<Option<Turn>, ApiError>) -> (Map<String, Value>, Recording) {
        match turn {
            Ok(Some(Turn::Continued(continued))) => continued
                .expand()
                .unwrap_or_else(|error| panic!("error: {}", error.message)),
            Ok(Some(Turn::Threaded { request, recording })) => (request, recording),
            Ok(Some(Turn::Refused { refusal, .. })) => panic!("refused: {}", refusal.message),
            Ok(None) => panic!("not threaded"),
            Err(error) => panic!("error: {}", error.message),
        }
    }

    async fn rendered(error: ApiError) -> (u16, Value) {
        let response = error.render(Dialect::Messages);
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap_or_default();
        (status, serde_json::from_slice(&body).unwrap_or_default())
    }

    fn reply(id: &str, content: Value) -> Value {
        json!({"id": id, "type": "message", "role": "assistant", "content": content})
    }

    /// A create is served as it came (less `thread`) and its reply kept; a continue of it is the
    /// create's system and tools, the whole conversation (the reply with its thinking
    /// signature included) and the continue's new messages; an empty continue is the thread.
    #[test]
    fn a_continue_expands_to_its_thread() {
        let create = json!({
            "model": "claude-sonnet-4-5", "max_tokens": 1024, "system": "Be brief.",
            "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}],
            "thread": {"type": "create"}, "stream": true,
            "messages": [{"role": "user", "content": "weather?"}],
        });
        let (served, recording) = threaded(request(create.clone()));
        let mut expected = create.as_object().cloned().unwrap_or_default();
        expected.remove("thread");
        assert_eq!(served, expected);
        let calls = json!([
            {"type": "thinking", "thinking": "", "signature": "kwsig1.blob"},
            {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
        ]);
        recording.keep(&reply("msg_1", calls.clone()));

        let result = json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "sunny"}]});
        let (served, recording) = threaded(request(json!({
            "model": "claude-sonnet-4-5", "max_tokens": 2048, "stream": false,
            "thread": {"type": "continue", "previous_message_id": "msg_1"},
            "messages": [result],
        })));
        assert_eq!(
            Value::Object(served),
            json!({
                "model": "claude-sonnet-4-5", "max_tokens": 2048, "system": "Be brief.",
                "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}],
                "stream": false,
                "messages": [
                    {"role": "user", "content": "weather?"},
                    {"role": "assistant", "content": calls},
                    result,
                ],
            })
        );
        recording.keep(&reply("msg_2", json!([{"type": "text", "text": "Sunny."}])));
        let (served, _) = threaded(request(json!({
            "model": "claude-sonnet-4-5", "max_tokens": 2048,
            "thread": {"type": "continue", "previous_message_id": "msg_2"}, "messages": [],
        })));
        assert_eq!(served["messages"].as_array().map(Vec::len), Some(4));
        assert_eq!(served["system"], "Be brief.");
    }

    /// What a continue cannot be served from is refused with the code the SDKs act on.
    #[tokio::test]
    async fn refusals_carry_the_codes_the_sdks_read() {
        let (_, recording) = threaded(request(json!({
            "model": "claude-sonnet-4-5", "max_tokens": 10, "thread": {"type": "create"},
            "messages": [{"role": "user", "content": "hi"}],
        })));
        recording.keep(&reply("msg_r", json!([{"type": "text", "text": "hello"}])));
        let continue_of = |id: &str| json!({"model": "claude-sonnet-4-5", "max_tokens": 10, "thread": {"type": "continue", "previous_message_id": id}, "messages": [{"role": "user", "content": "and?"}]});
        let refused = |turn: Result<Option<Turn>, ApiError>| match turn {
            Ok(Some(Turn::Refused { refusal, model, .. })) => {
                assert_eq!(model, "claude-sonnet-4-5");
                refusal
            }
            _ => panic!("not refused"),
        };
        let in_flight = request(continue_of("msg_r"));
        let (status, body) = rendered(refused(request(continue_of("msg_r")))).await;
        assert_eq!(
            (status, &body["error"]["details"]["error_code"]),
            (400, &json!("thread_continue_in_flight"))
        );
        let (_, recording) = threaded(in_flight);
        recording.keep(&reply("msg_s", json!([])));
        let (status, body) = rendered(refused(request(continue_of("msg_r")))).await;
        assert_eq!(
            (status, &body["error"]["details"]["error_code"]),
            (400, &json!("thread_already_continued"))
        );
        let (status, body) = rendered(refused(request(continue_of("msg_unknown")))).await;
        assert_eq!(status, 404);
        assert_eq!(body["error"]["type"], "not_found_error");
        assert_eq!(
            body["error"]["details"],
            json!({"error_code": "thread_not_found"})
        );
        // Another caller's thread is not found either.
        let other = turn(
            &STORE.with(Clone::clone),
            None,
            continue_of("msg_s").to_string().as_bytes(),
        );
        let (status, _) = rendered(refused(other)).await;
        assert_eq!(status, 404);

        let mut with_system = continue_of("msg_s");
        with_system["system"] = json!("Be brief.");
        let Err(error) = request(with_system) else {
            panic!("a continue with system was taken");
        };
        let (status, body) = rendered(error).await;
        assert_eq!(
            (status, &body["error"]["details"]["error_code"]),
            (400, &json!("thread_fingerprint_mismatch"))
        );
        for thread in [
            json!("create"),
            json!({"type": "fork"}),
            json!({"type": "continue"}),
        ] {
            let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 10, "thread": thread, "messages": []});
            let Err(error) = request(body) else {
                panic!("{thread} was taken");
            };
            assert_eq!(error.param.as_deref(), Some("thread"));
        }
        assert!(matches!(
            request(json!({"model": "m", "messages": [], "thread": null})),
            Ok(None)
        ));
        assert!(matches!(
            request(json!({"model": "m", "messages": []})),
            Ok(None)
        ));
    }

    /// A stream's reply is kept once it reaches `message_stop`; a cut stream keeps nothing and
    /// gives the continued thread back.
    #[test]
    fn only_a_finished_stream_is_kept() {
        use crate::dialect::testing::{fixture_events, run};
        let store = store();
        let create = json!({"model": "claude-sonnet-4-5", "max_tokens": 10, "thread": {"type": "create"}, "stream": true, "messages": [{"role": "user", "content": "hi"}]});
        let (request, recording) = threaded(turn(&store, None, create.to_string().as_bytes()));
        let answer = crate::dialect::messages::translate_request(request)
            .ok()
            .and_then(|t| t.answer)
            .map(|answer| recording.answer(answer))
            .unwrap_or_else(|| panic!("no answer"));
        let frames = run(answer.stream(), &fixture_events("text"), None);
        let id = frames
            .split("\"id\":\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_default()
            .to_string();
        assert!(id.starts_with("msg_"), "{frames}");

        let continue_of = json!({"model": "claude-sonnet-4-5", "max_tokens": 10, "stream": true, "thread": {"type": "continue", "previous_message_id": id}, "messages": [{"role": "user", "content": "more"}]});
        let (request, recording) = threaded(turn(&store, None, continue_of.to_string().as_bytes()));
        assert_eq!(
            request["messages"][1]["content"][0]["text"],
            "Hello, world."
        );
        let answer = crate::dialect::messages::translate_request(request)
            .ok()
            .and_then(|t| t.answer)
            .map(|answer| recording.answer(answer))
            .unwrap_or_else(|| panic!("no answer"));
        let mut cut = fixture_events("text");
        cut.pop();
        run(answer.stream(), &cut, Some("reset"));
        assert!(
            matches!(
                turn(&store, None, continue_of.to_string().as_bytes()),
                Ok(Some(Turn::Continued(_)))
            ),
            "a cut stream gives its thread back"
        );
    }
}
