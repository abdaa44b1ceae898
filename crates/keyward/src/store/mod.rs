//! keyward's own durable state: the spent-token ledger, the refresh journal, each profile's lineage
//! and its health history.
//!
//! The [`Store`] trait is shaped as short transactions so a server-backed implementation (several
//! gateways on several machines sharing one ledger) can stand in for the embedded SQLite one; the
//! ledger's uniqueness on a token fingerprint is what makes a second spender back off.

#[cfg(test)]
pub(crate) mod memory;
mod pool;
mod sqlite;
mod usage;
mod usage_batch;

use std::fmt;

use chrono::{DateTime, Utc};

use crate::credential::TokenAnswer;
use crate::profile::ProfileId;
use crate::secret::Fingerprint;

pub(crate) use pool::{Cooldown, PoolStore, Usage, UsageWindow};
pub(crate) use sqlite::SqliteStore;
pub(crate) use usage::{
    GroupBy, RefreshRecord, RequestRecord, SeriesPoint, UsageGroup, UsageIds, UsageRow, UsageTotals,
};

/// What the ledger knows of a refresh token. Every state means "never spend it again".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SpendState {
    /// The request is (or was, before a crash) on its way.
    Spending,
    /// The endpoint answered with a successor.
    Spent,
    /// The endpoint refused it for good (reused, expired, revoked).
    Rejected,
    /// No answer arrived: the endpoint may or may not have consumed it.
    Unknown,
}

impl SpendState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Spending => "spending",
            Self::Spent => "spent",
            Self::Rejected => "rejected",
            Self::Unknown => "unknown",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "spent" => Self::Spent,
            "rejected" => Self::Rejected,
            "unknown" => Self::Unknown,
            _ => Self::Spending,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct SpendRecord {
    pub fingerprint: Fingerprint,
    pub state: SpendState,
    pub detail: Option<String>,
    pub at: DateTime<Utc>,
}

pub(crate) type JournalId = i64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JournalState {
    Intent,
    Answered,
    Settled,
    Superseded,
    Rejected,
    Unknown,
    NotSpent,
}

impl JournalState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Intent => "intent",
            Self::Answered => "answered",
            Self::Settled => "settled",
            Self::Superseded => "superseded",
            Self::Rejected => "rejected",
            Self::Unknown => "unknown",
            Self::NotSpent => "not_spent",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "answered" => Self::Answered,
            "settled" => Self::Settled,
            "superseded" => Self::Superseded,
            "rejected" => Self::Rejected,
            "unknown" => Self::Unknown,
            "not_spent" => Self::NotSpent,
            _ => Self::Intent,
        }
    }
}

/// A refresh that has not settled: the crash-recovery work list.
#[derive(Debug)]
pub(crate) struct UnsettledRefresh {
    pub id: JournalId,
    pub spent: Fingerprint,
    pub state: JournalState,
    pub answer: Option<TokenAnswer>,
    pub started_at: DateTime<Utc>,
}

/// The answer to "may I spend this token?".
#[derive(Debug)]
pub(crate) enum SpendPermit {
    Granted(JournalId),
    /// The ledger already holds it: never spend.
    Refused(SpendRecord),
}

/// How the spent token's successor came to be in the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineageAuthor {
    Keyward,
    /// The CLI, another tool, or a new login: anyone but keyward.
    Source,
    /// A sign-in by `keyward login`.
    Login,
}

impl LineageAuthor {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Keyward => "keyward",
            Self::Source => "source",
            Self::Login => "keyward login",
        }
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Lineage {
    pub generation: u64,
    pub current: Option<Fingerprint>,
    pub changed_at: Option<DateTime<Utc>>,
    pub changed_by: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct HealthEvent {
    pub at: DateTime<Utc>,
    pub health: String,
    pub detail: String,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    #[error("keyward's store {path}: {source}")]
    Db {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    /// Setting up the store's file or directory failed.
    #[error("keyward's store {path}: {doing}: {source}")]
    File {
        path: String,
        doing: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// A file of the store is not safely the user's own.
    #[error("keyward's store {path}: {source}")]
    NotPrivate {
        path: String,
        #[source]
        source: crate::host::HostError,
    },
    #[error("keyward's store {path} is not a database keyward can read (damaged?): move it aside and keyward starts a new one; the new ledger will not know the tokens spent so far, so keep the old file if you want to inspect it")]
    Unreadable { path: String },
    #[error("keyward's store {path} has schema version {found}, newer than this keyward understands ({supported}); upgrade keyward")]
    TooNew {
        path: String,
        found: i64,
        supported: i64,
    },
}

pub(crate) type StoreResult<T> = Result<T, StoreError>;

/// Every method is one transaction; the spend-path ones commit durably before they return.
pub(crate) trait Store: Send + Sync + fmt::Debug + 'static {
    fn spend_record(&self, token: Fingerprint) -> StoreResult<Option<SpendRecord>>;

    /// Atomically: refuse if the ledger knows `token`; otherwise record it as spending and journal
    /// the intent. Durable before it returns, so a crash after the request left loses nothing.
    fn begin_spend(
        &self,
        profile: &ProfileId,
        token: Fingerprint,
        trigger: &str,
    ) -> StoreResult<SpendPermit>;

    /// Keeps the endpoint's answer durably, before anything else happens with it.
    fn record_answer(&self, id: JournalId, answer: &TokenAnswer) -> StoreResult<()>;

    /// A spend that ended without a successor. `NotSpent` (the request never reached the endpoint,
    /// or was turned away unprocessed) frees the token again; `Rejected` and `Unknown` never do.
    fn record_failure(&self, id: JournalId, state: JournalState, detail: &str) -> StoreResult<()>;

    /// The answer reached the source (`Settled`) or the source moved on (`Superseded`): the journal
    /// entry closes and its token material is erased.
    fn settle(&self, id: JournalId, state: JournalState) -> StoreResult<()>;

    fn unsettled(&self, profile: &ProfileId) -> StoreResult<Vec<UnsettledRefresh>>;

    /// Whether `token` is a successor keyward received (so keyward wrote it).
    fn is_successor(&self, token: Fingerprint) -> StoreResult<bool>;

    /// Notes the refresh token the source holds now; returns the lineage after the observation.
    fn observe_lineage(
        &self,
        profile: &ProfileId,
        current: Fingerprint,
        author: LineageAuthor,
    ) -> StoreResult<Lineage>;

    #[cfg(test)]
    fn lineage(&self, profile: &ProfileId) -> StoreResult<Lineage>;

    fn record_health(&self, profile: &ProfileId, health: &str, detail: &str) -> StoreResult<()>;

    fn health_history(&self, profile: &ProfileId, limit: usize) -> StoreResult<Vec<HealthEvent>>;
}
