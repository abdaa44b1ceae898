//! The commands that set keyward up on a machine and check it: `doctor`, `service`, `setup`, and
//! the shell completions and man page. Each lives in its own module; `cli` parses and dispatches.

pub(crate) mod doctor;
pub(crate) mod extras;
pub(crate) mod service;
pub(crate) mod setup;
mod user_dirs;

pub(crate) use user_dirs::UserDirs;
