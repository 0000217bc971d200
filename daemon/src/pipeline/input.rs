//! What the pipeline can read: a file, an encoded file held in memory (an upload), or PCM
//! (a client's samples, a live window). Each becomes mono blocks at its own sample rate.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::decode::{DecodeError, DecodeErrorKind, Decoder, SourceInfo};
use super::validate::{check_sample_rate, check_samples};

/// A piece of audio to analyse. Cheap to clone: the bytes and samples are shared.
#[derive(Debug, Clone)]
pub enum AudioInput {
    File(PathBuf),
    /// The bytes of a whole audio file; `name` is used in errors and as a format hint.
    Encoded {
        name: String,
        bytes: Arc<[u8]>,
    },
    /// Mono samples.
    Pcm {
        name: String,
        samples: Arc<[f32]>,
        sample_rate: u32,
    },
}

impl AudioInput {
    /// How errors name this input.
    pub fn name(&self) -> &Path {
        match self {
            AudioInput::File(path) => path,
            AudioInput::Encoded { name, .. } | AudioInput::Pcm { name, .. } => Path::new(name),
        }
    }
}

/// Samples handed out per block when reading PCM, like a decoder's packets.
const PCM_BLOCK: usize = 16_384;

/// Mono blocks from any [`AudioInput`], refusing audio longer than a limit before decoding
/// it when the header says how long it is, and as soon as decoding passes the limit otherwise.
pub struct BlockReader {
    blocks: Blocks,
    max_seconds: Option<f64>,
}

enum Blocks {
    Decoder(Decoder),
    Pcm { name: PathBuf, samples: Arc<[f32]>, position: usize, last: usize, info: SourceInfo },
}

impl BlockReader {
    /// `max_seconds`: the longest audio accepted, `None` for no limit (library files).
    pub fn open(input: &AudioInput, max_seconds: Option<f64>) -> Result<Self, DecodeError> {
        let blocks = match input {
            AudioInput::File(path) => Blocks::Decoder(Decoder::open(path)?),
            AudioInput::Encoded { name, bytes } => Blocks::Decoder(Decoder::from_bytes(name, bytes.clone())?),
            AudioInput::Pcm { name, samples, sample_rate } => {
                let fail = |kind: DecodeErrorKind| DecodeError { path: PathBuf::from(name), kind };
                check_sample_rate(*sample_rate).map_err(|e| fail(e.into()))?;
                if samples.is_empty() {
                    return Err(fail(DecodeErrorKind::NoAudio));
                }
                let info = SourceInfo {
                    sample_rate: *sample_rate,
                    channels: 1,
                    codec: "pcm".into(),
                    header_frames: Some(samples.len() as u64),
                };
                Blocks::Pcm { name: PathBuf::from(name), samples: samples.clone(), position: 0, last: 0, info }
            }
        };
        let reader = BlockReader { blocks, max_seconds };
        if let Some(frames) = reader.info().header_frames {
            reader.check_length(frames)?;
        }
        Ok(reader)
    }

    /// A decoder read without a length limit.
    pub fn from_decoder(decoder: Decoder) -> Self {
        BlockReader { blocks: Blocks::Decoder(decoder), max_seconds: None }
    }

    pub fn path(&self) -> &Path {
        match &self.blocks {
            Blocks::Decoder(decoder) => decoder.path(),
            Blocks::Pcm { name, .. } => name,
        }
    }

    pub fn info(&self) -> &SourceInfo {
        match &self.blocks {
            Blocks::Decoder(decoder) => decoder.info(),
            Blocks::Pcm { info, .. } => info,
        }
    }

    pub fn frames_decoded(&self) -> u64 {
        match &self.blocks {
            Blocks::Decoder(decoder) => decoder.frames_decoded(),
            Blocks::Pcm { position, .. } => *position as u64,
        }
    }

    /// The block `next_mono` last returned, as decoded: `info().channels` interleaved.
    pub fn last_interleaved(&self) -> &[f32] {
        match &self.blocks {
            Blocks::Decoder(decoder) => decoder.last_interleaved(),
            Blocks::Pcm { samples, position, last, .. } => &samples[*last..*position],
        }
    }

    pub fn next_mono(&mut self) -> Result<Option<Vec<f32>>, DecodeError> {
        let block = match &mut self.blocks {
            Blocks::Decoder(decoder) => decoder.next_mono()?,
            Blocks::Pcm { name, samples, position, last, .. } => {
                *last = *position;
                if *position >= samples.len() {
                    return Ok(None);
                }
                let end = (*position + PCM_BLOCK).min(samples.len());
                let block = samples[*position..end].to_vec();
                check_samples(&block, *position as u64)
                    .map_err(|e| DecodeError { path: name.clone(), kind: e.into() })?;
                *position = end;
                Some(block)
            }
        };
        self.check_length(self.frames_decoded())?;
        Ok(block)
    }

    fn check_length(&self, frames: u64) -> Result<(), DecodeError> {
        let Some(limit_s) = self.max_seconds else { return Ok(()) };
        let rate = self.info().sample_rate;
        if rate > 0 && frames as f64 > limit_s * rate as f64 {
            return Err(DecodeError { path: self.path().to_path_buf(), kind: DecodeErrorKind::TooLong { limit_s } });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcm(seconds: f64) -> AudioInput {
        let samples = vec![0.0f32; (seconds * 8000.0) as usize];
        AudioInput::Pcm { name: "pcm".into(), samples: samples.into(), sample_rate: 8000 }
    }

    #[test]
    fn pcm_longer_than_the_limit_is_refused_before_reading() {
        let error = BlockReader::open(&pcm(10.0), Some(5.0)).err().expect("refused");
        assert!(matches!(error.kind, DecodeErrorKind::TooLong { limit_s } if limit_s == 5.0), "{error}");
        assert!(BlockReader::open(&pcm(10.0), Some(10.0)).is_ok());
        assert!(BlockReader::open(&pcm(10.0), None).is_ok());
    }

    #[test]
    fn pcm_with_a_bad_sample_names_it() {
        let mut samples = vec![0.0f32; 20_000];
        samples[17_000] = f32::NAN;
        let input = AudioInput::Pcm { name: "pcm".into(), samples: samples.into(), sample_rate: 8000 };
        let mut reader = BlockReader::open(&input, None).expect("open");
        assert!(reader.next_mono().expect("first block is clean").is_some());
        let error = reader.next_mono().err().expect("the second block holds the NaN");
        assert_eq!(error.to_string(), "pcm: sample 17000 is NaN: samples must be finite and within ±1000");
    }
}
