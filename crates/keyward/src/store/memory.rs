//! An in-memory [`Store`] for the broker's tests, with [`SqliteStore`](super::SqliteStore)'s
//! semantics (the contract tests below run against both): the ledger refuses a fingerprint it
//! holds, `NotSpent` frees a token and nothing else does, an answer without a successor frees the
//! token it answered, settling erases the kept answer.
//!
//! Shared between two brokers it is one `KEYWARD_HOME` used by two processes. A crash point can
//! be armed after a step: the step commits, then the calling task unwinds as a killed process
//! would stop, with no destructor of the protocol's own doing anything further.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};

use super::*;
use crate::secret::Secret;

/// Where the store reads the time it stamps records with (the broker's clock in its tests).
pub(crate) type Now = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// A simulated `kill -9`: unwinds the calling task without running the panic hook (so nothing is
/// printed), dropping whatever it holds, as the end of a process releases its locks. Tokio turns
/// it into a failed task; the test then drops the broker and builds a new one.
pub(crate) fn crash() -> ! {
    std::panic::resume_unwind(Box::new(SimulatedCrash))
}

/// The payload of [`crash`].
pub(crate) struct SimulatedCrash;

/// A step of the store after which an armed crash fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StoreStep {
    /// The ledger and the journal hold the intent; nothing was sent.
    BeginSpend,
    /// The answer is journaled; nothing was written back.
    RecordAnswer,
    /// The journal entry settled.
    Settle,
}

#[derive(Debug)]
struct Entry {
    id: JournalId,
    profile: String,
    spent: Fingerprint,
    successor: Option<Fingerprint>,
    state: JournalState,
    answer: Option<TokenAnswer>,
    started_at: DateTime<Utc>,
}

#[derive(Debug, Default)]
struct State {
    ledger: HashMap<Fingerprint, SpendRecord>,
    journal: Vec<Entry>,
    lineage: HashMap<String, Lineage>,
    health: HashMap<String, Vec<HealthEvent>>,
    crash_after: Option<StoreStep>,
}

#[derive(Clone)]
pub(crate) struct MemoryStore {
    state: Arc<Mutex<State>>,
    now: Now,
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

impl MemoryStore {
    pub(crate) fn new(now: Now) -> Self {
        Self {
            state: Arc::new(Mutex::new(State::default())),
            now,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next `step` (by any user of this store) commits, then crashes its caller.
    pub(crate) fn crash_after(&self, step: Option<StoreStep>) {
        self.state().crash_after = step;
    }

    fn maybe_crash(&self, step: StoreStep) {
        let fire = {
            let mut state = self.state();
            let fire = state.crash_after == Some(step);
            if fire {
                state.crash_after = None;
            }
            fire
        };
        if fire {
            crash();
        }
    }

    /// Every fingerprint the ledger holds, with its state.
    pub(crate) fn ledger(&self) -> Vec<(Fingerprint, SpendState)> {
        self.state()
            .ledger
            .values()
            .map(|r| (r.fingerprint, r.state))
            .collect()
    }

    /// The kept answers of unsettled entries: tokens only keyward's journal holds.
    pub(crate) fn kept_answers(&self) -> Vec<TokenAnswer> {
        self.state()
            .journal
            .iter()
            .filter(|e| e.state == JournalState::Answered)
            .filter_map(|e| e.answer.clone())
            .collect()
    }
}

impl Store for MemoryStore {
    fn spend_record(&self, token: Fingerprint) -> StoreResult<Option<SpendRecord>> {
        Ok(self.state().ledger.get(&token).cloned())
    }

    fn begin_spend(
        &self,
        profile: &ProfileId,
        token: Fingerprint,
        trigger: &str,
    ) -> StoreResult<SpendPermit> {
        let _ = trigger;
        let now = (self.now)();
        let id = {
            let mut state = self.state();
            if let Some(record) = state.ledger.get(&token) {
                return Ok(SpendPermit::Refused(record.clone()));
            }
            state.ledger.insert(
                token,
                SpendRecord {
                    fingerprint: token,
                    state: SpendState::Spending,
                    detail: None,
                    at: now,
                },
            );
            let id = state.journal.len() as JournalId + 1;
            state.journal.push(Entry {
                id,
                profile: profile.to_string(),
                spent: token,
                successor: None,
                state: JournalState::Intent,
                answer: None,
                started_at: now,
            });
            id
        };
        self.maybe_crash(StoreStep::BeginSpend);
        Ok(SpendPermit::Granted(id))
    }

    fn record_answer(&self, id: JournalId, answer: &TokenAnswer) -> StoreResult<()> {
        let now = (self.now)();
        {
            let mut state = self.state();
            let successor = answer.refresh_token.as_ref().map(Secret::fingerprint);
            let Some(entry) = state.journal.iter_mut().find(|e| e.id == id) else {
                return Ok(());
            };
            entry.state = JournalState::Answered;
            entry.answer = Some(answer.clone());
            entry.successor = successor;
            let spent = entry.spent;
            if successor.is_some() {
                if let Some(record) = state.ledger.get_mut(&spent) {
                    record.state = SpendState::Spent;
                    record.at = now;
                }
            } else {
                // The endpoint did not rotate: the old refresh token is still the live one.
                state.ledger.remove(&spent);
            }
        }
        self.maybe_crash(StoreStep::RecordAnswer);
        Ok(())
    }

    fn record_failure(&self, id: JournalId, state: JournalState, detail: &str) -> StoreResult<()> {
        let now = (self.now)();
        let mut store = self.state();
        let Some(entry) = store.journal.iter_mut().find(|e| e.id == id) else {
            return Ok(());
        };
        entry.state = state;
        entry.answer = None;
        let spent = entry.spent;
        if state == JournalState::NotSpent {
            store.ledger.remove(&spent);
        } else if let Some(record) = store.ledger.get_mut(&spent) {
            record.state = if state == JournalState::Rejected {
                SpendState::Rejected
            } else {
                SpendState::Unknown
            };
            record.detail = Some(detail.to_string());
            record.at = now;
        }
        Ok(())
    }

    fn settle(&self, id: JournalId, state: JournalState) -> StoreResult<()> {
        {
            let mut store = self.state();
            if let Some(entry) = store.journal.iter_mut().find(|e| e.id == id) {
                entry.state = state;
                entry.answer = None;
            }
        }
        self.maybe_crash(StoreStep::Settle);
        Ok(())
    }

    fn unsettled(&self, profile: &ProfileId) -> StoreResult<Vec<UnsettledRefresh>> {
        let profile = profile.to_string();
        Ok(self
            .state()
            .journal
            .iter()
            .filter(|e| e.profile == profile)
            .filter(|e| matches!(e.state, JournalState::Intent | JournalState::Answered))
            .map(|e| UnsettledRefresh {
                id: e.id,
                spent: e.spent,
                state: e.state,
                answer: e.answer.clone(),
                started_at: e.started_at,
            })
            .collect())
    }

    fn is_successor(&self, token: Fingerprint) -> StoreResult<bool> {
        Ok(self
            .state()
            .journal
            .iter()
            .any(|e| e.successor == Some(token)))
    }

    fn observe_lineage(
        &self,
        profile: &ProfileId,
        current: Fingerprint,
        author: LineageAuthor,
    ) -> StoreResult<Lineage> {
        let now = (self.now)();
        let mut state = self.state();
        let lineage = state.lineage.entry(profile.to_string()).or_default();
        if lineage.current != Some(current) {
            lineage.generation += 1;
            lineage.current = Some(current);
            lineage.changed_at = Some(now);
            lineage.changed_by = Some(author.as_str().to_string());
        }
        Ok(lineage.clone())
    }

    #[cfg(test)]
    fn lineage(&self, profile: &ProfileId) -> StoreResult<Lineage> {
        Ok(self
            .state()
            .lineage
            .get(&profile.to_string())
            .cloned()
            .unwrap_or_default())
    }

    fn record_health(&self, profile: &ProfileId, health: &str, detail: &str) -> StoreResult<()> {
        let at = (self.now)();
        let mut state = self.state();
        let events = state.health.entry(profile.to_string()).or_default();
        events.push(HealthEvent {
            at,
            health: health.to_string(),
            detail: detail.to_string(),
        });
        let excess = events.len().saturating_sub(500);
        events.drain(..excess);
        Ok(())
    }

    fn health_history(&self, profile: &ProfileId, limit: usize) -> StoreResult<Vec<HealthEvent>> {
        Ok(self
            .state()
            .health
            .get(&profile.to_string())
            .map(|events| events.iter().rev().take(limit).cloned().collect())
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteStore;

    fn answer(access: &str, refresh: Option<&str>) -> TokenAnswer {
        TokenAnswer {
            access_token: Secret::new(access),
            refresh_token: refresh.map(Secret::new),
            id_token: None,
        }
    }

    fn granted(permit: SpendPermit) -> JournalId {
        match permit {
            SpendPermit::Granted(id) => id,
            SpendPermit::Refused(record) => panic!("spend refused: {record:?}"),
        }
    }

    /// The semantics the broker relies on, checked against any store.
    fn contract(store: &dyn Store) -> StoreResult<()> {
        let profile = ProfileId::codex_default();
        let (t1, t2) = (Fingerprint::of("rt_1"), Fingerprint::of("rt_2"));

        // A granted token is refused to a second spender while in flight and after.
        let id = granted(store.begin_spend(&profile, t1, "test")?);
        match store.begin_spend(&profile, t1, "test")? {
            SpendPermit::Refused(r) => assert_eq!(r.state, SpendState::Spending),
            SpendPermit::Granted(_) => panic!("granted twice while in flight"),
        }
        let unsettled = store.unsettled(&profile)?;
        assert_eq!(
            unsettled
                .iter()
                .map(|u| (u.spent, u.state))
                .collect::<Vec<_>>(),
            vec![(t1, JournalState::Intent)]
        );
        store.record_answer(id, &answer("at_2", Some("rt_2")))?;
        assert_eq!(
            store.spend_record(t1)?.map(|r| r.state),
            Some(SpendState::Spent)
        );
        assert!(store.is_successor(t2)?);
        assert!(!store.is_successor(t1)?);
        let kept = store.unsettled(&profile)?;
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].state, JournalState::Answered);
        let kept_refresh = kept[0]
            .answer
            .as_ref()
            .and_then(|a| a.refresh_token.clone());
        assert_eq!(kept_refresh.as_ref().map(Secret::expose), Some("rt_2"));
        store.settle(id, JournalState::Settled)?;
        assert!(store.unsettled(&profile)?.is_empty());
        assert!(matches!(
            store.begin_spend(&profile, t1, "test")?,
            SpendPermit::Refused(_)
        ));

        // An answer without a successor leaves the token live and spendable.
        let id = granted(store.begin_spend(&profile, t2, "test")?);
        store.record_answer(id, &answer("at_3", None))?;
        assert!(store.spend_record(t2)?.is_none());
        store.settle(id, JournalState::Settled)?;

        // NotSpent frees; Rejected and Unknown never do.
        let id = granted(store.begin_spend(&profile, t2, "test")?);
        store.record_failure(id, JournalState::NotSpent, "connection refused")?;
        assert!(store.spend_record(t2)?.is_none());
        let id = granted(store.begin_spend(&profile, t2, "test")?);
        store.record_failure(id, JournalState::Unknown, "timeout")?;
        let record = store.spend_record(t2)?;
        assert_eq!(record.as_ref().map(|r| r.state), Some(SpendState::Unknown));
        assert_eq!(record.and_then(|r| r.detail).as_deref(), Some("timeout"));
        assert!(store.unsettled(&profile)?.is_empty());
        let t3 = Fingerprint::of("rt_3");
        let id = granted(store.begin_spend(&profile, t3, "test")?);
        store.record_failure(id, JournalState::Rejected, "invalid_grant")?;
        assert_eq!(
            store.spend_record(t3)?.map(|r| r.state),
            Some(SpendState::Rejected)
        );

        // Lineage counts changes, not observations.
        let a = store.observe_lineage(&profile, t1, LineageAuthor::Source)?;
        let again = store.observe_lineage(&profile, t1, LineageAuthor::Source)?;
        let b = store.observe_lineage(&profile, t2, LineageAuthor::Keyward)?;
        assert_eq!((a.generation, again.generation, b.generation), (1, 1, 2));
        assert_eq!(b.changed_by.as_deref(), Some("keyward"));
        assert_eq!(store.lineage(&profile)?.current, Some(t2));

        store.record_health(&profile, "ok", "serving")?;
        store.record_health(&profile, "expired", "later")?;
        let history = store.health_history(&profile, 1)?;
        assert_eq!(
            history
                .iter()
                .map(|h| h.health.as_str())
                .collect::<Vec<_>>(),
            vec!["expired"]
        );
        Ok(())
    }

    /// The in-memory store keeps the contract the broker relies on.
    #[test]
    fn memory_store_keeps_the_store_contract() -> StoreResult<()> {
        contract(&MemoryStore::new(Arc::new(Utc::now)))
    }

    /// SQLite keeps the same contract, so what the broker's tests prove with the in-memory store
    /// holds for the store keyward runs with.
    #[test]
    fn sqlite_store_keeps_the_store_contract() -> StoreResult<()> {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        contract(&SqliteStore::open(dir.path())?)
    }
}
