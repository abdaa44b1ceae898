//! No token ever reaches keyward's logs, its command output or its HTTP error bodies, whatever path
//! a refresh takes.

use std::process::Output;

use serde_json::{json, Value};

use crate::support::*;

/// Everything a user (or a log collector) could see, with where it came from.
#[derive(Default)]
struct Exposed {
    texts: Vec<(String, String)>,
    known: Vec<String>,
}

impl Exposed {
    fn text(&mut self, context: impl Into<String>, text: impl Into<String>) {
        self.texts.push((context.into(), text.into()));
    }

    fn output(&mut self, context: &str, out: &Output, stdout_is_secret: bool) {
        if !stdout_is_secret {
            self.text(
                format!("{context} stdout"),
                String::from_utf8_lossy(&out.stdout),
            );
        }
        self.text(
            format!("{context} stderr"),
            String::from_utf8_lossy(&out.stderr),
        );
    }

    fn tokens(&mut self, value: &Value) {
        self.known.extend(tokens_of(value));
    }

    /// Every token auth.json holds now, and its raw text (for the malformed case).
    fn snapshot(&mut self, home: &Home) {
        if let Ok(auth) = home.auth() {
            self.tokens(&auth);
        }
    }

    async fn health(&mut self, keyward: &Keyward, context: &str) -> Result<Value> {
        let health = keyward.healthz().await?;
        self.text(format!("/healthz {context}"), health.to_string());
        Ok(health)
    }

    async fn request(&mut self, keyward: &Keyward, context: &str) -> Result<u16> {
        let (status, body) = keyward.respond(false).await?;
        if status != 200 {
            self.text(format!("HTTP {status} body {context}"), body);
        }
        Ok(status)
    }
}

fn run(home: &Home, mock: &Mock, args: &[&str]) -> Result<Output> {
    Ok(home.keyward(mock).args(args).output()?)
}

/// Refresh success, a 401 retry, a lost answer, a rejected token, a malformed auth.json, every
/// command and error body: none carries a token, with keyward logging at debug level.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_reaches_logs_errors_or_status() -> Result<()> {
    let mock = Mock::start().await?;
    let home = Home::new()?;
    home.write_config(&timing_config("30s"))?;
    let mut seen = Exposed::default();

    // 1. A refresh that succeeds: an expired login keyward refreshes right away.
    let first = mock.login(Some(-60)).await?;
    seen.tokens(&first);
    mock.ttl_queue(json!([3600, 3600])).await?;
    home.write_login(&first)?;
    let keyward = Keyward::serve(&home, &mock).await?;
    assert_eq!(
        seen.request(&keyward, "after the first refresh").await?,
        200
    );
    wait_until("the first refresh lands", || async {
        mock.stat("refresh_ok").await.is_ok_and(|n| n >= 1)
    })
    .await?;
    seen.snapshot(&home);

    // 2. An upstream 401: keyward refreshes and retries.
    mock.response_faults(json!([{"kind": "status", "code": 401}]))
        .await?;
    assert_eq!(seen.request(&keyward, "after a 401").await?, 200);
    assert_eq!(mock.stat("refresh_ok").await?, 2);
    seen.snapshot(&home);

    // 3. The commands on a healthy profile; `keyward token`'s stdout is the token by design.
    let out = run(&home, &mock, &["token"])?;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        home.auth()?["tokens"]["access_token"]
            .as_str()
            .unwrap_or_default()
    );
    seen.output("token (ok)", &out, true);
    seen.output("status (ok)", &run(&home, &mock, &["status"])?, false);
    seen.output(
        "status --json (ok)",
        &run(&home, &mock, &["status", "--json"])?,
        false,
    );
    seen.health(&keyward, "ok").await?;

    // 4. A lost answer: an expired login whose refresh is issued but never delivered.
    let lost = mock.login(Some(-60)).await?;
    seen.tokens(&lost);
    mock.token_faults(json!([{"kind": "drop_after_issue"}]))
        .await?;
    home.write_login(&lost)?;
    wait_until("the refresh's outcome is unknown", || async {
        keyward
            .counter("outcome_unknown")
            .await
            .is_ok_and(|n| n >= 1)
    })
    .await?;
    assert_eq!(seen.request(&keyward, "outcome unknown").await?, 401);
    let out = run(&home, &mock, &["token"])?;
    assert_eq!(out.status.code(), Some(3), "needs-login");
    seen.output("token (unknown outcome)", &out, false);
    seen.output(
        "status (unknown outcome)",
        &run(&home, &mock, &["status"])?,
        false,
    );
    seen.health(&keyward, "unknown outcome").await?;

    // 5. A rejected token: a revoked family.
    let revoked = mock.login(Some(-60)).await?;
    seen.tokens(&revoked);
    mock.revoke(revoked["refresh_token"].as_str().unwrap_or_default())
        .await?;
    home.write_login(&revoked)?;
    wait_until("the revoked login turns needs-login", || async {
        keyward.counter("rejected").await.is_ok_and(|n| n >= 1)
            && keyward
                .profile_health()
                .await
                .is_ok_and(|s| s == "needs-login")
    })
    .await?;
    assert_eq!(seen.request(&keyward, "rejected").await?, 401);
    let out = run(&home, &mock, &["token", "--refresh"])?;
    assert_eq!(out.status.code(), Some(3));
    seen.output("token --refresh (rejected)", &out, false);
    seen.output(
        "status --json (rejected)",
        &run(&home, &mock, &["status", "--json"])?,
        false,
    );
    seen.health(&keyward, "rejected").await?;

    // 6. A malformed auth.json that contains a token: cut off inside the refresh token.
    let next = mock.login(None).await?;
    seen.tokens(&next);
    let document = serde_json::to_string_pretty(&json!({
        "OPENAI_API_KEY": null,
        "tokens": {
            "id_token": next["id_token"],
            "access_token": next["access_token"],
            "refresh_token": next["refresh_token"],
            "account_id": next["account_id"],
        },
    }))?;
    let cut = document
        .find("rt_")
        .map_or(document.len() / 2, |at| at + 30);
    home.write_auth_bytes(&document.as_bytes()[..cut])?;
    wait_until("keyward sees the unreadable file", || async {
        keyward
            .healthz()
            .await
            .is_ok_and(|h| h["profiles"][0]["source_kind"] == "unreadable")
    })
    .await?;
    assert_ne!(seen.request(&keyward, "malformed").await?, 200);
    for args in [&["status"][..], &["status", "--json"], &["token"]] {
        let out = run(&home, &mock, args)?;
        assert_ne!(out.status.code(), Some(0), "{args:?} on a malformed file");
        seen.output(&format!("{} (malformed)", args.join(" ")), &out, false);
    }
    seen.health(&keyward, "malformed").await?;

    // 7. The login repaired: serving again.
    home.write_login(&next)?;
    assert_eq!(seen.request(&keyward, "repaired").await?, 200);
    seen.snapshot(&home);
    seen.health(&keyward, "repaired").await?;

    seen.text("keyward serve log", keyward.log());
    drop(keyward);
    assert!(
        seen.known.len() >= 12,
        "{} tokens collected",
        seen.known.len()
    );
    for (context, text) in &seen.texts {
        assert_no_secrets(text, &seen.known, context);
    }
    mock.stats().await.map(drop)
}
