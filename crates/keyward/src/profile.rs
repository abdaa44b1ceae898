//! Profile identities: `provider:name`, e.g. `openai-codex:default`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProfileId {
    provider: String,
    name: String,
}

pub(crate) const CODEX_PROVIDER: &str = "openai-codex";

impl ProfileId {
    pub fn new(provider: &str, name: &str) -> Result<Self, ProfileIdError> {
        let valid = |part: &str| {
            !part.is_empty()
                && part.len() <= 64
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        if !valid(provider) || !valid(name) {
            return Err(ProfileIdError(
                crate::dialect::cut_short(&format!("{provider}:{name}")).into_owned(),
            ));
        }
        Ok(Self {
            provider: provider.to_string(),
            name: name.to_string(),
        })
    }

    pub fn codex_default() -> Self {
        Self {
            provider: CODEX_PROVIDER.to_string(),
            name: "default".to_string(),
        }
    }

    pub fn provider(&self) -> &str {
        &self.provider
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid profile id `{0}`: expected `provider:name` with letters, digits, `-`, `_` or `.` (e.g. `openai-codex:work`)")]
pub struct ProfileIdError(String);

impl FromStr for ProfileId {
    type Err = ProfileIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            Some((provider, name)) => Self::new(provider, name),
            None => Err(ProfileIdError(crate::dialect::cut_short(s).into_owned())),
        }
    }
}

impl TryFrom<String> for ProfileId {
    type Error = ProfileIdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<ProfileId> for String {
    fn from(id: ProfileId) -> Self {
        id.to_string()
    }
}

impl fmt::Display for ProfileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.provider, self.name)
    }
}

impl fmt::Debug for ProfileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays() {
        let id: ProfileId = "openai-codex:work"
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(id.provider(), "openai-codex");
        assert_eq!(id.name(), "work");
        assert_eq!(id.to_string(), "openai-codex:work");
        assert_eq!(
            ProfileId::codex_default().to_string(),
            "openai-codex:default"
        );
    }

    #[test]
    fn rejects_malformed_ids() {
        for bad in ["", "codex", ":x", "x:", "a:b:c", "a b:c", "a:../etc"] {
            assert!(
                bad.parse::<ProfileId>().is_err(),
                "{bad} should be rejected"
            );
        }
    }
}
