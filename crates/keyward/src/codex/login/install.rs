//! Putting a new login into a Codex home, and taking one out, the way keyward's own refreshes write
//! there: under the Codex CLI's locks (`auth.lock`, then `auth.json.lock`), into the store the
//! CLI's config.toml names (`auth.json` through a temp file and a rename, mode 0600; or the OS
//! keyring).
//!
//! The code exchange is journaled like a refresh, with the authorization code as the token spent:
//! the intent is durable before the request leaves, the answer durable before anything else is
//! done with it, and the entry is settled (its tokens erased) once `auth.json` holds them. The
//! locks are held from before the intent to the settlement, so no broker recovery reads the entry
//! half done. The broker then adopts the new lineage at its next read of the file, with no
//! restart; the lineage is recorded here as the work of `keyward login`.

use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use super::exchange::{self, Authorization, LoginTokens};
use super::LoginError;
use crate::codex::auth_file::{AuthDocument, NewLogin};
use crate::codex::storage::secret_store::OsKeyring;
use crate::codex::storage::{self, mode, AuthStorage, StorageError};
use crate::codex::{claims, lock};
use crate::credential::{SourceContents, TokenClaims};
use crate::profile::ProfileId;
use crate::secret::Secret;
use crate::store::{JournalState, LineageAuthor, SpendPermit, Store};

/// Where a sign-in goes and what it talks to.
pub(crate) struct Installer<'a> {
    pub store: &'a dyn Store,
    pub http: &'a reqwest::Client,
    /// The issuer's token endpoint (`{issuer}/oauth/token`).
    pub token_url: &'a str,
    pub issuer: &'a str,
    pub lock_timeout: Duration,
    pub token_timeout: Duration,
}

/// A login now in place.
pub(crate) struct Installed {
    /// The refresh token of the login it replaced, to be revoked.
    pub replaced: Option<Secret>,
    pub claims: TokenClaims,
}

impl Installer<'_> {
    /// Exchanges `authorization` and writes the result into `home`'s `auth.json`.
    pub(crate) async fn install(
        &self,
        profile: &ProfileId,
        home: &Path,
        authorization: Authorization,
    ) -> Result<Installed, LoginError> {
        create_home(home)?;
        let guard = {
            let (dir, timeout) = (home.to_path_buf(), self.lock_timeout);
            tokio::task::spawn_blocking(move || lock::acquire(&dir, timeout))
                .await
                .map_err(|e| io_error(home_text(home), "cannot take its locks", e))??
        };
        let spent = authorization.code.fingerprint();
        let journal = match self.store.begin_spend(profile, spent, "login")? {
            SpendPermit::Granted(id) => id,
            SpendPermit::Refused(_) => return Err(LoginError::CodeSpent),
        };
        let tokens = match exchange::exchange(
            self.http,
            self.token_url,
            &authorization,
            self.token_timeout,
        )
        .await
        {
            Ok(tokens) => tokens,
            Err(e) => {
                let state = match e {
                    LoginError::Rejected { .. } => JournalState::Rejected,
                    _ => JournalState::Unknown,
                };
                self.store.record_failure(journal, state, &e.to_string())?;
                return Err(e);
            }
        };
        self.store.record_answer(journal, &tokens.answer())?;
        let claims = claims::of_login(tokens.access_token.expose(), Some(tokens.id_token.expose()));
        // The keyring's client blocks on its own runtime: the write runs on a blocking thread.
        let written = {
            let (dir, account, issuer) = (
                home.to_path_buf(),
                claims.account_id.clone(),
                self.issuer.to_string(),
            );
            let tokens = tokens.clone();
            tokio::task::spawn_blocking(move || write(&dir, &tokens, account.as_deref(), &issuer))
                .await
                .map_err(|e| io_error(home_text(home), "cannot write the login", e))?
        };
        drop(guard);
        match written {
            Ok(replaced) => {
                self.store.settle(journal, JournalState::Settled)?;
                self.store.observe_lineage(
                    profile,
                    tokens.refresh_token.fingerprint(),
                    LineageAuthor::Login,
                )?;
                Ok(Installed { replaced, claims })
            }
            Err(e) => {
                // Nothing else holds this new family: drop its tokens from the journal rather than
                // keep them for a write that will not be retried.
                self.store.settle(journal, JournalState::Superseded)?;
                Err(e)
            }
        }
    }
}

/// Removes the login from `home` under the CLI's locks, from wherever the CLI keeps it (its
/// config.toml's `cli_auth_credentials_store`); returns its refresh token, to revoke. Blocking.
pub(crate) fn remove(home: &Path, lock_timeout: Duration) -> Result<Option<Secret>, LoginError> {
    let storage = storage(home)?;
    let _guard = lock::acquire(home, lock_timeout)?;
    let refresh = read(storage.as_ref())?.and_then(|document| refresh_token(&document));
    storage.delete().map_err(storage_error)?;
    Ok(refresh)
}

/// Writes the new login over whatever `home` holds, where the CLI keeps it (the caller holds the
/// locks); returns the refresh token of the login it replaced.
fn write(
    home: &Path,
    tokens: &LoginTokens,
    account_id: Option<&str>,
    issuer: &str,
) -> Result<Option<Secret>, LoginError> {
    let storage = storage(home)?;
    let mut document = read(storage.as_ref())?.unwrap_or_default();
    let replaced = refresh_token(&document).filter(|old| *old != tokens.refresh_token);
    let login = NewLogin {
        id_token: &tokens.id_token,
        access_token: &tokens.access_token,
        refresh_token: &tokens.refresh_token,
        account_id,
        issuer,
    };
    document.install_login(&login, Utc::now());
    storage.save(&document).map_err(storage_error)?;
    Ok(replaced)
}

/// The store the Codex CLI keeps `home`'s login in, as its config.toml says (a file by default).
fn storage(home: &Path) -> Result<Box<dyn AuthStorage>, LoginError> {
    let setting = mode::read(home).map_err(|problem| LoginError::Storage(problem.to_string()))?;
    storage::open(home, setting.mode, Arc::new(OsKeyring)).map_err(storage_error)
}

/// The stored document: `None` when there is none; a damaged one counts as none (a sign-in
/// replaces it, having nothing of it to keep).
fn read(storage: &dyn AuthStorage) -> Result<Option<AuthDocument>, LoginError> {
    let loaded = storage.load().map_err(storage_error)?;
    Ok(loaded.document.and_then(Result::ok))
}

fn storage_error(error: StorageError) -> LoginError {
    let remedy = error.remedy();
    LoginError::Storage(match remedy {
        Some(remedy) => format!("{error}. To fix: {remedy}"),
        None => error.to_string(),
    })
}

fn refresh_token(document: &AuthDocument) -> Option<Secret> {
    match document.contents() {
        Ok(SourceContents::Login(credential)) => Some(credential.refresh_token),
        _ => None,
    }
}

/// The Codex home, created private when it is new (a home keyward makes for a profile).
fn create_home(home: &Path) -> Result<(), LoginError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(home)
        .map_err(|e| io_error(home_text(home), "cannot create the Codex home", e))
}

fn home_text(home: &Path) -> String {
    home.display().to_string()
}

fn io_error(path: String, doing: &'static str, source: impl Into<io::Error>) -> LoginError {
    LoginError::Io {
        path,
        doing,
        source: source.into(),
    }
}
