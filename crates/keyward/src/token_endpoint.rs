//! A provider's token endpoint, and what a refresh attempt can come back with.
//!
//! The outcome classes are what the refresh protocol decides on: only a definite answer tells
//! whether the refresh token was consumed, so anything short of one is `Unknown`. Each provider's
//! endpoint sorts its own answers (status, error codes) into these classes.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::credential::TokenAnswer;
use crate::secret::Secret;

/// Why a refresh was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefreshTrigger {
    /// The scheduler, ahead of expiry.
    Ahead,
    /// A request found the access token expired (or about to).
    Expired,
    /// The upstream answered 401 to the current access token.
    Unauthorized,
    /// `keyward token --refresh`.
    Command,
}

impl RefreshTrigger {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Ahead => "ahead",
            Self::Expired => "expired",
            Self::Unauthorized => "unauthorized",
            Self::Command => "command",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RefreshFailure {
    /// The endpoint refused this refresh token for good (reused, expired, revoked, invalid grant):
    /// never send it again.
    Rejected { status: u16, code: String },
    /// The request never reached the endpoint (connection refused, DNS): the token is unspent.
    NotSent { detail: String },
    /// The endpoint turned the request away before processing it (429, or a 4xx that is about the
    /// request, not the token): unspent; try again later.
    Refused {
        status: u16,
        code: String,
        retry_after: Option<Duration>,
    },
    /// No usable answer (timeout, dropped connection, 5xx, garbled success): the token may or may
    /// not have been consumed.
    Unknown { detail: String },
}

impl fmt::Display for RefreshFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rejected { status, code } => {
                write!(
                    f,
                    "the token endpoint rejected the refresh token ({status} {code})"
                )
            }
            Self::NotSent { detail } => {
                write!(f, "the token endpoint could not be reached ({detail})")
            }
            Self::Refused { status, code, .. } => {
                write!(
                    f,
                    "the token endpoint refused the request ({status} {code})"
                )
            }
            Self::Unknown { detail } => write!(f, "no answer from the token endpoint ({detail})"),
        }
    }
}

pub(crate) type RefreshFuture<'a> =
    Pin<Box<dyn Future<Output = Result<TokenAnswer, RefreshFailure>> + Send + 'a>>;

/// A provider's OAuth token endpoint.
pub(crate) trait TokenEndpoint: Send + Sync + 'static {
    fn refresh<'a>(
        &'a self,
        refresh_token: &'a Secret,
        trigger: RefreshTrigger,
    ) -> RefreshFuture<'a>;

    fn url(&self) -> &str;
}
