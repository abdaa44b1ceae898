//! A bound on the memory all requests in flight take together (`[gateway] max_request_memory`).
//!
//! A body costs memory twice: its bytes while they arrive and wait, and the work of parsing and
//! translating it, which for JSON of many tiny values is tens of times its size (every value is
//! a node; see BENCHMARKS.md for the figures). Without a bound, a few local processes sending
//! such bodies at once could take all the machine's memory. So the budget has two pools:
//!
//! - **bodies**: the bytes of bodies being received or held. A body that does not fit is
//!   refused at once with a 503 (a request never waits while holding part of the pool, so
//!   requests cannot stall each other);
//! - **work**: each request's estimated parsing cost, taken before it is parsed and held until its
//!   answer has begun. A request waits (in arrival order) for its turn, and is answered 503 if
//!   the wait is too long; one that could never fit is refused with a 413 saying why.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::ErrorExtras;
use super::ApiError;

/// Memory one JSON node (object, array, member or element) costs while parsed and translated,
/// measured on the worst shapes (tiny messages) with the allocator keyward ships with.
const NODE_COST: usize = 512;
/// How long a request waits for its share of the work pool.
const WORK_WAIT: Duration = Duration::from_secs(30);
/// The pools count in KiB, so a permit count never overflows a semaphore's `u32` request.
const UNIT: usize = 1024;

pub(super) struct MemoryBudget {
    bodies: Arc<Semaphore>,
    work: Arc<Semaphore>,
    work_units: usize,
}

/// A request's share of the budget, given back when dropped.
#[derive(Default)]
pub(super) struct Reservation {
    body_bytes: usize,
    body: Option<OwnedSemaphorePermit>,
    work: Option<OwnedSemaphorePermit>,
}

impl MemoryBudget {
    pub(super) fn new(max_bytes: usize) -> Self {
        let units = (max_bytes / UNIT).max(2);
        // A quarter for bodies as they arrive, the rest for the work of translating them.
        let body_units = units / 4;
        let work_units = units - body_units;
        Self {
            bodies: Arc::new(Semaphore::new(body_units)),
            work: Arc::new(Semaphore::new(work_units)),
            work_units,
        }
    }

    /// Counts `len` more bytes of a body arriving, or refuses it at once when the pool is full.
    pub(super) fn hold_body(
        &self,
        reservation: &mut Reservation,
        len: usize,
    ) -> Result<(), ApiError> {
        let held_units = units_for(reservation.body_bytes);
        let wanted = units_for(reservation.body_bytes + len) - held_units;
        reservation.body_bytes += len;
        if wanted == 0 {
            return Ok(());
        }
        let permit = u32::try_from(wanted)
            .ok()
            .and_then(|n| self.bodies.clone().try_acquire_many_owned(n).ok())
            .ok_or_else(|| busy("the request bodies keyward is receiving already take the memory it allows for them"))?;
        match &mut reservation.body {
            Some(held) => held.merge(permit),
            None => reservation.body = Some(permit),
        }
        Ok(())
    }

    /// Waits for the memory that parsing and translating `body` takes.
    pub(super) async fn reserve_work(
        &self,
        reservation: &mut Reservation,
        body: &[u8],
    ) -> Result<(), ApiError> {
        let units = units_for(estimate(body));
        if units > self.work_units {
            return Err(ApiError {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                code: Some("request_too_complex".into()),
                ..ApiError::bad_request(format!(
                    "the request body has too many JSON values: translating it would take about {} MiB, more than keyward allows all requests together ([gateway] max_request_memory). Send fewer, larger messages or items",
                    units / 1024
                ))
            });
        }
        // `units` fits in the pool, which fits in a u32 count of KiB for any configurable size.
        let wanted = u32::try_from(units).unwrap_or(u32::MAX);
        match tokio::time::timeout(WORK_WAIT, self.work.clone().acquire_many_owned(wanted)).await {
            Ok(Ok(permit)) => {
                reservation.work = Some(permit);
                Ok(())
            }
            _ => Err(busy(
                "the requests keyward is translating already take the memory it allows for them",
            )),
        }
    }
}

/// The memory parsing and translating a JSON body takes, estimated from its size and how many
/// values it holds: every value but the first follows a `,` or a `:`, or opens a container with
/// `{` (arrays are rarely empty, and their values are counted by their commas). Inside strings
/// these characters are counted too, which only ever overestimates.
pub(super) fn estimate(body: &[u8]) -> usize {
    body.len()
        .saturating_mul(2)
        .saturating_add(count_nodes(body).saturating_mul(NODE_COST))
}

/// The separators of `body`, counted branch-free in blocks of 255 bytes, whose counts fit in a
/// byte: a form the compiler turns into vector instructions on 16 bytes at a time. A branching
/// count over every request's body cost a quarter of a proxied request's CPU, and a search for
/// each separator (JSON has one every few bytes) a tenth.
fn count_nodes(body: &[u8]) -> usize {
    body.chunks(255)
        .map(|block| {
            let count = block.iter().fold(0u8, |count, &b| {
                count.wrapping_add(u8::from((b == b',') | (b == b':') | (b == b'{')))
            });
            usize::from(count)
        })
        .sum()
}

fn units_for(bytes: usize) -> usize {
    bytes.div_ceil(UNIT)
}

fn busy(detail: &str) -> ApiError {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        kind: "service_unavailable",
        code: Some("overloaded".into()),
        retry_after: Some(1),
        extras: Some(Box::new(ErrorExtras {
            error: None,
            headers,
        })),
        ..ApiError::bad_request(format!(
            "keyward is busy: {detail} ([gateway] max_request_memory). Try again in a moment"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bodies that do not fit are refused at once; their memory comes back when the reservation
    /// is dropped.
    #[test]
    fn counts_every_separator() {
        let body = r#"{"a":[1,2,{"b":3}],"c":"x,y"}"#.repeat(100);
        let naive = body
            .bytes()
            .filter(|b| matches!(b, b',' | b':' | b'{'))
            .count();
        assert_eq!(count_nodes(body.as_bytes()), naive);
        assert_eq!(count_nodes(&[b','; 1000]), 1000);
    }

    #[test]
    fn bodies_share_their_pool() {
        let budget = MemoryBudget::new(4 << 20); // 1 MiB for bodies
        let mut first = Reservation::default();
        assert!(budget.hold_body(&mut first, 600 << 10).is_ok());
        let mut second = Reservation::default();
        let refused = budget.hold_body(&mut second, 600 << 10).err();
        assert_eq!(
            refused.map(|e| e.status),
            Some(StatusCode::SERVICE_UNAVAILABLE)
        );
        drop(first);
        let mut third = Reservation::default();
        for _ in 0..1000 {
            assert!(budget.hold_body(&mut third, 1000).is_ok());
        }
    }

    /// A body of many tiny values is estimated at far more than its size; one that could never
    /// fit is refused with a 413 rather than waiting.
    #[tokio::test]
    async fn work_is_estimated_from_the_values() {
        let tiny = format!(
            "[{}]",
            vec![r#"{"role":"user","content":"a"}"#; 1000].join(",")
        );
        assert!(estimate(tiny.as_bytes()) > 10 * tiny.len());
        let prose = format!(r#"{{"input":"{}"}}"#, "word ".repeat(10_000));
        assert!(estimate(prose.as_bytes()) < 3 * prose.len());

        let budget = MemoryBudget::new(16 << 20);
        let mut fits = Reservation::default();
        assert!(budget
            .reserve_work(&mut fits, tiny.as_bytes())
            .await
            .is_ok());
        let huge = format!("[{}]", vec!["1"; 100_000].join(","));
        let refused = budget
            .reserve_work(&mut Reservation::default(), huge.as_bytes())
            .await
            .err();
        assert_eq!(
            refused.map(|e| e.status),
            Some(StatusCode::PAYLOAD_TOO_LARGE)
        );
    }
}
