//! The `timbre` client as a user runs it, against a real daemon with a small library.

use crate::classify::offline_predictions;
use crate::library::wait_for_tracks;
use crate::serve::timbre_cli;
use crate::util::{run, runtime, text, write_tone_wav, Daemon};

#[test]
fn the_client_classifies_scans_and_lists_the_library() {
    let root = tempfile::tempdir().expect("tempdir");
    for (name, hz) in [("low.wav", 220.0), ("mid.wav", 440.0), ("high.wav", 880.0)] {
        write_tone_wav(&root.path().join(name), hz, 5.0);
    }
    let daemon = Daemon::start_with(&["--root", root.path().to_str().expect("utf-8")], &[]);
    let tracks = runtime().block_on(async { wait_for_tracks(&mut daemon.client().await, 3).await });
    let timbre = |args: &[&str]| run(timbre_cli().args(["--addr", &daemon.addr]).args(args));

    // classify --json: the shape and the numbers of `timbred analyze --json`.
    let file = root.path().join("mid.wav");
    let output = timbre(&["--json", "classify", "--top-k", "0", file.to_str().expect("utf-8")]);
    assert!(output.status.success());
    let response: serde_json::Value = serde_json::from_slice(&output.stdout).expect("one JSON line");
    let expected = offline_predictions(&file);
    let predictions = response["predictions"].as_array().expect("predictions");
    assert_eq!(predictions.len(), expected.len());
    for (prediction, (model, labels)) in predictions.iter().zip(&expected) {
        assert_eq!(prediction["model"], model.as_str());
        for (label, (name, probability)) in prediction["labels"].as_array().expect("labels").iter().zip(labels) {
            assert_eq!(label["name"], name.as_str());
            assert!((label["probability"].as_f64().expect("p") - probability).abs() < 1e-6);
        }
    }

    // scan --wait: nothing changed, so nothing is analysed.
    let output = timbre(&["scan", "--wait"]);
    assert!(output.status.success());
    let summary = text(&output.stdout) + &text(&output.stderr);
    assert!(summary.contains("scanned 3 files: 0 failed, 0 analysed"), "{summary}");

    // tracks --json: one Track per line; track ID and track PATH: the same track.
    let output = timbre(&["--json", "tracks"]);
    assert!(output.status.success());
    let listed: Vec<serde_json::Value> =
        text(&output.stdout).lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    assert_eq!(listed.len(), 3);
    assert!(listed.iter().all(|t| t["state"] == "ANALYSIS_STATE_ANALYSED"));
    let id = tracks[0].id.to_string();
    let by_id = timbre(&["--json", "track", &id]);
    let by_path = timbre(&["--json", "track", &tracks[0].path]);
    assert!(by_id.status.success() && by_path.status.success());
    assert_eq!(text(&by_id.stdout), text(&by_path.stdout));
    let shown = timbre(&["track", &id]);
    assert!(text(&shown.stdout).contains(&tracks[0].path));

    let missing = timbre(&["track", "999999"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing.stderr).contains("NOT_FOUND"), "{}", text(&missing.stderr));
    assert!(daemon.stop().success());
}
