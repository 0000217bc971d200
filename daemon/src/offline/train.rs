//! `timbred train pca-knn`: fit the PCA + kNN classifier (report 000) on a labelled folder,
//! from the same mel features the daemon serves, and write a model folder.

use std::path::{Path, PathBuf};

use timbre_pca_knn as pca_knn;

use super::eval::{labelled_files, read_split, EvalError};
use super::features::segment_features;
use crate::pipeline::{FeatureExtractor, Padding, PipelineError, SegmentOptions};
use crate::plugin_host::PluginRegistry;

#[derive(Debug, Clone)]
pub struct TrainRequest {
    pub data_dir: PathBuf,
    pub out_dir: PathBuf,
    /// Train on the files this split file puts in "train": "val" is left unseen, as by every
    /// other shipped model, so that `timbred eval` can fit the ensemble's weights on it.
    pub split: Option<PathBuf>,
    pub options: pca_knn::TrainOptions,
    pub jobs: usize,
    pub version: String,
    /// How partial segments are completed: in training, and in the manifest written, so the
    /// daemon pads tracks as the model was trained.
    pub padding: Padding,
}

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Data(#[from] EvalError),
    #[error(transparent)]
    Plugin(#[from] crate::plugin_host::PluginError),
    #[error("no training file could be read ({0} failed)")]
    NoData(usize),
    #[error("training failed: {0}")]
    Train(String),
    #[error("cannot write the model folder {}: {reason}", dir.display())]
    Write { dir: PathBuf, reason: String },
}

/// The features the shipped models read: defaults of the mel plugin, 3 s segments.
const SEGMENT_SECONDS: f64 = 3.0;

pub fn train_pca_knn(
    registry: &PluginRegistry,
    request: &TrainRequest,
    mut report_file: impl FnMut(&Path, Option<&PipelineError>) + Send,
) -> Result<pca_knn::TrainReport, TrainError> {
    let mut files = labelled_files(&request.data_dir)?;
    if let Some(split) = &request.split {
        let keep = read_split(split, "train")?;
        files.retain(|(f, _)| {
            f.strip_prefix(&request.data_dir).is_ok_and(|r| keep.contains(&r.to_string_lossy().into_owned()))
        });
    }
    let params = serde_json::json!({ "sample_rate": 22050, "n_fft": 2048, "hop_length": 512, "n_mels": 128 });
    let paths: Vec<PathBuf> = files.iter().map(|(f, _)| f.clone()).collect();
    let options = SegmentOptions { seconds: SEGMENT_SECONDS, padding: request.padding, ..SegmentOptions::default() };

    // (track, label, [segments × n_mels × frames]) per file, read in parallel.
    let mut tracks: Vec<(String, String, Vec<f32>)> = Vec::new();
    let (mut shape, mut failed) = ([0usize; 2], 0usize);
    crate::offline::for_each_file(
        &paths,
        request.jobs,
        || FeatureExtractor::new(registry, "mel", &params),
        // Training files have no length limit: they are read one segment at a time.
        |extractor, file| segment_features(extractor, file, options, f64::INFINITY),
        |file, result| match result {
            Ok((data, [_, n_features, frames])) => {
                shape = [n_features, frames];
                let label = files.iter().find(|(f, _)| f == file).map(|(_, l)| l.clone()).unwrap_or_default();
                let track = file.strip_prefix(&request.data_dir).unwrap_or(file).to_string_lossy().into_owned();
                tracks.push((track, label, data));
                report_file(file, None);
            }
            Err(error) => {
                failed += 1;
                report_file(file, Some(&error));
            }
        },
    )?;
    if tracks.is_empty() {
        return Err(TrainError::NoData(failed));
    }
    let per_segment = shape[0] * shape[1];
    let segments: Vec<pca_knn::TrainingSegment<'_>> = tracks
        .iter()
        .flat_map(|(track, label, data)| {
            data.chunks_exact(per_segment).map(move |features| pca_knn::TrainingSegment { track, label, features })
        })
        .collect();
    let (model, report) = pca_knn::train(&segments, shape[0], shape[1], &request.options)
        .map_err(|e| TrainError::Train(e.to_string()))?;
    let mut features = pca_knn::FeatureSpec::from_json("mel", &params, SEGMENT_SECONDS).map_err(TrainError::Train)?;
    features.padding = request.padding;
    let description = format!(
        "standardise -> PCA ({} components) -> kNN (k = {}{}), after report 000",
        model.n_components(),
        model.k(),
        if model.weighted() { ", distance-weighted" } else { "" }
    );
    let spec = pca_knn::FolderSpec { name: "pca-knn", version: &request.version, description: &description, features };
    pca_knn::write_model_folder(&model, &request.out_dir, &spec)
        .map_err(|e| TrainError::Write { dir: request.out_dir.clone(), reason: e.to_string() })?;
    Ok(report)
}
