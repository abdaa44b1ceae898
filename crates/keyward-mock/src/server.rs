//! Wires the endpoints onto one listener and announces the bound port.

use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use anyhow::{Context, Result};
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;

use crate::conn_kill::{ConnHandle, KillableListener};
use crate::hold::Gates;
use crate::limits::Limits;
use crate::login_state::LoginState;
use crate::provider_state::ProviderState;
use crate::responses_endpoint::{self, Journal};
use crate::{
    admin, anthropic_api, authorize, device_auth, openai_api, revoke_endpoint, token_endpoint,
};

#[derive(Clone, Debug)]
pub(crate) struct ServeConfig {
    pub(crate) listen: String,
    pub(crate) access_ttl: i64,
    pub(crate) chunks: usize,
    pub(crate) chunk_delay_ms: u64,
}

pub(crate) struct AppState {
    provider: Mutex<ProviderState>,
    logins: Mutex<LoginState>,
    journal: Mutex<Journal>,
    limits: Mutex<Limits>,
    pub(crate) gates: Gates,
    pub(crate) config: ServeConfig,
}

pub(crate) type Shared = Arc<AppState>;

impl AppState {
    pub(crate) fn new(config: ServeConfig) -> Shared {
        Arc::new(AppState {
            provider: Mutex::new(ProviderState::new(config.access_ttl)),
            logins: Mutex::new(LoginState::default()),
            journal: Mutex::new(Journal::default()),
            limits: Mutex::new(Limits::default()),
            gates: Gates::default(),
            config,
        })
    }

    /// Poisoning only means another handler panicked mid-update; the mock
    /// keeps serving so the test that caused it sees a useful failure.
    pub(crate) fn provider(&self) -> MutexGuard<'_, ProviderState> {
        self.provider.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The sign-in server's memory; never held while `provider` is taken
    /// first. Poisoning is survived as for `provider`.
    pub(crate) fn logins(&self) -> MutexGuard<'_, LoginState> {
        self.logins.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The responses endpoint's memory; poisoning is survived as for `provider`.
    pub(crate) fn journal(&self) -> MutexGuard<'_, Journal> {
        self.journal.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The accounts' and API keys' limits; poisoning is survived as for `provider`.
    pub(crate) fn limits(&self) -> MutexGuard<'_, Limits> {
        self.limits.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub(crate) fn router(state: Shared) -> Router {
    Router::new()
        .route("/oauth/token", post(token_endpoint::token))
        .route("/oauth/authorize", get(authorize::authorize))
        .route("/oauth/authorize/decision", post(authorize::decide))
        .route("/oauth/revoke", post(revoke_endpoint::revoke))
        .route(
            "/api/accounts/deviceauth/usercode",
            post(device_auth::usercode),
        )
        .route("/api/accounts/deviceauth/token", post(device_auth::token))
        .route(
            "/codex/device",
            get(device_auth::page).post(device_auth::approve_page),
        )
        .route(
            "/backend-api/codex/responses",
            post(responses_endpoint::responses),
        )
        .route("/v1/responses", post(openai_api::responses))
        .route("/v1/messages", post(anthropic_api::messages))
        .route("/admin/login", post(admin::login))
        .route("/admin/authorize", post(admin::authorize))
        .route("/admin/device", post(admin::device))
        .route("/admin/device/approve", post(admin::device_approve))
        .route("/admin/stats", get(admin::stats))
        .route("/admin/token_faults", post(admin::token_faults))
        .route("/admin/response_faults", post(admin::response_faults))
        .route("/admin/ttl_queue", post(admin::ttl_queue))
        .route("/admin/revoke", post(admin::revoke))
        .route("/admin/inspect", post(admin::inspect))
        .route("/admin/release/{key}", post(admin::release))
        .route("/admin/log", get(admin::log))
        .route("/admin/requests", get(admin::requests))
        .route("/admin/usage_limit", post(admin::usage_limit))
        .route("/admin/api_key_limit", post(admin::api_key_limit))
        // The real backends take requests far larger than axum's 2 MiB default (a long
        // conversation with images); their own limit is not known, so a generous one.
        .layer(axum::extract::DefaultBodyLimit::max(64 << 20))
        .with_state(state)
}

/// Serves `state` on `listener` until the process ends.
pub(crate) async fn serve(listener: TcpListener, state: Shared) -> Result<()> {
    let app = router(state).into_make_service_with_connect_info::<ConnHandle>();
    axum::serve(KillableListener(listener), app).await?;
    Ok(())
}

pub(crate) async fn run(config: ServeConfig) -> Result<()> {
    let listener = TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr()?;
    let state = AppState::new(config);
    {
        // Tests parse this line to learn the port, so it must be the only
        // stdout output and must not sit in a buffer.
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on http://{addr}")?;
        out.flush()?;
    }
    serve(listener, state).await
}
