//! The soak's clients: requests in every dialect keyward serves (Responses, Chat Completions,
//! Anthropic Messages, legacy completions), streamed and not, some with a tool, each answer
//! checked whole; a failure is classified by what the client saw.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use rand::rngs::StdRng;
use rand::Rng;
use serde_json::{json, Value};

use crate::timeline::{Failure, Symptom, PROFILES};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Dialect {
    Responses,
    Chat,
    Messages,
    Completions,
}

impl Dialect {
    pub(crate) const ALL: [Dialect; 4] = [
        Dialect::Responses,
        Dialect::Chat,
        Dialect::Messages,
        Dialect::Completions,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Responses => "responses",
            Self::Chat => "chat",
            Self::Messages => "messages",
            Self::Completions => "completions",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Self::Responses => "/v1/responses",
            Self::Chat => "/v1/chat/completions",
            Self::Messages => "/v1/messages",
            Self::Completions => "/v1/completions",
        }
    }
}

/// One kind of request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Shape {
    pub(crate) dialect: Dialect,
    pub(crate) stream: bool,
    pub(crate) tools: bool,
}

const TOOL: &str = "get_weather";

impl Shape {
    pub(crate) fn random(rng: &mut StdRng) -> Self {
        let dialect = Dialect::ALL
            .get(rng.random_range(0..Dialect::ALL.len()))
            .copied()
            .unwrap_or(Dialect::Chat);
        Self {
            dialect,
            stream: rng.random_bool(0.5),
            // Legacy completions have no tools.
            tools: dialect != Dialect::Completions && rng.random_bool(0.15),
        }
    }

    pub(crate) fn label(self) -> String {
        format!(
            "{}{}{}",
            self.dialect.name(),
            if self.stream { " streamed" } else { "" },
            if self.tools { " with a tool" } else { "" }
        )
    }

    pub(crate) fn path(self) -> &'static str {
        self.dialect.path()
    }

    /// The request body: "ping" answers "pong"; with a tool, `[[tool]]` makes the mock call it.
    pub(crate) fn body(self) -> Value {
        let prompt = if self.tools {
            "What is the weather in Paris? [[tool]]"
        } else {
            "ping"
        };
        let schema = json!({
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        });
        let mut body = match self.dialect {
            Dialect::Responses => json!({"model": "gpt-6.1-sol", "input": prompt}),
            Dialect::Chat => json!({
                "model": "gpt-6.1-sol",
                "messages": [{"role": "user", "content": prompt}],
            }),
            Dialect::Messages => json!({
                "model": "claude-sonnet-4-5",
                "max_tokens": 256,
                "messages": [{"role": "user", "content": prompt}],
            }),
            Dialect::Completions => json!({"model": "gpt-6.1-sol", "prompt": prompt}),
        };
        body["stream"] = json!(self.stream);
        if self.tools {
            body["tools"] = match self.dialect {
                Dialect::Responses => {
                    json!([{"type": "function", "name": TOOL, "parameters": schema}])
                }
                Dialect::Chat => {
                    json!([{"type": "function", "function": {"name": TOOL, "parameters": schema}}])
                }
                Dialect::Messages => {
                    json!([{"name": TOOL, "description": "The weather in a city.", "input_schema": schema}])
                }
                Dialect::Completions => Value::Null,
            };
        }
        body
    }
}

/// The `data:` payloads and `event:` names of an event stream, in order.
fn sse(body: &str) -> (Vec<&str>, Vec<&str>) {
    let mut data = Vec::new();
    let mut events = Vec::new();
    for line in body.lines() {
        if let Some(payload) = line.strip_prefix("data:") {
            data.push(payload.trim());
        } else if let Some(name) = line.strip_prefix("event:") {
            events.push(name.trim());
        }
    }
    (data, events)
}

fn json_payloads(data: &[&str]) -> Vec<Value> {
    data.iter()
        .filter(|d| **d != "[DONE]")
        .filter_map(|d| serde_json::from_str(d).ok())
        .collect()
}

/// What an answer said: its text, the tools it called, how it ended.
#[derive(Debug, Default, PartialEq, Eq)]
struct Said {
    text: String,
    calls: Vec<String>,
    ended: Option<String>,
}

/// Checks a 200 answer whole; `Err` says what is wrong with it.
pub(crate) fn check_answer(shape: Shape, body: &str) -> Result<(), String> {
    let said = if shape.stream {
        read_stream(shape.dialect, body)?
    } else {
        let value: Value = serde_json::from_str(body).map_err(|e| format!("not JSON ({e})"))?;
        read_object(shape.dialect, &value)?
    };
    if shape.tools {
        if !said.calls.iter().any(|c| c == TOOL) {
            return Err(format!("no call of {TOOL}: {said:?}"));
        }
    } else if said.text != "pong" {
        return Err(format!("expected the text \"pong\": {said:?}"));
    }
    let expected_end = match (shape.dialect, shape.tools) {
        (Dialect::Responses, _) => "completed",
        (Dialect::Chat, true) => "tool_calls",
        (Dialect::Messages, true) => "tool_use",
        (Dialect::Messages, false) => "end_turn",
        (Dialect::Chat | Dialect::Completions, _) => "stop",
    };
    match said.ended.as_deref() {
        Some(end) if end == expected_end => Ok(()),
        other => Err(format!(
            "ended {other:?}, expected {expected_end}: {said:?}"
        )),
    }
}

fn responses_output(response: &Value) -> Said {
    let mut said = Said {
        ended: response["status"].as_str().map(str::to_owned),
        ..Said::default()
    };
    for item in response["output"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        match item["type"].as_str() {
            Some("message") => {
                for part in item["content"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                {
                    said.text
                        .push_str(part["text"].as_str().unwrap_or_default());
                }
            }
            Some("function_call") => {
                said.calls
                    .push(item["name"].as_str().unwrap_or_default().to_owned());
            }
            _ => {}
        }
    }
    said
}

fn read_object(dialect: Dialect, value: &Value) -> Result<Said, String> {
    match dialect {
        Dialect::Responses => Ok(responses_output(value)),
        Dialect::Chat => {
            let choice = &value["choices"][0];
            let message = &choice["message"];
            Ok(Said {
                text: message["content"].as_str().unwrap_or_default().to_owned(),
                calls: message["tool_calls"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .map(|c| {
                        c["function"]["name"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned()
                    })
                    .collect(),
                ended: choice["finish_reason"].as_str().map(str::to_owned),
            })
        }
        Dialect::Completions => {
            let choice = &value["choices"][0];
            Ok(Said {
                text: choice["text"].as_str().unwrap_or_default().to_owned(),
                calls: Vec::new(),
                ended: choice["finish_reason"].as_str().map(str::to_owned),
            })
        }
        Dialect::Messages => {
            if value["type"] != "message" {
                return Err(format!("not a message: {value}"));
            }
            let mut said = Said {
                ended: value["stop_reason"].as_str().map(str::to_owned),
                ..Said::default()
            };
            for block in value["content"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                match block["type"].as_str() {
                    Some("text") => said
                        .text
                        .push_str(block["text"].as_str().unwrap_or_default()),
                    Some("tool_use") => said
                        .calls
                        .push(block["name"].as_str().unwrap_or_default().to_owned()),
                    _ => {}
                }
            }
            Ok(said)
        }
    }
}

fn read_stream(dialect: Dialect, body: &str) -> Result<Said, String> {
    let (data, events) = sse(body);
    let payloads = json_payloads(&data);
    if let Some(error) = payloads
        .iter()
        .find(|p| p.get("error").is_some() && p.get("type").is_none_or(|t| t == "error"))
    {
        return Err(format!("an error inside the stream: {error}"));
    }
    match dialect {
        Dialect::Responses => {
            let last = payloads.last().ok_or("an empty stream")?;
            if last["type"] != "response.completed" {
                return Err(format!(
                    "the stream did not end with response.completed: {last}"
                ));
            }
            Ok(responses_output(&last["response"]))
        }
        Dialect::Chat | Dialect::Completions => {
            if data.last() != Some(&"[DONE]") {
                return Err("the stream did not end with [DONE]".into());
            }
            let mut said = Said::default();
            for chunk in &payloads {
                let choice = &chunk["choices"][0];
                if dialect == Dialect::Chat {
                    said.text
                        .push_str(choice["delta"]["content"].as_str().unwrap_or_default());
                    for call in choice["delta"]["tool_calls"]
                        .as_array()
                        .map(Vec::as_slice)
                        .unwrap_or_default()
                    {
                        if let Some(name) = call["function"]["name"].as_str() {
                            said.calls.push(name.to_owned());
                        }
                    }
                } else {
                    said.text
                        .push_str(choice["text"].as_str().unwrap_or_default());
                }
                if let Some(end) = choice["finish_reason"].as_str() {
                    said.ended = Some(end.to_owned());
                }
            }
            Ok(said)
        }
        Dialect::Messages => {
            if events.contains(&"error") {
                return Err("an error event inside the stream".into());
            }
            if events.last() != Some(&"message_stop") {
                return Err(format!(
                    "the stream did not end with message_stop: {events:?}"
                ));
            }
            let mut said = Said::default();
            for event in &payloads {
                match event["type"].as_str() {
                    Some("content_block_start") if event["content_block"]["type"] == "tool_use" => {
                        said.calls.push(
                            event["content_block"]["name"]
                                .as_str()
                                .unwrap_or_default()
                                .to_owned(),
                        );
                    }
                    Some("content_block_delta") => {
                        said.text
                            .push_str(event["delta"]["text"].as_str().unwrap_or_default());
                    }
                    Some("message_delta") => {
                        said.ended = event["delta"]["stop_reason"].as_str().map(str::to_owned);
                    }
                    _ => {}
                }
            }
            Ok(said)
        }
    }
}

/// What a refused answer's status and body say (either dialect's error shape).
pub(crate) fn symptom_of(status: u16, body: &str) -> Symptom {
    let value: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let error = &value["error"];
    let message = error["message"].as_str().unwrap_or_default();
    let code = error["code"]
        .as_str()
        .or(error["type"].as_str())
        .unwrap_or_default();
    let profiles: Vec<String> = PROFILES
        .iter()
        .filter(|p| message.contains(**p))
        .map(|p| (*p).to_owned())
        .collect();
    match status {
        s if s >= 500 && message == "injected" => Symptom::UpstreamInjected,
        429 => Symptom::RateLimited,
        401 if code == "needs_login" || message.contains("needs a new login") => {
            Symptom::Refused { profiles }
        }
        503 if code == "profile_unavailable" || message.contains("cannot be served right now") => {
            Symptom::Refused { profiles }
        }
        401 if code == "token_revoked" || message.contains("token has been revoked") => {
            Symptom::Revoked
        }
        _ => Symptom::Other,
    }
}

/// Why one request failed: its symptom, status and what was seen.
#[derive(Clone, Debug)]
pub(crate) struct Refusal {
    pub(crate) symptom: Symptom,
    pub(crate) status: Option<u16>,
    pub(crate) detail: String,
}

/// Sends one request of `shape` to keyward at `url` (optionally naming the profile to serve it)
/// and checks the answer whole.
pub(crate) async fn request(
    http: &reqwest::Client,
    url: &str,
    shape: Shape,
    profile: Option<&str>,
) -> Result<(), Refusal> {
    let mut builder = http
        .post(format!("{url}{}", shape.path()))
        .json(&shape.body());
    if shape.dialect == Dialect::Messages {
        builder = builder.header("anthropic-version", "2023-06-01");
    }
    if let Some(profile) = profile {
        builder = builder.header("x-keyward-profile", profile);
    }
    let response = builder.send().await.map_err(|e| Refusal {
        symptom: if e.is_timeout() {
            Symptom::Hang
        } else {
            Symptom::Transport {
                after_headers: false,
            }
        },
        status: None,
        detail: describe_error(&e),
    })?;
    let status = response.status().as_u16();
    let body = response.text().await.map_err(|e| Refusal {
        symptom: if e.is_timeout() {
            Symptom::Hang
        } else {
            Symptom::Transport {
                after_headers: true,
            }
        },
        status: Some(status),
        detail: describe_error(&e),
    })?;
    if status != 200 {
        return Err(Refusal {
            symptom: symptom_of(status, &body),
            status: Some(status),
            detail: excerpt(&body),
        });
    }
    check_answer(shape, &body).map_err(|why| Refusal {
        symptom: Symptom::BadAnswer,
        status: Some(status),
        detail: excerpt(&why),
    })
}

/// At most 600 characters of `text`.
fn excerpt(text: &str) -> String {
    let mut cut: String = text.chars().take(600).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    cut
}

/// Requests served, by kind, and every failure.
#[derive(Default)]
pub(crate) struct ClientStats {
    served: AtomicU64,
    streamed: AtomicU64,
    with_tools: AtomicU64,
    by_dialect: Mutex<BTreeMap<&'static str, u64>>,
    failures: Mutex<Vec<Failure>>,
}

impl ClientStats {
    pub(crate) fn served(&self, shape: Shape) {
        self.served.fetch_add(1, Ordering::Relaxed);
        if shape.stream {
            self.streamed.fetch_add(1, Ordering::Relaxed);
        }
        if shape.tools {
            self.with_tools.fetch_add(1, Ordering::Relaxed);
        }
        *self
            .by_dialect
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(shape.dialect.name())
            .or_default() += 1;
    }

    pub(crate) fn failed(&self, failure: Failure) {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(failure);
    }

    pub(crate) fn served_total(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    pub(crate) fn streamed(&self) -> u64 {
        self.streamed.load(Ordering::Relaxed)
    }

    pub(crate) fn with_tools(&self) -> u64 {
        self.with_tools.load(Ordering::Relaxed)
    }

    pub(crate) fn by_dialect(&self) -> BTreeMap<&'static str, u64> {
        self.by_dialect
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn failures(&self) -> Vec<Failure> {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The root cause of a client error, for the failure's detail.
pub(crate) fn describe_error(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn shape(dialect: Dialect, stream: bool, tools: bool) -> Shape {
        Shape {
            dialect,
            stream,
            tools,
        }
    }

    /// Complete answers in every dialect pass; a stream cut before its end does not.
    #[test]
    fn complete_answers_pass_and_cut_streams_fail() {
        let responses = r#"event: response.created
data: {"type":"response.created","response":{"status":"in_progress"}}

event: response.completed
data: {"type":"response.completed","response":{"status":"completed","output":[{"type":"message","content":[{"type":"output_text","text":"pong"}]}]}}

"#;
        assert_eq!(
            check_answer(shape(Dialect::Responses, true, false), responses),
            Ok(())
        );
        let cut = responses
            .split("event: response.completed")
            .next()
            .unwrap_or_default();
        assert!(check_answer(shape(Dialect::Responses, true, false), cut).is_err());

        let chat = "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"po\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"ng\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
        assert_eq!(
            check_answer(shape(Dialect::Chat, true, false), chat),
            Ok(())
        );
        let no_done = chat.replace("data: [DONE]\n\n", "");
        assert!(check_answer(shape(Dialect::Chat, true, false), &no_done).is_err());

        let messages = "event: message_start\ndata: {\"type\":\"message_start\"}\n\nevent: content_block_start\ndata: {\"type\":\"content_block_start\",\"content_block\":{\"type\":\"tool_use\",\"name\":\"get_weather\"}}\n\nevent: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
        assert_eq!(
            check_answer(shape(Dialect::Messages, true, true), messages),
            Ok(())
        );
        assert!(check_answer(shape(Dialect::Messages, true, false), messages).is_err());

        let completion = r#"{"choices":[{"text":"pong","finish_reason":"stop"}]}"#;
        assert_eq!(
            check_answer(shape(Dialect::Completions, false, false), completion),
            Ok(())
        );
        let message = r#"{"type":"message","content":[{"type":"text","text":"pong"}],"stop_reason":"end_turn"}"#;
        assert_eq!(
            check_answer(shape(Dialect::Messages, false, false), message),
            Ok(())
        );
    }

    /// A stream carrying the dialect's error frame fails even if it ends as usual.
    #[test]
    fn error_frames_fail() {
        let chat = "data: {\"error\":{\"message\":\"upstream broke\"}}\n\ndata: [DONE]\n\n";
        assert!(check_answer(shape(Dialect::Chat, true, false), chat).is_err());
        let messages = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"x\"}}\n\nevent: message_stop\ndata: {}\n\n";
        assert!(check_answer(shape(Dialect::Messages, true, false), messages).is_err());
    }

    /// Refusals are read from either dialect's error shape, with the profiles they name.
    #[test]
    fn symptoms_from_status_and_body() {
        let openai = r#"{"error":{"message":"keyward profile openai-codex:default needs a new login: x","code":"needs_login"}}"#;
        assert_eq!(
            symptom_of(401, openai),
            Symptom::Refused {
                profiles: vec!["openai-codex:default".into()]
            }
        );
        let anthropic = r#"{"type":"error","error":{"type":"overloaded_error","message":"keyward profile openai-codex:work cannot be served right now: y"}}"#;
        assert_eq!(
            symptom_of(503, anthropic),
            Symptom::Refused {
                profiles: vec!["openai-codex:work".into()]
            }
        );
        let injected =
            r#"{"error":{"type":"server_error","message":"injected","code":"server_error"}}"#;
        assert_eq!(symptom_of(502, injected), Symptom::UpstreamInjected);
        assert_eq!(symptom_of(429, "{}"), Symptom::RateLimited);
        assert_eq!(symptom_of(400, injected), Symptom::Other);
        let revoked = r#"{"type":"error","error":{"type":"authentication_error","message":"Your authentication token has been revoked."}}"#;
        assert_eq!(symptom_of(401, revoked), Symptom::Revoked);
        assert_eq!(symptom_of(500, "not json"), Symptom::Other);
    }

    /// Every dialect's body asks for a stream when the shape does, and carries the tool.
    #[test]
    fn bodies_follow_the_shape() {
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..50 {
            let shape = Shape::random(&mut rng);
            let body = shape.body();
            assert_eq!(body["stream"], json!(shape.stream));
            assert_eq!(body["tools"].is_array(), shape.tools);
            assert!(!(shape.tools && shape.dialect == Dialect::Completions));
        }
    }
}
