//! Bringing an index in line with the library, which is the source of truth.
//!
//! [`sync_from_library`] reads every stored embedding once (one consistent read of the
//! database), builds each track's [`IndexPoint`] exactly as [`IndexPoint::from_record`] does,
//! and compares its fingerprint with the one the index holds: tracks that differ or are
//! missing are upserted, tracks the library no longer has are deleted. Nothing changed means
//! nothing written. Run it at start-up, before the scanner starts writing, so that a live
//! upsert never races with the older copy the sync read.

use tokio::sync::mpsc;

use super::{IndexError, IndexPoint, SpaceVector, VectorIndex};
use crate::library::embeddings::{self, TrackEmbeddings};
use crate::library::Store;

/// Points per upsert while syncing.
const BATCH: usize = 512;

/// What a sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Library tracks with at least one embedding.
    pub library_tracks: u64,
    /// Tracks (re-)indexed because the index lacked them or held another version.
    pub upserted: u64,
    /// Tracks removed because the library no longer has embeddings for them.
    pub deleted: u64,
    /// Tracks the index refused (logged; e.g. an embedding of the wrong size for its space).
    pub rejected: u64,
}

/// The point of a track as the library stores it; equal to [`IndexPoint::from_record`] of the
/// same track.
pub fn point_of(track: TrackEmbeddings) -> IndexPoint {
    IndexPoint {
        track_id: track.id,
        path: track.path,
        genre: track.tags.genre,
        artist: track.tags.artist,
        album: track.tags.album,
        duration_s: track.duration_s,
        vectors: track
            .embeddings
            .into_iter()
            .filter(|e| !e.embedding.is_empty()) // a head has labels, no embedding
            .map(|e| SpaceVector { space: e.model, vector: e.embedding, label: e.top_label })
            .collect(),
        bpm: track.bpm,
        key: super::key_of(track.key_tonic, track.key_mode),
    }
}

/// Make `index` hold exactly the library's embeddings; see the module documentation.
pub async fn sync_from_library(index: &dyn VectorIndex, store: &Store) -> Result<SyncReport, IndexError> {
    let started = std::time::Instant::now();
    let mut known = index.fingerprints().await?;
    let db = store.path().to_path_buf();
    let (sender, mut batches) = mpsc::channel::<Vec<IndexPoint>>(2);
    let reader = tokio::task::spawn_blocking(move || {
        let mut batch = Vec::with_capacity(BATCH);
        let tracks = embeddings::for_each_track(&db, |track| {
            let point = point_of(track);
            if known.remove(&point.track_id) != Some(point.fingerprint()) {
                batch.push(point);
                if batch.len() == BATCH && sender.blocking_send(std::mem::take(&mut batch)).is_err() {
                    return false; // the upserting side gave up
                }
            }
            true
        })?;
        if !batch.is_empty() {
            let _ = sender.blocking_send(batch);
        }
        // What the library no longer has.
        Ok::<_, IndexError>((tracks, known.into_keys().collect::<Vec<i64>>()))
    });

    let mut report = SyncReport::default();
    let mut failure = None;
    while let Some(batch) = batches.recv().await {
        if let Err(e) = upsert_or_skip(index, batch, &mut report).await {
            failure = Some(e);
            break;
        }
    }
    drop(batches);
    let read = reader.await.map_err(|e| IndexError::Task(e.to_string()))?;
    if let Some(e) = failure {
        return Err(e);
    }
    let (tracks, mut gone) = read?;
    report.library_tracks = tracks;
    gone.sort_unstable();
    for chunk in gone.chunks(BATCH) {
        index.delete(chunk.to_vec()).await?;
        report.deleted += chunk.len() as u64;
    }
    index.flush().await?;
    tracing::info!(
        index = %index.describe(),
        library_tracks = report.library_tracks,
        upserted = report.upserted,
        deleted = report.deleted,
        rejected = report.rejected,
        seconds = started.elapsed().as_secs_f64(),
        "vector index in sync with the library"
    );
    Ok(report)
}

/// Upsert a batch; if the index refuses it for a point's content, upsert point by point and
/// skip (log, naming the track, and count) the refused ones, so one bad point costs only
/// itself. Errors of the backend itself are returned.
pub(super) async fn upsert_or_skip(
    index: &dyn VectorIndex,
    batch: Vec<IndexPoint>,
    report: &mut SyncReport,
) -> Result<(), IndexError> {
    let n = batch.len() as u64;
    match index.upsert(batch.clone()).await {
        Ok(()) => {
            report.upserted += n;
            Ok(())
        }
        Err(IndexError::Dimension { .. } | IndexError::InvalidPoint { .. }) => {
            for point in batch {
                let (id, path) = (point.track_id, point.path.clone());
                match index.upsert(vec![point]).await {
                    Ok(()) => report.upserted += 1,
                    Err(e @ (IndexError::Dimension { .. } | IndexError::InvalidPoint { .. })) => {
                        tracing::warn!("track {id} ({path}) not indexed: {e}");
                        report.rejected += 1;
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Empty the index and index the whole library again.
pub async fn rebuild_from_library(index: &dyn VectorIndex, store: &Store) -> Result<SyncReport, IndexError> {
    index.clear().await?;
    sync_from_library(index, store).await
}
