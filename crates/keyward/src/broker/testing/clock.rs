//! A clock tests move by hand.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{oneshot, watch};

use crate::broker::clock::{Clock, Sleep};

/// Wall and monotonic time that move only when the test says so. A sleeper wakes when
/// [`advance`](ManualClock::advance) passes its deadline; with `auto_advance`, a sleep moves the
/// clock itself and returns at once (for tests that only need waits to end, not to interleave).
#[derive(Clone)]
pub(crate) struct ManualClock {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    auto_advance: bool,
    sleepers: watch::Sender<usize>,
}

struct State {
    wall: DateTime<Utc>,
    monotonic: Duration,
    sleepers: Vec<(Duration, oneshot::Sender<()>)>,
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        f.debug_struct("ManualClock")
            .field("wall", &state.wall)
            .field("monotonic", &state.monotonic)
            .finish_non_exhaustive()
    }
}

impl ManualClock {
    pub(crate) fn new(start: DateTime<Utc>, auto_advance: bool) -> Self {
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    wall: start,
                    monotonic: Duration::ZERO,
                    sleepers: Vec::new(),
                }),
                auto_advance,
                sleepers: watch::Sender::new(0),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Moves both clocks forward and wakes every sleeper whose deadline has passed.
    pub(crate) fn advance(&self, by: Duration) {
        let woken = {
            let mut state = self.state();
            state.wall += chrono::Duration::from_std(by).unwrap_or_default();
            state.monotonic += by;
            let now = state.monotonic;
            let (due, waiting) = std::mem::take(&mut state.sleepers)
                .into_iter()
                .partition::<Vec<_>, _>(|(deadline, _)| *deadline <= now);
            state.sleepers = waiting;
            self.inner.sleepers.send_replace(state.sleepers.len());
            due
        };
        for (_, wake) in woken {
            let _ = wake.send(());
        }
    }

    /// Resolves once some task sleeps on this clock (the broker is waiting for time to pass).
    pub(crate) async fn sleeping(&self) {
        let mut sleepers = self.inner.sleepers.subscribe();
        let _ = sleepers.wait_for(|n| *n > 0).await;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        self.state().wall
    }

    fn monotonic(&self) -> Duration {
        self.state().monotonic
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        if self.inner.auto_advance || duration.is_zero() {
            self.advance(duration);
            return Box::pin(std::future::ready(()));
        }
        let (wake, woken) = oneshot::channel();
        {
            let mut state = self.state();
            let deadline = state.monotonic + duration;
            // A sleep given up on (a `select!` that took another branch) is no longer a sleeper.
            state.sleepers.retain(|(_, wake)| !wake.is_closed());
            state.sleepers.push((deadline, wake));
            self.inner.sleepers.send_replace(state.sleepers.len());
        }
        Box::pin(async move {
            let _ = woken.await;
        })
    }
}
