//! Test harness: real processes (`keyward`, `keyward-mock`), real files in temp dirs, real sockets
//! on loopback. Nothing here waits a fixed time for a result; `wait_until` polls a condition with
//! a generous deadline that only bounds a hung test.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod browser;
pub mod secret_service;
mod sign_in;
mod usage_history;

pub use browser::Browser;
pub use sign_in::{is_user_code, login_ports, without_colours, SignIn};
pub use usage_history::{as_first_ledger_schema, seed_usage_history};

pub type Result<T> = anyhow::Result<T>;

/// Bounds a test that hangs; never a performance expectation.
pub const PATIENCE: Duration = Duration::from_secs(60);

pub fn keyward_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_keyward"))
}

pub fn mock_bin() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            // `cargo test` does not build the sibling crate's binary, nor rebuild a stale one
            // (a test against an older mock fails for no reason of its own): cargo decides.
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = Command::new(cargo)
                .args(["build", "--quiet", "-p", "keyward-mock"])
                .status()
                .expect("cargo build -p keyward-mock");
            assert!(status.success(), "building keyward-mock failed");
            keyward_bin().with_file_name("keyward-mock")
        })
        .clone()
}

pub async fn wait_until<F, Fut>(what: &str, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + PATIENCE;
    while !check().await {
        if Instant::now() > deadline {
            anyhow::bail!("gave up waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

fn read_listening_line(reader: impl std::io::Read) -> Result<String> {
    let mut line = String::new();
    BufReader::new(reader).read_line(&mut line)?;
    line.trim()
        .strip_prefix("listening on ")
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("unexpected first line: {line}"))
}

pub struct Mock {
    child: Child,
    pub url: String,
    http: reqwest::Client,
}

impl Mock {
    pub async fn start() -> Result<Self> {
        Self::start_with(&[]).await
    }

    pub async fn start_with(args: &[&str]) -> Result<Self> {
        let mut child = Command::new(mock_bin())
            .arg("serve")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
        let url = tokio::task::spawn_blocking(move || read_listening_line(stdout)).await??;
        Ok(Self {
            child,
            url,
            http: reqwest::Client::new(),
        })
    }

    pub fn token_url(&self) -> String {
        format!("{}/oauth/token", self.url)
    }

    pub fn base_url(&self) -> String {
        format!("{}/backend-api/codex", self.url)
    }

    async fn admin(&self, path: &str, body: Value) -> Result<Value> {
        let response = self
            .http
            .post(format!("{}/admin/{path}", self.url))
            .json(&body)
            .send()
            .await?;
        Ok(response.json().await?)
    }

    /// A new token family of another ChatGPT account (a second login).
    pub async fn login_as(&self, account: &str) -> Result<Value> {
        self.admin(
            "login",
            json!({"account_id": account, "email": format!("{account}@example.com"), "plan": "plus"}),
        )
        .await
    }

    /// Makes the Codex backend answer `account`'s requests with a usage limit for `secs` seconds
    /// (0 lifts it).
    pub async fn usage_limit(&self, account: &str, secs: u64) -> Result<()> {
        self.admin(
            "usage_limit",
            json!({"account_id": account, "resets_in_seconds": secs}),
        )
        .await
        .map(drop)
    }

    /// Sets `account`'s plan usage (`POST /admin/usage_limit`: used percentages, the share each
    /// served request takes, a limit).
    pub async fn usage_setting(&self, account: &str, mut setting: Value) -> Result<Value> {
        setting["account_id"] = json!(account);
        self.admin("usage_limit", setting).await
    }

    /// Makes the public API answer `key`'s requests with a rate limit for `secs` seconds.
    pub async fn api_key_limit(&self, key: &str, secs: u64) -> Result<()> {
        self.admin(
            "api_key_limit",
            json!({"api_key": key, "retry_after_seconds": secs}),
        )
        .await
        .map(drop)
    }

    /// The public OpenAI API's base URL on this mock.
    pub fn openai_base_url(&self) -> String {
        format!("{}/v1", self.url)
    }

    /// A new token family; `ttl` seconds of access-token life (negative: already expired).
    pub async fn login(&self, ttl: Option<i64>) -> Result<Value> {
        let body = match ttl {
            Some(ttl) => {
                json!({"account_id": "acct-test", "email": "dev@example.com", "plan": "pro", "access_ttl": ttl})
            }
            None => json!({"account_id": "acct-test", "email": "dev@example.com", "plan": "pro"}),
        };
        self.admin("login", body).await
    }

    /// How the sign-in server's consent answers from now on (`POST /admin/authorize`: the account
    /// of the next sign-ins, or an OAuth `error` instead of a code).
    pub async fn consent_setting(&self, setting: Value) -> Result<()> {
        self.admin("authorize", setting).await.map(drop)
    }

    /// Device sign-in on or off, and its poll interval (`POST /admin/device`).
    pub async fn device_setting(&self, setting: Value) -> Result<()> {
        self.admin("device", setting).await.map(drop)
    }

    /// The user approves the device code `user_code`.
    pub async fn approve_device(&self, user_code: &str) -> Result<()> {
        let answer = self
            .admin("device/approve", json!({ "user_code": user_code }))
            .await?;
        anyhow::ensure!(answer["approved"] == json!(true), "not approved: {answer}");
        Ok(())
    }

    /// What a browser does on the consent page of `authorize_url`, as plain HTTP: opens it and
    /// presses Continue (`approve`) or Cancel. Returns where the provider sends the browser back.
    pub async fn consent(&self, authorize_url: &str, approve: bool) -> Result<String> {
        let page = self.http.get(authorize_url).send().await?.text().await?;
        let request = page
            .split("name=\"request\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .ok_or_else(|| anyhow::anyhow!("no consent form in: {page}"))?;
        let decision = if approve { "approve" } else { "deny" };
        let no_redirects = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let answer = no_redirects
            .post(format!("{}/oauth/authorize/decision", self.url))
            .form(&[("request", request), ("decision", decision)])
            .send()
            .await?;
        answer
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| anyhow::anyhow!("consent did not redirect: {}", answer.status()))
    }

    /// The sign-in server's log lines (authorization codes appear by their first 10 characters).
    pub async fn token_log(&self) -> Result<Vec<Value>> {
        let log: Value = self
            .http
            .get(format!("{}/admin/log", self.url))
            .send()
            .await?
            .json()
            .await?;
        Ok(log.as_array().cloned().unwrap_or_default())
    }

    pub async fn stats(&self) -> Result<Value> {
        Ok(self
            .http
            .get(format!("{}/admin/stats", self.url))
            .send()
            .await?
            .json()
            .await?)
    }

    /// The request bodies the mock's Codex backend received, oldest first (see keyward-mock's
    /// `GET /admin/requests`).
    pub async fn requests(&self) -> Result<Vec<Value>> {
        let all: Value = self
            .http
            .get(format!("{}/admin/requests", self.url))
            .send()
            .await?
            .json()
            .await?;
        Ok(all.as_array().cloned().unwrap_or_default())
    }

    pub async fn stat(&self, name: &str) -> Result<u64> {
        Ok(self.stats().await?[name].as_u64().unwrap_or(0))
    }

    pub async fn token_faults(&self, faults: Value) -> Result<()> {
        self.admin("token_faults", faults).await.map(drop)
    }

    pub async fn response_faults(&self, faults: Value) -> Result<()> {
        self.admin("response_faults", faults).await.map(drop)
    }

    pub async fn ttl_queue(&self, ttls: Value) -> Result<()> {
        self.admin("ttl_queue", ttls).await.map(drop)
    }

    pub async fn inspect(&self, refresh_token: &str) -> Result<Value> {
        self.admin("inspect", json!({"refresh_token": refresh_token}))
            .await
    }

    pub async fn revoke(&self, refresh_token: &str) -> Result<()> {
        self.admin("revoke", json!({"refresh_token": refresh_token}))
            .await
            .map(drop)
    }

    pub async fn release(&self, key: &str) -> Result<()> {
        self.http
            .post(format!("{}/admin/release/{key}", self.url))
            .send()
            .await?;
        Ok(())
    }

    /// The lineage is alive: `refresh_token` is its family's current token and the family stands.
    pub async fn is_live(&self, refresh_token: &str) -> Result<bool> {
        let info = self.inspect(refresh_token).await?;
        Ok(info["current"] == json!(true) && info["family_revoked"] == json!(false))
    }

    /// Zero reuse and zero revoked families: the promise every test checks.
    pub async fn assert_no_reuse(&self) -> Result<()> {
        let stats = self.stats().await?;
        assert_eq!(
            stats["reuse_events"],
            json!(0),
            "a refresh token was spent twice: {stats}"
        );
        assert_eq!(
            stats["families_revoked"],
            json!(0),
            "a token family was revoked: {stats}"
        );
        Ok(())
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A user's machine in a temp dir: `$HOME`, `$CODEX_HOME`, `$KEYWARD_HOME`.
pub struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    pub fn new() -> Result<Self> {
        let home = Self {
            dir: tempfile::tempdir()?,
        };
        std::fs::create_dir_all(home.user_home())?;
        std::fs::create_dir_all(home.codex_home())?;
        Ok(home)
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn user_home(&self) -> PathBuf {
        self.dir.path().join("user")
    }

    pub fn codex_home(&self) -> PathBuf {
        self.dir.path().join("codex")
    }

    pub fn keyward_home(&self) -> PathBuf {
        self.dir.path().join("keyward")
    }

    pub fn auth_path(&self) -> PathBuf {
        self.codex_home().join("auth.json")
    }

    /// Another Codex home beside the default one (for a second login), created.
    pub fn other_codex_home(&self, name: &str) -> Result<PathBuf> {
        let dir = self.dir.path().join(format!("codex-{name}"));
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    /// Writes a login into another Codex home, as the CLI does.
    pub fn write_login_at(&self, codex_home: &Path, login: &Value) -> Result<()> {
        let temp = codex_home.join(".auth-test");
        std::fs::write(&temp, serde_json::to_string_pretty(&auth_document(login))?)?;
        std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o600))?;
        std::fs::rename(&temp, codex_home.join("auth.json"))?;
        Ok(())
    }

    /// Writes `auth.json` as the Codex CLI does: pretty JSON, temp file + rename, mode 0600.
    pub fn write_login(&self, login: &Value) -> Result<()> {
        self.write_auth_bytes(serde_json::to_string_pretty(&auth_document(login))?.as_bytes())
    }

    pub fn write_auth_bytes(&self, bytes: &[u8]) -> Result<()> {
        let temp = self.codex_home().join(".auth-test");
        std::fs::write(&temp, bytes)?;
        std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o600))?;
        std::fs::rename(&temp, self.auth_path())?;
        Ok(())
    }

    pub fn auth(&self) -> Result<Value> {
        Ok(serde_json::from_slice(&std::fs::read(self.auth_path())?)?)
    }

    pub fn refresh_token(&self) -> Result<String> {
        Ok(self.auth()?["tokens"]["refresh_token"]
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    pub fn write_config(&self, toml: &str) -> Result<()> {
        std::fs::create_dir_all(self.keyward_home())?;
        std::fs::write(self.keyward_home().join("config.toml"), toml)?;
        Ok(())
    }

    /// A `keyward` command with this machine's environment and nothing of the real user's.
    pub fn keyward(&self, mock: &Mock) -> Command {
        let mut command = Command::new(keyward_bin());
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.user_home())
            .env("KEYWARD_HOME", self.keyward_home())
            .env("CODEX_HOME", self.codex_home())
            .env("CODEX_REFRESH_TOKEN_URL_OVERRIDE", mock.token_url())
            .env("KEYWARD_CODEX_ISSUER", &mock.url)
            .env("KEYWARD_CODEX_BASE_URL", mock.base_url())
            .env("KEYWARD_LOG", "info,keyward=debug");
        command
    }

    /// The Codex CLI's refresh, as the CLI does it (spend without a lock, then lock and rename).
    pub fn cli_refresh(&self, mock: &Mock, args: &[&str]) -> Result<Output> {
        Ok(Command::new(mock_bin())
            .arg("cli-refresh")
            .arg("--codex-home")
            .arg(self.codex_home())
            .arg("--token-url")
            .arg(mock.token_url())
            .args(args)
            .output()?)
    }
}

/// A long-running `keyward serve`.
pub struct Keyward {
    child: Option<Child>,
    pub url: String,
    pub log_path: PathBuf,
    http: reqwest::Client,
}

static SERVE_COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Keyward {
    pub async fn serve(home: &Home, mock: &Mock) -> Result<Self> {
        Self::serve_with(home, mock, &[]).await
    }

    pub async fn serve_with(home: &Home, mock: &Mock, env: &[(&str, &str)]) -> Result<Self> {
        Self::start(home.keyward(mock), home, env).await
    }

    /// Starts keyward with a soft open-file limit of `soft` (as a login shell often sets it).
    pub async fn serve_with_soft_nofile(home: &Home, mock: &Mock, soft: u64) -> Result<Self> {
        let keyward = home.keyward(mock);
        let mut command = Command::new("prlimit");
        command
            .arg(format!("--nofile={soft}:"))
            .arg("--")
            .arg(keyward.get_program());
        command.env_clear();
        for (key, value) in keyward.get_envs() {
            if let Some(value) = value {
                command.env(key, value);
            }
        }
        Self::start(command, home, &[]).await
    }

    async fn start(mut command: Command, home: &Home, env: &[(&str, &str)]) -> Result<Self> {
        let n = SERVE_COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log_path = home.root().join(format!("keyward-{n}.log"));
        let log = std::fs::File::create(&log_path)?;
        command.args(["serve", "--listen", "127.0.0.1:0"]);
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.stdout(Stdio::null()).stderr(log).spawn()?;
        let mut keyward = Self {
            child: Some(child),
            url: String::new(),
            log_path,
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()?,
        };
        let deadline = Instant::now() + PATIENCE;
        loop {
            let log = keyward.log();
            if let Some(rest) = log.split("keyward listening on ").nth(1) {
                // Plain or JSON log lines: the URL ends at whitespace or a closing quote.
                keyward.url = rest
                    .split(|c: char| c.is_whitespace() || c == '"')
                    .next()
                    .unwrap_or_default()
                    .to_string();
                break;
            }
            if let Some(status) = keyward
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                anyhow::bail!("keyward exited at start ({status}): {log}");
            }
            if Instant::now() > deadline {
                anyhow::bail!("keyward did not start: {log}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(keyward)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or_default()
    }

    /// `127.0.0.1:PORT`, for raw sockets.
    pub fn host_port(&self) -> String {
        self.url.trim_start_matches("http://").to_string()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// POST /v1/responses; returns the status and the whole body.
    pub async fn respond(&self, stream: bool) -> Result<(u16, String)> {
        self.respond_with(
            json!({"model": "gpt-5-codex", "input": "ping", "stream": stream, "store": false}),
            &[],
        )
        .await
    }

    pub async fn respond_with(
        &self,
        body: Value,
        headers: &[(&str, &str)],
    ) -> Result<(u16, String)> {
        let mut request = self
            .http
            .post(format!("{}/v1/responses", self.url))
            .json(&body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        Ok((status, response.text().await?))
    }

    /// POST a JSON body to `path`; the status, the serving profile and the body.
    pub async fn post(&self, path: &str, body: &Value) -> Result<(u16, String, String)> {
        let response = self
            .http
            .post(format!("{}{path}", self.url))
            .json(body)
            .send()
            .await?;
        let status = response.status().as_u16();
        let profile = response
            .headers()
            .get("x-keyward-profile")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        Ok((status, profile, response.text().await?))
    }

    pub async fn healthz(&self) -> Result<Value> {
        Ok(self
            .http
            .get(format!("{}/healthz", self.url))
            .send()
            .await?
            .json()
            .await?)
    }

    /// One of `/healthz`'s refresh counters.
    pub async fn counter(&self, name: &str) -> Result<u64> {
        Ok(self.healthz().await?["counters"][name]
            .as_u64()
            .unwrap_or(0))
    }

    /// The profile's `{"state","detail","remedy"}`.
    pub async fn health(&self) -> Result<Value> {
        Ok(self.healthz().await?["profiles"][0]["health"].clone())
    }

    pub async fn wait_for_health(&self, state: &str) -> Result<()> {
        wait_until(&format!("health {state}"), || async {
            self.profile_health().await.is_ok_and(|s| s == state)
        })
        .await
    }

    pub async fn profile_health(&self) -> Result<String> {
        let health = self.healthz().await?;
        Ok(health["profiles"][0]["health"]["state"]
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    pub fn signal(&self, signal: &str) -> Result<()> {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()?;
        anyhow::ensure!(status.success(), "kill -{signal} failed");
        Ok(())
    }

    /// kill -9 and reap.
    pub fn kill9(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// Waits for the process to exit by itself (a crash point, or a signal sent before).
    pub async fn wait_exit(&mut self) -> Result<ExitStatus> {
        let mut child = self
            .child
            .take()
            .ok_or_else(|| anyhow::anyhow!("not running"))?;
        Ok(tokio::task::spawn_blocking(move || child.wait()).await??)
    }
}

impl Drop for Keyward {
    fn drop(&mut self) {
        let _ = self.kill9();
    }
}

/// The usual start: a mock, a home holding a fresh login, and keyward serving it with `config`
/// (empty: none) and extra environment `env`.
pub async fn serving_with(config: &str, env: &[(&str, &str)]) -> Result<(Mock, Home, Keyward)> {
    let mock = Mock::start().await?;
    let home = Home::new()?;
    home.write_login(&mock.login(None).await?)?;
    if !config.is_empty() {
        home.write_config(config)?;
    }
    let keyward = Keyward::serve_with(&home, &mock, env).await?;
    Ok((mock, home, keyward))
}

/// [`serving_with`] with no config and no extra environment.
pub async fn serving() -> Result<(Mock, Home, Keyward)> {
    serving_with("", &[]).await
}

/// A finished process's exit status and output, for failure messages.
pub fn text_of(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs `keyward ARGS` on this machine (see [`Home::keyward`]) with extra environment `env`.
pub fn run_keyward(
    home: &Home,
    mock: &Mock,
    args: &[&str],
    env: &[(&str, &str)],
) -> Result<Output> {
    let mut command = home.keyward(mock);
    command.args(args).stdin(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    Ok(command.output()?)
}

/// `keyward usage --json ARGS` on this machine.
pub fn usage_json(home: &Home, mock: &Mock, args: &[&str]) -> Result<Value> {
    let mut all = vec!["usage", "--json"];
    all.extend_from_slice(args);
    let output = run_keyward(home, mock, &all, &[])?;
    anyhow::ensure!(
        output.status.success(),
        "keyward usage failed: {}",
        text_of(&output)
    );
    Ok(serde_json::from_slice(&output.stdout)?)
}

/// A peer program installed by `scripts/install-peers`: `$env` if set, else `.peers/<relative>`.
/// `None` (the test then skips, with a message) when it is missing, except under CI, where a
/// missing peer fails the test.
pub fn peer_binary(env: &str, relative: &str, what: &str) -> Option<PathBuf> {
    let path = std::env::var_os(env).map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../.peers")
            .join(relative)
    });
    if path.is_file() {
        return Some(path);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{what} is not installed at {}: CI must run scripts/install-peers",
        path.display()
    );
    eprintln!(
        "SKIPPED: {what} is not installed ({}); run ./scripts/install-peers",
        path.display()
    );
    None
}

/// The Python the peers' SDKs are installed in: `scripts/install-peers`' virtual environment
/// (`.peers/python`), else the machine's `python3`.
pub fn peer_python() -> PathBuf {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.peers/python/bin/python3");
    if venv.is_file() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

/// Runs a Python client `script` that imports `module` (an SDK installed by
/// `scripts/install-peers`), with `KEYWARD_URL` set to keyward's root URL; the script prints one
/// JSON value. `None` when the SDK is not installed (the test then skips, except under CI).
pub fn run_python_client(module: &str, keyward: &Keyward, script: &str) -> Result<Option<Value>> {
    let python = peer_python();
    let probe = Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .output();
    if !probe.is_ok_and(|p| p.status.success()) {
        assert!(
            std::env::var_os("CI").is_none(),
            "the {module} Python SDK is not installed: CI must run scripts/install-peers"
        );
        eprintln!("SKIPPED: the {module} Python SDK is not installed; run ./scripts/install-peers");
        return Ok(None);
    }
    let output = Command::new(&python)
        .args(["-c", script])
        .env("KEYWARD_URL", &keyward.url)
        // LiteLLM would fetch its model price list from the internet at import.
        .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        .output()?;
    last_json_line(&format!("the {module} client script"), &output).map(Some)
}

/// The JSON value a finished client printed on its last line.
fn last_json_line(what: &str, output: &Output) -> Result<Value> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(
        output.status.success(),
        "{what} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last.trim()).map_err(|e| anyhow::anyhow!("{e}: {what} printed:\n{stdout}"))
}

/// Runs a Node.js client `script` (an ES module importing the `packages` `scripts/install-peers`
/// puts in `.peers/node_modules`), with `KEYWARD_URL` set to keyward's root URL; the script
/// prints one JSON value last. `None` when a package is not installed (the test then skips,
/// except under CI).
pub fn run_node_client(
    packages: &[&str],
    keyward: &Keyward,
    script: &str,
) -> Result<Option<Value>> {
    let modules = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.peers/node_modules");
    if let Some(missing) = packages
        .iter()
        .find(|p| !modules.join(p).join("package.json").is_file())
    {
        assert!(
            std::env::var_os("CI").is_none(),
            "the {missing} npm package is not installed: CI must run scripts/install-peers"
        );
        eprintln!(
            "SKIPPED: the {missing} npm package is not installed; run ./scripts/install-peers"
        );
        return Ok(None);
    }
    // ES modules resolve packages from the script's own directory up.
    let dir = tempfile::tempdir()?;
    std::os::unix::fs::symlink(modules.canonicalize()?, dir.path().join("node_modules"))?;
    let path = dir.path().join("client.mjs");
    std::fs::write(&path, script)?;
    let output = Command::new("node")
        .arg(&path)
        .env("KEYWARD_URL", &keyward.url)
        .output()?;
    last_json_line("the Node.js client", &output).map(Some)
}

/// A config that makes the protocol's timing visible in a test: refresh `margin` ahead, no jitter,
/// a short tick.
pub fn timing_config(margin: &str) -> String {
    format!("[refresh]\nmargin = \"{margin}\"\njitter = \"0s\"\ntick = \"200ms\"\nsettle_window = \"1s\"\ntoken_timeout = \"3s\"\n")
}

/// Asserts no token-shaped secret appears in `text`: no JWT (`eyJ...`), no mock refresh token,
/// and none of the `known` tokens.
pub fn assert_no_secrets(text: &str, known: &[String], context: &str) {
    for token in known.iter().filter(|t| t.len() > 8) {
        assert!(
            !text.contains(token.as_str()),
            "{context}: a known token leaked"
        );
    }
    assert!(
        !text.contains("eyJ"),
        "{context}: something JWT-shaped leaked: {}",
        excerpt(text, "eyJ")
    );
    for (at, _) in text.match_indices("rt_") {
        let tail = text[at + 3..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .count();
        assert!(
            tail < 40,
            "{context}: a refresh token leaked near: {}",
            &text[at.saturating_sub(80)..at]
        );
    }
}

fn excerpt(text: &str, needle: &str) -> String {
    let at = text.find(needle).unwrap_or(0);
    let start = text[..at]
        .char_indices()
        .rev()
        .nth(80)
        .map_or(0, |(i, _)| i);
    text[start..at].to_string()
}

/// The `auth.json` the Codex CLI writes for a login answer.
pub fn auth_document(login: &Value) -> Value {
    json!({
        "OPENAI_API_KEY": null,
        "tokens": {
            "id_token": login["id_token"],
            "access_token": login["access_token"],
            "refresh_token": login["refresh_token"],
            "account_id": login["account_id"],
        },
        "last_refresh": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
    })
}

/// The refresh token of a login answer.
pub fn refresh_token_of(login: &Value) -> String {
    login["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The tokens of a login answer or an `auth.json`'s `tokens` object.
pub fn tokens_of(value: &Value) -> Vec<String> {
    let tokens = if value.get("tokens").is_some() {
        &value["tokens"]
    } else {
        value
    };
    ["id_token", "access_token", "refresh_token"]
        .iter()
        .filter_map(|k| tokens[*k].as_str().map(str::to_string))
        .collect()
}
