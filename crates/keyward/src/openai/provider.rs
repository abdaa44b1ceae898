//! The OpenAI provider as the registry sees it: its `[openai]` section (the API's base URL and
//! the key profiles), OpenAI's model name space, and one upstream per key.

use std::sync::Arc;

use super::{models, OpenAiUpstream};
use crate::api_key::{self, ApiKeySettings, KeyedProvider};
use crate::provider::{ModelDefaults, Provider, ProviderSettings, SectionError, SectionReader};

const KEYED: KeyedProvider = KeyedProvider {
    name: super::PROVIDER,
    default_base_url: super::DEFAULT_BASE_URL,
    base_url_env: super::BASE_URL_ENV,
    key_env: super::API_KEY_ENV,
    upstream: |profile, wiring| {
        Arc::new(OpenAiUpstream::new(
            profile,
            *wiring.http,
            wiring.models.clone(),
        ))
    },
};

pub(crate) struct OpenAi;

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
        Ok(Arc::new(api_key::read_section(reader, &KEYED)?))
    }
}

/// Where OpenAI API requests go: its key profiles', and a Codex `auth.json` in API-key mode's.
pub(crate) fn base_url(settings: &[Arc<dyn ProviderSettings>]) -> &str {
    ApiKeySettings::of(settings, super::PROVIDER)
        .map_or(super::DEFAULT_BASE_URL, |openai| openai.base_url.as_str())
}
