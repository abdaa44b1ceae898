//! The code exchange: an authorization code (from the browser's return, or a device approval) and
//! its PKCE verifier become the login's first tokens. A form POST to `{issuer}/oauth/token`, as the
//! Codex CLI sends it; the answer must hold all three tokens.

use std::time::Duration;

use super::http::{self, json_object, required};
use super::LoginError;
use crate::codex::CLIENT_ID;
use crate::credential::TokenAnswer;
use crate::secret::Secret;

/// What the provider handed back for one sign-in, ready to exchange.
pub(crate) struct Authorization {
    pub code: Secret,
    /// The `redirect_uri` the code was issued for (the exchange must repeat it).
    pub redirect_uri: String,
    pub verifier: Secret,
}

/// A new login's tokens; every one is required.
#[derive(Clone)]
pub(crate) struct LoginTokens {
    pub id_token: Secret,
    pub access_token: Secret,
    pub refresh_token: Secret,
}

impl LoginTokens {
    /// The tokens as keyward's journal keeps an answer.
    pub(crate) fn answer(&self) -> TokenAnswer {
        TokenAnswer {
            access_token: self.access_token.clone(),
            refresh_token: Some(self.refresh_token.clone()),
            id_token: Some(self.id_token.clone()),
        }
    }
}

pub(crate) async fn exchange(
    http: &reqwest::Client,
    token_url: &str,
    authorization: &Authorization,
    timeout: Duration,
) -> Result<LoginTokens, LoginError> {
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", CLIENT_ID),
        ("code", authorization.code.expose()),
        ("redirect_uri", authorization.redirect_uri.as_str()),
        ("code_verifier", authorization.verifier.expose()),
    ];
    let answer = http::send(http.post(token_url).form(&form), token_url, timeout).await?;
    if !answer.is_success() {
        return Err(answer.failure(token_url));
    }
    let object = json_object(&answer, token_url)?;
    let token = |key: &str| required(&object, key, token_url).map(Secret::new);
    Ok(LoginTokens {
        id_token: token("id_token")?,
        access_token: token("access_token")?,
        refresh_token: token("refresh_token")?,
    })
}
