//! The Codex provider as the registry sees it: its `[codex]` section (the backend's URL, the
//! sign-in server and the token endpoint, the logins), its model catalogue, each login as the broker keeps it fresh, and
//! one upstream per login.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::token_endpoint::{http_client, CodexTokenEndpoint};
use super::upstream::CodexUpstream;
use super::{models, CodexSource};
use crate::broker::ProfileRuntime;
use crate::openai;
use crate::profile::{ProfileId, CODEX_PROVIDER};
use crate::provider::{
    ModelDefaults, Provider, ProviderSettings, SectionError, SectionReader, Wiring,
};
use crate::upstream::Upstream;

/// The token endpoint's connections are set up within this.
const TOKEN_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct Codex;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CodexSection {
    base_url: Option<String>,
    issuer: Option<String>,
    token_url: Option<String>,
    discover_default: Option<bool>,
    #[serde(default)]
    profiles: Vec<ProfileEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileEntry {
    name: String,
    home: PathBuf,
}

/// One Codex login: a Codex home, whose `auth.json` keyward borrows.
#[derive(Debug, Clone)]
pub(crate) struct CodexProfile {
    pub id: ProfileId,
    pub home: PathBuf,
    /// Whether a plain `codex login` logs this home in.
    pub is_default_home: bool,
}

#[derive(Debug)]
pub(crate) struct CodexSettings {
    /// The ChatGPT Codex backend, without a trailing `/`.
    pub base_url: String,
    /// The sign-in server (`keyward login`), without a trailing `/`.
    pub issuer: String,
    /// Where refreshes go: `[codex] token_url` or the CLI's override, else the issuer's.
    pub token_url: String,
    /// Where `keyward login` and `logout` revoke a login: the CLI's override, else the issuer's.
    pub revoke_url: String,
    /// The default login first (unless `discover_default = false`), then the file's.
    pub profiles: Vec<CodexProfile>,
}

impl Provider for Codex {
    fn section(&self) -> &'static str {
        "codex"
    }

    /// The Codex catalogue, Claude's names served by its models, and OpenAI's names as asked
    /// (the backend is the judge of what an account may use).
    fn models(&self) -> ModelDefaults {
        ModelDefaults {
            served: models::MODELS,
            aliases: models::ALIASES,
            namespace: Some(openai::models::is_openai_name),
        }
    }

    fn configure(
        &self,
        reader: &mut SectionReader<'_>,
    ) -> Result<Arc<dyn ProviderSettings>, SectionError> {
        let section: CodexSection = reader.parse()?;
        let default_home = reader.user_home().map(|home| home.join(".codex"));
        let mut profiles = Vec::new();
        if section.discover_default.unwrap_or(true) {
            let from_env = reader.var(super::HOME_ENV);
            let is_default_home = from_env.is_none();
            let home = from_env
                .map(PathBuf::from)
                .or_else(|| default_home.clone())
                .ok_or(SectionError::NoHome)?;
            profiles.push(CodexProfile {
                id: ProfileId::codex_default(),
                home,
                is_default_home,
            });
        }
        for entry in &section.profiles {
            let id = ProfileId::new(CODEX_PROVIDER, &entry.name)?;
            if profiles.iter().any(|p| p.id == id) {
                return Err(SectionError::defined_twice(&id));
            }
            let home = reader.expand_home(&entry.home);
            let is_default_home = default_home.as_deref() == Some(home.as_path());
            profiles.push(CodexProfile {
                id,
                home,
                is_default_home,
            });
        }
        let base_url = reader
            .var(super::BASE_URL_ENV)
            .or(section.base_url)
            .unwrap_or_else(|| super::DEFAULT_BASE_URL.to_string());
        let issuer = reader
            .var(super::ISSUER_ENV)
            .or(section.issuer)
            .unwrap_or_else(|| super::DEFAULT_ISSUER.to_string())
            .trim_end_matches('/')
            .to_string();
        match reqwest::Url::parse(&issuer) {
            Ok(url) if matches!(url.scheme(), "https" | "http") && url.query().is_none() => {}
            _ => {
                return Err(SectionError::Invalid(format!(
                    "[codex] issuer (or {}) = \"{issuer}\" is not an http(s) URL like {}",
                    super::ISSUER_ENV,
                    super::DEFAULT_ISSUER
                )))
            }
        }
        Ok(Arc::new(CodexSettings {
            base_url: base_url.trim_end_matches('/').to_string(),
            token_url: reader
                .var(super::TOKEN_URL_ENV)
                .or(section.token_url)
                .unwrap_or_else(|| format!("{issuer}/oauth/token")),
            revoke_url: reader
                .var(super::REVOKE_URL_ENV)
                .unwrap_or_else(|| format!("{issuer}/oauth/revoke")),
            issuer,
            profiles,
        }))
    }
}

impl ProviderSettings for CodexSettings {
    fn profiles(&self) -> Vec<ProfileId> {
        self.profiles.iter().map(|p| p.id.clone()).collect()
    }

    fn describe(&self) -> String {
        format!(
            "{CODEX_PROVIDER} {} (tokens from {})",
            self.base_url, self.token_url
        )
    }

    fn logins(&self, token_timeout: Duration) -> reqwest::Result<Vec<Arc<ProfileRuntime>>> {
        let endpoint = Arc::new(CodexTokenEndpoint::new(
            http_client(TOKEN_CONNECT_TIMEOUT)?,
            self.token_url.clone(),
            token_timeout,
        ));
        Ok(self
            .profiles
            .iter()
            .map(|profile| {
                Arc::new(ProfileRuntime::new(
                    profile.id.clone(),
                    Arc::new(CodexSource::new(
                        profile.home.clone(),
                        profile.is_default_home,
                    )),
                    endpoint.clone(),
                ))
            })
            .collect())
    }

    fn upstreams(&self, wiring: &Wiring<'_>) -> Vec<Arc<dyn Upstream>> {
        // An `auth.json` in API-key mode is served where OpenAI's API is.
        let openai_base_url = openai::provider::base_url(wiring.settings);
        self.profiles
            .iter()
            .map(|profile| -> Arc<dyn Upstream> {
                Arc::new(CodexUpstream::new(
                    profile.id.clone(),
                    wiring.broker.clone(),
                    *wiring.http,
                    &self.base_url,
                    openai_base_url,
                    wiring.models.clone(),
                ))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::config::tests::env;
    use crate::config::{Config, ConfigError, DEFAULT_LISTEN};

    fn codex(config: &Config) -> &CodexSettings {
        config
            .settings_of::<CodexSettings>()
            .unwrap_or_else(|| panic!("the Codex provider is not registered"))
    }

    #[test]
    fn zero_config_discovers_the_default_codex_home() -> Result<(), ConfigError> {
        let config = Config::load(&env(&[("HOME", "/home/u")]), None)?;
        assert_eq!(config.keyward_home, PathBuf::from("/home/u/.keyward"));
        assert_eq!(config.listen.to_string(), DEFAULT_LISTEN);
        let codex = codex(&config);
        assert_eq!(codex.profiles.len(), 1);
        assert_eq!(codex.profiles[0].id, ProfileId::codex_default());
        assert_eq!(codex.profiles[0].home, PathBuf::from("/home/u/.codex"));
        assert!(codex.profiles[0].is_default_home);
        assert_eq!(codex.token_url, "https://auth.openai.com/oauth/token");
        Ok(())
    }

    #[test]
    fn file_adds_profiles_and_env_overrides_urls() -> Result<(), ConfigError> {
        let dir = tempfile::tempdir().map_err(|e| ConfigError::NoHome.with(e))?;
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            r#"
listen = "127.0.0.1:9000"
[refresh]
margin = "20m"
[codex]
token_url = "http://file/token"
base_url = "http://file/base/"
[[codex.profiles]]
name = "work"
home = "~/.codex-work"
"#,
        )
        .map_err(|e| ConfigError::NoHome.with(e))?;
        let vars = env(&[
            ("HOME", "/h"),
            ("CODEX_REFRESH_TOKEN_URL_OVERRIDE", "http://env/token"),
        ]);
        let config = Config::load(&vars, Some(&path))?;
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.margin, Duration::from_secs(1200));
        let codex = codex(&config);
        assert_eq!(codex.token_url, "http://env/token");
        assert_eq!(codex.base_url, "http://file/base");
        assert_eq!(codex.profiles[1].id.to_string(), "openai-codex:work");
        assert_eq!(codex.profiles[1].home, PathBuf::from("/h/.codex-work"));
        Ok(())
    }

    /// The issuer places sign-ins, refreshes and revokes; the CLI's URL overrides keep winning.
    #[test]
    fn the_issuer_places_every_endpoint_the_overrides_win() -> Result<(), ConfigError> {
        let codex_of = |pairs: &[(&str, &str)]| -> Result<(String, String, String), ConfigError> {
            let config = Config::load(&env(pairs), None)?;
            let codex = codex(&config);
            Ok((
                codex.issuer.clone(),
                codex.token_url.clone(),
                codex.revoke_url.clone(),
            ))
        };
        assert_eq!(
            codex_of(&[("HOME", "/h")])?,
            (
                "https://auth.openai.com".into(),
                "https://auth.openai.com/oauth/token".into(),
                "https://auth.openai.com/oauth/revoke".into()
            )
        );
        assert_eq!(
            codex_of(&[
                ("HOME", "/h"),
                ("KEYWARD_CODEX_ISSUER", "http://127.0.0.1:9/")
            ])?,
            (
                "http://127.0.0.1:9".into(),
                "http://127.0.0.1:9/oauth/token".into(),
                "http://127.0.0.1:9/oauth/revoke".into()
            )
        );
        let overridden = codex_of(&[
            ("HOME", "/h"),
            ("KEYWARD_CODEX_ISSUER", "http://127.0.0.1:9"),
            ("CODEX_REFRESH_TOKEN_URL_OVERRIDE", "http://t/token"),
            ("CODEX_REVOKE_TOKEN_URL_OVERRIDE", "http://r/revoke"),
        ])?;
        assert_eq!(
            (overridden.1.as_str(), overridden.2.as_str()),
            ("http://t/token", "http://r/revoke")
        );
        let bad = Config::load(
            &env(&[("HOME", "/h"), ("KEYWARD_CODEX_ISSUER", "auth.openai.com")]),
            None,
        );
        assert!(
            matches!(&bad, Err(ConfigError::Invalid { detail, .. }) if detail.contains("issuer")),
            "{bad:?}"
        );
        Ok(())
    }
}
