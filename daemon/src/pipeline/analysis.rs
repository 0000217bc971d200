//! Analysing one piece of audio with every model: decode once per feature configuration,
//! extract features once, run each classifier on them, aggregate segments into a track.
//! Used by the offline commands and by the daemon's workers (one [`Analyzer`] per thread:
//! plugin instances are not shared between threads).

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::models::ModelCatalog;
use crate::pipeline::{
    AudioInput, BlockReader, Budget, Classifier, FeatureExtractor, PipelineError, SegmentOptions, SegmentStream,
    TrackPrediction,
};
use crate::pipeline::descriptors::{DescriptorResult, DescriptorSet};
use crate::pipeline::heads::Head;
use crate::plugin_host::{PluginError, PluginRegistry};

/// Segments sent to the plugins per call: large enough to amortise the call,
/// small enough that memory stays flat on long files.
const BATCH_SEGMENTS: usize = 8;

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
    /// Each descriptor plugin's values (or error), from the same decode.
    pub descriptors: Vec<DescriptorResult>,
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
    /// Heads, each run on its upstream model's track prediction.
    heads: Vec<Head>,
    /// Whether the first group is the offline commands' summary group (no models need it).
    summary_group: bool,
    /// Every loaded descriptor plugin, fed by the first decode of each track.
    descriptors: DescriptorSet,
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
        let summary = FeatureGroup {
            extractor: FeatureExtractor::new(registry, plugin, config)?,
            options,
            classifiers: Vec::new(),
        };
        let descriptors = DescriptorSet::load(registry);
        let mut analyzer = Analyzer { groups: vec![summary], heads: Vec::new(), summary_group: true, descriptors };
        analyzer.add_models(registry, catalog, options)?;
        Ok(analyzer)
    }

    /// Groups for the models only: what the daemon runs.
    pub fn for_models(registry: &PluginRegistry, catalog: &ModelCatalog) -> Result<Self, PluginError> {
        let descriptors = DescriptorSet::load(registry);
        let mut analyzer = Analyzer { groups: Vec::new(), heads: Vec::new(), summary_group: false, descriptors };
        analyzer.add_models(registry, catalog, SegmentOptions::default())?;
        Ok(analyzer)
    }

    fn add_models(
        &mut self,
        registry: &PluginRegistry,
        catalog: &ModelCatalog,
        options: SegmentOptions,
    ) -> Result<(), PluginError> {
        for head in catalog.heads() {
            self.heads.push(Head::new(head, registry)?);
        }
        for model in catalog.feature_models() {
            let (spec, features) = (model.spec, model.features);
            let extractor = FeatureExtractor::new(registry, &features.plugin, &spec.folder.feature_params())?;
            let options = SegmentOptions { seconds: features.segment_seconds, padding: features.padding, ..options };
            let classifier = Classifier::new(spec, registry)?;
            let same = |g: &&mut FeatureGroup| {
                g.extractor.name() == extractor.name() && g.extractor.info() == extractor.info() && g.options == options
            };
            match self.groups.iter_mut().find(same) {
                Some(group) => group.classifiers.push(classifier),
                None => self.groups.push(FeatureGroup { extractor, options, classifiers: vec![classifier] }),
            }
        }
        Ok(())
    }

    /// Leave the descriptor plugins out (`analysis.descriptors = false`).
    pub fn without_descriptors(mut self) -> Self {
        self.descriptors = DescriptorSet::default();
        self
    }

    /// `(plugin, version)` of each descriptor plugin this analyzer runs.
    pub fn descriptor_versions(&self) -> Vec<(String, String)> {
        self.descriptors.versions()
    }

    pub fn analyze(&mut self, path: &Path) -> Result<Analysis, PipelineError> {
        self.analyze_input(&AudioInput::File(path.to_path_buf()), None, Budget::UNLIMITED)
    }

    /// Analyse `input` with the models named in `models` (all when `None`), within `budget`.
    /// Groups whose models are all left out are not run at all: no decode, no features.
    pub fn analyze_input(
        &mut self,
        input: &AudioInput,
        models: Option<&[String]>,
        budget: Budget,
    ) -> Result<Analysis, PipelineError> {
        let result = self.analyze_inner(input, models, budget);
        let descriptors = if self.descriptors.is_empty() { Vec::new() } else { self.descriptors.finish() };
        Ok(Analysis { descriptors, ..result? })
    }

    fn analyze_inner(
        &mut self,
        input: &AudioInput,
        models: Option<&[String]>,
        budget: Budget,
    ) -> Result<Analysis, PipelineError> {
        let requested = |name: &str| models.is_none_or(|m| m.iter().any(|w| w == name));
        // A head asked for needs its upstream model run, even when that was not asked for.
        let upstreams: Vec<String> =
            self.heads.iter().filter(|h| requested(h.name())).map(|h| h.upstream().to_string()).collect();
        let wanted = |name: &str| requested(name) || upstreams.iter().any(|u| u == name);
        let mut predictions = Vec::new();
        let mut primary = None;
        for (index, group) in self.groups.iter_mut().enumerate() {
            let summarise = index == 0 && self.summary_group;
            if !summarise && !group.classifiers.iter().any(|c| wanted(c.name())) {
                continue;
            }
            // The first decode feeds the descriptor plugins too.
            let descriptors = if primary.is_none() { Some(&mut self.descriptors) } else { None };
            let result = group.run(input, summarise, &wanted, budget, descriptors)?;
            predictions.extend(result.predictions.iter().cloned());
            if primary.is_none() {
                primary = Some(result);
            }
        }
        let primary = match primary {
            Some(primary) => primary.analysis,
            // No model asked for: still check the audio and measure it (and describe it).
            None => probe(input, budget, &mut self.descriptors)?,
        };
        for head in self.heads.iter_mut().filter(|h| requested(h.name())) {
            let Some(upstream) = predictions.iter().find(|p: &&TrackPrediction| p.model == head.upstream()) else {
                continue;
            };
            let prediction = head
                .predict(upstream)
                .map_err(|source| PipelineError::Plugin { path: input.name().to_path_buf(), source })?;
            predictions.push(prediction);
        }
        predictions.retain(|p| requested(&p.model));
        Ok(Analysis { predictions, ..primary })
    }

    /// Names of the models this analyzer runs, in catalog order within each group, then the heads.
    pub fn model_names(&self) -> Vec<String> {
        let models = self.groups.iter().flat_map(|g| g.classifiers.iter().map(|c| c.name().to_string()));
        models.chain(self.heads.iter().map(|h| h.name().to_string())).collect()
    }
}

/// Decode `input` without extracting features: its duration and format.
fn probe(input: &AudioInput, budget: Budget, descriptors: &mut DescriptorSet) -> Result<Analysis, PipelineError> {
    let mut reader = BlockReader::open(input, budget.max_seconds)?;
    while reader.next_mono()?.is_some() {
        if !descriptors.is_empty() {
            let info = reader.info();
            descriptors.push(reader.last_interleaved(), info.sample_rate, info.channels);
        }
        if (budget.cancelled)() {
            return Err(PipelineError::Cancelled { path: input.name().to_path_buf() });
        }
    }
    let info = reader.info().clone();
    Ok(Analysis {
        path: input.name().to_path_buf(),
        duration_s: reader.frames_decoded() as f64 / info.sample_rate.max(1) as f64,
        sample_rate: info.sample_rate,
        channels: info.channels,
        codec: info.codec,
        segments: 0,
        segment_s: 0.0,
        features: FeatureSummary {
            plugin: String::new(),
            sample_rate: 0,
            shape: [0, 0],
            mean: 0.0,
            std: 0.0,
            min: 0.0,
            max: 0.0,
        },
        predictions: Vec::new(),
        descriptors: Vec::new(),
    })
}

struct GroupResult {
    analysis: Analysis,
    predictions: Vec<TrackPrediction>,
}

impl FeatureGroup {
    fn run(
        &mut self,
        input: &AudioInput,
        summarise: bool,
        wanted: &dyn Fn(&str) -> bool,
        budget: Budget,
        descriptors: Option<&mut DescriptorSet>,
    ) -> Result<GroupResult, PipelineError> {
        let mut stream = SegmentStream::open(input, self.extractor.sample_rate(), self.options, budget.max_seconds)?;
        match descriptors {
            Some(set) if !set.is_empty() => {
                stream = stream.with_descriptors(std::mem::take(set));
                let result = self.run_stream(&mut stream, input, summarise, wanted, budget);
                *set = stream.take_descriptors().unwrap_or_default();
                result
            }
            _ => self.run_stream(&mut stream, input, summarise, wanted, budget),
        }
    }

    fn run_stream(
        &mut self,
        stream: &mut SegmentStream,
        input: &AudioInput,
        summarise: bool,
        wanted: &dyn Fn(&str) -> bool,
        budget: Budget,
    ) -> Result<GroupResult, PipelineError> {
        let path = input.name();
        let plugin_error = |source| PipelineError::Plugin { path: path.to_path_buf(), source };
        let samples = stream.segment_len();
        let mut classifiers: Vec<&mut Classifier> = self.classifiers.iter_mut().filter(|c| wanted(c.name())).collect();
        let mut tracks: Vec<_> = classifiers.iter().map(|c| c.track()).collect();
        let mut stats = Stats::default();
        let (mut shape, mut segments) = ([0, 0], 0);
        let mut batch = Vec::with_capacity(BATCH_SEGMENTS * samples);
        loop {
            if (budget.cancelled)() {
                return Err(PipelineError::Cancelled { path: path.to_path_buf() });
            }
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
                for (classifier, track) in classifiers.iter_mut().zip(&mut tracks) {
                    let (probabilities, embedding) = classifier.classify(&features).map_err(plugin_error)?;
                    track.add(&probabilities, &embedding);
                }
                batch.clear();
            }
            if end {
                break;
            }
        }
        if segments == 0 {
            // Nothing reached the models: answering with all-zero labels would be a lie.
            let kind = crate::pipeline::DecodeErrorKind::NoAudio;
            return Err(crate::pipeline::DecodeError { path: path.to_path_buf(), kind }.into());
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
            descriptors: Vec::new(),
        };
        Ok(GroupResult { analysis, predictions: tracks.into_iter().map(|t| t.finish()).collect() })
    }
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
