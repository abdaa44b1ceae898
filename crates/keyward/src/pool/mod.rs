//! The pool of profiles: which ones may serve a request, in which order, and which are resting.
//!
//! A route maps a model name (exact or glob) to an ordered list of profiles; without a route, a
//! model is served by every profile that can serve it, in config order. Failover tries them in
//! order; round robin starts each request one further along; headroom takes the one with the
//! most left in its tightest usage window first ([`headroom`]). A conversation (its prompt cache
//! key or session header) sticks to the profile that last served it while that one is healthy
//! (and, with headroom, while it has some left), since prompt caches and encrypted reasoning
//! belong to one account. A profile that hit a usage
//! limit rests until the reset its upstream named; cooldowns are kept in the store, so another
//! process's `status` and a restarted `serve` see them ([`state`], which keeps the store off the
//! request path).

mod headroom;
mod state;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use globset::{Glob, GlobMatcher};

use crate::broker::Clock;
use crate::dialect::Dialect;
use crate::profile::ProfileId;
use crate::store::{Cooldown, PoolStore, Usage};
use crate::upstream::{Limit, Upstream};
use state::ProfileStates;

/// A conversation stays with its profile this long after its last request.
const STICKY_TTL: Duration = Duration::from_secs(3600);
const STICKY_MAX: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Strategy {
    /// The first profile that can serve, then the next.
    #[default]
    Failover,
    /// Each request starts one profile further along.
    RoundRobin,
    /// The profile with the most left in its tightest usage window first.
    Headroom,
}

impl Strategy {
    pub(crate) fn parse(text: &str) -> Option<Self> {
        match text {
            "failover" => Some(Self::Failover),
            "round-robin" | "round_robin" => Some(Self::RoundRobin),
            "headroom" => Some(Self::Headroom),
            _ => None,
        }
    }
}

/// A configured route.
#[derive(Debug, Clone)]
pub(crate) struct RouteConfig {
    pub model: String,
    pub profiles: Vec<ProfileId>,
    pub strategy: Strategy,
}

struct Route {
    matcher: GlobMatcher,
    profiles: Vec<ProfileId>,
    strategy: Strategy,
    next: AtomicUsize,
}

/// A profile that may serve this request, and the model it is asked for.
#[derive(Clone)]
pub(crate) struct Candidate {
    pub upstream: Arc<dyn Upstream>,
    pub model: String,
}

/// Why no profile can take a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NoCandidate {
    /// The header named a profile keyward does not have.
    UnknownProfile(String),
    /// The named profile does not serve this model or dialect.
    ProfileCannotServe { profile: ProfileId, model: String },
    /// No profile serves this model (for this dialect).
    UnknownModel(String),
}

pub(crate) struct Pool {
    members: Vec<Arc<dyn Upstream>>,
    routes: Vec<Route>,
    states: ProfileStates,
    clock: Arc<dyn Clock>,
    /// Conversation -> the profile that last served it, and when (the clock's monotonic time).
    sticky: Mutex<HashMap<String, (ProfileId, Duration)>>,
    default_next: AtomicUsize,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Pool {
    /// Routes naming unknown profiles or bad patterns are refused by the config loader; here an
    /// unusable pattern only makes its route match nothing. Without a store, cooldowns and usage
    /// windows last as long as the pool.
    pub(crate) fn new(
        members: Vec<Arc<dyn Upstream>>,
        routes: &[RouteConfig],
        store: Option<Arc<dyn PoolStore>>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let routes = routes
            .iter()
            .filter_map(|route| {
                Some(Route {
                    matcher: Glob::new(&route.model).ok()?.compile_matcher(),
                    profiles: route.profiles.clone(),
                    strategy: route.strategy,
                    next: AtomicUsize::new(0),
                })
            })
            .collect();
        Self {
            members,
            routes,
            states: ProfileStates::new(store, clock.clone()),
            clock,
            sticky: Mutex::new(HashMap::new()),
            default_next: AtomicUsize::new(0),
        }
    }

    pub(crate) fn members(&self) -> &[Arc<dyn Upstream>] {
        &self.members
    }

    fn member(&self, id: &ProfileId) -> Option<&Arc<dyn Upstream>> {
        self.members.iter().find(|m| m.profile() == id)
    }

    /// The profiles that may serve a request, in the order to try them.
    pub(crate) fn candidates(
        &self,
        dialect: Dialect,
        asked: &str,
        session: Option<&str>,
        forced: Option<&ProfileId>,
    ) -> Result<Vec<Candidate>, NoCandidate> {
        let can_serve = |member: &Arc<dyn Upstream>| {
            member
                .wire()
                .serves(dialect)
                .then(|| member.model_for(asked))
                .flatten()
                .map(|model| Candidate {
                    upstream: member.clone(),
                    model,
                })
        };
        if let Some(id) = forced {
            let member = self
                .member(id)
                .ok_or_else(|| NoCandidate::UnknownProfile(id.to_string()))?;
            return can_serve(member).map(|c| vec![c]).ok_or_else(|| {
                NoCandidate::ProfileCannotServe {
                    profile: id.clone(),
                    model: asked.to_string(),
                }
            });
        }
        let (mut list, strategy, next): (Vec<Candidate>, _, _) =
            match self.routes.iter().find(|r| r.matcher.is_match(asked)) {
                Some(route) => (
                    route
                        .profiles
                        .iter()
                        .filter_map(|id| self.member(id))
                        .filter_map(can_serve)
                        .collect(),
                    route.strategy,
                    &route.next,
                ),
                None => (
                    self.members.iter().filter_map(can_serve).collect(),
                    Strategy::Failover,
                    &self.default_next,
                ),
            };
        if list.is_empty() {
            return Err(NoCandidate::UnknownModel(asked.to_string()));
        }
        let now = self.clock.now();
        let left = |upstream: &Arc<dyn Upstream>| {
            upstream.reports_usage().then(|| {
                self.states
                    .with_usage(upstream.profile(), |usage| headroom::left(usage, now))
            })
        };
        match strategy {
            Strategy::RoundRobin => {
                let start = next.fetch_add(1, Ordering::Relaxed) % list.len();
                list.rotate_left(start);
            }
            Strategy::Headroom => headroom::order(&mut list, |c| left(&c.upstream)),
            Strategy::Failover => {}
        }
        if let Some(stuck) = session.and_then(|s| self.sticky_profile(s)) {
            let position = list.iter().position(|c| c.upstream.profile() == &stuck);
            let has_room = |at: usize| {
                strategy != Strategy::Headroom
                    || left(&list[at].upstream).is_none_or(|left| left >= headroom::STICKY_MIN_LEFT)
            };
            if let Some(at) = position.filter(|at| has_room(*at)) {
                let candidate = list.remove(at);
                list.insert(0, candidate);
            }
        }
        Ok(list)
    }

    fn sticky_profile(&self, session: &str) -> Option<ProfileId> {
        let now = self.clock.monotonic();
        let sticky = lock(&self.sticky);
        sticky
            .get(session)
            .filter(|(_, at)| now.saturating_sub(*at) < STICKY_TTL)
            .map(|(id, _)| id.clone())
    }

    /// `profile` served `session`: the conversation stays with it while it is healthy.
    pub(crate) fn served(&self, profile: &ProfileId, session: Option<&str>) {
        let Some(session) = session else {
            return;
        };
        let now = self.clock.monotonic();
        let mut sticky = lock(&self.sticky);
        if sticky.len() >= STICKY_MAX && !sticky.contains_key(session) {
            sticky.retain(|_, (_, at)| now.saturating_sub(*at) < STICKY_TTL);
            if sticky.len() >= STICKY_MAX {
                // Still full of live conversations: forget the older half.
                let mut ages: Vec<Duration> = sticky.values().map(|(_, at)| *at).collect();
                ages.sort();
                let cutoff = ages[ages.len() / 2];
                sticky.retain(|_, (_, at)| *at > cutoff);
            }
        }
        sticky.insert(session.to_string(), (profile.clone(), now));
    }

    /// The profile's cooldown, if it is resting at `now`.
    pub(crate) fn cooldown(&self, profile: &ProfileId, now: DateTime<Utc>) -> Option<Cooldown> {
        self.states.cooldown(profile, now)
    }

    /// Rests `profile` until the limit's reset, here and (shortly) in the store; its
    /// conversations look for another profile.
    pub(crate) fn cool(&self, profile: &ProfileId, limit: &Limit, now: DateTime<Utc>) {
        let cooldown = Cooldown {
            until: limit.until,
            reason: limit.reason.clone(),
            since: now,
        };
        tracing::warn!(profile = %profile, until = %limit.until.format("%Y-%m-%d %H:%M:%S UTC"), reason = %limit.reason, "profile cooling down; trying the next one");
        self.states.cool(profile, cooldown);
        lock(&self.sticky).retain(|_, (id, _)| id != profile);
    }

    /// Keeps the usage windows an answer reported.
    pub(crate) fn observe_usage(&self, profile: &ProfileId, usage: Usage) {
        self.states.observe_usage(profile, usage);
    }

    /// The latest usage windows of `profile`, as this process or another saw them.
    pub(crate) fn usage(&self, profile: &ProfileId) -> Option<Usage> {
        self.states.usage(profile)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::testing::ManualClock;
    use crate::store::{SqliteStore, Usage, UsageWindow};
    use crate::upstream::{Outgoing, SendFuture, Wire};
    use axum::http::HeaderMap;

    struct Fake {
        id: ProfileId,
        wire: Wire,
        prefix: &'static str,
    }

    impl Upstream for Fake {
        fn profile(&self) -> &ProfileId {
            &self.id
        }
        fn describe(&self) -> String {
            String::new()
        }
        fn wire(&self) -> Wire {
            self.wire
        }
        fn model_for(&self, asked: &str) -> Option<String> {
            asked.starts_with(self.prefix).then(|| asked.to_string())
        }
        fn send<'a>(&'a self, _request: Outgoing<'a>) -> SendFuture<'a> {
            Box::pin(async { Err(crate::upstream::SendError::NotAUrl("fake".into())) })
        }
        fn limit(&self, _: u16, _: &HeaderMap, _: &[u8], _: DateTime<Utc>) -> Option<Limit> {
            None
        }
        fn usage(&self, _: &HeaderMap, _: DateTime<Utc>) -> Option<Usage> {
            None
        }
        fn reports_usage(&self) -> bool {
            self.wire == Wire::Responses
        }
    }

    fn id(text: &str) -> ProfileId {
        text.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    fn clock() -> ManualClock {
        ManualClock::new(Utc::now(), false)
    }

    fn pool(routes: &[RouteConfig]) -> Pool {
        pool_with(routes, None, clock())
    }

    fn pool_with(
        routes: &[RouteConfig],
        store: Option<Arc<dyn PoolStore>>,
        clock: ManualClock,
    ) -> Pool {
        let member = |name: &str, wire, prefix| -> Arc<dyn Upstream> {
            Arc::new(Fake {
                id: id(name),
                wire,
                prefix,
            })
        };
        Pool::new(
            vec![
                member("openai-codex:default", Wire::Responses, ""),
                member("openai-codex:work", Wire::Responses, ""),
                member("anthropic:default", Wire::Messages, "claude-"),
            ],
            routes,
            store,
            Arc::new(clock),
        )
    }

    fn order(pool: &Pool, dialect: Dialect, model: &str, session: Option<&str>) -> Vec<String> {
        pool.candidates(dialect, model, session, None)
            .map(|list| {
                list.iter()
                    .map(|c| c.upstream.profile().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Without routes every capable profile serves in config order; a Messages-only upstream
    /// serves only Messages callers.
    #[test]
    fn default_order_follows_the_config_and_the_dialect() {
        let pool = pool(&[]);
        assert_eq!(
            order(&pool, Dialect::Chat, "claude-x", None),
            ["openai-codex:default", "openai-codex:work"]
        );
        assert_eq!(
            order(&pool, Dialect::Messages, "claude-x", None),
            [
                "openai-codex:default",
                "openai-codex:work",
                "anthropic:default"
            ]
        );
    }

    /// A route picks and orders its profiles; round robin starts one further each time.
    #[test]
    fn routes_and_round_robin() {
        let pool = pool(&[RouteConfig {
            model: "claude-*".into(),
            profiles: vec![id("anthropic:default"), id("openai-codex:work")],
            strategy: Strategy::RoundRobin,
        }]);
        assert_eq!(
            order(&pool, Dialect::Messages, "claude-x", None),
            ["anthropic:default", "openai-codex:work"]
        );
        assert_eq!(
            order(&pool, Dialect::Messages, "claude-x", None),
            ["openai-codex:work", "anthropic:default"]
        );
        assert_eq!(
            order(&pool, Dialect::Chat, "claude-x", None),
            ["openai-codex:work"],
            "a chat caller cannot be passed to the Messages upstream"
        );
    }

    /// A conversation sticks to the profile that served it, until that profile cools down.
    #[test]
    fn conversations_stick_until_a_cooldown() {
        let pool = pool(&[]);
        let work = id("openai-codex:work");
        pool.served(&work, Some("conv-1"));
        assert_eq!(
            order(&pool, Dialect::Chat, "gpt-x", Some("conv-1")),
            ["openai-codex:work", "openai-codex:default"]
        );
        assert_eq!(
            order(&pool, Dialect::Chat, "gpt-x", Some("conv-2")),
            ["openai-codex:default", "openai-codex:work"]
        );
        let now = Utc::now();
        let limit = Limit {
            until: now + chrono::Duration::seconds(60),
            reason: "usage limit".into(),
        };
        pool.cool(&work, &limit, now);
        assert!(pool.cooldown(&work, now).is_some());
        assert!(
            pool.cooldown(&work, limit.until).is_none(),
            "rests until the reset only"
        );
        assert_eq!(
            order(&pool, Dialect::Chat, "gpt-x", Some("conv-1")),
            ["openai-codex:default", "openai-codex:work"]
        );
    }

    /// Headroom: the login with the most left in its tightest window first, the API key last;
    /// a conversation stays with its login while that has some left, then moves.
    #[test]
    fn headroom_prefers_the_login_with_the_most_left() {
        let clock = clock();
        let pool = pool_with(
            &[RouteConfig {
                model: "*".into(),
                profiles: vec![
                    id("anthropic:default"),
                    id("openai-codex:default"),
                    id("openai-codex:work"),
                ],
                strategy: Strategy::Headroom,
            }],
            None,
            clock.clone(),
        );
        let now = clock.now();
        let windows = |primary: f64, secondary: f64| Usage {
            windows: [("primary", primary, 300), ("secondary", secondary, 10_080)]
                .into_iter()
                .map(|(name, used_percent, minutes)| UsageWindow {
                    name: name.into(),
                    used_percent,
                    window_minutes: Some(minutes),
                    resets_at: Some(now + chrono::Duration::hours(1)),
                })
                .collect(),
            observed_at: now,
        };
        assert_eq!(
            order(&pool, Dialect::Messages, "claude-x", None),
            [
                "openai-codex:default",
                "openai-codex:work",
                "anthropic:default"
            ],
            "nothing known: the route's order, the key last"
        );
        pool.observe_usage(&id("openai-codex:default"), windows(30.0, 90.0));
        pool.observe_usage(&id("openai-codex:work"), windows(60.0, 20.0));
        assert_eq!(
            order(&pool, Dialect::Messages, "claude-x", None),
            [
                "openai-codex:work",
                "openai-codex:default",
                "anthropic:default"
            ],
            "10% left of default's week, 40% of work's 5 hours"
        );
        pool.served(&id("openai-codex:default"), Some("conv"));
        assert_eq!(
            order(&pool, Dialect::Chat, "gpt-x", Some("conv"))[0],
            "openai-codex:default",
            "10% left: the conversation stays"
        );
        pool.observe_usage(&id("openai-codex:default"), windows(30.0, 97.0));
        assert_eq!(
            order(&pool, Dialect::Chat, "gpt-x", Some("conv"))[0],
            "openai-codex:work",
            "3% left: it moves before the limit cuts it"
        );
    }

    /// A named profile is the only candidate; one that cannot serve the model says so.
    #[test]
    fn forced_profiles() {
        let pool = pool(&[]);
        let forced = |name: &str, model: &str| {
            pool.candidates(Dialect::Messages, model, None, Some(&id(name)))
                .map(|list| list.len())
        };
        assert_eq!(forced("anthropic:default", "claude-x"), Ok(1));
        assert!(matches!(
            forced("anthropic:default", "gpt-x"),
            Err(NoCandidate::ProfileCannotServe { .. })
        ));
        assert!(matches!(
            forced("openai:nope", "gpt-x"),
            Err(NoCandidate::UnknownProfile(_))
        ));
    }

    /// A conversation forgets its profile an hour after its last request.
    #[test]
    fn conversations_unstick_after_an_hour() {
        let clock = clock();
        let pool = pool_with(&[], None, clock.clone());
        pool.served(&id("openai-codex:work"), Some("conv-1"));
        clock.advance(STICKY_TTL - Duration::from_secs(1));
        assert_eq!(
            order(&pool, Dialect::Chat, "gpt-x", Some("conv-1"))[0],
            "openai-codex:work"
        );
        clock.advance(Duration::from_secs(1));
        assert_eq!(
            order(&pool, Dialect::Chat, "gpt-x", Some("conv-1"))[0],
            "openai-codex:default"
        );
    }

    /// A cooldown and usage windows one process records reach, through the store, a process
    /// that starts afterwards and one that was already running, and a store's older record of a
    /// profile does not undo a newer one made here.
    #[test]
    fn cooldowns_and_windows_are_shared_through_the_store() -> Result<(), Box<dyn std::error::Error>>
    {
        let dir = tempfile::tempdir()?;
        let store = |dir: &std::path::Path| -> Result<Option<Arc<dyn PoolStore>>, crate::store::StoreError> {
            Ok(Some(Arc::new(SqliteStore::open(dir)?)))
        };
        let clock = clock();
        let now = clock.now();
        let running = pool_with(&[], store(dir.path())?, clock.clone());
        let first = pool_with(&[], store(dir.path())?, clock.clone());
        let work = id("openai-codex:work");
        let limit = Limit {
            until: now + chrono::Duration::seconds(60),
            reason: "usage limit".into(),
        };
        first.cool(&work, &limit, now);
        let usage = Usage {
            windows: vec![UsageWindow {
                name: "primary".into(),
                used_percent: 100.0,
                window_minutes: Some(300),
                resets_at: Some(limit.until),
            }],
            observed_at: now,
        };
        first.observe_usage(&work, usage.clone());
        first.states.sync();

        let restarted = pool_with(&[], store(dir.path())?, clock.clone());
        assert_eq!(
            restarted.cooldown(&work, now).map(|c| c.reason),
            Some("usage limit".to_string())
        );
        assert_eq!(restarted.usage(&work), Some(usage.clone()));
        assert_eq!(running.cooldown(&work, now), None, "not read back yet");
        running.states.sync();
        assert_eq!(
            running.cooldown(&work, now).map(|c| c.until),
            Some(limit.until)
        );
        assert_eq!(running.usage(&work), Some(usage));

        let later = Limit {
            until: now + chrono::Duration::seconds(600),
            reason: "usage limit again".into(),
        };
        running.cool(&work, &later, now + chrono::Duration::seconds(1));
        running.states.sync();
        first.states.sync();
        assert_eq!(
            running.cooldown(&work, now).map(|c| c.until),
            Some(later.until)
        );
        assert_eq!(
            first.cooldown(&work, now).map(|c| c.until),
            Some(later.until)
        );
        Ok(())
    }
}
