//! Profiles that serve with an API key, whatever their provider: `[[openai.profiles]]`,
//! `[[anthropic.profiles]]`, and the `OPENAI_API_KEY` / `ANTHROPIC_API_KEY` keyward runs with.
//! Providers that serve with keys share this section shape and read it here.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use crate::profile::ProfileId;
use crate::provider::{self, ProviderSettings, SectionError, SectionReader, Wiring};
use crate::secret::Secret;
use crate::upstream::Upstream;

/// A profile that serves with an API key.
#[derive(Debug, Clone)]
pub(crate) struct ApiKeyProfile {
    pub id: ProfileId,
    pub key: Secret,
    pub base_url: String,
    /// Where the key came from, for `status` (never the key).
    pub origin: String,
}

/// Builds a provider's upstream for one of its keys.
type UpstreamFor = fn(&ApiKeyProfile, &Wiring<'_>) -> Arc<dyn Upstream>;

/// A provider that serves with API keys: its names in profile ids and the environment, and its
/// upstream.
pub(crate) struct KeyedProvider {
    /// Its profiles' provider part (`openai` in `openai:work`).
    pub name: &'static str,
    pub default_base_url: &'static str,
    /// Overrides the base URL (a proxy, or a test's mock).
    pub base_url_env: &'static str,
    /// A key in keyward's environment becomes the profile `NAME:default`.
    pub key_env: &'static str,
    pub upstream: UpstreamFor,
}

/// Such a provider's settings: where its API is, and its profiles in config order.
#[derive(Debug)]
pub(crate) struct ApiKeySettings {
    /// The provider's part of its profiles' ids.
    pub provider: &'static str,
    pub base_url: String,
    pub profiles: Vec<ApiKeyProfile>,
    upstream: UpstreamFor,
}

impl ApiKeySettings {
    /// The settings of the key-serving provider `name` among `all`, if it is registered.
    pub(crate) fn of<'a>(all: &'a [Arc<dyn ProviderSettings>], name: &str) -> Option<&'a Self> {
        provider::settings_of::<Self>(all).find(|settings| settings.provider == name)
    }
}

impl ProviderSettings for ApiKeySettings {
    fn profiles(&self) -> Vec<ProfileId> {
        self.profiles.iter().map(|p| p.id.clone()).collect()
    }

    fn api_key_profiles(&self) -> &[ApiKeyProfile] {
        &self.profiles
    }

    fn describe(&self) -> String {
        format!("{} {}", self.provider, self.base_url)
    }

    fn upstreams(&self, wiring: &Wiring<'_>) -> Vec<Arc<dyn Upstream>> {
        self.profiles
            .iter()
            .map(|profile| (self.upstream)(profile, wiring))
            .collect()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApiKeySection {
    base_url: Option<String>,
    #[serde(default)]
    profiles: Vec<ApiKeyProfileEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApiKeyProfileEntry {
    name: String,
    /// The key itself (the config file then holds a secret: keep it 0600).
    api_key: Option<String>,
    /// The environment variable holding the key (preferred).
    api_key_env: Option<String>,
    base_url: Option<String>,
}

/// Reads `provider`'s section: its profiles in file order, then the key in the environment as
/// its `default` profile unless the file defines one.
pub(crate) fn read_section(
    reader: &mut SectionReader<'_>,
    provider: &KeyedProvider,
) -> Result<ApiKeySettings, SectionError> {
    let section: ApiKeySection = reader.parse()?;
    let base_url = reader
        .var(provider.base_url_env)
        .or(section.base_url)
        .unwrap_or_else(|| provider.default_base_url.to_string());
    let mut profiles: Vec<ApiKeyProfile> = Vec::new();
    for entry in &section.profiles {
        let id = ProfileId::new(provider.name, &entry.name)?;
        if profiles.iter().any(|p| p.id == id) {
            return Err(SectionError::defined_twice(&id));
        }
        let (key, origin) = match (&entry.api_key, &entry.api_key_env) {
            (Some(key), None) => {
                let path = reader.config_path().to_path_buf();
                if file_readable_by_others(&path) {
                    reader.warn(format!(
                        "{} holds the API key of {id} and other users can read it: `chmod 600 {}`, or use api_key_env",
                        path.display(),
                        path.display()
                    ));
                }
                (key.clone(), "the config file".to_string())
            }
            (None, Some(var)) => {
                let key = reader.var(var).ok_or_else(|| {
                    SectionError::Invalid(format!(
                        "profile `{id}` takes its key from ${var}, which is not set"
                    ))
                })?;
                (key, format!("${var}"))
            }
            _ => {
                return Err(SectionError::Invalid(format!(
                    "profile `{id}` needs exactly one of api_key and api_key_env"
                )))
            }
        };
        if key.trim().is_empty() {
            return Err(SectionError::Invalid(format!(
                "profile `{id}` has an empty API key"
            )));
        }
        profiles.push(ApiKeyProfile {
            id,
            key: Secret::new(key.trim()),
            base_url: entry.base_url.clone().unwrap_or_else(|| base_url.clone()),
            origin,
        });
    }
    let default = ProfileId::new(provider.name, "default")?;
    if let Some(key) = reader.var(provider.key_env) {
        if !profiles.iter().any(|p| p.id == default) && !key.trim().is_empty() {
            profiles.push(ApiKeyProfile {
                id: default,
                key: Secret::new(key.trim()),
                base_url: base_url.clone(),
                origin: format!("${}", provider.key_env),
            });
        }
    }
    Ok(ApiKeySettings {
        provider: provider.name,
        base_url,
        profiles,
        upstream: provider.upstream,
    })
}

fn file_readable_by_others(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o044 != 0)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const ACME: KeyedProvider = KeyedProvider {
        name: "acme",
        default_base_url: "http://acme.default",
        base_url_env: "ACME_BASE_URL",
        key_env: "ACME_API_KEY",
        upstream: |_, _| panic!("no upstream is built here"),
    };

    fn read(text: &str, vars: &[(&str, &str)]) -> Result<ApiKeySettings, SectionError> {
        let env: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut warnings = Vec::new();
        let mut reader = SectionReader::new(
            "acme",
            text,
            &env,
            Path::new("/none/config.toml"),
            &mut warnings,
        );
        read_section(&mut reader, &ACME)
    }

    /// The file's profiles come first, in its order, with the file's base URL under the
    /// environment's; the key keyward runs with becomes `default` unless the file names one.
    #[test]
    fn profiles_come_from_the_file_then_the_environment() -> Result<(), SectionError> {
        let text = "[acme]\nbase_url = \"http://acme.file\"\n[[acme.profiles]]\nname = \"work\"\napi_key_env = \"WORK_KEY\"\nbase_url = \"http://acme.work\"\n";
        let settings = read(
            text,
            &[("WORK_KEY", " k-work "), ("ACME_API_KEY", "k-default")],
        )?;
        assert_eq!(settings.base_url, "http://acme.file");
        let profiles: Vec<(String, &str, &str, &str)> = settings
            .profiles
            .iter()
            .map(|p| {
                (
                    p.id.to_string(),
                    p.key.expose(),
                    p.base_url.as_str(),
                    p.origin.as_str(),
                )
            })
            .collect();
        assert_eq!(
            profiles,
            [
                (
                    "acme:work".to_string(),
                    "k-work",
                    "http://acme.work",
                    "$WORK_KEY"
                ),
                (
                    "acme:default".to_string(),
                    "k-default",
                    "http://acme.file",
                    "$ACME_API_KEY"
                ),
            ]
        );
        let overridden = read(text, &[("WORK_KEY", "k"), ("ACME_BASE_URL", "http://env")])?;
        assert_eq!(overridden.base_url, "http://env");
        Ok(())
    }

    /// A profile without its key, with two keys, or defined twice is refused, naming it.
    #[test]
    fn unusable_profiles_are_explained() {
        let refusal = |text: &str| match read(text, &[]) {
            Err(e) => e.to_string(),
            Ok(settings) => panic!("accepted: {settings:?}"),
        };
        assert!(
            refusal("[[acme.profiles]]\nname = \"a\"\napi_key_env = \"NOPE\"\n")
                .contains("profile `acme:a` takes its key from $NOPE, which is not set")
        );
        assert!(refusal("[[acme.profiles]]\nname = \"a\"\n")
            .contains("needs exactly one of api_key and api_key_env"));
        assert!(refusal(
            "[[acme.profiles]]\nname = \"a\"\napi_key = \"k\"\n[[acme.profiles]]\nname = \"a\"\napi_key = \"k\"\n"
        )
        .contains("profile `acme:a` is defined twice"));
        assert!(
            refusal("[[acme.profiles]]\nname = \"a b\"\napi_key = \"k\"\n")
                .contains("invalid profile id")
        );
    }
}
