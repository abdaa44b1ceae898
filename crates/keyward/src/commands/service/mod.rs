//! `keyward service install | uninstall | status`: keyward as a per-user service that starts at
//! login and restarts after a failure, run by the platform's own manager: a systemd user unit on
//! Linux ([`systemd`]), a launchd agent on macOS ([`launchd`]). Nothing needs root.
//!
//! The service runs this very binary (`current_exe`) with the invoking environment's keyward
//! home, Codex home and config file, so it serves what `keyward status` shows. Secrets in that
//! environment (gateway keys, API keys) are not written into the unit, which other users may be
//! able to read; the user is told where to put them instead.

mod launchd;
mod systemd;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;

use crate::cli::exit;
use crate::codex::provider::CodexSettings;
use crate::commands::UserDirs;
use crate::config::{self, Config, ProcessEnv};
use crate::env::Env;
use crate::provider;

#[derive(Debug, clap::Args)]
pub struct ServiceArgs {
    #[command(subcommand)]
    action: ServiceAction,
    /// The service manager (default: this platform's; launchd can be printed anywhere).
    #[arg(long, value_enum, global = true, hide = true)]
    manager: Option<Manager>,
}

#[derive(Debug, clap::Subcommand)]
pub enum ServiceAction {
    /// Write the service, enable it and start it (again, after a change); safe to repeat.
    Install {
        /// Show what would be written and run, and do nothing.
        #[arg(long)]
        print: bool,
    },
    /// Stop and disable the service and remove exactly what `install` wrote.
    Uninstall {
        /// Show what would be removed and run, and do nothing.
        #[arg(long)]
        print: bool,
    },
    /// Whether the service is installed, enabled and running.
    Status,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Manager {
    Systemd,
    Launchd,
}

impl Manager {
    fn native() -> Self {
        if cfg!(target_os = "macos") {
            Manager::Launchd
        } else {
            Manager::Systemd
        }
    }
}

/// What the service runs, and with what.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    /// This binary.
    pub exe: PathBuf,
    /// `serve`, and `--config PATH` when a config file was named.
    pub args: Vec<String>,
    /// The environment it runs with (no secret).
    pub env: Vec<(String, String)>,
    /// Where it writes: keyward's home and every Codex home.
    pub writable: Vec<PathBuf>,
    pub keyward_home: PathBuf,
    /// What the user should know (secrets of the environment the service will not have).
    pub warnings: Vec<String>,
}

/// Variables passed on to the service when set: where keyward keeps and finds things, how it
/// logs. Never a secret.
const PASSED_ON: &[&str] = &[
    crate::codex::TOKEN_URL_ENV,
    crate::codex::BASE_URL_ENV,
    crate::openai::BASE_URL_ENV,
    crate::anthropic::BASE_URL_ENV,
    "KEYWARD_LOG",
    "KEYWARD_LOG_FORMAT",
];

#[derive(Debug, thiserror::Error)]
pub(crate) enum ServiceError {
    #[error("cannot tell where this keyward binary is: {0}")]
    Exe(#[source] std::io::Error),
    #[error("cannot tell the current directory, to make {0} absolute")]
    Cwd(String),
    #[error(transparent)]
    Dirs(#[from] crate::commands::user_dirs::NoHome),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot remove {path}: {source}")]
    Remove {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} was not written by `keyward service install`; it is left as it is. To fix: remove it yourself if it is not needed")]
    NotOurs { path: String },
    #[error("`{command}` failed: {detail}")]
    Command { command: String, detail: String },
    #[error(transparent)]
    Host(#[from] crate::host::HostError),
}

fn absolute(path: &Path) -> Result<PathBuf, ServiceError> {
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    std::env::current_dir()
        .map(|cwd| cwd.join(path))
        .map_err(|_| ServiceError::Cwd(path.display().to_string()))
}

/// The service's command line and environment, from the invoking environment and config.
pub(crate) fn spec(
    env: &dyn Env,
    config: &Config,
    explicit_config: Option<&Path>,
) -> Result<Spec, ServiceError> {
    let exe = std::env::current_exe().map_err(ServiceError::Exe)?;
    let exe = exe.canonicalize().unwrap_or(exe);
    let keyward_home = absolute(&config.keyward_home)?;
    let mut args = vec!["serve".to_string()];
    if let Some(path) = explicit_config {
        args.push("--config".into());
        args.push(absolute(path)?.display().to_string());
    }
    let mut vars = vec![(
        config::HOME_ENV.to_string(),
        keyward_home.display().to_string(),
    )];
    for name in [config::CONFIG_ENV, crate::codex::HOME_ENV] {
        if let Some(value) = env.get(name) {
            vars.push((
                name.into(),
                absolute(Path::new(&value))?.display().to_string(),
            ));
        }
    }
    for name in PASSED_ON {
        if let Some(value) = env.get(name) {
            vars.push(((*name).into(), value));
        }
    }
    let mut writable = vec![keyward_home.clone()];
    for settings in provider::settings_of::<CodexSettings>(config.providers()) {
        for profile in &settings.profiles {
            let home = absolute(&profile.home)?;
            if !writable.contains(&home) {
                writable.push(home);
            }
        }
    }
    let mut warnings = Vec::new();
    if env.get(config::API_KEYS_ENV).is_some() {
        warnings.push(format!(
            "{} is set here but is not written into the service (its file is not a place for secrets): put the keys in [gateway] api_keys of {} (mode 0600), or the service runs without gateway keys",
            config::API_KEYS_ENV,
            config.config_path.display()
        ));
    }
    for profile in config.api_profiles() {
        if let Some(variable) = profile.origin.strip_prefix('$') {
            warnings.push(format!(
                "{} takes its key from ${variable}, which the service will not have: name the key in {} instead (api_key, with the file 0600)",
                profile.id,
                config.config_path.display()
            ));
        }
    }
    Ok(Spec {
        exe,
        args,
        env: vars,
        writable,
        keyward_home,
        warnings,
    })
}

/// The service's state, for `service status`, `keyward status` and `doctor`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ServiceState {
    /// `systemd user unit` or `launchd agent`.
    pub manager: &'static str,
    /// Its file.
    pub path: PathBuf,
    pub installed: bool,
    /// Whether the manager can be reached (a container may have no systemd user instance).
    pub available: bool,
    pub enabled: Option<bool>,
    pub active: Option<bool>,
    /// The file differs from what `install` would write now (the binary moved, the homes changed).
    pub outdated: bool,
    /// What the manager said, when it says why.
    pub detail: Option<String>,
}

impl ServiceState {
    /// One line: "systemd user unit: installed, enabled, active (~/.config/systemd/user/keyward.service)".
    pub(crate) fn summary(&self) -> String {
        let mut words = Vec::new();
        if !self.installed {
            words.push("not installed".to_string());
        } else {
            words.push("installed".to_string());
            let word = |known: Option<bool>, yes: &str, no: &str| match known {
                Some(true) => yes.to_string(),
                Some(false) => no.to_string(),
                None => format!("{yes}: unknown"),
            };
            words.push(word(self.enabled, "enabled", "disabled"));
            words.push(word(self.active, "active", "inactive"));
            if self.outdated {
                words.push("outdated (run `keyward service install` again)".into());
            }
        }
        if !self.available {
            words.push(format!("{} unavailable", self.manager_name()));
        }
        format!(
            "{}: {} ({})",
            self.manager,
            words.join(", "),
            self.path.display()
        )
    }

    fn manager_name(&self) -> &'static str {
        if self.manager.starts_with("launchd") {
            "launchctl"
        } else {
            "systemd's user instance"
        }
    }

    /// Installed, enabled and running.
    pub(crate) fn healthy(&self) -> bool {
        self.installed && self.enabled == Some(true) && self.active == Some(true)
    }
}

/// The state of the service of this platform, as configured for the invoking environment.
pub(crate) fn state(
    env: &dyn Env,
    config: &Config,
    explicit_config: Option<&Path>,
) -> Option<ServiceState> {
    let dirs = UserDirs::from_env(env).ok()?;
    let spec = spec(env, config, explicit_config).ok()?;
    Some(match Manager::native() {
        Manager::Systemd => systemd::state(&dirs, &spec),
        Manager::Launchd => launchd::state(&dirs, &spec),
    })
}

pub(crate) fn run(args: ServiceArgs, explicit_config: Option<&Path>) -> u8 {
    let env = ProcessEnv;
    let (config, dirs) = match super::load(explicit_config) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let spec = match spec(&env, &config, explicit_config) {
        Ok(spec) => spec,
        Err(e) => {
            eprintln!("keyward: {e}");
            return exit::FAILURE;
        }
    };
    let manager = args.manager.unwrap_or_else(Manager::native);
    let result = match (manager, args.action) {
        (Manager::Systemd, ServiceAction::Install { print }) => {
            systemd::install(&dirs, &spec, print)
        }
        (Manager::Systemd, ServiceAction::Uninstall { print }) => systemd::uninstall(&dirs, print),
        (Manager::Launchd, ServiceAction::Install { print }) => {
            launchd::install(&dirs, &spec, print)
        }
        (Manager::Launchd, ServiceAction::Uninstall { print }) => launchd::uninstall(&dirs, print),
        (manager, ServiceAction::Status) => {
            let state = match manager {
                Manager::Systemd => systemd::state(&dirs, &spec),
                Manager::Launchd => launchd::state(&dirs, &spec),
            };
            println!("{}", state.summary());
            if let Some(detail) = &state.detail {
                println!("  {detail}");
            }
            return if !state.installed || state.healthy() {
                exit::OK
            } else {
                exit::FAILURE
            };
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("keyward: {e}");
            exit::FAILURE
        }
    }
}

/// Runs a manager's command; its output, or what went wrong.
fn command(program: &str, args: &[&str]) -> Result<String, ServiceError> {
    let text = format!("{program} {}", args.join(" "));
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| ServiceError::Command {
            command: text.clone(),
            detail: e.to_string(),
        })?;
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).trim().to_string());
    }
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_string();
    Err(ServiceError::Command {
        command: text,
        detail: if stderr.is_empty() { stdout } else { stderr },
    })
}

/// Writes a service file (not a secret: mode 0644, as managers expect), atomically.
fn write_file(path: &Path, text: &str) -> Result<(), ServiceError> {
    use std::os::unix::fs::PermissionsExt;
    let error = |source| ServiceError::Write {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(error)?;
    }
    crate::atomic_file::replace(path, text.as_bytes(), ".keyward-service-").map_err(error)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).map_err(error)
}

/// Removes a service file `install` wrote (it carries `marker`); another is left alone.
fn remove_file(path: &Path, marker: &str) -> Result<bool, ServiceError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(source) => {
            return Err(ServiceError::Remove {
                path: path.display().to_string(),
                source,
            })
        }
    };
    if !text.contains(marker) {
        return Err(ServiceError::NotOurs {
            path: path.display().to_string(),
        });
    }
    std::fs::remove_file(path).map_err(|source| ServiceError::Remove {
        path: path.display().to_string(),
        source,
    })?;
    Ok(true)
}

fn print_warnings(spec: &Spec) {
    for warning in &spec.warnings {
        eprintln!("keyward: warning: {warning}");
    }
}

/// keyward's home (mode 0700, as keyward makes it) and each Codex home, so the read-write paths
/// exist when the unit starts (the Codex CLI makes its home the same way at its first login).
fn prepare_dirs(spec: &Spec) -> Result<(), ServiceError> {
    use std::os::unix::fs::DirBuilderExt;
    for warning in crate::host::prepare_home(&spec.keyward_home)? {
        eprintln!("keyward: warning: {warning}");
    }
    for dir in spec.writable.iter().filter(|d| **d != spec.keyward_home) {
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|source| ServiceError::Write {
                    path: dir.display().to_string(),
                    source,
                })?;
        }
    }
    Ok(())
}
