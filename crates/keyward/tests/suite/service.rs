//! `keyward service` under a temp `HOME`/`XDG_CONFIG_HOME`, never the real user's: the unit
//! passes `systemd-analyze verify`, the launchd plist parses as a property list with the keys and
//! types launchd requires, and install / status / uninstall drive `systemctl --user` as they
//! should. The test machine has no systemd user instance, so a stand-in `systemctl` first on
//! `PATH` records the calls and keeps the unit's state; the real one's absence is also tested.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

/// A program that `peer_binary`-like skips without and fails under CI without.
fn system_program(name: &str, package: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{name} is not installed: CI must run scripts/install-peers (Debian's {package})"
        );
        eprintln!("SKIPPED: {name} is not installed; run ./scripts/install-peers");
    }
    found
}

/// The file text `install --print` shows (between "# would write" and "# would run").
fn printed_file(stdout: &str) -> String {
    stdout
        .lines()
        .skip_while(|l| !l.starts_with("# would write"))
        .skip(1)
        .take_while(|l| !l.starts_with("# would run"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// `keyward ARGS` with the temp XDG config directory, and `path_first` (a stand-in systemctl)
/// first on `PATH`.
fn keyward_with(
    home: &Home,
    mock: &Mock,
    args: &[&str],
    path_first: Option<&Path>,
) -> Result<std::process::Output> {
    let mut path = std::env::var("PATH").unwrap_or_default();
    if let Some(dir) = path_first {
        path = format!("{}:{path}", dir.display());
    }
    let config = home.root().join("xdg-config").display().to_string();
    run_keyward(
        home,
        mock,
        args,
        &[("PATH", &path), ("XDG_CONFIG_HOME", &config)],
    )
}

/// `keyward service ARGS` (see [`keyward_with`]).
fn service(
    home: &Home,
    mock: &Mock,
    args: &[&str],
    path_first: Option<&Path>,
) -> Result<std::process::Output> {
    let mut all = vec!["service"];
    all.extend_from_slice(args);
    keyward_with(home, mock, &all, path_first)
}

/// The unit `install --print` shows is valid for systemd (`systemd-analyze --user verify`, no
/// warning) and runs this binary with this environment's homes, hardened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_systemd_unit_verifies() -> Result<()> {
    let Some(analyze) = system_program("systemd-analyze", "systemd") else {
        return Ok(());
    };
    let mock = Mock::start().await?;
    let home = Home::new()?;
    let output = service(
        &home,
        &mock,
        &["install", "--print", "--manager", "systemd"],
        None,
    )?;
    assert!(output.status.success(), "{}", text_of(&output));
    let unit = printed_file(&String::from_utf8_lossy(&output.stdout));
    for line in [
        "Restart=on-failure",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "ProtectSystem=strict",
        "WantedBy=default.target",
    ] {
        assert!(unit.lines().any(|l| l == line), "{line} missing:\n{unit}");
    }
    assert!(
        unit.contains(&format!(
            "ExecStart=\"{}\" \"serve\"",
            keyward_bin().canonicalize()?.display()
        )),
        "{unit}"
    );
    assert!(
        unit.contains(&format!(
            "Environment=\"KEYWARD_HOME={}\"",
            home.keyward_home().display()
        )),
        "{unit}"
    );
    assert!(
        unit.contains(&format!(
            "Environment=\"CODEX_HOME={}\"",
            home.codex_home().display()
        )),
        "{unit}"
    );
    assert!(
        unit.contains(&format!("\"-{}\"", home.codex_home().display())),
        "read-write Codex home:\n{unit}"
    );
    assert!(
        !home.root().join("xdg-config/systemd").exists(),
        "--print wrote"
    );

    let dir = home.root().join("verify");
    std::fs::create_dir_all(&dir)?;
    let runtime = home.root().join("runtime");
    std::fs::create_dir_all(&runtime)?;
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700))?;
    std::fs::write(dir.join("keyward.service"), &unit)?;
    let verified = Command::new(analyze)
        .args(["--user", "verify"])
        .arg(dir.join("keyward.service"))
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("HOME", home.user_home())
        .output()?;
    assert!(verified.status.success(), "{}", text_of(&verified));
    assert!(verified.stderr.is_empty(), "{}", text_of(&verified));
    Ok(())
}

/// The launchd agent parses as a property list (Python's plistlib: Apple's DTD cannot be fetched
/// offline) with the keys launchd requires, of their types.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_launchd_plist_parses_with_the_keys_launchd_requires() -> Result<()> {
    let mock = Mock::start().await?;
    let home = Home::new()?;
    let output = service(
        &home,
        &mock,
        &["install", "--print", "--manager", "launchd"],
        None,
    )?;
    assert!(output.status.success(), "{}", text_of(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("Library/LaunchAgents/dev.keyward.plist"),
        "{stdout}"
    );
    let plist = printed_file(&stdout);
    let file = home.root().join("agent.plist");
    std::fs::write(&file, &plist)?;
    let script = r#"
import plistlib, sys
with open(sys.argv[1], "rb") as f:
    agent = plistlib.load(f, fmt=plistlib.FMT_XML)
assert agent["Label"] == "dev.keyward", agent
args = agent["ProgramArguments"]
assert isinstance(args, list) and all(isinstance(a, str) for a in args) and args[1] == "serve", args
assert agent["RunAtLoad"] is True
assert agent["KeepAlive"] == {"SuccessfulExit": False}, agent["KeepAlive"]
env = agent["EnvironmentVariables"]
assert isinstance(env, dict) and all(isinstance(v, str) for v in env.values()), env
assert env["KEYWARD_HOME"] == sys.argv[2], env
assert isinstance(agent["ExitTimeOut"], int)
assert agent["StandardOutPath"] == agent["StandardErrorPath"] == sys.argv[2] + "/keyward.log"
print("ok")
"#;
    let checked = Command::new("python3")
        .args(["-c", script])
        .arg(&file)
        .arg(home.keyward_home())
        .output()?;
    assert!(checked.status.success(), "{}\n{plist}", text_of(&checked));
    Ok(())
}

/// A stand-in `systemctl --user` that keeps the unit's enabled/active state in files and logs
/// every call.
fn fake_systemctl(dir: &Path, state: &Path, log: &Path) -> Result<()> {
    let script = format!(
        r#"#!/bin/sh
echo "$*" >> "{log}"
case "$*" in
  "--user show --property=Version") echo "Version=252" ;;
  "--user is-enabled keyward.service") if [ -f "{state}.enabled" ]; then echo enabled; else echo disabled; exit 1; fi ;;
  "--user is-active keyward.service") if [ -f "{state}.active" ]; then echo active; else echo inactive; exit 3; fi ;;
  "--user daemon-reload") ;;
  "--user enable keyward.service") touch "{state}.enabled" ;;
  "--user enable --now keyward.service") touch "{state}.enabled" "{state}.active" ;;
  "--user restart keyward.service") touch "{state}.active" ;;
  "--user disable --now keyward.service") rm -f "{state}.enabled" "{state}.active" ;;
  *) echo "unexpected: $*" >&2; exit 1 ;;
esac
"#,
        log = log.display(),
        state = state.display()
    );
    std::fs::create_dir_all(dir)?;
    let path = dir.join("systemctl");
    std::fs::write(&path, script)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// install writes the unit and enables and starts it; a second install changes nothing and only
/// makes sure it runs; status reports it; uninstall removes exactly what install wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_is_idempotent_and_uninstall_removes_what_it_wrote() -> Result<()> {
    let mock = Mock::start().await?;
    let home = Home::new()?;
    let bin = home.root().join("bin");
    let log = home.root().join("systemctl.log");
    fake_systemctl(&bin, &home.root().join("unit"), &log)?;
    let calls = || std::fs::read_to_string(&log).unwrap_or_default();
    let units = home.root().join("xdg-config/systemd/user");

    let output = service(&home, &mock, &["install"], Some(&bin))?;
    assert!(output.status.success(), "{}", text_of(&output));
    let unit = units.join("keyward.service");
    assert!(unit.is_file());
    assert_eq!(std::fs::metadata(&unit)?.mode() & 0o777, 0o644);
    assert_eq!(
        calls(),
        "--user show --property=Version\n--user daemon-reload\n--user enable keyward.service\n--user restart keyward.service\n"
    );
    let inode = std::fs::metadata(&unit)?.ino();

    std::fs::remove_file(&log)?;
    let output = service(&home, &mock, &["install"], Some(&bin))?;
    assert!(output.status.success(), "{}", text_of(&output));
    assert_eq!(
        std::fs::metadata(&unit)?.ino(),
        inode,
        "an unchanged unit was rewritten"
    );
    assert_eq!(
        calls(),
        "--user show --property=Version\n--user enable --now keyward.service\n"
    );

    let output = service(&home, &mock, &["status"], Some(&bin))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("installed, enabled, active"),
        "{}",
        text_of(&output)
    );
    assert!(output.status.success());
    let status = keyward_with(&home, &mock, &["status"], Some(&bin))?;
    let stdout = String::from_utf8_lossy(&status.stdout);
    assert!(
        stdout.contains("service"),
        "keyward status names the service: {stdout}"
    );
    assert!(stdout.contains("installed, enabled, active"), "{stdout}");

    std::fs::remove_file(&log)?;
    let output = service(&home, &mock, &["uninstall"], Some(&bin))?;
    assert!(output.status.success(), "{}", text_of(&output));
    assert!(
        calls().contains("--user disable --now keyward.service\n"),
        "{}",
        calls()
    );
    assert!(calls().ends_with("--user daemon-reload\n"), "{}", calls());
    assert_eq!(
        std::fs::read_dir(&units)?.count(),
        0,
        "uninstall left files behind"
    );
    Ok(())
}

/// Without a systemd user instance (a container), install says so, prints the unit and how else
/// to run keyward, and writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_systemd_install_says_so_and_prints_the_unit() -> Result<()> {
    let mock = Mock::start().await?;
    let home = Home::new()?;
    let bin = home.root().join("bin");
    std::fs::create_dir_all(&bin)?;
    let fake = bin.join("systemctl");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'Failed to connect to bus: No medium found' >&2\nexit 1\n",
    )?;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755))?;
    let output = service(&home, &mock, &["install"], Some(&bin))?;
    assert_eq!(output.status.code(), Some(1), "{}", text_of(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("systemd's user instance is not available"),
        "{stderr}"
    );
    assert!(stderr.contains("No medium found"), "{stderr}");
    assert!(stderr.contains("nohup"), "{stderr}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("[Service]"));
    assert!(
        !home.root().join("xdg-config/systemd").exists(),
        "a unit was written"
    );
    Ok(())
}
