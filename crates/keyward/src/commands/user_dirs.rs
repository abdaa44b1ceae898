//! Where the user's tools keep their settings: the home directory and the XDG config directory,
//! read through the [`Env`] seam so tests point them at a temp directory.

use std::path::{Path, PathBuf};

use crate::env::Env;

#[derive(Debug, Clone)]
pub(crate) struct UserDirs {
    pub home: PathBuf,
    /// `$XDG_CONFIG_HOME`, else `~/.config`.
    pub config: PathBuf,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot find your home directory: set HOME")]
pub(crate) struct NoHome;

impl UserDirs {
    pub(crate) fn from_env(env: &dyn Env) -> Result<Self, NoHome> {
        let home = PathBuf::from(env.get("HOME").ok_or(NoHome)?);
        let config = env
            .get("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            // The XDG spec ignores a relative value.
            .filter(|p| p.is_absolute())
            .unwrap_or_else(|| home.join(".config"));
        Ok(Self { home, config })
    }

    /// Whether `program` is an executable file in one of `$PATH`'s directories.
    pub(crate) fn on_path(env: &dyn Env, program: &str) -> bool {
        use std::os::unix::fs::PermissionsExt;
        let Some(path) = env.get("PATH") else {
            return false;
        };
        std::env::split_paths(&path).any(|dir| {
            std::fs::metadata(Path::new(&dir).join(program))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    }
}
