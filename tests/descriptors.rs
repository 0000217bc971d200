//! Tempo, key and loudness from the descriptors plugin, end to end: `timbred analyze --json`
//! on real clips, the library storing them (with the plugin's version), `timbre tracks --bpm`
//! filtering by them, and a descriptor version change re-running the descriptors only.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};


use crate::library::wait_for_tracks;
use crate::serve::timbre_cli;
use crate::util::{eventually, gtzan_pool, run, runtime, text, timbred, Daemon};

/// 30-second pool clips and the tempo the descriptors plugin finds in each (for the filters;
/// the tempo's accuracy is tested in plugins/descriptors).
const CLIPS: [&str; 4] = ["blues/blues.00073.flac", "pop/pop.00068.flac", "rock/rock.00032.flac", "hiphop/hiphop.00014.flac"];

fn clips(pool: &Path) -> Vec<PathBuf> {
    CLIPS.iter().map(|c| pool.join(c)).collect()
}

#[test]
fn analyze_json_prints_tempo_key_loudness_and_replaygain_as_top_level_fields() {
    let Some(pool) = gtzan_pool() else { return };
    let output = run(timbred().arg("analyze").arg("--json").arg(pool.join(CLIPS[1])));
    let line: serde_json::Value = serde_json::from_str(text(&output.stdout).trim()).expect("one JSON line");
    let number = |name: &str| line[name].as_f64().unwrap_or_else(|| panic!("{name} missing: {line}"));
    let bpm = number("bpm");
    assert!((60.0..=200.0).contains(&bpm), "{line}");
    assert!((0.0..=1.0).contains(&number("bpm_confidence")), "{line}");
    let key = line["key"].as_str().expect("key");
    assert!(key.ends_with(" major") || key.ends_with(" minor"), "{key}");
    assert!((0.0..=1.0).contains(&number("key_strength")), "{line}");
    let lufs = number("loudness_lufs");
    assert!((-40.0..0.0).contains(&lufs), "{line}");
    assert!(number("loudness_range_lu") >= 0.0, "{line}");
    assert!(number("true_peak_dbtp") < 6.0, "{line}");
    assert!((number("replaygain_track_gain_db") - (-18.0 - lufs)).abs() < 0.01, "ReplayGain 2.0 is -18 LUFS - loudness");
    let peak = number("replaygain_track_peak");
    assert!(peak > 0.0 && peak < 2.0, "{line}");
    assert!(line.get("descriptor_errors").is_none(), "{line}");

    let plain = text(&run(timbred().arg("analyze").arg(pool.join(CLIPS[1]))).stdout);
    assert!(plain.contains("descriptors ") && plain.contains(" BPM") && plain.contains(key), "{plain}");
}

/// (path, plugin) → (version, analysed_at) of the stored descriptors, and (path, model) →
/// analysed_at of the stored predictions.
type Stored = (BTreeMap<String, (String, i64)>, BTreeMap<(String, String), i64>);

fn stored(database: &Path) -> Stored {
    let db = rusqlite::Connection::open_with_flags(database, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("open the library read-only");
    let descriptors = db
        .prepare("SELECT t.path, d.version, d.analysed_at FROM descriptors d JOIN tracks t ON t.id = d.track_id")
        .expect("query")
        .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("rows");
    let predictions = db
        .prepare("SELECT t.path, p.model, p.analysed_at FROM predictions p JOIN tracks t ON t.id = p.track_id")
        .expect("query")
        .query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("rows");
    (descriptors, predictions)
}

#[test]
fn the_library_stores_descriptors_filters_by_tempo_and_reruns_only_the_descriptors_on_a_version_change() {
    let Some(pool) = gtzan_pool() else { return };
    let root = tempfile::tempdir().expect("tempdir");
    let data = tempfile::tempdir().expect("tempdir");
    let database = data.path().join("library.sqlite3");
    for clip in clips(&pool) {
        std::fs::copy(&clip, root.path().join(clip.file_name().expect("name"))).expect("copy");
    }
    let args = ["--root", root.path().to_str().expect("utf-8"), "--data-dir", data.path().to_str().expect("utf-8")];
    let daemon = Daemon::start_with(&args, &[]);
    let tracks = runtime().block_on(async {
        let mut client = daemon.client().await;
        wait_for_tracks(&mut client, CLIPS.len()).await
    });
    let bpm_of = |name: &str| {
        let track = tracks.iter().find(|t| t.path.ends_with(name)).expect("track");
        track.descriptors.as_ref().and_then(|d| d.bpm).unwrap_or_else(|| panic!("no bpm: {track:?}"))
    };
    for track in &tracks {
        let d = track.descriptors.as_ref().unwrap_or_else(|| panic!("no descriptors: {track:?}"));
        assert!(d.key.is_some() && d.loudness_lufs.is_some() && d.replaygain_track_gain_db.is_some(), "{d:?}");
        assert_eq!(d.replaygain_album_gain_db, None, "untagged: no album");
    }

    let cli = |args: &[&str]| text(&run(timbre_cli().args(["--addr", &daemon.addr]).args(args)).stdout);
    let listed = |args: &[&str]| -> Vec<String> {
        cli(&[&["--json", "tracks"], args].concat())
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("JSON line");
                v["path"].as_str().expect("path").rsplit('/').next().expect("name").to_string()
            })
            .collect()
    };
    let in_range: Vec<String> = CLIPS
        .iter()
        .map(|c| c.rsplit('/').next().expect("name").to_string())
        .filter(|n| (90.0..=110.0).contains(&bpm_of(n)))
        .collect();
    let octave: Vec<String> = CLIPS
        .iter()
        .map(|c| c.rsplit('/').next().expect("name").to_string())
        .filter(|n| [1.0, 0.5, 2.0].iter().any(|f| (90.0..=110.0).contains(&(bpm_of(n) * f))))
        .collect();
    assert!(!in_range.is_empty() && in_range.len() < CLIPS.len(), "the clips must straddle 90-110: {in_range:?}");
    assert!(octave.len() > in_range.len(), "a clip at double time must be among them: {octave:?}");
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(sorted(listed(&["--bpm", "90-110"])), sorted(in_range.clone()));
    assert_eq!(sorted(listed(&["--bpm", "90-110", "--bpm-octaves"])), sorted(octave));
    let id = tracks.iter().find(|t| t.path.ends_with(&in_range[0])).expect("track").id;
    let shown = cli(&["track", &id.to_string()]);
    assert!(shown.contains("bpm ") && shown.contains("key ") && shown.contains("LUFS"), "{shown}");
    assert!(shown.contains("rg track"), "{shown}");
    assert!(daemon.stop().success());

    // A library written by another version of the descriptors plugin.
    let (before, predictions_before) = stored(&database);
    assert_eq!(before.len(), CLIPS.len());
    let current = before.values().next().expect("a row").0.clone();
    rusqlite::Connection::open(&database)
        .expect("open")
        .execute("UPDATE descriptors SET version = 'descriptors 0.0.1'", [])
        .expect("age the descriptors");
    let daemon = Daemon::start_with(&args, &[]);
    runtime().block_on(eventually("the descriptors re-run", 120, async || {
        let (now, _) = stored(&database);
        now.values().all(|(v, _)| *v == current).then_some(())
    }));
    assert!(daemon.stop().success());
    let (after, predictions_after) = stored(&database);
    for (path, (_, at)) in &after {
        assert!(at > &before[path].1, "{path}: descriptors re-run");
    }
    assert_eq!(predictions_after, predictions_before, "the models are not re-run for a descriptor version");
}
