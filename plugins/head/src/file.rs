//! The head file: JSON, small enough to read, checked whole before it is trusted.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::model::{Classifier, Head};
use crate::standardise::Standardiser;

/// The `format` field of every head file.
pub const FORMAT: &str = "timbre-head";
/// Bumped when a reader of the previous version could misread a new file.
pub const FORMAT_VERSION: u32 = 1;
/// A kNN head over 200-d embeddings of 100 000 tracks is about 300 MB of JSON; nothing sane is
/// larger, and the limit keeps a hostile file from exhausting memory before it is checked.
pub const MAX_HEAD_FILE_BYTES: u64 = 512 << 20;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeadFile {
    format: String,
    version: u32,
    labels: Vec<String>,
    standardiser: Standardiser,
    classifier: Classifier,
}

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read head file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("cannot write head file {path}: {source}")]
    Write { path: String, source: std::io::Error },
    #[error("head file {path} is {size} bytes, over the {MAX_HEAD_FILE_BYTES}-byte limit")]
    TooLarge { path: String, size: u64 },
    #[error("head file {path} is not a timbre head: {reason}")]
    Invalid { path: String, reason: String },
}

impl Head {
    pub fn to_json(&self) -> String {
        let file = HeadFile {
            format: FORMAT.to_owned(),
            version: FORMAT_VERSION,
            labels: self.labels.clone(),
            standardiser: self.standardiser.clone(),
            classifier: self.classifier.clone(),
        };
        serde_json::to_string(&file).expect("a head serialises")
    }

    /// Writes the head to `path` (through a temporary file beside it, renamed over it).
    pub fn save(&self, path: &Path) -> Result<(), FileError> {
        let write = |source| FileError::Write { path: path.display().to_string(), source };
        let temporary = path.with_extension("json.partial");
        std::fs::write(&temporary, self.to_json()).map_err(write)?;
        std::fs::rename(&temporary, path).map_err(write)
    }

    pub fn load(path: &Path) -> Result<Head, FileError> {
        let name = path.display().to_string();
        let read = |source| FileError::Read { path: name.clone(), source };
        let size = std::fs::metadata(path).map_err(read)?.len();
        if size > MAX_HEAD_FILE_BYTES {
            return Err(FileError::TooLarge { path: name, size });
        }
        let text = std::fs::read_to_string(path).map_err(read)?;
        Head::from_json(&text).map_err(|reason| FileError::Invalid { path: name, reason })
    }

    /// Parses and checks a head: every length agrees, every number is finite.
    pub fn from_json(text: &str) -> Result<Head, String> {
        let file: HeadFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if file.format != FORMAT {
            return Err(format!("format is {:?}, expected {FORMAT:?}", file.format));
        }
        if file.version != FORMAT_VERSION {
            return Err(format!("format version {} (this build reads {FORMAT_VERSION})", file.version));
        }
        let (labels, dim) = (file.labels.len(), file.standardiser.mean.len());
        if labels < 2 {
            return Err(format!("{labels} labels; a head has at least two"));
        }
        if dim == 0 || file.standardiser.scale.len() != dim {
            return Err(format!("standardiser has {dim} means and {} scales", file.standardiser.scale.len()));
        }
        let finite = |values: &[f32]| values.iter().all(|v| v.is_finite());
        if !finite(&file.standardiser.mean) || !file.standardiser.scale.iter().all(|s| s.is_finite() && *s > 0.0) {
            return Err("standardiser has a value that is not finite, or a scale that is not positive".to_owned());
        }
        match &file.classifier {
            Classifier::Logistic { l2, weights, bias } => {
                if weights.len() != labels * dim || bias.len() != labels {
                    return Err(format!(
                        "logistic weights are {} values and bias {} for {labels} labels of {dim} dimensions",
                        weights.len(),
                        bias.len()
                    ));
                }
                if !l2.is_finite() || !finite(weights) || !finite(bias) {
                    return Err("logistic regression has a value that is not finite".to_owned());
                }
            }
            Classifier::Knn { k, points, point_labels } => {
                if *k == 0 || points.is_empty() || points.len() != point_labels.len() * dim {
                    return Err(format!(
                        "kNN with k = {k} has {} values for {} labelled points of {dim} dimensions",
                        points.len(),
                        point_labels.len()
                    ));
                }
                if !finite(points) {
                    return Err("kNN has a point value that is not finite".to_owned());
                }
                if let Some(bad) = point_labels.iter().find(|&&l| l as usize >= labels) {
                    return Err(format!("kNN point label {bad} is not one of the {labels} labels"));
                }
            }
        }
        Ok(Head { labels: file.labels, standardiser: file.standardiser, classifier: file.classifier })
    }
}
