//! `POST /v1/responses`: the public OpenAI Responses API, the upstream of
//! keyward's OpenAI API-key profiles.
//!
//! A request goes through the API's phases: the API key
//! (`Authorization: Bearer sk-mock-…`; anything else is OpenAI's 401), the
//! key's rate limit (`POST /admin/api_key_limit`: OpenAI's 429), the public
//! API's rules ([`rules`]), then the Codex backend's scenario engine, so the
//! same prompt markers work here (a string `input` counts as one user message).
//! `stream: true` answers the very event stream the Codex backend sends, with
//! the public API's fuller response object in the `response.*` events;
//! otherwise the answer is that final response object as JSON. Without a
//! stream, `[[fail]]` is a 500 (`server_error`), `[[cut]]` closes the
//! connection without an answer, `[[hold:KEY]]` holds the whole answer until
//! `POST /admin/release/KEY`, and `[[usage_limit]]` is OpenAI's
//! `insufficient_quota` 429 (a key whose credit is used up) in either mode.
//!
//! Every answer carries an `x-request-id`; every request is journaled with
//! `endpoint: "openai"` and the key's last four characters.

mod rules;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use crate::api_key;
use crate::codex_rules::Rejection;
use crate::conn_kill::ConnHandle;
use crate::jwt::random_hex;
use crate::limits::Remaining;
use crate::provider_state::{bump, now_ms, now_secs};
use crate::responses_endpoint::journal::{self, Endpoint, Outcome};
use crate::responses_endpoint::scenario::{self, Scenario, Selection};
use crate::responses_endpoint::script::{self, Script, Step};
use crate::responses_endpoint::{chunks, header_str, pace, play};
use crate::server::Shared;

/// What a mock OpenAI API key looks like; any other key is refused.
const KEY_PREFIX: &str = "sk-mock-";
/// The request rate the 429's message and headers quote.
const REQUESTS_PER_MINUTE: u32 = 60;
const REQUEST_ID_HEX_BYTES: usize = 16;

pub(crate) async fn responses(
    State(app): State<Shared>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (mut response, outcome) = answer(&app, &conn, &headers, &body).await;
    if let Ok(id) = HeaderValue::from_str(&format!("req_{}", random_hex(REQUEST_ID_HEX_BYTES))) {
        response.headers_mut().insert("x-request-id", id);
    }
    app.journal()
        .record(journal::entry(Endpoint::OpenAi, &headers, &body, &outcome));
    response
}

/// A refusal before the scenario engine: answered, counted, journaled.
fn refuse(app: &Shared, rejection: &Rejection, last4: Option<String>) -> (Response, Outcome) {
    app.provider().stats.openai_rejected += 1;
    let outcome = Outcome {
        rejection: Some(rejection.message().to_owned()),
        api_key_last4: last4,
        ..Outcome::status(rejection.status)
    };
    (error_response(rejection), outcome)
}

fn error_response(rejection: &Rejection) -> Response {
    let status = StatusCode::from_u16(rejection.status).unwrap_or(StatusCode::BAD_REQUEST);
    (status, Json(rejection.body.clone())).into_response()
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
        Err(rejection) => return refuse(app, &rejection, presented.map(api_key::last4)),
    };
    let last4 = api_key::last4(key);
    let limited = app.limits().api_key(key, now_ms());
    if let Some(left) = limited {
        bump(&mut app.provider().stats.rate_limited_by_api_key, &last4);
        let model = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|body| body.get("model").and_then(Value::as_str).map(str::to_owned));
        let (mut response, outcome) =
            refuse(app, &rate_limited(model.as_deref(), left), Some(last4));
        add_rate_limit_headers(response.headers_mut(), left);
        return (response, outcome);
    }
    let checked = serde_json::from_slice::<Value>(body)
        .map_err(|_| rules::unreadable_body())
        .and_then(|request| rules::check(&request).map(|()| request));
    let request = match checked {
        Ok(request) => request,
        Err(rejection) => return refuse(app, &rejection, Some(last4)),
    };

    let view = scenario_view(&request);
    let scenario = match scenario::select(&view) {
        Selection::UsageLimit => return refuse(app, &insufficient_quota(), Some(last4)),
        Selection::Stream(scenario) => scenario,
    };
    {
        let mut provider = app.provider();
        provider.stats.openai_ok += 1;
        bump(&mut provider.stats.served_by_api_key, &last4);
    }
    let outcome = Outcome {
        scenario: Some(scenario.name()),
        api_key_last4: Some(last4),
        ..Outcome::status(200)
    };
    let cached = request
        .get("prompt_cache_key")
        .and_then(Value::as_str)
        .is_some_and(|key| app.journal().cache_hit(key));
    let setting = script::Setting {
        chunks: chunks(app, headers),
        body_bytes: body.len(),
        cached,
        now: now_secs(),
    };
    let script = publish(script::script(&request, &scenario, setting), &request);
    let pace = pace(app, headers, scenario::hold_key(&view));

    let mut response = if request.get("stream") == Some(&Value::Bool(true)) {
        play::stream(app.clone(), script, pace)
    } else {
        if let Some(key) = &pace.hold {
            app.gates.wait(key).await;
        }
        match final_answer(&scenario, &script) {
            Some(response) => response,
            None => {
                // What a client sees of a server that drops a request: no answer at all.
                conn.kill();
                StatusCode::OK.into_response()
            }
        }
    };
    add_served_headers(response.headers_mut());
    (response, outcome)
}

/// The key of `Authorization: Bearer <key>`, if any.
fn presented_key(headers: &HeaderMap) -> Option<&str> {
    header_str(headers, header::AUTHORIZATION.as_str())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|key| !key.is_empty())
}

/// The presented key, if it is a mock OpenAI key; else OpenAI's 401.
fn check_key(presented: Option<&str>) -> Result<&str, Rejection> {
    let Some(key) = presented else {
        return Err(Rejection::invalid(
            401,
            "You didn't provide an API key. You need to provide your API key in an Authorization \
             header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the basic auth \
             username and password. You can obtain an API key from \
             https://platform.openai.com/account/api-keys."
                .into(),
            None,
            None,
        ));
    };
    if key.len() > KEY_PREFIX.len() && key.starts_with(KEY_PREFIX) {
        Ok(key)
    } else {
        Err(Rejection::invalid(
            401,
            format!(
                "Incorrect API key provided: {}. You can find your API key at \
                 https://platform.openai.com/account/api-keys.",
                api_key::masked(key)
            ),
            None,
            Some("invalid_api_key"),
        ))
    }
}

/// OpenAI's answer to a key over its request rate.
fn rate_limited(model: Option<&str>, left: Remaining) -> Rejection {
    let model = model
        .map(|model| format!(" for {model}"))
        .unwrap_or_default();
    Rejection {
        status: 429,
        body: json!({"error": {
            "message": format!(
                "Rate limit reached{model} in organization org-mock on requests per min (RPM): \
                 Limit {REQUESTS_PER_MINUTE}, Used {REQUESTS_PER_MINUTE}, Requested 1. Please try \
                 again in {}s. Visit https://platform.openai.com/account/rate-limits to learn more.",
                left.secs
            ),
            "type": "requests",
            "param": null,
            "code": "rate_limit_exceeded",
        }}),
    }
}

fn add_rate_limit_headers(headers: &mut HeaderMap, left: Remaining) {
    headers.insert(header::RETRY_AFTER, HeaderValue::from(left.secs));
    insert(
        headers,
        "x-ratelimit-limit-requests",
        REQUESTS_PER_MINUTE.to_string(),
    );
    insert(headers, "x-ratelimit-remaining-requests", "0".into());
    insert(
        headers,
        "x-ratelimit-reset-requests",
        format!("{}s", left.secs),
    );
}

/// The rate-limit headers of an answer the key's limit allowed.
fn add_served_headers(headers: &mut HeaderMap) {
    insert(
        headers,
        "x-ratelimit-limit-requests",
        REQUESTS_PER_MINUTE.to_string(),
    );
    insert(
        headers,
        "x-ratelimit-remaining-requests",
        (REQUESTS_PER_MINUTE - 1).to_string(),
    );
    insert(headers, "x-ratelimit-reset-requests", "1s".into());
}

fn insert(headers: &mut HeaderMap, name: &'static str, value: String) {
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert(HeaderName::from_static(name), value);
    }
}

/// OpenAI's answer to a key whose credit is used up.
fn insufficient_quota() -> Rejection {
    Rejection {
        status: 429,
        body: json!({"error": {
            "message": "You exceeded your current quota, please check your plan and billing \
                details. For more information on this error, read the docs: \
                https://platform.openai.com/docs/guides/error-codes/api-errors.",
            "type": "insufficient_quota",
            "param": null,
            "code": "insufficient_quota",
        }}),
    }
}

/// The request as the scenario engine reads it: a string `input` is one user message.
fn scenario_view(request: &Value) -> Value {
    let mut view = request.clone();
    if let Some(text) = request.get("input").and_then(Value::as_str) {
        view["input"] = json!([{"role": "user", "content": text}]);
    }
    view
}

/// The script with the public API's response object in every `response.*` event.
fn publish(script: Script, request: &Value) -> Script {
    let steps = script
        .steps
        .into_iter()
        .map(|step| match step {
            Step::Event(mut event) => {
                if let Some(response) = event.get("response") {
                    event["response"] = public_response(response, request);
                }
                Step::Event(event)
            }
            pause => pause,
        })
        .collect();
    Script {
        steps,
        cut: script.cut,
    }
}

/// The backend's response object with the public API's fields, in the
/// public API's order: the request's settings echoed, or their defaults.
fn public_response(response: &Value, request: &Value) -> Value {
    let from_response = |key: &str| response.get(key).cloned().unwrap_or(Value::Null);
    let from_request = |key: &str, default: Value| {
        request
            .get(key)
            .filter(|value| !value.is_null())
            .cloned()
            .unwrap_or(default)
    };
    let service_tier = match request.get("service_tier").and_then(Value::as_str) {
        None | Some("auto") => "default".to_owned(),
        Some(tier) => tier.to_owned(),
    };
    let mut text = json!({"format": {"type": "text"}, "verbosity": "medium"});
    if let Some(Value::Object(asked)) = request.get("text") {
        if let Some(object) = text.as_object_mut() {
            object.extend(asked.clone());
        }
    }
    let fields = [
        ("id", from_response("id")),
        ("object", from_response("object")),
        ("created_at", from_response("created_at")),
        ("status", from_response("status")),
        ("background", from_request("background", Value::Bool(false))),
        ("error", from_response("error")),
        ("incomplete_details", from_response("incomplete_details")),
        ("instructions", from_response("instructions")),
        (
            "max_output_tokens",
            from_request("max_output_tokens", Value::Null),
        ),
        (
            "max_tool_calls",
            from_request("max_tool_calls", Value::Null),
        ),
        ("model", from_response("model")),
        ("output", from_response("output")),
        ("parallel_tool_calls", from_response("parallel_tool_calls")),
        ("previous_response_id", Value::Null),
        (
            "prompt_cache_key",
            from_request("prompt_cache_key", Value::Null),
        ),
        ("reasoning", from_response("reasoning")),
        (
            "safety_identifier",
            from_request("safety_identifier", Value::Null),
        ),
        ("service_tier", Value::from(service_tier)),
        ("store", from_request("store", Value::Bool(true))),
        ("temperature", from_request("temperature", Value::from(1.0))),
        ("text", text),
        ("tool_choice", from_response("tool_choice")),
        ("tools", from_response("tools")),
        ("top_logprobs", from_request("top_logprobs", Value::from(0))),
        ("top_p", from_request("top_p", Value::from(1.0))),
        (
            "truncation",
            from_request("truncation", Value::from("disabled")),
        ),
        ("usage", from_response("usage")),
        ("user", from_request("user", Value::Null)),
        ("metadata", from_request("metadata", json!({}))),
    ];
    Value::Object(
        fields
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value))
            .collect::<Map<String, Value>>(),
    )
}

/// The answer without a stream: the final response object, a 500 for a
/// failed one; `None` when the scenario drops the connection.
fn final_answer(scenario: &Scenario, script: &Script) -> Option<Response> {
    if matches!(scenario, Scenario::Cut) {
        return None;
    }
    let response = script
        .steps
        .iter()
        .rev()
        .find_map(|step| match step {
            Step::Event(event) => event.get("response").cloned(),
            Step::Pause => None,
        })
        .unwrap_or(Value::Null);
    if response.get("status").and_then(Value::as_str) == Some("failed") {
        let message = response
            .pointer("/error/message")
            .cloned()
            .unwrap_or(Value::Null);
        let body = json!({"error": {
            "message": message,
            "type": "server_error",
            "param": null,
            "code": "server_error",
        }});
        return Some((StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response());
    }
    Some(Json(response).into_response())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::test_support::{header, sse_frames, TestMock};

    const KEY: &str = "sk-mock-primary-k3y1";

    fn call(mock: &TestMock, key: &str, body: Value) -> reqwest::RequestBuilder {
        mock.post("/v1/responses").bearer_auth(key).json(&body)
    }

    /// Every field of the public API's response object, in its order.
    const PUBLIC_FIELDS: &[&str] = &[
        "id",
        "object",
        "created_at",
        "status",
        "background",
        "error",
        "incomplete_details",
        "instructions",
        "max_output_tokens",
        "max_tool_calls",
        "model",
        "output",
        "parallel_tool_calls",
        "previous_response_id",
        "prompt_cache_key",
        "reasoning",
        "safety_identifier",
        "service_tier",
        "store",
        "temperature",
        "text",
        "tool_choice",
        "tools",
        "top_logprobs",
        "top_p",
        "truncation",
        "usage",
        "user",
        "metadata",
    ];

    fn keys(object: &Value) -> Vec<&str> {
        object
            .as_object()
            .map(|object| object.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// Without a stream, a string input gets the final response object as JSON,
    /// echoing the request's settings; counted, journaled by key tail.
    #[tokio::test]
    async fn unstreamed_requests_get_the_response_object() -> anyhow::Result<()> {
        let mock = TestMock::start().await?;
        let response = call(
            &mock,
            KEY,
            json!({"model": "gpt-4.1-mini", "input": "ping", "max_output_tokens": 64, "temperature": 0.3}),
        )
        .send()
        .await?;
        assert_eq!(response.status(), 200);
        assert!(header(&response, "x-request-id").starts_with("req_"));
        assert_eq!(header(&response, "x-ratelimit-limit-requests"), "60");
        let body: Value = response.json().await?;
        assert_eq!(keys(&body), PUBLIC_FIELDS);
        assert_eq!(body["object"], "response");
        assert_eq!(body["status"], "completed");
        assert_eq!(body["model"], "gpt-4.1-mini");
        assert_eq!(body["output"][0]["content"][0]["text"], "pong");
        assert_eq!(body["max_output_tokens"], 64);
        assert_eq!(body["temperature"], 0.3);
        assert_eq!(body["store"], true);
        assert!(body["usage"]["output_tokens"].as_u64().is_some());

        let stats = mock.stats().await?;
        assert_eq!(stats["openai_ok"], 1);
        assert_eq!(stats["served_by_api_key"], json!({"k3y1": 1}));
        let journal = mock.requests().await?;
        let entry = journal.first().cloned().unwrap_or_default();
        assert_eq!(entry["endpoint"], "openai");
        assert_eq!(entry["api_key_last4"], "k3y1");
        assert_eq!(entry["scenario"], "text");
        assert!(!Value::from(journal).to_string().contains(KEY));
        Ok(())
    }

    /// `stream: true` gets the Codex backend's event stream: named frames whose
    /// data parses, numbered in order, the recorded text sequence, ending with
    /// the public response object.
    #[tokio::test]
    async fn streamed_requests_get_the_backend_stream() -> anyhow::Result<()> {
        let mock = TestMock::start().await?;
        let response = call(
            &mock,
            KEY,
            json!({"model": "gpt-5", "input": [{"role": "user", "content": "ping"}], "stream": true, "store": false}),
        )
        .send()
        .await?;
        assert_eq!(header(&response, "content-type"), "text/event-stream");
        let frames = sse_frames(&response.text().await?);
        let kinds: Vec<&str> = frames.iter().map(|(event, _)| event.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        for (n, (event, data)) in frames.iter().enumerate() {
            assert_eq!(data["type"].as_str(), Some(event.as_str()));
            assert_eq!(data["sequence_number"], n);
        }
        let done = frames
            .last()
            .map(|(_, data)| data["response"].clone())
            .unwrap_or_default();
        assert_eq!(keys(&done), PUBLIC_FIELDS);
        assert_eq!(done["store"], false);
        assert_eq!(done["output"][0]["content"][0]["text"], "pong");
        let created = frames
            .first()
            .map(|(_, data)| data["response"].clone())
            .unwrap_or_default();
        assert_eq!(created["status"], "in_progress");
        assert_eq!(created["id"], done["id"]);
        Ok(())
    }

    /// No key, a wrong key: OpenAI's 401s, the wrong key masked to its last four.
    #[tokio::test]
    async fn keys_are_checked() -> anyhow::Result<()> {
        let mock = TestMock::start().await?;
        let body = json!({"model": "gpt-5", "input": "ping"});
        let response = mock.post("/v1/responses").json(&body).send().await?;
        assert_eq!(response.status(), 401);
        let error: Value = response.json().await?;
        assert!(error["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("You didn't provide an API key.")));
        assert_eq!(error["error"]["code"], Value::Null);

        let response = call(&mock, "sk-live-abcdefgh-wxyz", body).send().await?;
        assert_eq!(response.status(), 401);
        assert_eq!(
            response.json::<Value>().await?,
            json!({"error": {
                "message": "Incorrect API key provided: sk-**************wxyz. You can find your \
                    API key at https://platform.openai.com/account/api-keys.",
                "type": "invalid_request_error",
                "param": null,
                "code": "invalid_api_key",
            }})
        );
        assert_eq!(mock.stats().await?["openai_rejected"], 2);
        let tails: Vec<Value> = mock
            .requests()
            .await?
            .iter()
            .map(|entry| entry["api_key_last4"].clone())
            .collect();
        assert_eq!(tails, [Value::Null, json!("wxyz")]);
        Ok(())
    }

    /// What the public API refuses gets its 400 error object.
    #[tokio::test]
    async fn invalid_requests_are_refused() -> anyhow::Result<()> {
        let mock = TestMock::start().await?;
        let response = call(&mock, KEY, json!({"model": "gpt-5", "input": 42}))
            .send()
            .await?;
        assert_eq!(response.status(), 400);
        let error: Value = response.json().await?;
        assert_eq!(error["error"]["param"], "input");
        assert_eq!(error["error"]["type"], "invalid_request_error");
        let response = call(
            &mock,
            KEY,
            json!({"model": "gpt-5", "input": "x", "tools": [{"type": "function", "function": {"name": "f"}}]}),
        )
        .send()
        .await?;
        assert_eq!(response.status(), 400);
        let error: Value = response.json().await?;
        assert_eq!(
            error["error"]["message"],
            "Missing required parameter: 'tools[0].name'."
        );
        let response = mock
            .post("/v1/responses")
            .bearer_auth(KEY)
            .body("{not json")
            .send()
            .await?;
        assert_eq!(response.status(), 400);
        let journal = mock.requests().await?;
        assert_eq!(journal.len(), 3);
        assert!(journal
            .iter()
            .all(|entry| entry["status"] == 400 && entry["rejection"].is_string()));
        assert_eq!(mock.stats().await?["openai_rejected"], 3);
        Ok(())
    }

    /// A key limited through the admin API gets OpenAI's 429 with its reset
    /// headers while another key is served; lifting the limit serves it again.
    #[tokio::test]
    async fn api_key_limits_answer_429() -> anyhow::Result<()> {
        let mock = TestMock::start().await?;
        let (status, _) = mock
            .admin(
                "api_key_limit",
                json!({"api_key": KEY, "retry_after_seconds": 30}),
            )
            .await?;
        assert_eq!(status, 200);
        let body = json!({"model": "gpt-5", "input": "ping"});
        let limited = call(&mock, KEY, body.clone()).send().await?;
        assert_eq!(limited.status(), 429);
        let left = header(&limited, "retry-after");
        assert!(
            left.parse::<i64>()
                .is_ok_and(|secs| (1..=30).contains(&secs)),
            "{left}"
        );
        assert_eq!(
            header(&limited, "x-ratelimit-reset-requests"),
            format!("{left}s")
        );
        assert_eq!(header(&limited, "x-ratelimit-remaining-requests"), "0");
        let error: Value = limited.json().await?;
        assert_eq!(error["error"]["type"], "requests");
        assert_eq!(error["error"]["code"], "rate_limit_exceeded");
        assert_eq!(error["error"]["param"], Value::Null);
        assert!(error["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Rate limit reached for gpt-5 ")));

        let other = call(&mock, "sk-mock-other-0002", body.clone())
            .send()
            .await?;
        assert_eq!(other.status(), 200);
        mock.admin(
            "api_key_limit",
            json!({"api_key": KEY, "retry_after_seconds": 0}),
        )
        .await?;
        assert_eq!(call(&mock, KEY, body).send().await?.status(), 200);
        let stats = mock.stats().await?;
        assert_eq!(stats["rate_limited_by_api_key"], json!({"k3y1": 1}));
        assert_eq!(stats["served_by_api_key"], json!({"0002": 1, "k3y1": 1}));
        assert_eq!(
            (stats["openai_ok"].clone(), stats["openai_rejected"].clone()),
            (json!(2), json!(1))
        );
        Ok(())
    }

    /// The markers work without a stream: a tool call, an echo, a used-up
    /// quota, a failure (500) and a dropped connection.
    #[tokio::test]
    async fn markers_work_without_a_stream() -> anyhow::Result<()> {
        let mock = TestMock::start().await?;
        let tools = json!([{"type": "function", "name": "get_weather", "parameters": {
            "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
        }}]);
        let body = json!({"model": "gpt-5", "input": "weather? [[tool]]", "tools": tools});
        let answer: Value = call(&mock, KEY, body).send().await?.json().await?;
        let item = &answer["output"][0];
        assert_eq!(item["type"], "function_call");
        assert_eq!(item["name"], "get_weather");
        assert_eq!(item["arguments"], r#"{"city":"Paris"}"#);

        let follow_up = json!({"model": "gpt-5", "tools": tools, "input": [
            {"role": "user", "content": "weather? [[tool]]"},
            {"type": "function_call", "call_id": item["call_id"], "name": "get_weather", "arguments": item["arguments"]},
            {"type": "function_call_output", "call_id": item["call_id"], "output": "sunny"},
        ]});
        let answer: Value = call(&mock, KEY, follow_up).send().await?.json().await?;
        assert_eq!(
            answer["output"][0]["content"][0]["text"],
            "tool said: sunny"
        );

        let echo = json!({"model": "gpt-5", "input": "[[echo]] hello there"});
        let answer: Value = call(&mock, KEY, echo).send().await?.json().await?;
        assert_eq!(answer["output"][0]["content"][0]["text"], "hello there");

        let quota = call(
            &mock,
            KEY,
            json!({"model": "gpt-5", "input": "[[usage_limit]]"}),
        )
        .send()
        .await?;
        assert_eq!(quota.status(), 429);
        assert_eq!(header(&quota, "retry-after"), "");
        assert_eq!(
            quota.json::<Value>().await?["error"]["code"],
            "insufficient_quota"
        );

        let failed = call(&mock, KEY, json!({"model": "gpt-5", "input": "[[fail]]"}))
            .send()
            .await?;
        assert_eq!(failed.status(), 500);
        let error: Value = failed.json().await?;
        assert_eq!(error["error"]["type"], "server_error");
        assert!(error["error"]["message"].is_string());

        let cut = call(&mock, KEY, json!({"model": "gpt-5", "input": "[[cut]]"}))
            .send()
            .await;
        assert!(cut.is_err(), "a cut answer closes the connection: {cut:?}");
        Ok(())
    }

    /// A non-streamed answer held by `[[hold:KEY]]` is not sent until the gate is released.
    #[tokio::test]
    async fn held_answers_wait_for_release() -> anyhow::Result<()> {
        let mock = TestMock::start().await?;
        let request = call(
            &mock,
            KEY,
            json!({"model": "gpt-5", "input": "[[hold:h-openai]]"}),
        );
        let pending = tokio::spawn(request.send());
        // Served requests are counted before the gate; poll (bounded) until this one is.
        for _ in 0..2_000 {
            if mock.app.provider().stats.openai_ok == 1 {
                break;
            }
            tokio::task::yield_now().await;
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert_eq!(mock.app.provider().stats.openai_ok, 1);
        assert!(
            mock.requests().await?.is_empty(),
            "answered before the release"
        );
        mock.app.gates.release("h-openai");
        let response = pending.await??;
        assert_eq!(response.status(), 200);
        assert_eq!(mock.requests().await?.len(), 1);
        Ok(())
    }
}
