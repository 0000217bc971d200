//! `[index]` in the daemon's configuration: which backend holds the vectors, and its options.
//!
//! ```toml
//! [index]
//! backend = "embedded"          # or "qdrant"
//!
//! [index.embedded]
//! file = "index.timbre-ix"      # relative to library.data_dir
//! exact_limit = 200000
//!
//! [index.qdrant]
//! url = "http://localhost:6334" # gRPC port; https:// for TLS
//! collection = "timbre"
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{EmbeddedIndex, IndexError, VectorIndex};

/// Where the vector index lives.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IndexConfig {
    /// `embedded` (in the daemon, a file in the data directory) or `qdrant` (a Qdrant server).
    pub backend: Backend,
    /// Options of the embedded index.
    pub embedded: EmbeddedConfig,
    /// Options of the Qdrant backend.
    pub qdrant: QdrantConfig,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    #[default]
    Embedded,
    Qdrant,
}

/// The embedded index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmbeddedConfig {
    /// The snapshot file; a relative path is taken from the library's data directory.
    pub file: PathBuf,
    /// A space with more vectors than this is searched through an approximate (IVF) index;
    /// at or below it, every vector is compared. 0: always exact.
    pub exact_limit: usize,
    /// Lists of the approximate index probed per query vector: more is slower and finds more
    /// of the true nearest tracks. Filtered queries probe more, until enough tracks pass.
    pub nprobe: usize,
    /// Threads one query may use; 0: one per core.
    pub threads: usize,
}

/// The Qdrant backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QdrantConfig {
    /// Qdrant's gRPC endpoint (port 6334, not the REST port 6333); `https://` for TLS.
    pub url: String,
    /// API key sent with every request; empty: none.
    pub api_key: String,
    /// The collection; several daemons may share one (see `library_id`).
    pub collection: String,
    /// This daemon's library in a shared collection: its points get ids derived from it and
    /// the track id, a `library` payload field, and its queries see only its own tracks.
    /// Empty: `<host name>:<data directory>`, stable across restarts.
    pub library_id: String,
    /// Per-request timeout, in seconds.
    pub timeout_s: f64,
    /// Points per upsert request.
    pub batch: usize,
    /// Ask Qdrant for exact (full scan) search rather than its HNSW index.
    pub exact: bool,
}

impl Default for EmbeddedConfig {
    fn default() -> Self {
        EmbeddedConfig { file: PathBuf::from("index.timbre-ix"), exact_limit: 200_000, nprobe: 24, threads: 0 }
    }
}

impl Default for QdrantConfig {
    fn default() -> Self {
        QdrantConfig {
            url: "http://localhost:6334".into(),
            api_key: String::new(),
            collection: "timbre".into(),
            library_id: String::new(),
            timeout_s: 10.0,
            batch: 256,
            exact: false,
        }
    }
}

impl EmbeddedConfig {
    /// The snapshot file, resolved against the data directory.
    pub fn path(&self, data_dir: &Path) -> PathBuf {
        if self.file.is_absolute() {
            self.file.clone()
        } else {
            data_dir.join(&self.file)
        }
    }

    /// Threads a query may use.
    pub fn search_threads(&self) -> usize {
        match self.threads {
            0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            n => n,
        }
    }
}

impl QdrantConfig {
    /// The library id, derived when not configured.
    pub fn library_id(&self, data_dir: &Path) -> String {
        if !self.library_id.is_empty() {
            return self.library_id.clone();
        }
        let host = std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "localhost".into());
        format!("{host}:{}", data_dir.display())
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs_f64(if self.timeout_s.is_finite() && self.timeout_s > 0.0 { self.timeout_s } else { 10.0 })
    }
}

impl IndexConfig {
    /// Checks values without touching the disk or the network.
    pub fn validate(&self) -> Result<(), IndexError> {
        if self.embedded.file.as_os_str().is_empty() {
            return Err(IndexError::Config("index.embedded.file is empty".into()));
        }
        if self.backend == Backend::Qdrant {
            let q = &self.qdrant;
            if !(q.url.starts_with("http://") || q.url.starts_with("https://")) {
                return Err(IndexError::Config(format!(
                    "index.qdrant.url = {:?}: expected http://host:6334 or https://host:6334",
                    q.url
                )));
            }
            if q.collection.is_empty() {
                return Err(IndexError::Config("index.qdrant.collection is empty".into()));
            }
            if q.batch == 0 {
                return Err(IndexError::Config("index.qdrant.batch must be at least 1".into()));
            }
        }
        Ok(())
    }

    /// Opens the configured backend. The embedded index loads its snapshot (a missing or
    /// damaged one gives an empty index; [`super::sync_from_library`] fills it). Qdrant is
    /// asked for its health once: a server that does not answer is logged (naming the URL)
    /// and the index is returned anyway, its calls failing with [`IndexError::Unreachable`]
    /// until the server is back, so the daemon goes on analysing and catches up later
    /// ([`super::sync::sync_when_reachable`]).
    pub async fn open(&self, data_dir: &Path) -> Result<Arc<dyn VectorIndex>, IndexError> {
        self.validate()?;
        match self.backend {
            Backend::Embedded => {
                let path = self.embedded.path(data_dir);
                let config = self.embedded.clone();
                let index = tokio::task::spawn_blocking(move || EmbeddedIndex::open(&path, config))
                    .await
                    .map_err(|e| IndexError::Task(e.to_string()))??;
                Ok(Arc::new(index))
            }
            #[cfg(feature = "qdrant")]
            Backend::Qdrant => {
                let index = super::qdrant::QdrantIndex::new(&self.qdrant, &self.qdrant.library_id(data_dir))?;
                match index.check().await {
                    Ok(version) => tracing::info!(index = %index.describe(), %version, "connected to Qdrant"),
                    Err(e @ IndexError::Unreachable { .. }) => tracing::warn!("{e}"),
                    Err(e) => return Err(e),
                }
                Ok(Arc::new(index))
            }
            #[cfg(not(feature = "qdrant"))]
            Backend::Qdrant => Err(IndexError::Config(
                "index.backend = \"qdrant\", but this timbred was built without the `qdrant` feature".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_embedded_and_unknown_keys_are_refused() {
        let config: IndexConfig = toml::from_str("").expect("empty parses");
        assert_eq!(config, IndexConfig::default());
        assert_eq!(config.backend, Backend::Embedded);

        let config: IndexConfig = toml::from_str(
            "backend = \"qdrant\"\n[qdrant]\nurl = \"https://q.example:6334\"\napi_key = \"k\"\nlibrary_id = \"a\"",
        )
        .expect("parses");
        assert_eq!(config.backend, Backend::Qdrant);
        assert_eq!(config.qdrant.collection, "timbre");
        config.validate().expect("valid");

        let err = toml::from_str::<IndexConfig>("[embedded]\nexact_limt = 3").expect_err("typo refused");
        assert!(err.to_string().contains("exact_limt"), "{err}");
        assert!(toml::from_str::<IndexConfig>("backend = \"faiss\"").is_err());
    }

    #[test]
    fn a_bad_qdrant_url_is_named() {
        let mut config = IndexConfig { backend: Backend::Qdrant, ..Default::default() };
        config.qdrant.url = "localhost:6334".into();
        let err = config.validate().expect_err("no scheme");
        assert!(err.to_string().contains("localhost:6334"), "{err}");
    }

    #[test]
    fn the_snapshot_lives_in_the_data_dir_unless_absolute() {
        let config = EmbeddedConfig::default();
        assert_eq!(config.path(Path::new("/data")), PathBuf::from("/data/index.timbre-ix"));
        let config = EmbeddedConfig { file: "/elsewhere/i".into(), ..Default::default() };
        assert_eq!(config.path(Path::new("/data")), PathBuf::from("/elsewhere/i"));
    }
}
