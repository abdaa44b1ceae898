//! The command line: `serve`, `status`, `token`, `login`, `logout`, and the commands that set
//! keyward up and check it (`doctor`, `service`, `setup`, `completions`, `man`: each in its own
//! module under `commands`). Each command returns an exit code.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::app::{self, App};
use crate::broker::{AccessError, HealthState};
use crate::commands::{doctor, extras, login, service, setup, usage};
use crate::config::{Config, ProcessEnv};
use crate::gateway::{self, Gateway};
use crate::profile::ProfileId;
use crate::report::{pool_reports, relative, window_text, ProfileReport};

pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILURE: u8 = 1;
    pub const USAGE: u8 = 2;
    /// A profile needs a new login (or is not in a state keyward can serve).
    pub const NEEDS_LOGIN: u8 = 3;
    /// Temporarily unavailable: try again.
    pub const UNAVAILABLE: u8 = 4;
}

#[derive(Debug, Parser)]
#[command(
    name = "keyward",
    version = env!("KEYWARD_VERSION"),
    about = "Lends your coding CLIs' logins to standard HTTP APIs, keeping their OAuth lineage alive."
)]
pub struct Cli {
    /// Configuration file (default: $KEYWARD_HOME/config.toml, if it exists).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Log lines as human-readable text or as JSON objects (one per line).
    #[arg(
        long,
        global = true,
        value_enum,
        env = "KEYWARD_LOG_FORMAT",
        default_value = "human"
    )]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway until SIGINT or SIGTERM.
    Serve {
        /// Address to listen on (default 127.0.0.1:7411, or `listen` in the config file).
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
    },
    /// Show each profile: source, account, token expiry, lineage, health and remedy.
    Status {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Print a valid access token for scripts (refreshing it through the lineage-safe protocol).
    Token {
        /// Profile id (default: openai-codex:default).
        profile: Option<ProfileId>,
        /// Refresh now even if the token is still valid.
        #[arg(long)]
        refresh: bool,
    },
    /// Sign a Codex profile in with ChatGPT, as `codex login` does (the Codex CLI uses the login too).
    Login {
        /// The profile (NAME or openai-codex:NAME); a new one gets a Codex home under keyward's
        /// and is added to the config (default: openai-codex:default, in $CODEX_HOME).
        #[arg(long, value_name = "NAME")]
        profile: Option<String>,
        /// Sign in with a device code, for a machine without a browser.
        #[arg(long)]
        device: bool,
        /// Replace a login without asking.
        #[arg(long)]
        force: bool,
        /// Give up after this long (default 10m, 15m with --device).
        #[arg(long, value_name = "DURATION", value_parser = humantime_serde::re::humantime::parse_duration)]
        timeout: Option<Duration>,
    },
    /// Sign a Codex profile out: revoke its login and remove it (the Codex CLI on that home too).
    Logout {
        /// The profile (NAME or openai-codex:NAME; default: openai-codex:default).
        profile: Option<String>,
        /// Do not ask first.
        #[arg(long)]
        force: bool,
    },
    /// What each gateway key and client used (from the usage ledger), and each login's usage
    /// windows with every key's share.
    Usage(UsageArgs),
    /// Check the logins, keyward's home and config, the server, the service, the clients'
    /// settings, the clock and the provider's hosts; print each with what to do.
    Doctor(DoctorArgs),
    /// Run keyward as a per-user service that starts at login (systemd user unit, launchd agent).
    Service(ServiceArgs),
    /// Point a tool (Claude Code, the Codex CLI, opencode, Aider, Continue, your shell) at keyward.
    Setup(SetupArgs),
    /// Print a shell completion script (e.g. `keyward completions bash >
    /// ~/.local/share/bash-completion/completions/keyward`).
    Completions {
        #[arg(value_enum)]
        shell: CompletionShell,
    },
    /// Print the man page (roff): `keyward man > keyward.1`.
    Man,
}

pub use crate::commands::doctor::DoctorArgs;
pub use crate::commands::extras::CompletionShell;
pub use crate::commands::service::{Manager, ServiceAction, ServiceArgs};
pub use crate::commands::setup::{ClientName, SetupArgs};
pub use crate::commands::usage::UsageArgs;

pub fn run(cli: Cli) -> u8 {
    // These read what they check, or write only their own files: none prepares keyward's home.
    match cli.command {
        Command::Doctor(args) => return doctor::run(args, cli.config.as_deref()),
        Command::Service(args) => return service::run(args, cli.config.as_deref()),
        Command::Setup(args) => return setup::run(args, cli.config.as_deref()),
        Command::Completions { shell } => return extras::completions(shell),
        Command::Man => return extras::man(),
        Command::Serve { .. }
        | Command::Status { .. }
        | Command::Token { .. }
        | Command::Login { .. }
        | Command::Logout { .. }
        | Command::Usage(_) => {}
    }
    let home = match crate::config::keyward_home(&ProcessEnv) {
        Ok(home) => home,
        Err(e) => {
            eprintln!("keyward: {e}");
            return exit::USAGE;
        }
    };
    match crate::host::prepare_home(&home) {
        Ok(warnings) => {
            for warning in warnings {
                tracing::warn!("{warning}");
            }
        }
        Err(e) => {
            eprintln!("keyward: {e}");
            return exit::USAGE;
        }
    }
    let config = match Config::load(&ProcessEnv, cli.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("keyward: {e}");
            return exit::USAGE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("keyward: cannot start the async runtime: {e}");
            return exit::FAILURE;
        }
    };
    let code = runtime.block_on(async move {
        match cli.command {
            Command::Serve { listen } => serve(config, listen).await,
            Command::Status { json } => status(config, json, cli.config).await,
            Command::Token { profile, refresh } => token(config, profile, refresh).await,
            Command::Login {
                profile,
                device,
                force,
                timeout,
            } => {
                let options = login::LoginOptions {
                    profile,
                    device,
                    force,
                    timeout,
                };
                login::login(&config, options).await
            }
            Command::Logout { profile, force } => login::logout(&config, profile, force).await,
            Command::Usage(args) => usage::run(&config, &args),
            // Dispatched above, before keyward's home is prepared.
            Command::Doctor(_)
            | Command::Service(_)
            | Command::Setup(_)
            | Command::Completions { .. }
            | Command::Man => exit::USAGE,
        }
    });
    // Blocking work still running (a file read that hangs) must not hold the exit.
    runtime.shutdown_timeout(Duration::from_secs(1));
    code
}

async fn serve(config: Config, listen: Option<SocketAddr>) -> u8 {
    // Each streamed request holds two sockets (client and upstream); a shell's usual soft limit
    // of 1024 descriptors would refuse connections at about 500 concurrent streams.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "open file limit"),
        Err(e) => tracing::warn!(error = %e, "could not raise the open file limit"),
    }
    let App { broker, pool } = match app::build(&config) {
        Ok(app) => app,
        Err(e) => {
            eprintln!("keyward: {e}");
            return exit::FAILURE;
        }
    };
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    if let Some(unset) = config.gateway.unset_keys.first() {
        eprintln!(
            "keyward: {} is not valid: {unset}",
            config.config_path.display()
        );
        return exit::USAGE;
    }
    let addr = listen.unwrap_or(config.listen);
    if !addr.ip().is_loopback() && config.gateway.api_keys.is_empty() {
        eprintln!(
            "keyward: refusing to listen on {addr}: without gateway keys, anyone who can reach that address would use your login. Set keys first ({} or [gateway] api_keys in {}), or listen on a loopback address (127.0.0.1 or [::1]).",
            crate::config::API_KEYS_ENV,
            config.config_path.display()
        );
        return exit::USAGE;
    }
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("keyward: cannot listen on {addr}: {e} (choose another with --listen)");
            return exit::FAILURE;
        }
    };
    let ledger = match crate::ledger::Ledger::start(&config, pool.clone(), broker.clock().clone()) {
        Ok(ledger) => ledger,
        Err(e) => {
            eprintln!("keyward: {e}");
            return exit::FAILURE;
        }
    };
    let gateway = Gateway::new(
        broker.clone(),
        pool,
        config.models.clone(),
        config.gateway.clone(),
        ledger.clone(),
    );
    let _watcher = match crate::watcher::watch(broker.profiles()) {
        Ok(watcher) => Some(watcher),
        Err(e) => {
            tracing::warn!(error = %e, "file watching unavailable; relying on identity checks");
            None
        }
    };
    broker.start();
    let bound = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| addr.to_string());
    tracing::info!(store = %config.keyward_home.display(), upstreams = %config.describe_upstreams(), "keyward listening on http://{bound}");
    for runtime in broker.profiles() {
        tracing::info!(profile = %runtime.id, source = %runtime.source.location(), "profile");
    }
    for profile in config.api_profiles() {
        tracing::info!(profile = %profile.id, key = %profile.origin, base_url = %profile.base_url, "profile");
    }
    let result = gateway::serve(gateway, listener, shutdown_signal()).await;
    // The requests served are in the ledger before keyward stops.
    let _ = tokio::task::spawn_blocking(move || ledger.flush()).await;
    tracing::info!("shutting down: waiting for refreshes in flight");
    broker.shutdown(Duration::from_secs(40)).await;
    match result {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("keyward: the server failed: {e}");
            exit::FAILURE
        }
    }
}

/// Resolves at the first SIGINT, SIGTERM or SIGHUP (the terminal closing): a graceful stop. A
/// second signal ends the process at once; a refresh it cuts short is in the journal, and the
/// next start finishes it.
async fn shutdown_signal() {
    let mut signals = match StopSignals::new() {
        Ok(signals) => signals,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGTERM and SIGHUP; only Ctrl-C stops keyward");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    signals.next().await;
    tracing::info!("stopping: requests in flight may finish; a second signal stops at once");
    tokio::spawn(async move {
        signals.next().await;
        tracing::warn!("stopping at once: requests in flight are cut; a refresh in flight is finished from the journal at the next start");
        std::process::exit(i32::from(exit::FAILURE));
    });
}

struct StopSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn new() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }

    async fn next(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
            _ = self.hangup.recv() => {}
        }
    }
}

async fn status(config: Config, json: bool, config_path: Option<PathBuf>) -> u8 {
    let App { broker, pool } = match app::build(&config) {
        Ok(app) => app,
        Err(e) => {
            eprintln!("keyward: {e}");
            return exit::FAILURE;
        }
    };
    let mut reports = pool_reports(&broker, &pool).await;
    for report in &mut reports {
        if let Ok(id) = report.profile.parse() {
            report.recent_health = broker.store().health_history(&id, 5).unwrap_or_default();
        }
    }
    let mut out = std::io::stdout().lock();
    if json {
        let text = serde_json::to_string_pretty(&reports).unwrap_or_default();
        let _ = writeln!(out, "{text}");
    } else {
        for report in &reports {
            let _ = write!(out, "{}", human(report));
        }
        if let Some(state) = service::state(&ProcessEnv, &config, config_path.as_deref()) {
            let _ = writeln!(out, "service  {}", state.summary());
        }
    }
    let all_ok = reports.iter().all(|r| {
        matches!(
            r.health.state,
            HealthState::Ok | HealthState::Expired | HealthState::ApiKey
        )
    });
    if all_ok {
        exit::OK
    } else {
        exit::NEEDS_LOGIN
    }
}

fn human(report: &ProfileReport) -> String {
    let mut lines = vec![format!(
        "{}  [{}]",
        report.profile,
        report.health.state.as_str()
    )];
    let mut field = |name: &str, value: String| lines.push(format!("  {name:<14}{value}"));
    field(
        "source",
        format!("{} ({})", report.source, report.source_kind),
    );
    if let Some(store) = &report.store {
        field("store", format!("{} ({})", store.kind, store.chosen_by));
    }
    if let Some(account) = &report.account_id {
        field("account", account.clone());
    }
    if let Some(email) = &report.email {
        field("email", email.clone());
    }
    if let Some(plan) = &report.plan {
        field("plan", plan.clone());
    }
    if let (Some(at), Some(secs)) = (report.access_expires_at, report.access_expires_in_secs) {
        let verb = if secs >= 0 { "expires" } else { "expired" };
        field(
            "access token",
            format!(
                "{verb} {} ({})",
                relative(secs),
                at.format("%Y-%m-%d %H:%M:%S UTC")
            ),
        );
    }
    if report.generation > 0 {
        field(
            "lineage",
            format!(
                "generation {} (refresh token {})",
                report.generation,
                report.refresh_token.clone().unwrap_or_default()
            ),
        );
    }
    if let Some(at) = report.last_refresh {
        let by = report
            .lineage_changed_by
            .clone()
            .unwrap_or_else(|| "unknown".into());
        let secs = (at - chrono::Utc::now()).num_seconds();
        field("last refresh", format!("{} by {by}", relative(secs)));
    }
    if let Some(outcome) = &report.last_outcome {
        field("last outcome", outcome.clone());
    }
    if let Some(cooldown) = &report.cooldown {
        let secs = (cooldown.until - chrono::Utc::now()).num_seconds();
        field(
            "cooldown",
            format!(
                "resting until {} ({}): {}",
                cooldown.until.format("%Y-%m-%d %H:%M:%S UTC"),
                relative(secs),
                cooldown.reason
            ),
        );
    }
    if let Some(usage) = &report.usage {
        for window in &usage.windows {
            field(&format!("usage {}", window.name), window_text(window));
        }
    }
    field("health", report.health.detail.clone());
    if let Some(remedy) = &report.health.remedy {
        field("to fix", remedy.clone());
    }
    for warning in &report.warnings {
        field("warning", warning.clone());
    }
    for event in &report.recent_health {
        let when = event.at.format("%Y-%m-%d %H:%M:%S UTC");
        field(
            "history",
            format!("{when} {}: {}", event.health, event.detail),
        );
    }
    lines.push(String::new());
    lines.join("\n") + "\n"
}

async fn token(config: Config, profile: Option<ProfileId>, refresh: bool) -> u8 {
    let App { broker, .. } = match app::build(&config) {
        Ok(app) => app,
        Err(e) => {
            eprintln!("keyward: {e}");
            return exit::FAILURE;
        }
    };
    let profile = profile.unwrap_or_else(ProfileId::codex_default);
    if broker.profile(&profile).is_none() && config.api_profiles().any(|p| p.id == profile) {
        eprintln!(
            "keyward: {profile} serves with an API key, which keyward does not print; `keyward token` prints the access tokens of logins (`keyward status` lists them)"
        );
        return exit::USAGE;
    }
    let result = if refresh {
        broker.force_refresh(&profile).await
    } else {
        broker.access(&profile).await
    };
    broker.shutdown(Duration::from_secs(40)).await;
    match result {
        Ok(grant) => {
            println!("{}", grant.credential.access_token.expose());
            exit::OK
        }
        Err(e) => {
            let code = match &e {
                AccessError::UnknownProfile(_) => exit::USAGE,
                AccessError::NeedsLogin { .. } => exit::NEEDS_LOGIN,
                AccessError::Unavailable { .. } => exit::UNAVAILABLE,
                AccessError::Store(_) => exit::FAILURE,
            };
            let remedy = match &e {
                AccessError::NeedsLogin { remedy, .. } => format!("\n  to fix: {remedy}"),
                AccessError::Unavailable {
                    remedy: Some(remedy),
                    ..
                } => format!("\n  to fix: {remedy}"),
                _ => String::new(),
            };
            eprintln!("keyward: {e}{remedy}");
            code
        }
    }
}
