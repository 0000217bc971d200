//! The library store: one SQLite file (WAL), one row per audio file, one row per model's
//! predictions for it. Every change is one transaction, so a crash or `kill -9` loses at
//! most the track being written and never leaves a half-written one.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::schema;
use crate::pipeline::classify;
use crate::pipeline::descriptors::{DescriptorResult, Summary};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("library database {}: {reason}", path.display())]
    Open { path: PathBuf, reason: String },
    #[error("library database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(
        "library database {p} is damaged ({detail}); timbred will not use it. Stop every timbred \
         using it, then recover what SQLite can still read (`sqlite3 {p} .recover | sqlite3 \
         {p}.recovered`, then move {p}.recovered over it), or move it aside and the next start \
         re-analyses the library from the audio files",
        p = path.display()
    )]
    Damaged { path: PathBuf, detail: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackState {
    Pending = 1,
    Analysed = 2,
    Failed = 3,
}

impl TrackState {
    fn from_i64(value: i64) -> Self {
        match value {
            2 => TrackState::Analysed,
            3 => TrackState::Failed,
            _ => TrackState::Pending,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tags {
    pub title: String,
    pub artist: String,
    pub album: String,
    pub genre: String,
}

/// What `stat` says about a file: enough to notice most changes without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStat {
    pub size: u64,
    pub mtime_ns: i64,
}

impl FileStat {
    pub fn of(metadata: &std::fs::Metadata) -> Self {
        let mtime_ns = metadata
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(0);
        FileStat { size: metadata.len(), mtime_ns }
    }
}

/// The versions that produced a model's stored predictions; a change means re-analysis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelVersion {
    pub model: String,
    pub model_version: String,
    pub feature_version: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StoredPrediction {
    pub version: ModelVersion,
    pub labels: Vec<String>,
    pub probabilities: Vec<f32>,
    pub embedding: Vec<f32>,
    pub segments: usize,
    pub analysed_at_ms: i64,
}

impl StoredPrediction {
    /// The most probable label (by [`classify::top`]); "" without labels. The `top_label` column
    /// and the vector index's predicted genre both come from here, so they always agree.
    /// For a tag model it is the strongest tag, however weak: a tag model has no one answer,
    /// but `ListTracks`' `label` filter reads "tracks whose strongest tag is X" usefully, and
    /// the stored row need not know the model's kind (clients get it from the loaded model).
    pub fn top_label(&self) -> &str {
        classify::top(&self.probabilities).and_then(|i| self.labels.get(i)).map_or("", String::as_str)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TrackRecord {
    pub id: i64,
    pub path: String,
    pub stat: FileStat,
    pub content_hash: String,
    pub tags: Tags,
    pub duration_s: f64,
    pub state: TrackState,
    pub error: String,
    pub analysed_at_ms: Option<i64>,
    pub predictions: Vec<StoredPrediction>,
    /// Each descriptor plugin's values (with its version), as stored.
    pub descriptors: Vec<DescriptorResult>,
    /// ReplayGain album gain over the tracks sharing this track's album tag; computed on read.
    pub album_gain_db: Option<f64>,
    /// ReplayGain album peak: the largest track peak over the same tracks; computed on read.
    pub album_peak: Option<f64>,
}

impl TrackRecord {
    /// The descriptors as answered: every value by name, with the album gain.
    pub fn summary(&self) -> Summary {
        Summary { replaygain_album_gain_db: self.album_gain_db, ..Summary::of(&self.descriptors) }
    }
}

/// One listening event: a track started at `at_ms` (unix ms) and played for `played_s`.
#[derive(Debug, Clone, PartialEq)]
pub struct Listen {
    pub track_id: i64,
    pub at_ms: i64,
    pub played_s: f64,
    /// The listener moved on before the track's end.
    pub skipped: bool,
}

/// One write of tags into a file, as recorded for `timbred tag --undo`.
#[derive(Debug, Clone, PartialEq)]
pub struct TagWrite {
    pub id: i64,
    pub track_id: i64,
    pub path: String,
    pub written_at_ms: i64,
    /// JSON, as the tagger wrote it: each field's tag with its old and new values.
    pub fields: String,
}

/// `ListTracks` filters; all that are set must match.
#[derive(Debug, Clone, Default)]
pub struct TrackFilter {
    pub genre: Option<String>,
    pub model: Option<String>,
    pub label: Option<String>,
    /// Tempo range, inclusive; with `bpm_octaves`, half or double the tempo in range also matches.
    pub bpm_min: Option<f64>,
    pub bpm_max: Option<f64>,
    pub bpm_octaves: bool,
}

pub struct Store {
    path: PathBuf,
    connection: Mutex<Connection>,
}

/// A track's file facts: `stat`, digest and tags.
fn update_file(c: &Connection, id: i64, stat: FileStat, hash: &str, tags: &Tags) -> rusqlite::Result<usize> {
    c.execute(
        "UPDATE tracks SET size = ?2, mtime_ns = ?3, content_hash = ?4, title = ?5, artist = ?6, album = ?7,
         genre = ?8, updated_at = ?9 WHERE id = ?1",
        params![id, stat.size as i64, stat.mtime_ns, hash, tags.title, tags.artist, tags.album, tags.genre, now_ms()],
    )
}

const TRACK_COLUMNS: &str = "id, path, size, mtime_ns, content_hash, title, artist, album, genre, duration_s, state, \
                             error, analysed_at";

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn track_from_row(row: &Row) -> rusqlite::Result<TrackRecord> {
    Ok(TrackRecord {
        id: row.get(0)?,
        path: row.get(1)?,
        stat: FileStat { size: row.get::<_, i64>(2)? as u64, mtime_ns: row.get(3)? },
        content_hash: row.get(4)?,
        tags: Tags { title: row.get(5)?, artist: row.get(6)?, album: row.get(7)?, genre: row.get(8)? },
        duration_s: row.get(9)?,
        state: TrackState::from_i64(row.get(10)?),
        error: row.get(11)?,
        analysed_at_ms: row.get(12)?,
        predictions: Vec::new(),
        descriptors: Vec::new(),
        album_gain_db: None,
        album_peak: None,
    })
}

fn floats_to_blob(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn blob_to_floats(blob: &[u8]) -> Vec<f32> {
    blob.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

impl Store {
    /// Open (creating the folder and file if needed) and migrate the database.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let fail = |reason: String| StoreError::Open { path: path.to_path_buf(), reason };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| fail(format!("cannot create {}: {e}", dir.display())))?;
        }
        let damaged = |detail: String| StoreError::Damaged { path: path.to_path_buf(), detail };
        let sqlite_fail = |e: rusqlite::Error| match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase) => damaged(e.to_string()),
            _ => fail(e.to_string()),
        };
        let mut connection = Connection::open(path).map_err(sqlite_fail)?;
        // WAL: readers never block the writer, and a killed process leaves a consistent file.
        // synchronous=NORMAL is durable against process crashes (not power loss) in WAL mode.
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
                 PRAGMA busy_timeout = 5000;",
            )
            .map_err(sqlite_fail)?;
        // A damaged file is found now, with advice, rather than as INTERNAL errors later.
        let check: String = connection.query_row("PRAGMA quick_check(1)", [], |row| row.get(0)).map_err(sqlite_fail)?;
        if check != "ok" {
            return Err(damaged(format!("quick_check: {check}")));
        }
        schema::migrate(&mut connection).map_err(fail)?;
        Ok(Store { path: path.to_path_buf(), connection: Mutex::new(connection) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T, StoreError> {
        let mut connection = self.connection.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(f(&mut connection)?)
    }

    /// While `refuse` holds, every write fails and reads still work, as on a full disk: for
    /// tests of what callers do when a result cannot be stored. `query_only` applies to this
    /// connection, the only one the store writes through.
    #[cfg(test)]
    pub(crate) fn refuse_writes(&self, refuse: bool) {
        self.with(|c| c.pragma_update(None, "query_only", refuse)).expect("PRAGMA query_only");
    }

    pub fn track(&self, id: i64) -> Result<Option<TrackRecord>, StoreError> {
        self.with(|c| {
            let track = c
                .query_row(&format!("SELECT {TRACK_COLUMNS} FROM tracks WHERE id = ?1"), [id], track_from_row)
                .optional()?;
            track.map(|t| with_predictions(c, t)).transpose()
        })
    }

    pub fn track_by_path(&self, path: &str) -> Result<Option<TrackRecord>, StoreError> {
        self.with(|c| {
            let track = c
                .query_row(&format!("SELECT {TRACK_COLUMNS} FROM tracks WHERE path = ?1"), [path], track_from_row)
                .optional()?;
            track.map(|t| with_predictions(c, t)).transpose()
        })
    }

    /// Tracks whose content has this digest.
    pub fn tracks_with_hash(&self, hash: &str) -> Result<Vec<TrackRecord>, StoreError> {
        self.with(|c| {
            let mut statement =
                c.prepare_cached(&format!("SELECT {TRACK_COLUMNS} FROM tracks WHERE content_hash = ?1 ORDER BY id"))?;
            let tracks = statement.query_map([hash], track_from_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
            tracks.into_iter().map(|t| with_predictions(c, t)).collect()
        })
    }

    /// A new file, waiting for analysis. Returns its id.
    pub fn insert(&self, path: &str, stat: FileStat, hash: &str, tags: &Tags) -> Result<i64, StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO tracks (path, size, mtime_ns, content_hash, title, artist, album, genre, state, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 1, ?9)",
                params![path, stat.size as i64, stat.mtime_ns, hash, tags.title, tags.artist, tags.album, tags.genre, now_ms()],
            )?;
            Ok(c.last_insert_rowid())
        })
    }

    /// The file's content changed: new digest and tags, old predictions dropped.
    pub fn replace_content(&self, id: i64, stat: FileStat, hash: &str, tags: &Tags) -> Result<(), StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute("DELETE FROM predictions WHERE track_id = ?1", [id])?;
            update_file(&tx, id, stat, hash, tags)?;
            tx.execute("UPDATE tracks SET state = 1, error = '', duration_s = 0 WHERE id = ?1", [id])?;
            tx.commit()
        })
    }

    /// Same content, new `stat` (touched, copied back in place).
    pub fn update_stat(&self, id: i64, stat: FileStat) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE tracks SET size = ?2, mtime_ns = ?3, updated_at = ?4 WHERE id = ?1",
                params![id, stat.size as i64, stat.mtime_ns, now_ms()],
            )?;
            Ok(())
        })
    }

    /// Same audio, other bytes (tags edited): new `stat`, digest and tags; the analysis stays.
    pub fn refresh_file(&self, id: i64, stat: FileStat, hash: &str, tags: &Tags) -> Result<(), StoreError> {
        self.with(|c| update_file(c, id, stat, hash, tags).map(drop))
    }

    /// The same content under another kind of digest (a legacy whole-file one replaced).
    pub fn update_hash(&self, id: i64, hash: &str) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute("UPDATE tracks SET content_hash = ?2 WHERE id = ?1", params![id, hash])?;
            Ok(())
        })
    }

    /// Whether some analysed track still has a digest that is not of its audio stream.
    pub fn has_legacy_hashes(&self) -> Result<bool, StoreError> {
        self.with(|c| {
            c.query_row(
                "SELECT EXISTS (SELECT 1 FROM tracks WHERE state = 2 AND substr(content_hash, 1, 13) != 'audio-sha256:')",
                [],
                |r| r.get(0),
            )
        })
    }

    /// Record tags written into track `id`'s file. Returns the record's id.
    pub fn record_tag_write(&self, id: i64, path: &str, fields: &str) -> Result<i64, StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO tag_writes (track_id, path, written_at, fields) VALUES (?1, ?2, ?3, ?4)",
                params![id, path, now_ms(), fields],
            )?;
            Ok(c.last_insert_rowid())
        })
    }

    /// The latest write into track `id`'s file that has not been undone.
    pub fn latest_tag_write(&self, id: i64) -> Result<Option<TagWrite>, StoreError> {
        self.with(|c| {
            c.query_row(
                "SELECT id, track_id, path, written_at, fields FROM tag_writes WHERE track_id = ?1 AND undone_at IS NULL
                 ORDER BY id DESC LIMIT 1",
                [id],
                |row| {
                    Ok(TagWrite {
                        id: row.get(0)?,
                        track_id: row.get(1)?,
                        path: row.get(2)?,
                        written_at_ms: row.get(3)?,
                        fields: row.get(4)?,
                    })
                },
            )
            .optional()
        })
    }

    /// Every track with a write that stands, by id: what `timbred tag --undo` with no path undoes.
    pub fn tracks_with_tag_writes(&self) -> Result<Vec<i64>, StoreError> {
        self.with(|c| {
            let mut statement =
                c.prepare_cached("SELECT DISTINCT track_id FROM tag_writes WHERE undone_at IS NULL ORDER BY track_id")?;
            let rows = statement.query_map([], |row| row.get(0))?;
            rows.collect()
        })
    }

    pub fn mark_tag_write_undone(&self, write_id: i64) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute("UPDATE tag_writes SET undone_at = ?2 WHERE id = ?1", params![write_id, now_ms()])?;
            Ok(())
        })
    }

    /// The file was moved or renamed: it keeps its id and its analysis.
    pub fn move_track(&self, id: i64, path: &str, stat: FileStat) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE tracks SET path = ?2, size = ?3, mtime_ns = ?4, updated_at = ?5 WHERE id = ?1",
                params![id, path, stat.size as i64, stat.mtime_ns, now_ms()],
            )?;
            Ok(())
        })
    }

    /// Store one analysis: the duration and each model's predictions, in one transaction.
    /// Models not in `predictions` keep what they had.
    pub fn save_analysis(&self, id: i64, duration_s: f64, predictions: &[StoredPrediction]) -> Result<(), StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            let now = now_ms();
            for p in predictions {
                let top = p.top_label();
                tx.execute(
                    "INSERT OR REPLACE INTO predictions (track_id, model, model_version, feature_version, labels,
                     probabilities, embedding, top_label, segments, analysed_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    params![
                        id,
                        p.version.model,
                        p.version.model_version,
                        p.version.feature_version,
                        serde_json::to_string(&p.labels).expect("strings serialise"),
                        floats_to_blob(&p.probabilities),
                        floats_to_blob(&p.embedding),
                        top,
                        p.segments as i64,
                        now,
                    ],
                )?;
            }
            tx.execute(
                "UPDATE tracks SET duration_s = ?2, state = 2, error = '', analysed_at = ?3, updated_at = ?3 WHERE id = ?1",
                params![id, duration_s, now],
            )?;
            tx.commit()
        })
    }

    /// Store each descriptor plugin's result for track `id`, replacing that plugin's previous one.
    pub fn save_descriptors(&self, id: i64, results: &[DescriptorResult]) -> Result<(), StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            let now = now_ms();
            for r in results {
                let vals: serde_json::Map<String, serde_json::Value> = r
                    .values
                    .iter()
                    .map(|(n, v)| {
                        (n.clone(), if v.is_finite() { serde_json::json!(v) } else { serde_json::Value::Null })
                    })
                    .collect();
                let nz: Vec<(usize, f32)> =
                    r.state.iter().enumerate().filter(|(_, v)| **v != 0.0).map(|(i, v)| (i, *v)).collect();
                let state = serde_json::json!({ "len": r.state.len(), "nz": nz });
                tx.execute(
                    "INSERT OR REPLACE INTO descriptors (track_id, plugin, version, vals, state, error, bpm, key_tonic,
                     key_mode, analysed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    params![
                        id,
                        r.plugin,
                        r.version,
                        serde_json::Value::Object(vals).to_string(),
                        state.to_string(),
                        r.error.clone().unwrap_or_default(),
                        r.value("bpm"),
                        r.value("key_tonic").map(|v| v as i64),
                        r.value("key_mode").map(|v| v as i64),
                        now,
                    ],
                )?;
            }
            tx.commit()
        })
    }

    pub fn save_failure(&self, id: i64, error: &str) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE tracks SET state = 3, error = ?2, analysed_at = ?3, updated_at = ?3 WHERE id = ?1",
                params![id, error, now_ms()],
            )?;
            Ok(())
        })
    }

    /// Give `to` the predictions of `from` (same content), so a copy is not analysed again.
    pub fn copy_analysis(&self, from: &TrackRecord, to: i64) -> Result<(), StoreError> {
        self.save_analysis(to, from.duration_s, &from.predictions)?;
        self.save_descriptors(to, &from.descriptors)
    }

    pub fn remove(&self, id: i64) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute("DELETE FROM tracks WHERE id = ?1", [id])?;
            Ok(())
        })
    }

    /// `(id, path)` of every track at `path` or below it.
    pub fn paths_under(&self, path: &str) -> Result<Vec<(i64, String)>, StoreError> {
        let prefix = format!("{}/", path.trim_end_matches('/'));
        self.with(|c| {
            let mut statement = c.prepare_cached(
                "SELECT id, path FROM tracks WHERE path = ?1 OR substr(path, 1, length(?2)) = ?2 ORDER BY id",
            )?;
            let rows = statement.query_map(params![path, prefix], |row| Ok((row.get(0)?, row.get(1)?)))?;
            rows.collect()
        })
    }

    /// One page of tracks with `id > after`, ordered by id, and the number matching in all.
    pub fn list(&self, filter: &TrackFilter, after: i64, limit: usize) -> Result<(Vec<TrackRecord>, u64), StoreError> {
        const WHERE: &str = "(?1 IS NULL OR t.genre = ?1 COLLATE NOCASE)
            AND (?2 IS NULL OR EXISTS (SELECT 1 FROM predictions p WHERE p.track_id = t.id AND p.model = ?2
                 AND (?3 IS NULL OR p.top_label = ?3 COLLATE NOCASE)))
            AND (?3 IS NULL OR ?2 IS NOT NULL OR EXISTS (SELECT 1 FROM predictions p WHERE p.track_id = t.id
                 AND p.top_label = ?3 COLLATE NOCASE))
            AND ((?6 IS NULL AND ?7 IS NULL) OR EXISTS (SELECT 1 FROM descriptors d WHERE d.track_id = t.id
                 AND d.bpm IS NOT NULL AND (
                     (d.bpm >= coalesce(?6, 0) AND d.bpm <= coalesce(?7, 1e9))
                     OR (?8 AND d.bpm * 2 >= coalesce(?6, 0) AND d.bpm * 2 <= coalesce(?7, 1e9))
                     OR (?8 AND d.bpm / 2 >= coalesce(?6, 0) AND d.bpm / 2 <= coalesce(?7, 1e9)))))";
        self.with(|c| {
            let (bpm_min, bpm_max, octaves) = (filter.bpm_min, filter.bpm_max, filter.bpm_octaves);
            let filters = params![filter.genre, filter.model, filter.label, 0, 0, bpm_min, bpm_max, octaves];
            let total: i64 =
                c.query_row(&format!("SELECT count(*) FROM tracks t WHERE {WHERE}"), filters, |r| r.get(0))?;
            let mut statement = c.prepare_cached(&format!(
                "SELECT {TRACK_COLUMNS} FROM tracks t WHERE {WHERE} AND t.id > ?4 ORDER BY t.id LIMIT ?5"
            ))?;
            let tracks = statement
                .query_map(
                    params![filter.genre, filter.model, filter.label, after, limit as i64, bpm_min, bpm_max, octaves],
                    track_from_row,
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let tracks = tracks.into_iter().map(|t| with_predictions(c, t)).collect::<rusqlite::Result<_>>()?;
            Ok((tracks, total as u64))
        })
    }

    pub fn count(&self) -> Result<u64, StoreError> {
        self.with(|c| c.query_row("SELECT count(*) FROM tracks", [], |r| r.get::<_, i64>(0)).map(|n| n as u64))
    }

    /// Record that a track was listened to. Returns the event's id.
    pub fn record_listen(&self, listen: &Listen) -> Result<i64, StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO listens (track_id, at_ms, played_s, skipped) VALUES (?1, ?2, ?3, ?4)",
                params![listen.track_id, listen.at_ms, listen.played_s, listen.skipped],
            )?;
            Ok(c.last_insert_rowid())
        })
    }

    /// Listening events at or after `since_ms`, the latest first.
    pub fn listens_since(&self, since_ms: i64) -> Result<Vec<Listen>, StoreError> {
        self.with(|c| {
            let mut statement = c.prepare_cached(
                "SELECT track_id, at_ms, played_s, skipped FROM listens WHERE at_ms >= ?1 ORDER BY at_ms DESC, id DESC",
            )?;
            let rows = statement.query_map([since_ms], |row| {
                Ok(Listen { track_id: row.get(0)?, at_ms: row.get(1)?, played_s: row.get(2)?, skipped: row.get(3)? })
            })?;
            rows.collect()
        })
    }

    /// Flush the WAL into the main file; done at shutdown so the file stands alone.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.with(|c| c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);"))
    }
}

/// One stored descriptors row: `(plugin, version, vals, state, error)` back into a result.
fn descriptor_from_row(row: &Row) -> rusqlite::Result<DescriptorResult> {
    let vals: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&row.get::<_, String>(2)?).unwrap_or_default();
    let state: serde_json::Value = serde_json::from_str(&row.get::<_, String>(3)?).unwrap_or_default();
    let mut dense = vec![0f32; state["len"].as_u64().unwrap_or(0) as usize];
    for pair in state["nz"].as_array().into_iter().flatten() {
        if let (Some(i), Some(v)) = (pair[0].as_u64(), pair[1].as_f64()) {
            if let Some(slot) = dense.get_mut(i as usize) {
                *slot = v as f32;
            }
        }
    }
    let error: String = row.get(4)?;
    Ok(DescriptorResult {
        plugin: row.get(0)?,
        version: row.get(1)?,
        values: vals.into_iter().map(|(n, v)| (n, v.as_f64().unwrap_or(f64::NAN))).collect(),
        state: dense,
        error: (!error.is_empty()).then_some(error),
    })
}

/// The track's descriptors, and its album gain over every track sharing its album tag
/// (album peak: the largest track peak, which needs no computing here).
fn with_descriptors(c: &Connection, mut track: TrackRecord) -> rusqlite::Result<TrackRecord> {
    let mut statement = c.prepare_cached(
        "SELECT plugin, version, vals, state, error FROM descriptors WHERE track_id = ?1 ORDER BY plugin",
    )?;
    track.descriptors = statement.query_map([track.id], descriptor_from_row)?.collect::<rusqlite::Result<_>>()?;
    let has_histogram = track.descriptors.iter().any(|d| !d.state.is_empty());
    if has_histogram && !track.tags.album.is_empty() {
        let mut statement = c.prepare_cached(
            "SELECT d.plugin, d.version, d.vals, d.state, d.error FROM descriptors d JOIN tracks t ON t.id = d.track_id
             WHERE t.album = ?1 AND d.plugin = 'descriptors'",
        )?;
        let album: Vec<DescriptorResult> =
            statement.query_map([&track.tags.album], descriptor_from_row)?.collect::<rusqlite::Result<_>>()?;
        track.album_peak =
            album.iter().filter_map(|d| d.value("replaygain_track_peak")).filter(|p| p.is_finite()).reduce(f64::max);
        let histograms: Vec<_> =
            album.into_iter().filter_map(|d| timbre_descriptors::BlockHistogram::from_counts(d.state)).collect();
        let refs: Vec<_> = histograms.iter().collect();
        track.album_gain_db = timbre_descriptors::album_gain(&refs);
    }
    Ok(track)
}

fn with_predictions(c: &Connection, mut track: TrackRecord) -> rusqlite::Result<TrackRecord> {
    let mut statement = c.prepare_cached(
        "SELECT model, model_version, feature_version, labels, probabilities, embedding, segments, analysed_at
         FROM predictions WHERE track_id = ?1 ORDER BY model",
    )?;
    let (id, path) = (track.id, track.path.clone());
    track.predictions = statement
        .query_map([track.id], |row| {
            let model: String = row.get(0)?;
            // A damaged row is an error naming the track, never a prediction whose labels and
            // probabilities disagree (which would panic whoever pairs them up).
            let damaged = |reason: String| {
                let error = DamagedRow(format!(
                    "track {id} ({path}), model {model}: {reason}; rescan it (`timbre scan --full`)"
                ));
                rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, Box::new(error))
            };
            let labels: Vec<String> = serde_json::from_str(&row.get::<_, String>(3)?)
                .map_err(|e| damaged(format!("its labels are unreadable ({e})")))?;
            let probabilities = blob_to_floats(&row.get::<_, Vec<u8>>(4)?);
            if labels.len() != probabilities.len() {
                return Err(damaged(format!("{} labels but {} probabilities", labels.len(), probabilities.len())));
            }
            Ok(StoredPrediction {
                version: ModelVersion { model, model_version: row.get(1)?, feature_version: row.get(2)? },
                labels,
                probabilities,
                embedding: blob_to_floats(&row.get::<_, Vec<u8>>(5)?),
                segments: row.get::<_, i64>(6)? as usize,
                analysed_at_ms: row.get(7)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    with_descriptors(c, track)
}

/// A stored row that cannot be what the store wrote.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct DamagedRow(String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_damaged_prediction_row_is_an_error_naming_the_track() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("library.sqlite3")).expect("open");
        let id = store.insert("/m/a.flac", FileStat { size: 1, mtime_ns: 1 }, "h", &Tags::default()).expect("insert");
        store.save_analysis(id, 3.0, &[prediction("cnn", "1", vec![0.25, 0.75])]).expect("save");
        for labels in ["not json", "[\"rock\"]"] {
            store
                .with(|c| {
                    c.execute("UPDATE predictions SET labels = ?1 WHERE track_id = ?2", rusqlite::params![labels, id])
                })
                .expect("damage the row");
            let error = store.track(id).expect_err("damaged").to_string();
            assert!(error.contains("track 1 (/m/a.flac), model cnn"), "{error}");
            assert!(store.list(&Default::default(), 0, 10).is_err(), "listing fails rather than panicking");
        }
    }

    #[test]
    fn the_stored_top_label_of_a_tie_is_the_one_served_first() {
        let tie = prediction("cnn", "1", vec![0.5, 0.5]);
        let served_first = classify::ranked(&tie.probabilities, 1)[0];
        assert_eq!(tie.top_label(), tie.labels[served_first]);
        assert_eq!(tie.top_label(), "rock");
    }

    fn prediction(model: &str, version: &str, probabilities: Vec<f32>) -> StoredPrediction {
        StoredPrediction {
            version: ModelVersion { model: model.into(), model_version: version.into(), feature_version: "mel".into() },
            labels: vec!["rock".into(), "jazz".into()],
            probabilities,
            embedding: vec![0.6, 0.8],
            segments: 3,
            analysed_at_ms: 0,
        }
    }

    #[test]
    fn a_track_round_trips_with_its_predictions_and_survives_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("db/library.sqlite3");
        let stat = FileStat { size: 10, mtime_ns: 5 };
        let tags = Tags { title: "T".into(), artist: "A".into(), album: "B".into(), genre: "Rock".into() };
        let id = {
            let store = Store::open(&file).expect("open");
            let id = store.insert("/music/a.flac", stat, "abc", &tags).expect("insert");
            store.save_analysis(id, 30.0, &[prediction("cnn", "1", vec![0.25, 0.75])]).expect("save");
            id
        };
        let store = Store::open(&file).expect("reopen");
        let track = store.track(id).expect("query").expect("present");
        assert_eq!(track.path, "/music/a.flac");
        assert_eq!(track.tags, tags);
        assert_eq!(track.state, TrackState::Analysed);
        assert_eq!(track.predictions.len(), 1);
        assert_eq!(track.predictions[0].probabilities, vec![0.25, 0.75]);
        assert_eq!(track.predictions[0].embedding, vec![0.6, 0.8]);

        let (page, total) =
            store.list(&TrackFilter { label: Some("jazz".into()), ..Default::default() }, 0, 10).expect("list");
        assert_eq!((page.len(), total), (1, 1));
        let (page, total) = store
            .list(&TrackFilter { model: Some("cnn".into()), label: Some("rock".into()), ..Default::default() }, 0, 10)
            .expect("list");
        assert_eq!((page.len(), total), (0, 0));
        let (page, _) =
            store.list(&TrackFilter { genre: Some("rock".into()), ..Default::default() }, 0, 10).expect("list");
        assert_eq!(page.len(), 1, "genre matches case-insensitively");
    }

    #[test]
    fn paths_under_a_folder_do_not_include_its_namesakes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("l.sqlite3")).expect("open");
        let stat = FileStat { size: 1, mtime_ns: 1 };
        for path in ["/m/a/1.flac", "/m/a/b/2.flac", "/m/ab/3.flac"] {
            store.insert(path, stat, path, &Tags::default()).expect("insert");
        }
        let under: Vec<String> = store.paths_under("/m/a").expect("query").into_iter().map(|(_, p)| p).collect();
        assert_eq!(under, ["/m/a/1.flac", "/m/a/b/2.flac"]);
    }

    #[test]
    fn listens_survive_reopening_latest_first_and_go_with_their_track() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("library.sqlite3");
        let store = Store::open(&path).expect("open");
        let stat = FileStat { size: 1, mtime_ns: 1 };
        let a = store.insert("/m/a.flac", stat, "ha", &Tags::default()).expect("insert");
        let b = store.insert("/m/b.flac", stat, "hb", &Tags::default()).expect("insert");
        let listen = |track_id, at_ms, skipped| Listen { track_id, at_ms, played_s: 2.5, skipped };
        store.record_listen(&listen(a, 1_000, false)).expect("record");
        store.record_listen(&listen(b, 3_000, true)).expect("record");
        store.record_listen(&listen(a, 2_000, false)).expect("record");
        drop(store);
        let store = Store::open(&path).expect("reopen");
        let all = store.listens_since(0).expect("listens");
        assert_eq!(all, vec![listen(b, 3_000, true), listen(a, 2_000, false), listen(a, 1_000, false)]);
        assert_eq!(store.listens_since(2_000).expect("listens").len(), 2, "from `since_ms` on");
        store.remove(b).expect("remove");
        assert!(
            store.listens_since(0).expect("listens").iter().all(|l| l.track_id == a),
            "a removed track's listens go"
        );
    }

    #[test]
    fn a_path_is_stored_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("l.sqlite3")).expect("open");
        let stat = FileStat { size: 1, mtime_ns: 1 };
        store.insert("/m/x.flac", stat, "h", &Tags::default()).expect("insert");
        assert!(store.insert("/m/x.flac", stat, "h", &Tags::default()).is_err());
        assert_eq!(store.count().expect("count"), 1);
    }
}
