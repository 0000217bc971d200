//! The `pca-knn` classifier plugin: a model folder loaded by `timbre-pca-knn`, served through
//! the plugin ABI. Configured with `{"model_dir": "…"}`.
//!
//! Input `[segments, n_mels, frames]` log-mel; output probabilities `[segments, classes]` (the
//! vote shares of the `k` nearest training segments) and an embedding `[segments,
//! n_components]` (the PCA coordinates). Only this crate calls `export_plugin!`: everything
//! else, the trainer included, is in the library, which any binary can link.

use std::path::PathBuf;

use serde::Deserialize;
use timbre_pca_knn::{load_model_folder, LoadedFolder, Model};
use timbre_plugin_sdk::{export_plugin, Error, Kind, Output, Plugin, Tensor, TensorView};

/// The plugin's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PcaKnnConfig {
    /// The model folder: `model.toml` plus the model file it names.
    pub model_dir: PathBuf,
}

/// One plugin instance: a loaded, checked model folder.
pub struct PcaKnnPlugin {
    folder: LoadedFolder,
}

/// An error and its causes, one line, for the plugin's flat error message.
fn chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

impl PcaKnnPlugin {
    pub fn model(&self) -> &Model {
        &self.folder.model
    }
}

impl Plugin for PcaKnnPlugin {
    const NAME: &'static std::ffi::CStr = c"pca-knn";
    const VERSION: &'static std::ffi::CStr = c"0.1.0";
    const KIND: Kind = Kind::Classifier;
    const METADATA_JSON: &'static std::ffi::CStr = c"{\"description\":\"standardise, PCA, k-nearest neighbours (report 000)\",\"input\":\"[segments, n_mels, frames] log-mel\",\"output\":\"probabilities [segments, classes] (neighbour vote shares), embedding [segments, n_components] (PCA coordinates)\",\"config\":{\"model_dir\":\"folder with model.toml and the model file it names (required)\"}}";

    fn create(config: &serde_json::Value) -> Result<Self, Error> {
        let config: PcaKnnConfig = serde_json::from_value(config.clone()).map_err(|e| {
            Error::config(format!("pca-knn: {e}; the configuration is {{\"model_dir\": \"<folder with model.toml>\"}}"))
        })?;
        let folder = load_model_folder(&config.model_dir).map_err(|e| Error::config(chain(&e)))?;
        Ok(PcaKnnPlugin { folder })
    }

    fn info(&self) -> serde_json::Value {
        let model = &self.folder.model;
        let manifest = &self.folder.manifest;
        serde_json::json!({
            "model_dir": self.folder.dir.display().to_string(),
            "name": manifest.name,
            "version": manifest.version,
            "description": manifest.description,
            "labels": model.labels(),
            "embedding_size": model.n_components(),
            "n_features": model.n_features(),
            "frames": model.frames(),
            "features": manifest.features,
            "k": model.k(),
            "weighted": model.weighted(),
            "training_segments": model.training_segments(),
        })
    }

    fn process(&mut self, input: TensorView<'_>) -> Result<Output, Error> {
        let model = &self.folder.model;
        let (n_features, frames) = (model.n_features(), model.frames());
        let segments = match *input.shape {
            [segments, f, t] if f == n_features && t == frames => segments,
            ref shape => {
                return Err(Error::invalid_input(format!(
                    "pca-knn ({}): expected input [segments, {n_features}, {frames}], got {shape:?}",
                    self.folder.manifest.name
                )))
            }
        };
        if let Some(i) = input.data.iter().position(|x| !x.is_finite()) {
            return Err(Error::invalid_input(format!(
                "pca-knn: input value {i} (segment {}) is not finite",
                i / model.segment_len().max(1)
            )));
        }
        let result =
            model.try_classify(input.data, segments).map_err(|e| Error::invalid_input(format!("pca-knn: {e}")))?;
        Ok(Output {
            values: Tensor::new(result.probabilities, vec![segments, model.labels().len()]),
            embedding: Some(Tensor::new(result.embeddings, vec![segments, model.n_components()])),
        })
    }
}

export_plugin!(PcaKnnPlugin);

#[cfg(test)]
mod tests;
