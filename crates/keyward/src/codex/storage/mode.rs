//! `cli_auth_credentials_store` in `$CODEX_HOME/config.toml`: where the Codex CLI keeps its login.
//! Read on every read of the login (the file is small, and the watcher says when it changed), so
//! a user who switches it is followed without a restart.

use std::fmt;
use std::io;
use std::path::Path;

use crate::credential::SourceProblem;

/// The config key, as the CLI spells it.
pub(crate) const KEY: &str = "cli_auth_credentials_store";
pub(crate) const CONFIG_FILE: &str = "config.toml";

/// A config file larger than this is not one the CLI wrote or a user edits by hand.
const MAX_CONFIG_BYTES: u64 = 4 << 20;

/// The CLI's `AuthCredentialsStoreMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StoreMode {
    /// `$CODEX_HOME/auth.json` (the default).
    File,
    /// The OS keyring only.
    Keyring,
    /// The keyring, and `auth.json` where the keyring holds nothing or cannot be reached.
    Auto,
    /// Memory of one CLI process only: nothing another program can borrow.
    Ephemeral,
}

impl StoreMode {
    fn parse(value: &str) -> Option<Self> {
        match value {
            "file" => Some(Self::File),
            "keyring" => Some(Self::Keyring),
            "auto" => Some(Self::Auto),
            "ephemeral" => Some(Self::Ephemeral),
            _ => None,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Keyring => "keyring",
            Self::Auto => "auto",
            Self::Ephemeral => "ephemeral",
        }
    }

    /// Whether a change of the login can happen without a file in the Codex home changing, so
    /// that only the lock files' release, or a periodic read, shows it.
    pub(crate) fn reads_keyring(self) -> bool {
        matches!(self, Self::Keyring | Self::Auto)
    }
}

/// The mode and where it came from, for `keyward status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ModeSetting {
    pub mode: StoreMode,
    /// Whether config.toml sets it (else it is the CLI's default).
    pub explicit: bool,
}

impl fmt::Display for ModeSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.explicit {
            write!(f, "{KEY} = \"{}\"", self.mode.as_str())
        } else {
            write!(f, "{KEY} not set: \"{}\"", self.mode.as_str())
        }
    }
}

/// Reads the mode from `codex_home`'s config.toml: `file` when the file or the key is absent, as
/// the CLI does. A file the CLI would refuse to start with is a problem, not a silent default:
/// keyward keeps serving the last good login until it is fixed.
pub(crate) fn read(codex_home: &Path) -> Result<ModeSetting, SourceProblem> {
    let path = codex_home.join(CONFIG_FILE);
    let path_text = || path.display().to_string();
    let text = match read_limited(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(ModeSetting {
                mode: StoreMode::File,
                explicit: false,
            })
        }
        Err(e) => {
            return Err(SourceProblem::Unreadable {
                path: path_text(),
                detail: e.to_string(),
            })
        }
    };
    let table: toml::Table = toml::from_str(&text).map_err(|e| SourceProblem::BadShape {
        path: path_text(),
        // The message alone: the rendered error quotes the offending line.
        detail: format!("not valid TOML ({})", e.message().trim()),
    })?;
    match table.get(KEY) {
        None => Ok(ModeSetting {
            mode: StoreMode::File,
            explicit: false,
        }),
        Some(toml::Value::String(value)) => match StoreMode::parse(value) {
            Some(mode) => Ok(ModeSetting {
                mode,
                explicit: true,
            }),
            None => Err(SourceProblem::BadShape {
                path: path_text(),
                detail: format!(
                    "{KEY} = \"{value}\" is none of \"file\", \"keyring\", \"auto\", \"ephemeral\""
                ),
            }),
        },
        Some(other) => Err(SourceProblem::BadShape {
            path: path_text(),
            detail: format!("{KEY} should be a string, found a {}", other.type_str()),
        }),
    }
}

fn read_limited(path: &Path) -> io::Result<String> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let mut text = String::new();
    file.take(MAX_CONFIG_BYTES).read_to_string(&mut text)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode_of(config: Option<&str>) -> Result<ModeSetting, SourceProblem> {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        if let Some(config) = config {
            std::fs::write(dir.path().join(CONFIG_FILE), config).unwrap_or_else(|e| panic!("{e}"));
        }
        read(dir.path())
    }

    /// No file, or no key: the CLI's default, `file`.
    #[test]
    fn defaults_to_the_file() {
        for config in [None, Some("model = \"gpt-5\"\n")] {
            let setting = mode_of(config).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                setting,
                ModeSetting {
                    mode: StoreMode::File,
                    explicit: false
                }
            );
        }
    }

    #[test]
    fn reads_each_mode() {
        for (text, mode) in [
            ("file", StoreMode::File),
            ("keyring", StoreMode::Keyring),
            ("auto", StoreMode::Auto),
            ("ephemeral", StoreMode::Ephemeral),
        ] {
            let config = format!("model = \"x\"\n{KEY} = \"{text}\"\n[features]\napps = false\n");
            let setting = mode_of(Some(&config)).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                setting,
                ModeSetting {
                    mode,
                    explicit: true
                }
            );
            assert_eq!(setting.to_string(), format!("{KEY} = \"{text}\""));
        }
    }

    /// A value the CLI would refuse, or a file that is not TOML, is a problem that names the
    /// file and never quotes other lines of it.
    #[test]
    fn refuses_what_the_cli_would_refuse() {
        let unknown = mode_of(Some(&format!("{KEY} = \"vault\"\n")));
        assert!(
            matches!(&unknown, Err(SourceProblem::BadShape { detail, .. }) if detail.contains("vault")),
            "{unknown:?}"
        );
        let not_string = mode_of(Some(&format!("{KEY} = 3\n")));
        assert!(matches!(not_string, Err(SourceProblem::BadShape { .. })));
        let broken = mode_of(Some(
            "experimental_bearer_token = \"sk-secret-value\"\nthis is not toml\n",
        ));
        match broken {
            Err(SourceProblem::BadShape { detail, .. }) => {
                assert!(!detail.contains("sk-secret-value"), "{detail}")
            }
            other => panic!("expected a problem, got {other:?}"),
        }
    }
}
