//! Reloading the models while the daemon serves: the model paths are watched (notify, as the
//! library is), and a quiet moment after a change the catalogue is discovered again
//! ([`super::Engine::reload_models`]). `timbred serve` also reloads on SIGHUP.

use std::path::PathBuf;
use std::sync::Weak;
use std::time::Duration;

use notify::{EventKind, RecursiveMode, Watcher};

use super::Engine;

/// How long the model paths must be quiet before a reload: a folder being copied in sends
/// many events, and one reload after the last is enough.
const QUIET: Duration = Duration::from_millis(700);

/// Keeps the OS watches and the reloading thread alive; dropping it stops both.
pub struct ModelWatcher {
    _watcher: notify::RecommendedWatcher,
}

impl ModelWatcher {
    /// Watch every existing folder of `paths` (missing ones are skipped: a model path that
    /// appears later is seen on SIGHUP). `None` when nothing could be watched.
    pub fn start(paths: &[PathBuf], engine: Weak<Engine>) -> Option<ModelWatcher> {
        // One pending "something changed" is all the reloading thread needs: a burst of events
        // while it waits finds the slot full and is dropped.
        let (tx, rx) = crossbeam_channel::bounded::<()>(1);
        let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if let Ok(event) = event {
                if !matches!(event.kind, EventKind::Access(_)) {
                    let _ = tx.try_send(());
                }
            }
        })
        .map_err(|error| tracing::warn!("cannot watch the model paths ({error}); reload with SIGHUP"))
        .ok()?;
        let mut watched = 0;
        for path in paths.iter().filter(|p| p.is_dir()) {
            match watcher.watch(path, RecursiveMode::Recursive) {
                Ok(()) => watched += 1,
                Err(error) => tracing::warn!("cannot watch the model path {}: {error}", path.display()),
            }
        }
        if watched == 0 {
            return None;
        }
        // Ends when the watcher (and so the sender) is dropped, or the engine is gone.
        std::thread::Builder::new()
            .name("timbre-model-watch".into())
            .spawn(move || {
                while rx.recv().is_ok() {
                    while rx.recv_timeout(QUIET).is_ok() {}
                    let Some(engine) = engine.upgrade() else { return };
                    tracing::info!("a model path changed; reloading the models");
                    engine.reload_models();
                }
            })
            .map_err(|error| tracing::warn!("cannot start the model watcher: {error}"))
            .ok()?;
        Some(ModelWatcher { _watcher: watcher })
    }
}
