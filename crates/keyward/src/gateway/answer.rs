//! The last phase: the upstream's answer, in the caller's dialect.
//!
//! A streamed answer goes out event by event as it arrives: passed through untouched for a
//! Responses client, translated incrementally for the others. A non-streamed one is read whole
//! (the upstream only streams) and answered as one object.

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::ApiError;
use crate::dialect::responses::{parse_event, Assembler};
use crate::dialect::sse::SseParser;
use crate::dialect::{Answer, Flow, SseTranslator};
use crate::upstream::{root_cause, UpstreamResponse};

/// A non-streamed answer is assembled in memory; past this it is refused rather than buffered.
const MAX_ASSEMBLED_BYTES: usize = 64 << 20;
/// An upstream error body is read up to this much.
const MAX_ERROR_BYTES: usize = 1 << 20;

/// An upstream's error answer, read whole (within a bound): its status, headers and body.
pub(super) async fn read_error(mut response: UpstreamResponse) -> (u16, HeaderMap, Vec<u8>) {
    let status = response.status().as_u16();
    let headers = answer_headers(response.headers());
    let mut body = Vec::new();
    while let Some(Ok(chunk)) = response.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() >= MAX_ERROR_BYTES {
            body.truncate(MAX_ERROR_BYTES);
            break;
        }
    }
    (status, headers, body)
}

/// Upstream answer headers passed on to the client: not hop-by-hop ones, no cookies, no CORS
/// grants (keyward decides those), no length or type (the body may be re-encoded), and none of
/// keyward's own `x-keyward-*` (an upstream's would replace what keyward says about the answer,
/// and end up in its metrics).
pub(super) fn answer_headers(from: &HeaderMap) -> HeaderMap {
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
        ) || name_str.starts_with("access-control-")
            || name_str.starts_with("x-keyward-");
        if !skip {
            to.append(name.clone(), value.clone());
        }
    }
    to
}

/// An upstream answer that is already what the caller wants (its own API, not a stream to
/// assemble): body and status passed through, with the content type.
pub(super) fn pass_body(response: UpstreamResponse, mut headers: HeaderMap) -> Response {
    let status = response.status();
    headers.extend(answer_headers(response.headers()));
    if let Some(kind) = response.headers().get(header::CONTENT_TYPE) {
        headers.insert(header::CONTENT_TYPE, kind.clone());
    }
    let mut out = Response::new(Body::new(response.into_body()));
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    out
}

/// A Responses client's stream: the upstream's bytes, untouched.
pub(super) fn pass_through(response: UpstreamResponse, mut headers: HeaderMap) -> Response {
    headers.extend(answer_headers(response.headers()));
    sse_response(
        Body::new(response.into_body()),
        headers,
        "text/event-stream",
    )
}

/// Another dialect's stream (or the public API's shape of a Responses stream): each upstream
/// event translated as it arrives.
pub(super) fn translate_stream(
    response: UpstreamResponse,
    translator: Box<dyn SseTranslator>,
    mut headers: HeaderMap,
) -> Response {
    headers.extend(answer_headers(response.headers()));
    let content_type = translator.content_type();
    let state = Translation {
        response,
        parser: SseParser::default(),
        translator,
        finished: false,
    };
    let frames = futures_util::stream::unfold(state, |mut state| async move {
        let frames = state.next_frames().await?;
        Some((Ok::<_, std::convert::Infallible>(frames), state))
    });
    sse_response(Body::from_stream(frames), headers, content_type)
}

struct Translation {
    response: UpstreamResponse,
    parser: SseParser,
    translator: Box<dyn SseTranslator>,
    finished: bool,
}

impl Translation {
    /// The next non-empty run of frames, or `None` once the translator has closed the stream.
    async fn next_frames(&mut self) -> Option<Bytes> {
        while !self.finished {
            let mut out = Vec::new();
            match self.response.chunk().await {
                Some(Ok(chunk)) => {
                    for event in self.parser.push(&chunk) {
                        // What came with the last event translated still counts its usage.
                        self.response.read_usage(&event);
                        if !self.finished && self.translator.event(&event, &mut out) == Flow::Stop {
                            // The answer is complete for the client; dropping the upstream stream
                            // cancels the rest of the generation.
                            self.finished = true;
                        }
                    }
                }
                Some(Err(e)) => {
                    self.translator.finish(Some(&root_cause(&e)), &mut out);
                    self.finished = true;
                }
                None => {
                    if let Some(event) = self.parser.finish() {
                        self.response.read_usage(&event);
                        self.translator.event(&event, &mut out);
                    }
                    self.translator.finish(None, &mut out);
                    self.finished = true;
                }
            }
            if !out.is_empty() {
                return Some(Bytes::from(out));
            }
        }
        None
    }
}

/// Reads the whole upstream stream into the final Responses object.
pub(super) async fn assemble(mut response: UpstreamResponse) -> Result<Value, ApiError> {
    let mut parser = SseParser::default();
    let mut assembler = Assembler::default();
    let mut bytes_seen = 0usize;
    let mut broken = None;
    while let Some(chunk) = response.chunk().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => {
                broken = Some(root_cause(&e));
                break;
            }
        };
        bytes_seen += chunk.len();
        if bytes_seen > MAX_ASSEMBLED_BYTES {
            return Err(ApiError::upstream(
                "the upstream answer is too large to assemble; ask for a streamed answer (`stream: true`)",
            ));
        }
        for event in parser.push(&chunk) {
            response.read_usage(&event);
            if let Some(event) = parse_event(&event) {
                assembler.push(event);
            }
        }
        if assembler.is_done() {
            break;
        }
    }
    if let Some(event) = parser.finish() {
        response.read_usage(&event);
        if let Some(event) = parse_event(&event) {
            assembler.push(event);
        }
    }
    assembler
        .finish(broken.as_deref())
        .map_err(ApiError::from_stream)
}

/// The non-streamed answer: the Responses object itself, or the dialect's reply made from it.
pub(super) fn reply(response: &Value, answer: Option<&dyn Answer>, headers: HeaderMap) -> Response {
    let body = match answer {
        Some(answer) => answer.reply(response),
        None => response.clone(),
    };
    let mut out = (StatusCode::OK, axum::Json(body)).into_response();
    out.headers_mut().extend(headers);
    out
}

/// A streamed answer: server-sent events, or another framing's `content_type`.
fn sse_response(body: Body, headers: HeaderMap, content_type: &'static str) -> Response {
    let mut out = Response::new(body);
    *out.headers_mut() = headers;
    out.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    out.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An upstream's `x-keyward-*` headers never reach the client, nor its hop-by-hop ones.
    #[test]
    fn upstream_headers_cannot_speak_for_keyward() {
        let mut upstream = HeaderMap::new();
        upstream.insert("x-keyward-profile", HeaderValue::from_static("evil"));
        upstream.insert("x-keyward-dropped", HeaderValue::from_static("all"));
        upstream.insert("set-cookie", HeaderValue::from_static("a=b"));
        upstream.insert("x-request-id", HeaderValue::from_static("req-1"));
        let passed = answer_headers(&upstream);
        assert_eq!(passed.len(), 1, "{passed:?}");
        assert_eq!(passed.get("x-request-id"), upstream.get("x-request-id"));
    }
}
