//! Counts every answer (front-door refusals included) by route, dialect, status and serving
//! profile, and times each model answer's first body byte.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http_body::Frame;

use super::PROFILE_HEADER;
use crate::metrics::{Metrics, RequestLabels};

/// A fixed name per route, so a label never carries what a client put in a path.
fn route_of(path: &str) -> &'static str {
    match path {
        "/v1/responses" => "responses",
        "/v1/chat/completions" => "chat",
        "/v1/completions" => "completions",
        "/v1/messages" => "messages",
        "/v1/messages/count_tokens" => "count_tokens",
        "/healthz" => "healthz",
        "/metrics" => "metrics",
        p if p == "/v1/models" || p.starts_with("/v1/models/") => "models",
        _ => "other",
    }
}

pub(super) async fn observe(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let start = Instant::now();
    let route = route_of(request.uri().path());
    // The model routes are named for their dialects.
    let dialect = match route {
        "responses" | "chat" | "completions" | "messages" => route,
        _ => "none",
    };
    let response = next.run(request).await;
    let profile = response
        .headers()
        .get(PROFILE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    metrics.request(RequestLabels {
        route,
        dialect,
        status: response.status().as_u16(),
        profile,
    });
    if dialect == "none" {
        return response;
    }
    let (parts, body) = response.into_parts();
    let timed = FirstByte {
        inner: body,
        start,
        route,
        metrics: Some(metrics),
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
