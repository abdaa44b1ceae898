//! `write-login`: a fresh login from the mock written where the Codex CLI
//! keeps it, as the starting point of a test.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::auth_file;

#[derive(Debug, clap::Args)]
pub(crate) struct WriteLoginArgs {
    /// Directory to write auth.json into; created if missing.
    #[arg(long)]
    pub(crate) codex_home: PathBuf,
    /// Base URL of a running `keyward-mock serve`.
    #[arg(long)]
    pub(crate) mock_url: String,
    #[arg(long)]
    pub(crate) account_id: Option<String>,
    #[arg(long)]
    pub(crate) email: Option<String>,
    #[arg(long)]
    pub(crate) plan: Option<String>,
    /// Lifetime in seconds of this family's access tokens.
    #[arg(long)]
    pub(crate) access_ttl: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct LoginAnswer {
    id_token: String,
    access_token: String,
    refresh_token: String,
    account_id: String,
}

pub(crate) async fn run(args: WriteLoginArgs) -> Result<()> {
    let mut body = Map::new();
    for (name, value) in [
        ("account_id", &args.account_id),
        ("email", &args.email),
        ("plan", &args.plan),
    ] {
        if let Some(value) = value {
            body.insert(name.to_owned(), Value::String(value.clone()));
        }
    }
    if let Some(ttl) = args.access_ttl {
        body.insert("access_ttl".to_owned(), Value::from(ttl));
    }
    let url = format!("{}/admin/login", args.mock_url.trim_end_matches('/'));
    let login: LoginAnswer = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?
        .post(&url)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?
        .error_for_status()?
        .json()
        .await
        .context("parsing /admin/login answer")?;

    std::fs::create_dir_all(&args.codex_home)
        .with_context(|| format!("creating {}", args.codex_home.display()))?;
    let auth = auth_file::new_login(
        &login.id_token,
        &login.access_token,
        &login.refresh_token,
        &login.account_id,
    );
    auth_file::write_atomic(&args.codex_home, &auth)?;
    println!("{}", login.account_id);
    Ok(())
}
