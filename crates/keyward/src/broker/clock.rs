//! The broker's only source of time: every decision (is the access token usable, is the refresh
//! due, has the backoff ended, is the settle window over) reads it here, so tests drive the
//! protocol with a clock they advance instead of waiting for tokens to expire.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

pub(crate) type Sleep = Pin<Box<dyn Future<Output = ()> + Send>>;

pub(crate) trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Wall time: what token expiries, refresh schedules and reports are measured in.
    fn now(&self) -> DateTime<Utc>;

    /// Monotonic time since an arbitrary origin, for deadlines that must not move when the wall
    /// clock is stepped (backoffs, the settle window, the minimum refresh interval).
    fn monotonic(&self) -> Duration;

    /// Resolves once `duration` of monotonic time has passed.
    fn sleep(&self, duration: Duration) -> Sleep;
}

/// The machine's clocks and tokio's timer.
#[derive(Debug)]
pub(crate) struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    pub(crate) fn new() -> Self {
        Self {
            origin: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn monotonic(&self) -> Duration {
        self.origin.elapsed()
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        Box::pin(tokio::time::sleep(duration))
    }
}
