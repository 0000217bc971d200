//! A minimal feature plugin: per frame, the zero-crossing rate and the RMS level.
//!
//! Input `[segments, samples]` at the rate `info()` names; output `[segments, 2, frames]`
//! (row 0 the zero-crossing rate, crossings per sample; row 1 the RMS), `frame` samples a frame.
//! Configuration: `{"frame": N, "sample_rate": HZ}`, both optional.

use std::ffi::CStr;

use timbre_plugin_sdk::{export_plugin, Error, Kind, Output, Plugin, Tensor, TensorView};

pub struct Zcr {
    frame: usize,
    sample_rate: u32,
}

impl Plugin for Zcr {
    const NAME: &'static CStr = c"zcr";
    const VERSION: &'static CStr = c"0.1.0";
    const KIND: Kind = Kind::Feature;
    const METADATA_JSON: &'static CStr = c"{\"description\":\"zero-crossing rate and RMS per frame; an example in Rust\",\"defaults\":{\"frame\":1024,\"sample_rate\":22050}}";

    fn create(config: &serde_json::Value) -> Result<Self, Error> {
        let number = |key: &str, default: u64, range: std::ops::RangeInclusive<u64>| match config.get(key) {
            None => Ok(default),
            Some(value) => value
                .as_u64()
                .filter(|n| range.contains(n))
                .ok_or_else(|| Error::config(format!("zcr: \"{key}\" must be an integer in {range:?}, not {value}"))),
        };
        Ok(Zcr {
            frame: number("frame", 1024, 2..=1 << 20)? as usize,
            sample_rate: number("sample_rate", 22050, 1000..=384_000)? as u32,
        })
    }

    /// A feature plugin must say which sample rate it wants: the host resamples to it.
    fn info(&self) -> serde_json::Value {
        serde_json::json!({ "sample_rate": self.sample_rate, "frame": self.frame })
    }

    fn process(&mut self, input: TensorView<'_>) -> Result<Output, Error> {
        let [segments, samples] = *input.shape else {
            return Err(Error::invalid_input(format!("zcr: expected [segments, samples], got {:?}", input.shape)));
        };
        let frames = samples / self.frame;
        if frames == 0 {
            return Err(Error::invalid_input(format!("zcr: a segment of {samples} samples is shorter than a frame")));
        }
        let mut values = vec![0.0f32; segments * 2 * frames];
        for (segment, out) in input.data.chunks_exact(samples).zip(values.chunks_exact_mut(2 * frames)) {
            let (zcr, rms) = out.split_at_mut(frames);
            for (f, frame) in segment.chunks_exact(self.frame).enumerate() {
                let crossings = frame.windows(2).filter(|w| (w[0] >= 0.0) != (w[1] >= 0.0)).count();
                zcr[f] = crossings as f32 / (self.frame - 1) as f32;
                rms[f] = (frame.iter().map(|x| x * x).sum::<f32>() / self.frame as f32).sqrt();
            }
        }
        Ok(Output { values: Tensor::new(values, vec![segments, 2, frames]), embedding: None })
    }
}

export_plugin!(Zcr);
