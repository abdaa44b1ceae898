//! Putting a new login into a Codex home, and taking one out, the way keyward's own refreshes write
//! there: under the Codex CLI's locks (`auth.lock`, then `auth.json.lock`), through a temp file and a
//! rename, mode 0600.
//!
//! The code exchange is journaled like a refresh, with the authorization code as the token spent:
//! the intent is durable before the request leaves, the answer durable before anything else is
//! done with it, and the entry is settled (its tokens erased) once `auth.json` holds them. The
//! locks are held from before the intent to the settlement, so no broker recovery reads the entry
//! half done. The broker then adopts the new lineage at its next read of the file, with no
//! restart; the lineage is recorded here as the work of `keyward login`.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::time::Duration;

use chrono::Utc;

use super::exchange::{self, Authorization, LoginTokens};
use super::LoginError;
use crate::atomic_file;
use crate::codex::auth_file::{AuthDocument, NewLogin, MAX_AUTH_FILE_BYTES};
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
        let written = write(home, &tokens, claims.account_id.as_deref(), self.issuer);
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

/// Removes the login from `home` under the CLI's locks; returns its refresh token, to revoke.
/// Blocking.
pub(crate) fn remove(home: &Path, lock_timeout: Duration) -> Result<Option<Secret>, LoginError> {
    let path = home.join("auth.json");
    if fs::symlink_metadata(&path).is_err() {
        return Ok(None);
    }
    let _guard = lock::acquire(home, lock_timeout)?;
    let refresh = read(&path)?.and_then(|document| refresh_token(&document));
    match fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(refresh),
        Err(e) => return Err(io_error(path.display().to_string(), "cannot remove it", e)),
    }
    atomic_file::sync_dir(home).map_err(|e| io_error(home_text(home), "cannot sync it", e))?;
    Ok(refresh)
}

/// Writes the new login over whatever `home` holds (the caller holds the locks); returns the
/// refresh token of the login it replaced.
fn write(
    home: &Path,
    tokens: &LoginTokens,
    account_id: Option<&str>,
    issuer: &str,
) -> Result<Option<Secret>, LoginError> {
    let path = home.join("auth.json");
    let mut document = read(&path)?.unwrap_or_default();
    let replaced = refresh_token(&document).filter(|old| *old != tokens.refresh_token);
    let login = NewLogin {
        id_token: &tokens.id_token,
        access_token: &tokens.access_token,
        refresh_token: &tokens.refresh_token,
        account_id,
        issuer,
    };
    document.install_login(&login, Utc::now());
    atomic_file::replace(&path, &document.to_bytes(), ".auth-")
        .map_err(|e| io_error(path.display().to_string(), "cannot write it", e))?;
    Ok(replaced)
}

/// The document at `path`: `None` when there is none; a damaged one counts as none (a sign-in
/// replaces it, having nothing of it to keep).
fn read(path: &Path) -> Result<Option<AuthDocument>, LoginError> {
    let file = match fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(path.display().to_string(), "cannot read it", e)),
    };
    let mut bytes = Vec::new();
    file.take(MAX_AUTH_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io_error(path.display().to_string(), "cannot read it", e))?;
    if bytes.len() as u64 > MAX_AUTH_FILE_BYTES {
        return Ok(None);
    }
    Ok(AuthDocument::parse(&bytes).ok())
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
