//! The `encrypted_content` of reasoning items: opaque blobs the backend hands
//! out and accepts back only if it issued them.
//!
//! The real backend's blobs are Fernet tokens (version byte 0x80, a big-endian
//! timestamp, ciphertext, MAC), which is why they all start with `gAAAAAB`.
//! The mock's have the same frame with a fixed marker, random filler and a
//! SHA-256 tag over both in place of the ciphertext and MAC, so any copy of the
//! mock can verify a blob without remembering it, and a blob from elsewhere, or
//! one altered in transit, is refused as the real backend refuses it.

use base64::engine::general_purpose::URL_SAFE;
use base64::Engine;
use sha2::{Digest, Sha256};

const VERSION: u8 = 0x80;
const MARKER: &[u8; 16] = b"keyward-mock/rs1";
const FILLER_LEN: usize = 48;
const TAG_LEN: usize = 16;
const TIMESTAMP_LEN: usize = 8;
const BLOB_LEN: usize = 1 + TIMESTAMP_LEN + MARKER.len() + FILLER_LEN + TAG_LEN;

fn tag(signed: &[u8]) -> Vec<u8> {
    let digest = Sha256::digest([MARKER.as_slice(), signed].concat());
    digest.get(..TAG_LEN).unwrap_or_default().to_vec()
}

/// A fresh blob issued at `now` (seconds since the epoch).
pub(crate) fn issue(now: i64) -> String {
    let mut bytes = Vec::with_capacity(BLOB_LEN);
    bytes.push(VERSION);
    bytes.extend_from_slice(&now.to_be_bytes());
    bytes.extend_from_slice(MARKER);
    bytes.extend((0..FILLER_LEN).map(|_| rand::random::<u8>()));
    let tag = tag(&bytes);
    bytes.extend_from_slice(&tag);
    URL_SAFE.encode(bytes)
}

/// Whether `blob` is one [`issue`] produced, unaltered.
pub(crate) fn verify(blob: &str) -> bool {
    let Ok(bytes) = URL_SAFE.decode(blob) else {
        return false;
    };
    if bytes.len() != BLOB_LEN || bytes.first() != Some(&VERSION) {
        return false;
    }
    let (signed, given) = bytes.split_at(BLOB_LEN - TAG_LEN);
    let marker = signed.get(1 + TIMESTAMP_LEN..1 + TIMESTAMP_LEN + MARKER.len());
    marker == Some(MARKER.as_slice()) && tag(signed) == given
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An issued blob verifies, and looks like the real backend's Fernet tokens.
    #[test]
    fn issued_blobs_verify() {
        let blob = issue(1_764_166_000);
        assert!(blob.starts_with("gAAAAAB"), "{blob}");
        assert!(verify(&blob));
        assert_ne!(issue(1_764_166_000), blob, "each blob is unique");
    }

    /// Blobs not issued here, altered ones and non-base64 text are refused.
    #[test]
    fn foreign_or_altered_blobs_do_not_verify() {
        let blob = issue(1_764_166_000);
        let mut altered = blob.clone().into_bytes();
        if let Some(byte) = altered.get_mut(40) {
            *byte = if *byte == b'A' { b'B' } else { b'A' };
        }
        let altered = String::from_utf8(altered).unwrap_or_default();
        assert!(!verify(&altered));
        assert!(!verify("gAAAAABpKw-encrypted-reasoning-blob=="));
        assert!(!verify(""));
        assert!(!verify("not base64 at all!"));
        assert!(!verify(&blob[..blob.len() - 4]));
    }
}
