//! `$CODEX_HOME/auth.json`: read through one descriptor (so the bytes and the `stat` belong to
//! one inode), replaced atomically the way the CLI replaces it.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{AuthStorage, Loaded, StorageError, StoreKind};
use crate::atomic_file;
use crate::codex::auth_file::{AuthDocument, ParseError, MAX_AUTH_FILE_BYTES};
use crate::credential::{SourceIdentity, SourceProblem};

pub(crate) const AUTH_FILE: &str = "auth.json";

/// How many times a read is retried when the file is replaced while being read.
const READ_ATTEMPTS: usize = 3;
/// How many more times a file found empty or cut short is read, and the pause before each: a
/// writer rewriting it in place (truncate, then write) leaves it so only for a moment.
const MID_WRITE_READS: usize = 4;
const MID_WRITE_PAUSE: std::time::Duration = std::time::Duration::from_millis(20);

#[derive(Debug, Clone)]
pub(crate) struct FileStorage {
    path: PathBuf,
}

impl FileStorage {
    pub(crate) fn new(codex_home: &Path) -> Self {
        Self {
            path: codex_home.join(AUTH_FILE),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn path_text(&self) -> String {
        self.path.display().to_string()
    }

    /// The cheap freshness check: `stat`, no parsing. `None` when the file is missing.
    pub(crate) fn identity(&self) -> Option<SourceIdentity> {
        fs::metadata(&self.path)
            .ok()
            .map(|m| SourceIdentity::of(&m))
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
            .open(&self.path)?;
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
        Ok((identity, parse(&bytes, &self.path_text())))
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
        for _ in 0..MID_WRITE_READS {
            if !matches!(
                last.1,
                Err(SourceProblem::Empty { .. } | SourceProblem::NotJson { .. })
            ) {
                break;
            }
            std::thread::sleep(MID_WRITE_PAUSE);
            last = self.read_once()?;
        }
        Ok(last)
    }

    fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if let Ok(link) = fs::symlink_metadata(&self.path) {
            if link.file_type().is_symlink() {
                let target = fs::canonicalize(&self.path)
                    .map(|t| t.display().to_string())
                    .unwrap_or_else(|_| "a missing target".into());
                warnings.push(format!(
                    "{} is a symlink to {target}; keyward reads and rewrites the target",
                    self.path_text()
                ));
            }
        }
        if let Ok(meta) = fs::metadata(&self.path) {
            warnings.extend(crate::host::foreign_owner_warning(&meta, &self.path));
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

    /// Removes the file if it is there (the keyring store's cleanup after a save, as the CLI's).
    pub(crate) fn remove(&self) -> io::Result<bool> {
        match fs::remove_file(&self.path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// The document in `bytes`, or what is wrong with it (never quoting it) as a problem of `location`.
pub(crate) fn parse(bytes: &[u8], location: &str) -> Result<AuthDocument, SourceProblem> {
    if bytes.len() as u64 > MAX_AUTH_FILE_BYTES {
        return Err(SourceProblem::TooLarge {
            path: location.to_string(),
            size: bytes.len() as u64,
            limit: MAX_AUTH_FILE_BYTES,
        });
    }
    AuthDocument::parse(bytes).map_err(|e| problem(e, location))
}

/// A parse error as a problem of `location`.
pub(crate) fn problem(error: ParseError, location: &str) -> SourceProblem {
    let path = location.to_string();
    match error {
        ParseError::Empty => SourceProblem::Empty { path },
        ParseError::NotJson(detail) => SourceProblem::NotJson { path, detail },
        ParseError::BadShape(detail) => SourceProblem::BadShape { path, detail },
    }
}

impl AuthStorage for FileStorage {
    fn kind(&self) -> StoreKind {
        StoreKind::File
    }

    fn location(&self) -> String {
        self.path_text()
    }

    fn load(&self) -> Result<Loaded, StorageError> {
        let warnings = self.warnings();
        let (identity, document) = match self.read_document() {
            Ok((identity, document)) => (Some(identity), Some(document)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => (None, None),
            Err(source) => {
                return Err(StorageError::Io {
                    location: self.path_text(),
                    doing: "cannot read it",
                    source,
                })
            }
        };
        Ok(Loaded {
            store: StoreKind::File,
            location: self.path_text(),
            identity,
            document,
            warnings,
        })
    }

    fn save(&self, document: &AuthDocument) -> Result<(), StorageError> {
        atomic_file::replace(&self.path, &document.to_bytes(), ".auth-").map_err(|source| {
            StorageError::Io {
                location: self.path_text(),
                doing: "cannot write it",
                source,
            }
        })
    }

    fn delete(&self) -> Result<bool, StorageError> {
        self.remove().map_err(|source| StorageError::Io {
            location: self.path_text(),
            doing: "cannot remove it",
            source,
        })
    }
}
