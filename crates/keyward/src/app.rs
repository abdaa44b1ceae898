//! Wires configuration into a running broker: the store, each profile's source and endpoint.

use std::sync::Arc;
use std::time::Duration;

use crate::broker::{Broker, BrokerSettings, ProfileRuntime, RefreshTiming};
use crate::codex::token_endpoint::{http_client, CodexTokenEndpoint};
use crate::codex::CodexSource;
use crate::config::Config;
use crate::store::{SqliteStore, Store};

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

pub fn build_broker(config: &Config) -> Result<Arc<Broker>, AppError> {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&config.keyward_home)?);
    let http = http_client(Duration::from_secs(10), config.token_timeout)
        .map_err(|e| AppError::Http(e.to_string()))?;
    let endpoint = Arc::new(CodexTokenEndpoint::new(
        http,
        config.codex_token_url.clone(),
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
