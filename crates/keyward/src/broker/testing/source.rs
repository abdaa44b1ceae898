//! A fake credential source: an `auth.json`-like document in memory behind one lock that
//! serialises like the CLI's flocks, shared by every broker of a test (two brokers on one source
//! are two keyward processes on one CLI home), and the CLI that rotates it.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::provider::{FakeProvider, Issued, Spend, Spender};
use crate::codex::claims;
use crate::credential::{
    Credential, CredentialSource, SourceContents, SourceError, SourceGuard, SourceIdentity,
    SourceProblem, SourceRead, SourceVocabulary, TokenAnswer, TokenClaims, Watched,
};
use crate::secret::{Fingerprint, Secret};
use crate::store::memory::crash;

/// What the document holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Doc {
    Missing,
    /// Not parseable (a torn or hand-edited file).
    Garbage,
    NoLogin,
    ApiKey,
    Login(Tokens),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tokens {
    pub(crate) access: String,
    pub(crate) refresh: String,
    pub(crate) last_refresh: Option<DateTime<Utc>>,
}

/// A fault of keyward's next write-back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteFault {
    /// The write fails (disk full).
    Fails,
    /// A writer that ignores the locks has just left garbage in the file.
    FindsGarbage,
    /// The write lands, then the process dies before settling the journal.
    CrashAfter,
}

type Hook = Box<dyn FnOnce() + Send>;

struct State {
    doc: Doc,
    /// What the file held before garbage replaced it, for [`FakeSource::repair`].
    before_garbage: Option<Doc>,
    /// Bumped by every write: the file's identity.
    generation: u64,
    write_faults: VecDeque<WriteFault>,
    /// Run when someone next asks for the lock, holding it before the asker gets it: a writer
    /// that held the lock when the asker came, so the asker waited for it.
    lock_hooks: Vec<Hook>,
    /// A process is stuck holding the lock.
    stuck: bool,
    /// Writes made without the lock held: must stay zero.
    unlocked_writes: u64,
}

impl State {
    fn corrupt(&mut self) {
        if self.doc != Doc::Garbage {
            self.before_garbage = Some(std::mem::replace(&mut self.doc, Doc::Garbage));
            self.generation += 1;
        }
    }
}

struct Lock {
    held: Mutex<bool>,
    released: Condvar,
}

pub(crate) struct FakeSource {
    path: PathBuf,
    state: Mutex<State>,
    lock: Arc<Lock>,
}

struct FakeGuard {
    lock: Arc<Lock>,
}

impl SourceGuard for FakeGuard {}

impl Drop for FakeGuard {
    fn drop(&mut self) {
        *self.lock.held.lock().unwrap_or_else(|p| p.into_inner()) = false;
        self.lock.released.notify_one();
    }
}

impl FakeSource {
    pub(crate) fn new(doc: Doc) -> Self {
        Self {
            path: PathBuf::from("/fake/acme/auth.json"),
            state: Mutex::new(State {
                doc,
                before_garbage: None,
                generation: 1,
                write_faults: VecDeque::new(),
                lock_hooks: Vec::new(),
                stuck: false,
                unlocked_writes: 0,
            }),
            lock: Arc::new(Lock {
                held: Mutex::new(false),
                released: Condvar::new(),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn locked(&self) -> bool {
        *self.lock.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn doc(&self) -> Doc {
        self.state().doc.clone()
    }

    /// Replaces the document as a writer would (under the lock if `locked`).
    pub(crate) fn write(&self, doc: Doc) {
        let locked = self.locked();
        let mut state = self.state();
        if !locked {
            state.unlocked_writes += 1;
        }
        state.doc = doc;
        state.before_garbage = None;
        state.generation += 1;
    }

    /// A writer that ignores the locks leaves garbage in the file.
    pub(crate) fn corrupt(&self) {
        self.state().corrupt();
    }

    /// The user puts back what the file held before it turned to garbage.
    pub(crate) fn repair(&self) {
        let mut state = self.state();
        if let Some(doc) = state.before_garbage.take() {
            state.doc = doc;
            state.generation += 1;
        }
    }

    /// A writer that takes no lock (a user's editor, a backup restore).
    pub(crate) fn write_unlocked(&self, doc: Doc) {
        let mut state = self.state();
        state.doc = doc;
        state.generation += 1;
    }

    pub(crate) fn push_write_fault(&self, fault: WriteFault) {
        self.state().write_faults.push_back(fault);
    }

    pub(crate) fn clear_write_faults(&self) {
        self.state().write_faults.clear();
    }

    pub(crate) fn clear_faults(&self) {
        let mut state = self.state();
        state.write_faults.clear();
        state.lock_hooks.clear();
        state.stuck = false;
    }

    pub(crate) fn on_next_lock(&self, hook: Hook) {
        self.state().lock_hooks.push(hook);
    }

    pub(crate) fn set_stuck(&self, stuck: bool) {
        self.state().stuck = stuck;
    }

    pub(crate) fn unlocked_writes(&self) -> u64 {
        self.state().unlocked_writes
    }

    /// The lock, for writers other than keyward (the CLI, a login).
    pub(crate) fn acquire(&self, timeout: Duration) -> Result<Box<dyn SourceGuard>, SourceError> {
        let deadline = Instant::now() + timeout;
        let mut held = self.lock.held.lock().unwrap_or_else(|p| p.into_inner());
        while *held {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.timeout(timeout));
            }
            held = self
                .lock
                .released
                .wait_timeout(held, left)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        *held = true;
        Ok(Box::new(FakeGuard {
            lock: self.lock.clone(),
        }))
    }

    fn timeout(&self, waited: Duration) -> SourceError {
        SourceError::LockTimeout {
            path: "/fake/acme/auth.lock".into(),
            waited,
            holder: "an acme process or another keyward",
        }
    }
}

fn credential(tokens: &Tokens) -> Credential {
    Credential {
        access_token: Secret::new(tokens.access.clone()),
        refresh_token: Secret::new(tokens.refresh.clone()),
        id_token: None,
        account_id: Some("acct-1".into()),
        claims: claims::decode(&tokens.access).unwrap_or_default(),
        last_refresh: tokens.last_refresh,
    }
}

impl CredentialSource for FakeSource {
    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn watched(&self) -> Vec<Watched> {
        vec![Watched {
            path: self.path.clone(),
            on_release: false,
        }]
    }

    fn identity(&self) -> Option<SourceIdentity> {
        let state = self.state();
        let generation = state.generation;
        (state.doc != Doc::Missing).then_some(SourceIdentity {
            dev: 1,
            ino: generation,
            size: 0,
            mtime_ns: i128::from(generation),
            ctime_ns: i128::from(generation),
        })
    }

    fn read(&self) -> SourceRead {
        let doc = self.doc();
        let contents = match &doc {
            Doc::Missing => Ok(SourceContents::Missing),
            Doc::Garbage => Err(SourceProblem::NotJson {
                path: self.path.display().to_string(),
                detail: "truncated at line 1 column 9".into(),
            }),
            Doc::NoLogin => Ok(SourceContents::NoLogin),
            Doc::ApiKey => Ok(SourceContents::ApiKey(Secret::new("sk-fake"))),
            Doc::Login(tokens) => Ok(SourceContents::Login(Box::new(credential(tokens)))),
        };
        SourceRead {
            identity: self.identity(),
            contents,
            warnings: Vec::new(),
            store: None,
        }
    }

    fn lock(&self, timeout: Duration) -> Result<Box<dyn SourceGuard>, SourceError> {
        if self.state().stuck {
            return Err(self.timeout(timeout));
        }
        let guard = self.acquire(timeout)?;
        let hooks = std::mem::take(&mut self.state().lock_hooks);
        for hook in hooks {
            hook();
        }
        Ok(guard)
    }

    fn write_back(
        &self,
        _guard: &dyn SourceGuard,
        spent: Fingerprint,
        answer: &TokenAnswer,
        now: DateTime<Utc>,
    ) -> Result<(), SourceError> {
        let locked = self.locked();
        let crash_after = {
            let mut state = self.state();
            let fault = state.write_faults.pop_front();
            match fault {
                Some(WriteFault::Fails) => {
                    return Err(SourceError::Io {
                        path: self.path.display().to_string(),
                        doing: "cannot write it",
                        source: std::io::Error::new(
                            std::io::ErrorKind::StorageFull,
                            "no space left on device",
                        ),
                    })
                }
                Some(WriteFault::FindsGarbage) => state.corrupt(),
                _ => {}
            }
            let held = match &state.doc {
                Doc::Login(tokens) if Fingerprint::of(&tokens.refresh) == spent => {
                    tokens.refresh.clone()
                }
                Doc::Login(tokens) => {
                    return Err(SourceError::Conflict {
                        found: Fingerprint::of(&tokens.refresh).to_string(),
                    })
                }
                Doc::Garbage => {
                    return Err(SourceError::Unusable(SourceProblem::NotJson {
                        path: self.path.display().to_string(),
                        detail: "truncated".into(),
                    }))
                }
                _ => {
                    return Err(SourceError::Conflict {
                        found: "no login".into(),
                    })
                }
            };
            let written = Tokens {
                access: answer.access_token.expose().to_string(),
                refresh: answer
                    .refresh_token
                    .as_ref()
                    .map_or(held, |t| t.expose().to_string()),
                last_refresh: Some(now),
            };
            state.doc = Doc::Login(written);
            state.generation += 1;
            if !locked {
                state.unlocked_writes += 1;
            }
            fault == Some(WriteFault::CrashAfter)
        };
        if crash_after {
            crash();
        }
        Ok(())
    }

    fn vocabulary(&self) -> SourceVocabulary {
        SourceVocabulary {
            provider: "Acme",
            login: "Acme login",
            login_command: "acme login".into(),
            sign_in: "sign in with Acme",
            cli: "acme",
            lock_holder: "an acme process",
        }
    }

    /// The fake provider's tokens are JWTs with the standard claims, read as OpenAI's are.
    fn claims(&self, access_token: &Secret, id_token: Option<&Secret>) -> TokenClaims {
        claims::of_login(access_token.expose(), id_token.map(Secret::expose))
    }
}

/// The owning CLI, as the real one refreshes: it re-reads the file (its guarded reload), spends
/// the token it found holding no lock, then takes the lock and writes the answer over whatever
/// the file holds. It knows nothing of keyward's ledger.
#[derive(Clone)]
pub(crate) struct FakeCli {
    pub(crate) source: Arc<FakeSource>,
    pub(crate) provider: FakeProvider,
}

/// What a CLI run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CliRun {
    Refreshed,
    Failed(&'static str),
    /// No login in the file (or an unreadable one): the CLI does nothing.
    NothingToRefresh,
}

impl FakeCli {
    pub(crate) fn rotate(&self) -> CliRun {
        self.run(|issued| {
            if let Ok(_guard) = self.source.acquire(Duration::from_secs(5)) {
                self.persist(issued);
            }
        })
    }

    fn run(&self, persist: impl FnOnce(&Issued)) -> CliRun {
        let Doc::Login(tokens) = self.source.doc() else {
            return CliRun::NothingToRefresh;
        };
        match self.provider.spend(&tokens.refresh, Spender::Cli) {
            Spend::Rejected(code) => CliRun::Failed(code),
            Spend::Rotated(issued) => {
                persist(&issued);
                CliRun::Refreshed
            }
        }
    }

    /// The CLI's write-back, the lock held: the returned tokens replace the file's.
    fn persist(&self, issued: &Issued) {
        let refresh = match (&issued.refresh, self.source.doc()) {
            (Some(refresh), _) => refresh.clone(),
            (None, Doc::Login(tokens)) => tokens.refresh,
            (None, _) => return,
        };
        self.source.write(Doc::Login(Tokens {
            access: issued.access.clone(),
            refresh,
            last_refresh: None,
        }));
    }

    /// The CLI holds the lock, writing the token it just spent, when the next locker (keyward)
    /// asks for it: the locker gets the lock once the CLI's write has landed. (Asking between
    /// the CLI's spend and its lock is the race no peer can close: the CLI spends holding no
    /// lock. keyward avoids it by refreshing before the CLI's window, not by locking.)
    pub(crate) fn rotate_at_next_lock(&self) {
        let cli = self.clone();
        self.source.on_next_lock(Box::new(move || {
            cli.rotate_holding_the_lock();
        }));
    }

    /// A rotation whose write-back happens under a lock already held for the CLI.
    pub(crate) fn rotate_holding_the_lock(&self) -> CliRun {
        self.run(|issued| self.persist(issued))
    }

    /// `acme logout`: the file is removed, under the lock.
    pub(crate) fn logout(&self) {
        if let Ok(_guard) = self.source.acquire(Duration::from_secs(5)) {
            self.source.write(Doc::Missing);
        }
    }

    /// A new login, written under the lock as `acme login` does.
    pub(crate) fn login(&self) -> Issued {
        let issued = self.provider.login();
        if let Ok(_guard) = self.source.acquire(Duration::from_secs(5)) {
            self.source.write(Doc::Login(Tokens {
                access: issued.access.clone(),
                refresh: issued.refresh.clone().unwrap_or_default(),
                last_refresh: None,
            }));
        }
        issued
    }
}
