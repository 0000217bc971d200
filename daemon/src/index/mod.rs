//! The vector index: one embedding per track and model, searched by cosine similarity for
//! "more like this" recommendation.
//!
//! [`VectorIndex`] is the one trait the daemon talks to. Two backends implement it, chosen by
//! [`IndexConfig`]:
//!
//! - [`embedded`] (the default): in this process, persisted as one snapshot file in the data
//!   directory; exact search, with an approximate (IVF) index above a configurable size.
//! - [`qdrant`] (feature `qdrant`): a Qdrant collection, possibly shared by several daemons.
//!
//! Every model that yields an embedding has its own *space* (a named vector in Qdrant), named
//! after the model. A track is one [`IndexPoint`]: its vectors in each space plus the payload
//! the filters need (tagged genre, each model's top label, artist, album, duration, and the
//! tempo and key the descriptor plugins measured).
//!
//! The SQLite library is the source of truth. The index can always be brought back in line
//! with it by [`sync::sync_from_library`] (cheap when little changed), which the daemon runs
//! at start-up before the scanner starts writing; the [`embedded`] module says how a crash is
//! survived.
//!
//! # Wiring it into the daemon
//!
//! [`keeper::IndexKeeper`] owns the daemon's index: it opens the backend, syncs it from the
//! library, then mirrors every track the scanner writes or removes, re-syncing whenever the
//! backend comes back after being unreachable. `Recommend` and `Playlist`
//! ([`crate::recommend`]) query what the keeper holds: a [`Query`] in the model's space whose
//! positives are the stored embeddings of the example tracks (or of uploaded audio), with the
//! example tracks in `filter.exclude_tracks`.
//!
//! # Scores
//!
//! Both backends rank and score the same way, Qdrant's recommendation semantics
//! (<https://qdrant.tech/documentation/concepts/explore/#recommendation-api>); every example
//! vector is L2-normalised first:
//!
//! - [`Strategy::AverageVector`]: the query vector is `avg(positive)` without negatives, else
//!   `avg(positive) + (avg(positive) − avg(negative))`; score = cosine similarity of a track's
//!   embedding to it, in [-1, 1].
//! - [`Strategy::BestScore`]: per track, `p` = best cosine to any positive, `n` = best cosine to
//!   any negative (−∞ without negatives); score = `s(p)` if `p > n`, else `−s(n)`, where
//!   `s(x) = 0.5·(x / (1 + |x|) + 1)` (Qdrant's scaled fast sigmoid). Tracks closer to a positive
//!   than to every negative always rank first. [`best_score_similarity`] turns a score back
//!   into the cosine it came from.
//!
//! Ties are broken by track id (ascending) in the embedded index.

pub mod config;
pub mod embedded;
pub mod filter;
pub mod keeper;
#[cfg(feature = "qdrant")]
pub mod qdrant;
mod scoring;
pub mod sync;
#[cfg(test)]
pub(crate) mod tests;

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use crate::camelot::Camelot;
use crate::library::{StoreError, TrackRecord};
use crate::pipeline::descriptors::DescriptorResult;

pub use config::{Backend, EmbeddedConfig, IndexConfig, QdrantConfig};
pub use embedded::EmbeddedIndex;
pub use filter::{BpmRange, Filter};
pub use scoring::best_score_similarity;
/// The index's cosine arithmetic, for the re-ranking and walks built on its answers.
pub(crate) use scoring::{dot, normalised};
pub use sync::{rebuild_from_library, sync_from_library, SyncReport};

/// A boxed future, so that [`VectorIndex`] can be used as `Arc<dyn VectorIndex>`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The daemon's view of a vector index. Every method is cheap to call from async code: the
/// embedded index does its work on the blocking thread pool.
pub trait VectorIndex: Send + Sync {
    /// The backend and where it keeps its data, for logs: `embedded (/path/index.timbre-ix)`.
    fn describe(&self) -> String;

    /// Insert or replace tracks, all of their spaces at once: a point replaces everything the
    /// index held for its track, so a space missing from it is removed for that track, and a
    /// point without vectors removes the track. The batch is checked first and applied whole
    /// or not at all (a vector whose length differs from its space's is an error).
    fn upsert(&self, points: Vec<IndexPoint>) -> BoxFuture<'_, Result<(), IndexError>>;

    /// Remove tracks by id; unknown ids are ignored.
    fn delete(&self, track_ids: Vec<i64>) -> BoxFuture<'_, Result<(), IndexError>>;

    /// The best `limit` tracks for the query, best first. A space nothing was indexed in
    /// answers no hits.
    fn query(&self, query: Query) -> BoxFuture<'_, Result<Vec<Hit>, IndexError>>;

    /// Number of tracks with a vector in `space`.
    fn len<'a>(&'a self, space: &'a str) -> BoxFuture<'a, Result<u64, IndexError>>;

    /// Every track this index holds, with the [`IndexPoint::fingerprint`] of the point it was
    /// last given; [`sync::sync_from_library`] compares them with the library.
    fn fingerprints(&self) -> BoxFuture<'_, Result<HashMap<i64, u64>, IndexError>>;

    /// Remove every track (of this daemon's library, in a shared Qdrant collection).
    fn clear(&self) -> BoxFuture<'_, Result<(), IndexError>>;

    /// Make what was written so far durable: the embedded index writes its snapshot (when
    /// anything changed since the last one); Qdrant has already stored it.
    fn flush(&self) -> BoxFuture<'_, Result<(), IndexError>>;
}

/// One space's vector for a track.
#[derive(Debug, Clone, PartialEq)]
pub struct SpaceVector {
    /// The space: the name of the model that produced the embedding (`[A-Za-z0-9_-]+`).
    pub space: String,
    /// The embedding; stored L2-normalised.
    pub vector: Vec<f32>,
    /// The model's most probable label for the track (the predicted genre).
    pub label: String,
}

/// A track as the index holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexPoint {
    pub track_id: i64,
    pub path: String,
    /// Genre tag of the file.
    pub genre: String,
    pub artist: String,
    pub album: String,
    pub duration_s: f64,
    /// One vector per space; at most one per space.
    pub vectors: Vec<SpaceVector>,
    /// Global tempo, when a descriptor plugin measured one.
    pub bpm: Option<f64>,
    /// Global key, when a descriptor plugin measured one.
    pub key: Option<Camelot>,
}

/// A track's tempo and key from its stored descriptors: each the first plugin's (by name)
/// that has it, as [`crate::pipeline::descriptors::Summary::of`] answers them.
pub fn tempo_and_key(descriptors: &[DescriptorResult]) -> (Option<f64>, Option<Camelot>) {
    let get = |name: &str| descriptors.iter().find_map(|d| d.value(name));
    (get("bpm"), key_of(get("key_tonic"), get("key_mode")))
}

/// A key from the descriptors' `key_tonic` (pitch class, C = 0) and `key_mode` (0 major).
pub fn key_of(tonic: Option<f64>, mode: Option<f64>) -> Option<Camelot> {
    let (tonic, mode) = (tonic?, mode?);
    (tonic >= 0.0).then(|| Camelot::from_key(tonic as usize % 12, mode != 0.0))
}

impl IndexPoint {
    /// The point for a library track: each stored prediction that has an embedding becomes a
    /// space named after its model, labelled with [`crate::library::StoredPrediction::top_label`] (as the
    /// store's `top_label` column is).
    pub fn from_record(track: &TrackRecord) -> IndexPoint {
        let vectors = track
            .predictions
            .iter()
            .filter(|p| !p.embedding.is_empty())
            .map(|p| SpaceVector {
                space: p.version.model.clone(),
                vector: p.embedding.clone(),
                label: p.top_label().to_string(),
            })
            .collect();
        let (bpm, key) = tempo_and_key(&track.descriptors);
        IndexPoint {
            track_id: track.id,
            path: track.path.clone(),
            genre: track.tags.genre.clone(),
            artist: track.tags.artist.clone(),
            album: track.tags.album.clone(),
            duration_s: track.duration_s,
            vectors,
            bpm,
            key,
        }
    }

    /// A 64-bit digest of everything the index stores for this point (order of `vectors`
    /// aside). Equal points have equal fingerprints; any change to a field or vector changes it
    /// with overwhelming probability.
    pub fn fingerprint(&self) -> u64 {
        let mut h = scoring::Hasher::new();
        h.i64(self.track_id);
        h.str(&self.path);
        h.str(&filter::fold(&self.genre));
        h.str(&filter::fold(&self.artist));
        h.str(&filter::fold(&self.album));
        h.u64(self.duration_s.to_bits());
        // Hashed only when known, so that a track without descriptors keeps the fingerprint
        // an index written before tempo and key were indexed holds for it (no needless
        // re-upsert), while one with them is re-synced to get them.
        if let Some(bpm) = self.bpm {
            h.str("bpm");
            h.u64(bpm.to_bits());
        }
        if let Some(key) = self.key {
            h.str("key");
            h.u64(u64::from(key.code()));
        }
        let mut vectors: Vec<&SpaceVector> = self.vectors.iter().collect();
        vectors.sort_by(|a, b| a.space.cmp(&b.space));
        for v in vectors {
            h.str(&v.space);
            h.str(&filter::fold(&v.label));
            h.u64(v.vector.len() as u64);
            for x in &v.vector {
                h.u64(u64::from(x.to_bits()));
            }
        }
        h.finish()
    }
}

/// How positive and negative examples combine; see the module documentation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Strategy {
    #[default]
    AverageVector,
    BestScore,
}

/// A recommendation query in one space.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// The space (model name) to search.
    pub space: String,
    /// Embeddings to move towards; at least one.
    pub positive: Vec<Vec<f32>>,
    /// Embeddings to move away from.
    pub negative: Vec<Vec<f32>>,
    pub strategy: Strategy,
    /// Most hits to return.
    pub limit: usize,
    pub filter: Filter,
    /// Return each hit's (normalised) vector in this space, e.g. for diversity re-ranking or
    /// the next step of a playlist walk.
    pub with_vectors: bool,
}

/// One result of a query.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub track_id: i64,
    /// Higher is better; see the module documentation for what it means per strategy.
    pub score: f32,
    /// The track's vector in the query's space, when the query asked for it.
    pub vector: Option<Vec<f32>>,
}

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("vector index {}: {reason}", path.display())]
    File { path: PathBuf, reason: String },
    #[error("vector index snapshot {} is unusable ({reason}); it was set aside and the index must be rebuilt from the library", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error("Qdrant at {url} is unreachable: {reason}; check `index.qdrant.url` and that the server runs (analysis goes on, and the index catches up on the next sync)")]
    Unreachable { url: String, reason: String },
    #[error("Qdrant at {url}, collection `{collection}`: {operation}: {reason}")]
    Qdrant { url: String, collection: String, operation: &'static str, reason: String },
    #[error("space `{space}`: {got}-dimensional vector{}, the space holds {expected}-dimensional vectors (the model changed? rebuild the index)", track.map(|t| format!(" for track {t}")).unwrap_or_default())]
    Dimension { space: String, track: Option<i64>, expected: usize, got: usize },
    #[error("track {track}: {reason}")]
    InvalidPoint { track: i64, reason: String },
    #[error("invalid index query: {0}")]
    InvalidQuery(String),
    #[error("vector index configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("vector index: background task failed: {0}")]
    Task(String),
}

/// Checks a space name: it becomes a Qdrant vector name and a payload key.
pub(crate) fn check_space_name(space: &str) -> Result<(), String> {
    if space.is_empty() || !space.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Err(format!("space name `{space}` must be non-empty ASCII letters, digits, `_` or `-`"));
    }
    Ok(())
}

/// Checks a batch of points before any of it is applied.
pub(crate) fn check_points(points: &[IndexPoint]) -> Result<(), IndexError> {
    for point in points {
        let invalid = |reason: String| IndexError::InvalidPoint { track: point.track_id, reason };
        for (i, v) in point.vectors.iter().enumerate() {
            check_space_name(&v.space).map_err(invalid)?;
            if v.vector.is_empty() {
                return Err(invalid(format!("empty vector in space `{}`", v.space)));
            }
            if !v.vector.iter().all(|x| x.is_finite()) {
                return Err(invalid(format!("non-finite value in the vector of space `{}`", v.space)));
            }
            if point.vectors[..i].iter().any(|w| w.space == v.space) {
                return Err(invalid(format!("two vectors for space `{}`", v.space)));
            }
        }
        if !point.duration_s.is_finite() {
            return Err(invalid("non-finite duration".into()));
        }
        if point.bpm.is_some_and(|bpm| !bpm.is_finite()) {
            return Err(invalid("non-finite tempo".into()));
        }
    }
    Ok(())
}

/// Checks a query's shape; the dimension is checked against the space by each backend.
pub(crate) fn check_query(query: &Query) -> Result<(), IndexError> {
    check_space_name(&query.space).map_err(IndexError::InvalidQuery)?;
    if query.positive.is_empty() {
        return Err(IndexError::InvalidQuery("at least one positive example is required".into()));
    }
    let dim = query.positive[0].len();
    for v in query.positive.iter().chain(&query.negative) {
        if v.len() != dim {
            return Err(IndexError::InvalidQuery(format!(
                "examples of different lengths ({dim} and {}) in one query",
                v.len()
            )));
        }
        if !v.iter().all(|x| x.is_finite()) {
            return Err(IndexError::InvalidQuery("non-finite value in an example vector".into()));
        }
    }
    if dim == 0 {
        return Err(IndexError::InvalidQuery("empty example vector".into()));
    }
    Ok(())
}
