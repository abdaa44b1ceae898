//! The names requests carry to the ledger (the models asked and served, the profile), kept once
//! for the process's life so that a request carries a plain reference.
//!
//! A shared name (an `Arc`) was counted up on a serving thread and down on the ledger's writer,
//! its memory passing between the two threads' caches on every request; an allocation made on a
//! serving thread and freed on the writer's cost more again. A kept name costs neither. Kept names
//! are bounded ([`MAX_KEPT`] of each kind for the process, a few kilobytes): past that (clients
//! name models as they like) a name is spelt for its request alone.

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

/// The names kept so far, for every thread; a thread looks here only for a name it has not met.
static KEPT: Mutex<Kept> = Mutex::new(Kept {
    models: Vec::new(),
    profiles: Vec::new(),
});

thread_local! {
    /// A thread's own list of the kept names it has met: a look-up takes no lock.
    static MET: RefCell<Kept> = const {
        RefCell::new(Kept {
            models: Vec::new(),
            profiles: Vec::new(),
        })
    };
}

#[derive(Debug)]
struct Kept {
    models: Vec<&'static str>,
    profiles: Vec<(ProfileId, &'static str)>,
}

/// A model's name, for a request's note.
pub(crate) fn model(name: &str) -> Name {
    MET.with_borrow_mut(|met| {
        if let Some(known) = met.models.iter().find(|known| **known == name) {
            return Name::Kept(known);
        }
        let kept = {
            let mut kept = KEPT.lock().unwrap_or_else(|p| p.into_inner());
            match kept.models.iter().find(|known| **known == name) {
                Some(known) => Some(*known),
                None if kept.models.len() < MAX_KEPT => {
                    let known: &'static str = Box::leak(name.into());
                    kept.models.push(known);
                    Some(known)
                }
                None => None,
            }
        };
        match kept {
            Some(known) => {
                met.models.push(known);
                Name::Kept(known)
            }
            None => Name::Spelt(name.into()),
        }
    })
}

/// A profile's name, for a request's row.
pub(crate) fn profile(profile: &ProfileId) -> Name {
    MET.with_borrow_mut(|met| {
        if let Some((_, known)) = met.profiles.iter().find(|(id, _)| id == profile) {
            return Name::Kept(known);
        }
        let kept = {
            let mut kept = KEPT.lock().unwrap_or_else(|p| p.into_inner());
            match kept.profiles.iter().find(|(id, _)| id == profile) {
                Some((_, known)) => Some(*known),
                None if kept.profiles.len() < MAX_KEPT => {
                    let known: &'static str = Box::leak(profile.to_string().into_boxed_str());
                    kept.profiles.push((profile.clone(), known));
                    Some(known)
                }
                None => None,
            }
        };
        match kept {
            Some(known) => {
                met.profiles.push((profile.clone(), known));
                Name::Kept(known)
            }
            None => Name::Spelt(profile.to_string().into()),
        }
    })
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
