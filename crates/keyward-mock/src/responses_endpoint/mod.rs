//! `POST /backend-api/codex/responses`: a streaming-only Codex backend, and
//! the pieces the other model endpoints (`openai_api`, `anthropic_api`) share.
//!
//! A request goes through the phases the real backend has: injected faults,
//! the bearer token (checked against the provider's tables, which names the
//! ChatGPT account), the account's plan usage (an account limited through
//! `POST /admin/usage_limit` gets the usage-limit 429 whatever it sends,
//! [`plan_usage`]), the request rules ([`crate::codex_rules`]), then an answer
//! chosen from the request ([`scenario`]), written out as events ([`script`])
//! and streamed as it is sent ([`play`]). Served answers carry the account's
//! `x-codex-*` usage headers. Every request, whatever its fate, lands in the
//! [`journal`].

pub(crate) mod journal;
mod plan_usage;
pub(crate) mod play;
pub(crate) mod scenario;
pub(crate) mod script;

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
use crate::limits::Remaining;
use crate::provider_state::{bump, now_ms, now_secs, Holder};
use crate::server::Shared;
use journal::{Endpoint, Outcome};
use scenario::Selection;

pub(crate) fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Text deltas per message: the `x-mock-chunks` header, else `--chunks`.
pub(crate) fn chunks(app: &Shared, headers: &HeaderMap) -> usize {
    header_str(headers, "x-mock-chunks")
        .and_then(|v| v.parse().ok())
        .unwrap_or(app.config.chunks)
        .max(1)
}

/// The request's pacing: `x-mock-chunk-delay-ms` (else `--chunk-delay-ms`)
/// between deltas, and the hold gate of `x-mock-hold`, else of the prompt's
/// `[[hold:KEY]]`.
pub(crate) fn pace(app: &Shared, headers: &HeaderMap, prompt_hold: Option<String>) -> play::Pace {
    play::Pace {
        chunk_delay: Duration::from_millis(
            header_str(headers, "x-mock-chunk-delay-ms")
                .and_then(|v| v.parse().ok())
                .unwrap_or(app.config.chunk_delay_ms),
        ),
        hold: header_str(headers, "x-mock-hold")
            .map(str::to_owned)
            .or(prompt_hold),
    }
}

pub(crate) async fn responses(
    State(app): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (response, outcome) = answer(&app, &headers, &body).await;
    app.journal()
        .record(journal::entry(Endpoint::Codex, &headers, &body, &outcome));
    response
}

async fn answer(app: &Shared, headers: &HeaderMap, body: &Bytes) -> (Response, Outcome) {
    let fault = app.provider().pop_response_fault();
    match fault {
        Some(ResponseFault::Status { code }) => {
            return (injected_status(code), Outcome::status(code));
        }
        Some(ResponseFault::Delay { ms }) => tokio::time::sleep(Duration::from_millis(ms)).await,
        None => {}
    }

    let bearer =
        header_str(headers, header::AUTHORIZATION.as_str()).and_then(|v| v.strip_prefix("Bearer "));
    let account = header_str(headers, "chatgpt-account-id");
    let holder = {
        let mut provider = app.provider();
        match provider.check_access(bearer, account, now_secs()) {
            Ok(holder) => holder,
            Err(denied) => {
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
                return (response, Outcome::status(401));
            }
        }
    };
    let served = |status: u16| Outcome {
        account_id: Some(holder.account_id.clone()),
        ..Outcome::status(status)
    };

    // The plan's limit is the backend's first concern once it knows the
    // account: a used-up plan is refused whatever the request says.
    let usage = app.limits().account(&holder.account_id, now_ms());
    if let Some(left) = usage.limited {
        let response = usage_limited(app, &holder, left);
        return (
            response,
            Outcome {
                scenario: Some("usage_limit"),
                ..served(429)
            },
        );
    }

    let checked = serde_json::from_slice::<Value>(body)
        .map_err(|_| codex_rules::unreadable_body())
        .and_then(|request| codex_rules::check(&request).map(|()| request));
    let request = match checked {
        Ok(request) => request,
        Err(rejection) => {
            app.provider().stats.responses_rejected += 1;
            let (response, outcome) = rejected(&rejection);
            return (
                response,
                Outcome {
                    account_id: Some(holder.account_id.clone()),
                    ..outcome
                },
            );
        }
    };

    let scenario = match scenario::select(&request) {
        Selection::UsageLimit => {
            let now = now_secs();
            let left = Remaining {
                secs: plan_usage::MARKER_RESETS_IN_SECS,
                resets_at: now + plan_usage::MARKER_RESETS_IN_SECS,
            };
            let response = usage_limited(app, &holder, left);
            return (
                response,
                Outcome {
                    scenario: Some("usage_limit"),
                    ..served(429)
                },
            );
        }
        Selection::Stream(scenario) => scenario,
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
    let mut script = script::script(&request, &scenario, setting);
    if scenario::sparse(&request) {
        script = script::sparse(script);
    }
    let pace = pace(app, headers, scenario::hold_key(&request));
    {
        let mut provider = app.provider();
        provider.stats.responses_ok += 1;
        bump(&mut provider.stats.served_by_account, &holder.account_id);
    }
    // The request takes its share of the plan's windows (scripted usage); the
    // answer reports them with it counted.
    let usage = app.limits().spend(&holder.account_id, now_ms());
    let mut response = play::stream(app.clone(), script, pace);
    plan_usage::add_usage_headers(response.headers_mut(), &usage);
    (
        response,
        Outcome {
            scenario: Some(scenario.name()),
            ..served(200)
        },
    )
}

/// The usage-limit 429 for `holder`, counted.
fn usage_limited(app: &Shared, holder: &Holder, left: Remaining) -> Response {
    {
        let mut provider = app.provider();
        provider.stats.responses_usage_limited += 1;
        bump(&mut provider.stats.usage_limited, &holder.account_id);
    }
    let usage = app.limits().account(&holder.account_id, now_ms());
    plan_usage::usage_limit_reached(&holder.plan, &usage, left)
}

fn rejected(rejection: &Rejection) -> (Response, Outcome) {
    let status = StatusCode::from_u16(rejection.status).unwrap_or(StatusCode::BAD_REQUEST);
    let outcome = Outcome {
        rejection: Some(rejection.message().to_owned()),
        ..Outcome::status(status.as_u16())
    };
    (
        (status, Json(rejection.body.clone())).into_response(),
        outcome,
    )
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
    use crate::test_support::{header, TestMock};

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
        assert_eq!(header("retry-after").as_deref(), Some("3600"));
        let body: Value = response.json().await?;
        assert_eq!(body["error"]["plan_type"], "plus");
        assert_eq!(body["error"]["type"], "usage_limit_reached");
        assert_eq!(body["error"]["resets_in_seconds"], 3600);
        assert!(body["error"]["resets_at"]
            .as_i64()
            .is_some_and(|at| at > now_secs()));
        let stats = backend.app.provider().stats.clone();
        assert_eq!(stats.usage_limited.get(&backend.account_id), Some(&1));
        assert_eq!(stats.responses_usage_limited, 1);
        Ok(())
    }

    /// An account limited through `POST /admin/usage_limit` gets the real backend's
    /// 429 whatever it sends, counting down; other accounts are served with their
    /// usage headers; `resets_in_seconds: 0` serves it again with its percentage;
    /// stats and the journal name the account.
    #[tokio::test]
    async fn admin_usage_limits_are_per_account() -> anyhow::Result<()> {
        let mock = TestMock::start().await?;
        let (token_a, a) = mock.login("acct-a", "pro");
        let (token_b, b) = mock.login("acct-b", "plus");
        let (status, report) = mock
            .admin(
                "usage_limit",
                json!({"account_id": a, "resets_in_seconds": 120, "primary_used_percent": 40}),
            )
            .await?;
        assert_eq!(status, 200);
        assert_eq!(report["limited"], true);
        assert_eq!(report["resets_in_seconds"], 120);
        assert_eq!(report["primary_used_percent"], 40.0);
        assert_eq!(report["secondary_used_percent"], 5.0);
        let codex = |token: &str, account: &str, body: Value| {
            mock.post("/backend-api/codex/responses")
                .bearer_auth(token)
                .header("chatgpt-account-id", account)
                .json(&body)
                .send()
        };

        let limited = codex(&token_a, &a, json!({"not": "a valid request"})).await?;
        assert_eq!(limited.status(), 429);
        let left = header(&limited, "retry-after");
        assert!(
            left.parse::<i64>()
                .is_ok_and(|secs| (1..=120).contains(&secs)),
            "{left}"
        );
        assert_eq!(
            header(&limited, "x-codex-primary-reset-after-seconds"),
            left
        );
        assert_eq!(header(&limited, "x-codex-primary-used-percent"), "100");
        assert_eq!(header(&limited, "x-codex-primary-window-minutes"), "300");
        let body: Value = limited.json().await?;
        assert_eq!(body["error"]["type"], "usage_limit_reached");
        assert_eq!(body["error"]["message"], "The usage limit has been reached");
        assert_eq!(body["error"]["plan_type"], "pro");
        assert_eq!(body["error"]["resets_in_seconds"].to_string(), left);
        assert!(body["error"]["resets_at"]
            .as_i64()
            .is_some_and(|at| at >= now_secs() + 119));

        let served = codex(&token_b, &b, request("ping")).await?;
        assert_eq!(served.status(), 200);
        for (name, value) in [
            ("x-codex-primary-used-percent", "10"),
            ("x-codex-primary-window-minutes", "300"),
            ("x-codex-secondary-used-percent", "5"),
            ("x-codex-secondary-window-minutes", "10080"),
        ] {
            assert_eq!(header(&served, name), value, "{name}");
        }
        assert!(!header(&served, "x-codex-primary-reset-after-seconds").is_empty());
        assert!(!header(&served, "x-codex-secondary-reset-after-seconds").is_empty());
        served.text().await?;

        let (_, report) = mock
            .admin(
                "usage_limit",
                json!({"account_id": a, "resets_in_seconds": 0}),
            )
            .await?;
        assert_eq!(report["limited"], false);
        assert_eq!(report["resets_in_seconds"], Value::Null);
        let again = codex(&token_a, &a, request("ping")).await?;
        assert_eq!(again.status(), 200);
        assert_eq!(header(&again, "x-codex-primary-used-percent"), "40");
        again.text().await?;

        let stats = mock.stats().await?;
        assert_eq!(stats["usage_limited"], json!({"acct-a": 1}));
        assert_eq!(
            stats["served_by_account"],
            json!({"acct-a": 1, "acct-b": 1})
        );
        assert_eq!(stats["responses_usage_limited"], 1);
        let journal = mock.requests().await?;
        let seen: Vec<(Value, Value, Value)> = journal
            .iter()
            .map(|e| {
                (
                    e["endpoint"].clone(),
                    e["status"].clone(),
                    e["account_id"].clone(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                (json!("codex"), json!(429), json!("acct-a")),
                (json!("codex"), json!(200), json!("acct-b")),
                (json!("codex"), json!(200), json!("acct-a")),
            ]
        );
        Ok(())
    }

    /// The admin call refuses what it cannot apply, saying why.
    #[tokio::test]
    async fn admin_limits_refuse_bad_settings() -> anyhow::Result<()> {
        let mock = TestMock::start().await?;
        let (status, body) = mock
            .admin(
                "usage_limit",
                json!({"account_id": "a", "resets_in_seconds": -5}),
            )
            .await?;
        assert_eq!(status, 400);
        assert!(body["error"]
            .as_str()
            .is_some_and(|e| e.contains("resets_in_seconds")));
        let (status, _) = mock
            .admin(
                "usage_limit",
                json!({"account": "a", "resets_in_seconds": 5}),
            )
            .await?;
        assert_eq!(status, 400);
        let (status, body) = mock
            .admin(
                "api_key_limit",
                json!({"api_key": "sk-mock-secret-1234", "retry_after_seconds": 30}),
            )
            .await?;
        assert_eq!(status, 200);
        assert_eq!(
            body,
            json!({"api_key_last4": "1234", "limited": true, "resets_at": body["resets_at"], "retry_after_seconds": 30})
        );
        assert!(!body.to_string().contains("secret"));
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
