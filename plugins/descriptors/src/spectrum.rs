//! Streaming short-time magnitude spectra: samples go in as they are decoded, one Hann-windowed
//! magnitude spectrum comes out per hop. Tempo and key each keep one, with their own frame
//! lengths, so neither ever needs the whole track in memory.

use std::sync::Arc;

use realfft::{RealFftPlanner, RealToComplex};

pub struct Spectrogram {
    n_fft: usize,
    hop: usize,
    window: Vec<f32>,
    fft: Arc<dyn RealToComplex<f32>>,
    /// Samples not yet consumed by a frame: at most one chunk plus one frame.
    pending: Vec<f32>,
    frame: Vec<f32>,
    spectrum: Vec<realfft::num_complex::Complex<f32>>,
    scratch: Vec<realfft::num_complex::Complex<f32>>,
    magnitude: Vec<f32>,
}

impl Spectrogram {
    pub fn new(n_fft: usize, hop: usize) -> Self {
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(n_fft);
        // Periodic Hann, as librosa uses: overlapping frames sum to a constant.
        let window =
            (0..n_fft).map(|i| 0.5 - 0.5 * (2.0 * std::f32::consts::PI * i as f32 / n_fft as f32).cos()).collect();
        Spectrogram {
            n_fft,
            hop,
            window,
            spectrum: fft.make_output_vec(),
            scratch: fft.make_scratch_vec(),
            frame: fft.make_input_vec(),
            fft,
            pending: Vec::with_capacity(2 * n_fft),
            magnitude: vec![0.0; n_fft / 2 + 1],
        }
    }

    pub fn n_fft(&self) -> usize {
        self.n_fft
    }

    pub fn hop(&self) -> usize {
        self.hop
    }

    /// Forget any samples of a previous track.
    pub fn reset(&mut self) {
        self.pending.clear();
    }

    /// Feed samples; `each` gets the magnitude spectrum (`n_fft / 2 + 1` bins) of every frame
    /// completed by them. Frames start at sample 0 (no centring): a track-level estimate does not
    /// miss the first half frame.
    pub fn push(&mut self, samples: &[f32], mut each: impl FnMut(&[f32])) {
        self.pending.extend_from_slice(samples);
        let mut start = 0;
        while self.pending.len() - start >= self.n_fft {
            let frame = &self.pending[start..start + self.n_fft];
            for ((out, x), w) in self.frame.iter_mut().zip(frame).zip(&self.window) {
                *out = x * w;
            }
            // The lengths are the planner's own, so the transform cannot fail.
            let _ = self.fft.process_with_scratch(&mut self.frame, &mut self.spectrum, &mut self.scratch);
            for (m, c) in self.magnitude.iter_mut().zip(&self.spectrum) {
                *m = c.norm();
            }
            each(&self.magnitude);
            start += self.hop;
        }
        self.pending.drain(..start.min(self.pending.len()));
    }
}

/// The power of two nearest to `seconds` of audio at `sample_rate`: frame lengths are chosen in
/// time, so every rate sees the same resolution.
pub fn frame_length(seconds: f64, sample_rate: u32) -> usize {
    let samples = (seconds * sample_rate as f64).max(16.0);
    1usize << samples.log2().round() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sine_peaks_in_its_bin_and_frames_follow_the_hop() {
        let mut spectrogram = Spectrogram::new(1024, 256);
        let rate = 8192.0;
        let signal: Vec<f32> =
            (0..8192).map(|i| (2.0 * std::f32::consts::PI * 512.0 * i as f32 / rate).sin()).collect();
        let mut frames = 0;
        // Fed in awkward chunks: the framing must not depend on them.
        for chunk in signal.chunks(333) {
            spectrogram.push(chunk, |m| {
                frames += 1;
                let peak = m.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i);
                assert_eq!(peak, Some(64));
            });
        }
        assert_eq!(frames, (8192 - 1024) / 256 + 1);
    }
}
