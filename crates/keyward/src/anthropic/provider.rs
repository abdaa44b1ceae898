//! The Anthropic provider as the registry sees it: its `[anthropic]` section (the API's base URL
//! and the key profiles), and one upstream per key.

use std::sync::Arc;

use super::AnthropicUpstream;
use crate::api_key::{self, ApiKeyProfile, ApiKeySettings, KeyedProvider};
use crate::profile::ProfileId;
use crate::provider::{Provider, ProviderSettings, SectionError, SectionReader, Wiring};
use crate::upstream::Upstream;

const KEYED: KeyedProvider = KeyedProvider {
    name: super::PROVIDER,
    default_base_url: super::DEFAULT_BASE_URL,
    base_url_env: super::BASE_URL_ENV,
    key_env: super::API_KEY_ENV,
};

pub(crate) struct Anthropic;

#[derive(Debug)]
pub(crate) struct AnthropicSettings(ApiKeySettings);

impl Provider for Anthropic {
    fn section(&self) -> &'static str {
        super::PROVIDER
    }

    fn configure(
        &self,
        reader: &mut SectionReader<'_>,
    ) -> Result<Arc<dyn ProviderSettings>, SectionError> {
        Ok(Arc::new(AnthropicSettings(api_key::read_section(
            reader, &KEYED,
        )?)))
    }
}

impl ProviderSettings for AnthropicSettings {
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
                Arc::new(AnthropicUpstream::new(profile, wiring.http.clone()))
            })
            .collect()
    }
}
