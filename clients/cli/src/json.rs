//! `--json` output: the proto messages as JSON values, written once for every command.
//!
//! Field names are the proto's (`duration_s`, `predictions`, ...), enums are their proto
//! names (`"ANALYSIS_STATE_ANALYSED"`, or the number for a value this client does not know
//! yet), and numbers, 64-bit ones included, are JSON numbers. Probabilities are the `f32`s
//! the daemon sent, widened to `f64`, exactly as `timbred analyze --json` prints its own.

use serde_json::{json, Value};
use timbre_proto::v1 as pb;

/// `{"name": .., "probability": ..}`
pub fn label(label: &pb::Label) -> Value {
    json!({ "name": label.name, "probability": label.probability })
}

pub fn labels(labels: &[pb::Label]) -> Value {
    labels.iter().map(label).collect()
}

/// `{"index": .., "start_s": .., "end_s": .., "labels": [..]}`
pub fn segment(segment: &pb::SegmentPrediction) -> Value {
    json!({
        "index": segment.index,
        "start_s": segment.start_s,
        "end_s": segment.end_s,
        "labels": labels(&segment.labels),
    })
}

/// `{"model": .., "kind": .., "labels": [..]}`, plus `"segments": [..]` when `with_segments`
/// (as `timbred analyze --json` has it only with `--segments`).
pub fn model_prediction(prediction: &pb::ModelPrediction, with_segments: bool) -> Value {
    let kind = enum_name(pb::PredictionKind::try_from(prediction.kind).ok().map(|k| k.as_str_name()), prediction.kind);
    let mut value = json!({ "model": prediction.model, "kind": kind, "labels": labels(&prediction.labels) });
    if with_segments {
        value["segments"] = prediction.segments.iter().map(segment).collect();
    }
    value
}

fn model_predictions(predictions: &[pb::ModelPrediction], with_segments: bool) -> Value {
    predictions.iter().map(|p| model_prediction(p, with_segments)).collect()
}

/// `{"path": .., "duration_s": .., "predictions": [..]}`
pub fn classify_response(response: &pb::ClassifyResponse, with_segments: bool) -> Value {
    json!({
        "path": response.path,
        "duration_s": response.duration_s,
        "predictions": model_predictions(&response.predictions, with_segments),
        "descriptors": descriptors(response.descriptors.as_ref()),
    })
}

/// The descriptors by their proto names, absent values left out; `null` when none.
pub fn descriptors(d: Option<&pb::Descriptors>) -> Value {
    let Some(d) = d else { return Value::Null };
    let mut object = serde_json::Map::new();
    let mut put = |name: &str, value: Option<Value>| {
        if let Some(value) = value {
            object.insert(name.to_string(), value);
        }
    };
    put("bpm", d.bpm.map(Value::from));
    put("bpm_confidence", d.bpm_confidence.map(Value::from));
    put("key", d.key.clone().map(Value::from));
    put("key_strength", d.key_strength.map(Value::from));
    put("loudness_lufs", d.loudness_lufs.map(Value::from));
    put("loudness_range_lu", d.loudness_range_lu.map(Value::from));
    put("true_peak_dbtp", d.true_peak_dbtp.map(Value::from));
    put("replaygain_track_gain_db", d.replaygain_track_gain_db.map(Value::from));
    put("replaygain_track_peak", d.replaygain_track_peak.map(Value::from));
    put("replaygain_album_gain_db", d.replaygain_album_gain_db.map(Value::from));
    Value::Object(object)
}

/// An enum value by its proto name, or its number when this client does not know it (the
/// daemon may be newer: enums grow within `timbre.v1`).
fn enum_name(name: Option<&str>, number: i32) -> Value {
    match name {
        Some(name) => Value::from(name),
        None => Value::from(number),
    }
}

pub fn analysis_state(state: i32) -> Value {
    enum_name(pb::AnalysisState::try_from(state).ok().map(|s| s.as_str_name()), state)
}

pub fn plugin_kind(kind: i32) -> Value {
    enum_name(pb::PluginKind::try_from(kind).ok().map(|k| k.as_str_name()), kind)
}

/// `{"title": .., "artist": .., "album": .., "genre": ..}`; an absent message is all empty
/// strings, which is what the proto says an absent tag is.
pub fn track_tags(tags: Option<&pb::TrackTags>) -> Value {
    let tags = tags.cloned().unwrap_or_default();
    json!({ "title": tags.title, "artist": tags.artist, "album": tags.album, "genre": tags.genre })
}

/// Every field of a `Track`; predictions without `segments` (the proto leaves them empty).
pub fn track(track: &pb::Track) -> Value {
    json!({
        "id": track.id,
        "path": track.path,
        "size_bytes": track.size_bytes,
        "mtime_unix": track.mtime_unix,
        "content_hash": track.content_hash,
        "tags": track_tags(track.tags.as_ref()),
        "duration_s": track.duration_s,
        "state": analysis_state(track.state),
        "error": track.error,
        "predictions": model_predictions(&track.predictions, false),
        "descriptors": descriptors(track.descriptors.as_ref()),
    })
}

/// `{"score": .., "track": {..}}`, the track as [`track`] has it (`null` if the daemon sent
/// none); the score is the `f32` the daemon sent, widened like probabilities.
pub fn recommended_track(recommended: &pb::RecommendedTrack) -> Value {
    json!({ "score": recommended.score, "track": recommended.track.as_ref().map(track) })
}

/// Every field of a `ScanProgress`.
pub fn scan_progress(progress: &pb::ScanProgress) -> Value {
    json!({
        "done": progress.done,
        "total": progress.total,
        "failed": progress.failed,
        "current_path": progress.current_path,
        "rate_per_s": progress.rate_per_s,
        "eta_s": progress.eta_s,
        "finished": progress.finished,
        "analysed": progress.analysed,
    })
}

/// Every field of a `LivePrediction`; a model's `segments` only when the daemon sent some.
pub fn live_prediction(live: &pb::LivePrediction) -> Value {
    let predictions: Value = live.predictions.iter().map(|p| model_prediction(p, !p.segments.is_empty())).collect();
    json!({
        "source": live.source,
        "window_start_s": live.window_start_s,
        "window_end_s": live.window_end_s,
        "predictions": predictions,
    })
}

/// A `PluginInfo`; `metadata_json` is parsed and given as `metadata` (the raw string when it
/// is not JSON, null when empty), so that `jq .metadata.labels` works.
pub fn plugin_info(plugin: &pb::PluginInfo) -> Value {
    let metadata = if plugin.metadata_json.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&plugin.metadata_json).unwrap_or_else(|_| Value::from(plugin.metadata_json.as_str()))
    };
    json!({
        "name": plugin.name,
        "kind": plugin_kind(plugin.kind),
        "version": plugin.version,
        "abi_major": plugin.abi_major,
        "abi_minor": plugin.abi_minor,
        "file": plugin.file,
        "metadata": metadata,
    })
}

/// `{"plugins": [..], "refused": [{"file": .., "reason": ..}]}`
pub fn plugins(response: &pb::ListPluginsResponse) -> Value {
    let plugins: Value = response.plugins.iter().map(plugin_info).collect();
    let refused: Value = response.refused.iter().map(|r| json!({ "file": r.file, "reason": r.reason })).collect();
    json!({ "plugins": plugins, "refused": refused })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(name: &str, probability: f32) -> pb::Label {
        pb::Label { name: name.into(), probability }
    }

    fn prediction() -> pb::ModelPrediction {
        pb::ModelPrediction {
            model: "cnn".into(),
            labels: vec![label("rock", 0.75), label("metal", 0.125)],
            segments: vec![pb::SegmentPrediction {
                index: 0,
                start_s: 0.0,
                end_s: 3.0,
                labels: vec![label("rock", 0.5)],
            }],
            kind: pb::PredictionKind::Classes as i32,
        }
    }

    #[test]
    fn classify_response_has_the_proto_shape() {
        let response = pb::ClassifyResponse {
            path: "/m/a.flac".into(),
            duration_s: 4.5,
            predictions: vec![prediction()],
            descriptors: None,
        };
        assert_eq!(
            classify_response(&response, false),
            json!({
                "path": "/m/a.flac",
                "duration_s": 4.5,
                "predictions": [{
                    "model": "cnn",
                    "kind": "PREDICTION_KIND_CLASSES",
                    "labels": [{"name": "rock", "probability": 0.75}, {"name": "metal", "probability": 0.125}],
                }],
                "descriptors": null,
            })
        );
        assert_eq!(
            classify_response(&response, true)["predictions"][0]["segments"],
            json!([{"index": 0, "start_s": 0.0, "end_s": 3.0, "labels": [{"name": "rock", "probability": 0.5}]}])
        );
    }

    #[test]
    fn probabilities_are_numbers_widened_from_f32_like_timbred_analyze() {
        let value = super::label(&label("jazz", 0.81));
        assert!(value["probability"].is_number());
        // `timbred analyze --json` writes `json!(f32)`; so must we, for the two to compare equal.
        assert_eq!(value["probability"], json!(0.81f32));
        assert_eq!(value["probability"].as_f64(), Some(f64::from(0.81f32)));
    }

    #[test]
    fn with_segments_keeps_an_empty_list() {
        let mut p = prediction();
        p.segments.clear();
        assert_eq!(model_prediction(&p, true)["segments"], json!([]));
        assert!(model_prediction(&p, false).get("segments").is_none());
    }

    #[test]
    fn track_has_every_field_and_enum_names() {
        let track = pb::Track {
            id: 42,
            path: "/m/a.flac".into(),
            size_bytes: 1 << 40,
            mtime_unix: 1_700_000_000,
            content_hash: "ab12".into(),
            tags: Some(pb::TrackTags {
                title: "Song".into(),
                artist: "Band".into(),
                album: String::new(),
                genre: "Rock".into(),
            }),
            duration_s: 215.5,
            state: pb::AnalysisState::Analysed as i32,
            error: String::new(),
            predictions: vec![prediction()],
            descriptors: Some(pb::Descriptors { bpm: Some(120.5), key: Some("A minor".into()), ..Default::default() }),
            embedding: Vec::new(),
        };
        let value = super::track(&track);
        assert_eq!(value["descriptors"], json!({"bpm": 120.5, "key": "A minor"}), "absent values are left out");
        assert_eq!(value["id"], 42);
        assert_eq!(value["size_bytes"], 1u64 << 40);
        assert_eq!(value["mtime_unix"], 1_700_000_000);
        assert_eq!(value["state"], "ANALYSIS_STATE_ANALYSED");
        assert_eq!(value["tags"], json!({"title": "Song", "artist": "Band", "album": "", "genre": "Rock"}));
        assert_eq!(value["error"], "");
        assert!(value["predictions"][0].get("segments").is_none(), "track predictions carry no segments");
        let keys: Vec<_> = value.as_object().expect("object").keys().cloned().collect();
        for field in ["content_hash", "duration_s", "path", "predictions"] {
            assert!(keys.iter().any(|k| k == field), "{field} missing from {keys:?}");
        }
    }

    #[test]
    fn missing_tags_are_empty_strings_and_unknown_enums_are_numbers() {
        let track = pb::Track { state: 99, ..Default::default() };
        let value = super::track(&track);
        assert_eq!(value["tags"], json!({"title": "", "artist": "", "album": "", "genre": ""}));
        assert_eq!(value["state"], 99);
        assert_eq!(analysis_state(3), "ANALYSIS_STATE_FAILED");
        assert_eq!(plugin_kind(2), "PLUGIN_KIND_CLASSIFIER");
    }

    #[test]
    fn recommended_track_is_score_and_track() {
        let library_track = pb::Track {
            id: 42,
            path: "/m/a.flac".into(),
            state: pb::AnalysisState::Analysed as i32,
            predictions: vec![prediction()],
            ..Default::default()
        };
        let recommended = pb::RecommendedTrack { track: Some(library_track.clone()), score: 0.93 };
        let value = recommended_track(&recommended);
        assert_eq!(value, json!({ "score": 0.93f32, "track": track(&library_track) }));
        assert_eq!(value["score"].as_f64(), Some(f64::from(0.93f32)));
        assert_eq!(value["track"]["id"], 42);
        assert_eq!(value["track"]["predictions"][0]["labels"][0]["name"], "rock");
        assert_eq!(value.as_object().map(|o| o.len()), Some(2));
        // One line, keys in this order.
        assert!(value.to_string().starts_with(r#"{"score":0.9"#), "{value}");

        let negative = pb::RecommendedTrack { track: None, score: -0.5 };
        assert_eq!(recommended_track(&negative), json!({ "score": -0.5, "track": null }));
    }

    #[test]
    fn scan_progress_and_live_prediction() {
        let progress = pb::ScanProgress {
            done: 3,
            total: 10,
            failed: 1,
            current_path: "/m/b.mp3".into(),
            rate_per_s: 2.5,
            eta_s: 2.8,
            finished: false,
            analysed: 2,
        };
        assert_eq!(
            scan_progress(&progress),
            json!({"done": 3, "total": 10, "failed": 1, "current_path": "/m/b.mp3", "rate_per_s": 2.5,
                   "eta_s": 2.8, "finished": false, "analysed": 2})
        );
        let mut without_segments = prediction();
        without_segments.segments.clear();
        let live = pb::LivePrediction {
            source: "radio".into(),
            window_start_s: 12.0,
            window_end_s: 15.0,
            predictions: vec![without_segments, prediction()],
        };
        let value = live_prediction(&live);
        assert_eq!(value["source"], "radio");
        assert_eq!(value["window_start_s"], 12.0);
        assert_eq!(value["window_end_s"], 15.0);
        assert!(value["predictions"][0].get("segments").is_none());
        assert_eq!(value["predictions"][1]["segments"][0]["end_s"], 3.0);
    }

    #[test]
    fn plugins_parse_their_metadata() {
        let response = pb::ListPluginsResponse {
            plugins: vec![
                pb::PluginInfo {
                    name: "cnn".into(),
                    kind: pb::PluginKind::Classifier as i32,
                    version: "1.0.0".into(),
                    abi_major: 1,
                    abi_minor: 2,
                    file: "/p/cnn".into(),
                    metadata_json: r#"{"labels": ["rock", "jazz"]}"#.into(),
                },
                pb::PluginInfo { name: "odd".into(), metadata_json: "not json".into(), ..Default::default() },
                pb::PluginInfo { name: "mel".into(), kind: 1, ..Default::default() },
            ],
            refused: vec![pb::RefusedPlugin { file: "/p/old.so".into(), reason: "ABI 0.1, need 1.x".into() }],
            ..Default::default()
        };
        let value = plugins(&response);
        let cnn = &value["plugins"][0];
        assert_eq!(cnn["kind"], "PLUGIN_KIND_CLASSIFIER");
        assert_eq!((cnn["abi_major"].as_u64(), cnn["abi_minor"].as_u64()), (Some(1), Some(2)));
        assert_eq!(cnn["metadata"]["labels"], json!(["rock", "jazz"]));
        assert_eq!(value["plugins"][1]["metadata"], "not json");
        assert_eq!(value["plugins"][1]["kind"], "PLUGIN_KIND_UNSPECIFIED");
        assert_eq!(value["plugins"][2]["metadata"], Value::Null);
        assert_eq!(value["refused"], json!([{"file": "/p/old.so", "reason": "ABI 0.1, need 1.x"}]));
    }
}
