//! Global tempo from the onset envelope: its autocorrelation says which beat periods the music
//! repeats at; a comb over each candidate's multiples rewards periods the whole bar confirms; a
//! log-normal prior around 120 BPM picks between the octaves (half, double time) that
//! autocorrelation alone cannot tell apart (Ellis 2007; librosa's `beat.tempo` uses the same prior).

use serde::Serialize;

/// Candidate tempi.
const MIN_BPM: f64 = 40.0;
const MAX_BPM: f64 = 240.0;
/// The prior: log-normal, centred here, one standard deviation this many octaves.
const PRIOR_BPM: f64 = 120.0;
const PRIOR_OCTAVES: f64 = 1.0;
/// Multiples of a period the comb looks at: two bars of a 4/4 beat, so that a period the bar
/// does not confirm (three sixteenths, say, in a syncopated groove) loses to the beat.
const COMB: usize = 8;
/// Running-mean window removed from the envelope, in seconds: keeps the pulse, drops the
/// slow swell of loudness that would otherwise correlate at every lag.
const DETREND_SECONDS: f64 = 1.0;

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Tempo {
    pub bpm: f64,
    /// How strongly the envelope repeats at the beat period: its autocorrelation there over
    /// its energy, 0 (no pulse) to 1 (a metronome).
    pub confidence: f64,
}

/// Estimate the tempo of a whole track from its onset envelope (`frame_rate` values a second).
/// `None` for a track too short to hold two beats at the slowest tempo.
pub fn estimate(envelope: &[f32], frame_rate: f64) -> Option<Tempo> {
    let max_lag = (frame_rate * 60.0 / MIN_BPM * COMB as f64).ceil() as usize + 2;
    let pulse = detrend(envelope, (DETREND_SECONDS * frame_rate) as usize);
    let longest_period = (frame_rate * 60.0 / MIN_BPM).ceil() as usize;
    if pulse.len() < 2 * longest_period {
        return None;
    }
    let acf = autocorrelation(&pulse, max_lag.min(pulse.len() - 1));
    if acf[0] <= 0.0 {
        return None;
    }
    let at = |lag: f64| -> f64 {
        let i = lag.floor() as usize;
        match (acf.get(i), acf.get(i + 1)) {
            (Some(a), Some(b)) => a + (b - a) * (lag - i as f64),
            _ => 0.0,
        }
    };
    // Candidates a fifth of a percent apart: finer than the 4 % anyone asks of a tempo.
    let steps = ((MAX_BPM / MIN_BPM).ln() / 0.002f64.ln_1p()) as usize;
    let mut best: Option<(f64, f64)> = None;
    for step in 0..=steps {
        let bpm = MIN_BPM * (1.002f64).powi(step as i32);
        let period = frame_rate * 60.0 / bpm;
        let comb: f64 = (1..=COMB).map(|k| at(period * k as f64)).sum::<f64>() / COMB as f64;
        let octaves = (bpm / PRIOR_BPM).log2() / PRIOR_OCTAVES;
        let score = comb.max(0.0) * (-0.5 * octaves * octaves).exp();
        if best.is_none_or(|(_, s)| score > s) {
            best = Some((bpm, score));
        }
    }
    let (bpm, _) = best?;
    let confidence = (at(frame_rate * 60.0 / bpm) / acf[0]).clamp(0.0, 1.0);
    Some(Tempo { bpm, confidence })
}

/// The envelope minus its running mean, half-wave rectified.
fn detrend(envelope: &[f32], window: usize) -> Vec<f64> {
    let window = window.max(1);
    let mut prefix = Vec::with_capacity(envelope.len() + 1);
    prefix.push(0.0f64);
    for &x in envelope {
        prefix.push(prefix.last().copied().unwrap_or(0.0) + x as f64);
    }
    (0..envelope.len())
        .map(|i| {
            let (lo, hi) = (i.saturating_sub(window / 2), (i + window / 2 + 1).min(envelope.len()));
            let mean = (prefix[hi] - prefix[lo]) / (hi - lo) as f64;
            (envelope[i] as f64 - mean).max(0.0)
        })
        .collect()
}

/// Autocorrelation for lags `0..=max_lag`, each divided by the number of products it sums, so
/// long lags are not penalised for overlapping less.
fn autocorrelation(x: &[f64], max_lag: usize) -> Vec<f64> {
    (0..=max_lag)
        .map(|lag| {
            let n = x.len() - lag;
            x[..n].iter().zip(&x[lag..]).map(|(a, b)| a * b).sum::<f64>() / n as f64
        })
        .collect()
}
