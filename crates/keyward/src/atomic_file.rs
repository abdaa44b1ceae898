//! Atomic replacement of files that hold secrets: a temp file in the same directory (mode 0600),
//! fsync, rename over the target, fsync the directory. A reader sees the old file or the new one,
//! never a torn mix, and a crash at any instant leaves one of the two on disk.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The file a write to `path` must replace: a symlink's final target, so that the user's link
/// survives and its target gets the new content.
pub(crate) fn write_target(path: &Path) -> io::Result<PathBuf> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => fs::canonicalize(path),
        _ => Ok(path.to_path_buf()),
    }
}

/// Replaces `path` with `contents`, leaving it with mode 0600. `temp_prefix` names the temp file
/// (the Codex CLI uses `.auth-`, so a crash leaves a file a user recognises).
///
/// A file of another user's is refused, not replaced: the new file would be this user's, so the
/// replacement would take it from its owner (and a link to it may be a trap).
pub(crate) fn replace(path: &Path, contents: &[u8], temp_prefix: &str) -> io::Result<()> {
    let target = write_target(path)?;
    if let Ok(meta) = fs::metadata(&target) {
        let ours = crate::host::our_uid();
        if meta.uid() != ours {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{} belongs to another user (uid {}); keyward does not replace another user's file, since the new one would be yours (uid {ours}). To fix: make the login file your own, or point CODEX_HOME at a home of yours",
                    target.display(),
                    meta.uid()
                ),
            ));
        }
    }
    let dir = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // tempfile creates with O_EXCL and mode 0600.
    let mut temp = tempfile::Builder::new()
        .prefix(temp_prefix)
        .tempfile_in(dir)?;
    temp.write_all(contents)?;
    temp.as_file().sync_all()?;
    temp.persist(&target).map_err(|e| e.error)?;
    sync_dir(dir)
}

pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn replaces_with_mode_0600_and_leaves_no_temp() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("auth.json");
        fs::write(&path, b"old")?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644))?;
        replace(&path, b"new", ".auth-")?;
        assert_eq!(fs::read(&path)?, b"new");
        assert_eq!(fs::metadata(&path)?.permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::read_dir(dir.path())?.count(), 1);
        Ok(())
    }

    /// A link to another user's file is refused, and the file keeps its owner and content.
    #[test]
    fn refuses_to_replace_another_users_file() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let theirs = dir.path().join("theirs.json");
        let link = dir.path().join("auth.json");
        fs::write(&theirs, b"theirs")?;
        if std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).is_err() {
            eprintln!("skipped: giving a file to another user needs root");
            return Ok(());
        }
        std::os::unix::fs::symlink(&theirs, &link)?;
        let refused = replace(&link, b"mine", ".auth-").err();
        assert_eq!(
            refused.as_ref().map(io::Error::kind),
            Some(io::ErrorKind::PermissionDenied),
            "{refused:?}"
        );
        assert!(refused
            .map(|e| e.to_string().contains("another user"))
            .unwrap_or(false));
        assert_eq!(fs::read(&theirs)?, b"theirs");
        assert_eq!(fs::metadata(&theirs)?.uid(), 65534);
        assert_eq!(fs::read_dir(dir.path())?.count(), 2, "no temp file left");
        Ok(())
    }

    #[test]
    fn writes_through_a_symlink_to_its_target() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let real = dir.path().join("real.json");
        let link = dir.path().join("auth.json");
        fs::write(&real, b"old")?;
        std::os::unix::fs::symlink(&real, &link)?;
        replace(&link, b"new", ".auth-")?;
        assert!(fs::symlink_metadata(&link)?.file_type().is_symlink());
        assert_eq!(fs::read(&real)?, b"new");
        Ok(())
    }
}
