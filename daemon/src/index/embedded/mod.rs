//! The embedded index: every space in memory, searched in this process, persisted as one
//! snapshot file next to the library.
//!
//! # Search
//!
//! Exact by default: every row of the space is scored (module `search`), on up to
//! `index.embedded.threads` threads. A space larger than `exact_limit` gets an approximate IVF
//! index (module `ann`) and is searched through it.
//!
//! # Persistence and crashes
//!
//! Changes are applied in memory; [`VectorIndex::flush`] writes a snapshot when anything
//! changed since the last one. The daemon calls it periodically ([`super::spawn_flusher`]) and
//! at shutdown. The snapshot is written atomically (temporary file, `fsync`, rename, `fsync` of
//! the directory) and carries a CRC, so after a crash or `kill -9` the file on disk is a
//! complete earlier snapshot, and a damaged one (truncated, bit rot, another format) is
//! detected on open, set aside as `<file>.corrupt` and never used.
//!
//! A snapshot is therefore possibly *stale*, never inconsistent: changes made after it are
//! lost with the process. The SQLite library is the source of truth, and
//! [`super::sync_from_library`] at start-up compares each indexed track's fingerprint with
//! the library's and re-indexes or drops what differs, so the index catches up.

mod ann;
mod search;
mod snapshot;
mod space;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::filter::fold;
use super::scoring::{normalised, Scorer};
use super::{check_points, check_query, BoxFuture, EmbeddedConfig, Hit, IndexError, IndexPoint, Query, VectorIndex};
use search::RowFilter;
use space::{RowAttrs, Space};

/// Interned, folded strings (genres, labels, artists, albums): rows store ids.
#[derive(Debug, Default)]
pub(crate) struct Strings {
    ids: HashMap<String, u32>,
    values: Vec<String>,
}

impl Strings {
    fn intern(&mut self, s: String) -> u32 {
        if let Some(&id) = self.ids.get(&s) {
            return id;
        }
        let id = self.values.len() as u32;
        self.values.push(s.clone());
        self.ids.insert(s, id);
        id
    }

    pub(crate) fn get(&self, s: &str) -> Option<u32> {
        self.ids.get(s).copied()
    }
}

/// What the index keeps per track besides its rows.
#[derive(Debug, Clone)]
pub(crate) struct TrackMeta {
    pub path: String,
    pub genre: u32,
    pub artist: u32,
    pub album: u32,
    pub duration_s: f64,
    pub fingerprint: u64,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    strings: Strings,
    tracks: HashMap<i64, TrackMeta>,
    spaces: BTreeMap<String, Space>,
    /// Bumped by every change; compared with the last saved one.
    generation: u64,
}

/// How [`EmbeddedIndex::search_with`] searches.
#[derive(Debug, Clone, Copy, Default)]
pub struct SearchOptions {
    /// Score every row even where the space has an approximate index.
    pub exact: bool,
    /// Threads for this query; `None`: the configured number.
    pub threads: Option<usize>,
    /// Lists the approximate index probes; `None`: the configured `nprobe`.
    pub nprobe: Option<usize>,
}

/// What [`EmbeddedIndex::open`] found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loaded {
    /// The snapshot was read: `tracks` tracks.
    Snapshot { tracks: usize },
    /// No snapshot: a new, empty index.
    Missing,
    /// The snapshot was unusable (why), set aside; the index starts empty.
    Corrupt(String),
}

pub struct EmbeddedIndex {
    inner: Arc<Inner>,
}

struct Inner {
    /// The snapshot file; `None` for an index that lives only in memory.
    path: Option<PathBuf>,
    config: EmbeddedConfig,
    threads: usize,
    state: RwLock<State>,
    /// Generation of the last snapshot written or read; the lock also serialises writers.
    saved: Mutex<u64>,
    loaded: Loaded,
}

impl EmbeddedIndex {
    /// Open the index persisted at `path`, or an empty one if there is none. A damaged
    /// snapshot is renamed to `<path>.corrupt`, logged, and the index starts empty
    /// ([`EmbeddedIndex::loaded`] says so); only I/O errors such as a permission problem fail.
    pub fn open(path: &Path, config: EmbeddedConfig) -> Result<EmbeddedIndex, IndexError> {
        let file_error = |reason: String| IndexError::File { path: path.to_path_buf(), reason };
        // A temporary file is what a crash in the middle of a write leaves: never used.
        let tmp = snapshot::tmp_path(path);
        if tmp.exists() {
            fs_err::remove_file(&tmp).map_err(|e| file_error(e.to_string()))?;
        }
        let (state, loaded) = match snapshot::load(path) {
            Ok(state) => {
                let tracks = state.tracks.len();
                (state, Loaded::Snapshot { tracks })
            }
            Err(snapshot::LoadError::Missing) => (State::default(), Loaded::Missing),
            Err(snapshot::LoadError::Io(reason)) => return Err(file_error(reason)),
            Err(snapshot::LoadError::Corrupt(reason)) => {
                let aside = snapshot::corrupt_path(path);
                fs_err::rename(path, &aside).map_err(|e| file_error(e.to_string()))?;
                tracing::warn!(
                    "{}",
                    IndexError::Corrupt {
                        path: path.to_path_buf(),
                        reason: format!("{reason}; moved to {}", aside.display())
                    }
                );
                (State::default(), Loaded::Corrupt(reason))
            }
        };
        Ok(Self::with_state(Some(path.to_path_buf()), config, state, loaded))
    }

    /// An index that is never written to disk (benchmarks, tests).
    pub fn in_memory(config: EmbeddedConfig) -> EmbeddedIndex {
        Self::with_state(None, config, State::default(), Loaded::Missing)
    }

    fn with_state(path: Option<PathBuf>, config: EmbeddedConfig, state: State, loaded: Loaded) -> EmbeddedIndex {
        let threads = config.search_threads();
        EmbeddedIndex {
            inner: Arc::new(Inner { path, config, threads, state: RwLock::new(state), saved: Mutex::new(0), loaded }),
        }
    }

    /// What opening found on disk.
    pub fn loaded(&self) -> &Loaded {
        &self.inner.loaded
    }

    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// [`VectorIndex::upsert`], on this thread.
    pub fn upsert_blocking(&self, points: Vec<IndexPoint>) -> Result<(), IndexError> {
        self.inner.upsert(points)
    }

    /// [`VectorIndex::delete`], on this thread.
    pub fn delete_blocking(&self, track_ids: &[i64]) {
        self.inner.delete(track_ids)
    }

    /// [`VectorIndex::query`], on this thread.
    pub fn search_blocking(&self, query: &Query) -> Result<Vec<Hit>, IndexError> {
        self.inner.search(query, SearchOptions::default())
    }

    /// A query with explicit options (exact vs approximate, threads), for benchmarks and tests.
    pub fn search_with(&self, query: &Query, options: SearchOptions) -> Result<Vec<Hit>, IndexError> {
        self.inner.search(query, options)
    }

    /// Tracks with a vector in `space`.
    pub fn space_len(&self, space: &str) -> usize {
        self.inner.read().spaces.get(space).map_or(0, Space::len)
    }

    /// Each space's name and dimension, by name.
    pub fn spaces(&self) -> Vec<(String, usize)> {
        self.inner.read().spaces.iter().map(|(name, space)| (name.clone(), space.dim)).collect()
    }

    /// Whether `space` is searched through its approximate index.
    pub fn is_approximate(&self, space: &str) -> bool {
        self.inner.read().spaces.get(space).is_some_and(Space::is_trained)
    }

    /// Build the approximate index of `space` now, whatever its size (benchmarks compare it
    /// with exact search at every size). It is kept until the space's size changes enough
    /// for the index to retrain or drop it.
    pub fn train_approximate(&self, space: &str) {
        let mut state = self.inner.write();
        if let Some(s) = state.spaces.get_mut(space) {
            ann::train(s, self.inner.threads);
            state.generation += 1;
        }
    }

    /// Write a snapshot if anything changed since the last one; true if one was written.
    pub fn save(&self) -> Result<bool, IndexError> {
        self.inner.save()
    }

    /// Each track's fingerprint.
    pub fn fingerprints_blocking(&self) -> HashMap<i64, u64> {
        self.inner.read().tracks.iter().map(|(&id, t)| (id, t.fingerprint)).collect()
    }

    /// Remove every track.
    pub fn clear_blocking(&self) {
        self.inner.clear()
    }

    /// Run `f` on the blocking pool with this index.
    fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T, IndexError> + Send + 'static,
    ) -> BoxFuture<'_, Result<T, IndexError>> {
        let inner = Arc::clone(&self.inner);
        Box::pin(async move {
            tokio::task::spawn_blocking(move || f(&inner)).await.map_err(|e| IndexError::Task(e.to_string()))?
        })
    }
}

impl Inner {
    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn upsert(&self, points: Vec<IndexPoint>) -> Result<(), IndexError> {
        check_points(&points)?;
        let mut state = self.write();
        // The whole batch is checked before any of it is applied.
        let mut dims: HashMap<&str, usize> = state.spaces.iter().map(|(name, s)| (name.as_str(), s.dim)).collect();
        for point in &points {
            for v in &point.vectors {
                let expected = *dims.entry(v.space.as_str()).or_insert(v.vector.len());
                if expected != v.vector.len() {
                    return Err(IndexError::Dimension {
                        space: v.space.clone(),
                        track: Some(point.track_id),
                        expected,
                        got: v.vector.len(),
                    });
                }
            }
        }
        drop(dims);
        let state = &mut *state;
        let mut touched: Vec<String> = Vec::new();
        for point in points {
            let id = point.track_id;
            for (name, space) in state.spaces.iter_mut() {
                if space.remove(id) && !touched.contains(name) {
                    touched.push(name.clone());
                }
            }
            if point.vectors.is_empty() {
                state.tracks.remove(&id);
                continue;
            }
            let fingerprint = point.fingerprint();
            let strings = &mut state.strings;
            let meta = TrackMeta {
                genre: strings.intern(fold(&point.genre)),
                artist: strings.intern(fold(&point.artist)),
                album: strings.intern(fold(&point.album)),
                duration_s: point.duration_s,
                fingerprint,
                path: point.path,
            };
            for v in point.vectors {
                let attrs = RowAttrs {
                    genre: meta.genre,
                    label: strings.intern(fold(&v.label)),
                    artist: meta.artist,
                    album: meta.album,
                    duration_s: meta.duration_s,
                    bpm: point.bpm.unwrap_or(f64::NAN),
                    key: point.key.map_or(space::NO_KEY, |k| k.code()),
                };
                let space = state.spaces.entry(v.space.clone()).or_insert_with(|| Space::new(v.vector.len()));
                space.insert(id, &normalised(&v.vector), attrs);
                if !touched.contains(&v.space) {
                    touched.push(v.space);
                }
            }
            state.tracks.insert(id, meta);
        }
        self.after_change(state, &touched);
        Ok(())
    }

    fn clear(&self) {
        let mut state = self.write();
        let generation = state.generation + 1;
        *state = State { generation, ..State::default() };
    }

    fn delete(&self, track_ids: &[i64]) {
        let mut state = self.write();
        let state = &mut *state;
        let mut touched = Vec::new();
        for id in track_ids {
            if state.tracks.remove(id).is_none() {
                continue;
            }
            for (name, space) in state.spaces.iter_mut() {
                if space.remove(*id) && !touched.contains(name) {
                    touched.push(name.clone());
                }
            }
        }
        if !touched.is_empty() {
            self.after_change(state, &touched);
        }
    }

    /// Keep the approximate indexes in step with the spaces' sizes; drop emptied spaces (so a
    /// model whose embedding size changed can be re-indexed once its old vectors are gone).
    fn after_change(&self, state: &mut State, touched: &[String]) {
        for name in touched {
            if let Some(space) = state.spaces.get_mut(name) {
                if space.len() == 0 {
                    state.spaces.remove(name);
                } else {
                    ann::maintain(space, self.config.exact_limit, self.threads);
                }
            }
        }
        state.generation += 1;
    }

    fn search(&self, query: &Query, options: SearchOptions) -> Result<Vec<Hit>, IndexError> {
        check_query(query)?;
        let state = self.read();
        let Some(space) = state.spaces.get(&query.space) else { return Ok(Vec::new()) };
        let dim = query.positive[0].len();
        if dim != space.dim {
            return Err(IndexError::Dimension {
                space: query.space.clone(),
                track: None,
                expected: space.dim,
                got: dim,
            });
        }
        let folded = query.filter.folded();
        let filter = RowFilter::compile(&folded, &state.strings);
        if query.limit == 0 || filter.rejects_everything() {
            return Ok(Vec::new());
        }
        let scorer = Scorer::new(query.strategy, &query.positive, &query.negative);
        let threads = options.threads.unwrap_or(self.threads).max(1);
        // Excluded tracks are dropped from a longer list (see `RowFilter`).
        let wanted = query.limit.saturating_add(folded.exclude_tracks.len());
        let (top, _passed) = if space.is_trained() && !options.exact {
            let nprobe = options.nprobe.unwrap_or(self.config.nprobe);
            ann::search(space, &scorer, &filter, wanted, threads, nprobe)
        } else {
            let lists: Vec<usize> = (0..space.lists.len()).collect();
            search::scan(space, &lists, &scorer, &filter, wanted, threads)
        };
        Ok(search::without_excluded(top.into_sorted(), &folded.exclude_tracks, query.limit)
            .into_iter()
            .map(|c| Hit {
                track_id: c.id,
                score: c.score,
                vector: query.with_vectors.then(|| space.vector(c.list as usize, c.row as usize).to_vec()),
            })
            .collect())
    }

    fn save(&self) -> Result<bool, IndexError> {
        let Some(path) = &self.path else { return Ok(false) };
        let mut saved = self.saved.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // Readers (queries) go on while the snapshot is written; writers wait.
        let state = self.read();
        if state.generation == *saved {
            return Ok(false);
        }
        let started = std::time::Instant::now();
        snapshot::save(path, &state).map_err(|reason| IndexError::File { path: path.clone(), reason })?;
        *saved = state.generation;
        tracing::debug!(
            path = %path.display(),
            tracks = state.tracks.len(),
            seconds = started.elapsed().as_secs_f64(),
            "wrote the vector index snapshot"
        );
        Ok(true)
    }
}

impl VectorIndex for EmbeddedIndex {
    fn describe(&self) -> String {
        match &self.inner.path {
            Some(path) => format!("embedded ({})", path.display()),
            None => "embedded (in memory)".into(),
        }
    }

    fn upsert(&self, points: Vec<IndexPoint>) -> BoxFuture<'_, Result<(), IndexError>> {
        self.spawn(move |inner| inner.upsert(points))
    }

    fn delete(&self, track_ids: Vec<i64>) -> BoxFuture<'_, Result<(), IndexError>> {
        self.spawn(move |inner| {
            inner.delete(&track_ids);
            Ok(())
        })
    }

    fn query(&self, query: Query) -> BoxFuture<'_, Result<Vec<Hit>, IndexError>> {
        self.spawn(move |inner| inner.search(&query, SearchOptions::default()))
    }

    fn len<'a>(&'a self, space: &'a str) -> BoxFuture<'a, Result<u64, IndexError>> {
        let space = space.to_string();
        self.spawn(move |inner| Ok(inner.read().spaces.get(&space).map_or(0, Space::len) as u64))
    }

    fn fingerprints(&self) -> BoxFuture<'_, Result<HashMap<i64, u64>, IndexError>> {
        self.spawn(|inner| Ok(inner.read().tracks.iter().map(|(&id, t)| (id, t.fingerprint)).collect()))
    }

    fn clear(&self) -> BoxFuture<'_, Result<(), IndexError>> {
        self.spawn(|inner| {
            inner.clear();
            Ok(())
        })
    }

    fn flush(&self) -> BoxFuture<'_, Result<(), IndexError>> {
        self.spawn(|inner| inner.save().map(|_| ()))
    }
}
