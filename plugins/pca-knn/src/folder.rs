//! Model folders: the model file plus `model.toml` (see `plugins/models/README.md`).

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::file::{write_atomically, ModelError};
use crate::model::Model;

/// The manifest's file name inside a model folder.
pub const MANIFEST_FILE: &str = "model.toml";
/// The model file's name in folders that [`write_model_folder`] writes.
pub const MODEL_FILE: &str = "model.knn";
/// The plugin name a pca-knn manifest gives in `[model] plugin`.
pub const PLUGIN_NAME: &str = "pca-knn";
/// A manifest is a few hundred bytes; anything past this is not one.
const MAX_MANIFEST_BYTES: u64 = 1 << 20;

/// `model.toml`, the parts this plugin reads and writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Unique model name, used in predictions.
    pub name: String,
    /// Bumped when the model changes, so the library re-analyses.
    pub version: String,
    #[serde(default)]
    pub description: String,
    pub features: FeatureSpec,
    pub model: ModelSection,
}

/// `[features]`: how the daemon must make the input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureSpec {
    /// Feature plugin name, e.g. `"mel"`.
    pub plugin: String,
    /// Segment length in seconds; the last segment of a track is zero-padded.
    pub segment_seconds: f64,
    /// The feature plugin's parameters.
    #[serde(default)]
    pub params: toml::Table,
}

/// `[model]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSection {
    /// The classifier plugin that runs the folder: [`PLUGIN_NAME`]. The daemon's catalogue
    /// takes a folder without it for an ONNX model, so [`write_model_folder`] always writes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    /// The model file, relative to the folder.
    pub file: String,
    /// Lower-case hex SHA-256 of the model file.
    pub sha256: String,
    pub embedding_size: usize,
    pub labels: Vec<String>,
}

impl FeatureSpec {
    /// A spec from JSON parameters (as the daemon's `--params` takes them). JSON `null`s are
    /// left out, since TOML has no null and an absent key means the plugin's default.
    pub fn from_json(plugin: &str, params: &serde_json::Value, segment_seconds: f64) -> Result<Self, String> {
        let params = match json_to_toml(params)? {
            Some(toml::Value::Table(table)) => table,
            None => toml::Table::new(),
            Some(_) => return Err("feature params must be a JSON object".to_string()),
        };
        Ok(FeatureSpec { plugin: plugin.to_string(), segment_seconds, params })
    }
}

fn json_to_toml(value: &serde_json::Value) -> Result<Option<toml::Value>, String> {
    use serde_json::Value as J;
    Ok(Some(match value {
        J::Null => return Ok(None),
        J::Bool(b) => toml::Value::Boolean(*b),
        J::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => toml::Value::Integer(i),
            (None, Some(f)) => toml::Value::Float(f),
            (None, None) => return Err(format!("number {n} does not fit TOML")),
        },
        J::String(s) => toml::Value::String(s.clone()),
        J::Array(items) => toml::Value::Array(
            items
                .iter()
                .map(|item| json_to_toml(item)?.ok_or_else(|| "TOML arrays cannot hold null".to_string()))
                .collect::<Result<_, _>>()?,
        ),
        J::Object(map) => {
            let mut table = toml::Table::new();
            for (key, item) in map {
                if let Some(item) = json_to_toml(item)? {
                    table.insert(key.clone(), item);
                }
            }
            toml::Value::Table(table)
        }
    }))
}

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
    #[error("pca-knn model folder {}: cannot read {}", dir.display(), file.display())]
    Read {
        dir: PathBuf,
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("pca-knn model folder {}: cannot write {}", dir.display(), file.display())]
    Write {
        dir: PathBuf,
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
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
    /// The manifest's `[features]` table exactly as written, extra keys included, as JSON.
    pub features_json: serde_json::Value,
    pub model: Model,
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Write `model` into `dir` (created if missing) as [`MODEL_FILE`] plus a [`MANIFEST_FILE`]
/// that records its SHA-256, labels and embedding size. Both files are written atomically,
/// the manifest last, so a folder with a manifest always has the model it describes.
/// Returns the manifest as written.
pub fn write_model_folder(model: &Model, dir: &Path, spec: &FolderSpec<'_>) -> Result<Manifest, FolderError> {
    let write_error =
        |file: &Path, source| FolderError::Write { dir: dir.to_path_buf(), file: file.to_path_buf(), source };
    let invalid = |problem: String| FolderError::Invalid { dir: dir.to_path_buf(), problem };
    // The same rule as the daemon's manifest reader, so it never refuses a folder written here.
    let name_ok = !spec.name.is_empty() && spec.name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if !name_ok {
        return Err(invalid(format!(
            "model name {:?} must be non-empty ASCII letters, digits, '-', '_' or '.'",
            spec.name
        )));
    }
    if spec.version.trim().is_empty() {
        return Err(invalid("the model needs a non-empty version".to_string()));
    }
    if !(spec.features.segment_seconds.is_finite() && spec.features.segment_seconds > 0.0) {
        return Err(invalid(format!("segment_seconds {} must be positive", spec.features.segment_seconds)));
    }
    fs_err::create_dir_all(dir).map_err(|e| write_error(dir, e))?;
    let bytes = model.to_bytes();
    let model_path = dir.join(MODEL_FILE);
    write_atomically(&model_path, &bytes).map_err(|e| write_error(&model_path, e))?;
    let manifest = Manifest {
        name: spec.name.to_string(),
        version: spec.version.to_string(),
        description: spec.description.to_string(),
        features: spec.features.clone(),
        model: ModelSection {
            plugin: Some(PLUGIN_NAME.to_string()),
            file: MODEL_FILE.to_string(),
            sha256: sha256_hex(&bytes),
            embedding_size: model.n_components(),
            labels: model.labels().to_vec(),
        },
    };
    let text = toml::to_string(&manifest).map_err(|e| invalid(format!("cannot write the manifest as TOML: {e}")))?;
    let text = format!(
        "# A pca-knn model folder (standardise → PCA → kNN), read by the `pca-knn` plugin.\n\
         # `model.sha256` is checked at load: retrain rather than edit {MODEL_FILE}.\n{text}"
    );
    let manifest_path = dir.join(MANIFEST_FILE);
    write_atomically(&manifest_path, text.as_bytes()).map_err(|e| write_error(&manifest_path, e))?;
    Ok(manifest)
}

/// Read `dir/model.toml` and the model file it names, and check that they agree: SHA-256,
/// labels, embedding size, and (for mel features) the number of mel bands.
pub fn load_model_folder(dir: &Path) -> Result<LoadedFolder, FolderError> {
    let invalid = |problem: String| FolderError::Invalid { dir: dir.to_path_buf(), problem };
    let read_error =
        |file: &Path, source| FolderError::Read { dir: dir.to_path_buf(), file: file.to_path_buf(), source };
    let manifest_path = dir.join(MANIFEST_FILE);
    let size = std::fs::metadata(&manifest_path).map_err(|e| read_error(&manifest_path, e))?.len();
    if size > MAX_MANIFEST_BYTES {
        return Err(invalid(format!("{MANIFEST_FILE} is {size} bytes; a manifest is at most {MAX_MANIFEST_BYTES}")));
    }
    let text = std::fs::read_to_string(&manifest_path).map_err(|e| read_error(&manifest_path, e))?;
    let table: toml::Table = text.parse().map_err(|e| invalid(format!("{MANIFEST_FILE} is not valid TOML: {e}")))?;
    let features_json = table
        .get("features")
        .map(serde_json::to_value)
        .transpose()
        .map_err(|e| invalid(format!("[features] cannot be shown as JSON: {e}")))?
        .unwrap_or(serde_json::Value::Null);
    let manifest: Manifest = toml::Value::Table(table)
        .try_into()
        .map_err(|e| invalid(format!("{MANIFEST_FILE} does not describe a model: {e}")))?;
    let spec = &manifest.model;
    if let Some(plugin) = spec.plugin.as_deref().filter(|&p| p != PLUGIN_NAME) {
        return Err(invalid(format!("{MANIFEST_FILE} is for the {plugin:?} plugin, not {PLUGIN_NAME:?}")));
    }
    if !is_inside_folder(&spec.file) {
        return Err(invalid(format!("model.file {:?} must be a file name inside the folder", spec.file)));
    }
    let expected_sha = spec.sha256.trim().to_ascii_lowercase();
    if expected_sha.len() != 64 || !expected_sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid(format!("model.sha256 {:?} is not 64 hexadecimal digits", spec.sha256)));
    }
    let seconds = manifest.features.segment_seconds;
    if !(seconds.is_finite() && seconds > 0.0) {
        return Err(invalid(format!("features.segment_seconds {seconds} must be positive")));
    }
    let model_path = dir.join(&spec.file);
    let metadata = std::fs::metadata(&model_path).map_err(|e| read_error(&model_path, e))?;
    if metadata.len() > crate::file::MAX_MODEL_FILE_BYTES {
        return Err(FolderError::Model {
            dir: dir.to_path_buf(),
            source: ModelError::TooLarge {
                path: model_path,
                len: metadata.len(),
                max: crate::file::MAX_MODEL_FILE_BYTES,
            },
        });
    }
    // Hash and parse the same bytes, so the file cannot change between the two.
    let bytes = std::fs::read(&model_path).map_err(|e| read_error(&model_path, e))?;
    let actual_sha = sha256_hex(&bytes);
    if actual_sha != expected_sha {
        return Err(invalid(format!(
            "the SHA-256 of {} is {actual_sha}, but {MANIFEST_FILE} says {expected_sha}: the model file was replaced or damaged; restore it or retrain",
            spec.file
        )));
    }
    let model = Model::from_bytes(&bytes, &model_path)
        .map_err(|source| FolderError::Model { dir: dir.to_path_buf(), source })?;
    if spec.labels != model.labels() {
        return Err(invalid(format!(
            "{MANIFEST_FILE} lists labels {:?}, but {} has {:?}",
            spec.labels,
            spec.file,
            model.labels()
        )));
    }
    if spec.embedding_size != model.n_components() {
        return Err(invalid(format!(
            "{MANIFEST_FILE} says embedding_size {}, but {} has {} components",
            spec.embedding_size,
            spec.file,
            model.n_components()
        )));
    }
    if manifest.features.plugin == "mel" {
        if let Some(n_mels) = manifest.features.params.get("n_mels") {
            if n_mels.as_integer() != Some(model.n_features() as i64) {
                return Err(invalid(format!(
                    "features.params.n_mels is {n_mels}, but {} was trained on {} mel bands",
                    spec.file,
                    model.n_features()
                )));
            }
        }
    }
    Ok(LoadedFolder { dir: dir.to_path_buf(), manifest, features_json, model })
}

/// A relative path that stays inside the folder: no root, no `..`.
fn is_inside_folder(file: &str) -> bool {
    let path = Path::new(file);
    !file.is_empty()
        && path.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        && path.components().any(|c| matches!(c, Component::Normal(_)))
}
