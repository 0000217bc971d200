//! Bringing the library up to date with the disk.
//!
//! For each audio file under the scanned paths: unchanged (size and mtime, else the digest
//! of its audio stream, [`super::audio_hash`]) and analysed by the current model versions →
//! skipped, with its tags refreshed when only they changed; a model whose version
//! changed → re-analysed with that model only; a new path whose digest belongs to a track
//! whose file is gone → a move, which keeps the track and its analysis; a copy of an
//! analysed file → the analysis is copied. Tracks whose files are gone are removed.
//!
//! Each track's result is stored as soon as it is known, so a scan interrupted by a crash
//! resumes where it stopped: the next scan skips everything already stored.

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinSet;

use super::audio_hash::{audio_hash, is_audio_hash};
use super::store::{FileStat, ModelVersion, Store, StoreError, StoredPrediction, TrackRecord, TrackState};
use super::{tags, ChangeSender, LibraryChange};
use crate::pipeline::analysis::Analysis;
use crate::pipeline::AudioInput;
use crate::workers::{Priority, WorkerPool};

/// Progress of a scan, as `Scan` streams it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScanProgress {
    /// Files handled, skipped and failed ones included.
    pub done: u64,
    /// Files found.
    pub total: u64,
    pub failed: u64,
    /// Files actually analysed (not skipped, moved or copied).
    pub analysed: u64,
    pub current: String,
    pub rate_per_s: f64,
    pub eta_s: f64,
    pub finished: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("{}: not under a library root ({roots}); timbred reads only files under its library roots", path.display())]
    OutsideRoots { path: PathBuf, roots: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Pause before a file whose result could not be stored is scanned again: long enough for
/// a full disk to be cleared, short enough that the file is not left PENDING for long.
const STORE_RETRY_AFTER: Duration = Duration::from_secs(30);

/// What a file needs.
enum Plan {
    /// Nothing: stored and current, or failed before and unchanged.
    Skip,
    /// Analyse track `id` with these models (all when `None`).
    Analyse { id: i64, models: Option<Vec<String>> },
    /// The file could not be read; stored as failed.
    Failed,
}

pub struct Scanner {
    store: Arc<Store>,
    pool: Arc<WorkerPool>,
    /// The loaded models' current versions; replaced when the models are reloaded.
    versions: std::sync::RwLock<Vec<ModelVersion>>,
    /// The loaded descriptor plugins' `(name, version)`; a change re-runs the descriptors only.
    descriptor_versions: Vec<(String, String)>,
    roots: Vec<PathBuf>,
    extensions: Vec<String>,
    /// One scan at a time: two scans of one file would race on its row.
    running: tokio::sync::Mutex<()>,
    /// Set at shutdown: no new files are started, analyses in flight are finished and stored.
    stopping: AtomicBool,
    /// Every track written or removed is announced here.
    changes: ChangeSender,
    /// [`STORE_RETRY_AFTER`]; tests shorten it.
    store_retry_after: Duration,
    /// `tagging.write`: tags each track's file once its analysis is stored.
    tagger: Option<Arc<crate::tagging::Tagger>>,
    /// The models a track's analysis runs (`library.models` and their upstreams); `None`: every
    /// loaded model. Replaced with `versions` when the models are reloaded.
    models: std::sync::RwLock<Option<Vec<String>>>,
}

impl Scanner {
    pub fn new(
        store: Arc<Store>,
        pool: Arc<WorkerPool>,
        versions: Vec<ModelVersion>,
        roots: Vec<PathBuf>,
        extensions: Vec<String>,
        changes: ChangeSender,
    ) -> Self {
        let roots = roots.iter().map(|r| r.canonicalize().unwrap_or_else(|_| r.clone())).collect();
        let extensions = extensions.iter().map(|e| e.to_ascii_lowercase()).collect();
        Scanner {
            store,
            pool,
            versions: std::sync::RwLock::new(versions),
            descriptor_versions: Vec::new(),
            roots,
            extensions,
            running: Default::default(),
            stopping: AtomicBool::new(false),
            changes,
            store_retry_after: STORE_RETRY_AFTER,
            tagger: None,
            models: std::sync::RwLock::new(None),
        }
    }

    /// Write tags into each file right after its analysis is stored.
    pub fn with_tagger(mut self, tagger: crate::tagging::Tagger) -> Self {
        self.tagger = Some(Arc::new(tagger));
        self
    }

    /// Analyse tracks with only these models (`None`: all); `versions` should list only them.
    pub fn with_models(mut self, models: Option<Vec<String>>) -> Self {
        self.models = std::sync::RwLock::new(models);
        self
    }

    /// The loaded models' versions, as predictions are stored with them.
    pub fn versions(&self) -> Vec<ModelVersion> {
        self.versions.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The models were reloaded: the next scan runs the new or changed ones on every track
    /// that lacks their predictions (as a version bump does), and no other. `models` as for
    /// [`Scanner::with_models`].
    pub fn set_versions(&self, versions: Vec<ModelVersion>, models: Option<Vec<String>>) {
        *self.versions.write().unwrap_or_else(|p| p.into_inner()) = versions;
        *self.models.write().unwrap_or_else(|p| p.into_inner()) = models;
    }

    fn models(&self) -> Option<Vec<String>> {
        self.models.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn with_descriptor_versions(mut self, versions: Vec<(String, String)>) -> Self {
        self.descriptor_versions = versions;
        self
    }

    /// Retry unstored results after `pause` instead of [`STORE_RETRY_AFTER`].
    #[cfg(test)]
    fn with_store_retry_after(mut self, pause: Duration) -> Self {
        self.store_retry_after = pause;
        self
    }

    fn announce(&self, change: LibraryChange) {
        self.changes.announce(change);
    }

    pub fn roots(&self) -> &[PathBuf] {
        &self.roots
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// Returns once no scan is running (after [`Scanner::stop`], once in-flight analyses are stored).
    pub async fn idle(&self) {
        let _ = self.running.lock().await;
    }

    /// `path` made absolute and free of `..` and symlinks, if it lies under a library root.
    pub fn resolve(&self, path: &Path) -> Result<PathBuf, ScanError> {
        resolve_in(&self.roots, path)
    }

    pub fn is_audio(&self, path: &Path) -> bool {
        path.extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| self.extensions.iter().any(|x| x.eq_ignore_ascii_case(e)))
    }

    /// Scan `paths` (files or folders; every root when empty), re-analysing everything when
    /// `full`. Progress goes to `progress`; when every receiver is gone the scan stops early.
    pub async fn scan(
        self: &Arc<Self>,
        paths: Vec<PathBuf>,
        full: bool,
        progress: watch::Sender<ScanProgress>,
    ) -> Result<ScanProgress, ScanError> {
        let paths = if paths.is_empty() {
            self.roots.clone()
        } else {
            paths.iter().map(|p| self.resolve(p)).collect::<Result<Vec<_>, _>>()?
        };
        self.scan_resolved(paths, full, progress).await
    }

    /// [`Scanner::scan`] of paths already known to be absolute and under a root.
    pub async fn scan_resolved(
        self: &Arc<Self>,
        paths: Vec<PathBuf>,
        full: bool,
        progress: watch::Sender<ScanProgress>,
    ) -> Result<ScanProgress, ScanError> {
        let _one_at_a_time = self.running.lock().await;
        let started = Instant::now();
        let mut state = ScanProgress::default();
        let mut rate = Rate::default();

        let scanner = self.clone();
        let walk_paths = paths.clone();
        let Discovered { files, unreadable } =
            tokio::task::spawn_blocking(move || scanner.discover(&walk_paths)).await.unwrap_or_default();
        state.total = (files.len() + unreadable.len()) as u64;
        progress.send_replace(state.clone());
        tracing::info!(files = files.len(), unreadable = unreadable.len(), paths = ?paths, full, "scan started");

        let mut seen: HashSet<String> = files.iter().map(|f| f.display().to_string()).collect();
        seen.extend(unreadable.iter().map(|(path, _)| path.clone()));
        // Audio files that cannot be analysed at all are stored as failures, so they are
        // listed with their reason instead of vanishing.
        let scanner = self.clone();
        let recorded = tokio::task::spawn_blocking(move || scanner.record_unreadable(&unreadable)).await;
        let failed_here = match recorded {
            Ok(Ok(count)) => count,
            Ok(Err(error)) => {
                tracing::error!("storing unreadable files: {error}");
                0
            }
            Err(_) => 0,
        };
        state.done += failed_here;
        state.failed += failed_here;
        let mut in_flight: JoinSet<(PathBuf, bool, bool)> = JoinSet::new();
        let max_in_flight = self.pool.size() * 2;
        let mut pending = files.into_iter();
        let mut cancelled = false;
        loop {
            while in_flight.len() < max_in_flight && !cancelled {
                if progress.is_closed() || self.stopping.load(Ordering::SeqCst) {
                    cancelled = true;
                    break;
                }
                let Some(file) = pending.next() else { break };
                let scanner = self.clone();
                in_flight.spawn(async move {
                    let (failed, analysed) = scanner.process(&file, full).await;
                    (file, failed, analysed)
                });
            }
            let Some(joined) = in_flight.join_next().await else { break };
            let Ok((file, failed, analysed)) = joined else { continue };
            state.done += 1;
            state.failed += failed as u64;
            state.analysed += analysed as u64;
            state.current = file.display().to_string();
            state.rate_per_s = rate.tick(state.done);
            state.eta_s =
                if state.rate_per_s > 0.0 { (state.total - state.done) as f64 / state.rate_per_s } else { 0.0 };
            progress.send_replace(state.clone());
        }

        if !cancelled {
            let scanner = self.clone();
            let removed =
                tokio::task::spawn_blocking(move || scanner.remove_missing(&paths, &seen)).await.unwrap_or(Ok(0))?;
            if removed > 0 {
                tracing::info!(removed, "tracks whose files are gone were removed");
            }
        }
        state.current.clear();
        state.eta_s = 0.0;
        state.finished = true;
        progress.send_replace(state.clone());
        tracing::info!(
            done = state.done,
            analysed = state.analysed,
            failed = state.failed,
            seconds = started.elapsed().as_secs_f64(),
            cancelled,
            "scan finished"
        );
        Ok(state)
    }

    /// Audio files at or below `paths`, sorted; symlinks are not followed (they could lead
    /// outside the library roots). Entries named like audio that cannot be analysed (a name
    /// that is not UTF-8, a FIFO or device, a path the OS cannot stat) come back with why.
    fn discover(&self, paths: &[PathBuf]) -> Discovered {
        let mut found = Discovered::default();
        let mut stack: Vec<PathBuf> = paths.to_vec();
        while let Some(path) = stack.pop() {
            let metadata = match std::fs::symlink_metadata(&path) {
                Ok(metadata) => metadata,
                Err(error) => {
                    if self.is_audio(&path) {
                        found.unreadable.push((lossy(&path), format!("cannot read it: {error}")));
                    } else {
                        tracing::warn!("cannot read {}: {error}", path.display());
                    }
                    continue;
                }
            };
            if metadata.is_dir() {
                match std::fs::read_dir(&path) {
                    Ok(entries) => stack.extend(entries.filter_map(|e| e.ok().map(|e| e.path()))),
                    Err(error) => tracing::warn!("cannot read folder {}: {error}", path.display()),
                }
            } else if self.is_audio(&path) {
                if metadata.file_type().is_symlink() {
                    continue; // a link may lead outside the roots: never followed, by design
                }
                if path.to_str().is_none() {
                    found.unreadable.push((lossy(&path), "its name is not valid UTF-8; rename it".into()));
                } else if !metadata.is_file() {
                    found.unreadable.push((lossy(&path), "not a regular file (a FIFO, socket or device)".into()));
                } else {
                    found.files.push(path);
                }
            }
        }
        found.files.sort();
        found.files.dedup();
        found
    }

    /// Store each unreadable file as a failed track (once: unchanged failures are not
    /// rewritten); returns how many there were.
    fn record_unreadable(&self, unreadable: &[(String, String)]) -> Result<u64, StoreError> {
        for (path, reason) in unreadable {
            let error = format!("{path}: {reason}");
            tracing::warn!("{error}");
            let id = match self.store.track_by_path(path)? {
                Some(track) if track.state == TrackState::Failed && track.error == error => continue,
                Some(track) => track.id,
                None => self.store.insert(path, FileStat { size: 0, mtime_ns: 0 }, "", &Default::default())?,
            };
            self.store.save_failure(id, &error)?;
            self.announce(LibraryChange::Changed(id));
        }
        Ok(unreadable.len() as u64)
    }

    /// Handle one file; returns (failed, analysed).
    async fn process(self: Arc<Self>, file: &Path, full: bool) -> (bool, bool) {
        let scanner = self.clone();
        let owned = file.to_path_buf();
        let plan = tokio::task::spawn_blocking(move || scanner.plan(&owned, full)).await;
        let plan = match plan {
            Ok(Ok(plan)) => plan,
            Ok(Err(error)) => {
                tracing::error!("{}: {error}", file.display());
                self.retry_later(file);
                return (true, false);
            }
            Err(_) => return (true, false),
        };
        let (id, models) = match plan {
            Plan::Skip => return (false, false),
            Plan::Failed => return (true, false),
            Plan::Analyse { id, models } => (id, models),
        };
        let result = self.pool.analyze(AudioInput::File(file.to_path_buf()), models, Priority::Background, None).await;
        let store = self.store.clone();
        let versions = self.versions();
        let failed = result.is_err();
        let saved = tokio::task::spawn_blocking(move || match result {
            Ok(analysis) => store
                .save_analysis(id, analysis.duration_s, &stored_predictions(&analysis, &versions))
                .and_then(|()| store.save_descriptors(id, &analysis.descriptors)),
            Err(error) => {
                tracing::warn!("{error}");
                store.save_failure(id, &error.to_string())
            }
        })
        .await;
        match saved {
            Ok(Ok(())) => {
                if !failed {
                    self.write_tags(id).await;
                }
                self.announce(LibraryChange::Changed(id));
            }
            Ok(Err(error)) => {
                tracing::error!("{}: {error}", file.display());
                self.retry_later(file);
            }
            Err(_) => {}
        }
        (failed, !failed)
    }

    /// Tag track `id`'s file from its stored analysis, when `tagging.write` asks for it. A
    /// failure is logged (it names the file) and changes nothing: tags never stop a scan.
    async fn write_tags(&self, id: i64) {
        let Some(tagger) = self.tagger.clone() else { return };
        let store = self.store.clone();
        let tagged = tokio::task::spawn_blocking(move || {
            let Some(track) = store.track(id)? else { return Ok(None) };
            Ok::<_, crate::tagging::TagError>(Some(tagger.tag(&store, &track, false)?))
        })
        .await;
        match tagged {
            Ok(Ok(Some(report))) if report.written => {
                tracing::info!(path = %report.path, tags = report.changes.len(), "tags written")
            }
            Ok(Ok(_)) => {}
            Ok(Err(error)) => tracing::warn!("tags not written: {error}"),
            Err(_) => {}
        }
    }

    /// The library could not store what it learnt about `file` (a full disk, say): the row
    /// would stay PENDING until the next start, so the file is scanned again after a pause,
    /// and again after each failure, until its result is stored or the daemon stops.
    fn retry_later(self: &Arc<Self>, file: &Path) {
        let (scanner, file) = (self.clone(), file.to_path_buf());
        tokio::spawn(async move {
            tokio::time::sleep(scanner.store_retry_after).await;
            if scanner.stopping.load(Ordering::SeqCst) {
                return;
            }
            tracing::info!(path = %file.display(), "retrying a file whose result could not be stored");
            let (progress, _keep_open) = watch::channel(ScanProgress::default());
            let _ = scanner.scan_resolved(vec![file], false, progress).await;
        });
    }

    fn plan(&self, file: &Path, full: bool) -> Result<Plan, StoreError> {
        let Ok(metadata) = std::fs::metadata(file) else { return Ok(Plan::Skip) }; // gone meanwhile
        let stat = FileStat::of(&metadata);
        let path = file.to_str().expect("discover keeps UTF-8 paths only");
        if let Some(track) = self.store.track_by_path(path)? {
            if track.stat == stat {
                self.upgrade_hash(&track, file)?;
                return Ok(self.plan_for(&track, full));
            }
            let hash = match content_hash(file) {
                Ok(hash) => hash,
                Err(error) => {
                    self.store.save_failure(track.id, &format!("{path}: cannot read it: {error}"))?;
                    return Ok(Plan::Failed);
                }
            };
            if self.same_audio(&track, file, &hash) {
                // Tags edited (by timbre or anyone): the analysis still holds.
                let tags = tags::read(file);
                self.store.refresh_file(track.id, stat, &hash, &tags)?;
                if tags != track.tags {
                    self.announce(LibraryChange::Changed(track.id));
                }
                return Ok(self.plan_for(&track, full));
            }
            self.store.replace_content(track.id, stat, &hash, &tags::read(file))?;
            self.announce(LibraryChange::Changed(track.id));
            return Ok(Plan::Analyse { id: track.id, models: self.models() });
        }

        let hash = match content_hash(file) {
            Ok(hash) => hash,
            Err(error) => {
                let id = self.store.insert(path, stat, "", &Default::default())?;
                self.store.save_failure(id, &format!("{path}: cannot read it: {error}"))?;
                return Ok(Plan::Failed);
            }
        };
        let mut same_content = self.store.tracks_with_hash(&hash)?;
        if same_content.is_empty() && is_audio_hash(&hash) && self.store.has_legacy_hashes()? {
            // A file moved while the library still holds whole-file digests (before the
            // first scan after the upgrade got to its old row, which is gone).
            if let Ok(whole) = timbre_model_manifest::sha256_file(file) {
                same_content = self.store.tracks_with_hash(&whole)?;
            }
        }
        if let Some(moved) = same_content.iter().find(|t| !Path::new(&t.path).exists()) {
            tracing::info!(from = %moved.path, to = %path, "moved; keeping its analysis");
            self.store.move_track(moved.id, path, stat)?;
            if moved.content_hash != hash {
                self.store.update_hash(moved.id, &hash)?;
            }
            self.announce(LibraryChange::Changed(moved.id));
            return Ok(self.plan_for(moved, full));
        }
        let id = self.store.insert(path, stat, &hash, &tags::read(file))?;
        if !full {
            if let Some(copy_of) = same_content.iter().find(|t| self.current(t)) {
                tracing::info!(of = %copy_of.path, copy = %path, "a copy; copying its analysis");
                self.store.copy_analysis(copy_of, id)?;
                self.announce(LibraryChange::Changed(id));
                return Ok(Plan::Skip);
            }
        }
        Ok(Plan::Analyse { id, models: self.models() })
    }

    /// Whether `file`, now digested as `hash`, has the audio `track` was analysed from. A
    /// legacy whole-file digest can only say "the same bytes"; anything else is re-analysed.
    fn same_audio(&self, track: &TrackRecord, file: &Path, hash: &str) -> bool {
        if is_audio_hash(&track.content_hash) {
            return hash == track.content_hash;
        }
        timbre_model_manifest::sha256_file(file).is_ok_and(|whole| whole == track.content_hash)
    }

    /// A library from before audio digests stores whole-file ones. A file whose size and
    /// mtime are those it was digested at has not changed since: its audio digest replaces
    /// the old one here, with no re-analysis. Only analysed tracks: a file that cannot be
    /// demuxed would be read again on every scan.
    fn upgrade_hash(&self, track: &TrackRecord, file: &Path) -> Result<(), StoreError> {
        if is_audio_hash(&track.content_hash) || track.state != TrackState::Analysed {
            return Ok(());
        }
        match audio_hash(file) {
            Ok(hash) => self.store.update_hash(track.id, &hash),
            Err(error) => {
                tracing::debug!("keeping the whole-file digest: {error}");
                Ok(())
            }
        }
    }

    /// What a track whose content is unchanged needs.
    fn plan_for(&self, track: &TrackRecord, full: bool) -> Plan {
        if full {
            return Plan::Analyse { id: track.id, models: self.models() };
        }
        match track.state {
            TrackState::Pending => Plan::Analyse { id: track.id, models: self.models() },
            // Retried when the file changes, or by a full scan; not on every scan.
            TrackState::Failed => Plan::Skip,
            TrackState::Analysed => {
                let outdated = self.outdated_models(track);
                let descriptors = self.outdated_descriptors(track);
                if outdated.is_empty() && !descriptors.is_empty() {
                    // No model: the decode feeds the descriptor plugins only.
                    tracing::info!(path = %track.path, plugins = ?descriptors, "descriptor version changed; re-describing");
                    Plan::Analyse { id: track.id, models: Some(Vec::new()) }
                } else if outdated.is_empty() {
                    Plan::Skip
                } else {
                    tracing::info!(path = %track.path, models = ?outdated, "model version changed; re-analysing");
                    Plan::Analyse { id: track.id, models: Some(outdated) }
                }
            }
        }
    }

    /// Models whose stored predictions are missing or came from another version.
    fn outdated_models(&self, track: &TrackRecord) -> Vec<String> {
        self.versions()
            .iter()
            .filter(|v| !track.predictions.iter().any(|p| &p.version == *v))
            .map(|v| v.model.clone())
            .collect()
    }

    /// Descriptor plugins whose stored values are missing or came from another version.
    fn outdated_descriptors(&self, track: &TrackRecord) -> Vec<String> {
        self.descriptor_versions
            .iter()
            .filter(|(name, version)| !track.descriptors.iter().any(|d| &d.plugin == name && &d.version == version))
            .map(|(name, _)| name.clone())
            .collect()
    }

    fn current(&self, track: &TrackRecord) -> bool {
        track.state == TrackState::Analysed
            && self.outdated_models(track).is_empty()
            && self.outdated_descriptors(track).is_empty()
    }

    /// Remove tracks at or below `paths` that were not found and whose files are gone.
    fn remove_missing(&self, paths: &[PathBuf], seen: &HashSet<String>) -> Result<usize, StoreError> {
        let mut removed = 0;
        for path in paths {
            for (id, track_path) in self.store.paths_under(&path.display().to_string())? {
                if !seen.contains(&track_path) && !Path::new(&track_path).exists() {
                    tracing::info!(path = %track_path, "file gone; removing the track");
                    self.store.remove(id)?;
                    self.announce(LibraryChange::Removed(id));
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}

/// What a walk of the library found.
#[derive(Debug, Default)]
struct Discovered {
    /// Audio files to plan and analyse.
    files: Vec<PathBuf>,
    /// Audio files that cannot be analysed, as (path, lossily if need be; why).
    unreadable: Vec<(String, String)>,
}

/// `path` made absolute and free of `..` and symlinks, if it lies under one of `roots`
/// (canonical, as [`Scanner::roots`] holds them).
pub fn resolve_in(roots: &[PathBuf], path: &Path) -> Result<PathBuf, ScanError> {
    let outside = || ScanError::OutsideRoots {
        path: path.to_path_buf(),
        roots: if roots.is_empty() {
            "none are configured".into()
        } else {
            roots.iter().map(|r| r.display().to_string()).collect::<Vec<_>>().join(", ")
        },
    };
    // A path that no longer exists (a deleted file) is resolved through its parent.
    let resolved = match path.canonicalize() {
        Ok(p) => p,
        Err(_) => match (path.parent().and_then(|p| p.canonicalize().ok()), path.file_name()) {
            (Some(parent), Some(name)) => parent.join(name),
            _ => return Err(outside()),
        },
    };
    if roots.iter().any(|root| resolved.starts_with(root)) {
        Ok(resolved)
    } else {
        Err(outside())
    }
}

/// The digest a track is stored under: its audio stream's; for a file whose stream cannot
/// be demuxed, the whole file's (its analysis then fails and says why, as before).
fn content_hash(file: &Path) -> std::io::Result<String> {
    match audio_hash(file) {
        Ok(hash) => Ok(hash),
        Err(error) => {
            tracing::debug!("no audio digest, hashing the whole file: {error}");
            timbre_model_manifest::sha256_file(file)
        }
    }
}

/// A path as stored: exact when it is UTF-8, with replacement characters otherwise.
fn lossy(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// An analysis as stored: each model's predictions with the versions that produced them.
pub fn stored_predictions(analysis: &Analysis, versions: &[ModelVersion]) -> Vec<StoredPrediction> {
    analysis
        .predictions
        .iter()
        .filter_map(|p| {
            let version = versions.iter().find(|v| v.model == p.model)?.clone();
            Some(StoredPrediction {
                version,
                labels: p.labels.clone(),
                probabilities: p.probabilities.clone(),
                embedding: p.embedding.clone(),
                segments: p.segments.len(),
                analysed_at_ms: 0,
            })
        })
        .collect()
}

/// Files per second over the last ten seconds.
#[derive(Default)]
struct Rate {
    window: VecDeque<(Instant, u64)>,
}

impl Rate {
    fn tick(&mut self, done: u64) -> f64 {
        let now = Instant::now();
        self.window.push_back((now, done));
        while self.window.len() > 2 && now.duration_since(self.window[0].0) > Duration::from_secs(10) {
            self.window.pop_front();
        }
        let (start, first) = self.window[0];
        let elapsed = now.duration_since(start).as_secs_f64();
        if elapsed > 0.0 {
            (done - first) as f64 / elapsed
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::ModelCatalog;
    use crate::plugin_host::PluginRegistry;

    /// A mono 16-bit WAV: one second of a quiet tone.
    fn write_tone_wav(path: &Path) {
        write_wav(path, 0.05);
    }

    /// A mono 16-bit WAV: one second of a quiet tone whose pitch (and so content) is `step`.
    fn write_wav(path: &Path, step: f32) {
        let (rate, frames) = (22050u32, 22050u32);
        let mut bytes = Vec::with_capacity(44 + 2 * frames as usize);
        bytes.extend_from_slice(b"RIFF");
        bytes.extend_from_slice(&(36 + 2 * frames).to_le_bytes());
        bytes.extend_from_slice(b"WAVEfmt ");
        // Chunk size, PCM, mono, rate, bytes per second, block align, bits per sample.
        for field in [16u32.to_le_bytes().as_slice(), &1u16.to_le_bytes(), &1u16.to_le_bytes()] {
            bytes.extend_from_slice(field);
        }
        for field in
            [rate.to_le_bytes().as_slice(), &(2 * rate).to_le_bytes(), &2u16.to_le_bytes(), &16u16.to_le_bytes()]
        {
            bytes.extend_from_slice(field);
        }
        bytes.extend_from_slice(b"data");
        bytes.extend_from_slice(&(2 * frames).to_le_bytes());
        for i in 0..frames {
            bytes.extend_from_slice(&(((i as f32 * step).sin() * 8000.0) as i16).to_le_bytes());
        }
        std::fs::write(path, bytes).expect("write the WAV");
    }

    /// `file`'s row as a scan leaves it before the analysis is stored: current, PENDING.
    fn pending_row(store: &Store, file: &Path) -> i64 {
        let stat = FileStat::of(&std::fs::metadata(file).expect("stat"));
        let hash = timbre_model_manifest::sha256_file(file).expect("hash");
        store.insert(file.to_str().expect("a UTF-8 path"), stat, &hash, &Default::default()).expect("insert")
    }

    /// A full disk when an analysis is done must not leave its row PENDING until the next
    /// start: the file is scanned again after a pause, and again while the store still
    /// refuses, until the result (an analysis, or a failure with its reason) is stored.
    #[tokio::test]
    async fn results_a_full_disk_refused_are_stored_by_a_retry_once_there_is_room() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("music");
        std::fs::create_dir(&root).expect("mkdir");
        let (tone, broken) = (root.join("tone.wav"), root.join("broken.wav"));
        write_tone_wav(&tone);
        std::fs::write(&broken, b"not audio at all").expect("write");
        let store = Arc::new(Store::open(&dir.path().join("library.sqlite3")).expect("open"));
        let (tone_id, broken_id) = (pending_row(&store, &tone), pending_row(&store, &broken));
        // No models: the analysis still decodes and measures each file.
        let pool = WorkerPool::start(Arc::new(PluginRegistry::default()), Arc::new(ModelCatalog::default()), 1, 4)
            .expect("a pool without models");
        let (changes, _) = crate::library::changes::change_queue(16);
        let scanner = Scanner::new(store.clone(), Arc::new(pool), Vec::new(), vec![root], vec!["wav".into()], changes)
            .with_store_retry_after(Duration::from_millis(50));
        let scanner = Arc::new(scanner);
        let states = || {
            let state = |id| store.track(id).expect("read").expect("present").state;
            (state(tone_id), state(broken_id))
        };

        store.refuse_writes(true);
        let (progress, _receiver) = watch::channel(ScanProgress::default());
        let scanned = scanner.scan(Vec::new(), false, progress).await.expect("the scan itself completes");
        assert_eq!(scanned.done, 2);
        assert_eq!(states(), (TrackState::Pending, TrackState::Pending), "nothing could be stored");
        // Several retries fail while the disk stays full.
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(states(), (TrackState::Pending, TrackState::Pending));

        store.refuse_writes(false);
        let deadline = Instant::now() + Duration::from_secs(10);
        while states() != (TrackState::Analysed, TrackState::Failed) {
            assert!(Instant::now() < deadline, "no retry stored the results: {:?}", states());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let stored = store.track(tone_id).expect("read").expect("present");
        assert!((stored.duration_s - 1.0).abs() < 0.01, "{}", stored.duration_s);
        let failed = store.track(broken_id).expect("read").expect("present");
        assert!(failed.error.contains("broken.wav"), "{}", failed.error);
        scanner.stop();
    }

    /// A library folder scanned with the fake plugins: models `a` and `b`, no ONNX Runtime.
    struct Library {
        _dir: tempfile::TempDir,
        root: PathBuf,
        store: Arc<Store>,
        pool: Arc<WorkerPool>,
        changes: crate::library::ChangeReceiver,
        sender: ChangeSender,
    }

    /// Versions of models `a` and `b` as a scanner knows them.
    fn versions(b: &str) -> Vec<ModelVersion> {
        let version = |model: &str, v: &str| ModelVersion {
            model: model.into(),
            model_version: v.into(),
            feature_version: "fake-features 1.0.0".into(),
        };
        vec![version("a", "1.0.0"), version("b", b)]
    }

    fn library() -> Library {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("music")).expect("mkdir");
        let root = dir.path().join("music").canonicalize().expect("canonical root");
        let store = Arc::new(Store::open(&dir.path().join("library.sqlite3")).expect("open"));
        let pool = WorkerPool::start(
            crate::plugin_host::fakes::registry(),
            crate::plugin_host::fakes::catalog(&["a", "b"]),
            1,
            4,
        )
        .expect("a pool of fakes");
        let (sender, changes) = crate::library::changes::change_queue(64);
        Library { _dir: dir, root, store, pool: Arc::new(pool), changes, sender }
    }

    impl Library {
        /// One scan of the whole root by a scanner that knows these model versions.
        async fn scan(&self, versions: Vec<ModelVersion>) -> ScanProgress {
            let scanner = Scanner::new(
                self.store.clone(),
                self.pool.clone(),
                versions,
                vec![self.root.clone()],
                vec!["wav".into()],
                self.sender.clone(),
            );
            let (progress, _receiver) = watch::channel(ScanProgress::default());
            let scanned = Arc::new(scanner).scan(Vec::new(), false, progress).await.expect("scan");
            // Stored timestamps are in milliseconds: the next scan's are told apart.
            tokio::time::sleep(Duration::from_millis(5)).await;
            scanned
        }

        fn tracks(&self) -> Vec<TrackRecord> {
            self.store.list(&Default::default(), 0, 1000).expect("list").0
        }

        fn track_at(&self, file: &Path) -> TrackRecord {
            self.store.track_by_path(file.to_str().expect("UTF-8")).expect("read").expect("a row for the file")
        }

        /// Changes announced since the last call.
        fn announced(&mut self) -> Vec<LibraryChange> {
            std::iter::from_fn(|| self.changes.try_recv()).collect()
        }
    }

    /// `(model, model version, analysed at)` of each stored prediction, by model.
    fn analyses(track: &TrackRecord) -> Vec<(String, String, i64)> {
        let mut found: Vec<_> = track
            .predictions
            .iter()
            .map(|p| (p.version.model.clone(), p.version.model_version.clone(), p.analysed_at_ms))
            .collect();
        found.sort();
        found
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_new_file_is_analysed_by_every_model_and_announced() {
        let mut lib = library();
        let file = lib.root.join("new.wav");
        write_wav(&file, 0.05);
        let scanned = lib.scan(versions("1.0.0")).await;
        assert_eq!((scanned.done, scanned.analysed, scanned.failed, scanned.total), (1, 1, 0, 1));
        let track = lib.track_at(&file);
        assert_eq!(track.state, TrackState::Analysed);
        assert_eq!(track.content_hash, audio_hash(&file).expect("hash"), "the audio stream's digest");
        let models: Vec<String> = analyses(&track).into_iter().map(|(m, v, _)| format!("{m} {v}")).collect();
        assert_eq!(models, ["a 1.0.0", "b 1.0.0"]);
        assert!((track.duration_s - 1.0).abs() < 0.01, "{}", track.duration_s);
        assert!(lib.announced().contains(&LibraryChange::Changed(track.id)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unchanged_file_is_skipped_even_when_only_its_mtime_changed() {
        let mut lib = library();
        let file = lib.root.join("same.wav");
        write_wav(&file, 0.05);
        lib.scan(versions("1.0.0")).await;
        let before = lib.track_at(&file);
        lib.announced();

        let again = lib.scan(versions("1.0.0")).await;
        assert_eq!((again.done, again.analysed), (1, 0), "same size and mtime: skipped");
        // Touched: a new mtime, the same bytes; the digest says it is the same file.
        let later = std::time::SystemTime::now() + Duration::from_secs(60);
        std::fs::File::options().write(true).open(&file).expect("open").set_modified(later).expect("touch");
        let touched = lib.scan(versions("1.0.0")).await;
        assert_eq!((touched.done, touched.analysed), (1, 0), "same content: skipped");
        let after = lib.track_at(&file);
        assert_eq!((after.id, analyses(&after)), (before.id, analyses(&before)), "nothing re-analysed");
        assert_eq!(after.stat, FileStat::of(&std::fs::metadata(&file).expect("stat")), "the new mtime is stored");
        assert!(lib.announced().is_empty(), "nothing to tell the index");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_moved_file_is_recognised_by_its_content_and_keeps_its_track_and_analysis() {
        let mut lib = library();
        let (from, to) = (lib.root.join("old.wav"), lib.root.join("sub/new name.wav"));
        write_wav(&from, 0.05);
        lib.scan(versions("1.0.0")).await;
        let before = lib.track_at(&from);
        lib.announced();

        std::fs::create_dir(lib.root.join("sub")).expect("mkdir");
        std::fs::rename(&from, &to).expect("move");
        let scanned = lib.scan(versions("1.0.0")).await;
        assert_eq!(scanned.analysed, 0, "a move is not analysed again");
        let tracks = lib.tracks();
        assert_eq!(tracks.len(), 1, "one row, not a new one and a removed one");
        let after = lib.track_at(&to);
        assert_eq!((after.id, analyses(&after)), (before.id, analyses(&before)));
        assert_eq!(lib.announced(), [LibraryChange::Changed(before.id)]);
    }

    /// The code's promise for a copy: a second row, whose analysis is copied from the
    /// first (same content, current versions) rather than computed again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_copy_gets_its_own_row_with_the_analysis_of_the_original() {
        let mut lib = library();
        let (original, copy) = (lib.root.join("a.wav"), lib.root.join("b copy.wav"));
        write_wav(&original, 0.05);
        lib.scan(versions("1.0.0")).await;
        lib.announced();

        std::fs::copy(&original, &copy).expect("copy");
        let scanned = lib.scan(versions("1.0.0")).await;
        assert_eq!((scanned.done, scanned.analysed), (2, 0), "the copy is not analysed again");
        let (first, second) = (lib.track_at(&original), lib.track_at(&copy));
        assert_ne!(first.id, second.id, "a second row");
        assert_eq!(second.state, TrackState::Analysed);
        assert_eq!(second.content_hash, first.content_hash);
        assert_eq!(second.duration_s, first.duration_s);
        let strip = |t: &TrackRecord| -> Vec<_> {
            t.predictions.iter().map(|p| (p.version.clone(), p.probabilities.clone(), p.embedding.clone())).collect()
        };
        assert_eq!(strip(&second), strip(&first), "the original's predictions");
        assert_eq!(lib.announced(), [LibraryChange::Changed(second.id)]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_deleted_file_loses_its_track_and_the_index_is_told() {
        let mut lib = library();
        let (kept, deleted) = (lib.root.join("kept.wav"), lib.root.join("deleted.wav"));
        write_wav(&kept, 0.05);
        write_wav(&deleted, 0.07);
        lib.scan(versions("1.0.0")).await;
        let gone = lib.track_at(&deleted).id;
        lib.announced();

        std::fs::remove_file(&deleted).expect("delete");
        let scanned = lib.scan(versions("1.0.0")).await;
        assert_eq!((scanned.total, scanned.analysed), (1, 0));
        let paths: Vec<String> = lib.tracks().into_iter().map(|t| t.path).collect();
        assert_eq!(paths, [kept.display().to_string()]);
        assert!(lib.store.track(gone).expect("read").is_none());
        assert_eq!(lib.announced(), [LibraryChange::Removed(gone)]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_model_version_bump_re_runs_that_model_only() {
        let mut lib = library();
        let file = lib.root.join("track.wav");
        write_wav(&file, 0.05);
        lib.scan(versions("1.0.0")).await;
        let before = analyses(&lib.track_at(&file));
        lib.announced();

        let scanned = lib.scan(versions("2.0.0")).await;
        assert_eq!(scanned.analysed, 1);
        let track = lib.track_at(&file);
        let after = analyses(&track);
        assert_eq!(after[0], before[0], "model a is current: its prediction is untouched");
        assert_eq!(after[1].1, "2.0.0", "model b was re-run at its new version");
        assert!(after[1].2 > before[1].2, "{after:?} after {before:?}");
        assert_eq!(lib.announced(), [LibraryChange::Changed(track.id)]);
    }

    /// `file` (a WAV) with a RIFF INFO title appended after its audio: a tag edit, as a tag
    /// editor makes one, that leaves every audio byte alone.
    fn retitle_wav(file: &Path, title: &str) {
        let mut bytes = std::fs::read(file).expect("read");
        let mut text = title.as_bytes().to_vec();
        text.push(0);
        if text.len() % 2 == 1 {
            text.push(0);
        }
        let mut info = b"INFO".to_vec();
        info.extend_from_slice(b"INAM");
        info.extend_from_slice(&(text.len() as u32).to_le_bytes());
        info.extend_from_slice(&text);
        bytes.extend_from_slice(b"LIST");
        bytes.extend_from_slice(&(info.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&info);
        let riff = (bytes.len() - 8) as u32;
        bytes[4..8].copy_from_slice(&riff.to_le_bytes());
        std::fs::write(file, bytes).expect("write");
    }

    /// Seen failing with the whole-file digest: the retitled file was analysed again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_tag_edit_refreshes_the_tags_and_is_not_analysed_but_an_audio_edit_is() {
        let mut lib = library();
        let file = lib.root.join("song.wav");
        write_wav(&file, 0.05);
        lib.scan(versions("1.0.0")).await;
        let before = lib.track_at(&file);
        lib.announced();

        retitle_wav(&file, "A New Title");
        let scanned = lib.scan(versions("1.0.0")).await;
        assert_eq!((scanned.done, scanned.analysed), (1, 0), "only tags changed");
        let after = lib.track_at(&file);
        assert_eq!(after.tags.title, "A New Title", "the new tags are stored");
        assert_eq!(after.stat, FileStat::of(&std::fs::metadata(&file).expect("stat")));
        assert_eq!(
            (after.id, after.content_hash.clone(), analyses(&after)),
            (before.id, before.content_hash.clone(), analyses(&before))
        );
        assert_eq!(lib.announced(), [LibraryChange::Changed(after.id)], "the index learns the new tags");

        write_wav(&file, 0.09);
        let scanned = lib.scan(versions("1.0.0")).await;
        assert_eq!(scanned.analysed, 1, "the audio changed");
        assert_ne!(lib.track_at(&file).content_hash, after.content_hash);
    }

    /// A library from before audio digests: unchanged files get their audio digest without
    /// being analysed again, a touched one too (its bytes are the digested ones), and a file
    /// moved before the first scan after the upgrade is still recognised.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn whole_file_digests_of_an_old_library_are_upgraded_without_re_analysis() {
        let lib = library();
        let (kept, touched, moved) = (lib.root.join("kept.wav"), lib.root.join("touched.wav"), lib.root.join("m.wav"));
        write_wav(&kept, 0.05);
        write_wav(&touched, 0.06);
        write_wav(&moved, 0.07);
        lib.scan(versions("1.0.0")).await;
        for file in [&kept, &touched, &moved] {
            let track = lib.track_at(file);
            lib.store.update_hash(track.id, &timbre_model_manifest::sha256_file(file).expect("hash")).expect("legacy");
        }
        let before: Vec<_> = [&kept, &touched, &moved].map(|f| analyses(&lib.track_at(f))).into();
        let later = std::time::SystemTime::now() + Duration::from_secs(60);
        std::fs::File::options().write(true).open(&touched).expect("open").set_modified(later).expect("touch");
        let new_place = lib.root.join("moved.wav");
        std::fs::rename(&moved, &new_place).expect("move");

        let scanned = lib.scan(versions("1.0.0")).await;
        assert_eq!((scanned.done, scanned.analysed), (3, 0), "nothing analysed again");
        for (file, before) in [&kept, &touched, &new_place].into_iter().zip(before) {
            let track = lib.track_at(file);
            assert_eq!(track.content_hash, audio_hash(file).expect("hash"), "{}", file.display());
            assert_eq!(analyses(&track), before, "{}", file.display());
        }
        assert_eq!(lib.tracks().len(), 3);
    }
}
