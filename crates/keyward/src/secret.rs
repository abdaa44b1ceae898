//! Secrets (tokens, keys) and their fingerprints.
//!
//! A [`Secret`] never prints its value: `Debug` and `Display` show a redaction marker, and its memory is
//! zeroed on drop. Code that must send the value calls [`Secret::expose`], which makes every use greppable.

use std::fmt;

use serde::{Deserialize, Deserializer};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(Zeroizing<String>);

impl Secret {
    pub(crate) fn new(value: impl Into<String>) -> Self {
        Self(Zeroizing::new(value.into()))
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    pub(crate) fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(self.expose())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

// No `Serialize`: a secret written out in plaintext must be written by code that calls
// `expose()` on purpose (the journal entry and the write-back to the CLI's file), never by a
// `#[derive(Serialize)]` that happens to contain one.

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret::new)
    }
}

/// A one-way digest of a token, safe to store, log and compare. Refresh tokens carry far more
/// entropy than a hash can be searched for, so the digest reveals nothing usable.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Fingerprint([u8; 16]);

impl Fingerprint {
    pub(crate) fn of(token: &str) -> Self {
        let digest = Sha256::digest(token.as_bytes());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        Self(bytes)
    }

    pub(crate) fn to_hex(self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub(crate) fn from_hex(hex: &str) -> Option<Self> {
        if hex.len() != 32 || !hex.is_ascii() {
            return None;
        }
        let mut bytes = [0u8; 16];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Self(bytes))
    }

    /// The short form shown in logs and `keyward status`.
    pub(crate) fn short(self) -> String {
        self.to_hex()[..12].to_string()
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fp:{}", self.short())
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fp:{}", self.short())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A secret never shows its value through Debug or Display.
    #[test]
    fn secret_formatting_is_redacted() {
        let secret = Secret::new("rt_very-secret-value");
        assert_eq!(format!("{secret:?}"), "Secret(<redacted>)");
        assert_eq!(format!("{secret}"), "<redacted>");
        assert!(!format!("{:?}", Some(&secret)).contains("very-secret"));
    }

    /// Fingerprints are stable, distinct per token and round-trip through hex.
    #[test]
    fn fingerprint_round_trips() {
        let a = Fingerprint::of("token-a");
        assert_eq!(a, Fingerprint::of("token-a"));
        assert_ne!(a, Fingerprint::of("token-b"));
        assert_eq!(Fingerprint::from_hex(&a.to_hex()), Some(a));
        assert_eq!(Fingerprint::from_hex("zz"), None);
        assert!(!a.to_hex().contains("token"));
    }
}
