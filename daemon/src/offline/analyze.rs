//! `timbred analyze`: per file, what the pipeline sees: duration, source format,
//! segments, and a summary of the features. Later stages add predictions here.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::pipeline::{FeatureExtractor, PipelineError, SegmentOptions, SegmentStream};
use crate::plugin_host::{PluginError, PluginRegistry};

/// Segments sent to the feature plugin per call: large enough to amortise the call,
/// small enough that memory stays flat on long files.
const BATCH_SEGMENTS: usize = 8;

#[derive(Debug, Clone)]
pub struct AnalyzeRequest {
    pub plugin: String,
    pub config: serde_json::Value,
    pub files: Vec<PathBuf>,
    pub segments: SegmentOptions,
    pub jobs: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    pub path: PathBuf,
    pub duration_s: f64,
    pub sample_rate: u32,
    pub channels: usize,
    pub codec: String,
    pub segments: usize,
    pub segment_s: f64,
    pub features: FeatureSummary,
}

/// Statistics over every value of every segment's feature matrix.
#[derive(Debug, Clone, Serialize)]
pub struct FeatureSummary {
    pub plugin: String,
    pub sample_rate: u32,
    /// `[n_features, frames]` of one segment.
    pub shape: [usize; 2],
    pub mean: f64,
    pub std: f64,
    pub min: f64,
    pub max: f64,
}

pub fn run(
    registry: &PluginRegistry,
    request: &AnalyzeRequest,
    report: impl FnMut(&PathBuf, Result<Analysis, PipelineError>) + Send,
) -> Result<(), PluginError> {
    FeatureExtractor::new(registry, &request.plugin, &request.config)?;
    crate::offline::for_each_file(
        &request.files,
        request.jobs,
        || FeatureExtractor::new(registry, &request.plugin, &request.config),
        |extractor, file| analyze_file(extractor, file, request.segments),
        report,
    )
}

pub fn analyze_file(
    extractor: &mut FeatureExtractor,
    path: &Path,
    options: SegmentOptions,
) -> Result<Analysis, PipelineError> {
    let mut stream = SegmentStream::open(path, extractor.sample_rate(), options)?;
    let samples = stream.segment_len();
    let mut stats = Stats::default();
    let mut shape = [0, 0];
    let mut segments = 0;
    let mut batch = Vec::with_capacity(BATCH_SEGMENTS * samples);
    loop {
        let segment = stream.next_segment()?;
        let end = segment.is_none();
        if let Some(segment) = segment {
            batch.extend_from_slice(&segment.samples);
            segments += 1;
        }
        let count = batch.len() / samples;
        if count > 0 && (count == BATCH_SEGMENTS || end) {
            let features = extractor
                .extract(&batch, count, samples)
                .map_err(|source| PipelineError::Plugin { path: path.to_path_buf(), source })?;
            shape = [features.n_features, features.frames];
            stats.add(&features.data);
            batch.clear();
        }
        if end {
            break;
        }
    }
    let source = stream.source().clone();
    Ok(Analysis {
        path: path.to_path_buf(),
        duration_s: stream.decoded_seconds(),
        sample_rate: source.sample_rate,
        channels: source.channels,
        codec: source.codec,
        segments,
        segment_s: options.seconds,
        features: FeatureSummary {
            plugin: extractor.name().to_string(),
            sample_rate: extractor.sample_rate(),
            shape,
            mean: stats.mean(),
            std: stats.std(),
            min: stats.min,
            max: stats.max,
        },
    })
}

#[derive(Debug)]
struct Stats {
    count: u64,
    sum: f64,
    sum_sq: f64,
    min: f64,
    max: f64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats { count: 0, sum: 0.0, sum_sq: 0.0, min: f64::INFINITY, max: f64::NEG_INFINITY }
    }
}

impl Stats {
    fn add(&mut self, values: &[f32]) {
        for &v in values {
            let v = v as f64;
            self.count += 1;
            self.sum += v;
            self.sum_sq += v * v;
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
    }

    fn mean(&self) -> f64 {
        self.sum / self.count.max(1) as f64
    }

    fn std(&self) -> f64 {
        let mean = self.mean();
        (self.sum_sq / self.count.max(1) as f64 - mean * mean).max(0.0).sqrt()
    }
}
