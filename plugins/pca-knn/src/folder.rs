//! Model folders: the model file plus `model.toml` (see `plugins/models/README.md`), read and
//! written by `timbre-model-manifest`; here only what is particular to pca-knn.

use std::path::{Path, PathBuf};

use timbre_model_manifest::{FeatureSpec, Manifest, ManifestError, ModelFolder, ModelSpec};

use crate::file::{ModelError, MAX_MODEL_FILE_BYTES};
use crate::model::Model;

/// The model file's name in folders that [`write_model_folder`] writes.
pub const MODEL_FILE: &str = "model.knn";
/// The plugin name a pca-knn manifest gives in `[model] plugin`.
pub const PLUGIN_NAME: &str = "pca-knn";

/// What [`write_model_folder`] puts in the manifest besides what the model knows.
#[derive(Debug, Clone, PartialEq)]
pub struct FolderSpec<'a> {
    pub name: &'a str,
    pub version: &'a str,
    pub description: &'a str,
    pub features: FeatureSpec,
}

/// A model folder that was found wanting. Every message names the folder.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FolderError {
    /// What every model folder must be (the manifest crate's checks), or reading or writing it.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("pca-knn model folder {}: {problem}", dir.display())]
    Invalid { dir: PathBuf, problem: String },
    #[error("pca-knn model folder {}: its model file is unusable", dir.display())]
    Model {
        dir: PathBuf,
        #[source]
        source: ModelError,
    },
}

/// A folder that passed every check.
#[derive(Debug, Clone)]
pub struct LoadedFolder {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub model: Model,
}

/// Write `model` into `dir` (created if missing) as [`MODEL_FILE`] plus a `model.toml` that
/// records its SHA-256, labels and embedding size, both atomically, the manifest last.
/// Returns the manifest as written.
pub fn write_model_folder(model: &Model, dir: &Path, spec: &FolderSpec<'_>) -> Result<Manifest, FolderError> {
    let manifest = Manifest {
        name: spec.name.to_string(),
        version: spec.version.to_string(),
        description: spec.description.to_string(),
        features: Some(spec.features.clone()),
        input: None,
        model: ModelSpec {
            // The daemon's catalogue takes a folder without a plugin for an ONNX model.
            plugin: Some(PLUGIN_NAME.to_string()),
            file: MODEL_FILE.to_string(),
            embedding_size: model.n_components(),
            labels: model.labels().to_vec(),
            ..ModelSpec::default()
        },
    };
    let comment = format!(
        "A pca-knn model folder (standardise → PCA → kNN), read by the `pca-knn` plugin.\n\
         `model.sha256` is checked at load: retrain rather than edit {MODEL_FILE}."
    );
    Ok(ModelFolder::write(dir, manifest, &model.to_bytes(), &comment)?.manifest)
}

/// Read `dir/model.toml` and the model file it names, and check that they agree: SHA-256,
/// labels, embedding size, and (for mel features) the number of mel bands.
pub fn load_model_folder(dir: &Path) -> Result<LoadedFolder, FolderError> {
    let invalid = |problem: String| FolderError::Invalid { dir: dir.to_path_buf(), problem };
    let folder = ModelFolder::read_manifest(dir)?;
    if folder.plugin() != PLUGIN_NAME {
        return Err(invalid(format!("model.toml is for the {:?} plugin, not {PLUGIN_NAME:?}", folder.plugin())));
    }
    // Hash and parse the same bytes, so the file cannot change between the two.
    let bytes = folder.read_model(MAX_MODEL_FILE_BYTES)?;
    let model = Model::from_bytes(&bytes, &folder.model_path())
        .map_err(|source| FolderError::Model { dir: dir.to_path_buf(), source })?;
    let ModelFolder { dir, manifest } = folder;
    let spec = &manifest.model;
    if spec.labels != model.labels() {
        return Err(invalid(format!(
            "model.toml lists labels {:?}, but {} has {:?}",
            spec.labels,
            spec.file,
            model.labels()
        )));
    }
    if spec.embedding_size != model.n_components() {
        return Err(invalid(format!(
            "model.toml says embedding_size {}, but {} has {} components",
            spec.embedding_size,
            spec.file,
            model.n_components()
        )));
    }
    let Some(features) = &manifest.features else {
        return Err(invalid("model.toml has no [features]: pca-knn reads audio features, not another model".into()));
    };
    if features.plugin == "mel" {
        if let Some(n_mels) = features.params.get("n_mels") {
            if n_mels.as_integer() != Some(model.n_features() as i64) {
                return Err(invalid(format!(
                    "features.params.n_mels is {n_mels}, but {} was trained on {} mel bands",
                    spec.file,
                    model.n_features()
                )));
            }
        }
    }
    Ok(LoadedFolder { dir, manifest, model })
}
