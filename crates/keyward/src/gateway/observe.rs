//! Counts every answer (front-door refusals included) by route, dialect, status and serving
//! profile, and times each model answer's first body byte; a model request's answer goes to the
//! usage ledger once its body has gone out (or the client has gone), with what the pipeline noted
//! of it ([`Note`]).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::response::Response;
use http_body::Frame;

use chrono::{DateTime, Utc};

use super::pipeline::PROFILE;
use crate::dialect::Dialect;
use crate::ledger::{Entry, Ledger, Note};
use crate::metrics::{Metrics, RequestLabels};

/// A model request on its way to the usage ledger: what is known of it before its answer.
pub(super) struct Recording {
    pub(super) ledger: Arc<Ledger>,
    pub(super) at: DateTime<Utc>,
    pub(super) key: Option<usize>,
    pub(super) client: &'static str,
    pub(super) dialect: &'static str,
}

/// Counts an answer under `route` (its label, and the dialect of a model route); a model answer's
/// body is timed to its first byte from `start`, and recorded in the ledger when it ends.
pub(super) fn observe(
    metrics: &Arc<Metrics>,
    route: &'static str,
    dialect: Option<Dialect>,
    start: Instant,
    response: Response,
    recording: Option<(Recording, Note)>,
) -> Response {
    let profile = response
        .headers()
        .get(PROFILE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    metrics.request(RequestLabels {
        route,
        dialect: dialect.map_or("none", Dialect::as_str),
        status: response.status().as_u16(),
        profile,
    });
    if dialect.is_none() {
        return response;
    }
    let status = response.status().as_u16();
    let (parts, body) = response.into_parts();
    let timed = Timed {
        inner: body,
        start,
        route,
        metrics: metrics.clone(),
        first_byte: None,
        recording: recording.map(|(recording, note)| (recording, note, status)),
    };
    Response::from_parts(parts, Body::new(timed))
}

/// A body that times its first data frame, and records its request in the ledger when it is
/// done (sent whole, or dropped when the client went away).
struct Timed {
    inner: Body,
    start: Instant,
    route: &'static str,
    metrics: Arc<Metrics>,
    first_byte: Option<Duration>,
    /// Taken once recorded.
    recording: Option<(Recording, Note, u16)>,
}

impl Drop for Timed {
    fn drop(&mut self) {
        if let Some((recording, note, status)) = self.recording.take() {
            recording.ledger.record(Entry {
                at: recording.at,
                key: recording.key,
                client: recording.client,
                dialect: recording.dialect,
                status,
                note,
                first_byte: self.first_byte,
                total: self.start.elapsed(),
            });
        }
    }
}

impl http_body::Body for Timed {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if frame.is_data() && self.first_byte.is_none() {
                let elapsed = self.start.elapsed();
                self.first_byte = Some(elapsed);
                self.metrics.first_byte(self.route, elapsed.as_secs_f64());
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
