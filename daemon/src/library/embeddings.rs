//! One read-only pass over every stored embedding, for (re)building the vector index.
//!
//! It reads through its own connection to the database: one `SELECT`, so one consistent
//! snapshot of the library (WAL readers never block the writer), streamed row by row, and
//! the scanner's writes go on meanwhile through the [`super::Store`]'s connection.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::{StoreError, Tags};

/// One model's embedding of a track.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelEmbedding {
    pub model: String,
    /// The model's most probable label (`predictions.top_label`).
    pub top_label: String,
    pub embedding: Vec<f32>,
}

/// A track and every non-empty embedding stored for it, models in name order.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackEmbeddings {
    pub id: i64,
    pub path: String,
    pub tags: Tags,
    pub duration_s: f64,
    pub embeddings: Vec<ModelEmbedding>,
    /// Tempo and key, each from the first descriptor plugin (by name) that measured it, as
    /// the track's descriptors summary answers them.
    pub bpm: Option<f64>,
    pub key_tonic: Option<f64>,
    pub key_mode: Option<f64>,
}

/// Call `f` for every track with at least one embedding, in id order, until it returns false.
/// Returns the number of tracks passed to `f`.
pub fn for_each_track(db: &Path, mut f: impl FnMut(TrackEmbeddings) -> bool) -> Result<u64, StoreError> {
    let fail = |reason: String| StoreError::Open { path: db.to_path_buf(), reason };
    let connection =
        Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .map_err(|e| fail(e.to_string()))?;
    connection.busy_timeout(std::time::Duration::from_secs(5))?;
    let mut statement = connection.prepare(
        "SELECT t.id, t.path, t.title, t.artist, t.album, t.genre, t.duration_s, p.model, p.top_label, p.embedding,
           (SELECT d.bpm FROM descriptors d WHERE d.track_id = t.id AND d.bpm IS NOT NULL ORDER BY d.plugin LIMIT 1),
           (SELECT d.key_tonic FROM descriptors d WHERE d.track_id = t.id AND d.key_tonic IS NOT NULL
            ORDER BY d.plugin LIMIT 1),
           (SELECT d.key_mode FROM descriptors d WHERE d.track_id = t.id AND d.key_mode IS NOT NULL
            ORDER BY d.plugin LIMIT 1)
         FROM tracks t JOIN predictions p ON p.track_id = t.id
         WHERE length(p.embedding) >= 4
         ORDER BY t.id, p.model",
    )?;
    let mut rows = statement.query([])?;
    let mut current: Option<TrackEmbeddings> = None;
    let mut count = 0;
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        let embedding = ModelEmbedding {
            model: row.get(7)?,
            top_label: row.get(8)?,
            embedding: row
                .get::<_, Vec<u8>>(9)?
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        };
        match &mut current {
            Some(track) if track.id == id => track.embeddings.push(embedding),
            _ => {
                if let Some(done) = current.take() {
                    count += 1;
                    if !f(done) {
                        return Ok(count);
                    }
                }
                current = Some(TrackEmbeddings {
                    id,
                    path: row.get(1)?,
                    tags: Tags { title: row.get(2)?, artist: row.get(3)?, album: row.get(4)?, genre: row.get(5)? },
                    duration_s: row.get(6)?,
                    embeddings: vec![embedding],
                    bpm: row.get(10)?,
                    key_tonic: row.get::<_, Option<i64>>(11)?.map(|v| v as f64),
                    key_mode: row.get::<_, Option<i64>>(12)?.map(|v| v as f64),
                });
            }
        }
    }
    if let Some(done) = current {
        count += 1;
        f(done);
    }
    Ok(count)
}
