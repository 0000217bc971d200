//! Tests of the index layer. [`conformance`] is the suite every backend must pass: each query
//! the daemon makes (Recommend with one or several positive and negative examples under both
//! strategies, every filter (tempo ranges with and without octaves and harmonic keys among
//! them), Playlist steps excluding tracks, vectors returned), checked
//! against a brute-force reference computed here in f64, then again after deletes and
//! replacements. The embedded index runs it always; Qdrant when `QDRANT_URL` is set.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use timbre_rng::SplitMix64 as Rng;

use super::embedded::{Loaded, SearchOptions};
use super::filter::fold;
use super::scoring::normalised;
use super::*;
use crate::camelot::Camelot;
use crate::library::{FileStat, LibraryChange, ModelVersion, Store, StoredPrediction, Tags};
use crate::pipeline::descriptors::DescriptorResult;

const GENRES: &[&str] = &["Rock", "rock ", "jazz", "Hip Hop", "classical", "blues", ""];
const LABELS: &[&str] = &["rock", "jazz", "hip hop", "classical", "blues", "metal"];
/// Spaces of the synthetic library and their sizes (small, for debug builds).
const SPACES: &[(&str, usize)] = &[("cnn", 24), ("cnn-lstm", 12)];

fn unit_vector(rng: &mut Rng, dim: usize) -> Vec<f32> {
    normalised(&(0..dim).map(|_| rng.normal()).collect::<Vec<_>>())
}

/// Tempos of the synthetic library: a range's ends, octaves of them, and no tempo at all.
const TEMPOS: &[Option<f64>] = &[
    None,
    Some(60.0),
    Some(62.5),
    Some(65.0),
    Some(90.0),
    Some(120.0),
    Some(125.0),
    Some(130.0),
    Some(174.0),
    Some(250.0),
];

/// `n` tracks with random vectors in both spaces (every fifth only in `cnn`), random tags,
/// tempos (some on a range's edge, some without) and keys (some without).
fn random_points(n: usize, seed: u64) -> Vec<IndexPoint> {
    let mut rng = Rng::new(seed);
    (0..n as i64)
        .map(|i| {
            let id = 1000 + i * 3; // sparse ids, as after deletions in a library
            let spaces = if i % 5 == 0 { &SPACES[..1] } else { SPACES };
            IndexPoint {
                track_id: id,
                path: format!("/music/{id}.flac"),
                genre: GENRES[rng.below(GENRES.len())].to_string(),
                artist: format!("Artist {}", rng.below(40)),
                album: if rng.below(10) == 0 { "Greatest Hits".into() } else { format!("Album {}", rng.below(120)) },
                duration_s: 30.0 + rng.below(570) as f64 + 0.5,
                vectors: spaces
                    .iter()
                    .map(|&(space, dim)| SpaceVector {
                        space: space.into(),
                        vector: unit_vector(&mut rng, dim),
                        label: LABELS[rng.below(LABELS.len())].into(),
                    })
                    .collect(),
                bpm: match rng.below(3) {
                    0 => TEMPOS[rng.below(TEMPOS.len())],
                    _ => Some(55.0 + rng.below(2000) as f64 / 10.0),
                },
                key: Camelot::from_code(rng.below(26) as u8), // 24 and 25: no key
            }
        })
        .collect()
}

fn vector_of<'a>(point: &'a IndexPoint, space: &str) -> Option<&'a [f32]> {
    point.vectors.iter().find(|v| v.space == space).map(|v| v.vector.as_slice())
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

fn passes(point: &IndexPoint, query: &Query) -> bool {
    let f = &query.filter;
    let folded =
        |values: &[String]| -> HashSet<String> { values.iter().map(|v| fold(v)).filter(|v| !v.is_empty()).collect() };
    let genres = folded(&f.genres);
    let label = point.vectors.iter().find(|v| v.space == query.space).map(|v| fold(&v.label)).unwrap_or_default();
    (genres.is_empty() || genres.contains(&fold(&point.genre)) || genres.contains(&label))
        && !folded(&f.exclude_artists).contains(&fold(&point.artist))
        && !folded(&f.exclude_albums).contains(&fold(&point.album))
        && f.min_duration_s.is_none_or(|lo| point.duration_s >= lo)
        && f.max_duration_s.is_none_or(|hi| point.duration_s <= hi)
        && !f.exclude_tracks.contains(&point.track_id)
        && f.bpm.is_none_or(|range| {
            point.bpm.is_some_and(|bpm| {
                let within = |t: f64| range.min.is_none_or(|lo| t >= lo) && range.max.is_none_or(|hi| t <= hi);
                within(bpm) || (range.octaves && (within(bpm * 2.0) || within(bpm / 2.0)))
            })
        })
        && (f.keys.is_empty() || point.key.is_some_and(|key| f.keys.contains(&key)))
}

/// Every passing track's reference score, best first (ties by id).
fn brute_force(points: &[IndexPoint], query: &Query) -> Vec<(i64, f64)> {
    let sigmoid = |x: f64| 0.5 * (x / (1.0 + x.abs()) + 1.0);
    let mut scored: Vec<(i64, f64)> = points
        .iter()
        .filter(|p| passes(p, query))
        .filter_map(|p| {
            let v = vector_of(p, &query.space)?;
            let score = match query.strategy {
                Strategy::AverageVector => {
                    let dim = v.len();
                    let avg = |examples: &[Vec<f32>]| -> Vec<f64> {
                        let mut sum = vec![0.0f64; dim];
                        for e in examples {
                            let norm = e.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
                            for (s, x) in sum.iter_mut().zip(e) {
                                *s += f64::from(*x) / norm;
                            }
                        }
                        sum.iter().map(|s| s / examples.len() as f64).collect()
                    };
                    let mut q = avg(&query.positive);
                    if !query.negative.is_empty() {
                        let n = avg(&query.negative);
                        q = q.iter().zip(&n).map(|(p, n)| 2.0 * p - n).collect();
                    }
                    let q: Vec<f32> = q.iter().map(|x| *x as f32).collect();
                    cosine(&q, v)
                }
                Strategy::BestScore => {
                    let best =
                        |examples: &[Vec<f32>]| examples.iter().map(|e| cosine(e, v)).fold(f64::NEG_INFINITY, f64::max);
                    let (p, n) = (best(&query.positive), best(&query.negative));
                    if p > n {
                        sigmoid(p)
                    } else {
                        -sigmoid(n)
                    }
                }
            };
            Some((p.track_id, score))
        })
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scored
}

const TOLERANCE: f64 = 1e-5;

/// The hits are the reference's first `limit`, in its order, scores within 1e-5; two tracks
/// whose reference scores are within 1e-5 of each other may come in either order.
#[track_caller]
fn assert_matches(hits: &[Hit], points: &[IndexPoint], query: &Query, what: &str) {
    let reference = brute_force(points, query);
    let expected = &reference[..reference.len().min(query.limit)];
    let by_id: HashMap<i64, f64> = reference.iter().copied().collect();
    assert_eq!(hits.len(), expected.len(), "{what}: number of hits");
    for (i, (hit, &(id, score))) in hits.iter().zip(expected).enumerate() {
        let own = by_id.get(&hit.track_id).copied();
        assert!(own.is_some(), "{what}: hit {i} (track {}) should have been filtered out", hit.track_id);
        let own = own.unwrap_or_default();
        assert!(
            (f64::from(hit.score) - own).abs() < TOLERANCE,
            "{what}: track {} scored {} instead of {own}",
            hit.track_id,
            hit.score
        );
        assert!(
            hit.track_id == id || (own - score).abs() < TOLERANCE,
            "{what}: position {i} is track {} ({own}), expected track {id} ({score})",
            hit.track_id
        );
    }
}

fn query(space: &str, positive: Vec<Vec<f32>>, negative: Vec<Vec<f32>>, strategy: Strategy, limit: usize) -> Query {
    Query { space: space.into(), positive, negative, strategy, limit, ..Default::default() }
}

/// Every kind of query the daemon makes, checked against the reference.
async fn check_queries(index: &dyn VectorIndex, points: &[IndexPoint], seed: u64) {
    let mut rng = Rng::new(seed);
    let pick = |rng: &mut Rng, space: &str| -> (i64, Vec<f32>) {
        loop {
            let p = &points[rng.below(points.len())];
            if let Some(v) = vector_of(p, space) {
                return (p.track_id, v.to_vec());
            }
        }
    };
    for &(space, dim) in SPACES {
        for round in 0..3 {
            let (seed_id, seed_vector) = pick(&mut rng, space);
            let (other_id, other) = pick(&mut rng, space);
            let (_, away) = pick(&mut rng, space);
            let (_, away2) = pick(&mut rng, space);
            let seed_point =
                points.iter().find(|p| p.track_id == seed_id).cloned().unwrap_or_else(|| points[0].clone());
            let mut cases: Vec<(&str, Query)> = vec![
                (
                    "one positive (Recommend by a track)",
                    query(space, vec![seed_vector.clone()], vec![], Strategy::AverageVector, 10),
                ),
                (
                    "raw audio example",
                    query(space, vec![unit_vector(&mut rng, dim)], vec![], Strategy::AverageVector, 25),
                ),
                (
                    "two positives, average",
                    query(space, vec![seed_vector.clone(), other.clone()], vec![], Strategy::AverageVector, 10),
                ),
                (
                    "positives and negatives, average",
                    query(
                        space,
                        vec![seed_vector.clone(), other.clone()],
                        vec![away.clone()],
                        Strategy::AverageVector,
                        10,
                    ),
                ),
                (
                    "positives and negatives, best score",
                    query(
                        space,
                        vec![seed_vector.clone(), other.clone()],
                        vec![away.clone(), away2.clone()],
                        Strategy::BestScore,
                        10,
                    ),
                ),
                ("one positive, best score", query(space, vec![seed_vector.clone()], vec![], Strategy::BestScore, 10)),
                (
                    "more than there are",
                    query(space, vec![seed_vector.clone()], vec![], Strategy::AverageVector, 100_000),
                ),
            ];
            let filters: Vec<(&str, Filter)> = vec![
                ("examples excluded", Filter { exclude_tracks: vec![seed_id, other_id], ..Default::default() }),
                (
                    "genre, tagged or predicted",
                    Filter { genres: vec!["ROCK".into(), "Hip Hop".into()], ..Default::default() },
                ),
                ("a genre nothing has", Filter { genres: vec!["polka".into()], ..Default::default() }),
                (
                    "seed artist and album excluded",
                    Filter {
                        exclude_artists: vec![seed_point.artist.to_uppercase()],
                        exclude_albums: vec![seed_point.album.clone()],
                        ..Default::default()
                    },
                ),
                (
                    "duration range",
                    Filter { min_duration_s: Some(120.5), max_duration_s: Some(300.5), ..Default::default() },
                ),
                ("at least", Filter { min_duration_s: Some(500.0), ..Default::default() }),
                (
                    "tempo range",
                    Filter {
                        bpm: Some(BpmRange { min: Some(120.0), max: Some(130.0), octaves: false }),
                        ..Default::default()
                    },
                ),
                (
                    "tempo range with octaves",
                    Filter {
                        bpm: Some(BpmRange { min: Some(120.0), max: Some(130.0), octaves: true }),
                        ..Default::default()
                    },
                ),
                (
                    "tempo at most, with octaves",
                    Filter { bpm: Some(BpmRange { min: None, max: Some(65.0), octaves: true }), ..Default::default() },
                ),
                ("any known tempo", Filter { bpm: Some(BpmRange::default()), ..Default::default() }),
                (
                    "harmonic with the seed's key (or A minor without one)",
                    Filter {
                        keys: seed_point
                            .key
                            .or(Camelot::parse("A minor"))
                            .into_iter()
                            .flat_map(Camelot::compatible)
                            .collect(),
                        ..Default::default()
                    },
                ),
                (
                    "harmonic with two keys, and a tempo",
                    Filter {
                        keys: ["1A", "12B"]
                            .iter()
                            .filter_map(|k| Camelot::parse(k))
                            .flat_map(Camelot::compatible)
                            .collect(),
                        bpm: Some(BpmRange { min: Some(100.0), max: Some(140.0), octaves: true }),
                        ..Default::default()
                    },
                ),
                (
                    "everything at once",
                    Filter {
                        genres: vec!["jazz".into(), "blues".into(), "metal".into()],
                        exclude_artists: vec!["artist 3".into(), "Artist 4".into()],
                        exclude_albums: vec!["greatest hits".into()],
                        min_duration_s: Some(60.0),
                        max_duration_s: Some(400.0),
                        exclude_tracks: vec![seed_id],
                        bpm: Some(BpmRange { min: Some(80.0), max: None, octaves: false }),
                        keys: Camelot::parse("8B").into_iter().flat_map(Camelot::compatible).collect(),
                    },
                ),
            ];
            for (name, filter) in filters {
                let strategy = if round == 1 { Strategy::BestScore } else { Strategy::AverageVector };
                let negative = if round == 2 { vec![away.clone()] } else { vec![] };
                let mut q = query(space, vec![seed_vector.clone()], negative, strategy, 20);
                q.filter = filter;
                cases.push((name, q));
            }
            for (name, q) in cases {
                let hits = index.query(q.clone()).await.unwrap_or_else(|e| panic!("{space}, {name}: {e}"));
                assert_matches(&hits, points, &q, &format!("{}: {space}, {name}", index.describe()));
            }

            // A Playlist step: the next track near the current one, with its vector for the
            // step after, never a track already played.
            let mut played = vec![seed_id];
            let mut current = seed_vector.clone();
            for _ in 0..3 {
                let mut q = query(space, vec![current.clone()], vec![], Strategy::AverageVector, 1);
                q.with_vectors = true;
                q.filter.exclude_tracks = played.clone();
                let hits = index.query(q.clone()).await.unwrap_or_else(|e| panic!("playlist step: {e}"));
                assert_matches(&hits, points, &q, "playlist step");
                let next = &hits[0];
                let stored = points.iter().find(|p| p.track_id == next.track_id).and_then(|p| vector_of(p, space));
                let returned = next.vector.clone().unwrap_or_default();
                let stored = normalised(stored.unwrap_or_default());
                assert_eq!(returned.len(), dim);
                assert!(returned.iter().zip(&stored).all(|(a, b)| (a - b).abs() < 1e-6), "returned vector");
                played.push(next.track_id);
                current = returned;
            }
        }
    }
}

/// The conformance suite; leaves the index empty.
pub(super) async fn conformance(index: &dyn VectorIndex, seed: u64) {
    let mut points = random_points(600, seed);
    for chunk in points.chunks(128) {
        index.upsert(chunk.to_vec()).await.unwrap_or_else(|e| panic!("upsert: {e}"));
    }
    assert_eq!(index.len("cnn").await.expect("len"), 600);
    assert_eq!(index.len("cnn-lstm").await.expect("len"), 480);
    assert_eq!(index.len("bilstm").await.expect("len"), 0);
    let expected: HashMap<i64, u64> = points.iter().map(|p| (p.track_id, p.fingerprint())).collect();
    assert_eq!(index.fingerprints().await.expect("fingerprints"), expected);
    check_queries(index, &points, seed + 1).await;

    // Unknown spaces answer nothing; wrong sizes and empty queries are refused.
    let q = query("bilstm", vec![vec![1.0; 24]], vec![], Strategy::AverageVector, 5);
    assert!(index.query(q).await.expect("unknown space").is_empty());
    let q = query("cnn", vec![vec![1.0; 7]], vec![], Strategy::AverageVector, 5);
    assert!(matches!(index.query(q).await, Err(IndexError::Dimension { expected: 24, got: 7, .. })));
    let q = query("cnn", vec![], vec![], Strategy::AverageVector, 5);
    assert!(matches!(index.query(q).await, Err(IndexError::InvalidQuery(_))));
    // A batch with a vector of the wrong size is refused whole.
    let mut bad = random_points(2, seed + 2);
    bad[0].track_id = 1;
    bad[1].track_id = 2;
    bad[1].vectors[0].vector.push(0.5);
    assert!(matches!(index.upsert(bad).await, Err(IndexError::Dimension { track: Some(2), .. })));
    assert_eq!(index.len("cnn").await.expect("len"), 600, "nothing of a refused batch is applied");

    // Deletes, replacements (new vectors, tags, a space dropped), a point without vectors.
    let deleted: Vec<i64> = points.iter().step_by(7).map(|p| p.track_id).collect();
    index.delete(deleted.clone()).await.expect("delete");
    index.delete(vec![-5, 99_999_999]).await.expect("deleting unknown ids is fine");
    points.retain(|p| !deleted.contains(&p.track_id));
    let mut rng = Rng::new(seed + 3);
    let mut changed = Vec::new();
    for p in points.iter_mut().skip(3).step_by(11) {
        p.genre = "Jazz".into();
        p.artist = "Someone Else".into();
        p.duration_s += 1.0;
        p.bpm = p.bpm.map(|bpm| bpm * 2.0).or(Some(125.0));
        p.key = p.key.map(Camelot::relative);
        p.vectors[0].vector = unit_vector(&mut rng, SPACES[0].1);
        p.vectors.truncate(1);
        changed.push(p.clone());
    }
    index.upsert(changed).await.expect("replace");
    let emptied = points.remove(1);
    index.upsert(vec![IndexPoint { vectors: Vec::new(), ..emptied }]).await.expect("a point without vectors");
    let with_lstm = points.iter().filter(|p| vector_of(p, "cnn-lstm").is_some()).count() as u64;
    assert_eq!(index.len("cnn").await.expect("len"), points.len() as u64);
    assert_eq!(index.len("cnn-lstm").await.expect("len"), with_lstm);
    let expected: HashMap<i64, u64> = points.iter().map(|p| (p.track_id, p.fingerprint())).collect();
    assert_eq!(index.fingerprints().await.expect("fingerprints"), expected);
    check_queries(index, &points, seed + 4).await;

    index.clear().await.expect("clear");
    assert_eq!(index.len("cnn").await.expect("len"), 0);
    assert!(index.fingerprints().await.expect("fingerprints").is_empty());
}

pub(crate) fn exact_config() -> EmbeddedConfig {
    EmbeddedConfig { exact_limit: 0, threads: 2, ..Default::default() }
}

#[tokio::test]
async fn embedded_index_matches_brute_force() {
    let index = EmbeddedIndex::in_memory(exact_config());
    conformance(&index, 11).await;
    // Any limit, however large.
    let points = random_points(50, 12);
    index.upsert(points.clone()).await.expect("upsert");
    let mut q = query("cnn", vec![points[0].vectors[0].vector.clone()], vec![], Strategy::BestScore, usize::MAX);
    q.filter.exclude_tracks = vec![points[0].track_id, points[1].track_id];
    let hits = index.query(q.clone()).await.expect("query");
    assert_eq!(hits.len(), 48);
    assert_matches(&hits, &points, &q, "unbounded limit");
}

#[test]
fn parallel_search_equals_one_thread_and_the_reference() {
    // Enough rows for several threads (each needs 32k).
    let index = EmbeddedIndex::in_memory(EmbeddedConfig { exact_limit: 0, threads: 3, ..Default::default() });
    let mut rng = Rng::new(5);
    let points: Vec<IndexPoint> = (0..100_000)
        .map(|id| IndexPoint {
            track_id: id,
            path: String::new(),
            genre: GENRES[rng.below(GENRES.len())].into(),
            artist: String::new(),
            album: String::new(),
            duration_s: rng.below(600) as f64,
            vectors: vec![SpaceVector { space: "cnn".into(), vector: unit_vector(&mut rng, 8), label: "rock".into() }],
            bpm: None,
            key: None,
        })
        .collect();
    index.upsert_blocking(points.clone()).expect("upsert");
    for strategy in [Strategy::AverageVector, Strategy::BestScore] {
        let mut q = query("cnn", vec![unit_vector(&mut rng, 8)], vec![unit_vector(&mut rng, 8)], strategy, 15);
        q.filter.min_duration_s = Some(100.0);
        let one = index.search_with(&q, SearchOptions { threads: Some(1), ..Default::default() }).expect("1 thread");
        let three = index.search_with(&q, SearchOptions { threads: Some(3), ..Default::default() }).expect("3 threads");
        assert_eq!(one, three);
        assert_matches(&three, &points, &q, "parallel");
    }
}

#[tokio::test]
async fn the_index_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("data/index.timbre-ix");
    let config = EmbeddedConfig { exact_limit: 300, ..exact_config() };
    let points = random_points(800, 21);
    let q = query("cnn", vec![points[5].vectors[0].vector.clone()], vec![], Strategy::AverageVector, 10);
    let (before, exact_before) = {
        let index = EmbeddedIndex::open(&file, config.clone()).expect("open");
        assert_eq!(index.loaded(), &Loaded::Missing);
        index.upsert(points.clone()).await.expect("upsert");
        index.delete(vec![points[7].track_id]).await.expect("delete");
        assert!(index.is_approximate("cnn"), "800 > exact_limit");
        index.flush().await.expect("flush");
        assert!(!index.save().expect("save"), "nothing changed since the flush");
        let exact = index.search_with(&q, SearchOptions { exact: true, ..Default::default() }).expect("exact");
        (index.search_blocking(&q).expect("query"), exact)
    };
    let index = EmbeddedIndex::open(&file, config).expect("reopen");
    assert_eq!(index.loaded(), &Loaded::Snapshot { tracks: 799 });
    assert!(index.is_approximate("cnn"), "the approximate index is part of the snapshot");
    assert_eq!(index.search_blocking(&q).expect("query"), before);
    let exact = index.search_with(&q, SearchOptions { exact: true, ..Default::default() }).expect("exact");
    assert_eq!(exact, exact_before);
    let remaining: Vec<IndexPoint> = points.iter().filter(|p| p.track_id != points[7].track_id).cloned().collect();
    let expected: HashMap<i64, u64> = remaining.iter().map(|p| (p.track_id, p.fingerprint())).collect();
    assert_eq!(index.fingerprints().await.expect("fingerprints"), expected);
    assert_matches(&exact, &remaining, &q, "after a restart");
    // Tempo and key are part of the snapshot.
    let mut filtered = q.clone();
    filtered.filter.bpm = Some(BpmRange { min: Some(118.0), max: Some(132.0), octaves: true });
    filtered.filter.keys = Camelot::parse("5A").into_iter().flat_map(Camelot::compatible).collect();
    let hits = index.search_with(&filtered, SearchOptions { exact: true, ..Default::default() }).expect("exact");
    assert!(!hits.is_empty(), "some of 800 tracks pass");
    assert_matches(&hits, &remaining, &filtered, "tempo and key after a restart");
    drop(index);
    // And it keeps working: the conformance suite on the reopened index (exact this time).
    let index = EmbeddedIndex::open(&file, exact_config()).expect("reopen");
    index.clear().await.expect("clear");
    conformance(&index, 23).await;
}

/// Write a snapshot of `points` at `file`.
fn snapshot_of(file: &Path, points: Vec<IndexPoint>) {
    let index = EmbeddedIndex::open(file, exact_config()).expect("open");
    index.upsert_blocking(points).expect("upsert");
    assert!(index.save().expect("save"));
}

#[test]
fn a_damaged_snapshot_is_detected_set_aside_and_never_used() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("index.timbre-ix");
    snapshot_of(&file, random_points(300, 31));
    let good = std::fs::read(&file).expect("read");

    let damages: Vec<(&str, Vec<u8>)> = vec![
        ("truncated in the middle", good[..good.len() / 2].to_vec()),
        ("truncated by one byte", good[..good.len() - 1].to_vec()),
        ("cut before the trailer", good[..good.len() - 12].to_vec()),
        ("one bit flipped in a vector", {
            let mut b = good.clone();
            let at = b.len() - 200;
            b[at] ^= 0x10;
            b
        }),
        ("a length field garbled", {
            let mut b = good.clone();
            b[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
            b
        }),
        ("another format version", {
            let mut b = good.clone();
            b[8] = 99;
            b
        }),
        ("empty", Vec::new()),
        ("not a snapshot", b"hello, this is not an index at all, not even close".to_vec()),
    ];
    for (what, bytes) in damages {
        std::fs::write(&file, &bytes).expect("write");
        let index = EmbeddedIndex::open(&file, exact_config()).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(matches!(index.loaded(), Loaded::Corrupt(_)), "{what}: {:?}", index.loaded());
        assert_eq!(index.space_len("cnn"), 0, "{what}: nothing of it is used");
        assert!(!file.exists(), "{what}: moved aside");
        assert_eq!(std::fs::read(dir.path().join("index.timbre-ix.corrupt")).expect("aside"), bytes);
    }

    // A temporary file left by a crash in the middle of a write is ignored and removed; the
    // previous snapshot is used.
    std::fs::write(&file, &good).expect("restore");
    std::fs::write(dir.path().join("index.timbre-ix.tmp"), &good[..good.len() / 3]).expect("tmp");
    let index = EmbeddedIndex::open(&file, exact_config()).expect("open");
    assert_eq!(index.loaded(), &Loaded::Snapshot { tracks: 300 });
    assert!(!dir.path().join("index.timbre-ix.tmp").exists());
}

/// Tracks in the snapshots the killed writer writes: enough that a write takes a while.
const CHILD_TRACKS: usize = 20_000;

/// Run by [`killed_mid_write_leaves_a_usable_snapshot`] in a child process: writes snapshots
/// of a changing index in a loop until killed.
#[test]
fn child_writes_snapshots_until_killed() {
    let Some(file) = std::env::var_os("TIMBRE_INDEX_CHILD_SNAPSHOT") else { return };
    let index = EmbeddedIndex::open(Path::new(&file), exact_config()).expect("open");
    let mut seed = 100;
    loop {
        index.upsert_blocking(random_points(CHILD_TRACKS, seed)).expect("upsert");
        index.save().expect("save");
        seed += 1;
    }
}

#[test]
fn killed_mid_write_leaves_a_usable_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("index.timbre-ix");
    let tmp = dir.path().join("index.timbre-ix.tmp");
    let exe = std::env::current_exe().expect("test binary");
    let mut killed_mid_write = 0;
    for round in 0..4u64 {
        let mut child = std::process::Command::new(&exe)
            .args(["--exact", "index::tests::child_writes_snapshots_until_killed", "--nocapture", "--test-threads=1"])
            .env("TIMBRE_INDEX_CHILD_SNAPSHOT", &file)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn the writer");
        // Let it write a first snapshot; then kill it (-9) while it writes the next one
        // (even rounds) or at some other moment (odd rounds).
        let started = std::time::Instant::now();
        let deadline = std::time::Duration::from_secs(300);
        while !file.exists() && started.elapsed() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        if round % 2 == 0 {
            while !tmp.exists() && started.elapsed() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        } else {
            std::thread::sleep(std::time::Duration::from_millis(97 * round));
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        killed_mid_write += usize::from(tmp.exists());
        let index = EmbeddedIndex::open(&file, exact_config()).expect("open");
        assert_eq!(index.loaded(), &Loaded::Snapshot { tracks: CHILD_TRACKS }, "round {round}");
        assert_eq!(index.space_len("cnn"), CHILD_TRACKS);
        assert_eq!(index.space_len("cnn-lstm"), CHILD_TRACKS * 4 / 5);
        assert!(!tmp.exists(), "the half-written file is removed on open");
    }
    println!("killed while writing a snapshot in {killed_mid_write} of 4 rounds");
    assert!(killed_mid_write >= 2, "the writer was killed while writing {killed_mid_write} times");
}

pub(crate) fn library_prediction(
    model: &str,
    labels: &[&str],
    probabilities: Vec<f32>,
    embedding: Vec<f32>,
) -> StoredPrediction {
    StoredPrediction {
        version: ModelVersion { model: model.into(), model_version: "1".into(), feature_version: "mel".into() },
        labels: labels.iter().map(|l| l.to_string()).collect(),
        probabilities,
        embedding,
        segments: 1,
        analysed_at_ms: 0,
    }
}

/// A library with `n` analysed tracks (cnn and pca-knn embeddings; every third track also
/// bilstm, whose prediction has no embedding), and two tracks never analysed.
pub(crate) fn library(dir: &Path, n: usize) -> Store {
    let store = Store::open(&dir.join("library.sqlite3")).expect("store");
    let mut rng = Rng::new(77);
    for i in 0..n {
        let tags = Tags {
            title: format!("T{i}"),
            artist: format!("A{}", i % 9),
            album: format!("B{}", i % 13),
            genre: GENRES[i % GENRES.len()].into(),
        };
        let id = store
            .insert(&format!("/m/{i}.flac"), FileStat { size: 1, mtime_ns: 1 }, &format!("h{i}"), &tags)
            .expect("insert");
        let mut predictions = vec![
            library_prediction(
                "cnn",
                LABELS,
                (0..LABELS.len()).map(|_| rng.unit() as f32).collect(),
                unit_vector(&mut rng, 16),
            ),
            library_prediction("pca-knn", &["a", "b"], vec![0.5, 0.5], unit_vector(&mut rng, 5)),
        ];
        if i % 3 == 0 {
            predictions.push(library_prediction("bilstm", &["x"], vec![1.0], Vec::new()));
        }
        store.save_analysis(id, 30.0 + i as f64, &predictions).expect("save");
        // Tempo and key for three tracks in four; every fifth also has a tempo plugin whose
        // name sorts first (its tempo is the one answered, the key still the other's).
        let descriptor = |plugin: &str, values: Vec<(&str, f64)>| DescriptorResult {
            plugin: plugin.into(),
            version: "1".into(),
            values: values.into_iter().map(|(n, v)| (n.to_string(), v)).collect(),
            state: Vec::new(),
            error: None,
        };
        let mut descriptors = Vec::new();
        if i % 4 != 3 {
            let values = vec![("bpm", 80.0 + i as f64), ("key_tonic", (i % 12) as f64), ("key_mode", (i % 2) as f64)];
            descriptors.push(descriptor("descriptors", values));
        }
        if i % 5 == 0 {
            descriptors.push(descriptor("a-tempo", vec![("bpm", 200.0 + i as f64), ("key_tonic", f64::NAN)]));
        }
        store.save_descriptors(id, &descriptors).expect("save descriptors");
    }
    for i in 0..2 {
        store
            .insert(&format!("/m/pending{i}.flac"), FileStat { size: 1, mtime_ns: 1 }, "p", &Tags::default())
            .expect("insert");
    }
    store
}

fn library_points(store: &Store) -> Vec<IndexPoint> {
    let (tracks, _) = store.list(&Default::default(), 0, 100_000).expect("list");
    tracks.iter().map(IndexPoint::from_record).filter(|p| !p.vectors.is_empty()).collect()
}

#[test]
fn the_library_reader_builds_the_points_from_record_builds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = library(dir.path(), 40);
    let mut read = Vec::new();
    crate::library::embeddings::for_each_track(store.path(), |t| {
        read.push(sync::point_of(t));
        true
    })
    .expect("read");
    let expected = library_points(&store);
    assert_eq!(read.len(), 40, "pending tracks and empty embeddings are left out");
    assert_eq!(read, expected);
    assert_eq!(read[0].vectors.len(), 2);
    assert_eq!((read[0].bpm, read[0].key), (Some(200.0), Camelot::parse("C major")), "the first tempo by plugin");
    assert_eq!((read[1].bpm, read[1].key), (Some(81.0), Camelot::parse("C# minor")));
    assert_eq!((read[3].bpm, read[3].key), (None, None), "no descriptors");
}

#[tokio::test]
async fn sync_catches_up_with_the_library() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = library(dir.path(), 60);
    let file = dir.path().join("index.timbre-ix");
    let index = EmbeddedIndex::open(&file, exact_config()).expect("open");

    // From nothing: every analysed track.
    let report = sync_from_library(&index, &store).await.expect("sync");
    assert_eq!(report, SyncReport { library_tracks: 60, upserted: 60, deleted: 0, rejected: 0 });
    let expected = |store: &Store| -> HashMap<i64, u64> {
        library_points(store).iter().map(|p| (p.track_id, p.fingerprint())).collect()
    };
    assert_eq!(index.fingerprints().await.expect("fingerprints"), expected(&store));
    assert!(file.exists(), "sync ends with a snapshot");

    // Nothing changed: nothing written.
    let report = sync_from_library(&index, &store).await.expect("sync");
    assert_eq!((report.upserted, report.deleted), (0, 0));

    // What a crash between the library write and the index write leaves behind: the library
    // moved on, the snapshot did not.
    let (tracks, _) = store.list(&Default::default(), 0, 1000).expect("list");
    store.remove(tracks[0].id).expect("remove");
    store.move_track(tracks[1].id, "/m/moved.flac", FileStat { size: 1, mtime_ns: 2 }).expect("move");
    let mut rng = Rng::new(1);
    let new = library_prediction("cnn", LABELS, vec![0.0, 0.0, 1.0, 0.0, 0.0, 0.0], unit_vector(&mut rng, 16));
    store.save_analysis(tracks[2].id, 99.0, &[new]).expect("re-analysed");
    store.replace_content(tracks[3].id, FileStat { size: 2, mtime_ns: 3 }, "new", &Tags::default()).expect("replaced");
    // Descriptors measured later (a new descriptor plugin version) change the point.
    let tempo = DescriptorResult {
        plugin: "descriptors".into(),
        version: "2".into(),
        values: vec![("bpm".into(), 99.0), ("key_tonic".into(), 2.0), ("key_mode".into(), 0.0)],
        state: Vec::new(),
        error: None,
    };
    store.save_descriptors(tracks[5].id, &[tempo]).expect("re-described");
    let bad = library_prediction("cnn", LABELS, vec![1.0; 6], vec![0.5; 9]);
    store.save_analysis(tracks[4].id, 10.0, &[bad]).expect("wrong size");
    let reopened = EmbeddedIndex::open(&file, exact_config()).expect("reopen");
    let report = sync_from_library(&reopened, &store).await.expect("sync");
    assert_eq!(report.library_tracks, 58);
    assert_eq!(report.deleted, 2, "removed, and replaced content (no predictions yet)");
    assert_eq!(report.upserted, 3, "moved, re-analysed, re-described");
    assert_eq!(report.rejected, 1, "a 9-dimensional cnn embedding");
    let mut expected = expected(&store);
    expected.remove(&tracks[4].id);
    assert_eq!(reopened.fingerprints().await.expect("fingerprints").len(), 58);
    let mut got = reopened.fingerprints().await.expect("fingerprints");
    got.remove(&tracks[4].id); // still the old version: the new one was refused
    assert_eq!(got, expected);

    // A rebuild gives the same index.
    let rebuilt = EmbeddedIndex::in_memory(exact_config());
    rebuild_from_library(&rebuilt, &store).await.expect("rebuild");
    let mut fresh = rebuilt.fingerprints().await.expect("fingerprints");
    assert!(!fresh.contains_key(&tracks[4].id));
    fresh.insert(tracks[4].id, 0);
    got.insert(tracks[4].id, 0);
    assert_eq!(fresh, got);
}

/// Points around `clusters` centres, as genre-like groups of real embeddings are.
fn clustered_points(n: usize, dim: usize, clusters: usize, spread: f32, seed: u64) -> Vec<IndexPoint> {
    let mut rng = Rng::new(seed);
    let centres: Vec<Vec<f32>> = (0..clusters).map(|_| unit_vector(&mut rng, dim)).collect();
    (0..n as i64)
        .map(|id| {
            let c = rng.below(clusters);
            let v: Vec<f32> = centres[c].iter().map(|x| x + spread * rng.normal() / (dim as f32).sqrt()).collect();
            IndexPoint {
                track_id: id,
                path: String::new(),
                genre: LABELS[c % LABELS.len()].into(),
                artist: format!("a{}", rng.below(100)),
                album: String::new(),
                duration_s: rng.below(600) as f64,
                vectors: vec![SpaceVector {
                    space: "cnn".into(),
                    vector: normalised(&v),
                    label: LABELS[rng.below(LABELS.len())].into(),
                }],
                bpm: None,
                key: None,
            }
        })
        .collect()
}

/// recall@10 of approximate search against exact search, averaged over queries.
fn recall_at_10(index: &EmbeddedIndex, queries: &[Query]) -> f64 {
    let mut found = 0;
    let mut total = 0;
    for q in queries {
        let exact: HashSet<i64> = index
            .search_with(q, SearchOptions { exact: true, ..Default::default() })
            .expect("exact")
            .iter()
            .map(|h| h.track_id)
            .collect();
        let approximate = index.search_blocking(q).expect("approximate");
        found += approximate.iter().filter(|h| exact.contains(&h.track_id)).count();
        total += exact.len();
    }
    found as f64 / total.max(1) as f64
}

#[test]
fn the_approximate_index_finds_at_least_95_percent_of_the_exact_top_10() {
    let points = clustered_points(20_000, 32, 64, 0.9, 41);
    let config = EmbeddedConfig { exact_limit: 5_000, threads: 2, ..Default::default() };
    let index = EmbeddedIndex::in_memory(config);
    index.upsert_blocking(points.clone()).expect("upsert");
    assert!(index.is_approximate("cnn"));
    let mut rng = Rng::new(42);
    let mut queries = Vec::new();
    for i in 0..60 {
        let seed = &points[rng.below(points.len())];
        let mut q = query("cnn", vec![seed.vectors[0].vector.clone()], vec![], Strategy::AverageVector, 10);
        q.filter.exclude_tracks = vec![seed.track_id];
        match i % 4 {
            1 => q.filter.genres = vec!["jazz".into()], // about a sixth of the tracks
            2 => {
                q.strategy = Strategy::BestScore;
                q.positive.push(points[rng.below(points.len())].vectors[0].vector.clone());
                q.negative.push(points[rng.below(points.len())].vectors[0].vector.clone());
            }
            3 => q.positive = vec![unit_vector(&mut rng, 32)], // raw audio far from everything
            _ => {}
        }
        queries.push(q);
    }
    let recall = recall_at_10(&index, &queries);
    for kind in 0..4 {
        let some: Vec<Query> = queries.iter().skip(kind).step_by(4).cloned().collect();
        println!("recall@10, query kind {kind}: {}", recall_at_10(&index, &some));
    }
    println!("recall@10: {recall}");
    assert!(recall >= 0.95, "recall@10 = {recall}");
}

#[test]
fn a_strict_filter_widens_the_approximate_search_until_it_is_exact() {
    let points = clustered_points(8_000, 16, 32, 0.9, 43);
    let index =
        EmbeddedIndex::in_memory(EmbeddedConfig { exact_limit: 1_000, nprobe: 2, threads: 1, ..Default::default() });
    index.upsert_blocking(points.clone()).expect("upsert");
    assert!(index.is_approximate("cnn"));
    // Two artists out of a hundred: very few rows pass.
    let mut q = query("cnn", vec![points[0].vectors[0].vector.clone()], vec![], Strategy::AverageVector, 10);
    q.filter.genres = vec!["metal".into()];
    q.filter.exclude_artists = (2..100).map(|a| format!("a{a}")).collect();
    let hits = index.search_blocking(&q).expect("query");
    assert_matches(&hits, &points, &q, "strict filter");
}

#[tokio::test]
async fn an_unreachable_qdrant_is_named_in_the_error() {
    #[cfg(feature = "qdrant")]
    {
        let url = "http://127.0.0.1:9"; // nothing listens on the discard port
        let config = QdrantConfig { url: url.into(), timeout_s: 2.0, ..Default::default() };
        let err = qdrant::QdrantIndex::connect(&config, "lib").await.err().expect("unreachable");
        assert!(matches!(err, IndexError::Unreachable { .. }), "{err:?}");
        assert!(err.to_string().contains(url), "{err}");

        // The daemon still gets an index: it keeps analysing, and every call says why it fails.
        let dir = tempfile::tempdir().expect("tempdir");
        let config = IndexConfig { backend: Backend::Qdrant, qdrant: config, ..Default::default() };
        let index = config.open(dir.path()).await.expect("opens while the server is down");
        let err = index.upsert(random_points(3, 1)).await.expect_err("no server");
        assert!(matches!(err, IndexError::Unreachable { .. }) && err.to_string().contains(url), "{err}");
        let q = query("cnn", vec![vec![1.0; 24]], vec![], Strategy::AverageVector, 5);
        let err = index.query(q).await.expect_err("no server");
        assert!(matches!(err, IndexError::Unreachable { .. }) && err.to_string().contains(url), "{err}");
        let store = Store::open(&dir.path().join("library.sqlite3")).expect("store");
        let err = sync_from_library(index.as_ref(), &store).await.expect_err("no server");
        assert!(matches!(err, IndexError::Unreachable { .. }), "{err}");
    }
}

#[cfg(feature = "qdrant")]
mod with_qdrant {
    //! Against a real server at `QDRANT_URL` (gRPC, e.g. `http://localhost:6334`;
    //! `QDRANT_API_KEY` if it needs one). Each test uses its own collection and deletes it.

    use super::*;
    use crate::index::qdrant::QdrantIndex;

    fn server() -> Option<QdrantConfig> {
        let Ok(url) = std::env::var("QDRANT_URL") else {
            println!("skipped: QDRANT_URL is not set (no Qdrant server can be installed on this CI machine)");
            return None;
        };
        Some(QdrantConfig {
            url,
            api_key: std::env::var("QDRANT_API_KEY").unwrap_or_default(),
            exact: true,
            ..Default::default()
        })
    }

    async fn open(config: &QdrantConfig, test: &str, library: &str) -> QdrantIndex {
        let config =
            QdrantConfig { collection: format!("timbre_test_{test}_{}", std::process::id()), ..config.clone() };
        QdrantIndex::connect(&config, library).await.unwrap_or_else(|e| panic!("{e}"))
    }

    async fn drop_collection(config: &QdrantConfig, index: &QdrantIndex) {
        let client = qdrant_client::Qdrant::from_url(&config.url)
            .api_key((!config.api_key.is_empty()).then(|| config.api_key.clone()))
            .skip_compatibility_check()
            .build()
            .expect("client");
        let _ = client.delete_collection(index.collection()).await;
    }

    #[tokio::test]
    async fn qdrant_matches_brute_force() {
        let Some(config) = server() else { return };
        let index = open(&config, "conformance", "lib-a").await;
        conformance(&index, 11).await;
        drop_collection(&config, &index).await;
    }

    #[tokio::test]
    async fn qdrant_and_the_embedded_index_answer_alike() {
        let Some(config) = server() else { return };
        let index = open(&config, "alike", "lib-a").await;
        let embedded = EmbeddedIndex::in_memory(exact_config());
        let points = random_points(400, 51);
        index.upsert(points.clone()).await.expect("upsert");
        embedded.upsert(points.clone()).await.expect("upsert");
        let mut rng = Rng::new(52);
        for strategy in [Strategy::AverageVector, Strategy::BestScore] {
            let q = query("cnn", vec![unit_vector(&mut rng, 24)], vec![unit_vector(&mut rng, 24)], strategy, 20);
            let a = index.query(q.clone()).await.expect("qdrant");
            let b = embedded.query(q.clone()).await.expect("embedded");
            let ids = |hits: &[Hit]| hits.iter().map(|h| h.track_id).collect::<Vec<_>>();
            assert_eq!(ids(&a), ids(&b), "{strategy:?}");
            for (x, y) in a.iter().zip(&b) {
                assert!((x.score - y.score).abs() < 1e-5, "{strategy:?}: {} vs {}", x.score, y.score);
            }
        }
        drop_collection(&config, &index).await;
    }

    #[tokio::test]
    async fn daemons_sharing_a_collection_see_only_their_own_tracks() {
        let Some(config) = server() else { return };
        let a = open(&config, "shared", "lib-a").await;
        let b = open(&config, "shared", "lib-b").await;
        let points_a = random_points(200, 61);
        let points_b = random_points(150, 62); // the same track ids as a's first 150
        a.upsert(points_a.clone()).await.expect("upsert a");
        b.upsert(points_b.clone()).await.expect("upsert b");
        assert_eq!(a.len("cnn").await.expect("len"), 200);
        assert_eq!(b.len("cnn").await.expect("len"), 150);
        let q = query("cnn", vec![points_b[0].vectors[0].vector.clone()], vec![], Strategy::AverageVector, 10);
        assert_matches(&b.query(q.clone()).await.expect("b"), &points_b, &q, "library b");
        assert_matches(&a.query(q.clone()).await.expect("a"), &points_a, &q, "library a");
        b.clear().await.expect("clear b");
        assert_eq!(b.len("cnn").await.expect("len"), 0);
        assert_eq!(a.len("cnn").await.expect("len"), 200, "clearing b leaves a alone");
        assert_eq!(a.fingerprints().await.expect("fingerprints").len(), 200);
        drop_collection(&config, &a).await;
    }

    #[tokio::test]
    async fn qdrant_syncs_from_the_library() {
        let Some(config) = server() else { return };
        let dir = tempfile::tempdir().expect("tempdir");
        let store = library(dir.path(), 30);
        let index = open(&config, "sync", "lib-a").await;
        let report = sync_from_library(&index, &store).await.expect("sync");
        assert_eq!((report.library_tracks, report.upserted), (30, 30));
        let report = sync_from_library(&index, &store).await.expect("sync again");
        assert_eq!((report.upserted, report.deleted), (0, 0));
        drop_collection(&config, &index).await;
    }
}

#[tokio::test]
async fn the_keeper_mirrors_a_window_with_one_wrong_sized_embedding_without_losing_the_rest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = std::sync::Arc::new(library(dir.path(), 12));
    let index = EmbeddedIndex::in_memory(exact_config());
    sync_from_library(&index, &store).await.expect("sync");
    let (tracks, _) = store.list(&Default::default(), 0, 1000).expect("list");
    let mut rng = Rng::new(5);
    // One window of changes: two re-analysed tracks around one whose cnn embedding has the
    // wrong size for its space, and a track that left the library.
    for track in [&tracks[0], &tracks[2]] {
        let fresh = library_prediction("cnn", LABELS, vec![0.0, 1.0, 0.0, 0.0, 0.0, 0.0], unit_vector(&mut rng, 16));
        store.save_analysis(track.id, 60.0, &[fresh]).expect("re-analysed");
    }
    let bad = library_prediction("cnn", LABELS, vec![1.0; 6], vec![0.5; 9]);
    store.save_analysis(tracks[1].id, 10.0, &[bad]).expect("wrong size");
    store.remove(tracks[3].id).expect("removed");
    let window = vec![
        LibraryChange::Changed(tracks[0].id),
        LibraryChange::Changed(tracks[1].id),
        LibraryChange::Changed(tracks[2].id),
        LibraryChange::Removed(tracks[3].id),
    ];
    let report = keeper::mirror(&index, &store, window).await.expect("the backend itself is fine");
    assert_eq!((report.upserted, report.rejected, report.deleted), (2, 1, 1), "{report:?}");
    let held = index.fingerprints().await.expect("fingerprints");
    let library: HashMap<i64, u64> = library_points(&store).iter().map(|p| (p.track_id, p.fingerprint())).collect();
    for track in [&tracks[0], &tracks[2]] {
        assert_eq!(held.get(&track.id), library.get(&track.id), "track {} follows the library", track.id);
    }
    assert!(!held.contains_key(&tracks[3].id), "the removed track left the index");
    assert_ne!(held.get(&tracks[1].id), library.get(&tracks[1].id), "the refused version was not written");
}

#[tokio::test]
async fn after_a_burst_that_overflowed_the_change_queue_the_keeper_resyncs_the_whole_library() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = library(dir.path(), 12);
    let index = EmbeddedIndex::in_memory(exact_config());
    let (changes, queue) = crate::library::change_queue(4);
    keeper::resync_if_overflowed(&index, &store, &queue).await.expect("nothing to do");
    assert!(index.fingerprints().await.expect("fingerprints").is_empty(), "no overflow, no resync");
    // Ten thousand file events: the queue keeps four, remembers the rest were dropped.
    for id in 0..10_000 {
        changes.announce(LibraryChange::Changed(id));
    }
    assert_eq!(queue.len(), 4);
    keeper::resync_if_overflowed(&index, &store, &queue).await.expect("resync");
    let held = index.fingerprints().await.expect("fingerprints");
    let library: HashMap<i64, u64> = library_points(&store).iter().map(|p| (p.track_id, p.fingerprint())).collect();
    assert_eq!(held.len(), library.len());
    assert!(library.iter().all(|(id, print)| held.get(id) == Some(print)), "the index is the library again");
}
