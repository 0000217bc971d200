//! `mel`: the log-mel spectrogram feature plugin.
//!
//! Input: PCM segments `[segments, samples]` at the configured sample rate.
//! Output: `[segments, n_mels, frames]` in dB, each segment transformed exactly
//! as `librosa.power_to_db(librosa.feature.melspectrogram(y=segment, ...))` would;
//! or, as configured, compressed as `log10(1 + C·S)` (musicnn's front end), cut to a fixed
//! number of frames, and laid out time-major (`[segments, frames, n_mels]`).

pub mod config;
pub mod filterbank;
pub mod spectrogram;

pub use config::{Layout, MelConfig};
pub use spectrogram::MelSpectrogram;

use timbre_plugin_sdk::{export_plugin, Error, Kind, Output, Plugin, Tensor, TensorView};

/// Longest segment one call accepts: ten minutes at 384 kHz, so a bad request cannot
/// make the plugin allocate without bound.
const MAX_SEGMENT_SAMPLES: usize = 384_000 * 600;

pub struct MelPlugin {
    spectrogram: MelSpectrogram,
}

impl Plugin for MelPlugin {
    const NAME: &'static std::ffi::CStr = c"mel";
    const VERSION: &'static std::ffi::CStr = c"0.1.0";
    const KIND: Kind = Kind::Feature;
    const METADATA_JSON: &'static std::ffi::CStr = c"{\"description\":\"log-mel spectrogram, librosa-compatible (power_to_db of melspectrogram)\",\"output\":\"[segments, n_mels, frames] (layout mel_major) or [segments, frames, n_mels] (time_major)\",\"defaults\":{\"sample_rate\":22050,\"n_fft\":2048,\"hop_length\":512,\"win_length\":null,\"center\":true,\"power\":2.0,\"n_mels\":128,\"fmin\":0.0,\"fmax\":null,\"htk\":false,\"norm\":\"slaney\",\"to_db\":true,\"ref\":1.0,\"amin\":1e-10,\"top_db\":80.0,\"pad_mode\":\"constant\",\"compression\":\"power_to_db\",\"compression_c\":10000.0,\"frames\":null,\"layout\":\"mel_major\"}}";

    fn create(config: &serde_json::Value) -> Result<Self, Error> {
        let config: MelConfig =
            serde_json::from_value(config.clone()).map_err(|e| Error::config(format!("mel: {e}")))?;
        config.validate().map_err(|e| Error::config(format!("mel: {e}")))?;
        Ok(MelPlugin { spectrogram: MelSpectrogram::new(config) })
    }

    fn info(&self) -> serde_json::Value {
        let config = self.spectrogram.config();
        serde_json::json!({
            "sample_rate": config.sample_rate,
            "n_features": config.n_mels,
            "hop_length": config.hop_length,
            "layout": config.layout,
            "config": config,
        })
    }

    fn process(&mut self, input: TensorView<'_>) -> Result<Output, Error> {
        let (segments, samples) = match *input.shape {
            [samples] => (1, samples),
            [segments, samples] => (segments, samples),
            ref shape => return Err(Error::invalid_input(format!("mel: expected [segments, samples], got {shape:?}"))),
        };
        if samples > MAX_SEGMENT_SAMPLES {
            return Err(Error::invalid_input(format!(
                "mel: a segment of {samples} samples exceeds {MAX_SEGMENT_SAMPLES}"
            )));
        }
        if let Some(i) = input.data.iter().position(|x| !x.is_finite()) {
            return Err(Error::invalid_input(format!("mel: sample {i} is not finite")));
        }
        let frames = self.spectrogram.output_frames(samples).ok_or_else(|| {
            Error::invalid_input(match self.spectrogram.config().frames {
                Some(wanted) => format!("mel: {samples} samples give fewer than the {wanted} frames configured"),
                None => format!("mel: {samples} samples is shorter than one uncentred frame"),
            })
        })?;
        let n_mels = self.spectrogram.config().n_mels;
        let per_segment = n_mels * frames;
        let mut out = vec![0.0f32; segments * per_segment];
        if samples > 0 {
            for (signal, dest) in input.data.chunks_exact(samples).zip(out.chunks_exact_mut(per_segment)) {
                self.spectrogram.compute(signal, dest);
            }
        } else {
            for dest in out.chunks_exact_mut(per_segment) {
                self.spectrogram.compute(&[], dest);
            }
        }
        let shape = match self.spectrogram.config().layout {
            Layout::MelMajor => vec![segments, n_mels, frames],
            Layout::TimeMajor => vec![segments, frames, n_mels],
        };
        Ok(Output { values: Tensor::new(out, shape), embedding: None })
    }
}

export_plugin!(MelPlugin);
