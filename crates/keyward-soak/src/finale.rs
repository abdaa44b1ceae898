//! The end of a run: with the chaos stopped, everything is put back (limits lifted, the token
//! endpoint reachable, every slot running plainly), the system is let settle, and then every
//! keyward process is asked to serve every profile and dialect.

use std::time::Duration;

use crate::chaos;
use crate::clients::{request, Dialect, Shape};
use crate::soak::{lock, Soak};
use crate::timeline::PROFILES;
use crate::watch::{check_faults, describe_round, faults_drained, poll_once};

/// Bounds a settle that never comes (a lineage keyward cannot get back, a process stuck);
/// never a speed expectation.
const SETTLE_PATIENCE: Duration = Duration::from_secs(8 * 60);

/// Puts everything back and waits until every queued fault was met, both lineages are alive at
/// the provider and every keyward process reports both profiles `ok`. `Err` says what did not
/// settle.
pub(crate) async fn settle(soak: &Soak) -> Result<(), String> {
    for login in &soak.logins {
        if let Err(e) = soak.mock.usage_limit(login.account, 0).await {
            soak.note(format!("lifting {}'s limit: {e:#}", login.account));
        }
    }
    soak.relay.set_up(true);
    for slot in &soak.fleet.slots {
        let mut control = slot.control.lock().await;
        if let Err(e) = soak.fleet.resume(slot, &control) {
            soak.note(format!("SIGCONT slot {}: {e:#}", slot.index));
        }
        if control.armed.is_some() {
            chaos::disarm(soak, slot, &mut control).await;
        } else if slot.live().url.is_none() {
            if let Err(e) = soak.fleet.start(slot, &mut control, None).await {
                soak.problem(format!("slot {} did not start: {e:#}", slot.index));
            }
        }
    }
    drain_faults(soak).await;
    let deadline = tokio::time::Instant::now() + SETTLE_PATIENCE;
    let mut calm = 0;
    loop {
        check_faults(soak).await;
        let drained = faults_drained(soak);
        let mut lineages = Vec::new();
        for login in &soak.logins {
            let alive = soak.lineage(login).await.is_some_and(|(_, inspected)| {
                inspected["current"] == true && inspected["family_revoked"] == false
            });
            lineages.push((login.profile, alive));
        }
        let alive = lineages.iter().all(|(_, alive)| *alive);
        let round = lock(&soak.round).clone();
        let healthy = round.complete && PROFILES.iter().all(|p| round.all(p, "ok"));
        calm = if drained && alive && healthy {
            calm + 1
        } else {
            0
        };
        if calm >= 3 {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!(
                "not settled after {} s: every queued fault met: {drained}; lineages alive: {lineages:?}; health: {}",
                SETTLE_PATIENCE.as_secs(),
                describe_round(&round)
            ));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Faults still queued when the chaos stops are met by requests that touch no lineage, so the
/// settling is not a wait for the next refresh (a login may hold an hour-long token by then).
async fn drain_faults(soak: &Soak) {
    let mut drained = 0;
    for _ in 0..100 {
        check_faults(soak).await;
        let (tokens, responses) = {
            let book = lock(&soak.faults);
            (book.token_pending.len(), book.response_pending.len())
        };
        if tokens == 0 && responses == 0 {
            break;
        }
        if tokens > 0 {
            soak.mock.spend_nothing().await;
        }
        if responses > 0 {
            soak.mock.ask_nothing().await;
        }
        drained += 1;
    }
    if drained > 0 {
        soak.note(format!(
            "{drained} round(s) of requests met the faults still queued when the chaos stopped"
        ));
    }
}

/// Every keyward process serves each profile (named with `x-keyward-profile`) and each dialect;
/// the failures, described.
pub(crate) async fn probe(soak: &Soak) -> Vec<String> {
    poll_once(soak).await;
    let mut failures = Vec::new();
    let http = match reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
    {
        Ok(http) => http,
        Err(e) => return vec![format!("cannot build an HTTP client: {e}")],
    };
    for slot in &soak.fleet.slots {
        let live = slot.live();
        let Some(url) = live.url else {
            failures.push(format!("slot {} has no keyward process", slot.index));
            continue;
        };
        let mut asks: Vec<(Shape, Option<&str>)> = Vec::new();
        for profile in PROFILES {
            for (dialect, stream) in [(Dialect::Responses, true), (Dialect::Chat, false)] {
                asks.push((
                    Shape {
                        dialect,
                        stream,
                        tools: false,
                    },
                    Some(profile),
                ));
            }
        }
        for dialect in Dialect::ALL {
            asks.push((
                Shape {
                    dialect,
                    stream: true,
                    tools: false,
                },
                None,
            ));
        }
        for (shape, profile) in asks {
            if let Err(refusal) = request(&http, &url, shape, profile).await {
                failures.push(format!(
                    "{} did not serve {} (profile {}): {:?} {:?} {}",
                    live.name,
                    shape.label(),
                    profile.unwrap_or("any"),
                    refusal.status,
                    refusal.symptom,
                    refusal.detail
                ));
            }
        }
    }
    failures
}
