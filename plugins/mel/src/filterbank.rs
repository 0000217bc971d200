//! The mel filterbank of `librosa.filters.mel`, stored sparsely: each band is a
//! triangle that touches only a few FFT bins, so most of the dense matrix is zero.

use crate::config::{MelConfig, MelNorm};

/// One band: weights for bins `start .. start + weights.len()`.
#[derive(Debug, Clone)]
pub struct MelBand {
    pub start: usize,
    pub weights: Vec<f64>,
}

pub fn hz_to_mel(hz: f64, htk: bool) -> f64 {
    if htk {
        return 2595.0 * (1.0 + hz / 700.0).log10();
    }
    // Slaney's scale: linear below 1 kHz, logarithmic above.
    let f_sp = 200.0 / 3.0;
    let min_log_hz = 1000.0;
    let min_log_mel = min_log_hz / f_sp;
    let logstep = 6.4f64.ln() / 27.0;
    if hz >= min_log_hz {
        min_log_mel + (hz / min_log_hz).ln() / logstep
    } else {
        hz / f_sp
    }
}

pub fn mel_to_hz(mel: f64, htk: bool) -> f64 {
    if htk {
        return 700.0 * (10f64.powf(mel / 2595.0) - 1.0);
    }
    let f_sp = 200.0 / 3.0;
    let min_log_hz = 1000.0;
    let min_log_mel = min_log_hz / f_sp;
    let logstep = 6.4f64.ln() / 27.0;
    if mel >= min_log_mel {
        min_log_hz * (logstep * (mel - min_log_mel)).exp()
    } else {
        f_sp * mel
    }
}

/// The band edges: `n` frequencies evenly spaced on the mel scale (`librosa.mel_frequencies`).
fn mel_frequencies(n: usize, fmin: f64, fmax: f64, htk: bool) -> Vec<f64> {
    let (lo, hi) = (hz_to_mel(fmin, htk), hz_to_mel(fmax, htk));
    // numpy.linspace: start + i * step, with the last point exactly `hi`.
    let step = (hi - lo) / (n - 1) as f64;
    (0..n).map(|i| if i == n - 1 { hi } else { lo + i as f64 * step }).map(|m| mel_to_hz(m, htk)).collect()
}

/// Build the filterbank. librosa stores the weights as float32, so they are rounded
/// to f32 here too: the reference outputs were made with those rounded weights.
pub fn mel_filterbank(config: &MelConfig) -> Vec<MelBand> {
    let n_bins = config.n_fft / 2 + 1;
    let bin_hz = config.sample_rate as f64 / config.n_fft as f64;
    let edges = mel_frequencies(config.n_mels + 2, config.fmin, config.fmax(), config.htk);

    (0..config.n_mels)
        .map(|m| {
            let (left, centre, right) = (edges[m], edges[m + 1], edges[m + 2]);
            let enorm = match config.norm {
                Some(MelNorm::Slaney) => 2.0 / (right - left),
                None => 1.0,
            };
            let dense: Vec<f64> = (0..n_bins)
                .map(|k| {
                    let f = k as f64 * bin_hz;
                    let lower = (f - left) / (centre - left);
                    let upper = (right - f) / (right - centre);
                    let w = lower.min(upper).max(0.0) as f32;
                    (w as f64 * enorm) as f32 as f64
                })
                .collect();
            let start = dense.iter().position(|&w| w != 0.0).unwrap_or(0);
            let end = dense.iter().rposition(|&w| w != 0.0).map_or(start, |i| i + 1);
            MelBand { start, weights: dense[start..end].to_vec() }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slaney_scale_round_trips_on_both_sides_of_the_knee() {
        for hz in [0.0, 440.0, 999.0, 1000.0, 4000.0, 11025.0] {
            let back = mel_to_hz(hz_to_mel(hz, false), false);
            assert!((back - hz).abs() < 1e-9, "{hz} -> {back}");
        }
        assert!((hz_to_mel(1000.0, false) - 15.0).abs() < 1e-12);
    }

    #[test]
    fn htk_scale_matches_its_formula() {
        assert!((hz_to_mel(700.0, true) - 2595.0 * 2f64.log10()).abs() < 1e-9);
        assert!((mel_to_hz(hz_to_mel(3000.0, true), true) - 3000.0).abs() < 1e-9);
    }

    #[test]
    fn bands_are_ordered_and_non_empty() {
        let bands = mel_filterbank(&MelConfig::default());
        assert_eq!(bands.len(), 128);
        for pair in bands.windows(2) {
            assert!(pair[0].start <= pair[1].start);
        }
        assert!(bands.iter().all(|b| !b.weights.is_empty() && b.weights.iter().all(|&w| w >= 0.0)));
    }
}
