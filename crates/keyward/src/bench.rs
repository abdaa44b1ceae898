//! What `benches/hot_path.rs` measures, reached from outside the crate: a broker built from an
//! environment as `serve` builds it, one access of a profile's token, and a change of its source.

use std::collections::HashMap;

use crate::broker::Broker;
use crate::profile::ProfileId;

/// A broker over the default Codex profile of the environment `env`.
pub struct HotPath {
    broker: std::sync::Arc<Broker>,
    profile: ProfileId,
}

impl HotPath {
    pub fn new(env: &HashMap<String, String>) -> Result<Self, Box<dyn std::error::Error>> {
        let config = crate::config::Config::load(env, None)?;
        Ok(Self {
            broker: crate::app::build(&config)?.broker,
            profile: ProfileId::codex_default(),
        })
    }

    /// Resolves the access token once, as every request does.
    pub async fn access(&self) -> Result<(), Box<dyn std::error::Error>> {
        self.broker.access(&self.profile).await?;
        Ok(())
    }

    /// What a file event does: the next access re-reads the source.
    pub fn source_changed(&self) {
        if let Some(runtime) = self.broker.profile(&self.profile) {
            runtime.source_changed();
        }
    }
}
