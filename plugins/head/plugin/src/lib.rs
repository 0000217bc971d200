//! The `head` classifier plugin: a head folder (`model.toml` with `[input]`, `head.json`) loaded
//! by `timbre-head`, served through the plugin ABI. Configured with `{"model_dir": "…"}`.
//!
//! Input: upstream embeddings `[tracks, dim]` (the host hands it the upstream model's track
//! embedding). Output: class probabilities `[tracks, labels]`, and no embedding: a head
//! names labels, it is not a space to recommend in.

use std::path::PathBuf;

use serde::Deserialize;
use timbre_head::{load_head_folder, Head};
use timbre_plugin_sdk::{export_plugin, Error, Kind, Output, Plugin, Tensor, TensorView};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeadConfig {
    model_dir: PathBuf,
}

pub struct HeadPlugin {
    name: String,
    upstream: String,
    dir: PathBuf,
    head: Head,
}

impl Plugin for HeadPlugin {
    const NAME: &'static std::ffi::CStr = c"head";
    const VERSION: &'static std::ffi::CStr = c"0.1.0";
    const KIND: Kind = Kind::Classifier;
    const METADATA_JSON: &'static std::ffi::CStr = c"{\"description\":\"a head: standardise, then logistic regression or kNN, over another model's embedding\",\"input\":\"[tracks, dim] upstream embeddings\",\"output\":\"probabilities [tracks, labels]; no embedding\",\"config\":{\"model_dir\":\"folder with model.toml ([input] names the upstream model) and head.json (required)\"}}";

    fn create(config: &serde_json::Value) -> Result<Self, Error> {
        let config: HeadConfig = serde_json::from_value(config.clone()).map_err(|e| {
            Error::config(format!("head: {e}; the configuration is {{\"model_dir\": \"<head folder>\"}}"))
        })?;
        let (folder, head) = load_head_folder(&config.model_dir).map_err(|e| Error::config(e.to_string()))?;
        let upstream = folder.manifest.input.as_ref().map(|i| i.model.clone()).unwrap_or_default();
        Ok(HeadPlugin { name: folder.manifest.name, upstream, dir: config.model_dir, head })
    }

    fn info(&self) -> serde_json::Value {
        serde_json::json!({
            "model_dir": self.dir.display().to_string(),
            "name": self.name,
            "upstream": self.upstream,
            "labels": self.head.labels(),
            "input_size": self.head.dim(),
            "classifier": self.head.classifier().describe(),
        })
    }

    fn process(&mut self, input: TensorView<'_>) -> Result<Output, Error> {
        let dim = self.head.dim();
        let rows = match *input.shape {
            [rows, d] if d == dim => rows,
            ref shape => {
                return Err(Error::invalid_input(format!(
                    "head {}: expected [tracks, {dim}] ({} embeddings), got {shape:?}",
                    self.name, self.upstream
                )))
            }
        };
        let mut probabilities = Vec::with_capacity(rows * self.head.labels().len());
        for (row, embedding) in input.data.chunks_exact(dim.max(1)).take(rows).enumerate() {
            let p = self
                .head
                .predict(embedding)
                .map_err(|e| Error::invalid_input(format!("head {}: row {row}: {e}", self.name)))?;
            probabilities.extend(p);
        }
        Ok(Output { values: Tensor::new(probabilities, vec![rows, self.head.labels().len()]), embedding: None })
    }
}

export_plugin!(HeadPlugin);
