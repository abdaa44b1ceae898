//! The names requests carry to the ledger (the models asked and served, the profile), kept once
//! for the process's life so that a request carries a plain reference.
//!
//! A shared name (an `Arc`) was counted up on a serving thread and down on the ledger's writer,
//! its memory passing between the two threads' caches on every request; an allocation made on a
//! serving thread and freed on the writer's cost more again. A kept name costs neither. Kept names
//! are bounded ([`MAX_KEPT`] of each kind for the process, each at most [`MAX_KEPT_LEN`] bytes):
//! past that (clients name models as they like) a name is spelt for its request alone.

use std::cell::RefCell;
use std::sync::Mutex;

use crate::profile::ProfileId;

/// A gateway serves a handful of models and profiles: a list searched in order costs less than
/// hashing the name.
const MAX_KEPT: usize = 64;

/// A name as a request carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Name {
    /// Kept for the process's life, shared by every request that names it.
    Kept(&'static str),
    /// Spelt for one request: the kept names are at their bound.
    Spelt(Box<str>),
}

impl std::ops::Deref for Name {
    type Target = str;

    fn deref(&self) -> &str {
        match self {
            Name::Kept(name) => name,
            Name::Spelt(name) => name,
        }
    }
}

/// A model's name longer than this is cut short to it ([`model`]) and spelt for its request alone,
/// never kept: a client names the model it asks for, and a megabyte-long name must neither be kept
/// for the process's life nor stored whole. (A profile's name is at most 129 bytes.)
const MAX_KEPT_LEN: usize = 256;

/// The names kept so far, for every thread; a thread looks here only for a name it has not met.
static KEPT_MODELS: Mutex<Vec<(&'static str, &'static str)>> = Mutex::new(Vec::new());
static KEPT_PROFILES: Mutex<Vec<(ProfileId, &'static str)>> = Mutex::new(Vec::new());

thread_local! {
    /// A thread's own lists of the kept names it has met: a look-up takes no lock.
    static MET_MODELS: RefCell<Vec<(&'static str, &'static str)>> = const { RefCell::new(Vec::new()) };
    static MET_PROFILES: RefCell<Vec<(ProfileId, &'static str)>> = const { RefCell::new(Vec::new()) };
}

/// A model's name, for a request's note. A name longer than [`MAX_KEPT_LEN`] bytes is recorded cut
/// short to that length and an ellipsis: a client names the model it asks for, and every request
/// with a megabyte-long name would otherwise grow the store by a megabyte.
pub(crate) fn model(name: &str) -> Name {
    if name.len() > MAX_KEPT_LEN {
        let mut end = MAX_KEPT_LEN;
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        return Name::Spelt(format!("{}…", &name[..end]).into());
    }
    MET_MODELS.with_borrow_mut(|met| {
        keep(
            met,
            &KEPT_MODELS,
            |known| *known == name,
            || name.to_string(),
            |known| known,
        )
    })
}

/// A profile's name, for a request's row.
pub(crate) fn profile(profile: &ProfileId) -> Name {
    MET_PROFILES.with_borrow_mut(|met| {
        keep(
            met,
            &KEPT_PROFILES,
            |id| id == profile,
            || profile.to_string(),
            |_| profile.clone(),
        )
    })
}

/// The kept name of the entry `is` finds (in the thread's list `met`, else in every thread's
/// `kept`, else kept now while the bounds allow), or the name spelt for this request alone.
fn keep<K>(
    met: &mut Vec<(K, &'static str)>,
    kept: &Mutex<Vec<(K, &'static str)>>,
    is: impl Fn(&K) -> bool,
    spell: impl FnOnce() -> String,
    key: impl Fn(&'static str) -> K,
) -> Name {
    if let Some((_, known)) = met.iter().find(|(k, _)| is(k)) {
        return Name::Kept(known);
    }
    let mut kept = kept.lock().unwrap_or_else(|p| p.into_inner());
    let known = match kept.iter().find(|(k, _)| is(k)) {
        Some((_, known)) => *known,
        None => {
            let name = spell();
            if kept.len() >= MAX_KEPT {
                return Name::Spelt(name.into());
            }
            let known: &'static str = Box::leak(name.into_boxed_str());
            kept.push((key(known), known));
            known
        }
    };
    drop(kept);
    met.push((key(known), known));
    Name::Kept(known)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A name is kept once met, the same memory on every thread; past the bound it is still
    /// given, spelt anew.
    #[test]
    fn names_are_kept_up_to_their_bound() {
        fn kept(name: &Name) -> Option<&'static str> {
            match name {
                Name::Kept(name) => Some(name),
                Name::Spelt(_) => None,
            }
        }
        let first = model("gpt-6.1-sol-kept");
        let on_another = std::thread::spawn(|| kept(&model("gpt-6.1-sol-kept")))
            .join()
            .ok()
            .flatten();
        assert!(kept(&first)
            .zip(on_another)
            .is_some_and(|(a, b)| std::ptr::eq(a, b)));
        let long = "m".repeat(1 << 20);
        let cut = format!("{}…", &long[..MAX_KEPT_LEN]);
        assert!(matches!(model(&long), Name::Spelt(ref name) if **name == cut));
        // Cut at a character's boundary: `é` is two bytes, the 256th byte the middle of one.
        let accented = format!("m{}", "é".repeat(MAX_KEPT_LEN));
        let cut = format!("m{}…", "é".repeat((MAX_KEPT_LEN - 1) / 2));
        assert!(matches!(model(&accented), Name::Spelt(ref name) if **name == cut));
        let longest = "m".repeat(MAX_KEPT_LEN);
        assert_eq!(&*model(&longest), longest, "a name at the bound is whole");
        for n in 0..2 * MAX_KEPT {
            assert_eq!(&*model(&format!("model-{n}")), format!("model-{n}"));
        }
        assert!(matches!(model("model-beyond-the-bound"), Name::Spelt(_)));
        assert_eq!(kept(&model("gpt-6.1-sol-kept")), kept(&first));
        let id = ProfileId::codex_default();
        assert_eq!(&*profile(&id), id.to_string());
        assert!(kept(&profile(&id))
            .zip(kept(&profile(&id.clone())))
            .is_some_and(|(a, b)| std::ptr::eq(a, b)));
    }
}
