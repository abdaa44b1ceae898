//! What an operator sees: `/metrics` (agreeing with `/healthz`, behind the gateway keys, with no
//! secret in it) and JSON log lines, one per refresh decision.

use serde_json::{json, Value};

use crate::support::*;

const KEY: &str = "kw-observability-key-0123456789";

/// The value of one sample line of the text exposition, e.g.
/// `keyward_refresh_outcomes_total{outcome="refreshed"}`.
fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|line| line.starts_with(name) && line[name.len()..].starts_with(' '))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

/// After requests in three dialects and a refresh, `/metrics` counts them by route, status and
/// profile, its refresh counters equal `/healthz`'s, it needs the gateway key, and no token or
/// key appears in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_and_agree_with_healthz() -> Result<()> {
    let mock = Mock::start().await?;
    let home = Home::new()?;
    let login = mock.login(None).await?;
    home.write_login(&login)?;
    let keyward = Keyward::serve_with(&home, &mock, &[("KEYWARD_API_KEYS", KEY)]).await?;
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        http.post(format!("{}{path}", keyward.url))
            .bearer_auth(KEY)
            .json(&body)
            .send()
    };
    mock.response_faults(json!([{"kind": "status", "code": 401}]))
        .await?;
    assert_eq!(
        post(
            "/v1/responses",
            json!({"model": "gpt-5-codex", "input": "ping"})
        )
        .await?
        .status(),
        200
    );
    assert_eq!(
        post(
            "/v1/chat/completions",
            json!({"model": "gpt-5-codex", "messages": [{"role": "user", "content": "hi"}]})
        )
        .await?
        .status(),
        200
    );
    assert_eq!(post("/v1/messages", json!({"model": "claude-sonnet-4-5", "max_tokens": 9, "messages": [{"role": "user", "content": "hi"}]})).await?.status(), 200);
    assert_eq!(
        post("/v1/chat/completions", json!({"model": "gpt-5-codex"}))
            .await?
            .status(),
        400
    );

    let unauthenticated = http.get(format!("{}/metrics", keyward.url)).send().await?;
    assert_eq!(unauthenticated.status(), 401, "metrics are behind the keys");
    let metrics = http
        .get(format!("{}/metrics", keyward.url))
        .bearer_auth(KEY)
        .send()
        .await?
        .text()
        .await?;
    for (route, status) in [("responses", 200), ("chat", 200), ("messages", 200)] {
        let name = format!(
            "keyward_requests_total{{route=\"{route}\",dialect=\"{route}\",status=\"{status}\",profile=\"openai-codex:default\"}}"
        );
        assert_eq!(sample(&metrics, &name), Some(1.0), "{name} in\n{metrics}");
    }
    assert_eq!(
        sample(
            &metrics,
            "keyward_requests_total{route=\"chat\",dialect=\"chat\",status=\"400\",profile=\"\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
    assert!(
        metrics.contains("keyward_first_byte_seconds_bucket"),
        "{metrics}"
    );
    assert!(
        metrics.contains("keyward_upstream_seconds_count{profile=\"openai-codex:default\"}"),
        "{metrics}"
    );

    let health = http
        .get(format!("{}/healthz", keyward.url))
        .bearer_auth(KEY)
        .send()
        .await?
        .json::<Value>()
        .await?;
    let counters = &health["counters"];
    assert_eq!(counters["refreshed"], json!(1), "{health}");
    for (outcome, counter) in [
        ("refreshed", "refreshed"),
        ("adopted", "adopted"),
        ("outcome_unknown", "outcome_unknown"),
    ] {
        assert_eq!(
            sample(
                &metrics,
                &format!("keyward_refresh_outcomes_total{{outcome=\"{outcome}\"}}")
            ),
            counters[counter].as_u64().map(|n| n as f64),
            "{outcome}: /metrics and /healthz agree"
        );
    }
    assert_eq!(
        sample(
            &metrics,
            "keyward_profile_health{profile=\"openai-codex:default\",state=\"ok\"}"
        ),
        Some(1.0)
    );

    let mut known = tokens_of(&login);
    known.extend(tokens_of(&home.auth()?));
    known.push(KEY.to_string());
    assert_no_secrets(&metrics, &known, "/metrics");
    Ok(())
}

/// With `KEYWARD_LOG_FORMAT=json` every log line is one JSON object, and a refresh is one line
/// that says what was decided, with the lineage generation and fingerprints, never a token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_say_each_refresh_decision() -> Result<()> {
    let mock = Mock::start().await?;
    let home = Home::new()?;
    let login = mock.login(None).await?;
    home.write_login(&login)?;
    let keyward = Keyward::serve_with(&home, &mock, &[("KEYWARD_LOG_FORMAT", "json")]).await?;
    mock.response_faults(json!([{"kind": "status", "code": 401}]))
        .await?;
    let (status, body) = keyward.respond(false).await?;
    assert_eq!(status, 200, "{body}");
    let log = keyward.log();
    let lines: Vec<Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    let refreshed = lines
        .iter()
        .find(|l| l["fields"]["message"] == "refreshed")
        .ok_or_else(|| anyhow::anyhow!("no refresh line in {log}"))?;
    assert!(refreshed["fields"]["generation"].is_number(), "{refreshed}");
    assert!(
        refreshed["fields"]["spent"]
            .as_str()
            .is_some_and(|s| s.starts_with("fp:")),
        "{refreshed}"
    );
    assert!(
        lines.iter().any(|l| l["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("refreshing:"))),
        "{log}"
    );
    let mut known = tokens_of(&login);
    known.extend(tokens_of(&home.auth()?));
    assert_no_secrets(&log, &known, "JSON log");
    Ok(())
}
