//! How the ledger packs the requests of one batch into one row of `usage_batches`.
//!
//! A row per request cost SQLite about as much as the rest of the ledger together (a statement's
//! sixteen values bound and stored, a B-tree cell each); one row per batch costs it once per
//! batch, and the requests are varints in a blob: about 25 bytes each.
//!
//! A batch's blob is a format byte ([`FORMAT`]), then each request in order of arrival: its
//! arrival in milliseconds after the one before (the first's after the batch's own), its seven
//! names' numbers, status, input / cached / output / reasoning tokens, time to first byte plus one
//! (zero: no byte came), total time and failover hops, each an unsigned LEB128 varint.

use crate::ledger::Tokens;

/// The blob's layout; a reader refuses any other rather than misread it.
const FORMAT: u8 = 1;

/// The names a request's row refers to by number (0: none), in this order: key, client,
/// dialect, model asked, model served, profile, the limit that refused it.
pub(super) type NameNumbers = [i64; 7];

/// One request of a batch, its names by number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PackedRequest {
    pub(super) at_ms: i64,
    pub(super) names: NameNumbers,
    pub(super) status: u16,
    pub(super) tokens: Tokens,
    pub(super) first_byte_ms: Option<u32>,
    pub(super) total_ms: u32,
    pub(super) hops: u8,
}

impl PackedRequest {
    pub(super) fn key(&self) -> i64 {
        self.names[0]
    }
    pub(super) fn client(&self) -> i64 {
        self.names[1]
    }
    pub(super) fn dialect(&self) -> i64 {
        self.names[2]
    }
    pub(super) fn asked(&self) -> i64 {
        self.names[3]
    }
    pub(super) fn served(&self) -> i64 {
        self.names[4]
    }
    pub(super) fn profile(&self) -> i64 {
        self.names[5]
    }
    pub(super) fn refused(&self) -> i64 {
        self.names[6]
    }
}

/// Packs `requests` (in order of arrival, none before `base_ms`).
pub(super) fn pack(base_ms: i64, requests: impl IntoIterator<Item = PackedRequest>) -> Vec<u8> {
    let requests = requests.into_iter();
    // Most requests take under 32 bytes: the blob seldom grows.
    let mut blob = Vec::with_capacity(1 + 32 * requests.size_hint().0);
    blob.push(FORMAT);
    let mut last = base_ms;
    for request in requests {
        put(&mut blob, (request.at_ms - last).max(0) as u64);
        last = last.max(request.at_ms);
        for name in request.names {
            put(&mut blob, name.max(0) as u64);
        }
        let t = &request.tokens;
        for value in [
            u64::from(request.status),
            t.input,
            t.cached,
            t.output,
            t.reasoning,
            request.first_byte_ms.map_or(0, |ms| u64::from(ms) + 1),
            u64::from(request.total_ms),
            u64::from(request.hops),
        ] {
            put(&mut blob, value);
        }
    }
    blob
}

/// A blob [`unpack`] cannot read: damaged, or of a format this keyward does not know.
#[derive(Debug, thiserror::Error)]
#[error("a batch of the usage ledger is damaged or of an unknown format")]
pub(super) struct Unreadable;

/// The requests a blob holds, in order of arrival.
pub(super) fn unpack(base_ms: i64, blob: &[u8]) -> Result<Vec<PackedRequest>, Unreadable> {
    let Some((&FORMAT, mut rest)) = blob.split_first() else {
        return Err(Unreadable);
    };
    let mut requests = Vec::new();
    let mut at_ms = base_ms;
    while !rest.is_empty() {
        let mut next = || take(&mut rest).ok_or(Unreadable);
        at_ms = at_ms.saturating_add(i64::try_from(next()?).map_err(|_| Unreadable)?);
        let mut names = [0i64; 7];
        for name in &mut names {
            *name = i64::try_from(next()?).map_err(|_| Unreadable)?;
        }
        let narrow = |value: u64| u32::try_from(value).map_err(|_| Unreadable);
        let status = u16::try_from(next()?).map_err(|_| Unreadable)?;
        let tokens = Tokens {
            input: next()?,
            cached: next()?,
            output: next()?,
            reasoning: next()?,
        };
        let first_byte_ms = match next()? {
            0 => None,
            plus_one => Some(narrow(plus_one - 1)?),
        };
        let total_ms = narrow(next()?)?;
        let hops = u8::try_from(next()?).map_err(|_| Unreadable)?;
        requests.push(PackedRequest {
            at_ms,
            names,
            status,
            tokens,
            first_byte_ms,
            total_ms,
            hops,
        });
    }
    Ok(requests)
}

fn put(blob: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        blob.push((value as u8) | 0x80);
        value >>= 7;
    }
    blob.push(value as u8);
}

/// The varint `bytes` starts with, `bytes` then past it; `None` when it is cut short or longer
/// than a `u64`.
fn take(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for (index, &byte) in bytes.iter().enumerate().take(10) {
        let bits = u64::from(byte & 0x7f);
        let shift = 7 * index as u32;
        if shift == 63 && bits > 1 {
            return None;
        }
        value |= bits << shift;
        if byte & 0x80 == 0 {
            *bytes = &bytes[index + 1..];
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn any_request() -> impl Strategy<Value = PackedRequest> {
        (
            0i64..1 << 44,
            proptest::array::uniform7(0i64..i64::MAX),
            any::<u16>(),
            proptest::array::uniform4(any::<u64>()),
            proptest::option::of(any::<u32>()),
            any::<u32>(),
            any::<u8>(),
        )
            .prop_map(
                |(at_ms, names, status, [input, cached, output, reasoning], first, total, hops)| {
                    PackedRequest {
                        at_ms,
                        names,
                        status,
                        tokens: Tokens {
                            input,
                            cached,
                            output,
                            reasoning,
                        },
                        first_byte_ms: first,
                        total_ms: total,
                        hops,
                    }
                },
            )
    }

    proptest! {
        /// Whatever a batch holds comes back as it went in, in order of arrival.
        #[test]
        fn a_batch_unpacks_to_what_was_packed(mut requests in proptest::collection::vec(any_request(), 0..40)) {
            requests.sort_by_key(|r| r.at_ms);
            let base = requests.first().map_or(0, |r| r.at_ms);
            let blob = pack(base, requests.iter().copied());
            prop_assert_eq!(unpack(base, &blob).ok(), Some(requests));
        }

        /// Any bytes at all are read or refused, never a panic.
        #[test]
        fn any_bytes_are_read_or_refused(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = unpack(1_800_000_000_000, &bytes);
        }
    }

    #[test]
    fn a_cut_or_unknown_blob_is_refused() {
        let request = PackedRequest {
            at_ms: 5,
            names: [1, 2, 3, 4, 5, 6, 0],
            status: 200,
            tokens: Tokens::default(),
            first_byte_ms: Some(300),
            total_ms: 900,
            hops: 1,
        };
        let blob = pack(0, [request]);
        assert!(unpack(0, &blob[..blob.len() - 1]).is_err());
        assert!(unpack(0, &[]).is_err());
        let mut other = blob.clone();
        other[0] = FORMAT + 1;
        assert!(unpack(0, &other).is_err());
        assert_eq!(unpack(0, &blob).ok(), Some(vec![request]));
        assert_eq!(unpack(0, &[FORMAT]).ok(), Some(Vec::new()));
    }
}
