//! keyward: a local gateway that lends the logins of your coding CLIs (the Codex CLI first) to
//! standard HTTP APIs, and keeps their OAuth lineage alive without ever spending a stale token.
//!
//! The library's public surface is what the binary needs (`cli`), and, behind features, the fuzz
//! targets' and the benchmark's entry points; everything else is the crate's own.

#![warn(unreachable_pub)]

mod anthropic;
mod api_key;
mod app;
mod atomic_file;
/// The hot path's benchmark (`benches/hot_path.rs`); never in a build users run.
#[cfg(feature = "bench")]
pub mod bench;
mod broker;
pub mod cli;
mod codex;
mod commands;
mod config;
mod cpu;
mod credential;
mod dashboard;
mod dialect;
mod env;
mod failpoint;
/// Entry points for the fuzz targets in `fuzz/`; never in a build users run.
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod gateway;
mod host;
mod ledger;
mod metrics;
mod models;
mod openai;
mod pool;
mod profile;
mod provider;
mod providers;
mod report;
mod secret;
mod store;
mod token_endpoint;
mod upstream;
mod watcher;
