//! API-key profiles (`[[openai.profiles]]`, `[[anthropic.profiles]]`, and the `OPENAI_API_KEY` /
//! `ANTHROPIC_API_KEY` keyward runs with) and routes (`[[routes]]`).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde::Deserialize;

use super::Env;
use crate::pool::{RouteConfig, Strategy};
use crate::profile::ProfileId;
use crate::secret::Secret;
use crate::{anthropic, openai};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ApiProviderFile {
    pub base_url: Option<String>,
    #[serde(default)]
    profiles: Vec<ApiKeyProfileFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApiKeyProfileFile {
    name: String,
    /// The key itself (the config file then holds a secret: keep it 0600).
    api_key: Option<String>,
    /// The environment variable holding the key (preferred).
    api_key_env: Option<String>,
    base_url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RouteFile {
    model: String,
    profiles: Vec<String>,
    strategy: Option<String>,
}

/// A profile that serves with an API key.
#[derive(Debug, Clone)]
pub struct ApiKeyProfile {
    pub id: ProfileId,
    pub key: Secret,
    pub base_url: String,
    /// Where the key came from, for `status` (never the key).
    pub origin: String,
}

/// The API-key profiles of both providers, OpenAI's first, each in file order; a provider's key
/// in the environment becomes its `default` profile unless the file defines one.
pub(super) fn api_profiles(
    env: &dyn Env,
    openai_file: &ApiProviderFile,
    anthropic_file: &ApiProviderFile,
    (openai_base, anthropic_base): (&str, &str),
    config_path: &Path,
    warnings: &mut Vec<String>,
) -> Result<Vec<ApiKeyProfile>, String> {
    let mut profiles = Vec::new();
    for (provider, file, base, key_env) in [
        (
            openai::PROVIDER,
            openai_file,
            openai_base,
            openai::API_KEY_ENV,
        ),
        (
            anthropic::PROVIDER,
            anthropic_file,
            anthropic_base,
            anthropic::API_KEY_ENV,
        ),
    ] {
        for entry in &file.profiles {
            let id = ProfileId::new(provider, &entry.name).map_err(|e| e.to_string())?;
            if profiles.iter().any(|p: &ApiKeyProfile| p.id == id) {
                return Err(format!("profile `{id}` is defined twice"));
            }
            let (key, origin) = match (&entry.api_key, &entry.api_key_env) {
                (Some(key), None) => {
                    if file_readable_by_others(config_path) {
                        warnings.push(format!(
                            "{} holds the API key of {id} and other users can read it: `chmod 600 {}`, or use api_key_env",
                            config_path.display(),
                            config_path.display()
                        ));
                    }
                    (key.clone(), "the config file".to_string())
                }
                (None, Some(var)) => {
                    let key = env.get(var).ok_or_else(|| {
                        format!("profile `{id}` takes its key from ${var}, which is not set")
                    })?;
                    (key, format!("${var}"))
                }
                _ => {
                    return Err(format!(
                        "profile `{id}` needs exactly one of api_key and api_key_env"
                    ))
                }
            };
            if key.trim().is_empty() {
                return Err(format!("profile `{id}` has an empty API key"));
            }
            profiles.push(ApiKeyProfile {
                id,
                key: Secret::new(key.trim()),
                base_url: entry.base_url.clone().unwrap_or_else(|| base.to_string()),
                origin,
            });
        }
        let default = ProfileId::new(provider, "default").map_err(|e| e.to_string())?;
        if let Some(key) = env.get(key_env) {
            if !profiles.iter().any(|p| p.id == default) && !key.trim().is_empty() {
                profiles.push(ApiKeyProfile {
                    id: default,
                    key: Secret::new(key.trim()),
                    base_url: base.to_string(),
                    origin: format!("${key_env}"),
                });
            }
        }
    }
    Ok(profiles)
}

fn file_readable_by_others(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o044 != 0)
}

/// `[[routes]]`, each naming known profiles.
pub(super) fn routes(files: &[RouteFile], known: &[ProfileId]) -> Result<Vec<RouteConfig>, String> {
    files
        .iter()
        .map(|route| {
            globset::Glob::new(&route.model).map_err(|e| {
                format!("[[routes]] model = \"{}\" is not a valid pattern: {e}", route.model)
            })?;
            if route.profiles.is_empty() {
                return Err(format!(
                    "[[routes]] model = \"{}\" names no profiles",
                    route.model
                ));
            }
            let profiles = route
                .profiles
                .iter()
                .map(|text| {
                    let id: ProfileId = text.parse().map_err(|e: crate::profile::ProfileIdError| e.to_string())?;
                    if known.contains(&id) {
                        Ok(id)
                    } else {
                        Err(format!(
                            "[[routes]] model = \"{}\" names the profile `{id}`, which is not configured (known: {})",
                            route.model,
                            known.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                        ))
                    }
                })
                .collect::<Result<Vec<_>, String>>()?;
            let strategy = match route.strategy.as_deref() {
                None => Strategy::Failover,
                Some(text) => Strategy::parse(text).ok_or_else(|| {
                    format!("[[routes]] strategy = \"{text}\" is not one of failover, round-robin")
                })?,
            };
            Ok(RouteConfig {
                model: route.model.clone(),
                profiles,
                strategy,
            })
        })
        .collect()
}
