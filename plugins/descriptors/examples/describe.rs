//! Describe audio files: one JSON line per file with tempo, key, loudness and the seconds the
//! analysis took (decoding not counted), on one thread. Used by `bench/descriptors.py`.
//!
//! cargo run --release -p timbre-descriptors --example describe -- FILE...

#[path = "../tests/common/mod.rs"]
mod common;

use timbre_descriptors::{analyse, Config};

fn main() {
    for file in std::env::args().skip(1) {
        let audio = common::decode(std::path::Path::new(&file));
        let started = std::time::Instant::now();
        let d = analyse(&Config::default(), audio.rate, audio.channels, &audio.samples).expect("analyse");
        let seconds = started.elapsed().as_secs_f64();
        let line = serde_json::json!({
            "file": file,
            "bpm": d.tempo.map(|t| t.bpm),
            "bpm_confidence": d.tempo.map(|t| t.confidence),
            "key": d.key.map(|k| k.name()),
            "key_strength": d.key.map(|k| k.strength),
            "loudness_lufs": d.loudness.integrated_lufs,
            "true_peak_dbtp": d.loudness.true_peak_dbtp,
            "seconds": seconds,
        });
        println!("{line}");
    }
}
