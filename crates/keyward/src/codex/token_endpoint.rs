//! The Codex CLI's refresh request, sent the way the CLI sends it.

use std::time::Duration;

use serde::Deserialize;

use super::CLIENT_ID;
use crate::credential::TokenAnswer;
use crate::secret::Secret;
use crate::token_endpoint::{RefreshFailure, RefreshFuture, RefreshTrigger, TokenEndpoint};

/// A token answer is a few kilobytes; anything far larger is not one.
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// A timer that fires this much after its deadline did so because the process was not running.
const LATE_WAKE: Duration = Duration::from_secs(1);
/// What a late timer grants the request to read what arrived meanwhile, at most `MAX_GRACES` times.
const GRACE: Duration = Duration::from_secs(2);
const MAX_GRACES: u32 = 3;

pub(crate) struct CodexTokenEndpoint {
    http: reqwest::Client,
    url: String,
    timeout: Duration,
}

impl CodexTokenEndpoint {
    /// `timeout` bounds the whole refresh, from connecting to the answer's last byte.
    pub(crate) fn new(http: reqwest::Client, url: impl Into<String>, timeout: Duration) -> Self {
        Self {
            http,
            url: url.into(),
            timeout,
        }
    }
}

/// Runs `work` within `limit`, not counting time the process was not running. A keyward stopped
/// (SIGSTOP, a debugger) while its refresh is out wakes with the answer waiting in the socket and
/// its timer long past due; a plain timeout would win that race and turn an answer that arrived
/// into an unknown outcome, a token spent for nothing. So a timer that fires late grants a short
/// grace first, and the work is always polled before the timer.
async fn within<T>(
    limit: Duration,
    work: impl std::future::Future<Output = Result<T, RefreshFailure>>,
) -> Result<T, RefreshFailure> {
    tokio::pin!(work);
    let mut deadline = tokio::time::Instant::now() + limit;
    let mut graces = 0;
    loop {
        tokio::select! {
            biased;
            done = &mut work => return done,
            () = tokio::time::sleep_until(deadline) => {
                let now = tokio::time::Instant::now();
                if now.saturating_duration_since(deadline) > LATE_WAKE && graces < MAX_GRACES {
                    graces += 1;
                    deadline = now + GRACE;
                    continue;
                }
                return Err(RefreshFailure::Unknown {
                    detail: format!("timed out: no answer within {} s", limit.as_secs_f32()),
                });
            }
        }
    }
}

#[derive(Deserialize)]
struct RawAnswer {
    access_token: Option<String>,
    refresh_token: Option<String>,
    id_token: Option<String>,
}

impl TokenEndpoint for CodexTokenEndpoint {
    fn url(&self) -> &str {
        &self.url
    }

    fn refresh<'a>(
        &'a self,
        refresh_token: &'a Secret,
        trigger: RefreshTrigger,
    ) -> RefreshFuture<'a> {
        Box::pin(within(self.timeout, async move {
            let reason = match trigger {
                RefreshTrigger::Unauthorized => "unauthorized",
                _ => "proactive_expiry",
            };
            let body = serde_json::json!({
                "client_id": CLIENT_ID,
                "grant_type": "refresh_token",
                "refresh_reason": reason,
                "refresh_token": refresh_token.expose(),
            });
            let response = self
                .http
                .post(&self.url)
                .json(&body)
                .send()
                .await
                .map_err(|e| transport_failure(&e))?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let bytes = read_limited(response).await?;
            if !(200..300).contains(&status) {
                return Err(classify_error(status, &bytes, retry_after));
            }
            // A success we cannot use is as good as no answer: the token was likely consumed.
            let raw: RawAnswer =
                serde_json::from_slice(&bytes).map_err(|e| RefreshFailure::Unknown {
                    detail: format!(
                        "status {status} with an unreadable body ({})",
                        super::json_error_kind(&e)
                    ),
                })?;
            let Some(access) = raw.access_token.filter(|t| !t.is_empty()) else {
                return Err(RefreshFailure::Unknown {
                    detail: format!("status {status} without an access_token"),
                });
            };
            Ok(TokenAnswer {
                access_token: Secret::new(access),
                refresh_token: raw.refresh_token.filter(|t| !t.is_empty()).map(Secret::new),
                id_token: raw.id_token.filter(|t| !t.is_empty()).map(Secret::new),
            })
        }))
    }
}

async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, RefreshFailure> {
    let mut bytes = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if bytes.len() + chunk.len() > MAX_ANSWER_BYTES {
                    return Err(RefreshFailure::Unknown {
                        detail: "answer larger than 1 MiB".into(),
                    });
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(bytes),
            Err(e) => {
                return Err(RefreshFailure::Unknown {
                    detail: format!("answer cut off: {}", describe(&e)),
                })
            }
        }
    }
}

/// Only a failure to connect proves the request never left; every other transport error happened
/// after the token may have been read by the server.
fn transport_failure(e: &reqwest::Error) -> RefreshFailure {
    if e.is_connect() {
        RefreshFailure::NotSent {
            detail: describe(e),
        }
    } else {
        RefreshFailure::Unknown {
            detail: describe(e),
        }
    }
}

/// reqwest's messages name the URL but never the body; strip the URL's query anyway.
pub(super) fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "connection dropped while reading the answer"
    } else if e.is_request() {
        "connection dropped"
    } else {
        "transport error"
    };
    let mut source = std::error::Error::source(e);
    let mut root = None;
    while let Some(s) = source {
        root = Some(s.to_string());
        source = s.source();
    }
    match root {
        Some(root) => format!("{kind}: {root}"),
        None => kind.to_string(),
    }
}

/// The codes of OpenAI's token endpoint (and OAuth's `invalid_grant`) that mean "this refresh
/// token is dead"; the Codex CLI names the first three to its users the same way.
const PERMANENT_CODES: &[&str] = &[
    "refresh_token_reused",
    "refresh_token_expired",
    "refresh_token_invalidated",
    "invalid_grant",
];

/// Sorts a non-success answer of OpenAI's token endpoint, from its status and JSON body, into
/// the classes the refresh protocol decides on.
fn classify_error(status: u16, body: &[u8], retry_after: Option<Duration>) -> RefreshFailure {
    let code = error_code(body).unwrap_or_else(|| "no error code".to_string());
    if PERMANENT_CODES.contains(&code.as_str()) || status == 401 {
        return RefreshFailure::Rejected { status, code };
    }
    if status >= 500 {
        return RefreshFailure::Unknown {
            detail: format!("status {status} {code}"),
        };
    }
    RefreshFailure::Refused {
        status,
        code,
        retry_after,
    }
}

/// The error code of an OAuth or OpenAI error body: `{"error":{"code":..}}`, `{"error":"..."}`
/// or `{"code":..}`. Only short identifier-like codes are returned, so no echoed input leaks.
pub(super) fn error_code(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let code = match value.get("error") {
        Some(serde_json::Value::Object(error)) => error
            .get("code")
            .or_else(|| error.get("type"))
            .and_then(|c| c.as_str()),
        Some(serde_json::Value::String(error)) => Some(error.as_str()),
        _ => value.get("code").and_then(|c| c.as_str()),
    }?;
    let safe = code.len() <= 64
        && code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    safe.then(|| code.to_string())
}

/// The token endpoint's client; the refresh's own deadline is `CodexTokenEndpoint`'s (`within`).
pub(crate) fn http_client(connect_timeout: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .user_agent(concat!("keyward/", env!("CARGO_PKG_VERSION")))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Work that finishes `after` from now, on tokio's (paused) clock.
    async fn answer_after(after: Duration) -> Result<&'static str, RefreshFailure> {
        tokio::time::sleep(after).await;
        Ok("answer")
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_later_than_the_deadline_is_an_unknown_outcome() {
        let outcome = within(
            Duration::from_secs(10),
            answer_after(Duration::from_secs(12)),
        )
        .await;
        assert!(
            matches!(&outcome, Err(RefreshFailure::Unknown { detail }) if detail.contains("timed out")),
            "{outcome:?}"
        );
    }

    /// The process was stopped for 50 s while its refresh was out (the clock jumps past the
    /// deadline at once); the answer, there by the time it wakes, is read, not given up.
    #[tokio::test(start_paused = true)]
    async fn a_process_woken_long_after_its_deadline_still_reads_the_answer() {
        let refresh = tokio::spawn(within(
            Duration::from_secs(10),
            answer_after(Duration::from_millis(50_500)),
        ));
        tokio::task::yield_now().await;
        tokio::time::advance(Duration::from_secs(50)).await;
        assert_eq!(refresh.await.ok().and_then(Result::ok), Some("answer"));
    }

    #[test]
    fn classifies_like_the_codex_cli() {
        let reused = br#"{"error":{"code":"refresh_token_reused","message":"x"}}"#;
        assert_eq!(
            classify_error(401, reused, None),
            RefreshFailure::Rejected {
                status: 401,
                code: "refresh_token_reused".into()
            }
        );
        let grant = br#"{"error":"invalid_grant","error_description":"rt_abc is unknown"}"#;
        assert!(matches!(
            classify_error(400, grant, None),
            RefreshFailure::Rejected { .. }
        ));
        assert!(matches!(
            classify_error(502, b"<html>", None),
            RefreshFailure::Unknown { .. }
        ));
        assert!(matches!(
            classify_error(429, b"{}", Some(Duration::from_secs(3))),
            RefreshFailure::Refused {
                status: 429,
                retry_after: Some(_),
                ..
            }
        ));
        assert!(matches!(
            classify_error(404, b"not found", None),
            RefreshFailure::Refused { .. }
        ));
    }

    /// A code that is not a plain identifier (it could be echoed input) is not repeated.
    #[test]
    fn odd_codes_are_not_echoed() {
        let body = br#"{"error":{"code":"rt_secret value with spaces"}}"#;
        match classify_error(400, body, None) {
            RefreshFailure::Refused { code, .. } => assert_eq!(code, "no error code"),
            other => panic!("unexpected {other:?}"),
        }
    }
}
