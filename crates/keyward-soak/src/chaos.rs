//! The chaos: independent actors, each with its own seeded random stream, each acting at random
//! moments until told to stop (finishing what it started: a stopped process is continued, a
//! killed one restarted, the relay brought back).
//!
//! Durations here only pace the chaos; nothing waits for a result by the clock.

use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::Rng;
use serde_json::json;
use tokio::sync::watch;

use crate::fleet::{Control, Slot};
use crate::soak::{lock, Soak};
use crate::timeline::{now_ms, Kind};
use crate::watch::nap;

/// The crash points of keyward's test build (`--features failpoints`).
pub(crate) const CRASH_POINTS: [&str; 3] = ["after-intent", "after-answer", "after-write-back"];

fn secs(rng: &mut StdRng, from: f64, to: f64) -> Duration {
    Duration::from_secs_f64(rng.random_range(from..to))
}

fn pick<T: Copy>(rng: &mut StdRng, items: &[T]) -> Option<T> {
    items.get(rng.random_range(0..items.len())).copied()
}

/// A random slot (its control may be busy: callers `try_lock` it).
fn random_slot(soak: &Soak, rng: &mut StdRng) -> Option<Arc<Slot>> {
    let slot = soak
        .fleet
        .slots
        .get(rng.random_range(0..soak.fleet.slots.len()))?;
    Some(slot.clone())
}

/// Starts a fresh instance in `slot`, retrying (a start that fails is a problem of keyward's).
async fn restart(soak: &Soak, slot: &Slot, control: &mut Control, crash_at: Option<&'static str>) {
    for attempt in 1..=3 {
        match soak.fleet.start(slot, control, crash_at).await {
            Ok(()) => return,
            Err(e) => soak.problem(format!(
                "slot {} did not start (attempt {attempt}): {e:#}",
                slot.index
            )),
        }
    }
}

/// kill -9 of a random process, restarted a moment later.
pub(crate) async fn killer(soak: Arc<Soak>, mut rng: StdRng, mut stop: watch::Receiver<bool>) {
    while nap(&mut stop, secs(&mut rng, 15.0, 35.0)).await {
        let Some(slot) = random_slot(&soak, &mut rng) else {
            continue;
        };
        let Ok(mut control) = slot.control.try_lock() else {
            continue;
        };
        let name = slot.live().name;
        let event = soak.timeline.begin(
            Kind::Kill,
            Some(slot.index),
            None,
            format!("kill -9 {name}"),
        );
        if let Err(e) = soak.fleet.kill(&slot, &mut control).await {
            soak.note(format!("kill -9 {name}: {e:#}"));
        }
        tokio::time::sleep(secs(&mut rng, 0.5, 4.0)).await;
        restart(&soak, &slot, &mut control, None).await;
        soak.timeline.end(event);
    }
}

/// A process restarted with a crash point armed; once it aborts there (at its next refresh), it
/// is restarted plainly. One that never gets to refresh is disarmed after a while.
pub(crate) async fn crasher(
    soak: Arc<Soak>,
    mut rng: StdRng,
    mut stop: watch::Receiver<bool>,
    patience: Duration,
) {
    while nap(&mut stop, secs(&mut rng, 30.0, 60.0)).await {
        let Some(slot) = random_slot(&soak, &mut rng) else {
            continue;
        };
        let Ok(mut control) = slot.control.try_lock() else {
            continue;
        };
        let Some(point) = pick(&mut rng, &CRASH_POINTS) else {
            continue;
        };
        let old = slot.live().name;
        let event = soak.timeline.begin(
            Kind::GracefulRestart,
            Some(slot.index),
            None,
            format!("SIGTERM {old}, restart with KEYWARD_CRASH_AT={point}"),
        );
        if let Ok(false) = soak.fleet.terminate(&slot, &mut control).await {
            soak.problem(format!("{old} did not stop gracefully on SIGTERM"));
        }
        let started = soak.fleet.start(&slot, &mut control, Some(point)).await;
        soak.timeline.end(event);
        let armed = soak.timeline.begin(
            Kind::Armed,
            Some(slot.index),
            None,
            format!("{} armed at {point}", slot.live().name),
        );
        let crashed = match started {
            // It aborted before it even listened: its first refresh came at once.
            Err(e) if format!("{e:#}").contains("KEYWARD_CRASH_AT") => Some(now_ms()),
            Err(e) => {
                soak.problem(format!("slot {} did not start armed: {e:#}", slot.index));
                None
            }
            Ok(()) => {
                let deadline = tokio::time::Instant::now() + patience;
                let mut crashed = None;
                while crashed.is_none() && tokio::time::Instant::now() < deadline && !*stop.borrow()
                {
                    match soak
                        .fleet
                        .wait_exit(&slot, &mut control, Duration::from_secs(1))
                        .await
                    {
                        Ok(Some((_, seen))) => crashed = Some(seen),
                        Ok(None) => {}
                        Err(e) => {
                            soak.note(format!("waiting for slot {}: {e:#}", slot.index));
                            break;
                        }
                    }
                }
                crashed
            }
        };
        soak.timeline.end(armed);
        match crashed {
            Some(seen) => {
                let crash = soak.timeline.begin(
                    Kind::Crash,
                    Some(slot.index),
                    None,
                    format!("slot {} aborted at {point}", slot.index),
                );
                soak.timeline.set_start(crash, seen);
                tokio::time::sleep(secs(&mut rng, 0.5, 3.0)).await;
                restart(&soak, &slot, &mut control, None).await;
                soak.timeline.end(crash);
            }
            None => disarm(&soak, &slot, &mut control).await,
        }
    }
}

/// Restarts an armed process without its crash point.
pub(crate) async fn disarm(soak: &Soak, slot: &Slot, control: &mut Control) {
    let name = slot.live().name;
    let event = soak.timeline.begin(
        Kind::GracefulRestart,
        Some(slot.index),
        None,
        format!("SIGTERM {name} (disarm), restart plainly"),
    );
    if let Ok(false) = soak.fleet.terminate(slot, control).await {
        soak.problem(format!("{name} did not stop gracefully on SIGTERM"));
    }
    restart(soak, slot, control, None).await;
    soak.timeline.end(event);
}

/// SIGSTOP past the expiry of every token the process holds, then SIGCONT. Holds the CLI gate:
/// a CLI spends without a lock and must not run while a frozen keyward may hold it mid-refresh.
pub(crate) async fn stopper(
    soak: Arc<Soak>,
    mut rng: StdRng,
    mut stop: watch::Receiver<bool>,
    longest_ttl: i64,
) {
    while nap(&mut stop, secs(&mut rng, 40.0, 80.0)).await {
        let _gate = soak.cli_gate.lock().await;
        if *stop.borrow() {
            break;
        }
        let Some(slot) = random_slot(&soak, &mut rng) else {
            continue;
        };
        let Ok(control) = slot.control.try_lock() else {
            continue;
        };
        let live = slot.live();
        if live.url.is_none() {
            continue;
        }
        let pause = secs(
            &mut rng,
            longest_ttl as f64 + 2.0,
            longest_ttl as f64 + 10.0,
        );
        let event = soak.timeline.begin(
            Kind::Stop,
            Some(slot.index),
            None,
            format!("SIGSTOP {} for {:.0} s", live.name, pause.as_secs_f64()),
        );
        if let Err(e) = soak.fleet.stop(&slot, &control) {
            soak.note(format!("SIGSTOP {}: {e:#}", live.name));
        }
        tokio::time::sleep(pause).await;
        if let Err(e) = soak.fleet.resume(&slot, &control) {
            soak.problem(format!("SIGCONT {}: {e:#}", live.name));
        }
        soak.timeline.end(event);
    }
}

/// Bursts of upstream 5xx or 429 answers.
pub(crate) async fn upstream_faults(
    soak: Arc<Soak>,
    mut rng: StdRng,
    mut stop: watch::Receiver<bool>,
) {
    while nap(&mut stop, secs(&mut rng, 10.0, 25.0)).await {
        let count = rng.random_range(1..=4u64);
        let (kind, code) = if rng.random_bool(0.3) {
            (Kind::Upstream429, 429)
        } else {
            (
                Kind::Upstream5xx,
                pick(&mut rng, &[500u16, 502, 503]).unwrap_or(500),
            )
        };
        let faults: Vec<_> = (0..count)
            .map(|_| json!({"kind": "status", "code": code}))
            .collect();
        let event = soak
            .timeline
            .begin(kind, None, None, format!("{count} x {code}"));
        {
            let mut book = lock(&soak.faults);
            book.response_queued += count;
            let at = book.response_queued;
            book.response_pending.push_back((at, event));
        }
        if let Err(e) = soak.mock.response_faults(json!(faults)).await {
            soak.note(format!("queueing response faults: {e:#}"));
        }
    }
}

/// A usage limit on one account for a few seconds (its profile rests; the other serves).
pub(crate) async fn usage_limits(
    soak: Arc<Soak>,
    mut rng: StdRng,
    mut stop: watch::Receiver<bool>,
) {
    while nap(&mut stop, secs(&mut rng, 20.0, 40.0)).await {
        let Some(login) = soak
            .logins
            .get(rng.random_range(0..soak.logins.len()))
            .cloned()
        else {
            continue;
        };
        let secs = rng.random_range(3..=12u64);
        let event = soak.timeline.begin(
            Kind::UsageLimit,
            None,
            Some(login.profile),
            format!("{} at its usage limit for {secs} s", login.account),
        );
        soak.timeline.end_at(event, now_ms() + secs as i64 * 1000);
        if let Err(e) = soak.mock.usage_limit(login.account, secs).await {
            soak.note(format!("setting a usage limit: {e:#}"));
        }
    }
}

/// What the token endpoint does wrong next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TokenFault {
    Delay,
    Status5xx,
    Status429,
    DropBefore,
    DropAfterIssue,
}

/// Token endpoint faults, one queued at a time: slow, 5xx, 429, dropping the connection before
/// answering, or after issuing new tokens (the answer is lost: the only fault that may end a
/// lineage). At least one answer is lost in every run long enough to have one.
pub(crate) async fn token_faults(
    soak: Arc<Soak>,
    mut rng: StdRng,
    mut stop: watch::Receiver<bool>,
    chaos: Duration,
) {
    let started = tokio::time::Instant::now();
    let mut lost_one = false;
    while nap(&mut stop, secs(&mut rng, 8.0, 20.0)).await {
        if !lock(&soak.faults).token_pending.is_empty() {
            continue;
        }
        let due = !lost_one && started.elapsed() > chaos.mul_f64(0.4);
        let roll = rng.random_range(0..100);
        let fault = match roll {
            _ if due => TokenFault::DropAfterIssue,
            0..=34 => TokenFault::Delay,
            35..=49 => TokenFault::Status5xx,
            50..=64 => TokenFault::Status429,
            65..=95 => TokenFault::DropBefore,
            _ => TokenFault::DropAfterIssue,
        };
        lost_one |= fault == TokenFault::DropAfterIssue;
        let (body, text) = match fault {
            TokenFault::Delay => {
                let ms = rng.random_range(500..=4000u64);
                (json!({"kind": "delay", "ms": ms}), format!("delay {ms} ms"))
            }
            TokenFault::Status5xx => {
                let code = pick(&mut rng, &[500u16, 502, 503]).unwrap_or(500);
                (
                    json!({"kind": "status", "code": code}),
                    format!("status {code}"),
                )
            }
            TokenFault::Status429 => (json!({"kind": "status", "code": 429}), "status 429".into()),
            TokenFault::DropBefore => (json!({"kind": "drop_before"}), "drop_before".into()),
            TokenFault::DropAfterIssue => (
                json!({"kind": "drop_after_issue"}),
                "drop_after_issue".into(),
            ),
        };
        let event = soak
            .timeline
            .begin(Kind::TokenFault, None, None, text.clone());
        {
            let mut book = lock(&soak.faults);
            book.token_queued += 1;
            let at = book.token_queued;
            book.token_pending.push_back((at, event));
            book.token_faults.push((event, text));
        }
        if let Err(e) = soak.mock.token_faults(json!([body])).await {
            soak.note(format!("queueing a token fault: {e:#}"));
        }
    }
}

/// The token endpoint refusing connections for a few seconds.
pub(crate) async fn relay_outages(
    soak: Arc<Soak>,
    mut rng: StdRng,
    mut stop: watch::Receiver<bool>,
) {
    while nap(&mut stop, secs(&mut rng, 20.0, 45.0)).await {
        let outage = secs(&mut rng, 2.0, 10.0);
        let event = soak.timeline.begin(
            Kind::RelayDown,
            None,
            None,
            format!("for {:.1} s", outage.as_secs_f64()),
        );
        soak.relay.set_up(false);
        tokio::time::sleep(outage).await;
        soak.relay.set_up(true);
        soak.timeline.end(event);
    }
}

/// Codex-CLI-like writers rotating the shared `auth.json`, and now and then the real Codex CLI.
/// Like the real CLI next to a keyward that refreshes ahead of it, they only spend a token no
/// keyward would spend yet: one in the first quarter of its life.
pub(crate) async fn cli_writers(soak: Arc<Soak>, mut rng: StdRng, mut stop: watch::Receiver<bool>) {
    let Some(default) = soak.logins.first().cloned() else {
        return;
    };
    let work = soak.logins.get(1).cloned();
    while nap(&mut stop, secs(&mut rng, 4.0, 12.0)).await {
        let real = soak.codex_cli.is_some() && rng.random_bool(0.35);
        let _gate = soak.cli_gate.lock().await;
        if *stop.borrow() {
            break;
        }
        let now = chrono::Utc::now().timestamp();
        let young = |login: &crate::soak::Login, share: f64| {
            soak.read_auth(login)
                .is_some_and(|a| a.younger_than(share, now))
        };
        if real {
            // The real CLI takes a moment to start, and its new token is queued to live long:
            // both logins must be young, so no keyward refresh takes that token first; and the
            // CLI must be sure to refresh (its token inside its 5-minute window, the endpoint up,
            // no fault queued), or the long life would go to whoever refreshes next.
            let inside_window = soak
                .read_auth(&default)
                .and_then(|a| a.expires_at)
                .is_some_and(|exp| exp - now <= 240);
            let quiet = soak.relay.is_up() && lock(&soak.faults).token_pending.is_empty();
            if !young(&default, 0.2)
                || !work.as_ref().is_some_and(|w| young(w, 0.35))
                || !inside_window
                || !quiet
            {
                continue;
            }
            match soak.real_cli(&default).await {
                Ok(Some(run)) => soak.cli_event(Kind::RealCli, &run),
                Ok(None) => {}
                Err(e) => soak.note(format!("codex exec: {e:#}")),
            }
        } else {
            if !young(&default, 0.25) {
                continue;
            }
            match soak.cli_refresh(&default, "cli-refresh").await {
                Ok(run) => soak.cli_event(Kind::CliRefresh, &run),
                Err(e) => soak.note(format!("cli-refresh: {e:#}")),
            }
        }
    }
}
