//! What a provider brings to keyward, described in one place per provider (`codex::provider`,
//! `openai::provider`, `anthropic::provider`) and listed in one registry ([`crate::providers`]):
//! its section of `config.toml`, read by the provider itself under its environment overrides; the
//! model names it serves; the logins the broker keeps fresh for it; and its upstreams, which know
//! what its answers mean (limits, usage windows, error bodies: [`crate::upstream::Upstream`]).
//!
//! The config loader, the app's wiring and the gateway go through these traits and name no
//! provider; adding one is a module implementing them and a line in the registry.

mod section;

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::api_key::ApiKeyProfile;
use crate::broker::{Broker, ProfileRuntime};
use crate::models::Models;
use crate::profile::ProfileId;
use crate::upstream::{Upstream, UpstreamHttp};

pub(crate) use section::{refuse_unknown_keys, SectionError, SectionReader};

/// A provider: how keyward learns its settings and what it defaults to.
pub(crate) trait Provider: Sync {
    /// Its section of `config.toml` (`codex` for `[codex]` and `[[codex.profiles]]`).
    fn section(&self) -> &'static str;

    /// The model names it brings to `[models]`' defaults.
    fn models(&self) -> ModelDefaults {
        ModelDefaults::default()
    }

    /// Reads its section of the config file, under the environment's overrides.
    fn configure(
        &self,
        reader: &mut SectionReader<'_>,
    ) -> Result<Arc<dyn ProviderSettings>, SectionError>;
}

/// A provider's contribution to the model table, which `[models]` may replace.
#[derive(Default)]
pub(crate) struct ModelDefaults {
    /// `(model id, display name)`: listed by `GET /v1/models` unless `[models] served` is set.
    pub served: &'static [(&'static str, &'static str)],
    /// `(pattern, model)`: other vendors' names it stands in for, unless `default_aliases = false`.
    pub aliases: &'static [(&'static str, &'static str)],
    /// The names its upstreams take as asked (its vendor's name space), with no alias needed.
    pub namespace: Option<fn(&str) -> bool>,
}

/// A provider's settings as the config file and the environment gave them.
pub(crate) trait ProviderSettings: Any + fmt::Debug + Send + Sync {
    /// Its profiles, in config order.
    fn profiles(&self) -> Vec<ProfileId>;

    /// Those of its profiles that serve with an API key.
    fn api_key_profiles(&self) -> &[ApiKeyProfile] {
        &[]
    }

    /// Where it sends requests, for the startup log (never a credential).
    fn describe(&self) -> String;

    /// The logins whose tokens the broker keeps fresh; `token_timeout` bounds one refresh. Fails
    /// only when the HTTP client for the token endpoint cannot be built.
    fn logins(&self, _token_timeout: Duration) -> reqwest::Result<Vec<Arc<ProfileRuntime>>> {
        Ok(Vec::new())
    }

    /// One upstream per profile, in config order.
    fn upstreams(&self, wiring: &Wiring<'_>) -> Vec<Arc<dyn Upstream>>;
}

/// What a provider's upstreams are built with.
pub(crate) struct Wiring<'a> {
    pub broker: &'a Arc<Broker>,
    pub http: &'a UpstreamHttp,
    pub models: &'a Arc<Models>,
    /// Every provider's settings, for upstreams that reach another provider's API (a Codex login
    /// in API-key mode is served by OpenAI's).
    pub settings: &'a [Arc<dyn ProviderSettings>],
}

/// The settings of type `T` among `all`, in the registry's order.
pub(crate) fn settings_of<T: ProviderSettings>(
    all: &[Arc<dyn ProviderSettings>],
) -> impl Iterator<Item = &T> {
    all.iter().filter_map(|settings| {
        let settings: &dyn Any = settings.as_ref();
        settings.downcast_ref::<T>()
    })
}
