//! The refresh protocol under any interleaving of what can happen to a borrowed login: keyward's
//! requests, forced refreshes, 401s and scheduler ticks; the CLI rotating the file (between
//! keyward's steps, or while keyward waits for the lock); token endpoint faults; write-back
//! faults and a file turned to garbage; a lock another process does not release; crashes cut
//! between the journal's steps followed by a restart; plain restarts; new logins and logouts;
//! time jumping ahead; and a second keyward process on the same source, sharing keyward's home
//! or not.
//!
//! After the interleaving, every keyward restarts (running recovery) and serves one request.
//! Then:
//! - keyward never presented a spent token: the provider saw no reuse from it, ever; a reuse by
//!   the CLI happens only on a family whose newest token was lost with an answer that never
//!   arrived (the CLI does not know keyward's ledger);
//! - nobody wrote the source without its lock;
//! - the newest lineage is never lost: the source holds its family's current refresh token (and
//!   the access token issued with it); unless an answer was lost, in which case keyward's ledger
//!   knows the source's token as an unknown outcome and says so;
//! - keyward is live: a current token it has not tried is served; a failed request is never
//!   reported as a healthy profile; the journal is empty; and at no point of the interleaving
//!   did keyward tell a caller to log in again while its own journal held the live login.
//!
//! The modelling assumption: the CLI does not spend a token whose successor keyward holds but
//! has not yet written back (the CLI spends only inside its window before expiry, and keyward
//! refreshed that token earlier and retries the write at every tick). With separate homes,
//! faults after which only keyward's journal or ledger knows the truth (lost answers, failed
//! write-backs) are left out: the README says processes with separate stores cannot finish
//! each other's refreshes.

use std::sync::Arc;

use proptest::prelude::*;

use super::testing::*;
use super::{AccessError, Broker, Grant, HealthState};
use crate::credential::Credential;
use crate::secret::Fingerprint;
use crate::store::{JournalState, SpendState, Store};

#[derive(Debug, Clone, Copy)]
/// Where a crash cuts a refresh.
enum CrashAfter {
    /// The intent is journaled; nothing was sent.
    Intent,
    /// The provider rotated; the answer was never read.
    Send,
    /// The answer is journaled; not written back.
    Answer,
    /// Written back; not settled.
    WriteBack,
    /// Settled; before the snapshot was updated.
    Settle,
}

#[derive(Debug, Clone)]
enum Op {
    Access(usize),
    ForceRefresh(usize),
    /// The upstream refused the access token this keyward last served.
    Unauthorized(usize),
    Tick(usize),
    Advance(u64),
    CliRotate,
    /// The CLI rotates just as the next locker asks for the lock.
    CliRotateAtNextLock,
    Fault(Script),
    WriteFault(WriteFault),
    /// Arm a crash point, force a refresh, then restart that keyward whether or not it crashed.
    Crash(usize, CrashAfter),
    Restart(usize),
    Login,
    /// `acme logout`: the file is removed.
    Logout,
    /// A process holds the source's lock and does not let go (or lets go again).
    StuckLock(bool),
    Corrupt,
    Repair,
    /// Every keyward serves two requests at once.
    Concurrent,
}

impl Op {
    /// Faults after which only one home's journal or ledger knows the truth.
    fn needs_a_shared_home(&self) -> bool {
        matches!(
            self,
            Op::Fault(Script::AnswerLost | Script::CrashAfterSend)
                | Op::WriteFault(_)
                | Op::Crash(_, CrashAfter::Send)
        )
    }
}

#[derive(Debug, Clone)]
struct Case {
    brokers: usize,
    shared_home: bool,
    ops: Vec<Op>,
}

fn script() -> impl Strategy<Value = Script> {
    prop_oneof![
        Just(Script::Ok),
        Just(Script::NoRotation),
        Just(Script::Reject),
        Just(Script::AnswerLost),
        Just(Script::Unknown),
        Just(Script::NotSent),
        Just(Script::Refused),
        Just(Script::CrashAfterSend),
    ]
}

fn crash_point() -> impl Strategy<Value = CrashAfter> {
    prop_oneof![
        Just(CrashAfter::Intent),
        Just(CrashAfter::Send),
        Just(CrashAfter::Answer),
        Just(CrashAfter::WriteBack),
        Just(CrashAfter::Settle),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let broker = 0..2usize;
    prop_oneof![
        3 => broker.clone().prop_map(Op::Access),
        2 => broker.clone().prop_map(Op::ForceRefresh),
        1 => broker.clone().prop_map(Op::Unauthorized),
        2 => broker.clone().prop_map(Op::Tick),
        // Seconds: within a token's life, or most of it (3000 s reaches the refresh margin).
        3 => prop_oneof![1u64..120, 2900u64..4000].prop_map(Op::Advance),
        2 => Just(Op::CliRotate),
        2 => Just(Op::CliRotateAtNextLock),
        3 => script().prop_map(Op::Fault),
        1 => prop_oneof![Just(WriteFault::Fails), Just(WriteFault::FindsGarbage)]
            .prop_map(Op::WriteFault),
        2 => (broker.clone(), crash_point()).prop_map(|(b, p)| Op::Crash(b, p)),
        1 => broker.prop_map(Op::Restart),
        1 => Just(Op::Login),
        1 => Just(Op::Logout),
        1 => any::<bool>().prop_map(Op::StuckLock),
        1 => Just(Op::Corrupt),
        1 => Just(Op::Repair),
        1 => Just(Op::Concurrent),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        1..=2usize,
        any::<bool>(),
        prop::collection::vec(op(), 1..40),
    )
        .prop_map(|(brokers, shared_home, ops)| Case {
            brokers,
            shared_home: shared_home || brokers == 1,
            ops,
        })
}

/// Whether the CLI would spend the token the source holds now (see the modelling assumption).
fn cli_would_spend(source: &FakeSource, homes: &[MemoryStore]) -> bool {
    let Doc::Login(tokens) = source.doc() else {
        return true;
    };
    let token = Fingerprint::of(&tokens.refresh);
    !homes.iter().any(|home| {
        home.unsettled(&profile()).is_ok_and(|entries| {
            entries
                .iter()
                .any(|e| e.state == JournalState::Answered && e.spent == token)
        })
    })
}

struct Sim {
    world: World,
    /// Each keyward's home (the same store when shared).
    homes: Vec<MemoryStore>,
    brokers: Vec<Arc<Broker>>,
    /// What each keyward served last, for a 401.
    served: Vec<Option<Arc<Credential>>>,
    log: Vec<String>,
    /// The first time a keyward said needs-login while holding the live lineage itself.
    false_needs_login: Option<String>,
}

impl Sim {
    fn new(case: &Case) -> Self {
        let world = World::new(true);
        let homes: Vec<MemoryStore> = (0..case.brokers)
            .map(|i| {
                if case.shared_home || i == 0 {
                    world.store.clone()
                } else {
                    world.new_store()
                }
            })
            .collect();
        let brokers = homes.iter().map(|home| world.broker_on(home)).collect();
        Self {
            served: vec![None; case.brokers],
            world,
            homes,
            brokers,
            log: Vec::new(),
            false_needs_login: None,
        }
    }

    /// A token answer keyward `i`'s journal keeps for the token the source holds, whose refresh
    /// token is its family's current, live one: keyward holds the file's working login.
    fn live_kept_answer(&self, i: usize) -> Option<Fingerprint> {
        let provider = &self.world.provider;
        let held = Fingerprint::of(&self.world.source_refresh()?);
        let kept = self.homes[i].unsettled(&profile()).ok()?;
        kept.into_iter().find_map(|entry| {
            let refresh = entry
                .answer
                .filter(|_| entry.spent == held)?
                .refresh_token?;
            let family = provider.family_of(refresh.expose())?;
            let live = provider.revoked(family).is_none()
                && provider.current(family).as_deref() == Some(refresh.expose());
            live.then(|| refresh.fingerprint())
        })
    }

    fn broker(&self, i: usize) -> Arc<Broker> {
        self.brokers[i % self.brokers.len()].clone()
    }

    fn note(&mut self, i: usize, what: &str, result: &Result<Grant, AccessError>) {
        let i = i % self.brokers.len();
        if let Err(AccessError::NeedsLogin { detail, .. }) = result {
            if let Some(live) = self.live_kept_answer(i) {
                self.false_needs_login
                    .get_or_insert(format!("keyward {i} {what}: needs-login ({detail}) while its journal holds the live token {live}"));
            }
        }
        let outcome = match result {
            Ok(grant) => {
                self.served[i] = Some(grant.credential.clone());
                format!("ok {}", grant.credential.refresh_fingerprint())
            }
            Err(e) => format!("err {e}"),
        };
        self.log.push(format!("  keyward {i} {what}: {outcome}"));
    }

    async fn restart(&mut self, i: usize) {
        let i = i % self.brokers.len();
        self.brokers[i] = self.world.broker_on(&self.homes[i]);
        self.served[i] = None;
        tick(&self.brokers[i]).await;
    }

    async fn apply(&mut self, op: &Op) {
        self.log.push(format!("{op:?}"));
        let world = &self.world;
        match op {
            Op::Access(i) => {
                let result = self.broker(*i).access(&profile()).await;
                self.note(*i, "access", &result);
            }
            Op::ForceRefresh(i) => {
                let result = self.broker(*i).force_refresh(&profile()).await;
                self.note(*i, "force", &result);
            }
            Op::Unauthorized(i) => {
                let broker = self.broker(*i);
                let result = match self.served[*i % self.brokers.len()].clone() {
                    Some(rejected) => broker.reauthorize(&profile(), &rejected).await,
                    None => broker.access(&profile()).await,
                };
                self.note(*i, "401", &result);
            }
            Op::Tick(i) => {
                tick(&self.broker(*i)).await;
            }
            Op::Advance(secs) => world.clock.advance(std::time::Duration::from_secs(*secs)),
            Op::CliRotate => {
                let run = if cli_would_spend(&world.source, &self.homes) {
                    format!("{:?}", world.cli.rotate())
                } else {
                    "waits (keyward's answer not yet written back)".into()
                };
                self.log.push(format!("  cli: {run}"));
            }
            Op::CliRotateAtNextLock => {
                let (cli, homes) = (world.cli.clone(), self.homes.clone());
                world.source.on_next_lock(Box::new(move || {
                    if cli_would_spend(&cli.source, &homes) {
                        cli.rotate_holding_the_lock();
                    }
                }));
            }
            Op::Fault(script) => world.provider.push_script(*script),
            Op::WriteFault(fault) => world.source.push_write_fault(*fault),
            Op::Crash(i, point) => {
                let i = i % self.brokers.len();
                let home = self.homes[i].clone();
                world.provider.clear_script();
                world.source.clear_write_faults();
                match point {
                    CrashAfter::Intent => home.crash_after(Some(StoreStep::BeginSpend)),
                    CrashAfter::Send => world.provider.push_script(Script::CrashAfterSend),
                    CrashAfter::Answer => home.crash_after(Some(StoreStep::RecordAnswer)),
                    CrashAfter::WriteBack => world.source.push_write_fault(WriteFault::CrashAfter),
                    CrashAfter::Settle => home.crash_after(Some(StoreStep::Settle)),
                }
                let result = self.broker(i).force_refresh(&profile()).await;
                home.crash_after(None);
                self.world.provider.clear_script();
                self.world.source.clear_write_faults();
                self.note(i, "force (crash armed)", &result);
                self.restart(i).await;
            }
            Op::Restart(i) => self.restart(*i).await,
            Op::Login => {
                world.cli.login();
            }
            Op::Logout => world.cli.logout(),
            Op::StuckLock(stuck) => world.source.set_stuck(*stuck),
            Op::Corrupt => world.source.corrupt(),
            Op::Repair => world.source.repair(),
            Op::Concurrent => {
                let calls = self
                    .brokers
                    .iter()
                    .flat_map(|b| [b.clone(), b.clone()])
                    .map(|b| async move { b.access(&profile()).await });
                let results = futures_util::future::join_all(calls).await;
                for (n, result) in results.iter().enumerate() {
                    self.note(n / 2, "concurrent access", result);
                }
            }
        }
    }

    /// Whether any home's ledger holds `token`, and in which state.
    fn ledger_state(&self, token: Fingerprint) -> Option<SpendState> {
        self.homes.iter().find_map(|home| {
            home.ledger()
                .into_iter()
                .find(|(t, _)| *t == token)
                .map(|(_, s)| s)
        })
    }
}

async fn run(case: Case) -> Result<(), TestCaseError> {
    let mut sim = Sim::new(&case);
    for op in &case.ops {
        if !case.shared_home && op.needs_a_shared_home() {
            continue;
        }
        sim.apply(op).await;
    }

    // The end: faults cleared, the file put right, every keyward restarted and asked once.
    sim.log.push("-- end: restart all, access each".into());
    sim.world.provider.clear_script();
    sim.world.source.clear_faults();
    sim.world.source.repair();
    for home in &sim.homes {
        home.crash_after(None);
    }
    for i in 0..sim.brokers.len() {
        sim.restart(i).await;
    }
    let mut finals = Vec::new();
    for i in 0..sim.brokers.len() {
        let result = sim.brokers[i].access(&profile()).await;
        sim.note(i, "final access", &result);
        finals.push(result);
    }

    let world = &sim.world;
    let trace = sim.log.join("\n");
    let provider = &world.provider;
    let reuse = provider.reuse();

    prop_assert!(
        !reuse.iter().any(|(who, _)| *who == Spender::Keyward),
        "keyward presented a spent token: {reuse:?}\n{trace}"
    );
    for (who, family) in &reuse {
        prop_assert!(
            provider.lost_answer(*family),
            "{who:?} reused a token of family {family} with no lost answer to explain it\n{trace}"
        );
    }
    if let Some(lie) = &sim.false_needs_login {
        return Err(TestCaseError::fail(format!("{lie}\n{trace}")));
    }
    prop_assert_eq!(
        world.source.unlocked_writes(),
        0,
        "the source was written without its lock\n{}",
        trace
    );
    for home in &sim.homes {
        let open = home.unsettled(&profile()).map(|e| e.len()).unwrap_or(0);
        prop_assert_eq!(open, 0, "journal entries left open\n{}", trace);
    }

    let Some(tokens) = world.source_tokens() else {
        return Ok(());
    };
    let Some(family) = provider.family_of(&tokens.refresh) else {
        return Err(TestCaseError::fail(format!(
            "the source holds a refresh token the provider never issued\n{trace}"
        )));
    };
    let paired = provider.issued_with(&tokens.access);
    prop_assert_eq!(
        paired.as_deref(),
        Some(tokens.refresh.as_str()),
        "the source's access token belongs to another refresh token\n{}",
        trace
    );
    let current = provider.current(family);
    let held = Fingerprint::of(&tokens.refresh);
    let ledger = sim.ledger_state(held);
    if provider.lost_answer(family) {
        // The newest token is unknowable: keyward must know the source's token as unknown.
        prop_assert_eq!(
            ledger,
            Some(SpendState::Unknown),
            "a lost answer not recorded as an unknown outcome\n{}",
            trace
        );
    } else {
        prop_assert_eq!(
            current.as_deref(),
            Some(tokens.refresh.as_str()),
            "the newest lineage was lost: the source holds {} but the provider's current is another (spent: {})\n{}",
            held,
            provider.is_spent(&tokens.refresh),
            trace
        );
    }

    let live = provider.revoked(family).is_none()
        && current.as_deref() == Some(tokens.refresh.as_str())
        && ledger.is_none();
    for (i, result) in finals.iter().enumerate() {
        match result {
            Ok(grant) => prop_assert_eq!(
                grant.credential.refresh_token.expose(),
                tokens.refresh.as_str(),
                "keyward {} serves another lineage than the source's\n{}",
                i,
                trace
            ),
            Err(e) => {
                prop_assert!(
                    !live,
                    "keyward {i} refused a live, untried token: {e}\n{trace}"
                );
                prop_assert!(
                    !matches!(e, AccessError::Store(_)),
                    "keyward {i}: {e}\n{trace}"
                );
                let runtime = runtime(&sim.brokers[i]);
                let view = sim.brokers[i].current_view(&runtime).await;
                let health = sim.brokers[i].health(&runtime, &view);
                prop_assert_ne!(
                    health.state,
                    HealthState::Ok,
                    "keyward {} refused a request while reporting ok: {}\n{}",
                    i,
                    e,
                    trace
                );
            }
        }
    }
    Ok(())
}

proptest! {
    /// Any interleaving keeps the promises: no stale spend, no lost lineage, and every failure
    /// explained (see the module documentation for the operations and the invariants).
    #[test]
    fn any_interleaving_never_spends_stale_and_never_loses_the_lineage(case in case()) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        runtime.block_on(run(case))?;
    }
}
