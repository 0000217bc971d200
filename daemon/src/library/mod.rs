//! The library: the audio files under the configured roots and what timbre knows about
//! them. [`store`] keeps it (SQLite), [`scan`] brings it up to date with the disk, [`watch`]
//! follows changes as they happen.

pub mod embeddings;
pub mod lock;
pub mod scan;
mod schema;
pub mod store;
pub mod tags;
pub mod watch;

pub use scan::{ScanProgress, Scanner};

/// What a scan changed, for whoever mirrors the library (the vector index).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LibraryChange {
    /// The track was added, re-analysed, moved, or its analysis failed or was dropped.
    Changed(i64),
    /// The track left the library.
    Removed(i64),
}
pub use store::{
    FileStat, ModelVersion, Store, StoreError, StoredPrediction, Tags, TrackFilter, TrackRecord, TrackState,
};
