//! Loudness by EBU R128 / ITU-R BS.1770-4 (the `ebur128` crate, a port of libebur128), on the
//! channels and rate as decoded: downmixing or resampling first would change the answer
//! (a resampler's filter moves true peaks; a mono mix cancels out-of-phase content).
//!
//! Mono: BS.1770 weights a single channel 1.0, as for a mono loudspeaker; ffmpeg's `ebur128`
//! filter does the same unless told `dualmono=true`, and so do we unless `dual_mono` is set
//! (then mono counts twice, +3.01 LU, as if played on both loudspeakers of a stereo pair).
//!
//! ReplayGain 2.0: gain = −18 LUFS − integrated loudness; the peak is the true peak, linear.
//! Album gain needs the gating blocks of every track on the album, long after each track's
//! analysis: each track therefore keeps a histogram of its block loudness ([`BlockHistogram`]),
//! and [`album_gain`] gates their sum as BS.1770 gates one long programme.

use ebur128::{Channel, EbuR128, Mode};
use serde::Serialize;

use crate::oversample::Upsampler;

/// ReplayGain 2.0's reference level.
pub const REPLAYGAIN_REFERENCE_LUFS: f64 = -18.0;

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Loudness {
    /// Integrated loudness, LUFS; `None` for a track with no block above the −70 LUFS gate.
    pub integrated_lufs: Option<f64>,
    /// Loudness range, LU.
    pub range_lu: f64,
    /// Highest true peak over the channels, dBTP.
    pub true_peak_dbtp: f64,
    pub replaygain_track_gain_db: Option<f64>,
    /// The true peak, linear (1.0 = full scale), as ReplayGain 2.0 taggers write it.
    pub replaygain_track_peak: f64,
}

pub struct LoudnessMeter {
    meter: EbuR128,
    /// Below 48 kHz: the true peak is read on an upsampled copy (see `oversample`).
    peak: Option<(Upsampler, EbuR128)>,
    channels: usize,
    /// Frames in a 100 ms step, rounded as the meter rounds them, so our steps end where its
    /// gating blocks do.
    step: usize,
    /// Frames into the current step.
    into_step: usize,
    steps: u64,
    blocks: BlockHistogram,
}

impl LoudnessMeter {
    pub fn new(sample_rate: u32, channels: u32, dual_mono: bool) -> Result<Self, String> {
        let factor = Upsampler::factor_for(sample_rate);
        let (mode, peak) = if factor > 1 {
            let rate = sample_rate * factor as u32;
            let peak = EbuR128::new(channels, rate, Mode::TRUE_PEAK).map_err(|e| format!("loudness: {e:?}"))?;
            (Mode::I | Mode::LRA, Some((Upsampler::new(factor, channels as usize), peak)))
        } else {
            (Mode::I | Mode::LRA | Mode::TRUE_PEAK, None)
        };
        let mut meter = EbuR128::new(channels, sample_rate, mode).map_err(|e| format!("loudness: {e:?}"))?;
        if channels == 1 && dual_mono {
            meter.set_channel(0, Channel::DualMono).map_err(|e| format!("loudness: {e:?}"))?;
        }
        Ok(LoudnessMeter {
            meter,
            peak,
            channels: channels as usize,
            step: (sample_rate as usize + 5) / 10,
            into_step: 0,
            steps: 0,
            blocks: BlockHistogram::default(),
        })
    }

    /// Feed interleaved frames.
    pub fn push(&mut self, interleaved: &[f32]) -> Result<(), String> {
        if let Some((upsampler, peak)) = &mut self.peak {
            peak.add_frames_f32(upsampler.process(interleaved)).map_err(|e| format!("loudness: {e:?}"))?;
        }
        let mut frames = interleaved;
        while !frames.is_empty() {
            let take = (self.step - self.into_step).min(frames.len() / self.channels);
            if take == 0 {
                break;
            }
            let (now, rest) = frames.split_at(take * self.channels);
            self.meter.add_frames_f32(now).map_err(|e| format!("loudness: {e:?}"))?;
            frames = rest;
            self.into_step += take;
            if self.into_step == self.step {
                self.into_step = 0;
                self.steps += 1;
                // Every 100 ms after the first 400 ms, the momentary loudness is exactly the
                // gating block that has just ended (400 ms, 75 % overlap).
                if self.steps >= 4 {
                    if let Ok(block) = self.meter.loudness_momentary() {
                        self.blocks.add(block);
                    }
                }
            }
        }
        Ok(())
    }

    pub fn finish(&mut self) -> Loudness {
        if let Some((upsampler, peak)) = &mut self.peak {
            let _ = peak.add_frames_f32(&upsampler.flush());
        }
        let peak_meter = self.peak.as_ref().map_or(&self.meter, |(_, meter)| meter);
        let integrated = self.meter.loudness_global().ok().filter(|l| l.is_finite());
        let range = self.meter.loudness_range().ok().filter(|l| l.is_finite()).unwrap_or(0.0);
        let peak = (0..self.channels as u32).filter_map(|c| peak_meter.true_peak(c).ok()).fold(0.0f64, f64::max);
        Loudness {
            integrated_lufs: integrated,
            range_lu: range,
            true_peak_dbtp: 20.0 * peak.max(1e-10).log10(),
            replaygain_track_gain_db: integrated.map(|l| REPLAYGAIN_REFERENCE_LUFS - l),
            replaygain_track_peak: peak,
        }
    }

    /// The track's gating blocks, for [`album_gain`].
    pub fn blocks(&self) -> &BlockHistogram {
        &self.blocks
    }
}

/// Gating-block loudness of one track, in 0.1 LU bins from −70 to +10 LUFS (libebur128's
/// histogram mode uses the same): 800 counts, mostly zero (store them sparse), and an album
/// gain from them is within a few hundredths of a LU of one measured over the joined tracks.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockHistogram {
    counts: Vec<f32>,
}

const HISTOGRAM_FLOOR: f64 = -70.0;
const HISTOGRAM_BINS_PER_LU: f64 = 10.0;
pub const HISTOGRAM_BINS: usize = 800;

impl Default for BlockHistogram {
    fn default() -> Self {
        BlockHistogram { counts: vec![0.0; HISTOGRAM_BINS] }
    }
}

impl BlockHistogram {
    /// Rebuild from stored counts (the plugin's `finish` state).
    pub fn from_counts(counts: Vec<f32>) -> Option<Self> {
        (counts.len() == HISTOGRAM_BINS).then_some(BlockHistogram { counts })
    }

    pub fn counts(&self) -> &[f32] {
        &self.counts
    }

    fn add(&mut self, lufs: f64) {
        // Blocks below −70 LUFS fail the absolute gate and never count.
        if lufs.is_finite() && lufs >= HISTOGRAM_FLOOR {
            let bin = ((lufs - HISTOGRAM_FLOOR) * HISTOGRAM_BINS_PER_LU) as usize;
            self.counts[bin.min(HISTOGRAM_BINS - 1)] += 1.0;
        }
    }

    fn centre(bin: usize) -> f64 {
        HISTOGRAM_FLOOR + (bin as f64 + 0.5) / HISTOGRAM_BINS_PER_LU
    }
}

/// Integrated loudness of several tracks played as one programme (BS.1770 gating over all their
/// blocks): the loudness an album gain is computed from.
pub fn gated_loudness(tracks: &[&BlockHistogram]) -> Option<f64> {
    let energy = |lufs: f64| 10f64.powf((lufs + 0.691) / 10.0);
    let mean_above = |threshold: f64| {
        let (mut sum, mut n) = (0.0, 0.0);
        for track in tracks {
            for (bin, &count) in track.counts.iter().enumerate() {
                let lufs = BlockHistogram::centre(bin);
                if count > 0.0 && lufs >= threshold {
                    sum += count as f64 * energy(lufs);
                    n += count as f64;
                }
            }
        }
        (n > 0.0).then(|| sum / n)
    };
    let absolute = mean_above(HISTOGRAM_FLOOR)?;
    let relative = 10.0 * absolute.log10() - 0.691 - 10.0;
    let gated = mean_above(relative)?;
    Some(10.0 * gated.log10() - 0.691)
}

/// ReplayGain 2.0 album gain, dB, for the tracks of one album.
pub fn album_gain(tracks: &[&BlockHistogram]) -> Option<f64> {
    gated_loudness(tracks).map(|l| REPLAYGAIN_REFERENCE_LUFS - l)
}
