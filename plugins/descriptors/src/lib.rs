//! Track-level musical descriptors: tempo, key and loudness.
//!
//! One [`Analyser`] takes a whole track as it is decoded, chunk by chunk, and keeps only what each
//! descriptor needs to remember (an onset envelope, a pitch-class circle, loudness blocks), never
//! the samples. The plugin crate (`plugin/`) puts it behind the plugin ABI's descriptor kind; this
//! crate has no `export_plugin!`, so the daemon can link it for [`loudness::album_gain`].

pub mod key;
pub mod loudness;
pub mod onset;
pub mod oversample;
pub mod profiles;
pub mod spectrum;
pub mod tempo;

use serde::{Deserialize, Serialize};

pub use key::{Key, Mode};
pub use loudness::{album_gain, BlockHistogram, Loudness};
pub use tempo::Tempo;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// One of [`profiles::PROFILES`].
    pub key_profile: String,
    /// Count a mono channel twice (+3.01 LU), as played on two loudspeakers; off, as ffmpeg.
    pub dual_mono: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config { key_profile: profiles::DEFAULT_PROFILE.to_string(), dual_mono: false }
    }
}

/// Everything measured on one track.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Descriptors {
    pub tempo: Option<Tempo>,
    pub key: Option<Key>,
    pub loudness: Loudness,
    #[serde(skip)]
    pub blocks: BlockHistogram,
}

pub struct Analyser {
    config: Config,
    profile: &'static profiles::Profile,
    channels: usize,
    onset: onset::OnsetEnvelope,
    chroma: key::Chromagram,
    loudness: loudness::LoudnessMeter,
    mono: Vec<f32>,
}

impl Analyser {
    /// An analyser for one track decoded at `sample_rate` with `channels` channels.
    pub fn new(config: &Config, sample_rate: u32, channels: u32) -> Result<Self, String> {
        let profile = profiles::by_name(&config.key_profile).ok_or_else(|| {
            let known: Vec<_> = profiles::PROFILES.iter().map(|p| p.name).collect();
            format!("unknown key_profile {:?}; known: {}", config.key_profile, known.join(", "))
        })?;
        if !(1000..=768_000).contains(&sample_rate) || !(1..=32).contains(&channels) {
            return Err(format!("cannot analyse {channels} channels at {sample_rate} Hz"));
        }
        Ok(Analyser {
            config: config.clone(),
            profile,
            channels: channels as usize,
            onset: onset::OnsetEnvelope::new(sample_rate),
            chroma: key::Chromagram::new(sample_rate),
            loudness: loudness::LoudnessMeter::new(sample_rate, channels, config.dual_mono)?,
            mono: Vec::new(),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Feed the next chunk, interleaved; any length that is a whole number of frames.
    pub fn push(&mut self, interleaved: &[f32]) -> Result<(), String> {
        if !interleaved.len().is_multiple_of(self.channels) {
            return Err(format!(
                "{} samples is not a whole number of {}-channel frames",
                interleaved.len(),
                self.channels
            ));
        }
        if let Some(i) = interleaved.iter().position(|x| !x.is_finite()) {
            return Err(format!("sample {i} is not finite"));
        }
        self.loudness.push(interleaved)?;
        // Tempo and key hear the mix, as a listener does.
        self.mono.clear();
        let scale = 1.0 / self.channels as f32;
        self.mono.extend(interleaved.chunks_exact(self.channels).map(|f| f.iter().sum::<f32>() * scale));
        self.onset.push(&self.mono);
        self.chroma.push(&self.mono);
        Ok(())
    }

    /// The track's descriptors. Call once, at the end of the track.
    pub fn finish(&mut self) -> Descriptors {
        Descriptors {
            tempo: tempo::estimate(self.onset.envelope(), self.onset.frame_rate()),
            key: self.chroma.key(self.profile),
            loudness: self.loudness.finish(),
            blocks: self.loudness.blocks().clone(),
        }
    }

    /// The chromagram, for evaluating other key profiles on the same track.
    pub fn chromagram(&self) -> &key::Chromagram {
        &self.chroma
    }
}

/// Analyse a whole track held in memory (tests, benchmarks).
pub fn analyse(config: &Config, sample_rate: u32, channels: u32, interleaved: &[f32]) -> Result<Descriptors, String> {
    let mut analyser = Analyser::new(config, sample_rate, channels)?;
    // The chunk size the daemon uses does not matter; a second at a time, as a decoder might.
    for chunk in interleaved.chunks(sample_rate as usize * channels as usize) {
        analyser.push(chunk)?;
    }
    Ok(analyser.finish())
}
