//! The recommender over a synthetic library and an embedded index: no plugin, no model, no
//! ONNX Runtime. Each query shape Recommend and Playlist make, and their errors.

use std::sync::Arc;

use super::*;
use crate::config::RecommendSettings;
use crate::index::embedded::EmbeddedIndex;
use crate::index::tests::{exact_config, library};
use crate::index::{sync_from_library, VectorIndex};
use crate::models::ModelCatalog;
use crate::plugin_host::PluginRegistry;

struct Fixture {
    recommender: Recommender,
    tracks: Vec<TrackRecord>,
    _dir: tempfile::TempDir,
}

async fn fixture(index_ready: bool) -> Fixture {
    fixture_of(index_ready, 40).await
}

async fn fixture_of(index_ready: bool, tracks: usize) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(library(dir.path(), tracks));
    let index = EmbeddedIndex::in_memory(exact_config());
    sync_from_library(&index, &store).await.expect("sync");
    let index: Arc<dyn VectorIndex> = Arc::new(index);
    let shared = if index_ready { SharedIndex::ready(index) } else { SharedIndex::default() };
    // No models: audio examples are not used here, only the library's embeddings.
    let pool = WorkerPool::start(Arc::new(PluginRegistry::default()), Arc::new(ModelCatalog::default()), 1, 1)
        .expect("an empty pool");
    let spaces = vec!["pca-knn".to_string(), "cnn".to_string()];
    let (tracks, _) = store.list(&Default::default(), 0, 1000).expect("list");
    let recommender =
        Recommender::new(store, shared, Arc::new(pool), spaces, Vec::new(), RecommendSettings::default(), 600.0);
    Fixture { recommender, tracks, _dir: dir }
}

fn ids(recommendations: &[Recommendation]) -> Vec<i64> {
    recommendations.iter().map(|r| r.track.id).collect()
}

fn request(positive: Vec<Example>) -> RecommendRequest {
    RecommendRequest { positive, limit: 5, ..Default::default() }
}

#[tokio::test]
async fn the_default_space_is_the_first_preferred_model_loaded() {
    let f = fixture(true).await;
    assert_eq!(f.recommender.default_space().expect("space"), "cnn", "preferred over the first loaded");
    let mut settings = RecommendSettings { preferred: vec!["bilstm".into()], ..Default::default() };
    let base = &f.recommender;
    let r = |settings: RecommendSettings| {
        let recommender = Recommender {
            store: base.store.clone(),
            index: base.index.clone(),
            pool: base.pool.clone(),
            spaces: base.spaces.clone(),
            roots: Vec::new(),
            settings,
            max_audio_seconds: 600.0,
        };
        recommender.default_space().map_err(|e| e.to_string())
    };
    assert_eq!(r(settings.clone()), Ok("pca-knn".into()), "none preferred is loaded: the first loaded");
    settings.model = "nope".into();
    assert!(r(settings).expect_err("not loaded").contains("recommend.model = 'nope' is not a loaded model"));
}

#[tokio::test]
async fn one_track_example_gives_its_nearest_neighbours_but_never_itself() {
    let f = fixture(true).await;
    let seed = f.tracks[0].id;
    let found = f.recommender.recommend(request(vec![Example::Track(seed)])).await.expect("recommend");
    assert_eq!(found.len(), 5);
    assert!(!ids(&found).contains(&seed));
    assert!(found.windows(2).all(|w| w[0].score >= w[1].score), "best first");
}

#[tokio::test]
async fn several_positive_and_negative_examples_under_both_strategies() {
    let f = fixture(true).await;
    let positive = vec![Example::Track(f.tracks[1].id), Example::Track(f.tracks[2].id)];
    let negative = vec![Example::Track(f.tracks[3].id)];
    for strategy in [Strategy::AverageVector, Strategy::BestScore] {
        let found = f
            .recommender
            .recommend(RecommendRequest { negative: negative.clone(), strategy, ..request(positive.clone()) })
            .await
            .expect("recommend");
        assert_eq!(found.len(), 5, "{strategy:?}");
        let examples = [f.tracks[1].id, f.tracks[2].id, f.tracks[3].id];
        assert!(ids(&found).iter().all(|id| !examples.contains(id)), "{strategy:?}: no example comes back");
    }
}

#[tokio::test]
async fn the_seed_artist_filter_and_diversity_are_applied() {
    let f = fixture(true).await;
    let seed = &f.tracks[4];
    let filter = RecommendFilter { exclude_seed_artist: true, ..Default::default() };
    let found = f
        .recommender
        .recommend(RecommendRequest { filter, diversity: 0.5, ..request(vec![Example::Track(seed.id)]) })
        .await
        .expect("recommend");
    assert_eq!(found.len(), 5);
    assert!(found.iter().all(|r| r.track.tags.artist != seed.tags.artist), "the seed's artist is left out");
}

/// Six artists of three tracks each, a track's nearest neighbours by its own artist: a
/// walk that did not leave the artist out would stay with it.
async fn artists_in_threes(dir: &std::path::Path) -> Recommender {
    use crate::library::{FileStat, Tags};
    let store = Arc::new(crate::library::Store::open(&dir.join("library.sqlite3")).expect("store"));
    for artist in 0..6 {
        for take in 0..3 {
            let tags = Tags { artist: format!("A{artist}"), title: format!("T{artist}.{take}"), ..Default::default() };
            let path = format!("/m/{artist}-{take}.flac");
            let id = store.insert(&path, FileStat { size: 1, mtime_ns: 1 }, &path, &tags).expect("insert");
            let mut vector = vec![0.0f32; 16];
            vector[artist] = 1.0;
            vector[8 + take] = 0.05;
            let prediction = crate::index::tests::library_prediction("cnn", &["x"], vec![1.0], vector);
            store.save_analysis(id, 60.0, &[prediction]).expect("save");
        }
    }
    let index = EmbeddedIndex::in_memory(exact_config());
    sync_from_library(&index, &store).await.expect("sync");
    let pool = WorkerPool::start(Arc::new(PluginRegistry::default()), Arc::new(ModelCatalog::default()), 1, 1)
        .expect("an empty pool");
    let index: Arc<dyn VectorIndex> = Arc::new(index);
    let settings = RecommendSettings::default();
    Recommender::new(store, SharedIndex::ready(index), Arc::new(pool), vec!["cnn".into()], Vec::new(), settings, 600.0)
}

#[tokio::test]
async fn a_playlist_walks_from_its_seed_without_repeating_an_artist_in_a_row() {
    let dir = tempfile::tempdir().expect("tempdir");
    let recommender = artists_in_threes(dir.path()).await;
    let (tracks, _) = recommender.store.list(&Default::default(), 0, 1000).expect("list");
    let seed = &tracks[0];
    let playlist = recommender
        .playlist(PlaylistRequest {
            seed: Some(Example::Track(seed.id)),
            length: 8,
            no_repeat_artist: true,
            ..Default::default()
        })
        .await
        .expect("playlist");
    assert_eq!(playlist.len(), 8);
    let mut seen = ids(&playlist);
    seen.push(seed.id);
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), 9, "no track twice, the seed not at all");
    // The seed counts: its nearest neighbours are its own artist's other tracks.
    let artists: Vec<&str> =
        std::iter::once(seed).chain(playlist.iter().map(|r| &r.track)).map(|t| t.tags.artist.as_str()).collect();
    assert!(artists.windows(2).all(|w| w[0] != w[1]), "an artist twice in a row: {artists:?}");
}

#[tokio::test]
async fn each_mistake_is_its_own_error() {
    let f = fixture(true).await;
    let track = |id| vec![Example::Track(id)];
    let pending = f.tracks.iter().find(|t| t.predictions.is_empty()).expect("a track never analysed").id;
    let cases: Vec<(RecommendRequest, &str)> = vec![
        (request(Vec::new()), "NoPositiveExample"),
        (RecommendRequest { diversity: 1.5, ..request(track(f.tracks[0].id)) }, "Diversity"),
        (RecommendRequest { model: Some("nope".into()), ..request(track(f.tracks[0].id)) }, "UnknownModel"),
        (request(track(987_654)), "TrackNotFound"),
        (request(track(pending)), "NoEmbedding"),
        (request(vec![Example::Path("relative.flac".into())]), "RelativePath"),
        (request(vec![Example::Path("/m/0.flac".into())]), "OutsideRoots"),
    ];
    for (request, expected) in cases {
        let error = f.recommender.recommend(request).await.expect_err(expected);
        assert!(format!("{error:?}").starts_with(expected), "{expected}: {error:?}");
    }
    let seedless = f.recommender.playlist(PlaylistRequest::default()).await.expect_err("no seed");
    assert!(matches!(seedless, EngineError::NoSeed), "{seedless:?}");
}

#[tokio::test]
async fn an_index_not_yet_open_is_unavailable() {
    let f = fixture(false).await;
    let error = f.recommender.recommend(request(vec![Example::Track(f.tracks[0].id)])).await.expect_err("no index");
    assert!(matches!(error, EngineError::IndexUnavailable), "{error:?}");
}

// ---------------------------------------------------------------------------
// Listening history
// ---------------------------------------------------------------------------

fn listen_at(f: &Fixture, track_id: i64, seconds_ago: i64, played_s: f64, skipped: bool) {
    let at_ms = now_ms() - seconds_ago * 1000;
    f.recommender.store.record_listen(&Listen { track_id, at_ms, played_s, skipped }).expect("record");
}

async fn recommend_with(f: &Fixture, seed: i64, history: History, limit: usize) -> Vec<i64> {
    let request = RecommendRequest { history, limit, ..request(vec![Example::Track(seed)]) };
    ids(&f.recommender.recommend(request).await.expect("recommend"))
}

fn cosine_to(f: &Fixture, id: i64, other: i64) -> f32 {
    let vector = |id: i64| {
        let track = f.tracks.iter().find(|t| t.id == id).expect("a track");
        let p = track.predictions.iter().find(|p| p.version.model == "cnn").expect("cnn");
        normalised(&p.embedding)
    };
    dot(&vector(id), &vector(other))
}

#[tokio::test]
async fn recently_played_tracks_are_left_out_for_the_window_only() {
    let f = fixture(true).await;
    let seed = f.tracks[0].id;
    let before = recommend_with(&f, seed, History::default(), 5).await;
    // The two nearest were played an hour ago, the third a day ago.
    listen_at(&f, before[0], 3600, 200.0, false);
    listen_at(&f, before[1], 3600, 5.0, true);
    listen_at(&f, before[2], 86_400, 200.0, false);
    let exclude = History { exclude_recent: true, ..Default::default() };
    let after = recommend_with(&f, seed, exclude, 5).await;
    assert!(!after.contains(&before[0]) && !after.contains(&before[1]), "played within 3 h: {after:?}");
    assert_eq!(after[0], before[2], "played a day ago: outside the default window");
    assert_eq!(recommend_with(&f, seed, History::default(), 5).await, before, "history unused unless asked");
    let narrow = History { exclude_recent: true, recent_window_s: Some(60.0), ..Default::default() };
    assert_eq!(recommend_with(&f, seed, narrow, 5).await, before, "a one-minute window leaves them in");
    let wide = History { exclude_recent: true, recent_window_s: Some(2.0 * 86_400.0), ..Default::default() };
    assert!(!recommend_with(&f, seed, wide, 5).await.contains(&before[2]), "a two-day window takes it out");
    let bad = History { exclude_recent: true, recent_window_s: Some(-1.0), ..Default::default() };
    let error = f.recommender.recommend(RecommendRequest { history: bad, ..request(vec![Example::Track(seed)]) });
    assert!(matches!(error.await, Err(EngineError::RecentWindow(_))));
}

#[tokio::test]
async fn a_quick_skip_pushes_its_neighbourhood_away_and_a_late_skip_does_not() {
    let f = fixture(true).await;
    let seed = f.tracks[0].id;
    let skips = History { skips_as_negative: true, ..Default::default() };
    let before = recommend_with(&f, seed, History::default(), 10).await;
    let skipped = before[0];
    // Skipped after 2 s, having been played through a week ago: the latest listen counts.
    listen_at(&f, skipped, 7 * 86_400, 200.0, false);
    listen_at(&f, skipped, 60, 2.0, true);
    let after = recommend_with(&f, seed, skips, 10).await;
    assert_ne!(after, before, "a quick skip changes what is recommended");
    let closeness = |found: &[i64]| found.iter().map(|&id| cosine_to(&f, id, skipped)).sum::<f32>();
    let without_skipped: Vec<i64> = before.iter().copied().filter(|&id| id != skipped).collect();
    assert!(
        closeness(&after) < closeness(&without_skipped),
        "the recommendations move away from the skipped track: {after:?} vs {before:?}"
    );
    assert!(after.iter().position(|&id| id == skipped).is_none_or(|rank| rank > 0), "no longer first");

    // A late skip (200 s played, beyond quick_skip_s) is no negative example.
    let g = fixture(true).await;
    listen_at(&g, skipped, 60, 200.0, true);
    assert_eq!(recommend_with(&g, seed, skips, 10).await, before);
}

#[tokio::test]
async fn tracks_played_through_pull_recommendations_towards_them_replays_more() {
    let f = fixture(true).await;
    let seed = f.tracks[0].id;
    let plays = History { plays_as_positive: true, ..Default::default() };
    let liked = f.tracks[20].id;
    let before = recommend_with(&f, seed, History::default(), 10).await;
    assert_eq!(recommend_with(&f, seed, plays, 10).await, before, "no history: nothing changes");
    listen_at(&f, liked, 600, 200.0, false);
    let once = recommend_with(&f, seed, plays, 10).await;
    let closeness = |found: &[i64]| found.iter().map(|&id| cosine_to(&f, id, liked)).sum::<f32>();
    assert!(closeness(&once) > closeness(&before), "towards the played track: {once:?} vs {before:?}");
    listen_at(&f, liked, 300, 200.0, false);
    listen_at(&f, liked, 100, 200.0, false);
    let thrice = recommend_with(&f, seed, plays, 10).await;
    assert!(closeness(&thrice) > closeness(&once), "replays weigh more: {thrice:?} vs {once:?}");
    // The history alone is enough of an example.
    let alone = RecommendRequest { history: plays, limit: 5, ..Default::default() };
    let found = f.recommender.recommend(alone).await.expect("from the history alone");
    assert_eq!(found.len(), 5);
    let empty = fixture(true).await;
    let alone = RecommendRequest { history: plays, limit: 5, ..Default::default() };
    assert!(matches!(empty.recommender.recommend(alone).await, Err(EngineError::NoPositiveExample)));
}

#[tokio::test]
async fn a_playlist_leaves_recent_tracks_out_and_steers_clear_of_skips() {
    let f = fixture(true).await;
    let seed = f.tracks[5].id;
    let playlist = |history: History| {
        let request = PlaylistRequest { seed: Some(Example::Track(seed)), length: 6, history, ..Default::default() };
        let recommender = &f.recommender;
        async move { ids(&recommender.playlist(request).await.expect("playlist")) }
    };
    let before = playlist(History::default()).await;
    listen_at(&f, before[1], 60, 200.0, false);
    let after = playlist(History { exclude_recent: true, ..Default::default() }).await;
    assert!(!after.contains(&before[1]), "{after:?}");
    assert_eq!(after.len(), 6);
    listen_at(&f, before[0], 30, 1.0, true);
    let after = playlist(History { skips_as_negative: true, ..Default::default() }).await;
    assert_ne!(after[0], before[0], "the skipped track no longer opens the playlist");
}

#[tokio::test]
async fn a_listen_is_recorded_for_a_library_track_only() {
    let f = fixture(true).await;
    let id = f.tracks[3].id;
    let listen = |track, played_s| ListenRequest { track, at_ms: Some(1_000), played_s, skipped: false };
    let recorded = f.recommender.record_listen(listen(Example::Track(id), 12.5)).await.expect("record");
    assert_eq!(recorded, Listen { track_id: id, at_ms: 1_000, played_s: 12.5, skipped: false });
    assert_eq!(f.recommender.store.listens_since(0).expect("listens"), vec![recorded]);
    let unknown = f.recommender.record_listen(listen(Example::Track(987_654), 1.0)).await;
    assert!(matches!(unknown, Err(EngineError::TrackNotFound(_))), "{unknown:?}");
    for played in [-1.0, f64::NAN] {
        let bad = f.recommender.record_listen(listen(Example::Track(id), played)).await;
        assert!(matches!(bad, Err(EngineError::PlayedTime(_))), "{bad:?}");
    }
    let now = f.recommender.record_listen(ListenRequest { at_ms: None, ..listen(Example::Track(id), 1.0) });
    assert!((now.await.expect("record").at_ms - now_ms()).abs() < 60_000, "no time given: now");
}

// ---------------------------------------------------------------------------
// Paths
// ---------------------------------------------------------------------------

fn path_request(from: i64, to: i64, length: usize) -> PathRequest {
    PathRequest { from: Some(Example::Track(from)), to: Some(Example::Track(to)), length, ..Default::default() }
}

/// Two tracks far apart in the cnn space.
fn far_apart(f: &Fixture) -> (i64, i64) {
    let analysed: Vec<i64> = f.tracks.iter().filter(|t| !t.predictions.is_empty()).map(|t| t.id).collect();
    let mut pairs = Vec::new();
    for &a in &analysed {
        for &b in &analysed {
            if a < b {
                pairs.push((cosine_to(f, a, b), a, b));
            }
        }
    }
    let (_, a, b) = pairs.into_iter().min_by(|x, y| x.0.total_cmp(&y.0)).expect("pairs");
    (a, b)
}

#[tokio::test]
async fn a_path_starts_near_from_ends_near_to_and_closes_in_on_to() {
    // Dense enough that each of six steps can close in on TO.
    let f = fixture_of(true, 200).await;
    let (from, to) = far_apart(&f);
    let path = ids(&f.recommender.path(path_request(from, to, 6)).await.expect("path"));
    assert_eq!(path.len(), 6);
    let mut unique = path.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), 6, "no repeats");
    assert!(!path.contains(&from) && !path.contains(&to), "the ends are not part of it");
    let (first, last) = (path[0], path[5]);
    assert!(cosine_to(&f, first, from) > cosine_to(&f, first, to), "the first step is near FROM");
    assert!(cosine_to(&f, last, to) > cosine_to(&f, last, from), "the last step is near TO");
    let to_end: Vec<f32> = std::iter::once(from).chain(path.iter().copied()).map(|id| cosine_to(&f, id, to)).collect();
    assert!(to_end.windows(2).all(|w| w[1] > w[0]), "each step closer to TO: {to_end:?}");
}

#[tokio::test]
async fn a_path_can_avoid_an_artist_twice_in_a_row_and_pass_a_waypoint() {
    let f = fixture(true).await;
    let (from, to) = far_apart(&f);
    let artist = |id: i64| f.tracks.iter().find(|t| t.id == id).expect("a track").tags.artist.clone();
    let request = PathRequest { no_repeat_artist: true, ..path_request(from, to, 8) };
    let path = ids(&f.recommender.path(request).await.expect("path"));
    assert_eq!(path.len(), 8);
    let artists: Vec<String> = std::iter::once(from).chain(path.iter().copied()).map(artist).collect();
    assert!(artists.windows(2).all(|w| w[0] != w[1]), "{artists:?}");

    // A waypoint far from both ends: the path bends towards it.
    let plain = ids(&f.recommender.path(path_request(from, to, 6)).await.expect("path"));
    let waypoint = f
        .tracks
        .iter()
        .filter(|t| !t.predictions.is_empty() && t.id != from && t.id != to)
        .map(|t| t.id)
        .min_by(|&a, &b| {
            let away = |id| cosine_to(&f, id, from) + cosine_to(&f, id, to);
            away(a).total_cmp(&away(b))
        })
        .expect("a waypoint");
    let request = PathRequest { waypoints: vec![Example::Track(waypoint)], ..path_request(from, to, 6) };
    let bent = ids(&f.recommender.path(request).await.expect("path"));
    assert!(!bent.contains(&waypoint), "a library waypoint is not part of the path");
    let nearest = |path: &[i64]| path.iter().map(|&id| cosine_to(&f, id, waypoint)).fold(f32::MIN, f32::max);
    assert!(nearest(&bent) > nearest(&plain), "nearer the waypoint: {bent:?} vs {plain:?}");
    let missing = f.recommender.path(PathRequest { to: None, ..path_request(from, to, 3) }).await;
    assert!(matches!(missing, Err(EngineError::NoEndpoint("to"))), "{missing:?}");
}

/// Tempo and key as the fixture's library stores them (see `crate::index::tests::library`).
fn tempo_key(track: &TrackRecord) -> (Option<f64>, Option<Camelot>) {
    tempo_and_key(&track.descriptors)
}

fn bpm_filter(min: Option<f64>, max: Option<f64>, octaves: bool) -> RecommendFilter {
    let bpm = Some(crate::index::BpmRange { min, max, octaves });
    RecommendFilter { filter: Filter { bpm, ..Default::default() }, ..Default::default() }
}

#[tokio::test]
async fn a_tempo_range_gives_tracks_in_range_only_and_still_fills_the_limit() {
    let f = fixture(true).await;
    let seed = f.tracks[0].id;
    let in_range = |lo: f64, hi: f64, octaves: bool| -> Vec<i64> {
        let range = crate::index::BpmRange { min: Some(lo), max: Some(hi), octaves };
        let passing = f.tracks.iter().filter(|t| t.id != seed && tempo_key(t).0.is_some_and(|b| range.contains(b)));
        passing.map(|t| t.id).collect()
    };
    // 9 tracks measured 95 to 110 BPM: five asked for, five in range (filtered in the index,
    // not thrown away after a search of five).
    let expected = in_range(95.0, 110.0, false);
    assert_eq!(expected.len(), 9);
    let filter = bpm_filter(Some(95.0), Some(110.0), false);
    let found = f.recommender.recommend(RecommendRequest { filter, ..request(vec![Example::Track(seed)]) }).await;
    let found = ids(&found.expect("recommend"));
    assert_eq!(found.len(), 5);
    assert!(found.iter().all(|id| expected.contains(id)), "{found:?} within {expected:?}");
    // With octaves, 190-200 also takes the tracks at 95-100 (half time) and, asked for all,
    // gives exactly the tracks in range.
    let expected = in_range(190.0, 200.0, true);
    let filter = bpm_filter(Some(190.0), Some(200.0), true);
    let all = RecommendRequest { filter, limit: 100, ..request(vec![Example::Track(seed)]) };
    let mut found = ids(&f.recommender.recommend(all).await.expect("recommend"));
    found.sort_unstable();
    assert_eq!(found, expected);
    assert!(found.iter().any(|id| f.tracks.iter().any(|t| t.id == *id && tempo_key(t).0 < Some(101.0))));
}

#[tokio::test]
async fn harmonic_recommendations_mix_with_the_examples_key_or_the_key_given() {
    let f = fixture(true).await;
    let compatible_with = |key: Camelot, seed: i64| -> Vec<i64> {
        let keys = key.compatible();
        let mut ids: Vec<i64> = f
            .tracks
            .iter()
            .filter(|t| t.id != seed && tempo_key(t).1.is_some_and(|k| keys.contains(&k)))
            .map(|t| t.id)
            .collect();
        ids.sort_unstable();
        ids
    };
    let all = |filter: RecommendFilter, seed: i64| RecommendRequest {
        filter,
        limit: 100,
        ..request(vec![Example::Track(seed)])
    };
    let harmonic = RecommendFilter { harmonic: true, ..Default::default() };
    // Track 2: D major. Every track in D, B minor, A or G major, and no other.
    let seed = &f.tracks[2];
    let key = tempo_key(seed).1.expect("the seed has a key");
    assert_eq!(key.key_name(), "D major");
    let mut found = ids(&f.recommender.recommend(all(harmonic.clone(), seed.id)).await.expect("recommend"));
    found.sort_unstable();
    let expected = compatible_with(key, seed.id);
    assert!(expected.len() >= 3, "{expected:?}");
    assert_eq!(found, expected);
    // A key given in the request replaces the seed's, in either spelling.
    for given in ["A minor", "8a"] {
        let filter = RecommendFilter { key: Some(given.into()), ..harmonic.clone() };
        let mut found = ids(&f.recommender.recommend(all(filter, seed.id)).await.expect("recommend"));
        found.sort_unstable();
        assert_eq!(found, compatible_with(Camelot::parse("A minor").expect("a key"), seed.id), "{given}");
    }
    // Two examples: tracks that mix with either.
    let other = &f.tracks[5];
    let request = RecommendRequest {
        filter: harmonic.clone(),
        limit: 100,
        ..request(vec![Example::Track(seed.id), Example::Track(other.id)])
    };
    let found = ids(&f.recommender.recommend(request).await.expect("recommend"));
    let keys: Vec<Camelot> =
        [key, tempo_key(other).1.expect("a key")].into_iter().flat_map(Camelot::compatible).collect();
    let expected = f
        .tracks
        .iter()
        .filter(|t| t.id != seed.id && t.id != other.id && tempo_key(t).1.is_some_and(|k| keys.contains(&k)));
    assert_eq!(found.len(), expected.count());
}

#[tokio::test]
async fn a_harmonic_playlist_mixes_each_track_with_the_one_before_within_the_tempo_range() {
    let f = fixture_of(true, 120).await;
    let seed = &f.tracks[1];
    let filter = RecommendFilter { harmonic: true, ..bpm_filter(Some(80.0), Some(150.0), false) };
    let request = PlaylistRequest { seed: Some(Example::Track(seed.id)), length: 6, filter, ..Default::default() };
    let playlist = f.recommender.playlist(request).await.expect("playlist");
    assert!(playlist.len() >= 3, "{}", playlist.len());
    let mut previous = tempo_key(seed).1.expect("the seed has a key");
    for r in &playlist {
        let (bpm, key) = tempo_key(&r.track);
        assert!(bpm.is_some_and(|b| (80.0..=150.0).contains(&b)), "track {}: {bpm:?}", r.track.id);
        let key = key.expect("a key");
        assert!(previous.compatible().contains(&key), "{previous} then {key}");
        previous = key;
    }
    // Mixing with the seed only (not the track before) would have let some step go to a key
    // the previous track does not mix with; the walk above travels the wheel.
    let keys: std::collections::HashSet<Camelot> = playlist.iter().filter_map(|r| tempo_key(&r.track).1).collect();
    assert!(keys.len() >= 2, "{keys:?}");
}

#[tokio::test]
async fn a_bad_key_or_tempo_range_or_a_seed_without_key_is_its_own_error() {
    let f = fixture(true).await;
    let with = |filter: RecommendFilter, seed: i64| RecommendRequest { filter, ..request(vec![Example::Track(seed)]) };
    let seed = f.tracks[0].id;
    let bad_key = RecommendFilter { harmonic: true, key: Some("H minor".into()), ..Default::default() };
    let error = f.recommender.recommend(with(bad_key.clone(), seed)).await.expect_err("H minor");
    assert!(matches!(&error, EngineError::BadKey(k) if k == "H minor"), "{error:?}");
    assert!(error.to_string().contains("\"8A\""), "{error}");
    let error = f
        .recommender
        .playlist(PlaylistRequest { seed: Some(Example::Track(seed)), filter: bad_key, ..Default::default() })
        .await
        .expect_err("H minor");
    assert!(matches!(error, EngineError::BadKey(_)), "{error:?}");
    for (min, max, what) in
        [(Some(130.0), Some(120.0), "above max"), (None, None, "empty"), (Some(-5.0), None, "not a tempo")]
    {
        let error = f.recommender.recommend(with(bpm_filter(min, max, false), seed)).await.expect_err(what);
        assert!(matches!(&error, EngineError::BadBpmRange(m) if m.contains(what)), "{what}: {error:?}");
    }
    // Track 3 has no key: it cannot be the reference, unless the request gives one.
    let keyless = f.tracks[3].id;
    assert_eq!(tempo_key(&f.tracks[3]), (None, None));
    let harmonic = RecommendFilter { harmonic: true, ..Default::default() };
    let error = f.recommender.recommend(with(harmonic.clone(), keyless)).await.expect_err("no key");
    assert!(
        matches!(&error, EngineError::NoReferenceKey(what) if what.contains(&format!("track {keyless}"))),
        "{error:?}"
    );
    let given = RecommendFilter { key: Some("5A".into()), ..harmonic.clone() };
    assert!(!f.recommender.recommend(with(given, keyless)).await.expect("a key given").is_empty());
    let error = f
        .recommender
        .playlist(PlaylistRequest { seed: Some(Example::Track(keyless)), filter: harmonic, ..Default::default() })
        .await
        .expect_err("no key");
    assert!(matches!(error, EngineError::NoReferenceKey(_)), "{error:?}");
}

#[tokio::test]
async fn a_harmonic_path_mixes_each_step_with_the_one_before_in_play_order() {
    let f = fixture_of(true, 200).await;
    let with_key = |id: i64| f.tracks.iter().find(|t| t.id == id).and_then(|t| tempo_key(t).1);
    let (from, to) = far_apart(&f);
    let from = if with_key(from).is_some() { from } else { f.tracks[0].id };
    let filter = RecommendFilter { harmonic: true, ..Default::default() };
    let request = PathRequest { filter, ..path_request(from, to, 6) };
    let path = f.recommender.path(request).await.expect("path");
    assert!(path.len() >= 3, "{}", path.len());
    let mut previous = with_key(from).expect("FROM has a key");
    for step in &path {
        let key = tempo_key(&step.track).1.expect("a key");
        assert!(previous.compatible().contains(&key), "{previous} then {key}");
        previous = key;
    }
}

/// Each next track of a harmonic playlist mixes with the one before it, not merely with the
/// seed: from a seed in 8B, the first step goes to 9B; 7B also mixes with the seed, but not
/// with 9B, so the second step must go to 10B.
#[tokio::test]
async fn a_harmonic_playlist_follows_the_previous_track_round_the_wheel_not_the_seed() {
    use crate::library::{FileStat, Tags};
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(crate::library::Store::open(&dir.path().join("library.sqlite3")).expect("store"));
    let mut by_name = HashMap::new();
    // (name, Camelot key, vector): 7B lies nearer the seed and 9B than 10B does.
    for (name, key, vector) in [
        ("seed", "8B", [1.0, 0.0, 0.0]),
        ("fifth up", "9B", [0.98, 0.2, 0.0]),
        ("fifth down", "7B", [0.97, 0.1, 0.2]),
        ("two fifths up", "10B", [0.7, 0.5, 0.5]),
        ("far key", "2A", [0.99, 0.1, 0.1]),
    ] {
        let path = format!("/m/{name}.flac");
        let tags = Tags { title: name.into(), ..Default::default() };
        let id = store.insert(&path, FileStat { size: 1, mtime_ns: 1 }, &path, &tags).expect("insert");
        let prediction = crate::index::tests::library_prediction("cnn", &["x"], vec![1.0], vector.to_vec());
        store.save_analysis(id, 60.0, &[prediction]).expect("save");
        let (tonic, minor) = Camelot::parse(key).expect("a key").key();
        let values = vec![("key_tonic".into(), tonic as f64), ("key_mode".into(), f64::from(u8::from(minor)))];
        let described = crate::pipeline::descriptors::DescriptorResult {
            plugin: "descriptors".into(),
            version: "1".into(),
            values,
            state: Vec::new(),
            error: None,
        };
        store.save_descriptors(id, &[described]).expect("save descriptors");
        by_name.insert(name, id);
    }
    let index = EmbeddedIndex::in_memory(exact_config());
    sync_from_library(&index, &store).await.expect("sync");
    let pool = WorkerPool::start(Arc::new(PluginRegistry::default()), Arc::new(ModelCatalog::default()), 1, 1)
        .expect("an empty pool");
    let index: Arc<dyn VectorIndex> = Arc::new(index);
    let settings = RecommendSettings::default();
    let recommender = Recommender::new(
        store,
        SharedIndex::ready(index),
        Arc::new(pool),
        vec!["cnn".into()],
        Vec::new(),
        settings,
        600.0,
    );
    let filter = RecommendFilter { harmonic: true, ..Default::default() };
    let request =
        PlaylistRequest { seed: Some(Example::Track(by_name["seed"])), length: 3, filter, ..Default::default() };
    let playlist = ids(&recommender.playlist(request).await.expect("playlist"));
    assert_eq!(playlist, [by_name["fifth up"], by_name["two fifths up"]], "9B, then 10B (7B does not mix with 9B)");
}
