//! `keyward login` as a user runs it, in the background: its output is read while it waits for
//! the browser or the device approval, then its exit. And the lock that serialises the tests
//! using the fixed callback ports 1455 and 1457.

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::{Home, Mock, Result, PATIENCE};

/// A `keyward login` (or `logout`) running in the background.
pub struct SignIn {
    child: Option<Child>,
    stdout: PathBuf,
    stderr: PathBuf,
}

/// What a finished command printed.
pub struct Finished {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    pub fn output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl SignIn {
    /// Starts `keyward ARGS` on `home` against `mock`, without a terminal.
    pub fn start(home: &Home, mock: &Mock, args: &[&str]) -> Result<Self> {
        Self::start_with(home, mock, args, &[])
    }

    /// [`SignIn::start`] with extra environment (a D-Bus session for the keyring).
    pub fn start_with(
        home: &Home,
        mock: &Mock,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Self> {
        let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let stdout = home.root().join(format!("sign-in-{n}.out"));
        let stderr = home.root().join(format!("sign-in-{n}.err"));
        let mut command = home.keyward(mock);
        command.envs(env.iter().copied());
        let child = command
            .args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout)?)
            .stderr(std::fs::File::create(&stderr)?)
            .spawn()?;
        Ok(Self {
            child: Some(child),
            stdout,
            stderr,
        })
    }

    /// Runs `keyward ARGS` to its end.
    pub async fn run(home: &Home, mock: &Mock, args: &[&str]) -> Result<Finished> {
        Self::start(home, mock, args)?.finish().await
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The first word of its error output that starts with `prefix`, once it is printed.
    pub async fn printed(&mut self, prefix: &str) -> Result<String> {
        self.printed_word(prefix, |w| w.starts_with(prefix)).await
    }

    /// The first word of its error output that `matches` (`what` names it), once it is printed.
    pub async fn printed_word(
        &mut self,
        what: &str,
        matches: impl Fn(&str) -> bool,
    ) -> Result<String> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let stderr = self.stderr();
            if let Some(word) = stderr.split_whitespace().find(|w| matches(w)) {
                return Ok(word.to_string());
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                anyhow::bail!("keyward exited ({status}) before printing {what}: {stderr}");
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "nothing like {what} printed: {stderr}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The device code it shows (`XXXX-XXXXX`).
    pub async fn user_code(&mut self) -> Result<String> {
        self.printed_word("a device code", is_user_code).await
    }

    /// Waits for it to exit.
    pub async fn finish(mut self) -> Result<Finished> {
        let mut child = self
            .child
            .take()
            .ok_or_else(|| anyhow::anyhow!("not running"))?;
        let status =
            tokio::time::timeout(PATIENCE, tokio::task::spawn_blocking(move || child.wait()))
                .await
                .map_err(|_| anyhow::anyhow!("keyward did not exit"))???;
        Ok(Finished {
            code: status.code(),
            stdout: std::fs::read_to_string(&self.stdout)?,
            stderr: std::fs::read_to_string(&self.stderr)?,
        })
    }
}

impl Drop for SignIn {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Whether `word` is a device code as the sign-in server makes them (`XXXX-XXXXX`).
pub fn is_user_code(word: &str) -> bool {
    let parts: Vec<&str> = word.split('-').collect();
    parts.len() == 2
        && parts[0].len() == 4
        && parts[1].len() == 5
        && word
            .chars()
            .all(|c| c == '-' || c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// `text` without terminal colour sequences (`ESC [ ... m`).
pub fn without_colours(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut in_escape = false;
    for c in text.chars() {
        match (in_escape, c) {
            (false, '\u{1b}') => in_escape = true,
            (false, c) => plain.push(c),
            (true, 'm') => in_escape = false,
            (true, _) => {}
        }
    }
    plain
}

/// Held while a test uses the callback ports 1455 and 1457, which every browser sign-in needs:
/// such tests run one at a time, in this process and in any other on the machine.
pub struct PortsLock {
    _file: std::fs::File,
}

pub async fn login_ports() -> Result<PortsLock> {
    let path = std::env::temp_dir().join("keyward-login-ports.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    let file = tokio::task::spawn_blocking(move || file.lock().map(|()| file)).await??;
    Ok(PortsLock { _file: file })
}
