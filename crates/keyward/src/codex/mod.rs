//! The Codex CLI's login: `$CODEX_HOME/auth.json`, its format, its locks, its tokens' claims and
//! its token endpoint; the ChatGPT Codex backend it is served by; and the provider description
//! that registers both with keyward (`provider`).

pub mod auth_file;
pub(crate) mod backend;
pub(crate) mod claims;
pub mod lock;
pub(crate) mod models;
pub(crate) mod provider;
pub mod source;
pub mod token_endpoint;
pub mod upstream;

pub use source::CodexSource;

/// The Codex CLI's OAuth client id, sent with every refresh as the CLI does.
pub const CLIENT_ID: &str = "app_EMoamEEZ73f0CkXaXp7hrann";
pub const DEFAULT_TOKEN_URL: &str = "https://auth.openai.com/oauth/token";
pub const DEFAULT_BASE_URL: &str = "https://chatgpt.com/backend-api/codex";
pub const TOKEN_URL_ENV: &str = "CODEX_REFRESH_TOKEN_URL_OVERRIDE";
pub const BASE_URL_ENV: &str = "KEYWARD_CODEX_BASE_URL";
pub const HOME_ENV: &str = "CODEX_HOME";

/// What kind of JSON error this is, without the input text serde may quote (it could be a token).
pub(crate) fn json_error_kind(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Eof => "truncated",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "unexpected shape",
        serde_json::error::Category::Io => "read error",
    }
}
