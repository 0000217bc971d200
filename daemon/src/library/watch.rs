//! Following the library roots as files come and go (notify, recursive).
//!
//! Events are collected until the roots have been quiet for `debounce`; files modified
//! less than `settle` ago are held back (they may still be being copied in); then the
//! changed paths are scanned like a small scan, which also recognises moves and renames.
//!
//! Events land in a set of changed paths, not a queue: a burst of events for one file is one
//! entry, and past [`MAX_CHANGED_PATHS`] distinct paths the set gives way to "rescan the
//! roots", so memory stays bounded whatever the file system sends.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::{watch, Notify};

/// Distinct changed paths held before the watcher falls back to rescanning the roots.
const MAX_CHANGED_PATHS: usize = 50_000;

/// Paths changed since the last look, bounded.
#[derive(Default)]
struct Changes {
    state: Mutex<ChangedPaths>,
    arrived: Notify,
}

#[derive(Default)]
struct ChangedPaths {
    paths: BTreeSet<PathBuf>,
    /// More than the bound arrived: every root is rescanned instead.
    overflowed: bool,
}

impl Changes {
    fn add(&self, path: PathBuf, limit: usize) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.overflowed {
            // already a full rescan
        } else if state.paths.len() >= limit && !state.paths.contains(&path) {
            state.paths.clear();
            state.overflowed = true;
        } else {
            state.paths.insert(path);
        }
        drop(state);
        self.arrived.notify_one();
    }

    /// What changed since the last call: the paths, or `roots` after an overflow.
    fn take(&self, roots: &[PathBuf]) -> BTreeSet<PathBuf> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if std::mem::take(&mut state.overflowed) {
            tracing::info!("more than {MAX_CHANGED_PATHS} paths changed at once; rescanning the library roots");
            return roots.iter().cloned().collect();
        }
        std::mem::take(&mut state.paths)
    }
}

use super::scan::Scanner;

/// Keeps the OS watches alive; dropping it stops watching.
pub struct LibraryWatcher {
    _watcher: notify::RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
}

impl LibraryWatcher {
    /// Watch every root of `scanner`. Roots that cannot be watched are logged and skipped.
    pub fn start(scanner: Arc<Scanner>, debounce: Duration, settle: Duration) -> notify::Result<Self> {
        let changes = Arc::new(Changes::default());
        let sink = changes.clone();
        let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
            Ok(event) if !matches!(event.kind, EventKind::Access(_)) => {
                for path in event.paths {
                    sink.add(path, MAX_CHANGED_PATHS);
                }
            }
            Ok(_) => {}
            Err(error) => tracing::warn!("watching the library: {error}"),
        })?;
        for root in scanner.roots() {
            match watcher.watch(root, RecursiveMode::Recursive) {
                Ok(()) => tracing::info!(root = %root.display(), "watching"),
                Err(error) => {
                    tracing::warn!("cannot watch {}: {error}; changes there are seen by scans only", root.display())
                }
            }
        }
        let task = tokio::spawn(follow(scanner, changes, debounce, settle));
        Ok(LibraryWatcher { _watcher: watcher, task })
    }
}

impl Drop for LibraryWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn follow(scanner: Arc<Scanner>, changes: Arc<Changes>, debounce: Duration, settle: Duration) {
    let mut pending = BTreeSet::new();
    loop {
        // Wait for the first event, then until the roots are quiet for `debounce`.
        if pending.is_empty() {
            changes.arrived.notified().await;
        }
        while tokio::time::timeout(debounce, changes.arrived.notified()).await.is_ok() {}
        pending.extend(changes.take(scanner.roots()));
        let now = SystemTime::now();
        let (ready, unsettled): (Vec<PathBuf>, Vec<PathBuf>) = std::mem::take(&mut pending)
            .into_iter()
            .filter(|p| scanner.roots().iter().any(|r| p.starts_with(r)))
            .filter(|p| scanner.is_audio(p) || p.is_dir() || !p.exists())
            .partition(|p| {
                let modified = std::fs::metadata(p).and_then(|m| m.modified()).ok();
                modified.is_none_or(|m| now.duration_since(m).unwrap_or_default() >= settle)
            });
        pending.extend(unsettled);
        if !ready.is_empty() {
            tracing::debug!(paths = ready.len(), "library changed");
            let (progress, _keep_alive) = watch::channel(Default::default());
            if let Err(error) = scanner.scan_resolved(ready, false, progress).await {
                tracing::error!("updating the library after a change: {error}");
            }
        }
        if !pending.is_empty() {
            // Held-back files: look again once they may have settled.
            tokio::time::sleep(settle).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_events_is_bounded_by_distinct_paths_then_by_a_rescan() {
        let changes = Changes::default();
        for _ in 0..10_000 {
            changes.add(PathBuf::from("/music/a.flac"), 100);
        }
        assert_eq!(changes.take(&[PathBuf::from("/music")]), BTreeSet::from([PathBuf::from("/music/a.flac")]));
        for i in 0..10_000 {
            changes.add(PathBuf::from(format!("/music/{i}.flac")), 100);
            assert!(changes.state.lock().expect("state").paths.len() <= 100, "bounded at every step");
        }
        assert_eq!(changes.take(&[PathBuf::from("/music")]), BTreeSet::from([PathBuf::from("/music")]), "a rescan");
        assert!(changes.take(&[PathBuf::from("/music")]).is_empty(), "taken once");
    }
}
