//! What the pipeline can read: a file, an encoded file held in memory (an upload), or PCM
//! (a client's samples, a live window). Each becomes mono blocks at its own sample rate.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::decode::{DecodeError, Decoder, SourceInfo};

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

/// Mono blocks from any [`AudioInput`].
pub enum BlockReader {
    Decoder(Decoder),
    Pcm { name: PathBuf, samples: Arc<[f32]>, position: usize, info: SourceInfo },
}

impl BlockReader {
    pub fn open(input: &AudioInput) -> Result<Self, DecodeError> {
        Ok(match input {
            AudioInput::File(path) => BlockReader::Decoder(Decoder::open(path)?),
            AudioInput::Encoded { name, bytes } => BlockReader::Decoder(Decoder::from_bytes(name, bytes.clone())?),
            AudioInput::Pcm { name, samples, sample_rate } => BlockReader::Pcm {
                name: PathBuf::from(name),
                samples: samples.clone(),
                position: 0,
                info: SourceInfo { sample_rate: *sample_rate, channels: 1, codec: "pcm".into(), header_frames: None },
            },
        })
    }

    pub fn path(&self) -> &Path {
        match self {
            BlockReader::Decoder(decoder) => decoder.path(),
            BlockReader::Pcm { name, .. } => name,
        }
    }

    pub fn info(&self) -> &SourceInfo {
        match self {
            BlockReader::Decoder(decoder) => decoder.info(),
            BlockReader::Pcm { info, .. } => info,
        }
    }

    pub fn frames_decoded(&self) -> u64 {
        match self {
            BlockReader::Decoder(decoder) => decoder.frames_decoded(),
            BlockReader::Pcm { position, .. } => *position as u64,
        }
    }

    pub fn next_mono(&mut self) -> Result<Option<Vec<f32>>, DecodeError> {
        match self {
            BlockReader::Decoder(decoder) => decoder.next_mono(),
            BlockReader::Pcm { samples, position, .. } => {
                if *position >= samples.len() {
                    return Ok(None);
                }
                let end = (*position + PCM_BLOCK).min(samples.len());
                let block = samples[*position..end].to_vec();
                *position = end;
                Ok(Some(block))
            }
        }
    }
}
