//! The claims of the Codex CLI's tokens (OpenAI's JWTs: the standard `exp`, `iat` and `email`,
//! and the ChatGPT account, plan and user under `https://api.openai.com/auth`), decoded without
//! verifying the signature.
//!
//! They are trusted for scheduling (when to refresh) and display only: the provider is the authority on
//! whether a token is valid, and keyward never makes an access decision from these fields.

use base64::Engine;
use chrono::{TimeZone, Utc};

use crate::credential::TokenClaims;

const OPENAI_AUTH_CLAIM: &str = "https://api.openai.com/auth";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum ClaimsError {
    #[error("the token is not a JWT (expected three dot-separated parts)")]
    NotAJwt,
    #[error("the token's payload is not base64url")]
    BadEncoding,
    #[error("the token's payload is not a JSON object")]
    BadJson,
}

/// A login's claims: its access token's, with the gaps filled from its id token's.
pub(crate) fn of_login(access_token: &str, id_token: Option<&str>) -> TokenClaims {
    let id_claims = id_token.and_then(|t| decode(t).ok()).unwrap_or_default();
    decode(access_token).unwrap_or_default().or(id_claims)
}

/// One token's claims.
pub(crate) fn decode(jwt: &str) -> Result<TokenClaims, ClaimsError> {
    let mut parts = jwt.split('.');
    let (Some(_header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ClaimsError::NotAJwt);
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| ClaimsError::BadEncoding)?;
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|_| ClaimsError::BadJson)?;
    let object = value.as_object().ok_or(ClaimsError::BadJson)?;
    let timestamp = |key: &str| {
        object
            .get(key)
            .and_then(serde_json::Value::as_i64)
            .and_then(|secs| Utc.timestamp_opt(secs, 0).single())
    };
    let text = |map: &serde_json::Map<String, serde_json::Value>, key: &str| {
        map.get(key)
            .and_then(serde_json::Value::as_str)
            .map(str::to_string)
    };
    let auth = object.get(OPENAI_AUTH_CLAIM).and_then(|v| v.as_object());
    let profile_email = object
        .get("https://api.openai.com/profile")
        .and_then(|v| v.as_object())
        .and_then(|p| text(p, "email"));
    Ok(TokenClaims {
        expires_at: timestamp("exp"),
        issued_at: timestamp("iat"),
        email: text(object, "email").or(profile_email),
        account_id: auth.and_then(|a| text(a, "chatgpt_account_id")),
        plan: auth.and_then(|a| text(a, "chatgpt_plan_type")),
        user_id: auth.and_then(|a| text(a, "chatgpt_user_id").or_else(|| text(a, "user_id"))),
    })
}

#[cfg(test)]
pub(crate) fn test_jwt(payload: &serde_json::Value) -> String {
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.sig",
        engine.encode(br#"{"alg":"none"}"#),
        engine.encode(payload.to_string())
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_codex_claims() {
        let jwt = test_jwt(&json!({
            "exp": 1_800_000_000, "iat": 1_700_000_000, "email": "u@example.com",
            "https://api.openai.com/auth": {"chatgpt_account_id": "acct-1", "chatgpt_plan_type": "pro", "chatgpt_user_id": "user-1"}
        }));
        let claims = decode(&jwt).unwrap_or_default();
        assert_eq!(
            claims.expires_at,
            Utc.timestamp_opt(1_800_000_000, 0).single()
        );
        assert_eq!(claims.email.as_deref(), Some("u@example.com"));
        assert_eq!(claims.account_id.as_deref(), Some("acct-1"));
        assert_eq!(claims.plan.as_deref(), Some("pro"));
        assert_eq!(claims.user_id.as_deref(), Some("user-1"));
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        assert_eq!(decode("abc"), Err(ClaimsError::NotAJwt));
        assert_eq!(decode("a.b.c.d"), Err(ClaimsError::NotAJwt));
        assert_eq!(decode("a.!!!.c"), Err(ClaimsError::BadEncoding));
        assert_eq!(decode("a.bm90IGpzb24.c"), Err(ClaimsError::BadJson));
        let array = test_jwt(&json!([1, 2]));
        assert_eq!(decode(&array), Err(ClaimsError::BadJson));
        let odd = test_jwt(&json!({"exp": "soon", "https://api.openai.com/auth": 7}));
        assert_eq!(decode(&odd), Ok(TokenClaims::default()));
    }
}
