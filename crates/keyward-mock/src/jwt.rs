//! Unsigned-in-spirit JWTs: the mock recognises its tokens by exact lookup,
//! so the signature only has to look like one to clients that never verify it.

use anyhow::{anyhow, Context, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

pub(crate) const ISSUER: &str = "https://auth.openai.com";
pub(crate) const AUDIENCE: &str = "https://api.openai.com/v1";
pub(crate) const AUTH_CLAIM: &str = "https://api.openai.com/auth";

/// Who a token speaks for; the same for every token of one family.
#[derive(Clone, Debug)]
pub(crate) struct Identity {
    pub(crate) account_id: String,
    pub(crate) email: String,
    pub(crate) plan: String,
}

/// `n` random bytes, base64url without padding.
pub(crate) fn random_b64(n: usize) -> String {
    let bytes: Vec<u8> = (0..n).map(|_| rand::random::<u8>()).collect();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `n` random bytes as lowercase hex, for ids that must stay plain
/// alphanumerics (account, response and message ids).
pub(crate) fn random_hex(n: usize) -> String {
    (0..n)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

/// `n` random ASCII letters and digits, the alphabet of the backend's call ids.
pub(crate) fn random_alnum(n: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..n)
        .map(|_| {
            let pick = rand::random_range(0..ALPHABET.len());
            char::from(ALPHABET.get(pick).copied().unwrap_or(b'0'))
        })
        .collect()
}

/// A JWT whose payload has the shape of ChatGPT's access and id tokens.
pub(crate) fn mint(identity: &Identity, iat: i64, ttl: i64) -> String {
    let header = json!({"alg": "HS256", "typ": "JWT"});
    let exp = iat.saturating_add(ttl);
    let payload = json!({
        "iss": ISSUER,
        "aud": [AUDIENCE],
        "sub": format!("user-{}", identity.account_id),
        "iat": iat,
        "exp": exp,
        "jti": random_b64(16),
        "email": identity.email,
        AUTH_CLAIM: {
            "chatgpt_account_id": identity.account_id,
            "chatgpt_plan_type": identity.plan,
            "chatgpt_user_id": format!("user-{}", identity.account_id),
        },
    });
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        random_b64(32)
    )
}

/// The payload of a JWT, without verifying anything (as the Codex CLI does
/// when it only wants `exp`).
pub(crate) fn decode_payload(token: &str) -> Result<Value> {
    let mut parts = token.split('.');
    let payload = match (parts.next(), parts.next(), parts.next()) {
        (Some(_), Some(payload), Some(_)) => payload,
        _ => return Err(anyhow!("not a JWT: expected three dot-separated parts")),
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .context("JWT payload is not base64url")?;
    serde_json::from_slice(&bytes).context("JWT payload is not JSON")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_token_round_trips() -> Result<()> {
        let id = Identity {
            account_id: "acct-1".into(),
            email: "a@b.c".into(),
            plan: "plus".into(),
        };
        let token = mint(&id, 1000, 60);
        let payload = decode_payload(&token)?;
        assert_eq!(payload["exp"], 1060);
        assert_eq!(payload[AUTH_CLAIM]["chatgpt_account_id"], "acct-1");
        assert_eq!(payload["sub"], "user-acct-1");
        Ok(())
    }
}
