//! The one place failures become HTTP answers, in the caller's dialect: OpenAI's
//! `{"error":{"message","type","code","param"}}` on OpenAI routes, Anthropic's
//! `{"type":"error","error":{"type","message"}}` on `/v1/messages`, Google's
//! `{"error":{"code","message","status","details"}}` on Gemini's routes. keyward's own failures
//! say what the user can do; the upstream's keep their status and message.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::broker::AccessError;
use crate::dialect::responses::StreamFailure;
use crate::dialect::{cut_short, gemini, Dialect, Invalid};

#[derive(Debug)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    /// The OpenAI error `type`.
    pub kind: &'static str,
    pub code: Option<String>,
    pub message: String,
    pub param: Option<String>,
    pub retry_after: Option<u64>,
    /// Rarely needed parts, boxed to keep the error small.
    pub extras: Option<Box<ErrorExtras>>,
}

/// An error's rarer parts: a whole error object, extra headers.
#[derive(Debug, Default)]
pub(crate) struct ErrorExtras {
    /// An OpenAI-shaped error object given whole to OpenAI-dialect callers (an upstream's own,
    /// which may carry more than the four standard fields, such as a usage limit's reset time).
    pub error: Option<Value>,
    /// Headers to send with it (an upstream's `retry-after` and usage windows, or keyward's own).
    pub headers: HeaderMap,
    /// Anthropic's `error.details` (its SDKs act on `details.error_code`, e.g. to replay a
    /// message thread keyward does not hold).
    pub details: Option<Value>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, code: &str, message: String) -> Self {
        Self {
            status,
            kind,
            code: Some(code.to_string()),
            message,
            param: None,
            retry_after: None,
            extras: None,
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "invalid_request",
            message.into(),
        )
    }

    pub(crate) fn upstream(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_GATEWAY,
            "upstream_error",
            "upstream_unreachable",
            message.into(),
        )
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "not_found",
            message.into(),
        )
    }

    /// keyward cannot serve this now (it is stopping, or busy): try again.
    pub(crate) fn unavailable(message: impl Into<String>) -> Self {
        Self {
            retry_after: Some(1),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
                "unavailable",
                message.into(),
            )
        }
    }

    pub(crate) fn with_code(self, code: &str) -> Self {
        Self {
            code: Some(code.to_string()),
            ..self
        }
    }

    pub(crate) fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request_error",
            "method_not_allowed",
            message.into(),
        )
    }

    pub(crate) fn unknown_model(model: &str) -> Self {
        Self {
            param: Some("model".into()),
            ..Self::new(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                "model_not_found",
                format!("keyward does not serve the model `{}`: ask for an OpenAI model (GET /v1/models lists them), or map this name to one under [models.aliases] in keyward's config.toml", cut_short(model)),
            )
        }
    }

    /// Every profile that could serve rests at a usage limit, the earliest until `resets_at`:
    /// 429 with `Retry-After`, and for OpenAI-dialect callers the error object in the Codex
    /// backend's own shape (`usage_limit_reached`, `resets_at`, `resets_in_seconds`), from which
    /// the Codex CLI tells its user when to try again.
    pub(crate) fn usage_limit_reached(
        message: String,
        resets_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Self {
        let resets_in = (resets_at - now).num_seconds().max(1);
        Self {
            status: StatusCode::TOO_MANY_REQUESTS,
            kind: "usage_limit_reached",
            code: Some("usage_limit_reached".into()),
            retry_after: Some(resets_in as u64),
            extras: Some(Box::new(ErrorExtras {
                error: Some(json!({
                    "type": "usage_limit_reached",
                    "code": "usage_limit_reached",
                    "message": message,
                    "param": null,
                    "resets_at": resets_at.timestamp(),
                    "resets_in_seconds": resets_in,
                })),
                headers: HeaderMap::new(),
                details: None,
            })),
            ..Self::bad_request(message)
        }
    }

    /// A failure the upstream reported inside its stream.
    pub(crate) fn from_stream(failure: StreamFailure) -> Self {
        let status = StatusCode::from_u16(failure.status).unwrap_or(StatusCode::BAD_GATEWAY);
        Self {
            code: failure.code,
            ..Self::new(
                status,
                if status == StatusCode::BAD_REQUEST {
                    "invalid_request_error"
                } else {
                    "upstream_error"
                },
                "",
                failure.message,
            )
        }
    }

    /// An upstream's error answer: its status, and its message whatever shape the body has.
    pub(crate) fn from_upstream(status: u16, body: &[u8], headers: HeaderMap) -> Self {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
        let kind = if status.is_client_error() {
            "invalid_request_error"
        } else {
            "upstream_error"
        };
        let parsed: Option<Value> = serde_json::from_slice(body).ok();
        let openai_error = parsed
            .as_ref()
            .and_then(|v| v.get("error"))
            .filter(|e| e.get("message").is_some_and(Value::is_string))
            .cloned();
        let message = match (&openai_error, &parsed) {
            (Some(error), _) => error["message"].as_str().unwrap_or_default().to_string(),
            (None, Some(value)) => match value.get("detail").or_else(|| value.get("message")) {
                Some(Value::String(detail)) => detail.clone(),
                Some(other) => other.to_string(),
                None => value.to_string(),
            },
            (None, None) => {
                let text = String::from_utf8_lossy(body);
                let text = text.trim();
                if text.is_empty() {
                    format!("the upstream answered {status} without an explanation")
                } else {
                    text.chars().take(500).collect()
                }
            }
        };
        let code = openai_error
            .as_ref()
            .and_then(|e| e.get("code").or_else(|| e.get("type")))
            .and_then(Value::as_str)
            .map(str::to_string);
        Self {
            code,
            extras: Some(Box::new(ErrorExtras {
                error: openai_error,
                headers,
                details: None,
            })),
            ..Self::new(status, kind, "", message)
        }
    }

    /// The body and headers in `dialect`.
    pub(crate) fn render(self, dialect: Dialect) -> Response {
        let ErrorExtras {
            error,
            headers,
            details,
        } = self.extras.map(|u| *u).unwrap_or_default();
        let body = if dialect.is_anthropic() {
            let mut body = json!({"type": "error", "error": {"type": anthropic_type(self.status), "message": self.message}});
            if let Some(details) = details {
                body["error"]["details"] = details;
            }
            body
        } else if dialect == Dialect::Gemini {
            google_error(
                self.status,
                &self.message,
                self.param.as_deref(),
                self.retry_after,
            )
        } else {
            let error = error.unwrap_or_else(|| {
                json!({"message": self.message, "type": self.kind, "code": self.code.filter(|c| !c.is_empty()), "param": self.param})
            });
            json!({ "error": error })
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        let out = response.headers_mut();
        for (name, value) in headers {
            if let Some(name) = name {
                out.append(name, value);
            }
        }
        if let Some(secs) = self.retry_after {
            out.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// Google's error body: its code, message and status, with the details Google's clients read (the
/// field at fault; when to retry, which the Gemini CLI waits for, or gives up on when it is far).
fn google_error(
    status: StatusCode,
    message: &str,
    param: Option<&str>,
    retry_after: Option<u64>,
) -> Value {
    let status = status.as_u16();
    let mut object = gemini::error_object(status, message);
    let mut details = Vec::new();
    if let Some(param) = param {
        details.push(json!({
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations": [{"field": param, "description": message}],
        }));
    }
    if let (Some(secs), 429 | 503) = (retry_after, status) {
        details.push(json!({
            "@type": "type.googleapis.com/google.rpc.RetryInfo",
            "retryDelay": format!("{secs}s"),
        }));
    }
    if !details.is_empty() {
        object.insert("details".into(), Value::Array(details));
    }
    json!({ "error": object })
}

/// Anthropic's error type for a status.
fn anthropic_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 | 405 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        _ => "api_error",
    }
}

impl From<Invalid> for ApiError {
    fn from(invalid: Invalid) -> Self {
        Self {
            param: invalid.param,
            ..Self::bad_request(invalid.message)
        }
    }
}

impl From<AccessError> for ApiError {
    fn from(error: AccessError) -> Self {
        match error {
            AccessError::UnknownProfile(name) => Self::new(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                "unknown_profile",
                format!("keyward has no profile `{name}`; `keyward status` lists them"),
            ),
            AccessError::NeedsLogin { profile, detail, remedy } => Self::new(
                StatusCode::UNAUTHORIZED,
                "authentication_error",
                "needs_login",
                format!("keyward profile {profile} needs a new login: {detail}. To fix: {remedy}. keyward picks up the new login without a restart."),
            ),
            AccessError::Unavailable { profile, detail, remedy, retry_after } => Self {
                retry_after: retry_after.map(|d| d.as_secs().max(1)),
                ..Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "service_unavailable",
                    "profile_unavailable",
                    match remedy {
                        Some(remedy) => format!("keyward profile {profile} cannot be served right now: {detail}. To fix: {remedy}."),
                        None => format!("keyward profile {profile} cannot be served right now: {detail}."),
                    },
                )
            },
            AccessError::Store(detail) => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "store_error",
                format!("keyward's store failed: {detail}"),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(response: Response) -> (StatusCode, Value) {
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap_or_default();
        (status, serde_json::from_slice(&bytes).unwrap_or_default())
    }

    /// An unknown model's name is echoed cut short: a megabyte-long name is not sent back whole.
    #[test]
    fn unknown_model_names_are_echoed_short() {
        let short = ApiError::unknown_model("gpt-unknown");
        assert!(short.message.contains("`gpt-unknown`"), "{}", short.message);
        let huge = ApiError::unknown_model(&"m".repeat(1 << 20));
        assert!(
            huge.message.contains(&format!("`{}…`", "m".repeat(64))),
            "{}",
            huge.message
        );
        assert!(huge.message.len() < 400, "{} bytes", huge.message.len());
    }

    /// The same failure speaks OpenAI on OpenAI routes and Anthropic on /v1/messages.
    #[tokio::test]
    async fn renders_in_the_callers_dialect() {
        let invalid = Invalid::at("messages", "`messages` is required");
        let (status, body) = body_of(ApiError::from(invalid.clone()).render(Dialect::Chat)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            body,
            json!({"error": {"message": "`messages` is required", "type": "invalid_request_error", "code": "invalid_request", "param": "messages"}})
        );
        let (_, body) = body_of(ApiError::from(invalid).render(Dialect::Messages)).await;
        assert_eq!(
            body,
            json!({"type": "error", "error": {"type": "invalid_request_error", "message": "`messages` is required"}})
        );
    }

    /// Gemini's routes get Google's error object: the status name, the field at fault, and
    /// when to retry a usage limit.
    #[tokio::test]
    async fn renders_googles_shape_on_gemini_routes() {
        let invalid = Invalid::at("contents", "`contents` is required");
        let (status, body) = body_of(ApiError::from(invalid).render(Dialect::Gemini)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            body,
            json!({"error": {"code": 400, "message": "`contents` is required", "status": "INVALID_ARGUMENT", "details": [
                {"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [{"field": "contents", "description": "`contents` is required"}]},
            ]}})
        );
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        let limit = ApiError::usage_limit_reached(
            "resting".into(),
            now + chrono::Duration::seconds(90),
            now,
        );
        let response = limit.render(Dialect::Gemini);
        assert_eq!(
            response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()),
            Some("90")
        );
        let (status, body) = body_of(response).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            body,
            json!({"error": {"code": 429, "message": "resting", "status": "RESOURCE_EXHAUSTED", "details": [
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "90s"},
            ]}})
        );
        let (_, body) = body_of(ApiError::unknown_model("gemini-x").render(Dialect::Gemini)).await;
        assert_eq!(body["error"]["status"], "NOT_FOUND");
    }

    /// The upstream's errors keep their status and message, whatever their shape; an
    /// OpenAI-shaped one reaches OpenAI callers whole (a usage limit's reset time included).
    #[tokio::test]
    async fn translates_upstream_errors() {
        let detail = ApiError::from_upstream(
            400,
            br#"{"detail":"Unsupported parameter: foo"}"#,
            HeaderMap::new(),
        );
        let (status, body) = body_of(detail.render(Dialect::Messages)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["message"], "Unsupported parameter: foo");

        let limit = br#"{"error":{"type":"usage_limit_reached","message":"The usage limit has been reached","resets_in_seconds":60}}"#;
        let (status, body) = body_of(
            ApiError::from_upstream(429, limit, HeaderMap::new()).render(Dialect::Responses),
        )
        .await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(body["error"]["resets_in_seconds"], 60);
        let (_, body) = body_of(
            ApiError::from_upstream(429, limit, HeaderMap::new()).render(Dialect::Messages),
        )
        .await;
        assert_eq!(body["error"]["type"], "rate_limit_error");

        let (status, body) = body_of(
            ApiError::from_upstream(502, b"<html>bad gateway</html>", HeaderMap::new())
                .render(Dialect::Chat),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_GATEWAY);
        assert_eq!(body["error"]["message"], "<html>bad gateway</html>");
    }
}
