//! The head stage: models whose input is another model's track embedding. The upstream model
//! runs once per track, as part of its feature group; each head that reads it gets its
//! embedding afterwards.

use timbre_model_manifest::OutputKind;

use crate::models::ModelSpec;
use crate::pipeline::TrackPrediction;
use crate::plugin_host::{PluginError, PluginInstance, PluginRegistry};

pub struct Head {
    name: String,
    upstream: String,
    kind: OutputKind,
    labels: Vec<String>,
    instance: PluginInstance,
}

impl Head {
    pub fn new(spec: &ModelSpec, registry: &PluginRegistry) -> Result<Self, PluginError> {
        let manifest = &spec.folder.manifest;
        Ok(Head {
            name: manifest.name.clone(),
            upstream: spec.upstream().unwrap_or_default().to_string(),
            kind: manifest.model.kind,
            labels: manifest.model.labels.clone(),
            instance: spec.instantiate(registry)?,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The model whose embedding this head reads.
    pub fn upstream(&self) -> &str {
        &self.upstream
    }

    /// The head's labels for the track the upstream prediction describes. A head has no
    /// segments and no embedding of its own.
    pub fn predict(&mut self, upstream: &TrackPrediction) -> Result<TrackPrediction, PluginError> {
        let output = self.instance.process(&upstream.embedding, &[1, upstream.embedding.len()])?;
        if output.values.shape != [1, self.labels.len()] {
            return Err(PluginError::BadOutput {
                plugin: self.name.clone(),
                reason: format!(
                    "probabilities have shape {:?}, expected [1, {}]",
                    output.values.shape,
                    self.labels.len()
                ),
            });
        }
        Ok(TrackPrediction {
            model: self.name.clone(),
            kind: self.kind,
            labels: self.labels.clone(),
            segment_seconds: upstream.segment_seconds,
            probabilities: output.values.data,
            segments: Vec::new(),
            embedding: Vec::new(),
        })
    }
}
