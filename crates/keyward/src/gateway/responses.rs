//! `POST /v1/responses`: forwarded to the Codex backend with the profile's access token,
//! streamed back event by event, or assembled into one response object for `stream: false`.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::{Map, Value};

use super::{ApiError, Gateway};
use crate::broker::Grant;
use crate::dialect::sse::SseParser;
use crate::profile::ProfileId;

/// Selects a profile by id; without it, the first configured profile serves.
pub const PROFILE_HEADER: &str = "x-keyward-profile";
/// A non-streamed answer is assembled in memory; past this it is refused rather than buffered.
const MAX_ASSEMBLED_BYTES: usize = 64 << 20;

pub(super) async fn handle(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match respond(&gateway, &headers, &body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn respond(
    gateway: &Arc<Gateway>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let mut request: Map<String, Value> = match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => map,
        Ok(_) => {
            return Err(ApiError::bad_request(
                "the request body must be a JSON object",
            ))
        }
        Err(e) => {
            return Err(ApiError::bad_request(format!(
                "the request body is not valid JSON: {e}"
            )))
        }
    };
    let wants_stream = match request.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(stream)) => *stream,
        Some(_) => return Err(ApiError::bad_request("`stream` must be a boolean")),
    };
    // The Codex backend only streams; a non-streaming caller gets the stream assembled.
    request.insert("stream".into(), Value::Bool(true));
    let upstream_body = Bytes::from(serde_json::to_vec(&request).unwrap_or_default());

    let profile = select_profile(gateway, headers)?;
    let mut grant = gateway.broker.access(&profile).await?;
    let mut response = send(gateway, &grant, headers, upstream_body.clone()).await?;
    if response.status() == StatusCode::UNAUTHORIZED {
        tracing::info!(profile = %profile, "upstream answered 401; re-validating the login");
        grant = gateway
            .broker
            .reauthorize(&profile, &grant.credential)
            .await?;
        response = send(gateway, &grant, headers, upstream_body).await?;
    }
    let status = response.status();
    if !status.is_success() {
        return Ok(relay(response).await);
    }
    if wants_stream {
        return Ok(stream(response));
    }
    assemble(response).await
}

fn select_profile(gateway: &Gateway, headers: &HeaderMap) -> Result<ProfileId, ApiError> {
    match headers.get(PROFILE_HEADER).map(|v| v.to_str()) {
        Some(Ok(text)) => text
            .parse()
            .map_err(|e: crate::profile::ProfileIdError| ApiError::bad_request(e.to_string())),
        Some(Err(_)) => Err(ApiError::bad_request(format!(
            "{PROFILE_HEADER} is not valid text"
        ))),
        None => gateway
            .broker
            .profiles()
            .first()
            .map(|p| p.id.clone())
            .ok_or_else(|| ApiError::bad_request("keyward has no profiles configured")),
    }
}

/// Headers never passed upstream: hop-by-hop ones, the client's own credentials (keyward supplies
/// the profile's), and keyward's own.
fn forwardable(name: &HeaderName) -> bool {
    !matches!(
        name.as_str(),
        "host"
            | "content-length"
            | "connection"
            | "keep-alive"
            | "proxy-authorization"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "authorization"
            | "x-api-key"
            | "cookie"
            | "chatgpt-account-id"
            | "accept-encoding"
    ) && !name.as_str().starts_with("x-keyward-")
}

async fn send(
    gateway: &Gateway,
    grant: &Grant,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<reqwest::Response, ApiError> {
    let url = format!("{}/responses", gateway.codex_base_url);
    let mut request = gateway.upstream.post(&url);
    for (name, value) in headers {
        if forwardable(name) {
            request = request.header(name, value);
        }
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

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut current = e;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
}

fn copy_headers(from: &reqwest::header::HeaderMap, to: &mut HeaderMap) {
    for (name, value) in from {
        let skip = matches!(
            name.as_str(),
            "content-length"
                | "connection"
                | "keep-alive"
                | "transfer-encoding"
                | "set-cookie"
                | "trailer"
                | "upgrade"
        );
        if !skip {
            to.append(name.clone(), value.clone());
        }
    }
}

/// An upstream error answer, passed through with its status and body.
async fn relay(response: reqwest::Response) -> Response {
    let status =
        StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut headers = HeaderMap::new();
    copy_headers(response.headers(), &mut headers);
    let body = response.bytes().await.unwrap_or_default();
    let mut out = Response::new(Body::from(body));
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    out
}

/// Passes the event stream through chunk by chunk as it arrives.
fn stream(response: reqwest::Response) -> Response {
    let mut headers = HeaderMap::new();
    copy_headers(response.headers(), &mut headers);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    let body = Body::from_stream(response.bytes_stream());
    let mut out = Response::new(body);
    *out.headers_mut() = headers;
    out
}

/// Reads the whole stream and answers the final response object, as the Responses API does for
/// `stream: false`.
async fn assemble(response: reqwest::Response) -> Result<Response, ApiError> {
    let mut parser = SseParser::default();
    let mut bytes_seen = 0usize;
    let mut completed: Option<Value> = None;
    let mut failure: Option<Value> = None;
    let mut items: Vec<Value> = Vec::new();
    let mut chunks = response.bytes_stream();
    let mut events = Vec::new();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::upstream(format!("the upstream stream broke off: {}", root_cause(&e)))
        })?;
        bytes_seen += chunk.len();
        if bytes_seen > MAX_ASSEMBLED_BYTES {
            return Err(ApiError::upstream(
                "the upstream answer is too large to assemble; ask with `stream: true`",
            ));
        }
        events.extend(parser.push(&chunk));
    }
    events.extend(parser.finish());
    for event in events {
        let Ok(data) = serde_json::from_str::<Value>(&event.data) else {
            continue;
        };
        let kind = data
            .get("type")
            .and_then(Value::as_str)
            .or(event.event.as_deref())
            .unwrap_or_default()
            .to_string();
        match kind.as_str() {
            "response.output_item.done" => {
                if let Some(item) = data.get("item") {
                    items.push(item.clone());
                }
            }
            "response.completed" | "response.incomplete" => {
                completed = data.get("response").cloned()
            }
            "response.failed" | "error" => failure = Some(data),
            _ => {}
        }
    }
    if let Some(mut response) = completed {
        let empty = response
            .get("output")
            .and_then(Value::as_array)
            .is_none_or(|o| o.is_empty());
        if empty && !items.is_empty() {
            response["output"] = Value::Array(items);
        }
        return Ok((StatusCode::OK, axum::Json(response)).into_response());
    }
    let error = failure
        .as_ref()
        .and_then(|f| f.pointer("/response/error").or_else(|| f.get("error")).cloned())
        .unwrap_or_else(|| serde_json::json!({"message": "the upstream stream ended before response.completed", "type": "upstream_error"}));
    Ok((
        StatusCode::BAD_GATEWAY,
        axum::Json(serde_json::json!({"error": error})),
    )
        .into_response())
}
