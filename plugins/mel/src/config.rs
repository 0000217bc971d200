//! Parameters of the log-mel spectrogram, named and defaulted as in librosa.

use serde::{Deserialize, Serialize};

/// Every parameter of `librosa.power_to_db(librosa.feature.melspectrogram(...))`, plus the
/// front ends of pretrained models that compress differently or read time-major frames.
/// The defaults are librosa's, at timbre's sample rate of 22050 Hz.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MelConfig {
    /// Sample rate the input must have, in Hz.
    pub sample_rate: u32,
    /// FFT size, in samples.
    pub n_fft: usize,
    /// Samples between the starts of successive frames.
    pub hop_length: usize,
    /// Window length; `None` means `n_fft`. A shorter window is centred in the FFT frame.
    pub win_length: Option<usize>,
    /// Centre frames on their sample, padding `n_fft / 2` on both sides.
    pub center: bool,
    /// How centring pads: `"constant"` (zeros, librosa >= 0.10) or `"reflect"` (the signal
    /// mirrored about its end samples, as `numpy.pad(mode="reflect")`; librosa < 0.10's default).
    pub pad_mode: PadMode,
    /// Exponent of the magnitude: 2 for power, 1 for energy.
    pub power: f64,
    /// Number of mel bands.
    pub n_mels: usize,
    /// Lowest band edge, in Hz.
    pub fmin: f64,
    /// Highest band edge, in Hz; `None` means `sample_rate / 2`.
    pub fmax: Option<f64>,
    /// Use the HTK mel scale instead of Slaney's.
    pub htk: bool,
    /// `"slaney"` divides each triangle by its width (constant energy per band); `None` leaves them at peak 1.
    pub norm: Option<MelNorm>,
    /// Compress the mel power with `compression`; `false` leaves it linear.
    pub to_db: bool,
    /// `"power_to_db"` (decibels, with `ref`, `amin` and `top_db`) or `"log10_1p"`
    /// (`log10(1 + compression_c * power)`, musicnn's front end; `ref`, `amin` and `top_db` unused).
    pub compression: Compression,
    /// The constant `C` of `"log10_1p"`.
    pub compression_c: f64,
    /// Reference power for 0 dB.
    #[serde(rename = "ref")]
    pub reference: f64,
    /// Floor applied before the logarithm.
    pub amin: f64,
    /// Clip each segment to this many dB below its own maximum; `None` disables clipping.
    pub top_db: Option<f64>,
    /// Deliver exactly this many frames per segment: the first `frames` of the transform (a
    /// segment too short to give them is refused). `None`: every frame, `1 + samples / hop`
    /// when centred.
    pub frames: Option<usize>,
    /// `"mel_major"`: each segment is `[n_mels, frames]`; `"time_major"`: `[frames, n_mels]`.
    pub layout: Layout,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MelNorm {
    Slaney,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PadMode {
    #[default]
    Constant,
    Reflect,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// `10 * log10(max(S, amin) / ref)`, floored at `top_db` below the segment's maximum.
    #[default]
    PowerToDb,
    /// `log10(1 + C * S)`.
    #[serde(rename = "log10_1p")]
    Log10OnePlus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// `[n_mels, frames]`, as librosa returns it.
    #[default]
    MelMajor,
    /// `[frames, n_mels]`: one row per frame.
    TimeMajor,
}

/// Most frames `frames` may ask for: an hour at hop 16 and 16 kHz.
pub const MAX_FRAMES: usize = 3_600_000;
/// Largest `compression_c`: past it, `log10_1p` is `power_to_db` plus a constant.
pub const MAX_COMPRESSION_C: f64 = 1e12;

impl Default for MelConfig {
    fn default() -> Self {
        MelConfig {
            sample_rate: 22050,
            n_fft: 2048,
            hop_length: 512,
            win_length: None,
            center: true,
            pad_mode: PadMode::Constant,
            power: 2.0,
            n_mels: 128,
            fmin: 0.0,
            fmax: None,
            htk: false,
            norm: Some(MelNorm::Slaney),
            to_db: true,
            compression: Compression::PowerToDb,
            compression_c: 10000.0,
            reference: 1.0,
            amin: 1e-10,
            top_db: Some(80.0),
            frames: None,
            layout: Layout::MelMajor,
        }
    }
}

impl MelConfig {
    pub fn win_length(&self) -> usize {
        self.win_length.unwrap_or(self.n_fft)
    }

    pub fn fmax(&self) -> f64 {
        self.fmax.unwrap_or(self.sample_rate as f64 / 2.0)
    }

    /// Reject values that would make the transform meaningless or allocate without bound.
    pub fn validate(&self) -> Result<(), String> {
        const MAX_FFT: usize = 1 << 16;
        if self.sample_rate < 1000 || self.sample_rate > 384_000 {
            return Err(format!("sample_rate {} is outside 1000..=384000 Hz", self.sample_rate));
        }
        if self.n_fft < 16 || self.n_fft > MAX_FFT {
            return Err(format!("n_fft {} is outside 16..={MAX_FFT}", self.n_fft));
        }
        if self.hop_length == 0 || self.hop_length > self.n_fft {
            return Err(format!("hop_length {} must be in 1..=n_fft ({})", self.hop_length, self.n_fft));
        }
        if self.win_length() == 0 || self.win_length() > self.n_fft {
            return Err(format!("win_length {} must be in 1..=n_fft ({})", self.win_length(), self.n_fft));
        }
        if self.n_mels == 0 || self.n_mels > 1024 {
            return Err(format!("n_mels {} is outside 1..=1024", self.n_mels));
        }
        if !positive(self.power) {
            return Err(format!("power {} must be positive", self.power));
        }
        if !(self.fmin.is_finite()
            && self.fmin >= 0.0
            && self.fmin < self.fmax()
            && self.fmax() <= self.sample_rate as f64 / 2.0)
        {
            return Err(format!("need 0 <= fmin < fmax <= sample_rate/2, got fmin {} fmax {}", self.fmin, self.fmax()));
        }
        if !positive(self.amin) || !positive(self.reference) {
            return Err("amin and ref must be positive".to_string());
        }
        if matches!(self.top_db, Some(t) if !t.is_finite() || t < 0.0) {
            return Err("top_db must be non-negative".to_string());
        }
        if !(positive(self.compression_c) && self.compression_c <= MAX_COMPRESSION_C) {
            return Err(format!("compression_c {} must be in (0, {MAX_COMPRESSION_C:e}]", self.compression_c));
        }
        if !self.to_db && self.compression != Compression::PowerToDb {
            return Err("to_db = false asks for linear power, but compression asks for log10_1p: pick one".to_string());
        }
        if matches!(self.frames, Some(f) if f == 0 || f > MAX_FRAMES) {
            return Err(format!("frames {} is outside 1..={MAX_FRAMES}", self.frames.unwrap_or_default()));
        }
        Ok(())
    }
}

/// Finite and above zero (so NaN and infinity are refused too).
fn positive(x: f64) -> bool {
    x.is_finite() && x > 0.0
}
