//! An OpenAI API key as an upstream: every dialect reaches `POST {base}/responses`; a 429 is a
//! rate limit until its reset, or an account out of quota.

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{header, HeaderMap};
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::api_key::ApiKeyProfile;
use crate::models::Models;
use crate::profile::ProfileId;
use crate::secret::Secret;
use crate::store::Usage;
use crate::upstream::{
    header as header_text, retry_after, Client, Endpoint, Limit, Outgoing, RequestBody, SendError,
    SendFuture, Sent, Upstream, UpstreamHttp, UpstreamResponse, Wire,
};

/// How long a profile rests after a 429 that names no reset.
const DEFAULT_COOLDOWN_SECS: i64 = 60;
/// An account out of credit does not recover by waiting a minute.
const QUOTA_COOLDOWN_SECS: i64 = 3600;

pub(crate) struct OpenAiUpstream {
    id: ProfileId,
    key: Secret,
    /// Where the key came from (a variable's name, or the config file).
    origin: String,
    responses_url: Endpoint,
    http: UpstreamHttp,
    models: Arc<Models>,
}

impl OpenAiUpstream {
    pub(crate) fn new(profile: &ApiKeyProfile, http: UpstreamHttp, models: Arc<Models>) -> Self {
        Self {
            id: profile.id.clone(),
            key: profile.key.clone(),
            origin: profile.origin.clone(),
            responses_url: Endpoint::new(responses_url(&profile.base_url)),
            http,
            models,
        }
    }
}

pub(crate) fn responses_url(base_url: &str) -> String {
    format!("{}/responses", base_url.trim_end_matches('/'))
}

/// Makes a request one the public API takes, and encodes it. A translated request streams (its
/// answer is read as events) and is not stored (Chat Completions does not store by default); a
/// native caller's request is the caller's business and goes as sent. A large request is encoded
/// off the serving thread (`cpu`). Also says whether the bytes are the caller's own.
pub(crate) async fn encode(request: Outgoing<'_>) -> Result<(Bytes, bool), SendError> {
    let Outgoing {
        body,
        model,
        original,
        native,
        size,
        ..
    } = request;
    let model = model.to_string();
    let original = original.cloned();
    crate::cpu::run(size, move || encode_now(body, &model, original, native))
        .await
        .map_err(|_| SendError::Stopping)?
}

fn encode_now(
    body: RequestBody,
    model: &str,
    original: Option<Bytes>,
    native: bool,
) -> Result<(Bytes, bool), SendError> {
    let mut body = body.into_tree().map_err(SendError::Invalid)?;
    let model_unchanged = body.get("model").and_then(Value::as_str) == Some(model);
    if let (true, true, Some(original)) = (native, model_unchanged, original) {
        return Ok((original, true));
    }
    body.insert("model".into(), Value::String(model.to_string()));
    if !native {
        body.insert("stream".into(), Value::Bool(true));
        body.entry("store").or_insert(Value::Bool(false));
    }
    serde_json::to_vec(&Value::Object(body))
        .map(|bytes| (Bytes::from(bytes), false))
        .map_err(SendError::Encode)
}

/// `POST` to the public API with `key`.
pub(crate) async fn post(
    http: &Client,
    url: &Endpoint,
    key: &Secret,
    body: Bytes,
) -> Result<UpstreamResponse, SendError> {
    let mut headers = HeaderMap::with_capacity(2);
    headers.insert(header::AUTHORIZATION, crate::upstream::bearer(key)?);
    http.post(url, headers, body).await
}

impl Upstream for OpenAiUpstream {
    fn profile(&self) -> &ProfileId {
        &self.id
    }

    fn describe(&self) -> String {
        format!(
            "an OpenAI API key ({}) for {}",
            self.origin, self.responses_url
        )
    }

    fn wire(&self) -> Wire {
        Wire::Responses
    }

    fn model_for(&self, asked: &str) -> Option<String> {
        self.models.resolve(asked)
    }

    fn send<'a>(&'a self, request: Outgoing<'a>) -> SendFuture<'a> {
        Box::pin(async move {
            let (body, verbatim) = encode(request).await?;
            let response = post(&self.http.client(), &self.responses_url, &self.key, body).await?;
            Ok(Sent {
                response,
                dropped: Vec::new(),
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
        rate_limit(status, headers, body, now)
    }

    fn usage(&self, _headers: &HeaderMap, _now: DateTime<Utc>) -> Option<Usage> {
        None
    }
}

/// OpenAI's 429s: a rate limit until `retry-after` (or `x-ratelimit-reset-requests`), or an
/// account out of quota.
pub(crate) fn rate_limit(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> Option<Limit> {
    if status != 429 {
        return None;
    }
    let error: Value = serde_json::from_slice(body).unwrap_or_default();
    let code = error
        .pointer("/error/code")
        .or_else(|| error.pointer("/error/type"))
        .and_then(Value::as_str)
        .unwrap_or("rate_limit_exceeded");
    if code == "insufficient_quota" {
        return Some(Limit {
            until: now + chrono::Duration::seconds(QUOTA_COOLDOWN_SECS),
            reason: "the API account is out of quota (check its billing)".into(),
        });
    }
    let until = retry_after(headers, now)
        .or_else(|| {
            header_text(headers, "x-ratelimit-reset-requests")
                .and_then(duration_text)
                .and_then(|secs| crate::upstream::seconds_from(now, secs))
        })
        .unwrap_or(now + chrono::Duration::seconds(DEFAULT_COOLDOWN_SECS));
    Some(Limit {
        until,
        reason: format!("rate limited ({code})"),
    })
}

/// OpenAI's reset durations: `20ms`, `1s`, `6m0s`, `1h30m`.
fn duration_text(text: &str) -> Option<f64> {
    let mut total = 0.0;
    let mut number = String::new();
    let mut chars = text.trim().chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let value: f64 = number.parse().ok()?;
        number.clear();
        let unit = match c {
            'h' => 3600.0,
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                0.001
            }
            'm' => 60.0,
            's' => 1.0,
            _ => return None,
        };
        total += value * unit;
        any = true;
    }
    (any && number.is_empty()).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use serde_json::Map;

    /// OpenAI's reset durations parse in every form it sends.
    #[test]
    fn reset_durations() {
        assert_eq!(duration_text("1s"), Some(1.0));
        assert_eq!(duration_text("6m0s"), Some(360.0));
        assert_eq!(duration_text("20ms"), Some(0.02));
        assert_eq!(duration_text("1h30m"), Some(5400.0));
        assert_eq!(duration_text("12"), None);
        assert_eq!(duration_text("x"), None);
    }

    /// A rate limit rests until the reset the API gave; running out of quota rests an hour.
    #[test]
    fn limits() {
        let now = Utc::now();
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-ratelimit-reset-requests",
            HeaderValue::from_static("6m0s"),
        );
        let limit = rate_limit(429, &headers, b"{}", now);
        assert_eq!(
            limit.map(|l| l.until),
            Some(now + chrono::Duration::seconds(360))
        );
        let quota = rate_limit(
            429,
            &HeaderMap::new(),
            br#"{"error":{"code":"insufficient_quota"}}"#,
            now,
        );
        assert!(quota.is_some_and(|l| l.reason.contains("quota")));
        assert_eq!(rate_limit(500, &headers, b"", now), None);
    }

    /// A native caller's bytes go untouched; a translated request streams and is not stored.
    #[test]
    fn encoding() {
        let original = Bytes::from_static(br#"{"model":"gpt-6.1-sol","input":"hi"}"#);
        let body: Map<String, Value> = serde_json::from_slice(&original).unwrap_or_default();
        let request = |native| {
            encode_now(
                RequestBody::Tree(body.clone()),
                "gpt-6.1-sol",
                Some(original.clone()),
                native,
            )
        };
        assert_eq!(request(true).ok(), Some((original.clone(), true)));
        let translated: Value = request(false)
            .ok()
            .and_then(|(b, verbatim)| {
                assert!(!verbatim);
                serde_json::from_slice(&b).ok()
            })
            .unwrap_or_default();
        assert_eq!(translated["stream"], true);
        assert_eq!(translated["store"], false);
    }
}
