//! Tempo and harmonic-key filters of Recommend and Playlist, end to end: a real daemon whose
//! library holds real GTZAN clips with the tempo and key the descriptors plugin measured,
//! asked through the `timbre` client. Also the ReplayGain album gain of two tracks of one album.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use lofty::config::WriteOptions;
use lofty::prelude::*;
use lofty::tag::{Tag, TagType};
use timbre_proto::v1 as pb;

use crate::library::wait_for_tracks;
use crate::serve::timbre_cli;
use crate::util::{eventually, gtzan_clips, gtzan_pool, run, runtime, text, Daemon};

/// The Camelot wheel as DJ software prints it, written out here rather than taken from the
/// daemon: majors 1B to 12B, then minors 1A to 12A, in the daemon's spelling of keys.
const MAJORS: [&str; 12] = ["B", "F#", "C#", "G#", "D#", "A#", "F", "C", "G", "D", "A", "E"];
const MINORS: [&str; 12] = ["G#", "D#", "A#", "F", "C", "G", "D", "A", "E", "B", "F#", "C#"];

/// "A minor" → (8, minor).
fn camelot(key: &str) -> (usize, bool) {
    let (tonic, mode) = key.split_once(' ').unwrap_or_else(|| panic!("a key: {key}"));
    let (wheel, minor) = if mode == "minor" { (&MINORS, true) } else { (&MAJORS, false) };
    let at = wheel.iter().position(|t| *t == tonic).unwrap_or_else(|| panic!("on the wheel: {key}"));
    (at + 1, minor)
}

/// Same key, relative key, or one step round the wheel in the same mode.
fn mixes(a: (usize, bool), b: (usize, bool)) -> bool {
    let step = (a.0 + 12 - b.0) % 12;
    a.0 == b.0 || (a.1 == b.1 && (step == 1 || step == 11))
}

/// What the descriptors plugin measured; a clip may have no tempo (too little onset
/// strength) or no key, and the filters must then leave it out.
struct Described {
    bpm: Option<f64>,
    key: Option<(usize, bool)>,
}

fn described(track: &pb::Track) -> Described {
    let d = track.descriptors.clone().unwrap_or_default();
    Described { bpm: d.bpm, key: d.key.as_deref().map(camelot) }
}

fn tag_album(path: &Path, album: &str) {
    let mut tag = Tag::new(TagType::VorbisComments);
    tag.set_artist("One Artist".into());
    tag.set_album(album.into());
    tag.save_to_path(path, WriteOptions::default()).unwrap_or_else(|e| panic!("tagging {}: {e}", path.display()));
}

#[test]
fn recommend_and_playlist_keep_to_a_tempo_range_and_to_keys_that_mix() {
    let Some(pool) = gtzan_pool() else { return };
    let root = tempfile::tempdir().expect("tempdir");
    let data = tempfile::tempdir().expect("tempdir");
    // Three 30 s clips of each of four genres (the pool's 2-3 s excerpts are too short for a
    // tempo), and one excerpt: a key but no tempo, which a tempo filter must leave out.
    let mut clips = Vec::new();
    for genre in ["blues", "pop", "rock", "hiphop"] {
        let mut long: Vec<_> = std::fs::read_dir(pool.join(genre))
            .expect("genre folder")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 400_000))
            .collect();
        long.sort();
        clips.extend(long.into_iter().take(3));
    }
    let excerpt = gtzan_clips(&pool, &["jazz"], 1).pop().expect("an excerpt");
    clips.push(excerpt.clone());
    let mut files = Vec::new();
    for clip in clips {
        let to = root.path().join(clip.file_name().expect("name"));
        std::fs::copy(&clip, &to).expect("copy");
        files.push(to);
    }
    tag_album(&files[0], "Split Single");
    tag_album(&files[4], "Split Single");
    let args = ["--root", root.path().to_str().expect("utf-8"), "--data-dir", data.path().to_str().expect("utf-8")];
    let daemon = Daemon::start_with(&args, &[]);
    let tracks = runtime().block_on(async {
        let mut client = daemon.client().await;
        let tracks = wait_for_tracks(&mut client, files.len()).await;
        // The index follows the library a moment after each analysis.
        let everything = pb::RecommendRequest {
            positive: vec![pb::TrackRef { track: Some(pb::track_ref::Track::TrackId(tracks[0].id)) }],
            limit: 50,
            ..Default::default()
        };
        eventually("every other track to be recommendable", 60, async || {
            let hits = client.recommend(everything.clone()).await.ok()?.into_inner().tracks;
            (hits.len() == files.len() - 1).then_some(())
        })
        .await;
        // The daemon refuses an inverted tempo range (the client refuses it before sending).
        let bpm = pb::BpmRange { min: Some(130.0), max: Some(120.0), octaves: false };
        let inverted = pb::RecommendRequest {
            filter: Some(pb::RecommendFilter { bpm: Some(bpm), ..Default::default() }),
            ..everything.clone()
        };
        let status = client.recommend(inverted).await.expect_err("inverted");
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
        assert!(status.message().contains("min 130 is above max 120"), "{}", status.message());
        tracks
    });
    let by_id: HashMap<u64, Described> = tracks.iter().map(|t| (t.id, described(t))).collect();
    let measured = by_id.values().filter(|d| d.bpm.is_some() && d.key.is_some()).count();
    assert!(measured >= files.len() - 2, "tempo and key measured on {measured} of {} clips", files.len());
    let name = excerpt.file_name().expect("name").to_string_lossy().into_owned();
    let excerpt = tracks.iter().find(|t| t.path.ends_with(&name)).expect("the excerpt").id;
    assert!(by_id[&excerpt].bpm.is_none(), "a 2-3 s excerpt has no tempo");

    let cli = |line: &[&str]| {
        let output = run(timbre_cli().args(["--addr", &daemon.addr, "--json"]).args(line));
        assert!(output.status.success(), "{line:?}: {}", text(&output.stderr));
        text(&output.stdout)
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("JSON line");
                v["track"]["id"].as_u64().expect("track id")
            })
            .collect::<Vec<u64>>()
    };
    let others = |seed: u64| by_id.keys().copied().filter(move |id| *id != seed);

    // Harmonic: the seed whose compatible tracks are most numerous but not all of them, so
    // that the filter both keeps and leaves out.
    let compatible = |seed: u64, key: (usize, bool)| -> BTreeSet<u64> {
        others(seed).filter(|id| by_id[id].key.is_some_and(|k| mixes(key, k))).collect()
    };
    let candidates = |id: &u64| by_id[id].key.map_or(0, |key| compatible(*id, key).len());
    let seed = tracks
        .iter()
        .map(|t| t.id)
        .filter(|id| (1..files.len() - 1).contains(&candidates(id)))
        .max_by_key(candidates)
        .expect("a clip whose key some other clips mix with, and some not");
    let seed_key = by_id[&seed].key.expect("the seed has a key");
    let seed_arg = seed.to_string();
    let found: BTreeSet<u64> = cli(&["recommend", &seed_arg, "--harmonic", "-n", "50"]).into_iter().collect();
    assert_eq!(found, compatible(seed, seed_key), "exactly the tracks whose key mixes with the seed's");
    // A key given instead of the seed's.
    let found: BTreeSet<u64> =
        cli(&["recommend", &seed_arg, "--harmonic", "--key", "8A", "-n", "50"]).into_iter().collect();
    assert_eq!(found, compatible(seed, (8, true)), "the tracks that mix with A minor");

    // Tempo: a range holding some of the others, its ends on measured tempos; with octaves
    // also the tracks at half or double a tempo in it.
    let mut tempos: Vec<f64> = others(seed).filter_map(|id| by_id[&id].bpm).collect();
    tempos.sort_by(f64::total_cmp);
    let (lo, hi) = (tempos[3], tempos[7]);
    let within = |bpm: Option<f64>| bpm.is_some_and(|bpm| (lo..=hi).contains(&bpm));
    let range = format!("{lo}-{hi}");
    let found: BTreeSet<u64> = cli(&["recommend", &seed_arg, "--bpm", &range, "-n", "50"]).into_iter().collect();
    let expected: BTreeSet<u64> = others(seed).filter(|id| within(by_id[id].bpm)).collect();
    assert!(expected.len() >= 5 && expected.len() < files.len() - 1, "{expected:?}");
    assert_eq!(found, expected, "exactly the tracks from {lo} to {hi} BPM");
    let narrow = format!("{}-{}", lo * 2.0, hi * 2.0);
    let found: BTreeSet<u64> =
        cli(&["recommend", &seed_arg, "--bpm", &narrow, "--bpm-octaves", "-n", "50"]).into_iter().collect();
    let doubled =
        |bpm: Option<f64>| bpm.is_some_and(|b| [b, b * 2.0, b / 2.0].iter().any(|t| (lo * 2.0..=hi * 2.0).contains(t)));
    let expected: BTreeSet<u64> = others(seed).filter(|id| doubled(by_id[id].bpm)).collect();
    assert!(expected.len() >= 5, "the tracks in {lo}-{hi} are at half of {narrow}: {expected:?}");
    assert_eq!(found, expected, "with octaves");
    assert!(!found.contains(&excerpt), "a track without a tempo is left out");

    // A harmonic playlist: each track mixes with the one before it, the first with the seed.
    let playlist = cli(&["playlist", "--seed", &seed_arg, "--harmonic", "-n", "6"]);
    assert!(!playlist.is_empty());
    let mut previous = seed_key;
    for id in &playlist {
        let key = by_id[id].key.expect("a playlist track with a key");
        assert!(mixes(previous, key), "{previous:?} then {key:?} in {playlist:?}");
        previous = key;
    }

    // A key the daemon cannot read is refused with the reason.
    let output =
        run(timbre_cli().args(["--addr", &daemon.addr, "recommend", &seed_arg, "--harmonic", "--key", "H minor"]));
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("'H minor' is not a key"), "{}", text(&output.stderr));

    // ReplayGain album gain: the two tracks of one album share it; it is the loudness of
    // the two played as one, so it lies between their track gains; the others have none.
    let album: Vec<&pb::Track> =
        tracks.iter().filter(|t| t.tags.as_ref().is_some_and(|tags| tags.album == "Split Single")).collect();
    assert_eq!(album.len(), 2);
    let gains: Vec<(f64, f64)> = album
        .iter()
        .map(|t| {
            let d = t.descriptors.as_ref().expect("descriptors");
            (d.replaygain_album_gain_db.expect("an album gain"), d.replaygain_track_gain_db.expect("a track gain"))
        })
        .collect();
    assert_eq!(gains[0].0, gains[1].0, "one album gain for the album");
    let (low, high) = (gains[0].1.min(gains[1].1), gains[0].1.max(gains[1].1));
    assert!((low - 0.1..=high + 0.1).contains(&gains[0].0), "album {} within the tracks' {low}..{high}", gains[0].0);
    let untagged = tracks.iter().filter(|t| t.tags.as_ref().is_none_or(|tags| tags.album.is_empty()));
    assert!(untagged.clone().count() == files.len() - 2);
    assert!(untagged.into_iter().all(|t| t.descriptors.as_ref().is_some_and(|d| d.replaygain_album_gain_db.is_none())));
    assert!(daemon.stop().success());
}
