//! The processes the soak runs: every child is registered so it can be killed whatever way the
//! soak ends (normal end, error, ctrl-c, panic), and signalled by pid (kill -9, stop, continue).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use rustix::process::{Pid, Signal};
use tokio::io::AsyncBufReadExt;
use tokio::process::{Child, Command};

/// Every child process still running; killed by [`kill_all`].
static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// How long a child may take to start listening: bounds a hang, never a speed expectation.
pub(crate) const START_PATIENCE: Duration = Duration::from_secs(90);

pub(crate) fn register(child: &Child) {
    if let Some(pid) = child.id() {
        CHILDREN
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(pid);
    }
}

pub(crate) fn forget(pid: u32) {
    CHILDREN
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .retain(|p| *p != pid);
}

/// SIGKILLs every registered child (stopped ones included: SIGKILL needs no SIGCONT).
pub(crate) fn kill_all() {
    let pids = std::mem::take(&mut *CHILDREN.lock().unwrap_or_else(PoisonError::into_inner));
    for pid in pids {
        let _ = signal(pid, Signal::KILL);
    }
}

pub(crate) fn signal(pid: u32, signal: Signal) -> Result<()> {
    let raw = i32::try_from(pid).map_err(|_| anyhow!("pid {pid} out of range"))?;
    let pid = Pid::from_raw(raw).ok_or_else(|| anyhow!("pid {raw} is not a process"))?;
    rustix::process::kill_process(pid, signal).with_context(|| format!("signalling pid {raw}"))
}

/// SIGKILLs `child` and reaps it.
pub(crate) async fn kill9(child: &mut Child) -> Result<()> {
    let pid = child.id();
    child.start_kill().ok();
    child.wait().await?;
    if let Some(pid) = pid {
        forget(pid);
    }
    Ok(())
}

/// SIGTERM, then waits for the graceful exit (SIGKILL if it does not come within `patience`,
/// which only bounds a hang).
pub(crate) async fn terminate(child: &mut Child, patience: Duration) -> Result<bool> {
    let Some(pid) = child.id() else {
        return Ok(true);
    };
    signal(pid, Signal::TERM)?;
    let graceful = match tokio::time::timeout(patience, child.wait()).await {
        Ok(status) => status?.success(),
        Err(_) => {
            kill9(child).await?;
            false
        }
    };
    forget(pid);
    Ok(graceful)
}

/// A short-lived helper process's result.
#[derive(Debug)]
pub(crate) struct Ran {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// Runs `command` to completion (registered while it runs, so it dies with the soak).
pub(crate) async fn run(mut command: Command, patience: Duration) -> Result<Ran> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command.spawn()?;
    register(&child);
    let pid = child.id();
    let output = tokio::time::timeout(patience, child.wait_with_output()).await;
    if let Some(pid) = pid {
        forget(pid);
    }
    let output = output.map_err(|_| anyhow!("did not finish within {patience:?}"))??;
    Ok(Ran {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

/// The mock provider (`keyward-mock serve`), its stderr in `log`.
pub(crate) struct MockProcess {
    pub(crate) child: Child,
    pub(crate) url: String,
}

impl MockProcess {
    pub(crate) async fn start(binary: &Path, log: &Path) -> Result<Self> {
        let mut child = Command::new(binary)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--chunks",
                "3",
                "--chunk-delay-ms",
                "10",
            ])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log)?)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        register(&child);
        let stdout = child.stdout.take().context("the mock has no stdout")?;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let line = tokio::time::timeout(START_PATIENCE, lines.next_line())
            .await
            .map_err(|_| anyhow!("the mock did not say where it listens"))??
            .unwrap_or_default();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .ok_or_else(|| anyhow!("unexpected first line from the mock: {line}"))?
            .to_owned();
        Ok(Self { child, url })
    }
}

/// What a `keyward serve` process needs to start.
#[derive(Clone, Debug)]
pub(crate) struct KeywardSetup {
    pub(crate) binary: PathBuf,
    pub(crate) user_home: PathBuf,
    pub(crate) codex_home: PathBuf,
    pub(crate) token_url: String,
    pub(crate) base_url: String,
}

/// Starts `keyward serve` on a free port with `keyward_home`, logging JSON lines to `log`; waits
/// until it listens. `crash_at` arms one of the test build's crash points.
pub(crate) async fn start_keyward(
    setup: &KeywardSetup,
    keyward_home: &Path,
    log: &Path,
    crash_at: Option<&str>,
) -> Result<(Child, String)> {
    let mut command = Command::new(&setup.binary);
    command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", &setup.user_home)
        .env("KEYWARD_HOME", keyward_home)
        .env("CODEX_HOME", &setup.codex_home)
        .env("CODEX_REFRESH_TOKEN_URL_OVERRIDE", &setup.token_url)
        .env("KEYWARD_CODEX_BASE_URL", &setup.base_url)
        .env("KEYWARD_LOG", "info")
        .env("KEYWARD_LOG_FORMAT", "json")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log)?)
        .kill_on_drop(true);
    if let Some(point) = crash_at {
        command.env("KEYWARD_CRASH_AT", point);
        // The armed process refreshes as early as keyward allows (half the token's life), so it
        // is the first to reach for each rotation and its crash point fires soon.
        let eager = keyward_home.join("config-eager.toml");
        if eager.is_file() {
            command.env("KEYWARD_CONFIG", eager);
        }
    }
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {}", setup.binary.display()))?;
    register(&child);
    let deadline = tokio::time::Instant::now() + START_PATIENCE;
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(url) = listening_url(&text) {
            return Ok((child, url));
        }
        if let Some(status) = child.try_wait()? {
            if let Some(pid) = child.id() {
                forget(pid);
            }
            bail!("keyward exited at start ({status}): {}", tail(&text, 2000));
        }
        if tokio::time::Instant::now() > deadline {
            kill9(&mut child).await.ok();
            bail!("keyward did not start listening: {}", tail(&text, 2000));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The URL of keyward's "listening" line, in either log format.
fn listening_url(log: &str) -> Option<String> {
    let rest = log.split("keyward listening on ").nth(1)?;
    let url: String = rest
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '"')
        .collect();
    (!url.is_empty()).then_some(url)
}

/// The last `n` bytes of `text` (at a character boundary).
pub(crate) fn tail(text: &str, n: usize) -> &str {
    let mut start = text.len().saturating_sub(n);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text.get(start..).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The listening URL is found in JSON and in human log lines.
    #[test]
    fn finds_the_listening_url() {
        let json = r#"{"timestamp":"x","level":"INFO","fields":{"message":"keyward listening on http://127.0.0.1:4242","store":"/tmp"}}"#;
        assert_eq!(
            listening_url(json).as_deref(),
            Some("http://127.0.0.1:4242")
        );
        let human = "INFO keyward listening on http://127.0.0.1:7 store=/x\n";
        assert_eq!(listening_url(human).as_deref(), Some("http://127.0.0.1:7"));
        assert_eq!(listening_url("nothing yet"), None);
    }

    /// `tail` never splits a character.
    #[test]
    fn tails_at_character_boundaries() {
        assert_eq!(tail("héllo", 4), "llo");
        assert_eq!(tail("abc", 10), "abc");
    }
}
