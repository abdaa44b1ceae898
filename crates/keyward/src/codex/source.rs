//! `$CODEX_HOME/auth.json` as a [`CredentialSource`].

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::auth_file::{AuthDocument, ParseError, MAX_AUTH_FILE_BYTES};
use super::lock;
use crate::atomic_file;
use crate::credential::{
    Credential, CredentialSource, SourceContents, SourceError, SourceGuard, SourceIdentity,
    SourceProblem, SourceRead, SourceVocabulary, TokenAnswer, TokenClaims,
};
use crate::secret::{Fingerprint, Secret};

/// How many times a read is retried when the file is replaced while being read.
const READ_ATTEMPTS: usize = 3;

/// The Codex CLI refreshes a login whose access token has no expiry claim once `last_refresh`
/// is this old (`codex-rs/login`'s fallback); keyward keeps the same schedule for such logins.
const UNDATED_LIFETIME_DAYS: i64 = 8;

#[derive(Debug, Clone)]
pub(crate) struct CodexSource {
    home: PathBuf,
    auth_path: PathBuf,
    is_default_home: bool,
}

impl CodexSource {
    /// `is_default_home`: whether a plain `codex login` (no `CODEX_HOME`) logs this home in.
    pub(crate) fn new(home: impl Into<PathBuf>, is_default_home: bool) -> Self {
        let home = home.into();
        let auth_path = home.join("auth.json");
        Self {
            home,
            auth_path,
            is_default_home,
        }
    }

    fn path_text(&self) -> String {
        self.auth_path.display().to_string()
    }

    fn problem(&self, error: ParseError) -> SourceProblem {
        let path = self.path_text();
        match error {
            ParseError::Empty => SourceProblem::Empty { path },
            ParseError::NotJson(detail) => SourceProblem::NotJson { path, detail },
            ParseError::BadShape(detail) => SourceProblem::BadShape { path, detail },
        }
    }

    /// Reads once through one descriptor, so the bytes and the identity belong to the same inode.
    fn read_once(
        &self,
    ) -> Result<(SourceIdentity, Result<AuthDocument, SourceProblem>), io::Error> {
        // Non-blocking: a FIFO (or device) put in place of the file must not stall the reader
        // until someone writes to it; it is opened, seen not to be a regular file, and refused.
        let file = fs::OpenOptions::new()
            .read(true)
            .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
            .open(&self.auth_path)?;
        let meta = file.metadata()?;
        let identity = SourceIdentity::of(&meta);
        if !meta.is_file() {
            let problem = SourceProblem::BadShape {
                path: self.path_text(),
                detail: "it is not a regular file".into(),
            };
            return Ok((identity, Err(problem)));
        }
        if meta.len() > MAX_AUTH_FILE_BYTES {
            let problem = SourceProblem::TooLarge {
                path: self.path_text(),
                size: meta.len(),
                limit: MAX_AUTH_FILE_BYTES,
            };
            return Ok((identity, Err(problem)));
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        file.take(MAX_AUTH_FILE_BYTES + 1).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > MAX_AUTH_FILE_BYTES {
            let problem = SourceProblem::TooLarge {
                path: self.path_text(),
                size: bytes.len() as u64,
                limit: MAX_AUTH_FILE_BYTES,
            };
            return Ok((identity, Err(problem)));
        }
        let parsed = AuthDocument::parse(&bytes).map_err(|e| self.problem(e));
        Ok((identity, parsed))
    }

    fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if let Ok(link) = fs::symlink_metadata(&self.auth_path) {
            if link.file_type().is_symlink() {
                let target = fs::canonicalize(&self.auth_path)
                    .map(|t| t.display().to_string())
                    .unwrap_or_else(|_| "a missing target".into());
                warnings.push(format!(
                    "{} is a symlink to {target}; keyward reads and rewrites the target",
                    self.path_text()
                ));
            }
        }
        if let Ok(meta) = fs::metadata(&self.auth_path) {
            warnings.extend(crate::host::foreign_owner_warning(&meta, &self.auth_path));
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                warnings.push(format!(
                    "{} has mode {mode:04o}: other users can read your login; run `chmod 600 {}`",
                    self.path_text(),
                    self.path_text()
                ));
            }
        }
        warnings
    }

    fn read_document(
        &self,
    ) -> Result<(SourceIdentity, Result<AuthDocument, SourceProblem>), io::Error> {
        let mut last = self.read_once()?;
        for _ in 1..READ_ATTEMPTS {
            // Replaced while we read (a writer renamed over it, or rewrote it in place): read again
            // so the result describes what the path holds now.
            match self.identity() {
                Some(now) if now == last.0 => break,
                None => break,
                Some(_) => last = self.read_once()?,
            }
        }
        Ok(last)
    }
}

impl CredentialSource for CodexSource {
    fn location(&self) -> &Path {
        &self.auth_path
    }

    fn identity(&self) -> Option<SourceIdentity> {
        fs::metadata(&self.auth_path)
            .ok()
            .map(|m| SourceIdentity::of(&m))
    }

    fn read(&self) -> SourceRead {
        let warnings = self.warnings();
        match self.read_document() {
            Err(e) if e.kind() == io::ErrorKind::NotFound => SourceRead {
                identity: None,
                contents: Ok(SourceContents::Missing),
                warnings,
            },
            Err(e) => SourceRead {
                identity: self.identity(),
                contents: Err(SourceProblem::Unreadable {
                    path: self.path_text(),
                    detail: e.to_string(),
                }),
                warnings,
            },
            Ok((identity, document)) => SourceRead {
                identity: Some(identity),
                contents: document.and_then(|d| d.contents().map_err(|e| self.problem(e))),
                warnings,
            },
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
        let io_error = |doing| {
            move |source| SourceError::Io {
                path: self.path_text(),
                doing,
                source,
            }
        };
        let (_, document) = self.read_document().map_err(io_error("cannot read it"))?;
        let mut document = document.map_err(SourceError::Unusable)?;
        let contents = document
            .contents()
            .map_err(|e| SourceError::Unusable(self.problem(e)))?;
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
        atomic_file::replace(&self.auth_path, &document.to_bytes(), ".auth-")
            .map_err(io_error("cannot write it"))
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
    use super::*;

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
