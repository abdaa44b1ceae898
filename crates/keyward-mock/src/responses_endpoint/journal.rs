//! What the model endpoints remember between requests: the last requests they
//! received (for `GET /admin/requests`, so tests can assert what keyward sent
//! upstream, and to which upstream) and the prompt cache keys seen (for
//! `cached_tokens`).

use std::collections::{HashSet, VecDeque};

use axum::http::HeaderMap;
use serde_json::{json, Map, Value};

/// How many requests the journal keeps, newest last.
const KEPT: usize = 50;

/// The Codex request headers worth asserting on. Never `authorization`: the
/// journal is served to anyone who asks. The Codex CLI 0.169 sends
/// `session-id`; the underscore spelling is what older clients send. Every
/// endpoint records `content-encoding`: a proxy that decoded a body must not
/// pass the header on.
const CODEX_HEADERS: &[&str] = &[
    "originator",
    "session_id",
    "session-id",
    "user-agent",
    "chatgpt-account-id",
    "content-encoding",
];
/// The OpenAI API's request headers worth asserting on (never `authorization`).
const OPENAI_HEADERS: &[&str] = &[
    "user-agent",
    "openai-organization",
    "openai-project",
    "openai-beta",
    "content-encoding",
];
/// The Anthropic API's request headers worth asserting on (never `x-api-key`).
const ANTHROPIC_HEADERS: &[&str] = &[
    "user-agent",
    "anthropic-version",
    "anthropic-beta",
    "content-encoding",
];

/// Which upstream a request went to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// `POST /backend-api/codex/responses`
    Codex,
    /// `POST /v1/responses`
    OpenAi,
    /// `POST /v1/messages`
    Anthropic,
}

impl Endpoint {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Codex => "codex",
            Self::OpenAi => "openai",
            Self::Anthropic => "anthropic",
        }
    }

    fn recorded_headers(self) -> &'static [&'static str] {
        match self {
            Self::Codex => CODEX_HEADERS,
            Self::OpenAi => OPENAI_HEADERS,
            Self::Anthropic => ANTHROPIC_HEADERS,
        }
    }
}

#[derive(Default)]
pub(crate) struct Journal {
    recent: VecDeque<Value>,
    cache_keys: HashSet<String>,
}

impl Journal {
    pub(crate) fn record(&mut self, entry: Value) {
        if self.recent.len() == KEPT {
            self.recent.pop_front();
        }
        self.recent.push_back(entry);
    }

    /// The recorded requests, oldest first.
    pub(crate) fn recent(&self) -> Vec<Value> {
        self.recent.iter().cloned().collect()
    }

    /// Notes `key` and tells whether it had been seen before, as a prompt cache
    /// hit needs an earlier request with the same key.
    pub(crate) fn cache_hit(&mut self, key: &str) -> bool {
        !self.cache_keys.insert(key.to_owned())
    }
}

/// How an endpoint answered a request.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub(crate) status: u16,
    /// The refusal's message, when the request was refused.
    pub(crate) rejection: Option<String>,
    /// The scenario answered, when the request was accepted.
    pub(crate) scenario: Option<&'static str>,
    /// The ChatGPT account whose token was accepted (Codex).
    pub(crate) account_id: Option<String>,
    /// The last four characters of the API key presented (OpenAI, Anthropic).
    pub(crate) api_key_last4: Option<String>,
}

impl Outcome {
    /// An answer with `status` and nothing else known.
    pub(crate) fn status(status: u16) -> Self {
        Self {
            status,
            ..Self::default()
        }
    }
}

/// A journal entry: the endpoint, the body (parsed when it is JSON, else as
/// text), the endpoint's recorded headers and the outcome.
pub(crate) fn entry(
    endpoint: Endpoint,
    headers: &HeaderMap,
    body: &[u8],
    outcome: &Outcome,
) -> Value {
    let body = serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()));
    let recorded: Map<String, Value> = endpoint
        .recorded_headers()
        .iter()
        .map(|name| {
            let value = headers
                .get(*name)
                .and_then(|value| value.to_str().ok())
                .map_or(Value::Null, Value::from);
            ((*name).to_owned(), value)
        })
        .collect();
    json!({
        "at_ms": chrono::Utc::now().timestamp_millis(),
        "endpoint": endpoint.name(),
        "status": outcome.status,
        "rejection": outcome.rejection,
        "scenario": outcome.scenario,
        "account_id": outcome.account_id,
        "api_key_last4": outcome.api_key_last4,
        "headers": recorded,
        "body": body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    /// The journal keeps the newest 50 entries, and a cache key hits from its second use.
    #[test]
    fn keeps_the_newest_and_counts_cache_keys() {
        let mut journal = Journal::default();
        for n in 0..60 {
            journal.record(json!(n));
        }
        let recent = journal.recent();
        assert_eq!(recent.len(), KEPT);
        assert_eq!(recent.first(), Some(&json!(10)));
        assert_eq!(recent.last(), Some(&json!(59)));
        assert!(!journal.cache_hit("k"));
        assert!(journal.cache_hit("k"));
        assert!(!journal.cache_hit("other"));
    }

    /// An entry names the recorded headers (absent ones as null), never the
    /// authorization header, and keeps a non-JSON body as text.
    #[test]
    fn entries_record_headers_but_not_credentials() {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", HeaderValue::from_static("Bearer secret"));
        headers.insert("originator", HeaderValue::from_static("codex_exec"));
        headers.insert("session-id", HeaderValue::from_static("s-1"));
        let outcome = Outcome {
            rejection: Some("Input must be a list".into()),
            ..Outcome::status(400)
        };
        let entry = entry(Endpoint::Codex, &headers, b"{not json", &outcome);
        assert_eq!(entry["endpoint"], "codex");
        assert_eq!(
            entry["headers"],
            json!({
                "originator": "codex_exec",
                "session_id": null,
                "session-id": "s-1",
                "user-agent": null,
                "chatgpt-account-id": null,
                "content-encoding": null,
            })
        );
        assert_eq!(entry["body"], "{not json");
        assert_eq!(entry["rejection"], "Input must be a list");
        assert!(!entry.to_string().contains("secret"));
    }

    /// API endpoints record their own headers, the key's last four characters
    /// and never the key itself.
    #[test]
    fn api_entries_name_the_key_by_its_tail() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-api-key",
            HeaderValue::from_static("sk-ant-mock-secret-9f3a"),
        );
        headers.insert("anthropic-version", HeaderValue::from_static("2023-06-01"));
        let outcome = Outcome {
            scenario: Some("text"),
            api_key_last4: Some("9f3a".into()),
            ..Outcome::status(200)
        };
        let entry = entry(Endpoint::Anthropic, &headers, b"{}", &outcome);
        assert_eq!(entry["endpoint"], "anthropic");
        assert_eq!(entry["api_key_last4"], "9f3a");
        assert_eq!(
            entry["headers"],
            json!({"user-agent": null, "anthropic-version": "2023-06-01", "anthropic-beta": null, "content-encoding": null})
        );
        assert!(!entry.to_string().contains("secret"));
    }
}
