//! `descriptors`: tempo, key and loudness of a whole track, as a descriptor plugin (ABI 1.1).
//!
//! One plugin, not three: loudness must see the channels and rate as decoded, and tempo and key
//! can work from the same chunks (they downmix themselves), so the host streams each track once
//! to one instance. Input: `start(rate, channels)`, then `[frames, channels]` chunks, then
//! `finish`: the values named in `info()["values"]`, and as state the track's loudness-block
//! histogram (800 counts) from which `timbre_descriptors::album_gain` computes an album's gain.

use timbre_descriptors::{Analyser, Config, Mode};
use timbre_plugin_sdk::{export_plugin, Error, Kind, Output, Plugin, Tensor, TensorView};

/// The values `finish` returns, in order. NaN where a value is undefined: no tempo in a track
/// shorter than ~3 s, no key without pitched sound, no loudness for silence.
const VALUES: [&str; 10] = [
    "bpm",
    "bpm_confidence",
    "key_tonic",
    "key_mode",
    "key_strength",
    "loudness_lufs",
    "loudness_range_lu",
    "true_peak_dbtp",
    "replaygain_track_gain_db",
    "replaygain_track_peak",
];

pub struct DescriptorsPlugin {
    config: Config,
    track: Option<Analyser>,
}

impl Plugin for DescriptorsPlugin {
    const NAME: &'static std::ffi::CStr = c"descriptors";
    const VERSION: &'static std::ffi::CStr = c"0.1.0";
    const KIND: Kind = Kind::Descriptor;
    const METADATA_JSON: &'static std::ffi::CStr = c"{\"description\":\"track-level tempo (BPM), key and loudness (EBU R128, ReplayGain 2.0)\",\"defaults\":{\"key_profile\":\"bgate\",\"dual_mono\":false}}";

    fn create(config: &serde_json::Value) -> Result<Self, Error> {
        let config: Config =
            serde_json::from_value(config.clone()).map_err(|e| Error::config(format!("descriptors: {e}")))?;
        // Check the profile name now rather than at the first track.
        Analyser::new(&config, 44_100, 2).map_err(|e| Error::config(format!("descriptors: {e}")))?;
        Ok(DescriptorsPlugin { config, track: None })
    }

    fn info(&self) -> serde_json::Value {
        serde_json::json!({
            "input": { "channels": "decoded" },
            "values": VALUES,
            "key_tonic": "pitch class of the tonic, C = 0",
            "key_mode": "0 major, 1 minor",
            "state": "loudness gating-block histogram, 800 counts of 0.1 LU from -70 LUFS",
            "config": self.config,
        })
    }

    fn start(&mut self, sample_rate: u32, channels: u32) -> Result<(), Error> {
        let analyser = Analyser::new(&self.config, sample_rate, channels)
            .map_err(|e| Error::invalid_input(format!("descriptors: {e}")))?;
        self.track = Some(analyser);
        Ok(())
    }

    fn process(&mut self, input: TensorView<'_>) -> Result<Output, Error> {
        let track = self.track.as_mut().ok_or_else(|| Error::invalid_input("descriptors: process before start"))?;
        match *input.shape {
            [_, _] | [_] => {}
            ref shape => {
                return Err(Error::invalid_input(format!("descriptors: expected [frames, channels], got {shape:?}")))
            }
        }
        track.push(input.data).map_err(|e| Error::invalid_input(format!("descriptors: {e}")))?;
        Ok(Output::empty())
    }

    fn finish(&mut self) -> Result<Output, Error> {
        let mut track = self.track.take().ok_or_else(|| Error::invalid_input("descriptors: finish before start"))?;
        let d = track.finish();
        let nan = f64::NAN;
        let (bpm, confidence) = d.tempo.map_or((nan, nan), |t| (t.bpm, t.confidence));
        let (tonic, mode, strength) = d
            .key
            .map_or((nan, nan, nan), |k| (k.tonic as f64, if k.mode == Mode::Major { 0.0 } else { 1.0 }, k.strength));
        let l = d.loudness;
        let values = [
            bpm,
            confidence,
            tonic,
            mode,
            strength,
            l.integrated_lufs.unwrap_or(nan),
            l.range_lu,
            l.true_peak_dbtp,
            l.replaygain_track_gain_db.unwrap_or(nan),
            l.replaygain_track_peak,
        ];
        let values: Vec<f32> = values.iter().map(|&v| v as f32).collect();
        let state = d.blocks.counts().to_vec();
        let n = state.len();
        Ok(Output { values: Tensor::new(values, vec![VALUES.len()]), embedding: Some(Tensor::new(state, vec![n])) })
    }
}

export_plugin!(DescriptorsPlugin);
