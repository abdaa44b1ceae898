//! Where the Codex CLI keeps its login, behind one small trait (codex-rs's `AuthStorageBackend`):
//! `auth.json` ([`file`]), the OS keyring ([`keyring`]), or the keyring with the file as its
//! fallback ([`auto`]), chosen by `cli_auth_credentials_store` in the CLI's config.toml
//! ([`mode`]) through [`open`]. Every store holds the same JSON document; callers take the CLI's
//! locks (`codex::lock`) around a read-check-save, whichever store it is.

pub(crate) mod auto;
pub(crate) mod file;
pub(crate) mod keyring;
pub(crate) mod mode;
pub(crate) mod secret_store;

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use super::auth_file::AuthDocument;
use crate::credential::{SourceIdentity, SourceProblem};
use mode::StoreMode;
use secret_store::{KeyringError, SecretStore};

/// Where a login is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StoreKind {
    File,
    Keyring,
}

impl StoreKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Keyring => "keyring",
        }
    }
}

/// One read of a store.
#[derive(Debug)]
pub(crate) struct Loaded {
    /// The store the login was found in (or, without one, where the CLI looked last).
    pub store: StoreKind,
    /// That store's login in the user's words: a path, or the keyring item.
    pub location: String,
    /// The file's `stat` at the read; a keyring item has none.
    pub identity: Option<SourceIdentity>,
    /// `None`: nothing stored there (no file, no item).
    pub document: Option<Result<AuthDocument, SourceProblem>>,
    /// Worth telling the user; does not stop keyward.
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum StorageError {
    #[error("{location}: {doing}: {source}")]
    Io {
        location: String,
        doing: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{location} cannot be used: {source}")]
    Keyring {
        location: String,
        #[source]
        source: KeyringError,
    },
    #[error("cli_auth_credentials_store = \"ephemeral\" in {config}: the Codex CLI keeps its login in its own memory only, where no other program can borrow it")]
    Ephemeral { config: String },
}

impl StorageError {
    /// What the user can do.
    pub(crate) fn remedy(&self) -> Option<String> {
        match self {
            Self::Io { .. } => None,
            Self::Keyring { source, .. } => Some(source.remedy()),
            Self::Ephemeral { config } => Some(format!(
                "set cli_auth_credentials_store to \"file\", \"keyring\" or \"auto\" in {config} and run `codex login`"
            )),
        }
    }

    /// As a problem of the source's read: keyward keeps serving its last good login meanwhile.
    pub(crate) fn into_problem(self) -> SourceProblem {
        let remedy = self.remedy();
        match self {
            Self::Io {
                location, source, ..
            } => SourceProblem::Unreadable {
                path: location,
                detail: source.to_string(),
            },
            Self::Keyring { location, source } => SourceProblem::Unreachable {
                location,
                detail: source.to_string(),
                remedy: remedy.unwrap_or_default(),
            },
            Self::Ephemeral { config } => SourceProblem::Unreachable {
                location: config,
                detail: "cli_auth_credentials_store = \"ephemeral\": the Codex CLI keeps its login in its own memory only".into(),
                remedy: remedy.unwrap_or_default(),
            },
        }
    }
}

/// A store of the Codex CLI's login document.
pub(crate) trait AuthStorage: Send + Sync + fmt::Debug {
    /// Where a save lands first.
    fn kind(&self) -> StoreKind;

    /// That store's login in the user's words.
    fn location(&self) -> String;

    fn load(&self) -> Result<Loaded, StorageError>;

    /// Stores `document` as the CLI would: the file pretty-printed and replaced atomically (mode
    /// 0600); the keyring item compact, after which a leftover `auth.json` is removed.
    fn save(&self, document: &AuthDocument) -> Result<(), StorageError>;

    /// Removes the login from this store (and, for the keyring, a leftover `auth.json`).
    #[cfg_attr(not(test), allow(dead_code))]
    fn delete(&self) -> Result<bool, StorageError>;
}

/// The store `mode` names for `codex_home`, as the CLI's factory builds it.
pub(crate) fn open(
    codex_home: &Path,
    mode: StoreMode,
    secrets: Arc<dyn SecretStore>,
) -> Result<Box<dyn AuthStorage>, StorageError> {
    Ok(match mode {
        StoreMode::File => Box::new(file::FileStorage::new(codex_home)),
        StoreMode::Keyring => Box::new(keyring::KeyringStorage::new(codex_home, secrets)),
        StoreMode::Auto => Box::new(auto::AutoStorage::new(codex_home, secrets)),
        StoreMode::Ephemeral => {
            return Err(StorageError::Ephemeral {
                config: codex_home.join(mode::CONFIG_FILE).display().to_string(),
            })
        }
    })
}
