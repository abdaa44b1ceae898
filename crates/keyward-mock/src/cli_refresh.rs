//! `cli-refresh`: one refresh of `auth.json` following the Codex CLI's order
//! of operations, including its weak spots: the token is spent before any
//! lock is taken, so two such processes racing can both spend the same
//! refresh token. Tests run keyward against this to check it copes.

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth_file;
use crate::jwt;

pub(crate) const CLIENT_ID: &str = "app_EMoamEEZ73f0CkXaXp7hrann";

#[derive(Debug, clap::Args)]
pub(crate) struct CliRefreshArgs {
    /// Directory holding auth.json (the CLI's $CODEX_HOME).
    #[arg(long)]
    pub(crate) codex_home: PathBuf,
    /// Full URL of the token endpoint, e.g. http://127.0.0.1:PORT/oauth/token.
    #[arg(long)]
    pub(crate) token_url: String,
    /// Refresh even if the access token is not close to expiry.
    #[arg(long)]
    pub(crate) force: bool,
    /// Refresh only when the access token expires within this many seconds.
    #[arg(long, default_value_t = 300)]
    pub(crate) window_secs: i64,
    /// Upper bound of a random pause between loading and refreshing.
    #[arg(long, default_value_t = 0)]
    pub(crate) pause_ms: u64,
}

#[derive(Debug, Deserialize)]
struct TokenAnswer {
    id_token: Option<String>,
    access_token: Option<String>,
    refresh_token: Option<String>,
}

fn report(result: &Value) {
    println!("{result}");
}

fn needs_refresh(auth: &Value, window_secs: i64) -> bool {
    let exp = auth_file::access_token(auth)
        .and_then(|t| jwt::decode_payload(t).ok())
        .and_then(|claims| claims.get("exp").and_then(Value::as_i64));
    match exp {
        Some(exp) => exp.saturating_sub(chrono::Utc::now().timestamp()) <= window_secs,
        // An access token we cannot read is as good as expired.
        None => true,
    }
}

fn error_code(body: &Value) -> String {
    match body.get("error") {
        Some(Value::Object(err)) => err
            .get("code")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_owned(),
        Some(Value::String(code)) => code.clone(),
        _ => "unknown".to_owned(),
    }
}

pub(crate) async fn run(args: CliRefreshArgs) -> Result<ExitCode> {
    let path = auth_file::auth_path(&args.codex_home);
    let cached = auth_file::read(&path)?;
    if !args.force && !needs_refresh(&cached, args.window_secs) {
        report(&json!({"result": "fresh"}));
        return Ok(ExitCode::SUCCESS);
    }
    let cached_refresh = auth_file::refresh_token(&cached)
        .context("auth.json has no tokens.refresh_token")?
        .to_owned();

    if args.pause_ms > 0 {
        let pause = rand::random_range(0..=args.pause_ms);
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }

    // The CLI's guarded reload takes no lock: it only narrows the race.
    let reloaded = auth_file::read(&path)?;
    if auth_file::refresh_token(&reloaded) != Some(cached_refresh.as_str()) {
        report(&json!({"result": "adopted"}));
        return Ok(ExitCode::SUCCESS);
    }

    let answer = match spend(&args.token_url, &cached_refresh).await {
        Ok(Spent::Tokens(answer)) => answer,
        Ok(Spent::Rejected { status, code }) => {
            let exit = if code == "refresh_token_reused" { 3 } else { 1 };
            report(&json!({"result": "error", "status": status, "code": code}));
            return Ok(ExitCode::from(exit));
        }
        Err(err) => {
            eprintln!("token request failed: {err:#}");
            report(&json!({"result": "transport_error"}));
            return Ok(ExitCode::from(1));
        }
    };

    match persist(&args.codex_home, &answer)? {
        Persisted::Written => {
            report(&json!({"result": "refreshed"}));
            Ok(ExitCode::SUCCESS)
        }
        Persisted::LockBusy => {
            report(&json!({"result": "lock_busy"}));
            Ok(ExitCode::from(4))
        }
    }
}

enum Spent {
    Tokens(TokenAnswer),
    Rejected { status: u16, code: String },
}

async fn spend(token_url: &str, refresh_token: &str) -> Result<Spent> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let response = client
        .post(token_url)
        .json(&json!({
            "client_id": CLIENT_ID,
            "grant_type": "refresh_token",
            "refresh_reason": "proactive_expiry",
            "refresh_token": refresh_token,
        }))
        .send()
        .await?;
    let status = response.status();
    let bytes = response.bytes().await?;
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if !status.is_success() {
        return Ok(Spent::Rejected {
            status: status.as_u16(),
            code: error_code(&body),
        });
    }
    match serde_json::from_value::<TokenAnswer>(body) {
        Ok(answer) if answer.refresh_token.is_some() || answer.access_token.is_some() => {
            Ok(Spent::Tokens(answer))
        }
        _ => Ok(Spent::Rejected {
            status: status.as_u16(),
            code: "malformed_response".to_owned(),
        }),
    }
}

enum Persisted {
    Written,
    LockBusy,
}

fn open_lock_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))
}

/// The CLI's write path: blocking `auth.lock`, re-read, non-blocking
/// `auth.json.lock`, merge, atomic replace. Both locks are flock(2) (std's
/// `File::lock` on Linux), released by dropping the files.
fn persist(codex_home: &Path, answer: &TokenAnswer) -> Result<Persisted> {
    let auth_lock = open_lock_file(&codex_home.join("auth.lock"))?;
    auth_lock.lock().context("flock auth.lock")?;
    let mut current = auth_file::read(&auth_file::auth_path(codex_home))?;
    let file_lock = open_lock_file(&codex_home.join("auth.json.lock"))?;
    match file_lock.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Ok(Persisted::LockBusy),
        Err(TryLockError::Error(err)) => {
            return Err(err).context("flock auth.json.lock");
        }
    }
    auth_file::apply_refresh(
        &mut current,
        answer.id_token.as_deref(),
        answer.access_token.as_deref(),
        answer.refresh_token.as_deref(),
    )?;
    auth_file::write_atomic(codex_home, &current)?;
    drop(file_lock);
    drop(auth_lock);
    Ok(Persisted::Written)
}
