//! The Codex CLI's login in the OS keyring: service `Codex Auth`, account `cli|` and the first 16
//! hex digits of the SHA-256 of the canonical `CODEX_HOME`, the value `auth.json`'s document in
//! compact JSON. Saving there removes a leftover `auth.json`, as the CLI does (verified against the
//! CLI 0.169 and 0.171 with gnome-keyring).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::file::{self, FileStorage};
use super::secret_store::SecretStore;
use super::{AuthStorage, Loaded, StorageError, StoreKind};
use crate::codex::auth_file::AuthDocument;

pub(crate) const SERVICE: &str = "Codex Auth";

pub(crate) struct KeyringStorage {
    home: PathBuf,
    secrets: Arc<dyn SecretStore>,
    /// The `auth.json` a save leaves behind no more.
    leftover: FileStorage,
}

impl std::fmt::Debug for KeyringStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyringStorage")
            .field("home", &self.home)
            .finish_non_exhaustive()
    }
}

/// The account the CLI files `codex_home`'s login under. The path is canonicalised first (as the
/// CLI does, falling back to the path as given), so a symlinked home names the same item.
pub(crate) fn account(codex_home: &Path) -> String {
    let canonical = codex_home
        .canonicalize()
        .unwrap_or_else(|_| codex_home.to_path_buf());
    let digest = Sha256::digest(canonical.to_string_lossy().as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("cli|{}", &hex[..16])
}

impl KeyringStorage {
    pub(crate) fn new(codex_home: &Path, secrets: Arc<dyn SecretStore>) -> Self {
        Self {
            home: codex_home.to_path_buf(),
            secrets,
            leftover: FileStorage::new(codex_home),
        }
    }

    fn error(&self, source: super::secret_store::KeyringError) -> StorageError {
        StorageError::Keyring {
            location: self.location(),
            source,
        }
    }
}

impl AuthStorage for KeyringStorage {
    fn kind(&self) -> StoreKind {
        StoreKind::Keyring
    }

    fn location(&self) -> String {
        format!(
            "the keyring item \"{SERVICE}\" / \"{}\"",
            account(&self.home)
        )
    }

    fn load(&self) -> Result<Loaded, StorageError> {
        let location = self.location();
        let value = self
            .secrets
            .load(SERVICE, &account(&self.home))
            .map_err(|e| self.error(e))?;
        let mut warnings = Vec::new();
        if value.is_some() && self.leftover.path().exists() {
            warnings.push(format!(
                "{} is there too; the Codex CLI ignores it while it keeps its login in the keyring",
                self.leftover.path().display()
            ));
        }
        Ok(Loaded {
            store: StoreKind::Keyring,
            document: value.map(|v| file::parse(v.expose().as_bytes(), &location)),
            location,
            identity: None,
            warnings,
        })
    }

    fn save(&self, document: &AuthDocument) -> Result<(), StorageError> {
        self.secrets
            .save(SERVICE, &account(&self.home), &document.to_compact())
            .map_err(|e| self.error(e))?;
        // As the CLI: a file left from before the switch would be read by a later `file` store,
        // with a lineage that has moved on.
        if let Err(e) = self.leftover.remove() {
            tracing::warn!(path = %self.leftover.path().display(), error = %e, "could not remove the login file the keyring replaces");
        }
        Ok(())
    }

    fn delete(&self) -> Result<bool, StorageError> {
        let removed = self
            .secrets
            .delete(SERVICE, &account(&self.home))
            .map_err(|e| self.error(e))?;
        Ok(self.leftover.delete()? || removed)
    }
}

#[cfg(test)]
mod tests {
    use super::super::secret_store::{KeyringError, MemoryKeyring};
    use super::*;
    use crate::codex::auth_file::tests::login_json;

    /// The CLI's account for a home: `cli|` and 16 hex digits of the SHA-256 of the canonical
    /// path. The pinned value is the account the CLI 0.169 itself stored its login under for the
    /// home `/tmp/kr/h1/codex` (read back with `secret-tool`).
    #[test]
    fn account_is_the_clis() {
        assert_eq!(
            account(Path::new("/tmp/kr/h1/codex")),
            "cli|b574194316b77faa"
        );
        let expected = {
            let digest = Sha256::digest(b"/nonexistent/codex");
            format!("cli|{}", &hex(&digest)[..16])
        };
        assert_eq!(account(Path::new("/nonexistent/codex")), expected);
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path(), &link).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            account(&link),
            account(dir.path()),
            "a symlinked home names the same item"
        );
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// A save stores compact JSON with every field kept, and removes a leftover auth.json; a
    /// load reads it back.
    #[test]
    fn saves_compact_json_and_removes_the_file() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join("auth.json"), b"{}").unwrap_or_else(|e| panic!("{e}"));
        let secrets = Arc::new(MemoryKeyring::default());
        let storage = KeyringStorage::new(dir.path(), secrets.clone());
        let document = AuthDocument::parse(login_json().to_string().as_bytes())
            .unwrap_or_else(|e| panic!("{e:?}"));
        storage.save(&document).unwrap_or_else(|e| panic!("{e}"));
        let stored = secrets
            .get(SERVICE, &account(dir.path()))
            .unwrap_or_default();
        assert!(!stored.contains('\n') && !stored.contains(": "), "{stored}");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&stored).ok(),
            Some(login_json())
        );
        assert!(!dir.path().join("auth.json").exists());
        let loaded = storage.load().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(loaded.store, StoreKind::Keyring);
        assert!(matches!(loaded.document, Some(Ok(_))));
        assert!(storage.delete().unwrap_or_else(|e| panic!("{e}")));
        assert!(storage
            .load()
            .map(|l| l.document.is_none())
            .unwrap_or(false));
    }

    /// A keyring that cannot be reached is an error that says what to do, not "no login".
    #[test]
    fn an_unreachable_keyring_is_an_error_with_a_remedy() {
        let secrets = Arc::new(MemoryKeyring::default());
        *secrets.failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(KeyringError::Locked {
            detail: "prompt dismissed".into(),
        });
        let storage = KeyringStorage::new(Path::new("/nonexistent/codex"), secrets);
        let error = storage
            .load()
            .err()
            .unwrap_or_else(|| panic!("expected an error"));
        assert!(error.to_string().contains("locked"), "{error}");
        assert!(error.remedy().unwrap_or_default().contains("unlock"));
    }
}
