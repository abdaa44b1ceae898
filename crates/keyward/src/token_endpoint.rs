//! The provider's token endpoint, and what a refresh attempt can come back with.
//!
//! The outcome classes are what the refresh protocol decides on: only a definite answer tells
//! whether the refresh token was consumed, so anything short of one is `Unknown`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::credential::TokenAnswer;
use crate::secret::Secret;

/// Why a refresh was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshTrigger {
    /// The scheduler, ahead of expiry.
    Ahead,
    /// A request found the access token expired (or about to).
    Expired,
    /// The upstream answered 401 to the current access token.
    Unauthorized,
    /// `keyward token --refresh`.
    Command,
}

impl RefreshTrigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ahead => "ahead",
            Self::Expired => "expired",
            Self::Unauthorized => "unauthorized",
            Self::Command => "command",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshFailure {
    /// The endpoint refused this refresh token for good (reused, expired, revoked, invalid grant):
    /// never send it again.
    Rejected { status: u16, code: String },
    /// The request never reached the endpoint (connection refused, DNS): the token is unspent.
    NotSent { detail: String },
    /// The endpoint turned the request away before processing it (429, or a 4xx that is about the
    /// request, not the token): unspent; try again later.
    Refused {
        status: u16,
        code: String,
        retry_after: Option<Duration>,
    },
    /// No usable answer (timeout, dropped connection, 5xx, garbled success): the token may or may
    /// not have been consumed.
    Unknown { detail: String },
}

impl fmt::Display for RefreshFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rejected { status, code } => {
                write!(
                    f,
                    "the token endpoint rejected the refresh token ({status} {code})"
                )
            }
            Self::NotSent { detail } => {
                write!(f, "the token endpoint could not be reached ({detail})")
            }
            Self::Refused { status, code, .. } => {
                write!(
                    f,
                    "the token endpoint refused the request ({status} {code})"
                )
            }
            Self::Unknown { detail } => write!(f, "no answer from the token endpoint ({detail})"),
        }
    }
}

/// Error codes that mean "this refresh token is dead".
pub const PERMANENT_CODES: &[&str] = &[
    "refresh_token_reused",
    "refresh_token_expired",
    "refresh_token_invalidated",
    "invalid_grant",
];

/// Classifies a non-success answer of a token endpoint from its status and JSON body.
pub fn classify_error(status: u16, body: &[u8], retry_after: Option<Duration>) -> RefreshFailure {
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
fn error_code(body: &[u8]) -> Option<String> {
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

pub type RefreshFuture<'a> =
    Pin<Box<dyn Future<Output = Result<TokenAnswer, RefreshFailure>> + Send + 'a>>;

/// A provider's OAuth token endpoint.
pub trait TokenEndpoint: Send + Sync + 'static {
    fn refresh<'a>(
        &'a self,
        refresh_token: &'a Secret,
        trigger: RefreshTrigger,
    ) -> RefreshFuture<'a>;

    fn url(&self) -> &str;
}

#[cfg(test)]
mod tests {
    use super::*;

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
