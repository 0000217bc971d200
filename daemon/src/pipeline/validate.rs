//! Every input is hostile until checked: the documented ranges that audio must fall in before
//! any library sees it or any allocation depends on it.

use std::ops::RangeInclusive;

/// Sample rates timbre accepts, from telephone-grade to the highest rates of studio formats.
/// Anything else is refused as bad audio: a rate outside this range is a damaged or hostile
/// header, and a resampler sized for it could need gigabytes.
pub const SAMPLE_RATES: RangeInclusive<u32> = 1_000..=768_000;

/// Largest sample magnitude accepted: 60 dB above full scale. Float audio may exceed ±1 a
/// little; values far beyond it (or NaN and infinities) overflow the power spectrum.
pub const MAX_SAMPLE_MAGNITUDE: f32 = 1000.0;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("sample rate {rate} Hz is outside the supported {} to {} Hz", SAMPLE_RATES.start(), SAMPLE_RATES.end())]
pub struct SampleRateError {
    pub rate: u32,
}

pub fn check_sample_rate(rate: u32) -> Result<(), SampleRateError> {
    if SAMPLE_RATES.contains(&rate) {
        Ok(())
    } else {
        Err(SampleRateError { rate })
    }
}

/// A sample that is not finite, or beyond [`MAX_SAMPLE_MAGNITUDE`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("sample {index} is {value}: samples must be finite and within ±{MAX_SAMPLE_MAGNITUDE}")]
pub struct SampleValueError {
    /// Index of the sample in the stream it was checked in.
    pub index: u64,
    pub value: f32,
}

/// Check `samples`, which start at index `first` of their stream.
pub fn check_samples(samples: &[f32], first: u64) -> Result<(), SampleValueError> {
    // `!(|v| <= MAX)` is also true for NaN.
    match samples.iter().position(|v| !(v.abs() <= MAX_SAMPLE_MAGNITUDE)) {
        None => Ok(()),
        Some(i) => Err(SampleValueError { index: first + i as u64, value: samples[i] }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_at_the_edges() {
        assert!(check_sample_rate(1_000).is_ok());
        assert!(check_sample_rate(768_000).is_ok());
        for rate in [0, 999, 768_001, 100_000_007, u32::MAX] {
            assert_eq!(check_sample_rate(rate), Err(SampleRateError { rate }));
        }
    }

    #[test]
    fn non_finite_and_huge_samples_are_found_with_their_index() {
        assert!(check_samples(&[0.0, -1.0, 1.5, 999.0], 0).is_ok());
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1e30, -1001.0] {
            let error = check_samples(&[0.0, 0.5, bad], 10).expect_err("refused");
            assert_eq!(error.index, 12);
            assert!(error.to_string().starts_with("sample 12 is"), "{error}");
        }
    }
}
