//! Fakes for testing the broker's decisions in-process, as smithy-rs tests its identity cache: a
//! clock the test moves, an in-memory store ([`MemoryStore`]), a source with the CLI's locking
//! and a CLI that rotates it, and a provider with rotation and reuse detection behind a token
//! endpoint with scripted faults. A crash is a fault that unwinds the refresh task where a kill
//! would stop the process; the test then builds a new broker over the same store and source.

mod clock;
mod provider;
mod source;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

pub(crate) use clock::ManualClock;
pub(crate) use provider::{FakeEndpoint, FakeProvider, Script, Spender};
pub(crate) use source::{CliRun, Doc, FakeCli, FakeSource, Tokens, WriteFault};

use super::{Broker, BrokerSettings, Clock, ProfileRuntime, RefreshTiming};
use crate::profile::ProfileId;
pub(crate) use crate::store::memory::{MemoryStore, StoreStep};

/// How long the provider's access tokens live.
pub(crate) const TTL: Duration = Duration::from_secs(3600);

/// Settings with no jitter, so refresh times are exact.
pub(crate) fn settings() -> BrokerSettings {
    BrokerSettings {
        timing: RefreshTiming {
            margin: Duration::from_secs(600),
            jitter: Duration::ZERO,
            min_validity: Duration::from_secs(30),
        },
        // Real time (the fake lock waits on a condvar): long enough that a loaded machine never
        // makes a contended lock look stuck; a stuck lock is simulated without waiting.
        lock_timeout: Duration::from_secs(60),
        settle_window: Duration::from_secs(5),
        tick: Duration::from_secs(30),
        min_refresh_interval: Duration::from_secs(10),
    }
}

pub(crate) fn profile() -> ProfileId {
    ProfileId::new("acme", "default").unwrap_or_else(|e| panic!("{e}"))
}

/// One user's machine: a provider, the CLI's source and the CLI, one keyward home (store), and
/// the clock they all read.
pub(crate) struct World {
    pub(crate) clock: ManualClock,
    pub(crate) provider: FakeProvider,
    pub(crate) source: Arc<FakeSource>,
    pub(crate) cli: FakeCli,
    pub(crate) store: MemoryStore,
    pub(crate) settings: BrokerSettings,
}

impl World {
    /// A logged-in source. With `auto_advance`, every wait of the broker moves the clock itself.
    pub(crate) fn new(auto_advance: bool) -> Self {
        let start = DateTime::parse_from_rfc3339("2026-11-26T09:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        let clock = ManualClock::new(start, auto_advance);
        let provider = FakeProvider::new(clock.clone(), TTL);
        let source = Arc::new(FakeSource::new(Doc::Missing));
        let cli = FakeCli {
            source: source.clone(),
            provider: provider.clone(),
        };
        cli.login();
        let store = Self::store_on(&clock);
        Self {
            clock,
            provider,
            source,
            cli,
            store,
            settings: settings(),
        }
    }

    fn store_on(clock: &ManualClock) -> MemoryStore {
        let clock = clock.clone();
        MemoryStore::new(Arc::new(move || clock.now()))
    }

    /// Another keyward home: a store no other broker shares.
    pub(crate) fn new_store(&self) -> MemoryStore {
        Self::store_on(&self.clock)
    }

    /// A keyward process on this machine's home.
    pub(crate) fn broker(&self) -> Arc<Broker> {
        self.broker_on(&self.store)
    }

    /// A keyward process with its own home.
    pub(crate) fn broker_on(&self, store: &MemoryStore) -> Arc<Broker> {
        let endpoint = Arc::new(FakeEndpoint {
            provider: self.provider.clone(),
        });
        let runtime = Arc::new(ProfileRuntime::new(
            profile(),
            self.source.clone(),
            endpoint,
        ));
        Broker::with_clock(
            vec![runtime],
            Arc::new(store.clone()),
            self.settings.clone(),
            Arc::new(self.clock.clone()),
        )
    }

    /// Moves time to just past the access token's expiry (as a sleeping laptop would).
    pub(crate) fn expire(&self) {
        self.clock.advance(TTL + Duration::from_secs(1));
    }

    /// The refresh token the source holds.
    pub(crate) fn source_refresh(&self) -> Option<String> {
        match self.source.doc() {
            Doc::Login(tokens) => Some(tokens.refresh),
            _ => None,
        }
    }

    pub(crate) fn source_tokens(&self) -> Option<Tokens> {
        match self.source.doc() {
            Doc::Login(tokens) => Some(tokens),
            _ => None,
        }
    }
}

/// The broker's one profile.
pub(crate) fn runtime(broker: &Arc<Broker>) -> Arc<ProfileRuntime> {
    match broker.profiles().first() {
        Some(runtime) => runtime.clone(),
        None => panic!("the test broker has no profile"),
    }
}

/// One scheduler look at the broker's profile (recovery, refresh if due, health).
pub(crate) async fn tick(broker: &Arc<Broker>) -> Duration {
    super::scheduler::tick(broker, &runtime(broker)).await
}
