//! The checks over the network, each bounded in time: whether `keyward serve` answers on its
//! address (or another program holds the port), and whether the providers' hosts answer (with
//! the clock against theirs). Offline is a warning: keyward serves again once the hosts answer.

use std::net::SocketAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::Check;
use crate::codex::provider::CodexSettings;
use crate::commands::setup::client_origin;
use crate::config::Config;
use crate::provider;

/// How long the local server may take to accept and to answer.
const LOCAL_TIMEOUT: Duration = Duration::from_secs(2);
/// All the providers' hosts together.
const PROVIDERS_TIMEOUT: Duration = Duration::from_secs(3);
/// A provider's clock further from this machine's than this is worth a warning.
const CLOCK_SLACK_SECS: i64 = 120;

/// An HTTP client with `timeout`; `local` ones bypass a proxy (keyward's upstreams use the
/// environment's, as keyward's own client does).
fn client(timeout: Duration, local: bool) -> Option<reqwest::Client> {
    let builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout);
    let builder = if local { builder.no_proxy() } else { builder };
    builder.build().ok()
}

/// Whether `serve` answers on the configured address. Returns whether keyward runs there.
pub(super) async fn serve(config: &Config, checks: &mut Vec<Check>) -> bool {
    let name = "server";
    let origin = client_origin(config.listen);
    let address: Option<SocketAddr> = origin.trim_start_matches("http://").parse().ok();
    let Some(address) = address else {
        return false;
    };
    let connected =
        tokio::time::timeout(LOCAL_TIMEOUT, tokio::net::TcpStream::connect(address)).await;
    match connected {
        Ok(Ok(_)) => {}
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            checks.push(Check::warn(
                name,
                format!("nothing listens on {address}: keyward is not running"),
                "`keyward service install` (or `keyward serve`)",
            ));
            return false;
        }
        Ok(Err(e)) => {
            checks.push(Check::warn(
                name,
                format!("cannot connect to {address}: {e}"),
                "",
            ));
            return false;
        }
        Err(_) => {
            checks.push(Check::warn(
                name,
                format!(
                    "{address} accepts no connection within {}s",
                    LOCAL_TIMEOUT.as_secs()
                ),
                "",
            ));
            return false;
        }
    }
    let Some(http) = client(LOCAL_TIMEOUT, true) else {
        return false;
    };
    let taken = |what: String| {
        Check::fail(
            name,
            format!("{address} is taken by another program ({what}), not keyward"),
            format!(
                "stop that program (`ss -ltnp 'sport = :{}'` names it), or give keyward another address (listen in {})",
                address.port(),
                config.config_path.display()
            ),
        )
    };
    let health = match http.get(format!("{origin}/healthz")).send().await {
        Ok(response) => response,
        Err(e) => {
            checks.push(taken(format!(
                "it does not answer HTTP: {}",
                without_url(&e)
            )));
            return false;
        }
    };
    let status = health.status();
    let body: Option<Value> = health.json().await.ok();
    let keyward = match &body {
        Some(body) if body.get("profiles").is_some() => Some(
            body["version"]
                .as_str()
                .map(|v| format!("keyward {v}"))
                .unwrap_or_else(|| "keyward".into()),
        ),
        // With gateway keys, a caller without one learns only that it is alive: keyward's refusal
        // of a request without a key tells it apart.
        Some(body) if body.get("status").is_some() && is_keyward_refusal(&http, &origin).await => {
            Some("keyward".into())
        }
        _ => None,
    };
    match keyward {
        Some(what) => {
            checks.push(Check::ok(name, format!("{what} answers on {origin}")));
            true
        }
        None => {
            checks.push(taken(format!("GET /healthz answered {status}")));
            false
        }
    }
}

/// Whether `origin` refuses a request without a key as keyward does.
async fn is_keyward_refusal(http: &reqwest::Client, origin: &str) -> bool {
    let Ok(response) = http.get(format!("{origin}/v1/models")).send().await else {
        return false;
    };
    let body: Option<Value> = response.json().await.ok();
    body.is_some_and(|b| b["error"]["code"] == "invalid_api_key")
}

/// A request error without the URL (the user knows it; it would repeat the address).
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(&format!(" for url ({url})"), "");
    }
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        text = format!("{text}: {inner}");
        source = inner.source();
    }
    text
}

/// The origins keyward sends requests to, each with what it is.
fn provider_urls(config: &Config) -> Vec<(String, String)> {
    let mut urls = Vec::new();
    for codex in provider::settings_of::<CodexSettings>(config.providers()) {
        if !codex.profiles.is_empty() {
            urls.push(("the Codex backend".to_string(), codex.base_url.clone()));
            urls.push((
                "the Codex token endpoint".to_string(),
                codex.token_url.clone(),
            ));
        }
    }
    for profile in config.api_profiles() {
        urls.push((format!("{}'s API", profile.id), profile.base_url.clone()));
    }
    let mut seen = Vec::new();
    urls.retain(|(_, url)| {
        let origin = origin_of(url);
        let new = !seen.contains(&origin);
        seen.push(origin);
        new
    });
    urls
}

/// `scheme://host:port` of a URL.
fn origin_of(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}:{}",
            u.scheme(),
            u.host_str().unwrap_or_default(),
            u.port_or_known_default().unwrap_or_default()
        ),
        Err(_) => url.to_string(),
    }
}

/// Whether each provider host resolves and answers (any HTTP answer counts), all within
/// [`PROVIDERS_TIMEOUT`]; and the clock against the `Date` they answer with.
pub(super) async fn providers(config: &Config, checks: &mut Vec<Check>) {
    let urls = provider_urls(config);
    let Some(http) = client(PROVIDERS_TIMEOUT, false) else {
        return;
    };
    let probes = urls.iter().map(|(what, url)| {
        let http = http.clone();
        async move { (what, url, http.get(url.as_str()).send().await) }
    });
    let results = match tokio::time::timeout(
        PROVIDERS_TIMEOUT + Duration::from_millis(500),
        futures_util::future::join_all(probes),
    )
    .await
    {
        Ok(results) => results,
        Err(_) => {
            checks.push(Check::warn(
                "provider",
                "the providers' hosts did not answer in time: offline?",
                "keyward serves again by itself once they answer",
            ));
            return;
        }
    };
    let mut skew: Option<(String, i64)> = None;
    for (what, url, result) in results {
        let name = "provider";
        match result {
            Ok(response) => {
                let date = response
                    .headers()
                    .get(reqwest::header::DATE)
                    .and_then(|d| d.to_str().ok())
                    .and_then(|d| DateTime::parse_from_rfc2822(d).ok());
                if let Some(date) = date {
                    let off = (date.with_timezone(&Utc) - Utc::now()).num_seconds();
                    if off.abs() > CLOCK_SLACK_SECS && skew.as_ref().is_none_or(|(_, s)| off.abs() > s.abs()) {
                        skew = Some((origin_of(url), off));
                    }
                }
                checks.push(Check::ok(
                    name,
                    format!("{what} answers ({url}: HTTP {})", response.status().as_u16()),
                ));
            }
            Err(e) => checks.push(Check::warn(
                name,
                format!("{what} cannot be reached ({url}): {}", without_url(&e)),
                "offline, or a firewall or proxy in the way? keyward serves again by itself once it answers",
            )),
        }
    }
    if let Some((origin, off)) = skew {
        let direction = if off > 0 { "behind" } else { "ahead of" };
        checks.push(Check::warn(
            "clock",
            format!(
                "this machine's clock is {}s {direction} {origin}'s",
                off.abs()
            ),
            "set the clock right (e.g. `timedatectl set-ntp true`): keyward schedules refreshes by it",
        ));
    }
}
