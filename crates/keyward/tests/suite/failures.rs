//! The token endpoint's failures, one class at a time: rejected tokens are never retried, lost
//! answers are never resent, transient failures back off while keyward keeps serving.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::*;

/// A config whose ahead-of-expiry refresh comes while the access token is still usable for a
/// while: with a 10 s token it refreshes 5 s before expiry and serves the old token until 1 s
/// before it.
fn ahead_config() -> String {
    format!("{}min_validity = \"1s\"\n", timing_config("12s"))
}

/// A revoked family turns the profile `needs-login` (401 with the `codex login` remedy, `keyward
/// status` exit 3), and a new login heals it without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_family_turns_needs_login_then_heals_on_new_login() -> Result<()> {
    let mock = Mock::start().await?;
    let home = Home::new()?;
    home.write_config(&timing_config("30s"))?;
    let login = mock.login(Some(-60)).await?;
    mock.revoke(&refresh_token_of(&login)).await?;
    home.write_login(&login)?;
    let keyward = Keyward::serve(&home, &mock).await?;

    let (status, body) = keyward.respond(false).await?;
    assert_eq!(status, 401, "{body}");
    let error: Value = serde_json::from_str(&body)?;
    assert_eq!(error["error"]["code"], "needs_login", "{body}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("codex login"),
        "{body}"
    );
    let health = keyward.health().await?;
    assert_eq!(health["state"], "needs-login", "{health}");

    let out = home.keyward(&mock).arg("status").output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("needs-login"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("to fix") && l.contains("codex login")),
        "{stdout}"
    );

    for _ in 0..3 {
        let (status, _) = keyward.respond(true).await?;
        assert_eq!(status, 401);
    }
    assert_eq!(
        mock.stat("token_calls").await?,
        1,
        "the revoked token was sent once, never retried"
    );

    home.write_login(&mock.login(None).await?)?;
    for _ in 0..3 {
        let (status, body) = keyward.respond(true).await?;
        assert_eq!(status, 200, "{body}");
    }
    let health = keyward.health().await?;
    assert_eq!(health["state"], "ok", "{health}");
    let stats = mock.stats().await?;
    assert_eq!(stats["reuse_events"], 0, "{stats}");
    assert_eq!(
        stats["families_revoked"], 1,
        "only the test's revocation: {stats}"
    );
    Ok(())
}

/// A refresh token someone else already spent comes back `refresh_token_reused`: keyward marks the
/// profile `needs-login` and never sends it again, whatever the requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_token_reused_is_never_retried() -> Result<()> {
    let mock = Mock::start().await?;
    let home = Home::new()?;
    home.write_config(&timing_config("30s"))?;
    let login = mock.login(Some(-60)).await?;
    home.write_login(&login)?;

    // Spend the token behind keyward's back, without touching auth.json.
    let outside = reqwest::Client::new()
        .post(mock.token_url())
        .json(&json!({
            "client_id": "app_EMoamEEZ73f0CkXaXp7hrann",
            "grant_type": "refresh_token",
            "refresh_token": refresh_token_of(&login),
        }))
        .send()
        .await?;
    assert_eq!(outside.status(), 200);

    let keyward = Keyward::serve(&home, &mock).await?;
    let (status, body) = keyward.respond(false).await?;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("needs_login"), "{body}");
    keyward.wait_for_health("needs-login").await?;
    let stats = mock.stats().await?;
    assert_eq!(
        stats["rejected"]["refresh_token_reused"], 1,
        "keyward's one spend met the reuse: {stats}"
    );
    assert_eq!(
        stats["reuse_events"], 1,
        "the test's spend made it stale: {stats}"
    );
    assert_eq!(stats["token_calls"], 2, "{stats}");
    assert!(keyward.counter("rejected").await? >= 1);

    for _ in 0..5 {
        let (status, body) = keyward.respond(true).await?;
        assert_eq!(status, 401, "{body}");
        // Give the scheduler ticks to misbehave in, too.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = home.keyward(&mock).arg("token").output()?;
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        mock.stat("token_calls").await?,
        2,
        "the rejected token was never sent again"
    );
    assert_eq!(mock.stat("reuse_events").await?, 1);
    assert_eq!(keyward.profile_health().await?, "needs-login");
    Ok(())
}

/// An answer lost after the server issued it (the token is spent) is an unknown outcome: keyward
/// never resends that token, serves the current access token while it lasts (`degraded`), says
/// `needs-login` after, and heals when a new login lands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_answer_is_an_unknown_outcome_never_resent() -> Result<()> {
    let mock = Mock::start().await?;
    let home = Home::new()?;
    home.write_config(&ahead_config())?;
    mock.token_faults(json!([{"kind": "drop_after_issue"}]))
        .await?;
    let login = mock.login(Some(16)).await?;
    home.write_login(&login)?;
    let keyward = Keyward::serve(&home, &mock).await?;

    wait_until("the ahead-of-expiry refresh loses its answer", || async {
        keyward
            .counter("outcome_unknown")
            .await
            .is_ok_and(|n| n == 1)
    })
    .await?;
    assert!(
        !mock.is_live(&refresh_token_of(&login)).await?,
        "the server spent the token"
    );
    assert_eq!(
        home.refresh_token()?,
        refresh_token_of(&login),
        "nothing to write back"
    );
    // The access token is still valid for a few seconds: keep serving it.
    for _ in 0..3 {
        let (status, body) = keyward.respond(false).await?;
        assert_eq!(status, 200, "{body}");
    }
    let health = keyward.health().await?;
    assert_eq!(health["state"], "degraded", "{health}");
    assert!(
        health["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("no answer"),
        "{health}"
    );

    // Once the access token expires, keyward still never resends the token.
    keyward.wait_for_health("needs-login").await?;
    for _ in 0..3 {
        let (status, body) = keyward.respond(true).await?;
        assert_eq!(status, 401, "{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let health = keyward.health().await?;
    assert!(
        health["remedy"]
            .as_str()
            .unwrap_or_default()
            .contains("codex login"),
        "{health}"
    );
    assert_eq!(mock.stat("token_calls").await?, 1, "never resent");

    home.write_login(&mock.login(None).await?)?;
    let (status, body) = keyward.respond(true).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(keyward.profile_health().await?, "ok");
    assert_eq!(mock.stat("token_calls").await?, 1);
    mock.assert_no_reuse().await
}

/// Transient failures of the token endpoint (429 with Retry-After) do not spend the token: keyward
/// keeps serving the valid access token, backs off, and refreshes once the endpoint recovers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_back_off_and_keep_serving() -> Result<()> {
    let mock = Mock::start().await?;
    let home = Home::new()?;
    home.write_config(&ahead_config())?;
    mock.token_faults(json!([
        {"kind": "status", "code": 429, "consume": false},
        {"kind": "status", "code": 429, "consume": false},
    ]))
    .await?;
    let login = mock.login(Some(16)).await?;
    mock.ttl_queue(json!([3600])).await?;
    home.write_login(&login)?;
    let keyward = Keyward::serve(&home, &mock).await?;

    wait_until("the ahead-of-expiry refresh meets a 429", || async {
        keyward
            .counter("transient_failures")
            .await
            .is_ok_and(|n| n >= 1)
    })
    .await?;
    for _ in 0..3 {
        let (status, body) = keyward.respond(true).await?;
        assert_eq!(status, 200, "{body}");
    }
    assert!(
        mock.is_live(&refresh_token_of(&login)).await?,
        "a 429 does not spend the token"
    );

    wait_until("the refresh succeeds once the faults are gone", || async {
        mock.stat("refresh_ok").await.is_ok_and(|n| n >= 1)
    })
    .await?;
    wait_until("the new lineage lands in auth.json", || async {
        home.refresh_token()
            .is_ok_and(|t| t != refresh_token_of(&login))
    })
    .await?;
    assert!(mock.is_live(&home.refresh_token()?).await?);
    assert_eq!(
        mock.stat("token_calls").await?,
        3,
        "two refused attempts, then one spend"
    );
    for _ in 0..3 {
        let (status, body) = keyward.respond(false).await?;
        assert_eq!(status, 200, "{body}");
    }
    assert!(keyward.counter("transient_failures").await? >= 2);
    assert_eq!(keyward.profile_health().await?, "ok");
    mock.assert_no_reuse().await
}

/// The caller whose own refresh met the rejection is told `needs-login` with the `codex login`
/// remedy (exit 3), as every later caller is; not "expired, refreshes on the next request".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejection_met_by_the_callers_own_refresh_says_needs_login() -> Result<()> {
    let mock = Mock::start().await?;
    let home = Home::new()?;
    home.write_config(&timing_config("30s"))?;
    let login = mock.login(Some(-60)).await?;
    mock.revoke(&refresh_token_of(&login)).await?;
    home.write_login(&login)?;

    // `keyward token` has no scheduler and no file watcher: its own refresh meets the rejection.
    for attempt in ["the spending call", "a later call"] {
        let out = home.keyward(&mock).arg("token").output()?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{attempt}: {stderr}");
        assert!(stderr.contains("needs a new login"), "{attempt}: {stderr}");
        assert!(stderr.contains("codex login"), "{attempt}: {stderr}");
        assert!(out.stdout.is_empty(), "{attempt}: no token printed");
    }
    assert_eq!(
        mock.stat("token_calls").await?,
        1,
        "spent once, never retried"
    );
    assert_eq!(mock.stat("reuse_events").await?, 0);
    Ok(())
}
