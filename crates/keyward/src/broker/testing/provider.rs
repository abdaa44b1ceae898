//! A fake OAuth provider with the rules that make refresh tokens dangerous, and keyward's
//! [`TokenEndpoint`] onto it with scripted faults.
//!
//! Each login is a family with one current refresh token. Spending the current token rotates it
//! (the old one is spent for good); presenting a spent token of a live family is reuse and
//! revokes the whole family, as the real provider does. The CLI reaches the provider directly;
//! keyward reaches it through [`FakeEndpoint`], whose calls follow a script of outcomes.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use base64::Engine;
use tokio::sync::watch;

use super::ManualClock;
use crate::broker::Clock;
use crate::credential::TokenAnswer;
use crate::secret::Secret;
use crate::store::memory::crash;
use crate::token_endpoint::{RefreshFailure, RefreshFuture, RefreshTrigger, TokenEndpoint};

/// What keyward's next call to the token endpoint meets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Script {
    /// The provider's own rules decide (rotation, or rejection of a spent or revoked token).
    Ok,
    /// A new access token only; the refresh token stays the current one.
    NoRotation,
    /// The provider revokes the family before processing (the user changed their password):
    /// `refresh_token_invalidated`.
    Reject,
    /// The provider rotated, but the answer never arrived: the token is consumed and its
    /// successor known to no one. Outcome unknown.
    AnswerLost,
    /// A 502 from a proxy in front of the provider: nothing was consumed, but keyward cannot
    /// know that. Outcome unknown.
    Unknown,
    /// Connection refused: nothing left the machine.
    NotSent,
    /// 429 with `Retry-After: 30`: turned away unprocessed.
    Refused,
    /// The provider rotated, then keyward's process died before reading the answer.
    CrashAfterSend,
}

/// Who presented a refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Spender {
    Keyward,
    Cli,
}

/// What the provider did with a presented refresh token.
#[derive(Debug, Clone)]
pub(crate) enum Spend {
    Rotated(Issued),
    Rejected(&'static str),
}

#[derive(Debug, Clone)]
pub(crate) struct Issued {
    pub(crate) access: String,
    pub(crate) refresh: Option<String>,
    pub(crate) id: String,
}

impl Issued {
    fn answer(&self) -> TokenAnswer {
        TokenAnswer {
            access_token: Secret::new(self.access.clone()),
            refresh_token: self.refresh.clone().map(Secret::new),
            id_token: Some(Secret::new(self.id.clone())),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Revoked {
    /// A spent token came back.
    Reuse(Spender),
    /// The provider's own decision (a scripted rejection).
    Provider,
}

#[derive(Debug)]
struct Family {
    current: String,
    revoked: Option<Revoked>,
    /// An answer carrying this family's newest token was lost.
    lost_answer: bool,
}

#[derive(Debug, Default)]
struct State {
    families: Vec<Family>,
    /// Every refresh token ever issued, with its family.
    family_of: HashMap<String, usize>,
    /// Every access token with the refresh token it was issued with.
    issued_with: HashMap<String, String>,
    spent: HashSet<String>,
    script: VecDeque<Script>,
    keyward_calls: u64,
    cli_calls: u64,
    /// Who presented a spent token of a live family, and the family.
    reuse: Vec<(Spender, usize)>,
    serial: u64,
    ttl: i64,
    held: bool,
}

/// The provider, shared by every fake endpoint and CLI of one test.
#[derive(Clone)]
pub(crate) struct FakeProvider {
    state: Arc<Mutex<State>>,
    clock: ManualClock,
    /// Calls waiting for their answer while answers are held.
    in_flight: watch::Sender<u64>,
    release: watch::Sender<bool>,
}

impl fmt::Debug for FakeProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeProvider").finish_non_exhaustive()
    }
}

impl FakeProvider {
    /// Access tokens live `ttl` of the clock's seconds.
    pub(crate) fn new(clock: ManualClock, ttl: Duration) -> Self {
        let state = State {
            ttl: ttl.as_secs() as i64,
            ..State::default()
        };
        Self {
            state: Arc::new(Mutex::new(state)),
            clock,
            in_flight: watch::Sender::new(0),
            release: watch::Sender::new(false),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new login: a new family. Returns its tokens.
    pub(crate) fn login(&self) -> Issued {
        let mut state = self.state();
        let family = state.families.len();
        state.families.push(Family {
            current: String::new(),
            revoked: None,
            lost_answer: false,
        });
        self.issue(&mut state, family, true)
    }

    fn issue(&self, state: &mut State, family: usize, rotate: bool) -> Issued {
        state.serial += 1;
        let serial = state.serial;
        let now = self.clock.now().timestamp();
        let access = jwt(now, now + state.ttl, serial);
        let id = jwt(now, now + state.ttl, serial);
        let refresh = rotate.then(|| format!("rt_{family}_{serial}"));
        let current = match (&refresh, state.families.get_mut(family)) {
            (Some(refresh), Some(f)) => {
                f.current = refresh.clone();
                refresh.clone()
            }
            (None, Some(f)) => f.current.clone(),
            (_, None) => String::new(),
        };
        if let Some(refresh) = &refresh {
            state.family_of.insert(refresh.clone(), family);
        }
        state.issued_with.insert(access.clone(), current);
        Issued {
            access,
            refresh,
            id,
        }
    }

    /// The provider's rule for a presented refresh token.
    pub(crate) fn spend(&self, token: &str, by: Spender) -> Spend {
        let mut state = self.state();
        match by {
            Spender::Keyward => state.keyward_calls += 1,
            Spender::Cli => state.cli_calls += 1,
        }
        self.spend_locked(&mut state, token, by, true)
    }

    fn spend_locked(&self, state: &mut State, token: &str, by: Spender, rotate: bool) -> Spend {
        let Some(&family) = state.family_of.get(token) else {
            return Spend::Rejected("invalid_grant");
        };
        let Some(f) = state.families.get_mut(family) else {
            return Spend::Rejected("invalid_grant");
        };
        if f.revoked.is_some() {
            return Spend::Rejected("refresh_token_invalidated");
        }
        if f.current != token {
            f.revoked = Some(Revoked::Reuse(by));
            state.reuse.push((by, family));
            return Spend::Rejected("refresh_token_reused");
        }
        if rotate {
            state.spent.insert(token.to_string());
        }
        Spend::Rotated(self.issue(state, family, rotate))
    }

    pub(crate) fn push_script(&self, script: Script) {
        self.state().script.push_back(script);
    }

    pub(crate) fn clear_script(&self) {
        self.state().script.clear();
    }

    /// keyward's calls wait (having reached the provider, before it answers) until
    /// [`release`](Self::release).
    pub(crate) fn hold(&self) {
        self.state().held = true;
        self.release.send_replace(false);
    }

    pub(crate) fn release(&self) {
        self.state().held = false;
        self.release.send_replace(true);
    }

    /// Resolves once a held call has reached the provider.
    pub(crate) async fn call_in_flight(&self) {
        let _ = self.in_flight.subscribe().wait_for(|n| *n > 0).await;
    }

    /// keyward's requests that reached the provider (or a proxy in front of it).
    pub(crate) fn keyward_calls(&self) -> u64 {
        self.state().keyward_calls
    }

    pub(crate) fn cli_calls(&self) -> u64 {
        self.state().cli_calls
    }

    /// Who presented a spent token of a live family (revoking it), and which family, in order.
    pub(crate) fn reuse(&self) -> Vec<(Spender, usize)> {
        self.state().reuse.clone()
    }

    pub(crate) fn family_of(&self, refresh: &str) -> Option<usize> {
        self.state().family_of.get(refresh).copied()
    }

    /// The family's current refresh token.
    pub(crate) fn current(&self, family: usize) -> Option<String> {
        self.state().families.get(family).map(|f| f.current.clone())
    }

    pub(crate) fn revoked(&self, family: usize) -> Option<Revoked> {
        self.state().families.get(family).and_then(|f| f.revoked)
    }

    /// Whether an answer carrying this family's newest token was lost.
    pub(crate) fn lost_answer(&self, family: usize) -> bool {
        self.state()
            .families
            .get(family)
            .is_some_and(|f| f.lost_answer)
    }

    /// The refresh token the provider issued `access` with.
    pub(crate) fn issued_with(&self, access: &str) -> Option<String> {
        self.state().issued_with.get(access).cloned()
    }

    pub(crate) fn is_spent(&self, refresh: &str) -> bool {
        self.state().spent.contains(refresh)
    }

    fn mark_lost(state: &mut State, token: &str) {
        if let Some(f) = state
            .family_of
            .get(token)
            .copied()
            .and_then(|family| state.families.get_mut(family))
        {
            f.lost_answer = true;
        }
    }

    /// keyward's call, as the script has it.
    async fn keyward_call(&self, token: &str) -> Result<TokenAnswer, RefreshFailure> {
        let script = self.state().script.pop_front().unwrap_or(Script::Ok);
        match script {
            Script::NotSent => {
                return Err(RefreshFailure::NotSent {
                    detail: "connection refused".into(),
                })
            }
            Script::Refused => {
                self.state().keyward_calls += 1;
                return Err(RefreshFailure::Refused {
                    status: 429,
                    code: "rate_limited".into(),
                    retry_after: Some(Duration::from_secs(30)),
                });
            }
            Script::Unknown => {
                self.state().keyward_calls += 1;
                return Err(RefreshFailure::Unknown {
                    detail: "status 502".into(),
                });
            }
            _ => {}
        }
        if self.state().held {
            self.in_flight.send_modify(|n| *n += 1);
            let _ = self
                .release
                .subscribe()
                .wait_for(|released| *released)
                .await;
        }
        let mut state = self.state();
        state.keyward_calls += 1;
        if script == Script::Reject {
            // Only a live family's current token is revoked this way: a spent one still meets
            // the reuse rule, so a scripted rejection never hides a stale spend.
            if let Some(f) = state
                .family_of
                .get(token)
                .copied()
                .and_then(|family| state.families.get_mut(family))
                .filter(|f| f.current == token && f.revoked.is_none())
            {
                f.revoked = Some(Revoked::Provider);
            }
        }
        let rotate = script != Script::NoRotation;
        let spend = self.spend_locked(&mut state, token, Spender::Keyward, rotate);
        let issued = match spend {
            Spend::Rejected(code) => {
                return Err(RefreshFailure::Rejected {
                    status: 401,
                    code: code.into(),
                })
            }
            Spend::Rotated(issued) => issued,
        };
        match script {
            Script::AnswerLost => {
                Self::mark_lost(&mut state, token);
                Err(RefreshFailure::Unknown {
                    detail: "connection dropped while reading the answer".into(),
                })
            }
            Script::CrashAfterSend => {
                Self::mark_lost(&mut state, token);
                drop(state);
                crash()
            }
            _ => Ok(issued.answer()),
        }
    }
}

/// keyward's view of the provider: its token endpoint.
#[derive(Debug)]
pub(crate) struct FakeEndpoint {
    pub(crate) provider: FakeProvider,
}

impl TokenEndpoint for FakeEndpoint {
    fn refresh<'a>(
        &'a self,
        refresh_token: &'a Secret,
        _trigger: RefreshTrigger,
    ) -> RefreshFuture<'a> {
        Box::pin(self.provider.keyward_call(refresh_token.expose()))
    }

    fn url(&self) -> &str {
        "fake://provider/token"
    }
}

/// A JWT-shaped token whose claims say when it was issued and expires (unsigned: keyward only
/// reads the claims).
pub(crate) fn jwt(issued: i64, expires: i64, serial: u64) -> String {
    let b64 = |v: &serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let header = b64(&serde_json::json!({"alg": "none"}));
    let claims = b64(&serde_json::json!({"iat": issued, "exp": expires, "jti": serial}));
    format!("{header}.{claims}.sig")
}
