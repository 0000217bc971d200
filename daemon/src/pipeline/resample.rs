//! Streaming sample-rate conversion (rubato), trimmed so that output sample `n` lines up
//! with input time `n / rate_out` and the output length is `ceil(len * out / in)`.

use rubato::{FftFixedIn, Resampler as _};

const CHUNK: usize = 1024;

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
    pending: Vec<f32>,
    delay_left: usize,
    consumed: u64,
    produced: u64,
}

impl Resampler {
    pub fn new(from: u32, to: u32) -> Result<Self, ResampleError> {
        let inner = if from == to {
            None
        } else {
            let resampler = FftFixedIn::<f32>::new(from as usize, to as usize, CHUNK, 2, 1)
                .map_err(|e| ResampleError { from, to, reason: e.to_string() })?;
            Some(resampler)
        };
        let delay_left = inner.as_ref().map_or(0, |r| r.output_delay());
        Ok(Resampler { inner, from, to, pending: Vec::new(), delay_left, consumed: 0, produced: 0 })
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

    /// Flush the tail: after this, exactly `ceil(consumed * to / from)` samples were emitted.
    pub fn finish(&mut self, out: &mut Vec<f32>) -> Result<(), ResampleError> {
        let Some(inner) = &mut self.inner else { return Ok(()) };
        let expected = (self.consumed * self.to as u64).div_ceil(self.from as u64);
        let pending = std::mem::take(&mut self.pending);
        let error = |e: rubato::ResampleError| ResampleError { from: self.from, to: self.to, reason: e.to_string() };
        // rubato treats `Some(empty)` as a malformed buffer, so an empty tail goes straight to the flush.
        if !pending.is_empty() {
            let block = inner.process_partial(Some(&[&pending[..]]), None).map_err(error)?;
            Self::emit(&mut self.delay_left, &mut self.produced, expected, &block[0], out);
        }
        // Zero input pushes the filter's delay line out until every expected sample is there.
        while self.produced < expected {
            let block = inner.process_partial::<&[f32]>(None, None).map_err(error)?;
            if block[0].is_empty() {
                break;
            }
            Self::emit(&mut self.delay_left, &mut self.produced, expected, &block[0], out);
        }
        Ok(())
    }

    fn emit(delay_left: &mut usize, produced: &mut u64, limit: u64, block: &[f32], out: &mut Vec<f32>) {
        let skip = (*delay_left).min(block.len());
        *delay_left -= skip;
        let room = (limit - *produced).min((block.len() - skip) as u64) as usize;
        out.extend_from_slice(&block[skip..skip + room]);
        *produced += room as u64;
    }
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
}
