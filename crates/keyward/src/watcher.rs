//! File events for the sources' directories: a change to a login file invalidates its snapshot
//! at once. Watching the directory (not the file) survives the rename every writer replaces it by.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use notify::{RecursiveMode, Watcher};

use crate::broker::ProfileRuntime;

/// Keeps the watcher alive; drop it to stop watching.
pub(crate) struct SourceWatcher {
    _watcher: notify::RecommendedWatcher,
}

pub(crate) fn watch(profiles: &[Arc<ProfileRuntime>]) -> notify::Result<SourceWatcher> {
    let mut by_file: HashMap<PathBuf, Vec<Arc<ProfileRuntime>>> = HashMap::new();
    for profile in profiles {
        by_file
            .entry(profile.source.location().to_path_buf())
            .or_default()
            .push(profile.clone());
    }
    let targets = by_file.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        match event {
            // Opening and reading the file are events too: keyward's own re-read would
            // invalidate the snapshot it just took, and every request would read again.
            Ok(event) if event.kind.is_access() => {}
            Ok(event) => {
                for path in &event.paths {
                    if let Some(profiles) = targets.get(path) {
                        profiles.iter().for_each(|p| p.source_changed());
                    }
                }
            }
            // Overflow or a watch error: we may have missed an event, so re-check everything.
            Err(_) => targets.values().flatten().for_each(|p| p.source_changed()),
        }
    })?;
    for file in by_file.keys() {
        let Some(dir) = file.parent() else { continue };
        if let Err(e) = watcher.watch(dir, RecursiveMode::NonRecursive) {
            // The directory may not exist yet (no login so far): the per-request identity check
            // and the scheduler's tick still notice when it appears.
            tracing::debug!(dir = %dir.display(), error = %e, "not watching");
        }
    }
    Ok(SourceWatcher { _watcher: watcher })
}
