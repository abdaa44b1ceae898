//! Bad credential sources: a missing, unreadable, API-key, symlinked, world-readable or churning
//! `auth.json`, met through `keyward serve`, `keyward status` and `keyward token`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};

use crate::support::*;

/// Runs `keyward ARGS` against this machine; returns the output and its stdout+stderr as text.
fn keyward_cmd(home: &Home, mock: &Mock, args: &[&str]) -> Result<(Output, String)> {
    let out = home.keyward(mock).args(args).output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out, text))
}

/// `keyward status --json`'s first profile.
fn status_json(home: &Home, mock: &Mock) -> Result<Value> {
    let (out, text) = keyward_cmd(home, mock, &["status", "--json"])?;
    let reports: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| anyhow::anyhow!("status --json is not JSON ({e}): {text}"))?;
    Ok(reports[0].clone())
}

fn text_of(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

/// The line of human `keyward status` output labelled `label`.
fn status_line<'a>(text: &'a str, label: &str) -> Option<&'a str> {
    text.lines().find(|l| l.trim_start().starts_with(label))
}

/// `auth.json` as the CLI writes it for `login`, plus `extra` top-level fields.
fn login_document(login: &Value, extra: Value) -> Value {
    let mut document = auth_document(login);
    if let (Some(root), Value::Object(extra)) = (document.as_object_mut(), extra) {
        root.extend(extra);
    }
    document
}

fn mode_of(path: &Path) -> Result<u32> {
    Ok(std::fs::metadata(path)?.permissions().mode() & 0o777)
}

/// `/healthz` shows the profile degraded with every one of `words` in its detail.
fn shows_problem(health: &Value, words: &[&str]) -> bool {
    let profile = &health["profiles"][0];
    profile["health"]["state"] == "degraded"
        && words
            .iter()
            .all(|w| text_of(&profile["health"]["detail"]).contains(w))
}

/// With no `auth.json` keyward starts anyway, says `needs-login` with the exact command to run
/// (naming the non-default `CODEX_HOME`), refuses requests with 401 `needs_login`, makes
/// `status`/`token` exit 3, and serves the login as soon as one is written, without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_auth_json_says_run_codex_login_and_heals_without_restart() -> Result<()> {
    let mock = Mock::start().await?;
    let home = Home::new()?;
    home.write_config(&timing_config("30s"))?;
    let keyward = Keyward::serve(&home, &mock).await?;
    let path = home.auth_path().display().to_string();
    let remedy = format!("CODEX_HOME={} codex login", home.codex_home().display());

    let health = keyward.healthz().await?;
    let profile = &health["profiles"][0];
    assert_eq!(profile["health"]["state"], "needs-login", "{health}");
    assert_eq!(profile["source_kind"], "missing", "{health}");
    assert!(
        text_of(&profile["health"]["detail"]).contains(&path),
        "{health}"
    );
    assert!(
        text_of(&profile["health"]["remedy"]).contains(&remedy),
        "{health}"
    );

    let (status, body) = keyward.respond(true).await?;
    assert_eq!(status, 401, "{body}");
    let error: Value = serde_json::from_str(&body)?;
    assert_eq!(error["error"]["code"], "needs_login", "{body}");
    assert!(
        text_of(&error["error"]["message"]).contains(&remedy),
        "{body}"
    );

    let (out, text) = keyward_cmd(&home, &mock, &["status"])?;
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(text.contains(&path), "status names the file: {text}");
    assert!(text.contains(&remedy), "status gives the remedy: {text}");

    let (out, text) = keyward_cmd(&home, &mock, &["token"])?;
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(out.stdout.is_empty(), "no token printed: {text}");
    assert!(text.contains(&remedy), "token gives the remedy: {text}");

    // The user logs in; the running keyward picks it up.
    home.write_login(&mock.login(None).await?)?;
    let (status, body) = keyward.respond(true).await?;
    assert_eq!(status, 200, "{body}");
    let (status, body) = keyward.respond(false).await?;
    assert_eq!(status, 200, "{body}");
    wait_until("health turns ok", || async {
        keyward.profile_health().await.is_ok_and(|s| s == "ok")
    })
    .await?;
    let (out, text) = keyward_cmd(&home, &mock, &["status"])?;
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert_eq!(
        mock.stat("token_calls").await?,
        0,
        "nothing needed a refresh"
    );
    mock.assert_no_reuse().await
}

/// An `auth.json` that turns unreadable (empty, truncated, not JSON, over the size limit, an
/// array, tokens of the wrong types) is reported as `degraded` with what is wrong; the last good
/// login keeps being served; keyward never rewrites or "repairs" the bad file; a valid login
/// brings health back to ok.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_auth_json_keeps_the_last_good_login_and_is_never_rewritten() -> Result<()> {
    let mock = Mock::start().await?;
    let home = Home::new()?;
    home.write_config(&timing_config("30s"))?;
    let login = mock.login(None).await?;
    home.write_login(&login)?;
    let keyward = Keyward::serve(&home, &mock).await?;
    let (status, body) = keyward.respond(true).await?;
    assert_eq!(status, 200, "{body}");

    let valid = serde_json::to_string_pretty(&login_document(&login, json!({})))?;
    let huge = format!("{{\"padding\": \"{}\"}}", "x".repeat(2 << 20));
    let cases: Vec<(&str, Vec<u8>, &[&str])> = vec![
        ("empty file", Vec::new(), &["empty"]),
        (
            "truncated JSON",
            valid.as_bytes()[..valid.len() / 2].to_vec(),
            &["not valid JSON", "truncated"],
        ),
        (
            "invalid JSON",
            b"{\"tokens\": {oops}}".to_vec(),
            &["not valid JSON"],
        ),
        ("2 MiB file", huge.into_bytes(), &["limit"]),
        ("JSON array", b"[1, 2, 3]".to_vec(), &["unexpected shape"]),
        (
            "tokens of the wrong types",
            serde_json::to_vec(&json!({
                "OPENAI_API_KEY": null,
                "tokens": {"access_token": 42, "refresh_token": ["x"], "id_token": true},
            }))?,
            &["unexpected shape"],
        ),
    ];

    for (case, bad, words) in cases {
        home.write_auth_bytes(&bad)?;
        let shown = wait_until(&format!("{case}: health shows the problem"), || async {
            keyward
                .healthz()
                .await
                .map(|h| shows_problem(&h, words))
                .unwrap_or(false)
        })
        .await;
        let last = keyward.healthz().await?;
        if let Err(e) = shown {
            anyhow::bail!("{e}; last /healthz: {last}");
        }
        let profile = &last["profiles"][0];
        assert_eq!(profile["source_kind"], "unreadable", "{case}: {last}");
        assert!(
            text_of(&profile["health"]["remedy"]).contains("codex login"),
            "{case}: {last}"
        );
        assert_eq!(
            profile["account_id"], "acct-test",
            "{case}: the last good login is still reported: {last}"
        );

        for stream in [true, false] {
            let (status, body) = keyward.respond(stream).await?;
            assert_eq!(status, 200, "{case}: the last good login is served: {body}");
        }
        assert_eq!(
            std::fs::read(home.auth_path())?,
            bad,
            "{case}: keyward must never rewrite a file it cannot read"
        );

        home.write_login(&login)?;
        wait_until(&format!("{case}: health back to ok"), || async {
            keyward.profile_health().await.is_ok_and(|s| s == "ok")
        })
        .await?;
        let (status, body) = keyward.respond(true).await?;
        assert_eq!(status, 200, "{case}: {body}");
    }
    assert_eq!(mock.stat("token_calls").await?, 0);
    assert!(!keyward.log().contains("panicked"), "{}", keyward.log());
    mock.assert_no_reuse().await
}

/// The last good login's access token expires while `auth.json` is unreadable: keyward does not
/// spend the refresh token it remembers (the file may hold a newer lineage it cannot see), says so
/// in health and in a 503, leaves the file alone, and refreshes once the file is readable again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_auth_json_with_expired_token_refuses_to_refresh() -> Result<()> {
    let mock = Mock::start().await?;
    let home = Home::new()?;
    // No margin: the scheduler only refreshes at expiry, so the token can run out on its own.
    home.write_config(
        "[refresh]\nmargin = \"0s\"\njitter = \"0s\"\ntick = \"200ms\"\nsettle_window = \"1s\"\ntoken_timeout = \"3s\"\n",
    )?;
    let login = mock.login(Some(8)).await?;
    // The refresh after the file is restored gets a normal token.
    mock.ttl_queue(json!([3600])).await?;
    home.write_login(&login)?;
    let keyward = Keyward::serve(&home, &mock).await?;
    wait_until("keyward has read the login", || async {
        keyward
            .healthz()
            .await
            .map(|h| h["profiles"][0]["account_id"] == "acct-test")
            .unwrap_or(false)
    })
    .await?;

    let garbage = b"{\"OPENAI_API_KEY\": null, \"tokens\": {\"access_tok".to_vec();
    home.write_auth_bytes(&garbage)?;
    wait_until("the last good access token runs out", || async {
        keyward
            .profile_health()
            .await
            .is_ok_and(|s| s == "source-error")
    })
    .await?;
    let health = keyward.healthz().await?;
    let detail = text_of(&health["profiles"][0]["health"]["detail"]);
    assert!(detail.contains("not valid JSON"), "{health}");
    assert!(
        !detail.contains("serving the last good login"),
        "health must not claim to serve a login whose access token has expired: {health}"
    );

    let (status, body) = keyward.respond(true).await?;
    assert_eq!(status, 503, "{body}");
    let error: Value = serde_json::from_str(&body)?;
    assert_eq!(error["error"]["code"], "profile_unavailable", "{body}");
    let message = text_of(&error["error"]["message"]);
    assert!(message.contains("not valid JSON"), "{body}");
    assert!(message.contains("will not refresh"), "{body}");
    assert!(message.contains("codex login"), "{body}");

    let (out, text) = keyward_cmd(&home, &mock, &["token"])?;
    assert!(!out.status.success(), "{text}");
    assert!(out.stdout.is_empty(), "no token printed: {text}");

    assert_eq!(
        mock.stat("token_calls").await?,
        0,
        "no refresh token was spent while the source was unreadable"
    );
    assert_eq!(std::fs::read(home.auth_path())?, garbage, "file untouched");

    // The file is readable again (its access token long expired): now keyward refreshes.
    home.write_login(&login)?;
    wait_until("keyward refreshes the restored login", || async {
        home.refresh_token()
            .map(|t| t != text_of(&login["refresh_token"]))
            .unwrap_or(false)
    })
    .await?;
    wait_until("health back to ok", || async {
        keyward.profile_health().await.is_ok_and(|s| s == "ok")
    })
    .await?;
    let (status, body) = keyward.respond(true).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(mock.stat("token_calls").await?, 1);
    assert!(mock.is_live(&home.refresh_token()?).await?);
    mock.assert_no_reuse().await
}

/// An `auth.json` that is garbage from the start is no reason to exit: keyward serves nothing,
/// says `source-error` with how to fix it, answers 503, spends nothing, and picks up a valid login
/// written later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_auth_json_at_start_is_a_source_error_not_a_crash() -> Result<()> {
    let mock = Mock::start().await?;
    let home = Home::new()?;
    home.write_config(&timing_config("30s"))?;
    let garbage = b"\x00\x01 not json at all".to_vec();
    home.write_auth_bytes(&garbage)?;
    let keyward = Keyward::serve(&home, &mock).await?;

    let health = keyward.healthz().await?;
    let profile = &health["profiles"][0];
    assert_eq!(profile["health"]["state"], "source-error", "{health}");
    assert_eq!(profile["source_kind"], "unreadable", "{health}");
    assert!(
        text_of(&profile["health"]["detail"]).contains("not valid JSON"),
        "{health}"
    );
    assert!(
        text_of(&profile["health"]["remedy"]).contains("codex login"),
        "{health}"
    );

    let (status, body) = keyward.respond(false).await?;
    assert_eq!(status, 503, "{body}");
    let error: Value = serde_json::from_str(&body)?;
    assert_eq!(error["error"]["code"], "profile_unavailable", "{body}");
    assert!(
        text_of(&error["error"]["message"]).contains("not valid JSON"),
        "{body}"
    );

    let (out, text) = keyward_cmd(&home, &mock, &["status"])?;
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(text.contains("not valid JSON"), "{text}");
    assert!(text.contains("codex login"), "{text}");

    assert_eq!(mock.stat("token_calls").await?, 0);
    assert_eq!(std::fs::read(home.auth_path())?, garbage, "file untouched");

    home.write_login(&mock.login(None).await?)?;
    let (status, body) = keyward.respond(true).await?;
    assert_eq!(status, 200, "{body}");
    wait_until("health turns ok", || async {
        keyward.profile_health().await.is_ok_and(|s| s == "ok")
    })
    .await?;
    mock.assert_no_reuse().await
}

/// A symlinked `auth.json` (dotfile managers do this) is read through, and keyward's write-back
/// replaces the link's target, never the link: the link survives, its target holds the new live
/// login with mode 0600, and status warns about the link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlinked_auth_json_is_followed_and_its_target_rewritten() -> Result<()> {
    let mock = Mock::start().await?;
    let home = Home::new()?;
    home.write_config(&timing_config("30s"))?;
    let real_dir = home.root().join("real");
    std::fs::create_dir_all(&real_dir)?;
    let real = real_dir.join("auth.json");
    let login = mock.login(Some(-60)).await?;
    // The family's tokens are born expired; the refreshes below get normal ones.
    mock.ttl_queue(json!([3600, 3600])).await?;
    std::fs::write(
        &real,
        serde_json::to_vec_pretty(&login_document(&login, json!({})))?,
    )?;
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o600))?;
    std::os::unix::fs::symlink("../real/auth.json", home.auth_path())?;

    let keyward = Keyward::serve(&home, &mock).await?;
    let old = text_of(&login["refresh_token"]).to_string();
    wait_until("keyward refreshes the expired login", || async {
        home.refresh_token().map(|t| t != old).unwrap_or(false)
    })
    .await?;

    let link = std::fs::symlink_metadata(home.auth_path())?;
    assert!(link.file_type().is_symlink(), "the symlink was replaced");
    assert_eq!(
        std::fs::read_link(home.auth_path())?,
        Path::new("../real/auth.json")
    );
    let target: Value = serde_json::from_slice(&std::fs::read(&real)?)?;
    let written = text_of(&target["tokens"]["refresh_token"]).to_string();
    assert!(
        mock.is_live(&written).await?,
        "the target holds the live lineage"
    );
    assert_eq!(mode_of(&real)?, 0o600);
    let leftovers: Vec<_> = std::fs::read_dir(&real_dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .filter(|n| n != "auth.json")
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");

    for stream in [true, false] {
        let (status, body) = keyward.respond(stream).await?;
        assert_eq!(status, 200, "{body}");
    }
    let health = keyward.healthz().await?;
    assert_eq!(health["profiles"][0]["health"]["state"], "ok", "{health}");
    assert!(
        health["profiles"][0]["warnings"]
            .to_string()
            .contains("symlink"),
        "{health}"
    );
    let (out, text) = keyward_cmd(&home, &mock, &["status"])?;
    assert_eq!(out.status.code(), Some(0), "{text}");
    let warning = status_line(&text, "warning").unwrap_or_default();
    assert!(warning.contains("symlink"), "{text}");
    assert_eq!(mock.stat("refresh_ok").await?, 1);
    mock.assert_no_reuse().await
}

/// A world-readable `auth.json` is served but reported, with the `chmod 600` that fixes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn world_readable_auth_json_is_reported() -> Result<()> {
    let mock = Mock::start().await?;
    let home = Home::new()?;
    home.write_config(&timing_config("30s"))?;
    home.write_login(&mock.login(None).await?)?;
    std::fs::set_permissions(home.auth_path(), std::fs::Permissions::from_mode(0o644))?;
    let keyward = Keyward::serve(&home, &mock).await?;

    let (status, body) = keyward.respond(true).await?;
    assert_eq!(status, 200, "{body}");
    let health = keyward.healthz().await?;
    let profile = &health["profiles"][0];
    assert_eq!(profile["health"]["state"], "ok", "{health}");
    assert!(
        profile["warnings"].to_string().contains("chmod 600"),
        "{health}"
    );

    let (out, text) = keyward_cmd(&home, &mock, &["status"])?;
    assert_eq!(out.status.code(), Some(0), "{text}");
    let warning = status_line(&text, "warning").unwrap_or_default();
    assert!(warning.contains("chmod 600"), "{text}");
    assert!(warning.contains("0644"), "{text}");
    let report = status_json(&home, &mock)?;
    assert!(
        report["warnings"].to_string().contains("chmod 600"),
        "{report}"
    );
    Ok(())
}

/// A writer replacing `auth.json` as fast as it can, by rename and by in-place truncate+write of
/// the same login, while clients send requests: keyward never crashes, every request is served,
/// nothing is spent, and health settles on ok.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_json_replaced_mid_read_never_crashes() -> Result<()> {
    let mock = Mock::start().await?;
    let home = Home::new()?;
    home.write_config(&timing_config("30s"))?;
    let login = mock.login(None).await?;
    home.write_login(&login)?;
    let keyward = Keyward::serve(&home, &mock).await?;

    // Two spellings of one login: pretty and compact, different last_refresh.
    let pretty = serde_json::to_vec_pretty(&login_document(&login, json!({})))?;
    let compact = serde_json::to_vec(&login_document(
        &login,
        json!({"last_refresh": "2026-01-01T00:00:00.000000000Z"}),
    ))?;
    let served = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (path, dir) = (home.auth_path(), home.codex_home());
        let (served, done) = (served.clone(), done.clone());
        std::thread::spawn(move || -> Result<usize> {
            use std::io::Write;
            let mut i = 0usize;
            // At least 400 replacements, and not done before the clients got some answers in.
            while i < 400 || served.load(Ordering::Relaxed) < 60 {
                let bytes = if i.is_multiple_of(2) {
                    &pretty
                } else {
                    &compact
                };
                if (i / 2).is_multiple_of(2) {
                    let temp = dir.join(".auth-writer");
                    std::fs::write(&temp, bytes)?;
                    std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o600))?;
                    std::fs::rename(&temp, &path)?;
                } else {
                    let mut file = std::fs::OpenOptions::new()
                        .write(true)
                        .truncate(true)
                        .open(&path)?;
                    file.write_all(bytes)?;
                }
                i += 1;
            }
            done.store(true, Ordering::Relaxed);
            Ok(i)
        })
    };

    let client = |stream: bool| {
        let (served, done) = (served.clone(), done.clone());
        let keyward = &keyward;
        async move {
            let mut failures = Vec::new();
            while !done.load(Ordering::Relaxed) {
                let (status, body) = keyward.respond(stream).await?;
                if status != 200 {
                    failures.push(format!("{status}: {body}"));
                }
                served.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, anyhow::Error>(failures)
        }
    };
    let (a, b) = tokio::join!(client(true), client(false));
    let replaced = tokio::task::spawn_blocking(move || writer.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the writer thread panicked"))??;
    let failures: Vec<String> = a?.into_iter().chain(b?).collect();
    assert!(
        failures.is_empty(),
        "{} of {} requests failed during {replaced} replacements: {:?}",
        failures.len(),
        served.load(Ordering::Relaxed),
        &failures[..failures.len().min(5)]
    );

    home.write_login(&login)?;
    wait_until("health settles on ok", || async {
        keyward.profile_health().await.is_ok_and(|s| s == "ok")
    })
    .await?;
    let (status, body) = keyward.respond(true).await?;
    assert_eq!(status, 200, "{body}");
    let log = keyward.log();
    assert!(!log.contains("panicked"), "{log}");
    assert_eq!(mock.stat("token_calls").await?, 0, "nothing to refresh");
    mock.assert_no_reuse().await
}

/// keyward's write-back changes only the tokens and `last_refresh` (RFC 3339, nanoseconds, `Z`,
/// as the CLI writes it): fields it does not know, at the top level and inside `tokens`, survive
/// exactly, and the file stays mode 0600.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_fields_survive_keywards_write_back() -> Result<()> {
    let mock = Mock::start().await?;
    let home = Home::new()?;
    home.write_config(&timing_config("30s"))?;
    let login = mock.login(Some(-60)).await?;
    // The family's tokens are born expired; the refreshes below get normal ones.
    mock.ttl_queue(json!([3600, 3600])).await?;
    let future_top = json!([1, "two", {"three": 3.5, "four": null}]);
    let future_nested = json!({"nested": {"deep": [true, false]}, "text": "héllo"});
    let future_token = json!({"kept": true, "list": [1, 2, 3]});
    let mut document = login_document(
        &login,
        json!({
            "last_refresh": "2020-01-02T03:04:05.123456789Z",
            "future_top_level": future_top,
            "agent_settings": future_nested,
        }),
    );
    document["tokens"]["future_token_field"] = future_token.clone();
    document["tokens"]["token_kind"] = json!("chatgpt");
    home.write_auth_bytes(&serde_json::to_vec_pretty(&document)?)?;

    let keyward = Keyward::serve(&home, &mock).await?;
    let old = text_of(&login["refresh_token"]).to_string();
    wait_until("keyward refreshes the expired login", || async {
        home.refresh_token().map(|t| t != old).unwrap_or(false)
    })
    .await?;

    let after = home.auth()?;
    assert_eq!(after["future_top_level"], future_top, "{after}");
    assert_eq!(after["agent_settings"], future_nested, "{after}");
    assert_eq!(
        after["tokens"]["future_token_field"], future_token,
        "{after}"
    );
    assert_eq!(after["tokens"]["token_kind"], "chatgpt", "{after}");
    assert_eq!(after["OPENAI_API_KEY"], Value::Null, "{after}");
    assert_eq!(after["tokens"]["account_id"], login["account_id"]);
    let keys = |v: &Value| {
        v.as_object()
            .map(|o| {
                let mut k: Vec<String> = o.keys().cloned().collect();
                k.sort();
                k
            })
            .unwrap_or_default()
    };
    assert_eq!(keys(&after), keys(&document), "no field added or lost");
    assert_eq!(keys(&after["tokens"]), keys(&document["tokens"]));

    for name in ["access_token", "id_token", "refresh_token"] {
        assert_ne!(
            after["tokens"][name], login[name],
            "{name} was not replaced"
        );
    }
    assert!(
        mock.is_live(text_of(&after["tokens"]["refresh_token"]))
            .await?
    );
    assert_eq!(mode_of(&home.auth_path())?, 0o600);

    let stamp = text_of(&after["last_refresh"]);
    let parsed = chrono::DateTime::parse_from_rfc3339(stamp)
        .map_err(|e| anyhow::anyhow!("last_refresh {stamp:?} is not RFC 3339: {e}"))?;
    let fraction = stamp
        .strip_suffix('Z')
        .and_then(|s| s.rsplit_once('.'))
        .map(|(_, f)| f)
        .unwrap_or_default();
    assert!(
        fraction.len() == 9 && fraction.bytes().all(|b| b.is_ascii_digit()),
        "last_refresh {stamp:?} is not nanoseconds + Z"
    );
    assert!(
        parsed > chrono::DateTime::parse_from_rfc3339("2020-01-02T03:04:05Z")?,
        "last_refresh {stamp:?} was not stamped"
    );

    let (status, body) = keyward.respond(true).await?;
    assert_eq!(status, 200, "{body}");
    mock.assert_no_reuse().await
}

/// `keyward status` shows the account, plan, expiry and lineage, and who moved the lineage last:
/// keyward after its own refresh, the CLI after the CLI's; the generation only grows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_account_expiry_lineage_and_author() -> Result<()> {
    let mock = Mock::start().await?;
    let home = Home::new()?;
    home.write_config(&timing_config("30s"))?;
    let login = mock.login(Some(-60)).await?;
    // The family's tokens are born expired; the refreshes below get normal ones.
    mock.ttl_queue(json!([3600, 3600])).await?;
    home.write_login(&login)?;
    let keyward = Keyward::serve(&home, &mock).await?;
    let old = text_of(&login["refresh_token"]).to_string();
    wait_until("keyward refreshes the expired login", || async {
        home.refresh_token().map(|t| t != old).unwrap_or(false)
    })
    .await?;
    wait_until("keyward settles on ok", || async {
        keyward.profile_health().await.is_ok_and(|s| s == "ok")
    })
    .await?;

    let by_keyward = status_json(&home, &mock)?;
    assert_eq!(by_keyward["account_id"], "acct-test", "{by_keyward}");
    assert_eq!(by_keyward["email"], "dev@example.com", "{by_keyward}");
    assert_eq!(by_keyward["plan"], "pro", "{by_keyward}");
    assert_eq!(by_keyward["health"]["state"], "ok", "{by_keyward}");
    assert!(
        by_keyward["access_expires_in_secs"].as_i64().unwrap_or(0) > 0,
        "{by_keyward}"
    );
    assert_eq!(by_keyward["lineage_changed_by"], "keyward", "{by_keyward}");
    let generation_keyward = by_keyward["generation"].as_u64().unwrap_or(0);
    assert!(
        generation_keyward >= 2,
        "seen, then refreshed: {by_keyward}"
    );
    let health = keyward.healthz().await?;
    assert_eq!(
        health["profiles"][0]["lineage_changed_by"], "keyward",
        "{health}"
    );
    assert_eq!(
        health["profiles"][0]["generation"], by_keyward["generation"],
        "{health}"
    );

    let out = home.cli_refresh(&mock, &["--force"])?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let by_cli = status_json(&home, &mock)?;
    let generation_cli = by_cli["generation"].as_u64().unwrap_or(0);
    assert!(generation_cli > generation_keyward, "{by_cli}");
    assert!(
        text_of(&by_cli["lineage_changed_by"]).contains("CLI"),
        "{by_cli}"
    );
    assert_eq!(by_cli["account_id"], "acct-test", "{by_cli}");
    assert!(
        by_cli["access_expires_in_secs"].as_i64().unwrap_or(0) > 0,
        "{by_cli}"
    );
    assert_ne!(by_cli["refresh_token"], by_keyward["refresh_token"]);
    assert!(
        text_of(&by_cli["refresh_token"]).starts_with("fp:"),
        "a fingerprint, not the token: {by_cli}"
    );
    wait_until("the running keyward sees the CLI's lineage", || async {
        keyward
            .healthz()
            .await
            .map(|h| h["profiles"][0]["generation"] == json!(generation_cli))
            .unwrap_or(false)
    })
    .await?;
    let health = keyward.healthz().await?;
    assert!(
        text_of(&health["profiles"][0]["lineage_changed_by"]).contains("CLI"),
        "{health}"
    );

    let (out, text) = keyward_cmd(&home, &mock, &["status"])?;
    assert_eq!(out.status.code(), Some(0), "{text}");
    let line = |label: &str| status_line(&text, label).unwrap_or_default().to_string();
    assert!(line("account").contains("acct-test"), "{text}");
    assert!(line("email").contains("dev@example.com"), "{text}");
    assert!(line("plan").contains("pro"), "{text}");
    assert!(line("access token").contains("expires in"), "{text}");
    assert!(
        line("lineage").contains(&format!("generation {generation_cli}")),
        "{text}"
    );
    assert!(line("last refresh").contains("CLI"), "{text}");
    assert!(line("health").contains("serving"), "{text}");
    assert_no_secrets(&text, &tokens_of(&home.auth()?), "keyward status");
    mock.assert_no_reuse().await
}
