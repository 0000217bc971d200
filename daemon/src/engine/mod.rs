//! The engine: what the daemon holds while it runs, shared by every request. Transports
//! (gRPC today) call into it; it knows nothing about them.

mod error;
mod reload;
#[cfg(test)]
pub(crate) mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use error::{task_failed, EngineError, StartError, TrackKey};

use crate::catalogue::{self, Catalogue};
use crate::config::{Loaded, Settings};
use crate::index::keeper::IndexKeeper;
use crate::library::watch::LibraryWatcher;
use crate::library::{ModelVersion, Scanner, Store, TrackFilter, TrackRecord};
use crate::live::{LiveHub, LivePrediction};
use crate::models::{CatalogChange, ModelCatalog, SharedCatalog};
use crate::pipeline::analysis::Analysis;
use crate::pipeline::AudioInput;
use crate::plugin_host::{PluginKind, PluginRegistry, SearchPath};
use crate::recommend::Recommender;
use crate::workers::{Priority, WorkerPool};

pub struct Engine {
    settings: Settings,
    search_path: SearchPath,
    registry: Arc<PluginRegistry>,
    /// Replaced whole by [`Engine::reload_models`].
    catalog: Arc<SharedCatalog>,
    /// One reload at a time.
    reloading: std::sync::Mutex<()>,
    /// Reloads the models when a model path changes; taken (and so stopped) at shutdown.
    model_watcher: std::sync::Mutex<Option<reload::ModelWatcher>>,
    runtime: tokio::runtime::Handle,
    pool: Arc<WorkerPool>,
    scanner: Arc<Scanner>,
    /// Taken (and so stopped) at shutdown.
    watcher: std::sync::Mutex<Option<LibraryWatcher>>,
    live: LiveHub,
    keeper: Arc<IndexKeeper>,
    recommender: Recommender,
}

impl Engine {
    /// Everything the daemon runs, started in the one order that works: plugins and models,
    /// the workers, the library; then the vector index keeper (its first sync sees the library
    /// before any scan writes), then the library is caught up with and watched, then the live
    /// sources. Returns a running engine, or the error that kept a part from starting.
    /// A `library.models` name that did not load is refused here, naming the key and its layer.
    pub async fn start(loaded: Loaded) -> Result<Arc<Self>, StartError> {
        let settings = loaded.settings.clone();
        let (search_path, registry, catalog) = tokio::task::block_in_place(|| {
            let search_path = SearchPath::standard(&settings.plugins.paths);
            let mut registry = PluginRegistry::discover(&search_path);
            if !settings.analysis.descriptors {
                registry = registry.without_kind(PluginKind::Descriptor);
            }
            let registry = Arc::new(registry);
            let catalog = Arc::new(ModelCatalog::discover(&registry, &settings.model_options()));
            (search_path, registry, catalog)
        });
        loaded.check_library_models(&catalog.models.iter().map(|m| m.name().to_string()).collect::<Vec<_>>())?;
        Self::start_with(settings, search_path, registry, catalog).await
    }

    /// [`Engine::start`] with the plugins and models already found (tests pass fakes).
    pub async fn start_with(
        settings: Settings,
        search_path: SearchPath,
        registry: Arc<PluginRegistry>,
        catalog: Arc<ModelCatalog>,
    ) -> Result<Arc<Self>, StartError> {
        let (pool, store, shared) = tokio::task::block_in_place(|| -> Result<_, StartError> {
            let threads = settings.worker_threads();
            let shared = Arc::new(SharedCatalog::new(catalog.clone()));
            let pool =
                Arc::new(WorkerPool::start_shared(registry.clone(), shared.clone(), threads, settings.workers.queue)?);
            let store = Arc::new(Store::open(&settings.database_path())?);
            Ok((pool, store, shared))
        })?;
        let (library_models, versions) = library_versions(&settings.library.models, &catalog, &registry);
        let (changes_tx, changes) = crate::library::change_queue(crate::library::changes::CHANGE_QUEUE);
        let scanner = Scanner::new(
            store.clone(),
            pool.clone(),
            versions,
            settings.library.roots.clone(),
            settings.library.extensions.clone(),
            changes_tx,
        )
        .with_descriptor_versions(crate::pipeline::descriptors::DescriptorSet::load(&registry).versions())
        .with_models(library_models);
        let scanner = Arc::new(if settings.tagging.write {
            scanner.with_tagger(crate::tagging::Tagger::new(settings.tagging.clone(), &[]))
        } else {
            scanner
        });
        let keeper =
            IndexKeeper::start(settings.index.clone(), settings.library.data_dir.clone(), store.clone(), changes);
        // Heads give labels, not an embedding: they are not spaces.
        let spaces = catalog.feature_models().map(|m| m.spec.name().to_string()).collect();
        let recommender = Recommender::new(
            store,
            keeper.shared(),
            pool.clone(),
            spaces,
            scanner.roots().to_vec(),
            settings.recommend.clone(),
            settings.server.max_audio_seconds,
        );
        let watcher = follow_library(&settings, &scanner);
        let live = LiveHub::start(&settings.live, pool.clone(), tokio::runtime::Handle::current());
        tracing::info!(
            workers = pool.size(),
            database = %settings.database_path().display(),
            "engine started"
        );
        let engine = Arc::new(Engine {
            settings,
            search_path,
            registry,
            catalog: shared,
            reloading: std::sync::Mutex::new(()),
            model_watcher: std::sync::Mutex::new(None),
            runtime: tokio::runtime::Handle::current(),
            pool,
            scanner,
            watcher: std::sync::Mutex::new(watcher),
            live,
            keeper,
            recommender,
        });
        let paths = crate::models::search_path(&engine.settings.models.paths);
        let watcher = reload::ModelWatcher::start(&paths, Arc::downgrade(&engine));
        *engine.model_watcher.lock().unwrap_or_else(|p| p.into_inner()) = watcher;
        Ok(engine)
    }

    /// Look at the model folders again: new ones are added, changed ones replaced, gone ones
    /// removed; a folder that fails its checks is refused with its reason (and a model that
    /// was loaded from it stays as it was). Classify, ListPlugins and the workers see the new
    /// catalogue from their next call; the library then gets the new models' predictions
    /// (a scan runs only those, on the tracks that lack them).
    pub fn reload_models(&self) -> CatalogChange {
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(|p| p.into_inner());
        let fresh = ModelCatalog::discover(&self.registry, &self.settings.model_options());
        let old = self.catalog.get();
        let (merged, change) = old.merge_reload(fresh);
        for name in &change.kept {
            tracing::warn!(model = %name, "its folder is refused now; the loaded version stays");
        }
        if change.is_empty() {
            // The models are the same; only the list of refused folders may have changed.
            if merged.refused != old.refused {
                self.catalog
                    .replace_listing(Arc::new(ModelCatalog { models: old.models.clone(), refused: merged.refused }));
            }
            tracing::info!("models reloaded: no model changed");
            return change;
        }
        let merged = Arc::new(merged);
        let (models, versions) = library_versions(&self.settings.library.models, &merged, &self.registry);
        self.scanner.set_versions(versions, models);
        self.catalog.replace(merged);
        tracing::info!(added = ?change.added, replaced = ?change.replaced, removed = ?change.removed, "models reloaded");
        if !self.scanner.roots().is_empty() {
            let scanner = self.scanner.clone();
            self.runtime.spawn(async move {
                let (progress, _keep_alive) = tokio::sync::watch::channel(Default::default());
                if let Err(error) = scanner.scan(Vec::new(), false, progress).await {
                    tracing::error!("analysing the library with the reloaded models: {error}");
                }
            });
        }
        change
    }

    /// `Recommend` and `Playlist`.
    pub fn recommender(&self) -> &Recommender {
        &self.recommender
    }

    /// Follow the predictions of one live source, or of all when `source` is `None`.
    pub fn watch_live(
        &self,
        source: Option<&str>,
    ) -> Result<tokio::sync::broadcast::Receiver<Arc<LivePrediction>>, EngineError> {
        let names = self.live.source_names();
        if names.is_empty() {
            return Err(EngineError::NoLiveSources);
        }
        if let Some(source) = source {
            if !names.iter().any(|n| n == source) {
                return Err(EngineError::UnknownLiveSource { name: source.to_string(), configured: names.to_vec() });
            }
        }
        Ok(self.live.subscribe())
    }

    /// Length of the windows a stream is cut into when the client does not say: the
    /// segment length of the first model (3 s for the shipped ones).
    pub fn default_window_s(&self) -> f64 {
        self.catalog.get().feature_models().next().map_or(3.0, |m| m.features.segment_seconds)
    }

    /// Stop watching and scanning; analyses in flight finish and are stored.
    pub async fn shutdown(&self) {
        tokio::task::block_in_place(|| self.live.stop());
        self.model_watcher.lock().unwrap_or_else(|p| p.into_inner()).take();
        self.watcher.lock().unwrap_or_else(|p| p.into_inner()).take();
        self.scanner.stop();
        self.scanner.idle().await;
        self.keeper.shutdown().await;
        if let Err(error) = self.scanner.store().checkpoint() {
            tracing::warn!("{error}");
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn registry(&self) -> &PluginRegistry {
        &self.registry
    }

    pub fn scanner(&self) -> &Arc<Scanner> {
        &self.scanner
    }

    pub fn model_names(&self) -> Vec<String> {
        self.catalog.get().models.iter().map(|m| m.name().to_string()).collect()
    }

    /// Each loaded model's kind (classes or tags), by name: what a stored prediction of it is.
    pub fn model_kinds(&self) -> std::collections::HashMap<String, timbre_model_manifest::OutputKind> {
        self.catalog.get().models.iter().map(|m| (m.name().to_string(), m.folder.manifest.model.kind)).collect()
    }

    /// Plugin libraries and model folders, loaded and refused.
    pub fn catalogue(&self) -> Catalogue {
        catalogue::list(&self.registry, &self.search_path, &self.catalog.get())
    }

    /// Classify audio; nothing is stored. `models` empty means every model.
    pub async fn classify(&self, input: AudioInput, models: &[String]) -> Result<Analysis, EngineError> {
        if let AudioInput::File(path) = &input {
            if !path.is_file() {
                return Err(EngineError::NoSuchFile(path.clone()));
            }
        }
        let models = check_models(&self.model_names(), models)?;
        let max_seconds = Some(self.settings.server.max_audio_seconds);
        Ok(self.pool.analyze(input, models, Priority::Interactive, max_seconds).await?)
    }

    /// Unknown model names are an error; `None` means all.
    pub fn check_models(&self, models: &[String]) -> Result<Option<Vec<String>>, EngineError> {
        check_models(&self.model_names(), models)
    }

    /// A library path the daemon may read, resolved; anything outside the roots is refused.
    pub fn library_path(&self, path: &Path) -> Result<PathBuf, EngineError> {
        library_path(self.scanner.roots(), path)
    }

    /// The library track with this id, or at this path.
    pub async fn track(&self, key: TrackKey) -> Result<TrackRecord, EngineError> {
        find_track(self.scanner.store(), key).await
    }

    pub async fn list_tracks(
        &self,
        filter: TrackFilter,
        after: i64,
        limit: usize,
    ) -> Result<(Vec<TrackRecord>, u64), EngineError> {
        let store = self.scanner.store().clone();
        read_store("listing tracks", move || store.list(&filter, after, limit)).await
    }
}

/// `models` when each is one of `loaded`, `None` when empty (all of them).
pub fn check_models(loaded: &[String], models: &[String]) -> Result<Option<Vec<String>>, EngineError> {
    if let Some(unknown) = models.iter().find(|m| !loaded.contains(m)) {
        return Err(EngineError::UnknownModel { name: unknown.clone(), loaded: loaded.to_vec() });
    }
    Ok((!models.is_empty()).then(|| models.to_vec()))
}

/// `path` resolved, when it is absolute and lies under one of `roots`.
pub fn library_path(roots: &[PathBuf], path: &Path) -> Result<PathBuf, EngineError> {
    if !path.is_absolute() {
        return Err(EngineError::RelativePath(path.to_path_buf()));
    }
    Ok(crate::library::scan::resolve_in(roots, path)?)
}

/// Run a read of the library off the async runtime; a panic in it is an internal error.
pub async fn read_store<T: Send + 'static>(
    doing: &'static str,
    read: impl FnOnce() -> Result<T, crate::library::StoreError> + Send + 'static,
) -> Result<T, EngineError> {
    Ok(tokio::task::spawn_blocking(read).await.map_err(task_failed(doing))??)
}

/// The track `key` names; not found is an error that says how it was asked for.
pub async fn find_track(store: &Arc<Store>, key: TrackKey) -> Result<TrackRecord, EngineError> {
    let store = store.clone();
    let asked = key.clone();
    let found = read_store("reading a track", move || match &asked {
        TrackKey::Id(id) => store.track(*id),
        TrackKey::Path(path) => store.track_by_path(&path.display().to_string()),
        TrackKey::None => Ok(None),
    })
    .await?;
    found.ok_or(EngineError::TrackNotFound(key))
}

/// Library tracks by id, in order, `None` for an id the library no longer has.
pub async fn stored_tracks(store: &Arc<Store>, ids: Vec<i64>) -> Result<Vec<Option<TrackRecord>>, EngineError> {
    let store = store.clone();
    read_store("reading tracks", move || ids.into_iter().map(|id| store.track(id)).collect()).await
}

/// Catch up with whatever changed while the daemon was down, then follow the roots; the
/// watcher, when the roots are watched.
fn follow_library(settings: &Settings, scanner: &Arc<Scanner>) -> Option<LibraryWatcher> {
    let library = &settings.library;
    if library.roots.is_empty() {
        return None;
    }
    let watcher = if library.watch {
        let debounce = std::time::Duration::from_millis(library.debounce_ms);
        let settle = std::time::Duration::from_millis(library.settle_ms);
        LibraryWatcher::start(scanner.clone(), debounce, settle)
            .map_err(|error| tracing::warn!("cannot watch the library ({error}); changes are seen by scans only"))
            .ok()
    } else {
        None
    };
    let scanner = scanner.clone();
    tokio::spawn(async move {
        let (progress, _keep_alive) = tokio::sync::watch::channel(Default::default());
        if let Err(error) = scanner.scan(Vec::new(), false, progress).await {
            tracing::error!("catching up with the library: {error}");
        }
    });
    watcher
}

/// The models a library analysis runs: `None` (every loaded model) when `names` is empty, else
/// the names and each head's upstream. A head's upstream runs anyway to feed it; storing its
/// predictions too costs a row, and lets it serve recommendations as a space. Names not loaded
/// are left out ([`Engine::start`] refuses them first).
pub fn library_models(names: &[String], catalog: &ModelCatalog) -> Option<Vec<String>> {
    if names.is_empty() {
        return None;
    }
    let mut models: Vec<String> = Vec::new();
    for spec in names.iter().filter_map(|name| catalog.get(name)) {
        for name in spec.upstream().into_iter().chain([spec.name()]) {
            if !models.iter().any(|m| m == name) {
                models.push(name.to_string());
            }
        }
    }
    Some(models)
}

/// The models the library runs and keeps (`library.models` with their upstreams; `None`: every
/// loaded model), and their versions.
fn library_versions(
    names: &[String],
    catalog: &ModelCatalog,
    registry: &PluginRegistry,
) -> (Option<Vec<String>>, Vec<ModelVersion>) {
    let models = library_models(names, catalog);
    let versions = model_versions(catalog, registry)
        .into_iter()
        .filter(|v| models.as_ref().is_none_or(|names| names.contains(&v.model)))
        .collect();
    (models, versions)
}

/// Each model's version as stored with its predictions: the manifest version and the model
/// file's digest; and its feature plugin, that plugin's version and its parameters. A head's
/// "features" are its upstream model's version, so a new upstream re-runs the head too.
fn model_versions(catalog: &ModelCatalog, registry: &PluginRegistry) -> Vec<ModelVersion> {
    let own = |spec: &crate::models::ModelSpec| {
        let manifest = &spec.folder.manifest;
        format!("{}+{}", manifest.version, &manifest.model.sha256[..12.min(manifest.model.sha256.len())])
    };
    catalog
        .models
        .iter()
        .map(|spec| {
            let feature_version = match (spec.features(), spec.upstream()) {
                (Some(features), _) => {
                    let plugin_version = registry
                        .get(PluginKind::Feature, &features.plugin)
                        .map(|p| p.version.clone())
                        .unwrap_or_default();
                    format!(
                        "{}-{} {} segment_seconds={}",
                        features.plugin,
                        plugin_version,
                        spec.folder.feature_params(),
                        features.segment_seconds
                    )
                }
                (None, upstream) => {
                    let upstream = upstream.unwrap_or_default();
                    format!("head over {upstream} {}", catalog.get(upstream).map(own).unwrap_or_default())
                }
            };
            ModelVersion { model: spec.name().to_string(), model_version: own(spec), feature_version }
        })
        .collect()
}
