//! Tiny in-process plugins for unit tests: a feature plugin and a classifier that need no
//! model file, no ONNX Runtime and no `.so`, registered with
//! [`PluginRegistry::register_static`](super::PluginRegistry::register_static).
//!
//! - `fake-features`: 8 kHz; each segment becomes two features (mean, root mean square),
//!   one frame. With `{"gate": NAME}` it waits while that gate is closed ([`close_gate`]),
//!   then takes 30 ms: tests hold a worker busy and see the order jobs are taken in.
//! - `fake-classifier`: labels `quiet` and `loud` from the RMS; the embedding is the two
//!   features; it panics on a segment whose mean is above 0.9 (a "panicking plugin").

use std::sync::Arc;

use timbre_model_manifest::{Manifest, ModelFolder};
use timbre_plugin_sdk::ffi::{PluginDescriptor, StaticDescriptor};
use timbre_plugin_sdk::{export, Error, Kind, Output, Plugin, Tensor, TensorView};

use super::PluginRegistry;
use crate::models::{ModelCatalog, ModelSpec};

pub const SAMPLE_RATE: u32 = 8000;

/// Gates closed by tests; a gated instance waits while its gate is in here.
static CLOSED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

pub fn close_gate(name: &str) {
    CLOSED.lock().unwrap_or_else(|p| p.into_inner()).push(name.to_string());
}

pub fn open_gate(name: &str) {
    CLOSED.lock().unwrap_or_else(|p| p.into_inner()).retain(|g| g != name);
}

/// A gate closed while this value lives: opened when it is dropped, so a test whose assert
/// fails (and unwinds) does not leave workers waiting at the gate for ever.
#[must_use = "the gate opens again when this is dropped"]
pub struct ClosedGate(String);

impl ClosedGate {
    pub fn new(name: &str) -> Self {
        close_gate(name);
        ClosedGate(name.to_string())
    }

    /// Open it now.
    pub fn open(self) {}
}

impl Drop for ClosedGate {
    fn drop(&mut self) {
        open_gate(&self.0);
    }
}

pub struct FakeFeatures {
    gate: Option<String>,
}

impl Plugin for FakeFeatures {
    const NAME: &'static std::ffi::CStr = c"fake-features";
    const VERSION: &'static std::ffi::CStr = c"1.0.0";
    const KIND: Kind = Kind::Feature;
    const METADATA_JSON: &'static std::ffi::CStr = c"{}";

    fn create(config: &serde_json::Value) -> Result<Self, Error> {
        Ok(FakeFeatures { gate: config.get("gate").and_then(|g| g.as_str()).map(str::to_string) })
    }

    fn info(&self) -> serde_json::Value {
        serde_json::json!({ "sample_rate": SAMPLE_RATE })
    }

    fn process(&mut self, input: TensorView<'_>) -> Result<Output, Error> {
        if let Some(gate) = &self.gate {
            while CLOSED.lock().unwrap_or_else(|p| p.into_inner()).contains(gate) {
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            std::thread::sleep(std::time::Duration::from_millis(30));
        }
        let [segments, samples] = input.shape[..] else {
            return Err(Error::invalid_input("expected [segments, samples]"));
        };
        let mut data = Vec::with_capacity(segments * 2);
        for segment in input.data.chunks(samples.max(1)).take(segments) {
            let n = segment.len().max(1) as f32;
            data.push(segment.iter().sum::<f32>() / n);
            data.push((segment.iter().map(|x| x * x).sum::<f32>() / n).sqrt());
        }
        Ok(Output { values: Tensor::new(data, vec![segments, 2, 1]), embedding: None })
    }
}

pub struct FakeClassifier;

impl Plugin for FakeClassifier {
    const NAME: &'static std::ffi::CStr = c"fake-classifier";
    const VERSION: &'static std::ffi::CStr = c"1.0.0";
    const KIND: Kind = Kind::Classifier;
    const METADATA_JSON: &'static std::ffi::CStr = c"{}";

    fn create(_: &serde_json::Value) -> Result<Self, Error> {
        Ok(FakeClassifier)
    }

    fn info(&self) -> serde_json::Value {
        serde_json::json!({ "execution_provider": "none" })
    }

    fn process(&mut self, input: TensorView<'_>) -> Result<Output, Error> {
        let segments = input.shape[0];
        let mut probabilities = Vec::with_capacity(segments * 2);
        for features in input.data.chunks(2).take(segments) {
            assert!(features[0] <= 0.9, "fake-classifier: a segment this loud is a bug (mean {})", features[0]);
            let loud = features[1].clamp(0.0, 1.0);
            probabilities.extend([1.0 - loud, loud]);
        }
        let embedding = Tensor::new(input.data[..segments * 2].to_vec(), vec![segments, 2]);
        Ok(Output { values: Tensor::new(probabilities, vec![segments, 2]), embedding: Some(embedding) })
    }
}

static FEATURES: StaticDescriptor = export::descriptor::<FakeFeatures>();
static CLASSIFIER: StaticDescriptor = export::descriptor::<FakeClassifier>();

pub fn features_descriptor() -> &'static PluginDescriptor {
    &FEATURES.0
}

pub fn classifier_descriptor() -> &'static PluginDescriptor {
    &CLASSIFIER.0
}

/// A registry holding both fakes.
pub fn registry() -> Arc<PluginRegistry> {
    let mut registry = PluginRegistry::default();
    registry.register_static(features_descriptor()).expect("fake-features");
    registry.register_static(classifier_descriptor()).expect("fake-classifier");
    Arc::new(registry)
}

/// A model named `name` run by the fakes, with 1 s segments.
pub fn model(name: &str) -> ModelSpec {
    gated_model(name, None)
}

/// A model whose feature instances wait at `gate` (see [`close_gate`]).
pub fn gated_model(name: &str, gate: Option<&str>) -> ModelSpec {
    let params = gate.map(|g| format!("params = {{ gate = \"{g}\" }}")).unwrap_or_default();
    let manifest = Manifest::parse(&format!(
        r#"
name = "{name}"
version = "1.0.0"
description = "a fake model for tests"

[features]
plugin = "fake-features"
segment_seconds = 1.0
{params}

[model]
plugin = "fake-classifier"
file = "none"
sha256 = "{zeros}"
input = "x"
probabilities = "p"
embedding = "e"
embedding_size = 2
labels = ["quiet", "loud"]
"#,
        zeros = "0".repeat(64)
    ))
    .expect("a valid manifest");
    let folder = ModelFolder { dir: std::path::PathBuf::from(format!("/fake/{name}")), manifest };
    ModelSpec { folder, plugin_config: serde_json::json!({}), info: serde_json::Value::Null }
}

/// A catalogue of fake models, in this order.
pub fn catalog(names: &[&str]) -> Arc<ModelCatalog> {
    Arc::new(ModelCatalog { models: names.iter().map(|n| model(n)).collect(), refused: Vec::new() })
}

/// `seconds` of a constant `level` at the fakes' rate, as an upload-like input.
pub fn tone(level: f32, seconds: f64) -> crate::pipeline::AudioInput {
    let samples = vec![level; (seconds * SAMPLE_RATE as f64) as usize];
    crate::pipeline::AudioInput::Pcm { name: "tone".into(), samples: samples.into(), sample_rate: SAMPLE_RATE }
}
