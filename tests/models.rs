//! Classifier models through the real ONNX Runtime: numbers, refusals, analysis output.

use std::path::{Path, PathBuf};

use timbre_daemon::models::{resolve_onnxruntime, ModelCatalog, ModelOptions};
use timbre_daemon::plugin_host::{PluginKind, PluginRegistry};

use crate::util::{built_plugin, read_npy, repo, run, sample, text, timbred};

fn tiny_model() -> PathBuf {
    repo().join("tests/data/tiny-model")
}

fn registry() -> PluginRegistry {
    let mut registry = PluginRegistry::default();
    for plugin in ["timbre_plugin_mel", "timbre_plugin_onnx"] {
        registry.load(&built_plugin(plugin)).expect("plugin loads");
    }
    registry
}

/// Only the models named, so the shipped ones in plugins/models stay out of these tests.
fn options(paths: Vec<PathBuf>, only: &[&str]) -> ModelOptions {
    let only = only.iter().map(|s| s.to_string()).collect();
    ModelOptions { paths, execution_provider: "cpu".into(), only, ..ModelOptions::default() }
}

/// Copy the tiny model into `dir/name`, then let `edit` break its manifest.
fn broken_copy(dir: &Path, name: &str, edit: impl Fn(String) -> String) -> PathBuf {
    let target = dir.join(name);
    std::fs::create_dir_all(&target).expect("mkdir");
    for file in ["model.onnx", "model.toml"] {
        std::fs::copy(tiny_model().join(file), target.join(file)).expect("copy");
    }
    let manifest = std::fs::read_to_string(target.join("model.toml")).expect("read");
    std::fs::write(target.join("model.toml"), edit(manifest.replace("name = \"tiny\"", &format!("name = \"{name}\""))))
        .expect("write");
    target
}

#[test]
fn onnx_runtime_gives_the_numbers_the_model_defines() {
    let registry = registry();
    let catalog = ModelCatalog::discover(&registry, &options(vec![tiny_model()], &["tiny"]));
    assert!(catalog.refused.is_empty(), "{:?}", catalog.refused);
    let spec = catalog.models.iter().find(|m| m.name() == "tiny").expect("tiny is loaded");
    assert_eq!(spec.info["execution_provider"], "cpu");
    let mut onnx = spec.instantiate(&registry).expect("instance");

    // Two 3 s windows of the 4 s sample, through the real mel plugin.
    let (signal, _) = timbre_daemon::pipeline::decode_whole(&sample(), 22050, 60.0).expect("decode");
    let mut mel = registry.instantiate(PluginKind::Feature, "mel", &serde_json::json!({})).expect("mel");
    let windows: Vec<f32> = signal[..66150].iter().chain(&signal[22050..88200]).copied().collect();
    let features = mel.process(&windows, &[2, 66150]).expect("mel").values;
    assert_eq!(features.shape, vec![2, 128, 130]);
    let output = onnx.process(&features.data, &features.shape).expect("onnx");

    // The same graph by hand: mean frame, linear maps, softmax.
    let (w, _) = read_npy(&tiny_model().join("W.npy"));
    let (b, _) = read_npy(&tiny_model().join("b.npy"));
    let (e, _) = read_npy(&tiny_model().join("E.npy"));
    for s in 0..2 {
        let segment = &features.data[s * 128 * 130..(s + 1) * 128 * 130];
        let mean: Vec<f64> =
            (0..128).map(|m| segment[m * 130..(m + 1) * 130].iter().map(|&v| v as f64).sum::<f64>() / 130.0).collect();
        let logits: Vec<f64> =
            (0..4).map(|c| b[c] as f64 + (0..128).map(|m| mean[m] * w[m * 4 + c] as f64).sum::<f64>()).collect();
        let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let total: f64 = logits.iter().map(|l| (l - max).exp()).sum();
        for (c, logit) in logits.iter().enumerate() {
            let expected = (logit - max).exp() / total;
            let got = output.values.data[s * 4 + c] as f64;
            assert!((got - expected).abs() < 1e-4, "segment {s} class {c}: {got} vs {expected}");
        }
        let embedding = output.embedding.as_ref().expect("embedding");
        for d in 0..8 {
            let expected: f64 = (0..128).map(|m| mean[m] * e[m * 8 + d] as f64).sum();
            let got = embedding.data[s * 8 + d] as f64;
            assert!((got - expected).abs() < 1e-3 * expected.abs().max(1.0), "embedding {d}: {got} vs {expected}");
        }
    }
}

#[test]
fn broken_model_folders_are_refused_by_name_and_the_others_still_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad_sha = broken_copy(dir.path(), "badsha", |m| {
        let line = m.lines().find(|l| l.starts_with("sha256")).expect("sha line").to_string();
        m.replace(&line, &format!("sha256 = \"{}\"", "ab".repeat(32)))
    });
    let no_labels = broken_copy(dir.path(), "nolabels", |m| {
        m.lines().filter(|l| !l.starts_with("labels")).collect::<Vec<_>>().join("\n")
    });
    let bad_output = broken_copy(dir.path(), "badoutput", |m| {
        m.replace("probabilities = \"probabilities\"", "probabilities = \"probs\"")
    });
    let wrong_labels = broken_copy(dir.path(), "fivelabels", |m| m.replace("\"four\"]", "\"four\", \"five\"]"));

    let registry = registry();
    let only = ["tiny", "badsha", "nolabels", "badoutput", "fivelabels"];
    let catalog = ModelCatalog::discover(&registry, &options(vec![dir.path().to_path_buf(), tiny_model()], &only));
    let names: Vec<&str> = catalog.models.iter().map(|m| m.name()).collect();
    assert_eq!(names, vec!["tiny"], "only the good model loads");
    let reason = |folder: &Path| {
        catalog
            .refused
            .iter()
            .find(|(d, _)| d == folder)
            .map(|(_, r)| r.clone())
            .unwrap_or_else(|| panic!("{} not refused", folder.display()))
    };
    for (folder, problem) in [
        (&bad_sha, "has sha256"),
        (&no_labels, "labels"),
        (&bad_output, "names probabilities output \"probs\""),
        (&wrong_labels, "has 5 labels"),
    ] {
        let message = reason(folder);
        assert!(message.contains(&folder.display().to_string()) && message.contains(problem), "{message}");
    }
}

#[test]
fn a_missing_onnx_runtime_is_explained() {
    let error = resolve_onnxruntime(Some(Path::new("/nonexistent/libonnxruntime.so"))).expect_err("missing");
    assert!(error.contains("/nonexistent/libonnxruntime.so") && error.contains("scripts/onnxruntime"), "{error}");
    let output = run(timbred()
        .args(["--model-path"])
        .arg(tiny_model())
        .args(["--models", "tiny", "--onnxruntime", "/nonexistent/libonnxruntime.so", "analyze"])
        .arg(sample()));
    assert!(text(&output.stderr).contains("ONNX Runtime was not found at /nonexistent/libonnxruntime.so"));
}

#[test]
fn analyze_reports_each_models_track_and_segment_predictions() {
    let output = run(timbred()
        .args(["--model-path"])
        .arg(tiny_model())
        .args([
            "--models",
            "tiny",
            "--execution-provider",
            "cpu",
            "analyze",
            "--json",
            "--segments",
            "--top-k",
            "0",
            "--segment-seconds",
            "1",
        ])
        .arg(sample()));
    assert!(output.status.success());
    let line: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let predictions = line["predictions"].as_array().expect("predictions");
    assert_eq!(predictions.len(), 1);
    let tiny = &predictions[0];
    assert_eq!(tiny["model"], "tiny");
    let sum: f64 =
        tiny["labels"].as_array().expect("labels").iter().map(|l| l["probability"].as_f64().unwrap_or(0.0)).sum();
    assert!((sum - 1.0).abs() < 1e-5, "probabilities sum to {sum}");
    // The model reads 3 s segments whatever --segment-seconds says for the summary.
    let segments = tiny["segments"].as_array().expect("segments");
    assert_eq!(segments.len(), 1);
    assert_eq!((segments[0]["start_s"].as_f64(), segments[0]["end_s"].as_f64()), (Some(0.0), Some(3.0)));
    assert_eq!(line["segments"], 4, "the summary still uses 1 s segments");
}

#[test]
fn the_shipped_models_load_by_default_and_each_predicts_a_distribution() {
    let output = run(timbred().args(["analyze", "--json", "--top-k", "0"]).arg(sample()));
    assert!(output.status.success());
    let line: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let mut models: Vec<&str> = line["predictions"]
        .as_array()
        .expect("predictions")
        .iter()
        .map(|p| p["model"].as_str().unwrap_or(""))
        .collect();
    models.sort();
    assert_eq!(
        models,
        vec!["bilstm", "cnn", "cnn-lstm", "genre", "musicnn-msd", "pca-knn"],
        "{}",
        text(&output.stderr)
    );
    for prediction in line["predictions"].as_array().expect("predictions") {
        let labels = prediction["labels"].as_array().expect("labels");
        if prediction["model"] == "musicnn-msd" {
            // 50 independent tags: each a probability, no reason to sum to 1.
            assert_eq!((prediction["kind"].as_str(), labels.len()), (Some("tags"), 50));
            assert!(labels.iter().all(|l| (0.0..=1.0).contains(&l["probability"].as_f64().unwrap_or(-1.0))));
            continue;
        }
        assert_eq!(prediction["kind"], "classes");
        assert_eq!(labels.len(), 10, "{}: the ten GTZAN genres", prediction["model"]);
        let sum: f64 = labels.iter().map(|l| l["probability"].as_f64().unwrap_or(0.0)).sum();
        assert!((sum - 1.0).abs() < 1e-4, "{}: probabilities sum to {sum}", prediction["model"]);
    }
}

#[test]
fn an_installed_timbred_finds_the_models_in_share_timbre_models() {
    // $prefix/bin/timbred with its plugins beside it, and a model in $prefix/share/timbre/models.
    let prefix = tempfile::tempdir().expect("tempdir");
    let bin = prefix.path().join("bin");
    let models = prefix.path().join("share/timbre/models/installed-tiny");
    std::fs::create_dir_all(&bin).expect("bin");
    std::fs::create_dir_all(&models).expect("models");
    std::fs::copy(crate::util::target_dir().join("timbred"), bin.join("timbred")).expect("copy timbred");
    for plugin in ["timbre_plugin_mel", "timbre_plugin_onnx"] {
        let file = crate::util::built_plugin(plugin);
        std::fs::copy(&file, bin.join(file.file_name().expect("name"))).expect("copy plugin");
    }
    for entry in std::fs::read_dir(tiny_model()).expect("tiny model") {
        let file = entry.expect("entry").path();
        std::fs::copy(&file, models.join(file.file_name().expect("name"))).expect("copy model file");
    }
    let toml = std::fs::read_to_string(models.join("model.toml")).expect("model.toml");
    std::fs::write(models.join("model.toml"), toml.replacen("name = \"tiny\"", "name = \"installed-tiny\"", 1))
        .expect("rename the model");
    let output = crate::util::run(
        std::process::Command::new(bin.join("timbred")).env_remove("TIMBRE_MODEL_PATH").args(["plugins", "--json"]),
    );
    assert!(output.status.success());
    let listing: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let found = listing["models"].as_array().expect("models").iter().find(|m| m["name"] == "installed-tiny");
    let found = found.unwrap_or_else(|| panic!("installed-tiny not listed: {listing}"));
    assert!(found["dir"].as_str().expect("dir").contains("share/timbre/models"), "{found}");
    // Its installed models only, not those of the source tree it was built from.
    let prefix = prefix.path().display().to_string();
    for model in listing["models"].as_array().expect("models") {
        assert!(model["dir"].as_str().expect("dir").starts_with(&prefix), "not an installed model: {model}");
    }
    assert_eq!(listing["refused_models"], serde_json::json!([]), "{listing}");
}

fn musicnn_dir() -> PathBuf {
    repo().join("plugins/models/musicnn-msd")
}

fn musicnn_fixture(name: &str) -> (Vec<f32>, Vec<u64>) {
    read_npy(&repo().join("tests/data/musicnn").join(name))
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// The shipped musicnn ONNX file through the real onnx plugin gives what the original
/// TensorFlow graph gave on the same input (tests/data/musicnn, written by scripts/musicnn/convert).
#[test]
fn musicnn_through_the_onnx_plugin_matches_the_tensorflow_graph() {
    let registry = registry();
    let catalog = ModelCatalog::discover(&registry, &options(vec![musicnn_dir()], &["musicnn-msd"]));
    assert!(catalog.refused.is_empty(), "{:?}", catalog.refused);
    let spec = &catalog.models[0];
    assert_eq!(spec.folder.manifest.model.kind, timbre_model_manifest::OutputKind::Tags);
    let mut onnx = spec.instantiate(&registry).expect("instance");

    let (mel, shape) = musicnn_fixture("mel.npy");
    let shape: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
    assert_eq!(shape[1..], [187, 96], "time-major patches");
    let output = onnx.process(&mel, &shape).expect("onnx");
    let (tags, _) = musicnn_fixture("tags.npy");
    let (embedding, _) = musicnn_fixture("embedding.npy");
    assert_eq!(output.values.shape, vec![shape[0], 50]);
    let got_embedding = output.embedding.expect("embedding");
    assert_eq!(got_embedding.shape, vec![shape[0], 200]);
    let (tag_diff, embedding_diff) =
        (max_abs_diff(&output.values.data, &tags), max_abs_diff(&got_embedding.data, &embedding));
    println!("musicnn ONNX vs TensorFlow: tags {tag_diff:.2e}, embedding {embedding_diff:.2e}");
    assert!(tag_diff <= 1e-4 && embedding_diff <= 1e-4, "tags {tag_diff}, embedding {embedding_diff}");
}

/// The mel plugin, configured by musicnn-msd's model.toml, turns the fixture's audio into the
/// input the TensorFlow graph was fed: 187 time-major frames of log10(1 + 10000 mel power).
#[test]
fn musicnn_front_end_from_its_manifest_matches_the_fixture_input() {
    let registry = registry();
    let folder = timbre_model_manifest::ModelFolder::open(&musicnn_dir()).expect("folder opens, sha256 included");
    let mut mel = registry.instantiate(PluginKind::Feature, "mel", &folder.feature_params()).expect("mel");
    let bytes = std::fs::read(repo().join("tests/data/musicnn/audio.npy")).expect("audio.npy");
    let audio = npyz::NpyFile::new(&bytes[..]).expect("npy");
    let shape: Vec<usize> = audio.shape().iter().map(|&d| d as usize).collect();
    let pcm: Vec<f32> = audio.into_vec::<i16>().expect("int16").into_iter().map(|s| s as f32 / 32768.0).collect();
    // One segment of the daemon's pipeline: segment_seconds at the plugin's sample rate.
    let segment = (folder.manifest.features.as_ref().expect("[features]").segment_seconds * 16000.0).round() as usize;
    assert_eq!(shape[1], segment, "a fixture patch is one segment");
    let output = mel.process(&pcm, &shape).expect("mel").values;
    let (expected, expected_shape) = musicnn_fixture("mel.npy");
    assert_eq!(output.shape, expected_shape.iter().map(|&d| d as usize).collect::<Vec<_>>());
    let diff = max_abs_diff(&output.data, &expected);
    println!("musicnn front end vs librosa (fixture): max |diff| {diff:.2e}");
    assert!(diff <= 1e-3, "max |diff| {diff}");
}

/// The committed model file is the one model.toml and the fixture name (CI: any edit of one
/// without the others fails here; the loader refuses a checksum mismatch too).
#[test]
fn musicnn_model_file_matches_the_sha256_in_its_manifest_and_fixture() {
    let folder = timbre_model_manifest::ModelFolder::open(&musicnn_dir()).expect("checksum matches model.toml");
    let actual = timbre_model_manifest::sha256_file(&folder.model_path()).expect("model.onnx");
    assert_eq!(actual, folder.manifest.model.sha256);
    let cases: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("tests/data/musicnn/cases.json")).expect("cases.json"),
    )
    .expect("JSON");
    assert_eq!(cases["model_sha256"].as_str(), Some(actual.as_str()), "the fixture was made from this model file");
    assert!(musicnn_dir().join("LICENSE").is_file() && musicnn_dir().join("CARD.md").is_file());
    assert_eq!(folder.manifest.model.labels.len(), 50);
}

/// `timbred analyze` on a real metal clip: musicnn-msd's tags, marked as tags, with a metal
/// tag among the five most probable.
#[test]
fn musicnn_hears_metal_in_a_metal_clip() {
    let Some(pool) = crate::util::gtzan_pool() else { return };
    let clip = pool.join("metal/metal.00026.flac");
    let output = run(timbred()
        .args(["--models", "musicnn-msd", "--execution-provider", "cpu", "analyze", "--json", "--top-k", "5"])
        .arg(&clip));
    assert!(output.status.success(), "{}", text(&output.stderr));
    let line: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let prediction = &line["predictions"][0];
    assert_eq!((prediction["model"].as_str(), prediction["kind"].as_str()), (Some("musicnn-msd"), Some("tags")));
    let top: Vec<&str> =
        prediction["labels"].as_array().expect("labels").iter().filter_map(|l| l["name"].as_str()).collect();
    println!("{}: {top:?}", clip.display());
    assert!(top.iter().any(|t| ["metal", "heavy metal", "hard rock"].contains(t)), "{top:?}");
}

/// The shipped genre head: `timbred analyze` runs musicnn-msd once and the head on its
/// embedding; asking for the head alone loads and runs its upstream too.
#[test]
fn the_genre_head_names_the_genre_of_a_real_clip() {
    let Some(pool) = crate::util::gtzan_pool() else { return };
    let clip = pool.join("metal/metal.00026.flac");
    let output = run(timbred()
        .args(["--models", "genre", "--execution-provider", "cpu", "analyze", "--json", "--top-k", "3"])
        .arg(&clip));
    assert!(output.status.success(), "{}", text(&output.stderr));
    let line: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let predictions = line["predictions"].as_array().expect("predictions");
    let models: Vec<&str> = predictions.iter().filter_map(|p| p["model"].as_str()).collect();
    assert_eq!(models, ["musicnn-msd", "genre"], "the head and the model it reads");
    let genre = &predictions[1];
    assert_eq!(genre["kind"].as_str(), Some("classes"));
    assert_eq!(genre["labels"][0]["name"].as_str(), Some("metal"), "{line}");
}

/// Heads whose upstream is missing, or that read each other, are refused naming both; the
/// rest of the catalogue loads.
#[test]
fn a_head_without_its_upstream_or_in_a_cycle_is_refused_naming_both() {
    let dir = tempfile::tempdir().expect("tempdir");
    let genre = repo().join("plugins/models/genre");
    let head = |name: &str, upstream: &str| {
        let folder = dir.path().join(name);
        std::fs::create_dir(&folder).expect("mkdir");
        std::fs::copy(genre.join("head.json"), folder.join("head.json")).expect("head.json");
        let toml = std::fs::read_to_string(genre.join("model.toml")).expect("model.toml");
        let toml = toml
            .replace("name = \"genre\"", &format!("name = \"{name}\""))
            .replace("model = \"musicnn-msd\"", &format!("model = \"{upstream}\""));
        std::fs::write(folder.join("model.toml"), toml).expect("write");
    };
    head("orphan", "no-such-model");
    head("left", "right");
    head("right", "left");
    let output = run(timbred().arg("--model-path").arg(dir.path()).args(["plugins", "--json"]));
    let listing = text(&output.stdout) + &text(&output.stderr);
    assert!(listing.contains("head 'orphan' reads the embedding of 'no-such-model', which is not loaded"), "{listing}");
    assert!(listing.contains("heads 'left' and 'right' read each other: a cycle"), "{listing}");
    assert!(listing.contains("heads 'right' and 'left' read each other: a cycle"), "{listing}");
    assert!(listing.contains("\"genre\""), "the shipped head still loads: {listing}");
}

/// `timbred train head` on a small labelled folder writes a head folder that the daemon
/// loads beside the model it reads, with a card and a choice made on held-out tracks.
#[test]
fn train_head_writes_a_folder_the_daemon_loads() {
    let Some(pool) = crate::util::gtzan_pool() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    for clip in crate::util::gtzan_clips(&pool, &["classical", "metal"], 6) {
        let label = clip.parent().and_then(|p| p.file_name()).expect("genre");
        std::fs::create_dir_all(data.join(label)).expect("mkdir");
        std::fs::copy(&clip, data.join(label).join(clip.file_name().expect("name"))).expect("copy");
    }
    let out = dir.path().join("models/mine");
    let output = run(timbred()
        .args(["--execution-provider", "cpu", "train", "head", "--embedding", "cnn", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(&out)
        .args(["--folds", "2"]));
    assert!(output.status.success(), "{}", text(&output.stderr));
    let said = text(&output.stdout);
    assert!(said.contains("12 tracks") && said.contains("2-fold cross-validation"), "{said}");
    let card = std::fs::read_to_string(out.join("CARD.md")).expect("card");
    assert!(card.contains("`cnn` embedding") && card.contains("**(chosen)**"), "{card}");
    let clip = data.join("metal").read_dir().expect("dir").next().expect("a clip").expect("entry").path();
    let output = run(timbred()
        .arg("--model-path")
        .arg(dir.path().join("models"))
        .args(["--models", "mine", "analyze", "--json", "--top-k", "0"])
        .arg(&clip));
    assert!(output.status.success(), "{}", text(&output.stderr));
    let line: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let mine =
        line["predictions"].as_array().expect("predictions").iter().find(|p| p["model"] == "mine").expect("the head");
    let names: Vec<&str> =
        mine["labels"].as_array().expect("labels").iter().filter_map(|l| l["name"].as_str()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

/// Every prediction says whether its labels are tags or classes, from the model's manifest:
/// in a Classify answer, in a library track's stored predictions, and, for a stored prediction
/// of a model the daemon no longer loads, unspecified. `timbre classify` shows musicnn's tags
/// above the threshold (more than --top-k when they pass it) and the head's top classes.
#[test]
fn predictions_say_whether_they_are_tags_or_classes() {
    use timbre_proto::v1 as pb;
    let Some(pool) = crate::util::gtzan_pool() else { return };
    let (root, data) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
    let clip = root.path().join("metal.00026.flac");
    std::fs::copy(pool.join("metal/metal.00026.flac"), &clip).expect("copy");
    let (root_arg, data_arg) = (root.path().to_str().expect("utf-8"), data.path().to_str().expect("utf-8"));
    let start = |models: &str| {
        crate::util::Daemon::start_with(
            &["--models", models, "--execution-provider", "cpu", "--root", root_arg, "--data-dir", data_arg],
            &[],
        )
    };
    let kinds = |predictions: &[pb::ModelPrediction]| -> Vec<(String, pb::PredictionKind)> {
        predictions.iter().map(|p| (p.model.clone(), p.kind())).collect()
    };
    let both =
        vec![("genre".to_string(), pb::PredictionKind::Classes), ("musicnn-msd".into(), pb::PredictionKind::Tags)];

    let daemon = start("genre");
    crate::util::runtime().block_on(async {
        let mut client = daemon.client().await;
        let request = pb::ClassifyRequest {
            source: Some(pb::classify_request::Source::Path(clip.display().to_string())),
            top_k: 3,
            ..Default::default()
        };
        let response = client.classify(request).await.expect("Classify").into_inner();
        assert_eq!(kinds(&response.predictions), both);
        let tracks = crate::library::wait_for_tracks(&mut client, 1).await;
        assert_eq!(kinds(&tracks[0].predictions), both, "stored predictions, kinds from the loaded models");
    });
    let output = run(crate::serve::timbre_cli().args(["--addr", &daemon.addr, "classify", "--top-k", "1"]).arg(&clip));
    assert!(output.status.success(), "{}", text(&output.stderr));
    let shown = text(&output.stdout);
    println!("{shown}");
    let line = |model: &str| shown.lines().find(|l| l.trim_start().starts_with(model)).unwrap_or_default().to_string();
    // The default threshold, 0.2: the tags at or above it, or that there are none.
    assert!(line("musicnn-msd").ends_with(" ≥ 0.20)"), "{shown}");
    assert!(line("genre").starts_with("  genre      metal ") && !line("genre").contains("(tags"), "{shown}");
    assert_eq!(line("genre").matches('.').count(), 1, "one class under --top-k 1: {shown}");
    daemon.stop();

    // genre is no longer loaded: its stored prediction stays, of an unknown kind.
    let daemon = start("musicnn-msd");
    crate::util::runtime().block_on(async {
        let track = crate::library::wait_for_tracks(&mut daemon.client().await, 1).await.remove(0);
        assert_eq!(
            kinds(&track.predictions),
            [("genre".to_string(), pb::PredictionKind::Unspecified), ("musicnn-msd".into(), pb::PredictionKind::Tags)]
        );
    });
}

/// `models.graph_optimization` and `models.intra_threads` reach the ONNX plugin: each level
/// loads (the instance reports what it runs with) and gives the same numbers as `all`; a level
/// the plugin does not know is refused by the plugin too, naming the key.
#[test]
fn onnx_runtime_options_reach_the_plugin_and_each_level_gives_the_same_numbers() {
    let registry = registry();
    let features: Vec<f32> = (0..2 * 128 * 130).map(|i| ((i * 7919) % 1000) as f32 / 100.0 - 5.0).collect();
    let run_at = |level: &str| {
        let options = ModelOptions {
            graph_optimization: level.into(),
            intra_threads: 2,
            ..options(vec![tiny_model()], &["tiny"])
        };
        let catalog = ModelCatalog::discover(&registry, &options);
        let spec = catalog.models.iter().find(|m| m.name() == "tiny").expect("tiny is loaded");
        assert_eq!(
            (spec.info["graph_optimization"].as_str(), spec.info["intra_threads"].as_u64()),
            (Some(level), Some(2))
        );
        spec.instantiate(&registry).expect("instance").process(&features, &[2, 128, 130]).expect("onnx").values.data
    };
    let all = run_at("all");
    for level in ["disable", "basic", "extended"] {
        let got = run_at(level);
        assert!(all.iter().zip(&got).all(|(a, b)| (a - b).abs() < 1e-5), "{level}: {got:?} vs {all:?}");
    }
    let bad = serde_json::json!({ "model_dir": tiny_model(), "runtime_library": resolve_onnxruntime(None).expect("ORT"),
                                  "graph_optimization": "fast" });
    let error = registry.instantiate(PluginKind::Classifier, "onnx", &bad).err().expect("refused").to_string();
    assert!(error.contains("graph_optimization") || error.contains("fast"), "{error}");
}

/// `library.models = ["genre"]`: the library's tracks get the head and the model it reads,
/// not the other loaded models, which Classify still runs when asked. A name that did not
/// load stops the daemon at start-up, naming the key and the file.
#[test]
fn library_models_choose_what_the_scan_runs_and_classify_still_runs_any() {
    use timbre_proto::v1 as pb;
    let Some(pool) = crate::util::gtzan_pool() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("music");
    std::fs::create_dir_all(&root).expect("mkdir");
    let clip = root.join("metal.00026.flac");
    std::fs::copy(pool.join("metal/metal.00026.flac"), &clip).expect("copy");
    let config = dir.path().join("timbre.toml");
    std::fs::write(&config, "[library]\nmodels = [\"genre\"]\n").expect("write");
    let tiny = tiny_model();
    let args = [
        "--models",
        "genre,tiny",
        "--model-path",
        tiny.to_str().expect("utf-8"),
        "--execution-provider",
        "cpu",
        "--root",
        root.to_str().expect("utf-8"),
        "--config",
        config.to_str().expect("utf-8"),
    ];
    let daemon = crate::util::Daemon::start_with(&args, &[]);
    crate::util::runtime().block_on(async {
        let mut client = daemon.client().await;
        let track = crate::library::wait_for_tracks(&mut client, 1).await.remove(0);
        let models: Vec<&str> = track.predictions.iter().map(|p| p.model.as_str()).collect();
        assert_eq!(models, ["genre", "musicnn-msd"], "the head and its upstream, not tiny");
        let request = pb::ClassifyRequest {
            source: Some(pb::classify_request::Source::Path(clip.display().to_string())),
            models: vec!["tiny".into()],
            ..Default::default()
        };
        let response = client.classify(request).await.expect("Classify any loaded model").into_inner();
        assert_eq!(response.predictions.iter().map(|p| p.model.as_str()).collect::<Vec<_>>(), ["tiny"]);
    });
    drop(daemon);

    std::fs::write(&config, "[library]\nmodels = [\"genre\", \"nope\"]\n").expect("write");
    // A daemon that took the bad name would serve until killed: give it a minute, not forever.
    let mut child = timbred()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("timbred starts");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().expect("kill");
            panic!("timbred serve with an unknown library.models name did not stop");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let output = child.wait_with_output().expect("output");
    assert!(!output.status.success());
    let error = text(&output.stderr);
    assert!(error.contains("library.models = \"nope\"") && error.contains(&config.display().to_string()), "{error}");
}
