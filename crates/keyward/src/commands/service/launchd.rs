//! The launchd agent on macOS: `~/Library/LaunchAgents/dev.keyward.plist`, loaded into the user's
//! GUI domain (`gui/<uid>`), started at load (so at login), restarted when it exits with a
//! failure, logging to `keyward.log` in keyward's home.

use std::path::PathBuf;

use plist::{Dictionary, Value};

use super::{
    command, prepare_dirs, print_warnings, remove_file, write_file, ServiceError, ServiceState,
    Spec,
};
use crate::cli::exit;
use crate::commands::UserDirs;

pub(super) const LABEL: &str = "dev.keyward";
/// Seconds launchd waits after SIGTERM: requests finish (30 s), a refresh keeps its answer.
const EXIT_TIMEOUT: i64 = 90;

pub(super) fn plist_path(dirs: &UserDirs) -> PathBuf {
    dirs.home
        .join("Library")
        .join("LaunchAgents")
        .join(format!("{LABEL}.plist"))
}

pub(super) fn log_path(spec: &Spec) -> PathBuf {
    spec.keyward_home.join("keyward.log")
}

/// The agent's property list for `spec`, as XML.
pub(super) fn plist(spec: &Spec) -> String {
    let strings = |items: Vec<String>| Value::Array(items.into_iter().map(Value::String).collect());
    let mut environment = Dictionary::new();
    for (key, value) in &spec.env {
        environment.insert(key.clone(), Value::String(value.clone()));
    }
    let mut keep_alive = Dictionary::new();
    // Restarted when it exits with a failure; a clean stop (launchctl bootout) stays stopped.
    keep_alive.insert("SuccessfulExit".into(), Value::Boolean(false));
    let log = log_path(spec).display().to_string();
    let mut agent = Dictionary::new();
    agent.insert("Label".into(), Value::String(LABEL.into()));
    agent.insert(
        "ProgramArguments".into(),
        strings(
            std::iter::once(spec.exe.display().to_string())
                .chain(spec.args.iter().cloned())
                .collect(),
        ),
    );
    agent.insert(
        "EnvironmentVariables".into(),
        Value::Dictionary(environment),
    );
    agent.insert("RunAtLoad".into(), Value::Boolean(true));
    agent.insert("KeepAlive".into(), Value::Dictionary(keep_alive));
    agent.insert("ExitTimeOut".into(), Value::Integer(EXIT_TIMEOUT.into()));
    agent.insert("StandardOutPath".into(), Value::String(log.clone()));
    agent.insert("StandardErrorPath".into(), Value::String(log));
    let mut bytes = Vec::new();
    // Writing a dictionary of strings, numbers and booleans into memory cannot fail.
    let _ = Value::Dictionary(agent).to_writer_xml(&mut bytes);
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    text.push('\n');
    text
}

fn domain() -> String {
    format!("gui/{}", crate::host::our_uid())
}

fn service() -> String {
    format!("{}/{LABEL}", domain())
}

/// Whether launchd has the agent loaded, and whether it runs.
fn loaded() -> Option<bool> {
    command("launchctl", &["print", &service()])
        .ok()
        .map(|text| text.contains("state = running"))
}

pub(super) fn state(dirs: &UserDirs, spec: &Spec) -> ServiceState {
    let path = plist_path(dirs);
    let installed_text = std::fs::read_to_string(&path).ok();
    let available =
        command("launchctl", &["version"]).is_ok() || command("launchctl", &["help"]).is_ok();
    let running = if available { loaded() } else { None };
    ServiceState {
        manager: "launchd agent",
        installed: installed_text.is_some(),
        available,
        enabled: available.then_some(running.is_some()),
        active: available.then_some(running == Some(true)),
        outdated: installed_text
            .as_ref()
            .is_some_and(|text| *text != plist(spec)),
        detail: (!available).then(|| "launchctl cannot be run here".to_string()),
        path,
    }
}

pub(super) fn install(dirs: &UserDirs, spec: &Spec, print: bool) -> Result<u8, ServiceError> {
    let path = plist_path(dirs);
    let text = plist(spec);
    let path_text = path.display().to_string();
    if print {
        println!("# would write {path_text}");
        print!("{text}");
        println!(
            "# would run: launchctl enable {} && launchctl bootstrap {} {path_text} (after launchctl bootout {} if it is loaded)",
            service(),
            domain(),
            service()
        );
        print_warnings(spec);
        return Ok(exit::OK);
    }
    print_warnings(spec);
    prepare_dirs(spec)?;
    let changed = std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str());
    let was_loaded = loaded().is_some();
    if changed {
        write_file(&path, &text)?;
        if was_loaded {
            command("launchctl", &["bootout", &service()])?;
        }
    }
    command("launchctl", &["enable", &service()])?;
    if changed || !was_loaded {
        command("launchctl", &["bootstrap", &domain(), &path_text])?;
        println!("installed {path_text} and started it");
    } else {
        println!("{path_text} was already installed and loaded");
    }
    println!(
        "  logs: {}; state: keyward service status",
        log_path(spec).display()
    );
    Ok(exit::OK)
}

pub(super) fn uninstall(dirs: &UserDirs, print: bool) -> Result<u8, ServiceError> {
    let path = plist_path(dirs);
    if print {
        println!("# would run: launchctl bootout {}", service());
        println!("# would remove {}", path.display());
        return Ok(exit::OK);
    }
    if !path.exists() {
        println!("not installed ({} does not exist)", path.display());
        return Ok(exit::OK);
    }
    if loaded().is_some() {
        command("launchctl", &["bootout", &service()])?;
    }
    remove_file(&path, LABEL)?;
    println!("stopped and removed {}", path.display());
    Ok(exit::OK)
}
