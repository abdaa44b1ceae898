//! What the responses endpoint remembers between requests: the last requests
//! it received (for `GET /admin/requests`, so tests can assert what keyward
//! sent upstream) and the prompt cache keys it has seen (for `cached_tokens`).

use std::collections::{HashSet, VecDeque};

use axum::http::HeaderMap;
use serde_json::{json, Map, Value};

/// How many requests the journal keeps, newest last.
const KEPT: usize = 50;

/// The request headers worth asserting on. Never `authorization`: the journal
/// is served to anyone who asks. The Codex CLI 0.169 sends `session-id`; the
/// underscore spelling is what older clients send.
const RECORDED_HEADERS: &[&str] = &[
    "originator",
    "session_id",
    "session-id",
    "user-agent",
    "chatgpt-account-id",
];

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

/// How the endpoint answered a request.
pub(crate) struct Outcome {
    pub(crate) status: u16,
    /// The rules' refusal message, when they refused it.
    pub(crate) rejection: Option<String>,
    /// The scenario answered, when the request was accepted.
    pub(crate) scenario: Option<&'static str>,
}

/// A journal entry: the body (parsed when it is JSON, else as text), the
/// recorded headers and the outcome.
pub(crate) fn entry(headers: &HeaderMap, body: &[u8], outcome: &Outcome) -> Value {
    let body = serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()));
    let recorded: Map<String, Value> = RECORDED_HEADERS
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
        "status": outcome.status,
        "rejection": outcome.rejection,
        "scenario": outcome.scenario,
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
            status: 400,
            rejection: Some("Input must be a list".into()),
            scenario: None,
        };
        let entry = entry(&headers, b"{not json", &outcome);
        assert_eq!(
            entry["headers"],
            json!({
                "originator": "codex_exec",
                "session_id": null,
                "session-id": "s-1",
                "user-agent": null,
                "chatgpt-account-id": null,
            })
        );
        assert_eq!(entry["body"], "{not json");
        assert_eq!(entry["rejection"], "Input must be a list");
        assert!(!entry.to_string().contains("secret"));
    }
}
