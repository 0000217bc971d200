//! Short-time Fourier transform, mel projection and `power_to_db`, frame by frame.
//! Computed in f64 so that the result tracks librosa's float64 path closely.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

use crate::config::MelConfig;
use crate::filterbank::{mel_filterbank, MelBand};

/// A reusable log-mel transform for one configuration. Not `Sync`: one per thread.
pub struct MelSpectrogram {
    config: MelConfig,
    window: Vec<f64>,
    bands: Vec<MelBand>,
    fft: Arc<dyn RealToComplex<f64>>,
    frame: Vec<f64>,
    spectrum: Vec<Complex<f64>>,
    power: Vec<f64>,
    scratch: Vec<Complex<f64>>,
}

impl MelSpectrogram {
    /// `config` must have passed [`MelConfig::validate`].
    pub fn new(config: MelConfig) -> Self {
        let fft = RealFftPlanner::<f64>::new().plan_fft_forward(config.n_fft);
        let window = padded_hann(config.win_length(), config.n_fft);
        let bands = mel_filterbank(&config);
        MelSpectrogram {
            frame: fft.make_input_vec(),
            spectrum: fft.make_output_vec(),
            scratch: fft.make_scratch_vec(),
            power: vec![0.0; config.n_fft / 2 + 1],
            config,
            window,
            bands,
            fft,
        }
    }

    pub fn config(&self) -> &MelConfig {
        &self.config
    }

    /// Number of frames for a signal of `samples` samples, or `None` if it is too short
    /// to hold one frame (only possible without centring).
    pub fn n_frames(&self, samples: usize) -> Option<usize> {
        let n_fft = self.config.n_fft;
        let padded = if self.config.center { samples + 2 * (n_fft / 2) } else { samples };
        (padded >= n_fft).then(|| 1 + (padded - n_fft) / self.config.hop_length)
    }

    /// Write the `[n_mels, frames]` matrix of `signal` into `out`, row-major.
    /// `out.len()` must be `n_mels * n_frames(signal.len())`.
    pub fn compute(&mut self, signal: &[f32], out: &mut [f32]) {
        let n_mels = self.config.n_mels;
        let frames = self.n_frames(signal.len()).unwrap_or(0);
        assert_eq!(out.len(), n_mels * frames, "output buffer has the wrong size");
        let pad = if self.config.center { self.config.n_fft / 2 } else { 0 };
        let mut mel = vec![0.0f64; n_mels * frames];

        for t in 0..frames {
            let start = (t * self.config.hop_length) as isize - pad as isize;
            for (i, (x, w)) in self.frame.iter_mut().zip(&self.window).enumerate() {
                let at = start + i as isize;
                let sample = if at >= 0 && (at as usize) < signal.len() { signal[at as usize] as f64 } else { 0.0 };
                *x = sample * w;
            }
            self.fft
                .process_with_scratch(&mut self.frame, &mut self.spectrum, &mut self.scratch)
                .expect("buffers are sized by the planner");
            let exponent = self.config.power / 2.0;
            for (p, c) in self.power.iter_mut().zip(&self.spectrum) {
                let energy = c.re * c.re + c.im * c.im;
                *p = if exponent == 1.0 { energy } else { energy.powf(exponent) };
            }
            for (m, band) in self.bands.iter().enumerate() {
                let bins = &self.power[band.start..band.start + band.weights.len()];
                mel[m * frames + t] = bins.iter().zip(&band.weights).map(|(p, w)| p * w).sum();
            }
        }

        if self.config.to_db {
            power_to_db(&mut mel, self.config.reference, self.config.amin, self.config.top_db);
        }
        for (o, v) in out.iter_mut().zip(&mel) {
            *o = *v as f32;
        }
    }
}

/// `librosa.power_to_db`, in place. `top_db` clips relative to the maximum of `values`.
pub fn power_to_db(values: &mut [f64], reference: f64, amin: f64, top_db: Option<f64>) {
    let offset = 10.0 * reference.max(amin).log10();
    let mut max = f64::NEG_INFINITY;
    for v in values.iter_mut() {
        *v = 10.0 * v.max(amin).log10() - offset;
        max = max.max(*v);
    }
    if let Some(top_db) = top_db {
        let floor = max - top_db;
        for v in values.iter_mut() {
            *v = v.max(floor);
        }
    }
}

/// A periodic Hann window of `win_length`, centred in `n_fft` zeros (librosa's `pad_center`).
fn padded_hann(win_length: usize, n_fft: usize) -> Vec<f64> {
    let mut window = vec![0.0; n_fft];
    let offset = (n_fft - win_length) / 2;
    for n in 0..win_length {
        let phase = 2.0 * std::f64::consts::PI * n as f64 / win_length as f64;
        window[offset + n] = 0.5 - 0.5 * phase.cos();
    }
    window
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centred_frame_count_matches_librosa() {
        let spec = MelSpectrogram::new(MelConfig::default());
        // librosa: 1 + len // hop when centred with an even n_fft.
        assert_eq!(spec.n_frames(66150), Some(1 + 66150 / 512));
        assert_eq!(spec.n_frames(0), Some(1));
    }

    #[test]
    fn uncentred_signal_shorter_than_a_frame_has_no_frames() {
        let spec = MelSpectrogram::new(MelConfig { center: false, ..MelConfig::default() });
        assert_eq!(spec.n_frames(2047), None);
        assert_eq!(spec.n_frames(2048), Some(1));
    }

    #[test]
    fn a_tone_peaks_in_the_band_that_holds_its_frequency() {
        let config = MelConfig::default();
        let sr = config.sample_rate as f64;
        let signal: Vec<f32> =
            (0..22050).map(|n| (2.0 * std::f64::consts::PI * 1000.0 * n as f64 / sr).sin() as f32).collect();
        let mut spec = MelSpectrogram::new(config.clone());
        let frames = spec.n_frames(signal.len()).unwrap_or_default();
        let mut out = vec![0.0; config.n_mels * frames];
        spec.compute(&signal, &mut out);
        let t = frames / 2;
        let loudest = (0..config.n_mels).max_by(|&a, &b| out[a * frames + t].total_cmp(&out[b * frames + t]));
        let band = mel_filterbank(&config)
            .iter()
            .enumerate()
            .max_by(|a, b| {
                let weight = |band: &MelBand| {
                    let bin = (1000.0 / (sr / config.n_fft as f64)).round() as usize;
                    bin.checked_sub(band.start).and_then(|i| band.weights.get(i)).copied().unwrap_or(0.0)
                };
                weight(a.1).total_cmp(&weight(b.1))
            })
            .map(|(i, _)| i);
        assert_eq!(loudest, band);
    }

    #[test]
    fn top_db_floors_values_relative_to_the_maximum() {
        let mut values = vec![1.0, 1e-3, 1e-12];
        power_to_db(&mut values, 1.0, 1e-10, Some(20.0));
        assert_eq!(values, vec![0.0, -20.0, -20.0]);
    }
}
