//! The `keyward-mock` command line: parses arguments and runs the chosen subcommand.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::{cli_refresh, server, write_login};

#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the mock auth server and Codex backend until killed.
    Serve(ServeArgs),
    /// Refresh $CODEX_HOME/auth.json once, like the Codex CLI does.
    CliRefresh(cli_refresh::CliRefreshArgs),
    /// Log in against a running mock and write auth.json.
    WriteLogin(write_login::WriteLoginArgs),
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// Default lifetime in seconds of issued access tokens.
    #[arg(long, default_value_t = 3600, allow_hyphen_values = true)]
    access_ttl: i64,
    /// Number of text deltas per streamed response.
    #[arg(long, default_value_t = 3)]
    chunks: usize,
    /// Pause between text deltas.
    #[arg(long, default_value_t = 0)]
    chunk_delay_ms: u64,
}

/// Runs the command named by the process arguments.
pub(crate) fn run() -> Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            tracing_subscriber::fmt()
                .with_writer(std::io::stderr)
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
                )
                .init();
            let config = server::ServeConfig {
                listen: args.listen,
                access_ttl: args.access_ttl,
                chunks: args.chunks,
                chunk_delay_ms: args.chunk_delay_ms,
            };
            tokio::runtime::Runtime::new()?.block_on(server::run(config))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::CliRefresh(args) => current_thread()?.block_on(cli_refresh::run(args)),
        Command::WriteLogin(args) => {
            current_thread()?.block_on(write_login::run(args))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn current_thread() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}
