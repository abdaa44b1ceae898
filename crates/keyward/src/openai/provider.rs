//! The OpenAI provider as the registry sees it: its `[openai]` section (the API's base URL and
//! the key profiles), OpenAI's model name space, and one upstream per key.

use std::sync::Arc;

use super::{models, OpenAiUpstream};
use crate::api_key::{self, ApiKeyProfile, ApiKeySettings, KeyedProvider};
use crate::profile::ProfileId;
use crate::provider::{
    ModelDefaults, Provider, ProviderSettings, SectionError, SectionReader, Wiring,
};
use crate::upstream::Upstream;

const KEYED: KeyedProvider = KeyedProvider {
    name: super::PROVIDER,
    default_base_url: super::DEFAULT_BASE_URL,
    base_url_env: super::BASE_URL_ENV,
    key_env: super::API_KEY_ENV,
};

pub(crate) struct OpenAi;

#[derive(Debug)]
pub(crate) struct OpenAiSettings(ApiKeySettings);

impl OpenAiSettings {
    /// Where OpenAI API requests go: the key profiles', and a Codex `auth.json` in API-key mode.
    pub(crate) fn base_url(&self) -> &str {
        &self.0.base_url
    }
}

impl Provider for OpenAi {
    fn section(&self) -> &'static str {
        super::PROVIDER
    }

    fn models(&self) -> ModelDefaults {
        ModelDefaults {
            namespace: Some(models::is_openai_name),
            ..ModelDefaults::default()
        }
    }

    fn configure(
        &self,
        reader: &mut SectionReader<'_>,
    ) -> Result<Arc<dyn ProviderSettings>, SectionError> {
        Ok(Arc::new(OpenAiSettings(api_key::read_section(
            reader, &KEYED,
        )?)))
    }
}

impl ProviderSettings for OpenAiSettings {
    fn profiles(&self) -> Vec<ProfileId> {
        self.0.profiles.iter().map(|p| p.id.clone()).collect()
    }

    fn api_key_profiles(&self) -> &[ApiKeyProfile] {
        &self.0.profiles
    }

    fn describe(&self) -> String {
        format!("{} {}", super::PROVIDER, self.0.base_url)
    }

    fn upstreams(&self, wiring: &Wiring<'_>) -> Vec<Arc<dyn Upstream>> {
        self.0
            .profiles
            .iter()
            .map(|profile| -> Arc<dyn Upstream> {
                Arc::new(OpenAiUpstream::new(
                    profile,
                    wiring.http.clone(),
                    wiring.models.clone(),
                ))
            })
            .collect()
    }
}
