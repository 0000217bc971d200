//! `onnx`: a classifier plugin that runs a model folder (`model.onnx` + `model.toml`) on
//! ONNX Runtime, so a new model ships as files, without native code.
//!
//! Config: `{"model_dir": …, "runtime_library": …/libonnxruntime.so, "execution_provider":
//! "auto" | "cpu" | "cuda", "intra_threads": 1, "graph_optimization": "disable" | "basic" |
//! "extended" | "all"}`. The host resolves `runtime_library`.
//! Input `[segments, n_mels, frames]`, or `[segments, frames, n_mels]` for a model whose
//! features are time-major (the feature plugin lays them out; this plugin passes them through);
//! output probabilities `[segments, labels]` (classes or tags, as the manifest's `kind` says) and
//! the embedding `[segments, embedding_size]`.

pub mod model;
pub mod runtime;

use std::path::PathBuf;

use serde::Deserialize;
use timbre_plugin_sdk::{export_plugin, Error, Kind, Output, Plugin, Tensor, TensorView};

pub use model::OnnxModel;
pub use runtime::{ExecutionProvider, GraphOptimization};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OnnxConfig {
    model_dir: PathBuf,
    runtime_library: PathBuf,
    #[serde(default)]
    execution_provider: ExecutionProvider,
    #[serde(default = "one")]
    intra_threads: usize,
    #[serde(default)]
    graph_optimization: GraphOptimization,
}

fn one() -> usize {
    1
}

pub struct OnnxPlugin {
    model: OnnxModel,
    /// As configured, reported in `info` so a benchmark can say what it ran with.
    intra_threads: usize,
    graph_optimization: GraphOptimization,
}

impl Plugin for OnnxPlugin {
    const NAME: &'static std::ffi::CStr = c"onnx";
    const VERSION: &'static std::ffi::CStr = c"0.1.0";
    const KIND: Kind = Kind::Classifier;
    const METADATA_JSON: &'static std::ffi::CStr = c"{\"description\":\"runs a model folder (model.onnx + model.toml) on ONNX Runtime\",\"config\":{\"model_dir\":\"required\",\"runtime_library\":\"required\",\"execution_provider\":\"auto|cpu|cuda\",\"intra_threads\":1,\"graph_optimization\":\"disable|basic|extended|all\"}}";

    fn create(config: &serde_json::Value) -> Result<Self, Error> {
        let config: OnnxConfig =
            serde_json::from_value(config.clone()).map_err(|e| Error::config(format!("onnx: {e}")))?;
        if config.intra_threads == 0 || config.intra_threads > 256 {
            return Err(Error::config("onnx: intra_threads must be in 1..=256"));
        }
        let model = OnnxModel::open(
            &config.model_dir,
            &config.runtime_library,
            config.execution_provider,
            config.intra_threads,
            config.graph_optimization,
        )
        .map_err(Error::config)?;
        Ok(OnnxPlugin { model, intra_threads: config.intra_threads, graph_optimization: config.graph_optimization })
    }

    fn info(&self) -> serde_json::Value {
        let manifest = &self.model.folder.manifest;
        serde_json::json!({
            "model": manifest.name,
            "version": manifest.version,
            "kind": manifest.model.kind,
            "labels": manifest.model.labels,
            "embedding_size": manifest.model.embedding_size,
            "execution_provider": self.model.provider,
            "intra_threads": self.intra_threads,
            "graph_optimization": self.graph_optimization,
            "features": manifest.features.as_ref().map(|f| serde_json::json!({
                "plugin": f.plugin,
                "params": self.model.folder.feature_params(),
                "segment_seconds": f.segment_seconds,
            })),
        })
    }

    fn process(&mut self, input: TensorView<'_>) -> Result<Output, Error> {
        let [segments, n_features, frames] = *input.shape else {
            return Err(Error::invalid_input(format!(
                "onnx: expected [segments, n_features, frames], got {:?}",
                input.shape
            )));
        };
        let prediction = self.model.predict(input.data, [segments, n_features, frames]).map_err(Error::process)?;
        let classes = self.model.folder.manifest.model.labels.len();
        let dim = self.model.folder.manifest.model.embedding_size;
        Ok(Output {
            values: Tensor::new(prediction.probabilities, vec![segments, classes]),
            embedding: Some(Tensor::new(prediction.embedding, vec![segments, dim])),
        })
    }
}

export_plugin!(OnnxPlugin);
