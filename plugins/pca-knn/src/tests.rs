//! Tests of the whole crate: training, the model file and model folders. The plugin has its own,
//! in `plugin/`.

use std::collections::BTreeSet;
use std::path::Path;

use timbre_model_manifest::{sha256_hex, MANIFEST_FILE};
use timbre_rng::SplitMix64;

use super::*;

const N_FEATURES: usize = 8;
const FRAMES: usize = 10;
const D: usize = N_FEATURES * FRAMES;
const LABELS: [&str; 3] = ["blues", "classical", "metal"];

/// A roughly normal value (sum of uniforms), mean 0, standard deviation `sd`.
fn normal(rng: &mut SplitMix64, sd: f64) -> f64 {
    (0..4).map(|_| rng.signed_unit()).sum::<f64>() * sd * (3.0f64 / 4.0).sqrt()
}

struct Corpus {
    tracks: Vec<(String, &'static str)>,
    features: Vec<Vec<f32>>,
    /// Track index of each segment.
    segment_track: Vec<usize>,
}

impl Corpus {
    /// `tracks_per_label` tracks of each label, `segments_per_track` segments each: a label
    /// centroid, a per-track offset and per-segment noise. Track names start with `prefix`.
    fn new(prefix: &str, tracks_per_label: usize, segments_per_track: usize, seed: u64) -> Corpus {
        let mut centroids_rng = SplitMix64::new(1234);
        let centroids: Vec<Vec<f64>> =
            LABELS.iter().map(|_| (0..D).map(|_| -40.0 + 10.0 * normal(&mut centroids_rng, 1.0)).collect()).collect();
        let mut rng = SplitMix64::new(seed);
        let mut corpus = Corpus { tracks: Vec::new(), features: Vec::new(), segment_track: Vec::new() };
        for t in 0..tracks_per_label {
            for (l, label) in LABELS.iter().enumerate() {
                let track = corpus.tracks.len();
                corpus.tracks.push((format!("{prefix}{label}-{t:02}"), label));
                let offset: Vec<f64> = (0..D).map(|_| normal(&mut rng, 3.0)).collect();
                for _ in 0..segments_per_track {
                    corpus
                        .features
                        .push((0..D).map(|j| (centroids[l][j] + offset[j] + normal(&mut rng, 4.0)) as f32).collect());
                    corpus.segment_track.push(track);
                }
            }
        }
        corpus
    }

    fn segments(&self) -> Vec<TrainingSegment<'_>> {
        self.features
            .iter()
            .zip(&self.segment_track)
            .map(|(features, &t)| TrainingSegment { track: &self.tracks[t].0, label: self.tracks[t].1, features })
            .collect()
    }

    fn batch(&self) -> Vec<f32> {
        self.features.concat()
    }
}

fn trained(options: &TrainOptions) -> (Model, TrainReport) {
    let corpus = Corpus::new("train/", 10, 3, 1);
    train(&corpus.segments(), N_FEATURES, FRAMES, options).expect("trains")
}

/// Track-level accuracy: the label with the highest mean share over a track's segments.
fn track_accuracy(model: &Model, corpus: &Corpus, probabilities: &[f32]) -> f64 {
    let classes = model.labels().len();
    let mut hits = 0;
    for (t, (_, label)) in corpus.tracks.iter().enumerate() {
        let mut mean = vec![0.0f32; classes];
        for (s, _) in corpus.segment_track.iter().enumerate().filter(|(_, &st)| st == t) {
            for (m, p) in mean.iter_mut().zip(&probabilities[s * classes..(s + 1) * classes]) {
                *m += p;
            }
        }
        let best = (0..classes).fold(0, |b, c| if mean[c] > mean[b] { c } else { b });
        hits += usize::from(model.labels()[best] == *label);
    }
    hits as f64 / corpus.tracks.len() as f64
}

#[test]
fn classifies_held_out_tracks_of_separated_clusters() {
    for weighted in [false, true] {
        let (model, report) = trained(&TrainOptions { weighted, ..TrainOptions::default() });
        assert_eq!(model.labels(), LABELS);
        assert_eq!(report.chosen_by, ComponentChoice::Validation);
        assert!(!report.candidates.is_empty());
        assert!(report.candidates.iter().any(|c| c.components == report.components), "{report}");
        assert_eq!(model.n_components(), report.components);
        assert_eq!(report.explained_variance_ratio.len(), report.components);

        let held_out = Corpus::new("test/", 5, 3, 99);
        let segments = held_out.features.len();
        let (probabilities, embeddings) = model.classify(&held_out.batch(), segments);
        assert_eq!(probabilities.len(), segments * 3);
        assert_eq!(embeddings.len(), segments * report.components);
        for row in probabilities.chunks_exact(3) {
            let sum: f32 = row.iter().sum();
            assert!((sum - 1.0).abs() < 1e-5, "{row:?}");
            assert!(row.iter().all(|p| (0.0..=1.0).contains(p)));
        }
        let accuracy = track_accuracy(&model, &held_out, &probabilities);
        assert!(accuracy >= 0.9, "held-out track accuracy {accuracy}\n{report}");
    }
}

#[test]
fn report_lists_candidates_and_reads_well() {
    let (_, report) = trained(&TrainOptions::default());
    let tried: Vec<usize> = report.candidates.iter().map(|c| c.components).collect();
    assert!(tried.windows(2).all(|w| w[0] < w[1]), "{tried:?}");
    assert!(tried.iter().all(|c| COMPONENT_CANDIDATES.contains(c) || *c < 64));
    let best = report.candidates.iter().map(|c| c.track_accuracy).fold(0.0, f64::max);
    let chosen = report.candidates.iter().find(|c| c.components == report.components).expect("chosen is a candidate");
    assert_eq!(chosen.track_accuracy, best);
    let text = report.to_string();
    assert!(text.contains("track accuracy") && text.contains("final model"), "{text}");
    assert!(serde_json::to_value(&report).is_ok());
}

#[test]
fn validation_split_never_puts_a_track_on_both_sides() {
    // Shuffle the segments so a track's segments are not adjacent in the input.
    let corpus = Corpus::new("", 10, 3, 5);
    let mut segments = corpus.segments();
    SplitMix64::new(3).shuffle(&mut segments);
    for seed in 0..5 {
        let options = TrainOptions { seed, ..TrainOptions::default() };
        let (_, report) = train(&segments, N_FEATURES, FRAMES, &options).expect("trains");
        let train_side: BTreeSet<&String> = report.training_tracks.iter().collect();
        let validation_side: BTreeSet<&String> = report.validation_tracks.iter().collect();
        assert!(train_side.is_disjoint(&validation_side));
        assert_eq!(train_side.len() + validation_side.len(), corpus.tracks.len());
        // Stratified: 20 % of each label's 10 tracks.
        for label in LABELS {
            assert_eq!(validation_side.iter().filter(|t| t.starts_with(label)).count(), 2, "{label}");
        }
    }
}

#[test]
fn training_is_deterministic_and_independent_of_the_pca_method() {
    let corpus = Corpus::new("", 10, 3, 1);
    let segments = corpus.segments();
    let options = TrainOptions::default();
    let (a, report_a) = train(&segments, N_FEATURES, FRAMES, &options).expect("trains");
    let (b, report_b) = train(&segments, N_FEATURES, FRAMES, &options).expect("trains");
    assert_eq!(a, b);
    assert_eq!(report_a, report_b);
    let (free, report_free) =
        crate::train::gram_limited_train(&segments, N_FEATURES, FRAMES, &options, 0).expect("matrix-free trains");
    assert_eq!(report_free.components, report_a.components);
    let (pa, _) = a.classify(&corpus.batch(), segments.len());
    let (pf, _) = free.classify(&corpus.batch(), segments.len());
    let differing = pa.iter().zip(&pf).filter(|(x, y)| (*x - *y).abs() > 1e-6).count();
    assert!(differing <= pa.len() / 20, "{differing} of {} probabilities differ", pa.len());
}

#[test]
fn explicit_components_skip_validation() {
    let (model, report) = trained(&TrainOptions { components: Some(5), k: 3, ..TrainOptions::default() });
    assert_eq!((model.n_components(), model.k()), (5, 3));
    assert_eq!(report.chosen_by, ComponentChoice::Given);
    assert!(report.candidates.is_empty() && report.validation_tracks.is_empty());
    // A training segment is its own nearest neighbour.
    let corpus = Corpus::new("train/", 10, 3, 1);
    let (_, embeddings) = model.classify(&corpus.features[0], 1);
    assert_eq!(embeddings, model.embeddings[..5].to_vec());
}

#[test]
fn bad_training_input_is_refused_clearly() {
    let corpus = Corpus::new("", 3, 2, 1);
    let segments = corpus.segments();
    let error = |segments: &[TrainingSegment<'_>], options: &TrainOptions| {
        train(segments, N_FEATURES, FRAMES, options).map(|_| ()).expect_err("refused")
    };
    let default = TrainOptions::default();
    assert!(matches!(error(&segments, &TrainOptions { k: 0, ..default.clone() }), TrainError::Options(_)));
    assert!(matches!(
        error(&segments, &TrainOptions { validation_fraction: 1.0, ..default.clone() }),
        TrainError::Options(_)
    ));
    assert!(matches!(error(&segments[..1], &default), TrainError::TooFewSegments(1)));

    let short = [0.0f32; 3];
    let mut broken = segments.clone();
    broken[4].features = &short;
    let message = error(&broken, &default).to_string();
    assert!(message.contains("segment 4") && message.contains(&corpus.tracks[corpus.segment_track[4]].0), "{message}");

    let mut nan = corpus.features[2].clone();
    nan[7] = f32::NAN;
    let mut broken = segments.clone();
    broken[2].features = &nan;
    assert!(matches!(error(&broken, &default), TrainError::NonFinite { index: 2, position: 7, .. }));

    let mut mixed = segments.clone();
    mixed[1].label = "metal";
    mixed[0].label = "blues";
    mixed[1].track = mixed[0].track;
    assert!(matches!(error(&mixed, &default), TrainError::MixedTrackLabels { .. }));

    // One track per label: nothing to hold out.
    let single = Corpus::new("", 1, 4, 1);
    assert_eq!(error(&single.segments(), &default), TrainError::NoValidationTracks);
    // Fewer segments than components.
    let asked = TrainOptions { components: Some(40), ..default.clone() };
    assert!(matches!(error(&segments, &asked), TrainError::TooManyComponents { asked: 40, available: 17, .. }));
}

#[test]
fn save_and_load_round_trip_gives_identical_outputs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (model, _) = trained(&TrainOptions { weighted: true, ..TrainOptions::default() });
    let path = dir.path().join("model.knn");
    model.save(&path).expect("saves");
    let loaded = Model::load(&path).expect("loads");
    assert_eq!(loaded, model);
    let held_out = Corpus::new("test/", 2, 3, 7);
    let segments = held_out.features.len();
    assert_eq!(loaded.classify(&held_out.batch(), segments), model.classify(&held_out.batch(), segments));
    // Saving again gives the same bytes.
    assert_eq!(std::fs::read(&path).expect("read"), model.to_bytes());
}

fn expect_refused(bytes: &[u8], path: &Path) -> ModelError {
    std::fs::write(path, bytes).expect("write");
    let error = Model::load(path).expect_err("refused");
    let message = error.to_string();
    assert!(message.contains(&path.display().to_string()), "the error does not name the file: {message}");
    error
}

#[test]
fn bad_model_files_are_refused_with_the_file_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.knn");
    let (model, _) = trained(&TrainOptions { components: Some(3), ..TrainOptions::default() });
    let good = model.to_bytes();

    let mut wrong_magic = good.clone();
    wrong_magic[0] = b'X';
    assert!(matches!(expect_refused(&wrong_magic, &path), ModelError::NotAModel { .. }));
    assert!(matches!(expect_refused(b"", &path), ModelError::NotAModel { .. }));

    let mut future = good.clone();
    future[9..13].copy_from_slice(&2u32.to_le_bytes());
    let error = expect_refused(&future, &path);
    assert!(matches!(error, ModelError::UnsupportedVersion { found: 2, supported: 1, .. }), "{error}");

    // Every truncation is refused, none panics.
    for len in MAGIC.len()..good.len() {
        let error = expect_refused(&good[..len], &path);
        assert!(matches!(error, ModelError::Truncated { .. } | ModelError::Corrupt { .. }), "cut at {len}: {error}");
    }
    assert!(matches!(expect_refused(&good[..good.len() - 10], &path), ModelError::Truncated { .. }));

    // A flipped bit anywhere is refused: in the data the checksum catches it.
    for position in [40, good.len() / 2, good.len() - 40, good.len() - 1] {
        let mut corrupt = good.clone();
        corrupt[position] ^= 0x10;
        let error = expect_refused(&corrupt, &path);
        assert!(matches!(error, ModelError::Corrupt { .. } | ModelError::Truncated { .. }), "{error}");
    }

    let mut trailing = good.clone();
    trailing.extend_from_slice(b"extra");
    assert!(matches!(expect_refused(&trailing, &path), ModelError::Corrupt { .. }));

    // Header counts far past the file's size are refused before anything is allocated.
    let mut huge = good.clone();
    huge[29..33].copy_from_slice(&u32::MAX.to_le_bytes()); // n_train
    assert!(matches!(expect_refused(&huge, &path), ModelError::Truncated { .. }));

    let missing = dir.path().join("missing.knn");
    let error = Model::load(&missing).expect_err("missing");
    assert!(matches!(error, ModelError::Io { .. }) && error.to_string().contains("missing.knn"));
}

fn mel_spec() -> FeatureSpec {
    let params =
        serde_json::json!({"sample_rate": 22050, "n_fft": 2048, "hop_length": 512, "n_mels": N_FEATURES, "fmax": null});
    FeatureSpec::from_json("mel", &params, 3.0).expect("params convert")
}

fn write_folder(dir: &Path, model: &Model) -> Manifest {
    let spec = FolderSpec { name: "pca-knn", version: "1.0.0", description: "test model", features: mel_spec() };
    write_model_folder(model, dir, &spec).expect("writes")
}

/// A refusal with every cause, as one line (the plugin reports it so).
fn refusal(dir: &Path) -> String {
    let error = load_model_folder(dir).expect_err("refused");
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message = format!("{message}: {cause}");
        source = cause.source();
    }
    message
}

#[test]
fn model_folder_round_trips() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (model, _) = trained(&TrainOptions::default());
    let manifest = write_folder(dir.path(), &model);
    assert_eq!(manifest.model.sha256, sha256_hex(&std::fs::read(dir.path().join(MODEL_FILE)).expect("model")));
    let text = std::fs::read_to_string(dir.path().join(MANIFEST_FILE)).expect("manifest");
    assert!(text.contains("sha256 = ") && text.contains("embedding_size = ") && !text.contains("fmax"), "{text}");

    let loaded = load_model_folder(dir.path()).expect("loads");
    assert_eq!(loaded.model, model);
    assert_eq!(loaded.manifest, manifest);
    assert_eq!(loaded.manifest.features.as_ref().expect("features").params["n_mels"].as_integer(), Some(N_FEATURES as i64));
    let held_out = Corpus::new("test/", 2, 2, 3);
    let (batch, segments) = (held_out.batch(), held_out.features.len());
    assert_eq!(loaded.model.classify(&batch, segments), model.classify(&batch, segments));
}

#[test]
fn a_folder_whose_sha256_does_not_match_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (model, _) = trained(&TrainOptions::default());
    write_folder(dir.path(), &model);
    // Replace the model file with another valid model: only the hash can tell.
    let (other, _) = trained(&TrainOptions { k: 5, ..TrainOptions::default() });
    other.save(&dir.path().join(MODEL_FILE)).expect("saves");
    let message = refusal(dir.path());
    assert!(message.contains(&dir.path().display().to_string()), "{message}");
    assert!(message.contains("has sha256"), "{message}");
}

#[test]
fn inconsistent_or_missing_folders_are_refused_naming_the_folder() {
    let (model, _) = trained(&TrainOptions::default());
    let edit = |from: &str, to: &str| {
        let dir = tempfile::tempdir().expect("tempdir");
        write_folder(dir.path(), &model);
        let path = dir.path().join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&path).expect("manifest");
        assert!(text.contains(from), "{text}");
        std::fs::write(&path, text.replacen(from, to, 1)).expect("write");
        let message = refusal(dir.path());
        assert!(message.contains(&dir.path().display().to_string()), "{message}");
        message
    };
    assert!(edit("\"classical\"", "\"jazz\"").contains("labels"));
    let size = format!("embedding_size = {}", model.n_components());
    assert!(edit(&size, "embedding_size = 99").contains("embedding_size"));
    assert!(edit("n_mels = 8", "n_mels = 128").contains("n_mels"));
    assert!(edit("file = \"model.knn\"", "file = \"../model.knn\"").contains("inside the folder"));
    assert!(edit("[model]", "[modle]").contains("model.toml"));
    assert!(edit("plugin = \"pca-knn\"", "plugin = \"onnx\"").contains("\"onnx\" plugin"));

    let empty = tempfile::tempdir().expect("tempdir");
    let message = refusal(empty.path());
    assert!(message.contains("model.toml") && message.contains(&empty.path().display().to_string()), "{message}");

    // A damaged model file with a matching hash cannot happen by accident, but a truncated one
    // with the manifest updated to match is still refused by the model checks.
    let dir = tempfile::tempdir().expect("tempdir");
    write_folder(dir.path(), &model);
    let model_path = dir.path().join(MODEL_FILE);
    let bytes = std::fs::read(&model_path).expect("model");
    let cut = &bytes[..bytes.len() / 2];
    std::fs::write(&model_path, cut).expect("write");
    let manifest_path = dir.path().join(MANIFEST_FILE);
    let text = std::fs::read_to_string(&manifest_path).expect("manifest");
    std::fs::write(&manifest_path, text.replace(&sha256_hex(&bytes), &sha256_hex(cut))).expect("write");
    let message = refusal(dir.path());
    assert!(message.contains("truncated") && message.contains("model.knn"), "{message}");
}

#[test]
fn the_daemons_manifest_reader_accepts_written_folders() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (model, _) = trained(&TrainOptions::default());
    write_folder(dir.path(), &model);
    let folder = timbre_model_manifest::ModelFolder::open(dir.path()).expect("the daemon's reader accepts it");
    assert_eq!(folder.plugin(), PLUGIN_NAME);
    assert_eq!(folder.manifest.model.embedding_size, model.n_components());
    assert_eq!(folder.feature_params()["n_mels"], N_FEATURES);

    let spec = FolderSpec { name: "pca knn", version: "1", description: "", features: mel_spec() };
    let error = write_model_folder(&model, dir.path(), &spec).expect_err("bad name");
    assert!(error.to_string().contains("name \"pca knn\""), "{error}");
}

#[test]
fn the_writer_reproduces_the_shipped_folder_byte_for_byte() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/pca-knn");
    let loaded = load_model_folder(&shipped).expect("the shipped folder loads");
    let manifest = &loaded.manifest;
    let spec = FolderSpec {
        name: &manifest.name,
        version: &manifest.version,
        description: &manifest.description,
        features: manifest.features.clone().expect("features"),
    };
    let dir = tempfile::tempdir().expect("tempdir");
    assert_eq!(&write_model_folder(&loaded.model, dir.path(), &spec).expect("writes"), manifest);
    for file in [MANIFEST_FILE, MODEL_FILE] {
        let read = |dir: &Path| std::fs::read(dir.join(file)).expect("read");
        assert!(read(dir.path()) == read(&shipped), "{file} differs from the shipped one");
    }
}
