//! The plugin surface, on the shipped model folder: what `info` reports, `process` against the
//! library's own classification, and refusals as configuration errors with every cause. The
//! model, its file and its folder are tested in the library.

use std::path::{Path, PathBuf};

use timbre_model_manifest::{sha256_hex, MANIFEST_FILE};
use timbre_pca_knn::{load_model_folder, MODEL_FILE, PLUGIN_NAME};
use timbre_plugin_sdk::ffi::{ERR_CONFIG, ERR_INVALID_INPUT};
use timbre_plugin_sdk::{Plugin, TensorView};

use super::*;

const N_MELS: usize = 128;
const FRAMES: usize = 130;

fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/pca-knn")
}

fn create(dir: &Path) -> Result<PcaKnnPlugin, Error> {
    PcaKnnPlugin::create(&serde_json::json!({ "model_dir": dir }))
}

/// A copy of the shipped folder to break.
fn copy_of_shipped() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for file in [MANIFEST_FILE, MODEL_FILE] {
        std::fs::copy(shipped().join(file), dir.path().join(file)).expect("copy");
    }
    dir
}

#[test]
fn the_plugin_serves_the_shipped_model_as_the_library_classifies() {
    let mut plugin = create(&shipped()).expect("the shipped folder loads");
    let info = plugin.info();
    assert_eq!(info["labels"].as_array().map(Vec::len), Some(10));
    assert_eq!(info["name"], "pca-knn");
    assert_eq!((info["n_features"].as_u64(), info["frames"].as_u64()), (Some(128), Some(130)));
    assert_eq!(info["embedding_size"], plugin.model().n_components());
    assert_eq!(info["features"]["plugin"], "mel");
    assert_eq!(info["features"]["segment_seconds"], 3.0);
    assert_eq!(info["features"]["params"]["n_mels"], 128);

    // Two segments of a made-up spectrogram, in dB.
    let segments = 2;
    let batch: Vec<f32> =
        (0..segments * N_MELS * FRAMES).map(|i| -40.0 + 20.0 * ((i % 977) as f32 * 0.37).sin()).collect();
    let output = plugin.process(TensorView { data: &batch, shape: &[segments, N_MELS, FRAMES] }).expect("processes");
    let model = load_model_folder(&shipped()).expect("loads").model;
    let (probabilities, embeddings) = model.classify(&batch, segments);
    assert_eq!(output.values.shape, vec![segments, 10]);
    let embedding = output.embedding.expect("an embedding");
    assert_eq!(embedding.shape, vec![segments, model.n_components()]);
    assert_eq!((output.values.data, embedding.data), (probabilities, embeddings));

    // An empty batch is fine; a wrong shape or a NaN is not.
    let empty = plugin.process(TensorView { data: &[], shape: &[0, N_MELS, FRAMES] }).expect("empty batch");
    assert_eq!(empty.values.shape, vec![0, 10]);
    for shape in [&[segments, FRAMES, N_MELS][..], &[segments, N_MELS * FRAMES][..]] {
        let error = plugin.process(TensorView { data: &batch, shape }).expect_err("wrong shape");
        assert_eq!(error.status, ERR_INVALID_INPUT);
        assert!(error.message.contains("expected input [segments, 128, 130]"), "{}", error.message);
    }
    let mut nan = batch.clone();
    nan[N_MELS * FRAMES + 1] = f32::NAN;
    let error = plugin.process(TensorView { data: &nan, shape: &[segments, N_MELS, FRAMES] }).expect_err("nan");
    assert!(error.message.contains("segment 1"), "{}", error.message);
}

#[test]
fn a_refused_folder_is_a_configuration_error_with_every_cause() {
    // A truncated model file whose manifest was updated to match: the hash passes, the model
    // file's own checks do not, and the message goes down to them.
    let dir = copy_of_shipped();
    let bytes = std::fs::read(dir.path().join(MODEL_FILE)).expect("model");
    let cut = &bytes[..bytes.len() / 2];
    std::fs::write(dir.path().join(MODEL_FILE), cut).expect("write");
    let manifest = std::fs::read_to_string(dir.path().join(MANIFEST_FILE)).expect("manifest");
    std::fs::write(dir.path().join(MANIFEST_FILE), manifest.replace(&sha256_hex(&bytes), &sha256_hex(cut)))
        .expect("write");
    let error = create(dir.path()).err().expect("refused");
    assert_eq!(error.status, ERR_CONFIG);
    let message = &error.message;
    assert!(message.contains(&dir.path().display().to_string()) && message.contains("truncated"), "{message}");

    let dir = copy_of_shipped();
    std::fs::write(dir.path().join(MODEL_FILE), b"not a model").expect("write");
    let error = create(dir.path()).err().expect("refused");
    assert!(error.status == ERR_CONFIG && error.message.contains("has sha256"), "{}", error.message);

    let error = PcaKnnPlugin::create(&serde_json::json!({})).err().expect("no model_dir");
    assert!(error.status == ERR_CONFIG && error.message.contains("model_dir"), "{}", error.message);
}

#[test]
fn the_plugin_name_is_the_manifest_plugin_name() {
    assert_eq!(PcaKnnPlugin::NAME.to_str(), Ok(PLUGIN_NAME));
}
