//! Crashes and kill -9 in the middle of a refresh: the journal finishes what was kept, never
//! re-spends what may have left, and the lineage is never reused.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::*;

/// A `/v1/responses` request on its own connection, so the caller can crash or kill keyward while
/// it is in flight.
fn spawn_request(url: &str) -> tokio::task::JoinHandle<Result<(u16, String)>> {
    let url = format!("{url}/v1/responses");
    tokio::spawn(async move {
        let response = reqwest::Client::new()
            .post(url)
            .json(&json!({"model": "gpt-5-codex", "input": "ping", "stream": false}))
            .send()
            .await?;
        let status = response.status().as_u16();
        Ok((status, response.text().await?))
    })
}

fn profile(health: &Value) -> &Value {
    &health["profiles"][0]
}

/// Starts keyward with `crash_at`, then gives it an expired login: the refresh it starts (from the
/// scheduler or the request) aborts the process at that point. The login is written only once
/// keyward listens, so the crash cannot race the harness's start-up check.
async fn crash_during_refresh(
    home: &Home,
    mock: &Mock,
    login: &Value,
    crash_at: &str,
) -> Result<()> {
    let mut crashing = Keyward::serve_with(home, mock, &[("KEYWARD_CRASH_AT", crash_at)]).await?;
    home.write_login(login)?;
    let request = spawn_request(&crashing.url);
    let exit = tokio::time::timeout(PATIENCE, crashing.wait_exit()).await??;
    assert!(!exit.success(), "keyward was meant to abort: {exit}");
    let log = crashing.log();
    assert!(
        log.contains(&format!("KEYWARD_CRASH_AT={crash_at}")),
        "keyward exited without reaching {crash_at}: {log}"
    );
    let answered = request.await?;
    assert!(
        !matches!(answered, Ok((200, _))),
        "the request cannot have been served by a process that crashed mid-refresh: {answered:?}"
    );
    Ok(())
}

/// A crash after the token answer was journaled but before it reached auth.json loses nothing: the
/// restarted keyward writes the kept answer back and spends nothing again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_answer_before_write_back_loses_nothing() -> Result<()> {
    let mock = Mock::start().await?;
    let home = Home::new()?;
    home.write_config(&timing_config("30s"))?;
    let login = mock.login(Some(-60)).await?;
    mock.ttl_queue(json!([3600])).await?;
    let old = login["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();

    crash_during_refresh(&home, &mock, &login, "after-answer").await?;
    assert_eq!(mock.stat("token_calls").await?, 1);
    assert!(
        !mock.is_live(&old).await?,
        "the crashed refresh spent the old token"
    );
    assert_eq!(
        home.refresh_token()?,
        old,
        "the crash came before the write-back: auth.json still holds the spent token"
    );

    let keyward = Keyward::serve(&home, &mock).await?;
    wait_until("journal recovery writes the kept answer back", || async {
        home.refresh_token().is_ok_and(|t| t != old)
    })
    .await?;
    let recovered = home.refresh_token()?;
    assert!(
        mock.is_live(&recovered).await?,
        "auth.json holds the answer the crashed process was given"
    );
    for _ in 0..3 {
        let (status, body) = keyward.respond(false).await?;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(
        mock.stat("token_calls").await?,
        1,
        "nothing was spent again after the restart"
    );
    assert!(keyward.counter("journal_recovered").await? >= 1);
    let health = keyward.healthz().await?;
    assert_eq!(profile(&health)["health"]["state"], "ok", "{health}");
    mock.assert_no_reuse().await
}

/// A crash after the write-back but before the journal settled leaves auth.json right; the restart
/// settles the entry and spends nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_write_back_before_settle_is_settled_at_restart() -> Result<()> {
    let mock = Mock::start().await?;
    let home = Home::new()?;
    home.write_config(&timing_config("30s"))?;
    let login = mock.login(Some(-60)).await?;
    mock.ttl_queue(json!([3600])).await?;
    let old = login["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();

    crash_during_refresh(&home, &mock, &login, "after-write-back").await?;
    assert_eq!(mock.stat("token_calls").await?, 1);
    let written = home.refresh_token()?;
    assert_ne!(written, old, "the write-back happened before the crash");
    assert!(mock.is_live(&written).await?);

    let keyward = Keyward::serve(&home, &mock).await?;
    wait_until("the restart settles the journal entry", || async {
        keyward
            .counter("journal_recovered")
            .await
            .is_ok_and(|n| n >= 1)
    })
    .await?;
    for _ in 0..3 {
        let (status, body) = keyward.respond(true).await?;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(home.refresh_token()?, written, "auth.json was left alone");
    assert_eq!(mock.stat("token_calls").await?, 1, "no new spend");
    let health = keyward.healthz().await?;
    assert_eq!(profile(&health)["health"]["state"], "ok", "{health}");
    mock.assert_no_reuse().await
}

/// A crash after the intent was journaled (the request may have left) makes the token's outcome
/// unknown for good: the restart never spends it, says `needs-login` with the `codex login`
/// remedy, and adopts the CLI's refresh without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_intent_never_respends_the_token() -> Result<()> {
    let mock = Mock::start().await?;
    let home = Home::new()?;
    home.write_config(&timing_config("30s"))?;
    let login = mock.login(Some(-60)).await?;
    mock.ttl_queue(json!([3600])).await?;

    crash_during_refresh(&home, &mock, &login, "after-intent").await?;
    assert_eq!(
        mock.stat("token_calls").await?,
        0,
        "the crash point is before the send"
    );

    let keyward = Keyward::serve(&home, &mock).await?;
    wait_until("the restart marks the cut-off refresh unknown", || async {
        keyward
            .profile_health()
            .await
            .is_ok_and(|s| s == "needs-login")
    })
    .await?;
    let health = keyward.healthz().await?;
    let state = &profile(&health)["health"];
    assert!(
        state["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("no answer"),
        "{health}"
    );
    assert!(
        state["remedy"]
            .as_str()
            .unwrap_or_default()
            .contains("codex login"),
        "{health}"
    );
    let (status, body) = keyward.respond(false).await?;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("needs_login"), "{body}");
    assert_eq!(
        mock.stat("token_calls").await?,
        0,
        "keyward never sends a token whose outcome is unknown"
    );

    // The remedy works: the token was never sent, so the CLI can spend it, and keyward adopts.
    let out = home.cli_refresh(&mock, &["--force"])?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("refreshed"), "{stdout}");
    for _ in 0..3 {
        let (status, body) = keyward.respond(true).await?;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(keyward.profile_health().await?, "ok");
    assert_eq!(mock.stat("token_calls").await?, 1, "only the CLI spent");
    assert!(mock.is_live(&home.refresh_token()?).await?);
    mock.assert_no_reuse().await
}

/// kill -9 at random moments of refreshes (slowed down by a random delay at the token endpoint)
/// never leads to a reused token: after a restart, the lineage either continues or keyward explains
/// the unknown outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_moments_of_refreshes_never_reuses() -> Result<()> {
    let (mut continued, mut unknown) = (0, 0);
    for iteration in 0..8 {
        let mock = Mock::start().await?;
        let home = Home::new()?;
        home.write_config(&timing_config("30s"))?;
        // Odd iterations: an expired access token (request or scheduler refreshes); even ones: a
        // valid token the upstream answers 401 to.
        let expired = iteration % 2 == 1;
        let login = mock.login(Some(if expired { -60 } else { 3600 })).await?;
        mock.ttl_queue(json!([3600, 3600])).await?;
        let delay = rand::random_range(100..=400);
        mock.token_faults(json!([{"kind": "delay", "ms": delay}]))
            .await?;
        if !expired {
            mock.response_faults(json!([{"kind": "status", "code": 401}]))
                .await?;
        }

        let mut keyward = Keyward::serve(&home, &mock).await?;
        home.write_login(&login)?;
        let request = spawn_request(&keyward.url);
        let kill_after = rand::random_range(0..=500);
        tokio::time::sleep(Duration::from_millis(kill_after)).await;
        keyward.kill9()?;
        let _ = request.await?;

        let keyward = Keyward::serve(&home, &mock).await?;
        wait_until("the restarted keyward settles", || async {
            matches!(settle_state(&keyward, &home, &mock).await, Ok(Some(_)))
        })
        .await?;
        let outcome = settle_state(&keyward, &home, &mock)
            .await?
            .ok_or_else(|| anyhow::anyhow!("iteration {iteration}: unsettled again"))?;
        let (status, body) = keyward.respond(false).await?;
        let expect = if outcome.state == "needs-login" {
            401
        } else {
            200
        };
        assert_eq!(status, expect, "iteration {iteration}: {outcome:?}: {body}");
        mock.assert_no_reuse().await?;
        if outcome.live_lineage {
            continued += 1;
        } else {
            unknown += 1;
        }
        println!(
            "iteration {iteration}: {} trigger, token delay {delay} ms, kill after {kill_after} ms: {}",
            if expired { "expired" } else { "401" },
            if outcome.live_lineage {
                "lineage continued".to_string()
            } else {
                format!("outcome unknown, {}: {}", outcome.state, outcome.detail)
            }
        );
    }
    println!("tally: {continued} continued, {unknown} ended in an explained unknown outcome");
    Ok(())
}

#[derive(Debug)]
struct Settled {
    live_lineage: bool,
    state: String,
    detail: String,
}

/// `Some` once keyward has finished with the killed refresh: auth.json holds the live lineage and
/// the profile is ok, or keyward reports the unknown outcome that explains why it stopped.
async fn settle_state(keyward: &Keyward, home: &Home, mock: &Mock) -> Result<Option<Settled>> {
    let health = keyward.healthz().await?;
    let state = profile(&health)["health"]["state"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let detail = profile(&health)["health"]["detail"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if detail.contains("in flight") {
        return Ok(None);
    }
    let live = mock.is_live(&home.refresh_token()?).await?;
    let explained =
        matches!(state.as_str(), "degraded" | "needs-login") && detail.contains("no answer");
    Ok(if live && state == "ok" {
        Some(Settled {
            live_lineage: true,
            state,
            detail,
        })
    } else if explained {
        Some(Settled {
            live_lineage: false,
            state,
            detail,
        })
    } else {
        None
    })
}
