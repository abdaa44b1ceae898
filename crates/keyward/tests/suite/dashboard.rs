//! The dashboard in a real headless Chromium: the page loads with no console error and no
//! request leaving keyward's origin, shows the profiles, the usage windows as gauges and the
//! charts for a scripted week of usage, and updates when a request is served; with gateway keys
//! it asks for one and keeps the session in an `HttpOnly`, `SameSite=Strict` cookie that opens
//! nothing but the dashboard's data; a page of another origin cannot read it. The test run keeps
//! a screenshot (`target/dashboard.png`; the README shows a copy from `docs/`).

use std::path::PathBuf;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

const KEY: &str = "kw-dashboard-key-0123456789";

/// Two logins (acct-a and acct-b), a scripted week of usage in the store, and keyward serving
/// them with `config` and `env`; each login has answered once, so its windows are known.
async fn with_history(config: &str, env: &[(&str, &str)]) -> Result<(Mock, Home, Keyward)> {
    let mock = Mock::start().await?;
    let home = Home::new()?;
    home.write_login(&mock.login_as("acct-a").await?)?;
    let work = home.other_codex_home("work")?;
    home.write_login_at(&work, &mock.login_as("acct-b").await?)?;
    home.write_config(&format!(
        "[[codex.profiles]]\nname = \"work\"\nhome = \"{}\"\n{config}",
        work.display()
    ))?;
    mock.usage_setting(
        "acct-a",
        json!({"primary_used_percent": 62.0, "secondary_used_percent": 35.0}),
    )
    .await?;
    mock.usage_setting(
        "acct-b",
        json!({"primary_used_percent": 18.0, "secondary_used_percent": 71.0}),
    )
    .await?;
    // keyward makes its store; the past is then written into it.
    let created = run_keyward(&home, &mock, &["usage"], env)?;
    anyhow::ensure!(created.status.success(), "{}", text_of(&created));
    seed_usage_history(&home.keyward_home().join("keyward.db"), chrono::Utc::now())?;
    let keyward = Keyward::serve_with(&home, &mock, env).await?;
    for profile in ["openai-codex:default", "openai-codex:work"] {
        let mut request = reqwest::Client::new()
            .post(format!("{}/v1/chat/completions", keyward.url))
            .header("x-keyward-profile", profile)
            .header("user-agent", "claude-cli/2.1.332 (external, cli)")
            .json(&json!({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "hi"}]}));
        if !env.is_empty() || !config.is_empty() {
            request = request.bearer_auth(KEY);
        }
        let status = request.send().await?.status();
        anyhow::ensure!(status == 200, "{profile}: {status}");
    }
    Ok((mock, home, keyward))
}

/// A page on another local port that tries to read `target` and says in its title what it got.
async fn other_origin(target: &str) -> Result<(String, tokio::task::JoinHandle<()>)> {
    let page = format!(
        r#"<!doctype html><title>waiting</title><script>
fetch("{target}", {{credentials: "include"}})
  .then((answer) => answer.text())
  .then((text) => {{ document.title = "read: " + text.slice(0, 60); }})
  .catch((error) => {{ document.title = "blocked: " + error.name; }});
</script>"#
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://127.0.0.1:{}/", listener.local_addr()?.port());
    let server = tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let page = page.clone();
            tokio::spawn(async move {
                let mut head = [0u8; 8192];
                let _ = socket.read(&mut head).await;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                    page.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    Ok((url, server))
}

/// What the other origin's page got: its title once it has one.
async fn other_origin_result(browser: &Browser, url: &str) -> Result<String> {
    browser.goto(url).await?;
    let title = browser
        .wait_for(
            "the other origin's page to finish",
            "return document.title === 'waiting' ? null : document.title;",
        )
        .await?;
    Ok(title.as_str().unwrap_or_default().to_string())
}

/// The console's errors and any policy violation.
async fn console_problems(browser: &Browser) -> Result<Vec<String>> {
    Ok(browser
        .console()
        .await?
        .into_iter()
        .filter(|line| line.starts_with("SEVERE") || line.contains("Content Security Policy"))
        .collect())
}

fn dashboard_requests(metrics: &str, status: u16) -> f64 {
    let name = format!(
        "keyward_requests_total{{route=\"dashboard\",dialect=\"none\",status=\"{status}\",profile=\"\"}}"
    );
    metrics
        .lines()
        .find(|line| line.starts_with(&name))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Without keys: the page shows both profiles, four gauges, the week's charts and the latest
/// requests, with no console error and nothing loaded from elsewhere; a request served appears
/// by itself; a page of another origin cannot read the data; a rebound host name is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_the_pool_and_its_usage_and_updates_itself() -> Result<()> {
    let Some(browser) = Browser::start().await? else {
        return Ok(());
    };
    let (_mock, _home, keyward) = with_history("", &[]).await?;
    browser.goto(&format!("{}/", keyward.url)).await?;
    // The requests `with_history` sent reach the page once the ledger's writer has written them.
    browser
        .wait_for(
            "both profiles and the requests just served",
            "return document.querySelectorAll('#profiles .profile').length === 2
                && document.querySelector('#requests tbody').innerText.includes('claude-sonnet-4-5 → gpt-6.1-sol');",
        )
        .await?;
    let shown = browser
        .execute(
            r#"return {
                profiles: [...document.querySelectorAll('#profiles .profile')].map((p) => p.dataset.profile),
                gauges: [...document.querySelectorAll('#windows .gauge')].map((g) => g.dataset.window),
                resets: [...document.querySelectorAll('#windows .gauge .tick')].map((t) => t.textContent),
                week: document.querySelectorAll('#chart-week-key rect.bar').length,
                day: document.querySelectorAll('#chart-day-client rect.bar').length,
                legend: document.querySelector('#chart-week-key .legend').textContent,
                requests: document.querySelectorAll('#requests tbody tr').length,
                text: document.body.innerText,
            };"#,
            json!([]),
        )
        .await?;
    assert_eq!(
        shown["profiles"],
        json!(["openai-codex:default", "openai-codex:work"]),
        "{shown}"
    );
    assert_eq!(
        shown["gauges"],
        json!([
            "openai-codex:default/primary",
            "openai-codex:default/secondary",
            "openai-codex:work/primary",
            "openai-codex:work/secondary"
        ])
    );
    assert!(
        shown["resets"].as_array().is_some_and(|r| r
            .iter()
            .all(|t| t.as_str().unwrap_or("").starts_with("resets in "))),
        "{shown}"
    );
    assert!(
        shown["week"].as_u64().unwrap_or(0) >= 28 * 3,
        "every 6 hours of the week, by key: {shown}"
    );
    assert!(shown["day"].as_u64().unwrap_or(0) >= 20, "{shown}");
    for name in ["claude-code", "scripts", "agent", "(no key)"] {
        assert!(
            shown["legend"].as_str().unwrap_or("").contains(name),
            "{shown}"
        );
    }
    assert!(shown["requests"].as_u64().unwrap_or(0) >= 10, "{shown}");
    let text = shown["text"].as_str().unwrap_or_default();
    for expected in [
        "acct-a",
        "generation 1",
        "62%",
        "71%",
        "claude-sonnet-4-5 → gpt-6.1-sol",
    ] {
        assert!(text.contains(expected), "{expected} in {text}");
    }
    assert!(
        !text.contains("@example.com"),
        "no e-mail for a caller without a key"
    );

    let loaded = browser
        .execute(
            "return [location.href, ...performance.getEntriesByType('resource').map((e) => e.name)];",
            json!([]),
        )
        .await?;
    let loaded: Vec<String> = serde_json::from_value(loaded)?;
    assert!(
        loaded.len() >= 4,
        "the page, its script, style, icon and data: {loaded:?}"
    );
    for url in &loaded {
        assert!(
            url.starts_with(&format!("{}/", keyward.url)),
            "{url} is not keyward's"
        );
    }
    assert_eq!(console_problems(&browser).await?, Vec::<String>::new());

    let screenshot = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/dashboard.png");
    std::fs::create_dir_all(screenshot.parent().unwrap_or(&screenshot))?;
    std::fs::write(&screenshot, browser.screenshot().await?)?;
    println!(
        "figures: the dashboard's screenshot is {}",
        screenshot.display()
    );

    let (status, _, _) = keyward
        .post(
            "/v1/chat/completions",
            &json!({"model": "gpt-6-luna", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await?;
    assert_eq!(status, 200);
    browser
        .wait_for(
            "the request served to appear by itself",
            "return document.querySelector('#requests tbody').innerText.includes('gpt-6-luna');",
        )
        .await?;

    let (other, _server) = other_origin(&format!("{}/dashboard/api/state", keyward.url)).await?;
    let result = other_origin_result(&browser, &other).await?;
    assert!(
        result.starts_with("blocked"),
        "another origin read the dashboard: {result}"
    );
    let metrics = reqwest::get(format!("{}/metrics", keyward.url))
        .await?
        .text()
        .await?;
    assert!(
        dashboard_requests(&metrics, 403) >= 1.0,
        "keyward refused it: {metrics}"
    );

    let rebound = reqwest::Client::new()
        .get(format!("{}/dashboard/api/state", keyward.url))
        .header("host", "rebound.example")
        .send()
        .await?;
    assert_eq!(rebound.status(), 403, "a rebound name");
    Ok(())
}

/// With gateway keys: the page asks for one, refuses a wrong one, and signs in with a right one
/// into an `HttpOnly`, `SameSite=Strict` session cookie (no key in it) that opens the dashboard's
/// data and nothing else: not the model API, not `/metrics`, not even from the page itself; a
/// page of another origin cannot ride it; signing out ends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_keys_the_dashboard_asks_for_one_and_its_session_opens_nothing_else() -> Result<()> {
    let Some(browser) = Browser::start().await? else {
        return Ok(());
    };
    let config = format!("\n[[gateway.keys]]\nname = \"claude-code\"\nkey = \"{KEY}\"\n");
    let (_mock, _home, keyward) = with_history(&config, &[]).await?;
    browser.goto(&format!("{}/", keyward.url)).await?;
    browser
        .wait_for(
            "the sign-in",
            "return !document.getElementById('login').hidden;",
        )
        .await?;
    assert_eq!(
        browser
            .execute("return document.getElementById('board').hidden;", json!([]))
            .await?,
        json!(true)
    );
    browser
        .type_into("#key", "kw-not-a-key-of-keyward-000")
        .await?;
    browser.click("#sign-in").await?;
    browser
        .wait_for(
            "a wrong key refused",
            "return document.getElementById('login-message').textContent.includes('not one of');",
        )
        .await?;
    browser.type_into("#key", KEY).await?;
    browser.click("#sign-in").await?;
    browser
        .wait_for(
            "the dashboard after signing in",
            "return document.querySelectorAll('#profiles .profile').length === 2;",
        )
        .await?;
    assert_eq!(browser.text("#viewer").await?, "signed in as claude-code");
    assert!(
        browser
            .text("#profiles")
            .await?
            .contains("acct-a@example.com"),
        "a key's holder sees the e-mail addresses"
    );
    assert_eq!(console_problems(&browser).await?, Vec::<String>::new());

    // The cookie is scoped to the dashboard's endpoints, so the page's own cookie jar for `/`
    // does not list it: read it where it applies.
    browser
        .goto(&format!("{}/dashboard/api/state", keyward.url))
        .await?;
    let cookies = browser.cookies().await?;
    let session: Value = cookies
        .iter()
        .find(|c| c["name"] == "keyward_session")
        .cloned()
        .unwrap_or_default();
    assert_eq!(session["httpOnly"], json!(true), "{cookies:?}");
    assert_eq!(session["sameSite"], "Strict");
    assert_eq!(session["path"], "/dashboard/api");
    let id = session["value"].as_str().unwrap_or_default().to_string();
    assert_eq!(id.len(), 64);
    assert!(!id.contains(KEY) && !KEY.contains(&id));
    let with_cookie = |method: reqwest::Method, path: &str| {
        reqwest::Client::new()
            .request(method, format!("{}{path}", keyward.url))
            .header("cookie", format!("keyward_session={id}"))
    };
    let data: Value = with_cookie(reqwest::Method::GET, "/dashboard/api/state")
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(
        data["viewer"], "claude-code",
        "the cookie opens the dashboard's data"
    );
    let spend = with_cookie(reqwest::Method::POST, "/v1/chat/completions")
        .json(&json!({"model": "gpt-6.1-sol", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await?;
    assert_eq!(
        spend.status(),
        401,
        "the cookie does not open the model API"
    );
    assert_eq!(
        with_cookie(reqwest::Method::GET, "/metrics")
            .send()
            .await?
            .status(),
        401
    );
    browser.goto(&format!("{}/", keyward.url)).await?;
    let from_page = browser
        .execute(
            r#"return fetch('/v1/chat/completions', {method: 'POST', credentials: 'include',
                headers: {'content-type': 'application/json'},
                body: JSON.stringify({model: 'gpt-6.1-sol', messages: [{role: 'user', content: 'hi'}]})})
              .then((answer) => answer.status);"#,
            json!([]),
        )
        .await?;
    assert!(
        from_page == json!(401) || from_page == json!(403),
        "the page spent the subscription: {from_page}"
    );

    let (other, _server) = other_origin(&format!("{}/dashboard/api/state", keyward.url)).await?;
    let result = other_origin_result(&browser, &other).await?;
    assert!(
        result.starts_with("blocked"),
        "another origin rode the session: {result}"
    );

    browser.goto(&format!("{}/", keyward.url)).await?;
    browser
        .wait_for(
            "the dashboard again",
            "return !document.getElementById('board').hidden;",
        )
        .await?;
    browser.click("#logout").await?;
    browser
        .wait_for(
            "the sign-in after signing out",
            "return !document.getElementById('login').hidden;",
        )
        .await?;
    let after: Value = with_cookie(reqwest::Method::GET, "/dashboard/api/state")
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(
        after,
        json!({"login_required": true}),
        "signing out ends the session"
    );
    Ok(())
}
