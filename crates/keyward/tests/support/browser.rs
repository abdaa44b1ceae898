//! A real headless browser for the sign-in and dashboard tests: Debian's `chromium`, driven
//! through `chromedriver` over WebDriver (plain HTTP requests, no client library), with its
//! console kept (`goog:loggingPrefs`). `scripts/install-peers` installs both; without them a test
//! skips, except under CI.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{Result, PATIENCE};

/// Where a system program is: `$env` if set, else the first of `candidates` that exists. `None`
/// (the test then skips) when none does, except under CI, where that fails the test.
fn system_peer(env: &str, candidates: &[&str], what: &str) -> Option<PathBuf> {
    let found = std::env::var_os(env)
        .map(PathBuf::from)
        .into_iter()
        .chain(candidates.iter().map(PathBuf::from))
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{what} is not installed: CI must run scripts/install-peers"
        );
        eprintln!("SKIPPED: {what} is not installed; run ./scripts/install-peers");
    }
    found
}

pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::Client,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// A headless Chromium session, or `None` when Chromium or its driver is not installed.
    pub async fn start() -> Result<Option<Self>> {
        let Some(chromium) = system_peer(
            "KEYWARD_CHROMIUM",
            &["/usr/lib/chromium/chromium", "/usr/bin/chromium"],
            "Chromium",
        ) else {
            return Ok(None);
        };
        let Some(driver) = system_peer(
            "KEYWARD_CHROMEDRIVER",
            &["/usr/bin/chromedriver"],
            "chromedriver",
        ) else {
            return Ok(None);
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let driver = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let profile = tempfile::tempdir()?;
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + PATIENCE;
        loop {
            let ready = http.get(format!("{base}/status")).send().await;
            if let Ok(answer) = ready {
                let status: Value = answer.json().await.unwrap_or_default();
                if status["value"]["ready"] == json!(true) {
                    break;
                }
            }
            anyhow::ensure!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let args = [
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            "--window-size=1400,1900".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let mut browser = Self {
            driver,
            base,
            session: String::new(),
            http,
            _profile: profile,
        };
        let created = browser.call("POST", "/session", capabilities).await?;
        browser.session = created["sessionId"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("no session: {created}"))?
            .to_string();
        Ok(Some(browser))
    }

    /// One WebDriver command; its `value`, or an error with WebDriver's message.
    async fn call(&self, method: &str, path: &str, body: Value) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let request = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body),
        };
        let answer: Value = request.send().await?.json().await?;
        let value = answer["value"].clone();
        if let Some(error) = value.get("error") {
            anyhow::bail!("webdriver {method} {path}: {error}: {}", value["message"]);
        }
        Ok(value)
    }

    fn session_path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    pub async fn goto(&self, url: &str) -> Result<()> {
        self.call("POST", &self.session_path("/url"), json!({ "url": url }))
            .await
            .map(drop)
    }

    pub async fn current_url(&self) -> Result<String> {
        let url = self
            .call("GET", &self.session_path("/url"), Value::Null)
            .await?;
        Ok(url.as_str().unwrap_or_default().to_string())
    }

    /// The element `css` selects, waiting for it to appear.
    async fn element(&self, css: &str) -> Result<String> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let found = self
                .call(
                    "POST",
                    &self.session_path("/element"),
                    json!({"using": "css selector", "value": css}),
                )
                .await;
            if let Ok(element) = found {
                if let Some(id) = element.as_object().and_then(|o| o.values().next()) {
                    return Ok(id.as_str().unwrap_or_default().to_string());
                }
            }
            anyhow::ensure!(Instant::now() < deadline, "no element {css} appeared");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page; its return value.
    pub async fn execute(&self, script: &str, args: Value) -> Result<Value> {
        self.call(
            "POST",
            &self.session_path("/execute/sync"),
            json!({"script": script, "args": args}),
        )
        .await
    }

    /// Runs `script` until it returns something truthy; that value.
    pub async fn wait_for(&self, what: &str, script: &str) -> Result<Value> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let value = self.execute(script, json!([])).await?;
            if !matches!(&value, Value::Null | Value::Bool(false))
                && value != json!(0)
                && value != json!("")
            {
                return Ok(value);
            }
            anyhow::ensure!(Instant::now() < deadline, "gave up waiting for: {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Types `text` into the element `css` selects.
    pub async fn type_into(&self, css: &str, text: &str) -> Result<()> {
        let element = self.element(css).await?;
        self.call(
            "POST",
            &self.session_path(&format!("/element/{element}/value")),
            json!({ "text": text }),
        )
        .await
        .map(drop)
    }

    /// The page as a PNG.
    pub async fn screenshot(&self) -> Result<Vec<u8>> {
        use base64::Engine;
        let encoded = self
            .call("GET", &self.session_path("/screenshot"), Value::Null)
            .await?;
        Ok(base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().unwrap_or_default())?)
    }

    /// The console's messages since the last call, each `LEVEL message`.
    pub async fn console(&self) -> Result<Vec<String>> {
        let entries = self
            .call(
                "POST",
                &self.session_path("/se/log"),
                json!({"type": "browser"}),
            )
            .await?;
        Ok(entries
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                format!(
                    "{} {}",
                    e["level"].as_str().unwrap_or(""),
                    e["message"].as_str().unwrap_or("")
                )
            })
            .collect())
    }

    /// The cookies the browser holds for the current page.
    pub async fn cookies(&self) -> Result<Vec<Value>> {
        let cookies = self
            .call("GET", &self.session_path("/cookie"), Value::Null)
            .await?;
        Ok(cookies.as_array().cloned().unwrap_or_default())
    }

    pub async fn click(&self, css: &str) -> Result<()> {
        let element = self.element(css).await?;
        self.call(
            "POST",
            &self.session_path(&format!("/element/{element}/click")),
            json!({}),
        )
        .await
        .map(drop)
    }

    /// The text of the element `css` selects, once it appears.
    pub async fn text(&self, css: &str) -> Result<String> {
        let element = self.element(css).await?;
        let text = self
            .call(
                "GET",
                &self.session_path(&format!("/element/{element}/text")),
                Value::Null,
            )
            .await?;
        Ok(text.as_str().unwrap_or_default().to_string())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ending the session ends Chromium (killing the driver alone would leave it running).
        // Drop cannot await: a plain blocking request on a socket.
        let address = self.base.trim_start_matches("http://").to_string();
        if let Ok(mut socket) = std::net::TcpStream::connect(&address) {
            let _ = socket.set_read_timeout(Some(PATIENCE));
            let request = format!(
                "DELETE /session/{} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                self.session
            );
            let _ = socket.write_all(request.as_bytes());
            // The answer comes once Chromium has quit; the driver may keep the socket open after.
            let _ = socket.read(&mut [0u8; 1024]);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
