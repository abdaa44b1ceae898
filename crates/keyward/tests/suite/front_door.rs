//! The front door as a browser, an attacker on the network and a careless client meet it: gateway
//! keys, pages that POST to loopback, rebound host names, half-sent requests, oversized bodies.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

const KEY: &str = "kw-test-key-0123456789abcdef";

/// Sends one raw HTTP/1.1 request and reads the whole answer (the server closes after it).
async fn raw(keyward: &Keyward, request: String) -> Result<String> {
    let mut stream = TcpStream::connect(keyward.host_port()).await?;
    stream.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer)).await??;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

/// Status and JSON body of a request built by `build`.
async fn call(
    request: reqwest::RequestBuilder,
) -> Result<(u16, Value, reqwest::header::HeaderMap)> {
    let response = request.send().await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    Ok((status, body, headers))
}

fn ping() -> Value {
    json!({"model": "gpt-5-codex", "input": "ping"})
}

/// With gateway keys, a request without a key or with a wrong one is refused in the caller's
/// dialect (never echoing the key), either header style is accepted, and `/healthz` without a key
/// shows liveness only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_keys_are_enforced() -> Result<()> {
    let (_mock, _home, keyward) = serving_with(
        "",
        &[(
            "KEYWARD_API_KEYS",
            &format!("other-key-0123456789abc,{KEY}"),
        )],
    )
    .await?;
    let http = reqwest::Client::new();
    let responses = format!("{}/v1/responses", keyward.url);
    let messages = format!("{}/v1/messages", keyward.url);

    let (status, body, _) = call(http.post(&responses).json(&ping())).await?;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "invalid_api_key", "{body}");
    let wrong = "wrong-key-that-must-not-be-echoed";
    let (status, body, _) = call(http.post(&messages).header("x-api-key", wrong).json(&json!({"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}))).await?;
    assert_eq!(status, 401);
    assert_eq!(
        body["type"], "error",
        "Anthropic's shape on /v1/messages: {body}"
    );
    assert_eq!(body["error"]["type"], "authentication_error");
    assert!(
        !body.to_string().contains(wrong),
        "the key was echoed: {body}"
    );

    let (status, body, _) = call(http.post(&responses).bearer_auth(KEY).json(&ping())).await?;
    assert_eq!(status, 200, "{body}");
    let (status, body, _) =
        call(http.post(&responses).header("x-api-key", KEY).json(&ping())).await?;
    assert_eq!(status, 200, "{body}");

    let (status, body, _) = call(http.get(format!("{}/healthz", keyward.url))).await?;
    assert_eq!(
        (status, body.clone()),
        (200, json!({"status": "ok"})),
        "{body}"
    );
    let (_, body, _) = call(
        http.get(format!("{}/healthz", keyward.url))
            .bearer_auth(KEY),
    )
    .await?;
    assert!(body["profiles"].is_array(), "{body}");
    assert_eq!(
        body["profiles"][0]["email"], "dev@example.com",
        "a keyed caller sees the account: {body}"
    );
    assert!(
        !keyward.log().contains(KEY),
        "a gateway key reached the log"
    );
    Ok(())
}

/// Without gateway keys, any local process (another user's too) reaches `/healthz`: it shows the
/// profiles' health but not the accounts' e-mail addresses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_without_keys_shows_no_email() -> Result<()> {
    let (_mock, _home, keyward) = serving().await?;
    let health = keyward.healthz().await?;
    let profile = &health["profiles"][0];
    assert_eq!(profile["health"]["state"], "ok", "{health}");
    assert!(profile["email"].is_null(), "{health}");
    assert!(!health.to_string().contains("dev@example.com"), "{health}");
    Ok(())
}

/// A gateway key made of blanks (or anything a header cannot carry whole) could never match: the
/// configuration is refused, naming the key by its place, never its value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_that_can_never_match_are_refused() -> Result<()> {
    let mock = Mock::start().await?;
    let home = Home::new()?;
    home.write_config("[gateway]\napi_keys = [\"                        \"]\n")?;
    let out = home
        .keyward(&mock)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()?;
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("gateway key #1"), "{stderr}");
    Ok(())
}

/// Two `Host` headers, or a `Host` with more than a name and a port, are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_hosts_are_refused() -> Result<()> {
    let (_mock, _home, keyward) = serving().await?;
    let request =
        |hosts: &str| format!("GET /v1/models HTTP/1.1\r\n{hosts}connection: close\r\n\r\n");
    let answer = raw(
        &keyward,
        request(&format!(
            "Host: {}\r\nHost: evil.example\r\n",
            keyward.host_port()
        )),
    )
    .await?;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    for host in [
        "[::1]evil.example",
        "localhost..",
        "127.0.0.1:7411:1",
        "localhost@evil.example",
    ] {
        let answer = raw(&keyward, request(&format!("Host: {host}\r\n"))).await?;
        assert!(answer.starts_with("HTTP/1.1 403"), "{host}: {answer}");
        assert!(answer.contains("forbidden_host"), "{host}: {answer}");
    }
    let answer = raw(&keyward, request("Host: localhost.:7411\r\n")).await?;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    Ok(())
}

/// Without keys keyward will not listen beyond loopback; with keys it will.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_binds_need_keys() -> Result<()> {
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
    assert!(stderr.contains("KEYWARD_API_KEYS"), "{stderr}");

    let mut command = home.keyward(&mock);
    command.env("KEYWARD_API_KEYS", KEY);
    command.args(["serve", "--listen", "0.0.0.0:0"]);
    let mut child = command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let stderr = child
        .stderr
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stderr"))?;
    let first = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stderr)
            .lines()
            .map_while(std::result::Result::ok)
            .find(|l| l.contains("listening on") || l.starts_with("keyward: "))
    })
    .await?;
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        first
            .as_deref()
            .is_some_and(|l| l.contains("listening on http://0.0.0.0:")),
        "{first:?}"
    );
    Ok(())
}

/// What a web page can send is refused: a cross-site form post, a fetch with a foreign
/// `Origin`, a rebound `Host`, a CORS preflight; `/healthz` tells such a page nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_requests_are_refused() -> Result<()> {
    let (mock, _home, keyward) = serving().await?;
    let http = reqwest::Client::new();
    let responses = format!("{}/v1/responses", keyward.url);
    let served_before = mock.stat("responses_ok").await?;

    // A form post from a page: text/plain, no preflight, carries Origin.
    let (status, body, _) = call(
        http.post(&responses)
            .header("origin", "https://evil.example")
            .header("content-type", "text/plain")
            .body(ping().to_string()),
    )
    .await?;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "forbidden_origin");
    // The same without Origin but marked cross-site by the browser.
    let (status, _, _) = call(
        http.post(&responses)
            .header("sec-fetch-site", "cross-site")
            .json(&ping()),
    )
    .await?;
    assert_eq!(status, 403);
    // A text/plain body is refused even without browser headers.
    let (status, body, _) = call(
        http.post(&responses)
            .header("content-type", "text/plain")
            .body(ping().to_string()),
    )
    .await?;
    assert_eq!(status, 415, "{body}");
    assert_eq!(body["error"]["code"], "unsupported_media_type");
    // DNS rebinding: the page's own name, resolved to 127.0.0.1.
    let (status, body, _) = call(
        http.post(&responses)
            .header("host", "evil.example:7411")
            .json(&ping()),
    )
    .await?;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "forbidden_host");
    // A preflight is refused and grants nothing.
    let response = http
        .request(reqwest::Method::OPTIONS, &responses)
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 403);
    assert!(response
        .headers()
        .get("access-control-allow-origin")
        .is_none());
    // The page cannot read the account either.
    let (status, body, _) = call(
        http.get(format!("{}/healthz", keyward.url))
            .header("origin", "https://evil.example"),
    )
    .await?;
    assert_eq!(status, 403);
    assert!(!body.to_string().contains("dev@example.com"), "{body}");

    assert_eq!(
        mock.stat("responses_ok").await?,
        served_before,
        "nothing reached the upstream"
    );
    // A plain client is still served, and gets no CORS grant.
    let (status, _, headers) = call(http.post(&responses).json(&ping())).await?;
    assert_eq!(status, 200);
    assert!(headers.get("access-control-allow-origin").is_none());
    Ok(())
}

/// An origin the user configured gets its preflight answered and its requests served with CORS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_origins_get_cors() -> Result<()> {
    let (_mock, _home, keyward) =
        serving_with("[gateway]\ncors_origins = [\"https://app.example\"]\n", &[]).await?;
    let http = reqwest::Client::new();
    let responses = format!("{}/v1/responses", keyward.url);
    let preflight = http
        .request(reqwest::Method::OPTIONS, &responses)
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST")
        .send()
        .await?;
    assert_eq!(preflight.status().as_u16(), 204);
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let (status, body, headers) = call(
        http.post(&responses)
            .header("origin", "https://app.example")
            .json(&ping()),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://app.example"
    );
    Ok(())
}

/// Half-sent requests are cut: headers that never finish (after the header timeout) and a body
/// that never arrives (after the body timeout), while other clients are served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_requests_are_cut() -> Result<()> {
    let (_mock, _home, keyward) = serving_with(
        "[gateway]\nheader_timeout = \"1s\"\nbody_timeout = \"1s\"\n",
        &[],
    )
    .await?;
    let mut stalled = Vec::new();
    for _ in 0..200 {
        let mut stream = TcpStream::connect(keyward.host_port()).await?;
        stream
            .write_all(b"POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: appl")
            .await?;
        stalled.push(stream);
    }
    let (status, _) = keyward.respond(true).await?;
    assert_eq!(status, 200, "served while 200 requests stall");
    for mut stream in stalled {
        let mut rest = Vec::new();
        // The server closes the connection; no answer to a request it never got.
        tokio::time::timeout(PATIENCE, stream.read_to_end(&mut rest)).await??;
    }
    let answer = raw(
        &keyward,
        format!(
            "POST /v1/responses HTTP/1.1\r\nHost: {}\r\ncontent-type: application/json\r\ncontent-length: 100\r\nconnection: close\r\n\r\n{{\"model\":",
            keyward.host_port()
        ),
    )
    .await?;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("body_timeout"), "{answer}");
    Ok(())
}

/// A body declared larger than the limit is refused before it is read (nothing is sent after
/// the headers, so waiting for it would end in a timeout, not a 413); keyward's own 404 and 405
/// answers are JSON in the route's dialect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_and_unknown_routes_get_json_errors() -> Result<()> {
    let (_mock, _home, keyward) = serving_with("[gateway]\nbody_timeout = \"600s\"\n", &[]).await?;
    let answer = raw(
        &keyward,
        format!(
            "POST /v1/messages HTTP/1.1\r\nHost: {}\r\ncontent-type: application/json\r\ncontent-length: 1000000000\r\nconnection: close\r\n\r\n",
            keyward.host_port()
        ),
    )
    .await?;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer.contains("\"request_too_large\""),
        "Anthropic's error type: {answer}"
    );

    let http = reqwest::Client::new();
    let (status, body, _) = call(http.get(format!("{}/v1/nope", keyward.url))).await?;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
    let (status, body, _) = call(http.get(format!("{}/v1/messages", keyward.url))).await?;
    assert_eq!(status, 405);
    assert_eq!(body["type"], "error", "{body}");
    let _ = Duration::ZERO;
    Ok(())
}
