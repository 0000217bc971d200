//! The plugin examples in plugins/examples, built outside the workspace exactly as their
//! READMEs say, then loaded by `timbred`: the Rust feature plugin extracts features, and the C
//! classifier answers in `Classify` for the model folder that names it.

use std::path::{Path, PathBuf};
use std::process::Command;

use timbre_proto::v1 as pb;

use crate::util::{read_npy, repo, run, runtime, sample, target_dir, text, timbred, Daemon};

fn examples() -> PathBuf {
    repo().join("plugins/examples")
}

/// `cargo build --release` of the example crate, with its own lock file and a target directory
/// of its own beside the workspace's (kept between runs, so a rebuild is quick).
fn build_rust_example() -> PathBuf {
    let target = target_dir().join("../plugin-examples");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let output = Command::new(&cargo)
        .args(["build", "--release", "--locked", "--target-dir"])
        .arg(&target)
        .current_dir(examples().join("rust-feature"))
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{cargo}`: {e}"));
    assert!(output.status.success(), "building the Rust example failed:\n{}", text(&output.stderr));
    let file = target.join(format!(
        "release/{}timbre_plugin_zcr.{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_EXTENSION
    ));
    assert!(file.is_file(), "{} was not built", file.display());
    file
}

/// The C example, compiled with the command line its README gives, into `dir`.
fn build_c_example(dir: &Path) -> PathBuf {
    let file = dir.join(format!("libtimbre_plugin_brightness.{}", std::env::consts::DLL_EXTENSION));
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let output = Command::new(&compiler)
        .args(["-std=c11", "-O2", "-shared", "-fPIC", "-I", "plugins/sdk/include"])
        .arg("plugins/examples/c-classifier/brightness.c")
        .arg("-o")
        .arg(&file)
        .arg("-lm")
        .current_dir(repo())
        .output()
        .unwrap_or_else(|e| panic!("cannot run the C compiler `{compiler}`: {e}"));
    assert!(output.status.success(), "compiling brightness.c failed:\n{}", text(&output.stderr));
    file
}

#[test]
fn the_rust_example_builds_outside_the_workspace_and_timbred_extracts_its_features() {
    let plugin = build_rust_example();
    let output = run(timbred().args(["plugins", "--json", "--plugin-path"]).arg(&plugin));
    assert!(output.status.success());
    let listing: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON listing");
    let zcr = listing["plugins"].as_array().expect("plugins").iter().find(|p| p["name"] == "zcr").cloned();
    let zcr = zcr.unwrap_or_else(|| panic!("zcr is not listed: {listing}"));
    assert_eq!((zcr["kind"].as_str(), zcr["file"].as_str()), (Some("feature"), plugin.to_str()), "{zcr}");

    let out = tempfile::tempdir().expect("tempdir");
    let output = run(timbred()
        .args(["features", "--plugin", "zcr", "--set", "frame=2048", "--plugin-path"])
        .arg(&plugin)
        .arg("--out")
        .arg(out.path())
        .arg(sample()));
    assert!(output.status.success());
    let (values, shape) = read_npy(&out.path().join("sample.npy"));
    // 4 s at 22050 Hz in frames of 2048: 43 frames of (zero-crossing rate, RMS).
    assert_eq!(shape, vec![2, 43]);
    let (zcr, rms) = values.split_at(43);
    assert!(zcr.iter().all(|z| (0.0..=1.0).contains(z)) && zcr.iter().any(|&z| z > 0.0), "{zcr:?}");
    assert!(rms.iter().all(|r| (0.0..=1.0).contains(r)) && rms.iter().any(|&r| r > 0.01), "{rms:?}");

    // Its own error message reaches the user.
    let output = run(timbred()
        .args(["features", "--plugin", "zcr", "--set", "frame=1", "--plugin-path"])
        .arg(&plugin)
        .arg("--out")
        .arg(out.path())
        .arg(sample()));
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("zcr: \"frame\" must be an integer in 2..=1048576"));
}

#[test]
fn the_c_example_classifier_answers_in_classify_for_its_model_folder() {
    let plugins = tempfile::tempdir().expect("tempdir");
    build_c_example(plugins.path());
    let models = examples().join("c-classifier/models");
    let daemon = Daemon::start_with(
        &[
            "--plugin-path",
            plugins.path().to_str().expect("UTF-8"),
            "--model-path",
            models.to_str().expect("UTF-8"),
            "--models",
            "example-brightness",
        ],
        &[],
    );
    runtime().block_on(async {
        let mut client = daemon.client().await;
        let request = pb::ClassifyRequest {
            source: Some(pb::classify_request::Source::Encoded(std::fs::read(sample()).expect("read"))),
            include_segments: true,
            ..Default::default()
        };
        let response = client.classify(request).await.expect("Classify").into_inner();
        assert_eq!(response.predictions.len(), 1, "{response:?}");
        let prediction = &response.predictions[0];
        assert_eq!(prediction.model, "example-brightness");
        let mut labels: Vec<&str> = prediction.labels.iter().map(|l| l.name.as_str()).collect();
        labels.sort();
        assert_eq!(labels, ["bright", "dark"]);
        let sum: f32 = prediction.labels.iter().map(|l| l.probability).sum();
        assert!((sum - 1.0).abs() < 1e-5, "{prediction:?}");
        // 4 s in 3 s segments: one whole segment; the 1 s tail is under half a segment, dropped.
        assert_eq!(prediction.segments.len(), 1, "{prediction:?}");
    });
    let log = daemon.log();
    assert!(!log.contains("refused"), "{log}");
}
