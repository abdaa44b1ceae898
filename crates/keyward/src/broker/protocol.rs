//! The one refresh protocol, whoever triggers it.
//!
//! 1. One flight per profile in this process; a waiter whose token was already replaced takes the
//!    replacement and spends nothing; a token whose last attempt failed transiently shares that
//!    failure until its backoff ends.
//! 2. Under the source's own locks (shared with the CLI and other keyward processes): finish any
//!    journaled refresh first, then re-read the source. A refresh token other than the one we were
//!    about to spend is a newer lineage: adopt it. A token the ledger knows is never spent.
//! 3. Ledger + journal intent, durably; send; journal the answer durably; write it back to the
//!    source; settle. A crash between any two steps is finished by [`super::recovery`]. An answer
//!    that could not be written back stays in the journal and in the snapshot (served, never
//!    spent) until a later attempt writes it.
//! 4. A rejected token is never retried: watch the source briefly for a concurrent writer, else
//!    `needs-login`. An unknown outcome is never retried either: re-read, adopt if newer, else
//!    serve the current access token while it lasts. Transient failures back off with jitter.

use std::sync::Arc;
use std::time::Duration;

use super::{
    reload, timing, AccessError, Backoff, Broker, Counters, Grant, ProfileRuntime, RecentRefresh,
    View,
};
use crate::credential::{Credential, SourceError, SourceGuard, TokenAnswer};
use crate::failpoint::crash_point;
use crate::secret::Fingerprint;
use crate::store::{JournalId, JournalState, SpendPermit, SpendRecord, SpendState};
use crate::token_endpoint::{RefreshFailure, RefreshTrigger};

/// How often the source is re-read while waiting for a concurrent writer after a rejection.
const SETTLE_POLL: Duration = Duration::from_millis(100);

/// What the locked pre-spend step decided.
enum Prepared {
    /// The source holds a newer lineage (or the journal finished one): nothing spent.
    Adopted(Arc<View>),
    /// Spend this token; the guard keeps the source locked until write-back.
    Spend {
        guard: Box<dyn SourceGuard>,
        credential: Arc<Credential>,
        journal: JournalId,
    },
    /// Refused to spend (ledger, unreadable source, no login).
    Refused(AccessError),
}

impl Broker {
    pub(super) async fn refresh(
        self: &Arc<Self>,
        runtime: &Arc<ProfileRuntime>,
        trigger: RefreshTrigger,
        seen: Fingerprint,
        rejected_access: Option<Fingerprint>,
    ) -> Result<Grant, AccessError> {
        // Detached, so a caller that goes away (a client disconnecting, its serving thread
        // stopping) cannot cut the protocol between two of its journal steps.
        let (broker, rt) = (self.clone(), runtime.clone());
        let task = self.detach(async move {
            broker
                .refresh_in_flight(&rt, trigger, seen, rejected_access)
                .await
        });
        match task.await {
            Ok(result) => result,
            Err(e) => Err(e.into()),
        }
    }

    async fn refresh_in_flight(
        self: &Arc<Self>,
        runtime: &Arc<ProfileRuntime>,
        trigger: RefreshTrigger,
        seen: Fingerprint,
        rejected_access: Option<Fingerprint>,
    ) -> Result<Grant, AccessError> {
        let _flight = runtime.flight.lock().await;
        let grant = |credential: Arc<Credential>| Grant { credential };

        // Another flight (or the CLI) may have replaced the token while we queued: take the
        // replacement. If it cannot be used either, the next attempt starts from it.
        let view = self.current_view(runtime).await;
        if let Some(current) = &view.credential {
            let replaced = current.refresh_fingerprint() != seen
                || rejected_access.is_some_and(|a| a != current.access_fingerprint());
            if replaced {
                tracing::info!(profile = %runtime.id, waited_for = %seen, took = %current.refresh_fingerprint(), generation = view.lineage.generation, trigger = trigger.as_str(), "waited: the token was replaced while this refresh queued; took the replacement, spent nothing");
                return Ok(grant(current.clone()));
            }
            let recent = runtime.state().recent_refresh.filter(|r| {
                r.access == current.access_fingerprint()
                    && self.clock.monotonic().saturating_sub(r.at)
                        < self.settings.min_refresh_interval
            });
            match (recent, trigger) {
                (None, _) | (Some(_), RefreshTrigger::Command) => {}
                // A fresh token refused upstream is refreshed once; refused again right after a
                // refresh made for a 401, it is the account the upstream refuses, not the token.
                (Some(r), RefreshTrigger::Unauthorized)
                    if r.trigger == RefreshTrigger::Unauthorized =>
                {
                    return Err(AccessError::Unavailable {
                        profile: runtime.id.clone(),
                        detail: "the upstream rejected an access token keyward obtained seconds ago for the same reason; not refreshing again so soon".into(),
                        remedy: Some("check that this account has access to the upstream".into()),
                        retry_after: Some(self.settings.min_refresh_interval),
                    });
                }
                // Refreshing a token that arrived already due would only get another such token.
                (Some(r), RefreshTrigger::Ahead | RefreshTrigger::Expired) if r.born_due => {
                    return Ok(grant(current.clone()));
                }
                (Some(_), _) => {}
            }
        }
        if let Some(failure) = self.shared_failure(runtime, &view, seen) {
            return Err(failure);
        }

        let prepared = {
            let (broker, rt) = (self.clone(), runtime.clone());
            tokio::task::spawn_blocking(move || broker.prepare_locked(&rt, seen, trigger)).await?
        };
        let (guard, credential, journal) = match prepared {
            Prepared::Adopted(view) => {
                return match view.credential.clone() {
                    Some(c) => Ok(grant(c)),
                    None => Err(self.unavailable(runtime, &view)),
                }
            }
            Prepared::Refused(error) => return Err(error),
            Prepared::Spend {
                guard,
                credential,
                journal,
            } => (guard, credential, journal),
        };

        crash_point("after-intent");
        Counters::bump(&self.counters.token_requests);
        tracing::info!(profile = %runtime.id, trigger = trigger.as_str(), spending = %credential.refresh_fingerprint(), endpoint = runtime.endpoint.url(), "refreshing: the source holds this token and the ledger has never seen it");
        let outcome = runtime
            .endpoint
            .refresh(&credential.refresh_token, trigger)
            .await;

        let (broker, rt) = (self.clone(), runtime.clone());
        let spent = credential.refresh_fingerprint();
        let finished = tokio::task::spawn_blocking(move || {
            broker.finish_locked(&rt, guard, spent, journal, outcome)
        })
        .await?;
        match finished {
            Finished::Done(view) => {
                {
                    let mut state = runtime.state();
                    state.backoff = None;
                    if let Some(obtained) = view
                        .credential
                        .as_ref()
                        .filter(|c| c.refresh_fingerprint() != spent)
                    {
                        let born_due = runtime
                            .refresh_at(&self.settings.timing, obtained)
                            .is_some_and(|at| at <= self.clock.now());
                        if born_due {
                            tracing::warn!(profile = %runtime.id, "the token endpoint issued an access token that is already due for refresh; is this machine's clock right?");
                        }
                        state.recent_refresh = Some(RecentRefresh {
                            at: self.clock.monotonic(),
                            trigger,
                            access: obtained.access_fingerprint(),
                            born_due,
                        });
                    }
                }
                self.record_health(runtime);
                view.credential
                    .clone()
                    .map(grant)
                    .ok_or_else(|| self.unavailable(runtime, &view))
            }
            Finished::Rejected(code) => {
                let result = self.await_newer_lineage(runtime, spent, &code).await;
                self.record_health(runtime);
                result.map(grant)
            }
            Finished::Failed(error) => {
                self.record_health(runtime);
                Err(error)
            }
        }
    }

    /// A failure this token already met and must not be retried yet (or ever).
    fn shared_failure(
        &self,
        runtime: &ProfileRuntime,
        view: &View,
        token: Fingerprint,
    ) -> Option<AccessError> {
        let backoff = runtime.state().backoff.clone();
        let now = self.clock.monotonic();
        if let Some(backoff) = backoff.filter(|b| b.token == token && b.until > now) {
            return Some(backoff.unavailable(
                &runtime.id,
                &format!("the last refresh failed ({})", backoff.reason),
                now,
            ));
        }
        let dead = view
            .spend
            .as_ref()
            .filter(|s| s.fingerprint == token && s.state != SpendState::Spending);
        dead.map(|_| self.unavailable(runtime, view))
    }

    /// Steps 2 and 3a: under the source's locks, recover, re-read, consult the ledger, journal
    /// the intent. Blocking.
    fn prepare_locked(
        &self,
        runtime: &Arc<ProfileRuntime>,
        seen: Fingerprint,
        trigger: RefreshTrigger,
    ) -> Prepared {
        let guard = match runtime.source.lock(self.settings.lock_timeout) {
            Ok(guard) => guard,
            Err(e) => return Prepared::Refused(self.source_error(runtime, &e)),
        };
        if let Err(e) = self.recover_locked(runtime, guard.as_ref()) {
            return Prepared::Refused(e);
        }
        let view = reload(runtime, self.store.as_ref());
        let Some(credential) = view.credential.clone() else {
            return Prepared::Refused(self.unavailable(runtime, &view));
        };
        if let super::SourceStatus::Problem(problem) = &view.status {
            return Prepared::Refused(AccessError::Unavailable {
                profile: runtime.id.clone(),
                detail: format!(
                    "{problem}; keyward will not refresh until the login is readable again"
                ),
                remedy: Some(problem.remedy().map(str::to_string).unwrap_or_else(|| {
                    format!(
                        "repair {} or run `{}`",
                        runtime.source.location(),
                        runtime.source.vocabulary().login_command
                    )
                })),
                retry_after: None,
            });
        }
        let token = credential.refresh_fingerprint();
        // A newer token whose access token is used up too is still the live lineage: it is the
        // one to refresh (if the ledger allows, just below).
        if token != seen && self.settings.timing.usable(&credential, self.clock.now()) {
            Counters::bump(&self.counters.adopted);
            tracing::info!(profile = %runtime.id, adopted = %token, instead_of = %seen, generation = view.lineage.generation, "adopted a newer lineage from the source; spent nothing");
            self.note_outcome(runtime, "adopted a newer lineage from the source");
            return Prepared::Adopted(view);
        }
        if view.awaiting_write_back {
            // Spending the kept token would let the file fall further behind the lineage.
            let path = runtime.source.location();
            return Prepared::Refused(AccessError::Unavailable {
                profile: runtime.id.clone(),
                detail: format!("keyward holds newer tokens than {path} but could not write them there yet, and will not refresh again before they are written"),
                remedy: Some(format!("make sure {path} can be written (disk space, permissions); keyward retries at every attempt")),
                retry_after: Some(Duration::from_secs(1)),
            });
        }
        match self.store.begin_spend(&runtime.id, token, trigger.as_str()) {
            Ok(SpendPermit::Granted(journal)) => Prepared::Spend {
                guard,
                credential,
                journal,
            },
            Ok(SpendPermit::Refused(record)) => {
                Counters::bump(&self.counters.stale_spends_prevented);
                tracing::warn!(profile = %runtime.id, token = %token, ledger = record.state.as_str(), generation = view.lineage.generation, "refused: the ledger already holds this refresh token; not spending it");
                let view = reload(runtime, self.store.as_ref());
                Prepared::Refused(self.refused(runtime, &view, &record))
            }
            Err(e) => Prepared::Refused(e.into()),
        }
    }

    fn refused(&self, runtime: &ProfileRuntime, view: &View, record: &SpendRecord) -> AccessError {
        match self.unavailable(runtime, view) {
            AccessError::Unavailable { detail, .. } if record.state == SpendState::Spending => {
                AccessError::Unavailable {
                    profile: runtime.id.clone(),
                    detail: format!("another refresh of this token is in flight ({detail})"),
                    remedy: None,
                    retry_after: Some(Duration::from_secs(1)),
                }
            }
            other => other,
        }
    }

    /// Steps 3b-4: keep the answer, write it back, settle; or record why not. Blocking; drops the
    /// source locks when it returns.
    fn finish_locked(
        &self,
        runtime: &Arc<ProfileRuntime>,
        guard: Box<dyn SourceGuard>,
        spent: Fingerprint,
        journal: JournalId,
        outcome: Result<TokenAnswer, RefreshFailure>,
    ) -> Finished {
        let store = self.store.as_ref();
        let answer = match outcome {
            Ok(answer) => answer,
            Err(failure) => return self.record_failure(runtime, guard, spent, journal, failure),
        };
        // The answer is the only copy of the new lineage until it is on disk somewhere.
        if let Err(e) = store.record_answer(journal, &answer) {
            tracing::error!(profile = %runtime.id, error = %e, "could not journal the token answer; writing it to the source directly");
        }
        crash_point("after-answer");
        let successor = answer.refresh_token.as_ref().map(|t| t.fingerprint());
        let written = match runtime.source.write_back(
            guard.as_ref(),
            spent,
            &answer,
            self.clock.now(),
        ) {
            Ok(()) => {
                crash_point("after-write-back");
                if let Err(e) = store.settle(journal, JournalState::Settled) {
                    tracing::warn!(profile = %runtime.id, error = %e, "could not settle the journal entry; it settles at the next refresh");
                }
                true
            }
            Err(e) => {
                Counters::bump(&self.counters.write_back_failures);
                tracing::error!(profile = %runtime.id, error = %e, "could not write the new tokens back to the source; they stay in keyward's journal, are served from there, and are written at the next attempt");
                false
            }
        };
        drop(guard);
        Counters::bump(&self.counters.refreshed);
        // A journaled answer that did not land is part of the snapshot (see `reload`).
        let view = reload(runtime, store);
        tracing::info!(profile = %runtime.id, spent = %spent, successor = ?successor, generation = view.lineage.generation, written_back = written, "refreshed");
        self.note_outcome(runtime, "refreshed by keyward");
        let served = view.credential.as_ref().map(|c| c.access_fingerprint());
        if !written && served != Some(answer.access_token.fingerprint()) {
            // Neither in the source nor in the journal: serve it from memory, the last copy.
            let mut patched = (*view).clone();
            patched.credential = view
                .credential
                .as_ref()
                .map(|base| Arc::new(super::with_answer(runtime.source.as_ref(), base, &answer)));
            patched.spend = None;
            patched.awaiting_write_back = true;
            let patched = Arc::new(patched);
            runtime.view.store(patched.clone());
            return Finished::Done(patched);
        }
        Finished::Done(view)
    }

    fn record_failure(
        &self,
        runtime: &Arc<ProfileRuntime>,
        guard: Box<dyn SourceGuard>,
        spent: Fingerprint,
        journal: JournalId,
        failure: RefreshFailure,
    ) -> Finished {
        let store = self.store.as_ref();
        let (state, detail) = match &failure {
            RefreshFailure::Rejected { code, .. } => (JournalState::Rejected, code.clone()),
            RefreshFailure::Unknown { detail } => (JournalState::Unknown, detail.clone()),
            RefreshFailure::NotSent { detail } => (JournalState::NotSpent, detail.clone()),
            RefreshFailure::Refused { status, code, .. } => {
                (JournalState::NotSpent, format!("{status} {code}"))
            }
        };
        if let Err(e) = store.record_failure(journal, state, &detail) {
            tracing::error!(profile = %runtime.id, error = %e, "could not record the refresh failure");
        }
        tracing::warn!(profile = %runtime.id, spent = %spent, outcome = state.as_str(), "refresh failed: {failure}");
        match failure {
            RefreshFailure::Rejected { code, .. } => {
                Counters::bump(&self.counters.rejected);
                // Re-read so the snapshot carries the ledger's rejection before anyone looks.
                reload(runtime, store);
                drop(guard);
                self.note_outcome(runtime, &format!("refresh token rejected ({code})"));
                Finished::Rejected(code)
            }
            RefreshFailure::Unknown { detail } => {
                Counters::bump(&self.counters.outcome_unknown);
                // Still under the locks: only a writer that ignores them could have moved the
                // source, but that newer lineage is the only safe way forward if it did.
                let view = reload(runtime, store);
                drop(guard);
                let adopted = view
                    .credential
                    .as_ref()
                    .is_some_and(|c| c.refresh_fingerprint() != spent);
                let next = if adopted {
                    "adopted a newer lineage"
                } else {
                    "waiting for the source to change; serving the current access token while it lasts"
                };
                tracing::warn!(profile = %runtime.id, spent = %spent, generation = view.lineage.generation, "answer lost: refresh outcome unknown ({detail}); the token will not be sent again; {next}");
                self.note_outcome(runtime, &format!("outcome unknown ({detail}); {next}"));
                if adopted {
                    Counters::bump(&self.counters.adopted);
                    return Finished::Done(view);
                }
                Finished::Failed(self.unavailable(runtime, &view))
            }
            RefreshFailure::NotSent { .. } | RefreshFailure::Refused { .. } => {
                drop(guard);
                Counters::bump(&self.counters.transient_failures);
                let retry_after = match &failure {
                    RefreshFailure::Refused { retry_after, .. } => *retry_after,
                    _ => None,
                };
                let backoff = {
                    let mut state = runtime.state();
                    let failures = state
                        .backoff
                        .as_ref()
                        .filter(|b| b.token == spent)
                        .map_or(0, |b| b.failures + 1);
                    let wait = timing::backoff(failures, retry_after);
                    let backoff = Backoff {
                        token: spent,
                        until: self.clock.monotonic() + wait,
                        retry_at: self.clock.now()
                            + chrono::Duration::from_std(wait).unwrap_or_default(),
                        failures,
                        reason: failure.to_string(),
                    };
                    state.backoff = Some(backoff.clone());
                    backoff
                };
                self.note_outcome(runtime, &format!("transient failure: {failure}"));
                Finished::Failed(backoff.unavailable(
                    &runtime.id,
                    &format!("{failure}; the token was not spent"),
                    self.clock.monotonic(),
                ))
            }
        }
    }

    /// After a rejection, a concurrent writer (the CLI, another keyward) may be about to land
    /// the lineage that made ours stale. Watch the source for it before giving up.
    async fn await_newer_lineage(
        self: &Arc<Self>,
        runtime: &Arc<ProfileRuntime>,
        spent: Fingerprint,
        code: &str,
    ) -> Result<Arc<Credential>, AccessError> {
        let deadline = self.clock.monotonic() + self.settings.settle_window;
        loop {
            let view = self.current_view(runtime).await;
            if let Some(credential) = &view.credential {
                if credential.refresh_fingerprint() != spent && view.spend.is_none() {
                    Counters::bump(&self.counters.adopted);
                    tracing::info!(profile = %runtime.id, adopted = %credential.refresh_fingerprint(), "a concurrent writer landed a newer lineage; adopted it");
                    self.note_outcome(runtime, "adopted a newer lineage after a rejection");
                    return Ok(credential.clone());
                }
            }
            if self.clock.monotonic() >= deadline {
                tracing::error!(profile = %runtime.id, code, "the refresh token was rejected and no newer lineage appeared: the profile needs a new login");
                return Err(self.unavailable(runtime, &view));
            }
            self.clock.sleep(SETTLE_POLL).await;
        }
    }

    pub(super) fn source_error(
        &self,
        runtime: &ProfileRuntime,
        error: &SourceError,
    ) -> AccessError {
        AccessError::Unavailable {
            profile: runtime.id.clone(),
            detail: error.to_string(),
            remedy: Some(format!(
                "if {} is stuck holding its lock, stop it",
                runtime.source.vocabulary().lock_holder
            )),
            retry_after: Some(Duration::from_secs(1)),
        }
    }

    pub(super) fn note_outcome(&self, runtime: &ProfileRuntime, outcome: &str) {
        runtime.state().last_outcome = Some((self.clock.now(), outcome.to_string()));
    }
}

pub(super) enum Finished {
    Done(Arc<View>),
    Rejected(String),
    Failed(AccessError),
}
