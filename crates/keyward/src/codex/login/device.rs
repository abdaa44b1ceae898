//! The device-code sign-in, for machines without a browser. Not RFC 8628: the Codex CLI's own
//! protocol. A JSON POST of the client id to `{issuer}/api/accounts/deviceauth/usercode` gets a
//! device id, the code the user types at `{issuer}/codex/device`, and a poll interval (a number or
//! a string); `{issuer}/api/accounts/deviceauth/token` is then polled every interval, 403 and 404
//! meaning "not yet", until it hands over an authorization code with the PKCE pair the server made.
//! The code is exchanged with `redirect_uri={issuer}/deviceauth/callback`.

use std::time::Duration;

use tokio::time::Instant;

use super::exchange::Authorization;
use super::http::{self, json_object, required};
use super::LoginError;
use crate::codex::CLIENT_ID;
use crate::secret::Secret;

/// Each request of the flow is given this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The server's interval, kept sane: at least a second, at most a minute.
const MIN_INTERVAL: Duration = Duration::from_secs(1);
const MAX_INTERVAL: Duration = Duration::from_secs(60);
const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);

/// A device code the user is to approve.
pub(crate) struct DeviceCode {
    /// Polled with, never shown.
    device_auth_id: Secret,
    /// Shown to the user, to type in on the provider's page.
    pub user_code: String,
    /// Where the user types it.
    pub verification_url: String,
    pub interval: Duration,
}

pub(crate) async fn request_code(
    http: &reqwest::Client,
    issuer: &str,
) -> Result<DeviceCode, LoginError> {
    let url = format!("{issuer}/api/accounts/deviceauth/usercode");
    let body = serde_json::json!({ "client_id": CLIENT_ID });
    let answer = http::send(http.post(&url).json(&body), &url, REQUEST_TIMEOUT).await?;
    if answer.status == 404 {
        return Err(LoginError::DeviceNotEnabled);
    }
    if !answer.is_success() {
        return Err(answer.failure(&url));
    }
    let object = json_object(&answer, &url)?;
    Ok(DeviceCode {
        device_auth_id: Secret::new(required(&object, "device_auth_id", &url)?),
        user_code: required(&object, "user_code", &url)?,
        verification_url: format!("{issuer}/codex/device"),
        interval: interval(object.get("interval")),
    })
}

/// `interval` as the server sends it: seconds, as a number or a string.
fn interval(value: Option<&serde_json::Value>) -> Duration {
    let secs = match value {
        Some(serde_json::Value::Number(n)) => n.as_f64(),
        Some(serde_json::Value::String(s)) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    secs.filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(DEFAULT_INTERVAL)
        .clamp(MIN_INTERVAL, MAX_INTERVAL)
}

/// Polls until the user approves `code`, giving up at `deadline`.
pub(crate) async fn wait_for_approval(
    http: &reqwest::Client,
    issuer: &str,
    code: &DeviceCode,
    deadline: Instant,
    waited: Duration,
) -> Result<Authorization, LoginError> {
    let url = format!("{issuer}/api/accounts/deviceauth/token");
    loop {
        let pause = code
            .interval
            .min(deadline.saturating_duration_since(Instant::now()));
        tokio::time::sleep(pause).await;
        if Instant::now() >= deadline {
            return Err(LoginError::TimedOut { waited });
        }
        let body = serde_json::json!({
            "device_auth_id": code.device_auth_id.expose(),
            "user_code": code.user_code,
        });
        let answer = http::send(http.post(&url).json(&body), &url, REQUEST_TIMEOUT).await?;
        match answer.status {
            403 | 404 => continue,
            _ if answer.is_success() => {}
            _ => return Err(answer.failure(&url)),
        }
        let object = json_object(&answer, &url)?;
        return Ok(Authorization {
            code: Secret::new(required(&object, "authorization_code", &url)?),
            redirect_uri: format!("{issuer}/deviceauth/callback"),
            verifier: Secret::new(required(&object, "code_verifier", &url)?),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The interval may come as a number or a string; nonsense falls back to the default and
    /// extremes are bounded.
    #[test]
    fn interval_is_read_as_number_or_string() {
        assert_eq!(interval(Some(&json!(5))), Duration::from_secs(5));
        assert_eq!(interval(Some(&json!("3"))), Duration::from_secs(3));
        assert_eq!(interval(Some(&json!("soon"))), DEFAULT_INTERVAL);
        assert_eq!(interval(None), DEFAULT_INTERVAL);
        assert_eq!(interval(Some(&json!(0))), MIN_INTERVAL);
        assert_eq!(interval(Some(&json!(-4))), DEFAULT_INTERVAL);
        assert_eq!(interval(Some(&json!("86400"))), MAX_INTERVAL);
    }
}
