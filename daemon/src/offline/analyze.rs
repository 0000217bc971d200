//! `timbred analyze`: per file, what the pipeline sees (duration, source format, segments,
//! a feature summary) and what each model hears (track and segment predictions).

use std::path::PathBuf;

use crate::models::ModelCatalog;
use crate::pipeline::{PipelineError, SegmentOptions};
use crate::plugin_host::{PluginError, PluginRegistry};

pub use crate::pipeline::analysis::{Analysis, Analyzer, FeatureSummary};

#[derive(Debug, Clone)]
pub struct AnalyzeRequest {
    pub plugin: String,
    pub config: serde_json::Value,
    pub files: Vec<PathBuf>,
    pub segments: SegmentOptions,
    pub jobs: usize,
    /// Run the descriptor plugins as well.
    pub descriptors: bool,
}

pub fn run(
    registry: &PluginRegistry,
    catalog: &ModelCatalog,
    request: &AnalyzeRequest,
    report: impl FnMut(&PathBuf, Result<Analysis, PipelineError>) + Send,
) -> Result<(), PluginError> {
    let make = || {
        let analyzer = Analyzer::new(registry, &request.plugin, &request.config, request.segments, catalog)?;
        Ok(if request.descriptors { analyzer } else { analyzer.without_descriptors() })
    };
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
                serde_json::json!({ "model": p.model, "kind": p.kind, "labels": top_labels(&p.labels, &p.probabilities, top_k) });
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
                            "end_s": p.segment_end(i, analysis.duration_s),
                            "labels": top_labels(&p.labels, probabilities, top_k),
                        })
                    })
                    .collect();
            }
            prediction
        })
        .collect();
    let mut line = serde_json::json!({
        "path": analysis.path,
        "duration_s": analysis.duration_s,
        "sample_rate": analysis.sample_rate,
        "channels": analysis.channels,
        "codec": analysis.codec,
        "segments": analysis.segments,
        "segment_s": analysis.segment_s,
        "features": analysis.features,
        "predictions": predictions,
    });
    // The descriptors as top-level fields (absent when undefined), and any plugin's error.
    let summary = crate::pipeline::descriptors::Summary::of(&analysis.descriptors);
    if let (Some(object), serde_json::Value::Object(fields)) =
        (line.as_object_mut(), serde_json::to_value(&summary).expect("plain fields serialise"))
    {
        object.extend(fields.into_iter().filter(|(_, v)| !v.is_null()));
    }
    let errors: Vec<_> = analysis
        .descriptors
        .iter()
        .filter_map(|d| d.error.as_ref().map(|e| serde_json::json!({ "plugin": d.plugin, "error": e })))
        .collect();
    if !errors.is_empty() {
        line["descriptor_errors"] = errors.into();
    }
    line
}

/// The `k` most probable labels, most probable first (all of them when `k` is 0).
pub fn top_labels(labels: &[String], probabilities: &[f32], k: usize) -> Vec<serde_json::Value> {
    crate::pipeline::classify::ranked(probabilities, k)
        .into_iter()
        .map(|i| serde_json::json!({ "name": labels[i], "probability": probabilities[i] }))
        .collect()
}
