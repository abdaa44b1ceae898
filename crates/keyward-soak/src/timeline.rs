//! What the soak did and when (the fault timeline), what failed, and whether each failure is
//! explained by a fault the soak injected.
//!
//! A failure is explained only by a fault that can cause its symptom and was active around it:
//! a broken connection by the death of the process it went to, an upstream error by an injected
//! burst of them, a 429 by a limit in force, and keyward refusing to serve (a login it cannot
//! refresh) by a fault from whose effects that profile had not yet been seen to recover: every
//! keyward process polled after the fault ended reporting the profile `ok` breaks the chain.
//! Everything else (a hang, a malformed answer, an unexpected status) is unexplained.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Milliseconds since the epoch (the mock's and keyward's clocks are the same machine's).
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// How far apart a failure and a fault may be seen and still be related: clocks of different
/// processes are read at slightly different moments.
const SLACK_MS: i64 = 2_000;
/// A crash is seen when the process is reaped, a little after it aborted.
const CRASH_SEEN_LATE_MS: i64 = 5_000;
/// After a limit lifts, keyward's processes may rest a profile this much longer: the upstream's
/// `retry-after` rounds up, and cooldowns written by one process reach the others within 5 s.
const LIMIT_TAIL_MS: i64 = 7_000;
/// A revoked family is seen by the lineage watcher (once a second) a little after the reuse
/// that revoked it, when requests already meet the revocation.
const REVOCATION_SEEN_LATE_MS: i64 = 5_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    Kill,
    Crash,
    GracefulRestart,
    Armed,
    Stop,
    CliRefresh,
    RealCli,
    RelayDown,
    TokenFault,
    Upstream5xx,
    Upstream429,
    UsageLimit,
    LineageEnded,
    Heal,
    Remedy,
}

impl Kind {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Kill => "kill -9",
            Self::Crash => "crash point",
            Self::GracefulRestart => "graceful restart",
            Self::Armed => "crash point armed",
            Self::Stop => "SIGSTOP",
            Self::CliRefresh => "CLI-like refresh",
            Self::RealCli => "real Codex CLI",
            Self::RelayDown => "token endpoint refusing connections",
            Self::TokenFault => "token endpoint fault",
            Self::Upstream5xx => "upstream 5xx burst",
            Self::Upstream429 => "upstream 429 burst",
            Self::UsageLimit => "usage limit",
            Self::LineageEnded => "lineage ended",
            Self::Heal => "fresh login (heal)",
            Self::Remedy => "remedy: CLI refresh after needs-login",
        }
    }

    /// Faults whose effects can leave a profile unable to serve (a login keyward cannot
    /// refresh or reach): the ones a refusal may be traced to.
    fn can_disturb_logins(self) -> bool {
        matches!(
            self,
            Self::Kill
                | Self::Crash
                | Self::GracefulRestart
                | Self::Stop
                | Self::RelayDown
                | Self::TokenFault
                | Self::LineageEnded
                | Self::Heal
        )
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Event {
    pub(crate) kind: Kind,
    pub(crate) start_ms: i64,
    /// `None` while the fault is still in force.
    pub(crate) end_ms: Option<i64>,
    /// The keyward process slot it hit, if one.
    pub(crate) slot: Option<usize>,
    /// The profile it hit, if one (`openai-codex:default`, `openai-codex:work`).
    pub(crate) profile: Option<String>,
    pub(crate) detail: String,
}

impl Event {
    fn end_or(&self, now: i64) -> i64 {
        self.end_ms.unwrap_or(now)
    }
}

/// Why a request failed, as seen by its client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Symptom {
    /// The connection failed or broke; `after_headers` once the answer had begun.
    Transport { after_headers: bool },
    /// No answer within the client's (generous) deadline.
    Hang,
    /// The upstream's injected error passed through (`"message": "injected"`).
    UpstreamInjected,
    /// 429: a rate or usage limit.
    RateLimited,
    /// keyward could not serve the profiles named (`needs_login`, `profile_unavailable`).
    Refused { profiles: Vec<String> },
    /// The upstream's 401 for an access token whose family the provider revoked, passed through.
    Revoked,
    /// A 200 whose answer is not the one asked for, or a stream that ended wrongly.
    BadAnswer,
    /// Any other status.
    Other,
}

#[derive(Clone, Debug)]
pub(crate) struct Failure {
    pub(crate) start_ms: i64,
    pub(crate) end_ms: i64,
    pub(crate) slot: usize,
    pub(crate) instance: String,
    pub(crate) request: String,
    pub(crate) status: Option<u16>,
    pub(crate) symptom: Symptom,
    pub(crate) detail: String,
}

/// When every keyward process polled reported a profile `ok` and not resting.
#[derive(Clone, Debug, Default)]
pub(crate) struct HealthHistory {
    all_ok: BTreeMap<String, Vec<i64>>,
}

impl HealthHistory {
    pub(crate) fn record_all_ok(&mut self, profile: &str, at_ms: i64) {
        self.all_ok
            .entry(profile.to_owned())
            .or_default()
            .push(at_ms);
    }

    /// Whether `profile` was seen all-ok strictly between `after` and `before`.
    fn ok_between(&self, profile: &str, after: i64, before: i64) -> bool {
        self.all_ok
            .get(profile)
            .is_some_and(|times| times.iter().any(|t| *t > after && *t < before))
    }
}

/// The profiles every keyward process serves.
pub(crate) const PROFILES: [&str; 2] = ["openai-codex:default", "openai-codex:work"];

/// The injected fault that explains `failure`, named; `None` when nothing does.
pub(crate) fn explain(
    failure: &Failure,
    events: &[Event],
    health: &HealthHistory,
    now: i64,
) -> Option<String> {
    let (s, e) = (failure.start_ms, failure.end_ms);
    let overlaps = |from: i64, to: i64| from <= e + SLACK_MS && to + SLACK_MS >= s;
    let found = |kinds: &[Kind], window: &dyn Fn(&Event) -> (i64, i64)| {
        events
            .iter()
            .filter(|ev| kinds.contains(&ev.kind))
            .find(|ev| {
                let (from, to) = window(ev);
                overlaps(from, to)
            })
            .map(|ev| ev.kind.label().to_owned())
    };
    match &failure.symptom {
        Symptom::Transport { after_headers } => {
            // A process that died cuts everything; one restarting gracefully or frozen only
            // fails requests it had not begun to answer (a frozen one resets, when it wakes,
            // the connections whose header timeout ran out while it slept).
            let kinds: &[Kind] = if *after_headers {
                &[Kind::Kill, Kind::Crash]
            } else {
                &[Kind::Kill, Kind::Crash, Kind::GracefulRestart, Kind::Stop]
            };
            events
                .iter()
                .filter(|ev| kinds.contains(&ev.kind) && ev.slot == Some(failure.slot))
                .find(|ev| {
                    let early = if ev.kind == Kind::Crash {
                        CRASH_SEEN_LATE_MS
                    } else {
                        0
                    };
                    overlaps(ev.start_ms - early, ev.end_or(now))
                })
                .map(|ev| match ev.kind {
                    Kind::Stop => {
                        "keyward process frozen (SIGSTOP) while the request waited".to_owned()
                    }
                    Kind::GracefulRestart => "keyward process restarting (SIGTERM)".to_owned(),
                    kind => format!("keyward process died ({})", kind.label()),
                })
        }
        Symptom::UpstreamInjected => {
            found(&[Kind::Upstream5xx], &|ev| (ev.start_ms, ev.end_or(now)))
        }
        Symptom::RateLimited => found(&[Kind::Upstream429, Kind::UsageLimit], &|ev| {
            (ev.start_ms, ev.end_or(now) + LIMIT_TAIL_MS)
        }),
        Symptom::Refused { profiles } => {
            let named: Vec<&str> = if profiles.is_empty() {
                PROFILES.to_vec()
            } else {
                profiles.iter().map(String::as_str).collect()
            };
            // The latest fault that still explains it names it best.
            events
                .iter()
                .rev()
                .filter(|ev| ev.kind.can_disturb_logins() && ev.start_ms <= e + SLACK_MS)
                .find(|ev| {
                    named.iter().any(|profile| {
                        let hits = ev.profile.as_deref().is_none_or(|p| p == *profile);
                        let recovered = ev.end_ms.is_some_and(|end| {
                            health.ok_between(profile, end + SLACK_MS, s - SLACK_MS / 2)
                        });
                        hits && !recovered
                    })
                })
                .map(|ev| format!("keyward could not serve a login ({})", ev.kind.label()))
        }
        // Between a revocation and the fresh login that heals it, the family's access tokens are
        // refused; whether the revocation itself was allowed is the lineage verdict's to say.
        Symptom::Revoked => found(&[Kind::LineageEnded, Kind::Heal], &|ev| {
            (ev.start_ms - REVOCATION_SEEN_LATE_MS, ev.end_or(now))
        }),
        Symptom::Hang | Symptom::BadAnswer | Symptom::Other => None,
    }
}

/// The soak's record of faults, shared by every task.
#[derive(Clone)]
pub(crate) struct Timeline {
    started_ms: i64,
    events: Arc<Mutex<Vec<Event>>>,
    verbose: bool,
}

impl Timeline {
    pub(crate) fn new(verbose: bool) -> Self {
        Self {
            started_ms: now_ms(),
            events: Arc::new(Mutex::new(Vec::new())),
            verbose,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Event>> {
        self.events.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `at` as the run's clock, `+mm:ss.s`.
    pub(crate) fn clock(&self, at: i64) -> String {
        let ms = (at - self.started_ms).max(0);
        format!("+{:02}:{:04.1}", ms / 60_000, (ms % 60_000) as f64 / 1000.0)
    }

    pub(crate) fn say(&self, text: &str) {
        if self.verbose {
            println!("{} {text}", self.clock(now_ms()));
        }
    }

    /// A fault that starts now; returns its id for [`Timeline::end`].
    pub(crate) fn begin(
        &self,
        kind: Kind,
        slot: Option<usize>,
        profile: Option<&str>,
        detail: impl Into<String>,
    ) -> usize {
        let detail = detail.into();
        self.say(&format!("{}: {detail}", kind.label()));
        let mut events = self.lock();
        let id = events.len();
        events.push(Event {
            kind,
            start_ms: now_ms(),
            end_ms: None,
            slot,
            profile: profile.map(str::to_owned),
            detail,
        });
        id
    }

    pub(crate) fn end(&self, id: usize) {
        self.end_at(id, now_ms());
    }

    pub(crate) fn end_at(&self, id: usize, at: i64) {
        if let Some(event) = self.lock().get_mut(id) {
            event.end_ms.get_or_insert(at);
        }
    }

    /// Sets when a fault was in force from, for faults noticed after they began (a crash point
    /// firing is seen when the process is reaped).
    pub(crate) fn set_start(&self, id: usize, at: i64) {
        if let Some(event) = self.lock().get_mut(id) {
            event.start_ms = at;
        }
    }

    pub(crate) fn events(&self) -> Vec<Event> {
        self.lock().clone()
    }

    pub(crate) fn count(&self, kind: Kind) -> usize {
        self.lock().iter().filter(|e| e.kind == kind).count()
    }
}

impl fmt::Debug for Timeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timeline({} events)", self.lock().len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: Kind, start: i64, end: Option<i64>, slot: Option<usize>) -> Event {
        Event {
            kind,
            start_ms: start,
            end_ms: end,
            slot,
            profile: None,
            detail: String::new(),
        }
    }

    fn failure(start: i64, end: i64, slot: usize, symptom: Symptom) -> Failure {
        Failure {
            start_ms: start,
            end_ms: end,
            slot,
            instance: format!("P{slot}#1"),
            request: "chat".into(),
            status: None,
            symptom,
            detail: String::new(),
        }
    }

    const NOW: i64 = 1_000_000;

    /// A broken connection is explained by the death of that process while it was open, not
    /// by another process's death or one long before.
    #[test]
    fn transport_failures_need_that_process_to_die() {
        let events = [
            event(Kind::Kill, 10_000, Some(12_000), Some(1)),
            event(Kind::Kill, 50_000, Some(51_000), Some(2)),
        ];
        let health = HealthHistory::default();
        let cut = Symptom::Transport {
            after_headers: true,
        };
        assert!(explain(
            &failure(9_500, 10_001, 1, cut.clone()),
            &events,
            &health,
            NOW
        )
        .is_some());
        assert!(explain(
            &failure(9_500, 10_001, 2, cut.clone()),
            &events,
            &health,
            NOW
        )
        .is_none());
        assert!(explain(&failure(30_000, 30_100, 1, cut), &events, &health, NOW).is_none());
    }

    /// A graceful restart or a freeze explains a refused or reset connection, never an answer
    /// cut off midway.
    #[test]
    fn graceful_restarts_never_cut_answers() {
        let events = [event(Kind::GracefulRestart, 10_000, Some(11_000), Some(3))];
        let health = HealthHistory::default();
        let refused = Symptom::Transport {
            after_headers: false,
        };
        let cut = Symptom::Transport {
            after_headers: true,
        };
        assert!(explain(
            &failure(10_500, 10_501, 3, refused.clone()),
            &events,
            &health,
            NOW
        )
        .is_some());
        assert!(explain(
            &failure(10_500, 10_501, 3, cut.clone()),
            &events,
            &health,
            NOW
        )
        .is_none());
        let frozen = [event(Kind::Stop, 20_000, Some(60_000), Some(3))];
        assert!(explain(&failure(30_000, 60_001, 3, refused), &frozen, &health, NOW).is_some());
        assert!(explain(&failure(30_000, 60_001, 3, cut), &frozen, &health, NOW).is_none());
    }

    /// Injected upstream errors and limits explain failures only while in force.
    #[test]
    fn bursts_and_limits_explain_only_while_in_force() {
        let events = [
            event(Kind::Upstream5xx, 10_000, Some(11_000), None),
            event(Kind::UsageLimit, 20_000, Some(25_000), None),
        ];
        let health = HealthHistory::default();
        let at = |t: i64, symptom: Symptom| failure(t, t + 10, 1, symptom);
        assert!(explain(
            &at(10_500, Symptom::UpstreamInjected),
            &events,
            &health,
            NOW
        )
        .is_some());
        assert!(explain(
            &at(40_000, Symptom::UpstreamInjected),
            &events,
            &health,
            NOW
        )
        .is_none());
        assert!(explain(&at(26_000, Symptom::RateLimited), &events, &health, NOW).is_some());
        assert!(explain(&at(60_000, Symptom::RateLimited), &events, &health, NOW).is_none());
        assert!(explain(&at(10_500, Symptom::RateLimited), &events, &health, NOW).is_none());
    }

    /// An upstream 401 for a revoked family is explained by the revocation the watcher saw just
    /// after it, or by the fresh login healing it; not by one long before.
    #[test]
    fn revoked_tokens_are_explained_by_their_revocation() {
        let events = [
            event(Kind::LineageEnded, 21_500, Some(21_500), None),
            event(Kind::Heal, 21_500, Some(22_000), None),
        ];
        let health = HealthHistory::default();
        let at = |t: i64| failure(t, t + 100, 1, Symptom::Revoked);
        assert!(explain(&at(20_900), &events, &health, NOW).is_some());
        assert!(explain(&at(21_900), &events, &health, NOW).is_some());
        assert!(explain(&at(60_000), &events, &health, NOW).is_none());
    }

    /// A refusal is explained by an earlier fault until the profile is seen healthy everywhere
    /// after that fault ended; a still-active fault always explains it.
    #[test]
    fn refusals_follow_faults_until_recovery() {
        let events = [
            event(Kind::TokenFault, 10_000, Some(11_000), None),
            event(Kind::RelayDown, 100_000, None, None),
        ];
        let mut health = HealthHistory::default();
        let refused = || Symptom::Refused {
            profiles: vec!["openai-codex:default".into()],
        };
        let at = |t: i64| failure(t, t + 10, 1, refused());
        assert!(explain(&at(40_000), &events, &health, NOW).is_some());
        health.record_all_ok("openai-codex:default", 30_000);
        assert!(explain(&at(40_000), &events, &health, NOW).is_none());
        health.record_all_ok("openai-codex:default", 150_000);
        assert!(explain(&at(200_000), &events, &health, NOW).is_some());
        assert!(explain(&at(5_000), &events, &health, NOW).is_none());
    }

    /// Hangs, malformed answers and unexpected statuses are never explained.
    #[test]
    fn some_failures_are_never_explained() {
        let events = [event(Kind::Kill, 0, None, Some(1))];
        let health = HealthHistory::default();
        for symptom in [Symptom::Hang, Symptom::BadAnswer, Symptom::Other] {
            assert!(explain(&failure(10, 20, 1, symptom), &events, &health, NOW).is_none());
        }
    }

    /// The run's clock reads minutes and seconds since the start.
    #[test]
    fn clock_format() {
        let timeline = Timeline::new(false);
        assert_eq!(timeline.clock(timeline.started_ms + 83_420), "+01:23.4");
        assert_eq!(timeline.clock(timeline.started_ms - 5), "+00:00.0");
    }
}
