//! What every task of the soak shares: the processes, the mock, the relay, the fault timeline,
//! and the records the final report is made of; and the CLI-side actions (a Codex-CLI-like
//! refresh, the real Codex CLI, a fresh login).

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{json, Value};
use tokio::process::Command;

use crate::auth;
use crate::clients::ClientStats;
use crate::fleet::Fleet;
use crate::forensics::{CliRun, Verdict};
use crate::mock::MockAdmin;
use crate::procs;
use crate::relay::Relay;
use crate::timeline::{now_ms, HealthHistory, Kind, Timeline};

/// How long a helper process may run: bounds a hang only.
const HELPER_PATIENCE: Duration = Duration::from_secs(120);

/// One ChatGPT login keyward serves: the default Codex home and the second one.
#[derive(Clone, Debug)]
pub(crate) struct Login {
    pub(crate) profile: &'static str,
    pub(crate) account: &'static str,
    pub(crate) home: PathBuf,
    /// Lifetime of the family's access tokens, seconds.
    pub(crate) ttl: i64,
}

/// A lineage that ended (its family revoked, or its current token lost) and how it was healed.
#[derive(Clone, Debug)]
pub(crate) struct LineageEnd {
    pub(crate) profile: &'static str,
    pub(crate) seen_ms: i64,
    pub(crate) token: String,
    pub(crate) revoked: bool,
    pub(crate) verdict: Verdict,
    pub(crate) healed_ms: Option<i64>,
    /// The instances running when the fresh login landed, and whether each was later seen
    /// serving the profile again without a restart.
    pub(crate) served_again: BTreeMap<String, bool>,
}

/// Faults queued at the mock and not yet met by a request, in queue order.
#[derive(Default)]
pub(crate) struct FaultBook {
    pub(crate) token_queued: u64,
    pub(crate) token_pending: VecDeque<(u64, usize)>,
    pub(crate) response_queued: u64,
    pub(crate) response_pending: VecDeque<(u64, usize)>,
    /// Every token fault injected, in queue order: its timeline event and description.
    pub(crate) token_faults: Vec<(usize, String)>,
}

/// The latest `/healthz` round: each slot's instance and the state of each profile there.
#[derive(Clone, Debug, Default)]
pub(crate) struct Round {
    pub(crate) at_ms: i64,
    /// Every slot answered (none down, stopped or silent).
    pub(crate) complete: bool,
    /// instance -> profile -> (state, resting)
    pub(crate) states: BTreeMap<String, BTreeMap<String, (String, bool)>>,
}

impl Round {
    /// Whether every instance polled reports `profile` in `state` (and at least one was polled).
    pub(crate) fn all(&self, profile: &str, state: &str) -> bool {
        !self.states.is_empty()
            && self.states.values().all(|profiles| {
                profiles
                    .get(profile)
                    .is_some_and(|(s, resting)| s == state && !resting)
            })
    }
}

pub(crate) struct Soak {
    pub(crate) fleet: Fleet,
    pub(crate) mock: MockAdmin,
    pub(crate) mock_bin: PathBuf,
    pub(crate) relay: Arc<Relay>,
    pub(crate) timeline: Timeline,
    pub(crate) logins: Vec<Login>,
    pub(crate) codex_cli: Option<PathBuf>,
    pub(crate) root: PathBuf,
    /// Held by every CLI run and every SIGSTOP: a CLI spends without a lock, so it must never
    /// run while a stopped keyward may be holding the lock mid-refresh.
    pub(crate) cli_gate: tokio::sync::Mutex<()>,
    pub(crate) clients: ClientStats,
    pub(crate) health: Mutex<HealthHistory>,
    pub(crate) round: Mutex<Round>,
    /// Every refresh token seen in an `auth.json` (and whose), by the prefix the mock's log shows.
    pub(crate) tokens: Mutex<BTreeMap<String, (String, &'static str)>>,
    pub(crate) cli_runs: Mutex<Vec<CliRun>>,
    pub(crate) faults: Mutex<FaultBook>,
    pub(crate) lineage_ends: Mutex<Vec<LineageEnd>>,
    /// Things that went wrong with keyward outside any request (a process exiting by itself,
    /// one that would not start): each fails the soak.
    pub(crate) problems: Mutex<Vec<String>>,
    /// Notes for the report that fail nothing.
    pub(crate) notes: Mutex<Vec<String>>,
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Soak {
    pub(crate) fn problem(&self, text: String) {
        self.timeline.say(&format!("PROBLEM: {text}"));
        lock(&self.problems).push(text);
    }

    pub(crate) fn note(&self, text: String) {
        lock(&self.notes).push(text);
    }

    /// Reads a login's `auth.json`, remembering its refresh token for the forensics.
    pub(crate) fn read_auth(&self, login: &Login) -> Option<auth::AuthSnapshot> {
        let snapshot = auth::read(&login.home).ok()?;
        lock(&self.tokens)
            .entry(auth::log_prefix(&snapshot.refresh_token))
            .or_insert_with(|| (snapshot.refresh_token.clone(), login.profile));
        Some(snapshot)
    }

    /// Whether a login's lineage is alive at the provider: `auth.json` holds its family's current
    /// refresh token and the family stands. `None` when it cannot be told.
    pub(crate) async fn lineage(&self, login: &Login) -> Option<(auth::AuthSnapshot, Value)> {
        let snapshot = self.read_auth(login)?;
        let inspected = self.mock.inspect(&snapshot.refresh_token).await.ok()?;
        Some((snapshot, inspected))
    }

    fn token_url(&self) -> String {
        self.relay.url("/oauth/token")
    }

    /// `keyward-mock cli-refresh --force`: one refresh exactly as the Codex CLI does it (spend
    /// without a lock, then its locks, temp file and rename). The caller holds `cli_gate`.
    pub(crate) async fn cli_refresh(&self, login: &Login, what: &'static str) -> Result<CliRun> {
        let before = self.read_auth(login).map(|s| s.refresh_token);
        let start_ms = now_ms();
        let mut command = Command::new(&self.mock_bin);
        command
            .arg("cli-refresh")
            .arg("--codex-home")
            .arg(&login.home)
            .args([
                "--token-url",
                &self.token_url(),
                "--force",
                "--pause-ms",
                "20",
            ]);
        let ran = procs::run(command, HELPER_PATIENCE).await?;
        let result = serde_json::from_str::<Value>(ran.stdout.trim())
            .ok()
            .and_then(|v| {
                let result = v["result"].as_str()?.to_owned();
                Some(match v["code"].as_str() {
                    Some(code) => format!("{result} {code}"),
                    None => result,
                })
            })
            .unwrap_or_else(|| format!("exit {:?}: {}", ran.code, ran.stderr.trim()));
        self.read_auth(login);
        let run = CliRun {
            what,
            start_ms,
            end_ms: now_ms(),
            token_before: before,
            result,
        };
        lock(&self.cli_runs).push(run.clone());
        Ok(run)
    }

    /// One `codex exec` turn of the real Codex CLI against the mock, on the shared Codex home:
    /// it refreshes the login at start (every token here is inside its 5-minute window). The
    /// caller holds `cli_gate`. Its new token is queued to live an hour, so it does not refresh
    /// in a loop and race itself.
    pub(crate) async fn real_cli(&self, login: &Login) -> Result<Option<CliRun>> {
        let Some(cli) = &self.codex_cli else {
            return Ok(None);
        };
        let before = self.read_auth(login).map(|s| s.refresh_token);
        let work = self.root.join("codex-work");
        std::fs::create_dir_all(&work)?;
        self.mock.ttl_queue(json!([3600])).await?;
        let start_ms = now_ms();
        let mut command = Command::new(cli);
        command
            .args(["exec", "--skip-git-repo-check", "--ephemeral", "-C"])
            .arg(&work)
            .arg("say hi")
            .env("CODEX_HOME", &login.home)
            .env("HOME", self.root.join("user"))
            .env("CODEX_REFRESH_TOKEN_URL_OVERRIDE", self.token_url());
        let ran = procs::run(command, HELPER_PATIENCE).await?;
        self.read_auth(login);
        let result = if ran.code == Some(0) {
            "ok".to_owned()
        } else {
            format!("exit {:?}", ran.code)
        };
        let run = CliRun {
            what: "codex exec",
            start_ms,
            end_ms: now_ms(),
            token_before: before,
            result,
        };
        lock(&self.cli_runs).push(run.clone());
        Ok(Some(run))
    }

    /// A fresh login for `login`'s account written where the CLI keeps it, as `codex login`
    /// does (a new token family).
    pub(crate) async fn fresh_login(&self, login: &Login) -> Result<()> {
        let mut command = Command::new(&self.mock_bin);
        command
            .arg("write-login")
            .arg("--codex-home")
            .arg(&login.home)
            .args([
                "--mock-url",
                self.mock.url(),
                "--account-id",
                login.account,
                "--email",
                &format!("{}@example.com", login.account),
                "--plan",
                "plus",
                "--access-ttl",
                &login.ttl.to_string(),
            ]);
        let ran = procs::run(command, HELPER_PATIENCE).await?;
        anyhow::ensure!(
            ran.code == Some(0),
            "write-login failed: {} {}",
            ran.stdout,
            ran.stderr
        );
        self.read_auth(login).context("reading the fresh login")?;
        Ok(())
    }

    /// Records a CLI run on the timeline.
    pub(crate) fn cli_event(&self, kind: Kind, run: &CliRun) {
        let id = self.timeline.begin(
            kind,
            None,
            Some("openai-codex:default"),
            format!("{}: {}", run.what, run.result),
        );
        self.timeline.set_start(id, run.start_ms);
        self.timeline.end_at(id, run.end_ms);
    }
}

/// The config of every keyward process of one store: the second login, both logins serving in
/// turn (round robin, so both carry traffic), and refresh timing scaled to tokens living 30-40 s.
pub(crate) fn keyward_config(work_home: &std::path::Path, margin: &str, jitter: &str) -> String {
    format!(
        r#"[refresh]
margin = "{margin}"
jitter = "{jitter}"
min_validity = "5s"
lock_timeout = "30s"
settle_window = "3s"
token_timeout = "10s"
tick = "1s"

[[codex.profiles]]
name = "work"
home = "{work}"

[[routes]]
model = "*"
profiles = ["openai-codex:default", "openai-codex:work"]
strategy = "round-robin"
"#,
        work = work_home.display()
    )
}
