//! What every upstream offers the gateway, whatever its provider: the API it speaks natively, the
//! models it serves, how it sends a request with its profile's credentials (making the request
//! one it accepts on the way), and what its answers mean for the pool: a refusal that puts the
//! profile in cooldown until a reset, and the usage windows it reports.
//!
//! Provider knowledge lives in each implementation (`codex::upstream`, `openai::upstream`,
//! `anthropic::upstream`), built by its provider ([`crate::provider`]); the gateway and the pool
//! name no provider.

mod http;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::body::Bytes;
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::broker::AccessError;
use crate::dialect::responses::shape::RequestShape;
use crate::dialect::{Dialect, Invalid};
use crate::profile::ProfileId;
use crate::store::Usage;

pub(crate) use http::{Client, Endpoint, UpstreamHttp, UpstreamResponse};

/// The API an upstream speaks natively.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wire {
    /// OpenAI Responses: every client dialect reaches it, translated.
    Responses,
    /// Anthropic Messages: only Messages clients, passed through.
    Messages,
}

impl Wire {
    /// Whether a client speaking `dialect` can be served by this API.
    pub(crate) fn serves(self, dialect: Dialect) -> bool {
        match self {
            Self::Responses => true,
            Self::Messages => dialect == Dialect::Messages,
        }
    }

    /// Whether `dialect` is this API itself (its requests and answers pass through).
    pub(crate) fn is_native(self, dialect: Dialect) -> bool {
        matches!(
            (self, dialect),
            (Self::Responses, Dialect::Responses) | (Self::Messages, Dialect::Messages)
        )
    }
}

/// A public Responses request on its way to an upstream: a tree keyward built (translated from
/// another dialect), or a Responses caller's own bytes, parsed only by an upstream that must
/// change something in them (most requests of the Codex CLI need nothing, and a tree of a 50 KB
/// request cost more than the rest of its proxying).
#[derive(Debug, Clone)]
pub(crate) enum RequestBody {
    Tree(Map<String, Value>),
    /// The caller's bytes, and their shape as read without a tree.
    Raw(Bytes, Arc<RequestShape>),
}

impl Default for RequestBody {
    fn default() -> Self {
        Self::Tree(Map::new())
    }
}

impl RequestBody {
    /// The request as a tree, parsing the caller's bytes if need be.
    pub(crate) fn into_tree(self) -> Result<Map<String, Value>, Invalid> {
        match self {
            Self::Tree(tree) => Ok(tree),
            Self::Raw(bytes, _) => crate::dialect::parse_object(&bytes),
        }
    }
}

/// One request on its way to an upstream.
pub(crate) struct Outgoing<'a> {
    /// The request in the upstream's API: a public Responses request for a Responses upstream
    /// (translated from the caller's dialect, or the caller's own), the caller's Messages request
    /// for a Messages upstream.
    pub body: RequestBody,
    /// The model to ask the upstream for.
    pub model: &'a str,
    /// The caller's own bytes when it speaks the upstream's API: sent untouched if nothing in
    /// the request needs to change.
    pub original: Option<&'a Bytes>,
    /// Whether the caller speaks the upstream's API (its answer is passed through untouched).
    pub native: bool,
    /// The size of the caller's body: preparing a large request runs off the serving thread.
    pub size: usize,
    pub client_headers: &'a HeaderMap,
}

/// An upstream's answer headers and body stream, once sent.
pub(crate) struct Sent {
    pub response: UpstreamResponse,
    /// Request fields the upstream cannot honour that were dropped (upstream API names).
    pub dropped: Vec<String>,
    /// The caller's own bytes went upstream as they came (the Codex CLI's requests): its answer
    /// is the upstream's, passed on byte for byte too.
    pub verbatim: bool,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum SendError {
    /// The profile cannot be served now (needs a login, refreshing failed, ...).
    #[error(transparent)]
    Access(AccessError),
    /// The request is one this upstream refuses before anything is sent.
    #[error("{}", .0.message)]
    Invalid(Invalid),
    /// The upstream could not be reached, or stalled before its answer's head. The error carries
    /// no URL of its own (the upstream's is `url`), and keyward's upstream URLs hold no
    /// credential: those go in headers.
    #[error("cannot reach the upstream {url}: {}", root_cause(.source.as_ref()))]
    Unreachable {
        url: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// keyward is stopping: the request was not sent.
    #[error("keyward is stopping")]
    Stopping,
    /// The credential cannot be sent in a header (it holds characters a header cannot carry).
    #[error(
        "the profile's credential cannot be sent: it holds characters an HTTP header cannot carry"
    )]
    BadCredential,
    /// The configured URL does not parse.
    #[error("{0} is not a URL")]
    NotAUrl(String),
    /// The request could not be written out as JSON.
    #[error("the request cannot be encoded: {0}")]
    Encode(#[source] serde_json::Error),
}

pub(crate) type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<Sent, SendError>> + Send + 'a>>;

/// A refusal that keeps the profile out of rotation until `until`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Limit {
    pub until: DateTime<Utc>,
    pub reason: String,
}

pub(crate) trait Upstream: Send + Sync {
    fn profile(&self) -> &ProfileId;

    /// Where this profile's credential comes from, for `status` (never the credential).
    fn describe(&self) -> String;

    fn wire(&self) -> Wire;

    /// The upstream model for a requested name, or `None` when this profile does not serve it.
    fn model_for(&self, asked: &str) -> Option<String>;

    /// Makes `request` one the upstream accepts and sends it with the profile's credentials.
    fn send<'a>(&'a self, request: Outgoing<'a>) -> SendFuture<'a>;

    /// What a refusal means for the pool: `Some` when the profile should rest until a reset.
    fn limit(
        &self,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Option<Limit>;

    /// The usage windows an answer reports, if this upstream reports any.
    fn usage(&self, headers: &HeaderMap, now: DateTime<Utc>) -> Option<Usage>;

    /// Whether its answers report usage windows (a subscription's), which the `headroom` route
    /// strategy ranks it by.
    fn reports_usage(&self) -> bool {
        false
    }
}

/// `Retry-After` as a time: seconds, or an HTTP date.
pub(crate) fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let value = headers.get("retry-after")?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(now + chrono::Duration::seconds(secs.min(MAX_COOLDOWN_SECS) as i64));
    }
    DateTime::parse_from_rfc2822(value)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A reset an upstream names further out than this is taken as this: a week is longer than any
/// subscription window, and a garbled value must not park a profile for years.
pub(crate) const MAX_COOLDOWN_SECS: u64 = 7 * 86_400;

/// A number of seconds from an upstream, bounded.
pub(crate) fn seconds_from(now: DateTime<Utc>, secs: f64) -> Option<DateTime<Utc>> {
    (secs.is_finite() && secs >= 0.0).then(|| {
        let secs = secs.min(MAX_COOLDOWN_SECS as f64);
        now + chrono::Duration::milliseconds((secs * 1000.0) as i64)
    })
}

/// `Bearer <token>` as a header value marked sensitive (never shown in a header's debug output).
pub(crate) fn bearer(token: &crate::secret::Secret) -> Result<axum::http::HeaderValue, SendError> {
    let mut value = axum::http::HeaderValue::try_from(format!("Bearer {}", token.expose()))
        .map_err(|_| SendError::BadCredential)?;
    value.set_sensitive(true);
    Ok(value)
}

/// A header's value as text (`name` as text, or a `HeaderName` made once, which is not parsed
/// again).
pub(crate) fn header(
    headers: &HeaderMap,
    name: impl axum::http::header::AsHeaderName,
) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The root cause of an error chain, for "cannot reach" messages.
pub(crate) fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut current = e;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    /// Retry-After is read as seconds or as a date, and an absurd one is capped.
    #[test]
    fn retry_after_forms() {
        let now = Utc::now();
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("30"));
        assert_eq!(
            retry_after(&headers, now),
            Some(now + chrono::Duration::seconds(30))
        );
        headers.insert("retry-after", HeaderValue::from_static("99999999999"));
        assert_eq!(
            retry_after(&headers, now),
            Some(now + chrono::Duration::seconds(MAX_COOLDOWN_SECS as i64))
        );
        headers.insert(
            "retry-after",
            HeaderValue::from_static("Wed, 21 Oct 2026 07:28:00 GMT"),
        );
        assert!(retry_after(&headers, now).is_some());
        headers.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers, now), None);
        assert_eq!(seconds_from(now, -1.0), None);
        assert_eq!(seconds_from(now, f64::NAN), None);
    }
}
