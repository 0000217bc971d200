//! Keeps the vector index in line with the library while the daemon runs.
//!
//! At start-up it opens the configured backend and syncs it from the library (the source of
//! truth). Then every track a scan writes or removes is mirrored, in batches of whatever
//! arrived within [`BATCH_WINDOW`]: deletions always, upserts point by point when the batch
//! as a whole is refused, so one bad point (an embedding of the wrong size) costs only itself.
//! The embedded index writes its snapshot every [`FLUSH_EVERY`] whether or not changes keep
//! arriving. When the backend is unreachable (a Qdrant server down), the daemon says so once,
//! goes on analysing into the library, retries with back-off, and syncs again when the
//! backend is back: no change is lost, because the sync compares the whole library with the
//! index.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::sync::upsert_or_skip;
use super::{sync_from_library, IndexConfig, IndexError, IndexPoint, SyncReport, VectorIndex};
use crate::library::changes::CHANGE_QUEUE;
use crate::library::{ChangeReceiver, LibraryChange, Store};

/// How long changes are collected before they are written as one batch.
const BATCH_WINDOW: Duration = Duration::from_millis(200);
/// How often the embedded index writes its snapshot when something changed.
const FLUSH_EVERY: Duration = Duration::from_secs(30);
const MAX_RETRY: Duration = Duration::from_secs(60);

/// The index as readers see it: `None` while it is not open and in sync. The keeper sets
/// it; the recommender reads it. Cloning shares it.
#[derive(Clone, Default)]
pub struct SharedIndex(Arc<RwLock<Option<Arc<dyn VectorIndex>>>>);

impl SharedIndex {
    /// An index that is ready from the start (tests, offline use).
    pub fn ready(index: Arc<dyn VectorIndex>) -> Self {
        SharedIndex(Arc::new(RwLock::new(Some(index))))
    }

    pub fn get(&self) -> Option<Arc<dyn VectorIndex>> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set(&self, index: Option<Arc<dyn VectorIndex>>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = index;
    }
}

pub struct IndexKeeper {
    index: SharedIndex,
    task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl IndexKeeper {
    /// Start keeping the index; `changes` are the library's announcements.
    pub fn start(config: IndexConfig, data_dir: PathBuf, store: Arc<Store>, changes: ChangeReceiver) -> Arc<Self> {
        let keeper = Arc::new(IndexKeeper { index: SharedIndex::default(), task: Default::default() });
        let task = tokio::spawn(keep(keeper.clone(), config, data_dir, store, changes));
        *keeper.task.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
        keeper
    }

    /// The index, once it is open and in sync; `None` while it is not (yet) reachable.
    pub fn index(&self) -> Option<Arc<dyn VectorIndex>> {
        self.index.get()
    }

    /// The handle readers keep to see the index come and go.
    pub fn shared(&self) -> SharedIndex {
        self.index.clone()
    }

    fn set(&self, index: Option<Arc<dyn VectorIndex>>) {
        self.index.set(index);
    }

    /// Stop mirroring and write what the index holds (the embedded snapshot).
    pub async fn shutdown(&self) {
        if let Some(task) = self.task.lock().unwrap_or_else(|p| p.into_inner()).take() {
            task.abort();
        }
        if let Some(index) = self.index() {
            if let Err(error) = index.flush().await {
                tracing::warn!("{error}");
            }
        }
    }
}

async fn keep(
    keeper: Arc<IndexKeeper>,
    config: IndexConfig,
    data_dir: PathBuf,
    store: Arc<Store>,
    mut changes: ChangeReceiver,
) {
    let mut retry = Duration::from_secs(1);
    loop {
        // Open and sync; until that works, changes only pile up as "sync needed".
        let index = match open_and_sync(&config, &data_dir, &store).await {
            Ok(index) => index,
            Err(error) => {
                tracing::error!("{error}; retrying in {} s", retry.as_secs());
                keeper.set(None);
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(MAX_RETRY);
                // The next sync covers them, and whatever overflowed.
                while changes.try_recv().is_some() {}
                changes.take_overflow();
                continue;
            }
        };
        retry = Duration::from_secs(1);
        keeper.set(Some(index.clone()));

        // Mirror changes until the backend fails; then start over with a full sync.
        let mut flush = tokio::time::interval(FLUSH_EVERY);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        flush.tick().await; // the first tick is immediate
        loop {
            let first = tokio::select! {
                change = changes.recv() => match change {
                    Some(change) => change,
                    None => return,
                },
                _ = flush.tick() => {
                    if let Err(error) = resync_if_overflowed(index.as_ref(), &store, &changes).await {
                        tracing::error!("vector index: {error}");
                        keeper.set(None);
                        break;
                    }
                    if let Err(error) = index.flush().await {
                        tracing::warn!("{error}");
                    }
                    continue;
                }
            };
            let batch = collect_batch(first, &mut changes).await;
            let mirrored = match mirror(index.as_ref(), &store, batch).await {
                Ok(_) => resync_if_overflowed(index.as_ref(), &store, &changes).await,
                Err(error) => Err(error),
            };
            if let Err(error) = mirrored {
                tracing::error!(
                    "vector index: {error}; it is brought back in line with the library when it answers again"
                );
                keeper.set(None);
                break;
            }
        }
    }
}

/// When changes were dropped because their queue was full, compare the whole library with
/// the index: that covers them all.
pub(super) async fn resync_if_overflowed(
    index: &dyn VectorIndex,
    store: &Store,
    changes: &ChangeReceiver,
) -> Result<(), IndexError> {
    if changes.take_overflow() {
        let report = sync_from_library(index, store).await?;
        tracing::info!(?report, "vector index: caught up with a burst of library changes");
    }
    Ok(())
}

/// `first` and whatever else arrives within [`BATCH_WINDOW`], at most a queue's worth.
async fn collect_batch(first: LibraryChange, changes: &mut ChangeReceiver) -> Vec<LibraryChange> {
    let mut batch = vec![first];
    let deadline = tokio::time::sleep(BATCH_WINDOW);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = &mut deadline => return batch,
            next = changes.recv() => match next {
                Some(change) if batch.len() + 1 < CHANGE_QUEUE => batch.push(change),
                Some(change) => { batch.push(change); return batch }
                None => return batch,
            },
        }
    }
}

async fn open_and_sync(
    config: &IndexConfig,
    data_dir: &std::path::Path,
    store: &Store,
) -> Result<Arc<dyn VectorIndex>, IndexError> {
    let index = config.open(data_dir).await?;
    sync_from_library(index.as_ref(), store).await?;
    Ok(index)
}

/// Write a batch of library changes to the index: each changed track as it now is in the
/// library (a track without embeddings leaves the index), each removed one deleted. Points
/// the index refuses for their content are logged and skipped; only an error of the backend
/// itself is returned.
pub(super) async fn mirror(
    index: &dyn VectorIndex,
    store: &Arc<Store>,
    batch: Vec<LibraryChange>,
) -> Result<SyncReport, IndexError> {
    let mut changed = BTreeSet::new();
    let mut removed = BTreeSet::new();
    for change in batch {
        match change {
            LibraryChange::Changed(id) => {
                removed.remove(&id);
                changed.insert(id);
            }
            LibraryChange::Removed(id) => {
                changed.remove(&id);
                removed.insert(id);
            }
        }
    }
    let store = store.clone();
    let ids: Vec<i64> = changed.into_iter().collect();
    let (points, gone) = tokio::task::spawn_blocking(move || {
        let mut points = Vec::new();
        let mut gone = Vec::new();
        for id in ids {
            match store.track(id)? {
                Some(track) => points.push(IndexPoint::from_record(&track)),
                None => gone.push(id), // removed since it was announced
            }
        }
        Ok::<_, IndexError>((points, gone))
    })
    .await
    .map_err(|e| IndexError::Task(e.to_string()))??;
    let mut report = SyncReport::default();
    let deletions: Vec<i64> = removed.into_iter().chain(gone).collect();
    if !deletions.is_empty() {
        report.deleted = deletions.len() as u64;
        index.delete(deletions).await?;
    }
    if !points.is_empty() {
        upsert_or_skip(index, points, &mut report).await?;
    }
    Ok(report)
}
