//! Configuration: `$KEYWARD_HOME/config.toml` (optional) under environment overrides.
//!
//! keyward's own settings (`listen`, `[refresh]`, `[gateway]`, `[models]`, `[[routes]]`) are read
//! here; each provider's section is read by that provider ([`crate::provider`]), so this module
//! names none. The environment is read through [`Env`], so tests pass a map instead of mutating
//! the process.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::models::{Alias, Models, ServedModel};
use crate::pool::RouteConfig;
use crate::profile::ProfileId;
use crate::provider::{self, Provider, ProviderSettings, SectionError, SectionReader};
use crate::secret::Secret;

mod keys;
mod routes;

pub(crate) use keys::KeyPolicy;
#[cfg(test)]
pub(crate) use keys::Patterns;

pub(crate) use crate::api_key::ApiKeyProfile;
pub(crate) use crate::env::{Env, ProcessEnv};

pub(crate) const HOME_ENV: &str = "KEYWARD_HOME";
pub(crate) const CONFIG_ENV: &str = "KEYWARD_CONFIG";
pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:7411";
/// Gateway keys, comma-separated (wins over `[gateway] api_keys`).
pub(crate) const API_KEYS_ENV: &str = "KEYWARD_API_KEYS";
/// A gateway key shorter than this is refused: it guards a paid subscription.
pub(crate) const MIN_API_KEY_LEN: usize = 16;

/// keyward's own top-level keys; every other one must be a registered provider's section.
const OWN_KEYS: &[&str] = &["listen", "refresh", "models", "gateway", "routes"];

/// keyward's own settings in the file. Unknown keys are refused before this is read (the
/// providers' sections are theirs to read), so it takes what it knows and leaves the rest.
#[derive(Debug, Default, Deserialize)]
struct FileConfig {
    listen: Option<String>,
    #[serde(default)]
    refresh: RefreshFile,
    #[serde(default)]
    models: ModelsFile,
    #[serde(default)]
    gateway: GatewayFile,
    #[serde(default)]
    routes: Vec<routes::RouteFile>,
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
    /// `[[gateway.keys]]`: named keys, with limits.
    keys: Option<Vec<keys::KeyFile>>,
    usage_ledger: Option<bool>,
    #[serde(default, with = "humantime_serde")]
    usage_retention: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    usage_rollup_retention: Option<Duration>,
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

#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub keyward_home: PathBuf,
    pub config_path: PathBuf,
    pub listen: SocketAddr,
    pub models: Models,
    pub gateway: GatewayConfig,
    pub routes: Vec<RouteConfig>,
    /// Each registered provider's settings, in the registry's order.
    pub(crate) providers: Vec<Arc<dyn ProviderSettings>>,
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
pub(crate) struct GatewayConfig {
    /// Gateway keys; when any is set, every request must carry one (loopback included). The
    /// unnamed ones first, then `[[gateway.keys]]`.
    pub api_keys: Vec<Secret>,
    /// What each of `api_keys` may do, in the same order (unnamed keys: `key#N`, no limits).
    pub keys: Vec<KeyPolicy>,
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
    /// `[[gateway.keys]]` whose `key_env` is not set here, each with what to do: `serve` refuses
    /// to start without them; other commands do not need the keys.
    pub unset_keys: Vec<String>,
    /// Whether each request is recorded in the usage ledger.
    pub usage_ledger: bool,
    /// How long the ledger keeps each request's row.
    pub usage_retention: Duration,
    /// How long the ledger keeps its hourly roll-ups.
    pub usage_rollup_retention: Duration,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            api_keys: Vec::new(),
            keys: Vec::new(),
            unset_keys: Vec::new(),
            cors_origins: Vec::new(),
            hosts: Vec::new(),
            max_connections: 4096,
            max_body_bytes: 32 << 20,
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(60),
            shutdown_timeout: Duration::from_secs(30),
            max_request_memory: 1 << 30,
            usage_ledger: true,
            usage_retention: Duration::from_secs(30 * 86_400),
            usage_rollup_retention: Duration::from_secs(400 * 86_400),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    #[error("cannot find your home directory: set HOME or KEYWARD_HOME")]
    NoHome,
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Not TOML, or not shaped as keyward's settings (the message shows the line at fault).
    #[error("{path} is not valid: {source}")]
    Parse {
        path: String,
        #[source]
        source: toml::de::Error,
    },
    /// Well formed, but asking for something keyward cannot do.
    #[error("{path} is not valid: {detail}")]
    Invalid { path: String, detail: String },
    #[error(transparent)]
    Host(#[from] crate::host::HostError),
}

/// keyward's state and config directory: `$KEYWARD_HOME`, else `~/.keyward`.
pub(crate) fn keyward_home(env: &dyn Env) -> Result<PathBuf, ConfigError> {
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
    pub(crate) fn load(env: &dyn Env, explicit: Option<&Path>) -> Result<Self, ConfigError> {
        let providers = crate::providers::ALL;
        let keyward_home = keyward_home(env)?;
        let (config_path, required) = match (explicit, env.get(CONFIG_ENV)) {
            (Some(path), _) => (path.to_path_buf(), true),
            (None, Some(path)) => (PathBuf::from(path), true),
            (None, None) => (keyward_home.join("config.toml"), false),
        };
        // The config names where refresh tokens are sent: only the user may have written it.
        crate::host::check_own_file(&config_path)?;
        let path_text = config_path.display().to_string();
        let text = match std::fs::read_to_string(&config_path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => String::new(),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path_text,
                    source,
                })
            }
        };
        let parse_error = |source: toml::de::Error| ConfigError::Parse {
            path: path_text.clone(),
            source,
        };
        let invalid = |detail: String| ConfigError::Invalid {
            path: path_text.clone(),
            detail,
        };
        let known: Vec<&str> = OWN_KEYS
            .iter()
            .copied()
            .chain(providers.iter().map(|p| p.section()))
            .collect();
        provider::refuse_unknown_keys(&text, &known).map_err(parse_error)?;
        let file: FileConfig = toml::from_str(&text).map_err(parse_error)?;
        let listen_text = file
            .listen
            .clone()
            .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
        let listen = listen_text.parse().map_err(|_| {
            invalid(format!(
                "listen = \"{listen_text}\" is not an address like 127.0.0.1:7411"
            ))
        })?;
        let models = models_config(&file.models, providers).map_err(invalid)?;
        let mut warnings = Vec::new();
        let mut gateway = gateway_config(env, &file.gateway).map_err(invalid)?;
        let named = keys::named_keys(
            env,
            file.gateway.keys.as_deref().unwrap_or_default(),
            &config_path,
            &mut warnings,
            &mut gateway.unset_keys,
        )
        .map_err(invalid)?;
        gateway.add_named_keys(named).map_err(invalid)?;
        if let Some(limited) = gateway
            .keys
            .iter()
            .find(|k| k.has_limits())
            .filter(|_| !gateway.usage_ledger)
        {
            return Err(invalid(format!(
                "[[gateway.keys]] name = \"{}\" has limits, which are counted in the usage ledger: remove [gateway] usage_ledger = false, or the limits",
                limited.name
            )));
        }
        let mut settings = Vec::new();
        for provider in providers {
            let mut reader =
                SectionReader::new(provider.section(), &text, env, &config_path, &mut warnings);
            settings.push(provider.configure(&mut reader).map_err(|e| match e {
                SectionError::Parse(source) => parse_error(source),
                SectionError::ProfileId(e) => invalid(e.to_string()),
                SectionError::Invalid(detail) => invalid(detail),
                SectionError::NoHome => ConfigError::NoHome,
            })?);
        }
        let known: Vec<ProfileId> = settings.iter().flat_map(|s| s.profiles()).collect();
        let routes = routes::routes(&file.routes, &known).map_err(invalid)?;
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
            models,
            gateway,
            routes,
            providers: settings,
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

    /// Every registered provider's settings, in the registry's order.
    pub(crate) fn providers(&self) -> &[Arc<dyn ProviderSettings>] {
        &self.providers
    }

    /// The settings of type `T`, if its provider is registered.
    #[cfg(test)]
    pub(crate) fn settings_of<T: ProviderSettings>(&self) -> Option<&T> {
        provider::settings_of(&self.providers).next()
    }

    /// The profiles that serve with an API key, whatever their provider, in config order.
    pub(crate) fn api_profiles(&self) -> impl Iterator<Item = &ApiKeyProfile> {
        self.providers.iter().flat_map(|p| p.api_key_profiles())
    }

    /// Where each provider sends its requests, for the startup log.
    pub(crate) fn describe_upstreams(&self) -> String {
        let described: Vec<String> = self.providers.iter().map(|p| p.describe()).collect();
        described.join("; ")
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

impl GatewayConfig {
    /// Adds `[[gateway.keys]]` after the unnamed keys; the same key twice is refused (which name
    /// would its requests go under?).
    fn add_named_keys(&mut self, named: Vec<(Secret, KeyPolicy)>) -> Result<(), String> {
        for (secret, policy) in named {
            if let Some(at) = self
                .api_keys
                .iter()
                .position(|k| k.expose() == secret.expose())
            {
                return Err(format!(
                    "[[gateway.keys]] name = \"{}\" has the same key as {}: give each key its own secret",
                    policy.name, self.keys[at].name
                ));
            }
            self.api_keys.push(secret);
            self.keys.push(policy);
        }
        Ok(())
    }

    /// What the gateway key at `index` may do.
    pub(crate) fn key(&self, index: usize) -> Option<&KeyPolicy> {
        self.keys.get(index)
    }
}

/// Why a gateway key could never be used, if it could not (never naming the key).
fn check_key(key: &str) -> Result<(), String> {
    if !key.chars().all(|c| c.is_ascii_graphic()) {
        // A client's key is read from a header, as ASCII text with its blanks trimmed: a key with
        // blanks or other characters could never match.
        return Err("contains blanks or characters other than printable ASCII: a key must be one word such as `openssl rand -hex 24` prints".into());
    }
    if key.len() < MIN_API_KEY_LEN {
        return Err(format!(
            "is shorter than {MIN_API_KEY_LEN} characters: use a long random key (e.g. `openssl rand -hex 24`)"
        ));
    }
    Ok(())
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
    for (position, key) in keys.iter().enumerate() {
        // The key itself is never repeated in an error.
        check_key(key).map_err(|problem| format!("gateway key #{} {problem}", position + 1))?;
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
    let usage_retention = bounded(
        "[gateway] usage_retention",
        file.usage_retention.unwrap_or(defaults.usage_retention),
        (secs(3600), secs(3650 * 86_400)),
    )?;
    let usage_rollup_retention = bounded(
        "[gateway] usage_rollup_retention",
        file.usage_rollup_retention
            .unwrap_or(defaults.usage_rollup_retention)
            .max(usage_retention),
        (secs(3600), secs(3650 * 86_400)),
    )?;
    Ok(GatewayConfig {
        keys: (1..=keys.len()).map(KeyPolicy::unnamed).collect(),
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
        unset_keys: Vec::new(),
        usage_ledger: file.usage_ledger.unwrap_or(true),
        usage_retention,
        usage_rollup_retention,
    })
}

/// The `[models]` table over the providers' defaults.
fn models_config(file: &ModelsFile, providers: &[&dyn Provider]) -> Result<Models, String> {
    let defaults: Vec<_> = providers.iter().map(|p| p.models()).collect();
    let served = match &file.served {
        Some(ids) => ids
            .iter()
            .map(|id| ServedModel {
                id: id.clone(),
                display_name: id.clone(),
            })
            .collect(),
        None => defaults
            .iter()
            .flat_map(|d| d.served)
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
        for (pattern, target) in defaults.iter().flat_map(|d| d.aliases) {
            aliases.push(Alias::new(pattern, target).map_err(|e| e.to_string())?);
        }
    }
    let namespaces = defaults.iter().filter_map(|d| d.namespace).collect();
    Ok(Models {
        served,
        aliases,
        namespaces,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::HashMap;

    use super::*;

    pub(crate) fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
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
            Err(ConfigError::Parse { source, .. }) => {
                let detail = source.to_string();
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
        pub(crate) fn with(self, source: std::io::Error) -> Self {
            ConfigError::Read {
                path: "test".into(),
                source,
            }
        }
    }
}
