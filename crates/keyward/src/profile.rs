//! Profile identities: `provider:name`, e.g. `openai-codex:default`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProfileId {
    /// `provider:name`, spelt once: every request names its profile in a header, a metric label
    /// and the ledger, and formatting the two parts each time cost an allocation and a format.
    spelt: String,
    /// Where the `:` is in `spelt`.
    colon: usize,
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
        Ok(Self::spell(provider, name))
    }

    fn spell(provider: &str, name: &str) -> Self {
        Self {
            spelt: format!("{provider}:{name}"),
            colon: provider.len(),
        }
    }

    pub fn codex_default() -> Self {
        Self::spell(CODEX_PROVIDER, "default")
    }

    pub fn provider(&self) -> &str {
        &self.spelt[..self.colon]
    }

    pub fn name(&self) -> &str {
        &self.spelt[self.colon + 1..]
    }

    /// `provider:name`, as it is displayed.
    pub(crate) fn as_str(&self) -> &str {
        &self.spelt
    }
}

/// Ordered by provider, then name (as the two parts, not as the spelt text: `-` sorts before `:`).
impl Ord for ProfileId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.provider(), self.name()).cmp(&(other.provider(), other.name()))
    }
}

impl PartialOrd for ProfileId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
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
        id.spelt
    }
}

impl fmt::Display for ProfileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.spelt)
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
    fn ids_sort_by_provider_then_name() {
        let parse = |text: &str| text.parse::<ProfileId>().unwrap_or_else(|e| panic!("{e}"));
        let mut ids = [parse("a-b:x"), parse("a:z"), parse("a:y"), parse("a_b:w")];
        ids.sort();
        let spelt: Vec<&str> = ids.iter().map(ProfileId::as_str).collect();
        assert_eq!(spelt, ["a:y", "a:z", "a-b:x", "a_b:w"]);
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
