//! The analysis pipeline, one stage per module, in the order the audio flows:
//! [`decode`] → [`resample`] → [`segment`] → [`features`] → [`classify`].
//!
//! [`SegmentStream`] joins the first three so a track is read in segments and memory
//! stays flat however long the file is.

pub mod analysis;
pub mod classify;
pub mod decode;
pub mod descriptors;
pub mod features;
pub mod heads;
pub mod input;
pub mod resample;
pub mod segment;
pub mod validate;

use std::path::Path;

pub use classify::{Classifier, TrackPrediction};
pub use decode::{DecodeError, DecodeErrorKind, Decoder, SourceInfo};
pub use features::{FeatureBatch, FeatureExtractor};
pub use input::{AudioInput, BlockReader};
pub use resample::{ResampleError, Resampler};
pub use segment::{Segment, Segmenter};
pub use timbre_model_manifest::Padding;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("{}: {source}", path.display())]
    Resample { path: std::path::PathBuf, source: ResampleError },
    #[error("{}: {source}", path.display())]
    Plugin { path: std::path::PathBuf, source: crate::plugin_host::PluginError },
    #[error("{}: {reason}", path.display())]
    Features { path: std::path::PathBuf, reason: String },
    #[error("{}: the analysis was cancelled (its caller went away)", path.display())]
    Cancelled { path: std::path::PathBuf },
}

/// What one analysis may spend: how much audio, and for how long its caller still waits.
#[derive(Clone, Copy)]
pub struct Budget<'a> {
    /// Audio longer than this is refused before or while decoding; `None` for no limit.
    pub max_seconds: Option<f64>,
    /// Asked between segments; `true` stops the analysis (the caller has gone away).
    pub cancelled: &'a dyn Fn() -> bool,
}

impl Budget<'_> {
    /// No limit, never cancelled: offline commands.
    pub const UNLIMITED: Budget<'static> = Budget { max_seconds: None, cancelled: &|| false };
}

/// How a track is cut before feature extraction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SegmentOptions {
    /// Segment length in seconds.
    pub seconds: f64,
    /// Keep a final partial segment holding at least this fraction of a segment.
    pub min_tail: f64,
    /// How a partial segment is completed: silence, or its own audio repeated.
    pub padding: Padding,
}

impl Default for SegmentOptions {
    fn default() -> Self {
        SegmentOptions { seconds: 3.0, min_tail: 0.5, padding: Padding::Zeros }
    }
}

/// A track read as fixed-length mono segments at a target sample rate.
pub struct SegmentStream {
    decoder: BlockReader,
    resampler: Option<Resampler>,
    segmenter: Segmenter,
    target_rate: u32,
    ready: std::collections::VecDeque<Segment>,
    resampled: Vec<f32>,
    done: bool,
    /// Descriptor plugins hearing the decoded chunks, while a track runs.
    descriptors: Option<descriptors::DescriptorSet>,
}

impl SegmentStream {
    /// `max_seconds`: audio longer than this is refused (from the header when it says, else
    /// as soon as decoding passes it); `None` for no limit.
    pub fn open(
        input: &AudioInput,
        target_rate: u32,
        options: SegmentOptions,
        max_seconds: Option<f64>,
    ) -> Result<Self, PipelineError> {
        Ok(Self::new(BlockReader::open(input, max_seconds)?, target_rate, options))
    }

    pub fn new(decoder: BlockReader, target_rate: u32, options: SegmentOptions) -> Self {
        let len = ((options.seconds * target_rate as f64).round() as usize).max(1);
        SegmentStream {
            decoder,
            resampler: None,
            segmenter: Segmenter::new(len, target_rate, options.min_tail).with_padding(options.padding),
            target_rate,
            ready: Default::default(),
            resampled: Vec::new(),
            done: false,
            descriptors: None,
        }
    }

    /// Feed each decoded chunk to `set` as well; [`Self::take_descriptors`] gives it back.
    pub fn with_descriptors(mut self, set: descriptors::DescriptorSet) -> Self {
        self.descriptors = Some(set);
        self
    }

    pub fn take_descriptors(&mut self) -> Option<descriptors::DescriptorSet> {
        self.descriptors.take()
    }

    pub fn source(&self) -> &SourceInfo {
        self.decoder.info()
    }

    /// Source duration in seconds, from the frames decoded so far (the whole track once drained).
    pub fn decoded_seconds(&self) -> f64 {
        let rate = self.decoder.info().sample_rate.max(1);
        self.decoder.frames_decoded() as f64 / rate as f64
    }

    /// Samples per segment at the target rate.
    pub fn segment_len(&self) -> usize {
        self.segmenter.segment_len()
    }

    /// The next segment, or `None` at the end of the track.
    pub fn next_segment(&mut self) -> Result<Option<Segment>, PipelineError> {
        while self.ready.is_empty() && !self.done {
            let mut produced = Vec::new();
            match self.decoder.next_mono()? {
                Some(block) => {
                    let rate = self.decoder.info().sample_rate;
                    if let Some(set) = &mut self.descriptors {
                        set.push(self.decoder.last_interleaved(), rate, self.decoder.info().channels);
                    }
                    let resampler = match &mut self.resampler {
                        Some(r) => r,
                        slot => slot.insert(Resampler::new(rate, self.target_rate).map_err(|source| {
                            PipelineError::Resample { path: self.decoder.path().to_path_buf(), source }
                        })?),
                    };
                    self.resampled.clear();
                    resampler.push(&block, &mut self.resampled).map_err(|source| PipelineError::Resample {
                        path: self.decoder.path().to_path_buf(),
                        source,
                    })?;
                    self.segmenter.push(&self.resampled, &mut produced);
                }
                None => {
                    self.done = true;
                    if let Some(resampler) = &mut self.resampler {
                        self.resampled.clear();
                        resampler.finish(&mut self.resampled).map_err(|source| PipelineError::Resample {
                            path: self.decoder.path().to_path_buf(),
                            source,
                        })?;
                        self.segmenter.push(&self.resampled, &mut produced);
                    }
                    produced.extend(self.segmenter.finish());
                }
            }
            self.ready.extend(produced);
        }
        Ok(self.ready.pop_front())
    }
}

/// Decode a whole file to mono at `target_rate`, refusing files longer than `max_seconds`.
/// For commands that need the whole signal at once (whole-file features); analysis streams.
pub fn decode_whole(path: &Path, target_rate: u32, max_seconds: f64) -> Result<(Vec<f32>, SourceInfo), PipelineError> {
    let mut reader = BlockReader::open(&AudioInput::File(path.to_path_buf()), Some(max_seconds))?;
    let mut resampler: Option<Resampler> = None;
    let mut out = Vec::new();
    let resample_error = |source| PipelineError::Resample { path: path.to_path_buf(), source };
    while let Some(block) = reader.next_mono()? {
        let rate = reader.info().sample_rate;
        let resampler = match &mut resampler {
            Some(r) => r,
            slot => slot.insert(Resampler::new(rate, target_rate).map_err(resample_error)?),
        };
        resampler.push(&block, &mut out).map_err(resample_error)?;
    }
    if let Some(resampler) = &mut resampler {
        resampler.finish(&mut out).map_err(resample_error)?;
    }
    Ok((out, reader.info().clone()))
}
