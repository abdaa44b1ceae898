//! Refreshes each profile ahead of expiry, finishes journaled work, and keeps health current.
//!
//! It wakes on file events and at least every tick, and reads the wall clock each time rather
//! than trusting one long sleep: a laptop that slept (or a SIGSTOPped process) wakes with its
//! monotonic timers behind the real time.

use std::sync::Arc;
use std::time::Duration;

use super::{Broker, ProfileRuntime};
use crate::token_endpoint::RefreshTrigger;

pub(super) async fn run(broker: Arc<Broker>, runtime: Arc<ProfileRuntime>) {
    loop {
        let wait = tick(&broker, &runtime).await;
        tokio::select! {
            _ = broker.shutdown.cancelled() => return,
            _ = runtime.changed.notified() => {}
            _ = broker.clock.sleep(wait) => {}
        }
    }
}

/// One look at the profile: finish journaled work, refresh if due, record health. Returns how
/// long the scheduler may sleep before the next look.
pub(super) async fn tick(broker: &Arc<Broker>, runtime: &Arc<ProfileRuntime>) -> Duration {
    let pending = {
        let (b, rt) = (broker.clone(), runtime.clone());
        let _flight = runtime.flight.lock().await;
        tokio::task::spawn_blocking(move || b.recover(&rt)).await
    };
    if let Ok(Err(e)) = pending {
        tracing::warn!(profile = %runtime.id, error = %e, "journal recovery deferred");
    }
    if runtime.source.polled() {
        // A store without a stat-able identity (a keyring) is re-read here, once a tick, off
        // the request path; its events (the CLI's lock release) usually come first.
        runtime.invalidate();
    }
    let view = broker.current_view(runtime).await;
    let mut wait = broker.settings.tick;
    if let Some(credential) = view.credential.clone() {
        let blocked = view.spend.is_some();
        let due = runtime.refresh_at(&broker.settings.timing, &credential);
        if let (false, Some(due)) = (blocked, due) {
            let until = (due - broker.clock.now())
                .to_std()
                .unwrap_or(Duration::ZERO);
            if until.is_zero() {
                let backoff = runtime
                    .state()
                    .backoff
                    .clone()
                    .filter(|b| b.token == credential.refresh_fingerprint());
                let now = broker.clock.monotonic();
                match backoff {
                    Some(b) if b.until > now => {
                        wait = wait.min(b.until.saturating_sub(now));
                    }
                    _ => {
                        let result = broker
                            .refresh(
                                runtime,
                                RefreshTrigger::Ahead,
                                credential.refresh_fingerprint(),
                                None,
                            )
                            .await;
                        wait = match result {
                            // A replacement that is due already (the endpoint's clock or ours is
                            // off) waits a tick instead of refreshing in a loop.
                            Ok(grant)
                                if runtime
                                    .refresh_at(&broker.settings.timing, &grant.credential)
                                    .is_some_and(|at| at <= broker.clock.now()) =>
                            {
                                // The protocol already warned when the token arrived.
                                wait
                            }
                            // Recompute from the new token right away.
                            Ok(_) => Duration::from_millis(50),
                            Err(e) => {
                                tracing::debug!(profile = %runtime.id, error = %e, "scheduled refresh did not complete");
                                wait.min(Duration::from_secs(5))
                            }
                        };
                    }
                }
            } else {
                wait = wait.min(until);
            }
        }
    }
    broker.record_health(runtime);
    wait
}
