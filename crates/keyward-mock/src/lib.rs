//! keyward-mock: a stand-in for OpenAI's auth server and the ChatGPT Codex
//! backend, for the public OpenAI Responses API and the Anthropic Messages API
//! (the upstreams of keyward's API-key profiles), plus helpers that touch
//! `auth.json` the way the Codex CLI does.
//!
//! Endpoints of `keyward-mock serve`: the sign-in server (`GET /oauth/authorize`
//! with its consent page, `POST /oauth/token` for refreshes and code
//! exchanges, `POST /oauth/revoke`, the device-code sign-in under
//! `/api/accounts/deviceauth/` and `/codex/device`),
//! `POST /backend-api/codex/responses` (the Codex backend, with per-account
//! usage limits), `POST /v1/responses` (the public OpenAI Responses API, keys
//! `sk-mock-…`), `POST /v1/messages` (the Anthropic Messages API, keys
//! `sk-ant-mock-…`), and the `/admin/*` test controls (`admin`). The model
//! endpoints share one scenario engine driven by markers in the prompt
//! (`responses_endpoint::scenario`) and one request journal
//! (`GET /admin/requests`).
//!
//! The library exists so keyward's tests can apply the backend's request
//! rules ([`codex_rules`]) without a running server, and so the tests and the
//! soak configure the real Codex CLI one way ([`codex_cli_config`]);
//! everything else is reached through the `keyward-mock` binary.

mod admin;
mod anthropic_api;
mod api_key;
mod auth_file;
mod authorize;
mod cli;
mod cli_refresh;
pub mod codex_cli_config;
pub mod codex_rules;
mod conn_kill;
mod device_auth;
mod faults;
mod hold;
mod jwt;
mod limits;
mod login_state;
mod openai_api;
mod provider_state;
mod reasoning_blob;
mod responses_endpoint;
mod revoke_endpoint;
mod server;
#[cfg(test)]
mod test_support;
mod token_endpoint;
mod write_login;

/// The `keyward-mock` binary's entry point: parses the process arguments and
/// runs the chosen subcommand.
pub fn run_cli() -> anyhow::Result<std::process::ExitCode> {
    cli::run()
}

/// An encrypted-reasoning blob as the mock backend issues them, which its rules accept when a
/// client sends it back (for tests that build conversations without a server).
pub fn issue_reasoning_blob() -> String {
    reasoning_blob::issue(chrono::Utc::now().timestamp())
}
