//! The HTTP gateway: every model endpoint goes through one [`pipeline`]; the model list, token
//! counting and health are answered by keyward itself.

mod answer;
mod error;
mod front_door;
mod health;
mod memory;
mod models;
mod observe;
mod pipeline;
mod server;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::broker::{Broker, Clock};
use crate::config::GatewayConfig;
use crate::dialect::Dialect;
use crate::metrics::Metrics;
use crate::models::Models;
use crate::pool::Pool;

pub(crate) use error::ApiError;
pub(crate) use pipeline::PROFILE_HEADER;

pub(crate) struct Gateway {
    pub broker: Arc<Broker>,
    pub pool: Arc<Pool>,
    pub models: Models,
    pub config: GatewayConfig,
    pub metrics: Arc<Metrics>,
    /// The broker's clock: the pipeline's only source of time.
    pub(crate) clock: Arc<dyn Clock>,
}

impl Gateway {
    pub(crate) fn new(
        broker: Arc<Broker>,
        pool: Arc<Pool>,
        models: Models,
        config: GatewayConfig,
    ) -> Arc<Self> {
        let metrics = Arc::new(Metrics::new(broker.clone(), pool.clone()));
        let clock = broker.clock().clone();
        Arc::new(Self {
            broker,
            pool,
            models,
            config,
            metrics,
            clock,
        })
    }

    pub(crate) fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/v1/responses", post(responses))
            .route("/v1/chat/completions", post(chat))
            .route("/v1/completions", post(completions))
            .route("/v1/messages", post(messages))
            .route("/v1/messages/count_tokens", post(models::count_tokens))
            .route("/v1/models", get(models::list))
            .route("/v1/models/{id}", get(models::one))
            .route("/healthz", get(health::handle))
            .route("/metrics", get(metrics))
            .fallback(not_found)
            .method_not_allowed_fallback(method_not_allowed)
            // The front door has read the body within its own limit already.
            .layer(axum::extract::DefaultBodyLimit::max(
                self.config.max_body_bytes,
            ))
            .layer(axum::middleware::from_fn_with_state(
                Arc::new(front_door::FrontDoor::new(&self.config)),
                front_door::guard,
            ))
            .layer(axum::middleware::from_fn_with_state(
                self.metrics.clone(),
                observe::observe,
            ))
            .with_state(self.clone())
    }
}

async fn responses(State(g): State<Arc<Gateway>>, headers: HeaderMap, body: Bytes) -> Response {
    pipeline::serve(&g, Dialect::Responses, &headers, body).await
}

async fn chat(State(g): State<Arc<Gateway>>, headers: HeaderMap, body: Bytes) -> Response {
    pipeline::serve(&g, Dialect::Chat, &headers, body).await
}

async fn completions(State(g): State<Arc<Gateway>>, headers: HeaderMap, body: Bytes) -> Response {
    pipeline::serve(&g, Dialect::Completions, &headers, body).await
}

async fn messages(State(g): State<Arc<Gateway>>, headers: HeaderMap, body: Bytes) -> Response {
    pipeline::serve(&g, Dialect::Messages, &headers, body).await
}

/// `GET /metrics`: Prometheus' text format (behind the gateway keys when they are set).
async fn metrics(State(g): State<Arc<Gateway>>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        g.metrics.encode(),
    )
        .into_response()
}

async fn not_found(uri: Uri) -> Response {
    ApiError::not_found(format!(
        "keyward has no endpoint {}: it serves POST /v1/responses, /v1/chat/completions, /v1/completions, /v1/messages, /v1/messages/count_tokens and GET /v1/models",
        uri.path()
    ))
    .render(front_door::dialect_of(uri.path()))
}

async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    ApiError::method_not_allowed(format!("{} does not take {method}", uri.path()))
        .render(front_door::dialect_of(uri.path()))
}

/// Serves until `shutdown` resolves, then lets requests in flight finish within the configured
/// `shutdown_timeout`.
pub(crate) async fn serve(
    gateway: Arc<Gateway>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = server::Limits {
        max_connections: gateway.config.max_connections,
        header_timeout: gateway.config.header_timeout,
        shutdown_timeout: gateway.config.shutdown_timeout,
    };
    server::run(gateway.router(), listener, limits, shutdown).await
}
