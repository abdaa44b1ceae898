//! The auth provider's bookkeeping: token families, the single current refresh
//! token of each, issued access tokens, fault queues and counters.
//!
//! Everything here is synchronous and lives behind one mutex; handlers never
//! hold it across an await, so faults that sleep do so outside of it.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::faults::{ResponseFault, TokenFault};
use crate::jwt::{self, Identity};

pub(crate) const SCOPE: &str = "openid profile email offline_access";

struct Family {
    identity: Identity,
    revoked: bool,
    generation: u64,
    access_ttl: Option<i64>,
    current_refresh: String,
    access_tokens: Vec<String>,
}

struct AccessRecord {
    family: usize,
    exp: i64,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct Issued {
    pub(crate) id_token: String,
    pub(crate) access_token: String,
    pub(crate) refresh_token: String,
    pub(crate) expires_in: i64,
}

#[derive(Debug)]
pub(crate) enum RefreshOutcome {
    Rotated(Issued),
    /// A spent token of a live family came back: the family is now revoked.
    Reused,
    /// A token of an already revoked family.
    Invalidated,
    Unknown,
}

impl RefreshOutcome {
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Self::Rotated(_) => "rotated",
            Self::Reused => "reused",
            Self::Invalidated => "invalidated",
            Self::Unknown => "invalid_grant",
        }
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct Stats {
    pub(crate) token_calls: u64,
    pub(crate) refresh_ok: u64,
    /// Authorization codes exchanged for a new family (browser or device sign-in).
    pub(crate) logins: u64,
    /// `POST /oauth/revoke` calls that named a known token.
    pub(crate) revocations: u64,
    pub(crate) reuse_events: u64,
    pub(crate) families_revoked: u64,
    pub(crate) rejected: BTreeMap<String, u64>,
    pub(crate) faults_injected: u64,
    pub(crate) responses_ok: u64,
    pub(crate) responses_unauthorized: u64,
    /// Requests the backend's rules refused (`codex_rules`).
    pub(crate) responses_rejected: u64,
    /// Requests answered with the usage-limit 429 (`[[usage_limit]]` or an
    /// account limited through `POST /admin/usage_limit`).
    pub(crate) responses_usage_limited: u64,
    pub(crate) responses_faulted: u64,
    /// Streams whose client went away before the stream ended (a proxy that cancels upstream
    /// when its own client disconnects makes this count).
    pub(crate) streams_abandoned: u64,
    /// Usage-limit 429s by ChatGPT account.
    pub(crate) usage_limited: BTreeMap<String, u64>,
    /// Codex answers served (200) by ChatGPT account.
    pub(crate) served_by_account: BTreeMap<String, u64>,
    /// `POST /v1/responses` answers served (200).
    pub(crate) openai_ok: u64,
    /// `POST /v1/responses` answers refused, whatever the reason (key, rate limit, rules, quota).
    pub(crate) openai_rejected: u64,
    /// `POST /v1/messages` answers served (200).
    pub(crate) anthropic_ok: u64,
    /// `POST /v1/messages` answers refused, whatever the reason (key, version, rate limit, rules).
    pub(crate) anthropic_rejected: u64,
    /// API-key answers served (200), by the key's last four characters.
    pub(crate) served_by_api_key: BTreeMap<String, u64>,
    /// Rate-limit 429s from `POST /admin/api_key_limit`, by the key's last four characters.
    pub(crate) rate_limited_by_api_key: BTreeMap<String, u64>,
}

/// Adds one to `key`'s count in `counts`.
pub(crate) fn bump(counts: &mut BTreeMap<String, u64>, key: &str) {
    *counts.entry(key.to_owned()).or_default() += 1;
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct LogRecord {
    pub(crate) at_ms: i64,
    pub(crate) token_prefix: String,
    pub(crate) outcome: String,
    /// The injected fault's kind when one was popped for this call.
    pub(crate) fault: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoginRequest {
    pub(crate) account_id: Option<String>,
    pub(crate) email: Option<String>,
    pub(crate) plan: Option<String>,
    pub(crate) access_ttl: Option<i64>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Inspection {
    pub(crate) known: bool,
    pub(crate) current: bool,
    pub(crate) family_revoked: bool,
    pub(crate) generation: u64,
}

/// The ChatGPT account a bearer token speaks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Holder {
    pub(crate) account_id: String,
    /// The plan type the account's tokens carry (`plus`, `pro`, ...).
    pub(crate) plan: String,
}

/// Why a bearer token was refused by the Codex backend; the variant names
/// the `code` the backend answers with.
#[derive(Debug, Clone, Copy)]
pub(crate) enum AccessDenied {
    InvalidToken,
    TokenRevoked,
    TokenExpired,
    AccountMismatch,
}

impl AccessDenied {
    pub(crate) fn code(self) -> &'static str {
        match self {
            Self::InvalidToken => "invalid_token",
            Self::TokenRevoked => "token_revoked",
            Self::TokenExpired => "token_expired",
            Self::AccountMismatch => "account_mismatch",
        }
    }

    pub(crate) fn message(self) -> &'static str {
        match self {
            Self::InvalidToken => "Could not parse your authentication token.",
            Self::TokenRevoked => "Your authentication token has been revoked.",
            Self::TokenExpired => {
                "Provided authentication token is expired. Please try signing in again."
            }
            Self::AccountMismatch => "The chatgpt-account-id header does not match the token.",
        }
    }
}

pub(crate) struct ProviderState {
    default_ttl: i64,
    families: Vec<Family>,
    /// Every refresh token ever issued, spent or not, so reuse is detectable.
    refresh_index: HashMap<String, usize>,
    access_index: HashMap<String, AccessRecord>,
    ttl_queue: VecDeque<i64>,
    token_faults: VecDeque<TokenFault>,
    response_faults: VecDeque<ResponseFault>,
    pub(crate) stats: Stats,
    log: Vec<LogRecord>,
}

pub(crate) fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn new_refresh_token() -> String {
    // 36 random bytes are exactly 48 base64url characters.
    format!("rt_{}", jwt::random_b64(36))
}

impl ProviderState {
    pub(crate) fn new(default_ttl: i64) -> Self {
        Self {
            default_ttl,
            families: Vec::new(),
            refresh_index: HashMap::new(),
            access_index: HashMap::new(),
            ttl_queue: VecDeque::new(),
            token_faults: VecDeque::new(),
            response_faults: VecDeque::new(),
            stats: Stats::default(),
            log: Vec::new(),
        }
    }

    pub(crate) fn login(&mut self, req: LoginRequest) -> (Issued, String) {
        let identity = Identity {
            account_id: req
                .account_id
                .unwrap_or_else(|| format!("acct-{}", jwt::random_hex(8))),
            email: req.email.unwrap_or_else(|| "user@example.com".into()),
            plan: req.plan.unwrap_or_else(|| "plus".into()),
        };
        let account_id = identity.account_id.clone();
        let family = self.families.len();
        self.families.push(Family {
            identity,
            revoked: false,
            generation: 0,
            access_ttl: req.access_ttl,
            current_refresh: String::new(),
            access_tokens: Vec::new(),
        });
        (self.issue(family), account_id)
    }

    /// Mints a full token set for `family` and makes its refresh token the
    /// current one, which implicitly spends the previous one.
    fn issue(&mut self, family: usize) -> Issued {
        let ttl = match self.ttl_queue.pop_front() {
            Some(ttl) => ttl,
            None => self
                .families
                .get(family)
                .and_then(|f| f.access_ttl)
                .unwrap_or(self.default_ttl),
        };
        let refresh_token = new_refresh_token();
        let now = now_secs();
        let (access_token, id_token) = match self.families.get_mut(family) {
            Some(f) => {
                let access = jwt::mint(&f.identity, now, ttl);
                let id = jwt::mint(&f.identity, now, ttl);
                f.current_refresh = refresh_token.clone();
                f.access_tokens.push(access.clone());
                (access, id)
            }
            // Callers only pass indices they just looked up or pushed.
            None => (String::new(), String::new()),
        };
        self.refresh_index.insert(refresh_token.clone(), family);
        let exp = now.saturating_add(ttl);
        self.access_index
            .insert(access_token.clone(), AccessRecord { family, exp });
        Issued {
            id_token,
            access_token,
            refresh_token,
            expires_in: ttl,
        }
    }

    /// The real server's rotation rule: only the family's current token may
    /// be spent, and presenting a spent one burns the whole family.
    pub(crate) fn refresh(&mut self, token: Option<&str>) -> RefreshOutcome {
        let found = token.and_then(|t| self.refresh_index.get(t).map(|&fam| (t, fam)));
        let outcome = match found {
            None => RefreshOutcome::Unknown,
            Some((token, fam)) => match self.families.get_mut(fam) {
                None => RefreshOutcome::Unknown,
                Some(f) if f.revoked => RefreshOutcome::Invalidated,
                Some(f) if f.current_refresh != token => {
                    f.revoked = true;
                    self.stats.reuse_events += 1;
                    self.stats.families_revoked += 1;
                    RefreshOutcome::Reused
                }
                Some(f) => {
                    f.generation += 1;
                    self.stats.refresh_ok += 1;
                    RefreshOutcome::Rotated(self.issue(fam))
                }
            },
        };
        let rejected = match outcome {
            RefreshOutcome::Rotated(_) => None,
            RefreshOutcome::Reused => Some("refresh_token_reused"),
            RefreshOutcome::Invalidated => Some("refresh_token_invalidated"),
            RefreshOutcome::Unknown => Some("invalid_grant"),
        };
        if let Some(code) = rejected {
            self.count_rejection(code);
        }
        outcome
    }

    pub(crate) fn count_rejection(&mut self, code: &str) {
        bump(&mut self.stats.rejected, code);
    }

    /// Revokes the family of `token`; `None` if the token is unknown, else
    /// whether the family had already been revoked.
    pub(crate) fn revoke(&mut self, token: &str) -> Option<bool> {
        let fam = *self.refresh_index.get(token)?;
        let f = self.families.get_mut(fam)?;
        let was = f.revoked;
        if !was {
            f.revoked = true;
            self.stats.families_revoked += 1;
        }
        Some(was)
    }

    /// `POST /oauth/revoke`: the family of a refresh or access token ends;
    /// whether the token was known.
    pub(crate) fn revoke_by_client(&mut self, token: &str) -> bool {
        let family = self
            .refresh_index
            .get(token)
            .copied()
            .or_else(|| self.access_index.get(token).map(|a| a.family));
        let Some(f) = family.and_then(|fam| self.families.get_mut(fam)) else {
            return false;
        };
        self.stats.revocations += 1;
        if !f.revoked {
            f.revoked = true;
            self.stats.families_revoked += 1;
        }
        true
    }

    pub(crate) fn inspect(&self, token: &str) -> Inspection {
        match self
            .refresh_index
            .get(token)
            .and_then(|&fam| self.families.get(fam))
        {
            Some(f) => Inspection {
                known: true,
                current: f.current_refresh == token,
                family_revoked: f.revoked,
                generation: f.generation,
            },
            None => Inspection {
                known: false,
                current: false,
                family_revoked: false,
                generation: 0,
            },
        }
    }

    pub(crate) fn check_access(
        &self,
        token: Option<&str>,
        account_header: Option<&str>,
        now: i64,
    ) -> Result<Holder, AccessDenied> {
        let record = token
            .and_then(|t| self.access_index.get(t))
            .ok_or(AccessDenied::InvalidToken)?;
        let family = self
            .families
            .get(record.family)
            .ok_or(AccessDenied::InvalidToken)?;
        if family.revoked {
            return Err(AccessDenied::TokenRevoked);
        }
        if record.exp <= now {
            return Err(AccessDenied::TokenExpired);
        }
        if account_header != Some(family.identity.account_id.as_str()) {
            return Err(AccessDenied::AccountMismatch);
        }
        Ok(Holder {
            account_id: family.identity.account_id.clone(),
            plan: family.identity.plan.clone(),
        })
    }

    pub(crate) fn push_token_faults(&mut self, faults: Vec<TokenFault>) {
        self.token_faults.extend(faults);
    }

    pub(crate) fn push_response_faults(&mut self, faults: Vec<ResponseFault>) {
        self.response_faults.extend(faults);
    }

    pub(crate) fn push_ttls(&mut self, ttls: Vec<i64>) {
        self.ttl_queue.extend(ttls);
    }

    pub(crate) fn pop_token_fault(&mut self) -> Option<TokenFault> {
        let fault = self.token_faults.pop_front()?;
        self.stats.faults_injected += 1;
        Some(fault)
    }

    pub(crate) fn pop_response_fault(&mut self) -> Option<ResponseFault> {
        let fault = self.response_faults.pop_front()?;
        self.stats.responses_faulted += 1;
        Some(fault)
    }

    pub(crate) fn record(
        &mut self,
        token: Option<&str>,
        outcome: String,
        fault: Option<&TokenFault>,
    ) {
        self.log.push(LogRecord {
            at_ms: chrono::Utc::now().timestamp_millis(),
            token_prefix: token.unwrap_or("").chars().take(10).collect(),
            outcome,
            fault: fault.map(|f| f.kind().to_owned()),
        });
    }

    pub(crate) fn log(&self) -> &[LogRecord] {
        &self.log
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login(state: &mut ProviderState) -> Issued {
        state.login(LoginRequest::default()).0
    }

    #[test]
    fn rotation_then_reuse_burns_family() {
        let mut s = ProviderState::new(3600);
        let first = login(&mut s);
        let second = match s.refresh(Some(&first.refresh_token)) {
            RefreshOutcome::Rotated(i) => i,
            other => panic!("expected rotation, got {other:?}"),
        };
        assert!(s.inspect(&second.refresh_token).current);
        assert!(matches!(
            s.refresh(Some(&first.refresh_token)),
            RefreshOutcome::Reused
        ));
        assert!(matches!(
            s.refresh(Some(&second.refresh_token)),
            RefreshOutcome::Invalidated
        ));
        assert_eq!(s.stats.reuse_events, 1);
        assert_eq!(s.stats.families_revoked, 1);
        assert_eq!(s.stats.refresh_ok, 1);
        assert_eq!(s.stats.rejected.get("refresh_token_invalidated"), Some(&1));
    }

    /// An accepted token names its family's account and plan; a token with
    /// another account's header is refused.
    #[test]
    fn access_names_the_account() {
        let mut s = ProviderState::new(3600);
        let (issued, account_id) = s.login(LoginRequest {
            account_id: Some("acct-1".into()),
            plan: Some("pro".into()),
            ..LoginRequest::default()
        });
        let holder = s.check_access(Some(&issued.access_token), Some("acct-1"), now_secs());
        assert_eq!(
            holder.ok(),
            Some(Holder {
                account_id,
                plan: "pro".into(),
            })
        );
        let other = s.check_access(Some(&issued.access_token), Some("acct-2"), now_secs());
        assert!(matches!(other, Err(AccessDenied::AccountMismatch)));
    }

    #[test]
    fn ttl_queue_takes_precedence() {
        let mut s = ProviderState::new(3600);
        s.push_ttls(vec![5]);
        let first = s
            .login(LoginRequest {
                access_ttl: Some(100),
                ..LoginRequest::default()
            })
            .0;
        assert_eq!(first.expires_in, 5);
        match s.refresh(Some(&first.refresh_token)) {
            RefreshOutcome::Rotated(i) => assert_eq!(i.expires_in, 100),
            other => panic!("expected rotation, got {other:?}"),
        }
    }
}
