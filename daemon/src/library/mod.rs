//! The library: the audio files under the configured roots and what timbre knows about
//! them. [`store`] keeps it (SQLite), [`scan`] brings it up to date with the disk, [`watch`]
//! follows changes as they happen.

pub mod audio_hash;
pub mod changes;
pub mod embeddings;
pub mod lock;
pub mod scan;
mod schema;
pub mod store;
pub mod tags;
pub mod watch;

pub use scan::{ScanProgress, Scanner};

pub use changes::{change_queue, ChangeReceiver, ChangeSender, LibraryChange};
pub use store::{
    FileStat, Listen, ModelVersion, Store, StoreError, StoredPrediction, TagWrite, Tags, TrackFilter, TrackRecord,
    TrackState,
};
