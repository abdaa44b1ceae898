//! `$CODEX_HOME/auth.json` as the soak reads it: the refresh token (to ask the mock whether the
//! lineage is alive), the access token's times (to pace the CLI-like writers), and the token's
//! fingerprint in keyward's own form (to find it in keyward's logs, which never show tokens).

use std::path::Path;

use anyhow::{Context, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// What one read of `auth.json` holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AuthSnapshot {
    pub(crate) refresh_token: String,
    /// The access token's `iat` and `exp` claims (seconds since the epoch).
    pub(crate) issued_at: Option<i64>,
    pub(crate) expires_at: Option<i64>,
}

impl AuthSnapshot {
    /// Whether less than `fraction` of the access token's life has passed at `now` (seconds):
    /// a token this young is nobody's to refresh yet, so a writer spending it races no one.
    pub(crate) fn younger_than(&self, fraction: f64, now: i64) -> bool {
        match (self.issued_at, self.expires_at) {
            (Some(iat), Some(exp)) if exp > iat => {
                let life = (exp - iat) as f64;
                ((now - iat) as f64) < life * fraction
            }
            _ => false,
        }
    }
}

pub(crate) fn read(codex_home: &Path) -> Result<AuthSnapshot> {
    let path = codex_home.join("auth.json");
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    parse(&bytes).with_context(|| format!("parsing {}", path.display()))
}

fn parse(bytes: &[u8]) -> Result<AuthSnapshot> {
    let auth: Value = serde_json::from_slice(bytes)?;
    let tokens = auth.get("tokens").context("no `tokens`")?;
    let refresh_token = tokens
        .get("refresh_token")
        .and_then(Value::as_str)
        .context("no `tokens.refresh_token`")?
        .to_owned();
    let claims = tokens
        .get("access_token")
        .and_then(Value::as_str)
        .and_then(jwt_claims);
    let claim = |name: &str| claims.as_ref().and_then(|c| c.get(name)?.as_i64());
    Ok(AuthSnapshot {
        refresh_token,
        issued_at: claim("iat"),
        expires_at: claim("exp"),
    })
}

/// The payload of a JWT, unverified (as the Codex CLI reads `exp`).
fn jwt_claims(jwt: &str) -> Option<Value> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// keyward's fingerprint of a token as its logs print it: `fp:` and the first 12 hex digits of
/// the token's SHA-256.
pub(crate) fn fingerprint(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("fp:{hex}")
}

/// The part of a refresh token the mock's `/admin/log` shows.
pub(crate) fn log_prefix(token: &str) -> String {
    token.chars().take(10).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: &Value) -> String {
        format!(
            "e30.{}.sig",
            URL_SAFE_NO_PAD.encode(claims.to_string().as_bytes())
        )
    }

    /// The fingerprint is keyward's: `fp:` and 12 hex digits of SHA-256.
    #[test]
    fn fingerprints_match_keywards_form() {
        assert_eq!(fingerprint("token-a"), "fp:a70bf50e531c");
    }

    /// A login's refresh token and access-token times are read; youth is a share of the lifetime.
    #[test]
    fn reads_tokens_and_times() -> Result<()> {
        let auth = serde_json::json!({
            "tokens": {"access_token": jwt(&serde_json::json!({"iat": 1000, "exp": 1040})), "refresh_token": "rt_x"},
        });
        let snapshot = parse(auth.to_string().as_bytes())?;
        assert_eq!(snapshot.refresh_token, "rt_x");
        assert!(snapshot.younger_than(0.25, 1009));
        assert!(!snapshot.younger_than(0.25, 1010));
        Ok(())
    }

    /// An access token without readable claims is never young, and a file without tokens is an
    /// error, not a panic.
    #[test]
    fn unreadable_claims_and_files() -> Result<()> {
        let auth = serde_json::json!({"tokens": {"access_token": "junk", "refresh_token": "rt_y"}});
        let snapshot = parse(auth.to_string().as_bytes())?;
        assert!(!snapshot.younger_than(1.0, 0));
        assert!(parse(b"{}").is_err());
        assert!(parse(b"not json").is_err());
        Ok(())
    }
}
