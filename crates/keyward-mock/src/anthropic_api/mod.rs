//! `POST /v1/messages`: the Anthropic Messages API, the upstream of keyward's
//! Anthropic API-key profiles.
//!
//! A request goes through the API's phases: the key (`x-api-key:
//! sk-ant-mock-…`, or `Authorization: Bearer sk-ant-mock-…` as the pinned
//! anthropic SDKs send it; else a 401 `authentication_error`), the `anthropic-version`
//! header (else a 400), the key's rate limit (`POST /admin/api_key_limit`: a
//! 429 `rate_limit_error` with `retry-after` and
//! `anthropic-ratelimit-requests-reset`), the API's rules ([`rules`]), then
//! the Codex backend's scenario engine reading the conversation
//! ([`conversation`]), so the prompt markers work here too, answered in
//! Anthropic's shapes ([`events`]):
//!
//! | marker            | answer                                                          |
//! |-------------------|-----------------------------------------------------------------|
//! | none              | `pong`, `stop_reason: end_turn`                                  |
//! | `[[tool]]`        | a `tool_use` block calling the first custom tool, input made from its `input_schema`; `stop_reason: tool_use` |
//! | `[[tool:NAME]]`   | the same, calling the custom tool NAME                           |
//! | `[[tools]]`       | a text block, then two `tool_use` blocks                         |
//! | `[[echo]]`        | the user's text without the marker                               |
//! | `[[words]]`, `[[json]]` | as on the Codex backend (stop sequences apply)             |
//! | `[[length]]`      | text, `stop_reason: max_tokens`                                  |
//! | `[[fail]]`        | streamed: text deltas, then an `error` event (`overloaded_error`); else a 529 |
//! | `[[cut]]`         | streamed: text deltas, then the connection closes; else no answer at all |
//! | `[[hold:KEY]]`    | streamed: held after `message_start`; else the whole answer is held, until `POST /admin/release/KEY` |
//! | `[[usage_limit]]` | 400 `invalid_request_error`: the credit balance is too low       |
//!
//! A user turn that returns a `tool_result` is answered `tool said: …`.
//! Every answer carries a `request-id`; every request is journaled with
//! `endpoint: "anthropic"` and the key's last four characters.

mod conversation;
mod events;
mod rules;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, SecondsFormat};
use serde_json::Value;

use crate::api_key;
use crate::conn_kill::ConnHandle;
use crate::jwt::random_alnum;
use crate::limits::Remaining;
use crate::provider_state::{bump, now_ms, now_secs};
use crate::responses_endpoint::journal::{self, Endpoint, Outcome};
use crate::responses_endpoint::scenario::{self, Selection};
use crate::responses_endpoint::{chunks, header_str, pace, play};
use crate::server::Shared;
use events::Ending;
use rules::{ApiError, Betas};

/// What a mock Anthropic API key looks like; any other key is refused.
const KEY_PREFIX: &str = "sk-ant-mock-";
/// The request rate the rate-limit headers and message quote.
const REQUESTS_PER_MINUTE: u32 = 50;
const REQUEST_ID_CHARS: usize = 22;
/// Anthropic's status for an overloaded API.
const OVERLOADED_STATUS: u16 = 529;

pub(crate) async fn messages(
    State(app): State<Shared>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (mut response, outcome) = answer(&app, &conn, &headers, &body).await;
    if let Ok(id) = HeaderValue::from_str(&format!("req_01{}", random_alnum(REQUEST_ID_CHARS))) {
        response.headers_mut().insert("request-id", id);
    }
    app.journal().record(journal::entry(
        Endpoint::Anthropic,
        &headers,
        &body,
        &outcome,
    ));
    response
}

fn error_response(error: &ApiError) -> Response {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST);
    (status, Json(error.body())).into_response()
}

/// A refusal before the scenario engine: answered, counted, journaled.
fn refuse(app: &Shared, error: &ApiError, last4: Option<String>) -> (Response, Outcome) {
    app.provider().stats.anthropic_rejected += 1;
    let outcome = Outcome {
        rejection: Some(error.message.clone()),
        api_key_last4: last4,
        ..Outcome::status(error.status)
    };
    (error_response(error), outcome)
}

async fn answer(
    app: &Shared,
    conn: &ConnHandle,
    headers: &HeaderMap,
    body: &Bytes,
) -> (Response, Outcome) {
    let presented = presented_key(headers);
    let key = match check_key(presented) {
        Ok(key) => key,
        Err(error) => return refuse(app, &error, presented.map(api_key::last4)),
    };
    let last4 = api_key::last4(key);
    if header_str(headers, "anthropic-version").is_none_or(|version| version.trim().is_empty()) {
        let error = ApiError::invalid("anthropic-version: header is required");
        return refuse(app, &error, Some(last4));
    }
    let limited = app.limits().api_key(key, now_ms());
    if let Some(left) = limited {
        bump(&mut app.provider().stats.rate_limited_by_api_key, &last4);
        let (mut response, outcome) = refuse(app, &rate_limited(left), Some(last4));
        add_rate_limit_headers(response.headers_mut(), 0, left);
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(left.secs));
        return (response, outcome);
    }
    let betas = Betas::from_header(header_str(headers, "anthropic-beta"));
    let checked = serde_json::from_slice::<Value>(body)
        .map_err(|e| ApiError::invalid(format!("There was an error parsing the body: {e}")))
        .and_then(|request| rules::check(&request, betas).map(|()| request));
    let request = match checked {
        Ok(request) => request,
        Err(error) => return refuse(app, &error, Some(last4)),
    };

    let view = conversation::scenario_view(&request);
    let scenario = match scenario::select(&view) {
        Selection::UsageLimit => return refuse(app, &credit_too_low(), Some(last4)),
        Selection::Stream(scenario) => scenario,
    };
    {
        let mut provider = app.provider();
        provider.stats.anthropic_ok += 1;
        bump(&mut provider.stats.served_by_api_key, &last4);
    }
    let outcome = Outcome {
        scenario: Some(scenario.name()),
        api_key_last4: Some(last4),
        ..Outcome::status(200)
    };
    let setting = events::Setting {
        model: request
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        chunks: chunks(app, headers),
        body_bytes: body.len(),
        stop_sequences: request
            .get("stop_sequences")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|stop| stop.as_str().map(str::to_owned))
            .collect(),
    };
    let rendering = events::render(&scenario, &setting);
    let pace = pace(app, headers, scenario::hold_key(&view));

    let mut response = if request.get("stream") == Some(&Value::Bool(true)) {
        play::stream(app.clone(), rendering.script, pace)
    } else {
        if let Some(key) = &pace.hold {
            app.gates.wait(key).await;
        }
        match rendering.ending {
            Ending::Message(message) => Json(message).into_response(),
            Ending::Overloaded => error_response(&ApiError {
                status: OVERLOADED_STATUS,
                kind: "overloaded_error",
                message: events::OVERLOADED_MESSAGE.into(),
            }),
            Ending::Cut => {
                // What a client sees of a server that drops a request: no answer at all.
                conn.kill();
                StatusCode::OK.into_response()
            }
        }
    };
    let next_minute = Remaining {
        secs: 60,
        resets_at: now_secs() + 60,
    };
    add_rate_limit_headers(response.headers_mut(), REQUESTS_PER_MINUTE - 1, next_minute);
    (response, outcome)
}

/// The key of `x-api-key`, else of `Authorization: Bearer` (the way the
/// anthropic SDKs of this project's pinned version send an `api_key`), if any.
fn presented_key(headers: &HeaderMap) -> Option<&str> {
    let bearer = || {
        header_str(headers, header::AUTHORIZATION.as_str())
            .and_then(|value| value.strip_prefix("Bearer "))
    };
    header_str(headers, "x-api-key")
        .or_else(bearer)
        .map(str::trim)
        .filter(|key| !key.is_empty())
}

/// The presented key, if it is a mock Anthropic key; else Anthropic's 401.
fn check_key(presented: Option<&str>) -> Result<&str, ApiError> {
    let unauthenticated = |message: &str| ApiError {
        status: 401,
        kind: "authentication_error",
        message: message.to_owned(),
    };
    match presented {
        None => Err(unauthenticated("x-api-key header is required")),
        Some(key) if key.len() > KEY_PREFIX.len() && key.starts_with(KEY_PREFIX) => Ok(key),
        Some(_) => Err(unauthenticated("invalid x-api-key")),
    }
}

/// Anthropic's answer to a key over its request rate.
fn rate_limited(left: Remaining) -> ApiError {
    ApiError {
        status: 429,
        kind: "rate_limit_error",
        message: format!(
            "This request would exceed the rate limit for your organization (org-mock) of \
             {REQUESTS_PER_MINUTE} requests per minute. For details, refer to: \
             https://docs.claude.com/en/api/rate-limits. You can see the response headers for \
             current usage. Please try again in {} seconds.",
            left.secs
        ),
    }
}

/// Anthropic's answer to a key whose credit is used up.
fn credit_too_low() -> ApiError {
    ApiError::invalid(
        "Your credit balance is too low to access the Anthropic API. Please go to Plans & \
         Billing to upgrade or purchase credits.",
    )
}

/// `anthropic-ratelimit-requests-*`: the limit, what is left, and when it
/// resets (RFC 3339).
fn add_rate_limit_headers(headers: &mut HeaderMap, remaining: u32, reset: Remaining) {
    let reset = DateTime::from_timestamp(reset.resets_at, 0)
        .map(|at| at.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_default();
    let values = [
        (
            "anthropic-ratelimit-requests-limit",
            REQUESTS_PER_MINUTE.to_string(),
        ),
        (
            "anthropic-ratelimit-requests-remaining",
            remaining.to_string(),
        ),
        ("anthropic-ratelimit-requests-reset", reset),
    ];
    for (name, value) in values {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;
    use serde_json::json;

    use super::*;
    use crate::test_support::{header, sse_frames, TestMock};

    const KEY: &str = "sk-ant-mock-primary-a7c1";
    const VERSION: &str = "2023-06-01";

    fn call(mock: &TestMock, key: &str, body: Value) -> reqwest::RequestBuilder {
        mock.post("/v1/messages")
            .header("x-api-key", key)
            .header("anthropic-version", VERSION)
            .json(&body)
    }

    fn ask(prompt: &str) -> Value {
        json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 256,
            "messages": [{"role": "user", "content": prompt}],
        })
    }

    fn weather_tools() -> Value {
        json!([{"name": "get_weather", "description": "Weather", "input_schema": {
            "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
        }}])
    }

    /// A plain request gets Anthropic's message, exactly; counted and journaled by key tail.
    #[tokio::test]
    async fn unstreamed_requests_get_a_message() -> anyhow::Result<()> {
        let mock = TestMock::start().await?;
        let response = call(&mock, KEY, ask("ping")).send().await?;
        assert_eq!(response.status(), 200);
        assert!(header(&response, "request-id").starts_with("req_01"));
        assert_eq!(
            header(&response, "anthropic-ratelimit-requests-remaining"),
            "49"
        );
        let message: Value = response.json().await?;
        let id = message["id"].as_str().unwrap_or_default().to_owned();
        assert!(id.starts_with("msg_"), "{id}");
        let input_tokens = message["usage"]["input_tokens"]
            .as_u64()
            .unwrap_or_default();
        assert!(input_tokens > 0);
        assert_eq!(
            message,
            json!({
                "id": id, "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
                "content": [{"type": "text", "text": "pong"}],
                "stop_reason": "end_turn", "stop_sequence": null,
                "usage": {"input_tokens": input_tokens, "output_tokens": 2,
                          "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
            })
        );
        let stats = mock.stats().await?;
        assert_eq!(stats["anthropic_ok"], 1);
        assert_eq!(stats["served_by_api_key"], json!({"a7c1": 1}));
        let journal = mock.requests().await?;
        let entry = journal.first().cloned().unwrap_or_default();
        assert_eq!(entry["endpoint"], "anthropic");
        assert_eq!(entry["api_key_last4"], "a7c1");
        assert_eq!(entry["headers"]["anthropic-version"], VERSION);
        assert!(!Value::from(journal).to_string().contains(KEY));
        Ok(())
    }

    /// A streamed answer is read as Anthropic's SDKs read it: named frames whose
    /// data type matches, in Anthropic's order, folding into the same answer.
    #[tokio::test]
    async fn streams_parse_as_anthropics() -> anyhow::Result<()> {
        let mock = TestMock::start().await?;
        let mut body = ask("[[tool]]");
        body["stream"] = json!(true);
        body["tools"] = weather_tools();
        let response = call(&mock, KEY, body).send().await?;
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "content-type"), "text/event-stream");
        let frames = sse_frames(&response.text().await?);
        for (event, data) in &frames {
            assert_eq!(data["type"].as_str(), Some(event.as_str()), "{data}");
        }
        let kinds: Vec<&str> = frames.iter().map(|(event, _)| event.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "message_start",
                "ping",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop",
            ]
        );
        let json_text: String = frames
            .iter()
            .filter_map(|(_, data)| data["delta"]["partial_json"].as_str())
            .collect();
        assert_eq!(json_text, r#"{"city":"Paris"}"#);
        let start = frames
            .get(2)
            .map(|(_, data)| data.clone())
            .unwrap_or_default();
        assert_eq!(start["content_block"]["type"], "tool_use");
        assert_eq!(start["content_block"]["name"], "get_weather");
        let delta = frames
            .get(8)
            .map(|(_, data)| data.clone())
            .unwrap_or_default();
        assert_eq!(
            delta["delta"],
            json!({"stop_reason": "tool_use", "stop_sequence": null})
        );
        Ok(())
    }

    /// `[[tool]]` calls the first tool; the tool_result that follows is acknowledged.
    #[tokio::test]
    async fn tool_loops_complete() -> anyhow::Result<()> {
        let mock = TestMock::start().await?;
        let mut body = ask("weather in Paris? [[tool]]");
        body["tools"] = weather_tools();
        let message: Value = call(&mock, KEY, body.clone()).send().await?.json().await?;
        assert_eq!(message["stop_reason"], "tool_use");
        let tool_use = message["content"][0].clone();
        assert_eq!(tool_use["type"], "tool_use");
        assert_eq!(tool_use["input"], json!({"city": "Paris"}));

        body["messages"] = json!([
            body["messages"][0],
            {"role": "assistant", "content": [tool_use]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": tool_use["id"], "content": "sunny, 21C"},
            ]},
        ]);
        let message: Value = call(&mock, KEY, body).send().await?.json().await?;
        assert_eq!(
            message["content"],
            json!([{"type": "text", "text": "tool said: sunny, 21C"}])
        );
        assert_eq!(message["stop_reason"], "end_turn");

        let echo: Value = call(&mock, KEY, ask("[[echo]] say this"))
            .send()
            .await?
            .json()
            .await?;
        assert_eq!(echo["content"][0]["text"], "say this");
        Ok(())
    }

    /// Keys (in `x-api-key` or as a Bearer token) and the version header are checked first, with Anthropic's errors.
    #[tokio::test]
    async fn keys_and_versions_are_checked() -> anyhow::Result<()> {
        let mock = TestMock::start().await?;
        let wrong = call(&mock, "sk-ant-api03-real-looking", ask("ping"))
            .send()
            .await?;
        assert_eq!(wrong.status(), 401);
        assert_eq!(
            wrong.json::<Value>().await?,
            json!({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}})
        );
        let bearer = mock
            .post("/v1/messages")
            .bearer_auth(KEY)
            .header("anthropic-version", VERSION)
            .json(&ask("ping"))
            .send()
            .await?;
        assert_eq!(bearer.status(), 200, "the SDKs' Bearer spelling of the key");
        let missing = mock
            .post("/v1/messages")
            .header("anthropic-version", VERSION)
            .json(&ask("ping"))
            .send()
            .await?;
        assert_eq!(missing.status(), 401);
        let versionless = mock
            .post("/v1/messages")
            .header("x-api-key", KEY)
            .json(&ask("ping"))
            .send()
            .await?;
        assert_eq!(versionless.status(), 400);
        assert_eq!(
            versionless.json::<Value>().await?,
            json!({"type": "error", "error": {
                "type": "invalid_request_error", "message": "anthropic-version: header is required",
            }})
        );
        let mut body = ask("ping");
        body.as_object_mut().map(|b| b.remove("max_tokens"));
        let invalid = call(&mock, KEY, body).send().await?;
        assert_eq!(invalid.status(), 400);
        assert_eq!(
            invalid.json::<Value>().await?["error"]["message"],
            "max_tokens: Field required"
        );
        let stats = mock.stats().await?;
        assert_eq!(
            (
                stats["anthropic_ok"].clone(),
                stats["anthropic_rejected"].clone()
            ),
            (json!(1), json!(4))
        );
        let journal = mock.requests().await?;
        assert_eq!(journal.len(), 5);
        assert!(!Value::from(journal).to_string().contains("real-looking"));
        Ok(())
    }

    /// A limited key gets Anthropic's 429 with retry-after and an RFC 3339
    /// reset; another key is served; lifting the limit serves it again.
    #[tokio::test]
    async fn api_key_limits_answer_429() -> anyhow::Result<()> {
        let mock = TestMock::start().await?;
        mock.admin(
            "api_key_limit",
            json!({"api_key": KEY, "retry_after_seconds": 45}),
        )
        .await?;
        let limited = call(&mock, KEY, ask("ping")).send().await?;
        assert_eq!(limited.status(), 429);
        let left = header(&limited, "retry-after");
        let secs: i64 = left.parse()?;
        assert!((1..=45).contains(&secs), "{left}");
        let reset = chrono::DateTime::parse_from_rfc3339(&header(
            &limited,
            "anthropic-ratelimit-requests-reset",
        ))?;
        assert!(reset.timestamp() >= now_secs() + secs - 1);
        assert_eq!(
            header(&limited, "anthropic-ratelimit-requests-remaining"),
            "0"
        );
        let error: Value = limited.json().await?;
        assert_eq!(error["type"], "error");
        assert_eq!(error["error"]["type"], "rate_limit_error");
        assert!(error["error"]["message"].is_string());

        assert_eq!(
            call(&mock, "sk-ant-mock-other-0b0b", ask("ping"))
                .send()
                .await?
                .status(),
            200
        );
        mock.admin(
            "api_key_limit",
            json!({"api_key": KEY, "retry_after_seconds": 0}),
        )
        .await?;
        assert_eq!(call(&mock, KEY, ask("ping")).send().await?.status(), 200);
        let stats = mock.stats().await?;
        assert_eq!(stats["rate_limited_by_api_key"], json!({"a7c1": 1}));
        assert_eq!(stats["anthropic_rejected"], 1);
        Ok(())
    }

    /// `[[hold:KEY]]` holds a stream after `message_start` until released.
    #[tokio::test]
    async fn holds_keep_the_stream_after_message_start() -> anyhow::Result<()> {
        let mock = TestMock::start().await?;
        let mut body = ask("[[hold:h-ant]]");
        body["stream"] = json!(true);
        let response = call(&mock, KEY, body).send().await?;
        let mut stream = response.bytes_stream();
        let first = stream.next().await.transpose()?.unwrap_or_default();
        let first = String::from_utf8_lossy(&first).into_owned();
        assert!(first.starts_with("event: message_start\n"), "{first}");
        assert!(!first.contains("content_block"), "{first}");
        mock.app.gates.release("h-ant");
        let mut rest = String::new();
        while let Some(chunk) = stream.next().await.transpose()? {
            rest.push_str(&String::from_utf8_lossy(&chunk));
        }
        let frames = sse_frames(&format!("{first}{rest}"));
        assert_eq!(
            frames.last().map(|(event, _)| event.as_str()),
            Some("message_stop")
        );
        Ok(())
    }

    /// Without a stream, `[[fail]]` is a 529, `[[usage_limit]]` a too-low credit
    /// balance, `[[cut]]` no answer at all; streamed, `[[fail]]` ends on an error event.
    #[tokio::test]
    async fn broken_answers() -> anyhow::Result<()> {
        let mock = TestMock::start().await?;
        let failed = call(&mock, KEY, ask("[[fail]]")).send().await?;
        assert_eq!(failed.status(), 529);
        assert_eq!(
            failed.json::<Value>().await?,
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
        );
        let broke = call(&mock, KEY, ask("[[usage_limit]]")).send().await?;
        assert_eq!(broke.status(), 400);
        assert!(broke.json::<Value>().await?["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Your credit balance is too low")));
        assert!(call(&mock, KEY, ask("[[cut]]")).send().await.is_err());
        let mut body = ask("[[fail]]");
        body["stream"] = json!(true);
        let frames = sse_frames(&call(&mock, KEY, body).send().await?.text().await?);
        assert_eq!(
            frames.last().map(|(event, _)| event.as_str()),
            Some("error")
        );
        Ok(())
    }
}
