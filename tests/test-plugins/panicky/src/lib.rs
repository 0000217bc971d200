//! A feature plugin that panics in `process` (and in `create` when asked to), so tests
//! can check that a panic never crosses the ABI boundary.

use timbre_plugin_sdk::{export_plugin, Error, Kind, Output, Plugin, TensorView};

pub struct Panicky;

impl Plugin for Panicky {
    const NAME: &'static std::ffi::CStr = c"panicky";
    const VERSION: &'static std::ffi::CStr = c"0.0.1";
    const KIND: Kind = Kind::Feature;
    const METADATA_JSON: &'static std::ffi::CStr = c"{\"description\":\"panics on purpose\"}";

    fn create(config: &serde_json::Value) -> Result<Self, Error> {
        if config.get("panic_in_create").and_then(|v| v.as_bool()) == Some(true) {
            panic!("asked to panic in create");
        }
        Ok(Panicky)
    }

    fn info(&self) -> serde_json::Value {
        serde_json::json!({ "sample_rate": 22050 })
    }

    fn process(&mut self, input: TensorView<'_>) -> Result<Output, Error> {
        panic!("deliberate panic on a batch of shape {:?}", input.shape);
    }
}

export_plugin!(Panicky);
