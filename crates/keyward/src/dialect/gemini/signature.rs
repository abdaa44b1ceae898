//! keyward's `thoughtSignature`: the upstream's encrypted reasoning, marked as keyward's.
//!
//! Gemini's signatures are opaque bytes, base64 in JSON, and typed clients decode them: the
//! Python SDK keeps bytes and sends them back URL-safe, Go's and Java's decode standard base64.
//! So a signature is standard base64 of `kwsig1.` (the prefix the Messages dialect puts on its
//! thinking signatures) and the encrypted content, and one coming back is read in either base64
//! alphabet, with or without padding. Anything that does not decode to the prefix was not made
//! here (Gemini's own signatures, the Gemini CLI's `skip_thought_signature_validator`).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::standard_base64;

/// Marks a signature as keyward's: the upstream's encrypted reasoning follows.
const PREFIX: &[u8] = b"kwsig1.";

/// The signature carrying `encrypted` reasoning.
pub(crate) fn encode(encrypted: &str) -> String {
    let mut bytes = Vec::with_capacity(PREFIX.len() + encrypted.len());
    bytes.extend_from_slice(PREFIX);
    bytes.extend_from_slice(encrypted.as_bytes());
    STANDARD.encode(bytes)
}

/// The encrypted reasoning a signature keyward made carries; `None` for any other signature.
pub(super) fn decode(signature: &str) -> Option<String> {
    let bytes = STANDARD.decode(standard_base64(signature)).ok()?;
    let encrypted = bytes.strip_prefix(PREFIX)?;
    let encrypted = String::from_utf8(encrypted.to_vec()).ok()?;
    (!encrypted.is_empty()).then_some(encrypted)
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    /// A signature comes back as it went out, or re-encoded URL-safe (as `google-genai` sends
    /// it), padded or not.
    #[test]
    fn signatures_survive_either_base64() {
        let encrypted = "gAAAAB-_x+/y==";
        let signature = encode(encrypted);
        assert_eq!(decode(&signature).as_deref(), Some(encrypted));
        let bytes = STANDARD
            .decode(&signature)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            decode(&URL_SAFE_NO_PAD.encode(&bytes)).as_deref(),
            Some(encrypted)
        );
    }

    /// Signatures keyward did not make are not its.
    #[test]
    fn foreign_signatures_are_not_ours() {
        for foreign in [
            "skip_thought_signature_validator",
            "CiQBcsjafJ9Yv8ZmDqzRE5mEqV==",
            "",
            "not base64 at all!",
            &STANDARD.encode("kwsig1."),
        ] {
            assert_eq!(decode(foreign), None, "{foreign}");
        }
    }
}
