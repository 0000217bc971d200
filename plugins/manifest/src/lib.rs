//! `model.toml`: the manifest of a model folder (see `plugins/models/README.md`), read and
//! written here and nowhere else.
//!
//! Parsing is strict (unknown keys are errors, so a typo cannot silently fall back to a
//! default) and every error names the folder, so one bad model is easy to find among many.
//! [`ModelFolder::write`] writes a folder that [`ModelFolder::open`] accepts: the model file and
//! its manifest, checksum included, each written atomically.

use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
/// The `toml` crate, for building [`FeatureSpec::params`].
pub use toml;

pub const MANIFEST_FILE: &str = "model.toml";
/// A manifest is a few hundred bytes; anything past this is not one.
pub const MAX_MANIFEST_BYTES: u64 = 1 << 20;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Unique model name, used in predictions.
    pub name: String,
    /// Bumped when the weights change, so stored results can be recomputed.
    pub version: String,
    #[serde(default)]
    pub description: String,
    /// How the model's input is made from audio. A head has [`Manifest::input`] instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<FeatureSpec>,
    /// A head's input: another model's output, not a feature plugin's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<InputSpec>,
    pub model: ModelSpec,
}

/// Where a head's input comes from: another model's output for the same track.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// The upstream model's name.
    pub model: String,
    /// Which of its outputs: `"embedding"` (its track embedding, the only one today).
    #[serde(default = "default_embedding")]
    pub output: String,
}

/// What a model reads: audio through a feature plugin, or another model's output.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Source<'a> {
    Features(&'a FeatureSpec),
    Upstream(&'a InputSpec),
}

/// How the model's input is made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureSpec {
    /// Feature plugin name, e.g. "mel".
    pub plugin: String,
    /// Length of the segments the model sees.
    pub segment_seconds: f64,
    /// How a segment the audio does not fill (a short track, a track's tail) is completed.
    #[serde(default, skip_serializing_if = "is_default")]
    pub padding: Padding,
    /// Its configuration, passed to it as JSON.
    #[serde(default)]
    pub params: toml::Table,
}

/// How a partial segment is completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Padding {
    /// With silence.
    #[default]
    Zeros,
    /// With the audio itself, repeated from its start (musicnn's "repeat-pad").
    Repeat,
}

/// What a model's probabilities are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputKind {
    /// Mutually exclusive classes (softmax): each row sums to 1, one answer per segment.
    #[default]
    Classes,
    /// Independent tags (a sigmoid each): any number may hold at once.
    Tags,
}

fn is_zero(value: &usize) -> bool {
    *value == 0
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Classifier plugin that runs the file; by default "onnx" for `.onnx` files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    /// `"classes"` (softmax, the default) or `"tags"` (independent sigmoids).
    #[serde(default, skip_serializing_if = "is_default")]
    pub kind: OutputKind,
    pub file: String,
    pub sha256: String,
    /// Input tensor name, `[batch, n_features, frames]`.
    #[serde(default = "default_input", skip_serializing_if = "is_default_input")]
    pub input: String,
    #[serde(default = "default_probabilities", skip_serializing_if = "is_default_probabilities")]
    pub probabilities: String,
    #[serde(default = "default_embedding", skip_serializing_if = "is_default_embedding")]
    pub embedding: String,
    /// Size of the embedding output; 0 (the default) for a head, which has none.
    #[serde(default, skip_serializing_if = "is_zero")]
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
fn is_default_input(name: &str) -> bool {
    name == default_input()
}
fn is_default_probabilities(name: &str) -> bool {
    name == default_probabilities()
}
fn is_default_embedding(name: &str) -> bool {
    name == default_embedding()
}

impl Default for ModelSpec {
    /// The default tensor names, and nothing else: fill in the file, labels and size.
    fn default() -> Self {
        ModelSpec {
            plugin: None,
            kind: OutputKind::Classes,
            file: String::new(),
            sha256: String::new(),
            input: default_input(),
            probabilities: default_probabilities(),
            embedding: default_embedding(),
            embedding_size: 0,
            labels: Vec::new(),
        }
    }
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
        Ok(FeatureSpec { plugin: plugin.to_string(), segment_seconds, padding: Padding::Zeros, params })
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
    #[error("{MANIFEST_FILE} is {0} bytes; a manifest is at most {MAX_MANIFEST_BYTES}")]
    TooLarge(u64),
    #[error("{MANIFEST_FILE} is malformed: {0}")]
    Malformed(String),
    #[error("{0}")]
    Invalid(String),
    #[error("cannot read the model file {file}: {source}")]
    ModelUnreadable { file: String, source: std::io::Error },
    #[error("the model file {file} is {len} bytes, more than the {max} allowed")]
    ModelTooLarge { file: String, len: u64, max: u64 },
    #[error("the model file {file} has sha256 {actual}, but {MANIFEST_FILE} says {expected}: the file was changed or corrupted")]
    Checksum { file: String, expected: String, actual: String },
    #[error("cannot write {file}: {source}")]
    Unwritable { file: String, source: std::io::Error },
}

impl ModelFolder {
    /// Read and validate `dir/model.toml`, and check the model file's sha256.
    pub fn open(dir: &Path) -> Result<Self, ManifestError> {
        let folder = ModelFolder::read_manifest(dir)?;
        let file = folder.manifest.model.file.clone();
        let actual = sha256_file(&folder.model_path())
            .map_err(|source| folder.fail(Problem::ModelUnreadable { file, source }))?;
        folder.check_sha256(actual)?;
        Ok(folder)
    }

    /// Read and validate `dir/model.toml` alone; the model file is not looked at. For a
    /// plugin that reads the model's bytes once, with [`ModelFolder::read_model`].
    pub fn read_manifest(dir: &Path) -> Result<Self, ManifestError> {
        let fail = |problem| ManifestError { dir: dir.to_path_buf(), problem };
        let text = match read_capped(&dir.join(MANIFEST_FILE), MAX_MANIFEST_BYTES) {
            Ok(Capped::Bytes(bytes)) => bytes,
            Ok(Capped::TooLarge(len)) => return Err(fail(Problem::TooLarge(len))),
            Err(error) => return Err(fail(Problem::Unreadable(error))),
        };
        let text = String::from_utf8(text).map_err(|e| fail(Problem::Malformed(e.to_string())))?;
        let manifest = Manifest::parse(&text).map_err(fail)?;
        Ok(ModelFolder { dir: dir.to_path_buf(), manifest })
    }

    /// The model file's bytes, at most `max_bytes` of them, checked against the manifest's
    /// sha256: the bytes hashed are the bytes returned, so the file cannot change in between.
    pub fn read_model(&self, max_bytes: u64) -> Result<Vec<u8>, ManifestError> {
        let file = self.manifest.model.file.clone();
        let bytes = match read_capped(&self.model_path(), max_bytes) {
            Ok(Capped::Bytes(bytes)) => bytes,
            Ok(Capped::TooLarge(len)) => return Err(self.fail(Problem::ModelTooLarge { file, len, max: max_bytes })),
            Err(source) => return Err(self.fail(Problem::ModelUnreadable { file, source })),
        };
        self.check_sha256(sha256_hex(&bytes))?;
        Ok(bytes)
    }

    /// Write a model folder: `model` as `dir/<manifest.model.file>`, then `manifest` as
    /// `dir/model.toml` with its sha256 set to the model's, after `comment` (each line turned
    /// into a `#` line). `dir` is created if missing. Both files are written atomically, the
    /// manifest last, so a folder with a manifest always has the model it describes. The
    /// manifest is validated first, so nothing is written that [`ModelFolder::open`] would refuse.
    pub fn write(dir: &Path, mut manifest: Manifest, model: &[u8], comment: &str) -> Result<Self, ManifestError> {
        let fail = |problem| ManifestError { dir: dir.to_path_buf(), problem };
        manifest.model.sha256 = sha256_hex(model);
        manifest.validate().map_err(|reason| fail(Problem::Invalid(reason)))?;
        let toml = manifest.to_toml().map_err(|e| fail(Problem::Invalid(format!("not writable as TOML: {e}"))))?;
        let mut text: String = comment
            .lines()
            .map(|line| if line.is_empty() { "#\n".to_string() } else { format!("# {line}\n") })
            .collect();
        text.push_str(&toml);
        let unwritable = |file: &str, source| fail(Problem::Unwritable { file: file.to_string(), source });
        fs_err::create_dir_all(dir).map_err(|e| unwritable("the folder", e))?;
        let file = &manifest.model.file;
        write_atomically(&dir.join(file), model).map_err(|e| unwritable(file, e))?;
        write_atomically(&dir.join(MANIFEST_FILE), text.as_bytes()).map_err(|e| unwritable(MANIFEST_FILE, e))?;
        Ok(ModelFolder { dir: dir.to_path_buf(), manifest })
    }

    pub fn model_path(&self) -> PathBuf {
        self.dir.join(&self.manifest.model.file)
    }

    /// The classifier plugin that runs this model.
    pub fn plugin(&self) -> &str {
        self.manifest.model.plugin.as_deref().unwrap_or("onnx")
    }

    /// The feature plugin's configuration as JSON (nothing, for a head).
    pub fn feature_params(&self) -> serde_json::Value {
        self.manifest.features.as_ref().map(|f| serde_json::to_value(&f.params).unwrap_or_default()).unwrap_or_default()
    }

    fn fail(&self, problem: Problem) -> ManifestError {
        ManifestError { dir: self.dir.clone(), problem }
    }

    fn check_sha256(&self, actual: String) -> Result<(), ManifestError> {
        let expected = self.manifest.model.sha256.to_ascii_lowercase();
        if actual != expected {
            return Err(self.fail(Problem::Checksum { file: self.manifest.model.file.clone(), expected, actual }));
        }
        Ok(())
    }
}

impl Manifest {
    /// Parse and validate the text of a `model.toml`; the model file itself is not read.
    pub fn parse(text: &str) -> Result<Manifest, Problem> {
        let manifest: Manifest = toml::from_str(text).map_err(|e| Problem::Malformed(e.message().to_string()))?;
        manifest.validate().map_err(Problem::Invalid)?;
        Ok(manifest)
    }

    /// The manifest as `model.toml` text; [`ModelFolder::read_manifest`] reads it back equal.
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string(self)
    }

    /// Every rule a manifest must follow, whichever plugin runs it.
    pub fn validate(&self) -> Result<(), String> {
        let name_ok = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !name_ok(&self.name) {
            return Err(format!("name {:?} must be non-empty ASCII letters, digits, '-', '_' or '.'", self.name));
        }
        if self.version.trim().is_empty() {
            return Err("version is empty: the daemon re-analyses a library when a model's version changes".into());
        }
        let model = &self.model;
        if model.labels.is_empty() {
            return Err("[model] labels is empty: the model needs its class names, in output order".into());
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(dup) = model.labels.iter().find(|l| !seen.insert(l.as_str())) {
            return Err(format!("[model] labels lists {dup:?} twice"));
        }
        let source = self.source()?;
        match source {
            Source::Features(_) if model.embedding_size == 0 => {
                return Err("[model] embedding_size must be positive".into());
            }
            Source::Upstream(_) if model.embedding_size != 0 => {
                return Err("[model] embedding_size must be 0 (or left out) for a head: a head gives labels, not an embedding".into());
            }
            _ => {}
        }
        if model.file.is_empty() || model.file.contains('/') || model.file.contains("..") || model.file == MANIFEST_FILE
        {
            return Err(format!("[model] file {:?} must be a file name inside the folder", model.file));
        }
        if model.sha256.len() != 64 || !model.sha256.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!("[model] sha256 {:?} is not 64 hex digits", model.sha256));
        }
        match source {
            Source::Features(features) => {
                if !(features.segment_seconds > 0.0 && features.segment_seconds <= 600.0) {
                    return Err(format!("[features] segment_seconds {} must be in (0, 600]", features.segment_seconds));
                }
                if let Some(key) = non_finite(&features.params) {
                    // JSON would turn it into null, which a plugin reads as "not set": a silent default.
                    return Err(format!(
                        "[features] params.{key} must be a finite number (the plugin gets its params as JSON)"
                    ));
                }
            }
            Source::Upstream(input) => {
                if !name_ok(&input.model) {
                    return Err(format!("[input] model {:?} is not a model name", input.model));
                }
                if input.model == self.name {
                    return Err(format!("[input] model {:?} is this model itself", input.model));
                }
                if input.output != "embedding" {
                    return Err(format!("[input] output {:?}: a head reads its upstream's \"embedding\"", input.output));
                }
            }
        }
        Ok(())
    }

    /// What the model reads. Exactly one of `[features]` and `[input]` is given.
    pub fn source(&self) -> Result<Source<'_>, String> {
        match (&self.features, &self.input) {
            (Some(features), None) => Ok(Source::Features(features)),
            (None, Some(input)) => Ok(Source::Upstream(input)),
            (Some(_), Some(_)) => Err("both [features] and [input]: a model reads audio features, a head another model's output; not both".into()),
            (None, None) => Err("neither [features] (how audio becomes the model's input) nor [input] (the model a head reads)".into()),
        }
    }

    /// Whether this is a head (its input is another model's output).
    pub fn is_head(&self) -> bool {
        self.input.is_some()
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
    Ok(hex(&hasher.finalize()))
}

/// Lower-case hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(digest: &[u8]) -> String {
    digest.iter().fold(String::with_capacity(2 * digest.len()), |mut hex, byte| {
        use fmt::Write;
        let _ = write!(hex, "{byte:02x}");
        hex
    })
}

enum Capped {
    Bytes(Vec<u8>),
    /// The file's length, over the limit.
    TooLarge(u64),
}

/// The file's bytes, unless it holds more than `max` (read no further than that, even if the
/// file grows meanwhile).
fn read_capped(path: &Path, max: u64) -> std::io::Result<Capped> {
    let file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    if len > max {
        return Ok(Capped::TooLarge(len));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Ok(Capped::TooLarge(bytes.len() as u64));
    }
    Ok(Capped::Bytes(bytes))
}

/// Write `bytes` to a temporary file beside `path`, flush it to disk, then rename it over `path`,
/// so a crash never leaves half a file behind.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temporary = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = fs_err::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs_err::rename(&temporary, path)
    })();
    if result.is_err() {
        let _ = fs_err::remove_file(&temporary);
    }
    result
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

    fn written(name: &str) -> Manifest {
        let params = serde_json::json!({ "sample_rate": 22050, "n_mels": 64, "fmax": null, "window": "hann" });
        Manifest {
            name: name.into(),
            version: "2.0.0".into(),
            description: "a test model".into(),
            features: Some(FeatureSpec::from_json("mel", &params, 3.0).expect("params")),
            input: None,
            model: ModelSpec {
                plugin: Some("pca-knn".into()),
                file: "model.knn".into(),
                embedding_size: 4,
                labels: vec!["jazz".into(), "rock".into()],
                ..ModelSpec::default()
            },
        }
    }

    #[test]
    fn a_written_folder_reads_back_equal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let folder =
            ModelFolder::write(dir.path(), written("knn"), b"hello", "A test folder.\n\nRetrain it.").expect("writes");
        assert_eq!(folder.manifest.model.sha256, HELLO_SHA);
        let opened = ModelFolder::open(dir.path()).expect("the reader accepts what the writer wrote");
        assert_eq!(opened, folder);
        assert_eq!(
            opened.manifest,
            Manifest { model: ModelSpec { sha256: HELLO_SHA.into(), ..written("knn").model }, ..written("knn") }
        );
        assert_eq!(opened.plugin(), "pca-knn");
        assert_eq!(
            opened.feature_params(),
            serde_json::json!({ "sample_rate": 22050, "n_mels": 64, "window": "hann" })
        );
        assert_eq!(opened.read_model(5).expect("model bytes"), b"hello");

        let text = std::fs::read_to_string(dir.path().join(MANIFEST_FILE)).expect("manifest");
        assert!(text.starts_with("# A test folder.\n#\n# Retrain it.\nname = \"knn\"\n"), "{text}");
        // Default tensor names and an absent plugin are left out; JSON nulls have no TOML form.
        assert!(!text.contains("input") && !text.contains("probabilities") && !text.contains("fmax"), "{text}");
        assert_eq!(std::fs::read(dir.path().join("model.knn")).expect("model"), b"hello");
    }

    #[test]
    fn tensor_names_and_the_default_plugin_round_trip_too() {
        let mut manifest = written("cnn");
        manifest.model = ModelSpec { plugin: None, file: "model.onnx".into(), input: "x".into(), ..manifest.model };
        let dir = tempfile::tempdir().expect("tempdir");
        ModelFolder::write(dir.path(), manifest.clone(), b"hello", "").expect("writes");
        let opened = ModelFolder::open(dir.path()).expect("opens");
        assert_eq!((opened.plugin(), opened.manifest.model.input.as_str()), ("onnx", "x"));
        assert_eq!(opened.manifest.model.probabilities, "probabilities");
        let text = std::fs::read_to_string(dir.path().join(MANIFEST_FILE)).expect("manifest");
        assert!(
            text.starts_with("name = ") && text.contains("input = \"x\"") && !text.contains("plugin = \"onnx\""),
            "{text}"
        );
    }

    #[test]
    fn the_writer_refuses_what_the_reader_would_and_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let error = ModelFolder::write(dir.path(), written("pca knn"), b"hello", "").expect_err("bad name");
        assert!(
            error.to_string().contains("name \"pca knn\"")
                && error.to_string().contains(&dir.path().display().to_string())
        );
        let mut no_labels = written("knn");
        no_labels.model.labels.clear();
        assert!(ModelFolder::write(dir.path(), no_labels, b"hello", "").is_err());
        let mut no_version = written("knn");
        no_version.version = " ".into();
        assert!(ModelFolder::write(dir.path(), no_version, b"hello", "")
            .expect_err("version")
            .to_string()
            .contains("version"));
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0, "nothing written");
    }

    #[test]
    fn read_model_checks_the_bytes_it_returns() {
        let dir = tempfile::tempdir().expect("tempdir");
        let folder = ModelFolder::write(dir.path(), written("knn"), b"hello", "").expect("writes");
        let error = folder.read_model(4).expect_err("over the limit");
        assert!(matches!(error.problem, Problem::ModelTooLarge { len: 5, max: 4, .. }), "{error}");
        std::fs::write(dir.path().join("model.knn"), b"jello").expect("write");
        assert!(matches!(folder.read_model(5).expect_err("changed").problem, Problem::Checksum { .. }));
        let huge = "#".repeat(MAX_MANIFEST_BYTES as usize + 1);
        std::fs::write(dir.path().join(MANIFEST_FILE), huge).expect("write");
        assert!(matches!(ModelFolder::open(dir.path()).expect_err("huge").problem, Problem::TooLarge(_)));
    }

    /// Found by fuzzing (fuzz/README.md): `fmax = nan` became JSON null, which the mel plugin
    /// took for "not set" and replaced with its default instead of refusing it.
    #[test]
    fn non_finite_feature_params_are_refused() {
        for (params, key) in [("fmax = nan", "fmax"), ("top_db = inf", "top_db"), ("x = { y = [1.0, -inf] }", "x.y[1]")]
        {
            let text = manifest(HELLO_SHA, "[\"a\"]").replace("n_mels = 128", params);
            let error = Manifest::parse(&text).expect_err(params).to_string();
            assert!(error.contains(&format!("params.{key} must be a finite number")), "{params}: {error}");
        }
        assert!(Manifest::parse(&manifest(HELLO_SHA, "[\"a\"]").replace("n_mels = 128", "fmax = 8000.0")).is_ok());
    }

    #[test]
    fn kind_and_padding_default_to_classes_and_zeros_and_round_trip() {
        let text = manifest(HELLO_SHA, "[\"a\"]");
        let parsed = Manifest::parse(&text).expect("parses");
        assert_eq!((parsed.model.kind, parsed.features.as_ref().expect("features").padding), (OutputKind::Classes, Padding::Zeros));
        assert!(!parsed.to_toml().expect("toml").contains("kind"), "defaults are left out");
        let tagged = text
            .replace("[model]\n", "[model]\nkind = \"tags\"\n")
            .replace("segment_seconds = 3.0\n", "segment_seconds = 3.0\npadding = \"repeat\"\n");
        let parsed = Manifest::parse(&tagged).expect("parses");
        assert_eq!((parsed.model.kind, parsed.features.as_ref().expect("features").padding), (OutputKind::Tags, Padding::Repeat));
        assert_eq!(Manifest::parse(&parsed.to_toml().expect("toml")).expect("reads back"), parsed);
        let error = Manifest::parse(&text.replace("[model]\n", "[model]\nkind = \"tag\"\n")).expect_err("typo");
        assert!(error.to_string().contains("tag"), "{error}");
    }

    #[test]
    fn unknown_keys_are_errors() {
        let text = manifest(HELLO_SHA, "[\"a\"]").replace("embedding_size", "embeding_size");
        let dir = folder(&text, b"hello");
        assert!(ModelFolder::open(dir.path()).expect_err("typo").to_string().contains("embeding_size"));
    }

    fn head(extra: &str) -> String {
        format!(
            "name = \"genre\"\nversion = \"1.0.0\"\n[input]\nmodel = \"musicnn-msd\"\n{extra}[model]\nplugin = \"head\"\nfile = \"head.json\"\nsha256 = \"{HELLO_SHA}\"\nlabels = [\"a\", \"b\"]\n"
        )
    }

    #[test]
    fn a_head_reads_another_models_embedding_and_has_none_of_its_own() {
        let parsed = Manifest::parse(&head("")).expect("a head parses");
        assert!(parsed.is_head());
        assert_eq!(parsed.source(), Ok(Source::Upstream(&InputSpec { model: "musicnn-msd".into(), output: "embedding".into() })));
        assert_eq!(Manifest::parse(&parsed.to_toml().expect("toml")).expect("reads back"), parsed);
        let own = Manifest::parse(&head("").replace("labels", "embedding_size = 8\nlabels")).expect_err("embedding");
        assert!(own.to_string().contains("embedding_size must be 0"), "{own}");
        let itself = Manifest::parse(&head("").replace("model = \"musicnn-msd\"", "model = \"genre\"")).expect_err("self");
        assert!(itself.to_string().contains("this model itself"), "{itself}");
        let output = Manifest::parse(&head("output = \"tags\"\n")).expect_err("output");
        assert!(output.to_string().contains("\"tags\""), "{output}");
        let both = Manifest::parse(&head("").replace("[model]", "[features]\nplugin = \"mel\"\nsegment_seconds = 3.0\n[model]"))
            .expect_err("both");
        assert!(both.to_string().contains("both [features] and [input]"), "{both}");
        let neither = Manifest::parse(&head("").replace("[input]\nmodel = \"musicnn-msd\"\n", "")).expect_err("neither");
        assert!(neither.to_string().contains("neither"), "{neither}");
    }
}
