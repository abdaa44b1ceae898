//! `cli_auth_credentials_store = "auto"`: the keyring first, `auth.json` where the keyring holds
//! nothing or cannot be reached, as the CLI's `AutoAuthStorage` does. A save goes to the keyring
//! (which removes the file) and falls back to the file when the keyring cannot take it; so a
//! machine without a keyring keeps using `auth.json`.

use std::path::Path;
use std::sync::Arc;

use super::file::FileStorage;
use super::keyring::KeyringStorage;
use super::secret_store::SecretStore;
use super::{AuthStorage, Loaded, StorageError, StoreKind};
use crate::codex::auth_file::AuthDocument;

#[derive(Debug)]
pub(crate) struct AutoStorage {
    keyring: KeyringStorage,
    file: FileStorage,
}

impl AutoStorage {
    pub(crate) fn new(codex_home: &Path, secrets: Arc<dyn SecretStore>) -> Self {
        Self {
            keyring: KeyringStorage::new(codex_home, secrets),
            file: FileStorage::new(codex_home),
        }
    }
}

impl AuthStorage for AutoStorage {
    fn kind(&self) -> StoreKind {
        StoreKind::Keyring
    }

    fn location(&self) -> String {
        self.keyring.location()
    }

    fn load(&self) -> Result<Loaded, StorageError> {
        match self.keyring.load() {
            Ok(loaded) if loaded.document.is_some() => Ok(loaded),
            Ok(_) => self.file.load(),
            Err(error) => {
                let mut loaded = self.file.load()?;
                loaded.warnings.push(format!(
                    "{error}; reading {} instead, as the Codex CLI does with cli_auth_credentials_store = \"auto\"",
                    self.file.path().display()
                ));
                Ok(loaded)
            }
        }
    }

    fn save(&self, document: &AuthDocument) -> Result<(), StorageError> {
        match self.keyring.save(document) {
            Ok(()) => Ok(()),
            Err(error) => {
                tracing::warn!(error = %error, "could not save the login to the keyring; writing auth.json instead, as the Codex CLI does");
                self.file.save(document)
            }
        }
    }

    fn delete(&self) -> Result<bool, StorageError> {
        // The keyring store removes the file as well.
        self.keyring.delete()
    }
}

#[cfg(test)]
mod tests {
    use super::super::keyring::{account, SERVICE};
    use super::super::secret_store::{KeyringError, MemoryKeyring};
    use super::*;
    use crate::codex::auth_file::tests::login_json;

    fn document() -> AuthDocument {
        AuthDocument::parse(login_json().to_string().as_bytes()).unwrap_or_else(|e| panic!("{e:?}"))
    }

    /// With a keyring: an empty one lets the file be read, and the next save moves the login
    /// into the keyring (the CLI 0.169 did exactly this in `auto` mode, see README).
    #[test]
    fn reads_the_file_until_a_save_moves_the_login_to_the_keyring() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let secrets = Arc::new(MemoryKeyring::default());
        let storage = AutoStorage::new(dir.path(), secrets.clone());
        FileStorage::new(dir.path())
            .save(&document())
            .unwrap_or_else(|e| panic!("{e}"));
        let loaded = storage.load().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(loaded.store, StoreKind::File);
        storage.save(&document()).unwrap_or_else(|e| panic!("{e}"));
        assert!(secrets.get(SERVICE, &account(dir.path())).is_some());
        assert!(!dir.path().join("auth.json").exists());
        let loaded = storage.load().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(loaded.store, StoreKind::Keyring);
    }

    /// Without a keyring: the file, read and written, and a warning that says why.
    #[test]
    fn falls_back_to_the_file_without_a_keyring() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let secrets = Arc::new(MemoryKeyring::default());
        *secrets.failure.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(KeyringError::NoSessionBus {
                socket: "/run/user/0/bus".into(),
            });
        let storage = AutoStorage::new(dir.path(), secrets);
        storage.save(&document()).unwrap_or_else(|e| panic!("{e}"));
        assert!(dir.path().join("auth.json").exists());
        let loaded = storage.load().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(loaded.store, StoreKind::File);
        assert!(matches!(loaded.document, Some(Ok(_))));
        assert!(
            loaded.warnings.iter().any(|w| w.contains("D-Bus")),
            "{:?}",
            loaded.warnings
        );
    }
}
