//! When to refresh and how long to back off: pure functions of the token's times and `now`.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::credential::Credential;
use crate::secret::Fingerprint;

#[derive(Debug, Clone)]
pub(crate) struct RefreshTiming {
    /// Refresh once the access token has this much or less left (plus jitter). A margin above
    /// the owning CLI's own refresh window lets keyward go first and the CLI adopt.
    pub margin: Duration,
    /// Up to this much extra margin, fixed per token and per process, so several keyward
    /// processes on one login do not all reach for the lock at the same instant.
    pub jitter: Duration,
    /// A request needs at least this much validity left, or it refreshes first.
    pub min_validity: Duration,
}

impl Default for RefreshTiming {
    fn default() -> Self {
        Self {
            margin: Duration::from_secs(10 * 60),
            jitter: Duration::from_secs(5 * 60),
            min_validity: Duration::from_secs(30),
        }
    }
}

impl RefreshTiming {
    /// The instant the scheduler should refresh `credential`. The margin never exceeds half the
    /// token's lifetime, so short-lived tokens do not refresh in a loop. An access token without
    /// an `exp` claim expires at `undated_expiry`, the source's own rule for such logins (none:
    /// the scheduler leaves it alone and the upstream's 401 triggers the refresh).
    pub(crate) fn refresh_at(
        &self,
        credential: &Credential,
        undated_expiry: Option<DateTime<Utc>>,
        seed: u64,
    ) -> Option<DateTime<Utc>> {
        let expires = credential.claims.expires_at.or(undated_expiry)?;
        let jitter = self
            .jitter
            .mul_f64(unit_fraction(credential.refresh_fingerprint(), seed));
        let mut lead = self.margin + jitter;
        if let Some(issued) = credential.claims.issued_at {
            let lifetime = (expires - issued).to_std().unwrap_or_default();
            lead = lead.min(lifetime / 2);
        }
        Some(expires - chrono::Duration::from_std(lead).unwrap_or_default())
    }

    /// Whether the access token can still be sent with a request at `now`.
    pub(crate) fn usable(&self, credential: &Credential, now: DateTime<Utc>) -> bool {
        let Some(expires) = credential.claims.expires_at else {
            // No expiry claim: the upstream's 401 is the only signal; use it until then.
            return true;
        };
        let mut need = self.min_validity;
        if let Some(issued) = credential.claims.issued_at {
            need = need.min((expires - issued).to_std().unwrap_or_default() / 4);
        }
        expires - chrono::Duration::from_std(need).unwrap_or_default() > now
    }
}

/// A number in [0, 1) fixed for this token in this process.
fn unit_fraction(token: Fingerprint, seed: u64) -> f64 {
    let mut x = seed ^ u64::from_str_radix(&token.to_hex()[..16], 16).unwrap_or(0);
    // splitmix64 finaliser
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// Exponential backoff with jitter after `failures` consecutive transient failures.
pub(crate) fn backoff(failures: u32, retry_after: Option<Duration>) -> Duration {
    let base = Duration::from_secs(1);
    let cap = Duration::from_secs(300);
    let exp = base.saturating_mul(1u32 << failures.min(12)).min(cap);
    let jittered = exp.mul_f64(0.5 + rand::random::<f64>() * 0.5);
    retry_after.map_or(jittered, |r| jittered.max(r.min(cap)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credential::TokenClaims;
    use crate::secret::Secret;

    fn credential(issued: i64, expires: i64) -> Credential {
        let at = |s| DateTime::from_timestamp(s, 0);
        Credential {
            access_token: Secret::new("a"),
            refresh_token: Secret::new("r"),
            id_token: None,
            account_id: None,
            claims: TokenClaims {
                issued_at: at(issued),
                expires_at: at(expires),
                ..Default::default()
            },
            last_refresh: None,
        }
    }

    /// A long-lived token is due between margin and margin plus jitter before its expiry.
    #[test]
    fn refreshes_ahead_of_the_cli_window() {
        let timing = RefreshTiming {
            margin: Duration::from_secs(600),
            jitter: Duration::from_secs(300),
            ..Default::default()
        };
        let cred = credential(0, 10 * 24 * 3600);
        let at = timing.refresh_at(&cred, None, 7).map(|t| t.timestamp());
        let expires = 10 * 24 * 3600;
        assert!(
            at.is_some_and(|t| t <= expires - 600 && t > expires - 900),
            "{at:?}"
        );
    }

    /// A token shorter-lived than twice the margin is due at half its life.
    #[test]
    fn short_lived_tokens_refresh_at_half_life_not_in_a_loop() {
        let timing = RefreshTiming::default();
        let cred = credential(1000, 1060);
        assert_eq!(
            timing.refresh_at(&cred, None, 1).map(|t| t.timestamp()),
            Some(1030)
        );
    }

    /// Without an expiry claim the source's rule decides; without one either, nothing is due.
    #[test]
    fn without_an_expiry_claim_the_sources_rule_decides() {
        let timing = RefreshTiming {
            margin: Duration::from_secs(600),
            jitter: Duration::ZERO,
            ..Default::default()
        };
        let mut cred = credential(0, 0);
        cred.claims = TokenClaims::default();
        assert_eq!(timing.refresh_at(&cred, None, 1), None);
        let undated = DateTime::from_timestamp(2_000_000, 0);
        assert_eq!(
            timing.refresh_at(&cred, undated, 1).map(|t| t.timestamp()),
            Some(2_000_000 - 600)
        );
    }

    /// A token with less than the minimum validity left is not usable.
    #[test]
    fn usable_needs_some_validity_left() {
        let timing = RefreshTiming::default();
        let cred = credential(0, 3600);
        let at = |s| DateTime::from_timestamp(s, 0).unwrap_or_default();
        assert!(timing.usable(&cred, at(3500)));
        assert!(!timing.usable(&cred, at(3580)));
        assert!(!timing.usable(&cred, at(4000)));
    }

    /// Backoff starts near a second, stays under the cap and honours Retry-After.
    #[test]
    fn backoff_grows_and_honours_retry_after() {
        assert!(backoff(0, None) <= Duration::from_secs(1));
        assert!(backoff(20, None) <= Duration::from_secs(300));
        assert!(backoff(0, Some(Duration::from_secs(30))) >= Duration::from_secs(30));
    }
}
