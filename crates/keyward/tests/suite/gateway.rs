//! The gateway's endpoints as a client meets them.

use serde_json::{json, Value};

use crate::support::*;

/// Reads a streamed answer until `first` has arrived while the upstream is held after its first
/// event, checks `last` has not (nothing is buffered before the first byte), then releases the
/// upstream and reads the rest.
async fn streams_first_event_early(
    keyward: &Keyward,
    mock: &Mock,
    path: &str,
    body: Value,
    key: &str,
    (first, last): (&str, &str),
) -> Result<String> {
    let mut response = reqwest::Client::new()
        .post(format!("{}{path}", keyward.url))
        .json(&body)
        .send()
        .await?;
    assert_eq!(response.status(), 200, "{path}");
    let mut seen = String::new();
    while !seen.contains(first) {
        let chunk = response
            .chunk()
            .await?
            .ok_or_else(|| anyhow::anyhow!("{path}: the stream ended before {first}: {seen}"))?;
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        !seen.contains(last),
        "{path}: the upstream has not sent its end yet: {seen}"
    );
    mock.release(key).await?;
    while let Some(chunk) = response.chunk().await? {
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains(last), "{path}: {seen}");
    Ok(seen)
}

/// A streamed answer arrives event by event in every dialect: its first frame before the
/// upstream sends the rest (the mock holds its stream after `response.created`); and
/// `stream: false` gets the assembled response object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_without_buffering_and_assembles_non_streamed() -> Result<()> {
    let (mock, _home, keyward) = serving().await?;

    let responses = json!({"model": "gpt-5-codex", "input": "ping [[hold:r]]", "stream": true});
    streams_first_event_early(
        &keyward,
        &mock,
        "/v1/responses",
        responses,
        "r",
        ("response.created", "response.completed"),
    )
    .await?;
    let chat = json!({"model": "gpt-5-codex", "messages": [{"role": "user", "content": "ping [[hold:c]]"}], "stream": true});
    let seen = streams_first_event_early(
        &keyward,
        &mock,
        "/v1/chat/completions",
        chat,
        "c",
        ("\"role\":\"assistant\"", "[DONE]"),
    )
    .await?;
    assert!(seen.contains("\"finish_reason\":\"stop\""), "{seen}");
    let messages = json!({"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": "ping [[hold:m]]"}], "stream": true});
    let seen = streams_first_event_early(
        &keyward,
        &mock,
        "/v1/messages",
        messages,
        "m",
        ("message_start", "message_stop"),
    )
    .await?;
    assert!(seen.contains("\"stop_reason\":\"end_turn\""), "{seen}");

    let (status, body) = keyward.respond(false).await?;
    assert_eq!(status, 200, "{body}");
    let object: Value = serde_json::from_str(&body)?;
    assert_eq!(object["status"], "completed");
    assert_eq!(object["output"][0]["content"][0]["text"], "pong");

    let (status, body) = keyward
        .respond_with(json!({"model": "gpt-5-codex", "input": "x"}), &[])
        .await?;
    assert_eq!(status, 200, "stream defaults to false: {body}");
    assert!(serde_json::from_str::<Value>(&body)?["output"].is_array());
    mock.assert_no_reuse().await
}

/// Malformed requests get a clear 400 in the OpenAI error shape; an unknown profile is named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_errors() -> Result<()> {
    let (_mock, _home, keyward) = serving().await?;
    let client = reqwest::Client::new();
    let response = client
        .post(format!("{}/v1/responses", keyward.url))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await?;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await?;
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .contains("not valid JSON"));

    let (status, body) = keyward
        .respond_with(
            json!({"model": "gpt-5-codex", "input": "x", "stream": "yes"}),
            &[],
        )
        .await?;
    assert_eq!(status, 400, "{body}");

    let (status, body) = keyward
        .respond_with(
            json!({"model": "gpt-5-codex", "input": "x", "stream": true}),
            &[("x-keyward-profile", "openai-codex:nope")],
        )
        .await?;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("keyward status"), "{body}");
    Ok(())
}

/// An upstream 401 makes keyward re-validate through the protocol and retry once: the request
/// succeeds and the lineage rotates exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_401_refreshes_once_and_retries() -> Result<()> {
    let mock = Mock::start().await?;
    let home = Home::new()?;
    let login = mock.login(None).await?;
    home.write_login(&login)?;
    let keyward = Keyward::serve(&home, &mock).await?;
    mock.response_faults(json!([{"kind": "status", "code": 401}]))
        .await?;
    let (status, body) = keyward.respond(true).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(mock.stat("refresh_ok").await?, 1);
    let written = home.refresh_token()?;
    assert_ne!(written, login["refresh_token"].as_str().unwrap_or_default());
    assert!(
        mock.is_live(&written).await?,
        "auth.json holds the live lineage"
    );
    mock.assert_no_reuse().await
}

/// Requests do not re-read an unchanged auth.json, and keyward's own reads (which the file
/// watcher also sees) do not invalidate the snapshot they produced; a real change is read once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_source_is_not_reread_per_request() -> Result<()> {
    let (mock, home, keyward) = serving().await?;
    let reads = || async {
        let health = keyward.healthz().await?;
        Ok::<u64, anyhow::Error>(health["profiles"][0]["source_reads"].as_u64().unwrap_or(0))
    };
    for _ in 0..20 {
        assert_eq!(keyward.respond(true).await?.0, 200);
    }
    let before = reads().await?;
    for _ in 0..50 {
        assert_eq!(keyward.respond(true).await?.0, 200);
    }
    assert_eq!(
        reads().await?,
        before,
        "50 requests on an unchanged file read it again"
    );

    home.write_login(&mock.login(None).await?)?;
    assert_eq!(keyward.respond(true).await?.0, 200);
    let after_change = reads().await?;
    assert!(after_change > before, "a changed file is read");
    for _ in 0..20 {
        assert_eq!(keyward.respond(true).await?.0, 200);
    }
    // The watcher's event for the write may land after the identity check read the file once.
    assert!(
        reads().await? <= after_change + 1,
        "reads keep following requests"
    );
    Ok(())
}

/// Without gateway keys, keyward refuses to expose the login beyond loopback, and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_to_listen_beyond_loopback() -> Result<()> {
    let mock = Mock::start().await?;
    let home = Home::new()?;
    let out = home
        .keyward(&mock)
        .args(["serve", "--listen", "0.0.0.0:0"])
        .output()?;
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0:0"),
        "{stderr}"
    );
    assert!(stderr.contains("loopback"), "{stderr}");
    Ok(())
}

/// A client that goes away cancels its upstream request, streamed (after its first event) or
/// not (while keyward assembles the answer): the upstream sees its own client leave.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_disconnect_cancels_the_upstream_request() -> Result<()> {
    let (mock, _home, keyward) = serving().await?;
    let client = reqwest::Client::new();

    let mut streamed = client
        .post(format!("{}/v1/chat/completions", keyward.url))
        .json(&json!({"model": "gpt-5-codex", "messages": [{"role": "user", "content": "ping [[hold:never-1]]"}], "stream": true}))
        .send()
        .await?;
    assert_eq!(streamed.status(), 200);
    streamed.chunk().await?;
    drop(streamed);
    wait_until("the upstream stream abandoned", || async {
        mock.stat("streams_abandoned").await.is_ok_and(|n| n == 1)
    })
    .await?;

    let served = mock.stat("responses_ok").await?;
    let url = format!("{}/v1/messages", keyward.url);
    let waiting = tokio::spawn(async move {
        reqwest::Client::new()
            .post(url)
            .json(&json!({"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": "ping [[hold:never-2]]"}]}))
            .send()
            .await
    });
    wait_until("the upstream request under way", || async {
        mock.stat("responses_ok").await.is_ok_and(|n| n > served)
    })
    .await?;
    waiting.abort();
    let _ = waiting.await;
    wait_until("the assembling request abandoned upstream", || async {
        mock.stat("streams_abandoned").await.is_ok_and(|n| n == 2)
    })
    .await?;
    Ok(())
}

/// Bad input on every endpoint gets the right status and a clear error in that endpoint's
/// dialect (malformed JSON, wrong types, an unknown model, an oversized body, a model the
/// upstream refuses), and nothing else is affected: the next good request is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_answered_in_each_dialect() -> Result<()> {
    let mock = Mock::start().await?;
    let home = Home::new()?;
    home.write_login(&mock.login(None).await?)?;
    home.write_config("[gateway]\nmax_body_bytes = 65536\n")?;
    let keyward = Keyward::serve(&home, &mock).await?;
    let client = reqwest::Client::new();
    let send = |path: &str, body: String| {
        client
            .post(format!("{}{path}", keyward.url))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let anthropic = |body: &Value| body["type"] == "error" && body["error"]["type"].is_string();
    let openai =
        |body: &Value| body["error"]["message"].is_string() && body["error"]["type"].is_string();
    let huge = format!(
        "{{\"model\":\"gpt-5-codex\",\"input\":\"{}\"}}",
        "x".repeat(100_000)
    );
    let cases: Vec<(&str, String, u16)> = vec![
        ("/v1/chat/completions", "{not json".into(), 400),
        ("/v1/chat/completions", r#"{"model":"gpt-5-codex","messages":"hi"}"#.into(), 400),
        ("/v1/chat/completions", r#"{"model":7,"messages":[]}"#.into(), 400),
        ("/v1/chat/completions", r#"{"model":"llama-3","messages":[{"role":"user","content":"hi"}]}"#.into(), 404),
        ("/v1/chat/completions", r#"{"model":"o4-mini","messages":[{"role":"user","content":"hi"}]}"#.into(), 400),
        ("/v1/completions", r#"{"model":"gpt-5-codex","prompt":["a","b"]}"#.into(), 400),
        ("/v1/responses", r#"{"model":"gpt-5-codex","input":"hi","previous_response_id":"resp_1"}"#.into(), 400),
        ("/v1/responses", huge.clone(), 413),
        ("/v1/messages", "[]".into(), 400),
        ("/v1/messages", r#"{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"robot","content":"hi"}]}"#.into(), 400),
        ("/v1/messages", r#"{"model":"mistral-large-3","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#.into(), 404),
        ("/v1/messages", r#"{"model":"o4-mini","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#.into(), 400),
        ("/v1/messages/count_tokens", r#"{"model":"claude-sonnet-4-5"}"#.into(), 400),
        ("/v1/messages", huge, 413),
    ];
    for (path, body, expected) in cases {
        let response = send(path, body).await?;
        let status = response.status().as_u16();
        let json: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(status, expected, "{path}: {json}");
        if path.starts_with("/v1/messages") {
            assert!(anthropic(&json), "{path}: Anthropic's error shape: {json}");
        } else {
            assert!(openai(&json), "{path}: OpenAI's error shape: {json}");
        }
    }
    let (status, body) = keyward.respond(true).await?;
    assert_eq!(status, 200, "still serving: {body}");
    mock.assert_no_reuse().await
}
