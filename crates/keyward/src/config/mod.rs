//! Configuration: `$KEYWARD_HOME/config.toml` (optional) under environment overrides.
//!
//! The environment is read through [`Env`], so tests pass a map instead of mutating the process.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::codex;
use crate::models::{Alias, Models, ServedModel};
use crate::pool::RouteConfig;
use crate::profile::{ProfileId, CODEX_PROVIDER};
use crate::secret::Secret;

mod keys;

pub use keys::ApiKeyProfile;

pub const HOME_ENV: &str = "KEYWARD_HOME";
pub const CONFIG_ENV: &str = "KEYWARD_CONFIG";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7411";
/// Gateway keys, comma-separated (wins over `[gateway] api_keys`).
pub const API_KEYS_ENV: &str = "KEYWARD_API_KEYS";
/// A gateway key shorter than this is refused: it guards a paid subscription.
pub const MIN_API_KEY_LEN: usize = 16;

pub trait Env {
    fn get(&self, key: &str) -> Option<String>;
}

pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn get(&self, key: &str) -> Option<String> {
        std::env::var(key).ok().filter(|v| !v.is_empty())
    }
}

impl Env for HashMap<String, String> {
    fn get(&self, key: &str) -> Option<String> {
        HashMap::get(self, key).cloned()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    #[serde(default)]
    refresh: RefreshFile,
    #[serde(default)]
    codex: CodexFile,
    #[serde(default)]
    models: ModelsFile,
    #[serde(default)]
    gateway: GatewayFile,
    #[serde(default)]
    openai: keys::ApiProviderFile,
    #[serde(default)]
    anthropic: keys::ApiProviderFile,
    #[serde(default)]
    routes: Vec<keys::RouteFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GatewayFile {
    api_keys: Option<Vec<String>>,
    cors_origins: Option<Vec<String>>,
    hosts: Option<Vec<String>>,
    max_connections: Option<usize>,
    max_body_bytes: Option<usize>,
    #[serde(default, with = "humantime_serde")]
    header_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    body_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    shutdown_timeout: Option<Duration>,
    max_request_memory: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelsFile {
    /// Replaces the default model list.
    served: Option<Vec<String>>,
    /// `false` leaves out the default aliases (the `claude-*` ones).
    default_aliases: Option<bool>,
    /// Pattern -> model, in the file's order, taken before the defaults.
    #[serde(default)]
    aliases: toml::Table,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshFile {
    #[serde(default, with = "humantime_serde")]
    margin: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    jitter: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    min_validity: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    lock_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    settle_window: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    token_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    tick: Option<Duration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CodexFile {
    base_url: Option<String>,
    token_url: Option<String>,
    discover_default: Option<bool>,
    #[serde(default)]
    profiles: Vec<CodexProfileFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CodexProfileFile {
    name: String,
    home: PathBuf,
}

#[derive(Debug, Clone)]
pub struct CodexProfileConfig {
    pub id: ProfileId,
    pub home: PathBuf,
    /// Whether a plain `codex login` logs this home in.
    pub is_default_home: bool,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub keyward_home: PathBuf,
    pub config_path: PathBuf,
    pub listen: SocketAddr,
    pub codex_base_url: String,
    pub codex_token_url: String,
    pub codex_profiles: Vec<CodexProfileConfig>,
    pub models: Models,
    pub gateway: GatewayConfig,
    /// OpenAI and Anthropic API-key profiles, in config order (OpenAI first).
    pub api_profiles: Vec<ApiKeyProfile>,
    pub routes: Vec<RouteConfig>,
    /// Where OpenAI API requests go (API-key profiles, and a Codex `auth.json` in API-key mode).
    pub openai_base_url: String,
    pub anthropic_base_url: String,
    /// Things worth telling the user that do not stop keyward.
    pub warnings: Vec<String>,
    pub margin: Duration,
    pub jitter: Duration,
    pub min_validity: Duration,
    pub lock_timeout: Duration,
    pub settle_window: Duration,
    pub token_timeout: Duration,
    pub tick: Duration,
}

/// The front door: who may use keyward, from where, and how much.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Gateway keys; when any is set, every request must carry one (loopback included).
    pub api_keys: Vec<Secret>,
    /// Browser origins granted CORS (none by default).
    pub cors_origins: Vec<String>,
    /// Host names accepted besides loopback ones (DNS-rebinding protection, without keys).
    pub hosts: Vec<String>,
    pub max_connections: usize,
    pub max_body_bytes: usize,
    /// How long a connection may take to send a complete request head, from its accept or from
    /// the end of its previous answer.
    pub header_timeout: Duration,
    /// How long a client may take to send its request body.
    pub body_timeout: Duration,
    /// How long a stop waits for requests in flight before it cuts them.
    pub shutdown_timeout: Duration,
    /// The memory all requests in flight may take together: bodies being received, and the
    /// work of parsing and translating them.
    pub max_request_memory: usize,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            api_keys: Vec::new(),
            cors_origins: Vec::new(),
            hosts: Vec::new(),
            max_connections: 4096,
            max_body_bytes: 32 << 20,
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(60),
            shutdown_timeout: Duration::from_secs(30),
            max_request_memory: 1 << 30,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot find your home directory: set HOME or KEYWARD_HOME")]
    NoHome,
    #[error("cannot read {path}: {detail}")]
    Read { path: String, detail: String },
    #[error("{path} is not valid: {detail}")]
    Invalid { path: String, detail: String },
    #[error(transparent)]
    Host(#[from] crate::host::HostError),
}

/// keyward's state and config directory: `$KEYWARD_HOME`, else `~/.keyward`.
pub fn keyward_home(env: &dyn Env) -> Result<PathBuf, ConfigError> {
    match env.get(HOME_ENV) {
        Some(home) => Ok(PathBuf::from(home)),
        None => env
            .get("HOME")
            .map(|h| PathBuf::from(h).join(".keyward"))
            .ok_or(ConfigError::NoHome),
    }
}

impl Config {
    /// Loads the configuration; `explicit` is `--config`, which must exist when given.
    pub fn load(env: &dyn Env, explicit: Option<&Path>) -> Result<Self, ConfigError> {
        let user_home = env.get("HOME").map(PathBuf::from);
        let keyward_home = keyward_home(env)?;
        let (config_path, required) = match (explicit, env.get(CONFIG_ENV)) {
            (Some(path), _) => (path.to_path_buf(), true),
            (None, Some(path)) => (PathBuf::from(path), true),
            (None, None) => (keyward_home.join("config.toml"), false),
        };
        // The config names where refresh tokens are sent: only the user may have written it.
        crate::host::check_own_file(&config_path)?;
        let file = match std::fs::read_to_string(&config_path) {
            Ok(text) => toml::from_str::<FileConfig>(&text).map_err(|e| ConfigError::Invalid {
                path: config_path.display().to_string(),
                detail: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                FileConfig::default()
            }
            Err(e) => {
                return Err(ConfigError::Read {
                    path: config_path.display().to_string(),
                    detail: e.to_string(),
                })
            }
        };
        let invalid = |detail: String| ConfigError::Invalid {
            path: config_path.display().to_string(),
            detail,
        };
        let listen_text = file
            .listen
            .clone()
            .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
        let listen = listen_text.parse().map_err(|_| {
            invalid(format!(
                "listen = \"{listen_text}\" is not an address like 127.0.0.1:7411"
            ))
        })?;

        let default_codex_home = user_home.as_ref().map(|h| h.join(".codex"));
        let mut codex_profiles = Vec::new();
        if file.codex.discover_default.unwrap_or(true) {
            let home = env
                .get(codex::HOME_ENV)
                .map(PathBuf::from)
                .or_else(|| default_codex_home.clone())
                .ok_or(ConfigError::NoHome)?;
            let is_default_home = env.get(codex::HOME_ENV).is_none();
            codex_profiles.push(CodexProfileConfig {
                id: ProfileId::codex_default(),
                home,
                is_default_home,
            });
        }
        for profile in &file.codex.profiles {
            let id = ProfileId::new(CODEX_PROVIDER, &profile.name)
                .map_err(|e| invalid(e.to_string()))?;
            if codex_profiles.iter().any(|p| p.id == id) {
                return Err(invalid(format!("profile `{id}` is defined twice")));
            }
            let home = expand_tilde(&profile.home, user_home.as_deref());
            let is_default_home = default_codex_home.as_deref() == Some(home.as_path());
            codex_profiles.push(CodexProfileConfig {
                id,
                home,
                is_default_home,
            });
        }

        let models = models_config(&file.models).map_err(invalid)?;
        let gateway = gateway_config(env, &file.gateway).map_err(invalid)?;
        let openai_base_url = env
            .get(crate::openai::BASE_URL_ENV)
            .or(file.openai.base_url.clone())
            .unwrap_or_else(|| crate::openai::DEFAULT_BASE_URL.to_string());
        let anthropic_base_url = env
            .get(crate::anthropic::BASE_URL_ENV)
            .or(file.anthropic.base_url.clone())
            .unwrap_or_else(|| crate::anthropic::DEFAULT_BASE_URL.to_string());
        let mut warnings = Vec::new();
        let api_profiles = keys::api_profiles(
            env,
            &file.openai,
            &file.anthropic,
            (&openai_base_url, &anthropic_base_url),
            &config_path,
            &mut warnings,
        )
        .map_err(invalid)?;
        let known: Vec<ProfileId> = codex_profiles
            .iter()
            .map(|p| p.id.clone())
            .chain(api_profiles.iter().map(|p| p.id.clone()))
            .collect();
        let routes = keys::routes(&file.routes, &known).map_err(invalid)?;
        let refresh = &file.refresh;
        let bounded =
            |key: &str, value: Option<Duration>, default: Duration, range: (Duration, Duration)| {
                bounded(&format!("[refresh] {key}"), value.unwrap_or(default), range)
                    .map_err(invalid)
            };
        let secs = Duration::from_secs;
        let millis = Duration::from_millis;
        Ok(Self {
            keyward_home,
            config_path: config_path.clone(),
            listen,
            codex_base_url: env
                .get(codex::BASE_URL_ENV)
                .or(file.codex.base_url.clone())
                .unwrap_or_else(|| codex::DEFAULT_BASE_URL.to_string())
                .trim_end_matches('/')
                .to_string(),
            codex_token_url: env
                .get(codex::TOKEN_URL_ENV)
                .or(file.codex.token_url.clone())
                .unwrap_or_else(|| codex::DEFAULT_TOKEN_URL.to_string()),
            codex_profiles,
            models,
            gateway,
            api_profiles,
            routes,
            openai_base_url,
            anthropic_base_url,
            warnings,
            margin: bounded(
                "margin",
                refresh.margin,
                secs(600),
                (secs(0), secs(7 * 86_400)),
            )?,
            jitter: bounded("jitter", refresh.jitter, secs(300), (secs(0), secs(3600)))?,
            min_validity: bounded(
                "min_validity",
                refresh.min_validity,
                secs(30),
                (secs(0), secs(3600)),
            )?,
            lock_timeout: bounded(
                "lock_timeout",
                refresh.lock_timeout,
                secs(30),
                (millis(100), secs(600)),
            )?,
            settle_window: bounded(
                "settle_window",
                refresh.settle_window,
                secs(5),
                (secs(0), secs(300)),
            )?,
            token_timeout: bounded(
                "token_timeout",
                refresh.token_timeout,
                secs(30),
                (secs(1), secs(600)),
            )?,
            tick: bounded("tick", refresh.tick, secs(30), (millis(100), secs(3600)))?,
        })
    }
}

/// A duration within `(min, max)`, or an error naming the key and the range.
fn bounded(
    key: &str,
    value: Duration,
    (min, max): (Duration, Duration),
) -> Result<Duration, String> {
    if value < min || value > max {
        return Err(format!(
            "{key} = \"{}\" is out of range: it must be between {} and {}",
            humantime_serde::re::humantime::format_duration(value),
            humantime_serde::re::humantime::format_duration(min),
            humantime_serde::re::humantime::format_duration(max)
        ));
    }
    Ok(value)
}

/// The `[gateway]` table, with `KEYWARD_API_KEYS` over its keys.
fn gateway_config(env: &dyn Env, file: &GatewayFile) -> Result<GatewayConfig, String> {
    let defaults = GatewayConfig::default();
    let keys: Vec<String> = match env.get(API_KEYS_ENV) {
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(str::to_string)
            .collect(),
        None => file.api_keys.clone().unwrap_or_default(),
    };
    if let Some(blank) = keys
        .iter()
        .position(|k| !k.chars().all(|c| c.is_ascii_graphic()))
    {
        // A client's key is read from a header, as ASCII text with its blanks trimmed: a key with
        // blanks or other characters could never match.
        return Err(format!(
            "gateway key #{} contains blanks or characters other than printable ASCII: a key must be one word such as `openssl rand -hex 24` prints",
            blank + 1
        ));
    }
    if let Some(short) = keys.iter().position(|k| k.len() < MIN_API_KEY_LEN) {
        // The key itself is never repeated in an error.
        return Err(format!(
            "gateway key #{} is shorter than {MIN_API_KEY_LEN} characters: use a long random key (e.g. `openssl rand -hex 24`)",
            short + 1
        ));
    }
    let secs = Duration::from_secs;
    let header_timeout = bounded(
        "[gateway] header_timeout",
        file.header_timeout.unwrap_or(defaults.header_timeout),
        (secs(1), secs(30)),
    )?;
    let body_timeout = bounded(
        "[gateway] body_timeout",
        file.body_timeout.unwrap_or(defaults.body_timeout),
        (secs(1), secs(600)),
    )?;
    let shutdown_timeout = bounded(
        "[gateway] shutdown_timeout",
        file.shutdown_timeout.unwrap_or(defaults.shutdown_timeout),
        (Duration::ZERO, secs(3600)),
    )?;
    let max_connections = file.max_connections.unwrap_or(defaults.max_connections);
    if !(1..=1_000_000).contains(&max_connections) {
        return Err(format!(
            "[gateway] max_connections = {max_connections} is out of range: it must be between 1 and 1000000"
        ));
    }
    let max_body_bytes = file.max_body_bytes.unwrap_or(defaults.max_body_bytes);
    if !(1024..=(1 << 30)).contains(&max_body_bytes) {
        return Err(format!(
            "[gateway] max_body_bytes = {max_body_bytes} is out of range: it must be between 1024 and 1073741824"
        ));
    }
    let max_request_memory = file
        .max_request_memory
        .unwrap_or(defaults.max_request_memory);
    if !((16 << 20)..=(1 << 40)).contains(&max_request_memory) {
        return Err(format!(
            "[gateway] max_request_memory = {max_request_memory} is out of range: it must be between 16777216 (16 MiB) and 1099511627776 (1 TiB)"
        ));
    }
    Ok(GatewayConfig {
        api_keys: keys.into_iter().map(Secret::new).collect(),
        cors_origins: file.cors_origins.clone().unwrap_or_default(),
        hosts: file
            .hosts
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|h| h.to_ascii_lowercase())
            .collect(),
        max_connections,
        max_body_bytes,
        header_timeout,
        body_timeout,
        shutdown_timeout,
        max_request_memory,
    })
}

/// The `[models]` table over the Codex defaults.
fn models_config(file: &ModelsFile) -> Result<Models, String> {
    let served = match &file.served {
        Some(ids) => ids
            .iter()
            .map(|id| ServedModel {
                id: id.clone(),
                display_name: id.clone(),
            })
            .collect(),
        None => codex::models::MODELS
            .iter()
            .map(|(id, name)| ServedModel {
                id: (*id).to_string(),
                display_name: (*name).to_string(),
            })
            .collect(),
    };
    let mut aliases = Vec::new();
    for (pattern, target) in &file.aliases {
        let target = target.as_str().ok_or_else(|| {
            format!("[models.aliases] \"{pattern}\" must name a model as a string")
        })?;
        aliases.push(
            Alias::new(pattern, target).map_err(|e| {
                format!("[models.aliases] \"{pattern}\" is not a valid pattern: {e}")
            })?,
        );
    }
    if file.default_aliases.unwrap_or(true) {
        for (pattern, target) in codex::models::ALIASES {
            aliases.push(Alias::new(pattern, target).map_err(|e| e.to_string())?);
        }
    }
    Ok(Models { served, aliases })
}

fn expand_tilde(path: &Path, home: Option<&Path>) -> PathBuf {
    match (path.strip_prefix("~"), home) {
        (Ok(rest), Some(home)) => home.join(rest),
        _ => path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn zero_config_discovers_the_default_codex_home() -> Result<(), ConfigError> {
        let config = Config::load(&env(&[("HOME", "/home/u")]), None)?;
        assert_eq!(config.keyward_home, PathBuf::from("/home/u/.keyward"));
        assert_eq!(config.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(config.codex_profiles.len(), 1);
        assert_eq!(config.codex_profiles[0].id, ProfileId::codex_default());
        assert_eq!(
            config.codex_profiles[0].home,
            PathBuf::from("/home/u/.codex")
        );
        assert!(config.codex_profiles[0].is_default_home);
        assert_eq!(config.codex_token_url, codex::DEFAULT_TOKEN_URL);
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
        assert_eq!(config.codex_token_url, "http://env/token");
        assert_eq!(config.codex_base_url, "http://file/base");
        assert_eq!(config.codex_profiles[1].id.to_string(), "openai-codex:work");
        assert_eq!(
            config.codex_profiles[1].home,
            PathBuf::from("/h/.codex-work")
        );
        Ok(())
    }

    /// A gateway key that could never match what a client sends is refused, without echoing it.
    #[test]
    fn keys_of_blanks_are_refused() {
        for key in [
            "                    ",
            "key with blanks 0123456789",
            "ключ-ключ-ключ-ключ",
        ] {
            let file = GatewayFile {
                api_keys: Some(vec![key.to_string()]),
                ..GatewayFile::default()
            };
            match gateway_config(&env(&[]), &file) {
                Err(detail) => {
                    assert!(detail.contains("gateway key #1"), "{detail}");
                    assert!(!detail.contains(key), "{detail}");
                }
                Ok(_) => panic!("{key:?} was accepted"),
            }
        }
    }

    #[test]
    fn bad_files_are_explained() -> Result<(), ConfigError> {
        let dir = tempfile::tempdir().map_err(|e| ConfigError::NoHome.with(e))?;
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "lisen = 1").map_err(|e| ConfigError::NoHome.with(e))?;
        match Config::load(&env(&[("HOME", "/h")]), Some(&path)) {
            Err(ConfigError::Invalid { detail, .. }) => {
                assert!(detail.contains("lisen"), "{detail}")
            }
            other => panic!("expected an error, got {other:?}"),
        }
        let missing = dir.path().join("nope.toml");
        assert!(matches!(
            Config::load(&env(&[("HOME", "/h")]), Some(&missing)),
            Err(ConfigError::Read { .. })
        ));
        Ok(())
    }

    impl ConfigError {
        fn with(self, e: std::io::Error) -> Self {
            ConfigError::Read {
                path: "test".into(),
                detail: e.to_string(),
            }
        }
    }
}
