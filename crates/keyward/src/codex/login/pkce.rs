//! The secrets one browser sign-in is bound by, made as the Codex CLI makes them: a PKCE verifier
//! of 64 random bytes and its S256 challenge (RFC 7636), and a `state` of 32 random bytes, all
//! base64url without padding. Only the challenge and the state ever appear in a URL.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::secret::Secret;

pub(crate) struct Pkce {
    /// Sent once, in the body of the code exchange.
    pub verifier: Secret,
    /// `BASE64URL(SHA256(verifier))`, in the authorize URL.
    pub challenge: String,
}

impl Pkce {
    pub(crate) fn new() -> Self {
        let verifier = random_b64(64);
        let challenge = challenge_of(verifier.expose());
        Self {
            verifier,
            challenge,
        }
    }
}

/// The `state` that ties the callback to this sign-in.
pub(crate) fn new_state() -> String {
    random_b64(32).expose().to_string()
}

pub(crate) fn challenge_of(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn random_b64(bytes: usize) -> Secret {
    let mut buffer = zeroize::Zeroizing::new(vec![0u8; bytes]);
    rand::rng().fill_bytes(&mut buffer);
    Secret::new(URL_SAFE_NO_PAD.encode(buffer.as_slice()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CLI's sizes (86 and 43 characters), RFC 7636's alphabet, and the test vector of its
    /// appendix B.
    #[test]
    fn pkce_is_the_clis() {
        let pkce = Pkce::new();
        assert_eq!(pkce.verifier.expose().len(), 86);
        assert_eq!(new_state().len(), 43);
        assert!(pkce
            .verifier
            .expose()
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_eq!(pkce.challenge, challenge_of(pkce.verifier.expose()));
        assert_eq!(
            challenge_of("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert_ne!(Pkce::new().verifier, pkce.verifier);
    }
}
