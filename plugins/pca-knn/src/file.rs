//! The model file: binary, little-endian, versioned.
//!
//! ```text
//! magic            9 bytes   "TIMBREKNN"
//! format version   u32       1
//! n_features       u32       mel bands per segment
//! frames           u32       frames per segment
//! n_components     u32       principal axes (the embedding size)
//! n_train          u32       training segments kept
//! n_labels         u32
//! k                u32
//! weighted         u8        0 or 1
//! labels           n_labels × (u32 byte length, UTF-8 bytes)
//! mean             d × f32   d = n_features × frames
//! scale            d × f32   standard deviation, or 1 for a constant feature
//! components       n_components × d × f32
//! embeddings       n_train × n_components × f32
//! train labels     n_train × u32   index into labels
//! checksum         32 bytes  SHA-256 of everything before it
//! ```
//!
//! [`Model::load`] checks all of it and refuses a bad file with an error naming the file and
//! the problem; it allocates nothing the file's own length cannot back.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::model::Model;
use crate::pca::Standardiser;

/// The first bytes of every model file.
pub const MAGIC: &[u8; 9] = b"TIMBREKNN";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Largest model file `load` will read (a 16,640-dimension model with 64 axes and 100,000
/// training segments is about 30 MiB).
pub const MAX_MODEL_FILE_BYTES: u64 = 1 << 30;
const CHECKSUM_LEN: usize = 32;

/// Why a model file was refused. Every message names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    #[error("cannot read pca-knn model file {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a pca-knn model file: it does not start with the magic bytes \"TIMBREKNN\"", path.display())]
    NotAModel { path: PathBuf },
    #[error(
        "{} is a pca-knn model file of format version {found}, but this build reads only version {supported}; retrain the model or use a matching timbre",
        path.display()
    )]
    UnsupportedVersion { path: PathBuf, found: u32, supported: u32 },
    #[error("{} is truncated: {what} needs {needed} bytes at offset {offset}, but the file ends at {len}", path.display())]
    Truncated { path: PathBuf, what: &'static str, offset: usize, needed: u64, len: usize },
    #[error("{} is {len} bytes, more than the {max} a pca-knn model file may have", path.display())]
    TooLarge { path: PathBuf, len: u64, max: u64 },
    #[error("{} is corrupted: {problem}", path.display())]
    Corrupt { path: PathBuf, problem: String },
}

impl Model {
    /// The file's bytes, checksum included.
    pub fn to_bytes(&self) -> Vec<u8> {
        let d = self.segment_len();
        let mut out = Vec::with_capacity(
            64 + 4 * (2 * d + self.components.len() + self.embeddings.len() + self.train_labels.len()) + CHECKSUM_LEN,
        );
        out.extend_from_slice(MAGIC);
        for value in [
            FORMAT_VERSION,
            self.n_features as u32,
            self.frames as u32,
            self.n_components as u32,
            self.train_labels.len() as u32,
            self.labels.len() as u32,
            self.k as u32,
        ] {
            out.extend_from_slice(&value.to_le_bytes());
        }
        out.push(u8::from(self.weighted));
        for label in &self.labels {
            out.extend_from_slice(&(label.len() as u32).to_le_bytes());
            out.extend_from_slice(label.as_bytes());
        }
        for array in [&self.standardiser.mean, &self.standardiser.scale, &self.components, &self.embeddings] {
            for value in array.iter() {
                out.extend_from_slice(&value.to_le_bytes());
            }
        }
        for label in &self.train_labels {
            out.extend_from_slice(&label.to_le_bytes());
        }
        let checksum = Sha256::digest(&out);
        out.extend_from_slice(&checksum);
        out
    }

    /// Write the model to `path`, atomically: a temporary file in the same folder, renamed
    /// over `path` once complete, so a crash never leaves half a model behind.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        timbre_model_manifest::write_atomically(path, &self.to_bytes())
    }

    /// Read and check a model file.
    pub fn load(path: &Path) -> Result<Model, ModelError> {
        let io = |source| ModelError::Io { path: path.to_path_buf(), source };
        let file = std::fs::File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        if len > MAX_MODEL_FILE_BYTES {
            return Err(ModelError::TooLarge { path: path.to_path_buf(), len, max: MAX_MODEL_FILE_BYTES });
        }
        let mut bytes = Vec::with_capacity(len as usize);
        // `take` caps the read even if the file grows while we read it.
        file.take(MAX_MODEL_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(io)?;
        if bytes.len() as u64 > MAX_MODEL_FILE_BYTES {
            return Err(ModelError::TooLarge {
                path: path.to_path_buf(),
                len: bytes.len() as u64,
                max: MAX_MODEL_FILE_BYTES,
            });
        }
        Model::from_bytes(&bytes, path)
    }

    /// Parse and check a model file's bytes; `path` only names the file in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Model, ModelError> {
        let mut r = Reader { bytes, pos: 0, path };
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            return Err(ModelError::NotAModel { path: path.to_path_buf() });
        }
        r.pos = MAGIC.len();
        let version = r.u32("the format version")?;
        if version != FORMAT_VERSION {
            return Err(ModelError::UnsupportedVersion {
                path: path.to_path_buf(),
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let n_features = r.u32("the header")? as usize;
        let frames = r.u32("the header")? as usize;
        let n_components = r.u32("the header")? as usize;
        let n_train = r.u32("the header")? as usize;
        let n_labels = r.u32("the header")? as usize;
        let k = r.u32("the header")? as usize;
        let weighted = match r.take(1, "the header")?[0] {
            0 => false,
            1 => true,
            other => return Err(r.corrupt(format!("the weighted flag is {other}, not 0 or 1"))),
        };
        for (name, value) in [
            ("n_features", n_features),
            ("frames", frames),
            ("n_components", n_components),
            ("n_train", n_train),
            ("n_labels", n_labels),
            ("k", k),
        ] {
            if value == 0 {
                return Err(r.corrupt(format!("{name} is 0")));
            }
        }
        // Each label needs at least its 4-byte length, so the file's size bounds the count.
        let mut labels = Vec::with_capacity(n_labels.min(r.remaining() / 4));
        for _ in 0..n_labels {
            let len = r.u32("a label's length")? as u64;
            let raw = r.take(len, "a label")?;
            let label = std::str::from_utf8(raw).map_err(|_| r.corrupt("a label is not UTF-8".to_string()))?;
            if label.is_empty() || labels.iter().any(|l: &String| l == label) {
                return Err(r.corrupt(format!("label {label:?} is empty or repeated")));
            }
            labels.push(label.to_string());
        }
        let d = n_features as u64 * frames as u64;
        if n_components as u64 > d {
            return Err(r.corrupt(format!("{n_components} components for {d}-dimensional segments")));
        }
        let mean = r.f32s(d, "the feature means")?;
        let scale = r.f32s(d, "the feature scales")?;
        let components = r.f32s((n_components as u64).saturating_mul(d), "the principal axes")?;
        let embeddings = r.f32s(n_train as u64 * n_components as u64, "the training embeddings")?;
        let train_labels = r.u32s(n_train as u64, "the training labels")?;
        let body_end = r.pos;
        let stored = r.take(CHECKSUM_LEN as u64, "the checksum")?;
        if r.pos != bytes.len() {
            return Err(r.corrupt(format!("{} unexpected bytes follow the checksum", bytes.len() - r.pos)));
        }
        if Sha256::digest(&bytes[..body_end]).as_slice() != stored {
            return Err(r.corrupt("its checksum does not match: the file was damaged or edited".to_string()));
        }
        if let Some(i) = mean.iter().chain(&components).chain(&embeddings).position(|x| !x.is_finite()) {
            return Err(r.corrupt(format!("value {i} of the model's arrays is not finite")));
        }
        if let Some(i) = scale.iter().position(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(r.corrupt(format!("feature scale {i} is not a positive number")));
        }
        if let Some(i) = train_labels.iter().position(|&l| l as usize >= n_labels) {
            return Err(r.corrupt(format!("training segment {i} has label index {} of {n_labels}", train_labels[i])));
        }
        Ok(Model {
            n_features,
            frames,
            labels,
            k,
            weighted,
            standardiser: Standardiser { mean, scale },
            components,
            n_components,
            embeddings,
            train_labels,
        })
    }
}

/// A bounds-checked little-endian reader over the file's bytes.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn corrupt(&self, problem: String) -> ModelError {
        ModelError::Corrupt { path: self.path.to_path_buf(), problem }
    }

    fn take(&mut self, len: u64, what: &'static str) -> Result<&'a [u8], ModelError> {
        if len > self.remaining() as u64 {
            return Err(ModelError::Truncated {
                path: self.path.to_path_buf(),
                what,
                offset: self.pos,
                needed: len,
                len: self.bytes.len(),
            });
        }
        let start = self.pos;
        self.pos += len as usize;
        Ok(&self.bytes[start..self.pos])
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, ModelError> {
        let raw = self.take(4, what)?;
        Ok(u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]))
    }

    /// `count` values; `take` checks the file holds them before anything is allocated.
    fn f32s(&mut self, count: u64, what: &'static str) -> Result<Vec<f32>, ModelError> {
        let raw = self.take(count.saturating_mul(4), what)?;
        Ok(raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
    }

    fn u32s(&mut self, count: u64, what: &'static str) -> Result<Vec<u32>, ModelError> {
        let raw = self.take(count.saturating_mul(4), what)?;
        Ok(raw.chunks_exact(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
    }
}
