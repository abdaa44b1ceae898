//! The HTTP gateway: `POST /v1/responses` and `GET /healthz`.

mod error;
mod health;
mod responses;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;

use crate::broker::Broker;

pub use error::ApiError;

/// Largest request body accepted (inputs with images can be large).
pub const MAX_BODY_BYTES: usize = 32 << 20;

pub struct Gateway {
    pub broker: Arc<Broker>,
    pub upstream: reqwest::Client,
    pub codex_base_url: String,
}

impl Gateway {
    pub fn new(broker: Arc<Broker>, codex_base_url: String) -> reqwest::Result<Arc<Self>> {
        // No overall timeout: a streamed answer may run for minutes. A stalled one is cut by the
        // read timeout.
        let upstream = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(300))
            .pool_idle_timeout(Duration::from_secs(90))
            .user_agent(concat!("keyward/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Arc::new(Self {
            broker,
            upstream,
            codex_base_url,
        }))
    }

    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/v1/responses", post(responses::handle))
            .route("/healthz", get(health::handle))
            .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
            .with_state(self.clone())
    }
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(
    gateway: Arc<Gateway>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = gateway.router();
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
