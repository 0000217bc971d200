//! The mel plugin on any parameters and any PCM, through its Rust `Plugin` implementation:
//! `create` with a JSON configuration, then `process` on a `[segments, samples]` tensor.
//!
//! Input layout: the first [`HEADER`] bytes choose the parameters (all zero: the defaults),
//! the rest is the PCM as little-endian f32.

#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use timbre_plugin_mel::{MelConfig, MelPlugin};
use timbre_plugin_sdk::{Plugin, TensorView};

const HEADER: usize = 128;

/// Each `None` keeps the default.
#[derive(Debug, Arbitrary)]
struct Params {
    sample_rate: Option<u32>,
    n_fft: Option<u32>,
    hop_length: Option<u32>,
    win_length: Option<Option<u32>>,
    center: Option<bool>,
    power: Option<f64>,
    n_mels: Option<u16>,
    fmin: Option<f64>,
    fmax: Option<Option<f64>>,
    htk: Option<bool>,
    slaney: Option<bool>,
    to_db: Option<bool>,
    reference: Option<f64>,
    amin: Option<f64>,
    top_db: Option<Option<f64>>,
    /// 0 to 3 segments; a 1-D `[samples]` tensor when `one_axis`.
    segments: u8,
    one_axis: bool,
}

/// The work of one `process` call the harness allows, in frames × FFT size. It grows linearly
/// with both; the parameters come from a model's `model.toml`, which the operator installs.
const MAX_WORK: usize = 1 << 24;

fuzz_target!(|data: &[u8]| {
    let (head, pcm) = data.split_at(data.len().min(HEADER));
    let Ok(p) = Params::arbitrary(&mut Unstructured::new(head)) else { return };
    let d = MelConfig::default();
    let config = MelConfig {
        sample_rate: p.sample_rate.unwrap_or(d.sample_rate),
        n_fft: p.n_fft.map_or(d.n_fft, |v| v as usize),
        hop_length: p.hop_length.map_or(d.hop_length, |v| v as usize),
        win_length: p.win_length.map_or(d.win_length, |v| v.map(|v| v as usize)),
        center: p.center.unwrap_or(d.center),
        power: p.power.unwrap_or(d.power),
        n_mels: p.n_mels.map_or(d.n_mels, usize::from),
        fmin: p.fmin.unwrap_or(d.fmin),
        fmax: p.fmax.unwrap_or(d.fmax),
        htk: p.htk.unwrap_or(d.htk),
        norm: p.slaney.map_or(d.norm, |s| s.then_some(timbre_plugin_mel::config::MelNorm::Slaney)),
        to_db: p.to_db.unwrap_or(d.to_db),
        reference: p.reference.unwrap_or(d.reference),
        amin: p.amin.unwrap_or(d.amin),
        top_db: p.top_db.unwrap_or(d.top_db),
        ..d
    };
    // The daemon hands the plugin its configuration as JSON, where NaN and infinities become
    // null (`Manifest::parse` refuses them in a model.toml; here they reach the plugin).
    let Ok(json) = serde_json::to_value(&config) else { return };
    let Ok(mut plugin) = MelPlugin::create(&json) else { return };
    let config: MelConfig =
        serde_json::from_value(plugin.info()["config"].clone()).expect("the plugin reports its configuration");
    assert!(config.validate().is_ok(), "the plugin runs with an invalid configuration: {config:?}");

    let samples: Vec<f32> = pcm.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    let segments = usize::from(p.segments % 4);
    // Shapes as the plugin boundary lets them through: their product is the data's length.
    let (shape, data): (Vec<usize>, &[f32]) = match (p.one_axis, segments) {
        (true, _) => (vec![samples.len()], &samples),
        (false, 0) => (vec![0, samples.len()], &[]),
        (false, n) => {
            let per = samples.len() / n;
            (vec![n, per], &samples[..n * per])
        }
    };
    let per_segment = *shape.last().unwrap_or(&0);
    let n_fft = config.n_fft;
    let hop = config.hop_length.max(1);
    let frames = (per_segment + n_fft) / hop + 1;
    if frames.saturating_mul(n_fft).saturating_mul(shape[0].max(1)) > MAX_WORK {
        return;
    }
    let Ok(output) = plugin.process(TensorView { data, shape: &shape }) else { return };
    let values = output.values;
    let batch = if shape.len() == 1 { 1 } else { shape[0] };
    assert_eq!(values.shape.len(), 3, "{:?}", values.shape);
    assert_eq!(values.shape[0], batch);
    assert_eq!(values.shape[1], config.n_mels);
    assert_eq!(values.shape.iter().product::<usize>(), values.data.len());
    assert!(output.embedding.is_none());
});
