//! `POST /backend-api/codex/responses`: a streaming-only Codex backend that
//! checks bearer tokens against the provider's tables.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::faults::ResponseFault;
use crate::jwt::random_hex;
use crate::provider_state::now_secs;
use crate::server::Shared;

const TEXT: &str = "pong";
const DEFAULT_MODEL: &str = "gpt-5-codex";

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub async fn responses(State(app): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let fault = app.provider().pop_response_fault();
    match fault {
        Some(ResponseFault::Status { code }) => return injected_status(code),
        Some(ResponseFault::Delay { ms }) => tokio::time::sleep(Duration::from_millis(ms)).await,
        None => {}
    }

    let bearer = header_str(&headers, header::AUTHORIZATION.as_str())
        .and_then(|v| v.strip_prefix("Bearer "));
    let account = header_str(&headers, "chatgpt-account-id");
    {
        let mut provider = app.provider();
        if let Err(denied) = provider.check_access(bearer, account, now_secs()) {
            provider.stats.responses_unauthorized += 1;
            return (
                StatusCode::UNAUTHORIZED,
                Json(json!({"error": {
                    "message": denied.message(),
                    "type": "invalid_request_error",
                    "code": denied.code(),
                }})),
            )
                .into_response();
        }
    }

    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if request.get("stream") != Some(&Value::Bool(true)) {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"detail": "Stream must be set to true"})),
        )
            .into_response();
    }

    let plan = StreamPlan {
        model: request
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or(DEFAULT_MODEL)
            .to_owned(),
        chunks: header_str(&headers, "x-mock-chunks")
            .and_then(|v| v.parse().ok())
            .unwrap_or(app.config.chunks)
            .max(1),
        chunk_delay: Duration::from_millis(
            header_str(&headers, "x-mock-chunk-delay-ms")
                .and_then(|v| v.parse().ok())
                .unwrap_or(app.config.chunk_delay_ms),
        ),
        hold: header_str(&headers, "x-mock-hold").map(str::to_owned),
    };
    app.provider().stats.responses_ok += 1;

    // A channel-backed body makes hyper write each event as it is produced,
    // which is the behaviour a non-buffering proxy must preserve.
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    tokio::spawn(produce(app.clone(), plan, tx));
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, Infallible>(chunk), rx))
    });
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

struct StreamPlan {
    model: String,
    chunks: usize,
    chunk_delay: Duration,
    hold: Option<String>,
}

/// Returned when the client has gone away; production simply stops.
struct Disconnected;

struct Emitter {
    tx: mpsc::Sender<Bytes>,
    seq: u64,
}

impl Emitter {
    fn next_seq(&mut self) -> u64 {
        let seq = self.seq;
        self.seq += 1;
        seq
    }

    async fn emit(&self, data: Value) -> Result<(), Disconnected> {
        let kind = data.get("type").and_then(Value::as_str).unwrap_or("");
        let frame = format!("event: {kind}\ndata: {data}\n\n");
        self.tx
            .send(Bytes::from(frame))
            .await
            .map_err(|_| Disconnected)
    }
}

/// Splits `text` into `n` contiguous pieces (some empty when `n` exceeds its
/// length) so any chunk count still concatenates to the same text.
fn split_text(text: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    (0..n)
        .map(|i| {
            let start = i * chars.len() / n;
            let end = (i + 1) * chars.len() / n;
            chars.get(start..end).unwrap_or_default().iter().collect()
        })
        .collect()
}

async fn produce(app: Shared, plan: StreamPlan, tx: mpsc::Sender<Bytes>) {
    let _ = produce_events(&app, plan, tx).await;
}

async fn produce_events(
    app: &Shared,
    plan: StreamPlan,
    tx: mpsc::Sender<Bytes>,
) -> Result<(), Disconnected> {
    let mut out = Emitter { tx, seq: 0 };
    let response_id = format!("resp_{}", random_hex(16));
    let item_id = format!("msg_{}", random_hex(16));
    let created_at = now_secs();
    let response = |status: &str, output: Value| {
        json!({
            "id": response_id,
            "object": "response",
            "created_at": created_at,
            "status": status,
            "model": plan.model,
            "output": output,
        })
    };

    let created = json!({
        "type": "response.created",
        "sequence_number": out.next_seq(),
        "response": response("in_progress", json!([])),
    });
    out.emit(created).await?;

    if let Some(key) = &plan.hold {
        tokio::select! {
            () = app.gates.wait(key) => {}
            () = out.tx.closed() => return Err(Disconnected),
        }
    }

    let added = json!({
        "type": "response.output_item.added",
        "sequence_number": out.next_seq(),
        "output_index": 0,
        "item": {
            "type": "message",
            "id": item_id,
            "role": "assistant",
            "status": "in_progress",
            "content": [],
        },
    });
    out.emit(added).await?;
    // The real backend opens the content part before its deltas (clients index into it).
    let part_added = json!({
        "type": "response.content_part.added",
        "sequence_number": out.next_seq(),
        "item_id": item_id,
        "output_index": 0,
        "content_index": 0,
        "part": {"type": "output_text", "text": "", "annotations": []},
    });
    out.emit(part_added).await?;

    for (i, delta) in split_text(TEXT, plan.chunks).into_iter().enumerate() {
        if i > 0 && !plan.chunk_delay.is_zero() {
            tokio::time::sleep(plan.chunk_delay).await;
        }
        let event = json!({
            "type": "response.output_text.delta",
            "sequence_number": out.next_seq(),
            "item_id": item_id,
            "output_index": 0,
            "content_index": 0,
            "delta": delta,
        });
        out.emit(event).await?;
    }

    let text_done = json!({
        "type": "response.output_text.done",
        "sequence_number": out.next_seq(),
        "item_id": item_id,
        "output_index": 0,
        "content_index": 0,
        "text": TEXT,
    });
    out.emit(text_done).await?;
    let part_done = json!({
        "type": "response.content_part.done",
        "sequence_number": out.next_seq(),
        "item_id": item_id,
        "output_index": 0,
        "content_index": 0,
        "part": {"type": "output_text", "text": TEXT, "annotations": []},
    });
    out.emit(part_done).await?;

    let item = json!({
        "type": "message",
        "id": item_id,
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": TEXT, "annotations": []}],
    });
    let done = json!({
        "type": "response.output_item.done",
        "sequence_number": out.next_seq(),
        "output_index": 0,
        "item": item.clone(),
    });
    out.emit(done).await?;

    let mut full = response("completed", json!([item]));
    full["usage"] = json!({"input_tokens": 5, "output_tokens": 1, "total_tokens": 6});
    let completed = json!({
        "type": "response.completed",
        "sequence_number": out.next_seq(),
        "response": full,
    });
    out.emit(completed).await
}

fn injected_status(code: u16) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (kind, error_code) = match status {
        StatusCode::TOO_MANY_REQUESTS => ("rate_limit", "rate_limit_exceeded"),
        StatusCode::UNAUTHORIZED => ("invalid_request_error", "token_expired"),
        s if s.is_server_error() => ("server_error", "server_error"),
        _ => ("invalid_request_error", "injected"),
    };
    let mut response = (
        status,
        Json(json!({"error": {"type": kind, "message": "injected", "code": error_code}})),
    )
        .into_response();
    if status == StatusCode::TOO_MANY_REQUESTS {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::split_text;

    #[test]
    fn chunks_concatenate_to_text() {
        for n in 1..=7 {
            let parts = split_text("pong", n);
            assert_eq!(parts.len(), n);
            assert_eq!(parts.concat(), "pong");
        }
    }
}
