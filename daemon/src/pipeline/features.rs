//! The feature stage: a feature plugin instance, fed batches of segments.

use crate::plugin_host::{PluginError, PluginInstance, PluginKind, PluginRegistry};

/// Features for a batch of segments, `[segments, n_features, frames]`, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureBatch {
    pub data: Vec<f32>,
    pub segments: usize,
    pub n_features: usize,
    pub frames: usize,
}

impl FeatureBatch {
    /// The `[n_features, frames]` matrix of one segment.
    pub fn segment(&self, index: usize) -> &[f32] {
        let size = self.n_features * self.frames;
        &self.data[index * size..(index + 1) * size]
    }
}

/// A feature plugin instance that knows the sample rate it wants.
pub struct FeatureExtractor {
    instance: PluginInstance,
    sample_rate: u32,
}

impl FeatureExtractor {
    pub fn new(registry: &PluginRegistry, name: &str, config: &serde_json::Value) -> Result<Self, PluginError> {
        let instance = registry.instantiate(PluginKind::Feature, name, config)?;
        let sample_rate = instance
            .info()
            .get("sample_rate")
            .and_then(serde_json::Value::as_u64)
            .and_then(|r| u32::try_from(r).ok())
            .filter(|&r| r > 0)
            .ok_or_else(|| PluginError::BadOutput {
                plugin: name.to_string(),
                reason: "instance_info has no positive integer `sample_rate`".to_string(),
            })?;
        Ok(FeatureExtractor { instance, sample_rate })
    }

    pub fn name(&self) -> &str {
        self.instance.name()
    }

    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    pub fn info(&self) -> &serde_json::Value {
        self.instance.info()
    }

    /// Extract features of `segments` signals of `samples` each, laid end to end in `pcm`.
    pub fn extract(&mut self, pcm: &[f32], segments: usize, samples: usize) -> Result<FeatureBatch, PluginError> {
        let output = self.instance.process(pcm, &[segments, samples])?;
        match output.values.shape[..] {
            [s, n_features, frames] if s == segments => {
                Ok(FeatureBatch { data: output.values.data, segments, n_features, frames })
            }
            ref shape => Err(PluginError::BadOutput {
                plugin: self.name().to_string(),
                reason: format!("expected [{segments}, n_features, frames], got {shape:?}"),
            }),
        }
    }
}
