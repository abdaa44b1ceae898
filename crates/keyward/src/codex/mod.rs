//! The Codex CLI's login: `$CODEX_HOME/auth.json` or the OS keyring (`storage`), its format, its locks, its tokens' claims and
//! its token endpoint; the ChatGPT Codex backend it is served by; and the provider description
//! that registers both with keyward (`provider`); and signing in with ChatGPT (`login`).

pub(crate) mod auth_file;
pub(crate) mod backend;
pub(crate) mod claims;
pub(crate) mod config_edit;
pub(crate) mod lock;
pub(crate) mod login;
pub(crate) mod models;
pub(crate) mod provider;
pub(crate) mod source;
pub(crate) mod storage;
pub(crate) mod token_endpoint;
pub(crate) mod upstream;

pub(crate) use source::CodexSource;

/// The Codex CLI's OAuth client id, sent with every refresh as the CLI does.
pub(crate) const CLIENT_ID: &str = "app_EMoamEEZ73f0CkXaXp7hrann";
/// Where ChatGPT sign-ins happen; its `/oauth/token` is also where refreshes go by default.
pub(crate) const DEFAULT_ISSUER: &str = "https://auth.openai.com";
pub(crate) const ISSUER_ENV: &str = "KEYWARD_CODEX_ISSUER";
/// The Codex CLI's own override of its revoke URL, honoured the same way.
pub(crate) const REVOKE_URL_ENV: &str = "CODEX_REVOKE_TOKEN_URL_OVERRIDE";
pub(crate) const DEFAULT_BASE_URL: &str = "https://chatgpt.com/backend-api/codex";
pub(crate) const TOKEN_URL_ENV: &str = "CODEX_REFRESH_TOKEN_URL_OVERRIDE";
pub(crate) const BASE_URL_ENV: &str = "KEYWARD_CODEX_BASE_URL";
pub(crate) const HOME_ENV: &str = "CODEX_HOME";

/// What kind of JSON error this is, without the input text serde may quote (it could be a token).
pub(crate) fn json_error_kind(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Eof => "truncated",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "unexpected shape",
        serde_json::error::Category::Io => "read error",
    }
}
