//! `POST /oauth/revoke`: what `codex logout` (and `codex login`, replacing a
//! login) calls, JSON `{"token","token_type_hint","client_id"}` (a form is
//! read too). The token's whole family is revoked, so its later refreshes get
//! `refresh_token_invalidated` and its access tokens `token_revoked`, as on
//! the real service. As RFC 7009 says, an unknown token is answered 200 too.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use reqwest::Url;
use serde::Deserialize;
use serde_json::json;

use crate::login_state::CLIENT_ID;
use crate::server::Shared;

#[derive(Default, Deserialize)]
struct RevokeRequest {
    token: Option<String>,
    client_id: Option<String>,
}

fn read(headers: &HeaderMap, body: &[u8]) -> RevokeRequest {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return serde_json::from_slice(body).unwrap_or_default();
    }
    let text = String::from_utf8_lossy(body);
    let Ok(url) = Url::parse(&format!("http://mock/?{text}")) else {
        return RevokeRequest::default();
    };
    let mut request = RevokeRequest::default();
    for (key, value) in url.query_pairs() {
        match key.as_ref() {
            "token" => request.token = Some(value.into_owned()),
            "client_id" => request.client_id = Some(value.into_owned()),
            _ => {}
        }
    }
    request
}

pub(crate) async fn revoke(State(app): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let request = read(&headers, &body);
    if request.client_id.as_deref() != Some(CLIENT_ID) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client", "error_description": "Unknown client."})),
        )
            .into_response();
    }
    let Some(token) = request.token.filter(|t| !t.is_empty()) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_request", "error_description": "token is required."})),
        )
            .into_response();
    };
    let known = app.provider().revoke_by_client(&token);
    tracing::info!(known, "revoke call");
    Json(json!({})).into_response()
}
