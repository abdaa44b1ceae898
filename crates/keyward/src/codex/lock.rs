//! The Codex CLI's cross-process locks: `auth.lock`, then `auth.json.lock`, both `flock(LOCK_EX)`.
//!
//! The CLI takes `auth.lock` blocking and then `auth.json.lock` non-blocking around every write of
//! `auth.json`. Taking both in the same order serialises keyward's read-check-write with the CLI's
//! write-back and with other keyward processes: whoever holds `auth.lock` is the only one that
//! reaches for `auth.json.lock`, so the CLI's non-blocking attempt never fails because of keyward.

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::credential::{SourceError, SourceGuard};

pub(crate) const OUTER_LOCK: &str = "auth.lock";
pub(crate) const INNER_LOCK: &str = "auth.json.lock";

/// Both locks, held until dropped (closing the descriptors releases the flocks).
pub(crate) struct CodexLockGuard {
    _outer: File,
    _inner: File,
}

impl SourceGuard for CodexLockGuard {}

pub(crate) fn acquire(codex_home: &Path, timeout: Duration) -> Result<CodexLockGuard, SourceError> {
    let deadline = Instant::now() + timeout;
    let outer = lock_file(&codex_home.join(OUTER_LOCK), deadline, timeout)?;
    let inner = lock_file(&codex_home.join(INNER_LOCK), deadline, timeout)?;
    Ok(CodexLockGuard {
        _outer: outer,
        _inner: inner,
    })
}

/// Polls `try_lock` rather than blocking in `flock`, so a stuck holder turns into a clear error
/// instead of a thread parked forever.
fn lock_file(path: &PathBuf, deadline: Instant, timeout: Duration) -> Result<File, SourceError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|source| SourceError::Io {
            path: path.display().to_string(),
            doing: "cannot open lock file",
            source,
        })?;
    let mut pause = Duration::from_millis(2);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(source)) => {
                return Err(SourceError::Io {
                    path: path.display().to_string(),
                    doing: "cannot lock",
                    source,
                })
            }
        }
        if Instant::now() >= deadline {
            return Err(SourceError::LockTimeout {
                path: path.display().to_string(),
                waited: timeout,
                holder: "a Codex CLI or another keyward",
            });
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A second holder waits for the first and times out with a message naming the lock.
    #[test]
    fn second_holder_waits_then_times_out() -> Result<(), SourceError> {
        let dir = tempfile::tempdir().map_err(|source| SourceError::Io {
            path: "tmp".into(),
            doing: "cannot make a directory",
            source,
        })?;
        let first = acquire(dir.path(), Duration::from_secs(1))?;
        match acquire(dir.path(), Duration::from_millis(30)) {
            Err(SourceError::LockTimeout { path, .. }) => assert!(path.ends_with(OUTER_LOCK)),
            other => panic!("expected a timeout, got {:?}", other.err()),
        }
        drop(first);
        acquire(dir.path(), Duration::from_millis(30)).map(drop)
    }
}
