//! `keyward doctor [--json]`: checks what users trip over, one line each with ✓ (fine), ! (a
//! warning), ✗ (broken: with what to do) or · (nothing to check), and exits as `status` does.
//!
//! The checks: keyward's home and its files' modes, the config, every profile's login, the
//! gateway keys against the listen address, whether `serve` answers on its address (or something
//! else holds the port), the service, each installed client's settings, the clock, and whether
//! the providers' hosts answer. Doctor changes nothing but what `status` would (the store is
//! opened, and created if missing); it never prints a secret.

mod clients;
mod local;
mod network;

use std::io::Write;
use std::path::Path;

use serde::Serialize;

use crate::cli::exit;
use crate::config::{Config, ProcessEnv};

#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// Machine-readable output: `{"ok": bool, "checks": [{"name","status","summary","remedy"}]}`.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    Ok,
    Warn,
    Fail,
    /// Nothing to check, or skipped (says why).
    Info,
}

impl Status {
    fn symbol(self) -> &'static str {
        match self {
            Status::Ok => "✓",
            Status::Warn => "!",
            Status::Fail => "✗",
            Status::Info => "·",
        }
    }
}

/// One check's result.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Check {
    pub name: String,
    pub status: Status,
    pub summary: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remedy: Option<String>,
}

impl Check {
    pub(crate) fn new(name: impl Into<String>, status: Status, summary: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            status,
            summary: summary.into(),
            remedy: None,
        }
    }

    pub(crate) fn ok(name: impl Into<String>, summary: impl Into<String>) -> Self {
        Self::new(name, Status::Ok, summary)
    }

    pub(crate) fn info(name: impl Into<String>, summary: impl Into<String>) -> Self {
        Self::new(name, Status::Info, summary)
    }

    pub(crate) fn warn(
        name: impl Into<String>,
        summary: impl Into<String>,
        remedy: impl Into<String>,
    ) -> Self {
        Self::new(name, Status::Warn, summary).with_remedy(remedy)
    }

    pub(crate) fn fail(
        name: impl Into<String>,
        summary: impl Into<String>,
        remedy: impl Into<String>,
    ) -> Self {
        Self::new(name, Status::Fail, summary).with_remedy(remedy)
    }

    pub(crate) fn with_remedy(mut self, remedy: impl Into<String>) -> Self {
        let remedy = remedy.into();
        self.remedy = (!remedy.is_empty()).then_some(remedy);
        self
    }
}

/// The name of the config check: a failure there is a usage error (exit 2), as for every command.
const CONFIG: &str = "config";

pub(crate) fn run(args: DoctorArgs, explicit_config: Option<&Path>) -> u8 {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("keyward: cannot start the async runtime: {e}");
            return exit::FAILURE;
        }
    };
    let checks = runtime.block_on(all_checks(explicit_config));
    let mut out = std::io::stdout().lock();
    let ok = checks.iter().all(|c| c.status != Status::Fail);
    if args.json {
        let report = serde_json::json!({ "ok": ok, "checks": checks });
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        let width = checks
            .iter()
            .map(|c| c.name.chars().count())
            .max()
            .unwrap_or(0);
        for check in &checks {
            let _ = writeln!(
                out,
                "{} {:<width$}  {}",
                check.status.symbol(),
                check.name,
                check.summary
            );
            if let Some(remedy) = &check.remedy {
                let _ = writeln!(out, "  {:<width$}  to fix: {remedy}", "");
            }
        }
        let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
        let warned = checks.iter().filter(|c| c.status == Status::Warn).count();
        let _ = writeln!(out, "\n{failed} failed, {warned} warnings");
    }
    if ok {
        exit::OK
    } else if checks
        .iter()
        .any(|c| c.status == Status::Fail && c.name == CONFIG)
    {
        exit::USAGE
    } else {
        exit::NEEDS_LOGIN
    }
}

async fn all_checks(explicit_config: Option<&Path>) -> Vec<Check> {
    let env = ProcessEnv;
    let mut checks = Vec::new();
    let home_ok = local::home(&env, &mut checks);
    let config = match Config::load(&env, explicit_config) {
        Ok(config) => config,
        Err(e) => {
            checks.push(Check::fail(
                CONFIG,
                e.to_string(),
                "fix the file as the message says; `keyward doctor` checks it again",
            ));
            checks.push(Check::info(
                "other checks",
                "skipped: they need a config that loads",
            ));
            return checks;
        }
    };
    local::config(&config, &mut checks);
    local::gateway_keys(&config, &mut checks);
    local::environment(&env, &config, &mut checks);
    if home_ok {
        local::logins(&config, &mut checks).await;
    } else {
        checks.push(Check::info(
            "logins",
            "skipped: keyward's home must be fixed first (keyward keeps what it knows of each login there)",
        ));
    }
    let running = network::serve(&config, &mut checks).await;
    local::service(&env, &config, explicit_config, running, &mut checks);
    clients::check(&env, &config, &mut checks);
    network::providers(&config, &mut checks).await;
    checks
}
