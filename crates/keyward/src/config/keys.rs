//! `[[gateway.keys]]`: gateway keys with a name, what each may use (models and profiles, as glob
//! patterns) and how much (requests a minute, tokens a day, a share of a login's usage window).
//!
//! A named key is a gateway key like the unnamed `api_keys` (the front door checks them all the
//! same way); its name is what the usage ledger, `keyward usage`, `/metrics` and the dashboard
//! show, never the key.

use std::path::Path;

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::Deserialize;

use super::Env;
use crate::secret::Secret;

/// A key's name: what the ledger, the metrics and the dashboard show.
const MAX_NAME_LEN: usize = 64;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct KeyFile {
    name: String,
    key_env: Option<String>,
    key: Option<String>,
    models: Option<Vec<String>>,
    profiles: Option<Vec<String>>,
    requests_per_minute: Option<u32>,
    tokens_per_day: Option<u64>,
    max_window_share: Option<f64>,
}

/// What one gateway key may do. Unnamed keys (`api_keys`, `KEYWARD_API_KEYS`) are named `key#N`
/// by their position and have no limits.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct KeyPolicy {
    pub name: String,
    /// The models it may ask for (the name asked, before aliases); `None`: any.
    pub models: Option<Patterns>,
    /// The profiles that may serve it; `None`: any.
    pub profiles: Option<Patterns>,
    pub requests_per_minute: Option<u32>,
    /// Tokens (input and output) in the last 24 hours.
    pub tokens_per_day: Option<u64>,
    /// The most of any login's current usage window this key may take (0–1).
    pub max_window_share: Option<f64>,
}

impl KeyPolicy {
    pub(crate) fn unnamed(position: usize) -> Self {
        Self {
            name: format!("key#{position}"),
            models: None,
            profiles: None,
            requests_per_minute: None,
            tokens_per_day: None,
            max_window_share: None,
        }
    }

    /// Whether anything about this key is counted before it is let through.
    pub(crate) fn has_limits(&self) -> bool {
        self.requests_per_minute.is_some()
            || self.tokens_per_day.is_some()
            || self.max_window_share.is_some()
    }
}

/// Glob patterns, with their text for messages.
#[derive(Debug, Clone)]
pub(crate) struct Patterns {
    text: Vec<String>,
    set: GlobSet,
}

impl PartialEq for Patterns {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Patterns {
    pub(crate) fn new(text: &[String]) -> Result<Self, globset::Error> {
        let mut set = GlobSetBuilder::new();
        for pattern in text {
            set.add(Glob::new(pattern)?);
        }
        Ok(Self {
            text: text.to_vec(),
            set: set.build()?,
        })
    }

    pub(crate) fn matches(&self, name: &str) -> bool {
        self.set.is_match(name)
    }
}

impl std::fmt::Display for Patterns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text.join(", "))
    }
}

/// `[[gateway.keys]]`, each with its secret (read from `key_env` or `key`). A key whose variable
/// is not set in this environment is left out and named in `unset` (only `serve` needs every
/// key: `status` or `usage` in another shell does not).
pub(super) fn named_keys(
    env: &dyn Env,
    files: &[KeyFile],
    config_path: &Path,
    warnings: &mut Vec<String>,
    unset: &mut Vec<String>,
) -> Result<Vec<(Secret, KeyPolicy)>, String> {
    let mut keys: Vec<(Secret, KeyPolicy)> = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    let mut literal = false;
    for file in files {
        let name = &file.name;
        let valid_name = !name.is_empty()
            && name.len() <= MAX_NAME_LEN
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid_name || name.starts_with("key#") {
            return Err(format!(
                "[[gateway.keys]] name = \"{}\" is not a key name: use up to {MAX_NAME_LEN} letters, digits, `-`, `_` or `.` (it names the key in usage reports and metrics)",
                crate::dialect::cut_short(name)
            ));
        }
        if names.contains(&name.as_str()) {
            return Err(format!(
                "[[gateway.keys]] name = \"{name}\" is used twice: each key needs its own name"
            ));
        }
        names.push(name);
        let here = format!("[[gateway.keys]] name = \"{name}\"");
        let secret = match (&file.key_env, &file.key) {
            (Some(var), None) => match env.get(var).filter(|v| !v.is_empty()) {
                Some(secret) => secret,
                None => {
                    unset.push(format!("{here}: key_env = \"{var}\" is not set in keyward's environment: export it, or give the key as `key` (then keep config.toml 0600)"));
                    continue;
                }
            },
            (None, Some(key)) => {
                literal = true;
                key.clone()
            }
            _ => {
                return Err(format!(
                    "{here}: give the key as either key_env (an environment variable) or key"
                ))
            }
        };
        super::check_key(&secret).map_err(|problem| format!("{here}: the key {problem}"))?;
        let patterns = |what: &str, list: &Option<Vec<String>>| {
            list.as_ref()
                .map(|list| {
                    Patterns::new(list)
                        .map_err(|e| format!("{here}: {what} has an invalid pattern: {e}"))
                })
                .transpose()
        };
        if let Some(share) = file.max_window_share {
            if !(share > 0.0 && share <= 1.0) {
                return Err(format!(
                    "{here}: max_window_share = {share} must be more than 0 and at most 1 (0.5: half of a login's usage window)"
                ));
            }
        }
        if file.requests_per_minute == Some(0) || file.tokens_per_day == Some(0) {
            return Err(format!(
                "{here}: a limit of 0 would refuse everything: leave the key out instead"
            ));
        }
        let policy = KeyPolicy {
            name: name.clone(),
            models: patterns("models", &file.models)?,
            profiles: patterns("profiles", &file.profiles)?,
            requests_per_minute: file.requests_per_minute,
            tokens_per_day: file.tokens_per_day,
            max_window_share: file.max_window_share,
        };
        keys.push((Secret::new(secret), policy));
    }
    let readable_by_others = std::fs::metadata(config_path)
        .is_ok_and(|meta| std::os::unix::fs::MetadataExt::mode(&meta) & 0o044 != 0);
    if literal && readable_by_others {
        warnings.push(format!(
            "{} holds a gateway key and others can read it: chmod 600 it",
            config_path.display()
        ));
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::env;

    fn key(toml: &str) -> Result<Vec<(Secret, KeyPolicy)>, String> {
        #[derive(Deserialize)]
        struct Holder {
            keys: Vec<KeyFile>,
        }
        let holder: Holder = toml::from_str(toml).map_err(|e| e.to_string())?;
        let mut unset = Vec::new();
        let keys = named_keys(
            &env(&[("KW_KEY", "kw-from-the-environment-0123")]),
            &holder.keys,
            Path::new("/nonexistent/config.toml"),
            &mut Vec::new(),
            &mut unset,
        )?;
        match unset.first() {
            Some(unset) => Err(unset.clone()),
            None => Ok(keys),
        }
    }

    /// A named key reads its secret from its variable or the file, with its limits and patterns.
    #[test]
    fn named_keys_are_read() -> Result<(), String> {
        let keys = key(r#"
            [[keys]]
            name = "claude-code"
            key_env = "KW_KEY"
            models = ["claude-*", "gpt-6*"]
            profiles = ["openai-codex:work"]
            requests_per_minute = 60
            tokens_per_day = 5_000_000
            max_window_share = 0.5

            [[keys]]
            name = "scripts"
            key = "kw-scripts-key-0123456789"
        "#)?;
        assert_eq!(keys.len(), 2);
        let (secret, policy) = &keys[0];
        assert_eq!(secret.expose(), "kw-from-the-environment-0123");
        assert_eq!(policy.name, "claude-code");
        assert!(policy
            .models
            .as_ref()
            .is_some_and(|m| m.matches("claude-opus-5")));
        assert!(policy
            .models
            .as_ref()
            .is_some_and(|m| m.matches("gpt-6.1-sol")));
        assert!(!policy.models.as_ref().is_some_and(|m| m.matches("gpt-5.5")));
        assert_eq!(policy.requests_per_minute, Some(60));
        assert_eq!(policy.tokens_per_day, Some(5_000_000));
        assert_eq!(policy.max_window_share, Some(0.5));
        assert!(policy.has_limits());
        assert!(!keys[1].1.has_limits());
        Ok(())
    }

    /// Bad keys are refused with what is wrong, never echoing a key.
    #[test]
    fn bad_keys_are_explained() {
        for (toml, expected) in [
            ("[[keys]]\nname = \"a b\"\nkey = \"kw-0123456789abcdef\"", "is not a key name"),
            ("[[keys]]\nname = \"key#1\"\nkey = \"kw-0123456789abcdef\"", "is not a key name"),
            ("[[keys]]\nname = \"a\"\nkey_env = \"NOPE\"", "is not set"),
            ("[[keys]]\nname = \"a\"", "either key_env"),
            ("[[keys]]\nname = \"a\"\nkey = \"short-key\"", "shorter than"),
            ("[[keys]]\nname = \"a\"\nkey = \"kw-0123456789abcdef\"\nmax_window_share = 1.5", "at most 1"),
            ("[[keys]]\nname = \"a\"\nkey = \"kw-0123456789abcdef\"\nrequests_per_minute = 0", "limit of 0"),
            ("[[keys]]\nname = \"a\"\nkey = \"kw-0123456789abcdef\"\nmodels = [\"[\"]", "invalid pattern"),
            ("[[keys]]\nname = \"a\"\nkey = \"kw-0123456789abcdef\"\n[[keys]]\nname = \"a\"\nkey = \"kw-0123456789abcdeg\"", "used twice"),
        ] {
            match key(toml) {
                Err(detail) => {
                    assert!(detail.contains(expected), "{toml}: {detail}");
                    assert!(!detail.contains("0123456789abcde"), "{detail}");
                }
                Ok(_) => panic!("accepted: {toml}"),
            }
        }
    }
}
