//! Decoding any supported container and codec (symphonia) into mono f32 blocks at the
//! source sample rate, one packet at a time, so memory does not grow with the file.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{Decoder as CodecDecoder, DecoderOptions, CODEC_TYPE_NULL};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::{FormatOptions, FormatReader};
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

/// Corrupt packets are skipped, as players do, but a stream made mostly of them is an error.
const MAX_DECODE_ERRORS: usize = 32;

#[derive(Debug, thiserror::Error)]
#[error("{}: {kind}", path.display())]
pub struct DecodeError {
    pub path: PathBuf,
    pub kind: DecodeErrorKind,
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeErrorKind {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("the file is empty")]
    Empty,
    #[error("not a recognised audio format (supported: WAV, FLAC, MP3, Ogg Vorbis, AAC/M4A, ALAC)")]
    UnrecognisedFormat,
    #[error("the file has no audio track")]
    NoAudioTrack,
    #[error("unsupported codec: {0}")]
    UnsupportedCodec(String),
    #[error("corrupt audio data: {0}")]
    Corrupt(String),
    #[error("the file is truncated: its header promises {expected} frames, only {decoded} could be read")]
    Truncated { expected: u64, decoded: u64 },
    #[error("no audio could be decoded from it")]
    NoAudio,
    #[error("it is longer than the limit of {limit_s} s")]
    TooLong { limit_s: f64 },
}

/// What the container says about the audio.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SourceInfo {
    pub sample_rate: u32,
    pub channels: usize,
    pub codec: String,
    /// Frames the header promises, when it says.
    pub header_frames: Option<u64>,
}

/// A packet-by-packet decoder that yields mono samples.
pub struct Decoder {
    path: PathBuf,
    format: Box<dyn FormatReader>,
    codec: Box<dyn CodecDecoder>,
    track_id: u32,
    info: SourceInfo,
    buffer: Option<SampleBuffer<f32>>,
    frames_decoded: u64,
    decode_errors: usize,
    finished: bool,
    /// A live stream has no end to check against: ending early is not truncation.
    live: bool,
}

impl Decoder {
    /// Open a file; the extension is only a hint, the content decides.
    pub fn open(path: &Path) -> Result<Self, DecodeError> {
        let fail = |kind| DecodeError { path: path.to_path_buf(), kind };
        let file = File::open(path).map_err(|e| fail(e.into()))?;
        let len = file.metadata().map_err(|e| fail(e.into()))?.len();
        if len == 0 {
            return Err(fail(DecodeErrorKind::Empty));
        }
        let mut hint = Hint::new();
        if let Some(extension) = path.extension().and_then(|e| e.to_str()) {
            hint.with_extension(extension);
        }
        Self::from_source(path.to_path_buf(), Box::new(file), hint)
    }

    /// Decode from memory (an uploaded file); `name` is used in errors and as a format hint.
    pub fn from_bytes(name: &str, bytes: impl AsRef<[u8]> + Send + Sync + 'static) -> Result<Self, DecodeError> {
        let path = PathBuf::from(name);
        if bytes.as_ref().is_empty() {
            return Err(DecodeError { path, kind: DecodeErrorKind::Empty });
        }
        let mut hint = Hint::new();
        if let Some(extension) = path.extension().and_then(|e| e.to_str()) {
            hint.with_extension(extension);
        }
        Self::from_source(path, Box::new(io::Cursor::new(bytes)), hint)
    }

    /// Decode a live stream (an HTTP body wrapped in symphonia's `ReadOnlySource`) as it
    /// arrives; `name` (the URL) is used in errors, `hint` usually comes from the Content-Type.
    pub fn from_stream(name: &str, source: Box<dyn MediaSource>, hint: Hint) -> Result<Self, DecodeError> {
        let mut decoder = Self::from_source(PathBuf::from(name), source, hint)?;
        decoder.live = true;
        Ok(decoder)
    }

    fn from_source(path: PathBuf, source: Box<dyn MediaSource>, hint: Hint) -> Result<Self, DecodeError> {
        let fail = |kind| DecodeError { path: path.clone(), kind };
        let stream = MediaSourceStream::new(source, Default::default());
        let format_options = FormatOptions { enable_gapless: true, ..Default::default() };
        let probed = symphonia::default::get_probe()
            .format(&hint, stream, &format_options, &MetadataOptions::default())
            .map_err(|e| {
                fail(match e {
                    SymphoniaError::IoError(e) if e.kind() != io::ErrorKind::UnexpectedEof => DecodeErrorKind::Io(e),
                    _ => DecodeErrorKind::UnrecognisedFormat,
                })
            })?;
        let format = probed.format;
        let track = format
            .tracks()
            .iter()
            .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
            .ok_or_else(|| fail(DecodeErrorKind::NoAudioTrack))?;
        let params = &track.codec_params;
        let codec_name = symphonia::default::get_codecs()
            .get_codec(params.codec)
            .map(|d| d.short_name.to_string())
            .unwrap_or_else(|| format!("{}", params.codec));
        let codec = symphonia::default::get_codecs()
            .make(params, &DecoderOptions::default())
            .map_err(|_| fail(DecodeErrorKind::UnsupportedCodec(codec_name.clone())))?;
        let info = SourceInfo {
            sample_rate: params.sample_rate.unwrap_or(0),
            channels: params.channels.map(|c| c.count()).unwrap_or(0),
            codec: codec_name,
            header_frames: params.n_frames,
        };
        let track_id = track.id;
        Ok(Decoder {
            path,
            format,
            codec,
            track_id,
            info,
            buffer: None,
            frames_decoded: 0,
            decode_errors: 0,
            finished: false,
            live: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Source properties; the sample rate and channels are filled in from the first
    /// decoded packet when the container does not state them.
    pub fn info(&self) -> &SourceInfo {
        &self.info
    }

    pub fn frames_decoded(&self) -> u64 {
        self.frames_decoded
    }

    /// The next block of mono samples, or `None` at the end of the stream.
    pub fn next_mono(&mut self) -> Result<Option<Vec<f32>>, DecodeError> {
        while !self.finished {
            let packet = match self.format.next_packet() {
                Ok(packet) => packet,
                // symphonia reports the end of a stream as an unexpected EOF.
                Err(SymphoniaError::IoError(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    self.finished = true;
                    break;
                }
                Err(SymphoniaError::ResetRequired) => {
                    self.finished = true;
                    break;
                }
                Err(SymphoniaError::IoError(e)) => return Err(self.error(DecodeErrorKind::Io(e))),
                Err(e) => return Err(self.error(DecodeErrorKind::Corrupt(e.to_string()))),
            };
            if packet.track_id() != self.track_id {
                continue;
            }
            let decoded = match self.codec.decode(&packet) {
                Ok(decoded) => decoded,
                Err(SymphoniaError::DecodeError(reason)) => {
                    self.decode_errors += 1;
                    tracing::debug!(path = %self.path.display(), "skipping corrupt packet: {reason}");
                    if self.decode_errors > MAX_DECODE_ERRORS {
                        return Err(self.error(DecodeErrorKind::Corrupt(format!(
                            "more than {MAX_DECODE_ERRORS} corrupt packets (last: {reason})"
                        ))));
                    }
                    continue;
                }
                Err(SymphoniaError::IoError(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    self.finished = true;
                    break;
                }
                Err(e) => return Err(self.error(DecodeErrorKind::Corrupt(e.to_string()))),
            };
            let spec = *decoded.spec();
            let frames = decoded.frames();
            if frames == 0 {
                continue;
            }
            let channels = spec.channels.count().max(1);
            self.info.sample_rate = spec.rate;
            self.info.channels = channels;
            let buffer = match &mut self.buffer {
                Some(b) if b.capacity() >= decoded.capacity() * channels => b,
                slot => slot.insert(SampleBuffer::new(decoded.capacity() as u64, spec)),
            };
            buffer.copy_interleaved_ref(decoded);
            let interleaved = &buffer.samples()[..frames * channels];
            self.frames_decoded += frames as u64;
            return Ok(Some(downmix(interleaved, channels)));
        }
        self.check_complete()?;
        Ok(None)
    }

    fn check_complete(&self) -> Result<(), DecodeError> {
        if self.frames_decoded == 0 {
            return Err(self.error(if self.decode_errors > 0 {
                DecodeErrorKind::Corrupt(format!("all {} packets were corrupt", self.decode_errors))
            } else {
                DecodeErrorKind::NoAudio
            }));
        }
        // Headers are exact for WAV and FLAC; allow one large packet of slack for lossy codecs.
        if let Some(expected) = self.info.header_frames.filter(|_| !self.live) {
            if self.frames_decoded + 8192 < expected {
                return Err(self.error(DecodeErrorKind::Truncated { expected, decoded: self.frames_decoded }));
            }
        }
        Ok(())
    }

    fn error(&self, kind: DecodeErrorKind) -> DecodeError {
        DecodeError { path: self.path.clone(), kind }
    }
}

/// Average the channels of interleaved frames.
pub fn downmix(interleaved: &[f32], channels: usize) -> Vec<f32> {
    if channels == 1 {
        return interleaved.to_vec();
    }
    let scale = 1.0 / channels as f32;
    interleaved.chunks_exact(channels).map(|frame| frame.iter().sum::<f32>() * scale).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downmix_averages_channels() {
        assert_eq!(downmix(&[1.0, 0.0, 0.5, 0.5], 2), vec![0.5, 0.5]);
        assert_eq!(downmix(&[0.25, 0.5], 1), vec![0.25, 0.5]);
    }

    #[test]
    fn random_bytes_are_not_audio() {
        let bytes: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        let error = Decoder::from_bytes("noise.flac", bytes).err().expect("random bytes must not decode");
        assert!(matches!(error.kind, DecodeErrorKind::UnrecognisedFormat), "{error}");
        assert!(error.to_string().contains("noise.flac"));
    }

    #[test]
    fn empty_input_is_named_as_empty() {
        let error = Decoder::from_bytes("empty.wav", Vec::<u8>::new()).err().expect("empty input must not decode");
        assert_eq!(error.to_string(), "empty.wav: the file is empty");
    }
}
