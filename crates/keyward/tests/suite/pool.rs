//! The pool against the mock: two Codex logins (two ChatGPT accounts) and an OpenAI API key;
//! usage limits move traffic along and heal by themselves; routes and a Codex `auth.json` in
//! API-key mode.

use serde_json::{json, Value};

use crate::support::*;

const BACKUP_KEY: &str = "sk-mock-backup-0123456789";

/// Two logins (`openai-codex:default` on account acct-a, `openai-codex:work` on acct-b) and the
/// API key `openai:default`, in that order.
async fn two_logins_and_a_key(mock: &Mock, home: &Home, config: &str) -> Result<Keyward> {
    home.write_login(&mock.login_as("acct-a").await?)?;
    let work = home.other_codex_home("work")?;
    home.write_login_at(&work, &mock.login_as("acct-b").await?)?;
    home.write_config(&format!(
        "[[codex.profiles]]\nname = \"work\"\nhome = \"{}\"\n{config}",
        work.display()
    ))?;
    let base = mock.openai_base_url();
    Keyward::serve_with(
        home,
        mock,
        &[
            ("OPENAI_API_KEY", BACKUP_KEY),
            ("KEYWARD_OPENAI_BASE_URL", &base),
        ],
    )
    .await
}

fn chat(text: &str) -> Value {
    json!({"model": "gpt-6.1-sol", "messages": [{"role": "user", "content": text}]})
}

fn status_json(home: &Home, mock: &Mock) -> Result<Value> {
    let out = home.keyward(mock).args(["status", "--json"]).output()?;
    Ok(serde_json::from_slice(&out.stdout)?)
}

fn profile<'a>(status: &'a Value, id: &str) -> &'a Value {
    status
        .as_array()
        .and_then(|all| all.iter().find(|p| p["profile"] == id))
        .unwrap_or(&Value::Null)
}

/// A usage limit on the first login moves traffic to the second with no failed request; another
/// process's `status` shows the cooldown; the first login serves again after its reset without a
/// restart; with every profile limited, the caller gets 429 with `Retry-After` naming them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_usage_limit_moves_traffic_to_the_next_login_and_heals() -> Result<()> {
    let mock = Mock::start().await?;
    let home = Home::new()?;
    let keyward = two_logins_and_a_key(&mock, &home, "").await?;

    let (status, served_by, body) = keyward.post("/v1/chat/completions", &chat("ping")).await?;
    assert_eq!(
        (status, served_by.as_str()),
        (200, "openai-codex:default"),
        "{body}"
    );

    mock.usage_limit("acct-a", 4).await?;
    for _ in 0..5 {
        let (status, served_by, body) = keyward.post("/v1/chat/completions", &chat("ping")).await?;
        assert_eq!(
            (status, served_by.as_str()),
            (200, "openai-codex:work"),
            "{body}"
        );
    }
    let status = status_json(&home, &mock)?;
    let cooling = &profile(&status, "openai-codex:default")["cooldown"];
    assert!(cooling["until"].is_string(), "{status}");
    assert!(
        cooling["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("usage limit"),
        "{status}"
    );
    assert!(profile(&status, "openai-codex:work")["cooldown"].is_null());

    wait_until("the first login serving again after its reset", || async {
        matches!(
            keyward.post("/v1/chat/completions", &chat("ping")).await,
            Ok((200, profile, _)) if profile == "openai-codex:default"
        )
    })
    .await?;

    mock.usage_limit("acct-a", 3600).await?;
    mock.usage_limit("acct-b", 3600).await?;
    mock.api_key_limit(BACKUP_KEY, 1800).await?;
    let response = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", keyward.url))
        .json(&chat("ping"))
        .send()
        .await?;
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(
        (1..=1800).contains(&retry_after),
        "the earliest reset: {retry_after}"
    );
    let body: Value = response.json().await?;
    let message = body["error"]["message"].as_str().unwrap_or_default();
    for id in [
        "openai-codex:default",
        "openai-codex:work",
        "openai:default",
    ] {
        assert!(message.contains(id), "{message}");
    }
    assert_eq!(body["error"]["code"], "usage_limit_reached", "{body}");
    assert!(
        !keyward.log().contains(BACKUP_KEY),
        "the API key reached the log"
    );
    mock.assert_no_reuse().await
}

/// A route sends a model to the profiles it names, in its order; round robin alternates them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_pick_and_order_profiles() -> Result<()> {
    let mock = Mock::start().await?;
    let home = Home::new()?;
    let keyward = two_logins_and_a_key(
        &mock,
        &home,
        "[[routes]]\nmodel = \"gpt-6.1-*\"\nprofiles = [\"openai:default\", \"openai-codex:work\"]\n[[routes]]\nmodel = \"gpt-6-luna\"\nprofiles = [\"openai-codex:default\", \"openai-codex:work\"]\nstrategy = \"round-robin\"\n",
    )
    .await?;
    let (status, served_by, body) = keyward.post("/v1/chat/completions", &chat("ping")).await?;
    assert_eq!(
        (status, served_by.as_str()),
        (200, "openai:default"),
        "{body}"
    );
    let luna = json!({"model": "gpt-6-luna", "messages": [{"role": "user", "content": "ping"}]});
    let mut seen = Vec::new();
    for _ in 0..4 {
        let (status, served_by, body) = keyward.post("/v1/chat/completions", &luna).await?;
        assert_eq!(status, 200, "{body}");
        seen.push(served_by);
    }
    assert_eq!(
        seen,
        [
            "openai-codex:default",
            "openai-codex:work",
            "openai-codex:default",
            "openai-codex:work"
        ]
    );
    Ok(())
}

/// A Codex `auth.json` in API-key mode serves through the public OpenAI API with its key, which
/// never reaches keyward's log, status or answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_auth_json_serves_through_the_openai_api() -> Result<()> {
    let mock = Mock::start().await?;
    let home = Home::new()?;
    let key = "sk-mock-from-auth-json-0123456789";
    let bytes = serde_json::to_vec_pretty(&json!({"OPENAI_API_KEY": key, "tokens": null}))?;
    home.write_auth_bytes(&bytes)?;
    let base = mock.openai_base_url();
    let keyward = Keyward::serve_with(&home, &mock, &[("KEYWARD_OPENAI_BASE_URL", &base)]).await?;
    let (status, served_by, body) = keyward.post("/v1/chat/completions", &chat("ping")).await?;
    assert_eq!(
        (status, served_by.as_str()),
        (200, "openai-codex:default"),
        "{body}"
    );
    let (status, _, body) = keyward
        .post(
            "/v1/responses",
            &json!({"model": "gpt-6.1-sol", "input": "ping"}),
        )
        .await?;
    assert_eq!(status, 200, "{body}");
    let health = keyward.health().await?;
    assert_eq!(health["state"], "api-key", "{health}");
    let mut seen = keyward.log();
    seen.push_str(&health.to_string());
    let out = home.keyward(&mock).args(["status"]).output()?;
    seen.push_str(&String::from_utf8_lossy(&out.stdout));
    assert!(!seen.contains(key), "the API key leaked");
    assert_eq!(mock.stat("openai_ok").await?, 2);
    assert_eq!(
        std::fs::read(home.auth_path())?,
        bytes,
        "the file is untouched"
    );
    Ok(())
}
