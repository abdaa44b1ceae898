//! What keyward knows of one login, whatever CLI it was borrowed from, and the trait every
//! credential source implements. The broker names no provider: a source supplies the words its
//! users know ([`SourceVocabulary`]) and its CLI's rules, the provider's module implements them.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::secret::{Fingerprint, Secret};

/// What a login's tokens say about it, as its source reads them: trusted for scheduling (when to
/// refresh) and display only, never for an access decision (the provider is the authority).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TokenClaims {
    pub expires_at: Option<DateTime<Utc>>,
    pub issued_at: Option<DateTime<Utc>>,
    pub email: Option<String>,
    pub account_id: Option<String>,
    pub plan: Option<String>,
    pub user_id: Option<String>,
}

impl TokenClaims {
    /// Fills the gaps of `self` (the access token's claims) from the id token's.
    pub(crate) fn or(self, other: TokenClaims) -> TokenClaims {
        TokenClaims {
            expires_at: self.expires_at,
            issued_at: self.issued_at,
            email: self.email.or(other.email),
            account_id: self.account_id.or(other.account_id),
            plan: self.plan.or(other.plan),
            user_id: self.user_id.or(other.user_id),
        }
    }
}

/// An OAuth login as read from its source.
#[derive(Clone)]
pub(crate) struct Credential {
    pub access_token: Secret,
    pub refresh_token: Secret,
    pub id_token: Option<Secret>,
    pub account_id: Option<String>,
    pub claims: TokenClaims,
    pub last_refresh: Option<DateTime<Utc>>,
}

impl Credential {
    pub(crate) fn refresh_fingerprint(&self) -> Fingerprint {
        self.refresh_token.fingerprint()
    }

    pub(crate) fn access_fingerprint(&self) -> Fingerprint {
        self.access_token.fingerprint()
    }

    #[cfg(test)]
    pub(crate) fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.claims.expires_at
    }

    /// The account to name in upstream requests: the source's own field first, as the CLI does.
    pub(crate) fn account(&self) -> Option<&str> {
        self.account_id
            .as_deref()
            .or(self.claims.account_id.as_deref())
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("access", &self.access_fingerprint())
            .field("refresh", &self.refresh_fingerprint())
            .field("account_id", &self.account_id)
            .field("expires_at", &self.claims.expires_at)
            .finish_non_exhaustive()
    }
}

/// What a token endpoint returned for a refresh. Fields it left out keep their old values.
#[derive(Clone, serde::Deserialize)]
pub(crate) struct TokenAnswer {
    pub access_token: Secret,
    pub refresh_token: Option<Secret>,
    pub id_token: Option<Secret>,
}

impl TokenAnswer {
    /// The answer as the journal keeps it until it is written back and settled: the one place
    /// besides the write-back where these tokens are written out (read back by `Deserialize`).
    pub(crate) fn journal_json(&self) -> String {
        serde_json::json!({
            "access_token": self.access_token.expose(),
            "refresh_token": self.refresh_token.as_ref().map(Secret::expose),
            "id_token": self.id_token.as_ref().map(Secret::expose),
        })
        .to_string()
    }
}

impl fmt::Debug for TokenAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenAnswer")
            .field("access", &self.access_token.fingerprint())
            .field(
                "refresh",
                &self.refresh_token.as_ref().map(Secret::fingerprint),
            )
            .finish_non_exhaustive()
    }
}

/// Identity of the source file as `stat` sees it: if none of these moved, the content did not change
/// (every writer we share the file with replaces it by rename, which changes the inode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SourceIdentity {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i128,
    pub ctime_ns: i128,
}

impl SourceIdentity {
    pub(crate) fn of(meta: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            ctime_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
        }
    }
}

/// What the source holds right now.
#[derive(Debug, Clone)]
pub(crate) enum SourceContents {
    /// An OAuth login keyward can serve and refresh.
    Login(Box<Credential>),
    /// An API key instead of OAuth tokens: never refreshed, not served as a login.
    ApiKey(Secret),
    /// The file exists but holds no login (e.g. tokens null after a logout).
    NoLogin,
    /// The file does not exist.
    Missing,
}

/// Why the source could not be read. Messages never contain file content.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub(crate) enum SourceProblem {
    #[error("{path} is empty")]
    Empty { path: String },
    #[error("{path} is {size} bytes, more than the {limit}-byte limit for a login file")]
    TooLarge { path: String, size: u64, limit: u64 },
    #[error("{path} is not valid JSON ({detail})")]
    NotJson { path: String, detail: String },
    #[error("{path} has an unexpected shape: {detail}")]
    BadShape { path: String, detail: String },
    #[error("{path} could not be read: {detail}")]
    Unreadable { path: String, detail: String },
    /// The store that holds the login (a keyring) cannot be reached.
    #[error("{location} cannot be reached: {detail}")]
    Unreachable {
        location: String,
        detail: String,
        remedy: String,
    },
}

impl SourceProblem {
    /// What the user can do, when the problem knows better than "repair the file".
    pub(crate) fn remedy(&self) -> Option<&str> {
        match self {
            Self::Unreachable { remedy, .. } => Some(remedy),
            _ => None,
        }
    }
}

/// Which store a source's login is kept in, for `keyward status` and `/healthz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct StoreInfo {
    /// "file" or "keyring".
    pub kind: &'static str,
    /// The setting that chose it, in the owning CLI's words.
    pub chosen_by: String,
}

/// A path whose events invalidate a source's snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Watched {
    pub path: PathBuf,
    /// Also when a writer closes it (a lock file the owning CLI holds around each write of a
    /// store the watcher cannot see, such as a keyring): not only when it is replaced or changed.
    pub on_release: bool,
}

/// One read of the source: its identity at the time of the read and what it held.
#[derive(Debug, Clone)]
pub(crate) struct SourceRead {
    pub identity: Option<SourceIdentity>,
    pub contents: Result<SourceContents, SourceProblem>,
    /// Something worth telling the user that does not stop keyward (e.g. a world-readable file).
    pub warnings: Vec<String>,
    /// Where the login was looked for; `None` for a source with one store only.
    pub store: Option<StoreInfo>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum SourceError {
    #[error("timed out after {waited:?} waiting for the lock {path} (held by {holder}?)")]
    LockTimeout {
        path: String,
        waited: Duration,
        /// Who usually holds this lock, in the source's words.
        holder: &'static str,
    },
    #[error("{path}: {doing}: {source}")]
    Io {
        path: String,
        /// What failed, in the user's words ("cannot lock").
        doing: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// A file or directory the source needs is not there.
    #[error("{path}: {what} does not exist")]
    Missing { path: String, what: &'static str },
    #[error("{0}")]
    Unusable(SourceProblem),
    /// The store (a keyring) refused or failed the operation.
    #[error("{0}")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("the source changed under the lock without taking it (now holds {found})")]
    Conflict { found: String },
}

/// Held while the source's own cross-process locks are taken; dropping it releases them.
pub(crate) trait SourceGuard: Send {}

/// A CLI's credential store that keyward borrows and writes back to.
pub(crate) trait CredentialSource: Send + Sync + 'static {
    /// Where the login is, in the user's words: a file's path, or a keyring item.
    fn location(&self) -> String;

    /// The paths whose events invalidate the snapshot (the file watcher watches their directories).
    fn watched(&self) -> Vec<Watched>;

    /// The cheap freshness check: `stat`, no parsing. `None` when there is nothing to `stat` (the
    /// file is missing, or the login is in a keyring): then events alone say when to re-read.
    fn identity(&self) -> Option<SourceIdentity>;

    /// Whether the login may change without any event the watcher sees, so the scheduler re-reads
    /// it at every tick (in the background, never on a request).
    fn polled(&self) -> bool {
        false
    }

    fn read(&self) -> SourceRead;

    /// Takes the locks the owning CLI takes, in its order (blocking; call off the async runtime).
    fn lock(&self, timeout: Duration) -> Result<Box<dyn SourceGuard>, SourceError>;

    /// Writes `answer` over the login whose refresh token was `spent`, keeping every other field.
    /// The caller holds `guard`.
    fn write_back(
        &self,
        guard: &dyn SourceGuard,
        spent: Fingerprint,
        answer: &TokenAnswer,
        now: DateTime<Utc>,
    ) -> Result<(), SourceError>;

    /// The words this source's users know its login and its CLI by.
    fn vocabulary(&self) -> SourceVocabulary;

    /// What a login's tokens say about it (expiry, account, plan), read the way the owning CLI
    /// reads them: for a login whose tokens keyward just received.
    fn claims(&self, access_token: &Secret, id_token: Option<&Secret>) -> TokenClaims;

    /// When a login whose access token carries no expiry is due for refresh anyway, by the owning
    /// CLI's own rule; `None` leaves it until the upstream refuses it.
    fn undated_expiry(&self, _credential: &Credential) -> Option<DateTime<Utc>> {
        None
    }
}

/// How the user knows a source's login, so that the broker's health and errors say what to run
/// without naming any provider itself. Each text is a fragment the broker builds sentences with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SourceVocabulary {
    /// The product whose profiles these are: "Codex" ("keyward serves a Codex profile ...").
    pub provider: &'static str,
    /// The kind of login keyward serves: "ChatGPT login" ("... holds no ChatGPT login").
    pub login: &'static str,
    /// What the user runs to log in again: "codex login", with the source's home when it is
    /// not the CLI's default.
    pub login_command: String,
    /// How to choose the right kind of login in `login_command`: "sign in with ChatGPT".
    pub sign_in: &'static str,
    /// The owning CLI's command, any run of which refreshes the login the CLI's way: "codex".
    pub cli: &'static str,
    /// Who may be holding the source's locks when they are not released: "a codex process".
    pub lock_holder: &'static str,
}
