//! The daemon's library: watched folders, rescans, renames, bad files, crashes, model updates.
//! Each test runs a real `timbred serve` on a free port with temporary folders.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use timbre_proto::v1 as pb;
use timbre_proto::v1::timbre_client::TimbreClient;
use tonic::transport::Channel;

use crate::util::{eventually, gtzan_clips, gtzan_pool, runtime, write_tone_wav, Daemon};

/// Short quiet times, so watched changes are picked up quickly (and the environment layer
/// of the configuration is exercised).
const FAST_WATCH: &[(&str, &str)] = &[("TIMBRE_LIBRARY__DEBOUNCE_MS", "300"), ("TIMBRE_LIBRARY__SETTLE_MS", "300")];

pub async fn all_tracks(client: &mut TimbreClient<Channel>) -> Vec<pb::Track> {
    let mut tracks = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_tracks(pb::ListTracksRequest { page_size: 7, page_token: token, ..Default::default() })
            .await
            .expect("ListTracks")
            .into_inner();
        tracks.extend(page.tracks);
        if page.next_page_token.is_empty() {
            return tracks;
        }
        token = page.next_page_token;
    }
}

fn settled(tracks: &[pb::Track]) -> bool {
    tracks.iter().all(|t| t.state != pb::AnalysisState::Pending as i32)
}

/// Wait until the library holds exactly `n` tracks, none of them pending.
pub async fn wait_for_tracks(client: &mut TimbreClient<Channel>, n: usize) -> Vec<pb::Track> {
    eventually(&format!("{n} settled tracks"), 180, async || {
        let tracks = all_tracks(client).await;
        (tracks.len() == n && settled(&tracks)).then_some(tracks)
    })
    .await
}

async fn scan(client: &mut TimbreClient<Channel>, full: bool) -> Vec<pb::ScanProgress> {
    let mut stream = client.scan(pb::ScanRequest { roots: Vec::new(), full }).await.expect("Scan").into_inner();
    let mut messages = Vec::new();
    while let Some(progress) = stream.message().await.expect("progress") {
        messages.push(progress);
    }
    messages
}

fn copy(from: &Path, to: &Path) {
    std::fs::copy(from, to).unwrap_or_else(|e| panic!("copy {} → {}: {e}", from.display(), to.display()));
}

/// Real clips when the GTZAN pool is here, generated tones always.
fn library_files(root: &Path, clips: usize) -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Some(pool) = gtzan_pool() {
        for clip in gtzan_clips(&pool, &["blues", "classical", "metal"], clips) {
            let to = root.join(clip.file_name().expect("name"));
            copy(&clip, &to);
            files.push(to);
        }
    }
    let tone = root.join("generated/tone.wav");
    std::fs::create_dir_all(tone.parent().expect("parent")).expect("mkdir");
    write_tone_wav(&tone, 330.0, 7.0);
    files.push(tone);
    files
}

#[test]
fn a_watched_folder_is_analysed_a_rescan_skips_it_and_a_renamed_file_keeps_its_analysis() {
    let root = tempfile::tempdir().expect("tempdir");
    let initial = library_files(root.path(), 1);
    let daemon = Daemon::start_with(&["--root", root.path().to_str().expect("utf-8")], FAST_WATCH);
    runtime().block_on(async {
        let mut client = daemon.client().await;
        let tracks = wait_for_tracks(&mut client, initial.len()).await;
        for track in &tracks {
            assert_eq!(track.state, pb::AnalysisState::Analysed as i32, "{track:?}");
            assert_eq!(
                track.predictions.len(),
                crate::util::SHIPPED_MODELS,
                "every shipped model analysed {}",
                track.path
            );
            assert!(track.duration_s > 1.0 && !track.content_hash.is_empty());
        }

        // Files copied in while it runs; one arrives in pieces, as a slow copy would.
        let added = root.path().join("added");
        std::fs::create_dir(&added).expect("mkdir");
        write_tone_wav(&added.join("second.wav"), 880.0, 5.0);
        let slow = added.join("slow.wav");
        write_tone_wav(&root.path().join("../slow-source.wav"), 440.0, 12.0);
        let bytes = std::fs::read(root.path().join("../slow-source.wav")).expect("read");
        for (i, chunk) in bytes.chunks(bytes.len() / 4 + 1).enumerate() {
            use std::io::Write;
            let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&slow).expect("open");
            file.write_all(chunk).expect("write");
            if i < 3 {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
        let tracks = wait_for_tracks(&mut client, initial.len() + 2).await;
        let slow_track = tracks.iter().find(|t| t.path.ends_with("slow.wav")).expect("slow.wav is listed");
        assert_eq!(slow_track.state, pb::AnalysisState::Analysed as i32, "{slow_track:?}");
        assert!((slow_track.duration_s - 12.0).abs() < 0.01, "the whole file was analysed: {slow_track:?}");

        // Nothing changed: a rescan looks at every file and analyses none.
        let progress = scan(&mut client, false).await;
        let last = progress.last().expect("at least one message");
        assert!(last.finished);
        assert_eq!(
            (last.done, last.total, last.failed, last.analysed),
            (tracks.len() as u64, tracks.len() as u64, 0, 0)
        );

        // A rename keeps the track, its id and its analysis.
        let before = tracks.iter().find(|t| t.path.ends_with("second.wav")).expect("second.wav").clone();
        let renamed = root.path().join("renamed.wav");
        std::fs::rename(&before.path, &renamed).expect("rename");
        let renamed_path = renamed.canonicalize().expect("canonical").display().to_string();
        let after = eventually("the renamed file to be listed", 60, async || {
            let request = pb::GetTrackRequest { track: Some(pb::get_track_request::Track::Path(renamed_path.clone())) };
            client.get_track(request).await.ok().map(|r| r.into_inner())
        })
        .await;
        assert_eq!(after.id, before.id);
        assert_eq!(after.predictions, before.predictions);
        let old = pb::GetTrackRequest { track: Some(pb::get_track_request::Track::Path(before.path.clone())) };
        assert_eq!(client.get_track(old).await.expect_err("old path gone").code(), tonic::Code::NotFound);
        assert_eq!(all_tracks(&mut client).await.len(), tracks.len(), "no track was added or lost");

        // Listing by label finds a track under its top label, and not under another.
        let top = after.predictions[0].labels[0].name.clone();
        let model = after.predictions[0].model.clone();
        let page = client
            .list_tracks(pb::ListTracksRequest { model: model.clone(), label: top.clone(), ..Default::default() })
            .await
            .expect("ListTracks")
            .into_inner();
        assert!(page.tracks.iter().any(|t| t.id == after.id) && page.total == page.tracks.len() as u64);
        let other = after.predictions[0].labels.last().expect("labels").name.clone();
        let page = client
            .list_tracks(pb::ListTracksRequest { model, label: other, ..Default::default() })
            .await
            .expect("ListTracks")
            .into_inner();
        assert!(!page.tracks.iter().any(|t| t.id == after.id));
    });
    assert!(daemon.stop().success());
}

#[test]
fn a_corrupt_file_is_stored_with_its_error_and_the_daemon_keeps_serving() {
    let root = tempfile::tempdir().expect("tempdir");
    let good = root.path().join("good.wav");
    write_tone_wav(&good, 440.0, 4.0);
    let bytes = std::fs::read(&good).expect("read");
    std::fs::write(root.path().join("truncated.wav"), &bytes[..bytes.len() / 3]).expect("write");
    std::fs::write(root.path().join("noise.mp3"), (0..5000u32).map(|i| (i * 7919 % 251) as u8).collect::<Vec<_>>())
        .expect("write");
    let daemon = Daemon::start_with(&["--root", root.path().to_str().expect("utf-8")], FAST_WATCH);
    runtime().block_on(async {
        let mut client = daemon.client().await;
        let tracks = wait_for_tracks(&mut client, 3).await;
        for name in ["truncated.wav", "noise.mp3"] {
            let track = tracks.iter().find(|t| t.path.ends_with(name)).expect("listed");
            assert_eq!(track.state, pb::AnalysisState::Failed as i32, "{track:?}");
            assert!(track.error.contains(name), "the error names the file: {}", track.error);
        }
        assert!(tracks.iter().any(|t| t.path.ends_with("good.wav") && t.state == pb::AnalysisState::Analysed as i32));

        // The same bytes uploaded: a clear INVALID_ARGUMENT naming the upload, and the daemon goes on.
        let upload = pb::ClassifyRequest {
            source: Some(pb::classify_request::Source::Encoded(bytes[..bytes.len() / 3].to_vec())),
            filename_hint: "upload.wav".into(),
            ..Default::default()
        };
        let status = client.classify(upload).await.expect_err("truncated upload");
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
        assert!(status.message().contains("upload.wav") && status.message().contains("truncated"), "{status:?}");
        let ok = pb::ClassifyRequest {
            source: Some(pb::classify_request::Source::Encoded(bytes.clone())),
            ..Default::default()
        };
        assert_eq!(
            client.classify(ok).await.expect("still serving").into_inner().predictions.len(),
            crate::util::SHIPPED_MODELS
        );
    });
    assert!(daemon.stop().success());
}

/// (path, model) → the time its predictions were stored, read straight from the database.
fn analysed_at(database: &Path) -> BTreeMap<(String, String), i64> {
    let db = rusqlite::Connection::open_with_flags(database, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("open the library read-only");
    let mut statement = db
        .prepare("SELECT t.path, p.model, p.analysed_at FROM predictions p JOIN tracks t ON t.id = p.track_id")
        .expect("query");
    statement
        .query_map([], |row| Ok(((row.get(0)?, row.get(1)?), row.get(2)?)))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("rows")
}

#[test]
fn kill_9_in_the_middle_of_a_scan_then_a_restart_completes_the_library_without_redoing_work() {
    let root = tempfile::tempdir().expect("tempdir");
    let data = tempfile::tempdir().expect("tempdir");
    let database = data.path().join("library.sqlite3");
    let mut files = 0;
    if let Some(pool) = gtzan_pool() {
        let genres = ["blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock"];
        for clip in gtzan_clips(&pool, &genres, 6) {
            copy(&clip, &root.path().join(clip.file_name().expect("name")));
            files += 1;
        }
    }
    while files < 60 {
        write_tone_wav(&root.path().join(format!("tone-{files:02}.wav")), 200.0 + 10.0 * files as f32, 20.0);
        files += 1;
    }
    let args = ["--root", root.path().to_str().expect("utf-8"), "--data-dir", data.path().to_str().expect("utf-8")];
    let one_worker = [&args[..], &["--workers", "1"]].concat();

    let daemon = Daemon::start_with(&one_worker, &[]);
    runtime().block_on(eventually("some, not all, tracks analysed", 180, async || {
        let stored = analysed_at(&database);
        let tracks = stored.len() / 4;
        assert!(tracks < files, "the scan finished before it could be interrupted; add files to this test");
        (tracks >= 3).then_some(())
    }));
    daemon.kill();
    let before = analysed_at(&database);
    assert!(!before.is_empty());

    let daemon = Daemon::start_with(&args, &[]);
    runtime().block_on(async {
        let mut client = daemon.client().await;
        let tracks = wait_for_tracks(&mut client, files).await;
        assert!(tracks.iter().all(
            |t| t.state == pb::AnalysisState::Analysed as i32 && t.predictions.len() == crate::util::SHIPPED_MODELS
        ));
    });
    assert!(daemon.stop().success());

    let db = rusqlite::Connection::open(&database).expect("open");
    let check: String = db.query_row("PRAGMA integrity_check", [], |r| r.get(0)).expect("integrity_check");
    assert_eq!(check, "ok");
    let (rows, paths): (i64, i64) = db
        .query_row("SELECT count(*), count(DISTINCT path) FROM tracks", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("count");
    assert_eq!((rows, paths), (files as i64, files as i64), "every file once");
    let after = analysed_at(&database);
    assert_eq!(after.len(), files * crate::util::SHIPPED_MODELS);
    for (key, at) in &before {
        assert_eq!(after.get(key), Some(at), "{key:?} was stored before the kill and must not be analysed again");
    }
}

#[test]
fn a_model_whose_version_changed_is_rerun_and_only_that_model() {
    let root = tempfile::tempdir().expect("tempdir");
    let data = tempfile::tempdir().expect("tempdir");
    let models = tempfile::tempdir().expect("tempdir");
    let tiny = models.path().join("tiny");
    std::fs::create_dir(&tiny).expect("mkdir");
    for file in ["model.toml", "model.onnx"] {
        copy(&crate::util::repo().join("tests/data/tiny-model").join(file), &tiny.join(file));
    }
    write_tone_wav(&root.path().join("a.wav"), 300.0, 4.0);
    write_tone_wav(&root.path().join("b.wav"), 600.0, 4.0);
    let args = [
        "--root",
        root.path().to_str().expect("utf-8"),
        "--data-dir",
        data.path().to_str().expect("utf-8"),
        "--model-path",
        models.path().to_str().expect("utf-8"),
    ];
    let database = data.path().join("library.sqlite3");

    let daemon = Daemon::start_with(&args, &[]);
    runtime().block_on(async { wait_for_tracks(&mut daemon.client().await, 2).await });
    assert!(daemon.stop().success());
    let before = analysed_at(&database);
    assert_eq!(before.len(), 2 * (crate::util::SHIPPED_MODELS + 1), "the shipped models and tiny");

    let manifest = std::fs::read_to_string(tiny.join("model.toml")).expect("read");
    std::fs::write(tiny.join("model.toml"), manifest.replace("version = \"1.0.0\"", "version = \"1.0.1\""))
        .expect("write");
    let daemon = Daemon::start_with(&args, &[]);
    let after = runtime().block_on(eventually("tiny to be re-run on both tracks", 120, async || {
        let after = analysed_at(&database);
        let changed: Vec<_> =
            after.iter().filter(|(key, at)| before.get(*key) != Some(*at)).map(|(k, _)| k.clone()).collect();
        (changed.len() == 2).then_some((after, changed))
    }));
    assert!(daemon.stop().success());
    let (_, changed) = after;
    assert!(changed.iter().all(|(_, model)| model == "tiny"), "only tiny was re-run: {changed:?}");
}

#[test]
fn paths_outside_the_library_roots_are_refused() {
    let root = tempfile::tempdir().expect("tempdir");
    let outside = tempfile::tempdir().expect("tempdir");
    let stray = outside.path().join("stray.wav");
    write_tone_wav(&stray, 440.0, 2.0);
    let daemon = Daemon::start_with(&["--root", root.path().to_str().expect("utf-8")], &[]);
    runtime().block_on(async {
        let mut client = daemon.client().await;
        for path in [
            stray.display().to_string(),
            format!("{}/../{}/stray.wav", root.path().display(), outside.path().display()),
        ] {
            let request = pb::ClassifyRequest {
                source: Some(pb::classify_request::Source::Path(path.clone())),
                ..Default::default()
            };
            let status = client.classify(request).await.expect_err("outside the roots");
            assert_eq!(status.code(), tonic::Code::PermissionDenied, "{path}: {status:?}");
            assert!(status.message().contains("not under a library root"), "{status:?}");
        }
        let request = pb::ScanRequest { roots: vec![outside.path().display().to_string()], full: false };
        let status = client.scan(request).await.expect_err("outside the roots");
        assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    });
}
