//! A mock served on a loopback port for the endpoints' tests, with the admin
//! calls and stream parsing they share.

use reqwest::RequestBuilder;
use serde_json::Value;
use tokio::net::TcpListener;

use crate::provider_state::LoginRequest;
use crate::server::{self, AppState, ServeConfig, Shared};

pub(crate) struct TestMock {
    pub(crate) app: Shared,
    pub(crate) url: String,
    pub(crate) http: reqwest::Client,
}

impl TestMock {
    pub(crate) async fn start() -> anyhow::Result<Self> {
        let app = AppState::new(ServeConfig {
            listen: "127.0.0.1:0".into(),
            access_ttl: 3600,
            chunks: 3,
            chunk_delay_ms: 0,
        });
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        tokio::spawn(server::serve(listener, app.clone()));
        Ok(Self {
            app,
            url,
            http: reqwest::Client::new(),
        })
    }

    /// A new ChatGPT login: its access token and account id.
    pub(crate) fn login(&self, account_id: &str, plan: &str) -> (String, String) {
        let (issued, account_id) = self.app.provider().login(LoginRequest {
            account_id: Some(account_id.into()),
            plan: Some(plan.into()),
            ..LoginRequest::default()
        });
        (issued.access_token, account_id)
    }

    pub(crate) fn post(&self, path: &str) -> RequestBuilder {
        self.http.post(format!("{}{path}", self.url))
    }

    /// `POST /admin/<path>` with a JSON body; the answer's status and JSON.
    pub(crate) async fn admin(&self, path: &str, body: Value) -> anyhow::Result<(u16, Value)> {
        let response = self
            .post(&format!("/admin/{path}"))
            .json(&body)
            .send()
            .await?;
        Ok((response.status().as_u16(), response.json().await?))
    }

    pub(crate) async fn stats(&self) -> anyhow::Result<Value> {
        Ok(self
            .http
            .get(format!("{}/admin/stats", self.url))
            .send()
            .await?
            .json()
            .await?)
    }

    pub(crate) async fn requests(&self) -> anyhow::Result<Vec<Value>> {
        Ok(self
            .http
            .get(format!("{}/admin/requests", self.url))
            .send()
            .await?
            .json()
            .await?)
    }
}

/// A response header as text ("" when absent).
pub(crate) fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The frames of an event stream as an SSE client reads them: each frame's
/// `event:` name and parsed `data:`. Panics on a frame a client could not read
/// (no data, or data that is not JSON).
pub(crate) fn sse_frames(stream: &str) -> Vec<(String, Value)> {
    stream
        .split("\n\n")
        .filter(|frame| !frame.trim().is_empty())
        .map(|frame| {
            let field = |name: &str| {
                frame
                    .lines()
                    .find_map(|line| line.strip_prefix(name))
                    .map(str::trim_start)
            };
            let event = field("event:").unwrap_or_default().to_owned();
            let data = field("data:").unwrap_or_else(|| panic!("frame without data: {frame:?}"));
            let data = serde_json::from_str(data)
                .unwrap_or_else(|e| panic!("frame data is not JSON ({e}): {frame:?}"));
            (event, data)
        })
        .collect()
}
