//! Finishing refreshes a crash (or a failed write) left in the journal. Runs under the source's
//! locks, before any new spend, so it never races a live refresh of the same source: every live
//! refresh holds those locks from its intent to its settlement.

use std::sync::Arc;

use super::{AccessError, Broker, Counters, ProfileRuntime};
use crate::credential::{SourceContents, SourceGuard};
use crate::store::JournalState;

impl Broker {
    pub(super) fn recover_locked(
        &self,
        runtime: &Arc<ProfileRuntime>,
        guard: &dyn SourceGuard,
    ) -> Result<(), AccessError> {
        let store = self.store.as_ref();
        let unsettled = store.unsettled(&runtime.id)?;
        for entry in unsettled {
            Counters::bump(&self.counters.journal_recovered);
            let Some(answer) = entry
                .answer
                .filter(|_| entry.state == JournalState::Answered)
            else {
                // The request may have left before the crash: its outcome is unknown for good.
                tracing::warn!(profile = %runtime.id, spent = %entry.spent, started = %entry.started_at, "journal: a refresh was cut off before its answer arrived; its token may be spent and will not be sent again");
                store.record_failure(
                    entry.id,
                    JournalState::Unknown,
                    "keyward stopped before the answer arrived",
                )?;
                continue;
            };
            let successor = answer.refresh_token.as_ref().map(|t| t.fingerprint());
            let holds = match runtime.source.read().contents {
                Ok(SourceContents::Login(c)) => Some(c.refresh_fingerprint()),
                Ok(_) => None,
                // Unreadable is not another lineage: under the damage the file may still hold
                // the spent token, and the kept answer is then the only copy of its successor.
                Err(problem) => {
                    tracing::warn!(profile = %runtime.id, spent = %entry.spent, "journal: {problem}; keeping the token answer until the file can be read again");
                    continue;
                }
            };
            let state = if holds == Some(entry.spent) {
                match runtime
                    .source
                    .write_back(guard, entry.spent, &answer, self.clock.now())
                {
                    Ok(()) => {
                        tracing::info!(profile = %runtime.id, spent = %entry.spent, successor = ?successor, "journal: wrote a kept token answer back to the source");
                        JournalState::Settled
                    }
                    Err(e) => {
                        tracing::error!(profile = %runtime.id, error = %e, "journal: still cannot write the kept answer back; will retry");
                        continue;
                    }
                }
            } else if holds.is_some() && holds == successor {
                JournalState::Settled
            } else {
                // The source moved to another lineage (a new login) or no longer holds a login
                // (a logout): never overwrite it.
                tracing::warn!(profile = %runtime.id, spent = %entry.spent, "journal: the source holds another lineage now; the kept answer is superseded");
                JournalState::Superseded
            };
            store.settle(entry.id, state)?;
        }
        Ok(())
    }

    /// Recovery outside a refresh: at start, and when the scheduler sees unsettled entries.
    pub(super) fn recover(&self, runtime: &Arc<ProfileRuntime>) -> Result<(), AccessError> {
        let pending = self.store.unsettled(&runtime.id)?;
        if pending.is_empty() {
            return Ok(());
        }
        let guard = runtime
            .source
            .lock(self.settings.lock_timeout)
            .map_err(|e| self.source_error(runtime, &e))?;
        self.recover_locked(runtime, guard.as_ref())?;
        super::reload(runtime, self.store.as_ref());
        Ok(())
    }
}
