//! The checks of this machine: keyward's home and files, the config, the gateway keys, the
//! environment, each login (and the clock against its token), the service.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use chrono::Utc;

use super::{Check, Status};
use crate::broker::HealthState;
use crate::commands::service;
use crate::commands::setup::{client_origin, PLACEHOLDER_KEY};
use crate::config::{self, Config};
use crate::env::Env;
use crate::host::{self, HostError};
use crate::report::{profile_report, relative, ProfileReport};

/// A token issued further ahead of this machine's clock than this says the clock is behind.
const CLOCK_SLACK_SECS: i64 = 120;

/// keyward's home: the user's own, not writable by others; its store files the user's. Returns
/// whether the store may be opened.
pub(super) fn home(env: &dyn Env, checks: &mut Vec<Check>) -> bool {
    let name = "home";
    let home = match config::keyward_home(env) {
        Ok(home) => home,
        Err(e) => {
            checks.push(Check::fail(name, e.to_string(), ""));
            return false;
        }
    };
    let path = home.display().to_string();
    let meta = match fs::metadata(&home) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            checks.push(Check::info(
                name,
                format!(
                    "{path} does not exist yet: keyward creates it (mode 700) when it first runs"
                ),
            ));
            return true;
        }
        Err(e) => {
            checks.push(Check::fail(name, format!("{path}: {e}"), ""));
            return false;
        }
    };
    let mode = meta.mode() & 0o777;
    let problem = if !meta.is_dir() {
        Some(HostError::NotADirectory { path: path.clone() })
    } else if meta.uid() != host::our_uid() {
        Some(HostError::NotOurs {
            path: path.clone(),
            owner: meta.uid(),
        })
    } else if mode & 0o022 != 0 {
        Some(HostError::Writable {
            path: path.clone(),
            mode,
        })
    } else {
        None
    };
    if let Some(problem) = problem {
        // The error's text carries its remedy.
        checks.push(Check::fail(name, problem.to_string(), ""));
        return false;
    }
    let mut ok = true;
    for file in host::store_files(&home.join("keyward.db")) {
        if let Err(e) = host::check_store_file(&file) {
            checks.push(Check::fail("store", e.to_string(), ""));
            ok = false;
        }
    }
    if mode & 0o077 != 0 {
        checks.push(Check::warn(
            name,
            format!("{path} can be read by other users (mode {mode:03o})"),
            format!("chmod 700 {path}"),
        ));
    } else {
        checks.push(Check::ok(name, format!("{path} (mode {mode:03o})")));
    }
    ok
}

pub(super) fn config(config: &Config, checks: &mut Vec<Check>) {
    let path = config.config_path.display();
    let summary = if config.config_path.exists() {
        format!("{path}: valid")
    } else {
        format!("no file at {path}: the defaults")
    };
    checks.push(Check::ok(super::CONFIG, summary));
    for warning in &config.warnings {
        checks.push(Check::warn(super::CONFIG, warning.clone(), ""));
    }
}

pub(super) fn gateway_keys(config: &Config, checks: &mut Vec<Check>) {
    let name = "gateway keys";
    let keys = config.gateway.api_keys.len();
    let listen = config.listen;
    if keys > 0 {
        checks.push(Check::ok(
            name,
            format!("{keys} set: every request must carry one"),
        ));
    } else if listen.ip().is_loopback() {
        checks.push(Check::ok(
            name,
            format!("none: keyward listens on loopback ({listen}) only"),
        ));
    } else {
        checks.push(Check::fail(
            name,
            format!("none, and listen = {listen} is not a loopback address: `keyward serve` refuses to start so, since anyone who reaches it would use your login"),
            format!("set keys ({} or [gateway] api_keys in {}), or listen on 127.0.0.1", config::API_KEYS_ENV, config.config_path.display()),
        ));
    }
}

/// A `keyward serve` started from this environment would serve a client's variables (the ones
/// `keyward setup shell` exports) as API-key profiles.
pub(super) fn environment(env: &dyn Env, config: &Config, checks: &mut Vec<Check>) {
    let origin = client_origin(config.listen);
    for (key, base) in [
        ("OPENAI_API_KEY", "OPENAI_BASE_URL"),
        ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"),
    ] {
        let Some(value) = env.get(key) else { continue };
        let for_keyward = env.get(base).is_some_and(|url| url.starts_with(&origin))
            || value == PLACEHOLDER_KEY
            || config.gateway.api_keys.iter().any(|k| k.expose() == value);
        if for_keyward {
            checks.push(Check::warn(
                "environment",
                format!("{key} here is for clients of keyward (it goes with {base} pointing at keyward): a `keyward serve` started from this environment would serve it as an API-key profile"),
                "run keyward as a service (`keyward service install`), or start it where these variables are not set",
            ));
        }
    }
}

/// Which store a login is kept in, for its check: the report's (`file`, or `keyring` where the
/// Codex CLI's `cli_auth_credentials_store` puts it there).
fn credential_store(report: &ProfileReport) -> &'static str {
    report.store.as_ref().map_or("file", |store| store.kind)
}

pub(super) async fn logins(config: &Config, checks: &mut Vec<Check>) {
    let app = match crate::app::build(config) {
        Ok(app) => app,
        Err(e) => {
            checks.push(Check::fail(
                "store",
                e.to_string(),
                "see the message; `keyward status` shows the same",
            ));
            return;
        }
    };
    let broker = &app.broker;
    let now = Utc::now();
    let mut clock_behind: Option<(String, i64)> = None;
    for runtime in broker.profiles() {
        let view = broker.current_view(runtime).await;
        let report = profile_report(broker, runtime, &view);
        let name = format!("login {}", report.profile);
        let store = credential_store(&report);
        let who = match (&report.email, &report.plan) {
            (Some(email), Some(plan)) => format!(" of {email} ({plan})"),
            (Some(email), None) => format!(" of {email}"),
            _ => String::new(),
        };
        let expiry = match report.access_expires_in_secs {
            Some(secs) if secs >= 0 => format!("; access token expires {}", relative(secs)),
            Some(secs) => format!(
                "; access token expired {}: keyward refreshes it at the next request",
                relative(secs)
            ),
            None => String::new(),
        };
        let source = format!("{} ({store})", report.source);
        let (status, summary) = match report.health.state {
            HealthState::Ok | HealthState::Expired => (
                Status::Ok,
                format!("ChatGPT login{who} in {source}{expiry}"),
            ),
            HealthState::ApiKey => (Status::Ok, format!("an API key in {source}")),
            state => (
                if state == HealthState::Degraded {
                    Status::Warn
                } else {
                    Status::Fail
                },
                format!("{}: {} ({source})", state.as_str(), report.health.detail),
            ),
        };
        checks.push(
            Check::new(name.clone(), status, summary)
                .with_remedy(report.health.remedy.clone().unwrap_or_default()),
        );
        for warning in &report.warnings {
            checks.push(Check::warn(name.clone(), warning.clone(), ""));
        }
        let issued = view.credential.as_ref().and_then(|c| c.claims.issued_at);
        if let Some(ahead) = issued.map(|at| (at - now).num_seconds()) {
            if ahead > CLOCK_SLACK_SECS && clock_behind.as_ref().is_none_or(|(_, a)| ahead > *a) {
                clock_behind = Some((report.profile.clone(), ahead));
            }
        }
    }
    for profile in config.api_profiles() {
        checks.push(Check::ok(
            format!("login {}", profile.id),
            format!("an API key from {}", profile.origin),
        ));
    }
    if broker.profiles().is_empty() && config.api_profiles().next().is_none() {
        checks.push(Check::fail(
            "logins",
            "no profile: keyward has nothing to serve",
            "log in with `codex login`, or configure a profile (README: the pool)",
        ));
    }
    if let Some((profile, ahead)) = clock_behind {
        checks.push(Check::warn(
            "clock",
            format!("this machine's clock is behind: {profile}'s access token was issued {} from now", relative(ahead).trim_start_matches("in ")),
            "set the clock right (e.g. `timedatectl set-ntp true`): keyward schedules refreshes by it",
        ));
    }
}

pub(super) fn service(
    env: &dyn Env,
    config: &Config,
    explicit_config: Option<&Path>,
    running: bool,
    checks: &mut Vec<Check>,
) {
    let name = "service";
    let Some(state) = service::state(env, config, explicit_config) else {
        checks.push(Check::info(name, "cannot tell (no home directory)"));
        return;
    };
    let summary = state.summary();
    let check = if !state.installed {
        let remedy = if running {
            ""
        } else {
            "`keyward service install` starts keyward now and at every login"
        };
        Check::info(name, summary).with_remedy(remedy)
    } else if !state.available {
        Check::warn(name, summary, state.detail.clone().unwrap_or_default())
    } else if !state.healthy() {
        let logs = if state.manager.starts_with("launchd") {
            "the log in keyward's home (keyward.log)".to_string()
        } else {
            "`journalctl --user -u keyward`".to_string()
        };
        Check::fail(
            name,
            summary,
            format!("see why in {logs}, then `keyward service install` enables and starts it"),
        )
    } else if state.outdated {
        Check::warn(
            name,
            summary,
            "`keyward service install` rewrites it for this binary and environment",
        )
    } else {
        Check::ok(name, summary)
    };
    checks.push(check);
}
