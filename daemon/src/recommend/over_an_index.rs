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
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(library(dir.path(), 40));
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
