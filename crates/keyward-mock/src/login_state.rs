//! The sign-in server's bookkeeping, apart from the token families it ends in
//! (`provider_state`): authorization requests waiting for consent, the
//! authorization codes consent issues (PKCE-bound, single use, short-lived),
//! device codes and their approval, and how the tests want consent answered.
//!
//! Everything here is synchronous, behind one mutex, with the time passed in,
//! so the rules are unit-tested without a server or a clock.

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::jwt;
use crate::provider_state::LoginRequest;

/// The only OAuth client this server knows: the Codex CLI's.
pub(crate) const CLIENT_ID: &str = "app_EMoamEEZ73f0CkXaXp7hrann";

/// The loopback redirects registered for the Codex client: ports 1455 and
/// 1457, on `localhost` (older CLIs) or `127.0.0.1` (0.169).
pub(crate) const LOOPBACK_REDIRECTS: &[&str] = &[
    "http://localhost:1455/auth/callback",
    "http://localhost:1457/auth/callback",
    "http://127.0.0.1:1455/auth/callback",
    "http://127.0.0.1:1457/auth/callback",
];

/// How long an authorization code may wait for its exchange.
pub(crate) const CODE_TTL_SECS: i64 = 300;
/// How long a device code lives, as the real server's (15 minutes).
pub(crate) const DEVICE_TTL_SECS: i64 = 900;
/// How long an authorization request may wait on the consent page.
const REQUEST_TTL_SECS: i64 = 900;

/// How the consent page and device approvals answer, set by `POST /admin/authorize`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConsentSetting {
    /// The account the next logins are of (fields left out: a new account each time).
    pub(crate) account_id: Option<String>,
    pub(crate) email: Option<String>,
    pub(crate) plan: Option<String>,
    pub(crate) access_ttl: Option<i64>,
    /// Consent answers with this OAuth error instead of a code (e.g.
    /// `missing_codex_entitlement`, `access_denied`) until cleared with `null`.
    pub(crate) error: Option<String>,
    pub(crate) error_description: Option<String>,
}

impl ConsentSetting {
    pub(crate) fn identity(&self) -> LoginRequest {
        LoginRequest {
            account_id: self.account_id.clone(),
            email: self.email.clone(),
            plan: self.plan.clone(),
            access_ttl: self.access_ttl,
        }
    }
}

/// An authorize request that passed the checks, waiting on the consent page.
#[derive(Clone, Debug)]
pub(crate) struct PendingAuthorization {
    pub(crate) redirect_uri: String,
    pub(crate) state: String,
    pub(crate) code_challenge: String,
    pub(crate) scope: String,
    created: i64,
}

struct IssuedCode {
    client_id: String,
    redirect_uri: String,
    code_challenge: String,
    identity: LoginRequest,
    expires: i64,
    /// The refresh token the exchange issued, once redeemed: a second
    /// redemption revokes its family (RFC 6749 §4.1.2).
    redeemed: Option<String>,
}

/// Why an authorization code cannot be exchanged; each is OAuth's
/// `invalid_grant` (or `invalid_client`) with a description.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CodeRefusal {
    InvalidClient,
    Unknown,
    Expired,
    /// Redeemed before: the family it issued is to be revoked.
    Reused {
        issued_refresh: String,
    },
    RedirectMismatch,
    VerifierMismatch,
    MalformedVerifier,
}

impl CodeRefusal {
    pub(crate) fn error(&self) -> &'static str {
        match self {
            Self::InvalidClient => "invalid_client",
            _ => "invalid_grant",
        }
    }

    pub(crate) fn description(&self) -> &'static str {
        match self {
            Self::InvalidClient => "Unknown client.",
            Self::Unknown => "Invalid authorization code.",
            Self::Expired => "The authorization code has expired.",
            Self::Reused { .. } => "The authorization code has already been used.",
            Self::RedirectMismatch => "redirect_uri does not match the authorization request.",
            Self::VerifierMismatch => "code_verifier does not match the code_challenge.",
            Self::MalformedVerifier => "code_verifier is malformed.",
        }
    }
}

/// A code the exchange may redeem: who consented.
pub(crate) struct Redeemable {
    pub(crate) code: String,
    pub(crate) identity: LoginRequest,
}

struct DeviceCode {
    user_code: String,
    expires: i64,
    approved: Option<LoginRequest>,
    /// Handed out once approved; later polls find nothing.
    consumed: bool,
}

/// What a device-token poll gets.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum DevicePoll {
    Pending,
    Unknown,
    /// The server made the PKCE pair; the client exchanges the code with it.
    Approved {
        authorization_code: String,
        code_challenge: String,
        code_verifier: String,
    },
}

pub(crate) struct LoginState {
    pub(crate) consent: ConsentSetting,
    pub(crate) device_enabled: bool,
    /// Seconds between polls, as the usercode answer says.
    pub(crate) device_interval: u64,
    pending: HashMap<String, PendingAuthorization>,
    codes: HashMap<String, IssuedCode>,
    devices: HashMap<String, DeviceCode>,
}

impl Default for LoginState {
    fn default() -> Self {
        Self {
            consent: ConsentSetting::default(),
            device_enabled: true,
            device_interval: 5,
            pending: HashMap::new(),
            codes: HashMap::new(),
            devices: HashMap::new(),
        }
    }
}

/// `BASE64URL(SHA256(verifier))`, PKCE's S256.
pub(crate) fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// RFC 7636: 43 to 128 characters of `[A-Za-z0-9-._~]`.
fn well_formed_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~'))
}

impl LoginState {
    /// Keeps an authorize request for the consent page; returns its id.
    pub(crate) fn hold(
        &mut self,
        redirect_uri: &str,
        state: &str,
        code_challenge: &str,
        scope: &str,
        now: i64,
    ) -> String {
        self.pending
            .retain(|_, p| now - p.created < REQUEST_TTL_SECS);
        let id = jwt::random_hex(16);
        self.pending.insert(
            id.clone(),
            PendingAuthorization {
                redirect_uri: redirect_uri.to_owned(),
                state: state.to_owned(),
                code_challenge: code_challenge.to_owned(),
                scope: scope.to_owned(),
                created: now,
            },
        );
        id
    }

    /// The consent page's request, taken (a form posted twice finds nothing).
    pub(crate) fn take_pending(&mut self, id: &str, now: i64) -> Option<PendingAuthorization> {
        self.pending
            .remove(id)
            .filter(|p| now - p.created < REQUEST_TTL_SECS)
    }

    /// A code for `identity`, bound to the client, redirect and challenge.
    pub(crate) fn issue_code(
        &mut self,
        redirect_uri: &str,
        code_challenge: &str,
        identity: LoginRequest,
        now: i64,
    ) -> String {
        self.codes
            .retain(|_, c| c.redeemed.is_some() || c.expires > now);
        let code = format!("ac_{}", jwt::random_b64(32));
        self.codes.insert(
            code.clone(),
            IssuedCode {
                client_id: CLIENT_ID.to_owned(),
                redirect_uri: redirect_uri.to_owned(),
                code_challenge: code_challenge.to_owned(),
                identity,
                expires: now + CODE_TTL_SECS,
                redeemed: None,
            },
        );
        code
    }

    /// Checks an exchange of `code` as the real server does. A refused code
    /// stays refused; a good one is then [`LoginState::redeemed`].
    pub(crate) fn check_code(
        &mut self,
        code: Option<&str>,
        client_id: Option<&str>,
        redirect_uri: Option<&str>,
        verifier: Option<&str>,
        now: i64,
    ) -> Result<Redeemable, CodeRefusal> {
        if client_id != Some(CLIENT_ID) {
            return Err(CodeRefusal::InvalidClient);
        }
        let code = code.ok_or(CodeRefusal::Unknown)?;
        let issued = self.codes.get(code).ok_or(CodeRefusal::Unknown)?;
        if let Some(issued_refresh) = &issued.redeemed {
            return Err(CodeRefusal::Reused {
                issued_refresh: issued_refresh.clone(),
            });
        }
        if issued.client_id != CLIENT_ID {
            return Err(CodeRefusal::InvalidClient);
        }
        if issued.expires <= now {
            return Err(CodeRefusal::Expired);
        }
        if redirect_uri != Some(issued.redirect_uri.as_str()) {
            return Err(CodeRefusal::RedirectMismatch);
        }
        let verifier = verifier.ok_or(CodeRefusal::MalformedVerifier)?;
        if !well_formed_verifier(verifier) {
            return Err(CodeRefusal::MalformedVerifier);
        }
        if s256(verifier) != issued.code_challenge {
            return Err(CodeRefusal::VerifierMismatch);
        }
        Ok(Redeemable {
            code: code.to_owned(),
            identity: issued.identity.clone(),
        })
    }

    /// Marks `code` used, remembering the refresh token it issued.
    pub(crate) fn redeemed(&mut self, code: &str, refresh_token: &str) {
        if let Some(issued) = self.codes.get_mut(code) {
            issued.redeemed = Some(refresh_token.to_owned());
        }
    }

    /// A new device code: `(device_auth_id, user_code)`.
    pub(crate) fn start_device(&mut self, now: i64) -> (String, String) {
        self.devices.retain(|_, d| d.expires > now);
        let id = format!("deviceauth_{}", jwt::random_hex(12));
        let user_code = user_code();
        self.devices.insert(
            id.clone(),
            DeviceCode {
                user_code: user_code.clone(),
                expires: now + DEVICE_TTL_SECS,
                approved: None,
                consumed: false,
            },
        );
        (id, user_code)
    }

    /// Approves the live device code shown as `user_code` (case and dashes as
    /// a user may type them); false if there is none.
    pub(crate) fn approve_device(
        &mut self,
        user_code: &str,
        identity: LoginRequest,
        now: i64,
    ) -> bool {
        let wanted = normalise_user_code(user_code);
        let found = self.devices.values_mut().find(|d| {
            normalise_user_code(&d.user_code) == wanted
                && d.expires > now
                && !d.consumed
                && d.approved.is_none()
        });
        match found {
            Some(device) => {
                device.approved = Some(identity);
                true
            }
            None => false,
        }
    }

    /// One poll; an approved code becomes an authorization code bound to
    /// `redirect_uri` and a PKCE pair made here, handed out once.
    pub(crate) fn poll_device(
        &mut self,
        device_auth_id: &str,
        user_code: &str,
        redirect_uri: &str,
        now: i64,
    ) -> DevicePoll {
        let Some(device) = self.devices.get_mut(device_auth_id) else {
            return DevicePoll::Unknown;
        };
        if device.user_code != user_code || device.expires <= now || device.consumed {
            return DevicePoll::Unknown;
        }
        let Some(identity) = device.approved.clone() else {
            return DevicePoll::Pending;
        };
        device.consumed = true;
        let code_verifier = jwt::random_b64(64);
        let code_challenge = s256(&code_verifier);
        let authorization_code = self.issue_code(redirect_uri, &code_challenge, identity, now);
        DevicePoll::Approved {
            authorization_code,
            code_challenge,
            code_verifier,
        }
    }
}

/// `XXXX-XXXXX` of letters and digits that cannot be mistaken for each other.
fn user_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let pick = |_| {
        char::from(
            ALPHABET
                .get(rand::random_range(0..ALPHABET.len()))
                .copied()
                .unwrap_or(b'A'),
        )
    };
    let first: String = (0..4).map(pick).collect();
    let second: String = (0..5).map(pick).collect();
    format!("{first}-{second}")
}

fn normalise_user_code(code: &str) -> String {
    code.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const REDIRECT: &str = "http://127.0.0.1:1455/auth/callback";

    fn verifier() -> String {
        jwt::random_b64(64)
    }

    /// A code is bound to its client, redirect, challenge and lifetime, and
    /// redeems once; a second redemption names the family to revoke.
    #[test]
    fn codes_are_strict_and_single_use() {
        let mut s = LoginState::default();
        let v = verifier();
        let code = s.issue_code(REDIRECT, &s256(&v), LoginRequest::default(), 1000);
        let check = |s: &mut LoginState, client: &str, redirect: &str, v: &str, now| {
            s.check_code(Some(&code), Some(client), Some(redirect), Some(v), now)
                .err()
        };
        assert_eq!(
            check(&mut s, "other", REDIRECT, &v, 1001),
            Some(CodeRefusal::InvalidClient)
        );
        assert_eq!(
            check(
                &mut s,
                CLIENT_ID,
                "http://127.0.0.1:1457/auth/callback",
                &v,
                1001
            ),
            Some(CodeRefusal::RedirectMismatch)
        );
        assert_eq!(
            check(&mut s, CLIENT_ID, REDIRECT, &verifier(), 1001),
            Some(CodeRefusal::VerifierMismatch)
        );
        assert_eq!(
            check(&mut s, CLIENT_ID, REDIRECT, "short", 1001),
            Some(CodeRefusal::MalformedVerifier)
        );
        assert_eq!(
            check(&mut s, CLIENT_ID, REDIRECT, &v, 1000 + CODE_TTL_SECS),
            Some(CodeRefusal::Expired)
        );
        assert_eq!(check(&mut s, CLIENT_ID, REDIRECT, &v, 1001), None);
        s.redeemed(&code, "rt_issued");
        assert_eq!(
            check(&mut s, CLIENT_ID, REDIRECT, &v, 1002),
            Some(CodeRefusal::Reused {
                issued_refresh: "rt_issued".into()
            })
        );
        assert_eq!(
            s.check_code(
                Some("ac_nope"),
                Some(CLIENT_ID),
                Some(REDIRECT),
                Some(&v),
                1001
            )
            .err(),
            Some(CodeRefusal::Unknown)
        );
    }

    /// A device code is pending until approved, then hands out one code
    /// whose server-made verifier matches its challenge.
    #[test]
    fn device_codes_go_pending_approved_consumed() {
        let mut s = LoginState::default();
        let (id, user_code) = s.start_device(1000);
        let redirect = "http://127.0.0.1:9/deviceauth/callback";
        assert!(matches!(
            s.poll_device(&id, &user_code, redirect, 1001),
            DevicePoll::Pending
        ));
        assert!(matches!(
            s.poll_device(&id, "WRONG-CODE", redirect, 1001),
            DevicePoll::Unknown
        ));
        assert!(s.approve_device(
            &user_code.to_lowercase().replace('-', ""),
            LoginRequest::default(),
            1002
        ));
        let DevicePoll::Approved {
            authorization_code,
            code_challenge,
            code_verifier,
        } = s.poll_device(&id, &user_code, redirect, 1003)
        else {
            panic!("expected an approval");
        };
        assert_eq!(s256(&code_verifier), code_challenge);
        assert!(matches!(
            s.poll_device(&id, &user_code, redirect, 1004),
            DevicePoll::Unknown
        ));
        assert!(s
            .check_code(
                Some(&authorization_code),
                Some(CLIENT_ID),
                Some(redirect),
                Some(&code_verifier),
                1005
            )
            .is_ok());
        let (late, late_code) = s.start_device(2000);
        assert!(!s.approve_device(&late_code, LoginRequest::default(), 2000 + DEVICE_TTL_SECS));
        assert!(matches!(
            s.poll_device(&late, &late_code, redirect, 2000 + DEVICE_TTL_SECS),
            DevicePoll::Unknown
        ));
    }
}
