//! Descriptor plugins in the decode loop: each loaded descriptor plugin hears the track's
//! decoded chunks (before downmix and resampling, or mono at its rate when its info asks so)
//! and answers named track-level values at the end.
//!
//! A descriptor plugin's failure never fails the track: its result carries the error and no
//! values, and the models' predictions are kept.

use serde::Serialize;

use crate::pipeline::Resampler;
use crate::plugin_host::{PluginInstance, PluginKind, PluginRegistry};

/// What one descriptor plugin said about one track.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DescriptorResult {
    pub plugin: String,
    /// The plugin's version and configuration: a change re-runs it on the library.
    pub version: String,
    /// `(name, value)` in the plugin's order; NaN where the plugin left a value undefined.
    pub values: Vec<(String, f64)>,
    /// State the plugin asked the host to keep (the descriptors plugin's loudness histogram).
    #[serde(skip)]
    pub state: Vec<f32>,
    /// Why there are no values, when the plugin failed.
    pub error: Option<String>,
}

impl DescriptorResult {
    /// A value by name, absent when undefined.
    pub fn value(&self, name: &str) -> Option<f64> {
        self.values.iter().find(|(n, _)| n == name).map(|(_, v)| *v).filter(|v| v.is_finite())
    }
}

/// The version string stored with a plugin's results: its version and its configuration.
pub fn version_of(instance: &PluginInstance) -> String {
    let config = instance.info().get("config").map(|c| c.to_string()).unwrap_or_default();
    format!("{} {} {config}", instance.name(), instance.library().version).trim_end().to_string()
}

enum Input {
    Decoded,
    Mono { rate: Option<u32>, resampler: Option<Resampler> },
}

struct Runner {
    instance: PluginInstance,
    version: String,
    names: Vec<String>,
    input: Input,
    /// `(rate, channels)` once started.
    started: Option<(u32, usize)>,
    error: Option<String>,
    scratch: Vec<f32>,
    resampled: Vec<f32>,
}

/// Every loaded descriptor plugin, one instance each (per worker: instances are not shared).
#[derive(Default)]
pub struct DescriptorSet {
    runners: Vec<Runner>,
}

impl DescriptorSet {
    /// An instance of each descriptor plugin in `registry`, with its default configuration.
    /// A plugin that cannot be made is logged and left out.
    pub fn load(registry: &PluginRegistry) -> Self {
        let mut runners = Vec::new();
        for library in registry.plugins().iter().filter(|p| p.kind == PluginKind::Descriptor) {
            let instance = match registry.instantiate(PluginKind::Descriptor, &library.name, &serde_json::json!({})) {
                Ok(instance) => instance,
                Err(error) => {
                    tracing::warn!("descriptor plugin left out: {error}");
                    continue;
                }
            };
            let info = instance.info();
            let names: Vec<String> = info["values"]
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
                .unwrap_or_default();
            let input = match info["input"]["channels"].as_str() {
                Some("mono") => Input::Mono {
                    rate: info["input"]["sample_rate"].as_u64().map(|r| r as u32),
                    resampler: None,
                },
                _ => Input::Decoded,
            };
            let version = version_of(&instance);
            runners.push(Runner {
                instance,
                version,
                names,
                input,
                started: None,
                error: None,
                scratch: Vec::new(),
                resampled: Vec::new(),
            });
        }
        DescriptorSet { runners }
    }

    pub fn is_empty(&self) -> bool {
        self.runners.is_empty()
    }

    /// `(plugin, version)` of each plugin in the set.
    pub fn versions(&self) -> Vec<(String, String)> {
        self.runners.iter().map(|r| (r.instance.name().to_string(), r.version.clone())).collect()
    }

    /// Forget any track in progress (an analysis that failed half-way).
    pub fn reset(&mut self) {
        for runner in &mut self.runners {
            if runner.started.is_some() && runner.error.is_none() {
                let _ = runner.instance.finish();
            }
            runner.started = None;
            runner.error = None;
            if let Input::Mono { resampler, .. } = &mut runner.input {
                *resampler = None;
            }
        }
    }

    /// One decoded chunk, `[frames, channels]` interleaved, at `rate`.
    pub fn push(&mut self, interleaved: &[f32], rate: u32, channels: usize) {
        if channels == 0 || interleaved.is_empty() {
            return;
        }
        for runner in &mut self.runners {
            if runner.error.is_some() {
                continue;
            }
            if let Err(error) = runner.push(interleaved, rate, channels) {
                runner.error = Some(error);
            }
        }
    }

    /// The end of the track: each plugin's values, or its error.
    pub fn finish(&mut self) -> Vec<DescriptorResult> {
        let mut results = Vec::new();
        for runner in &mut self.runners {
            let mut result = DescriptorResult {
                plugin: runner.instance.name().to_string(),
                version: runner.version.clone(),
                values: Vec::new(),
                state: Vec::new(),
                error: runner.error.take(),
            };
            if result.error.is_none() {
                match runner.finish() {
                    Ok((values, state)) => {
                        result.values = values;
                        result.state = state;
                    }
                    Err(error) => result.error = Some(error),
                }
            } else if runner.started.is_some() {
                let _ = runner.instance.finish(); // ready for the next track
            }
            if let Some(error) = &result.error {
                tracing::warn!(plugin = %result.plugin, "descriptor plugin failed; the track keeps its predictions: {error}");
            }
            runner.started = None;
            if let Input::Mono { resampler, .. } = &mut runner.input {
                *resampler = None;
            }
            results.push(result);
        }
        results
    }
}

impl Runner {
    fn push(&mut self, interleaved: &[f32], rate: u32, channels: usize) -> Result<(), String> {
        let (feed_rate, feed_channels) = match &self.input {
            Input::Decoded => (rate, channels),
            Input::Mono { rate: wanted, .. } => (wanted.unwrap_or(rate), 1),
        };
        match self.started {
            None => {
                self.instance.start(feed_rate, feed_channels as u32).map_err(|e| e.to_string())?;
                self.started = Some((rate, channels));
            }
            Some(format) if format != (rate, channels) => {
                return Err(format!(
                    "the stream changed format mid-track ({} Hz × {} to {rate} Hz × {channels})",
                    format.0, format.1
                ))
            }
            Some(_) => {}
        }
        let data: &[f32] = match &mut self.input {
            Input::Decoded => interleaved,
            Input::Mono { rate: wanted, resampler } => {
                self.scratch.clear();
                let scale = 1.0 / channels as f32;
                self.scratch.extend(interleaved.chunks_exact(channels).map(|f| f.iter().sum::<f32>() * scale));
                match wanted {
                    Some(wanted) if *wanted != rate => {
                        let resampler = match resampler {
                            Some(r) => r,
                            slot => slot.insert(Resampler::new(rate, *wanted).map_err(|e| e.to_string())?),
                        };
                        self.resampled.clear();
                        resampler.push(&self.scratch, &mut self.resampled).map_err(|e| e.to_string())?;
                        &self.resampled
                    }
                    _ => &self.scratch,
                }
            }
        };
        if data.is_empty() {
            return Ok(());
        }
        let frames = data.len() / feed_channels;
        self.instance.process(&data[..frames * feed_channels], &[frames, feed_channels]).map_err(|e| e.to_string())?;
        Ok(())
    }

    fn finish(&mut self) -> Result<(Vec<(String, f64)>, Vec<f32>), String> {
        if self.started.is_none() {
            return Err("no audio reached the plugin".into());
        }
        if let Input::Mono { resampler: Some(resampler), .. } = &mut self.input {
            self.resampled.clear();
            resampler.finish(&mut self.resampled).map_err(|e| e.to_string())?;
            if !self.resampled.is_empty() {
                let n = self.resampled.len();
                self.instance.process(&self.resampled, &[n, 1]).map_err(|e| e.to_string())?;
            }
        }
        let output = self.instance.finish().map_err(|e| e.to_string())?;
        let values = &output.values.data;
        if values.len() != self.names.len() {
            return Err(format!("{} values for {} names in its info", values.len(), self.names.len()));
        }
        let named = self.names.iter().cloned().zip(values.iter().map(|&v| v as f64)).collect();
        Ok((named, output.embedding.map(|e| e.data).unwrap_or_default()))
    }
}

/// The track-level descriptors every answer carries, gathered by value name from whichever
/// descriptor plugins said them (the first that did). Absent where undefined or not run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    pub bpm: Option<f64>,
    pub bpm_confidence: Option<f64>,
    /// "A minor".
    pub key: Option<String>,
    pub key_strength: Option<f64>,
    pub loudness_lufs: Option<f64>,
    pub loudness_range_lu: Option<f64>,
    pub true_peak_dbtp: Option<f64>,
    pub replaygain_track_gain_db: Option<f64>,
    pub replaygain_track_peak: Option<f64>,
    /// Only where the library knows the track's album.
    pub replaygain_album_gain_db: Option<f64>,
}

impl Summary {
    pub fn of(results: &[DescriptorResult]) -> Self {
        let get = |name: &str| results.iter().find_map(|r| r.value(name));
        let key = match (get("key_tonic"), get("key_mode")) {
            (Some(tonic), Some(mode)) => Some(key_name(tonic as usize, mode != 0.0)),
            _ => None,
        };
        Summary {
            bpm: get("bpm"),
            bpm_confidence: get("bpm_confidence"),
            key,
            key_strength: get("key_strength"),
            loudness_lufs: get("loudness_lufs"),
            loudness_range_lu: get("loudness_range_lu"),
            true_peak_dbtp: get("true_peak_dbtp"),
            replaygain_track_gain_db: get("replaygain_track_gain_db"),
            replaygain_track_peak: get("replaygain_track_peak"),
            replaygain_album_gain_db: None,
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == Summary::default()
    }
}

/// "A minor" from a tonic pitch class (C = 0) and a mode.
pub fn key_name(tonic: usize, minor: bool) -> String {
    let mode = if minor { timbre_descriptors::Mode::Minor } else { timbre_descriptors::Mode::Major };
    timbre_descriptors::Key { tonic: tonic % 12, mode, strength: 0.0 }.name()
}
