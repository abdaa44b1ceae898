//! The systemd user unit: `$XDG_CONFIG_HOME/systemd/user/keyward.service`, enabled for
//! `default.target` (started when the user's manager starts, at login), restarted on failure,
//! logging to the journal (`journalctl --user -u keyward`).
//!
//! Hardened without breaking what keyward must do: no new privileges, a private /tmp, the file
//! system read-only except keyward's home and each Codex home (keyward rewrites `auth.json` and
//! takes the CLI's lock files there). A user manager applies these through a user namespace.

use std::path::PathBuf;

use super::{
    command, prepare_dirs, print_warnings, remove_file, write_file, ServiceError, ServiceState,
    Spec,
};
use crate::cli::exit;
use crate::commands::UserDirs;

pub(super) const UNIT: &str = "keyward.service";
/// The first line of every unit `install` writes: `uninstall` removes only such a file.
const MARKER: &str = "# Written by `keyward service install`";

pub(super) fn unit_path(dirs: &UserDirs) -> PathBuf {
    dirs.config.join("systemd").join("user").join(UNIT)
}

/// `text` as one word of a unit file: quoted, with `%` (specifiers) and, where the line expands
/// variables, `$` doubled.
fn word(text: &str, dollars: bool) -> String {
    let mut quoted = String::from("\"");
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                quoted.push('\\');
                quoted.push(c);
            }
            '%' => quoted.push_str("%%"),
            '$' if dollars => quoted.push_str("$$"),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// The unit for `spec`.
pub(super) fn unit(spec: &Spec) -> String {
    let exec: Vec<String> = std::iter::once(spec.exe.display().to_string())
        .chain(spec.args.iter().cloned())
        .map(|w| word(&w, true))
        .collect();
    let environment: String = spec
        .env
        .iter()
        .map(|(k, v)| format!("Environment={}\n", word(&format!("{k}={v}"), false)))
        .collect();
    // `-`: a path that does not exist when the service starts is left out instead of failing it.
    let writable: Vec<String> = spec
        .writable
        .iter()
        .map(|p| word(&format!("-{}", p.display()), false))
        .collect();
    format!(
        "{MARKER}; `keyward service uninstall` removes it.
[Unit]
Description=keyward: lends your coding CLI's login to local HTTP APIs

[Service]
Type=exec
ExecStart={exec}
{environment}Restart=on-failure
RestartSec=2
# A configuration error (exit 2) stays one until the config is fixed.
RestartPreventExitStatus=2
# A stop lets requests finish (shutdown_timeout, 30 s) and a refresh in flight keep its answer.
TimeoutStopSec=90
NoNewPrivileges=yes
PrivateTmp=yes
ProtectSystem=strict
ReadWritePaths={writable}

[Install]
WantedBy=default.target
",
        exec = exec.join(" "),
        writable = writable.join(" "),
    )
}

/// systemctl's output, whatever its exit status; `None` when it cannot be run.
fn query(args: &[&str]) -> Option<String> {
    let output = std::process::Command::new("systemctl")
        .args(args)
        .output()
        .ok()?;
    Some(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// Whether the user's systemd instance answers; otherwise why not.
fn available() -> Result<(), String> {
    command("systemctl", &["--user", "show", "--property=Version"])
        .map(drop)
        .map_err(|e| e.to_string())
}

pub(super) fn state(dirs: &UserDirs, spec: &Spec) -> ServiceState {
    let path = unit_path(dirs);
    let installed_text = std::fs::read_to_string(&path).ok();
    let availability = available();
    let (enabled, active) = if availability.is_ok() && installed_text.is_some() {
        (
            query(&["--user", "is-enabled", UNIT]).map(|s| s == "enabled"),
            query(&["--user", "is-active", UNIT]).map(|s| s == "active"),
        )
    } else {
        (None, None)
    };
    ServiceState {
        manager: "systemd user unit",
        installed: installed_text.is_some(),
        available: availability.is_ok(),
        enabled,
        active,
        outdated: installed_text
            .as_ref()
            .is_some_and(|text| *text != unit(spec)),
        detail: availability.err(),
        path,
    }
}

pub(super) fn install(dirs: &UserDirs, spec: &Spec, print: bool) -> Result<u8, ServiceError> {
    let path = unit_path(dirs);
    let text = unit(spec);
    if print {
        println!("# would write {}", path.display());
        print!("{text}");
        println!("# would run: systemctl --user daemon-reload && systemctl --user enable {UNIT} && systemctl --user restart {UNIT}");
        print_warnings(spec);
        return Ok(exit::OK);
    }
    print_warnings(spec);
    if let Err(why) = available() {
        eprintln!("keyward: systemd's user instance is not available here ({why}), so no service was installed.");
        eprintln!("keyward: this is the unit it would run (`keyward service install --print` shows it again):");
        print!("{text}");
        eprintln!("keyward: run keyward another way: `keyward serve` in a terminal or tmux, `nohup keyward serve >> {} 2>&1 &`, or your container's process manager with the command {} and the environment above.",
            spec.keyward_home.join("keyward.log").display(),
            std::iter::once(spec.exe.display().to_string()).chain(spec.args.iter().cloned()).collect::<Vec<_>>().join(" "));
        return Ok(exit::FAILURE);
    }
    prepare_dirs(spec)?;
    let changed = std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str());
    if changed {
        write_file(&path, &text)?;
        command("systemctl", &["--user", "daemon-reload"])?;
        command("systemctl", &["--user", "enable", UNIT])?;
        command("systemctl", &["--user", "restart", UNIT])?;
        println!("installed {} and started it", path.display());
    } else {
        command("systemctl", &["--user", "enable", "--now", UNIT])?;
        println!(
            "{} was already installed; it is enabled and started",
            path.display()
        );
    }
    println!("  logs: journalctl --user -u keyward; state: keyward service status");
    println!("  it starts when you log in; to start it at boot without a login: loginctl enable-linger $USER");
    Ok(exit::OK)
}

pub(super) fn uninstall(dirs: &UserDirs, print: bool) -> Result<u8, ServiceError> {
    let path = unit_path(dirs);
    if print {
        println!("# would run: systemctl --user disable --now {UNIT}");
        println!("# would remove {}", path.display());
        println!("# would run: systemctl --user daemon-reload");
        return Ok(exit::OK);
    }
    if !path.exists() {
        println!("not installed ({} does not exist)", path.display());
        return Ok(exit::OK);
    }
    let manager = available();
    if manager.is_ok() {
        command("systemctl", &["--user", "disable", "--now", UNIT])?;
    }
    remove_file(&path, MARKER)?;
    match manager {
        Ok(()) => {
            command("systemctl", &["--user", "daemon-reload"])?;
            println!("stopped, disabled and removed {}", path.display());
        }
        Err(why) => println!(
            "removed {} (systemd's user instance is not available here: {why})",
            path.display()
        ),
    }
    Ok(exit::OK)
}
