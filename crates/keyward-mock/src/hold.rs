//! Named gates behind `x-mock-hold`, so tests can prove a proxy forwards
//! the first SSE event before the upstream finishes, without timing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;

#[derive(Default)]
struct Gate {
    // A latch rather than a bare Notify permit: a release that arrives before
    // the hold must still let it through, and one release frees every holder.
    open: AtomicBool,
    notify: Notify,
}

#[derive(Default)]
pub(crate) struct Gates(Mutex<HashMap<String, Arc<Gate>>>);

impl Gates {
    fn gate(&self, key: &str) -> Arc<Gate> {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.entry(key.to_owned()).or_default().clone()
    }

    pub(crate) fn release(&self, key: &str) {
        let gate = self.gate(key);
        gate.open.store(true, Ordering::SeqCst);
        gate.notify.notify_waiters();
    }

    pub(crate) async fn wait(&self, key: &str) {
        let gate = self.gate(key);
        loop {
            let notified = gate.notify.notified();
            tokio::pin!(notified);
            // Register before checking the latch so a concurrent release
            // cannot slip between the check and the await.
            notified.as_mut().enable();
            if gate.open.load(Ordering::SeqCst) {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn release_before_hold_passes() {
        let gates = Gates::default();
        gates.release("k");
        let waited = tokio::time::timeout(Duration::from_secs(1), gates.wait("k")).await;
        assert!(waited.is_ok());
    }

    #[tokio::test]
    async fn hold_waits_for_release() {
        let gates = Arc::new(Gates::default());
        let g = gates.clone();
        let waiter = tokio::spawn(async move { g.wait("k").await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        gates.release("k");
        let joined = tokio::time::timeout(Duration::from_secs(1), waiter).await;
        assert!(matches!(joined, Ok(Ok(()))));
    }
}
