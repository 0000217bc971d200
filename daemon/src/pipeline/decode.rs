//! Decoding any supported container and codec (symphonia) into mono f32 blocks at the
//! source sample rate, one packet at a time, so memory does not grow with the file.
//!
//! Nothing symphonia hands back is trusted: the sample rate and every sample are checked
//! against [`super::validate`], and a panic inside symphonia on a malformed file (a WAV at
//! 0 Hz panics in its time-base arithmetic) is caught here and reported as corrupt data.

use std::fs::File;
use std::io::{self, Read as _, Seek as _};
use std::path::{Path, PathBuf};

use symphonia::core::codecs::audio::{AudioDecoder, AudioDecoderOptions, CODEC_ID_NULL_AUDIO};
use symphonia::core::codecs::CodecParameters;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader};
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;

use super::validate::{check_sample_rate, check_samples, SampleRateError, SampleValueError};

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
    #[error(transparent)]
    SampleRate(#[from] SampleRateError),
    #[error(transparent)]
    SampleValue(#[from] SampleValueError),
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
    codec: Box<dyn AudioDecoder>,
    track_id: u32,
    info: SourceInfo,
    /// The last packet's samples, interleaved; reused so a file costs one buffer.
    interleaved: Vec<f32>,
    frames_decoded: u64,
    decode_errors: usize,
    /// The first corrupt packet's reason, for the one summary line per file.
    first_decode_error: Option<String>,
    finished: bool,
    /// A live stream has no end to check against: ending early is not truncation.
    live: bool,
}

impl Decoder {
    /// Open a file; the extension is only a hint, the content decides.
    pub fn open(path: &Path) -> Result<Self, DecodeError> {
        let fail = |kind| DecodeError { path: path.to_path_buf(), kind };
        let mut file = File::open(path).map_err(|e| fail(e.into()))?;
        let len = file.metadata().map_err(|e| fail(e.into()))?.len();
        if len == 0 {
            return Err(fail(DecodeErrorKind::Empty));
        }
        let mut prefix = Vec::with_capacity(WAV_HEADER_SCAN);
        (&mut file).take(WAV_HEADER_SCAN as u64).read_to_end(&mut prefix).map_err(|e| fail(e.into()))?;
        check_wav_header(&prefix).map_err(fail)?;
        file.rewind().map_err(|e| fail(e.into()))?;
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
        if let Err(kind) = check_wav_header(bytes.as_ref()) {
            return Err(DecodeError { path, kind });
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
        let format = shielded(|| {
            symphonia::default::get_probe().probe(&hint, stream, FormatOptions::default(), MetadataOptions::default())
        })
        .map_err(|panic| fail(DecodeErrorKind::Corrupt(panic)))?
        .map_err(|e| {
            fail(match e {
                SymphoniaError::IoError(e) if e.kind() != io::ErrorKind::UnexpectedEof => DecodeErrorKind::Io(e),
                // A header asking for more than symphonia allows (a table, a picture).
                SymphoniaError::LimitError(_) => DecodeErrorKind::Corrupt(e.to_string()),
                _ => DecodeErrorKind::UnrecognisedFormat,
            })
        })?;
        // The first audio track whose codec the container names.
        let (track, params) = format
            .tracks()
            .iter()
            .find_map(|t| match &t.codec_params {
                Some(CodecParameters::Audio(params)) if params.codec != CODEC_ID_NULL_AUDIO => Some((t, params)),
                _ => None,
            })
            .ok_or_else(|| fail(DecodeErrorKind::NoAudioTrack))?;
        let codec_name = symphonia::default::get_codecs()
            .get_audio_decoder(params.codec)
            .map(|d| d.codec.info.short_name.to_string())
            .unwrap_or_else(|| format!("{}", params.codec));
        if let Some(rate) = params.sample_rate {
            check_sample_rate(rate).map_err(|e| fail(e.into()))?;
        }
        // Gapless: encoder delay and padding are trimmed, so frame counts match the header's.
        let options = AudioDecoderOptions::default().gapless(true);
        let codec = shielded(|| symphonia::default::get_codecs().make_audio_decoder(params, &options))
            .map_err(|panic| fail(DecodeErrorKind::Corrupt(panic)))?
            .map_err(|_| fail(DecodeErrorKind::UnsupportedCodec(codec_name.clone())))?;
        let info = SourceInfo {
            sample_rate: params.sample_rate.unwrap_or(0),
            channels: params.channels.as_ref().map(|c| c.count()).unwrap_or(0),
            codec: codec_name,
            header_frames: track.num_frames,
        };
        let track_id = track.id;
        Ok(Decoder {
            path,
            format,
            codec,
            track_id,
            info,
            interleaved: Vec::new(),
            frames_decoded: 0,
            decode_errors: 0,
            first_decode_error: None,
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

    /// The samples of the block `next_mono` last returned, interleaved as decoded
    /// (`info().channels` per frame).
    pub fn last_interleaved(&self) -> &[f32] {
        &self.interleaved
    }

    /// The next block of mono samples, or `None` at the end of the stream.
    pub fn next_mono(&mut self) -> Result<Option<Vec<f32>>, DecodeError> {
        while !self.finished {
            let format = &mut self.format;
            let packet = match shielded(|| format.next_packet()).map_err(|panic| self.corrupt(panic))? {
                Ok(Some(packet)) => packet,
                Ok(None) => {
                    self.finished = true;
                    break;
                }
                // A stream cut short mid-packet ends with an unexpected EOF.
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
            if packet.track_id != self.track_id {
                continue;
            }
            let codec = &mut self.codec;
            let decoded = match shielded(|| codec.decode(&packet)) {
                Ok(result) => result,
                // Fields, not `self.corrupt`: `decoded` borrows the codec.
                Err(panic) => {
                    self.finished = true;
                    return Err(DecodeError { path: self.path.clone(), kind: DecodeErrorKind::Corrupt(panic) });
                }
            };
            let decoded = match decoded {
                Ok(decoded) => decoded,
                Err(SymphoniaError::DecodeError(reason)) => {
                    self.decode_errors += 1;
                    self.first_decode_error.get_or_insert_with(|| reason.to_string());
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
            let frames = decoded.frames();
            if frames == 0 {
                continue;
            }
            let rate = decoded.spec().rate();
            let channels = decoded.spec().channels().count();
            if channels == 0 {
                // Nothing to mix; a buffer without channels holds no samples.
                continue;
            }
            check_sample_rate(rate).map_err(|e| DecodeError { path: self.path.clone(), kind: e.into() })?;
            // Exactly `frames * channels` samples: the vector is resized to the buffer.
            decoded.copy_to_vec_interleaved(&mut self.interleaved);
            self.info.sample_rate = rate;
            self.info.channels = channels;
            let mono = downmix(&self.interleaved, channels);
            check_samples(&mono, self.frames_decoded)
                .map_err(|e| DecodeError { path: self.path.clone(), kind: e.into() })?;
            self.frames_decoded += frames as u64;
            return Ok(Some(mono));
        }
        self.check_complete()?;
        Ok(None)
    }

    fn check_complete(&self) -> Result<(), DecodeError> {
        if self.decode_errors > 0 && self.frames_decoded > 0 {
            // One line per file, however many packets were bad.
            let first = self.first_decode_error.as_deref().unwrap_or_default();
            tracing::info!(path = %self.path.display(), "skipped {} corrupt packets (first: {first})", self.decode_errors);
        }
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

    /// symphonia panicked: its state is unknown, so the stream ends here.
    fn corrupt(&mut self, panic: String) -> DecodeError {
        self.finished = true;
        self.error(DecodeErrorKind::Corrupt(panic))
    }
}

thread_local! {
    /// Set while this thread runs symphonia under [`shielded`]; the panic hook stays quiet then.
    static SHIELDED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Run a symphonia call, turning a panic into its message. The panic is expected (malformed
/// input) and becomes an error naming the file, so the process-wide hook does not print it.
pub(crate) fn shielded<T>(call: impl FnOnce() -> T) -> Result<T, String> {
    static QUIET_HOOK: std::sync::Once = std::sync::Once::new();
    QUIET_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !SHIELDED.with(|s| s.get()) {
                previous(info);
            }
        }));
    });
    SHIELDED.with(|s| s.set(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(call));
    SHIELDED.with(|s| s.set(false));
    result.map_err(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown cause".into());
        format!("the decoder failed on malformed data ({message})")
    })
}

/// How far into a file the WAV header check looks for the `fmt ` chunk.
const WAV_HEADER_SCAN: usize = 64 * 1024;

/// A RIFF/WAVE file's sample rate is checked before symphonia parses it: symphonia panics
/// on a rate of 0, and an absurd one would size everything after it. Other formats are
/// checked once symphonia has read their header.
fn check_wav_header(prefix: &[u8]) -> Result<(), DecodeErrorKind> {
    match wav_sample_rate(prefix) {
        Some(rate) => Ok(check_sample_rate(rate)?),
        None => Ok(()),
    }
}

/// The sample rate in the `fmt ` chunk of a RIFF/WAVE prefix, when the prefix holds one.
fn wav_sample_rate(prefix: &[u8]) -> Option<u32> {
    let u32_at = |at: usize| prefix.get(at..at + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    if prefix.get(0..4)? != b"RIFF" || prefix.get(8..12)? != b"WAVE" {
        return None;
    }
    let mut at = 12usize;
    while let (Some(id), Some(size)) = (prefix.get(at..at + 4), u32_at(at + 4)) {
        if id == b"fmt " {
            // format tag (2), channels (2), then the rate.
            return u32_at(at + 12);
        }
        // Chunks are padded to an even length.
        at = at.checked_add(8)?.checked_add(size as usize + (size as usize & 1))?;
    }
    None
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

    fn wav_header(rate: u32) -> Vec<u8> {
        let mut bytes = b"RIFF\0\0\0\0WAVEJUNK\x03\0\0\0abc\0fmt \x10\0\0\0\x01\0\x01\0".to_vec();
        bytes.extend_from_slice(&rate.to_le_bytes());
        bytes.extend_from_slice(&[0; 8]);
        bytes
    }

    #[test]
    fn the_wav_rate_is_found_past_other_chunks() {
        assert_eq!(wav_sample_rate(&wav_header(44100)), Some(44100));
        assert_eq!(wav_sample_rate(b"fLaC\0\0\0\0"), None);
        assert_eq!(wav_sample_rate(&wav_header(44100)[..20]), None);
    }

    #[test]
    fn a_wav_at_a_hostile_rate_is_refused_before_symphonia_sees_it() {
        for rate in [0, 1, 100_000_007, u32::MAX] {
            let error = Decoder::from_bytes("hostile.wav", wav_header(rate)).err().expect("refused");
            assert!(matches!(error.kind, DecodeErrorKind::SampleRate(_)), "{rate} Hz: {error}");
            assert!(error.to_string().starts_with("hostile.wav: sample rate"), "{error}");
        }
    }

    #[test]
    fn empty_input_is_named_as_empty() {
        let error = Decoder::from_bytes("empty.wav", Vec::<u8>::new()).err().expect("empty input must not decode");
        assert_eq!(error.to_string(), "empty.wav: the file is empty");
    }
}
