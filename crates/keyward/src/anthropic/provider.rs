//! The Anthropic provider as the registry sees it: its `[anthropic]` section (the API's base URL
//! and the key profiles), and one upstream per key.

use std::sync::Arc;

use super::AnthropicUpstream;
use crate::api_key::{self, KeyedProvider};
use crate::provider::{Provider, ProviderSettings, SectionError, SectionReader};

const KEYED: KeyedProvider = KeyedProvider {
    name: super::PROVIDER,
    default_base_url: super::DEFAULT_BASE_URL,
    base_url_env: super::BASE_URL_ENV,
    key_env: super::API_KEY_ENV,
    upstream: |profile, wiring| Arc::new(AnthropicUpstream::new(profile, *wiring.http)),
};

pub(crate) struct Anthropic;

impl Provider for Anthropic {
    fn section(&self) -> &'static str {
        super::PROVIDER
    }

    fn configure(
        &self,
        reader: &mut SectionReader<'_>,
    ) -> Result<Arc<dyn ProviderSettings>, SectionError> {
        Ok(Arc::new(api_key::read_section(reader, &KEYED)?))
    }
}
