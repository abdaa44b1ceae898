//! How a provider reads its section of `config.toml`: straight from the file's text, so a mistake
//! there is reported at its line and column, as one in keyward's own sections is; with the
//! environment (whose variables override the file), the user's home, and a place for warnings.

use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use serde::de::{DeserializeOwned, DeserializeSeed, IgnoredAny, MapAccess, Visitor};

use crate::env::Env;
use crate::profile::{ProfileId, ProfileIdError};

/// Why a provider's section cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SectionError {
    /// The section is not shaped as the provider's settings are.
    #[error(transparent)]
    Parse(#[from] toml::de::Error),
    /// A profile's name cannot make a profile id.
    #[error(transparent)]
    ProfileId(#[from] ProfileIdError),
    /// It is well formed but asks for something keyward cannot do.
    #[error("{0}")]
    Invalid(String),
    /// A default the provider derives from the user's home, without a home.
    #[error("cannot find your home directory")]
    NoHome,
}

impl SectionError {
    /// Two profiles of the section have one id.
    pub(crate) fn defined_twice(id: &ProfileId) -> Self {
        Self::Invalid(format!("profile `{id}` is defined twice"))
    }
}

/// One provider's view of the config file and the environment.
pub(crate) struct SectionReader<'a> {
    section: &'static str,
    text: &'a str,
    env: &'a dyn Env,
    config_path: &'a Path,
    warnings: &'a mut Vec<String>,
}

impl<'a> SectionReader<'a> {
    /// `text` is the whole config file (empty when there is none).
    pub(crate) fn new(
        section: &'static str,
        text: &'a str,
        env: &'a dyn Env,
        config_path: &'a Path,
        warnings: &'a mut Vec<String>,
    ) -> Self {
        Self {
            section,
            text,
            env,
            config_path,
            warnings,
        }
    }

    /// The provider's section as `T`; `T::default()` when the file has none.
    pub(crate) fn parse<T: DeserializeOwned + Default>(&self) -> Result<T, SectionError> {
        let document = toml::de::Deserializer::parse(self.text)?;
        let seed = OneKey::<T> {
            key: self.section,
            value: PhantomData,
        };
        Ok(seed.deserialize(document)?)
    }

    /// An environment variable (an empty one counts as unset).
    pub(crate) fn var(&self, key: &str) -> Option<String> {
        self.env.get(key)
    }

    pub(crate) fn user_home(&self) -> Option<PathBuf> {
        self.var("HOME").map(PathBuf::from)
    }

    /// `~/x` as `$HOME/x`, as a shell would have written it.
    pub(crate) fn expand_home(&self, path: &Path) -> PathBuf {
        match (path.strip_prefix("~"), self.user_home()) {
            (Ok(rest), Some(home)) => home.join(rest),
            _ => path.to_path_buf(),
        }
    }

    pub(crate) fn config_path(&self) -> &Path {
        self.config_path
    }

    /// Something worth telling the user that does not stop keyward.
    pub(crate) fn warn(&mut self, warning: String) {
        self.warnings.push(warning);
    }
}

/// Refuses a top-level key of `text` that is not in `known`, at the key's line and column, as
/// serde refuses an unknown field.
pub(crate) fn refuse_unknown_keys(text: &str, known: &[&str]) -> Result<(), toml::de::Error> {
    KnownKeys { known }.deserialize(toml::de::Deserializer::parse(text)?)
}

/// Reads the value of one top-level key as `T`, skipping every other.
struct OneKey<'k, T> {
    key: &'k str,
    value: PhantomData<T>,
}

impl<'de, T: DeserializeOwned + Default> DeserializeSeed<'de> for OneKey<'_, T> {
    type Value = T;

    fn deserialize<D: serde::Deserializer<'de>>(self, document: D) -> Result<T, D::Error> {
        document.deserialize_map(self)
    }
}

impl<'de, T: DeserializeOwned + Default> Visitor<'de> for OneKey<'_, T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a table")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == self.key {
                found = Some(map.next_value::<T>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found.unwrap_or_default())
    }
}

/// Walks the top-level keys, refusing unknown ones.
struct KnownKeys<'k> {
    known: &'k [&'k str],
}

impl<'de> DeserializeSeed<'de> for KnownKeys<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, document: D) -> Result<(), D::Error> {
        document.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for KnownKeys<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a table")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key_seed(KnownKey { known: self.known })?.is_some() {
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }
}

/// One key, refused (with the key's position) unless known.
struct KnownKey<'k> {
    known: &'k [&'k str],
}

impl<'de> DeserializeSeed<'de> for KnownKey<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, key: D) -> Result<(), D::Error> {
        key.deserialize_identifier(self)
    }
}

impl<'de> Visitor<'de> for KnownKey<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<(), E> {
        if self.known.contains(&key) {
            return Ok(());
        }
        let expected: Vec<String> = self.known.iter().map(|k| format!("`{k}`")).collect();
        Err(E::custom(format!(
            "unknown field `{key}`, expected one of {}",
            expected.join(", ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[derive(Debug, Default, PartialEq, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Section {
        base_url: Option<String>,
    }

    fn read(text: &str) -> Result<Section, SectionError> {
        let env = HashMap::new();
        let mut warnings = Vec::new();
        SectionReader::new("acme", text, &env, Path::new("config.toml"), &mut warnings).parse()
    }

    /// A provider reads its own section only, and a mistake in it is shown where it stands.
    #[test]
    fn sections_are_read_with_their_positions() {
        let section = read("listen = \"x\"\n[acme]\nbase_url = \"http://acme\"\n[other]\nx = 1\n");
        assert_eq!(
            section.ok(),
            Some(Section {
                base_url: Some("http://acme".into())
            })
        );
        assert_eq!(read("listen = \"x\"\n").ok(), Some(Section::default()));
        let error = read("[acme]\nbase_ur = 1\n").map_err(|e| e.to_string());
        let error = error.err().unwrap_or_default();
        assert!(
            error.contains("line 2") && error.contains("base_ur"),
            "{error}"
        );
    }

    /// An unknown top-level key is refused at its position, naming the keys there are.
    #[test]
    fn unknown_keys_are_refused_where_they_stand() {
        assert!(refuse_unknown_keys("listen = 1\n[acme]\n", &["listen", "acme"]).is_ok());
        let error = refuse_unknown_keys("listen = 1\nlisen = 2\n", &["listen", "acme"])
            .map_err(|e| e.to_string())
            .err()
            .unwrap_or_default();
        assert!(
            error.contains("line 2")
                && error.contains("unknown field `lisen`, expected one of `listen`, `acme`"),
            "{error}"
        );
    }
}
