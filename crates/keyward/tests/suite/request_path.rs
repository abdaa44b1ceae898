//! The request path as a hostile local process meets it: silent sockets at the connection cap,
//! a CPU-heavy request beside light ones, cleartext HTTP/2, a stop with a hung upstream and a
//! silent client, and bodies built to take far more memory than their size. Each was a way to
//! stall or stop keyward; each test fails on the code that had it.

use std::io::Read;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

/// Reads until the server closes the connection (bounded only against a hang).
async fn read_until_closed(stream: &mut TcpStream) -> Result<Vec<u8>> {
    let mut rest = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut rest)).await??;
    Ok(rest)
}

/// A connection that never sends a byte is closed after the header timeout, counted from its
/// accept (not from a first byte that never comes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_is_closed() -> Result<()> {
    let (_mock, _home, keyward) = serving_with("[gateway]\nheader_timeout = \"1s\"\n", &[]).await?;
    let mut silent = TcpStream::connect(keyward.host_port()).await?;
    let answer = read_until_closed(&mut silent).await?;
    assert!(answer.is_empty(), "no answer to a request never sent");
    Ok(())
}

/// At the connection cap, a flood of silent sockets does not lock out a client that sends its
/// request: the one idle longest is closed to admit it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_sockets_at_the_cap_never_lock_out_a_client() -> Result<()> {
    let (_mock, _home, keyward) = serving_with(
        "[gateway]\nmax_connections = 16\nheader_timeout = \"30s\"\n",
        &[],
    )
    .await?;
    let mut silent = Vec::new();
    for _ in 0..64 {
        silent.push(TcpStream::connect(keyward.host_port()).await?);
    }
    let (status, body) = keyward.respond(true).await?;
    assert_eq!(status, 200, "{body}");
    let (status, _) = keyward.respond(false).await?;
    assert_eq!(status, 200);
    // The oldest silent socket made room first.
    let answer = read_until_closed(&mut silent[0]).await?;
    assert!(answer.is_empty());
    Ok(())
}

/// A request whose parsing takes the CPU for a long time (a huge token count) runs off the
/// serving threads: light requests on other connections, whichever thread serves them, are
/// answered while it is still being worked on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heavy_request_does_not_stall_light_ones() -> Result<()> {
    let (_mock, _home, keyward) = serving().await?;
    // One long word: the tokenizer's slowest input.
    let body = json!({
        "model": "claude-sonnet-4-5",
        "messages": [{"role": "user", "content": "a".repeat(1 << 20)}],
    })
    .to_string();
    let mut heavy = TcpStream::connect(keyward.host_port()).await?;
    heavy
        .write_all(
            format!(
                "POST /v1/messages/count_tokens HTTP/1.1\r\nHost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                keyward.host_port(),
                body.len()
            )
            .as_bytes(),
        )
        .await?;
    // Every serving thread gets some of these connections (they are dealt out in turn).
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()?;
    for _ in 0..8 {
        let status = http
            .get(format!("{}/healthz", keyward.url))
            .send()
            .await?
            .status();
        assert_eq!(status, 200);
    }
    let mut probe = [0u8; 1];
    let early = heavy.try_read(&mut probe);
    assert!(
        matches!(&early, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the heavy request was answered before the light ones: {early:?}"
    );
    let answer = String::from_utf8_lossy(&read_until_closed(&mut heavy).await?).into_owned();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("input_tokens"), "{answer}");
    Ok(())
}

/// Cleartext HTTP/2 is not served: its preface is refused and the connection closed, so an idle
/// or half-sent HTTP/2 connection cannot escape the HTTP/1.1 deadlines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleartext_http2_is_refused() -> Result<()> {
    let (_mock, _home, keyward) = serving().await?;
    let mut h2 = TcpStream::connect(keyward.host_port()).await?;
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await?;
    // An empty SETTINGS frame, as a client sends next.
    h2.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await?;
    let answer = read_until_closed(&mut h2).await?;
    assert!(
        answer.is_empty() || answer.starts_with(b"HTTP/1.1 "),
        "an HTTP/2 answer: {answer:?}"
    );
    Ok(())
}

/// A stop is bounded: a stream whose upstream never finishes and a silent client do not keep
/// keyward running past `shutdown_timeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_with_a_hung_upstream_and_a_silent_client_ends() -> Result<()> {
    let (_mock, _home, mut keyward) = serving_with(
        "[gateway]\nshutdown_timeout = \"1s\"\nheader_timeout = \"30s\"\n",
        &[],
    )
    .await?;
    let mut hung = reqwest::Client::new()
        .post(format!("{}/v1/responses", keyward.url))
        .json(&json!({"model": "gpt-5-codex", "input": "ping [[hold:never]]", "stream": true}))
        .send()
        .await?;
    assert_eq!(hung.status(), 200);
    hung.chunk().await?;
    let _silent = TcpStream::connect(keyward.host_port()).await?;
    let mut half_sent = TcpStream::connect(keyward.host_port()).await?;
    half_sent
        .write_all(b"POST /v1/responses HTTP/1.1\r\nHo")
        .await?;

    keyward.signal("TERM")?;
    let status = tokio::time::timeout(PATIENCE, keyward.wait_exit()).await??;
    assert!(status.success(), "{status:?}: {}", keyward.log());
    assert!(
        keyward.log().contains("are cut"),
        "the log says requests were cut: {}",
        keyward.log()
    );
    Ok(())
}

/// A second signal stops keyward at once, whatever the bound of a graceful stop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_stops_at_once() -> Result<()> {
    let (_mock, _home, mut keyward) =
        serving_with("[gateway]\nshutdown_timeout = \"1h\"\n", &[]).await?;
    let mut hung = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", keyward.url))
        .json(&json!({"model": "gpt-5-codex", "messages": [{"role": "user", "content": "ping [[hold:never]]"}], "stream": true}))
        .send()
        .await?;
    hung.chunk().await?;
    keyward.signal("TERM")?;
    wait_until("keyward begins its graceful stop", || async {
        keyward.log().contains("a second signal stops at once")
    })
    .await?;
    keyward.signal("INT")?;
    let status = tokio::time::timeout(PATIENCE, keyward.wait_exit()).await??;
    assert_eq!(status.code(), Some(1), "{}", keyward.log());
    Ok(())
}

/// keyward's peak memory, in bytes (`VmHWM`).
fn peak_memory(pid: u32) -> Result<u64> {
    let mut status = String::new();
    std::fs::File::open(format!("/proc/{pid}/status"))?.read_to_string(&mut status)?;
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmHWM in {status}"))?;
    Ok(kib * 1024)
}

/// A chat body of `messages` one-letter messages: the shape that costs the most memory per byte.
fn tiny_messages(messages: usize) -> String {
    let one = r#"{"role":"user","content":"a"}"#;
    format!(
        r#"{{"model":"gpt-5-codex","messages":[{}]}}"#,
        vec![one; messages].join(",")
    )
}

/// Bodies built to take many times their size in memory, sent at once, stay within
/// `max_request_memory` together: those beyond it wait or are told keyward is busy, and one that
/// could never fit is refused with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pathological_bodies_stay_within_the_memory_budget() -> Result<()> {
    const BUDGET: u64 = 256 << 20;
    let (_mock, _home, keyward) =
        serving_with(&format!("[gateway]\nmax_request_memory = {BUDGET}\n"), &[]).await?;
    let before = peak_memory(keyward.pid())?;
    let body = tiny_messages(50_000); // 1.5 MiB, about 90 MiB once parsed and translated
    let sends = (0..8).map(|_| {
        let url = format!("{}/v1/chat/completions", keyward.url);
        let body = body.clone();
        tokio::spawn(async move {
            let response = reqwest::Client::new()
                .post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await?;
            let status = response.status().as_u16();
            let text = response.text().await?;
            Ok::<_, anyhow::Error>((status, text))
        })
    });
    let mut served = 0;
    for send in sends.collect::<Vec<_>>() {
        let (status, text) = send.await??;
        assert!(
            matches!(status, 200 | 400 | 503),
            "{status}: {}",
            &text[..text.len().min(300)]
        );
        served += usize::from(status != 503);
    }
    assert!(served > 0, "none of the requests was served");
    let peak = peak_memory(keyward.pid())?;
    eprintln!(
        "{served} of 8 served; peak {} MiB, {} MiB before",
        peak >> 20,
        before >> 20
    );
    assert!(
        peak < before + BUDGET,
        "peak {} MiB, {} MiB before",
        peak >> 20,
        before >> 20
    );

    let answer = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", keyward.url))
        .header("content-type", "application/json")
        .body(tiny_messages(400_000))
        .send()
        .await?;
    assert_eq!(answer.status(), 413);
    let refusal: Value = answer.json().await?;
    assert_eq!(refusal["error"]["code"], "request_too_complex", "{refusal}");
    Ok(())
}
