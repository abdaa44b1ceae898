//! What keyward checks of the machine before it trusts a file.
//!
//! keyward's home holds the ledger and journal (refresh tokens pass through the journal) and the
//! config file (which names the token endpoint refresh tokens are sent to). Another local user who
//! can write there could plant a config that sends the user's tokens to them, or swap the store.
//! So the home must be the user's own and writable by nobody else, and every file keyward reads
//! or writes there must be the user's.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Names keyward itself keeps in its home.
const OWN_FILES: &[&str] = &[
    "keyward.db",
    "keyward.db-wal",
    "keyward.db-shm",
    "keyward.db-journal",
    "config.toml",
    // The launchd agent's log (`keyward service install` on macOS).
    "keyward.log",
];

#[derive(Debug, thiserror::Error)]
pub(crate) enum HostError {
    #[error("{path} belongs to another user (uid {owner}); keyward keeps tokens there and will only use a directory of its own user's. To fix: point KEYWARD_HOME at a directory you own")]
    NotOurs { path: String, owner: u32 },
    #[error("{path} can be written by other users (mode {mode:03o}), so another user could plant a config that sends your tokens elsewhere. To fix: `chmod 700 {path}`, or check who else wrote there")]
    Writable { path: String, mode: u32 },
    #[error("{path} is not a directory")]
    NotADirectory { path: String },
    #[error("{path} is not a regular file")]
    NotAFile { path: String },
    #[error("{path} is a symbolic link; keyward keeps tokens in its store and uses only its own files there, never a link whose target someone could change. To fix: put the file itself there (`mv` the target over the link)")]
    Symlink { path: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> HostError + '_ {
    move |source| HostError::Io {
        path: path.display().to_string(),
        source,
    }
}

pub(crate) fn our_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Creates keyward's home (mode 0700) or checks the existing one: owned by this user and not
/// writable by group or others. A home keyward made (everything in it is keyward's and this
/// user's) whose mode was loosened is repaired, with a warning; any other is refused.
pub(crate) fn prepare_home(dir: &Path) -> Result<Vec<String>, HostError> {
    match fs::metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io_error(dir))?;
            // The umask may have narrowed the mode further, never widened it; set it exactly.
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io_error(dir))?;
            Ok(Vec::new())
        }
        Err(e) => Err(io_error(dir)(e)),
        Ok(meta) if !meta.is_dir() => Err(HostError::NotADirectory {
            path: dir.display().to_string(),
        }),
        Ok(meta) => {
            if meta.uid() != our_uid() {
                return Err(HostError::NotOurs {
                    path: dir.display().to_string(),
                    owner: meta.uid(),
                });
            }
            let mode = meta.mode() & 0o777;
            if mode & 0o022 == 0 {
                return Ok(Vec::new());
            }
            if !only_our_files(dir)? {
                return Err(HostError::Writable {
                    path: dir.display().to_string(),
                    mode,
                });
            }
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io_error(dir))?;
            Ok(vec![format!(
                "{} was writable by other users (mode {mode:03o}); keyward set it to 700 (everything in it is keyward's and yours, so nothing was planted)",
                dir.display()
            )])
        }
    }
}

/// Whether every entry of `dir` is one of keyward's files, a regular file owned by this user.
/// Another user can plant files in a writable directory but cannot make them ours.
fn only_our_files(dir: &Path) -> Result<bool, HostError> {
    for entry in fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        let name = entry.file_name();
        let meta = entry.path().symlink_metadata().map_err(io_error(dir))?;
        let ours = OWN_FILES.iter().any(|own| name == *own)
            && meta.file_type().is_file()
            && meta.uid() == our_uid();
        if !ours {
            return Ok(false);
        }
    }
    Ok(true)
}

/// A file keyward trusts (its config, its store): a regular file of this user's that nobody else
/// can write. A missing file passes (the caller decides whether it must exist).
pub(crate) fn check_own_file(path: &Path) -> Result<(), HostError> {
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_error(path)(e)),
    };
    if !meta.is_file() {
        return Err(HostError::NotAFile {
            path: path.display().to_string(),
        });
    }
    if meta.uid() != our_uid() {
        return Err(HostError::NotOurs {
            path: path.display().to_string(),
            owner: meta.uid(),
        });
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o022 != 0 {
        return Err(HostError::Writable {
            path: path.display().to_string(),
            mode,
        });
    }
    Ok(())
}

/// A warning when a credential file belongs to another user: keyward still reads it (the user may
/// share a login on purpose) but says so.
pub(crate) fn foreign_owner_warning(meta: &fs::Metadata, path: &Path) -> Option<String> {
    (meta.uid() != our_uid()).then(|| {
        format!(
            "{} belongs to another user (uid {}); that user can read and replace this login",
            path.display(),
            meta.uid()
        )
    })
}

/// A store file (the database, its WAL and shared memory): not a symbolic link (whoever can
/// change the link's target decides where tokens are written), and, when it exists, a file of
/// this user's that nobody else can write.
pub(crate) fn check_store_file(path: &Path) -> Result<(), HostError> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(HostError::Symlink {
            path: path.display().to_string(),
        }),
        _ => check_own_file(path),
    }
}

/// The store files beside `db`, which must all be this user's.
pub(crate) fn store_files(db: &Path) -> Vec<PathBuf> {
    ["", "-wal", "-shm"]
        .iter()
        .map(|suffix| {
            let mut name = db.as_os_str().to_owned();
            name.push(suffix);
            PathBuf::from(name)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).map(|m| m.mode() & 0o777).unwrap_or(0)
    }

    /// A new home is created 0700; a loosened home with only keyward's files is repaired; one
    /// holding anything else is refused with the remedy.
    #[test]
    fn homes_are_created_repaired_or_refused() -> Result<(), Box<dyn std::error::Error>> {
        let root = tempfile::tempdir()?;
        let home = root.path().join("new/keyward");
        assert!(prepare_home(&home)?.is_empty());
        assert_eq!(mode(&home), 0o700);

        fs::write(home.join("keyward.db"), b"")?;
        fs::set_permissions(&home, fs::Permissions::from_mode(0o777))?;
        let warnings = prepare_home(&home)?;
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert_eq!(mode(&home), 0o700);

        fs::write(home.join("planted"), b"")?;
        fs::set_permissions(&home, fs::Permissions::from_mode(0o757))?;
        match prepare_home(&home) {
            Err(HostError::Writable { mode, .. }) => assert_eq!(mode, 0o757),
            other => panic!("expected a refusal, got {other:?}"),
        }
        let message = prepare_home(&home)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(message.contains("chmod 700"), "{message}");
        Ok(())
    }

    /// A config file others can write is refused; a missing one passes.
    #[test]
    fn own_files() -> Result<(), Box<dyn std::error::Error>> {
        let root = tempfile::tempdir()?;
        let file = root.path().join("config.toml");
        check_own_file(&file)?;
        fs::write(&file, b"")?;
        fs::set_permissions(&file, fs::Permissions::from_mode(0o600))?;
        check_own_file(&file)?;
        fs::set_permissions(&file, fs::Permissions::from_mode(0o666))?;
        assert!(matches!(
            check_own_file(&file),
            Err(HostError::Writable { .. })
        ));
        assert!(matches!(
            check_own_file(root.path()),
            Err(HostError::NotAFile { .. })
        ));
        Ok(())
    }
}
