//! A Codex login as an upstream: the ChatGPT Codex backend with the login's access token and
//! account id, requests normalised for the backend ([`super::backend`]), one re-validation of the
//! login on a 401; its usage limits and usage windows read from its answers. An `auth.json` in
//! API-key mode is served through OpenAI's public API with that key instead.

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::backend;
use crate::broker::{Broker, Grant};
use crate::models::Models;
use crate::openai;
use crate::profile::ProfileId;
use crate::secret::Secret;
use crate::store::{Usage, UsageWindow};
use crate::upstream::{
    header as header_text, retry_after, seconds_from, Endpoint, Limit, Outgoing, RequestBody,
    SendError, SendFuture, Sent, Upstream, UpstreamHttp, UpstreamResponse, Wire,
};

/// How long a profile rests after a 429 that names no reset.
const DEFAULT_COOLDOWN_SECS: i64 = 60;

pub(crate) struct CodexUpstream {
    id: ProfileId,
    broker: Arc<Broker>,
    http: UpstreamHttp,
    responses_url: Endpoint,
    /// Where an `auth.json` in API-key mode sends its requests.
    openai_responses_url: Endpoint,
    models: Arc<Models>,
}

impl CodexUpstream {
    pub(crate) fn new(
        id: ProfileId,
        broker: Arc<Broker>,
        http: UpstreamHttp,
        base_url: &str,
        openai_base_url: &str,
        models: Arc<Models>,
    ) -> Self {
        Self {
            id,
            broker,
            http,
            responses_url: Endpoint::new(backend::responses_url(base_url)),
            openai_responses_url: Endpoint::new(openai::responses_url(openai_base_url)),
            models,
        }
    }

    /// The API key the login's `auth.json` holds instead of a ChatGPT login, as of the snapshot
    /// the last access read.
    fn api_key(&self) -> Option<Secret> {
        self.broker.profile(&self.id)?.view().api_key.clone()
    }

    /// An `auth.json` in API-key mode: the public OpenAI API with that key.
    async fn send_with_key(&self, request: Outgoing<'_>, key: &Secret) -> Result<Sent, SendError> {
        let (body, verbatim) = openai::encode(request).await?;
        let response =
            openai::post(&self.http.client(), &self.openai_responses_url, key, body).await?;
        Ok(Sent {
            response,
            dropped: Vec::new(),
            verbatim,
        })
    }

    async fn post(
        &self,
        grant: &Grant,
        client_headers: &HeaderMap,
        body: Bytes,
    ) -> Result<UpstreamResponse, SendError> {
        let mut headers = HeaderMap::with_capacity(client_headers.len() + 4);
        for (name, value) in client_headers {
            if forwardable(name) {
                headers.append(name, value.clone());
            }
        }
        if !headers.contains_key(&ORIGINATOR) {
            headers.insert(ORIGINATOR, HeaderValue::from_static(backend::ORIGINATOR));
        }
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/event-stream"),
        );
        let credential = &grant.credential;
        headers.insert(
            header::AUTHORIZATION,
            crate::upstream::bearer(&credential.access_token)?,
        );
        if let Some(account) = credential
            .account()
            .and_then(|a| HeaderValue::from_str(a).ok())
        {
            headers.insert(CHATGPT_ACCOUNT_ID, account);
        }
        self.http
            .client()
            .post(&self.responses_url, headers, body)
            .await
    }
}

/// What goes to the backend for one request.
struct Prepared {
    bytes: Bytes,
    /// Fields dropped on the way (Responses names).
    dropped: Vec<String>,
    /// `bytes` are the caller's own.
    verbatim: bool,
}

/// The bytes to send for `body` asking for `model`, and the fields dropped on the way. A caller's
/// own request the backend takes as it is (the Codex CLI's) goes byte for byte, checked without
/// building a tree; one of plain members and a string `input` is normalised without one too; any
/// other is normalised through one. `original` is the caller's own bytes
/// when it speaks the backend's API.
fn prepare(body: RequestBody, model: &str, original: Option<Bytes>) -> Result<Prepared, SendError> {
    if let RequestBody::Raw(bytes, shape) = &body {
        if backend::suits_as_is(shape, model) {
            return Ok(Prepared {
                bytes: bytes.clone(),
                dropped: Vec::new(),
                verbatim: true,
            });
        }
        if let Some((bytes, normalised)) = backend::normalise_flat(bytes, model) {
            return Ok(Prepared {
                bytes: Bytes::from(bytes),
                dropped: normalised.dropped,
                verbatim: false,
            });
        }
    }
    let mut body = body.into_tree().map_err(SendError::Invalid)?;
    let model_unchanged = body.get("model").and_then(Value::as_str) == Some(model);
    let normalised = backend::normalise(&mut body).map_err(SendError::Invalid)?;
    if let (Some(original), true, false) = (original, model_unchanged, normalised.changed) {
        return Ok(Prepared {
            bytes: original,
            dropped: normalised.dropped,
            verbatim: true,
        });
    }
    body.insert("model".into(), Value::String(model.to_string()));
    let bytes = serde_json::to_vec(&Value::Object(body)).map_err(SendError::Encode)?;
    Ok(Prepared {
        bytes: Bytes::from(bytes),
        dropped: normalised.dropped,
        verbatim: false,
    })
}

/// Client headers passed to the backend: the Codex CLI's session and feature headers. Everything
/// else (the client's credentials, cookies, `Origin`, `Referer`, its user agent) stays with
/// keyward.
fn forwardable(name: &HeaderName) -> bool {
    let name = name.as_str();
    matches!(
        name,
        "originator"
            | "session_id"
            | "session-id"
            | "thread-id"
            | "conversation_id"
            | "openai-beta"
            | "version"
            | "accept-language"
            | "x-client-request-id"
    ) || ["x-codex-", "x-openai-", "oai-"]
        .iter()
        .any(|prefix| name.starts_with(prefix))
}

impl Upstream for CodexUpstream {
    fn profile(&self) -> &ProfileId {
        &self.id
    }

    fn describe(&self) -> String {
        self.broker
            .profile(&self.id)
            .map(|runtime| runtime.source.location())
            .unwrap_or_default()
    }

    fn wire(&self) -> Wire {
        Wire::Responses
    }

    fn model_for(&self, asked: &str) -> Option<String> {
        self.models.resolve(asked)
    }

    fn send<'a>(&'a self, request: Outgoing<'a>) -> SendFuture<'a> {
        Box::pin(async move {
            // The login first: one freshness check of the source per request.
            let mut grant = match self.broker.access(&self.id).await {
                Ok(grant) => grant,
                Err(refused) => {
                    return match self.api_key() {
                        Some(key) => self.send_with_key(request, &key).await,
                        None => Err(SendError::Access(refused)),
                    }
                }
            };
            let Outgoing {
                body,
                model,
                original,
                native,
                size,
                client_headers,
            } = request;
            let model = model.to_string();
            let original = native.then(|| original.cloned()).flatten();
            let Prepared {
                bytes,
                dropped,
                verbatim,
            } = crate::cpu::run(size, move || prepare(body, &model, original))
                .await
                .map_err(|_| SendError::Stopping)??;
            let mut response = self.post(&grant, client_headers, bytes.clone()).await?;
            if response.status() == StatusCode::UNAUTHORIZED {
                tracing::info!(profile = %self.id, "upstream answered 401; re-validating the login");
                grant = self
                    .broker
                    .reauthorize(&self.id, &grant.credential)
                    .await
                    .map_err(SendError::Access)?;
                response = self.post(&grant, client_headers, bytes).await?;
            }
            Ok(Sent {
                response,
                dropped,
                verbatim,
            })
        })
    }

    fn limit(
        &self,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Option<Limit> {
        usage_limit(status, headers, body, now)
    }

    fn usage(&self, headers: &HeaderMap, now: DateTime<Utc>) -> Option<Usage> {
        usage_windows(headers, now)
    }

    fn reports_usage(&self) -> bool {
        true
    }
}

/// A 429 from the backend: a ChatGPT usage limit (`usage_limit_reached`, with the reset in the
/// body as `resets_at` or `resets_in_seconds`), or a plain rate limit; otherwise the reset is
/// read from the `x-codex-*-reset-after-seconds` window that is full, then `retry-after`.
pub(crate) fn usage_limit(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> Option<Limit> {
    if status != 429 {
        return None;
    }
    let body: Value = serde_json::from_slice(body).unwrap_or_default();
    let error = body.get("error").unwrap_or(&Value::Null);
    let kind = error
        .get("type")
        .or_else(|| error.get("code"))
        .and_then(Value::as_str)
        .unwrap_or("rate_limit_exceeded");
    let from_body = error
        .get("resets_at")
        .and_then(Value::as_i64)
        .and_then(|at| DateTime::from_timestamp(at, 0))
        .filter(|at| *at > now)
        .or_else(|| {
            error
                .get("resets_in_seconds")
                .and_then(Value::as_f64)
                .and_then(|secs| seconds_from(now, secs))
        });
    let full_window = WINDOW_HEADERS.iter().find_map(|window| {
        let used: f64 = header_text(headers, &window.used_percent)?.parse().ok()?;
        (used >= 100.0).then_some(())?;
        header_text(headers, &window.reset_after_seconds)?
            .parse::<f64>()
            .ok()
            .and_then(|secs| seconds_from(now, secs))
    });
    let until = from_body
        .or(full_window)
        .or_else(|| retry_after(headers, now))
        .unwrap_or(now + chrono::Duration::seconds(DEFAULT_COOLDOWN_SECS));
    let reason = match (kind, error.get("plan_type").and_then(Value::as_str)) {
        ("usage_limit_reached", Some(plan)) => format!("ChatGPT usage limit reached ({plan} plan)"),
        ("usage_limit_reached", None) => "ChatGPT usage limit reached".into(),
        (other, _) => format!("rate limited ({other})"),
    };
    Some(Limit { until, reason })
}

/// The `x-codex-primary-*` and `x-codex-secondary-*` windows of an answer.
pub(crate) fn usage_windows(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Usage> {
    let window = |names: &WindowHeaders| {
        let used_percent = header_text(headers, &names.used_percent)?
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|p| p.is_finite())?;
        let window_minutes =
            header_text(headers, &names.window_minutes).and_then(|v| v.trim().parse().ok());
        let resets_at = header_text(headers, &names.reset_after_seconds)
            .and_then(|v| v.trim().parse::<f64>().ok())
            .and_then(|secs| seconds_from(now, secs))
            .or_else(|| {
                header_text(headers, &names.reset_at)
                    .and_then(|v| v.trim().parse::<i64>().ok())
                    .and_then(|at| DateTime::from_timestamp(at, 0))
            });
        Some(UsageWindow {
            name: names.window.to_string(),
            used_percent,
            window_minutes,
            resets_at,
        })
    };
    let windows: Vec<UsageWindow> = WINDOW_HEADERS.iter().filter_map(window).collect();
    (!windows.is_empty()).then_some(Usage {
        windows,
        observed_at: now,
    })
}

/// The backend's own request headers, named once: a name given as text is parsed (or checked) on
/// every use.
const ORIGINATOR: HeaderName = HeaderName::from_static("originator");
const CHATGPT_ACCOUNT_ID: HeaderName = HeaderName::from_static("chatgpt-account-id");

/// The headers of one of the backend's usage windows (in the order `status` shows them), spelled
/// out once: every answer is read for them.
struct WindowHeaders {
    window: &'static str,
    used_percent: HeaderName,
    window_minutes: HeaderName,
    reset_after_seconds: HeaderName,
    reset_at: HeaderName,
}

const WINDOW_HEADERS: [WindowHeaders; 2] = [
    WindowHeaders {
        window: "primary",
        used_percent: HeaderName::from_static("x-codex-primary-used-percent"),
        window_minutes: HeaderName::from_static("x-codex-primary-window-minutes"),
        reset_after_seconds: HeaderName::from_static("x-codex-primary-reset-after-seconds"),
        reset_at: HeaderName::from_static("x-codex-primary-reset-at"),
    },
    WindowHeaders {
        window: "secondary",
        used_percent: HeaderName::from_static("x-codex-secondary-used-percent"),
        window_minutes: HeaderName::from_static("x-codex-secondary-window-minutes"),
        reset_after_seconds: HeaderName::from_static("x-codex-secondary-reset-after-seconds"),
        reset_at: HeaderName::from_static("x-codex-secondary-reset-at"),
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    /// The usage limit's reset comes from the body first, then the full window's header, then
    /// `retry-after`; other statuses are no limit.
    #[test]
    fn usage_limits_rest_until_the_reset() {
        let now = Utc::now();
        let body = br#"{"error":{"type":"usage_limit_reached","plan_type":"plus","resets_in_seconds":3600}}"#;
        let limit = usage_limit(429, &HeaderMap::new(), body, now);
        assert_eq!(
            limit.clone().map(|l| l.until),
            Some(now + chrono::Duration::seconds(3600))
        );
        assert!(limit.is_some_and(|l| l.reason.contains("plus plan")));
        let at = now.timestamp() + 120;
        let body = format!(r#"{{"error":{{"type":"usage_limit_reached","resets_at":{at}}}}}"#);
        assert_eq!(
            usage_limit(429, &HeaderMap::new(), body.as_bytes(), now).map(|l| l.until.timestamp()),
            Some(at)
        );
        let windows = headers(&[
            ("x-codex-primary-used-percent", "100"),
            ("x-codex-primary-reset-after-seconds", "90"),
            ("retry-after", "5"),
        ]);
        assert_eq!(
            usage_limit(429, &windows, b"{}", now).map(|l| l.until),
            Some(now + chrono::Duration::seconds(90))
        );
        let retry = headers(&[("retry-after", "5")]);
        assert_eq!(
            usage_limit(429, &retry, b"not json", now).map(|l| l.until),
            Some(now + chrono::Duration::seconds(5))
        );
        assert_eq!(usage_limit(400, &retry, b"{}", now), None);
    }

    /// Both windows are read from an answer's headers; an answer without them reports none.
    #[test]
    fn usage_windows_are_read() {
        let now = Utc::now();
        let usage = usage_windows(
            &headers(&[
                ("x-codex-primary-used-percent", "12.5"),
                ("x-codex-primary-window-minutes", "300"),
                ("x-codex-primary-reset-after-seconds", "600"),
                ("x-codex-secondary-used-percent", "40"),
            ]),
            now,
        );
        let usage = usage.unwrap_or_else(|| panic!("no usage"));
        let [primary, secondary] = usage.windows.as_slice() else {
            panic!("not two windows: {usage:?}")
        };
        assert_eq!(primary.name, "primary");
        assert_eq!(primary.used_percent, 12.5);
        assert_eq!(primary.window_minutes, Some(300));
        assert_eq!(
            primary.resets_at,
            Some(now + chrono::Duration::seconds(600))
        );
        assert_eq!(
            (secondary.name.as_str(), secondary.used_percent),
            ("secondary", 40.0)
        );
        assert!(usage_windows(&HeaderMap::new(), now).is_none());
    }
}
