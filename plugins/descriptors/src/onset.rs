//! The onset-strength envelope: how much new energy appears in each short frame, summed over
//! mel bands (spectral flux on a log-mel spectrogram, as in Böck & Widmer 2013 and librosa's
//! `onset_strength`). It is the one thing tempo estimation reads, at about 86 values a second,
//! so a ten-minute track keeps some 50 000 floats instead of its samples.

use crate::spectrum::{frame_length, Spectrogram};

const N_BANDS: usize = 40;
/// Band ranges of the bass (below ~500 Hz), middle (to ~2.4 kHz) and treble (to 8 kHz).
const REGISTERS: [std::ops::Range<usize>; 3] = [0..8, 8..24, 24..N_BANDS];
const FMIN: f64 = 30.0;
const FMAX: f64 = 8000.0;
/// `log(1 + GAIN * power)`: compresses loudness like hearing does, so a quiet hi-hat still
/// registers beside a kick drum.
const GAIN: f32 = 1000.0;

pub struct OnsetEnvelope {
    spectrogram: Spectrogram,
    /// For each band, the FFT bins and their triangular weights.
    bands: Vec<Vec<(usize, f32)>>,
    previous: Option<Vec<f32>>,
    current: Vec<f32>,
    envelope: Vec<f32>,
    frame_rate: f64,
}

impl OnsetEnvelope {
    pub fn new(sample_rate: u32) -> Self {
        // ~46 ms frames, a quarter of that as hop: 11.6 ms steps at any rate.
        let n_fft = frame_length(0.046, sample_rate);
        let hop = n_fft / 4;
        OnsetEnvelope {
            spectrogram: Spectrogram::new(n_fft, hop),
            bands: mel_bands(n_fft, sample_rate),
            previous: None,
            current: vec![0.0; N_BANDS],
            envelope: Vec::new(),
            frame_rate: sample_rate as f64 / hop as f64,
        }
    }

    /// Envelope values per second.
    pub fn frame_rate(&self) -> f64 {
        self.frame_rate
    }

    pub fn push(&mut self, mono: &[f32]) {
        let (bands, previous, current, envelope) =
            (&self.bands, &mut self.previous, &mut self.current, &mut self.envelope);
        self.spectrogram.push(mono, |magnitude| {
            for (value, band) in current.iter_mut().zip(bands) {
                let power: f32 = band.iter().map(|&(bin, w)| w * magnitude[bin] * magnitude[bin]).sum();
                *value = (1.0 + GAIN * power).ln();
            }
            // Only rises count: a note starting is an onset, one fading is not.
            // Each register (bass, middle, treble) gets an equal voice, whatever its number of
            // bands: otherwise a hi-hat, spread over many high bands, outvotes the kick and
            // snare that carry the beat, and sixteenth-note hats pull the tempo off the beat.
            let flux = match previous {
                Some(p) => REGISTERS
                    .iter()
                    .map(|r| {
                        let (c, p) = (&current[r.clone()], &p[r.clone()]);
                        c.iter().zip(p).map(|(c, p)| (c - p).max(0.0)).sum::<f32>() / r.len() as f32
                    })
                    .sum::<f32>(),
                None => 0.0,
            };
            envelope.push(flux / REGISTERS.len() as f32);
            match previous {
                Some(p) => p.copy_from_slice(current),
                None => *previous = Some(current.clone()),
            }
        });
    }

    /// The envelope so far.
    pub fn envelope(&self) -> &[f32] {
        &self.envelope
    }

    pub fn reset(&mut self) {
        self.spectrogram.reset();
        self.previous = None;
        self.envelope.clear();
    }
}

fn hz_to_mel(hz: f64) -> f64 {
    2595.0 * (1.0 + hz / 700.0).log10()
}

fn mel_to_hz(mel: f64) -> f64 {
    700.0 * (10f64.powf(mel / 2595.0) - 1.0)
}

/// Triangular mel bands over the FFT bins; a band too narrow to hold a bin takes its nearest one.
fn mel_bands(n_fft: usize, sample_rate: u32) -> Vec<Vec<(usize, f32)>> {
    let nyquist = sample_rate as f64 / 2.0;
    let (lo, hi) = (hz_to_mel(FMIN), hz_to_mel(FMAX.min(nyquist * 0.95)));
    let edges: Vec<f64> =
        (0..N_BANDS + 2).map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (N_BANDS + 1) as f64)).collect();
    let bin_hz = sample_rate as f64 / n_fft as f64;
    (0..N_BANDS)
        .map(|b| {
            let (left, centre, right) = (edges[b], edges[b + 1], edges[b + 2]);
            let mut band: Vec<(usize, f32)> = (0..=n_fft / 2)
                .filter_map(|bin| {
                    let f = bin as f64 * bin_hz;
                    let w = if f <= left || f >= right {
                        0.0
                    } else if f <= centre {
                        (f - left) / (centre - left)
                    } else {
                        (right - f) / (right - centre)
                    };
                    (w > 0.0).then_some((bin, w as f32))
                })
                .collect();
            if band.is_empty() {
                band.push(((centre / bin_hz).round() as usize, 1.0));
            }
            band
        })
        .collect()
}
