//! The embedded index on disk: one file, written whole and atomically.
//!
//! Writing goes to `<file>.tmp`, which is flushed and `fsync`ed, renamed over `<file>`, and the
//! directory is `fsync`ed: after a crash at any moment the file is either the previous
//! snapshot or the new one, never a mix. Reading checks the magic, the format version, every
//! length against the bytes left, and a CRC-32 of the whole body in the trailer; anything
//! off is reported as corrupt and the file is never used.
//!
//! Layout (little-endian):
//!
//! ```text
//! "TIMBREIX" u32:version u32:0
//! u64:strings  { u32:len bytes }
//! u64:tracks   { i64:id u64:fingerprint f64:duration_s u32:genre u32:artist u32:album u32:len path }
//! u64:spaces   { u32:len name u32:dim u64:trained_len u64:lists u8:has_centroids [f32 × lists·dim]
//!                { u64:rows i64×rows {u32 genre, u32 label, u32 artist, u32 album, f64 duration,
//!                                       f64 bpm, u8 key}×rows
//!                  f32×rows·dim } × lists }
//! u32:crc32 of everything above, "TIMBREND"
//! ```
//!
//! `bpm` is NaN and `key` 255 where unknown (`key` is a Camelot code, 0 to 23). Version 1
//! had neither; it is still read, as tracks without tempo or key, and the next sync from the
//! library gives them theirs (their fingerprints differ).

use std::collections::{BTreeMap, HashMap};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use super::space::{List, RowAttrs, Space, NO_KEY};
use super::{State, Strings, TrackMeta};

const MAGIC: &[u8; 8] = b"TIMBREIX";
const END: &[u8; 8] = b"TIMBREND";
const VERSION: u32 = 2;
/// The format before tempo and key were indexed; read, never written.
const VERSION_WITHOUT_DESCRIPTORS: u32 = 1;

/// Why a snapshot could not be read.
#[derive(Debug)]
pub(crate) enum LoadError {
    /// No snapshot yet.
    Missing,
    /// Reading failed (permissions, I/O): not the file's fault.
    Io(String),
    /// The file is not a complete snapshot of this format.
    Corrupt(String),
}

/// The temporary file a snapshot is written to before it replaces `path`.
pub(crate) fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Where a corrupt snapshot is moved, for inspection.
pub(crate) fn corrupt_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".corrupt");
    path.with_file_name(name)
}

struct CrcWriter<W: Write> {
    inner: W,
    crc: crc32fast::Hasher,
}

impl<W: Write> Write for CrcWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

struct Out<W: Write> {
    w: CrcWriter<W>,
    buf: Vec<u8>,
}

impl<W: Write> Out<W> {
    fn bytes(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.w.write_all(b)
    }
    fn u8(&mut self, v: u8) -> std::io::Result<()> {
        self.bytes(&[v])
    }
    fn u32(&mut self, v: u32) -> std::io::Result<()> {
        self.bytes(&v.to_le_bytes())
    }
    fn u64(&mut self, v: u64) -> std::io::Result<()> {
        self.bytes(&v.to_le_bytes())
    }
    fn str(&mut self, s: &str) -> std::io::Result<()> {
        self.u32(s.len() as u32)?;
        self.bytes(s.as_bytes())
    }
    fn f32s(&mut self, values: &[f32]) -> std::io::Result<()> {
        for chunk in values.chunks(16 * 1024) {
            self.buf.clear();
            self.buf.extend(chunk.iter().flat_map(|v| v.to_le_bytes()));
            self.w.write_all(&self.buf)?;
        }
        Ok(())
    }
    fn i64s(&mut self, values: &[i64]) -> std::io::Result<()> {
        for chunk in values.chunks(8 * 1024) {
            self.buf.clear();
            self.buf.extend(chunk.iter().flat_map(|v| v.to_le_bytes()));
            self.w.write_all(&self.buf)?;
        }
        Ok(())
    }
}

fn write_state<W: Write>(out: &mut Out<W>, state: &State) -> std::io::Result<()> {
    out.bytes(MAGIC)?;
    out.u32(VERSION)?;
    out.u32(0)?;
    out.u64(state.strings.values.len() as u64)?;
    for s in &state.strings.values {
        out.str(s)?;
    }
    out.u64(state.tracks.len() as u64)?;
    let mut ids: Vec<&i64> = state.tracks.keys().collect();
    ids.sort();
    for id in ids {
        let t = &state.tracks[id];
        out.u64(*id as u64)?;
        out.u64(t.fingerprint)?;
        out.u64(t.duration_s.to_bits())?;
        out.u32(t.genre)?;
        out.u32(t.artist)?;
        out.u32(t.album)?;
        out.str(&t.path)?;
    }
    out.u64(state.spaces.len() as u64)?;
    for (name, space) in &state.spaces {
        out.str(name)?;
        out.u32(space.dim as u32)?;
        out.u64(space.trained_len as u64)?;
        out.u64(space.lists.len() as u64)?;
        out.u8(u8::from(space.is_trained()))?;
        out.f32s(&space.centroids)?;
        for list in &space.lists {
            out.u64(list.len() as u64)?;
            out.i64s(&list.ids)?;
            for a in &list.attrs {
                out.u32(a.genre)?;
                out.u32(a.label)?;
                out.u32(a.artist)?;
                out.u32(a.album)?;
                out.u64(a.duration_s.to_bits())?;
                out.u64(a.bpm.to_bits())?;
                out.u8(a.key)?;
            }
            out.f32s(&list.vectors)?;
        }
    }
    Ok(())
}

/// Write `state` to `path` atomically (see the module documentation).
pub(crate) fn save(path: &Path, state: &State) -> Result<(), String> {
    let tmp = tmp_path(path);
    if let Some(dir) = path.parent() {
        fs_err::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    let file = fs_err::File::create(&tmp).map_err(|e| e.to_string())?;
    let mut out = Out {
        w: CrcWriter { inner: BufWriter::with_capacity(1 << 20, file), crc: crc32fast::Hasher::new() },
        buf: Vec::new(),
    };
    let written = write_state(&mut out, state).and_then(|()| {
        let crc = out.w.crc.clone().finalize();
        let inner = &mut out.w.inner;
        inner.write_all(&crc.to_le_bytes())?;
        inner.write_all(END)?;
        inner.flush()
    });
    if let Err(e) = written {
        let _ = fs_err::remove_file(&tmp);
        return Err(format!("writing {}: {e}", tmp.display()));
    }
    let file = out.w.inner.into_inner().map_err(|e| format!("writing {}: {}", tmp.display(), e.error()))?;
    file.sync_all().map_err(|e| e.to_string())?;
    drop(file);
    fs_err::rename(&tmp, path).map_err(|e| e.to_string())?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // The rename is durable once the directory is.
        fs_err::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| e.to_string())?;
    }
    Ok(())
}

struct In<R: Read> {
    r: R,
    crc: crc32fast::Hasher,
    /// Bytes left before the trailer.
    left: u64,
    buf: Vec<u8>,
}

type Load<T> = Result<T, LoadError>;

fn corrupt(reason: impl Into<String>) -> LoadError {
    LoadError::Corrupt(reason.into())
}

impl<R: Read> In<R> {
    fn bytes(&mut self, n: usize) -> Load<&[u8]> {
        if n as u64 > self.left {
            return Err(corrupt("truncated (a length runs past the end of the file)"));
        }
        self.buf.resize(n, 0);
        self.r.read_exact(&mut self.buf).map_err(|e| corrupt(format!("truncated: {e}")))?;
        self.crc.update(&self.buf);
        self.left -= n as u64;
        Ok(&self.buf)
    }
    fn u8(&mut self) -> Load<u8> {
        Ok(self.bytes(1)?[0])
    }
    fn u32(&mut self) -> Load<u32> {
        let b = self.bytes(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Load<u64> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn f64(&mut self) -> Load<f64> {
        Ok(f64::from_bits(self.u64()?))
    }
    /// A count of items of at least `size` bytes each, checked against the bytes left.
    fn count(&mut self, size: u64) -> Load<usize> {
        let n = self.u64()?;
        if n.saturating_mul(size.max(1)) > self.left {
            return Err(corrupt(format!("a count of {n} does not fit in the file")));
        }
        Ok(n as usize)
    }
    fn str(&mut self) -> Load<String> {
        let n = self.u32()? as usize;
        String::from_utf8(self.bytes(n)?.to_vec()).map_err(|_| corrupt("a string is not UTF-8"))
    }
    fn f32s(&mut self, n: usize) -> Load<Vec<f32>> {
        let mut out = Vec::with_capacity(n);
        let mut left = n;
        while left > 0 {
            let take = left.min(16 * 1024);
            let b = self.bytes(take * 4)?;
            out.extend(b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])));
            left -= take;
        }
        Ok(out)
    }
    fn i64s(&mut self, n: usize) -> Load<Vec<i64>> {
        let mut out = Vec::with_capacity(n);
        let mut left = n;
        while left > 0 {
            let take = left.min(8 * 1024);
            let b = self.bytes(take * 8)?;
            out.extend(b.chunks_exact(8).map(|c| {
                let mut a = [0u8; 8];
                a.copy_from_slice(c);
                i64::from_le_bytes(a)
            }));
            left -= take;
        }
        Ok(out)
    }
}

/// Read and verify a snapshot.
pub(crate) fn load(path: &Path) -> Load<State> {
    let file = match fs_err::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(LoadError::Missing),
        Err(e) => return Err(LoadError::Io(e.to_string())),
    };
    let size = file.metadata().map_err(|e| LoadError::Io(e.to_string()))?.len();
    let trailer = 4 + END.len() as u64;
    if size < MAGIC.len() as u64 + 8 + trailer {
        return Err(corrupt(format!("only {size} bytes")));
    }
    let mut input = In {
        r: BufReader::with_capacity(1 << 20, file),
        crc: crc32fast::Hasher::new(),
        left: size - trailer,
        buf: Vec::new(),
    };
    if input.bytes(8)? != MAGIC {
        return Err(corrupt("not a timbre index snapshot (bad magic)"));
    }
    let version = input.u32()?;
    if version != VERSION && version != VERSION_WITHOUT_DESCRIPTORS {
        return Err(corrupt(format!(
            "format version {version}, this timbred reads {VERSION_WITHOUT_DESCRIPTORS} to {VERSION}"
        )));
    }
    input.u32()?;
    let state = read_state(&mut input, version)?;
    if input.left != 0 {
        return Err(corrupt(format!("{} unexpected bytes before the trailer", input.left)));
    }
    let expected = input.crc.clone().finalize();
    let mut tail = [0u8; 12];
    input.r.read_exact(&mut tail).map_err(|e| corrupt(format!("truncated trailer: {e}")))?;
    if &tail[4..] != END {
        return Err(corrupt("missing end marker (the write did not finish)"));
    }
    let stored = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
    if stored != expected {
        return Err(corrupt(format!("checksum mismatch (stored {stored:08x}, computed {expected:08x})")));
    }
    Ok(state)
}

fn read_state<R: Read>(input: &mut In<R>, version: u32) -> Load<State> {
    let descriptors = version >= 2;
    let n = input.count(4)?;
    let mut strings = Strings::default();
    for i in 0..n {
        // A string seen before keeps its first id; every later id would then be off by one.
        let s = input.str()?;
        if strings.intern(s) as usize != i {
            return Err(corrupt("a string appears twice"));
        }
    }
    let known = |id: u32| -> Load<u32> {
        if (id as usize) < n {
            Ok(id)
        } else {
            Err(corrupt(format!("string id {id} out of range")))
        }
    };
    let n_tracks = input.count(44)?;
    let mut tracks = HashMap::with_capacity(n_tracks);
    for _ in 0..n_tracks {
        let id = input.u64()? as i64;
        let fingerprint = input.u64()?;
        let duration_s = input.f64()?;
        let genre = known(input.u32()?)?;
        let artist = known(input.u32()?)?;
        let album = known(input.u32()?)?;
        let path = input.str()?;
        if tracks.insert(id, TrackMeta { path, genre, artist, album, duration_s, fingerprint }).is_some() {
            return Err(corrupt(format!("track {id} appears twice")));
        }
    }
    let n_spaces = input.count(25)?;
    let mut spaces = BTreeMap::new();
    for _ in 0..n_spaces {
        let name = input.str()?;
        let dim = input.u32()? as usize;
        let trained_len = input.u64()? as usize;
        let n_lists = input.count(8)?;
        let has_centroids = input.u8()? == 1;
        if dim == 0 || n_lists == 0 {
            return Err(corrupt(format!("space `{name}`: dimension {dim}, {n_lists} lists")));
        }
        let centroids = if has_centroids {
            if (n_lists * dim) as u64 * 4 > input.left {
                return Err(corrupt("centroids run past the end of the file"));
            }
            input.f32s(n_lists * dim)?
        } else {
            Vec::new()
        };
        let mut lists = Vec::with_capacity(n_lists);
        for _ in 0..n_lists {
            let row_size = if descriptors { 8 + 24 + 9 } else { 8 + 24 };
            let rows = input.count(row_size + 4 * dim as u64)?;
            let ids = input.i64s(rows)?;
            let mut attrs = Vec::with_capacity(rows);
            for _ in 0..rows {
                attrs.push(RowAttrs {
                    genre: known(input.u32()?)?,
                    label: known(input.u32()?)?,
                    artist: known(input.u32()?)?,
                    album: known(input.u32()?)?,
                    duration_s: input.f64()?,
                    bpm: if descriptors { input.f64()? } else { f64::NAN },
                    key: if descriptors {
                        match input.u8()? {
                            key @ (0..24 | NO_KEY) => key,
                            key => return Err(corrupt(format!("key code {key} out of range"))),
                        }
                    } else {
                        NO_KEY
                    },
                });
            }
            let vectors = input.f32s(rows * dim)?;
            if let Some(id) = ids.iter().find(|id| !tracks.contains_key(id)) {
                return Err(corrupt(format!("space `{name}` holds track {id}, which has no entry")));
            }
            lists.push(List { ids, attrs, vectors });
        }
        let space = Space::from_parts(dim, lists, centroids, trained_len)
            .map_err(|e| corrupt(format!("space `{name}`: {e}")))?;
        spaces.insert(name, space);
    }
    Ok(State { strings, tracks, spaces, generation: 0 })
}

#[cfg(test)]
mod tests {
    use super::super::{EmbeddedIndex, Loaded};
    use super::*;
    use crate::index::{EmbeddedConfig, IndexPoint, SpaceVector};

    /// The snapshot the fuzzer's `index_snapshot` target starts from.
    fn fuzz_seed() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/index_snapshot/small.timbre-ix")
    }

    /// Six tracks in two spaces, one of them searched through an approximate index.
    fn write_fuzz_seed(path: &Path) {
        let index = EmbeddedIndex::open(path, EmbeddedConfig::default()).expect("open");
        let points = (1..=6i64)
            .map(|id| {
                let x = id as f32;
                IndexPoint {
                    track_id: id,
                    path: format!("/music/{id}.flac"),
                    genre: ["Rock", "Jazz", ""][id as usize % 3].into(),
                    artist: format!("artist {}", id % 2),
                    album: format!("album {id}"),
                    duration_s: 30.0 * id as f64,
                    vectors: vec![
                        SpaceVector { space: "cnn".into(), vector: vec![x, 1.0, -x, 0.5], label: "rock".into() },
                        SpaceVector { space: "pca-knn".into(), vector: vec![1.0, x, 2.0], label: "jazz".into() },
                    ],
                    // Every other track with a tempo and a key, as after a descriptors run.
                    bpm: (id % 2 == 0).then_some(60.0 + 15.0 * x as f64),
                    key: (id % 2 == 0).then(|| crate::camelot::Camelot::from_key(id as usize, id % 4 == 0)),
                }
            })
            .collect();
        index.upsert_blocking(points).expect("upsert");
        index.train_approximate("cnn");
        assert!(index.save().expect("save"));
    }

    /// The fuzzer's seed is a snapshot this version reads. After a change of format, rewrite it
    /// with `TIMBRE_WRITE_FUZZ_SEED=1 cargo test -p timbre-daemon fuzz_seed`.
    #[test]
    fn the_fuzz_seed_is_a_snapshot_this_version_reads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("index.timbre-ix");
        if std::env::var_os("TIMBRE_WRITE_FUZZ_SEED").is_some() {
            write_fuzz_seed(&path);
            fs_err::create_dir_all(fuzz_seed().parent().expect("a parent")).expect("mkdir");
            fs_err::copy(&path, fuzz_seed()).expect("copy the seed");
        }
        fs_err::copy(fuzz_seed(), &path).expect("the seed is committed");
        let index = EmbeddedIndex::open(&path, EmbeddedConfig::default()).expect("open");
        assert_eq!(index.loaded(), &Loaded::Snapshot { tracks: 6 });
        assert_eq!(index.spaces(), [("cnn".to_string(), 4), ("pca-knn".to_string(), 3)]);
        assert!(index.is_approximate("cnn") && !index.is_approximate("pca-knn"));
    }

    /// A snapshot of format 1 (before tempo and key were indexed) opens as tracks without
    /// either: a tempo or key filter passes none of them until the library's sync.
    #[tokio::test]
    async fn a_format_1_snapshot_reads_as_tracks_without_tempo_or_key() {
        use crate::index::{BpmRange, Filter, Query, VectorIndex};
        let v1 =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/index_snapshot/v1-without-tempo-key.timbre-ix");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("index.timbre-ix");
        fs_err::copy(v1, &path).expect("the format 1 snapshot is committed");
        let index = EmbeddedIndex::open(&path, EmbeddedConfig::default()).expect("open");
        assert_eq!(index.loaded(), &Loaded::Snapshot { tracks: 6 });
        let query = |filter: Filter| Query {
            space: "pca-knn".into(),
            positive: vec![vec![1.0, 2.0, 2.0]],
            limit: 10,
            filter,
            ..Default::default()
        };
        assert_eq!(index.query(query(Filter::default())).await.expect("query").len(), 6);
        let bpm = Filter { bpm: Some(BpmRange { min: Some(0.0), max: None, octaves: true }), ..Default::default() };
        assert!(index.query(query(bpm)).await.expect("query").is_empty());
        let keys = Filter { keys: crate::camelot::Camelot::from_code(0).into_iter().collect(), ..Default::default() };
        assert!(index.query(query(keys)).await.expect("query").is_empty());
    }

    /// Snapshots the fuzzer crashed the index with (fuzz/regressions/index_snapshot/), each
    /// given a valid trailer as the fuzz target does, opened, changed by an upsert that
    /// touches every space, saved and read back.
    #[test]
    fn fuzz_regressions_open_take_an_upsert_and_read_back() {
        let regressions = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions/index_snapshot");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("index.timbre-ix");
        for entry in fs_err::read_dir(&regressions).expect("the regressions folder") {
            let name = entry.expect("entry").path();
            let input = fs_err::read(&name).expect("read");
            let body = match input.len().checked_sub(12) {
                Some(n) if input.ends_with(END) => &input[..n],
                _ => &input[..],
            };
            let mut file = body.to_vec();
            file.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
            file.extend_from_slice(END);
            fs_err::write(&path, file).expect("write");
            let config = EmbeddedConfig { exact_limit: 4, threads: 1, ..EmbeddedConfig::default() };
            let index = EmbeddedIndex::open(&path, config.clone()).expect("open");
            let vectors = index
                .spaces()
                .into_iter()
                .filter(|(name, dim)| *dim <= 1024 && crate::index::check_space_name(name).is_ok())
                .map(|(space, dim)| SpaceVector { space, vector: vec![0.5; dim], label: "rock".into() })
                .collect();
            let point = IndexPoint {
                track_id: 1,
                path: "/music/1.flac".into(),
                genre: "rock".into(),
                artist: "a".into(),
                album: "b".into(),
                duration_s: 1.0,
                vectors,
                bpm: Some(128.0),
                key: crate::camelot::Camelot::parse("8A"),
            };
            index.upsert_blocking(vec![point]).expect("upsert");
            assert!(index.save().expect("save"));
            let reopened = EmbeddedIndex::open(&path, config).expect("reopen");
            assert!(
                matches!(reopened.loaded(), Loaded::Snapshot { .. }),
                "{}: {:?}",
                name.display(),
                reopened.loaded()
            );
        }
    }
}
