//! The refresh broker: each profile's current snapshot of its source, the single way any refresh
//! happens ([`protocol`]), the scheduler that refreshes ahead of expiry, and crash recovery.
//!
//! The request path is a `stat` and two atomic loads when nothing changed: the snapshot is only
//! re-read when the watcher bumped the profile's epoch or the file's identity moved.
//!
//! Every time-based decision reads the broker's [`Clock`], and every provider-specific word or
//! rule comes from the profile's source and token endpoint, so the protocol is tested in-process
//! against fakes and a manual clock (`tests.rs`, `proptests.rs`, `testing/`).

pub(crate) mod clock;
pub(crate) mod health;
#[cfg(test)]
mod proptests;
mod protocol;
mod recovery;
mod scheduler;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;
pub(crate) mod timing;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::credential::{
    Credential, CredentialSource, SourceContents, SourceIdentity, SourceProblem, StoreInfo,
    TokenAnswer,
};
use crate::profile::ProfileId;
use crate::secret::{Fingerprint, Secret};
use crate::store::{JournalState, Lineage, LineageAuthor, SpendRecord, Store};
use crate::token_endpoint::{RefreshTrigger, TokenEndpoint};

pub(crate) use clock::{Clock, SystemClock};
pub(crate) use health::{Health, HealthState};
pub(crate) use timing::RefreshTiming;

#[derive(Debug, Clone)]
pub(crate) struct BrokerSettings {
    pub timing: RefreshTiming,
    /// How long to wait for the source's locks before giving up on a refresh.
    pub lock_timeout: Duration,
    /// After a refresh token is rejected, how long to watch the source for a concurrent writer's
    /// newer lineage before declaring the profile `needs-login`.
    pub settle_window: Duration,
    /// How often the scheduler looks at each profile even without a file event.
    pub tick: Duration,
    /// A token keyward obtained less than this long ago is not refreshed again (except by
    /// `keyward token --refresh`): an upstream that rejects every token, or a token endpoint that
    /// issues already-expired tokens (clock skew), cannot make keyward rotate in a loop.
    pub min_refresh_interval: Duration,
}

impl Default for BrokerSettings {
    fn default() -> Self {
        Self {
            timing: RefreshTiming::default(),
            lock_timeout: Duration::from_secs(30),
            settle_window: Duration::from_secs(5),
            tick: Duration::from_secs(30),
            min_refresh_interval: Duration::from_secs(10),
        }
    }
}

/// What the source held at the last read.
#[derive(Debug, Clone)]
pub(crate) enum SourceStatus {
    Login,
    ApiKey,
    NoLogin,
    Missing,
    Problem(SourceProblem),
}

/// One profile's snapshot: immutable, swapped whole.
#[derive(Debug, Clone)]
pub(crate) struct View {
    pub epoch: u64,
    pub identity: Option<SourceIdentity>,
    pub status: SourceStatus,
    /// The login to serve: the source's, or the last good one while the source is unreadable.
    pub credential: Option<Arc<Credential>>,
    /// The ledger's record of the credential's refresh token, if keyward has spent or tried it.
    pub spend: Option<SpendRecord>,
    pub lineage: Lineage,
    pub warnings: Vec<String>,
    /// The API key the source holds instead of a login.
    pub api_key: Option<Secret>,
    /// Which store the source's login was read from.
    pub store: Option<StoreInfo>,
    /// `credential` is newer than the source: a token answer keyward keeps in its journal
    /// because writing it back failed. Served, never spent, until the write lands.
    pub awaiting_write_back: bool,
}

/// Per-process counters, reported by `/healthz`.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub token_requests: AtomicU64,
    pub refreshed: AtomicU64,
    pub adopted: AtomicU64,
    pub stale_spends_prevented: AtomicU64,
    pub rejected: AtomicU64,
    pub outcome_unknown: AtomicU64,
    pub transient_failures: AtomicU64,
    pub journal_recovered: AtomicU64,
    pub write_back_failures: AtomicU64,
}

#[derive(Debug, Serialize)]
pub(crate) struct CounterSnapshot {
    pub token_requests: u64,
    pub refreshed: u64,
    pub adopted: u64,
    pub stale_spends_prevented: u64,
    pub rejected: u64,
    pub outcome_unknown: u64,
    pub transient_failures: u64,
    pub journal_recovered: u64,
    pub write_back_failures: u64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> CounterSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CounterSnapshot {
            token_requests: get(&self.token_requests),
            refreshed: get(&self.refreshed),
            adopted: get(&self.adopted),
            stale_spends_prevented: get(&self.stale_spends_prevented),
            rejected: get(&self.rejected),
            outcome_unknown: get(&self.outcome_unknown),
            transient_failures: get(&self.transient_failures),
            journal_recovered: get(&self.journal_recovered),
            write_back_failures: get(&self.write_back_failures),
        }
    }

    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

#[derive(Debug, Default)]
struct RefreshState {
    backoff: Option<Backoff>,
    /// The token keyward last obtained by refreshing.
    recent_refresh: Option<RecentRefresh>,
    last_outcome: Option<(DateTime<Utc>, String)>,
    recorded_health: Option<HealthState>,
}

#[derive(Debug, Clone, Copy)]
struct RecentRefresh {
    /// On the broker's monotonic clock.
    at: Duration,
    trigger: RefreshTrigger,
    access: Fingerprint,
    /// Already due for refresh when it arrived (a token endpoint or local clock that is off).
    born_due: bool,
}

#[derive(Debug, Clone)]
struct Backoff {
    token: Fingerprint,
    /// On the broker's monotonic clock.
    until: Duration,
    retry_at: DateTime<Utc>,
    failures: u32,
    reason: String,
}

impl Backoff {
    /// The error a caller gets while this backoff lasts (`now` on the monotonic clock); `what`
    /// says what failed.
    fn unavailable(&self, profile: &ProfileId, what: &str, now: Duration) -> AccessError {
        AccessError::Unavailable {
            profile: profile.clone(),
            detail: format!(
                "{what}; retrying after {}",
                self.retry_at.format("%H:%M:%S UTC")
            ),
            remedy: None,
            retry_after: Some(self.until.saturating_sub(now)),
        }
    }
}

pub(crate) struct ProfileRuntime {
    pub id: ProfileId,
    pub source: Arc<dyn CredentialSource>,
    pub endpoint: Arc<dyn TokenEndpoint>,
    view: ArcSwap<View>,
    epoch: AtomicU64,
    changed: tokio::sync::Notify,
    flight: tokio::sync::Mutex<()>,
    state: Mutex<RefreshState>,
    jitter_seed: u64,
    /// How many times the source was read and parsed (the request path should not).
    reads: AtomicU64,
}

impl ProfileRuntime {
    pub(crate) fn new(
        id: ProfileId,
        source: Arc<dyn CredentialSource>,
        endpoint: Arc<dyn TokenEndpoint>,
    ) -> Self {
        let empty = View {
            epoch: u64::MAX,
            identity: None,
            status: SourceStatus::Missing,
            credential: None,
            spend: None,
            lineage: Lineage::default(),
            warnings: Vec::new(),
            api_key: None,
            store: None,
            awaiting_write_back: false,
        };
        Self {
            id,
            source,
            endpoint,
            view: ArcSwap::from_pointee(empty),
            epoch: AtomicU64::new(0),
            changed: tokio::sync::Notify::new(),
            flight: tokio::sync::Mutex::new(()),
            state: Mutex::new(RefreshState::default()),
            jitter_seed: rand::random(),
            reads: AtomicU64::new(0),
        }
    }

    /// Called by the file watcher: the next access re-reads the source.
    pub(crate) fn source_changed(&self) {
        self.invalidate();
        self.changed.notify_one();
    }

    /// The next access re-reads the source (without waking the scheduler, which calls this).
    fn invalidate(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn source_reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    pub(crate) fn view(&self) -> Arc<View> {
        self.view.load_full()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, RefreshState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The snapshot is current if no file event arrived and the file's identity did not move.
    fn is_current(&self, view: &View) -> bool {
        view.epoch == self.epoch.load(Ordering::Acquire) && view.identity == self.source.identity()
    }

    /// When the scheduler should refresh `credential`: by its access token's expiry, or by the
    /// source's own rule for a login whose access token carries none.
    fn refresh_at(&self, timing: &RefreshTiming, credential: &Credential) -> Option<DateTime<Utc>> {
        let undated = self.source.undated_expiry(credential);
        timing.refresh_at(credential, undated, self.jitter_seed)
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum AccessError {
    #[error("no profile named `{0}`")]
    UnknownProfile(String),
    #[error("profile {profile} needs a new login: {detail}")]
    NeedsLogin {
        profile: ProfileId,
        detail: String,
        remedy: String,
    },
    #[error("profile {profile} cannot be served right now: {detail}")]
    Unavailable {
        profile: ProfileId,
        detail: String,
        remedy: Option<String>,
        retry_after: Option<Duration>,
    },
    #[error("keyward's store failed: {0}")]
    Store(#[source] Internal),
}

/// keyward's own part of an access that failed: its store, or the task a refresh ran in.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Internal {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("refresh task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl From<crate::store::StoreError> for AccessError {
    fn from(error: crate::store::StoreError) -> Self {
        Self::Store(error.into())
    }
}

impl From<tokio::task::JoinError> for AccessError {
    fn from(error: tokio::task::JoinError) -> Self {
        Self::Store(error.into())
    }
}

/// A usable access token for one request.
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    pub credential: Arc<Credential>,
}

pub(crate) struct Broker {
    profiles: Vec<Arc<ProfileRuntime>>,
    store: Arc<dyn Store>,
    settings: BrokerSettings,
    clock: Arc<dyn Clock>,
    counters: Counters,
    tracker: TaskTracker,
    /// The runtime `start` ran on, which outlives every request: refreshes run there, so one
    /// that a request on a serving thread began is not cut when that thread's runtime stops.
    home: std::sync::OnceLock<tokio::runtime::Handle>,
    shutdown: CancellationToken,
}

impl Broker {
    pub(crate) fn new(
        profiles: Vec<Arc<ProfileRuntime>>,
        store: Arc<dyn Store>,
        settings: BrokerSettings,
    ) -> Arc<Self> {
        Self::with_clock(profiles, store, settings, Arc::new(SystemClock::new()))
    }

    /// A broker whose every time-based decision reads `clock`.
    pub(crate) fn with_clock(
        profiles: Vec<Arc<ProfileRuntime>>,
        store: Arc<dyn Store>,
        settings: BrokerSettings,
        clock: Arc<dyn Clock>,
    ) -> Arc<Self> {
        Arc::new(Self {
            profiles,
            store,
            settings,
            clock,
            counters: Counters::default(),
            tracker: TaskTracker::new(),
            home: std::sync::OnceLock::new(),
            shutdown: CancellationToken::new(),
        })
    }

    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub(crate) fn profiles(&self) -> &[Arc<ProfileRuntime>] {
        &self.profiles
    }

    pub(crate) fn counters(&self) -> &Counters {
        &self.counters
    }

    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub(crate) fn profile(&self, id: &ProfileId) -> Option<&Arc<ProfileRuntime>> {
        self.profiles.iter().find(|p| &p.id == id)
    }

    fn runtime(&self, id: &ProfileId) -> Result<Arc<ProfileRuntime>, AccessError> {
        self.profile(id)
            .cloned()
            .ok_or_else(|| AccessError::UnknownProfile(id.to_string()))
    }

    /// The current snapshot, re-read only when the source changed.
    pub(crate) async fn current_view(&self, runtime: &Arc<ProfileRuntime>) -> Arc<View> {
        let view = runtime.view();
        if runtime.is_current(&view) {
            return view;
        }
        let (rt, store) = (runtime.clone(), self.store.clone());
        let loaded = tokio::task::spawn_blocking(move || reload(&rt, store.as_ref())).await;
        match loaded {
            Ok(view) => view,
            Err(_) => runtime.view(),
        }
    }

    /// A valid access token for `profile`, refreshing through the protocol if it is about to expire.
    pub(crate) async fn access(
        self: &Arc<Self>,
        profile: &ProfileId,
    ) -> Result<Grant, AccessError> {
        let runtime = self.runtime(profile)?;
        let view = self.current_view(&runtime).await;
        let Some(credential) = view.credential.clone() else {
            return Err(self.unavailable(&runtime, &view));
        };
        if self.settings.timing.usable(&credential, self.clock.now()) {
            return Ok(Grant { credential });
        }
        self.refresh(
            &runtime,
            RefreshTrigger::Expired,
            credential.refresh_fingerprint(),
            None,
        )
        .await
    }

    /// The upstream refused `rejected`: adopt a newer token from the source, or refresh.
    pub(crate) async fn reauthorize(
        self: &Arc<Self>,
        profile: &ProfileId,
        rejected: &Credential,
    ) -> Result<Grant, AccessError> {
        let runtime = self.runtime(profile)?;
        let view = self.current_view(&runtime).await;
        if let Some(credential) = &view.credential {
            if credential.access_fingerprint() != rejected.access_fingerprint() {
                return Ok(Grant {
                    credential: credential.clone(),
                });
            }
        }
        self.refresh(
            &runtime,
            RefreshTrigger::Unauthorized,
            rejected.refresh_fingerprint(),
            Some(rejected.access_fingerprint()),
        )
        .await
    }

    /// Refreshes now (for `keyward token --refresh`), through the same protocol.
    pub(crate) async fn force_refresh(
        self: &Arc<Self>,
        profile: &ProfileId,
    ) -> Result<Grant, AccessError> {
        let runtime = self.runtime(profile)?;
        let view = self.current_view(&runtime).await;
        let Some(credential) = view.credential.clone() else {
            return Err(self.unavailable(&runtime, &view));
        };
        self.refresh(
            &runtime,
            RefreshTrigger::Command,
            credential.refresh_fingerprint(),
            None,
        )
        .await
    }

    pub(crate) fn health(&self, runtime: &ProfileRuntime, view: &View) -> Health {
        let backoff = runtime
            .state()
            .backoff
            .clone()
            .filter(|b| {
                view.credential
                    .as_ref()
                    .is_some_and(|c| c.refresh_fingerprint() == b.token)
            })
            .map(|b| (b.reason, b.retry_at));
        let usable = view
            .credential
            .as_ref()
            .is_some_and(|c| self.settings.timing.usable(c, self.clock.now()));
        health::assess(
            view,
            &health::RefreshStatus { backoff },
            &runtime.source.vocabulary(),
            &runtime.source.location(),
            usable,
        )
    }

    pub(crate) fn last_outcome(&self, runtime: &ProfileRuntime) -> Option<(DateTime<Utc>, String)> {
        runtime.state().last_outcome.clone()
    }

    fn unavailable(&self, runtime: &ProfileRuntime, view: &View) -> AccessError {
        let health = self.health(runtime, view);
        match health.state {
            HealthState::NeedsLogin | HealthState::ApiKey => AccessError::NeedsLogin {
                profile: runtime.id.clone(),
                detail: health.detail,
                remedy: health.remedy.unwrap_or_default(),
            },
            _ => AccessError::Unavailable {
                profile: runtime.id.clone(),
                detail: health.detail,
                remedy: health.remedy,
                retry_after: None,
            },
        }
    }

    /// Starts the ahead-of-expiry scheduler of every profile, and makes this runtime the one
    /// refreshes run on.
    pub(crate) fn start(self: &Arc<Self>) {
        let _ = self.home.set(tokio::runtime::Handle::current());
        for runtime in &self.profiles {
            let broker = self.clone();
            let runtime = runtime.clone();
            self.tracker
                .spawn(async move { scheduler::run(broker, runtime).await });
        }
    }

    /// Runs a task that must finish even if its caller goes away, on the home runtime.
    fn detach<F>(&self, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match self.home.get() {
            Some(home) => self.tracker.spawn_on(task, home),
            None => self.tracker.spawn(task),
        }
    }

    /// Stops the schedulers and waits (up to `grace`) for refreshes in flight to finish; one cut
    /// short stays in the journal and is finished at the next start.
    pub(crate) async fn shutdown(&self, grace: Duration) {
        self.shutdown.cancel();
        self.tracker.close();
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "refreshes still running at shutdown; the journal finishes them at the next start"
            );
        }
    }

    pub(crate) fn record_health(&self, runtime: &ProfileRuntime) {
        let view = runtime.view();
        let health = self.health(runtime, &view);
        let changed = {
            let mut state = runtime.state();
            let changed = state.recorded_health != Some(health.state);
            state.recorded_health = Some(health.state);
            changed
        };
        if changed {
            tracing::info!(profile = %runtime.id, health = health.state.as_str(), detail = %health.detail, "profile health");
            if let Err(e) =
                self.store
                    .record_health(&runtime.id, health.state.as_str(), &health.detail)
            {
                tracing::warn!(profile = %runtime.id, error = %e, "could not record health");
            }
        }
    }
}

/// Reads the source and installs a snapshot of it. Blocking (file and store access).
pub(crate) fn reload(runtime: &ProfileRuntime, store: &dyn Store) -> Arc<View> {
    // Taken before the read: an event landing during the read makes the next access read
    // again, never the other way round.
    let epoch = runtime.epoch.load(Ordering::Acquire);
    let read = runtime.source.read();
    runtime.reads.fetch_add(1, Ordering::Relaxed);
    let previous = runtime.view();
    let mut api_key = None;
    let (status, credential) = match read.contents {
        Ok(SourceContents::Login(credential)) => (SourceStatus::Login, Some(Arc::from(credential))),
        Ok(SourceContents::ApiKey(key)) => {
            api_key = Some(key);
            (SourceStatus::ApiKey, None)
        }
        Ok(SourceContents::NoLogin) => (SourceStatus::NoLogin, None),
        Ok(SourceContents::Missing) => (SourceStatus::Missing, None),
        // Unreadable now, but the last good login is still the newest lineage we know: keep
        // serving its access token; the protocol refuses to refresh until the file is readable.
        Err(problem) => (SourceStatus::Problem(problem), previous.credential.clone()),
    };
    let (credential, awaiting_write_back) = match credential {
        Some(credential) => {
            let (credential, awaiting) = with_kept_answers(runtime, store, credential);
            (Some(credential), awaiting)
        }
        None => (None, false),
    };
    let mut spend = None;
    let mut lineage = previous.lineage.clone();
    if let Some(credential) = &credential {
        let token = credential.refresh_fingerprint();
        match store.spend_record(token) {
            Ok(record) => spend = record,
            Err(e) => tracing::warn!(profile = %runtime.id, error = %e, "ledger lookup failed"),
        }
        if lineage.current != Some(token) {
            let author = match store.is_successor(token) {
                Ok(true) => LineageAuthor::Keyward,
                _ => LineageAuthor::Source,
            };
            match store.observe_lineage(&runtime.id, token, author) {
                Ok(observed) => lineage = observed,
                Err(e) => {
                    tracing::warn!(profile = %runtime.id, error = %e, "could not record the lineage")
                }
            }
        }
    }
    for warning in &read.warnings {
        if !previous.warnings.contains(warning) {
            tracing::warn!(profile = %runtime.id, "{warning}");
        }
    }
    let view = Arc::new(View {
        epoch,
        identity: read.identity,
        status,
        credential,
        spend,
        lineage,
        warnings: read.warnings,
        store: read.store,
        api_key,
        awaiting_write_back,
    });
    if let Some(change) = describe_change(&previous, &view) {
        tracing::info!(profile = %runtime.id, generation = view.lineage.generation, "{change}");
    }
    runtime.view.store(view.clone());
    view
}

/// The source's login as it will be once the journal's kept answers for it are written back:
/// until then they are the newest lineage, and keyward alone holds it. Serving the file's older
/// token instead would meet the ledger's record of it and send the user to log in again.
fn with_kept_answers(
    runtime: &ProfileRuntime,
    store: &dyn Store,
    credential: Arc<Credential>,
) -> (Arc<Credential>, bool) {
    let kept = match store.unsettled(&runtime.id) {
        Ok(kept) => kept,
        Err(e) => {
            tracing::warn!(profile = %runtime.id, error = %e, "journal lookup failed");
            return (credential, false);
        }
    };
    let mut current = credential;
    let mut awaiting = false;
    // In journal order, so a chain of answers applies in the order it was obtained.
    for entry in &kept {
        if entry.state != JournalState::Answered || entry.spent != current.refresh_fingerprint() {
            continue;
        }
        if let Some(answer) = &entry.answer {
            current = Arc::new(with_answer(runtime.source.as_ref(), &current, answer));
            awaiting = true;
        }
    }
    (current, awaiting)
}

/// `base` as it will be once `answer` lands in `source`.
pub(crate) fn with_answer(
    source: &dyn CredentialSource,
    base: &Credential,
    answer: &TokenAnswer,
) -> Credential {
    let mut next = base.clone();
    next.access_token = answer.access_token.clone();
    if let Some(refresh) = &answer.refresh_token {
        next.refresh_token = refresh.clone();
    }
    if let Some(id) = &answer.id_token {
        next.id_token = Some(id.clone());
    }
    next.claims = source.claims(&next.access_token, next.id_token.as_ref());
    next
}

fn describe_change(previous: &View, next: &View) -> Option<String> {
    let before = previous
        .credential
        .as_ref()
        .map(|c| c.refresh_fingerprint());
    let after = next.credential.as_ref().map(|c| c.refresh_fingerprint());
    match (&next.status, before, after) {
        (SourceStatus::Problem(p), _, _) => Some(format!("source unreadable: {p}")),
        (_, b, Some(a)) if b != Some(a) => Some(format!("source holds refresh token {a}")),
        (SourceStatus::Missing, Some(_), None) => Some("source removed (logged out?)".into()),
        _ => None,
    }
}
