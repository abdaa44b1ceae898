//! The Codex CLI's login as a [`CredentialSource`]: wherever `cli_auth_credentials_store` keeps
//! it (`storage`), under the CLI's own locks (`lock`), which the CLI takes around every write of
//! every store (its keyring writes included).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::lock;
use super::storage::file::{self, FileStorage, AUTH_FILE};
use super::storage::mode::{self, ModeSetting, StoreMode, CONFIG_FILE};
use super::storage::secret_store::{OsKeyring, SecretStore};
use super::storage::{self as stores, AuthStorage, StorageError};
use crate::credential::{
    Credential, CredentialSource, SourceContents, SourceError, SourceGuard, SourceIdentity,
    SourceRead, SourceVocabulary, StoreInfo, TokenAnswer, TokenClaims, Watched,
};
use crate::secret::{Fingerprint, Secret};

/// The Codex CLI refreshes a login whose access token has no expiry claim once `last_refresh`
/// is this old (`codex-rs/login`'s fallback); keyward keeps the same schedule for such logins.
const UNDATED_LIFETIME_DAYS: i64 = 8;

pub(crate) struct CodexSource {
    home: PathBuf,
    is_default_home: bool,
    /// `auth.json`, for the per-request `stat` while the login may be there.
    file: FileStorage,
    secrets: Arc<dyn SecretStore>,
    /// What the last read found config.toml to choose, and where it looked.
    resolved: Mutex<Resolved>,
}

#[derive(Debug, Clone)]
struct Resolved {
    mode: StoreMode,
    location: String,
}

impl std::fmt::Debug for CodexSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodexSource")
            .field("home", &self.home)
            .field("resolved", &self.resolved())
            .finish_non_exhaustive()
    }
}

impl CodexSource {
    /// `is_default_home`: whether a plain `codex login` (no `CODEX_HOME`) logs this home in.
    pub(crate) fn new(home: impl Into<PathBuf>, is_default_home: bool) -> Self {
        Self::with_keyring(home, is_default_home, Arc::new(OsKeyring))
    }

    /// With another keyring than the OS's (tests).
    pub(crate) fn with_keyring(
        home: impl Into<PathBuf>,
        is_default_home: bool,
        secrets: Arc<dyn SecretStore>,
    ) -> Self {
        let home = home.into();
        let file = FileStorage::new(&home);
        let resolved = Resolved {
            mode: StoreMode::File,
            location: file.location(),
        };
        Self {
            home,
            is_default_home,
            file,
            secrets,
            resolved: Mutex::new(resolved),
        }
    }

    fn resolved(&self) -> Resolved {
        self.resolved
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The mode alone: the request path's question, without copying the location.
    fn mode(&self) -> StoreMode {
        self.resolved.lock().unwrap_or_else(|p| p.into_inner()).mode
    }

    fn resolve(&self, mode: StoreMode, location: String) {
        let mut resolved = self.resolved.lock().unwrap_or_else(|p| p.into_inner());
        *resolved = Resolved { mode, location };
    }

    fn config_path(&self) -> PathBuf {
        self.home.join(CONFIG_FILE)
    }

    fn store_info(&self, kind: &'static str, setting: &ModeSetting) -> StoreInfo {
        StoreInfo {
            kind,
            chosen_by: format!("{setting} in {}", self.config_path().display()),
        }
    }

    /// The store config.toml chooses now.
    fn storage(&self) -> Result<(ModeSetting, Box<dyn AuthStorage>), SourceError> {
        let setting = mode::read(&self.home).map_err(SourceError::Unusable)?;
        let storage = stores::open(&self.home, setting.mode, self.secrets.clone())
            .map_err(|e| SourceError::Unusable(e.into_problem()))?;
        Ok((setting, storage))
    }
}

fn source_error(error: StorageError) -> SourceError {
    match error {
        StorageError::Io {
            location,
            doing,
            source,
        } => SourceError::Io {
            path: location,
            doing,
            source,
        },
        other => SourceError::Store(Box::new(other)),
    }
}

impl CredentialSource for CodexSource {
    fn location(&self) -> String {
        self.resolved().location
    }

    fn watched(&self) -> Vec<Watched> {
        let changes = |name: &str| Watched {
            path: self.home.join(name),
            on_release: false,
        };
        vec![
            changes(AUTH_FILE),
            changes(CONFIG_FILE),
            // The CLI holds it around every save and delete of its login, the keyring's too
            // (strace of the CLI 0.169 and 0.171): its release is the keyring's change event.
            Watched {
                path: self.home.join(lock::INNER_LOCK),
                on_release: true,
            },
        ]
    }

    fn identity(&self) -> Option<SourceIdentity> {
        match self.mode() {
            // `auto` falls back to the file, and a keyring save removes it: both show in its stat.
            StoreMode::File | StoreMode::Auto => self.file.identity(),
            StoreMode::Keyring | StoreMode::Ephemeral => None,
        }
    }

    fn polled(&self) -> bool {
        self.mode().reads_keyring()
    }

    fn read(&self) -> SourceRead {
        let setting = match mode::read(&self.home) {
            Ok(setting) => setting,
            Err(problem) => {
                return SourceRead {
                    identity: self.identity(),
                    contents: Err(problem),
                    warnings: Vec::new(),
                    store: None,
                }
            }
        };
        let storage = match stores::open(&self.home, setting.mode, self.secrets.clone()) {
            Ok(storage) => storage,
            Err(error) => {
                self.resolve(setting.mode, self.config_path().display().to_string());
                return SourceRead {
                    identity: None,
                    contents: Err(error.into_problem()),
                    warnings: Vec::new(),
                    store: None,
                };
            }
        };
        match storage.load() {
            Ok(loaded) => {
                self.resolve(setting.mode, loaded.location.clone());
                let contents = match loaded.document {
                    None => Ok(SourceContents::Missing),
                    Some(document) => document
                        .and_then(|d| d.contents().map_err(|e| file::problem(e, &loaded.location))),
                };
                SourceRead {
                    identity: loaded.identity,
                    contents,
                    warnings: loaded.warnings,
                    store: Some(self.store_info(loaded.store.as_str(), &setting)),
                }
            }
            Err(error) => {
                self.resolve(setting.mode, storage.location());
                SourceRead {
                    identity: self.identity(),
                    contents: Err(error.into_problem()),
                    warnings: Vec::new(),
                    store: Some(self.store_info(storage.kind().as_str(), &setting)),
                }
            }
        }
    }

    fn lock(&self, timeout: Duration) -> Result<Box<dyn SourceGuard>, SourceError> {
        if !self.home.is_dir() {
            return Err(SourceError::Missing {
                path: self.home.display().to_string(),
                what: "the Codex home directory",
            });
        }
        Ok(Box::new(lock::acquire(&self.home, timeout)?))
    }

    fn write_back(
        &self,
        _guard: &dyn SourceGuard,
        spent: Fingerprint,
        answer: &TokenAnswer,
        now: DateTime<Utc>,
    ) -> Result<(), SourceError> {
        // Under the locks, from the store config.toml names now: a switch since the last read
        // finds no login with the spent token there, and the answer stays in the journal.
        let (_, storage) = self.storage()?;
        let loaded = storage.load().map_err(source_error)?;
        let Some(document) = loaded.document else {
            return Err(SourceError::Conflict {
                found: "no login".into(),
            });
        };
        let mut document = document.map_err(SourceError::Unusable)?;
        let contents = document
            .contents()
            .map_err(|e| SourceError::Unusable(file::problem(e, &loaded.location)))?;
        match contents {
            SourceContents::Login(current) if current.refresh_fingerprint() == spent => {}
            SourceContents::Login(current) => {
                return Err(SourceError::Conflict {
                    found: current.refresh_fingerprint().to_string(),
                })
            }
            _ => {
                return Err(SourceError::Conflict {
                    found: "no login".into(),
                })
            }
        }
        document.apply(answer, now);
        storage.save(&document).map_err(source_error)
    }

    fn vocabulary(&self) -> SourceVocabulary {
        let login_command = if self.is_default_home {
            "codex login".into()
        } else {
            format!("CODEX_HOME={} codex login", self.home.display())
        };
        SourceVocabulary {
            provider: "Codex",
            login: "ChatGPT login",
            login_command,
            sign_in: "sign in with ChatGPT",
            cli: "codex",
            lock_holder: "a codex process",
        }
    }

    fn claims(&self, access_token: &Secret, id_token: Option<&Secret>) -> TokenClaims {
        super::claims::of_login(access_token.expose(), id_token.map(Secret::expose))
    }

    fn undated_expiry(&self, credential: &Credential) -> Option<DateTime<Utc>> {
        Some(credential.last_refresh? + chrono::Duration::days(UNDATED_LIFETIME_DAYS))
    }
}

#[cfg(test)]
mod tests {
    use super::super::auth_file::tests::login_json;
    use super::super::storage::keyring::{account, SERVICE};
    use super::super::storage::secret_store::MemoryKeyring;
    use super::*;

    fn set_store(home: &std::path::Path, store: &str) {
        std::fs::write(
            home.join(CONFIG_FILE),
            format!("cli_auth_credentials_store = \"{store}\"\n"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    }

    fn refresh_token(read: &SourceRead) -> Option<String> {
        match &read.contents {
            Ok(SourceContents::Login(c)) => Some(c.refresh_token.expose().to_string()),
            _ => None,
        }
    }

    /// A keyring login is read (no `stat` identity, polled), written back under the spent-token
    /// check with every other field kept, and a write over another lineage is refused.
    #[test]
    fn a_keyring_login_is_read_and_written_back_keeping_its_fields() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        set_store(dir.path(), "keyring");
        let secrets = Arc::new(MemoryKeyring::default());
        secrets
            .save(SERVICE, &account(dir.path()), &login_json().to_string())
            .unwrap_or_else(|e| panic!("{e}"));
        let source = CodexSource::with_keyring(dir.path(), true, secrets.clone());
        let read = source.read();
        assert_eq!(refresh_token(&read).as_deref(), Some("rt_secret_one"));
        assert_eq!(read.identity, None);
        assert_eq!(read.store.as_ref().map(|s| s.kind), Some("keyring"));
        assert!(source.polled());
        assert!(
            source.location().contains("Codex Auth"),
            "{}",
            source.location()
        );

        let guard = source
            .lock(Duration::from_secs(1))
            .unwrap_or_else(|e| panic!("{e}"));
        let answer = TokenAnswer {
            access_token: Secret::new("new-access"),
            refresh_token: Some(Secret::new("rt_new")),
            id_token: None,
        };
        let spent = Secret::new("rt_secret_one").fingerprint();
        source
            .write_back(guard.as_ref(), spent, &answer, Utc::now())
            .unwrap_or_else(|e| panic!("{e}"));
        let stored: serde_json::Value = serde_json::from_str(
            &secrets
                .get(SERVICE, &account(dir.path()))
                .unwrap_or_default(),
        )
        .unwrap_or_default();
        assert_eq!(stored["tokens"]["refresh_token"], "rt_new");
        assert_eq!(stored["future_top_level"], login_json()["future_top_level"]);
        assert_eq!(
            stored["tokens"]["future_token_field"],
            login_json()["tokens"]["future_token_field"]
        );
        assert!(matches!(
            source.write_back(guard.as_ref(), spent, &answer, Utc::now()),
            Err(SourceError::Conflict { .. })
        ));
        assert!(!dir.path().join(AUTH_FILE).exists());
    }

    /// The store follows config.toml at every read; the file's `stat` is the identity only
    /// while the login may be in the file.
    #[test]
    fn the_store_follows_config_toml() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let secrets = Arc::new(MemoryKeyring::default());
        let mut in_keyring = login_json();
        in_keyring["tokens"]["refresh_token"] = "rt_in_keyring".into();
        secrets
            .save(SERVICE, &account(dir.path()), &in_keyring.to_string())
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join(AUTH_FILE), login_json().to_string())
            .unwrap_or_else(|e| panic!("{e}"));
        let source = CodexSource::with_keyring(dir.path(), true, secrets);
        for (store, token, kind, stat) in [
            (None, "rt_secret_one", "file", true),
            (Some("keyring"), "rt_in_keyring", "keyring", false),
            (Some("auto"), "rt_in_keyring", "keyring", true),
            (Some("file"), "rt_secret_one", "file", true),
        ] {
            if let Some(store) = store {
                set_store(dir.path(), store);
            }
            let read = source.read();
            assert_eq!(refresh_token(&read).as_deref(), Some(token), "{store:?}");
            assert_eq!(read.store.map(|s| s.kind), Some(kind), "{store:?}");
            assert_eq!(source.identity().is_some(), stat, "{store:?}");
        }
        set_store(dir.path(), "ephemeral");
        let read = source.read();
        assert!(
            matches!(&read.contents, Err(problem) if problem.remedy().is_some_and(|r| r.contains("\"file\""))),
            "{:?}",
            read.contents
        );
    }

    /// A login without an expiry claim is due when the CLI would refresh it: 8 days after
    /// `last_refresh`; without `last_refresh` never by schedule.
    #[test]
    fn undated_login_is_due_after_the_clis_eight_days() {
        let source = CodexSource::new("/nonexistent/codex-home", true);
        let mut credential = Credential {
            access_token: Secret::new("opaque"),
            refresh_token: Secret::new("rt"),
            id_token: None,
            account_id: None,
            claims: TokenClaims::default(),
            last_refresh: None,
        };
        assert_eq!(source.undated_expiry(&credential), None);
        credential.last_refresh = DateTime::from_timestamp(1_000_000, 0);
        assert_eq!(
            source.undated_expiry(&credential).map(|t| t.timestamp()),
            Some(1_000_000 + 8 * 86_400)
        );
    }

    /// The remedy names the home only when a plain `codex login` would log in another one.
    #[test]
    fn login_command_names_a_non_default_home() {
        let default = CodexSource::new("/home/u/.codex", true).vocabulary();
        assert_eq!(default.login_command, "codex login");
        let other = CodexSource::new("/srv/work-codex", false).vocabulary();
        assert_eq!(
            other.login_command,
            "CODEX_HOME=/srv/work-codex codex login"
        );
    }
}
