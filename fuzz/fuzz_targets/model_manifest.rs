//! Any text as a `model.toml`: parse, validate, and read what the daemon reads from it.

#![no_main]

use libfuzzer_sys::fuzz_target;
use timbre_model_manifest::{Manifest, ModelFolder};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(manifest) = Manifest::parse(text) else { return };
    // What validation promises.
    assert!(!manifest.model.labels.is_empty());
    assert!(manifest.model.embedding_size > 0);
    assert!(manifest.features.segment_seconds > 0.0 && manifest.features.segment_seconds <= 600.0);
    let folder = ModelFolder { dir: "/models/fuzz".into(), manifest };
    assert!(folder.model_path().starts_with("/models/fuzz"), "{}", folder.model_path().display());
    let _ = folder.plugin();
    assert!(folder.feature_params().is_object());
});
