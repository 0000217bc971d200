//! Streaming sample-rate conversion (rubato), trimmed so that output sample `n` lines up
//! with input time `n / rate_out` and the output length is `ceil(len * out / in)`.
//!
//! rubato's FFT resampler sizes its tables by the reduced ratio `in/gcd : out/gcd`, so a rate
//! such as 100000007 Hz (prime) would ask for gigabytes. A ratio whose terms exceed
//! [`MAX_RATIO_TERM`] is replaced by its closest continued-fraction convergent within that
//! bound: memory stays under a few MiB for any rate, and the timing error is below 1e-7.

use rubato::{FftFixedIn, Resampler as _};

use super::validate::{check_sample_rate, SampleRateError};

const CHUNK: usize = 1024;
/// Largest numerator or denominator of the ratio handed to rubato. Every common pair of
/// rates (44.1/48/96/192 kHz to 16 or 22.05 kHz) is exact below it.
pub const MAX_RATIO_TERM: u64 = 8192;

#[derive(Debug, thiserror::Error)]
#[error("cannot resample from {from} Hz to {to} Hz: {reason}")]
pub struct ResampleError {
    pub from: u32,
    pub to: u32,
    pub reason: String,
}

/// Mono resampler fed in blocks of any size. Equal rates pass through untouched.
pub struct Resampler {
    inner: Option<FftFixedIn<f32>>,
    from: u32,
    to: u32,
    /// `ratio.0` input samples become `ratio.1` output samples (exact, or the approximation).
    ratio: (u64, u64),
    pending: Vec<f32>,
    delay_left: usize,
    consumed: u64,
    produced: u64,
}

impl Resampler {
    /// Both rates must lie in [`super::validate::SAMPLE_RATES`].
    pub fn new(from: u32, to: u32) -> Result<Self, ResampleError> {
        let refuse = |e: SampleRateError| ResampleError { from, to, reason: e.to_string() };
        check_sample_rate(from).map_err(refuse)?;
        check_sample_rate(to).map_err(refuse)?;
        let ratio = approximate_ratio(from as u64, to as u64, MAX_RATIO_TERM);
        let inner = if from == to {
            None
        } else {
            let resampler = FftFixedIn::<f32>::new(ratio.0 as usize, ratio.1 as usize, CHUNK, 2, 1)
                .map_err(|e| ResampleError { from, to, reason: e.to_string() })?;
            Some(resampler)
        };
        let delay_left = inner.as_ref().map_or(0, |r| r.output_delay());
        Ok(Resampler { inner, from, to, ratio, pending: Vec::new(), delay_left, consumed: 0, produced: 0 })
    }

    /// Feed `input`; append whatever output is ready to `out`.
    pub fn push(&mut self, input: &[f32], out: &mut Vec<f32>) -> Result<(), ResampleError> {
        self.consumed += input.len() as u64;
        let Some(inner) = &mut self.inner else {
            out.extend_from_slice(input);
            return Ok(());
        };
        self.pending.extend_from_slice(input);
        let mut offset = 0;
        while self.pending.len() - offset >= inner.input_frames_next() {
            let take = inner.input_frames_next();
            let chunk = &self.pending[offset..offset + take];
            let block = inner.process(&[chunk], None).map_err(|e| ResampleError {
                from: self.from,
                to: self.to,
                reason: e.to_string(),
            })?;
            offset += take;
            Self::emit(&mut self.delay_left, &mut self.produced, u64::MAX, &block[0], out);
        }
        self.pending.drain(..offset);
        Ok(())
    }

    /// Flush the tail: after this, exactly `ceil(consumed * to / from)` samples were emitted
    /// (with the approximated ratio where the exact one was too large).
    pub fn finish(&mut self, out: &mut Vec<f32>) -> Result<(), ResampleError> {
        let Some(inner) = &mut self.inner else { return Ok(()) };
        let expected = (self.consumed * self.ratio.1).div_ceil(self.ratio.0);
        let pending = std::mem::take(&mut self.pending);
        let error = |e: rubato::ResampleError| ResampleError { from: self.from, to: self.to, reason: e.to_string() };
        // rubato treats `Some(empty)` as a malformed buffer, so an empty tail goes straight to the flush.
        if !pending.is_empty() {
            let block = inner.process_partial(Some(&[&pending[..]]), None).map_err(error)?;
            Self::emit(&mut self.delay_left, &mut self.produced, expected, &block[0], out);
        }
        // Zero input pushes the filter's delay line out until every expected sample is there.
        // When the FFT is longer than a chunk (high or awkward input rates), several chunks
        // of zeros go in before a block comes out: only a long run of empty blocks ends it.
        let patience = self.ratio.0 as usize / CHUNK + 2;
        let mut empty_in_a_row = 0;
        while self.produced < expected && empty_in_a_row <= patience {
            let block = inner.process_partial::<&[f32]>(None, None).map_err(error)?;
            empty_in_a_row = if block[0].is_empty() { empty_in_a_row + 1 } else { 0 };
            Self::emit(&mut self.delay_left, &mut self.produced, expected, &block[0], out);
        }
        Ok(())
    }

    fn emit(delay_left: &mut usize, produced: &mut u64, limit: u64, block: &[f32], out: &mut Vec<f32>) {
        let skip = (*delay_left).min(block.len());
        *delay_left -= skip;
        let room = limit.saturating_sub(*produced).min((block.len() - skip) as u64) as usize;
        out.extend_from_slice(&block[skip..skip + room]);
        *produced += room as u64;
    }
}

/// `from / to` in lowest terms when both terms are at most `limit`; otherwise the last
/// continued-fraction convergent of it whose terms are (the best approximation that size).
fn approximate_ratio(from: u64, to: u64, limit: u64) -> (u64, u64) {
    let gcd = gcd(from, to);
    let (from, to) = (from / gcd, to / gcd);
    if from <= limit && to <= limit {
        return (from, to);
    }
    // Convergents h/k of from/to: h(n) = a(n) h(n-1) + h(n-2), likewise k.
    let (mut h, mut h_prev, mut k, mut k_prev) = (1u64, 0u64, 0u64, 1u64);
    let (mut best, mut n, mut d) = ((1, 1), from, to);
    while d != 0 {
        let a = n / d;
        let (h_next, k_next) = (a * h + h_prev, a * k + k_prev);
        if h_next > limit || k_next > limit {
            break;
        }
        (h_prev, h, k_prev, k) = (h, h_next, k, k_next);
        if h > 0 {
            best = (h, k);
        }
        (n, d) = (d, n % d);
    }
    best
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(rate: u32, hz: f64, seconds: f64) -> Vec<f32> {
        let n = (rate as f64 * seconds) as usize;
        (0..n).map(|i| (2.0 * std::f64::consts::PI * hz * i as f64 / rate as f64).sin() as f32).collect()
    }

    #[test]
    fn output_length_and_phase_follow_the_rate_ratio() {
        let input = sine(16000, 440.0, 1.3);
        let mut resampler = Resampler::new(16000, 22050).expect("resampler");
        let mut out = Vec::new();
        for block in input.chunks(777) {
            resampler.push(block, &mut out).expect("push");
        }
        resampler.finish(&mut out).expect("finish");
        assert_eq!(out.len() as u64, (input.len() as u64 * 22050).div_ceil(16000));
        // Away from the edges, the output is the same sine sampled at the new rate.
        let reference = sine(22050, 440.0, 1.3);
        let worst = (2000..out.len() - 2000).map(|i| (out[i] - reference[i]).abs()).fold(0.0f32, f32::max);
        assert!(worst < 0.01, "max deviation from the ideal sine: {worst}");
    }

    #[test]
    fn high_rates_whose_fft_is_longer_than_a_chunk_flush_every_sample() {
        // 192 kHz to 22.05 kHz is 1280:147, an FFT longer than one 1024-sample chunk.
        for from in [192_000, 176_400, 384_000] {
            let input = sine(from, 440.0, 0.3);
            let mut resampler = Resampler::new(from, 22050).expect("resampler");
            let mut out = Vec::new();
            resampler.push(&input, &mut out).expect("push");
            resampler.finish(&mut out).expect("finish");
            assert_eq!(out.len() as u64, (input.len() as u64 * 22050).div_ceil(from as u64), "from {from} Hz");
        }
    }

    #[test]
    fn input_that_fills_whole_chunks_flushes_cleanly() {
        let mut resampler = Resampler::new(44100, 22050).expect("resampler");
        let mut out = Vec::new();
        resampler.push(&vec![0.0; 4 * CHUNK], &mut out).expect("push");
        resampler.finish(&mut out).expect("an empty tail must flush");
        assert_eq!(out.len(), 2 * CHUNK);
    }

    #[test]
    fn equal_rates_pass_through() {
        let mut resampler = Resampler::new(22050, 22050).expect("resampler");
        let mut out = Vec::new();
        resampler.push(&[0.1, 0.2], &mut out).expect("push");
        resampler.finish(&mut out).expect("finish");
        assert_eq!(out, vec![0.1, 0.2]);
    }

    #[test]
    fn common_ratios_are_exact_and_awkward_ones_close_and_small() {
        assert_eq!(approximate_ratio(48000, 22050, MAX_RATIO_TERM), (320, 147));
        assert_eq!(approximate_ratio(768000, 22050, MAX_RATIO_TERM), (5120, 147));
        assert_eq!(approximate_ratio(44100, 16000, MAX_RATIO_TERM), (441, 160));
        for (from, to) in [(767_999u64, 22050u64), (1009, 22050), (44101, 16000), (100_003, 22050)] {
            let (p, q) = approximate_ratio(from, to, MAX_RATIO_TERM);
            assert!(p <= MAX_RATIO_TERM && q <= MAX_RATIO_TERM && p > 0 && q > 0, "{from}/{to} -> {p}/{q}");
            let error = (p as f64 / q as f64) / (from as f64 / to as f64) - 1.0;
            assert!(error.abs() < 1e-6, "{from}/{to} -> {p}/{q}: relative error {error}");
        }
    }

    #[test]
    fn a_prime_rate_resamples_with_small_tables() {
        // 767_999 Hz is prime: the exact ratio would need tables of ~770 k entries per side.
        let input = sine(767_999, 440.0, 0.5);
        let mut resampler = Resampler::new(767_999, 22050).expect("resampler");
        let mut out = Vec::new();
        for block in input.chunks(4096) {
            resampler.push(block, &mut out).expect("push");
        }
        resampler.finish(&mut out).expect("finish");
        let expected = input.len() as f64 * 22050.0 / 767_999.0;
        assert!((out.len() as f64 - expected).abs() <= 1.0, "{} samples, expected about {expected}", out.len());
        let reference = sine(22050, 440.0, 0.5);
        let worst = (500..out.len() - 500).map(|i| (out[i] - reference[i]).abs()).fold(0.0f32, f32::max);
        assert!(worst < 0.01, "max deviation from the ideal sine: {worst}");
    }

    #[test]
    fn rates_outside_the_accepted_range_are_refused() {
        for rate in [0, 999, 768_001, 100_000_007, u32::MAX] {
            let error = Resampler::new(rate, 22050).err().expect("refused");
            assert!(error.to_string().contains("outside"), "{error}");
        }
    }
}
