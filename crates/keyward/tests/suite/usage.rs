//! The usage ledger, named gateway keys with limits, and routing by headroom, through real
//! `keyward` processes against the mock: what `keyward usage`, `/metrics` and the dashboard's
//! data say after real requests; limits refusing in each dialect and holding across restarts and
//! processes on one store; and the headroom strategy against failover under scripted usage.

use serde_json::{json, Value};

use crate::support::*;

const CLAUDE_KEY: &str = "kw-claude-code-key-0123456789";
const SCRIPTS_KEY: &str = "kw-scripts-key-0123456789abc";
const UNNAMED_KEY: &str = "kw-unnamed-key-0123456789";
const AGENT_KEY: &str = "kw-agent-key-0123456789abcd";
const FREE_KEY: &str = "kw-free-key-0123456789abcdef";
/// A word only the prompts hold: it must never reach the store.
const MARKER: &str = "PROMPT-MARKER-4f1c9e";

async fn post(
    keyward: &Keyward,
    path: &str,
    key: Option<&str>,
    agent: &str,
    body: Value,
) -> Result<(u16, reqwest::header::HeaderMap, String)> {
    let mut request = reqwest::Client::new()
        .post(format!("{}{path}", keyward.url))
        .header("user-agent", agent)
        .json(&body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    Ok((status, headers, response.text().await?))
}

fn chat(text: &str) -> Value {
    json!({"model": "gpt-6.1-sol", "messages": [{"role": "user", "content": text}]})
}

async fn state(keyward: &Keyward, key: &str) -> Result<Value> {
    Ok(reqwest::Client::new()
        .get(format!("{}/dashboard/api/state", keyward.url))
        .bearer_auth(key)
        .send()
        .await?
        .json()
        .await?)
}

fn group<'a>(usage: &'a Value, name: Option<&str>) -> &'a Value {
    usage["groups"]
        .as_array()
        .and_then(|groups| groups.iter().find(|g| g["group"].as_str() == name))
        .unwrap_or(&Value::Null)
}

/// Every model request, in every dialect and from every client, is one row with its key's name,
/// its client, its tokens (read from the upstream's usage however the answer reached the
/// client), its model and profile; `keyward usage`, `/metrics` and the dashboard's data agree;
/// neither the prompt nor a key is anywhere in the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_is_recorded_by_key_and_client_and_nothing_of_its_content() -> Result<()> {
    let config = format!(
        "[gateway]\napi_keys = [\"{UNNAMED_KEY}\"]\n\n[[gateway.keys]]\nname = \"claude-code\"\nkey = \"{CLAUDE_KEY}\"\n\n[[gateway.keys]]\nname = \"scripts\"\nkey_env = \"KW_SCRIPTS_KEY\"\n"
    );
    let (mock, home, keyward) = serving_with(&config, &[("KW_SCRIPTS_KEY", SCRIPTS_KEY)]).await?;
    let responses =
        json!({"model": "gpt-6.1-sol", "input": format!("say pong {MARKER}"), "stream": true});
    let (status, _, streamed) = post(
        &keyward,
        "/v1/responses",
        Some(UNNAMED_KEY),
        "curl/8.14.1",
        responses,
    )
    .await?;
    assert_eq!(status, 200, "{streamed}");
    let (status, _, assembled) = post(
        &keyward,
        "/v1/chat/completions",
        Some(SCRIPTS_KEY),
        "OpenAI/Python 3.57.0",
        chat(MARKER),
    )
    .await?;
    assert_eq!(status, 200, "{assembled}");
    let messages = json!({"model": "claude-sonnet-4-5", "max_tokens": 64, "stream": true,
        "messages": [{"role": "user", "content": MARKER}]});
    let (status, _, body) = post(
        &keyward,
        "/v1/messages",
        Some(CLAUDE_KEY),
        "claude-cli/2.1.332 (external, cli)",
        messages,
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    // A model no one serves, named with a megabyte: answered 404, and recorded cut short.
    let unknown_model = format!("no-such-model-{}", "x".repeat(1 << 20));
    let unknown = json!({"model": unknown_model, "messages": [{"role": "user", "content": "hi"}]});
    let (status, _, _) = post(
        &keyward,
        "/v1/chat/completions",
        Some(CLAUDE_KEY),
        "claude-cli/2.1.332 (external, cli)",
        unknown,
    )
    .await?;
    assert_eq!(status, 404);
    let (status, _, _) = post(&keyward, "/v1/chat/completions", None, "", chat("hi")).await?;
    assert_eq!(status, 401);
    let mut expected = 5;
    let sdk = run_python_client(
        "openai",
        &keyward,
        &format!(
            r#"
import json, os
from openai import OpenAI
client = OpenAI(base_url=os.environ["KEYWARD_URL"] + "/v1", api_key="{SCRIPTS_KEY}")
answer = client.chat.completions.create(model="gpt-6.1-sol", messages=[{{"role": "user", "content": "{MARKER}"}}])
print(json.dumps({{"usage": answer.usage.total_tokens}}))
"#
        ),
    )?;
    if sdk.is_some() {
        expected += 1;
    }

    let mut by_key = Value::Null;
    let waited = wait_until("every request in the ledger", || {
        by_key = usage_json(&home, &mock, &["--by", "key"]).unwrap_or_default();
        let done = by_key["totals"]["requests"] == json!(expected);
        async move { done }
    })
    .await;
    assert!(waited.is_ok(), "{expected} requests expected: {by_key}");
    let named = |name| group(&by_key, name)["requests"].clone();
    assert_eq!(named(Some("key#1")), json!(1), "{by_key}");
    assert_eq!(named(Some("scripts")), json!(expected - 4), "{by_key}");
    assert_eq!(named(Some("claude-code")), json!(2), "{by_key}");
    assert_eq!(group(&by_key, Some("claude-code"))["errors"], json!(1));
    assert_eq!(
        group(&by_key, None)["errors"],
        json!(1),
        "the request without a key"
    );
    for name in ["key#1", "scripts", "claude-code"] {
        assert!(
            group(&by_key, Some(name))["input"].as_u64().unwrap_or(0) > 0
                && group(&by_key, Some(name))["output"].as_u64().unwrap_or(0) > 0,
            "{name}'s tokens: {by_key}"
        );
    }
    let window = &by_key["windows"][0];
    assert_eq!(window["profile"], "openai-codex:default", "{by_key}");
    assert!(
        window["by_key"].as_array().is_some_and(|k| !k.is_empty()),
        "{by_key}"
    );

    let by_client = usage_json(&home, &mock, &["--by", "client"])?;
    for client in ["curl", "openai-python", "claude-code", "unknown"] {
        assert!(
            !group(&by_client, Some(client)).is_null(),
            "{client}: {by_client}"
        );
    }
    let without = run_keyward(&home, &mock, &["serve", "--listen", "127.0.0.1:0"], &[])?;
    assert_eq!(without.status.code(), Some(2), "{}", text_of(&without));
    assert!(String::from_utf8_lossy(&without.stderr).contains("KW_SCRIPTS_KEY"));
    let human = run_keyward(&home, &mock, &["usage", "--by", "client"], &[])?;
    let human = String::from_utf8_lossy(&human.stdout);
    assert!(
        human.contains("openai-python") && human.contains("usage windows"),
        "{human}"
    );

    let state = state(&keyward, CLAUDE_KEY).await?;
    let rows = state["stored"]["requests"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let row = |dialect: &str, status: u16| {
        rows.iter()
            .find(|r| r["dialect"] == dialect && r["status"] == status)
            .cloned()
            .unwrap_or_default()
    };
    for dialect in ["responses", "chat", "messages"] {
        let served = row(dialect, 200);
        assert_eq!(
            served["profile"], "openai-codex:default",
            "{dialect}: {served}"
        );
        assert!(
            served["input"].as_u64().unwrap_or(0) > 0,
            "{dialect}: {served}"
        );
        assert!(
            served["total_ms"].is_u64() && served["first_byte_ms"].is_u64(),
            "{served}"
        );
    }
    // The counts are the upstream's own, exactly as the client was told them: from a stream
    // translated event by event, and from an answer assembled whole.
    let completed = streamed
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .filter_map(|data| serde_json::from_str::<Value>(data).ok())
        .find(|event| event["type"] == "response.completed")
        .unwrap_or_default();
    let told = &completed["response"]["usage"];
    let counted = row("responses", 200);
    assert!(told["input_tokens"].as_u64().is_some(), "{streamed}");
    assert_eq!(counted["input"], told["input_tokens"], "{counted} {told}");
    assert_eq!(counted["output"], told["output_tokens"], "{counted} {told}");
    let told = serde_json::from_str::<Value>(&assembled)?["usage"].clone();
    assert!(told["prompt_tokens"].as_u64().is_some(), "{assembled}");
    assert!(
        rows.iter().any(|r| r["dialect"] == "chat"
            && r["status"] == 200
            && r["input"] == told["prompt_tokens"]
            && r["output"] == told["completion_tokens"]),
        "{told} in {rows:?}"
    );
    assert_eq!(row("messages", 200)["asked"], "claude-sonnet-4-5");
    let refused = row("chat", 404)["asked"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        refused.len() <= 260 && refused.starts_with("no-such-model-x") && refused.ends_with('…'),
        "a megabyte-long model name is recorded cut short: {} bytes",
        refused.len()
    );
    assert_eq!(row("messages", 200)["served"], "gpt-6.1-sol");
    assert_eq!(state["viewer"], "claude-code");

    let metrics = reqwest::Client::new()
        .get(format!("{}/metrics", keyward.url))
        .bearer_auth(CLAUDE_KEY)
        .send()
        .await?
        .text()
        .await?;
    assert!(
        metrics
            .contains("keyward_usage_requests_total{key=\"claude-code\",client=\"claude-code\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("keyward_usage_tokens_total{key=\"key#1\",client=\"curl\",kind=\"input\"}"),
        "{metrics}"
    );

    let mut stored = Vec::new();
    for file in ["keyward.db", "keyward.db-wal"] {
        stored.extend(std::fs::read(home.keyward_home().join(file)).unwrap_or_default());
    }
    let stored = String::from_utf8_lossy(&stored);
    for secret in [MARKER, CLAUDE_KEY, SCRIPTS_KEY, UNNAMED_KEY] {
        assert!(!stored.contains(secret), "the store holds {secret}");
    }
    for text in [human.to_string(), state.to_string(), metrics, keyward.log()] {
        for secret in [MARKER, CLAUDE_KEY, SCRIPTS_KEY, UNNAMED_KEY] {
            assert!(!text.contains(secret), "{secret} leaked");
        }
    }
    Ok(())
}

fn limits_config() -> String {
    format!(
        "[[gateway.keys]]\nname = \"agent\"\nkey = \"{AGENT_KEY}\"\nrequests_per_minute = 3\n\n[[gateway.keys]]\nname = \"free\"\nkey = \"{FREE_KEY}\"\n"
    )
}

/// A key over its requests a minute is refused with 429 in its dialect, `Retry-After` and the
/// limit named, while other keys are served; the refusal is in the ledger; a second process on
/// the same store and a restarted one refuse it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keys_limit_holds_in_every_dialect_across_processes_and_restarts() -> Result<()> {
    let (mock, home, mut first) = serving_with(&limits_config(), &[]).await?;
    for _ in 0..3 {
        let (status, _, body) = post(
            &first,
            "/v1/chat/completions",
            Some(AGENT_KEY),
            "curl/8",
            chat("hi"),
        )
        .await?;
        assert_eq!(status, 200, "{body}");
    }
    let (status, headers, body) = post(
        &first,
        "/v1/chat/completions",
        Some(AGENT_KEY),
        "curl/8",
        chat("hi"),
    )
    .await?;
    assert_eq!(status, 429, "{body}");
    let retry_after: u64 = headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(
        headers.get("x-keyward-limit").and_then(|v| v.to_str().ok()),
        Some("requests_per_minute")
    );
    let error: Value = serde_json::from_str(&body)?;
    assert_eq!(error["error"]["code"], "key_limit_reached", "{error}");
    assert_eq!(error["error"]["limit"], "requests_per_minute");
    assert!(error["error"]["message"]
        .as_str()
        .unwrap_or("")
        .contains("`agent`"));
    let messages = json!({"model": "claude-sonnet-4-5", "max_tokens": 9, "messages": [{"role": "user", "content": "hi"}]});
    let (status, _, body) = post(
        &first,
        "/v1/messages",
        Some(AGENT_KEY),
        "curl/8",
        messages.clone(),
    )
    .await?;
    assert_eq!(status, 429);
    let error: Value = serde_json::from_str(&body)?;
    assert_eq!(error["type"], "error");
    assert_eq!(error["error"]["type"], "rate_limit_error", "{error}");
    assert!(error["error"]["message"]
        .as_str()
        .unwrap_or("")
        .contains("requests_per_minute"));
    let (status, _, _) = post(&first, "/v1/messages", Some(FREE_KEY), "curl/8", messages).await?;
    assert_eq!(status, 200, "another key is served");

    wait_until("the agent's requests in the ledger", || async {
        usage_json(&home, &mock, &["--by", "key"])
            .is_ok_and(|u| group(&u, Some("agent"))["requests"] == json!(5))
    })
    .await?;
    let usage = usage_json(&home, &mock, &["--by", "key"])?;
    assert_eq!(group(&usage, Some("agent"))["refused"], json!(2), "{usage}");
    let state = state(&first, AGENT_KEY).await?;
    assert_eq!(
        state["stored"]["requests"][1]["refused"], "requests_per_minute",
        "{state}"
    );

    let second = Keyward::serve(&home, &mock).await?;
    let (status, _, body) = post(
        &second,
        "/v1/chat/completions",
        Some(AGENT_KEY),
        "curl/8",
        chat("hi"),
    )
    .await?;
    assert_eq!(status, 429, "a second process on the store: {body}");
    first.kill9()?;
    let restarted = Keyward::serve(&home, &mock).await?;
    let (status, _, body) = post(
        &restarted,
        "/v1/responses",
        Some(AGENT_KEY),
        "curl/8",
        json!({"model": "gpt-6.1-sol", "input": "hi"}),
    )
    .await?;
    assert_eq!(status, 429, "after a restart: {body}");
    let (status, _, _) = post(
        &restarted,
        "/v1/chat/completions",
        Some(FREE_KEY),
        "curl/8",
        chat("hi"),
    )
    .await?;
    assert_eq!(status, 200);
    Ok(())
}

/// Tokens a day count what the upstream reported; a key's models and profiles are patterns it
/// may use, and anything else is refused (403, the limit named) before anything is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_a_day_models_and_profiles() -> Result<()> {
    let config = format!(
        "[[gateway.keys]]\nname = \"small\"\nkey = \"{AGENT_KEY}\"\ntokens_per_day = 60\n\n[[gateway.keys]]\nname = \"claude-only\"\nkey = \"{FREE_KEY}\"\nmodels = [\"claude-*\"]\n\n[[gateway.keys]]\nname = \"work-only\"\nkey = \"{CLAUDE_KEY}\"\nprofiles = [\"openai-codex:work\"]\n"
    );
    let (mock, _home, keyward) = serving_with(&config, &[]).await?;
    let mut served = 0;
    loop {
        let (status, headers, body) = post(
            &keyward,
            "/v1/chat/completions",
            Some(AGENT_KEY),
            "curl/8",
            chat("hi"),
        )
        .await?;
        if status == 429 {
            assert_eq!(
                headers.get("x-keyward-limit").and_then(|v| v.to_str().ok()),
                Some("tokens_per_day"),
                "{body}"
            );
            let wait: u64 = headers
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            assert!((1..=86_400).contains(&wait), "{wait}");
            break;
        }
        assert_eq!(status, 200, "{body}");
        served += 1;
        assert!(
            served <= 2,
            "60 tokens a day let through {served} requests of about 47"
        );
    }
    assert_eq!(
        served, 2,
        "the second request starts under the limit, ends over it"
    );

    let (status, headers, body) = post(
        &keyward,
        "/v1/chat/completions",
        Some(FREE_KEY),
        "curl/8",
        chat("hi"),
    )
    .await?;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        headers.get("x-keyward-limit").and_then(|v| v.to_str().ok()),
        Some("models")
    );
    assert!(headers.get("retry-after").is_none());
    let claude = json!({"model": "claude-haiku-4-5", "max_tokens": 9, "messages": [{"role": "user", "content": "hi"}]});
    let (status, _, _) = post(&keyward, "/v1/messages", Some(FREE_KEY), "curl/8", claude).await?;
    assert_eq!(status, 200);
    let (status, headers, body) = post(
        &keyward,
        "/v1/chat/completions",
        Some(CLAUDE_KEY),
        "curl/8",
        chat("hi"),
    )
    .await?;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        headers.get("x-keyward-limit").and_then(|v| v.to_str().ok()),
        Some("profiles")
    );
    assert_eq!(
        mock.stat("responses_ok").await?,
        3,
        "nothing refused reached the upstream"
    );
    Ok(())
}

/// A key's share of a login's usage window is that window's used share times the key's part of
/// the tokens sent through the login since it began: over `max_window_share` it is refused that
/// login until the window resets, and lets through again once other keys' use makes its part
/// smaller.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_keeps_to_its_share_of_a_logins_window() -> Result<()> {
    let config = format!(
        "[[gateway.keys]]\nname = \"agent\"\nkey = \"{AGENT_KEY}\"\nmax_window_share = 0.5\n\n[[gateway.keys]]\nname = \"free\"\nkey = \"{FREE_KEY}\"\n"
    );
    let (mock, _home, keyward) = serving_with(&config, &[]).await?;
    mock.usage_setting("acct-test", json!({"primary_used_percent": 80.0}))
        .await?;
    let (status, _, body) = post(
        &keyward,
        "/v1/chat/completions",
        Some(AGENT_KEY),
        "curl/8",
        chat("hi"),
    )
    .await?;
    assert_eq!(
        status, 200,
        "nothing of the window is the agent's yet: {body}"
    );
    let (status, headers, body) = post(
        &keyward,
        "/v1/chat/completions",
        Some(AGENT_KEY),
        "curl/8",
        chat("hi"),
    )
    .await?;
    assert_eq!(status, 429, "all 80% used since are the agent's: {body}");
    assert_eq!(
        headers.get("x-keyward-limit").and_then(|v| v.to_str().ok()),
        Some("max_window_share")
    );
    let wait: u64 = headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(
        (8_000..=9_000).contains(&wait),
        "until the primary window resets: {wait}"
    );
    for _ in 0..3 {
        let (status, _, _) = post(
            &keyward,
            "/v1/chat/completions",
            Some(FREE_KEY),
            "curl/8",
            chat("hi"),
        )
        .await?;
        assert_eq!(status, 200);
    }
    // The other key's requests count once the ledger has them (a fraction of a second).
    wait_until("a quarter of 80%, 20%, let through", || async {
        post(
            &keyward,
            "/v1/chat/completions",
            Some(AGENT_KEY),
            "curl/8",
            chat("hi"),
        )
        .await
        .is_ok_and(|(status, _, _)| status == 200)
    })
    .await?;
    Ok(())
}

/// One run of the scripted usage: two logins (acct-a at `a` percent, acct-b at `b`), each
/// request taking 1% of the serving login's 5-hour window, sent one after another under
/// `strategy` until one meets the first usage limit; the requests sent before it, and both
/// windows then.
async fn until_the_first_limit(strategy: &str, a: f64, b: f64) -> Result<(u64, f64, f64)> {
    let mock = Mock::start().await?;
    let home = Home::new()?;
    home.write_login(&mock.login_as("acct-a").await?)?;
    let work = home.other_codex_home("work")?;
    home.write_login_at(&work, &mock.login_as("acct-b").await?)?;
    for (account, used) in [("acct-a", a), ("acct-b", b)] {
        mock.usage_setting(
            account,
            json!({"primary_used_percent": used, "primary_percent_per_request": 1.0,
                "secondary_percent_per_request": 0.1, "exhausted_resets_in_seconds": 3600}),
        )
        .await?;
    }
    home.write_config(&format!(
        "[[codex.profiles]]\nname = \"work\"\nhome = \"{}\"\n\n[[routes]]\nmodel = \"*\"\nprofiles = [\"openai-codex:default\", \"openai-codex:work\"]\nstrategy = \"{strategy}\"\n",
        work.display()
    ))?;
    let keyward = Keyward::serve(&home, &mock).await?;
    let mut sent = 0;
    while mock.stat("responses_usage_limited").await? == 0 {
        let (status, _, body) = keyward.post("/v1/chat/completions", &chat("hi")).await?;
        sent += 1;
        // Served, or (both logins used up at once) the limit itself.
        anyhow::ensure!(status == 200 || status == 429, "{status}: {body}");
        anyhow::ensure!(sent < 1_000, "no limit reached");
    }
    let health = keyward.healthz().await?;
    let used = |profile: &str| {
        health["profiles"]
            .as_array()
            .and_then(|all| all.iter().find(|p| p["profile"] == profile))
            .map_or(0.0, |p| {
                p["usage"]["primary"]["used_percent"]
                    .as_f64()
                    .unwrap_or(0.0)
            })
    };
    Ok((
        sent - 1,
        used("openai-codex:default"),
        used("openai-codex:work"),
    ))
}

/// The headroom strategy drains two logins evenly and meets the first usage limit later than
/// failover: with one login at 50% and the other at 20%, failover spends the first until it is
/// used up (50 requests) while the other stays at 20%; headroom serves the one with more left,
/// then both in turn, so the first limit comes after about 130 requests with both near full.
/// (`scripts/bench headroom` prints the figures.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headroom_drains_logins_evenly_and_meets_the_first_limit_later_than_failover() -> Result<()>
{
    let (failover, f_a, f_b) = until_the_first_limit("failover", 50.0, 20.0).await?;
    let (headroom, h_a, h_b) = until_the_first_limit("headroom", 50.0, 20.0).await?;
    println!(
        "figures: first usage limit after {failover} requests with failover (windows then {f_a:.0}% and {f_b:.0}%), after {headroom} with headroom ({h_a:.0}% and {h_b:.0}%)"
    );
    assert_eq!(failover, 50, "failover spends the first login to its end");
    assert!(f_b <= 21.0, "the second login was not touched: {f_b}");
    assert!(headroom >= 125, "headroom: {headroom}");
    assert!(
        h_a >= 95.0 && h_b >= 95.0,
        "both drained together: {h_a} {h_b}"
    );
    Ok(())
}

/// Stores whose ledger an earlier schema wrote (the first: rows numbered as written, an index
/// on their time; the second: a row per request numbered by arrival) keep every request when
/// keyward opens them, packed in batches by arrival, and `keyward usage` answers from both alike,
/// for every grouping.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn older_ledgers_keep_their_rows_and_answer_alike() -> Result<()> {
    let mock = Mock::start().await?;
    let now = chrono::Utc::now();
    let mut stores = Vec::new();
    for first_schema in [false, true] {
        let home = Home::new()?;
        let created = run_keyward(&home, &mock, &["usage"], &[])?;
        anyhow::ensure!(created.status.success(), "{}", text_of(&created));
        let db = home.keyward_home().join("keyward.db");
        let seeded = seed_usage_history(&db, now)?;
        if first_schema {
            as_first_ledger_schema(&db)?;
        }
        stores.push((home, db, seeded));
    }
    // Reaching back past the history's start: the same rows whenever it runs.
    let answers = |home: &Home| -> Result<Vec<Value>> {
        let mut answers = Vec::new();
        for by in ["key", "client", "model", "profile", "hour", "day"] {
            for since in ["30d", "1000d"] {
                let mut answer = usage_json(home, &mock, &["--by", by, "--since", since])?;
                if let Some(answer) = answer.as_object_mut() {
                    answer.remove("since");
                    answer.remove("until");
                }
                answers.push(answer);
            }
        }
        Ok(answers)
    };
    let second = answers(&stores[0].0)?;
    assert_eq!(second, answers(&stores[1].0)?);
    assert_eq!(second[0]["totals"]["requests"], stores[0].2 as u64);
    for (_, db, seeded) in &stores {
        let conn = rusqlite::Connection::open(db)?;
        let (requests, first, old_tables): (i64, i64, i64) = conn.query_row(
            "SELECT SUM(requests), MIN(id) >> 20,
                (SELECT COUNT(*) FROM sqlite_master WHERE name = 'usage_requests')
             FROM usage_batches",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        assert_eq!(requests, *seeded as i64);
        assert!(
            first > now.timestamp_millis() - 8 * 86_400_000,
            "numbered by arrival: {first}"
        );
        assert_eq!(old_tables, 0, "the table of a row per request is gone");
    }
    Ok(())
}
