//! The threads keyward holds, in memory only, bounded in time and in size.
//!
//! Each entry is one reply's thread: what a `continue` of that reply expands to (the turn's
//! request fields and the whole conversation, the reply included), kept as compact JSON text so
//! its size is known exactly and it costs no more than that. Entries are keyed by their owner (a
//! gateway key's digest, or one shared namespace without keys) and the reply's message id, so
//! one caller can never reach another's conversation.
//!
//! The rules of Anthropic's message threads:
//! - an entry is continued once: a continue takes its content ([`Claim`]) and, once its answer
//!   is recorded, leaves only a marker that it was continued; a second continue is refused
//!   ([`Refusal::AlreadyContinued`]), and so is one while the first is in flight
//!   ([`Refusal::InFlight`]); a continue that fails gives the content back, so it can be tried
//!   again;
//! - an entry older than the time to live, evicted for room, or never stored is not found.
//!
//! Bounds: the time to live, and a total size over all entries (markers included): past it, the
//! least recently used entries go first. A thread larger than one request body may be is not
//! kept: its continue would expand to more than the caller could send (who then replays it, and
//! is refused as any such body is). Time is passed in, so the rules are tested without waiting.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Whose threads: a gateway key's SHA-256 digest, or all zeros when keyward has no keys.
pub(crate) type Owner = [u8; 32];

/// What an entry costs beyond its text: the map and order entries, the key.
const ENTRY_OVERHEAD: usize = 256;

/// A thread as a continue of its last reply expands it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Thread {
    /// The request fields of the thread's last turn (its create-time `system` and `tools`
    /// included), a JSON object without `messages`, `stream` and `thread`.
    pub fields: String,
    /// The conversation, the last reply included: a JSON array of Messages messages.
    pub messages: String,
}

impl Thread {
    fn size(&self) -> usize {
        self.fields.len() + self.messages.len()
    }
}

/// Why a continue cannot be served from this store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Never stored for this owner, expired, or evicted.
    NotFound,
    /// Already continued once.
    AlreadyContinued,
    /// A continue of it is being served now.
    InFlight,
}

#[derive(Debug)]
enum State {
    Ready(Thread),
    /// Its content is with a [`Claim`].
    InFlight,
    Continued,
}

#[derive(Debug)]
struct Entry {
    state: State,
    stored_at: Instant,
    /// Which storing of its id this is: a claim gives back only to the entry it took from.
    generation: u64,
    /// Its place in the least-recently-used order.
    used: u64,
    size: usize,
}

type Key = (Owner, String);

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<Key, Entry>,
    /// Entries by their last use, oldest first.
    order: BTreeMap<u64, Key>,
    next_use: u64,
    bytes: usize,
}

impl Inner {
    fn touch(&mut self, key: &Key) {
        let used = self.next_use;
        self.next_use += 1;
        if let Some(entry) = self.entries.get_mut(key) {
            self.order.remove(&entry.used);
            entry.used = used;
            self.order.insert(used, key.clone());
        }
    }

    fn remove(&mut self, key: &Key) -> Option<Entry> {
        let entry = self.entries.remove(key)?;
        self.order.remove(&entry.used);
        self.bytes = self.bytes.saturating_sub(entry.size);
        Some(entry)
    }

    /// Sets an entry's state and size, keeping the total.
    fn set(&mut self, key: &Key, state: State, size: usize) {
        if let Some(entry) = self.entries.get_mut(key) {
            self.bytes = self.bytes.saturating_sub(entry.size) + size;
            entry.state = state;
            entry.size = size;
        }
    }
}

/// The bounded store of threads.
#[derive(Debug)]
pub(crate) struct ThreadStore {
    inner: Mutex<Inner>,
    ttl: Duration,
    max_bytes: usize,
    /// The largest thread kept.
    max_thread: usize,
}

impl ThreadStore {
    pub(crate) fn new(ttl: Duration, max_bytes: usize, max_thread: usize) -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new(Inner::default()),
            ttl,
            max_bytes,
            max_thread,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves the map consistent (every change is one
        // statement): the store is still usable.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn expired(&self, entry: &Entry, now: Instant) -> bool {
        now.saturating_duration_since(entry.stored_at) > self.ttl
    }

    /// Keeps `thread` as the thread of the reply `id`, for `owner`; replaces what that id held.
    /// Entries that expired go first, then the least recently used ones until all fit. A thread
    /// larger than the largest kept is not (its continue will not be found).
    pub(crate) fn insert(&self, owner: Owner, id: &str, thread: Thread, now: Instant) {
        let size = thread.size() + id.len() + ENTRY_OVERHEAD;
        let key = (owner, id.to_string());
        let mut inner = self.lock();
        inner.remove(&key);
        if size > self.max_bytes || thread.size() > self.max_thread {
            return;
        }
        let stale: Vec<Key> = inner
            .entries
            .iter()
            .filter(|(_, entry)| self.expired(entry, now))
            .map(|(key, _)| key.clone())
            .collect();
        for stale in &stale {
            inner.remove(stale);
        }
        while inner.bytes + size > self.max_bytes {
            let Some((_, oldest)) = inner.order.pop_first() else {
                break;
            };
            inner.remove(&oldest);
        }
        inner.bytes += size;
        let used = inner.next_use;
        inner.next_use += 1;
        inner.order.insert(used, key.clone());
        inner.entries.insert(
            key,
            Entry {
                state: State::Ready(thread),
                stored_at: now,
                generation: used,
                used,
                size,
            },
        );
    }

    /// Takes the thread of reply `id` for a continue: its content goes with the claim until the
    /// continue's answer is recorded ([`Claim::continued`]) or it fails (the claim is dropped,
    /// and the thread can be continued again).
    pub(crate) fn claim(
        self: &Arc<Self>,
        owner: Owner,
        id: &str,
        now: Instant,
    ) -> Result<Claim, Refusal> {
        let key = (owner, id.to_string());
        let mut inner = self.lock();
        let Some(entry) = inner.entries.get_mut(&key) else {
            return Err(Refusal::NotFound);
        };
        if self.expired(entry, now) {
            inner.remove(&key);
            return Err(Refusal::NotFound);
        }
        let generation = entry.generation;
        let thread = match std::mem::replace(&mut entry.state, State::InFlight) {
            State::Ready(thread) => thread,
            State::InFlight => return Err(Refusal::InFlight),
            State::Continued => {
                entry.state = State::Continued;
                return Err(Refusal::AlreadyContinued);
            }
        };
        // In flight, the content is the claim's: only the marker counts here.
        let marker = id.len() + ENTRY_OVERHEAD;
        inner.set(&key, State::InFlight, marker);
        inner.touch(&key);
        Ok(Claim {
            store: self.clone(),
            key,
            generation,
            thread: Some(thread),
        })
    }

    /// How many bytes the entries take, markers included.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.lock().bytes
    }
}

/// A thread taken for a continue; dropped without [`Claim::continued`], it is given back.
#[derive(Debug)]
pub(crate) struct Claim {
    store: Arc<ThreadStore>,
    key: Key,
    generation: u64,
    thread: Option<Thread>,
}

impl Claim {
    pub(crate) fn thread(&self) -> Option<&Thread> {
        self.thread.as_ref()
    }

    /// The continue was answered: the thread is marked continued, its content let go.
    pub(crate) fn continued(mut self) {
        self.thread = None;
        let mut inner = self.store.lock();
        if let Some(size) = self.taken_from(&inner).map(|entry| entry.size) {
            inner.set(&self.key, State::Continued, size);
        }
    }

    /// The entry this claim took its thread from, if it is still there (not evicted, not
    /// replaced by a thread stored again under the same id).
    fn taken_from<'a>(&self, inner: &'a Inner) -> Option<&'a Entry> {
        inner
            .entries
            .get(&self.key)
            .filter(|entry| entry.generation == self.generation)
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        let mut inner = self.store.lock();
        // Given back only where it was taken from (an entry evicted meanwhile stays gone); the
        // bound may be passed by this one entry until the next insert makes room.
        if self.taken_from(&inner).is_some() {
            let size = thread.size() + self.key.1.len() + ENTRY_OVERHEAD;
            inner.set(&self.key, State::Ready(thread), size);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: Owner = [1; 32];
    const BOB: Owner = [2; 32];
    const HOUR: Duration = Duration::from_secs(3600);

    fn thread(text: &str) -> Thread {
        Thread {
            fields: r#"{"model":"claude-sonnet-4-5"}"#.into(),
            messages: format!(r#"[{{"role":"user","content":"{text}"}}]"#),
        }
    }

    fn claimed(claim: &Result<Claim, Refusal>) -> Option<&Thread> {
        claim.as_ref().ok().and_then(Claim::thread)
    }

    /// A stored thread is continued once: the continue takes it, a second one while the first is
    /// served is "in flight", after the first is answered "already continued".
    #[test]
    fn each_thread_is_continued_once() {
        let store = ThreadStore::new(HOUR, 1 << 20, 1 << 20);
        let now = Instant::now();
        store.insert(ALICE, "msg_1", thread("hi"), now);
        let first = store.claim(ALICE, "msg_1", now);
        assert_eq!(claimed(&first), Some(&thread("hi")));
        assert_eq!(
            store.claim(ALICE, "msg_1", now).err(),
            Some(Refusal::InFlight)
        );
        if let Ok(first) = first {
            first.continued();
        }
        assert_eq!(
            store.claim(ALICE, "msg_1", now).err(),
            Some(Refusal::AlreadyContinued)
        );
        assert_eq!(
            store.claim(ALICE, "msg_1", now).err(),
            Some(Refusal::AlreadyContinued),
            "and stays so"
        );
    }

    /// A continue that fails gives the thread back: it can be continued again.
    #[test]
    fn a_failed_continue_gives_the_thread_back() {
        let store = ThreadStore::new(HOUR, 1 << 20, 1 << 20);
        let now = Instant::now();
        store.insert(ALICE, "msg_1", thread("hi"), now);
        drop(store.claim(ALICE, "msg_1", now));
        let again = store.claim(ALICE, "msg_1", now);
        assert_eq!(claimed(&again), Some(&thread("hi")));
    }

    /// Another owner's thread, an unknown id and an expired thread are not found.
    #[test]
    fn other_owners_unknown_and_expired_threads_are_not_found() {
        let store = ThreadStore::new(HOUR, 1 << 20, 1 << 20);
        let now = Instant::now();
        store.insert(ALICE, "msg_1", thread("hi"), now);
        assert_eq!(
            store.claim(BOB, "msg_1", now).err(),
            Some(Refusal::NotFound)
        );
        assert_eq!(
            store.claim(ALICE, "msg_2", now).err(),
            Some(Refusal::NotFound)
        );
        let later = now + HOUR + Duration::from_secs(1);
        assert_eq!(
            store.claim(ALICE, "msg_1", later).err(),
            Some(Refusal::NotFound)
        );
        assert_eq!(store.bytes(), 0, "the expired thread is gone");
        let just_in_time = now + HOUR;
        store.insert(ALICE, "msg_3", thread("hi"), now);
        assert!(store.claim(ALICE, "msg_3", just_in_time).is_ok());
    }

    /// Past the memory bound the least recently used threads go first; markers of continued
    /// threads count too; a thread larger than the bound is not kept; expired ones go before
    /// any live one.
    #[test]
    fn memory_is_bounded() {
        let one = thread("x").size() + "msg_0".len() + ENTRY_OVERHEAD;
        let store = ThreadStore::new(HOUR, 3 * one, 1 << 20);
        let now = Instant::now();
        for n in 0..3 {
            store.insert(ALICE, &format!("msg_{n}"), thread("x"), now);
        }
        assert_eq!(store.bytes(), 3 * one);
        store.insert(ALICE, "msg_3", thread("x"), now);
        assert_eq!(store.bytes(), 3 * one);
        assert_eq!(
            store.claim(ALICE, "msg_0", now).err(),
            Some(Refusal::NotFound)
        );
        for n in 1..4 {
            assert!(
                store.claim(ALICE, &format!("msg_{n}"), now).is_ok(),
                "msg_{n}"
            );
        }
        store.insert(ALICE, "huge", thread(&"y".repeat(4 * one)), now);
        assert_eq!(
            store.claim(ALICE, "huge", now).err(),
            Some(Refusal::NotFound)
        );
        let store = ThreadStore::new(HOUR, 1 << 20, 100);
        store.insert(ALICE, "large", thread(&"y".repeat(100)), now);
        assert_eq!(
            store.claim(ALICE, "large", now).err(),
            Some(Refusal::NotFound),
            "larger than a request body may be"
        );

        let store = ThreadStore::new(HOUR, 3 * one, 1 << 20);
        store.insert(ALICE, "msg_0", thread("x"), now);
        let later = now + Duration::from_secs(60);
        store.insert(ALICE, "msg_1", thread("x"), later);
        store.insert(ALICE, "msg_2", thread("x"), later);
        if let Ok(claim) = store.claim(ALICE, "msg_1", later) {
            claim.continued();
        }
        assert!(
            store.bytes() < 3 * one,
            "a continued thread keeps only its marker"
        );
        let much_later = now + HOUR + Duration::from_secs(30);
        store.insert(ALICE, "msg_3", thread("x"), much_later);
        assert_eq!(
            store.claim(ALICE, "msg_0", much_later).err(),
            Some(Refusal::NotFound),
            "expired"
        );
        assert!(store.claim(ALICE, "msg_2", much_later).is_ok());
        assert_eq!(
            store.claim(ALICE, "msg_1", much_later).err(),
            Some(Refusal::AlreadyContinued)
        );
    }

    /// A thread stored again under an id it already had replaces it, whatever its state.
    #[test]
    fn an_id_stored_again_replaces_its_thread() {
        let store = ThreadStore::new(HOUR, 1 << 20, 1 << 20);
        let now = Instant::now();
        store.insert(ALICE, "msg_1", thread("old"), now);
        if let Ok(claim) = store.claim(ALICE, "msg_1", now) {
            claim.continued();
        }
        store.insert(ALICE, "msg_1", thread("new"), now);
        let claim = store.claim(ALICE, "msg_1", now);
        assert_eq!(claimed(&claim), Some(&thread("new")));
        // Stored again while a continue of it is served: the claim gives nothing back.
        store.insert(ALICE, "msg_1", thread("newer"), now);
        drop(claim);
        let claim = store.claim(ALICE, "msg_1", now);
        assert_eq!(claimed(&claim), Some(&thread("newer")));
    }
}
