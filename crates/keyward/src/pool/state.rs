//! What the pool remembers of each profile between requests: its cooldown (resting at a usage
//! limit until the reset its upstream named) and its latest usage windows.
//!
//! The request path reads and writes memory only. The store (SQLite, shared with every keyward
//! process on the machine and kept across restarts) is reached from one background thread, which
//! writes what the request path recorded, in order, and every few seconds reads back what other
//! processes recorded; so a cooldown one process met is seen by the others, by `status`, and by a
//! restarted `serve`, which all load the store's records when their pool is built.

use std::collections::HashMap;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::broker::Clock;
use crate::profile::ProfileId;
use crate::store::{Cooldown, PoolStore, Usage};

/// How often what other processes recorded is read back from the store.
const SYNC_EVERY: Duration = Duration::from_secs(5);
/// Usage windows are written to the store at most this often per profile (unless they change).
const USAGE_PERSIST_EVERY: Duration = Duration::from_secs(60);

pub(super) struct ProfileStates {
    clock: Arc<dyn Clock>,
    memory: Arc<Mutex<Memory>>,
    writer: Option<StoreWriter>,
}

#[derive(Default)]
struct Memory {
    cooldowns: HashMap<ProfileId, Cooldown>,
    usage: HashMap<ProfileId, Observed>,
}

struct Observed {
    usage: Usage,
    /// When these windows last went to the store, on the clock's monotonic time.
    persisted_at: Option<Duration>,
}

/// Work for the store's thread.
enum Job {
    Cooldown(ProfileId, Cooldown),
    Usage(ProfileId, Usage),
    /// Answered once every job sent before it is in the store and the store was read back.
    #[cfg(test)]
    Sync(mpsc::Sender<()>),
}

/// The thread that owns the pool's store access; dropping it lets the thread finish the writes
/// sent so far, and waits for them.
struct StoreWriter {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

fn lock(memory: &Mutex<Memory>) -> MutexGuard<'_, Memory> {
    // Every update leaves the maps whole, so a panic elsewhere leaves nothing half-written.
    memory.lock().unwrap_or_else(|p| p.into_inner())
}

impl ProfileStates {
    /// Without a store, cooldowns and windows live as long as this process.
    pub(super) fn new(store: Option<Arc<dyn PoolStore>>, clock: Arc<dyn Clock>) -> Self {
        let memory = Arc::new(Mutex::new(Memory::default()));
        let writer = store.and_then(|store| {
            read_back(store.as_ref(), &memory);
            StoreWriter::start(store, memory.clone(), clock.clone())
        });
        Self {
            clock,
            memory,
            writer,
        }
    }

    /// The profile's cooldown, if it is resting at `now`.
    pub(super) fn cooldown(&self, profile: &ProfileId, now: DateTime<Utc>) -> Option<Cooldown> {
        lock(&self.memory)
            .cooldowns
            .get(profile)
            .filter(|c| c.until > now)
            .cloned()
    }

    /// Rests `profile`, here at once and in the store shortly.
    pub(super) fn cool(&self, profile: &ProfileId, cooldown: Cooldown) {
        lock(&self.memory)
            .cooldowns
            .insert(profile.clone(), cooldown.clone());
        self.send(Job::Cooldown(profile.clone(), cooldown));
    }

    /// Keeps the usage windows an answer reported; they go to the store when they moved, or
    /// when they have not been written for a while.
    pub(super) fn observe_usage(&self, profile: &ProfileId, usage: Usage) {
        let now = self.clock.monotonic();
        let persist = {
            let mut memory = lock(&self.memory);
            let observed = memory
                .usage
                .entry(profile.clone())
                .or_insert_with(|| Observed {
                    usage: usage.clone(),
                    persisted_at: None,
                });
            let moved = percents(&observed.usage) != percents(&usage);
            observed.usage = usage.clone();
            let due = observed
                .persisted_at
                .is_none_or(|at| now.saturating_sub(at) >= USAGE_PERSIST_EVERY);
            if moved || due {
                observed.persisted_at = Some(now);
            }
            moved || due
        };
        if persist {
            self.send(Job::Usage(profile.clone(), usage));
        }
    }

    /// `f` of the latest usage windows of `profile`, read in place.
    pub(super) fn with_usage<T>(
        &self,
        profile: &ProfileId,
        f: impl FnOnce(Option<&Usage>) -> T,
    ) -> T {
        f(lock(&self.memory)
            .usage
            .get(profile)
            .map(|observed| &observed.usage))
    }

    /// The latest usage windows of `profile` that this process saw or the store holds.
    pub(super) fn usage(&self, profile: &ProfileId) -> Option<Usage> {
        lock(&self.memory)
            .usage
            .get(profile)
            .map(|observed| observed.usage.clone())
    }

    /// Waits until what was recorded so far is in the store, and memory holds the store's.
    #[cfg(test)]
    pub(super) fn sync(&self) {
        let (done, synced) = mpsc::channel();
        self.send(Job::Sync(done));
        let _ = synced.recv();
    }

    fn send(&self, job: Job) {
        let Some(jobs) = self.writer.as_ref().and_then(|w| w.jobs.as_ref()) else {
            return;
        };
        if jobs.send(job).is_err() {
            tracing::warn!("the pool's store thread is gone; cooldowns and usage windows are kept in memory only");
        }
    }
}

impl StoreWriter {
    fn start(
        store: Arc<dyn PoolStore>,
        memory: Arc<Mutex<Memory>>,
        clock: Arc<dyn Clock>,
    ) -> Option<Self> {
        let (jobs, queue) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("keyward-pool-store".into())
            .spawn(move || run(store.as_ref(), &memory, clock.as_ref(), &queue));
        match spawned {
            Ok(thread) => Some(Self {
                jobs: Some(jobs),
                thread: Some(thread),
            }),
            Err(e) => {
                tracing::warn!(error = %e, "cannot start the pool's store thread; cooldowns and usage windows are kept in memory only");
                None
            }
        }
    }
}

impl Drop for StoreWriter {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The store's thread: each job in turn, and a read-back every [`SYNC_EVERY`]; ends when the
/// pool is dropped, after the jobs already sent.
fn run(
    store: &dyn PoolStore,
    memory: &Mutex<Memory>,
    clock: &dyn Clock,
    queue: &mpsc::Receiver<Job>,
) {
    let mut synced = clock.monotonic();
    loop {
        let wait = SYNC_EVERY.saturating_sub(clock.monotonic().saturating_sub(synced));
        match queue.recv_timeout(wait) {
            Ok(Job::Cooldown(profile, cooldown)) => {
                if let Err(e) = store.set_cooldown(&profile, &cooldown) {
                    tracing::warn!(profile = %profile, error = %e, "could not record the cooldown");
                }
            }
            Ok(Job::Usage(profile, usage)) => {
                if let Err(e) = store.set_usage(&profile, &usage) {
                    tracing::warn!(profile = %profile, error = %e, "could not record usage windows");
                }
            }
            #[cfg(test)]
            Ok(Job::Sync(done)) => {
                read_back(store, memory);
                synced = clock.monotonic();
                let _ = done.send(());
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        if clock.monotonic().saturating_sub(synced) >= SYNC_EVERY {
            read_back(store, memory);
            synced = clock.monotonic();
        }
    }
}

/// Takes in the store's records: other processes', and this one's from before a restart. Of two
/// records of one profile the newer wins, so one this process made a moment ago and has not yet
/// written is not undone by the store's older one.
fn read_back(store: &dyn PoolStore, memory: &Mutex<Memory>) {
    let cooldowns = store.cooldowns();
    let usage = store.usage();
    let mut memory = lock(memory);
    match cooldowns {
        Ok(stored) => {
            for (profile, cooldown) in stored {
                match memory.cooldowns.get(&profile) {
                    Some(ours) if ours.since > cooldown.since => {}
                    _ => {
                        memory.cooldowns.insert(profile, cooldown);
                    }
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not read cooldowns"),
    }
    match usage {
        Ok(stored) => {
            for (profile, usage) in stored {
                match memory.usage.get_mut(&profile) {
                    Some(ours) if ours.usage.observed_at >= usage.observed_at => {}
                    Some(ours) => ours.usage = usage,
                    None => {
                        memory.usage.insert(
                            profile,
                            Observed {
                                usage,
                                persisted_at: None,
                            },
                        );
                    }
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not read usage windows"),
    }
}

/// Each window's whole used percent: a change worth writing at once.
fn percents(usage: &Usage) -> Vec<(&str, u64)> {
    usage
        .windows
        .iter()
        .map(|w| (w.name.as_str(), w.used_percent as u64))
        .collect()
}
