//! The gateway keys' limits: requests a minute, tokens a day, and a share of a login's usage
//! window, checked before a request is sent.
//!
//! What counts is every keyward process's requests on one store: the ledger's writer reads the
//! store back after each batch ([`StoredView`]), and this process's own requests that are not in
//! the store yet are kept here ([`Pending`]: counted from the moment they are let through, their
//! tokens from their end) until the writer reports them written. So a restarted `serve` starts
//! from the store, a second process's requests count once they are written (within a fraction
//! of a second of their end), and a burst in one process is counted as it arrives. The request
//! path only takes this module's lock; it never waits for the store.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Utc};

use crate::config::KeyPolicy;
use crate::profile::ProfileId;
use crate::store::Usage;

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LimitKind {
    Models,
    Profiles,
    RequestsPerMinute,
    TokensPerDay,
    MaxWindowShare,
}

impl LimitKind {
    /// Its config key: what the ledger, the error and the metrics call it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Models => "models",
            Self::Profiles => "profiles",
            Self::RequestsPerMinute => "requests_per_minute",
            Self::TokensPerDay => "tokens_per_day",
            Self::MaxWindowShare => "max_window_share",
        }
    }
}

/// A request a key may not make now.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Refusal {
    pub limit: LimitKind,
    pub message: String,
    /// When asking again can succeed; `None` for what waiting does not change (a model or a
    /// profile the key may not use).
    pub retry_after_secs: Option<u64>,
}

/// A request let through and counted, until the ledger has written it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Admission {
    seq: u64,
}

/// What the store held at the writer's last read: every process's written requests.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct StoredView {
    /// When each limited key's requests of the last minute arrived (ms since the epoch).
    pub arrivals: HashMap<usize, Vec<i64>>,
    /// Each limited key's tokens per hour of the last day: (the hour's start in ms, tokens).
    pub hours: HashMap<usize, Vec<(i64, u64)>>,
    /// Each login window's tokens since it began, by key.
    pub windows: HashMap<(ProfileId, String), WindowTokens>,
}

/// The tokens keyward sent through one login since its window began.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct WindowTokens {
    /// The window's start (ms since the epoch): its reset less its length.
    pub start_ms: i64,
    /// By limited key.
    pub by_key: HashMap<usize, u64>,
    /// Every request's, with a key or without.
    pub total: u64,
}

/// One of this process's requests not yet in the store.
#[derive(Debug, Clone)]
struct Pending {
    key: usize,
    at_ms: i64,
    profile: Option<ProfileId>,
    tokens: u64,
}

#[derive(Debug, Default)]
struct State {
    next_seq: u64,
    pending: HashMap<u64, Pending>,
    stored: StoredView,
}

#[derive(Debug)]
pub(crate) struct Limiter {
    policies: Vec<KeyPolicy>,
    state: Mutex<State>,
}

/// A key's share of a window: the window's used share times the key's part of the tokens
/// keyward sent through that login since the window began.
pub(crate) fn window_share(used_percent: f64, key_tokens: u64, total_tokens: u64) -> f64 {
    if total_tokens == 0 {
        return 0.0;
    }
    (used_percent / 100.0).clamp(0.0, 1.0) * key_tokens as f64 / total_tokens as f64
}

/// Whole seconds until `at_ms`, at least 1.
fn seconds_until(at_ms: i64, now_ms: i64) -> u64 {
    let ms = (at_ms - now_ms).max(1);
    ms.div_euclid(1000) as u64 + u64::from(ms.rem_euclid(1000) != 0)
}

impl Limiter {
    pub(crate) fn new(policies: Vec<KeyPolicy>) -> Self {
        Self {
            policies,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every update leaves the state whole, so a panic elsewhere leaves nothing half-written.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    #[cfg(test)]
    fn policies(&self) -> &[KeyPolicy] {
        &self.policies
    }

    pub(crate) fn policy(&self, key: usize) -> Option<&KeyPolicy> {
        self.policies.get(key)
    }

    /// The keys with limits, by index.
    pub(crate) fn limited_keys(&self) -> impl Iterator<Item = (usize, &KeyPolicy)> {
        self.policies
            .iter()
            .enumerate()
            .filter(|(_, policy)| policy.has_limits())
    }

    /// Whether the key may ask for `model` at all.
    pub(crate) fn check_model(&self, key: usize, model: &str) -> Result<(), Refusal> {
        let Some(policy) = self.policy(key) else {
            return Ok(());
        };
        match &policy.models {
            Some(models) if !models.matches(model) => Err(Refusal {
                limit: LimitKind::Models,
                message: format!(
                    "the gateway key `{}` may not use the model `{}`: it may use {models} ([[gateway.keys]] models)",
                    policy.name,
                    crate::dialect::cut_short(model)
                ),
                retry_after_secs: None,
            }),
            _ => Ok(()),
        }
    }

    /// Whether `profile` may serve the key (`[[gateway.keys]] profiles`).
    pub(crate) fn allows_profile(&self, key: usize, profile: &ProfileId) -> bool {
        self.policy(key)
            .and_then(|policy| policy.profiles.as_ref())
            .is_none_or(|profiles| profiles.matches(profile.as_str()))
    }

    /// Why no profile may serve the key, when the key's `profiles` left none.
    pub(crate) fn no_profile(&self, key: usize) -> Refusal {
        let (name, allowed) = self
            .policy(key)
            .map_or((String::new(), String::new()), |p| {
                (
                    p.name.clone(),
                    p.profiles
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                )
            });
        Refusal {
            limit: LimitKind::Profiles,
            message: format!(
                "the gateway key `{name}` may be served only by the profiles {allowed} ([[gateway.keys]] profiles), and none of them serves this request"
            ),
            retry_after_secs: None,
        }
    }

    /// The window of `profile` the key has taken its share of, if it has (`usage`: the windows
    /// the provider last reported).
    pub(crate) fn over_window_share(
        &self,
        key: usize,
        profile: &ProfileId,
        usage: &Usage,
        now: DateTime<Utc>,
    ) -> Option<Refusal> {
        let policy = self.policy(key)?;
        let max = policy.max_window_share?;
        let now_ms = now.timestamp_millis();
        let state = self.state();
        let mut worst: Option<(f64, &str, DateTime<Utc>)> = None;
        for window in &usage.windows {
            let (Some(minutes), Some(resets_at)) = (window.window_minutes, window.resets_at) else {
                continue;
            };
            if resets_at <= now {
                continue;
            }
            let stored = state
                .stored
                .windows
                .get(&(profile.clone(), window.name.clone()));
            let start_ms = stored.map_or(
                resets_at.timestamp_millis() - (minutes as i64).saturating_mul(MINUTE_MS),
                |w| w.start_ms,
            );
            let (mut mine, mut total) = stored.map_or((0, 0), |w| {
                (w.by_key.get(&key).copied().unwrap_or(0), w.total)
            });
            for pending in state.pending.values() {
                if pending.profile.as_ref() == Some(profile) && pending.at_ms >= start_ms {
                    total += pending.tokens;
                    if pending.key == key {
                        mine += pending.tokens;
                    }
                }
            }
            let share = window_share(window.used_percent, mine, total);
            if share >= max && worst.is_none_or(|(s, _, _)| share > s) {
                worst = Some((share, &window.name, resets_at));
            }
        }
        let (share, window, resets_at) = worst?;
        Some(Refusal {
            limit: LimitKind::MaxWindowShare,
            message: format!(
                "the gateway key `{}` has used {:.0}% of {profile}'s {window} usage window, its max_window_share is {:.0}%; the window resets at {}",
                policy.name,
                share * 100.0,
                max * 100.0,
                resets_at.format("%Y-%m-%d %H:%M:%S UTC"),
            ),
            retry_after_secs: Some(seconds_until(resets_at.timestamp_millis(), now_ms)),
        })
    }

    /// Lets one request of `key` through and counts it, or says which limit refuses it.
    /// Keys without limits are not counted here (`None`).
    pub(crate) fn admit(
        &self,
        key: usize,
        now: DateTime<Utc>,
    ) -> Result<Option<Admission>, Refusal> {
        let Some(policy) = self.policy(key).filter(|p| p.has_limits()) else {
            return Ok(None);
        };
        let now_ms = now.timestamp_millis();
        let mut state = self.state();
        if let Some(limit) = policy.requests_per_minute {
            let since = now_ms - MINUTE_MS;
            let mut arrivals: Vec<i64> = state
                .stored
                .arrivals
                .get(&key)
                .into_iter()
                .flatten()
                .copied()
                .chain(
                    state
                        .pending
                        .values()
                        .filter(|p| p.key == key)
                        .map(|p| p.at_ms),
                )
                .filter(|at| *at > since)
                .collect();
            let limit = limit as usize;
            if arrivals.len() >= limit {
                arrivals.sort_unstable();
                let frees = arrivals[arrivals.len() - limit] + MINUTE_MS;
                return Err(Refusal {
                    limit: LimitKind::RequestsPerMinute,
                    message: format!(
                        "the gateway key `{}` has made {} requests in the last minute, its requests_per_minute limit",
                        policy.name, limit
                    ),
                    retry_after_secs: Some(seconds_until(frees, now_ms)),
                });
            }
        }
        if let Some(limit) = policy.tokens_per_day {
            let first_hour = now_ms.div_euclid(HOUR_MS) * HOUR_MS - 23 * HOUR_MS;
            let mut hours: HashMap<i64, u64> = HashMap::new();
            for (hour, tokens) in state.stored.hours.get(&key).into_iter().flatten() {
                *hours.entry(*hour).or_default() += tokens;
            }
            for pending in state.pending.values().filter(|p| p.key == key) {
                *hours
                    .entry(pending.at_ms.div_euclid(HOUR_MS) * HOUR_MS)
                    .or_default() += pending.tokens;
            }
            let mut hours: Vec<(i64, u64)> = hours
                .into_iter()
                .filter(|(hour, _)| *hour >= first_hour)
                .collect();
            hours.sort_unstable();
            let mut total: u64 = hours.iter().map(|(_, tokens)| tokens).sum();
            if total >= limit {
                let used = total;
                let mut frees = now_ms + DAY_MS;
                for (hour, tokens) in &hours {
                    total = total.saturating_sub(*tokens);
                    if total < limit {
                        frees = hour + DAY_MS;
                        break;
                    }
                }
                return Err(Refusal {
                    limit: LimitKind::TokensPerDay,
                    message: format!(
                        "the gateway key `{}` has used {used} tokens in the last 24 hours, over its tokens_per_day limit of {limit}",
                        policy.name
                    ),
                    retry_after_secs: Some(seconds_until(frees, now_ms)),
                });
            }
        }
        let seq = state.next_seq;
        state.next_seq += 1;
        state.pending.insert(
            seq,
            Pending {
                key,
                at_ms: now_ms,
                profile: None,
                tokens: 0,
            },
        );
        Ok(Some(Admission { seq }))
    }

    /// The request ended: who served it and the tokens it took count until it is written.
    pub(crate) fn finished(&self, admission: Admission, profile: Option<ProfileId>, tokens: u64) {
        if let Some(pending) = self.state().pending.get_mut(&admission.seq) {
            pending.profile = profile;
            pending.tokens = tokens;
        }
    }

    /// The request will never be written (the ledger could not take it): stop counting it.
    pub(crate) fn forget(&self, admission: Admission) {
        self.state().pending.remove(&admission.seq);
    }

    /// The writer wrote `written` and read `view` back after: from now on they are counted from
    /// the view. Requests of this process still pending an age no limit looks at (they never
    /// ended) are dropped.
    pub(crate) fn stored(&self, written: &[Admission], view: StoredView, now: DateTime<Utc>) {
        let oldest = now.timestamp_millis() - 2 * DAY_MS;
        let mut state = self.state();
        for admission in written {
            state.pending.remove(&admission.seq);
        }
        state.pending.retain(|_, pending| pending.at_ms >= oldest);
        state.stored = view;
    }

    /// Admissions still waiting to be written (for tests).
    #[cfg(test)]
    fn pending(&self) -> usize {
        self.state().pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Patterns;
    use crate::store::UsageWindow;

    fn policy(name: &str) -> KeyPolicy {
        KeyPolicy {
            name: name.into(),
            ..KeyPolicy::unnamed(1)
        }
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap_or_default()
    }

    fn ms(secs: i64) -> i64 {
        at(secs).timestamp_millis()
    }

    /// Requests a minute: the limit's worth pass, the next waits until the oldest is a minute
    /// old; what the store holds (another process's, or before a restart) counts the same.
    #[test]
    fn requests_per_minute() {
        let limiter = Limiter::new(vec![KeyPolicy {
            requests_per_minute: Some(3),
            ..policy("agent")
        }]);
        for secs in [0, 10, 20] {
            assert!(limiter.admit(0, at(secs)).is_ok_and(|a| a.is_some()));
        }
        let refused = limiter.admit(0, at(30)).err();
        assert_eq!(
            refused.as_ref().map(|r| r.limit),
            Some(LimitKind::RequestsPerMinute)
        );
        assert_eq!(refused.and_then(|r| r.retry_after_secs), Some(30));
        assert!(
            limiter.admit(0, at(60)).is_ok(),
            "the first one is a minute old"
        );

        let restarted = Limiter::new(limiter.policies().to_vec());
        let view = StoredView {
            arrivals: HashMap::from([(0, vec![ms(0), ms(10), ms(20)])]),
            ..StoredView::default()
        };
        restarted.stored(&[], view, at(21));
        assert_eq!(
            restarted
                .admit(0, at(21))
                .err()
                .and_then(|r| r.retry_after_secs),
            Some(39)
        );
    }

    /// Written requests move from pending to the store's view without being counted twice.
    #[test]
    fn written_requests_are_counted_once() {
        let limiter = Limiter::new(vec![KeyPolicy {
            requests_per_minute: Some(2),
            ..policy("agent")
        }]);
        let first = limiter.admit(0, at(0)).ok().flatten();
        assert_eq!(limiter.pending(), 1);
        let view = StoredView {
            arrivals: HashMap::from([(0, vec![ms(0)])]),
            ..StoredView::default()
        };
        limiter.stored(&first.into_iter().collect::<Vec<_>>(), view, at(1));
        assert_eq!(limiter.pending(), 0);
        assert!(limiter.admit(0, at(2)).is_ok());
        assert!(limiter.admit(0, at(3)).is_err());
    }

    /// Tokens a day: counted by the hour over the last 24; the refusal waits for the hours that
    /// must pass; a key without limits is never counted.
    #[test]
    fn tokens_per_day() {
        let limiter = Limiter::new(vec![
            KeyPolicy {
                tokens_per_day: Some(1000),
                ..policy("agent")
            },
            policy("free"),
        ]);
        let hour = |h: i64| ms(0).div_euclid(HOUR_MS) * HOUR_MS + h * HOUR_MS;
        let view = StoredView {
            hours: HashMap::from([(
                0,
                vec![(hour(-30), 5000), (hour(-20), 600), (hour(-2), 300)],
            )]),
            ..StoredView::default()
        };
        limiter.stored(&[], view, at(0));
        let admitted = limiter.admit(0, at(0)).ok().flatten();
        let Some(admitted) = admitted else {
            panic!("900 of 1000 used: let through")
        };
        limiter.finished(admitted, None, 150);
        let refused = limiter.admit(0, at(0)).err();
        assert_eq!(
            refused.as_ref().map(|r| r.limit),
            Some(LimitKind::TokensPerDay)
        );
        let wait = refused.and_then(|r| r.retry_after_secs).unwrap_or(0) as i64;
        assert_eq!(
            ms(0) + wait * 1000,
            hour(-20) + DAY_MS,
            "once the 600 are a day old"
        );
        assert_eq!(limiter.admit(1, at(0)), Ok(None));
    }

    /// A key's share of a window is the window's used share times its part of the tokens sent
    /// through that login since the window began; over the maximum, that login is refused until
    /// the window resets.
    #[test]
    fn window_shares() {
        let limiter = Limiter::new(vec![
            KeyPolicy {
                max_window_share: Some(0.5),
                ..policy("agent")
            },
            policy("other"),
        ]);
        let profile = ProfileId::codex_default();
        let usage = |used: f64| Usage {
            windows: vec![UsageWindow {
                name: "primary".into(),
                used_percent: used,
                window_minutes: Some(300),
                resets_at: Some(at(3600)),
            }],
            observed_at: at(0),
        };
        let view = StoredView {
            windows: HashMap::from([(
                (profile.clone(), "primary".into()),
                WindowTokens {
                    start_ms: ms(3600 - 300 * 60),
                    by_key: HashMap::from([(0, 600)]),
                    total: 1000,
                },
            )]),
            ..StoredView::default()
        };
        limiter.stored(&[], view, at(0));
        assert_eq!(
            limiter
                .over_window_share(0, &profile, &usage(80.0), at(0))
                .map(|r| r.limit),
            None,
            "60% of 80% is 48%"
        );
        let refused = limiter.over_window_share(0, &profile, &usage(90.0), at(0));
        assert_eq!(
            refused.as_ref().map(|r| r.limit),
            Some(LimitKind::MaxWindowShare)
        );
        assert_eq!(refused.and_then(|r| r.retry_after_secs), Some(3600));
        assert!(limiter
            .over_window_share(1, &profile, &usage(100.0), at(0))
            .is_none());
        assert!(
            limiter
                .over_window_share(0, &profile, &usage(90.0), at(3600))
                .is_none(),
            "a window that has reset counts nothing"
        );
        assert!((window_share(50.0, 1, 4) - 0.125).abs() < 1e-9);
    }

    /// Models and profiles: patterns the key may use.
    #[test]
    fn models_and_profiles() -> Result<(), globset::Error> {
        let limiter = Limiter::new(vec![KeyPolicy {
            models: Some(Patterns::new(&["claude-*".into()])?),
            profiles: Some(Patterns::new(&["openai-codex:w*".into()])?),
            ..policy("agent")
        }]);
        assert!(limiter.check_model(0, "claude-opus-5").is_ok());
        let refused = limiter.check_model(0, "gpt-6.1-sol").err();
        assert_eq!(refused.as_ref().map(|r| r.limit), Some(LimitKind::Models));
        assert_eq!(refused.and_then(|r| r.retry_after_secs), None);
        assert!(limiter.allows_profile(
            0,
            &"openai-codex:work"
                .parse()
                .unwrap_or_else(|e| panic!("{e}"))
        ));
        assert!(!limiter.allows_profile(0, &ProfileId::codex_default()));
        assert!(
            limiter.allows_profile(5, &ProfileId::codex_default()),
            "an unknown key: no patterns"
        );
        Ok(())
    }
}
