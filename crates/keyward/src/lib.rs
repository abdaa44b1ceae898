//! keyward: a local gateway that lends the logins of your coding CLIs (the Codex CLI first) to
//! standard HTTP APIs, and keeps their OAuth lineage alive without ever spending a stale token.

pub mod anthropic;
mod api_key;
pub mod app;
pub mod atomic_file;
pub mod broker;
pub mod cli;
pub mod codex;
pub mod config;
mod cpu;
pub mod credential;
pub mod dialect;
mod env;
pub mod failpoint;
/// Entry points for the fuzz targets in `fuzz/`; never in a build users run.
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod gateway;
pub mod host;
pub mod metrics;
pub mod models;
pub mod openai;
pub mod pool;
pub mod profile;
pub(crate) mod provider;
pub(crate) mod providers;
pub mod report;
pub mod secret;
pub mod store;
pub mod token_endpoint;
pub mod upstream;
pub mod watcher;
