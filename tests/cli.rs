//! The offline commands as a user runs them.

use timbre_daemon::plugin_host::{PluginKind, PluginRegistry};

use crate::util::{built_plugin, gtzan_pool, read_npy, repo, run, sample, text, timbred, write_tone_wav};

#[test]
fn help_explains_every_command() {
    let output = run(timbred().arg("--help"));
    assert!(output.status.success());
    let help = text(&output.stdout);
    for command in ["features", "analyze", "plugins", "TIMBRE_PLUGIN_PATH"] {
        assert!(help.contains(command), "--help does not mention {command}");
    }
}

#[test]
fn analyze_cuts_the_sample_into_segments() {
    // The sample is 4 s: one 3 s segment (the 1 s tail is under half a segment), or four 1 s ones.
    for (seconds, expected) in [("3", 1), ("1", 4), ("0.75", 5)] {
        let output = run(timbred().args(["analyze", "--json", "--segment-seconds", seconds]).arg(sample()));
        assert!(output.status.success());
        let analysis: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
        assert_eq!(analysis["segments"], expected, "segments of {seconds} s");
        assert!((analysis["duration_s"].as_f64().expect("duration") - 4.0).abs() < 1e-6);
        assert_eq!(analysis["sample_rate"], 22050);
    }
}

#[test]
fn plugin_parameters_are_configurable_from_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = run(timbred()
        .args(["features", "--set", "n_mels=40", "--set", "hop_length=256", "--out"])
        .arg(dir.path())
        .arg(sample()));
    assert!(output.status.success());
    let (_, shape) = read_npy(&dir.path().join("sample.npy"));
    assert_eq!(shape, vec![40, 1 + 4 * 22050 / 256]);

    let output = run(timbred().args(["features", "--set", "n_mels=0", "--out"]).arg(dir.path()).arg(sample()));
    assert_eq!(output.status.code(), Some(2), "a bad configuration is fatal before any file is read");
    assert!(text(&output.stderr).contains("n_mels 0 is outside"), "names the parameter");
}

#[test]
fn segmented_features_are_the_segments_analysis_sees() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = run(timbred().args(["features", "--segment-seconds", "1", "--out"]).arg(dir.path()).arg(sample()));
    assert!(output.status.success());
    let (segmented, shape) = read_npy(&dir.path().join("sample.npy"));
    assert_eq!(shape, vec![4, 128, 44], "four 1 s segments of 22050 samples");

    // Segment 1 is samples 22050..44100 of the file, transformed on its own.
    let (signal, _) = timbre_daemon::pipeline::decode_whole(&sample(), 22050, 60.0).expect("decode");
    let mut registry = PluginRegistry::default();
    registry.load(&built_plugin("timbre_plugin_mel")).expect("mel");
    let mut mel = registry.instantiate(PluginKind::Feature, "mel", &serde_json::json!({})).expect("instance");
    let expected = mel.process(&signal[22050..44100], &[1, 22050]).expect("process").values.data;
    let per_segment = 128 * 44;
    assert_eq!(&segmented[per_segment..2 * per_segment], &expected[..]);
}

#[test]
fn features_of_many_real_clips_are_written_in_parallel() {
    let Some(pool) = gtzan_pool() else { return };
    let files: Vec<_> = ["blues", "classical", "metal", "pop"]
        .iter()
        .flat_map(|genre| {
            let mut clips: Vec<_> =
                std::fs::read_dir(pool.join(genre)).expect("genre dir").map(|e| e.expect("entry").path()).collect();
            clips.sort();
            clips.into_iter().take(3)
        })
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let output = run(timbred().args(["features", "--jobs", "2", "--out"]).arg(dir.path()).args(&files));
    assert!(output.status.success());
    for file in &files {
        let stem = file.file_stem().expect("stem").to_string_lossy();
        let (data, shape) = read_npy(&dir.path().join(format!("{stem}.npy")));
        assert_eq!(shape[0], 128, "{stem}");
        assert!(data.iter().all(|v| v.is_finite()), "{stem}");
    }
}

#[test]
fn split_reproduces_the_shipped_split_file() {
    let Some(pool) = gtzan_pool() else { return };
    let output = run(timbred().arg("split").arg("--data").arg(&pool));
    assert!(output.status.success(), "{}", text(&output.stderr));
    let shipped = std::fs::read(repo().join("plugins/models/split.tsv")).expect("plugins/models/split.tsv");
    if output.stdout != shipped {
        let (printed, shipped) = (text(&output.stdout), text(&shipped));
        let first = printed.lines().zip(shipped.lines()).position(|(a, b)| a != b);
        panic!(
            "timbred split --data {} differs from plugins/models/split.tsv ({} vs {} lines; first difference at line {:?})",
            pool.display(),
            printed.lines().count(),
            shipped.lines().count(),
            first.map(|i| i + 1)
        );
    }
}

#[test]
fn train_pca_knn_writes_a_model_folder_the_daemon_serves() {
    // Two "genres" of tones, four tracks each: low and high.
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    for (label, base) in [("low", 110.0), ("high", 1760.0)] {
        std::fs::create_dir_all(data.join(label)).expect("mkdir");
        for i in 0..4 {
            // 8 s: two segments and a 2 s tail, long enough to be kept and padded.
            write_tone_wav(&data.join(label).join(format!("{label}.{i}.wav")), base * (1.0 + 0.05 * i as f32), 8.0);
        }
    }
    let out = dir.path().join("model");
    let output = run(timbred()
        .args(["train", "pca-knn", "--k", "3", "--jobs", "2", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(&out));
    assert!(output.status.success(), "{}", text(&output.stderr));
    let report = text(&output.stdout);
    assert!(report.contains("validation split by track: 6 training, 2 held out"), "{report}");
    let manifest = std::fs::read_to_string(out.join("model.toml")).expect("model.toml");
    assert!(
        manifest.contains("plugin = \"pca-knn\"") && manifest.contains("labels = [\"high\", \"low\"]"),
        "{manifest}"
    );
    // Trained with repeat-padded tails (the default), and the manifest says so for inference.
    assert!(manifest.contains("padding = \"repeat\""), "{manifest}");
    let zeros = dir.path().join("zeros");
    let output = run(timbred()
        .args(["train", "pca-knn", "--k", "3", "--jobs", "2", "--padding", "zeros", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(&zeros));
    assert!(output.status.success(), "{}", text(&output.stderr));
    let zeros_manifest = std::fs::read_to_string(zeros.join("model.toml")).expect("model.toml");
    assert!(!zeros_manifest.contains("padding"), "zeros is the default, left out: {zeros_manifest}");
    // Each track's 2 s tail is completed with its start or with silence: other training points.
    let knn = |dir: &std::path::Path| std::fs::read(dir.join("model.knn")).expect("model.knn");
    assert_ne!(knn(&out), knn(&zeros), "the padding changes the training segments, not only the manifest");

    // The folder comes first on the model path, so it is the `pca-knn` model analyze uses.
    let output = run(timbred()
        .arg("--model-path")
        .arg(&out)
        .args(["--models", "pca-knn", "analyze", "--json", "--top-k", "0"])
        .arg(data.join("high/high.3.wav")));
    assert!(output.status.success(), "{}", text(&output.stderr));
    let line: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let labels = &line["predictions"][0]["labels"];
    assert_eq!(labels.as_array().map(Vec::len), Some(2), "{line}");
    assert_eq!(labels[0]["name"], "high", "{line}");
}
