//! An Anthropic API key as an upstream: Messages callers are passed through to
//! `POST {base}/v1/messages` (other dialects are served by Responses upstreams); a 429 rests until
//! Anthropic's reset.

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue};
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::api_key::ApiKeyProfile;
use crate::dialect::Invalid;
use crate::profile::ProfileId;
use crate::secret::Secret;
use crate::store::Usage;
use crate::upstream::{
    header as header_text, retry_after, Endpoint, Limit, Outgoing, SendError, SendFuture, Sent,
    Upstream, UpstreamHttp, Wire,
};

/// Sent when the caller names no API version.
const DEFAULT_VERSION: &str = "2023-06-01";
const DEFAULT_COOLDOWN_SECS: i64 = 60;
/// Rate-limit reset headers, the soonest-binding first.
const RESET_HEADERS: &[&str] = &[
    "anthropic-ratelimit-requests-reset",
    "anthropic-ratelimit-tokens-reset",
    "anthropic-ratelimit-input-tokens-reset",
    "anthropic-ratelimit-output-tokens-reset",
];

pub(crate) struct AnthropicUpstream {
    id: ProfileId,
    key: Secret,
    /// Where the key came from (a variable's name, or the config file).
    origin: String,
    messages_url: Endpoint,
    http: UpstreamHttp,
}

impl AnthropicUpstream {
    pub(crate) fn new(profile: &ApiKeyProfile, http: UpstreamHttp) -> Self {
        Self {
            id: profile.id.clone(),
            key: profile.key.clone(),
            origin: profile.origin.clone(),
            messages_url: Endpoint::new(format!(
                "{}/v1/messages",
                profile.base_url.trim_end_matches('/')
            )),
            http,
        }
    }
}

impl Upstream for AnthropicUpstream {
    fn profile(&self) -> &ProfileId {
        &self.id
    }

    fn describe(&self) -> String {
        format!(
            "an Anthropic API key ({}) for {}",
            self.origin, self.messages_url
        )
    }

    fn wire(&self) -> Wire {
        Wire::Messages
    }

    /// Claude models, as asked.
    fn model_for(&self, asked: &str) -> Option<String> {
        asked.starts_with("claude-").then(|| asked.to_string())
    }

    fn send<'a>(&'a self, request: Outgoing<'a>) -> SendFuture<'a> {
        Box::pin(async move {
            let Outgoing {
                model,
                original,
                client_headers,
                ..
            } = request;
            // Only Messages callers reach a Messages upstream (`Wire::serves`): their own request
            // goes, with the model this profile serves it by.
            let original = original.ok_or_else(|| {
                SendError::Invalid(Invalid::new(
                    "an Anthropic API key serves Anthropic Messages requests only",
                ))
            })?;
            let (bytes, verbatim) = with_model(original, model)?;
            let mut headers = HeaderMap::with_capacity(4);
            let mut key =
                HeaderValue::try_from(self.key.expose()).map_err(|_| SendError::BadCredential)?;
            key.set_sensitive(true);
            headers.insert("x-api-key", key);
            headers.insert(
                "anthropic-version",
                client_headers
                    .get("anthropic-version")
                    .cloned()
                    .unwrap_or(HeaderValue::from_static(DEFAULT_VERSION)),
            );
            if let Some(betas) = client_headers.get("anthropic-beta") {
                headers.insert("anthropic-beta", betas.clone());
            }
            let response = self
                .http
                .client()
                .post(&self.messages_url, headers, bytes)
                .await?;
            Ok(Sent {
                response,
                dropped: Vec::new(),
                verbatim,
            })
        })
    }

    /// A 429 rests until `retry-after` or the earliest `anthropic-ratelimit-*-reset`.
    fn limit(
        &self,
        status: u16,
        headers: &HeaderMap,
        _body: &[u8],
        now: DateTime<Utc>,
    ) -> Option<Limit> {
        if status != 429 {
            return None;
        }
        let reset = RESET_HEADERS
            .iter()
            .filter_map(|name| header_text(headers, *name))
            .filter_map(|value| DateTime::parse_from_rfc3339(value).ok())
            .map(|t| t.with_timezone(&Utc))
            .filter(|t| *t > now)
            .min();
        let until = retry_after(headers, now)
            .or(reset)
            .unwrap_or(now + chrono::Duration::seconds(DEFAULT_COOLDOWN_SECS));
        Some(Limit {
            until,
            reason: "rate limited".into(),
        })
    }

    fn usage(&self, _headers: &HeaderMap, _now: DateTime<Utc>) -> Option<Usage> {
        None
    }
}

/// The caller's Messages request asking for `model`: its own bytes when it already does.
fn with_model(original: &Bytes, model: &str) -> Result<(Bytes, bool), SendError> {
    let mut body = crate::dialect::parse_object(original).map_err(SendError::Invalid)?;
    if body.get("model").and_then(Value::as_str) == Some(model) {
        return Ok((original.clone(), true));
    }
    body.insert("model".into(), Value::String(model.to_string()));
    serde_json::to_vec(&Value::Object(body))
        .map(|bytes| (Bytes::from(bytes), false))
        .map_err(SendError::Encode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anthropic::{DEFAULT_BASE_URL, PROVIDER};
    use axum::http::HeaderValue;

    /// Only Claude models are served; a 429 rests until the reset Anthropic names.
    #[test]
    fn models_and_limits() {
        let profile = ApiKeyProfile {
            id: ProfileId::new(PROVIDER, "default").unwrap_or_else(|e| panic!("{e}")),
            key: Secret::new("sk-ant-x"),
            base_url: DEFAULT_BASE_URL.into(),
            origin: "test".into(),
        };
        let upstream = AnthropicUpstream::new(&profile, UpstreamHttp);
        assert_eq!(
            upstream.model_for("claude-sonnet-4-5").as_deref(),
            Some("claude-sonnet-4-5")
        );
        assert_eq!(upstream.model_for("gpt-6.1-sol"), None);
        let now = Utc::now();
        let reset = (now + chrono::Duration::seconds(42)).to_rfc3339();
        let mut headers = HeaderMap::new();
        headers.insert(
            "anthropic-ratelimit-requests-reset",
            HeaderValue::from_str(&reset).unwrap_or_else(|e| panic!("{e}")),
        );
        let limit = upstream.limit(429, &headers, b"", now);
        assert_eq!(
            limit.map(|l| l.until.timestamp()),
            Some(now.timestamp() + 42)
        );
        assert_eq!(upstream.limit(529, &headers, b"", now), None);
    }
}
