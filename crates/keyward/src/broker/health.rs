//! A profile's health, derived from what the source holds, what the ledger says of its token,
//! and how the last refresh went. Never contains a secret.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::View;
use crate::credential::SourceVocabulary;
use crate::store::SpendState;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum HealthState {
    /// Serving, and the next refresh is scheduled.
    Ok,
    /// Serving, but something needs attention (a failing refresh, an unreadable source).
    Degraded,
    /// The access token expired; the next request refreshes it.
    Expired,
    /// Cannot serve until the user logs in again.
    NeedsLogin,
    /// The source cannot be read and there is nothing to serve.
    SourceError,
    /// The source holds an API key, not an OAuth login.
    ApiKey,
}

impl HealthState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Degraded => "degraded",
            Self::Expired => "expired",
            Self::NeedsLogin => "needs-login",
            Self::SourceError => "source-error",
            Self::ApiKey => "api-key",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Health {
    pub state: HealthState,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remedy: Option<String>,
}

/// The part of the refresh state health depends on.
pub(crate) struct RefreshStatus {
    pub backoff: Option<(String, DateTime<Utc>)>,
}

/// The profile's health; `words` are the source's, so every remedy names the command its users
/// know.
pub(crate) fn assess(
    view: &View,
    refresh: &RefreshStatus,
    words: &SourceVocabulary,
    path: &str,
    usable: bool,
) -> Health {
    let login_command = &words.login_command;
    let cli = words.cli;
    let login = Some(format!("run `{login_command}`"));
    let health = |state, detail: String, remedy: Option<String>| Health {
        state,
        detail,
        remedy,
    };
    use super::SourceStatus as S;
    match &view.status {
        S::Missing => {
            return health(
                HealthState::NeedsLogin,
                format!("no login: {path} does not exist"),
                login,
            )
        }
        S::NoLogin => {
            return health(
                HealthState::NeedsLogin,
                format!("{path} holds no {}", words.login),
                login,
            )
        }
        S::ApiKey => {
            // Served with the key (the provider's upstream knows how); nothing to fix.
            return health(
                HealthState::ApiKey,
                format!(
                    "{path} holds an API key instead of a {login}; requests are served with the key (to serve a {login} instead, run `{login_command}` and {})",
                    words.sign_in,
                    login = words.login,
                ),
                None,
            );
        }
        S::Login | S::Problem(_) => {}
    }
    if view.credential.is_none() {
        let (problem, remedy) = match &view.status {
            S::Problem(p) => (p.to_string(), p.remedy().map(str::to_string)),
            _ => ("no login".into(), None),
        };
        return health(
            HealthState::SourceError,
            problem,
            Some(remedy.unwrap_or_else(|| format!(
                "fix or remove {path}, then run `{login_command}`; keyward picks it up without a restart"
            ))),
        );
    }
    if let S::Problem(problem) = &view.status {
        let (state, consequence) = if usable {
            (
                HealthState::Degraded,
                "serving the last good login until its access token expires",
            )
        } else {
            (HealthState::SourceError, "the last good login's access token has expired and keyward will not refresh until the login is readable again")
        };
        return health(
            state,
            format!("{problem}; {consequence}"),
            Some(
                problem
                    .remedy()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("repair {path} or run `{login_command}`")),
            ),
        );
    }
    if view.awaiting_write_back {
        let (state, consequence) = if usable {
            (HealthState::Degraded, "serves them meanwhile")
        } else {
            (HealthState::SourceError, "their access token has expired, and keyward will not refresh again before they are written")
        };
        return health(
            state,
            format!("keyward holds newer tokens than {path} but could not write them there yet; it {consequence}"),
            Some(format!("make sure {path} can be written (disk space, permissions); keyward retries at every attempt and tick")),
        );
    }
    if let Some(spend) = &view.spend {
        let when = spend.at.format("%Y-%m-%d %H:%M:%S UTC");
        let reason = spend.detail.clone().unwrap_or_default();
        return match spend.state {
            SpendState::Rejected => health(
                HealthState::NeedsLogin,
                format!("the token endpoint rejected this login's refresh token at {when} ({reason}); the login is no longer valid"),
                login,
            ),
            SpendState::Spent => health(
                HealthState::NeedsLogin,
                format!("{path} holds a refresh token keyward already spent at {when} (an old copy of the file?); keyward will not spend it again"),
                login,
            ),
            SpendState::Unknown if usable => health(
                HealthState::Degraded,
                format!("a refresh at {when} got no answer ({reason}), so its refresh token may be spent; keyward will not send it again and serves the current access token while it lasts"),
                Some(format!("nothing yet; if this persists, run `{login_command}` (or any {cli} command, whose refresh keyward adopts)")),
            ),
            SpendState::Unknown => health(
                HealthState::NeedsLogin,
                format!("the access token expired and the last refresh at {when} got no answer ({reason}); keyward will not resend a refresh token that may be spent"),
                Some(format!("run `{login_command}` (or any {cli} command: if the token was not spent, {cli} refreshes it and keyward adopts the result)")),
            ),
            SpendState::Spending => health(
                HealthState::Ok,
                "a refresh is in flight".into(),
                None,
            ),
        };
    }
    if let Some((reason, retry_at)) = &refresh.backoff {
        return health(
            HealthState::Degraded,
            format!(
                "refresh failed ({reason}); next attempt after {}",
                retry_at.format("%H:%M:%S UTC")
            ),
            if usable {
                None
            } else {
                Some("wait for the token endpoint to recover; check the network".into())
            },
        );
    }
    if !usable {
        return health(
            HealthState::Expired,
            "the access token has expired; keyward refreshes it on the next request".into(),
            None,
        );
    }
    health(HealthState::Ok, "serving".into(), None)
}
