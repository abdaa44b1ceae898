//! The commands that set keyward up on a machine and check it: `login` and `logout`, `doctor`,
//! `service`, `setup`, and the shell completions and man page. Each lives in its own module; `cli`
//! parses and dispatches.

pub(crate) mod doctor;
pub(crate) mod extras;
pub(crate) mod login;
pub(crate) mod service;
pub(crate) mod setup;
pub(crate) mod usage;
mod user_dirs;

use std::path::Path;

use crate::cli::exit;
use crate::config::{Config, ProcessEnv};

pub(crate) use user_dirs::UserDirs;

/// The config and the user's directories a command works with; when either cannot be had, the
/// error is printed and the exit status returned (a usage error, as for every command).
fn load(explicit_config: Option<&Path>) -> Result<(Config, UserDirs), u8> {
    let config = Config::load(&ProcessEnv, explicit_config).map_err(|e| {
        eprintln!("keyward: {e}");
        exit::USAGE
    })?;
    let dirs = UserDirs::from_env(&ProcessEnv).map_err(|e| {
        eprintln!("keyward: {e}");
        exit::USAGE
    })?;
    Ok((config, dirs))
}
