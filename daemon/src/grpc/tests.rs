//! Each `timbre.v1.Timbre` handler over an in-memory transport (no network port), on an
//! engine with the fake plugins: what a client sends, what it gets back, and which code.

use timbre_proto::v1 as pb;
use timbre_proto::v1::timbre_client::TimbreClient;
use timbre_proto::v1::timbre_server::TimbreServer;
use tonic::transport::{Channel, Endpoint, Server, Uri};
use tonic::Code;

use super::TimbreService;
use crate::engine::tests::engine;

/// A client of a `TimbreService` served over an in-process pipe.
async fn client(models: &[&str]) -> (TimbreClient<Channel>, std::sync::Arc<crate::engine::Engine>, tempfile::TempDir) {
    let (engine, dir) = engine(models, 600.0).await;
    let (near, far) = tokio::io::duplex(1 << 20);
    let service = TimbreServer::new(TimbreService::new(engine.clone()));
    tokio::spawn(async move {
        let incoming = tokio_stream::once(Ok::<_, std::io::Error>(far));
        Server::builder().add_service(service).serve_with_incoming(incoming).await
    });
    let mut near = Some(near);
    let channel = Endpoint::try_from("http://in-memory")
        .expect("endpoint")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let near = near.take();
            async move { near.map(hyper_util::rt::TokioIo::new).ok_or_else(|| std::io::Error::other("one connection")) }
        }))
        .await
        .expect("connect");
    (TimbreClient::new(channel), engine, dir)
}

fn pcm(level: f32, seconds: f64) -> pb::Pcm {
    let rate = crate::plugin_host::fakes::SAMPLE_RATE;
    pb::Pcm { samples: vec![level; (seconds * rate as f64) as usize], sample_rate: rate, channels: 1 }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classify_answers_each_model_with_ranked_labels() {
    let (mut client, engine, _dir) = client(&["fake"]).await;
    let request =
        pb::ClassifyRequest { source: Some(pb::classify_request::Source::Pcm(pcm(0.8, 2.0))), ..Default::default() };
    let response = client.classify(request).await.expect("classify").into_inner();
    assert_eq!(response.predictions.len(), 1);
    let labels = &response.predictions[0].labels;
    assert_eq!(labels.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(), ["loud", "quiet"]);
    let none = client.classify(pb::ClassifyRequest::default()).await.expect_err("no source");
    assert_eq!(none.code(), Code::InvalidArgument);
    let request = pb::ClassifyRequest {
        source: Some(pb::classify_request::Source::Pcm(pcm(0.8, 1.0))),
        models: vec!["nope".into()],
        ..Default::default()
    };
    let unknown = client.classify(request).await.expect_err("unknown model");
    assert_eq!((unknown.code(), unknown.message()), (Code::NotFound, "no model named 'nope' is loaded (loaded: fake)"));
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classify_stream_answers_one_response_per_window() {
    let (mut client, engine, _dir) = client(&["fake"]).await;
    let chunks = vec![
        pb::AudioChunk {
            pcm: Some(pcm(0.2, 1.5)),
            config: Some(pb::ClassifyStreamConfig { window_s: 1.0, ..Default::default() }),
        },
        pb::AudioChunk { pcm: Some(pcm(0.2, 1.5)), config: None },
    ];
    let mut responses = client.classify_stream(tokio_stream::iter(chunks)).await.expect("stream").into_inner();
    let mut windows = 0;
    while let Some(response) = responses.message().await.expect("a response") {
        assert_eq!(response.predictions.len(), 1);
        windows += 1;
    }
    assert_eq!(windows, 3, "3 s of audio in 1 s windows");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn library_handlers_answer_from_an_empty_library() {
    let (mut client, engine, _dir) = client(&["fake"]).await;
    let track = |id| pb::GetTrackRequest { track: Some(pb::get_track_request::Track::TrackId(id)) };
    let missing = client.get_track(track(7)).await.expect_err("no track");
    assert_eq!((missing.code(), missing.message()), (Code::NotFound, "no track with id 7"));
    let listed = client.list_tracks(pb::ListTracksRequest::default()).await.expect("list").into_inner();
    assert_eq!((listed.tracks.len(), listed.total), (0, 0));
    let token = pb::ListTracksRequest { page_token: "x".into(), ..Default::default() };
    assert_eq!(client.list_tracks(token).await.expect_err("bad token").code(), Code::InvalidArgument);
    let scan = client.scan(pb::ScanRequest::default()).await.expect_err("no roots");
    assert_eq!(scan.code(), Code::FailedPrecondition);
    let live = client.watch_live(pb::WatchLiveRequest::default()).await.expect_err("no live sources");
    assert_eq!(live.code(), Code::NotFound);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recommend_and_playlist_check_their_examples() {
    let (mut client, engine, _dir) = client(&["fake"]).await;
    let example = |id| pb::TrackRef { track: Some(pb::track_ref::Track::TrackId(id)) };
    let request = pb::RecommendRequest { positive: vec![example(1)], ..Default::default() };
    let missing = client.recommend(request).await.expect_err("no such track");
    assert_eq!((missing.code(), missing.message()), (Code::NotFound, "no track with id 1"));
    let empty = client.recommend(pb::RecommendRequest::default()).await.expect_err("no example");
    assert_eq!(empty.code(), Code::InvalidArgument);
    let seedless = client.playlist(pb::PlaylistRequest::default()).await.expect_err("no seed");
    assert_eq!((seedless.code(), seedless.message()), (Code::InvalidArgument, "seed: required"));
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_plugins_names_the_plugins_and_models_loaded() {
    let (mut client, engine, _dir) = client(&["fake"]).await;
    let listing = client.list_plugins(pb::ListPluginsRequest::default()).await.expect("list").into_inner();
    let names: Vec<&str> = listing.plugins.iter().map(|p| p.name.as_str()).collect();
    assert!(names.contains(&"fake-features") && names.contains(&"fake-classifier"), "{names:?}");
    assert!(names.contains(&"fake"), "older clients still find the model among the plugins: {names:?}");
    let models: Vec<(&str, &str, &str)> =
        listing.models.iter().map(|m| (m.name.as_str(), m.plugin.as_str(), m.features.as_str())).collect();
    assert_eq!(models, [("fake", "fake-classifier", "fake-features")]);
    engine.shutdown().await;
}
