//! Why a sign-in did not complete, each with what the user can do about it. No variant holds a
//! token, a code or a verifier: the provider's answers are reduced to their status and error code.

use std::time::Duration;

/// The sign-in's failures. `remedy` says what to do; `retryable` separates "try again later"
/// (the provider or a port is busy) from failures trying again will not fix.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LoginError {
    #[error("ports 1455 and 1457, the only ones the provider sends a browser back to, are both in use ({holders})")]
    PortsTaken { holders: String },
    #[error("cannot listen on 127.0.0.1:{port} for the browser's return: {source}")]
    Listen {
        port: u16,
        #[source]
        source: std::io::Error,
    },
    /// The provider sent the browser back with an OAuth error.
    #[error("the sign-in was refused: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Refused {
        error: String,
        description: Option<String>,
    },
    #[error("no sign-in completed within {}", humantime_serde::re::humantime::format_duration(*.waited))]
    TimedOut { waited: Duration },
    #[error("another sign-in asked this one to stop (a `codex login` started meanwhile?)")]
    Cancelled,
    #[error("cannot reach the sign-in server {url}: {detail}")]
    Unreachable { url: String, detail: String },
    /// A server error (5xx) or a rate limit: the provider's trouble, not the user's.
    #[error("the sign-in server {url} failed: status {status} ({code})")]
    ProviderFailed {
        url: String,
        status: u16,
        code: String,
    },
    /// The provider refused the request itself (4xx).
    #[error("the sign-in server {url} refused the request: status {status} ({code})")]
    Rejected {
        url: String,
        status: u16,
        code: String,
    },
    #[error("device code sign-in is not enabled for this account (the server answered 404)")]
    DeviceNotEnabled,
    #[error("the sign-in server {url} gave an answer keyward cannot use: {detail}")]
    BadAnswer { url: String, detail: String },
    #[error("the authorization code was used before (keyward's ledger has it); start again")]
    CodeSpent,
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Source(#[from] crate::credential::SourceError),
    /// Where the Codex CLI keeps its login (the keyring, per its config.toml) cannot be used.
    #[error("{0}")]
    Storage(String),
    #[error("{path}: {doing}: {source}")]
    Io {
        path: String,
        doing: &'static str,
        #[source]
        source: std::io::Error,
    },
}

impl LoginError {
    /// What the user can do; `None` when the message says it all.
    pub(crate) fn remedy(&self) -> Option<String> {
        Some(match self {
            Self::PortsTaken { .. } => "stop the program holding them (a `codex login` or `keyward login` left waiting in another terminal?) and try again, or sign in without a browser: `keyward login --device`".into(),
            Self::Listen { .. } => "sign in without a browser: `keyward login --device`".into(),
            Self::Refused { error, .. } => match error.as_str() {
                "missing_codex_entitlement" => "Codex is not enabled for this ChatGPT workspace: ask its admin to enable Codex, or sign in with another workspace or account".into(),
                "access_denied" => "the sign-in was cancelled in the browser; run the command again and choose Continue".into(),
                _ => "run the command again; if it keeps failing, sign in to ChatGPT in the browser first".into(),
            },
            Self::TimedOut { .. } => "run the command again and finish the sign-in in the browser sooner (or give it longer with --timeout)".into(),
            Self::Cancelled => "finish the other sign-in, or run this one again".into(),
            Self::Unreachable { .. } | Self::ProviderFailed { .. } => "check your network connection (and `[codex] issuer` or KEYWARD_CODEX_ISSUER), then try again".into(),
            Self::Rejected { .. } | Self::BadAnswer { .. } | Self::CodeSpent => "run the command again to start a new sign-in".into(),
            Self::DeviceNotEnabled => "allow \"device code authorization for Codex\" in ChatGPT's security settings (Settings → Security), or sign in with the browser: `keyward login`".into(),
            Self::Store(_) | Self::Source(_) | Self::Storage(_) | Self::Io { .. } => return None,
        })
    }

    /// Worth trying again later, unchanged: the provider or a port was busy.
    pub(crate) fn retryable(&self) -> bool {
        matches!(
            self,
            Self::PortsTaken { .. } | Self::Unreachable { .. } | Self::ProviderFailed { .. }
        )
    }
}
