//! File events for the sources' directories: a change to a login file (or its CLI's config)
//! invalidates its snapshot at once. Watching the directory (not the file) survives the rename
//! every writer replaces it by. For a store the watcher cannot see (a keyring), the release of
//! the lock file its CLI holds around every write is the event.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use notify::event::{AccessKind, AccessMode, EventKind};
use notify::{RecursiveMode, Watcher};

use crate::broker::ProfileRuntime;

/// Keeps the watcher alive; drop it to stop watching.
pub(crate) struct SourceWatcher {
    _watcher: notify::RecommendedWatcher,
}

/// A profile interested in a path, and whether its release counts.
struct Interest {
    profile: Arc<ProfileRuntime>,
    on_release: bool,
}

pub(crate) fn watch(profiles: &[Arc<ProfileRuntime>]) -> notify::Result<SourceWatcher> {
    let mut by_path: HashMap<PathBuf, Vec<Interest>> = HashMap::new();
    for profile in profiles {
        for watched in profile.source.watched() {
            by_path.entry(watched.path).or_default().push(Interest {
                profile: profile.clone(),
                on_release: watched.on_release,
            });
        }
    }
    let dirs: BTreeSet<PathBuf> = by_path
        .keys()
        .filter_map(|p| p.parent().map(|d| d.to_path_buf()))
        .collect();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        match event {
            Ok(event) => {
                let released = matches!(
                    event.kind,
                    EventKind::Access(AccessKind::Close(AccessMode::Write))
                );
                // Opening and reading a file are events too: keyward's own re-read would
                // invalidate the snapshot it just took, and every request would read again.
                if event.kind.is_access() && !released {
                    return;
                }
                for path in &event.paths {
                    let Some(interests) = by_path.get(path) else {
                        continue;
                    };
                    interests
                        .iter()
                        .filter(|i| !released || i.on_release)
                        .for_each(|i| i.profile.source_changed());
                }
            }
            // Overflow or a watch error: we may have missed an event, so re-check everything.
            Err(_) => by_path
                .values()
                .flatten()
                .for_each(|i| i.profile.source_changed()),
        }
    })?;
    for dir in &dirs {
        if let Err(e) = watcher.watch(dir, RecursiveMode::NonRecursive) {
            // The directory may not exist yet (no login so far): the per-request identity check
            // and the scheduler's tick still notice when it appears.
            tracing::debug!(dir = %dir.display(), error = %e, "not watching");
        }
    }
    Ok(SourceWatcher { _watcher: watcher })
}
