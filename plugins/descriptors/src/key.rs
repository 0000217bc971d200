//! Global key: a chromagram folded over the whole track, tuned, then matched against a key
//! profile.
//!
//! Chroma from spectral peaks (as the HPCP of Gómez 2006): each peak's frequency is refined by
//! parabolic interpolation and placed, with its subharmonics, on a pitch-class circle of 10-cent bins. Keeping that
//! fine circle until the end lets the tuning be estimated from the whole track (a recording
//! tuned to A = 435 Hz sits a fifth of a semitone flat) before folding it into 12 classes.

use serde::Serialize;

use crate::profiles::Profile;
use crate::spectrum::{frame_length, Spectrogram};

const BINS_PER_SEMITONE: usize = 10;
const BINS: usize = 12 * BINS_PER_SEMITONE;
const FMIN: f64 = 55.0;
const FMAX: f64 = 3520.0;
/// Peaks more than this far below a frame's loudest are noise, not notes.
const PEAK_FLOOR_DB: f32 = 60.0;
/// Peaks per frame, harmonics per peak and the weight of each further harmonic: Essentia's HPCP
/// defaults (60, 4, 0.6), kept as they are: on the pool clips they lifted every profile but one
/// (docs/EVALUATION.md), and tuning them on 44 clips would only fit those clips.
const MAX_PEAKS: usize = 60;
const HARMONICS: usize = 4;
const HARMONIC_WEIGHT: f64 = 0.6;
/// Frames whose loudest peak is below this (of full scale, per window sum) are silence.
const SILENCE: f32 = 1e-4;

pub const PITCH_CLASSES: [&str; 12] = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Major,
    Minor,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Key {
    /// Pitch class of the tonic, C = 0.
    pub tonic: usize,
    pub mode: Mode,
    /// Correlation of the track's chroma with the key's profile, 0 to 1.
    pub strength: f64,
}

impl Key {
    /// "A minor", "C# major".
    pub fn name(&self) -> String {
        let mode = match self.mode {
            Mode::Major => "major",
            Mode::Minor => "minor",
        };
        format!("{} {mode}", PITCH_CLASSES[self.tonic % 12])
    }

    /// Parse "A minor", "Bb major", "a# minor".
    pub fn parse(text: &str) -> Option<(usize, Mode)> {
        let (tonic, mode) = text.trim().split_once(' ')?;
        let mode = match mode.trim().to_ascii_lowercase().as_str() {
            "major" => Mode::Major,
            "minor" => Mode::Minor,
            _ => return None,
        };
        let mut chars = tonic.chars();
        let letter = chars.next()?.to_ascii_uppercase();
        let natural = [0usize, 2, 4, 5, 7, 9, 11]["CDEFGAB".find(letter)?];
        let tonic = match chars.as_str() {
            "" => natural,
            "#" => natural + 1,
            "b" => natural + 11,
            _ => return None,
        };
        Some((tonic % 12, mode))
    }
}

pub struct Chromagram {
    spectrogram: Spectrogram,
    bin_hz: f64,
    circle: [f64; BINS],
}

impl Chromagram {
    pub fn new(sample_rate: u32) -> Self {
        // ~370 ms frames: at 55 Hz a semitone is 3 Hz wide, and the bins must resolve it.
        let n_fft = frame_length(0.37, sample_rate);
        Chromagram {
            spectrogram: Spectrogram::new(n_fft, n_fft / 2),
            bin_hz: sample_rate as f64 / n_fft as f64,
            circle: [0.0; BINS],
        }
    }

    pub fn push(&mut self, mono: &[f32]) {
        let (bin_hz, circle) = (self.bin_hz, &mut self.circle);
        let scale = 2.0 / self.spectrogram.n_fft() as f32;
        self.spectrogram.push(mono, |magnitude| add_frame(magnitude, scale, bin_hz, circle));
    }

    pub fn reset(&mut self) {
        self.spectrogram.reset();
        self.circle = [0.0; BINS];
    }

    /// The tuning of the track in semitones (−0.5 to 0.5) and its 12-class chroma, C first.
    pub fn chroma(&self) -> (f64, [f64; 12]) {
        // The circular mean of where energy falls inside a semitone.
        let (mut x, mut y) = (0.0, 0.0);
        for (i, w) in self.circle.iter().enumerate() {
            let angle = 2.0 * std::f64::consts::PI * (i % BINS_PER_SEMITONE) as f64 / BINS_PER_SEMITONE as f64;
            x += w * angle.cos();
            y += w * angle.sin();
        }
        let tuning = if x == 0.0 && y == 0.0 { 0.0 } else { y.atan2(x) / (2.0 * std::f64::consts::PI) };
        let mut chroma = [0.0; 12];
        for (i, w) in self.circle.iter().enumerate() {
            // Distance from the tuned centre of the nearest pitch class, in semitones.
            let position = i as f64 / BINS_PER_SEMITONE as f64 - tuning;
            let class = position.round();
            let offset = position - class;
            // A cosine window: a bin half a semitone off counts for nothing.
            let weight = (std::f64::consts::PI * offset).cos().powi(2);
            chroma[(class as i64).rem_euclid(12) as usize] += w * weight;
        }
        (tuning, chroma)
    }

    /// The key under `profile`, or `None` for a track without pitched content.
    pub fn key(&self, profile: &Profile) -> Option<Key> {
        let (_, chroma) = self.chroma();
        best_key(&chroma, profile)
    }
}

/// Add one frame's spectral peaks to the pitch-class circle. Each frame is normalised to the same
/// total, so the key is that of the whole track and not of its loudest minute.
fn add_frame(magnitude: &[f32], scale: f32, bin_hz: f64, circle: &mut [f64; BINS]) {
    let lo = ((FMIN / bin_hz).floor() as usize).max(1);
    let hi = ((FMAX / bin_hz).ceil() as usize).min(magnitude.len() - 2);
    if lo >= hi {
        return;
    }
    let loudest = magnitude[lo..=hi].iter().fold(0.0f32, |a, &b| a.max(b));
    if loudest * scale < SILENCE {
        return;
    }
    let floor = loudest * 10f32.powf(-PEAK_FLOOR_DB / 20.0);
    let mut peaks = Vec::new();
    for k in lo..=hi {
        let (a, b, c) = (magnitude[k - 1], magnitude[k], magnitude[k + 1]);
        if b > a && b >= c && b > floor {
            // Parabola through the log magnitudes: the peak's true frequency and height.
            let (la, lb, lc) = ((a + 1e-12).ln(), b.ln(), (c + 1e-12).ln());
            let denom = la - 2.0 * lb + lc;
            let shift = if denom < 0.0 { (0.5 * (la - lc) / denom).clamp(-0.5, 0.5) } else { 0.0 };
            let height = (lb - 0.25 * (la - lc) * shift).exp();
            peaks.push(((k as f64 + shift as f64) * bin_hz, height as f64));
        }
    }
    // Peaks weigh by magnitude, not power: power lets the loudest bass note drown the harmony
    // (on the pool clips, power scored 0.02–0.2 lower with every profile).
    // The strongest peaks only: the rest is mostly noise and reverberation between the notes.
    peaks.sort_by(|a, b| b.1.total_cmp(&a.1));
    peaks.truncate(MAX_PEAKS);
    // A peak may be the 2nd, 3rd or 4th harmonic of a lower note; it votes for those too, less.
    // (Only the 3rd changes the pitch class: a twelfth below, i.e. a fifth.)
    let peaks: Vec<(f64, f64)> = peaks
        .iter()
        .flat_map(|&(f, h)| (1..=HARMONICS).map(move |k| (f / k as f64, h * HARMONIC_WEIGHT.powi(k as i32 - 1))))
        .collect();
    let total: f64 = peaks.iter().map(|(_, h)| h).sum();
    if total <= 0.0 {
        return;
    }
    for (frequency, height) in peaks {
        // Semitones above C, on the circle.
        let position = (12.0 * (frequency / 261.625_565_3).log2()).rem_euclid(12.0) * BINS_PER_SEMITONE as f64;
        let i = position.floor() as usize;
        let frac = position - i as f64;
        let energy = height / total;
        circle[i % BINS] += energy * (1.0 - frac);
        circle[(i + 1) % BINS] += energy * frac;
    }
}

/// The key whose rotated profile correlates best with `chroma`.
pub fn best_key(chroma: &[f64; 12], profile: &Profile) -> Option<Key> {
    let scores = key_scores(chroma, profile)?;
    let (index, strength) = scores.iter().copied().enumerate().max_by(|a, b| a.1.total_cmp(&b.1))?;
    let mode = if index < 12 { Mode::Major } else { Mode::Minor };
    Some(Key { tonic: index % 12, mode, strength: strength.clamp(0.0, 1.0) })
}

/// Pearson correlation of `chroma` with the 12 major then 12 minor keys of `profile`.
pub fn key_scores(chroma: &[f64; 12], profile: &Profile) -> Option<[f64; 24]> {
    if chroma.iter().sum::<f64>() <= 0.0 {
        return None;
    }
    let mut scores = [0.0; 24];
    for (m, template) in [&profile.major, &profile.minor].into_iter().enumerate() {
        for tonic in 0..12 {
            let rotated: [f64; 12] = std::array::from_fn(|pc| template[(pc + 12 - tonic) % 12]);
            scores[m * 12 + tonic] = pearson(chroma, &rotated);
        }
    }
    Some(scores)
}

fn pearson(a: &[f64; 12], b: &[f64; 12]) -> f64 {
    let (ma, mb) = (a.iter().sum::<f64>() / 12.0, b.iter().sum::<f64>() / 12.0);
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        ab += (x - ma) * (y - mb);
        aa += (x - ma) * (x - ma);
        bb += (y - mb) * (y - mb);
    }
    if aa <= 0.0 || bb <= 0.0 {
        0.0
    } else {
        ab / (aa * bb).sqrt()
    }
}

/// The MIREX weighted score of an estimate against a reference: same key 1, a perfect fifth
/// above it (same mode) 0.5, relative major/minor 0.3, parallel 0.2, anything else 0. As in
/// MIREX and mir_eval's default, only the ascending fifth (the dominant) earns 0.5.
pub fn mirex_score(estimate: (usize, Mode), reference: (usize, Mode)) -> f64 {
    let ((e, em), (r, rm)) = (estimate, reference);
    let up = (e + 12 - r) % 12;
    if em == rm {
        match up {
            0 => 1.0,
            7 => 0.5,
            _ => 0.0,
        }
    } else if (rm == Mode::Major && up == 9) || (rm == Mode::Minor && up == 3) {
        // The estimate is the reference's relative minor (a minor third down) or major (up).
        0.3
    } else if up == 0 {
        0.2
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirex_weights() {
        let c_major = (0, Mode::Major);
        assert_eq!(mirex_score((0, Mode::Major), c_major), 1.0);
        assert_eq!(mirex_score((7, Mode::Major), c_major), 0.5);
        assert_eq!(mirex_score((5, Mode::Major), c_major), 0.0);
        assert_eq!(mirex_score((9, Mode::Minor), c_major), 0.3);
        assert_eq!(mirex_score((0, Mode::Major), (9, Mode::Minor)), 0.3);
        assert_eq!(mirex_score((0, Mode::Minor), c_major), 0.2);
        assert_eq!(mirex_score((2, Mode::Major), c_major), 0.0);
    }

    #[test]
    fn key_names_round_trip() {
        for tonic in 0..12 {
            for mode in [Mode::Major, Mode::Minor] {
                let key = Key { tonic, mode, strength: 1.0 };
                assert_eq!(Key::parse(&key.name()), Some((tonic, mode)));
            }
        }
        assert_eq!(Key::parse("Bb minor"), Some((10, Mode::Minor)));
    }
}
