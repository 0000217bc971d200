//! Model folders: finding them, resolving ONNX Runtime for them, and checking each one
//! once at start-up. A bad folder is refused with the reason; the other models still load.
//!
//! Search order for folders: `TIMBRE_MODEL_PATH` (colon-separated), then `--model-path`
//! (`models.paths`), then the installed models: `models/` next to the binary and
//! `$prefix/share/timbre/models` for a binary in `$prefix/bin`. Only when neither installed
//! folder exists (a binary run from its build), the `plugins/models/` of the source tree it
//! was built from, when that still exists.
//!
//! The classifier plugin named by a model's `[model] plugin` is configured from the host
//! settings below, each given when the plugin lists it under `config` in its metadata (a
//! plugin that lists nothing gets `model_dir` alone):
//!
//! | key | value |
//! |-----|-------|
//! | `model_dir` | the model folder (always given) |
//! | `runtime_library` | ONNX Runtime's shared library, see [`resolve_onnxruntime`]; a model whose plugin asks for it is refused when it is not found |
//! | `execution_provider` | `--execution-provider` (`auto`, `cpu`, `cuda`) |
//! | `intra_threads` | threads per model instance (`models.intra_threads`) |
//! | `graph_optimization` | ONNX Runtime's graph optimisation level: `disable`, `basic`, `extended` or `all` (`models.graph_optimization`) |
//!
//! Keys the plugin lists that the host does not know are left to the plugin's own defaults.

use std::path::{Path, PathBuf};

use std::collections::HashMap;
use std::sync::Arc;

use timbre_model_manifest::{FeatureSpec, ModelFolder, MANIFEST_FILE};

use crate::plugin_host::{PluginError, PluginInstance, PluginKind, PluginRegistry};

/// How classifier models are found and run.
#[derive(Debug, Clone)]
pub struct ModelOptions {
    /// Folders holding model folders (or model folders themselves).
    pub paths: Vec<PathBuf>,
    /// `libonnxruntime.so`; found automatically when `None`.
    pub onnxruntime: Option<PathBuf>,
    /// "auto", "cpu" or "cuda".
    pub execution_provider: String,
    pub intra_threads: usize,
    /// "disable", "basic", "extended" or "all".
    pub graph_optimization: String,
    /// Only these models, by name; all when empty.
    pub only: Vec<String>,
}

impl Default for ModelOptions {
    fn default() -> Self {
        ModelOptions {
            paths: Vec::new(),
            onnxruntime: None,
            execution_provider: "auto".into(),
            intra_threads: 1,
            graph_optimization: "all".into(),
            only: Vec::new(),
        }
    }
}

/// A model that passed its checks, and how to make an instance of it. A model reads audio
/// features ([`ModelSpec::features`]); a head reads another model's embedding
/// ([`ModelSpec::upstream`]).
#[derive(Debug, Clone)]
pub struct ModelSpec {
    pub folder: ModelFolder,
    pub plugin_config: serde_json::Value,
    /// What the first instance reported (labels, execution provider, …).
    pub info: serde_json::Value,
}

impl ModelSpec {
    pub fn name(&self) -> &str {
        &self.folder.manifest.name
    }

    /// How audio becomes this model's input; `None` for a head.
    pub fn features(&self) -> Option<&FeatureSpec> {
        self.folder.manifest.features.as_ref()
    }

    /// The model whose embedding this head reads; `None` for a model that reads audio.
    pub fn upstream(&self) -> Option<&str> {
        self.folder.manifest.input.as_ref().map(|input| input.model.as_str())
    }

    pub fn instantiate(&self, registry: &PluginRegistry) -> Result<PluginInstance, PluginError> {
        registry.instantiate(PluginKind::Classifier, self.folder.plugin(), &self.plugin_config)
    }
}

/// A model that reads audio, with its feature specification at hand.
#[derive(Debug, Clone)]
pub struct FeatureModel<'a> {
    pub spec: &'a ModelSpec,
    pub features: &'a FeatureSpec,
}

/// The models found (those that read audio first, heads after the models they read), and the
/// folders refused with their reasons.
#[derive(Debug, Default)]
pub struct ModelCatalog {
    pub models: Vec<ModelSpec>,
    pub refused: Vec<(PathBuf, String)>,
}

impl ModelCatalog {
    /// The models that read audio, each with its features.
    pub fn feature_models(&self) -> impl Iterator<Item = FeatureModel<'_>> {
        self.models.iter().filter_map(|spec| spec.features().map(|features| FeatureModel { spec, features }))
    }

    /// The heads, each after the model it reads.
    pub fn heads(&self) -> impl Iterator<Item = &ModelSpec> {
        self.models.iter().filter(|m| m.upstream().is_some())
    }

    pub fn get(&self, name: &str) -> Option<&ModelSpec> {
        self.models.iter().find(|m| m.name() == name)
    }
}

/// The catalogue a running daemon serves from, replaced whole when the model folders change
/// (`timbred serve` reloads on SIGHUP and when a model path changes). Readers take the
/// current one; workers compare [`SharedCatalog::generation`] with theirs before each job
/// and make their instances again when it moved.
#[derive(Debug)]
pub struct SharedCatalog {
    current: std::sync::RwLock<Arc<ModelCatalog>>,
    generation: std::sync::atomic::AtomicU64,
}

impl SharedCatalog {
    pub fn new(catalog: Arc<ModelCatalog>) -> Self {
        SharedCatalog { current: std::sync::RwLock::new(catalog), generation: 0.into() }
    }

    pub fn get(&self) -> Arc<ModelCatalog> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Bumped by every [`SharedCatalog::replace`].
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The same models with another list of refused folders: no worker needs new instances.
    pub fn replace_listing(&self, catalog: Arc<ModelCatalog>) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = catalog;
    }

    pub fn replace(&self, catalog: Arc<ModelCatalog>) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = catalog;
        self.generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// What changed between two catalogues, by model name.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CatalogChange {
    pub added: Vec<String>,
    /// Same name, another version or model file.
    pub replaced: Vec<String>,
    pub removed: Vec<String>,
    /// Folders refused now that were not refused before, with the reasons.
    pub refused: Vec<(PathBuf, String)>,
    /// Loaded models whose folder is now refused: the loaded version stays (a folder caught
    /// half-copied must not take a working model away).
    pub kept: Vec<String>,
}

impl CatalogChange {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.replaced.is_empty() && self.removed.is_empty()
    }
}

impl ModelCatalog {
    /// `fresh`, a new discovery, with `self`'s version of every model whose folder `fresh`
    /// refused; and what changed.
    pub fn merge_reload(&self, mut fresh: ModelCatalog) -> (ModelCatalog, CatalogChange) {
        let mut change = CatalogChange::default();
        let same_dir = |a: &Path, b: &Path| a == b || a.canonicalize().ok() == b.canonicalize().ok();
        for old in &self.models {
            if fresh.get(old.name()).is_some() {
                continue;
            }
            if fresh.refused.iter().any(|(dir, _)| same_dir(dir, &old.folder.dir)) {
                change.kept.push(old.name().to_string());
                // Models that read audio before heads, as discovery orders them.
                let at = if old.upstream().is_some() {
                    fresh.models.len()
                } else {
                    fresh.models.iter().position(|m| m.upstream().is_some()).unwrap_or(fresh.models.len())
                };
                fresh.models.insert(at, old.clone());
            } else {
                change.removed.push(old.name().to_string());
            }
        }
        for new in &fresh.models {
            match self.get(new.name()) {
                None => change.added.push(new.name().to_string()),
                Some(old) => {
                    let (a, b) = (&old.folder.manifest, &new.folder.manifest);
                    if a.version != b.version
                        || a.model.sha256 != b.model.sha256
                        || !same_dir(&old.folder.dir, &new.folder.dir)
                    {
                        change.replaced.push(new.name().to_string());
                    }
                }
            }
        }
        change.refused =
            fresh.refused.iter().filter(|r| !self.refused.iter().any(|o| o.0 == r.0 && o.1 == r.1)).cloned().collect();
        (fresh, change)
    }

    pub fn discover(registry: &PluginRegistry, options: &ModelOptions) -> Self {
        let mut catalog = ModelCatalog::default();
        let runtime = resolve_onnxruntime(options.onnxruntime.as_deref());
        let folders = model_folders(&search_path(&options.paths));
        // A head asked for by name brings the model it reads.
        let mut options = options.clone();
        let upstreams: Vec<String> = folders
            .iter()
            .filter_map(|dir| ModelFolder::read_manifest(dir).ok())
            .filter(|f| options.only.contains(&f.manifest.name))
            .filter_map(|f| f.manifest.input.map(|input| input.model))
            .collect();
        let asked = options.only.clone();
        options.only.extend(upstreams.into_iter().filter(|u| !asked.contains(u)));
        // Every head's upstream, to name cycles and heads over heads.
        let head_upstreams: HashMap<String, String> = folders
            .iter()
            .filter_map(|dir| ModelFolder::read_manifest(dir).ok())
            .filter_map(|f| f.manifest.input.map(|input| (f.manifest.name, input.model)))
            .collect();
        // Models that read audio first, then heads, so a head finds its upstream loaded.
        let (heads, models): (Vec<PathBuf>, Vec<PathBuf>) =
            folders.into_iter().partition(|dir| ModelFolder::read_manifest(dir).is_ok_and(|f| f.manifest.is_head()));
        for dir in models.into_iter().chain(heads) {
            let opened = open_model(registry, &dir, &runtime, &options).and_then(|spec| match spec {
                Some(spec) => catalog.check_head(&spec, &head_upstreams).map(|()| Some(spec)),
                None => Ok(None),
            });
            match opened {
                Ok(None) => {}
                Ok(Some(spec)) if catalog.models.iter().any(|m| m.name() == spec.name()) => {
                    catalog.refused.push((dir, format!("a model named '{}' is already loaded", spec.name())));
                }
                Ok(Some(spec)) => {
                    tracing::info!(model = spec.name(), provider = %spec.info["execution_provider"], "loaded model");
                    catalog.models.push(spec);
                }
                Err(reason) => {
                    tracing::warn!("model folder {} refused: {reason}", dir.display());
                    catalog.refused.push((dir, reason));
                }
            }
        }
        for name in &asked {
            if !catalog.models.iter().any(|m| m.name() == name) {
                catalog.refused.push((PathBuf::from(name), format!("no usable model named '{name}' was found")));
            }
        }
        catalog
    }

    /// A head must read a loaded model that reads audio, whose embedding has the size the head
    /// takes. Heads do not read heads (a head has no embedding), which also rules out cycles.
    fn check_head(&self, spec: &ModelSpec, head_upstreams: &HashMap<String, String>) -> Result<(), String> {
        let Some(upstream) = spec.upstream() else { return Ok(()) };
        let name = spec.name();
        if let Some(further) = head_upstreams.get(upstream) {
            return Err(if further == name {
                format!("heads '{name}' and '{upstream}' read each other: a cycle")
            } else {
                format!("head '{name}' reads '{upstream}', which is itself a head with no embedding")
            });
        }
        let Some(source) = self.get(upstream) else {
            return Err(format!("head '{name}' reads the embedding of '{upstream}', which is not loaded"));
        };
        let size = source.folder.manifest.model.embedding_size;
        let takes = spec.info.get("input_size").and_then(|v| v.as_u64()).map(|v| v as usize);
        if takes.is_some_and(|takes| takes != size) {
            return Err(format!(
                "head '{name}' takes embeddings of {} values, but '{upstream}' gives {size}",
                takes.unwrap_or_default()
            ));
        }
        Ok(())
    }
}

fn open_model(
    registry: &PluginRegistry,
    dir: &Path,
    runtime: &Result<PathBuf, String>,
    options: &ModelOptions,
) -> Result<Option<ModelSpec>, String> {
    let folder = ModelFolder::open(dir).map_err(|e| e.to_string())?;
    if !options.only.is_empty() && !options.only.contains(&folder.manifest.name) {
        return Ok(None); // not asked for: not instantiated either
    }
    let declared = registry.get(PluginKind::Classifier, folder.plugin()).ok().map(|p| p.metadata.clone());
    let plugin_config = plugin_config(declared.as_ref(), dir, runtime, options)?;
    let spec = ModelSpec { folder, plugin_config, info: serde_json::Value::Null };
    // One instance now, so a broken model is refused at start-up rather than per file.
    let instance = spec.instantiate(registry).map_err(|e| e.to_string())?;
    Ok(Some(ModelSpec { info: instance.info().clone(), ..spec }))
}

/// The host settings a classifier plugin asks for in its metadata's `config` (see the module
/// documentation); `model_dir` always.
fn plugin_config(
    metadata: Option<&serde_json::Value>,
    dir: &Path,
    runtime: &Result<PathBuf, String>,
    options: &ModelOptions,
) -> Result<serde_json::Value, String> {
    let mut config = serde_json::Map::new();
    config.insert("model_dir".into(), serde_json::json!(dir));
    let declared = metadata.and_then(|m| m.get("config")).and_then(|c| c.as_object());
    for key in declared.into_iter().flat_map(|c| c.keys()) {
        let value = match key.as_str() {
            "runtime_library" => serde_json::json!(runtime.as_ref().map_err(Clone::clone)?),
            "execution_provider" => serde_json::json!(options.execution_provider),
            "intra_threads" => serde_json::json!(options.intra_threads),
            "graph_optimization" => serde_json::json!(options.graph_optimization),
            _ => continue,
        };
        config.insert(key.clone(), value);
    }
    Ok(serde_json::Value::Object(config))
}

/// Where model folders are looked for, in order (see the module documentation).
pub fn search_path(configured: &[PathBuf]) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::env::var_os("TIMBRE_MODEL_PATH")
        .map(|v| std::env::split_paths(&v).filter(|p| !p.as_os_str().is_empty()).collect())
        .unwrap_or_default();
    paths.extend(configured.iter().cloned());
    let installed = installed_model_dirs();
    // A development convenience: `cargo run` and the tests find the shipped models in place.
    // An installed binary uses its installed models only, even where its build tree remains.
    let source_tree = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/models");
    if installed.is_empty() && source_tree.is_dir() && !paths.contains(&source_tree) {
        paths.push(source_tree);
    }
    paths.extend(installed);
    paths
}

/// Where an installed `timbred` finds the models shipped with it: `models/` beside the
/// binary, and `$prefix/share/timbre/models` when the binary is `$prefix/bin/timbred`.
pub fn installed_model_dirs() -> Vec<PathBuf> {
    let Some(bin) = std::env::current_exe().ok().and_then(|exe| exe.parent().map(Path::to_path_buf)) else {
        return Vec::new();
    };
    let mut dirs = vec![bin.join("models")];
    if let Some(prefix) = bin.parent() {
        dirs.push(prefix.join("share/timbre/models"));
    }
    dirs.into_iter().filter(|dir| dir.is_dir()).collect()
}

/// `libonnxruntime.so` installed with the binary, if there is one.
fn installed_onnxruntime() -> Option<PathBuf> {
    let bin = std::env::current_exe().ok()?.parent()?.to_path_buf();
    let mut candidates = vec![bin.join("libonnxruntime.so")];
    if let Some(prefix) = bin.parent() {
        candidates.push(prefix.join("lib/timbre/libonnxruntime.so"));
        candidates.push(prefix.join("lib/libonnxruntime.so"));
    }
    candidates.into_iter().find(|path| path.is_file())
}

/// Every folder holding a `model.toml`, one level deep, in a stable order.
fn model_folders(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for path in paths {
        if path.join(MANIFEST_FILE).is_file() {
            found.push(path.clone());
        } else if let Ok(entries) = std::fs::read_dir(path) {
            let mut dirs: Vec<PathBuf> =
                entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.join(MANIFEST_FILE).is_file()).collect();
            dirs.sort();
            found.extend(dirs);
        }
    }
    let mut seen = std::collections::HashSet::new();
    found.retain(|d| seen.insert(d.canonicalize().unwrap_or_else(|_| d.clone())));
    found
}

/// Where `libonnxruntime.so` is: the flag, `ORT_DYLIB_PATH`, then an installed one (beside
/// the binary, or `$prefix/lib/timbre/` or `$prefix/lib/` for a binary in `$prefix/bin`),
/// last the project-local `.onnxruntime/` of the source tree that `scripts/onnxruntime` fills.
pub fn resolve_onnxruntime(configured: Option<&Path>) -> Result<PathBuf, String> {
    let from_env = std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from);
    let local = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.onnxruntime/libonnxruntime.so");
    let (path, source) = match (configured, from_env, installed_onnxruntime()) {
        (Some(path), _, _) => (path.to_path_buf(), "--onnxruntime"),
        (None, Some(path), _) => (path, "ORT_DYLIB_PATH"),
        (None, None, Some(path)) => (path, "the installed library"),
        (None, None, None) => (local, "the project-local .onnxruntime/"),
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "ONNX Runtime was not found at {} (from {source}); run scripts/onnxruntime, or point ORT_DYLIB_PATH \
             or --onnxruntime at a libonnxruntime.so",
            path.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_classifier_plugin_gets_the_host_settings_its_metadata_lists_and_model_dir_always() {
        let options = ModelOptions {
            execution_provider: "cpu".into(),
            intra_threads: 3,
            graph_optimization: "basic".into(),
            ..ModelOptions::default()
        };
        let dir = Path::new("/models/cnn");
        let runtime: Result<PathBuf, String> = Ok(PathBuf::from("/lib/libonnxruntime.so"));
        let onnx_like = json!({ "config": {
            "model_dir": "required", "runtime_library": "required", "execution_provider": "auto|cpu|cuda",
            "intra_threads": 1, "graph_optimization": "disable|basic|extended|all", "its_own_knob": 7,
        }});
        assert_eq!(
            plugin_config(Some(&onnx_like), dir, &runtime, &options),
            Ok(json!({ "model_dir": dir, "runtime_library": "/lib/libonnxruntime.so", "execution_provider": "cpu",
                       "intra_threads": 3, "graph_optimization": "basic" })),
            "the plugin's own keys are left to its defaults"
        );
        let model_dir_only = json!({ "config": { "model_dir": "required" } });
        assert_eq!(plugin_config(Some(&model_dir_only), dir, &runtime, &options), Ok(json!({ "model_dir": dir })));
        assert_eq!(plugin_config(Some(&json!({})), dir, &runtime, &options), Ok(json!({ "model_dir": dir })));
        assert_eq!(plugin_config(None, dir, &runtime, &options), Ok(json!({ "model_dir": dir })));
        let missing: Result<PathBuf, String> = Err("ONNX Runtime was not found".into());
        assert_eq!(plugin_config(Some(&onnx_like), dir, &missing, &options), Err("ONNX Runtime was not found".into()));
        assert_eq!(plugin_config(Some(&model_dir_only), dir, &missing, &options), Ok(json!({ "model_dir": dir })));
    }
}
