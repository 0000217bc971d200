//! Any bytes as the embedded index's snapshot file: open it as the daemon does at start-up,
//! then use what was loaded (search exact and approximate, upsert, delete, save, reopen).
//!
//! The trailer (CRC-32 and end marker) is rewritten to match the body before the file is
//! written, so that mutations reach everything after the checksum check: an input that ends
//! with a trailer has it replaced, any other input gets one.

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use timbre_daemon::index::embedded::{Loaded, SearchOptions};
use timbre_daemon::index::{EmbeddedConfig, EmbeddedIndex, Filter, IndexPoint, Query, SpaceVector, Strategy};

const END: &[u8; 8] = b"TIMBREND";
/// Spaces wider than this are loaded but not searched (a query vector that wide is the
/// harness's allocation, not the index's).
const MAX_DIM: usize = 1024;

fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temporary directory").keep())
}

fn config() -> EmbeddedConfig {
    // A tiny exact limit, so that upserts train and drop approximate indexes.
    EmbeddedConfig { exact_limit: 4, nprobe: 2, threads: 1, ..EmbeddedConfig::default() }
}

fn with_trailer(data: &[u8]) -> Vec<u8> {
    let body = match data.len().checked_sub(12) {
        Some(n) if data.ends_with(END) => &data[..n],
        _ => data,
    };
    let mut file = body.to_vec();
    file.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    file.extend_from_slice(END);
    file
}

fn query(space: &str, dim: usize, strategy: Strategy, filter: Filter) -> Query {
    let positive = (0..dim).map(|i| 1.0 / (i + 1) as f32).collect();
    let negative = (0..dim).map(|i| if i % 2 == 0 { 1.0 } else { -1.0 }).collect();
    Query {
        space: space.to_string(),
        positive: vec![positive],
        negative: vec![negative],
        strategy,
        limit: 5,
        filter,
        with_vectors: true,
    }
}

fuzz_target!(|data: &[u8]| {
    let path = dir().join("index.timbre-ix");
    std::fs::write(&path, with_trailer(data)).expect("write the snapshot");
    let index = EmbeddedIndex::open(&path, config()).expect("only I/O errors fail opening");
    let Loaded::Snapshot { tracks } = index.loaded().clone() else { return };
    let fingerprints = index.fingerprints_blocking();
    assert_eq!(fingerprints.len(), tracks);
    let spaces = index.spaces();

    // A snapshot may name a space that no query or point could (the reader does not check
    // names); such a space is dead weight, never searched.
    let usable = |(name, dim): &&(String, usize)| *dim <= MAX_DIM && space_name_ok(name);
    for (name, dim) in spaces.iter().filter(usable) {
        let filter = Filter {
            genres: vec!["rock".into()],
            exclude_artists: vec!["a".into()],
            min_duration_s: Some(1.0),
            max_duration_s: Some(1e6),
            exclude_tracks: fingerprints.keys().take(1).copied().collect(),
            ..Filter::default()
        };
        for strategy in [Strategy::AverageVector, Strategy::BestScore] {
            for f in [Filter::default(), filter.clone()] {
                for exact in [true, false] {
                    let options = SearchOptions { exact, threads: Some(1), nprobe: Some(2) };
                    let hits = index.search_with(&query(name, *dim, strategy, f.clone()), options).expect("search");
                    assert!(hits.len() <= 5);
                    assert!(hits.iter().all(|h| fingerprints.contains_key(&h.track_id)));
                    assert!(hits.iter().all(|h| h.vector.as_ref().is_some_and(|v| v.len() == *dim)));
                }
            }
        }
    }

    // Change it: replace one track, add one, delete one; the index retrains where it must.
    let mut ids: Vec<i64> = fingerprints.keys().copied().collect();
    ids.sort();
    let vectors: Vec<SpaceVector> = spaces
        .iter()
        .filter(usable)
        .map(|(name, dim)| SpaceVector { space: name.clone(), vector: vec![0.5; *dim], label: "rock".into() })
        .collect();
    let point = |track_id| IndexPoint {
        track_id,
        path: format!("/music/{track_id}.flac"),
        genre: "Rock".into(),
        artist: "A".into(),
        album: "B".into(),
        duration_s: 200.0,
        vectors: vectors.clone(),
        bpm: Some(128.0),
        key: timbre_daemon::camelot::Camelot::from_code(14),
    };
    let new_id = ids.last().map_or(1, |id| id.wrapping_add(1));
    let mut points = vec![point(new_id)];
    points.extend(ids.first().map(|&id| point(id)));
    index.upsert_blocking(points).expect("upsert");
    if let Some(&id) = ids.get(1) {
        index.delete_blocking(&[id]);
    }

    // What is saved reads back the same.
    let before = index.fingerprints_blocking();
    index.save().expect("save");
    drop(index);
    let reopened = EmbeddedIndex::open(&path, config()).expect("reopen");
    assert!(matches!(reopened.loaded(), Loaded::Snapshot { .. }), "{:?}", reopened.loaded());
    assert_eq!(reopened.fingerprints_blocking(), before);
});

/// The index's rule for space names (a Qdrant vector name): queries and points naming other
/// spaces are refused.
fn space_name_ok(space: &str) -> bool {
    !space.is_empty() && space.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}
