//! `POST /backend-api/codex/responses`: a streaming-only Codex backend.
//!
//! A request goes through the phases the real backend has: injected faults,
//! the bearer token (checked against the provider's tables), the request rules
//! ([`crate::codex_rules`]), then an answer chosen from the request
//! ([`scenario`]), written out as events ([`script`]) and streamed as it is sent
//! ([`play`]). Every request, whatever its fate, lands in the [`journal`].

mod journal;
mod play;
mod scenario;
mod script;

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

pub(crate) use journal::Journal;

use crate::codex_rules::{self, Rejection};
use crate::faults::ResponseFault;
use crate::provider_state::now_secs;
use crate::server::Shared;
use journal::Outcome;
use scenario::Selection;

/// How long a ChatGPT plan's usage window has left when the mock says it is used up.
const USAGE_LIMIT_RESETS_IN_SECS: i64 = 3600;
const USAGE_WINDOW_MINUTES: &str = "300";

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub(crate) async fn responses(
    State(app): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (response, outcome) = answer(&app, &headers, &body).await;
    app.journal()
        .record(journal::entry(&headers, &body, &outcome));
    response
}

async fn answer(app: &Shared, headers: &HeaderMap, body: &Bytes) -> (Response, Outcome) {
    let fault = app.provider().pop_response_fault();
    match fault {
        Some(ResponseFault::Status { code }) => {
            return (injected_status(code), status_only(code));
        }
        Some(ResponseFault::Delay { ms }) => tokio::time::sleep(Duration::from_millis(ms)).await,
        None => {}
    }

    let bearer =
        header_str(headers, header::AUTHORIZATION.as_str()).and_then(|v| v.strip_prefix("Bearer "));
    let account = header_str(headers, "chatgpt-account-id");
    {
        let mut provider = app.provider();
        if let Err(denied) = provider.check_access(bearer, account, now_secs()) {
            provider.stats.responses_unauthorized += 1;
            let response = (
                StatusCode::UNAUTHORIZED,
                Json(json!({"error": {
                    "message": denied.message(),
                    "type": "invalid_request_error",
                    "code": denied.code(),
                }})),
            )
                .into_response();
            return (response, status_only(401));
        }
    }

    let checked = serde_json::from_slice::<Value>(body)
        .map_err(|_| codex_rules::unreadable_body())
        .and_then(|request| codex_rules::check(&request).map(|()| request));
    let request = match checked {
        Ok(request) => request,
        Err(rejection) => {
            app.provider().stats.responses_rejected += 1;
            return rejected(&rejection);
        }
    };

    let scenario = match scenario::select(&request) {
        Selection::UsageLimit => {
            app.provider().stats.responses_usage_limited += 1;
            let outcome = Outcome {
                status: 429,
                rejection: None,
                scenario: Some("usage_limit"),
            };
            return (usage_limit(now_secs()), outcome);
        }
        Selection::Stream(scenario) => scenario,
    };
    let cached = request
        .get("prompt_cache_key")
        .and_then(Value::as_str)
        .is_some_and(|key| app.journal().cache_hit(key));
    let setting = script::Setting {
        chunks: header_str(headers, "x-mock-chunks")
            .and_then(|v| v.parse().ok())
            .unwrap_or(app.config.chunks)
            .max(1),
        body_bytes: body.len(),
        cached,
        now: now_secs(),
    };
    let script = script::script(&request, &scenario, setting);
    let pace = play::Pace {
        chunk_delay: Duration::from_millis(
            header_str(headers, "x-mock-chunk-delay-ms")
                .and_then(|v| v.parse().ok())
                .unwrap_or(app.config.chunk_delay_ms),
        ),
        hold: header_str(headers, "x-mock-hold")
            .map(str::to_owned)
            .or_else(|| scenario::hold_key(&request)),
    };
    app.provider().stats.responses_ok += 1;
    let outcome = Outcome {
        status: 200,
        rejection: None,
        scenario: Some(scenario.name()),
    };
    (play::stream(app.clone(), script, pace), outcome)
}

fn status_only(status: u16) -> Outcome {
    Outcome {
        status,
        rejection: None,
        scenario: None,
    }
}

fn rejected(rejection: &Rejection) -> (Response, Outcome) {
    let status = StatusCode::from_u16(rejection.status).unwrap_or(StatusCode::BAD_REQUEST);
    let outcome = Outcome {
        status: status.as_u16(),
        rejection: Some(rejection.message().to_owned()),
        scenario: None,
    };
    (
        (status, Json(rejection.body.clone())).into_response(),
        outcome,
    )
}

/// The real backend's answer once a ChatGPT plan's usage window is used up:
/// a 429 whose body says when it resets, with the window in `x-codex-*` headers.
fn usage_limit(now: i64) -> Response {
    let body = json!({"error": {
        "type": "usage_limit_reached",
        "message": "The usage limit has been reached",
        "plan_type": "plus",
        "resets_at": now + USAGE_LIMIT_RESETS_IN_SECS,
        "resets_in_seconds": USAGE_LIMIT_RESETS_IN_SECS,
    }});
    let mut response = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
    let resets = HeaderValue::from(USAGE_LIMIT_RESETS_IN_SECS);
    let headers = response.headers_mut();
    headers.insert(
        "x-codex-primary-used-percent",
        HeaderValue::from_static("100"),
    );
    headers.insert(
        "x-codex-primary-window-minutes",
        HeaderValue::from_static(USAGE_WINDOW_MINUTES),
    );
    headers.insert("x-codex-primary-reset-after-seconds", resets);
    response
}

fn injected_status(code: u16) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (kind, error_code) = match status {
        StatusCode::TOO_MANY_REQUESTS => ("rate_limit", "rate_limit_exceeded"),
        StatusCode::UNAUTHORIZED => ("invalid_request_error", "token_expired"),
        s if s.is_server_error() => ("server_error", "server_error"),
        _ => ("invalid_request_error", "injected"),
    };
    let mut response = (
        status,
        Json(json!({"error": {"type": kind, "message": "injected", "code": error_code}})),
    )
        .into_response();
    if status == StatusCode::TOO_MANY_REQUESTS {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tokio::net::TcpListener;

    use super::*;
    use crate::provider_state::LoginRequest;
    use crate::server::{self, AppState, ServeConfig};

    /// A mock serving on a loopback port, and a login of its own.
    struct Backend {
        app: Shared,
        url: String,
        access_token: String,
        account_id: String,
        http: reqwest::Client,
    }

    impl Backend {
        async fn start() -> anyhow::Result<Self> {
            let app = AppState::new(ServeConfig {
                listen: "127.0.0.1:0".into(),
                access_ttl: 3600,
                chunks: 3,
                chunk_delay_ms: 0,
            });
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let url = format!("http://{}", listener.local_addr()?);
            tokio::spawn(server::serve(listener, app.clone()));
            let (issued, account_id) = app.provider().login(LoginRequest::default());
            Ok(Self {
                app,
                url,
                access_token: issued.access_token,
                account_id,
                http: reqwest::Client::new(),
            })
        }

        async fn post(&self, body: Value) -> anyhow::Result<reqwest::Response> {
            Ok(self
                .http
                .post(format!("{}/backend-api/codex/responses", self.url))
                .bearer_auth(&self.access_token)
                .header("chatgpt-account-id", &self.account_id)
                .header("originator", "codex_exec")
                .header("session-id", "s-1")
                .json(&body)
                .send()
                .await?)
        }

        async fn requests(&self) -> anyhow::Result<Vec<Value>> {
            Ok(self
                .http
                .get(format!("{}/admin/requests", self.url))
                .send()
                .await?
                .json()
                .await?)
        }
    }

    fn request(prompt: &str) -> Value {
        json!({
            "model": "gpt-5.1-codex",
            "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": prompt}]}],
            "stream": true,
            "store": false,
            "prompt_cache_key": "session-1",
        })
    }

    /// The `data:` payloads of a finished event stream.
    fn data(stream: &str) -> Vec<Value> {
        stream
            .lines()
            .filter_map(|line| line.strip_prefix("data: "))
            .filter_map(|data| serde_json::from_str(data).ok())
            .collect()
    }

    /// A refused request gets the rule's answer, is counted, and is journaled with
    /// its headers but never its credentials.
    #[tokio::test]
    async fn refusals_are_answered_counted_and_journaled() -> anyhow::Result<()> {
        let backend = Backend::start().await?;
        let mut body = request("ping");
        body["input"] = json!("ping");
        let response = backend.post(body.clone()).await?;
        assert_eq!(response.status(), 400);
        assert_eq!(
            response.json::<Value>().await?,
            json!({"detail": "Input must be a list"})
        );
        assert_eq!(backend.app.provider().stats.responses_rejected, 1);
        assert_eq!(backend.app.provider().stats.responses_ok, 0);

        let requests = backend.requests().await?;
        let [entry] = requests.as_slice() else {
            panic!("one request journaled: {requests:?}");
        };
        assert_eq!(entry["status"], 400);
        assert_eq!(entry["rejection"], "Input must be a list");
        assert_eq!(entry["body"], body);
        assert_eq!(entry["headers"]["originator"], "codex_exec");
        assert_eq!(entry["headers"]["session-id"], "s-1");
        assert_eq!(
            entry["headers"]["chatgpt-account-id"],
            json!(backend.account_id)
        );
        assert!(!entry.to_string().contains(&backend.access_token));
        Ok(())
    }

    /// An accepted request streams to `response.completed`; the second use of a
    /// prompt cache key reports cached tokens.
    #[tokio::test]
    async fn accepted_requests_stream_and_hit_the_cache() -> anyhow::Result<()> {
        let backend = Backend::start().await?;
        let mut cached = Vec::new();
        for _ in 0..2 {
            let response = backend.post(request("ping")).await?;
            assert_eq!(response.status(), 200);
            let events = data(&response.text().await?);
            let done = events.last().cloned().unwrap_or_default();
            assert_eq!(done["type"], "response.completed");
            assert_eq!(done["response"]["output"][0]["content"][0]["text"], "pong");
            cached.push(done["response"]["usage"]["input_tokens_details"]["cached_tokens"].clone());
        }
        assert_eq!(cached.first(), Some(&json!(0)));
        assert!(
            cached.get(1).and_then(Value::as_u64).is_some_and(|n| n > 0),
            "{cached:?}"
        );
        let requests = backend.requests().await?;
        assert_eq!(
            requests.first().map(|entry| entry["scenario"].clone()),
            Some(json!("text"))
        );
        Ok(())
    }

    /// `[[usage_limit]]` gets the plan-exhausted 429 with its headers.
    #[tokio::test]
    async fn usage_limits_answer_429() -> anyhow::Result<()> {
        let backend = Backend::start().await?;
        let response = backend.post(request("[[usage_limit]]")).await?;
        assert_eq!(response.status(), 429);
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        assert_eq!(
            header("x-codex-primary-used-percent").as_deref(),
            Some("100")
        );
        assert_eq!(
            header("x-codex-primary-window-minutes").as_deref(),
            Some("300")
        );
        assert_eq!(
            header("x-codex-primary-reset-after-seconds").as_deref(),
            Some("3600")
        );
        let body: Value = response.json().await?;
        assert_eq!(body["error"]["type"], "usage_limit_reached");
        assert_eq!(body["error"]["resets_in_seconds"], 3600);
        assert!(body["error"]["resets_at"]
            .as_i64()
            .is_some_and(|at| at > now_secs()));
        Ok(())
    }

    /// `[[cut]]` delivers its deltas, then the stream ends with no terminal event
    /// and the connection closes.
    #[tokio::test]
    async fn cut_streams_close_without_a_terminal_event() -> anyhow::Result<()> {
        let backend = Backend::start().await?;
        let response = backend.post(request("[[cut]]")).await?;
        assert_eq!(response.status(), 200);
        assert_eq!(
            response
                .headers()
                .get(header::CONNECTION)
                .and_then(|value| value.to_str().ok()),
            Some("close")
        );
        let events = data(&response.text().await?);
        assert!(!events.is_empty());
        assert!(events.iter().all(|event| {
            !matches!(
                event["type"].as_str(),
                Some("response.completed" | "response.incomplete" | "response.failed")
            )
        }));
        Ok(())
    }
}
