//! Wires configuration into a running keyward: the store, the broker with every provider's logins,
//! and the pool of every provider's upstreams (one per profile, in config order). Each provider
//! builds its own ([`crate::provider::ProviderSettings`]); this module names none.

use std::sync::Arc;

use crate::broker::{Broker, BrokerSettings, RefreshTiming};
use crate::config::Config;
use crate::pool::Pool;
use crate::provider::Wiring;
use crate::store::{PoolStore, SqliteStore, Store};
use crate::upstream::UpstreamHttp;

#[derive(Debug, thiserror::Error)]
pub(crate) enum AppError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("cannot build the HTTP client: {0}")]
    Http(#[source] reqwest::Error),
}

pub(crate) fn settings(config: &Config) -> BrokerSettings {
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
pub(crate) struct App {
    pub broker: Arc<Broker>,
    pub pool: Arc<Pool>,
}

pub(crate) fn build(config: &Config) -> Result<App, AppError> {
    let store = Arc::new(SqliteStore::open(&config.keyward_home)?);
    let mut logins = Vec::new();
    for provider in config.providers() {
        logins.extend(
            provider
                .logins(config.token_timeout)
                .map_err(AppError::Http)?,
        );
    }
    let ledger: Arc<dyn Store> = store.clone();
    let broker = Broker::new(logins, ledger, settings(config));
    let http = UpstreamHttp;
    let models = Arc::new(config.models.clone());
    let wiring = Wiring {
        broker: &broker,
        http: &http,
        models: &models,
        settings: config.providers(),
    };
    let members = config
        .providers()
        .iter()
        .flat_map(|provider| provider.upstreams(&wiring))
        .collect();
    let pool_store: Arc<dyn PoolStore> = store;
    let pool = Arc::new(Pool::new(
        members,
        &config.routes,
        Some(pool_store),
        broker.clock().clone(),
    ));
    Ok(App { broker, pool })
}
