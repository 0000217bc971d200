//! `model.toml`: the manifest of a model folder (see `plugins/models/README.md`).
//!
//! Parsing is strict (unknown keys are errors, so a typo cannot silently fall back to a
//! default) and every error names the folder, so one bad model is easy to find among many.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

pub const MANIFEST_FILE: &str = "model.toml";

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Unique model name, used in predictions.
    pub name: String,
    /// Bumped when the weights change, so stored results can be recomputed.
    pub version: String,
    #[serde(default)]
    pub description: String,
    pub features: FeatureSpec,
    pub model: ModelSpec,
}

/// How the model's input is made.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureSpec {
    /// Feature plugin name, e.g. "mel".
    pub plugin: String,
    /// Its configuration, passed to it as JSON.
    #[serde(default)]
    pub params: toml::Table,
    /// Length of the segments the model sees.
    pub segment_seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Classifier plugin that runs the file; by default "onnx" for `.onnx` files.
    pub plugin: Option<String>,
    pub file: String,
    pub sha256: String,
    /// Input tensor name, `[batch, n_features, frames]`.
    #[serde(default = "default_input")]
    pub input: String,
    #[serde(default = "default_probabilities")]
    pub probabilities: String,
    #[serde(default = "default_embedding")]
    pub embedding: String,
    pub embedding_size: usize,
    pub labels: Vec<String>,
}

fn default_input() -> String {
    "mel".into()
}
fn default_probabilities() -> String {
    "probabilities".into()
}
fn default_embedding() -> String {
    "embedding".into()
}

/// A manifest and the folder it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelFolder {
    pub dir: PathBuf,
    pub manifest: Manifest,
}

#[derive(Debug, thiserror::Error)]
#[error("model folder {}: {problem}", dir.display())]
pub struct ManifestError {
    pub dir: PathBuf,
    pub problem: Problem,
}

#[derive(Debug, thiserror::Error)]
pub enum Problem {
    #[error("cannot read {MANIFEST_FILE}: {0}")]
    Unreadable(std::io::Error),
    #[error("{MANIFEST_FILE} is malformed: {0}")]
    Malformed(String),
    #[error("{0}")]
    Invalid(String),
    #[error("cannot read the model file {file}: {source}")]
    ModelUnreadable { file: String, source: std::io::Error },
    #[error("the model file {file} has sha256 {actual}, but {MANIFEST_FILE} says {expected}: the file was changed or corrupted")]
    Checksum { file: String, expected: String, actual: String },
}

impl ModelFolder {
    /// Read and validate `dir/model.toml`, and check the model file's sha256.
    pub fn open(dir: &Path) -> Result<Self, ManifestError> {
        let fail = |problem| ManifestError { dir: dir.to_path_buf(), problem };
        let text = std::fs::read_to_string(dir.join(MANIFEST_FILE)).map_err(|e| fail(Problem::Unreadable(e)))?;
        let manifest = Manifest::parse(&text).map_err(fail)?;
        let folder = ModelFolder { dir: dir.to_path_buf(), manifest };
        let file = &folder.manifest.model.file;
        let actual = sha256_file(&folder.model_path())
            .map_err(|source| fail(Problem::ModelUnreadable { file: file.clone(), source }))?;
        let expected = folder.manifest.model.sha256.to_ascii_lowercase();
        if actual != expected {
            return Err(fail(Problem::Checksum { file: file.clone(), expected, actual }));
        }
        Ok(folder)
    }

    pub fn model_path(&self) -> PathBuf {
        self.dir.join(&self.manifest.model.file)
    }

    /// The classifier plugin that runs this model.
    pub fn plugin(&self) -> &str {
        self.manifest.model.plugin.as_deref().unwrap_or("onnx")
    }

    /// The feature plugin's configuration as JSON.
    pub fn feature_params(&self) -> serde_json::Value {
        serde_json::to_value(&self.manifest.features.params).unwrap_or_default()
    }
}

impl Manifest {
    /// Parse and validate the text of a `model.toml`; the model file itself is not read.
    pub fn parse(text: &str) -> Result<Manifest, Problem> {
        let manifest: Manifest = toml::from_str(text).map_err(|e| Problem::Malformed(e.message().to_string()))?;
        manifest.validate().map_err(Problem::Invalid)?;
        Ok(manifest)
    }

    fn validate(&self) -> Result<(), String> {
        let name_ok = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !name_ok(&self.name) {
            return Err(format!("name {:?} must be non-empty ASCII letters, digits, '-', '_' or '.'", self.name));
        }
        let model = &self.model;
        if model.labels.is_empty() {
            return Err("[model] labels is empty: the model needs its class names, in output order".into());
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(dup) = model.labels.iter().find(|l| !seen.insert(l.as_str())) {
            return Err(format!("[model] labels lists {dup:?} twice"));
        }
        if model.embedding_size == 0 {
            return Err("[model] embedding_size must be positive".into());
        }
        if model.file.is_empty() || model.file.contains('/') || model.file.contains("..") {
            return Err(format!("[model] file {:?} must be a file name inside the folder", model.file));
        }
        if model.sha256.len() != 64 || !model.sha256.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!("[model] sha256 {:?} is not 64 hex digits", model.sha256));
        }
        if !(self.features.segment_seconds > 0.0 && self.features.segment_seconds <= 600.0) {
            return Err(format!("[features] segment_seconds {} must be in (0, 600]", self.features.segment_seconds));
        }
        if let Some(key) = non_finite(&self.features.params) {
            // JSON would turn it into null, which a plugin reads as "not set": a silent default.
            return Err(format!("[features] params.{key} must be a finite number (the plugin gets its params as JSON)"));
        }
        Ok(())
    }
}

/// The key of the first NaN or infinity in `params`, which JSON cannot carry.
fn non_finite(params: &toml::Table) -> Option<String> {
    fn find(value: &toml::Value, key: String) -> Option<String> {
        match value {
            toml::Value::Float(x) if !x.is_finite() => Some(key),
            toml::Value::Array(items) => items.iter().enumerate().find_map(|(i, v)| find(v, format!("{key}[{i}]"))),
            toml::Value::Table(table) => table.iter().find_map(|(k, v)| find(v, format!("{key}.{k}"))),
            _ => None,
        }
    }
    params.iter().find_map(|(k, v)| find(v, k.clone()))
}

/// Lower-case hex sha256 of a file, streamed.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hasher.finalize().iter().fold(String::with_capacity(64), |mut hex, byte| {
        use fmt::Write;
        let _ = write!(hex, "{byte:02x}");
        hex
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(manifest: &str, model: &[u8]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("model.onnx"), model).expect("write");
        std::fs::write(dir.path().join(MANIFEST_FILE), manifest).expect("write");
        dir
    }

    fn manifest(sha: &str, labels: &str) -> String {
        format!(
            "name = \"cnn\"\nversion = \"1.0.0\"\n[features]\nplugin = \"mel\"\nparams = {{ n_mels = 128 }}\nsegment_seconds = 3.0\n\
             [model]\nfile = \"model.onnx\"\nsha256 = \"{sha}\"\nembedding_size = 8\nlabels = {labels}\n"
        )
    }

    const HELLO_SHA: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    #[test]
    fn a_good_folder_opens_with_defaults() {
        let dir = folder(&manifest(HELLO_SHA, "[\"jazz\", \"rock\"]"), b"hello");
        let folder = ModelFolder::open(dir.path()).expect("opens");
        assert_eq!(folder.plugin(), "onnx");
        assert_eq!(folder.manifest.model.probabilities, "probabilities");
        assert_eq!(folder.feature_params(), serde_json::json!({ "n_mels": 128 }));
    }

    #[test]
    fn a_wrong_checksum_is_refused_naming_the_folder() {
        let dir = folder(&manifest(&"0".repeat(64), "[\"jazz\"]"), b"hello");
        let error = ModelFolder::open(dir.path()).expect_err("checksum");
        let message = error.to_string();
        assert!(message.contains(&dir.path().display().to_string()) && message.contains(HELLO_SHA), "{message}");
    }

    #[test]
    fn missing_or_duplicate_labels_are_refused() {
        let dir = folder(&manifest(HELLO_SHA, "[]"), b"hello");
        assert!(ModelFolder::open(dir.path()).expect_err("empty").to_string().contains("labels is empty"));
        let dir = folder(&manifest(HELLO_SHA, "[\"a\", \"a\"]"), b"hello");
        assert!(ModelFolder::open(dir.path()).expect_err("dup").to_string().contains("twice"));
        let dir = folder(&manifest(HELLO_SHA, "[\"a\"]").replace("labels = [\"a\"]\n", ""), b"hello");
        assert!(ModelFolder::open(dir.path()).expect_err("absent").to_string().contains("labels"));
    }

    /// Found by fuzzing (fuzz/README.md): `fmax = nan` became JSON null, which the mel plugin
    /// took for "not set" and replaced with its default instead of refusing it.
    #[test]
    fn non_finite_feature_params_are_refused() {
        for (params, key) in [("fmax = nan", "fmax"), ("top_db = inf", "top_db"), ("x = { y = [1.0, -inf] }", "x.y[1]")] {
            let text = manifest(HELLO_SHA, "[\"a\"]").replace("n_mels = 128", params);
            let error = Manifest::parse(&text).expect_err(params).to_string();
            assert!(error.contains(&format!("params.{key} must be a finite number")), "{params}: {error}");
        }
        assert!(Manifest::parse(&manifest(HELLO_SHA, "[\"a\"]").replace("n_mels = 128", "fmax = 8000.0")).is_ok());
    }

    #[test]
    fn unknown_keys_are_errors() {
        let text = manifest(HELLO_SHA, "[\"a\"]").replace("embedding_size", "embeding_size");
        let dir = folder(&text, b"hello");
        assert!(ModelFolder::open(dir.path()).expect_err("typo").to_string().contains("embeding_size"));
    }
}
