//! The failure keyward exists to prevent: a gateway holding a lineage the CLI already rotated.

use serde_json::json;

use crate::support::*;

/// The four-step failure, as separate processes: keyward serves, the CLI rotates auth.json,
/// then keyward meets a 401 and later its own refresh. keyward adopts the CLI's lineage instead
/// of spending its stale token: zero reuse, every request served, auth.json ends on a live token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_rotation_is_adopted_never_spent_stale() -> Result<()> {
    let mock = Mock::start().await?;
    let home = Home::new()?;
    home.write_config(&timing_config("30s"))?;
    home.write_login(&mock.login(None).await?)?;
    let keyward = Keyward::serve(&home, &mock).await?;
    let (status, _) = keyward.respond(true).await?;
    assert_eq!(status, 200);

    // Step 2: the CLI refreshes and rotates auth.json behind keyward's back.
    let out = home.cli_refresh(&mock, &["--force"])?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let rotated_by_cli = home.refresh_token()?;

    // Step 3: keyward's next request must already use the CLI's lineage (the snapshot was
    // invalidated by the change), with no refresh of its own.
    let (status, body) = keyward.respond(false).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        mock.stat("token_calls").await?,
        1,
        "only the CLI's refresh reached the endpoint"
    );

    // Step 4: the CLI's token nears expiry; keyward refreshes it (the new lineage, not its old one).
    mock.ttl_queue(json!([4])).await?;
    let out = home.cli_refresh(&mock, &["--force"])?;
    assert!(out.status.success());
    let short_lived = home.refresh_token()?;
    assert_ne!(short_lived, rotated_by_cli);
    wait_until("keyward refreshes the CLI's short-lived token", || async {
        home.refresh_token()
            .map(|t| t != short_lived)
            .unwrap_or(false)
    })
    .await?;
    for _ in 0..5 {
        let (status, body) = keyward.respond(true).await?;
        assert_eq!(status, 200, "{body}");
    }
    assert!(
        mock.is_live(&home.refresh_token()?).await?,
        "auth.json ends on the live lineage"
    );
    let health = keyward.healthz().await?;
    assert_eq!(health["profiles"][0]["health"]["state"], "ok", "{health}");
    mock.assert_no_reuse().await
}

/// An old copy of auth.json reappearing (a backup restore, a sync tool) holds a refresh token
/// keyward already spent: keyward never spends it again, also after a restart, says why and what
/// to do, and serves again as soon as a valid login is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_copy_of_auth_json_is_never_respent_even_after_restart() -> Result<()> {
    let mock = Mock::start().await?;
    let home = Home::new()?;
    home.write_config(&timing_config("30s"))?;
    let login = mock.login(None).await?;
    home.write_login(&login)?;
    let mut keyward = Keyward::serve(&home, &mock).await?;

    // keyward rotates the lineage (after an upstream 401).
    mock.response_faults(json!([{"kind": "status", "code": 401}]))
        .await?;
    let (status, body) = keyward.respond(true).await?;
    assert_eq!(status, 200, "{body}");
    let current = home.auth()?;
    assert_eq!(mock.stat("token_calls").await?, 1);

    // The old file comes back, with its access token expired by now.
    let mut old = login.clone();
    old["access_token"] = mock.login(Some(-60)).await?["access_token"].clone();
    home.write_login(&old)?;
    for _ in 0..2 {
        let (status, body) = keyward.respond(false).await?;
        assert_ne!(status, 200, "{body}");
        keyward.wait_for_health("needs-login").await?;
        let health = keyward.health().await?;
        let detail = health["detail"].as_str().unwrap_or_default();
        assert!(detail.contains("already spent"), "{health}");
        assert!(
            health["remedy"]
                .as_str()
                .unwrap_or_default()
                .contains("codex login"),
            "{health}"
        );
        assert_eq!(
            mock.stat("token_calls").await?,
            1,
            "the old token was never sent again"
        );

        // The ledger is durable: a restarted keyward refuses it too.
        keyward.kill9()?;
        keyward = Keyward::serve(&home, &mock).await?;
    }

    // The current login is back: served again without a restart.
    home.write_auth_bytes(serde_json::to_string_pretty(&current)?.as_bytes())?;
    let (status, body) = keyward.respond(true).await?;
    assert_eq!(status, 200, "{body}");
    keyward.wait_for_health("ok").await?;
    mock.assert_no_reuse().await
}
