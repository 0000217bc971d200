//! `timbred analyze`: per file, what the pipeline sees (duration, source format, segments,
//! a feature summary) and what each model hears (track and segment predictions).

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::models::ModelCatalog;
use crate::pipeline::{Classifier, FeatureExtractor, PipelineError, SegmentOptions, SegmentStream, TrackPrediction};
use crate::plugin_host::{PluginError, PluginRegistry};

/// Segments sent to the plugins per call: large enough to amortise the call,
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
    pub predictions: Vec<TrackPrediction>,
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

/// One worker's plugins: feature extractors, each with the classifiers that read its output.
/// Models whose features resolve to the same configuration share one decode and one feature
/// pass per track.
pub struct Analyzer {
    groups: Vec<FeatureGroup>,
}

struct FeatureGroup {
    extractor: FeatureExtractor,
    options: SegmentOptions,
    classifiers: Vec<Classifier>,
}

impl Analyzer {
    /// The first group is the one the summary describes (`--plugin`, `--set`, `--segment-seconds`).
    pub fn new(
        registry: &PluginRegistry,
        plugin: &str,
        config: &serde_json::Value,
        options: SegmentOptions,
        catalog: &ModelCatalog,
    ) -> Result<Self, PluginError> {
        let mut groups = vec![FeatureGroup {
            extractor: FeatureExtractor::new(registry, plugin, config)?,
            options,
            classifiers: Vec::new(),
        }];
        for spec in &catalog.models {
            let features = &spec.folder.manifest.features;
            let extractor = FeatureExtractor::new(registry, &features.plugin, &spec.folder.feature_params())?;
            let options = SegmentOptions { seconds: features.segment_seconds, ..options };
            let classifier = Classifier::new(spec, registry)?;
            let same = |g: &&mut FeatureGroup| {
                g.extractor.name() == extractor.name() && g.extractor.info() == extractor.info() && g.options == options
            };
            match groups.iter_mut().find(same) {
                Some(group) => group.classifiers.push(classifier),
                None => groups.push(FeatureGroup { extractor, options, classifiers: vec![classifier] }),
            }
        }
        Ok(Analyzer { groups })
    }

    pub fn analyze(&mut self, path: &Path) -> Result<Analysis, PipelineError> {
        let mut predictions = Vec::new();
        let mut primary = None;
        for (index, group) in self.groups.iter_mut().enumerate() {
            let result = group.run(path, index == 0)?;
            predictions.extend(result.predictions.iter().cloned());
            if index == 0 {
                primary = Some(result);
            }
        }
        let primary = primary.expect("the summary group always exists");
        Ok(Analysis { predictions, ..primary.analysis })
    }
}

struct GroupResult {
    analysis: Analysis,
    predictions: Vec<TrackPrediction>,
}

impl FeatureGroup {
    fn run(&mut self, path: &Path, summarise: bool) -> Result<GroupResult, PipelineError> {
        let plugin_error = |source| PipelineError::Plugin { path: path.to_path_buf(), source };
        let mut stream = SegmentStream::open(path, self.extractor.sample_rate(), self.options)?;
        let samples = stream.segment_len();
        let mut tracks: Vec<_> = self.classifiers.iter().map(|c| c.track()).collect();
        let mut stats = Stats::default();
        let (mut shape, mut segments) = ([0, 0], 0);
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
                let features = self.extractor.extract(&batch, count, samples).map_err(plugin_error)?;
                shape = [features.n_features, features.frames];
                if summarise {
                    stats.add(&features.data);
                }
                for (classifier, track) in self.classifiers.iter_mut().zip(&mut tracks) {
                    let (probabilities, embedding) = classifier.classify(&features).map_err(plugin_error)?;
                    track.add(&probabilities, &embedding);
                }
                batch.clear();
            }
            if end {
                break;
            }
        }
        let source = stream.source().clone();
        let analysis = Analysis {
            path: path.to_path_buf(),
            duration_s: stream.decoded_seconds(),
            sample_rate: source.sample_rate,
            channels: source.channels,
            codec: source.codec,
            segments,
            segment_s: self.options.seconds,
            features: FeatureSummary {
                plugin: self.extractor.name().to_string(),
                sample_rate: self.extractor.sample_rate(),
                shape,
                mean: stats.mean(),
                std: stats.std(),
                min: stats.min,
                max: stats.max,
            },
            predictions: Vec::new(),
        };
        Ok(GroupResult { analysis, predictions: tracks.into_iter().map(|t| t.finish()).collect() })
    }
}

pub fn run(
    registry: &PluginRegistry,
    catalog: &ModelCatalog,
    request: &AnalyzeRequest,
    report: impl FnMut(&PathBuf, Result<Analysis, PipelineError>) + Send,
) -> Result<(), PluginError> {
    let make = || Analyzer::new(registry, &request.plugin, &request.config, request.segments, catalog);
    make()?;
    crate::offline::for_each_file(&request.files, request.jobs, make, |analyzer, file| analyzer.analyze(file), report)
}

/// The JSON line for one file, shaped like the proto's `ClassifyResponse`: each model's
/// `top_k` labels at track level, and per segment when asked.
pub fn to_json(analysis: &Analysis, top_k: usize, with_segments: bool) -> serde_json::Value {
    let predictions: Vec<_> = analysis
        .predictions
        .iter()
        .map(|p| {
            let mut prediction =
                serde_json::json!({ "model": p.model, "labels": top_labels(&p.labels, &p.probabilities, top_k) });
            if with_segments {
                let seconds = p.segment_seconds;
                prediction["segments"] = p
                    .segments
                    .iter()
                    .enumerate()
                    .map(|(i, probabilities)| {
                        serde_json::json!({
                            "index": i,
                            "start_s": i as f64 * seconds,
                            "end_s": ((i + 1) as f64 * seconds).min(analysis.duration_s),
                            "labels": top_labels(&p.labels, probabilities, top_k),
                        })
                    })
                    .collect();
            }
            prediction
        })
        .collect();
    serde_json::json!({
        "path": analysis.path,
        "duration_s": analysis.duration_s,
        "sample_rate": analysis.sample_rate,
        "channels": analysis.channels,
        "codec": analysis.codec,
        "segments": analysis.segments,
        "segment_s": analysis.segment_s,
        "features": analysis.features,
        "predictions": predictions,
    })
}

/// The `k` most probable labels, most probable first (all of them when `k` is 0).
pub fn top_labels(labels: &[String], probabilities: &[f32], k: usize) -> Vec<serde_json::Value> {
    let mut order: Vec<usize> = (0..labels.len()).collect();
    order.sort_by(|&a, &b| probabilities[b].total_cmp(&probabilities[a]));
    let k = if k == 0 { labels.len() } else { k.min(labels.len()) };
    order[..k].iter().map(|&i| serde_json::json!({ "name": labels[i], "probability": probabilities[i] })).collect()
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
