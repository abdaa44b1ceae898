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
