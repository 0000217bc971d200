//! The library database's schema, as an ordered list of migrations. `PRAGMA user_version`
//! records how many have run; each runs in its own transaction, so a crash mid-migration
//! leaves the previous version intact.

use rusqlite::Connection;

/// Migration `i` takes the schema from version `i` to `i + 1`. Append only: never edit one
/// that has shipped.
const MIGRATIONS: &[&str] = &[
    // 1: tracks and their per-model predictions.
    r#"
    CREATE TABLE tracks (
        id            INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused
        path          TEXT    NOT NULL UNIQUE,
        size          INTEGER NOT NULL,
        mtime_ns      INTEGER NOT NULL,
        content_hash  TEXT    NOT NULL,
        title         TEXT    NOT NULL DEFAULT '',
        artist        TEXT    NOT NULL DEFAULT '',
        album         TEXT    NOT NULL DEFAULT '',
        genre         TEXT    NOT NULL DEFAULT '',
        duration_s    REAL    NOT NULL DEFAULT 0,
        state         INTEGER NOT NULL,              -- 1 pending, 2 analysed, 3 failed
        error         TEXT    NOT NULL DEFAULT '',
        analysed_at   INTEGER,                       -- unix ms of the last analysis
        updated_at    INTEGER NOT NULL
    );
    CREATE INDEX tracks_content_hash ON tracks(content_hash);
    CREATE INDEX tracks_genre ON tracks(genre COLLATE NOCASE);

    CREATE TABLE predictions (
        track_id        INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
        model           TEXT    NOT NULL,
        model_version   TEXT    NOT NULL,  -- manifest version + model file digest
        feature_version TEXT    NOT NULL,  -- feature plugin, its version and parameters
        labels          TEXT    NOT NULL,  -- JSON array, the model's label order
        probabilities   BLOB    NOT NULL,  -- f32 little-endian, in label order
        embedding       BLOB    NOT NULL,  -- f32 little-endian, L2-normalised
        top_label       TEXT    NOT NULL,
        segments        INTEGER NOT NULL,
        analysed_at     INTEGER NOT NULL,
        PRIMARY KEY (track_id, model)
    );
    CREATE INDEX predictions_top_label ON predictions(model, top_label);
    "#,
    // 2: per-track descriptors (tempo, key, loudness), one row per descriptor plugin.
    r#"
    CREATE TABLE descriptors (
        track_id     INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
        plugin       TEXT    NOT NULL,
        version      TEXT    NOT NULL,  -- plugin version and configuration
        vals         TEXT    NOT NULL,  -- JSON object, name -> number or null (undefined)
        state        TEXT    NOT NULL,  -- JSON {"len": n, "nz": [[index, value], ...]}: sparse
        error        TEXT    NOT NULL DEFAULT '',
        bpm          REAL,              -- copied out of vals for filtering
        key_tonic    INTEGER,
        key_mode     INTEGER,
        analysed_at  INTEGER NOT NULL,
        PRIMARY KEY (track_id, plugin)
    );
    CREATE INDEX descriptors_bpm ON descriptors(bpm);
    "#,
    // 3: listening history (RecordListen), read by Recommend and Playlist.
    r#"
    CREATE TABLE listens (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        track_id    INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
        at_ms       INTEGER NOT NULL,  -- unix ms when the track started playing
        played_s    REAL    NOT NULL,  -- how long it was played
        skipped     INTEGER NOT NULL   -- 1: the listener moved on before its end
    );
    CREATE INDEX listens_at ON listens(at_ms);
    CREATE INDEX listens_track ON listens(track_id);
    "#,
    // 4: tags timbre wrote into audio files (`timbred tag`, tagging.write), one row per file
    // written, so `timbred tag --undo` can put the previous values back.
    r#"
    CREATE TABLE tag_writes (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        track_id    INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
        path        TEXT    NOT NULL,  -- where the file was when written
        written_at  INTEGER NOT NULL,  -- unix ms
        fields      TEXT    NOT NULL,  -- JSON [{"field", "tag", "old": [..] | null, "new": [..] | null}]
        undone_at   INTEGER            -- unix ms of the undo; NULL while the write stands
    );
    CREATE INDEX tag_writes_track ON tag_writes(track_id, id);
    "#,
];

/// Bring the database up to date; refuse one written by a newer timbred.
pub fn migrate(connection: &mut Connection) -> Result<(), String> {
    let current: usize = connection
        .pragma_query_value(None, "user_version", |row| row.get::<_, i64>(0))
        .map_err(|e| e.to_string())? as usize;
    if current > MIGRATIONS.len() {
        return Err(format!(
            "the database has schema version {current}, newer than this timbred knows ({}); upgrade timbred",
            MIGRATIONS.len()
        ));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = connection.transaction().map_err(|e| e.to_string())?;
        tx.execute_batch(sql).map_err(|e| format!("migration {}: {e}", index + 1))?;
        tx.pragma_update(None, "user_version", (index + 1) as i64).map_err(|e| e.to_string())?;
        tx.commit().map_err(|e| e.to_string())?;
    }
    Ok(())
}
