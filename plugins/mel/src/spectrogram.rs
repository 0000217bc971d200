//! Short-time Fourier transform, mel projection and compression (`power_to_db` or
//! `log10(1 + C·x)`), frame by frame.
//!
//! The default configuration runs in f32, as librosa does on the float32 audio that
//! `librosa.load` returns: an 80 dB range of power sits well above f32's rounding noise,
//! and f32 halves the FFT's cost. A configuration that asks for a deeper range (`power`
//! 1, or no `top_db`) runs in f64, where that noise would otherwise show; so does
//! `log10_1p`, which has no floor at all (it resolves power down to `1 / C`).

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::num_traits::Float;
use realfft::{FftNum, RealFftPlanner, RealToComplex};

use crate::config::{Compression, Layout, MelConfig, PadMode};
use crate::filterbank::{mel_filterbank, MelBand};

/// Deepest range of power, in dB below the maximum, that the f32 path resolves faithfully.
const F32_RANGE_DB: f64 = 100.0;

/// A reusable log-mel transform for one configuration. Not `Sync`: one per thread.
pub struct MelSpectrogram {
    config: MelConfig,
    transform: Precision,
}

enum Precision {
    Single(Transform<f32>),
    Double(Transform<f64>, Vec<f64>),
}

impl MelSpectrogram {
    /// `config` must have passed [`MelConfig::validate`].
    pub fn new(config: MelConfig) -> Self {
        let range_db = config.top_db.map(|top_db| top_db * 2.0 / config.power);
        let transform = match (config.compression, range_db) {
            (Compression::PowerToDb, Some(range)) if config.to_db && range <= F32_RANGE_DB => {
                Precision::Single(Transform::new(&config))
            }
            _ => Precision::Double(Transform::new(&config), Vec::new()),
        };
        MelSpectrogram { config, transform }
    }

    pub fn config(&self) -> &MelConfig {
        &self.config
    }

    /// Whether this configuration runs in f64.
    pub fn is_double_precision(&self) -> bool {
        matches!(self.transform, Precision::Double(..))
    }

    /// Number of frames the transform of a signal of `samples` samples has, or `None` if it
    /// is too short to hold one frame (only possible without centring).
    pub fn n_frames(&self, samples: usize) -> Option<usize> {
        let n_fft = self.config.n_fft;
        let padded = if self.config.center { samples + 2 * (n_fft / 2) } else { samples };
        (padded >= n_fft).then(|| 1 + (padded - n_fft) / self.config.hop_length)
    }

    /// Number of frames delivered for a signal of `samples` samples: [`Self::n_frames`], or
    /// the configured `frames` when the transform has at least that many; `None` otherwise.
    pub fn output_frames(&self, samples: usize) -> Option<usize> {
        let available = self.n_frames(samples)?;
        match self.config.frames {
            None => Some(available),
            Some(wanted) => (available >= wanted).then_some(wanted),
        }
    }

    /// Write the matrix of `signal` into `out`, row-major: `[n_mels, frames]`, or
    /// `[frames, n_mels]` for the time-major layout. `out.len()` must be
    /// `n_mels * output_frames(signal.len())`.
    pub fn compute(&mut self, signal: &[f32], out: &mut [f32]) {
        let frames = self.output_frames(signal.len()).unwrap_or(0);
        assert_eq!(out.len(), self.config.n_mels * frames, "output buffer has the wrong size");
        match &mut self.transform {
            Precision::Single(transform) => transform.compute(&self.config, signal, frames, out),
            Precision::Double(transform, buffer) => {
                buffer.clear();
                buffer.resize(out.len(), 0.0);
                transform.compute(&self.config, signal, frames, buffer);
                for (o, v) in out.iter_mut().zip(buffer.iter()) {
                    *o = *v as f32;
                }
            }
        }
    }
}

/// The transform at one float precision.
struct Transform<T: FftNum> {
    window: Vec<T>,
    bands: Vec<(usize, Vec<T>)>,
    fft: Arc<dyn RealToComplex<T>>,
    frame: Vec<T>,
    spectrum: Vec<Complex<T>>,
    power: Vec<T>,
    scratch: Vec<Complex<T>>,
}

impl<T: FftNum + Float> Transform<T> {
    fn new(config: &MelConfig) -> Self {
        let cast = |v: f64| T::from_f64(v).expect("every f64 converts to a float type");
        let fft = RealFftPlanner::<T>::new().plan_fft_forward(config.n_fft);
        Transform {
            window: padded_hann(config.win_length(), config.n_fft).into_iter().map(cast).collect(),
            bands: mel_filterbank(config)
                .into_iter()
                .map(|MelBand { start, weights }| (start, weights.into_iter().map(cast).collect()))
                .collect(),
            frame: fft.make_input_vec(),
            spectrum: fft.make_output_vec(),
            scratch: fft.make_scratch_vec(),
            power: vec![T::zero(); config.n_fft / 2 + 1],
            fft,
        }
    }

    fn compute(&mut self, config: &MelConfig, signal: &[f32], frames: usize, out: &mut [T]) {
        let cast = |v: f64| T::from_f64(v).expect("every f64 converts to a float type");
        let pad = if config.center { config.n_fft / 2 } else { 0 };
        let exponent = cast(config.power / 2.0);
        // Where value (band m, frame t) goes: `m * m_stride + t * t_stride`.
        let (m_stride, t_stride) = match config.layout {
            Layout::MelMajor => (frames, 1),
            Layout::TimeMajor => (1, config.n_mels),
        };

        for t in 0..frames {
            self.fill_frame(signal, (t * config.hop_length) as isize - pad as isize, config.pad_mode);
            self.fft
                .process_with_scratch(&mut self.frame, &mut self.spectrum, &mut self.scratch)
                .expect("buffers are sized by the planner");
            // Two loops, not a branch per bin: LLVM turns that branch into a select and
            // then calls powf for every bin even when the exponent is 1.
            for (p, c) in self.power.iter_mut().zip(&self.spectrum) {
                *p = c.re * c.re + c.im * c.im;
            }
            if exponent != T::one() {
                self.power.iter_mut().for_each(|p| *p = p.powf(exponent));
            }
            for (m, (start, weights)) in self.bands.iter().enumerate() {
                let bins = &self.power[*start..*start + weights.len()];
                out[m * m_stride + t * t_stride] =
                    bins.iter().zip(weights).fold(T::zero(), |sum, (&p, &w)| sum + p * w);
            }
        }

        match (config.to_db, config.compression) {
            (false, _) => {}
            (true, Compression::PowerToDb) => {
                power_to_db(out, cast(config.reference), cast(config.amin), config.top_db.map(cast))
            }
            (true, Compression::Log10OnePlus) => log10_1p(out, cast(config.compression_c)),
        }
    }

    /// Windowed samples `start .. start + n_fft` of the signal; outside it, zeros or the
    /// signal reflected about its end samples, as `pad_mode` says.
    fn fill_frame(&mut self, signal: &[f32], start: isize, pad_mode: PadMode) {
        let n_fft = self.frame.len() as isize;
        let lo = (-start).clamp(0, n_fft) as usize;
        let hi = (signal.len() as isize - start).clamp(lo as isize, n_fft) as usize;
        self.frame[..lo].fill(T::zero());
        self.frame[hi..].fill(T::zero());
        if hi > lo {
            let source = &signal[(start + lo as isize) as usize..(start + hi as isize) as usize];
            for ((x, &s), &w) in self.frame[lo..hi].iter_mut().zip(source).zip(&self.window[lo..hi]) {
                *x = T::from_f32(s).expect("f32 converts") * w;
            }
        }
        if pad_mode == PadMode::Reflect && !signal.is_empty() && (lo > 0 || hi < self.frame.len()) {
            let outside = (0..lo).chain(hi..self.frame.len());
            for i in outside {
                let s = signal[reflect(start + i as isize, signal.len())];
                self.frame[i] = T::from_f32(s).expect("f32 converts") * self.window[i];
            }
        }
    }
}

/// The index `numpy.pad(mode="reflect")` reads for position `i` of a signal of `len` samples
/// (`len > 0`): mirrored about the first and last samples, repeatedly when `i` is far out.
fn reflect(i: isize, len: usize) -> usize {
    if len == 1 {
        return 0;
    }
    let period = 2 * (len as isize - 1);
    let i = i.rem_euclid(period);
    (if i < len as isize { i } else { period - i }) as usize
}

/// `log10(1 + c * x)`, in place: musicnn's compression (`np.log10(10000 * S + 1)`).
pub fn log10_1p<T: Float>(values: &mut [T], c: T) {
    let ln_10 = T::from(std::f64::consts::LN_10).expect("ln 10 is representable");
    for v in values.iter_mut() {
        *v = (c * *v).ln_1p() / ln_10;
    }
}

/// `librosa.power_to_db`, in place. `top_db` clips relative to the maximum of `values`.
pub fn power_to_db<T: Float>(values: &mut [T], reference: T, amin: T, top_db: Option<T>) {
    let ten = T::from(10.0).expect("10 is representable");
    let offset = ten * reference.max(amin).log10();
    let mut max = T::neg_infinity();
    for v in values.iter_mut() {
        *v = ten * v.max(amin).log10() - offset;
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
    fn precision_follows_the_depth_of_the_range_asked_for() {
        assert!(!MelSpectrogram::new(MelConfig::default()).is_double_precision());
        assert!(MelSpectrogram::new(MelConfig { power: 1.0, ..MelConfig::default() }).is_double_precision());
        assert!(MelSpectrogram::new(MelConfig { top_db: None, ..MelConfig::default() }).is_double_precision());
        assert!(MelSpectrogram::new(MelConfig { to_db: false, ..MelConfig::default() }).is_double_precision());
    }

    #[test]
    fn reflection_matches_numpy_pad_reflect() {
        // numpy.pad([0, 1, 2, 3], 5, mode="reflect") == [1, 2, 3, 2, 1, 0, 1, 2, 3, 2, 1, 0, 1, 2]
        let got: Vec<usize> = (-5..9).map(|i| reflect(i, 4)).collect();
        assert_eq!(got, vec![1, 2, 3, 2, 1, 0, 1, 2, 3, 2, 1, 0, 1, 2]);
        assert_eq!(reflect(-3, 1), 0);
    }

    #[test]
    fn frames_and_layout_shape_the_output() {
        let config = MelConfig {
            sample_rate: 16000,
            n_fft: 512,
            hop_length: 256,
            n_mels: 96,
            frames: Some(187),
            layout: Layout::TimeMajor,
            compression: Compression::Log10OnePlus,
            ..MelConfig::default()
        };
        let mut spec = MelSpectrogram::new(config.clone());
        // musicnn's 3 s patch: 187 hops give 188 centred frames, of which the first 187 are kept.
        assert_eq!((spec.n_frames(47872), spec.output_frames(47872)), (Some(188), Some(187)));
        assert_eq!(spec.output_frames(47000), None, "too short for 187 frames");
        let signal: Vec<f32> = (0..47872).map(|n| (n as f32 * 0.05).sin()).collect();
        let mut time_major = vec![0.0; 96 * 187];
        spec.compute(&signal, &mut time_major);
        let mut mel_major = vec![0.0; 96 * 187];
        MelSpectrogram::new(MelConfig { layout: Layout::MelMajor, ..config }).compute(&signal, &mut mel_major);
        for (m, t) in [(0, 0), (40, 100), (95, 186)] {
            assert_eq!(time_major[t * 96 + m], mel_major[m * 187 + t]);
        }
        assert!(time_major.iter().all(|&v| v >= 0.0), "log10(1 + C x) of a power is never negative");
    }

    #[test]
    fn top_db_floors_values_relative_to_the_maximum() {
        let mut values = vec![1.0f32, 1e-3, 1e-12];
        power_to_db(&mut values, 1.0, 1e-10, Some(20.0));
        assert_eq!(values, vec![0.0, -20.0, -20.0]);
    }
}
