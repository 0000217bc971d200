//! `timbred features`: one `<stem>.npy` per input: whole-file features `[n_features, frames]`,
//! or, with segments, `[segments, n_features, frames]` cut exactly as analysis cuts them
//! (so models train on the same numbers they are served).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::pipeline::{decode_whole, AudioInput, FeatureExtractor, PipelineError, SegmentOptions, SegmentStream};
use crate::plugin_host::{PluginError, PluginRegistry};

#[derive(Debug, Clone)]
pub struct FeaturesRequest {
    pub plugin: String,
    pub config: serde_json::Value,
    pub files: Vec<PathBuf>,
    pub out_dir: PathBuf,
    pub jobs: usize,
    /// Files longer than this are refused: whole-file features hold the signal in memory.
    pub max_seconds: f64,
    /// Cut into segments instead of treating the file as one signal.
    pub segments: Option<SegmentOptions>,
}

/// The result for one input file.
#[derive(Debug)]
pub enum FeaturesOutcome {
    Written { output: PathBuf, shape: Vec<usize> },
    Failed(String),
}

/// Extract features of every file. Config errors are fatal; per-file errors are reported
/// through `report` and the batch goes on.
pub fn run(
    registry: &PluginRegistry,
    request: &FeaturesRequest,
    report: impl FnMut(&PathBuf, FeaturesOutcome) + Send,
) -> Result<(), PluginError> {
    // Fail fast on a bad plugin name or config, before any worker starts.
    FeatureExtractor::new(registry, &request.plugin, &request.config)?;
    let outputs = output_paths(&request.files, &request.out_dir);
    crate::offline::for_each_file(
        &request.files,
        request.jobs,
        || FeatureExtractor::new(registry, &request.plugin, &request.config),
        |extractor, file| match &outputs[file] {
            Err(message) => FeaturesOutcome::Failed(message.clone()),
            Ok(output) => match extract_file(extractor, file, output, request) {
                Ok(shape) => FeaturesOutcome::Written { output: output.clone(), shape },
                Err(error) => FeaturesOutcome::Failed(error.to_string()),
            },
        },
        report,
    )
}

fn extract_file(
    extractor: &mut FeatureExtractor,
    file: &Path,
    output: &Path,
    request: &FeaturesRequest,
) -> Result<Vec<usize>, PipelineError> {
    let plugin_error = |source| PipelineError::Plugin { path: file.to_path_buf(), source };
    let (data, shape) = match request.segments {
        None => {
            let (signal, _) = decode_whole(file, extractor.sample_rate(), request.max_seconds)?;
            let batch = extractor.extract(&signal, 1, signal.len()).map_err(plugin_error)?;
            (batch.data, vec![batch.n_features, batch.frames])
        }
        Some(options) => {
            let (data, shape) = segment_features(extractor, file, options, request.max_seconds)?;
            (data, shape.to_vec())
        }
    };
    crate::npy::write_f32(output, &data, &shape)
        .map_err(|e| PipelineError::Features { path: output.to_path_buf(), reason: format!("cannot write: {e}") })?;
    Ok(shape)
}

/// Features of every segment of `file`, cut as analysis cuts them: `[segments, n_features,
/// frames]`, row-major. Files longer than `max_seconds` are refused.
pub fn segment_features(
    extractor: &mut FeatureExtractor,
    file: &Path,
    options: SegmentOptions,
    max_seconds: f64,
) -> Result<(Vec<f32>, [usize; 3]), PipelineError> {
    let input = AudioInput::File(file.to_path_buf());
    let mut stream = SegmentStream::open(&input, extractor.sample_rate(), options, Some(max_seconds))?;
    let samples = stream.segment_len();
    let (mut data, mut shape) = (Vec::new(), [0, 0, 0]);
    while let Some(segment) = stream.next_segment()? {
        let batch = extractor
            .extract(&segment.samples, 1, samples)
            .map_err(|source| PipelineError::Plugin { path: file.to_path_buf(), source })?;
        shape = [shape[0] + 1, batch.n_features, batch.frames];
        data.extend_from_slice(&batch.data);
    }
    Ok((data, shape))
}

/// `<out_dir>/<stem>.npy` per input; a second input with the same stem is an error rather
/// than a silent overwrite of the first one's output.
fn output_paths(files: &[PathBuf], out_dir: &Path) -> HashMap<PathBuf, Result<PathBuf, String>> {
    let mut claimed: HashMap<PathBuf, &PathBuf> = HashMap::new();
    files
        .iter()
        .map(|file| {
            let stem = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "unnamed".into());
            let output = out_dir.join(format!("{stem}.npy"));
            let result = match claimed.get(&output) {
                Some(first) if *first != file => Err(format!(
                    "{}: its output {} would overwrite the one of {}; rename one of them",
                    file.display(),
                    output.display(),
                    first.display()
                )),
                _ => {
                    claimed.insert(output.clone(), file);
                    Ok(output)
                }
            };
            (file.clone(), result)
        })
        .collect()
}
