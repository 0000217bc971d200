//! Recommend and Playlist against a real daemon whose library holds real GTZAN clips.

use std::path::{Path, PathBuf};

use lofty::config::WriteOptions;
use lofty::prelude::*;
use lofty::tag::{Tag, TagType};
use timbre_proto::v1 as pb;
use timbre_proto::v1::timbre_client::TimbreClient;
use tonic::transport::Channel;

use crate::library::wait_for_tracks;
use crate::serve::timbre_cli;
use crate::util::{eventually, gtzan_clips, gtzan_pool, run, runtime, text, Daemon};

fn tag(path: &Path, artist: &str, album: &str) {
    let mut tag = Tag::new(TagType::VorbisComments);
    tag.set_artist(artist.into());
    tag.set_album(album.into());
    tag.save_to_path(path, WriteOptions::default()).unwrap_or_else(|e| panic!("tagging {}: {e}", path.display()));
}

fn by_id(id: u64) -> pb::TrackRef {
    pb::TrackRef { track: Some(pb::track_ref::Track::TrackId(id)) }
}

async fn recommend(client: &mut TimbreClient<Channel>, request: pb::RecommendRequest) -> Vec<pb::RecommendedTrack> {
    client.recommend(request).await.expect("Recommend").into_inner().tracks
}

fn top_label(track: &pb::Track, model: &str) -> String {
    let prediction = track.predictions.iter().find(|p| p.model == model).expect("prediction");
    prediction.labels[0].name.clone()
}

/// The library: three clips of four genres; two tracks by one artist in different genres.
fn library(root: &Path, pool: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for clip in gtzan_clips(pool, &["classical", "metal", "jazz", "pop"], 3) {
        let to = root.join(clip.file_name().expect("name"));
        std::fs::copy(&clip, &to).expect("copy");
        files.push(to);
    }
    tag(&files[0], "Bach", "Suites");
    tag(&files[1], "Bach", "Suites");
    tag(&files[3], "Bach", "Noise");
    files
}

#[test]
fn recommend_and_playlist_find_similar_tracks_with_filters_and_survive_a_restart() {
    recommend_and_playlist(&[]);
}

/// The same against the Qdrant server named by `QDRANT_URL`, in a collection of its own.
#[test]
fn recommend_and_playlist_with_the_qdrant_backend() {
    let Ok(url) = std::env::var("QDRANT_URL") else {
        eprintln!("skipped: QDRANT_URL is not set (no Qdrant server can be installed on this CI machine)");
        return;
    };
    let collection = format!("timbre-e2e-{}", std::process::id());
    recommend_and_playlist(&[
        ("TIMBRE_INDEX__BACKEND", "qdrant"),
        ("TIMBRE_INDEX__QDRANT__URL", &url),
        ("TIMBRE_INDEX__QDRANT__COLLECTION", &collection),
    ]);
}

fn recommend_and_playlist(env: &[(&str, &str)]) {
    let Some(pool) = gtzan_pool() else { return };
    let embedded = env.is_empty();
    let root = tempfile::tempdir().expect("tempdir");
    let data = tempfile::tempdir().expect("tempdir");
    let files = library(root.path(), &pool);
    let args = ["--root", root.path().to_str().expect("utf-8"), "--data-dir", data.path().to_str().expect("utf-8")];
    let daemon = Daemon::start_with(&args, env);
    let path_of = |name: &Path| name.canonicalize().expect("canonical").display().to_string();

    let first_answer = runtime().block_on(async {
        let mut client = daemon.client().await;
        let tracks = wait_for_tracks(&mut client, files.len()).await;
        let track = |file: &Path| tracks.iter().find(|t| t.path == path_of(file)).expect("listed").clone();
        let seed = track(&files[0]);
        let everything = pb::RecommendRequest { positive: vec![by_id(seed.id)], limit: 50, ..Default::default() };
        // The index follows the library a moment after each analysis.
        let all = eventually("every other track to be recommendable", 60, async || {
            let hits = client.recommend(everything.clone()).await.ok()?.into_inner().tracks;
            (hits.len() == files.len() - 1).then_some(hits)
        })
        .await;
        assert!(all.iter().all(|r| r.track.as_ref().expect("track").id != seed.id), "the example is never recommended");
        assert!(all.windows(2).all(|w| w[0].score >= w[1].score), "best first");
        let nearest = all[0].track.as_ref().expect("track");
        assert!(nearest.path.contains("classical"), "a classical clip's nearest track is classical: {}", nearest.path);

        // Filters: no track by the seed's artist; only metal; only long tracks.
        let filtered = |filter: pb::RecommendFilter| pb::RecommendRequest {
            positive: vec![by_id(seed.id)],
            limit: 50,
            filter: Some(filter),
            ..Default::default()
        };
        let hits =
            recommend(&mut client, filtered(pb::RecommendFilter { exclude_seed_artist: true, ..Default::default() }))
                .await;
        assert_eq!(hits.len(), files.len() - 3, "both other tracks by Bach are left out");
        assert!(hits.iter().all(|r| r
            .track
            .as_ref()
            .and_then(|t| t.tags.as_ref())
            .is_some_and(|t| t.artist != "Bach")));
        let hits = recommend(
            &mut client,
            filtered(pb::RecommendFilter { genres: vec!["Metal".into()], ..Default::default() }),
        )
        .await;
        assert!(!hits.is_empty());
        assert!(hits.iter().all(|r| top_label(r.track.as_ref().expect("track"), "cnn") == "metal"));
        let long = pb::RecommendFilter { min_duration_s: Some(10.0), ..Default::default() };
        let hits = recommend(&mut client, filtered(long)).await;
        assert!(hits.iter().all(|r| r.track.as_ref().expect("track").duration_s >= 10.0));
        assert_eq!(hits.len(), tracks.iter().filter(|t| t.id != seed.id && t.duration_s >= 10.0).count());

        // A negative example (best_score): it is not recommended back, and the ranking changes.
        let other = track(&files[1]);
        let request = pb::RecommendRequest {
            positive: vec![by_id(seed.id)],
            negative: vec![by_id(other.id)],
            strategy: pb::RecommendStrategy::BestScore as i32,
            limit: 50,
            ..Default::default()
        };
        let hits = recommend(&mut client, request).await;
        assert!(hits.iter().all(|r| r.track.as_ref().expect("track").id != other.id));
        assert_eq!(hits.len(), files.len() - 2);

        // Audio that is not in the library, uploaded: analysed on the fly, not stored.
        let outside = gtzan_clips(&pool, &["classical"], 6).pop().expect("a sixth clip");
        let audio = pb::AudioInput {
            source: Some(pb::audio_input::Source::Encoded(std::fs::read(&outside).expect("read"))),
            filename_hint: outside.file_name().expect("name").to_string_lossy().into_owned(),
        };
        let request = pb::RecommendRequest {
            positive: vec![pb::TrackRef { track: Some(pb::track_ref::Track::Audio(audio)) }],
            limit: 3,
            diversity: 0.5,
            ..Default::default()
        };
        assert_eq!(recommend(&mut client, request).await.len(), 3);
        assert_eq!(wait_for_tracks(&mut client, files.len()).await.len(), files.len(), "nothing was stored");

        // Bad requests say what is wrong.
        let status = client.recommend(pb::RecommendRequest::default()).await.expect_err("no example");
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        let unknown = pb::RecommendRequest { positive: vec![by_id(99_999)], ..Default::default() };
        assert_eq!(client.recommend(unknown).await.expect_err("unknown").code(), tonic::Code::NotFound);

        // A playlist: no repeats, not the seed, never the same artist twice in a row.
        let request = pb::PlaylistRequest {
            seed: Some(pb::TrackRef { track: Some(pb::track_ref::Track::Path(seed.path.clone())) }),
            length: 8,
            no_repeat_artist: true,
            ..Default::default()
        };
        let playlist = client.playlist(request).await.expect("Playlist").into_inner().tracks;
        assert_eq!(playlist.len(), 8);
        let ids: std::collections::HashSet<u64> =
            playlist.iter().map(|r| r.track.as_ref().expect("track").id).collect();
        assert_eq!(ids.len(), 8, "no track twice");
        assert!(!ids.contains(&seed.id));
        let artists: Vec<String> =
            playlist.iter().map(|r| r.track.as_ref().and_then(|t| t.tags.clone()).unwrap_or_default().artist).collect();
        assert!(artists.windows(2).all(|w| w[0].is_empty() || w[0] != w[1]), "{artists:?}");
        assert!(artists[0] != "Bach", "the seed's artist does not follow it");
        all.iter().map(|r| r.track.as_ref().expect("track").id).collect::<Vec<_>>()
    });

    // The client: `timbre recommend` and `timbre playlist`.
    let seed = files[0].to_str().expect("utf-8");
    let output = run(timbre_cli().args(["--addr", &daemon.addr, "recommend", "-n", "3", seed]));
    assert!(output.status.success());
    assert_eq!(text(&output.stdout).lines().count(), 3);
    let output = run(timbre_cli().args(["--addr", &daemon.addr, "--json", "playlist", "--seed", seed, "-n", "4"]));
    assert!(output.status.success());
    let lines: Vec<serde_json::Value> =
        text(&output.stdout).lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    assert_eq!(lines.len(), 4);
    assert!(lines.iter().all(|l| l["score"].is_number() && l["track"]["id"].is_number()));
    assert!(daemon.stop().success());

    // After a restart the index is back, and answers the same.
    if embedded {
        assert!(data.path().join("index.timbre-ix").is_file(), "the embedded index is persisted next to the library");
    }
    let daemon = Daemon::start_with(&args, env);
    runtime().block_on(async {
        let mut client = daemon.client().await;
        let seed_id = {
            let tracks = wait_for_tracks(&mut client, files.len()).await;
            tracks.iter().find(|t| t.path == path_of(&files[0])).expect("seed").id
        };
        let everything = pb::RecommendRequest { positive: vec![by_id(seed_id)], limit: 50, ..Default::default() };
        let again =
            eventually("the index after a restart", 60, async || client.recommend(everything.clone()).await.ok())
                .await
                .into_inner()
                .tracks;
        let ids: Vec<u64> = again.iter().map(|r| r.track.as_ref().expect("track").id).collect();
        assert_eq!(ids, first_answer);
    });
    assert!(daemon.stop().success());
}

/// Report 003's evaluation on the whole pool: for every track, how many of its 5 and 10
/// nearest neighbours share its genre, per embedding space (docs/EVALUATION.md).
#[test]
fn nearest_neighbours_share_the_genre_far_more_often_than_chance() {
    let Some(pool) = gtzan_pool() else { return };
    let output = run(crate::util::timbred().args(["eval-neighbours", "--json", "--data"]).arg(&pool));
    assert!(output.status.success());
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let chance = report["chance"].as_f64().expect("chance");
    assert!((0.08..0.12).contains(&chance), "ten genres: chance is about 10 %, got {chance}");
    for space in report["spaces"].as_array().expect("spaces") {
        let name = space["space"].as_str().expect("name");
        let (top5, top10) = (space["top5"].as_f64().expect("top5"), space["top10"].as_f64().expect("top10"));
        eprintln!(
            "{name}: top-5 {:.1} %, top-10 {:.1} % (chance {:.1} %)",
            100.0 * top5,
            100.0 * top10,
            100.0 * chance
        );
        let floor = if name == "pca-knn" { 2.0 } else { 4.0 };
        assert!(top5 > floor * chance && top10 > floor * chance, "{name}: {top5} / {top10} against chance {chance}");
    }
}

/// Qdrant down at start-up: the daemon says so naming the URL, keeps analysing into the
/// library, and answers Recommend with UNAVAILABLE rather than a wrong answer.
#[test]
fn an_unreachable_qdrant_does_not_stop_the_library() {
    let root = tempfile::tempdir().expect("tempdir");
    crate::util::write_tone_wav(&root.path().join("a.wav"), 330.0, 4.0);
    crate::util::write_tone_wav(&root.path().join("b.wav"), 660.0, 4.0);
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr");
    let url = format!("http://{closed}");
    let env =
        [("TIMBRE_INDEX__BACKEND", "qdrant"), ("TIMBRE_INDEX__QDRANT__URL", url.as_str()), ("TIMBRE_LOG", "info")];
    let daemon = Daemon::start_with(&["--root", root.path().to_str().expect("utf-8")], &env);
    runtime().block_on(async {
        let mut client = daemon.client().await;
        let tracks = wait_for_tracks(&mut client, 2).await;
        assert!(tracks.iter().all(|t| t.state == pb::AnalysisState::Analysed as i32), "the library goes on");
        let request = pb::RecommendRequest { positive: vec![by_id(tracks[0].id)], ..Default::default() };
        let status = client.recommend(request).await.expect_err("no index");
        assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
        eventually("the unreachable URL in the log", 30, async || daemon.log().contains(&url).then_some(())).await;
    });
    assert!(daemon.stop().success());
}

/// Path and the listening history on real clips: a path from a classical clip to a metal one
/// starts near FROM, ends near TO and closes in on TO step by step; a recorded listen keeps
/// its track out of recommendations that ask so, across a restart.
#[test]
fn a_path_between_real_clips_and_a_listening_history_that_survives_a_restart() {
    let Some(pool) = gtzan_pool() else { return };
    let root = tempfile::tempdir().expect("tempdir");
    let data = tempfile::tempdir().expect("tempdir");
    let files = library(root.path(), &pool);
    let args = ["--root", root.path().to_str().expect("utf-8"), "--data-dir", data.path().to_str().expect("utf-8")];
    let daemon = Daemon::start_with(&args, &[]);
    let path_of = |name: &Path| name.canonicalize().expect("canonical").display().to_string();
    let recent = pb::HistoryOptions { exclude_recent: true, ..Default::default() };
    let (from, to, listened) = runtime().block_on(async {
        let mut client = daemon.client().await;
        let tracks = wait_for_tracks(&mut client, files.len()).await;
        let id = |file: &Path| tracks.iter().find(|t| t.path == path_of(file)).expect("listed").id;
        // gtzan_clips gives three clips per genre in the order asked: classical first, metal next.
        let (from, to) = (id(&files[0]), id(&files[3]));
        let closeness = |hits: Vec<pb::RecommendedTrack>| -> std::collections::HashMap<u64, f32> {
            hits.into_iter().map(|r| (r.track.expect("track").id, r.score)).collect()
        };
        let near = async |client: &mut TimbreClient<Channel>, id: u64| {
            let request = pb::RecommendRequest { positive: vec![by_id(id)], limit: 50, ..Default::default() };
            eventually("every other track to be recommendable", 60, async || {
                let hits = client.recommend(request.clone()).await.ok()?.into_inner().tracks;
                (hits.len() == files.len() - 1).then_some(hits)
            })
            .await
        };
        let to_from = closeness(near(&mut client, from).await);
        let to_to = closeness(near(&mut client, to).await);
        let request = pb::PathRequest { from: Some(by_id(from)), to: Some(by_id(to)), length: 3, ..Default::default() };
        let path: Vec<u64> = client
            .path(request)
            .await
            .expect("Path")
            .into_inner()
            .tracks
            .into_iter()
            .map(|r| r.track.expect("track").id)
            .collect();
        assert_eq!(path.len(), 3);
        assert!(!path.contains(&from) && !path.contains(&to));
        let steps: Vec<f32> = std::iter::once(to_to[&from]).chain(path.iter().map(|id| to_to[id])).collect();
        eprintln!("path {path:?}: cosine to TO along the way {steps:?}");
        assert!(steps.windows(2).all(|w| w[1] > w[0]), "each step closer to TO: {steps:?}");
        assert!(to_from[&path[0]] > to_to[&path[0]], "the first step is nearer FROM than TO");
        assert!(to_to[&path[2]] > to_from[&path[2]], "the last step is nearer TO than FROM");
        let missing = client.path(pb::PathRequest { from: Some(by_id(from)), ..Default::default() }).await;
        assert_eq!(missing.expect_err("no TO").code(), tonic::Code::InvalidArgument);

        // A listen of the seed's nearest track, then Recommend with the recent window.
        let nearest = near(&mut client, from).await[0].track.clone().expect("track").id;
        let listen = pb::RecordListenRequest {
            // By path, as the MPD auto-DJ gives it.
            track: Some(pb::record_listen_request::Track::Path(
                tracks.iter().find(|t| t.id == nearest).expect("nearest").path.clone(),
            )),
            played_s: 25.0,
            ..Default::default()
        };
        let recorded = client.record_listen(listen).await.expect("RecordListen").into_inner();
        assert_eq!(recorded.track_id, nearest);
        let bad = pb::RecordListenRequest {
            track: Some(pb::record_listen_request::Track::TrackId(nearest)),
            played_s: -1.0,
            ..Default::default()
        };
        assert_eq!(client.record_listen(bad).await.expect_err("negative").code(), tonic::Code::InvalidArgument);
        let unknown = pb::RecordListenRequest {
            track: Some(pb::record_listen_request::Track::TrackId(99_999)),
            ..Default::default()
        };
        assert_eq!(client.record_listen(unknown).await.expect_err("unknown").code(), tonic::Code::NotFound);
        (from, to, nearest)
    });

    // The client: `timbre path`.
    let output =
        run(timbre_cli().args(["--addr", &daemon.addr, "path", &from.to_string(), &to.to_string(), "-n", "3"]));
    assert!(output.status.success());
    assert_eq!(text(&output.stdout).lines().count(), 3);
    assert!(daemon.stop().success());

    // The history is in the library: after a restart the listened track is still left out.
    let daemon = Daemon::start_with(&args, &[]);
    runtime().block_on(async {
        let mut client = daemon.client().await;
        wait_for_tracks(&mut client, files.len()).await;
        let request =
            |history| pb::RecommendRequest { positive: vec![by_id(from)], limit: 50, history, ..Default::default() };
        let plain = eventually("the index after a restart", 60, async || {
            let hits = client.recommend(request(None)).await.ok()?.into_inner().tracks;
            (hits.len() == files.len() - 1).then_some(hits)
        })
        .await;
        assert_eq!(plain[0].track.as_ref().expect("track").id, listened);
        let hits = client.recommend(request(Some(recent))).await.expect("Recommend").into_inner().tracks;
        assert_eq!(hits.len(), files.len() - 2);
        assert!(hits.iter().all(|r| r.track.as_ref().expect("track").id != listened), "played recently");
    });
    assert!(daemon.stop().success());
}
