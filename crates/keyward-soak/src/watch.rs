//! The soak's observers, running from start to end:
//! - the health poller: every keyward's `/healthz` each second (its counters, each profile's
//!   health), and any process that exited without the soak asking;
//! - the fault monitor: which queued faults the mock has met;
//! - the lineage watchdog: whether each login's lineage is alive at the provider; a lineage that
//!   ended is attributed and healed with a fresh login (as a user would run `codex login`); a
//!   live lineage every keyward refuses to refresh (an unknown outcome: the token may be spent)
//!   gets the remedy keyward names, a Codex CLI refresh.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::forensics::{self, Evidence};
use crate::mock::stat;
use crate::soak::{lock, LineageEnd, Login, Round, Soak};
use crate::timeline::{now_ms, Kind, PROFILES};

/// A lineage whose token the provider no longer takes must stay so this long (with nothing that
/// legitimately delays a write-back going on) before it counts as ended.
const LOST_AFTER_MS: i64 = 20_000;
const LOST_AFTER_CHECKS: u32 = 5;

/// Sleeps `d`, or less if `stop` turns true; false once stopped.
pub(crate) async fn nap(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    if *stop.borrow() {
        return false;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => !*stop.borrow(),
        changed = stop.changed() => changed.is_ok() && !*stop.borrow(),
    }
}

pub(crate) async fn poll_health(soak: Arc<Soak>, mut stop: watch::Receiver<bool>) {
    while nap(&mut stop, Duration::from_secs(1)).await {
        poll_once(&soak).await;
    }
}

/// One round of `/healthz`, and the reaping of processes that exited by themselves.
pub(crate) async fn poll_once(soak: &Soak) {
    let mut round = Round {
        at_ms: now_ms(),
        complete: true,
        states: BTreeMap::new(),
    };
    for slot in &soak.fleet.slots {
        if let Ok(mut control) = slot.control.try_lock() {
            if let Some(what) = soak.fleet.exited_by_itself(slot, &mut control) {
                soak.problem(what.clone());
                let event = soak.timeline.begin(
                    Kind::Crash,
                    Some(slot.index),
                    None,
                    format!("unexpected: {what}"),
                );
                if let Err(e) = soak.fleet.start(slot, &mut control, None).await {
                    soak.problem(format!("restarting slot {}: {e:#}", slot.index));
                }
                soak.timeline.end(event);
            }
        }
        match soak.fleet.scrape_slot(slot).await {
            Some((name, health)) => {
                let states = health["profiles"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .map(|p| {
                        let profile = p["profile"].as_str().unwrap_or_default().to_owned();
                        let state = p["health"]["state"].as_str().unwrap_or_default().to_owned();
                        (profile, (state, !p["cooldown"].is_null()))
                    })
                    .collect();
                round.states.insert(name, states);
            }
            None => round.complete = false,
        }
    }
    {
        let mut health = lock(&soak.health);
        for profile in PROFILES {
            if round.all(profile, "ok") {
                health.record_all_ok(profile, round.at_ms);
            }
        }
    }
    *lock(&soak.round) = round;
}

/// Ends the timeline events of queued faults the mock has met.
pub(crate) async fn monitor_faults(soak: Arc<Soak>, mut stop: watch::Receiver<bool>) {
    while nap(&mut stop, Duration::from_millis(250)).await {
        check_faults(&soak).await;
    }
}

pub(crate) async fn check_faults(soak: &Soak) {
    let Ok(stats) = soak.mock.stats().await else {
        return;
    };
    let (token_met, response_met) = (
        stat(&stats, "faults_injected"),
        stat(&stats, "responses_faulted"),
    );
    let mut ended = Vec::new();
    {
        let mut book = lock(&soak.faults);
        while book
            .token_pending
            .front()
            .is_some_and(|(n, _)| *n <= token_met)
        {
            if let Some((_, id)) = book.token_pending.pop_front() {
                ended.push(id);
            }
        }
        while book
            .response_pending
            .front()
            .is_some_and(|(n, _)| *n <= response_met)
        {
            if let Some((_, id)) = book.response_pending.pop_front() {
                ended.push(id);
            }
        }
    }
    for id in ended {
        soak.timeline.end(id);
    }
}

/// Whether every queued fault has been met.
pub(crate) fn faults_drained(soak: &Soak) -> bool {
    let book = lock(&soak.faults);
    book.token_pending.is_empty() && book.response_pending.is_empty()
}

#[derive(Default)]
struct Watch {
    suspect: Option<(String, i64, u32)>,
    needs_login_rounds: u32,
    last_round: i64,
}

pub(crate) async fn watch_lineages(soak: Arc<Soak>, mut stop: watch::Receiver<bool>) {
    let mut watches: Vec<Watch> = soak.logins.iter().map(|_| Watch::default()).collect();
    while nap(&mut stop, Duration::from_secs(2)).await {
        for (login, state) in soak.logins.iter().zip(watches.iter_mut()) {
            check_lineage(&soak, login, state).await;
        }
        check_heals(&soak);
    }
}

/// Whether anything is going on that legitimately keeps a spent token in `auth.json` for a
/// while: a stopped keyward (it may hold the lock mid-refresh) or a CLI run in progress.
fn busy(soak: &Soak) -> bool {
    soak.fleet.slots.iter().any(|s| s.live().stopped) || soak.cli_gate.try_lock().is_err()
}

async fn check_lineage(soak: &Soak, login: &Login, state: &mut Watch) {
    let Some((snapshot, inspected)) = soak.lineage(login).await else {
        return;
    };
    let alive = inspected["current"] == true && inspected["family_revoked"] == false;
    if alive {
        state.suspect = None;
        remedy_if_stuck(soak, login, state).await;
        return;
    }
    state.needs_login_rounds = 0;
    let revoked = inspected["family_revoked"] == true;
    if busy(soak) && !revoked {
        state.suspect = None;
        return;
    }
    let now = now_ms();
    let (token, since, checks) = match state.suspect.take() {
        Some((token, since, checks)) if token == snapshot.refresh_token => {
            (token, since, checks + 1)
        }
        _ => (snapshot.refresh_token.clone(), now, 1),
    };
    if !revoked && (checks < LOST_AFTER_CHECKS || now - since < LOST_AFTER_MS) {
        state.suspect = Some((token, since, checks));
        return;
    }
    lineage_ended(soak, login, token, revoked).await;
}

/// All keyward processes refuse to refresh a live lineage (they cannot know whether its token
/// was spent): the remedy they name, a Codex CLI refresh, is safe now, since none of them will
/// send the token.
async fn remedy_if_stuck(soak: &Soak, login: &Login, state: &mut Watch) {
    let round = lock(&soak.round).clone();
    if round.at_ms == state.last_round {
        return;
    }
    state.last_round = round.at_ms;
    let stuck = round.complete
        && round.states.len() == soak.fleet.slots.len()
        && round.all(login.profile, "needs-login");
    state.needs_login_rounds = if stuck {
        state.needs_login_rounds + 1
    } else {
        0
    };
    if state.needs_login_rounds < 2 {
        return;
    }
    state.needs_login_rounds = 0;
    let _gate = soak.cli_gate.lock().await;
    match soak.cli_refresh(login, "remedy").await {
        Ok(run) => {
            let id = soak.timeline.begin(
                Kind::Remedy,
                None,
                Some(login.profile),
                format!(
                    "every keyward says {} needs a login; CLI refresh: {}",
                    login.profile, run.result
                ),
            );
            soak.timeline.set_start(id, run.start_ms);
            soak.timeline.end_at(id, run.end_ms);
        }
        Err(e) => soak.note(format!("remedy for {} failed to run: {e:#}", login.profile)),
    }
}

/// The lineage in `auth.json` is gone at the provider: name why, then log in afresh.
async fn lineage_ended(soak: &Soak, login: &Login, token: String, revoked: bool) {
    let verdict = {
        let calls = soak.mock.token_calls().await.unwrap_or_default();
        let instances = soak.fleet.instances();
        let logs = forensics::read_logs(&instances);
        let events = soak.timeline.events();
        let cli_runs = lock(&soak.cli_runs).clone();
        let clock = |ms: i64| soak.timeline.clock(ms);
        let evidence = Evidence {
            calls: &calls,
            logs: &logs,
            instances: &instances,
            events: &events,
            cli_runs: &cli_runs,
            clock: &clock,
        };
        let prefix = crate::auth::log_prefix(&token);
        let tokens = lock(&soak.tokens).clone();
        // A revoked family was revoked by a reuse: judge the latest reused token of this login.
        let judged = if revoked {
            calls
                .iter()
                .rev()
                .filter(|c| c.outcome == "reused")
                .find(|c| {
                    tokens
                        .get(&c.token_prefix)
                        .is_some_and(|(_, p)| *p == login.profile)
                })
                .map(|c| c.token_prefix.clone())
                .unwrap_or(prefix)
        } else {
            prefix
        };
        let full = tokens.get(&judged).map(|(t, _)| t.clone());
        evidence.attribute(full.as_deref(), &judged)
    };
    let event = soak.timeline.begin(
        Kind::LineageEnded,
        None,
        Some(login.profile),
        format!(
            "{}'s lineage ended ({}): {}",
            login.profile,
            if revoked {
                "family revoked"
            } else {
                "its token was lost"
            },
            verdict.cause
        ),
    );
    soak.timeline.end(event);
    let mut end = LineageEnd {
        profile: login.profile,
        seen_ms: now_ms(),
        token,
        revoked,
        verdict,
        healed_ms: None,
        served_again: BTreeMap::new(),
    };
    // No CLI gate: a fresh login spends no token, so it races nobody's lockless spend.
    let heal = soak.timeline.begin(
        Kind::Heal,
        None,
        Some(login.profile),
        format!("fresh login for {} (as `codex login`)", login.account),
    );
    match soak.fresh_login(login).await {
        Ok(()) => {
            end.healed_ms = Some(now_ms());
            end.served_again = soak
                .fleet
                .slots
                .iter()
                .filter_map(|s| {
                    let live = s.live();
                    live.url.map(|_| (live.name, false))
                })
                .collect();
        }
        Err(e) => soak.problem(format!(
            "the fresh login for {} failed: {e:#}",
            login.profile
        )),
    }
    soak.timeline.end(heal);
    lock(&soak.lineage_ends).push(end);
}

/// Marks the instances that served a healed profile again without a restart.
fn check_heals(soak: &Soak) {
    let round = lock(&soak.round).clone();
    let mut ends = lock(&soak.lineage_ends);
    for end in ends.iter_mut() {
        let Some(healed) = end.healed_ms else {
            continue;
        };
        if round.at_ms <= healed {
            continue;
        }
        for (instance, served) in end.served_again.iter_mut() {
            let ok = round
                .states
                .get(instance)
                .and_then(|p| p.get(end.profile))
                .is_some_and(|(state, _)| state == "ok");
            *served |= ok;
        }
    }
}

/// The state each instance reports for each profile, for messages.
pub(crate) fn describe_round(round: &Round) -> String {
    round
        .states
        .iter()
        .map(|(instance, profiles)| {
            let states: Vec<String> = profiles
                .iter()
                .map(|(p, (s, resting))| {
                    format!(
                        "{}={s}{}",
                        p.trim_start_matches("openai-codex:"),
                        if *resting { "(resting)" } else { "" }
                    )
                })
                .collect();
            format!("{instance}: {}", states.join(" "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}
