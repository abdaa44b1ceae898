//! Counts every answer (front-door refusals included) by route, dialect, status and serving
//! profile, and times each model answer's first body byte.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::response::Response;
use http_body::Frame;

use super::PROFILE_HEADER;
use crate::dialect::Dialect;
use crate::metrics::{Metrics, RequestLabels};

/// Counts an answer under `route` (its label, and the dialect of a model route); a model answer's
/// body is timed to its first byte from `start`.
pub(super) fn observe(
    metrics: &Arc<Metrics>,
    route: &'static str,
    dialect: Option<Dialect>,
    start: Instant,
    response: Response,
) -> Response {
    let profile = response
        .headers()
        .get(PROFILE_HEADER)
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
    let (parts, body) = response.into_parts();
    let timed = FirstByte {
        inner: body,
        start,
        route,
        metrics: Some(metrics.clone()),
    };
    Response::from_parts(parts, Body::new(timed))
}

/// A body that records when its first data frame goes out.
struct FirstByte {
    inner: Body,
    start: Instant,
    route: &'static str,
    /// Taken once the first frame is timed.
    metrics: Option<Arc<Metrics>>,
}

impl http_body::Body for FirstByte {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if frame.is_data() {
                if let Some(metrics) = self.metrics.take() {
                    metrics.first_byte(self.route, self.start.elapsed().as_secs_f64());
                }
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
