//! Many processes on one login at once: the CLI rotating under a busy gateway, a process frozen
//! past expiry, two gateways racing for every rotation, and a storm of requests on an expired token.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::*;

/// One request through `keyward` that must succeed and carry a complete answer; `Err` names why not.
async fn complete_response(keyward: &Keyward, stream: bool) -> Result<()> {
    let (status, body) = keyward.respond(stream).await?;
    anyhow::ensure!(status == 200, "status {status}: {body}");
    let complete = if stream {
        body.contains("response.completed")
    } else {
        serde_json::from_str::<Value>(&body)
            .map(|v| v["status"] == "completed")
            .unwrap_or(false)
    };
    anyhow::ensure!(complete, "incomplete answer (stream {stream}): {body}");
    Ok(())
}

/// The `exp` claim of a JWT, read without checking its signature.
fn exp_claim(jwt: &str) -> Result<i64> {
    use base64::Engine;
    let payload = jwt
        .split('.')
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("not a JWT"))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload)?;
    let claims: Value = serde_json::from_slice(&bytes)?;
    claims["exp"]
        .as_i64()
        .ok_or_else(|| anyhow::anyhow!("no exp claim"))
}

/// What `cli-refresh` reported on stdout ("refreshed", "adopted", "error", ...).
fn cli_result(out: &std::process::Output) -> String {
    serde_json::from_slice::<Value>(&out.stdout)
        .ok()
        .and_then(|v| v["result"].as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Sends SIGTERM and waits for the graceful exit, so no refresh is left half-done when the test
/// inspects the lineage.
async fn stop(keyward: Keyward) -> Result<()> {
    let mut keyward = keyward;
    keyward.signal("TERM")?;
    let status = keyward.wait_exit().await?;
    anyhow::ensure!(
        status.success(),
        "keyward exited with {status}: {}",
        keyward.log()
    );
    Ok(())
}

/// The CLI rotates auth.json at random moments while clients stream through keyward: keyward
/// adopts every rotation and spends nothing itself (the endpoint sees only the CLI's refreshes),
/// every request is served, and no token is ever spent twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_writer_rotating_at_random_moments_while_clients_stream() -> Result<()> {
    let mock = Arc::new(Mock::start().await?);
    let home = Arc::new(Home::new()?);
    home.write_login(&mock.login(None).await?)?;
    let keyward = Arc::new(Keyward::serve(&home, &mock).await?);

    let writer_done = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let mut clients = tokio::task::JoinSet::new();
    for client in 0..4usize {
        let (keyward, writer_done, served) = (keyward.clone(), writer_done.clone(), served.clone());
        clients.spawn(async move {
            let mut failures = Vec::new();
            let mut sent = 0usize;
            // At least 25 requests each, and keep going until the writer is done so every
            // rotation lands among requests.
            while sent < 25 || !writer_done.load(Ordering::Acquire) {
                let stream = (client + sent).is_multiple_of(2);
                if let Err(e) = complete_response(&keyward, stream).await {
                    failures.push(format!("client {client} request {sent}: {e:#}"));
                }
                sent += 1;
                served.fetch_add(1, Ordering::Relaxed);
            }
            failures
        });
    }

    let mut refreshed_by_cli = 0u64;
    for round in 0..15 {
        let pause = rand::random_range(0..=150u64);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        let (h, m) = (home.clone(), mock.clone());
        let out = tokio::task::spawn_blocking(move || {
            h.cli_refresh(&m, &["--force", "--pause-ms", "30"])
        })
        .await??;
        let result = cli_result(&out);
        assert!(
            out.status.success(),
            "CLI refresh {round} failed: {result} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if result == "refreshed" {
            refreshed_by_cli += 1;
        }
    }
    writer_done.store(true, Ordering::Release);

    let mut failures = Vec::new();
    while let Some(joined) = clients.join_next().await {
        failures.extend(joined?);
    }
    assert!(
        failures.is_empty(),
        "{} of {} requests failed: {failures:#?}\n{}",
        failures.len(),
        served.load(Ordering::Relaxed),
        keyward.log()
    );
    assert_eq!(
        refreshed_by_cli, 15,
        "each CLI run rotated (nobody else wrote)"
    );

    // One more request after the last rotation: served on the CLI's lineage.
    complete_response(&keyward, true).await?;
    mock.assert_no_reuse().await?;
    assert_eq!(
        mock.stat("token_calls").await?,
        refreshed_by_cli,
        "only the CLI's refreshes reached the endpoint"
    );
    let health = keyward.healthz().await?;
    assert_eq!(
        health["counters"]["token_requests"],
        json!(0),
        "keyward spent nothing: {health}"
    );
    println!(
        "figures: cli writer: {} requests served, {refreshed_by_cli} CLI rotations adopted, stats {}",
        served.load(Ordering::Relaxed) + 1,
        mock.stats().await?
    );
    assert_eq!(health["profiles"][0]["health"]["state"], "ok", "{health}");
    assert!(
        mock.is_live(&home.refresh_token()?).await?,
        "auth.json ends on the live lineage"
    );
    Ok(())
}

/// A keyward frozen (SIGSTOP, like a sleeping laptop) while the CLI rotates and its own access
/// token expires wakes up on the CLI's lineage: it serves at once, spends nothing, and never
/// spends the token it held before the freeze.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn laptop_sleep_past_expiry_adopts_the_cli_lineage() -> Result<()> {
    let mock = Mock::start().await?;
    let home = Home::new()?;
    home.write_config(&timing_config("1s"))?;
    let login = mock.login(Some(10)).await?;
    let expires = exp_claim(login["access_token"].as_str().unwrap_or_default())?;
    home.write_login(&login)?;
    let keyward = Keyward::serve(&home, &mock).await?;
    complete_response(&keyward, true).await?;

    keyward.signal("STOP")?;
    // The family was logged in with a 10 s lifetime; the CLI's new token is long-lived.
    mock.ttl_queue(json!([3600])).await?;
    let out = home.cli_refresh(&mock, &["--force"])?;
    assert_eq!(cli_result(&out), "refreshed");
    // The scenario, not an assertion: stay frozen until the old access token has expired.
    while chrono::Utc::now().timestamp() <= expires {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    keyward.signal("CONT")?;

    for stream in [true, false, true, false] {
        complete_response(&keyward, stream).await?;
    }
    mock.assert_no_reuse().await?;
    assert_eq!(
        mock.stat("token_calls").await?,
        1,
        "only the CLI's refresh reached the endpoint"
    );
    let health = keyward.healthz().await?;
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["profiles"][0]["health"]["state"], "ok", "{health}");
    assert!(
        mock.is_live(&home.refresh_token()?).await?,
        "auth.json holds the live lineage"
    );
    Ok(())
}

/// Two `keyward serve` on one `CODEX_HOME`, with short-lived tokens so both reach for every
/// rotation at the same moment; `shared_store` picks one `KEYWARD_HOME` (one ledger) or two.
async fn two_processes_race_for_every_rotation(shared_store: bool) -> Result<()> {
    let mock = Mock::start_with(&["--access-ttl", "4"]).await?;
    let home = Home::new()?;
    // margin 10 s, no jitter: both refresh at half-life (2 s before expiry), together.
    let config = timing_config("10s");
    home.write_config(&config)?;
    home.write_login(&mock.login(None).await?)?;
    let first = Keyward::serve(&home, &mock).await?;
    let second = if shared_store {
        Keyward::serve(&home, &mock).await?
    } else {
        let other = home.root().join("keyward-second");
        std::fs::create_dir_all(&other)?;
        std::fs::write(other.join("config.toml"), &config)?;
        let other = other
            .to_str()
            .ok_or_else(|| anyhow::anyhow!("temp path is not UTF-8"))?
            .to_string();
        Keyward::serve_with(&home, &mock, &[("KEYWARD_HOME", other.as_str())]).await?
    };
    let processes = Arc::new([first, second]);

    let stop_clients = Arc::new(AtomicBool::new(false));
    let mut clients = tokio::task::JoinSet::new();
    for client in 0..2usize {
        let (processes, stop_clients) = (processes.clone(), stop_clients.clone());
        clients.spawn(async move {
            let mut failures = Vec::new();
            let mut sent = 0usize;
            while !stop_clients.load(Ordering::Acquire) {
                let target = (client + sent) % 2;
                if let Err(e) = complete_response(&processes[target], !sent.is_multiple_of(3)).await
                {
                    failures.push(format!("process {target}: {e:#}"));
                }
                sent += 1;
            }
            (sent, failures)
        });
    }
    let waited = wait_until("six rotations of the shared lineage", || async {
        mock.stat("refresh_ok").await.unwrap_or(0) >= 6
    })
    .await;
    stop_clients.store(true, Ordering::Release);
    let mut failures = Vec::new();
    let mut sent = 0;
    while let Some(joined) = clients.join_next().await {
        let (n, f) = joined?;
        sent += n;
        failures.extend(f);
    }
    let logs = || {
        format!(
            "--- first:\n{}\n--- second:\n{}",
            processes[0].log(),
            processes[1].log()
        )
    };
    if let Err(e) = waited {
        anyhow::bail!("{e}: {}\n{}", mock.stats().await?, logs());
    }
    assert!(
        failures.is_empty(),
        "{} of {sent} requests failed: {failures:#?}\n{}",
        failures.len(),
        logs()
    );
    for keyward in processes.iter() {
        let health = keyward.healthz().await?;
        assert_eq!(health["profiles"][0]["health"]["state"], "ok", "{health}");
    }

    // Stop both gracefully so no refresh is cut between spend and write-back.
    let logs = logs();
    let [first, second] = Arc::try_unwrap(processes)
        .map_err(|_| anyhow::anyhow!("a client still holds the processes"))?;
    stop(first).await?;
    stop(second).await?;

    let stats = mock.stats().await?;
    println!("figures: two processes (shared store: {shared_store}): {sent} requests served, stats {stats}");
    mock.assert_no_reuse().await?;
    assert_eq!(
        stats["token_calls"], stats["refresh_ok"],
        "every token call was a successful rotation (none wasted): {stats}\n{logs}"
    );
    assert!(
        mock.is_live(&home.refresh_token()?).await?,
        "auth.json ends on the live lineage: {stats}\n{logs}"
    );
    Ok(())
}

/// Two keyward processes sharing one `KEYWARD_HOME` (and ledger) and one `CODEX_HOME` race for
/// every rotation: exactly one spends each token, the other adopts; no reuse, nothing wasted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_keyward_processes_share_one_codex_home() -> Result<()> {
    two_processes_race_for_every_rotation(true).await
}

/// As above with separate `KEYWARD_HOME`s (separate ledgers): the CLI's flocks and the re-read
/// under them alone keep the two processes from spending one token twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_keyward_processes_with_separate_stores_share_one_codex_home() -> Result<()> {
    two_processes_race_for_every_rotation(false).await
}

/// 1000 requests arriving on an expired token while its refresh is in flight all wait for that
/// one refresh: one token call, 1000 answers, no reuse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_storm_1000_concurrent_requests_cause_one_token_call() -> Result<()> {
    let mock = Mock::start().await?;
    let home = Home::new()?;
    home.write_login(&mock.login(Some(-60)).await?)?;
    // The family was logged in expired; its next token is long-lived.
    mock.ttl_queue(json!([3600])).await?;
    // Hold the refresh at the endpoint so the requests pile up behind it.
    mock.token_faults(json!([{"kind": "delay", "ms": 2000}]))
        .await?;
    // Started with a shell's usual soft limit of 1024 descriptors: 1000 streams need about 2000.
    let keyward = Keyward::serve_with_soft_nofile(&home, &mock, 1024).await?;
    wait_until("keyward's refresh reaches the endpoint", || async {
        mock.stat("token_calls").await.unwrap_or(0) >= 1
    })
    .await?;

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1000)
        .build()?;
    let url = format!("{}/v1/responses", keyward.url);
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..1000 {
        let (client, url) = (client.clone(), url.clone());
        requests.spawn(async move {
            let response = client
                .post(&url)
                .json(&json!({"model": "gpt-5-codex", "input": "ping", "stream": false}))
                .send()
                .await;
            match response {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let body = response.text().await.unwrap_or_default();
                    (status, body)
                }
                Err(e) => (0, format!("{e:#}")),
            }
        });
    }
    let mut failures = Vec::new();
    let mut answered = 0;
    while let Some(joined) = requests.join_next().await {
        let (status, body) = joined?;
        answered += 1;
        if status != 200 {
            failures.push((status, body));
        }
    }
    assert_eq!(answered, 1000);
    assert!(
        failures.is_empty(),
        "{} of 1000 failed, first: {:?}\n{}",
        failures.len(),
        failures.first(),
        keyward.log()
    );
    assert_eq!(
        mock.stat("token_calls").await?,
        1,
        "one refresh served them all"
    );
    assert_eq!(mock.stat("refresh_ok").await?, 1);
    println!(
        "figures: storm: {answered} requests answered 200, stats {}",
        mock.stats().await?
    );
    mock.assert_no_reuse().await?;
    assert!(mock.is_live(&home.refresh_token()?).await?);
    Ok(())
}

/// A refresh that a request started (a 401) finishes when keyward stops gracefully, even after
/// that client went away: the rotated token lands in auth.json, not only in the provider's books.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_a_departed_client_started_finishes_across_a_graceful_stop() -> Result<()> {
    let mock = Mock::start().await?;
    let home = Home::new()?;
    let login = mock.login(Some(3600)).await?;
    home.write_login(&login)?;
    let first = refresh_token_of(&login);
    mock.ttl_queue(json!([3600])).await?;
    mock.response_faults(json!([{"kind": "status", "code": 401}]))
        .await?;
    // The provider rotates at once and answers 2 s later.
    mock.token_faults(json!([{"kind": "delay_after_issue", "ms": 2000}]))
        .await?;
    let keyward = Arc::new(Keyward::serve(&home, &mock).await?);

    let client = tokio::spawn({
        let keyward = keyward.clone();
        async move { keyward.respond(false).await }
    });
    wait_until("the request's refresh reaches the provider", || async {
        mock.stat("token_calls").await.is_ok_and(|n| n >= 1)
    })
    .await?;
    client.abort();
    let _ = client.await;
    let keyward = Arc::try_unwrap(keyward)
        .map_err(|_| anyhow::anyhow!("the client task still holds keyward"))?;
    stop(keyward).await?;

    let now = home.refresh_token()?;
    assert_ne!(now, first, "auth.json still holds the spent token");
    assert!(
        mock.is_live(&now).await?,
        "auth.json holds a token the provider does not know as live"
    );
    mock.assert_no_reuse().await
}
