//! An upstream failure inside a stream (`response.failed`, `error`), or a stream that ended
//! without an answer: what every dialect reports, and the HTTP status that best describes it.

use serde_json::{json, Value};

/// An upstream failure reported inside a stream (`response.failed` or `error`), or a stream that
/// ended without an answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StreamFailure {
    /// The HTTP status that best describes it, for a non-streamed answer.
    pub status: u16,
    pub code: Option<String>,
    pub message: String,
}

impl StreamFailure {
    /// From a `response.failed` or `error` event.
    pub(crate) fn from_event(event: &Value) -> Self {
        let error = event
            .pointer("/response/error")
            .filter(|e| e.is_object())
            .or_else(|| event.get("error").filter(|e| e.is_object()))
            .unwrap_or(event);
        let code = error
            .get("code")
            .or_else(|| error.get("type"))
            .and_then(Value::as_str)
            .filter(|c| *c != "error")
            .map(str::to_string);
        let message = error
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("the upstream reported a failure without a message")
            .to_string();
        let status = match code.as_deref() {
            Some(
                "context_length_exceeded"
                | "invalid_prompt"
                | "invalid_request_error"
                | "invalid_image"
                | "unsupported_parameter"
                | "invalid_value",
            ) => 400,
            Some("rate_limit_exceeded" | "usage_limit_reached" | "insufficient_quota") => 429,
            Some("server_is_overloaded" | "slow_down") => 503,
            _ => 502,
        };
        Self {
            status,
            code,
            message,
        }
    }

    /// The stream ended (or broke) before the response was complete.
    pub(crate) fn cut_short(detail: Option<&str>) -> Self {
        Self {
            status: 502,
            code: Some("stream_interrupted".into()),
            message: match detail {
                Some(detail) => format!(
                    "the upstream stream broke off before the answer was complete: {detail}"
                ),
                None => "the upstream stream ended before the answer was complete".into(),
            },
        }
    }

    /// An OpenAI-shaped error object (`{"message","type","code","param"}`).
    pub(crate) fn openai_error(&self) -> Value {
        json!({
            "message": self.message,
            "type": if self.status == 400 { "invalid_request_error" } else { "upstream_error" },
            "code": self.code,
            "param": null,
        })
    }
}
