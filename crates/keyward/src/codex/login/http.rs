//! One request to the sign-in server, bounded in time and size, with its failures sorted the same
//! way for every endpoint (exchange, device code, revoke). A body is never quoted back: only the
//! status and the error code OpenAI's answers carry.

use std::time::Duration;

use super::LoginError;
use crate::codex::token_endpoint::{describe, error_code};

/// Answers of the sign-in server are small; anything far larger is not one.
const MAX_ANSWER_BYTES: usize = 1 << 20;

pub(super) struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Answer {
    pub(super) fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The failure this non-success answer means: the provider's trouble (5xx, 429) or a refusal.
    pub(super) fn failure(&self, url: &str) -> LoginError {
        let code = error_code(&self.body).unwrap_or_else(|| "no error code".into());
        if self.status >= 500 || self.status == 429 {
            LoginError::ProviderFailed {
                url: url.to_string(),
                status: self.status,
                code,
            }
        } else {
            LoginError::Rejected {
                url: url.to_string(),
                status: self.status,
                code,
            }
        }
    }
}

/// Sends `request` (to `url`, named in errors) and reads the whole answer within `timeout`.
pub(super) async fn send(
    request: reqwest::RequestBuilder,
    url: &str,
    timeout: Duration,
) -> Result<Answer, LoginError> {
    let unreachable = |e: &reqwest::Error| LoginError::Unreachable {
        url: url.to_string(),
        detail: describe(e),
    };
    let mut response = request
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| unreachable(&e))?;
    let status = response.status().as_u16();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| unreachable(&e))? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(LoginError::BadAnswer {
                url: url.to_string(),
                detail: "an answer larger than 1 MiB".into(),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Answer { status, body })
}

/// The JSON object of a success answer, or what is wrong with it (never its text).
pub(super) fn json_object(
    answer: &Answer,
    url: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, LoginError> {
    let bad = |detail: String| LoginError::BadAnswer {
        url: url.to_string(),
        detail,
    };
    match serde_json::from_slice(&answer.body) {
        Ok(serde_json::Value::Object(object)) => Ok(object),
        Ok(_) => Err(bad(format!(
            "status {} with a body that is not a JSON object",
            answer.status
        ))),
        Err(e) => Err(bad(format!(
            "status {} with a body that is not JSON ({})",
            answer.status,
            crate::codex::json_error_kind(&e)
        ))),
    }
}

/// The non-empty string field `key` of an answer from `url`, which must have it.
pub(super) fn required(
    object: &serde_json::Map<String, serde_json::Value>,
    key: &str,
    url: &str,
) -> Result<String, LoginError> {
    object
        .get(key)
        .and_then(serde_json::Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .ok_or_else(|| LoginError::BadAnswer {
            url: url.to_string(),
            detail: format!("no {key} in the answer"),
        })
}
