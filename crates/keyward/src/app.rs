//! Wires configuration into a running keyward: the store, the broker with each Codex login's
//! source and token endpoint, and the pool of upstreams (a provider factory: one upstream per
//! Codex login and per API-key profile).

use std::sync::Arc;
use std::time::Duration;

use crate::anthropic::AnthropicUpstream;
use crate::broker::{Broker, BrokerSettings, ProfileRuntime, RefreshTiming};
use crate::codex::token_endpoint::{http_client, CodexTokenEndpoint};
use crate::codex::upstream::CodexUpstream;
use crate::codex::CodexSource;
use crate::config::Config;
use crate::openai::OpenAiUpstream;
use crate::pool::Pool;
use crate::store::{PoolStore, SqliteStore, Store};
use crate::upstream::{Upstream, UpstreamHttp};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
}

pub fn settings(config: &Config) -> BrokerSettings {
    BrokerSettings {
        timing: RefreshTiming {
            margin: config.margin,
            jitter: config.jitter,
            min_validity: config.min_validity,
        },
        lock_timeout: config.lock_timeout,
        settle_window: config.settle_window,
        tick: config.tick,
        ..BrokerSettings::default()
    }
}

/// Everything a command needs.
pub struct App {
    pub broker: Arc<Broker>,
    pub pool: Arc<Pool>,
}

pub fn build(config: &Config) -> Result<App, AppError> {
    let store = Arc::new(SqliteStore::open(&config.keyward_home)?);
    let broker = build_broker(config, store.clone())?;
    let http = UpstreamHttp::new().map_err(|e| AppError::Http(e.to_string()))?;
    let models = Arc::new(config.models.clone());
    let mut members: Vec<Arc<dyn Upstream>> = Vec::new();
    for profile in &config.codex_profiles {
        members.push(Arc::new(CodexUpstream::new(
            profile.id.clone(),
            broker.clone(),
            http.clone(),
            &config.codex_base_url,
            &config.openai_base_url,
            models.clone(),
        )));
    }
    for profile in &config.api_profiles {
        let member: Arc<dyn Upstream> = match profile.id.provider() {
            crate::anthropic::PROVIDER => Arc::new(AnthropicUpstream::new(profile, http.clone())),
            _ => Arc::new(OpenAiUpstream::new(profile, http.clone(), models.clone())),
        };
        members.push(member);
    }
    let pool_store: Arc<dyn PoolStore> = store;
    let pool = Arc::new(Pool::new(members, &config.routes, Some(pool_store)));
    Ok(App { broker, pool })
}

fn build_broker(config: &Config, store: Arc<SqliteStore>) -> Result<Arc<Broker>, AppError> {
    let store: Arc<dyn Store> = store;
    let http = http_client(Duration::from_secs(10)).map_err(|e| AppError::Http(e.to_string()))?;
    let endpoint = Arc::new(CodexTokenEndpoint::new(
        http,
        config.codex_token_url.clone(),
        config.token_timeout,
    ));
    let profiles = config
        .codex_profiles
        .iter()
        .map(|p| {
            Arc::new(ProfileRuntime::new(
                p.id.clone(),
                Arc::new(CodexSource::new(p.home.clone(), p.is_default_home)),
                endpoint.clone(),
            ))
        })
        .collect();
    Ok(Broker::new(profiles, store, settings(config)))
}
