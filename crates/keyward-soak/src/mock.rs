//! The mock provider's test controls (`/admin/*`), as the soak uses them.

use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{json, Value};

#[derive(Clone)]
pub(crate) struct MockAdmin {
    url: String,
    http: reqwest::Client,
}

/// One call of the token endpoint, as `/admin/log` records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TokenCall {
    pub(crate) at_ms: i64,
    /// The first 10 characters of the refresh token presented.
    pub(crate) token_prefix: String,
    /// `rotated`, `reused`, `invalidated`, `invalid_grant`, `fault:<kind>`, ...
    pub(crate) outcome: String,
    /// The injected fault this call met, if any.
    pub(crate) fault: Option<String>,
}

impl MockAdmin {
    pub(crate) fn new(url: &str) -> Result<Self> {
        Ok(Self {
            url: url.trim_end_matches('/').to_owned(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
        })
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value> {
        let url = format!("{}/admin/{path}", self.url);
        let response = self
            .http
            .post(&url)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        anyhow::ensure!(status.is_success(), "POST {url}: {status} {answer}");
        Ok(answer)
    }

    async fn get(&self, path: &str) -> Result<Value> {
        let url = format!("{}/admin/{path}", self.url);
        Ok(self
            .http
            .get(&url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?
            .error_for_status()?
            .json()
            .await?)
    }

    pub(crate) async fn stats(&self) -> Result<Value> {
        self.get("stats").await
    }

    pub(crate) async fn token_calls(&self) -> Result<Vec<TokenCall>> {
        let log = self.get("log").await?;
        Ok(log
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|record| TokenCall {
                at_ms: record["at_ms"].as_i64().unwrap_or_default(),
                token_prefix: record["token_prefix"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                outcome: record["outcome"].as_str().unwrap_or_default().to_owned(),
                fault: record["fault"].as_str().map(str::to_owned),
            })
            .collect())
    }

    /// `{"known","current","family_revoked","generation"}` of a refresh token.
    pub(crate) async fn inspect(&self, refresh_token: &str) -> Result<Value> {
        self.post("inspect", json!({"refresh_token": refresh_token}))
            .await
    }

    pub(crate) async fn token_faults(&self, faults: Value) -> Result<()> {
        self.post("token_faults", faults).await.map(drop)
    }

    pub(crate) async fn response_faults(&self, faults: Value) -> Result<()> {
        self.post("response_faults", faults).await.map(drop)
    }

    pub(crate) async fn ttl_queue(&self, ttls: Value) -> Result<()> {
        self.post("ttl_queue", ttls).await.map(drop)
    }

    /// Limits `account` for `secs` seconds (0 lifts the limit).
    pub(crate) async fn usage_limit(&self, account: &str, secs: u64) -> Result<()> {
        self.post(
            "usage_limit",
            json!({"account_id": account, "resets_in_seconds": secs}),
        )
        .await
        .map(drop)
    }

    /// One token call with a refresh token no family has: it meets the next queued token fault
    /// (if any) and touches no lineage.
    pub(crate) async fn spend_nothing(&self) {
        let _ = self
            .http
            .post(format!("{}/oauth/token", self.url))
            .json(
                &json!({"grant_type": "refresh_token", "refresh_token": "rt_soak_drains_a_fault"}),
            )
            .send()
            .await;
    }

    /// One Codex backend request without credentials: it meets the next queued response fault
    /// (faults come before the token check) and serves nothing.
    pub(crate) async fn ask_nothing(&self) {
        let _ = self
            .http
            .post(format!("{}/backend-api/codex/responses", self.url))
            .body("{}")
            .send()
            .await;
    }
}

/// A number from the mock's stats.
pub(crate) fn stat(stats: &Value, name: &str) -> u64 {
    stats.get(name).and_then(Value::as_u64).unwrap_or(0)
}
