//! Sends a script as server-sent events, each written as soon as it is produced.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::sync::mpsc;

use super::script::{Script, Step};
use crate::server::Shared;

/// The request's control over timing: the pause between text deltas, and the
/// `x-mock-hold` gate the stream waits at after `response.created`.
pub(crate) struct Pace {
    pub(crate) chunk_delay: Duration,
    pub(crate) hold: Option<String>,
}

/// Returned when the client has gone away; production simply stops.
struct Disconnected;

pub(crate) fn stream(app: Shared, script: Script, pace: Pace) -> Response {
    // A channel-backed body makes hyper write each event as it is produced,
    // which is the behaviour a non-buffering proxy must preserve.
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let cut = script.cut;
    tokio::spawn(async move {
        if play(&app, script, pace, tx).await.is_err() {
            app.provider().stats.streams_abandoned += 1;
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, Infallible>(chunk), rx))
    });
    let mut response = (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(stream),
    )
        .into_response();
    if cut {
        // The body ends cleanly, so every delta sent arrives, and then the
        // connection goes: what a client sees of a backend that drops a stream.
        response.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
    }
    response
}

fn frame(event: &Value) -> Bytes {
    let kind = event.get("type").and_then(Value::as_str).unwrap_or("");
    Bytes::from(format!("event: {kind}\ndata: {event}\n\n"))
}

async fn play(
    app: &Shared,
    script: Script,
    pace: Pace,
    tx: mpsc::Sender<Bytes>,
) -> Result<(), Disconnected> {
    let mut sent = 0_usize;
    for step in script.steps {
        match step {
            Step::Pause if !pace.chunk_delay.is_zero() => {
                tokio::time::sleep(pace.chunk_delay).await
            }
            Step::Pause => {}
            Step::Event(event) => {
                tx.send(frame(&event)).await.map_err(|_| Disconnected)?;
                sent += 1;
                if sent == 1 {
                    if let Some(key) = &pace.hold {
                        tokio::select! {
                            () = app.gates.wait(key) => {}
                            () = tx.closed() => return Err(Disconnected),
                        }
                    }
                }
            }
        }
    }
    Ok(())
}
