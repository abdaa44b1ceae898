//! Sending a request upstream with a profile's login: the headers, the account id, and the one
//! re-validation of the login when the upstream answers 401.

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};

use super::{ApiError, Gateway};
use crate::broker::Grant;
use crate::codex::backend;
use crate::profile::ProfileId;

/// Client headers passed upstream: the Codex CLI's session and feature headers. Everything else
/// (the client's credentials, cookies, `Origin`, `Referer`, its user agent) stays with keyward.
fn forwardable(name: &HeaderName) -> bool {
    let name = name.as_str();
    matches!(
        name,
        "originator"
            | "session_id"
            | "session-id"
            | "conversation_id"
            | "openai-beta"
            | "version"
            | "accept-language"
    ) || ["x-codex-", "x-openai-", "oai-"]
        .iter()
        .any(|prefix| name.starts_with(prefix))
}

/// Sends `body` to the profile's upstream; on a 401, re-validates the login through the refresh
/// protocol and sends once more.
pub(super) async fn send(
    gateway: &Arc<Gateway>,
    profile: &ProfileId,
    client_headers: &HeaderMap,
    body: Bytes,
) -> Result<reqwest::Response, ApiError> {
    let mut grant = gateway.broker.access(profile).await?;
    let mut response = post(gateway, &grant, client_headers, body.clone()).await?;
    if response.status() == StatusCode::UNAUTHORIZED {
        tracing::info!(profile = %profile, "upstream answered 401; re-validating the login");
        grant = gateway
            .broker
            .reauthorize(profile, &grant.credential)
            .await?;
        response = post(gateway, &grant, client_headers, body).await?;
    }
    Ok(response)
}

async fn post(
    gateway: &Gateway,
    grant: &Grant,
    client_headers: &HeaderMap,
    body: Bytes,
) -> Result<reqwest::Response, ApiError> {
    let url = &gateway.responses_url;
    let mut request = gateway.upstream.post(url);
    for (name, value) in client_headers {
        if forwardable(name) {
            request = request.header(name, value);
        }
    }
    if !client_headers.contains_key("originator") {
        request = request.header("originator", backend::ORIGINATOR);
    }
    let credential = &grant.credential;
    request = request
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "text/event-stream")
        .bearer_auth(credential.access_token.expose());
    if let Some(account) = credential.account() {
        request = request.header("chatgpt-account-id", account);
    }
    request.body(body).send().await.map_err(|e| {
        ApiError::upstream(format!(
            "cannot reach the upstream {url}: {}",
            root_cause(&e)
        ))
    })
}

pub(super) fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut current = e;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
}

/// Upstream answer headers passed on to the client: not hop-by-hop ones, no cookies, no CORS
/// grants (keyward decides those), no length (the body may be re-encoded).
pub(super) fn answer_headers(from: &reqwest::header::HeaderMap) -> HeaderMap {
    let mut to = HeaderMap::new();
    for (name, value) in from {
        let name_str = name.as_str();
        let skip = matches!(
            name_str,
            "content-length"
                | "content-type"
                | "content-encoding"
                | "connection"
                | "keep-alive"
                | "transfer-encoding"
                | "set-cookie"
                | "trailer"
                | "upgrade"
                | "alt-svc"
                | "strict-transport-security"
        ) || name_str.starts_with("access-control-");
        if !skip {
            to.append(name.clone(), value.clone());
        }
    }
    to
}

/// A header value from keyward's own text (a profile id, a list of field names).
pub(super) fn header_text(text: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(text).ok()
}
