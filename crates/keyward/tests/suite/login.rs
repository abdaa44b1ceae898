//! `keyward login` and `keyward logout` end to end, against the mock's sign-in server: a real
//! headless Chromium through the consent page, the device-code sign-in, the real Codex CLI using
//! the login keyward wrote while keyward serves it, replacing and removing logins (the old family
//! revoked at the mock), the refusals, and no secret in any output.
//!
//! Browser sign-ins listen on the fixed ports 1455 and 1457: those tests hold [`login_ports`].

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use super::codex_cli::{codex_cli, codex_exec, write_cli_config};
use crate::support::*;

/// `codex login status` on `codex_home`: what the real CLI makes of the login there.
fn codex_login_status(
    cli: &std::path::Path,
    codex_home: &std::path::Path,
    home: &Home,
) -> Result<String> {
    let output = Command::new(cli)
        .args(["login", "status"])
        .env("CODEX_HOME", codex_home)
        .env("HOME", home.user_home())
        .stdin(Stdio::null())
        .output()?;
    Ok(format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}

/// The authorization codes the mock exchanged, by the 10 characters its log keeps of each.
async fn exchanged_codes(mock: &Mock) -> Result<Vec<String>> {
    Ok(mock
        .token_log()
        .await?
        .iter()
        .filter(|line| line["outcome"] == "code:exchanged")
        .filter_map(|line| line["token_prefix"].as_str().map(str::to_string))
        .collect())
}

/// No token of `auth` and no authorization code in `text`.
async fn assert_no_login_secrets(
    mock: &Mock,
    auth: &Value,
    text: &str,
    context: &str,
) -> Result<()> {
    assert_no_secrets(text, &tokens_of(auth), context);
    for code in exchanged_codes(mock).await? {
        assert!(
            !text.contains(&code),
            "{context}: an authorization code leaked"
        );
    }
    Ok(())
}

/// The files of keyward's home besides its store (which keeps token answers until they settle).
fn non_store_files(home: &Home) -> Result<Vec<std::path::PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(home.keyward_home())? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if path.is_file() && !name.starts_with("keyward.db") {
            files.push(path);
        }
    }
    Ok(files)
}

fn mode(path: &std::path::Path) -> Result<u32> {
    Ok(std::fs::metadata(path)?.permissions().mode() & 0o777)
}

/// The whole browser sign-in with a real headless Chromium: keyward prints the authorize URL, the
/// browser goes through the mock's consent page and back to keyward's loopback server, keyward
/// exchanges the code and writes auth.json in the CLI's format. The `keyward serve` already
/// running serves the new login without a restart; the real Codex CLI reports it logged in and
/// refreshes it in a `codex exec` turn, and keyward adopts the CLI's refresh. No token or code
/// reaches keyward's output, its log or its files besides auth.json and the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_browser_signs_in_and_the_codex_cli_and_keyward_use_the_login() -> Result<()> {
    let Some(cli) = codex_cli() else {
        return Ok(());
    };
    let Some(browser) = Browser::start().await? else {
        return Ok(());
    };
    let _ports = login_ports().await?;
    let mock = Mock::start().await?;
    let home = Home::new()?;
    write_cli_config(&home, &mock)?;
    // The new login's access token lives 120 s: inside the CLI's 5-minute window (it refreshes at
    // its next start), outside keyward's 60 s margin (keyward leaves it to the CLI).
    home.write_config(&timing_config("60s"))?;
    mock.consent_setting(json!({"account_id": "acct-browser", "email": "browser@example.com", "plan": "pro", "access_ttl": 120}))
        .await?;
    let keyward = Keyward::serve(&home, &mock).await?;
    keyward.wait_for_health("needs-login").await?;

    let mut sign_in = SignIn::start(&home, &mock, &["login"])?;
    let url = sign_in
        .printed(&format!("{}/oauth/authorize?", mock.url))
        .await?;
    assert!(
        url.contains("redirect_uri=http%3A%2F%2F127.0.0.1%3A1455%2Fauth%2Fcallback")
            && url.contains("code_challenge_method=S256")
            && url.contains("originator=codex_cli_rs"),
        "{url}"
    );
    browser.goto(&url).await?;
    browser.click("#approve").await?;
    assert_eq!(browser.text("#title").await?, "Signed in");
    assert!(browser.current_url().await?.ends_with(":1455/success"));
    let finished = sign_in.finish().await?;
    assert_eq!(finished.code, Some(0), "{}", finished.output());
    assert!(
        finished.stdout.contains("browser@example.com"),
        "{}",
        finished.output()
    );

    let auth = home.auth()?;
    assert_eq!(auth["auth_mode"], "chatgpt");
    assert_eq!(auth["OPENAI_API_KEY"], Value::Null);
    assert_eq!(auth["tokens"]["account_id"], "acct-browser");
    assert_eq!(
        auth["tokens"]["oauth_provenance"]["issuer"],
        json!(mock.url)
    );
    assert!(auth["last_refresh"].is_string());
    assert_eq!(mode(&home.auth_path())?, 0o600);
    assert!(mock.is_live(&home.refresh_token()?).await?);

    keyward.wait_for_health("ok").await?;
    let (status, body) = keyward.respond(false).await?;
    assert_eq!(status, 200, "{body}");

    let status = codex_login_status(&cli, &home.codex_home(), &home)?;
    assert!(status.contains("Logged in using ChatGPT"), "{status}");
    let signed_in = home.refresh_token()?;
    mock.ttl_queue(json!([3600])).await?;
    let (ok, output) = codex_exec(&cli, &home, &mock)?;
    assert!(ok, "codex exec on keyward's login failed:\n{output}");
    assert_ne!(
        home.refresh_token()?,
        signed_in,
        "the CLI did not refresh the login keyward wrote:\n{output}"
    );
    let calls = mock.stat("token_calls").await?;
    let (status, body) = keyward.respond(true).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        mock.stat("token_calls").await?,
        calls,
        "keyward spent instead of adopting"
    );
    mock.assert_no_reuse().await?;

    for (text, context) in [
        (finished.output(), "keyward login's output"),
        (keyward.log(), "keyward serve's log"),
    ] {
        assert_no_login_secrets(&mock, &auth, &text, context).await?;
    }
    for file in non_store_files(&home)? {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        assert_no_login_secrets(&mock, &auth, &text, &file.display().to_string()).await?;
    }
    Ok(())
}

/// The device-code sign-in of a new profile: keyward shows the mock's device page and a code, the
/// user approves it there, keyward exchanges the code and writes the login into a Codex home of
/// its own, and adds the profile to config.toml. `status` and a `serve` started then know it; the
/// real Codex CLI on that home reports it logged in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_sign_in_adds_a_profile_keyward_and_the_codex_cli_use() -> Result<()> {
    let mock = Mock::start().await?;
    mock.device_setting(json!({"interval": 1})).await?;
    mock.consent_setting(
        json!({"account_id": "acct-work", "email": "work@example.com", "plan": "team"}),
    )
    .await?;
    let home = Home::new()?;
    home.write_config("# my settings\n[refresh]\nmargin = \"10m\"\n")?;

    let mut sign_in = SignIn::start(&home, &mock, &["login", "--device", "--profile", "work"])?;
    sign_in
        .printed(&format!("{}/codex/device", mock.url))
        .await?;
    let code = sign_in.user_code().await?;
    mock.approve_device(&code).await?;
    let finished = sign_in.finish().await?;
    assert_eq!(finished.code, Some(0), "{}", finished.output());
    assert!(
        finished.stdout.contains("Added openai-codex:work"),
        "{}",
        finished.output()
    );
    assert!(finished.stdout.contains("restart"), "{}", finished.output());

    let config = std::fs::read_to_string(home.keyward_home().join("config.toml"))?;
    let work_home = home.keyward_home().join("codex/work");
    assert!(
        config.starts_with("# my settings\n[refresh]\nmargin = \"10m\"\n"),
        "{config}"
    );
    assert!(
        config.contains(&format!(
            "[[codex.profiles]]\nname = \"work\"\nhome = \"{}\"",
            work_home.display()
        )),
        "{config}"
    );
    assert_eq!(mode(&work_home)?, 0o700);
    assert_eq!(mode(&work_home.join("auth.json"))?, 0o600);
    let auth: Value = serde_json::from_slice(&std::fs::read(work_home.join("auth.json"))?)?;
    assert_eq!(auth["tokens"]["account_id"], "acct-work");

    let listed = SignIn::run(&home, &mock, &["status", "--json"]).await?;
    let reports: Value = serde_json::from_str(&listed.stdout)?;
    let work = reports
        .as_array()
        .and_then(|all| all.iter().find(|r| r["profile"] == "openai-codex:work"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(work["health"]["state"], "ok", "{reports}");
    assert_eq!(work["lineage_changed_by"], "keyward login", "{reports}");

    let keyward = Keyward::serve(&home, &mock).await?;
    let (status, profile, body) = keyward
        .post(
            "/v1/responses",
            &json!({"model": "gpt-5-codex", "input": "ping", "stream": false, "store": false}),
        )
        .await?;
    assert_eq!(
        (status, profile.as_str()),
        (200, "openai-codex:work"),
        "{body}"
    );

    if let Some(cli) = codex_cli() {
        let status = codex_login_status(&cli, &work_home, &home)?;
        assert!(status.contains("Logged in using ChatGPT"), "{status}");
    }
    for (text, context) in [
        (finished.output(), "keyward login's output"),
        (listed.output(), "keyward status"),
        (keyward.log(), "keyward serve's log"),
    ] {
        assert_no_login_secrets(&mock, &auth, &text, context).await?;
    }
    Ok(())
}

/// The mock's sign-in server is one the real Codex CLI accepts: `codex login --device-auth`
/// against it (its hidden issuer option) signs in; keyward serves that login; `keyward logout`
/// then revokes it at the mock and removes it, and the CLI reports itself logged out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_codex_cli_signs_in_against_the_mock_and_keyward_logout_signs_it_out() -> Result<()>
{
    let Some(cli) = codex_cli() else {
        return Ok(());
    };
    let mock = Mock::start().await?;
    mock.device_setting(json!({"interval": 1})).await?;
    let home = Home::new()?;
    let out = home.root().join("codex-login.out");
    let mut codex_login = Command::new(&cli)
        .args(["login", "--device-auth"])
        .arg(format!("--experimental_issuer={}", mock.url))
        .env("CODEX_HOME", home.codex_home())
        .env("HOME", home.user_home())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out)?)
        .stderr(Stdio::null())
        .spawn()?;
    let mut code = String::new();
    wait_until("the CLI's device code", || {
        let text = without_colours(&std::fs::read_to_string(&out).unwrap_or_default());
        if let Some(found) = text.split_whitespace().find(|w| is_user_code(w)) {
            code = found.to_string();
        }
        std::future::ready(!code.is_empty())
    })
    .await?;
    mock.approve_device(&code).await?;
    let status = tokio::task::spawn_blocking(move || codex_login.wait()).await??;
    assert!(status.success(), "{}", std::fs::read_to_string(&out)?);
    let refresh = home.refresh_token()?;
    assert!(mock.is_live(&refresh).await?);

    let keyward = Keyward::serve(&home, &mock).await?;
    let (status, body) = keyward.respond(false).await?;
    assert_eq!(status, 200, "{body}");

    let finished = SignIn::run(&home, &mock, &["logout", "--force"]).await?;
    assert_eq!(finished.code, Some(0), "{}", finished.output());
    assert!(
        finished.stdout.contains("Revoked the login"),
        "{}",
        finished.output()
    );
    assert!(!home.auth_path().exists());
    assert_eq!(mock.inspect(&refresh).await?["family_revoked"], json!(true));
    let status = codex_login_status(&cli, &home.codex_home(), &home)?;
    assert!(status.contains("Not logged in"), "{status}");
    keyward.wait_for_health("needs-login").await
}

/// Replacing a login asks first: without a terminal and without --force nothing happens (not even
/// a sign-in); with --force the new login is written and the old family revoked at the mock, and
/// the `keyward serve` running on that home serves the new login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replacing_a_login_asks_first_then_revokes_the_old_family() -> Result<()> {
    let (mock, home, keyward) = serving().await?;
    mock.device_setting(json!({"interval": 1})).await?;
    let old = home.refresh_token()?;

    let refused = SignIn::run(&home, &mock, &["login", "--device"]).await?;
    assert_eq!(refused.code, Some(2), "{}", refused.output());
    assert!(
        refused.stderr.contains("--force") && refused.stderr.contains("Replace it?"),
        "{}",
        refused.output()
    );
    assert_eq!(home.refresh_token()?, old);
    assert_eq!(mock.stat("logins").await?, 0);

    let mut sign_in = SignIn::start(&home, &mock, &["login", "--device", "--force"])?;
    let code = sign_in.user_code().await?;
    mock.approve_device(&code).await?;
    let finished = sign_in.finish().await?;
    assert_eq!(finished.code, Some(0), "{}", finished.output());
    assert!(
        finished.stdout.contains("Revoked the replaced login"),
        "{}",
        finished.output()
    );
    let new = home.refresh_token()?;
    assert_ne!(new, old);
    assert_eq!(mock.inspect(&old).await?["family_revoked"], json!(true));
    assert!(mock.is_live(&new).await?);

    let (status, body) = keyward.respond(false).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(mock.stat("reuse_events").await?, 0);
    assert!(mock.is_live(&home.refresh_token()?).await?);
    Ok(())
}

/// `keyward logout` asks first (refusing without a terminal or --force), then removes auth.json,
/// revokes the family at the mock, and the running `keyward serve` says `needs-login`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_asks_then_revokes_and_removes_the_login() -> Result<()> {
    let (mock, home, keyward) = serving().await?;
    let old = home.refresh_token()?;

    let refused = SignIn::run(&home, &mock, &["logout"]).await?;
    assert_eq!(refused.code, Some(2), "{}", refused.output());
    assert!(
        refused.stderr.contains("signed out too"),
        "{}",
        refused.output()
    );
    assert!(home.auth_path().exists());

    let finished = SignIn::run(&home, &mock, &["logout", "--force"]).await?;
    assert_eq!(finished.code, Some(0), "{}", finished.output());
    assert!(!home.auth_path().exists());
    assert_eq!(mock.inspect(&old).await?["family_revoked"], json!(true));
    keyward.wait_for_health("needs-login").await?;

    let again = SignIn::run(&home, &mock, &["logout", "openai-codex:default"]).await?;
    assert_eq!(again.code, Some(0), "{}", again.output());
    assert!(
        again.stdout.contains("holds no login"),
        "{}",
        again.output()
    );
    let unknown = SignIn::run(&home, &mock, &["logout", "nope"]).await?;
    assert_eq!(unknown.code, Some(2), "{}", unknown.output());
    Ok(())
}

/// A server that refuses device sign-in (404) gets the remedy: allow device code authorization
/// for Codex in ChatGPT's security settings. A provider failing at the code exchange (503) is
/// "try again" (exit 4). Neither leaves a login behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_sign_in_refusals_say_what_to_do() -> Result<()> {
    let mock = Mock::start().await?;
    mock.device_setting(json!({"enabled": false, "interval": 1}))
        .await?;
    let home = Home::new()?;
    let finished = SignIn::run(&home, &mock, &["login", "--device"]).await?;
    assert_eq!(finished.code, Some(1), "{}", finished.output());
    assert!(
        finished
            .stderr
            .contains("device code authorization for Codex"),
        "{}",
        finished.output()
    );

    mock.device_setting(json!({"enabled": true})).await?;
    mock.token_faults(json!([{"kind": "status", "code": 503}]))
        .await?;
    let mut sign_in = SignIn::start(&home, &mock, &["login", "--device"])?;
    let code = sign_in.user_code().await?;
    mock.approve_device(&code).await?;
    let failed = sign_in.finish().await?;
    assert_eq!(failed.code, Some(4), "{}", failed.output());
    assert!(
        failed.stderr.contains("status 503") && failed.stderr.contains("try again"),
        "{}",
        failed.output()
    );
    assert!(!home.auth_path().exists());
    Ok(())
}

/// The browser sign-in's refusals, in sequence (they share the callback ports): ports 1455 and
/// 1457 both taken, a timeout, a newer sign-in's cancel, consent cancelled, a workspace without
/// Codex; each says what
/// happened and what to do, and leaves the existing login alone. Then a forged callback (wrong
/// state) gets 400 while the sign-in keeps listening and completes; the code it used cannot be
/// exchanged again (the mock, as the real server, revokes what a replayed code issued).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_sign_in_refusals_say_what_to_do_and_leave_the_login_alone() -> Result<()> {
    let _ports = login_ports().await?;
    let mock = Mock::start().await?;
    let home = Home::new()?;
    home.write_login(&mock.login(None).await?)?;
    let before = home.refresh_token()?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;

    {
        let _a = std::net::TcpListener::bind("127.0.0.1:1455")?;
        let _b = std::net::TcpListener::bind("127.0.0.1:1457")?;
        let taken = SignIn::run(&home, &mock, &["login", "--force"]).await?;
        assert_eq!(taken.code, Some(4), "{}", taken.output());
        let holder = format!("held by process {}", std::process::id());
        assert!(
            taken.stderr.contains("1455")
                && taken.stderr.contains("1457")
                && taken.stderr.contains(&holder)
                && taken.stderr.contains("--device"),
            "{}",
            taken.output()
        );
    }

    let timed_out = SignIn::run(&home, &mock, &["login", "--force", "--timeout", "1s"]).await?;
    assert_eq!(timed_out.code, Some(1), "{}", timed_out.output());
    assert!(
        timed_out.stderr.contains("no sign-in completed within 1s"),
        "{}",
        timed_out.output()
    );

    // A newer `codex login` stops an older sign-in holding the port with `GET /cancel`; a page
    // reaching the port through another host name cannot.
    let mut sign_in = SignIn::start(&home, &mock, &["login", "--force"])?;
    sign_in
        .printed(&format!("{}/oauth/authorize?", mock.url))
        .await?;
    let cancel = "http://127.0.0.1:1455/cancel";
    let rebound = http
        .get(cancel)
        .header("host", "evil.example:1455")
        .send()
        .await?;
    assert_eq!(rebound.status().as_u16(), 403);
    assert_eq!(http.get(cancel).send().await?.status().as_u16(), 200);
    let cancelled = sign_in.finish().await?;
    assert_eq!(cancelled.code, Some(1), "{}", cancelled.output());
    assert!(
        cancelled
            .stderr
            .contains("another sign-in asked this one to stop"),
        "{}",
        cancelled.output()
    );

    let refusals = [
        (
            json!({}),
            false,
            "access_denied",
            "cancelled in the browser",
        ),
        (
            json!({"error": "missing_codex_entitlement", "error_description": "Codex is not enabled for this workspace."}),
            true,
            "missing_codex_entitlement",
            "Codex is not enabled for this ChatGPT workspace",
        ),
    ];
    for (setting, approve, error, remedy) in refusals {
        mock.consent_setting(setting).await?;
        let mut sign_in = SignIn::start(&home, &mock, &["login", "--force"])?;
        let url = sign_in
            .printed(&format!("{}/oauth/authorize?", mock.url))
            .await?;
        let back = mock.consent(&url, approve).await?;
        assert!(back.contains(&format!("error={error}")), "{back}");
        let page = http.get(&back).send().await?.text().await?;
        assert!(page.contains(remedy), "{page}");
        let finished = sign_in.finish().await?;
        assert_eq!(finished.code, Some(1), "{}", finished.output());
        assert!(
            finished.stderr.contains(error) && finished.stderr.contains(remedy),
            "{}",
            finished.output()
        );
    }
    assert_eq!(
        home.refresh_token()?,
        before,
        "a refused sign-in changed the login"
    );
    assert_eq!(mock.stat("logins").await?, 0);
    mock.consent_setting(json!({})).await?;

    let mut sign_in = SignIn::start(&home, &mock, &["login", "--force"])?;
    let url = sign_in
        .printed(&format!("{}/oauth/authorize?", mock.url))
        .await?;
    let back = mock.consent(&url, true).await?;
    let state = back
        .split("state=")
        .nth(1)
        .unwrap_or_default()
        .split('&')
        .next()
        .unwrap_or_default()
        .to_string();
    let forged = back.replace(&format!("state={state}"), "state=forged");
    let answer = http.get(&forged).send().await?;
    assert_eq!(answer.status().as_u16(), 400);
    assert_eq!(answer.text().await?, "State mismatch");
    let answer = http.get(&back).send().await?;
    assert_eq!(answer.status().as_u16(), 302);
    assert_eq!(
        answer
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok()),
        Some("/success")
    );
    let finished = sign_in.finish().await?;
    assert_eq!(finished.code, Some(0), "{}", finished.output());
    let signed_in = home.refresh_token()?;
    assert_eq!(mock.inspect(&before).await?["family_revoked"], json!(true));

    // The code went to the browser's address bar: replaying its exchange is refused, and ends the
    // family it issued, as the real server does.
    let code = back
        .split("code=")
        .nth(1)
        .unwrap_or_default()
        .split('&')
        .next()
        .unwrap_or_default();
    let replay = http
        .post(mock.token_url())
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", "app_EMoamEEZ73f0CkXaXp7hrann"),
            ("code", code),
            ("redirect_uri", "http://127.0.0.1:1455/auth/callback"),
            ("code_verifier", &"v".repeat(64)),
        ])
        .send()
        .await?;
    assert_eq!(replay.status().as_u16(), 400);
    assert_eq!(
        mock.inspect(&signed_in).await?["family_revoked"],
        json!(true)
    );
    assert_no_secrets(&finished.output(), &[signed_in], "keyward login's output");
    Ok(())
}
