//! The usage ledger: one row per model request (when, which gateway key by name, which client,
//! dialect, the model asked and served, the profile, the status, input / cached / output /
//! reasoning tokens, time to first byte and in all, failover hops, and the limit that refused it
//! if one did), never a prompt or an answer.
//!
//! The request path only hands a finished request's [`Entry`] to a queue ([`queue`]); one thread
//! ([`writer`]) writes them to the store in batches (a transaction per batch, with the hourly
//! roll-ups), counts them in `/metrics`, prunes what is older than the retention, and reads back
//! what the key limits need ([`limits`]). If the writer falls behind, rows are dropped (and
//! counted) rather than making a request wait.

mod client;
mod limits;
mod names;
mod queue;
mod report;
mod tap;
mod writer;

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::broker::Clock;
use crate::config::Config;
use crate::metrics::UsageCounters;
use crate::pool::Pool;
use crate::profile::ProfileId;
use crate::store::{SqliteStore, StoreError};
use queue::Queue;

pub(crate) use client::client_of;
pub(crate) use limits::{window_share, Admission, LimitKind, Limiter, Refusal};
pub(crate) use names::{model as model_name, Name};
pub(crate) use report::{window_reports, WindowReport};
pub(crate) use tap::{Tokens, UsageSlot, UsageTap};

/// What the pipeline learnt of a request, for the ledger. It goes with the answer's body, which
/// records the request once it has gone out.
#[derive(Debug, Clone, Default)]
pub(crate) struct Note {
    /// The model asked and the model served ([`names::model`]).
    pub asked: Option<Name>,
    pub served: Option<Name>,
    pub profile: Option<ProfileId>,
    /// Profiles tried before the one that answered (or before giving up).
    pub hops: u8,
    pub refused: Option<LimitKind>,
    /// Where the upstream's usage is read into as its answer goes by.
    pub usage: Option<Arc<UsageSlot>>,
    /// The key limits' count of this request.
    pub admission: Option<Admission>,
}

/// One model request, as it ends.
#[derive(Debug)]
pub(crate) struct Entry {
    pub at: DateTime<Utc>,
    /// The gateway key (its index in `[gateway]`'s keys), if one was presented.
    pub key: Option<usize>,
    pub client: &'static str,
    pub dialect: &'static str,
    pub status: u16,
    pub note: Note,
    pub first_byte: Option<Duration>,
    pub total: Duration,
}

/// A finished request on its way to the writer: its names kept by [`names`], so that nothing the
/// serving thread allocated is freed on the writer's (an allocator moving memory between threads
/// costs more than writing the row).
#[derive(Debug)]
struct Finished {
    at: DateTime<Utc>,
    key: Option<usize>,
    client: &'static str,
    dialect: &'static str,
    status: u16,
    asked: Option<Name>,
    served: Option<Name>,
    profile: Option<Name>,
    hops: u8,
    refused: Option<LimitKind>,
    admission: Option<Admission>,
    first_byte: Option<Duration>,
    total: Duration,
    tokens: Tokens,
}

pub(crate) struct Ledger {
    limiter: Arc<Limiter>,
    /// What the writer has still to write; `None` when the ledger is off
    /// (`[gateway] usage_ledger = false`).
    queue: Option<Arc<Queue>>,
    counters: UsageCounters,
    /// The store as the dashboard reads it (its own connection).
    reader: Option<SqliteStore>,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("on", &self.queue.is_some())
            .finish_non_exhaustive()
    }
}

impl Ledger {
    /// The ledger of `serve`: its writer started, and the key limits loaded with what the store
    /// holds (so a restarted `serve` counts what the last one let through).
    pub(crate) fn start(
        config: &Config,
        pool: Arc<Pool>,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Self>, StoreError> {
        let limiter = Arc::new(Limiter::new(config.gateway.keys.clone()));
        let counters = UsageCounters::default();
        if !config.gateway.usage_ledger {
            return Ok(Arc::new(Self::without_store(limiter, counters)));
        }
        let store = SqliteStore::open_for_usage(&config.keyward_home)?;
        let reader = SqliteStore::open(&config.keyward_home)?;
        let queue = Arc::new(Queue::default());
        let writer = writer::Writer {
            store,
            ids: Default::default(),
            limiter: limiter.clone(),
            pool,
            counters: counters.clone(),
            clock,
            retention: config.gateway.usage_retention,
            rollup_retention: config.gateway.usage_rollup_retention,
        };
        writer.read_back(&[]);
        // The writer ends once the ledger is dropped, after writing what was queued.
        let writer_queue = queue.clone();
        std::thread::Builder::new()
            .name("keyward-ledger".into())
            .spawn(move || writer.run(&writer_queue))
            .map_err(|source| StoreError::File {
                path: config.keyward_home.display().to_string(),
                doing: "cannot start the usage ledger's thread",
                source,
            })?;
        Ok(Arc::new(Self {
            limiter,
            queue: Some(queue),
            counters,
            reader: Some(reader),
        }))
    }

    /// A ledger that records nothing: the limits of keys without any (its only use).
    pub(crate) fn without_store(limiter: Arc<Limiter>, counters: UsageCounters) -> Self {
        Self {
            limiter,
            queue: None,
            counters,
            reader: None,
        }
    }

    pub(crate) fn limiter(&self) -> &Limiter {
        &self.limiter
    }

    pub(crate) fn counters(&self) -> &UsageCounters {
        &self.counters
    }

    /// Whether requests are recorded (`[gateway] usage_ledger`); when not, the gateway does not
    /// note them at all.
    pub(crate) fn is_on(&self) -> bool {
        self.queue.is_some()
    }

    /// The store, for reading what the ledger holds; `None` when it is off.
    pub(crate) fn reader(&self) -> Option<&SqliteStore> {
        self.reader.as_ref()
    }

    /// A request ended: its row goes to the writer (never waiting for it).
    pub(crate) fn record(&self, mut entry: Entry) {
        let tokens = entry
            .note
            .usage
            .take()
            .and_then(|slot| slot.tokens())
            .unwrap_or_default();
        let admission = entry.note.admission;
        if let Some(admission) = admission {
            self.limiter
                .finished(admission, entry.note.profile.clone(), tokens.total());
        }
        let Some(queue) = &self.queue else {
            return;
        };
        let note = &mut entry.note;
        let finished = Finished {
            at: entry.at,
            key: entry.key,
            client: entry.client,
            dialect: entry.dialect,
            status: entry.status,
            asked: note.asked.take(),
            served: note.served.take(),
            profile: note.profile.as_ref().map(names::profile),
            hops: note.hops,
            refused: note.refused,
            admission,
            first_byte: entry.first_byte,
            total: entry.total,
            tokens,
        };
        if !queue.push(finished) {
            if let Some(admission) = admission {
                self.limiter.forget(admission);
            }
            self.counters.dropped.inc();
        }
    }

    /// Waits until every row recorded so far is in the store.
    pub(crate) fn flush(&self) {
        let Some(queue) = &self.queue else {
            return;
        };
        let (done, written) = mpsc::channel();
        if queue.flush(done) {
            let _ = written.recv();
        }
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        if let Some(queue) = &self.queue {
            queue.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::SystemClock;
    use crate::store::GroupBy;

    fn entry(key: Option<usize>, status: u16, tokens: Tokens) -> Entry {
        let slot = Arc::new(UsageSlot::default());
        let mut tap = UsageTap::new(slot.clone(), false);
        tap.feed(
            &serde_json::json!({"usage": {"input_tokens": tokens.input, "output_tokens": tokens.output,
                "input_tokens_details": {"cached_tokens": tokens.cached},
                "output_tokens_details": {"reasoning_tokens": tokens.reasoning}}})
            .to_string()
            .into(),
        );
        tap.end();
        Entry {
            at: Utc::now(),
            key,
            client: "curl",
            dialect: "chat",
            status,
            note: Note {
                asked: Some(model_name("claude-opus-5")),
                served: Some(model_name("gpt-6-astra")),
                profile: Some(ProfileId::codex_default()),
                usage: Some(slot),
                ..Note::default()
            },
            first_byte: Some(Duration::from_millis(12)),
            total: Duration::from_millis(340),
        }
    }

    /// Recorded requests reach the store through the writer, by key name, with their tokens;
    /// a key's limits count them once written, and a new ledger on the store (a restart) too.
    #[test]
    fn rows_reach_the_store_and_the_limits() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home)?;
        std::fs::write(
            home.join("config.toml"),
            "[[gateway.keys]]\nname = \"agent\"\nkey = \"kw-agent-key-0123456789\"\nrequests_per_minute = 2\n",
        )?;
        let home_text = home.to_str().unwrap_or("");
        let env = crate::config::tests::env(&[("KEYWARD_HOME", home_text), ("HOME", home_text)]);
        let config = Config::load(&env, None)?;
        let pool = Arc::new(Pool::new(
            Vec::new(),
            &[],
            None,
            Arc::new(SystemClock::new()),
        ));
        let clock: Arc<dyn Clock> = Arc::new(SystemClock::new());
        let ledger = Ledger::start(&config, pool.clone(), clock.clone())?;
        let tokens = Tokens {
            input: 100,
            cached: 60,
            output: 20,
            reasoning: 5,
        };
        for _ in 0..2 {
            let mut entry = entry(Some(0), 200, tokens);
            entry.note.admission = ledger.limiter().admit(0, Utc::now()).ok().flatten();
            ledger.record(entry);
        }
        ledger.record(entry(None, 404, Tokens::default()));
        assert!(ledger.limiter().admit(0, Utc::now()).is_err());
        ledger.flush();
        let store = ledger.reader().ok_or("no store")?;
        let groups = store.usage_groups(Utc::now().timestamp_millis() - 60_000, GroupBy::Key)?;
        assert_eq!(groups.len(), 2, "{groups:?}");
        assert_eq!(groups[0].group.as_deref(), Some("agent"));
        assert_eq!(groups[0].totals.requests, 2);
        assert_eq!(groups[0].totals.tokens.input, 200);
        assert_eq!(groups[0].totals.tokens.reasoning, 10);
        assert_eq!(groups[1].group, None);
        assert_eq!(groups[1].totals.errors, 1);
        let latest = store.latest_requests(5)?;
        assert_eq!(latest.len(), 3);
        assert_eq!(latest[1].served.as_deref(), Some("gpt-6-astra"));
        assert!(
            ledger.limiter().admit(0, Utc::now()).is_err(),
            "counted once written"
        );
        drop(ledger);

        let restarted = Ledger::start(&config, pool, clock)?;
        assert!(
            restarted.limiter().admit(0, Utc::now()).is_err(),
            "a restart counts what the store holds"
        );
        Ok(())
    }
}
