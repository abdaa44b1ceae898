//! The one place keyward's failures become HTTP answers, in the OpenAI error shape
//! (`{"error":{"message","type","code","param"}}`), with what the user can do in the message.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::broker::AccessError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub code: &'static str,
    pub message: String,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            kind: "invalid_request_error",
            code: "invalid_request",
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn upstream(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_GATEWAY,
            kind: "upstream_error",
            code: "upstream_unreachable",
            message: message.into(),
            retry_after: None,
        }
    }
}

impl From<AccessError> for ApiError {
    fn from(error: AccessError) -> Self {
        match error {
            AccessError::UnknownProfile(name) => Self {
                status: StatusCode::NOT_FOUND,
                kind: "invalid_request_error",
                code: "unknown_profile",
                message: format!("keyward has no profile `{name}`; `keyward status` lists them"),
                retry_after: None,
            },
            AccessError::NeedsLogin { profile, detail, remedy } => Self {
                status: StatusCode::UNAUTHORIZED,
                kind: "authentication_error",
                code: "needs_login",
                message: format!("keyward profile {profile} needs a new login: {detail}. To fix: {remedy}. keyward picks up the new login without a restart."),
                retry_after: None,
            },
            AccessError::Unavailable { profile, detail, remedy, retry_after } => Self {
                status: StatusCode::SERVICE_UNAVAILABLE,
                kind: "service_unavailable",
                code: "profile_unavailable",
                message: match remedy {
                    Some(remedy) => format!("keyward profile {profile} cannot be served right now: {detail}. To fix: {remedy}."),
                    None => format!("keyward profile {profile} cannot be served right now: {detail}."),
                },
                retry_after: retry_after.map(|d| d.as_secs().max(1)),
            },
            AccessError::Store(detail) => Self {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                kind: "server_error",
                code: "store_error",
                message: format!("keyward's store failed: {detail}"),
                retry_after: None,
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"message": self.message, "type": self.kind, "code": self.code, "param": null}});
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}
