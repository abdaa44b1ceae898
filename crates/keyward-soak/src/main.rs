//! `keyward-soak`: keyward under load and chaos, with a pass line (see `scripts/soak`).
//!
//! One mock provider (token endpoint behind a relay the soak can take down, Codex backend), two
//! ChatGPT logins with access tokens living 30 and 40 s, four `keyward serve` processes on the
//! same Codex homes (three sharing one `KEYWARD_HOME`, one with its own), clients in every
//! dialect through all of them, and chaos at random moments: CLI-like writers rotating
//! `auth.json`, kill -9 and restarts, crash points, SIGSTOP past expiry, upstream 5xx/429 bursts,
//! usage limits, and a token endpoint that is slow, refuses connections, drops the connection
//! before answering or loses its answer after rotating. Then the chaos stops, everything
//! settles, and the report says whether keyward kept its promises.

mod auth;
mod chaos;
mod clients;
mod finale;
mod fleet;
mod forensics;
mod load;
mod mock;
mod procs;
mod relay;
mod report;
mod soak;
mod timeline;
mod watch;

use std::net::SocketAddr;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Parser;
use keyward_mock::codex_cli_config::{config_toml, Provider};
use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::sync::watch as channel;
use tokio::task::JoinSet;

use crate::fleet::Fleet;
use crate::mock::{stat, MockAdmin};
use crate::procs::{KeywardSetup, MockProcess};
use crate::relay::Relay;
use crate::soak::{keyward_config, Login, Soak};
use crate::timeline::Timeline;

#[derive(Debug, Parser)]
#[command(about = "A fault-injecting soak of keyward, with a pass line")]
struct Args {
    /// How long the chaos runs, in minutes (fractions allowed); settling comes after.
    #[arg(long, default_value_t = 3.0)]
    minutes: f64,
    /// The random seed of every chaos decision (printed; pass it again to replay them).
    #[arg(long)]
    seed: Option<u64>,
    /// Concurrent client tasks.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// The directory holding `keyward` (built with `--features failpoints`) and `keyward-mock`;
    /// default: this binary's own directory.
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Where to copy the logs and the fault timeline when the soak fails.
    #[arg(long)]
    save_logs: Option<PathBuf>,
    /// Run the fourth keyward process on the same `KEYWARD_HOME` as the other three (by default
    /// it has its own, and cannot finish the others' crashed refreshes, nor they its).
    #[arg(long)]
    one_store: bool,
    /// Keep the logs (into `--save-logs`) even when the soak passes.
    #[arg(long)]
    keep_logs: bool,
    /// Only the final table (no line per chaos event).
    #[arg(long)]
    quiet: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // A panic of the soak itself (its main thread) ends the run: take its processes with it.
        // A task's panic is reported by the task's join instead.
        if std::thread::current().name() == Some("main") {
            procs::kill_all();
        }
        previous(info);
    }));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("soak: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let code = runtime.block_on(async {
        tokio::select! {
            outcome = run(args) => match outcome {
                Ok(true) => 0,
                Ok(false) => 1,
                Err(e) => {
                    eprintln!("soak: {e:#}");
                    2
                }
            },
            () = interrupted() => {
                eprintln!("soak: interrupted; stopping every process it started");
                130
            }
        }
    });
    procs::kill_all();
    drop(runtime);
    ExitCode::from(code)
}

async fn interrupted() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
    // Before the run is dropped and its temporary directory removed under their feet.
    procs::kill_all();
}

/// The binaries the soak runs, and the real Codex CLI if one is given.
struct Binaries {
    keyward: PathBuf,
    mock: PathBuf,
    codex_cli: Option<PathBuf>,
    codex_note: String,
}

fn binaries(args: &Args) -> Result<Binaries> {
    let dir = match &args.bin_dir {
        Some(dir) => dir.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("this binary has no directory")?
            .to_path_buf(),
    };
    let keyward = dir.join("keyward");
    let mock = dir.join("keyward-mock");
    for binary in [&keyward, &mock] {
        if !binary.is_file() {
            bail!(
                "{} is missing: build with `cargo build --profile soak -p keyward --features failpoints` and `-p keyward-mock` (scripts/soak does)",
                binary.display()
            );
        }
    }
    // Without its crash points the soak would arm nothing and never notice.
    let image =
        std::fs::read(&keyward).with_context(|| format!("reading {}", keyward.display()))?;
    if !image
        .windows(b"KEYWARD_CRASH_AT".len())
        .any(|w| w == b"KEYWARD_CRASH_AT")
    {
        bail!(
            "{} has no crash points: build it with `cargo build --profile soak -p keyward --features failpoints` (scripts/soak does)",
            keyward.display()
        );
    }
    let (codex_cli, codex_note) = match std::env::var_os("KEYWARD_CODEX_CLI").map(PathBuf::from) {
        Some(path) if path.is_file() => {
            let note = format!("codex exec runs now and then ({})", path.display());
            (Some(path), note)
        }
        Some(path) => (
            None,
            format!(
                "skipped: KEYWARD_CODEX_CLI={} is not a file",
                path.display()
            ),
        ),
        None => (
            None,
            "skipped: KEYWARD_CODEX_CLI is not set (scripts/install-peers installs it)".into(),
        ),
    };
    Ok(Binaries {
        keyward,
        mock,
        codex_cli,
        codex_note,
    })
}

fn private_dir(path: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .with_context(|| format!("creating {}", path.display()))
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

/// The RNG of one task, derived from the run's seed.
fn rng_for(seed: u64, task: u64) -> StdRng {
    StdRng::seed_from_u64(seed ^ task.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

async fn run(args: Args) -> Result<bool> {
    anyhow::ensure!(args.minutes > 0.0, "--minutes must be more than 0");
    anyhow::ensure!(args.clients > 0, "--clients must be at least 1");
    let seed = args.seed.unwrap_or_else(rand::random);
    let bins = binaries(&args)?;
    println!(
        "keyward soak: seed {seed} ({} min of chaos, {} clients); replay with --seed {seed}",
        args.minutes, args.clients
    );
    println!("real Codex CLI: {}", bins.codex_note);

    let root = tempfile::Builder::new().prefix("keyward-soak-").tempdir()?;
    let dir = root.path().to_path_buf();
    let logs = dir.join("logs");
    for path in [&logs, &dir.join("user")] {
        private_dir(path)?;
    }
    let mock_process = MockProcess::start(&bins.mock, &logs.join("mock.log")).await?;
    let mock = MockAdmin::new(&mock_process.url)?;
    let upstream: SocketAddr = mock_process
        .url
        .trim_start_matches("http://")
        .parse()
        .with_context(|| format!("the mock's address {}", mock_process.url))?;
    let relay = Relay::start(upstream).await?;

    let logins = vec![
        Login {
            profile: "openai-codex:default",
            account: "acct-default",
            home: dir.join("codex"),
            ttl: 30,
        },
        Login {
            profile: "openai-codex:work",
            account: "acct-work",
            home: dir.join("codex-work"),
            ttl: 40,
        },
    ];
    let (store_a, store_b) = (dir.join("keyward-a"), dir.join("keyward-b"));
    for (store, margin, jitter) in [(&store_a, "10s", "10s"), (&store_b, "15s", "0s")] {
        private_dir(store)?;
        write_private(
            &store.join("config.toml"),
            &keyward_config(&logins[1].home, margin, jitter),
        )?;
        write_private(
            &store.join("config-eager.toml"),
            &keyward_config(&logins[1].home, "1h", "0s"),
        )?;
    }
    let setup = KeywardSetup {
        binary: bins.keyward.clone(),
        user_home: dir.join("user"),
        codex_home: logins[0].home.clone(),
        token_url: relay.url("/oauth/token"),
        base_url: format!("{}/backend-api/codex", mock.url()),
    };
    let fourth = if args.one_store {
        (store_a.clone(), "A")
    } else {
        (store_b, "B")
    };
    let fleet = Fleet::new(
        setup,
        logs.clone(),
        &[
            (store_a.clone(), "A"),
            (store_a.clone(), "A"),
            (store_a, "A"),
            fourth,
        ],
    )?;
    let longest_ttl = logins.iter().map(|l| l.ttl).max().unwrap_or(40);
    let soak = Arc::new(Soak {
        fleet,
        mock,
        mock_bin: bins.mock.clone(),
        relay,
        timeline: Timeline::new(!args.quiet),
        logins,
        codex_cli: bins.codex_cli.clone(),
        root: dir.clone(),
        cli_gate: tokio::sync::Mutex::new(()),
        clients: Default::default(),
        health: Mutex::new(Default::default()),
        round: Mutex::new(Default::default()),
        tokens: Mutex::new(Default::default()),
        cli_runs: Mutex::new(Vec::new()),
        faults: Mutex::new(Default::default()),
        lineage_ends: Mutex::new(Vec::new()),
        problems: Mutex::new(Vec::new()),
        notes: Mutex::new(Vec::new()),
    });
    for login in &soak.logins {
        soak.fresh_login(login).await?;
    }
    if soak.codex_cli.is_some() {
        write_cli_config(&soak.logins[0].home, soak.mock.url())?;
    }
    for slot in &soak.fleet.slots {
        let mut control = slot.control.lock().await;
        soak.fleet.start(slot, &mut control, None).await?;
    }

    let (observers_stop, observers) = channel::channel(false);
    let (clients_stop, clients_rx) = channel::channel(false);
    let (chaos_stop, chaos_rx) = channel::channel(false);
    let mut watchers = JoinSet::new();
    watchers.spawn(watch::poll_health(soak.clone(), observers.clone()));
    watchers.spawn(watch::monitor_faults(soak.clone(), observers.clone()));
    watchers.spawn(watch::watch_lineages(soak.clone(), observers));
    let mut load = JoinSet::new();
    for client in 0..args.clients {
        load.spawn(load::run_client(
            soak.clone(),
            rng_for(seed, 100 + client as u64),
            clients_rx.clone(),
        ));
    }
    let chaos_time = Duration::from_secs_f64(args.minutes * 60.0);
    let patience = Duration::from_secs(3 * longest_ttl as u64);
    let mut actors = JoinSet::new();
    actors.spawn(chaos::cli_writers(
        soak.clone(),
        rng_for(seed, 1),
        chaos_rx.clone(),
    ));
    actors.spawn(chaos::killer(
        soak.clone(),
        rng_for(seed, 2),
        chaos_rx.clone(),
    ));
    actors.spawn(chaos::crasher(
        soak.clone(),
        rng_for(seed, 3),
        chaos_rx.clone(),
        patience,
    ));
    actors.spawn(chaos::stopper(
        soak.clone(),
        rng_for(seed, 4),
        chaos_rx.clone(),
        longest_ttl,
    ));
    actors.spawn(chaos::upstream_faults(
        soak.clone(),
        rng_for(seed, 5),
        chaos_rx.clone(),
    ));
    actors.spawn(chaos::usage_limits(
        soak.clone(),
        rng_for(seed, 6),
        chaos_rx.clone(),
    ));
    actors.spawn(chaos::token_faults(
        soak.clone(),
        rng_for(seed, 7),
        chaos_rx.clone(),
        chaos_time,
    ));
    actors.spawn(chaos::relay_outages(
        soak.clone(),
        rng_for(seed, 8),
        chaos_rx,
    ));

    let started = tokio::time::Instant::now();
    while started.elapsed() < chaos_time {
        let left = chaos_time.saturating_sub(started.elapsed());
        tokio::time::sleep(left.min(Duration::from_secs(30))).await;
        let stats = soak.mock.stats().await.unwrap_or_default();
        soak.timeline.say(&format!(
            "progress: {} requests served, {} failed, {} refreshes at the provider",
            soak.clients.served_total(),
            soak.clients.failures().len(),
            stat(&stats, "refresh_ok")
        ));
    }

    soak.timeline.say("chaos stops; letting everything settle");
    chaos_stop.send_replace(true);
    while let Some(joined) = actors.join_next().await {
        if let Err(e) = joined {
            soak.problem(format!("a chaos task failed: {e}"));
        }
    }
    let settled = finale::settle(&soak).await;
    clients_stop.send_replace(true);
    while let Some(joined) = load.join_next().await {
        if let Err(e) = joined {
            soak.problem(format!("a client task failed: {e}"));
        }
    }
    let probes = finale::probe(&soak).await;
    watch::poll_once(&soak).await;
    observers_stop.send_replace(true);
    while watchers.join_next().await.is_some() {}

    let info = report::RunInfo {
        seed,
        minutes: args.minutes,
        clients: args.clients,
        codex_cli: bins.codex_note.clone(),
        one_store: args.one_store,
    };
    let pass = report::report(&soak, &info, &settled, &probes).await;
    let timeline = report::timeline_text(&soak);
    soak.fleet.shutdown().await;
    if let Err(e) = std::fs::write(logs.join("timeline.txt"), timeline) {
        eprintln!("soak: writing the timeline: {e}");
    }
    if !pass || args.keep_logs {
        if let Some(target) = &args.save_logs {
            let target = target.join(format!(
                "seed-{seed}-{}",
                chrono::Utc::now().format("%Y%m%dT%H%M%S")
            ));
            match copy_logs(&logs, &target) {
                Ok(()) => println!("logs and the fault timeline: {}", target.display()),
                Err(e) => eprintln!("soak: saving the logs to {}: {e:#}", target.display()),
            }
        }
    }
    let mut mock_process = mock_process;
    procs::kill9(&mut mock_process.child).await.ok();
    Ok(pass)
}

/// `$CODEX_HOME/config.toml` sending the real Codex CLI's model calls and side calls to the
/// mock, with analytics and plugin fetches off (they would try the internet).
fn write_cli_config(codex_home: &Path, mock_url: &str) -> Result<()> {
    let backend = format!("{mock_url}/backend-api/codex");
    let provider = Provider {
        name: "mock",
        base_url: &backend,
        with_login: true,
    };
    let config = config_toml("gpt-5.1-codex", mock_url, &provider);
    std::fs::write(codex_home.join("config.toml"), config)?;
    Ok(())
}

fn copy_logs(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        std::fs::copy(entry.path(), to.join(entry.file_name()))?;
    }
    Ok(())
}
