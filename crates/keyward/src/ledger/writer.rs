//! The ledger's thread: the only one that writes usage to the store.
//!
//! It waits for a finished request, then sleeps [`BATCH_WINDOW`] and takes everything that
//! arrived meanwhile (up to [`BATCH_MAX`] rows), and writes them and their hourly roll-ups in one
//! transaction: under load one commit carries a thousand requests, and the thread wakes once per
//! batch rather than once per request (a wake-up per request, a futex call on the serving thread
//! and a context switch here, cost more than writing the row). After each batch (and every [`VIEW_EVERY`] while
//! keys have limits) it reads back what the limits count, every process's rows included; every
//! hour it deletes rows and roll-ups older than their retention.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::limits::{StoredView, WindowTokens};
use super::queue::{Queue, Woken};
use super::{Admission, Finished, Limiter};
use crate::broker::Clock;
use crate::metrics::UsageCounters;
use crate::pool::Pool;
use crate::store::{SqliteStore, StoreResult, UsageIds, UsageRow};

/// How long the first row of a batch waits for others. A batch costs the store about as much as
/// a hundred requests in it (its transaction, its commit, its roll-ups), so the window is long
/// enough for that to be a small share of a busy gateway's batches, and short enough that
/// `keyward usage` and the dashboard show a request a moment after it ends (the key limits
/// count it in memory from the start).
const BATCH_WINDOW: Duration = Duration::from_millis(200);
const BATCH_MAX: usize = 4096;
/// How often the limits' view of the store is read back while nothing is written (other
/// processes write too).
const VIEW_EVERY: Duration = Duration::from_millis(500);
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
const HOUR_MS: i64 = 3_600_000;

pub(super) struct Writer {
    pub(super) store: SqliteStore,
    pub(super) ids: UsageIds,
    pub(super) limiter: Arc<Limiter>,
    pub(super) pool: Arc<Pool>,
    pub(super) counters: UsageCounters,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) retention: Duration,
    pub(super) rollup_retention: Duration,
}

impl Writer {
    pub(super) fn run(mut self, queue: &Queue) {
        let limits = self.limiter.limited_keys().next().is_some();
        let mut pruned = Instant::now();
        self.prune();
        let mut viewed = Instant::now();
        // Written, not yet handed to the limits with a view that includes them.
        let mut unviewed: Vec<Admission> = Vec::new();
        let mut behind = false;
        // Kept from batch to batch (and traded with the queue's): growing one anew for each
        // cost more than copying the rows.
        let mut rows = Vec::new();
        let mut flushes = Vec::new();
        loop {
            let wait = if limits {
                VIEW_EVERY.saturating_sub(viewed.elapsed())
            } else {
                PRUNE_EVERY.saturating_sub(pruned.elapsed())
            };
            if !behind && queue.wait(wait) == Woken::Rows {
                std::thread::sleep(BATCH_WINDOW);
            }
            rows.clear();
            let stop = queue.take(&mut rows, BATCH_MAX, &mut flushes);
            // A full batch: more are waiting, so the next one is taken without a pause.
            behind = rows.len() >= BATCH_MAX;
            if !rows.is_empty() {
                unviewed.extend(self.write(&rows));
            }
            if limits && (!rows.is_empty() || !flushes.is_empty() || viewed.elapsed() >= VIEW_EVERY)
            {
                if self.read_back(&unviewed) {
                    unviewed.clear();
                }
                viewed = Instant::now();
            }
            if pruned.elapsed() >= PRUNE_EVERY {
                self.prune();
                pruned = Instant::now();
            }
            for done in flushes.drain(..) {
                let _ = done.send(());
            }
            if stop {
                return;
            }
        }
    }

    /// Writes a batch and counts it in the metrics; the admissions it wrote. A batch the store
    /// refuses is dropped (and counted), never retried forever.
    fn write(&mut self, batch: &[Finished]) -> Vec<Admission> {
        let rows: Vec<UsageRow<'_>> = batch.iter().map(|f| usage_row(&self.limiter, f)).collect();
        let admissions: Vec<Admission> = batch.iter().filter_map(|f| f.admission).collect();
        match self.store.record_usage(&mut self.ids, &rows) {
            Ok(()) => {
                self.counters.count(&rows);
                admissions
            }
            Err(e) => {
                tracing::warn!(error = %e, rows = rows.len(), "could not write usage to the ledger; these requests are not recorded");
                for admission in admissions {
                    self.limiter.forget(admission);
                }
                self.counters.dropped.inc_by(rows.len() as u64);
                Vec::new()
            }
        }
    }

    /// Reads back what the limits count, and hands it over with the admissions it now
    /// includes; `false` when the store could not be read (the limits keep their counts).
    pub(super) fn read_back(&self, written: &[Admission]) -> bool {
        let now = self.clock.now();
        match self.view(now) {
            Ok(view) => {
                self.limiter.stored(written, view, now);
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not read the key limits' counts back from the store");
                false
            }
        }
    }

    fn view(&self, now: DateTime<Utc>) -> StoreResult<StoredView> {
        let now_ms = now.timestamp_millis();
        let mut view = StoredView::default();
        let index_of = |name: &str| {
            self.limiter
                .limited_keys()
                .find(|(_, policy)| policy.name == name)
                .map(|(index, _)| index)
        };
        let mut shares = false;
        for (index, policy) in self.limiter.limited_keys() {
            if policy.requests_per_minute.is_some() {
                view.arrivals.insert(
                    index,
                    self.store.key_arrivals(&policy.name, now_ms - 60_000)?,
                );
            }
            if policy.tokens_per_day.is_some() {
                let first_hour = (now_ms.div_euclid(HOUR_MS) - 23) * 3600;
                let hours = self.store.key_hours(&policy.name, first_hour)?;
                view.hours.insert(
                    index,
                    hours
                        .into_iter()
                        .map(|(hour, tokens)| (hour * 1000, tokens))
                        .collect(),
                );
            }
            shares |= policy.max_window_share.is_some();
        }
        if !shares {
            return Ok(view);
        }
        for member in self.pool.members() {
            let profile = member.profile();
            let Some(usage) = self.pool.usage(profile) else {
                continue;
            };
            for window in &usage.windows {
                let (Some(minutes), Some(resets_at)) = (window.window_minutes, window.resets_at)
                else {
                    continue;
                };
                if resets_at <= now {
                    continue;
                }
                let start_ms =
                    resets_at.timestamp_millis() - (minutes as i64).saturating_mul(60_000);
                let since_hour = start_ms.div_euclid(HOUR_MS) * 3600;
                let mut tokens = WindowTokens {
                    start_ms,
                    by_key: HashMap::new(),
                    total: 0,
                };
                for (key, used) in self
                    .store
                    .profile_tokens_by_key(&profile.to_string(), since_hour)?
                {
                    tokens.total += used;
                    if let Some(index) = key.as_deref().and_then(index_of) {
                        *tokens.by_key.entry(index).or_default() += used;
                    }
                }
                view.windows
                    .insert((profile.clone(), window.name.clone()), tokens);
            }
        }
        Ok(view)
    }

    fn prune(&self) {
        let now_ms = self.clock.now().timestamp_millis();
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        let rows_before = now_ms.saturating_sub(ms(self.retention));
        let hours_before = now_ms
            .saturating_sub(ms(self.rollup_retention))
            .div_euclid(HOUR_MS)
            * 3600;
        match self.store.prune_usage(rows_before, hours_before) {
            Ok((0, 0)) => {}
            Ok((rows, hours)) => tracing::debug!(rows, hours, "pruned the usage ledger"),
            Err(e) => tracing::warn!(error = %e, "could not prune the usage ledger"),
        }
    }
}

/// A finished request's row, its names borrowed (the key's from its policy).
fn usage_row<'a>(limiter: &'a Limiter, finished: &'a Finished) -> UsageRow<'a> {
    let millis = |d: std::time::Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
    UsageRow {
        at_ms: finished.at.timestamp_millis(),
        key: finished.key.map(|key| match limiter.policy(key) {
            Some(policy) => Cow::Borrowed(policy.name.as_str()),
            None => Cow::Owned(format!("key#{}", key + 1)),
        }),
        client: finished.client,
        dialect: finished.dialect,
        asked: finished.asked.as_deref(),
        served: finished.served.as_deref(),
        profile: finished.profile.as_deref(),
        status: finished.status,
        tokens: finished.tokens,
        first_byte_ms: finished.first_byte.map(millis),
        total_ms: millis(finished.total),
        hops: finished.hops,
        refused: finished.refused.map(|limit| limit.as_str()),
    }
}
