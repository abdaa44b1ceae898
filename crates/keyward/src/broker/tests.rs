//! The refresh protocol's decisions, in-process against the fakes of [`super::testing`] and a
//! manual clock: each test is named after the failure it pins. None sleeps; time moves when the
//! test moves it.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::testing::*;
use super::{AccessError, Broker, Grant, HealthState};
use crate::store::SpendState;

type TestResult = Result<(), Box<dyn std::error::Error>>;

async fn access(broker: &Arc<Broker>) -> Result<Grant, AccessError> {
    broker.access(&profile()).await
}

/// An access running on its own, for a test that moves the clock while it waits.
fn spawn_access(broker: &Arc<Broker>) -> tokio::task::JoinHandle<Result<Grant, AccessError>> {
    let broker = broker.clone();
    tokio::spawn(async move { access(&broker).await })
}

fn refresh_of(grant: &Grant) -> String {
    grant.credential.refresh_token.expose().to_string()
}

fn access_of(grant: &Grant) -> String {
    grant.credential.access_token.expose().to_string()
}

/// The family of the login the world started with.
fn family(world: &World) -> usize {
    world
        .source_refresh()
        .and_then(|t| world.provider.family_of(&t))
        .unwrap_or_else(|| panic!("the source holds no login of the provider"))
}

/// The health of the broker's profile now.
async fn health(broker: &Arc<Broker>) -> super::Health {
    let runtime = runtime(broker);
    let view = broker.current_view(&runtime).await;
    broker.health(&runtime, &view)
}

fn expect_needs_login(result: Result<Grant, AccessError>) -> (String, String) {
    match result {
        Err(AccessError::NeedsLogin { detail, remedy, .. }) => (detail, remedy),
        other => panic!("expected needs-login, got {other:?}"),
    }
}

/// The CLI rotated the file while keyward waited for the lock to refresh the same token: keyward
/// re-reads under the lock and adopts the CLI's token instead of spending its own stale copy.
#[tokio::test]
async fn adopts_instead_of_spending_when_the_source_changed_under_the_lock() -> TestResult {
    let world = World::new(true);
    let broker = world.broker();
    let before = access(&broker).await?;
    world.expire();
    world.cli.rotate_at_next_lock();

    let grant = access(&broker).await?;

    assert_eq!(world.provider.keyward_calls(), 0, "keyward spent a token");
    assert_eq!(world.provider.cli_calls(), 1);
    assert_eq!(Some(refresh_of(&grant)), world.source_refresh());
    assert_ne!(access_of(&grant), access_of(&before));
    assert_eq!(broker.counters().adopted.load(Ordering::Relaxed), 1);
    assert_eq!(world.provider.reuse(), vec![]);
    Ok(())
}

/// An answer lost after the provider issued it leaves the token's fate unknown: keyward never
/// sends it again, whatever asks (a request, a forced refresh, a 401, a restart), and says why.
#[tokio::test]
async fn never_resends_a_token_whose_outcome_is_unknown() -> TestResult {
    let world = World::new(true);
    let broker = world.broker();
    let before = access(&broker).await?;
    world.provider.push_script(Script::AnswerLost);
    world.expire();

    let (detail, remedy) = expect_needs_login(access(&broker).await);
    assert!(detail.contains("got no answer"), "{detail}");
    assert!(
        remedy.contains("acme login") && remedy.contains("any acme command"),
        "{remedy}"
    );
    assert!(access(&broker).await.is_err());
    assert!(broker.force_refresh(&profile()).await.is_err());
    assert!(broker
        .reauthorize(&profile(), &before.credential)
        .await
        .is_err());
    let restarted = world.broker();
    tick(&restarted).await;
    assert!(access(&restarted).await.is_err());
    assert!(restarted.force_refresh(&profile()).await.is_err());

    assert_eq!(
        world.provider.keyward_calls(),
        1,
        "the unknown token was resent"
    );
    assert_eq!(world.provider.reuse(), vec![]);
    Ok(())
}

/// While the access token lasts, an unknown outcome degrades the profile but keeps serving it.
#[tokio::test]
async fn an_unknown_outcome_keeps_serving_the_access_token_while_it_lasts() -> TestResult {
    let world = World::new(true);
    let broker = world.broker();
    let before = access(&broker).await?;
    world.provider.push_script(Script::AnswerLost);

    assert!(broker.force_refresh(&profile()).await.is_err());
    let grant = access(&broker).await?;

    assert_eq!(access_of(&grant), access_of(&before));
    let health = health(&broker).await;
    assert_eq!(health.state, HealthState::Degraded, "{health:?}");
    assert!(health.detail.contains("got no answer"), "{health:?}");
    Ok(())
}

/// A token whose refresh got no answer but was not consumed (a 502 from a proxy) is refreshed by
/// the CLI, and keyward adopts the result without sending anything more itself.
#[tokio::test]
async fn an_unknown_outcome_is_healed_by_the_clis_refresh() -> TestResult {
    let world = World::new(true);
    let broker = world.broker();
    world.provider.push_script(Script::Unknown);
    world.expire();
    assert!(access(&broker).await.is_err());

    assert_eq!(world.cli.rotate(), CliRun::Refreshed);
    let grant = access(&broker).await?;

    assert_eq!(Some(refresh_of(&grant)), world.source_refresh());
    assert_eq!(world.provider.keyward_calls(), 1);
    assert_eq!(world.provider.reuse(), vec![]);
    assert_eq!(health(&broker).await.state, HealthState::Ok);
    Ok(())
}

/// A rejected token with no newer lineage landing within the settle window turns the profile
/// needs-login with the source's login command, and is never sent again.
#[tokio::test]
async fn a_rejected_token_turns_needs_login_when_no_newer_lineage_lands() -> TestResult {
    let world = World::new(false);
    let broker = world.broker();
    world.provider.push_script(Script::Reject);
    world.expire();

    let waiting = spawn_access(&broker);
    world.clock.sleeping().await;
    world.clock.advance(world.settings.settle_window);
    let (detail, remedy) = expect_needs_login(waiting.await?);

    assert!(detail.contains("rejected"), "{detail}");
    assert_eq!(remedy, "run `acme login`");
    assert!(access(&broker).await.is_err());
    assert_eq!(world.provider.keyward_calls(), 1);
    assert_eq!(health(&broker).await.state, HealthState::NeedsLogin);
    Ok(())
}

/// A newer lineage landing while keyward watches after a rejection (a login, a concurrent
/// writer) is adopted: the caller is served instead of told to log in.
#[tokio::test]
async fn a_rejected_token_adopts_a_lineage_landing_within_the_settle_window() -> TestResult {
    let world = World::new(false);
    let broker = world.broker();
    world.provider.push_script(Script::Reject);
    world.expire();

    let waiting = spawn_access(&broker);
    world.clock.sleeping().await;
    let login = world.cli.login();
    world.clock.advance(Duration::from_millis(100));
    let grant = waiting.await??;

    assert_eq!(access_of(&grant), login.access);
    assert_eq!(world.provider.keyward_calls(), 1);
    assert_eq!(health(&broker).await.state, HealthState::Ok);
    Ok(())
}

/// Transient failures (connection refused, 429 with Retry-After) spend nothing and back off by
/// the injected clock: no attempt before the backoff ends, one right after.
#[tokio::test]
async fn transient_failures_back_off_per_the_injected_clock() -> TestResult {
    let world = World::new(true);
    let broker = world.broker();
    let attempts = || broker.counters().token_requests.load(Ordering::Relaxed);
    world.provider.push_script(Script::NotSent);
    world.expire();

    match access(&broker).await {
        Err(AccessError::Unavailable { retry_after, .. }) => {
            assert!(
                retry_after.is_some_and(|r| r <= Duration::from_secs(1)),
                "{retry_after:?}"
            )
        }
        other => panic!("expected a backoff, got {other:?}"),
    }
    assert!(access(&broker).await.is_err());
    assert_eq!(attempts(), 1, "retried during the backoff");
    world.clock.advance(Duration::from_secs(1));
    access(&broker).await?;
    assert_eq!(attempts(), 2);

    world.provider.push_script(Script::Refused);
    world.expire();
    match access(&broker).await {
        Err(AccessError::Unavailable { retry_after, .. }) => {
            assert!(
                retry_after.is_some_and(|r| r >= Duration::from_secs(30)),
                "{retry_after:?}"
            )
        }
        other => panic!("expected a backoff, got {other:?}"),
    }
    world.clock.advance(Duration::from_secs(29));
    assert!(access(&broker).await.is_err());
    assert_eq!(attempts(), 3, "Retry-After not honoured");
    world.clock.advance(Duration::from_secs(2));
    access(&broker).await?;
    assert_eq!(attempts(), 4);
    assert_eq!(world.provider.reuse(), vec![]);
    Ok(())
}

/// The storm: 200 requests arriving on an expired token while its refresh is in flight all wait
/// for that one refresh: one token call, 200 grants of the same new token.
#[tokio::test]
async fn refresh_storm_200_concurrent_accesses_make_one_token_call() -> TestResult {
    let world = World::new(true);
    let broker = world.broker();
    world.expire();
    world.provider.hold();

    let callers: Vec<_> = (0..200).map(|_| spawn_access(&broker)).collect();
    world.provider.call_in_flight().await;
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    world.provider.release();
    let mut served = Vec::new();
    for caller in callers {
        served.push(access_of(&caller.await??));
    }

    assert_eq!(world.provider.keyward_calls(), 1);
    served.dedup();
    let source = world.source_tokens().map(|t| t.access);
    assert_eq!(served.len(), 1, "callers got different tokens");
    assert_eq!(served.first().cloned(), source);
    Ok(())
}

/// Two keyward processes on one source, sharing a home or not: the second adopts what the first
/// refreshed, also when both reach for the same expired token at once. One token call, no reuse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_keyward_process_adopts_instead_of_spending() -> TestResult {
    for shared_home in [true, false] {
        let world = World::new(true);
        let first = world.broker();
        let second = if shared_home {
            world.broker()
        } else {
            world.broker_on(&world.new_store())
        };
        access(&first).await?;
        access(&second).await?;
        world.expire();
        let (a, b) = tokio::join!(access(&first), access(&second));
        let (a, b) = (a?, b?);

        assert_eq!(
            world.provider.keyward_calls(),
            1,
            "shared home: {shared_home}"
        );
        assert_eq!(refresh_of(&a), refresh_of(&b));
        assert_eq!(Some(refresh_of(&a)), world.source_refresh());
        assert_eq!(world.provider.reuse(), vec![]);
    }
    Ok(())
}

/// A crash after the answer was journaled but before it reached the source loses nothing: the
/// next start writes the kept answer back and spends nothing again.
#[tokio::test]
async fn crash_after_answer_before_write_back_loses_nothing() -> TestResult {
    let world = World::new(true);
    let broker = world.broker();
    world.store.crash_after(Some(StoreStep::RecordAnswer));
    world.expire();
    let old = world.source_refresh();

    assert!(matches!(access(&broker).await, Err(AccessError::Store(_))));
    assert_eq!(
        world.source_refresh(),
        old,
        "written back despite the crash"
    );
    drop(broker);
    let restarted = world.broker();
    tick(&restarted).await;

    assert_eq!(
        world.source_refresh(),
        world.provider.current(family(&world))
    );
    access(&restarted).await?;
    assert_eq!(world.provider.keyward_calls(), 1);
    assert!(world.store.kept_answers().is_empty());
    Ok(())
}

/// A crash after the intent was journaled, before anything was sent, makes the token's fate
/// unknown to keyward for good: it never sends it, and adopts the CLI's refresh of it.
#[tokio::test]
async fn crash_after_intent_never_spends_the_token_and_adopts_the_clis_refresh() -> TestResult {
    let world = World::new(true);
    let broker = world.broker();
    world.store.crash_after(Some(StoreStep::BeginSpend));
    world.expire();

    assert!(access(&broker).await.is_err());
    drop(broker);
    let restarted = world.broker();
    tick(&restarted).await;
    let (detail, _) = expect_needs_login(access(&restarted).await);
    assert!(
        detail.contains("keyward stopped before the answer arrived"),
        "{detail}"
    );
    assert_eq!(world.provider.keyward_calls(), 0);

    assert_eq!(world.cli.rotate(), CliRun::Refreshed);
    access(&restarted).await?;
    assert_eq!(world.provider.keyward_calls(), 0);
    assert_eq!(world.provider.reuse(), vec![]);
    Ok(())
}

/// A crash after the request reached the provider, before its answer was read, is an unknown
/// outcome at the next start: the token is never sent again.
#[tokio::test]
async fn crash_after_send_is_an_unknown_outcome_never_resent() -> TestResult {
    let world = World::new(true);
    let broker = world.broker();
    world.provider.push_script(Script::CrashAfterSend);
    world.expire();

    assert!(access(&broker).await.is_err());
    drop(broker);
    let restarted = world.broker();
    tick(&restarted).await;
    assert!(access(&restarted).await.is_err());
    assert!(restarted.force_refresh(&profile()).await.is_err());

    assert_eq!(world.provider.keyward_calls(), 1);
    assert_eq!(world.provider.reuse(), vec![]);
    Ok(())
}

/// A crash after the write-back but before the journal settled leaves the source right; the next
/// start settles the entry and spends nothing.
#[tokio::test]
async fn crash_after_write_back_before_settle_is_settled_at_restart() -> TestResult {
    let world = World::new(true);
    let broker = world.broker();
    world.source.push_write_fault(WriteFault::CrashAfter);
    world.expire();

    assert!(access(&broker).await.is_err());
    assert_eq!(
        world.source_refresh(),
        world.provider.current(family(&world))
    );
    drop(broker);
    let restarted = world.broker();
    tick(&restarted).await;

    assert!(restarted.store().unsettled(&profile())?.is_empty());
    access(&restarted).await?;
    assert_eq!(world.provider.keyward_calls(), 1);
    Ok(())
}

/// An old copy of the source (a backup restored) holds a token keyward spent: never spent again.
#[tokio::test]
async fn an_old_copy_of_the_source_is_never_respent() -> TestResult {
    let world = World::new(true);
    let broker = world.broker();
    let old = world.source.doc();
    world.expire();
    access(&broker).await?;
    world.source.write_unlocked(old);

    let (detail, _) = expect_needs_login(access(&broker).await);
    assert!(detail.contains("already spent"), "{detail}");
    assert_eq!(world.provider.keyward_calls(), 1);
    assert_eq!(world.provider.reuse(), vec![]);
    let spent = world
        .source_refresh()
        .map(|t| crate::secret::Fingerprint::of(&t));
    let record = spent.and_then(|t| world.store.ledger().into_iter().find(|(f, _)| *f == t));
    assert_eq!(record.map(|(_, s)| s), Some(SpendState::Spent));
    Ok(())
}

/// The scheduler refreshes once the margin before expiry is reached on the injected clock, not
/// a second earlier, and sleeps no longer than until then.
#[tokio::test]
async fn the_scheduler_refreshes_ahead_of_expiry_by_the_injected_clock() -> TestResult {
    let world = World::new(true);
    let broker = world.broker();
    let margin = world.settings.timing.margin;
    let until_due = TTL - margin;

    assert_eq!(tick(&broker).await, world.settings.tick);
    world.clock.advance(until_due - Duration::from_secs(10));
    assert_eq!(tick(&broker).await, Duration::from_secs(10));
    assert_eq!(world.provider.keyward_calls(), 0);
    world.clock.advance(Duration::from_secs(10));
    tick(&broker).await;

    assert_eq!(world.provider.keyward_calls(), 1);
    assert_eq!(
        world.source_refresh(),
        world.provider.current(family(&world))
    );
    Ok(())
}

/// The broker's health speaks the source's words: its login, its login command, its CLI.
#[tokio::test]
async fn health_and_errors_name_the_sources_login_and_commands() -> TestResult {
    let world = World::new(true);
    world.source.write_unlocked(Doc::ApiKey);
    let broker = world.broker();
    let api_key = health(&broker).await;
    assert_eq!(api_key.state, HealthState::ApiKey);
    assert!(
        api_key.detail.contains("instead of a Acme login"),
        "{api_key:?}"
    );
    assert!(
        api_key
            .detail
            .contains("run `acme login` and sign in with Acme"),
        "{api_key:?}"
    );
    assert_eq!(api_key.remedy, None, "served with the key: nothing to fix");

    world.source.write_unlocked(Doc::NoLogin);
    assert!(health(&broker)
        .await
        .detail
        .ends_with("holds no Acme login"));

    world.cli.login();
    world.expire();
    world.source.set_stuck(true);
    match access(&broker).await {
        Err(AccessError::Unavailable { detail, remedy, .. }) => {
            assert!(detail.contains("held by an acme process"), "{detail}");
            assert_eq!(
                remedy.as_deref(),
                Some("if an acme process is stuck holding its lock, stop it")
            );
        }
        other => panic!("expected the lock timeout, got {other:?}"),
    }
    Ok(())
}

/// Regression, found by the property test: a write-back that finds the file damaged keeps the
/// answer in the journal; recovery while the file was still unreadable took that for "the
/// source moved to another lineage" and erased the answer, losing the newest refresh token for
/// good. Recovery now waits until the file can be read, then writes the answer back.
#[tokio::test]
async fn an_unreadable_source_never_supersedes_the_kept_answer() -> TestResult {
    let world = World::new(true);
    let family = family(&world);
    let broker = world.broker();
    world.source.push_write_fault(WriteFault::FindsGarbage);
    world.expire();

    let grant = access(&broker).await?;
    assert_eq!(Some(refresh_of(&grant)), world.provider.current(family));
    tick(&broker).await;
    let restarted = world.broker();
    tick(&restarted).await;
    assert_eq!(
        world.store.kept_answers().len(),
        1,
        "the kept answer was dropped"
    );
    world.source.repair();
    tick(&restarted).await;

    assert_eq!(world.source_refresh(), world.provider.current(family));
    assert!(world.store.kept_answers().is_empty());
    access(&restarted).await?;
    assert_eq!(world.provider.keyward_calls(), 1);
    Ok(())
}

/// Regression, found by the property test: after a write-back failed, any change of the file
/// (here the user repairing it) dropped the new login keyward had served from memory, and the
/// next request, meeting the file's older token in the ledger, was told to log in again ("an
/// old copy of the file?") although the journal held the live login. The journal's kept answer
/// is now part of the snapshot, across restarts too: served, never spent before it is written,
/// and written at the next attempt.
#[tokio::test]
async fn a_failed_write_back_serves_the_journaled_login_instead_of_asking_to_log_in() -> TestResult
{
    let world = World::new(true);
    let family = family(&world);
    let broker = world.broker();
    world.source.push_write_fault(WriteFault::FindsGarbage);
    world.expire();
    let refreshed = refresh_of(&access(&broker).await?);

    world.source.repair();
    assert_eq!(refresh_of(&access(&broker).await?), refreshed);
    let degraded = health(&broker).await;
    assert_eq!(degraded.state, HealthState::Degraded, "{degraded:?}");
    assert!(
        degraded.detail.contains("could not write them there yet"),
        "{degraded:?}"
    );
    world.source.push_write_fault(WriteFault::Fails);
    let restarted = world.broker();
    tick(&restarted).await;
    assert_eq!(refresh_of(&access(&restarted).await?), refreshed);

    world.source.push_write_fault(WriteFault::Fails);
    world.expire();
    match access(&restarted).await {
        Err(AccessError::Unavailable { detail, .. }) => {
            assert!(
                detail.contains("could not write them there yet"),
                "{detail}"
            )
        }
        other => panic!("expected the unwritten tokens to be explained, got {other:?}"),
    }
    assert_eq!(
        world.provider.keyward_calls(),
        1,
        "spent an unwritten token"
    );

    tick(&restarted).await;
    assert_eq!(
        world.source_refresh(),
        world.provider.current(family),
        "the kept answer was not written, or the refresh after it not either"
    );
    assert_eq!(world.provider.keyward_calls(), 2);
    assert_eq!(world.provider.reuse(), vec![]);
    assert_eq!(health(&restarted).await.state, HealthState::Ok);
    Ok(())
}
