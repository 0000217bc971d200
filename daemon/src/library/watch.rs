//! Following the library roots as files come and go (notify, recursive).
//!
//! Events are collected until the roots have been quiet for `debounce`; files modified
//! less than `settle` ago are held back (they may still be being copied in); then the
//! changed paths are scanned like a small scan, which also recognises moves and renames.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::{mpsc, watch};

use super::scan::Scanner;

/// Keeps the OS watches alive; dropping it stops watching.
pub struct LibraryWatcher {
    _watcher: notify::RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
}

impl LibraryWatcher {
    /// Watch every root of `scanner`. Roots that cannot be watched are logged and skipped.
    pub fn start(scanner: Arc<Scanner>, debounce: Duration, settle: Duration) -> notify::Result<Self> {
        let (events_tx, events) = mpsc::unbounded_channel::<PathBuf>();
        let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
            Ok(event) if !matches!(event.kind, EventKind::Access(_)) => {
                for path in event.paths {
                    let _ = events_tx.send(path);
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
        let task = tokio::spawn(follow(scanner, events, debounce, settle));
        Ok(LibraryWatcher { _watcher: watcher, task })
    }
}

impl Drop for LibraryWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn follow(
    scanner: Arc<Scanner>,
    mut events: mpsc::UnboundedReceiver<PathBuf>,
    debounce: Duration,
    settle: Duration,
) {
    let mut pending = BTreeSet::new();
    loop {
        // Wait for the first event, then until the roots are quiet for `debounce`.
        if pending.is_empty() {
            match events.recv().await {
                Some(path) => pending.insert(path),
                None => return,
            };
        }
        loop {
            match tokio::time::timeout(debounce, events.recv()).await {
                Ok(Some(path)) => {
                    pending.insert(path);
                }
                Ok(None) => return,
                Err(_) => break, // quiet
            }
        }
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
