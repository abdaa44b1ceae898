//! "Sign in with ChatGPT" as the Codex CLI performs it, so the login keyward writes is one the CLI
//! itself uses: a browser sign-in with PKCE and a loopback callback ([`pkce`], [`callback`]), or the
//! device-code sign-in for machines without a browser ([`device`]); the code exchange
//! ([`exchange`]); the new login written into a Codex home under the CLI's locks and keyward's
//! journal ([`install`]); and revoking a login being replaced or removed ([`revoke`]). The command
//! that drives them is `crate::commands::login`.

pub(crate) mod callback;
pub(crate) mod device;
mod error;
pub(crate) mod exchange;
mod http;
pub(crate) mod install;
pub(crate) mod pkce;
mod port_holder;
pub(crate) mod revoke;

pub(crate) use error::LoginError;

/// Why a URL does not parse.
pub(crate) type UrlError = <reqwest::Url as std::str::FromStr>::Err;

/// The scopes the Codex CLI 0.169 asks for.
pub(crate) const SCOPES: &str =
    "openid profile email offline_access api.connectors.read api.connectors.invoke";

/// The page a browser is sent to: the CLI's parameters, in its order. Only the PKCE challenge and
/// the state are per sign-in, and neither is a secret.
pub(crate) fn authorize_url(
    issuer: &str,
    redirect_uri: &str,
    challenge: &str,
    state: &str,
) -> Result<reqwest::Url, UrlError> {
    let mut url = reqwest::Url::parse(&format!("{issuer}/oauth/authorize"))?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", super::CLIENT_ID)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("state", state)
        .append_pair("scope", SCOPES)
        .append_pair("id_token_add_organizations", "true")
        .append_pair("codex_cli_simplified_flow", "true")
        .append_pair("originator", "codex_cli_rs");
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The authorize URL is the one the Codex CLI 0.169 prints, parameter for parameter.
    #[test]
    fn authorize_url_is_the_clis() -> Result<(), UrlError> {
        let url = authorize_url(
            "https://auth.openai.com",
            "http://127.0.0.1:1455/auth/callback",
            "CHALLENGE",
            "STATE",
        )?;
        assert_eq!(
            url.as_str(),
            "https://auth.openai.com/oauth/authorize?response_type=code&client_id=app_EMoamEEZ73f0CkXaXp7hrann&redirect_uri=http%3A%2F%2F127.0.0.1%3A1455%2Fauth%2Fcallback&code_challenge=CHALLENGE&code_challenge_method=S256&state=STATE&scope=openid+profile+email+offline_access+api.connectors.read+api.connectors.invoke&id_token_add_organizations=true&codex_cli_simplified_flow=true&originator=codex_cli_rs"
        );
        Ok(())
    }
}
