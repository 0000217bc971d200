//! Any text as a `model.toml`: parse, validate, and read what the daemon reads from it.

#![no_main]

use libfuzzer_sys::fuzz_target;
use timbre_model_manifest::{Manifest, ModelFolder};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(manifest) = Manifest::parse(text) else { return };
    // What validation promises.
    assert!(!manifest.model.labels.is_empty());
    match (&manifest.features, &manifest.input) {
        (Some(features), None) => {
            assert!(manifest.model.embedding_size > 0);
            assert!(features.segment_seconds > 0.0 && features.segment_seconds <= 600.0);
        }
        (None, Some(input)) => {
            assert_eq!(manifest.model.embedding_size, 0, "a head has no embedding");
            assert_ne!(input.model, manifest.name);
        }
        _ => panic!("validation lets exactly one of [features] and [input] through"),
    }
    let folder = ModelFolder { dir: "/models/fuzz".into(), manifest };
    assert!(folder.model_path().starts_with("/models/fuzz"), "{}", folder.model_path().display());
    let _ = folder.plugin();
    assert!(folder.feature_params().is_object() || folder.manifest.is_head());
});
