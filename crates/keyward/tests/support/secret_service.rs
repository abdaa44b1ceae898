//! A real Secret Service for a test: its own D-Bus session bus (`dbus-daemon`) and an unlocked
//! `gnome-keyring-daemon` on it, in a temp dir, reached through the address the test passes to
//! keyward and the Codex CLI. `secret-tool` reads and writes items the way a user would.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use sha2::{Digest, Sha256};

use super::{wait_until, Result};

/// The Codex CLI's keyring service name.
pub const CODEX_SERVICE: &str = "Codex Auth";

/// The programs a Secret Service test needs, or `None` (the test then skips with a message,
/// except under CI, where a missing program fails it: `scripts/install-peers` installs them).
fn programs() -> Option<()> {
    let missing: Vec<&str> = [
        "dbus-daemon",
        "gnome-keyring-daemon",
        "secret-tool",
        "dbus-send",
    ]
    .into_iter()
    .filter(|p| {
        !Command::new("sh")
            .args(["-c", &format!("command -v {p}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
    .collect();
    if missing.is_empty() {
        return Some(());
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{} not installed: CI must run scripts/install-peers",
        missing.join(", ")
    );
    eprintln!(
        "SKIPPED: {} not installed (Debian: dbus-daemon, gnome-keyring, libsecret-tools); run ./scripts/install-peers",
        missing.join(", ")
    );
    None
}

pub struct SecretService {
    bus: Child,
    keyring: Child,
    /// `DBUS_SESSION_BUS_ADDRESS` of this bus.
    pub address: String,
    dir: tempfile::TempDir,
}

impl SecretService {
    /// A bus and an unlocked login keyring, or `None` when the programs are missing.
    pub async fn start() -> Result<Option<Self>> {
        if programs().is_none() {
            return Ok(None);
        }
        let dir = tempfile::tempdir()?;
        // A session bus without service directories: the session.conf one would start an
        // unlocked-less gnome-keyring of its own for the first caller of the Secret Service.
        let config = dir.path().join("bus.conf");
        std::fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
                dir.path().join("bus").display()
            ),
        )?;
        let mut bus = Command::new("dbus-daemon")
            .args(["--nofork", "--print-address=1"])
            .arg(format!("--config-file={}", config.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = bus
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("dbus-daemon has no stdout"))?;
        let address = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).map(|_| line)
        })
        .await??
        .trim()
        .to_string();
        anyhow::ensure!(!address.is_empty(), "dbus-daemon printed no address");
        // The keyring's files in the temp dir; the password on stdin unlocks (and first creates)
        // the login keyring, the default collection.
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data)?;
        let mut keyring = Command::new("gnome-keyring-daemon")
            .args(["--foreground", "--unlock", "--components=secrets"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", dir.path())
            .env("XDG_DATA_HOME", &data)
            .env("XDG_RUNTIME_DIR", dir.path())
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("gnome-keyring.log"))?)
            .spawn()?;
        if let Some(mut stdin) = keyring.stdin.take() {
            stdin.write_all(b"keyward-test")?;
        }
        let service = Self {
            bus,
            keyring,
            address,
            dir,
        };
        // Up once its login keyring is the default collection (the name is taken before that).
        let ready = wait_until(
            "the Secret Service's login keyring on the test bus",
            || async {
                service
                    .dbus_send(&["org.freedesktop.Secret.Service.ReadAlias", "string:default"])
                    .is_ok_and(|reply| reply.contains("/collection/login"))
            },
        )
        .await;
        if let Err(e) = ready {
            let log = std::fs::read_to_string(service.dir.path().join("gnome-keyring.log"));
            let alias =
                service.dbus_send(&["org.freedesktop.Secret.Service.ReadAlias", "string:default"]);
            anyhow::bail!("{e}: gnome-keyring-daemon said {log:?}; ReadAlias: {alias:?}");
        }
        Ok(Some(service))
    }

    /// The directory that holds the bus socket (a `XDG_RUNTIME_DIR` with a bus in it).
    pub fn runtime_dir(&self) -> &Path {
        self.dir.path()
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command.env("DBUS_SESSION_BUS_ADDRESS", &self.address);
        command
    }

    fn dbus_send(&self, method: &[&str]) -> Result<String> {
        let output = self
            .command("dbus-send")
            .args([
                "--session",
                "--print-reply",
                "--dest=org.freedesktop.secrets",
                "/org/freedesktop/secrets",
            ])
            .args(method)
            .output()?;
        anyhow::ensure!(
            output.status.success(),
            "dbus-send {method:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Stores `value` under the Codex CLI's item for `codex_home`, exactly as the CLI's `keyring`
    /// crate does (same attributes, label and collection; read back from the CLI 0.169's own).
    pub fn put_codex_login(&self, codex_home: &Path, value: &str) -> Result<()> {
        let account = codex_account(codex_home);
        let mut child = self
            .command("secret-tool")
            .arg("store")
            .arg(format!(
                "--label={account}@{CODEX_SERVICE}:default (keyring v3.6.3)"
            ))
            .args(["application", "rust-keyring", "service", CODEX_SERVICE])
            .args(["target", "default", "username", &account])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        child
            .stdin
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdin"))?
            .write_all(value.as_bytes())?;
        let output = child.wait_with_output()?;
        anyhow::ensure!(
            output.status.success(),
            "secret-tool store failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(())
    }

    /// The Codex CLI's item for `codex_home`, if there is one.
    pub fn codex_login(&self, codex_home: &Path) -> Result<Option<String>> {
        let output = self
            .command("secret-tool")
            .args(["lookup", "service", CODEX_SERVICE, "username"])
            .arg(codex_account(codex_home))
            .output()?;
        Ok(output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).into_owned()))
    }

    /// Every attribute of the Codex items, as `secret-tool search` prints them (no secrets).
    pub fn codex_attributes(&self) -> Result<String> {
        let output = self
            .command("secret-tool")
            .args(["search", "--all", "--unlock", "service", CODEX_SERVICE])
            .output()?;
        let text = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        Ok(text
            .lines()
            .filter(|l| l.starts_with("attribute.") || l.starts_with("label"))
            .collect::<Vec<_>>()
            .join("\n"))
    }

    /// Locks the login keyring (as a screen lock or a logout would).
    pub fn lock(&self) -> Result<()> {
        self.dbus_send(&[
            "org.freedesktop.Secret.Service.Lock",
            "array:objpath:/org/freedesktop/secrets/collection/login",
        ])
        .map(drop)
    }
}

impl Drop for SecretService {
    fn drop(&mut self) {
        for child in [&mut self.keyring, &mut self.bus] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The account the Codex CLI files `codex_home`'s login under.
pub fn codex_account(codex_home: &Path) -> String {
    let canonical: PathBuf = codex_home
        .canonicalize()
        .unwrap_or_else(|_| codex_home.to_path_buf());
    let digest = Sha256::digest(canonical.to_string_lossy().as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("cli|{}", &hex[..16])
}
