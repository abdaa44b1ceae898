//! Revoking a login's refresh token, as `codex logout` does: a JSON POST of the token, its type
//! hint and the client id to `{issuer}/oauth/revoke`, given 10 seconds. The provider then ends the
//! whole token family. A failure is reported by the caller, never fatal: the login is gone from
//! the file either way.

use std::time::Duration;

use super::http;
use super::LoginError;
use crate::codex::CLIENT_ID;
use crate::secret::Secret;

const REVOKE_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) async fn revoke(
    http: &reqwest::Client,
    revoke_url: &str,
    refresh_token: &Secret,
) -> Result<(), LoginError> {
    let body = serde_json::json!({
        "token": refresh_token.expose(),
        "token_type_hint": "refresh_token",
        "client_id": CLIENT_ID,
    });
    let answer = http::send(
        http.post(revoke_url).json(&body),
        revoke_url,
        REVOKE_TIMEOUT,
    )
    .await?;
    if answer.is_success() {
        Ok(())
    } else {
        Err(answer.failure(revoke_url))
    }
}
