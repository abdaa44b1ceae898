//! The HTTP gateway: every model endpoint goes through one [`pipeline`] (and each model request
//! into the usage ledger); the model list, token counting, health and the dashboard are answered
//! by keyward itself.

mod answer;
mod body_coding;
mod error;
mod front_door;
mod gemini;
mod health;
mod memory;
mod models;
mod observe;
mod pipeline;
mod route;
mod server;
mod threads;

use std::sync::Arc;

use std::time::Instant;

use axum::http::Request;
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;

use crate::broker::{Broker, Clock};
use crate::config::GatewayConfig;
use crate::ledger::{Ledger, Note};
use crate::metrics::Metrics;
use crate::models::Models;
use crate::pool::Pool;

pub(crate) use error::ApiError;
pub(crate) use front_door::Caller;
use route::{dialect_of, Route};

pub(crate) struct Gateway {
    pub broker: Arc<Broker>,
    pub pool: Arc<Pool>,
    pub models: Models,
    pub config: GatewayConfig,
    pub metrics: Arc<Metrics>,
    /// The broker's clock: the pipeline's only source of time.
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) ledger: Arc<Ledger>,
    pub(crate) dashboard: crate::dashboard::Dashboard,
    door: front_door::FrontDoor,
    /// The message threads keyward holds for Messages callers (`threads`).
    threads: Arc<threads::ThreadStore>,
}

impl Gateway {
    pub(crate) fn new(
        broker: Arc<Broker>,
        pool: Arc<Pool>,
        models: Models,
        config: GatewayConfig,
        ledger: Arc<Ledger>,
    ) -> Arc<Self> {
        let metrics = Arc::new(Metrics::new(
            broker.clone(),
            pool.clone(),
            ledger.counters(),
        ));
        let clock = broker.clock().clone();
        let door = front_door::FrontDoor::new(&config);
        let threads = threads::ThreadStore::new(
            threads::THREAD_TTL,
            threads::THREAD_MEMORY,
            config.max_body_bytes,
        );
        Arc::new(Self {
            broker,
            pool,
            models,
            config,
            metrics,
            clock,
            ledger,
            dashboard: crate::dashboard::Dashboard::default(),
            door,
            threads,
        })
    }

    /// Which gateway key `presented` is, if it is one (the dashboard's sign-in).
    pub(crate) fn key_index(&self, presented: &str) -> Option<usize> {
        self.door.key_index(presented)
    }

    /// Every request, in one service: the front door, the route's handler, the metrics.
    pub(crate) async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Response {
        let start = Instant::now();
        let (mut parts, body) = request.into_parts();
        let path = parts.uri.path();
        let route = Route::of_request(&parts);
        let label = route.label(path);
        let dialect = route.dialect();
        let mut recording =
            dialect
                .filter(|_| self.ledger.is_on())
                .map(|dialect| observe::Recording {
                    ledger: self.ledger.clone(),
                    at: self.clock.now(),
                    key: None,
                    client: crate::ledger::client_of(&parts.headers),
                    dialect: dialect.as_str(),
                });
        let mut admitted = match self.door.admit(&parts, body).await {
            Ok(admitted) => admitted,
            Err(answer) => {
                let recording = recording.map(|recording| (recording, Note::default()));
                return observe::observe(&self.metrics, label, dialect, start, answer, recording);
            }
        };
        // The door decoded a compressed body: what goes on (upstream as it came, too) is plain.
        parts.headers.remove(axum::http::header::CONTENT_ENCODING);
        let key = match admitted.caller {
            Caller::Keyed(index) => Some(index),
            _ => None,
        };
        if let Some(recording) = recording.as_mut() {
            recording.key = key;
        }
        let mut note = Note::default();
        let mut response = match route {
            Route::Model(endpoint) => {
                pipeline::serve(&self, endpoint, &parts.headers, &mut admitted, key, &mut note)
                    .await
            }
            Route::Dashboard => {
                crate::dashboard::handle(&self, &parts, admitted.caller, &admitted.body).await
            }
            Route::CountTokens => models::count_tokens(&self, admitted.body.clone()).await,
            Route::GeminiCountTokens(model) => {
                gemini::count_tokens(&self, model, admitted.body.clone()).await
            }
            Route::Models => models::list(&self, &parts.headers),
            Route::OneModel(ref id) => models::one(&self, id, &parts.headers),
            Route::GeminiModels => gemini::list(&self),
            Route::GeminiModel(ref id) => gemini::one(&self, id),
            Route::Health => health::handle(&self, admitted.caller).await,
            Route::Metrics => self.metrics_text(),
            Route::WrongMethod => ApiError::method_not_allowed(format!(
                "{path} does not take {}",
                parts.method
            ))
            .render(dialect_of(&parts)),
            Route::NotFound => ApiError::not_found(format!(
                "keyward has no endpoint {}: it serves POST /v1/responses, /v1/chat/completions, /v1/completions, /v1/messages, /v1/messages/count_tokens, /v1beta/models/{{model}}:generateContent, :streamGenerateContent and :countTokens (also under /v1/models/), and GET /v1/models and /v1beta/models",
                crate::dialect::cut_short(path)
            ))
            .render(dialect_of(&parts)),
        };
        admitted.finish(&mut response);
        let recording = recording.map(|recording| (recording, note));
        observe::observe(&self.metrics, label, dialect, start, response, recording)
    }

    /// `GET /metrics`: Prometheus' text format (behind the gateway keys when they are set).
    fn metrics_text(&self) -> Response {
        (
            [(
                axum::http::header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            self.metrics.encode(),
        )
            .into_response()
    }
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
    server::run(gateway, listener, limits, shutdown).await
}
