#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = keyward::cli::Cli::parse();
    let filter = EnvFilter::try_from_env("KEYWARD_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let quiet_by_default = !matches!(cli.command, keyward::cli::Command::Serve { .. });
    let filter = if quiet_by_default
        && std::env::var_os("KEYWARD_LOG").is_none()
        && std::env::var_os("RUST_LOG").is_none()
    {
        EnvFilter::new("warn")
    } else {
        filter
    };
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        keyward::cli::LogFormat::Json => logs.json().init(),
        keyward::cli::LogFormat::Human => logs.with_ansi(std::io::stderr().is_terminal()).init(),
    }
    #[cfg(not(target_env = "msvc"))]
    if let Err(e) = tikv_jemalloc_ctl::background_thread::write(true) {
        // Memory is then returned when later allocations run the decay instead of on a timer.
        tracing::debug!(error = %e, "jemalloc's background purging is unavailable");
    }
    ExitCode::from(keyward::cli::run(cli))
}
