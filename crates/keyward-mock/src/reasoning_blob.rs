//! The `encrypted_content` of reasoning and compaction items: opaque blobs the
//! backend hands out and accepts back only if it issued them, each kind only as
//! that kind.
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
const MARKER_LEN: usize = 16;
const FILLER_LEN: usize = 48;
const TAG_LEN: usize = 16;
const TIMESTAMP_LEN: usize = 8;
const BLOB_LEN: usize = 1 + TIMESTAMP_LEN + MARKER_LEN + FILLER_LEN + TAG_LEN;

/// What a blob carries: a reasoning item's chain of thought, or a compacted conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Reasoning,
    Compaction,
}

impl Kind {
    fn marker(self) -> &'static [u8; MARKER_LEN] {
        match self {
            Self::Reasoning => b"keyward-mock/rs1",
            Self::Compaction => b"keyward-mock/cp1",
        }
    }
}

fn tag(kind: Kind, signed: &[u8]) -> Vec<u8> {
    let digest = Sha256::digest([kind.marker().as_slice(), signed].concat());
    digest.get(..TAG_LEN).unwrap_or_default().to_vec()
}

/// A fresh reasoning blob issued at `now` (seconds since the epoch).
pub(crate) fn issue(now: i64) -> String {
    issue_as(Kind::Reasoning, now)
}

/// Whether `blob` is a reasoning blob [`issue`] produced, unaltered.
pub(crate) fn verify(blob: &str) -> bool {
    verify_as(Kind::Reasoning, blob)
}

/// A fresh blob of `kind` issued at `now` (seconds since the epoch).
pub(crate) fn issue_as(kind: Kind, now: i64) -> String {
    let mut bytes = Vec::with_capacity(BLOB_LEN);
    bytes.push(VERSION);
    bytes.extend_from_slice(&now.to_be_bytes());
    bytes.extend_from_slice(kind.marker());
    bytes.extend((0..FILLER_LEN).map(|_| rand::random::<u8>()));
    let tag = tag(kind, &bytes);
    bytes.extend_from_slice(&tag);
    URL_SAFE.encode(bytes)
}

/// Whether `blob` is one [`issue_as`] produced for `kind`, unaltered.
pub(crate) fn verify_as(kind: Kind, blob: &str) -> bool {
    let Ok(bytes) = URL_SAFE.decode(blob) else {
        return false;
    };
    if bytes.len() != BLOB_LEN || bytes.first() != Some(&VERSION) {
        return false;
    }
    let (signed, given) = bytes.split_at(BLOB_LEN - TAG_LEN);
    let marker = signed.get(1 + TIMESTAMP_LEN..1 + TIMESTAMP_LEN + MARKER_LEN);
    marker == Some(kind.marker().as_slice()) && tag(kind, signed) == given
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

    /// A blob of one kind is no blob of the other.
    #[test]
    fn kinds_do_not_mix() {
        let compaction = issue_as(Kind::Compaction, 1_764_166_000);
        assert!(verify_as(Kind::Compaction, &compaction));
        assert!(!verify(&compaction));
        assert!(!verify_as(Kind::Compaction, &issue(1_764_166_000)));
    }
}
