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
use super::{sync_from_library, BoxFuture, IndexConfig, IndexError, IndexPoint, SyncReport, VectorIndex};
use crate::library::changes::CHANGE_QUEUE;
use crate::library::{ChangeReceiver, LibraryChange, Store};

/// How long changes are collected before they are written as one batch.
const BATCH_WINDOW: Duration = Duration::from_millis(200);
/// How often the embedded index writes its snapshot when something changed.
const FLUSH_EVERY: Duration = Duration::from_secs(30);
const MAX_RETRY: Duration = Duration::from_secs(60);

/// The keeper's clocks: [`BATCH_WINDOW`] and [`FLUSH_EVERY`] unless a test shortens them.
#[derive(Debug, Clone, Copy)]
pub struct KeeperTiming {
    pub batch_window: Duration,
    pub flush_every: Duration,
}

impl Default for KeeperTiming {
    fn default() -> Self {
        KeeperTiming { batch_window: BATCH_WINDOW, flush_every: FLUSH_EVERY }
    }
}

/// Opens the backend (and is called again after it failed).
type Opener = Box<dyn Fn() -> BoxFuture<'static, Result<Arc<dyn VectorIndex>, IndexError>> + Send + Sync>;

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
        let open: Opener = Box::new(move || -> BoxFuture<'static, Result<Arc<dyn VectorIndex>, IndexError>> {
            let (config, data_dir) = (config.clone(), data_dir.clone());
            Box::pin(async move { config.open(&data_dir).await })
        });
        Self::start_with(open, store, changes, KeeperTiming::default())
    }

    /// [`IndexKeeper::start`] over any backend `open` gives, on these clocks.
    fn start_with(open: Opener, store: Arc<Store>, changes: ChangeReceiver, timing: KeeperTiming) -> Arc<Self> {
        let keeper = Arc::new(IndexKeeper { index: SharedIndex::default(), task: Default::default() });
        let task = tokio::spawn(keep(keeper.clone(), open, store, changes, timing));
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
    open: Opener,
    store: Arc<Store>,
    mut changes: ChangeReceiver,
    timing: KeeperTiming,
) {
    let mut retry = Duration::from_secs(1);
    loop {
        // Open and sync; until that works, changes only pile up as "sync needed".
        let index = match open_and_sync(&open, &store).await {
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
        let mut flush = tokio::time::interval(timing.flush_every);
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
            let batch = collect_batch(first, &mut changes, timing.batch_window).await;
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

/// `first` and whatever else arrives within `window`, at most a queue's worth.
async fn collect_batch(first: LibraryChange, changes: &mut ChangeReceiver, window: Duration) -> Vec<LibraryChange> {
    let mut batch = vec![first];
    let deadline = tokio::time::sleep(window);
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

async fn open_and_sync(open: &Opener, store: &Store) -> Result<Arc<dyn VectorIndex>, IndexError> {
    let index = open().await?;
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    use super::*;
    use crate::index::embedded::EmbeddedIndex;
    use crate::index::tests::{exact_config, library};
    use crate::index::{Hit, Query};
    use crate::library::{change_queue, ChangeSender};

    /// An in-memory embedded index that counts the calls the keeper makes.
    #[derive(Default)]
    struct Calls {
        upserts: AtomicUsize,
        deletes: AtomicUsize,
        flushes: AtomicUsize,
    }

    struct Counting {
        inner: EmbeddedIndex,
        calls: Arc<Calls>,
    }

    impl VectorIndex for Counting {
        fn describe(&self) -> String {
            "counting".into()
        }
        fn upsert(&self, points: Vec<IndexPoint>) -> BoxFuture<'_, Result<(), IndexError>> {
            self.calls.upserts.fetch_add(1, Ordering::SeqCst);
            self.inner.upsert(points)
        }
        fn delete(&self, track_ids: Vec<i64>) -> BoxFuture<'_, Result<(), IndexError>> {
            self.calls.deletes.fetch_add(1, Ordering::SeqCst);
            self.inner.delete(track_ids)
        }
        fn query(&self, query: Query) -> BoxFuture<'_, Result<Vec<Hit>, IndexError>> {
            self.inner.query(query)
        }
        fn len<'a>(&'a self, space: &'a str) -> BoxFuture<'a, Result<u64, IndexError>> {
            self.inner.len(space)
        }
        fn fingerprints(&self) -> BoxFuture<'_, Result<HashMap<i64, u64>, IndexError>> {
            self.inner.fingerprints()
        }
        fn clear(&self) -> BoxFuture<'_, Result<(), IndexError>> {
            self.inner.clear()
        }
        fn flush(&self) -> BoxFuture<'_, Result<(), IndexError>> {
            self.calls.flushes.fetch_add(1, Ordering::SeqCst);
            self.inner.flush()
        }
    }

    struct Running {
        keeper: Arc<IndexKeeper>,
        calls: Arc<Calls>,
        store: Arc<Store>,
        changes: ChangeSender,
        _dir: tempfile::TempDir,
    }

    /// A keeper over a library of 12 analysed tracks, its index open and synced.
    async fn running(timing: KeeperTiming) -> Running {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(library(dir.path(), 12));
        let calls = Arc::new(Calls::default());
        let counted = calls.clone();
        let open: Opener = Box::new(move || -> BoxFuture<'static, Result<Arc<dyn VectorIndex>, IndexError>> {
            let index: Arc<dyn VectorIndex> =
                Arc::new(Counting { inner: EmbeddedIndex::in_memory(exact_config()), calls: counted.clone() });
            Box::pin(async move { Ok(index) })
        });
        let (changes, receiver) = change_queue(CHANGE_QUEUE);
        let keeper = IndexKeeper::start_with(open, store.clone(), receiver, timing);
        until("the first sync", || keeper.index().is_some()).await;
        Running { keeper, calls, store, changes, _dir: dir }
    }

    async fn until(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(Instant::now() < deadline, "waited 10 s for {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn held(keeper: &IndexKeeper) -> HashMap<i64, u64> {
        keeper.index().expect("open").fingerprints().await.expect("fingerprints")
    }

    const NO_FLUSH: Duration = Duration::from_secs(3600);

    #[tokio::test]
    async fn many_changes_within_the_window_are_written_as_one_upsert() {
        let r = running(KeeperTiming { batch_window: Duration::from_millis(300), flush_every: NO_FLUSH }).await;
        r.keeper.index().expect("open").clear().await.expect("empty it, so the upserts are seen");
        let before = r.calls.upserts.load(Ordering::SeqCst);
        let (tracks, _) = r.store.list(&Default::default(), 0, 1000).expect("list");
        let analysed: Vec<i64> = tracks.iter().filter(|t| !t.predictions.is_empty()).map(|t| t.id).collect();
        assert_eq!(analysed.len(), 12);
        for id in &analysed {
            r.changes.announce(LibraryChange::Changed(*id));
        }
        let keeper = r.keeper.clone();
        let deadline = Instant::now() + Duration::from_secs(10);
        while held(&keeper).await.len() < analysed.len() {
            assert!(Instant::now() < deadline, "the changes were not mirrored");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let upserts = r.calls.upserts.load(Ordering::SeqCst) - before;
        assert_eq!(upserts, 1, "twelve changes in one window, one upsert");
        r.keeper.shutdown().await;
    }

    #[tokio::test]
    async fn removed_tracks_and_tracks_gone_since_their_change_leave_the_index() {
        let r = running(KeeperTiming { batch_window: Duration::from_millis(50), flush_every: NO_FLUSH }).await;
        let (tracks, _) = r.store.list(&Default::default(), 0, 1000).expect("list");
        let (removed, gone) = (tracks[0].id, tracks[1].id);
        assert!(held(&r.keeper).await.contains_key(&removed) && held(&r.keeper).await.contains_key(&gone));
        r.store.remove(removed).expect("remove");
        r.store.remove(gone).expect("remove");
        r.changes.announce(LibraryChange::Removed(removed));
        // Announced as changed, removed before the keeper read it: deleted all the same.
        r.changes.announce(LibraryChange::Changed(gone));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let index = held(&r.keeper).await;
            if !index.contains_key(&removed) && !index.contains_key(&gone) {
                assert_eq!(index.len(), 10, "the others stay");
                break;
            }
            assert!(Instant::now() < deadline, "the deletions were not mirrored");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        r.keeper.shutdown().await;
    }

    #[tokio::test]
    async fn the_snapshot_is_flushed_on_its_clock_even_when_no_change_arrives() {
        let r =
            running(KeeperTiming { batch_window: Duration::from_millis(50), flush_every: Duration::from_millis(40) })
                .await;
        let (before, upserts) = (r.calls.flushes.load(Ordering::SeqCst), r.calls.upserts.load(Ordering::SeqCst));
        until("two timed flushes", || r.calls.flushes.load(Ordering::SeqCst) >= before + 2).await;
        assert_eq!(r.calls.upserts.load(Ordering::SeqCst), upserts, "no change came, nothing was written");
        r.keeper.shutdown().await;
    }
}
