//! Conversions between engine types and `timbre.v1` messages, all in one place.

use std::collections::HashMap;

use crate::pipeline::descriptors::Summary;
use timbre_model_manifest::OutputKind;
use timbre_proto::v1 as pb;

use crate::catalogue::Catalogue;
use crate::index::{BpmRange, Filter};
use crate::library::scan::ScanProgress;
use crate::library::{TrackRecord, TrackState};
use crate::live::LivePrediction;
use crate::pipeline::analysis::Analysis;
use crate::pipeline::classify::ranked;
use crate::pipeline::TrackPrediction;
use crate::plugin_host::PluginKind;
use crate::recommend::{RecommendFilter, Recommendation};

impl From<Catalogue> for pb::ListPluginsResponse {
    fn from(listing: Catalogue) -> Self {
        let plugins = listing.plugins.into_iter().map(|p| pb::PluginInfo {
            kind: pb::PluginKind::from(p.kind) as i32,
            name: p.name,
            version: p.version,
            abi_major: p.abi_major,
            abi_minor: p.abi_minor,
            file: p.file,
            metadata_json: p.metadata.to_string(),
        });
        // Clients older than `models` found the model folders among the plugins (as
        // classifiers without an ABI); they still do, after the real plugins.
        let models_as_plugins = listing.models.iter().map(|m| pb::PluginInfo {
            kind: pb::PluginKind::Classifier as i32,
            name: m.name.clone(),
            version: m.version.clone(),
            abi_major: 0,
            abi_minor: 0,
            file: m.dir.clone(),
            metadata_json: m.info.to_string(),
        });
        let refused_models =
            listing.refused_models.iter().map(|r| pb::RefusedPlugin { file: r.dir.clone(), reason: r.reason.clone() });
        pb::ListPluginsResponse {
            plugins: plugins.chain(models_as_plugins).collect(),
            refused: listing
                .refused
                .into_iter()
                .map(|r| pb::RefusedPlugin { file: r.file, reason: r.reason })
                .chain(refused_models.clone())
                .collect(),
            models: listing
                .models
                .into_iter()
                .map(|m| pb::ModelInfo {
                    name: m.name,
                    version: m.version,
                    plugin: m.plugin,
                    features: m.features,
                    dir: m.dir,
                    info_json: m.info.to_string(),
                })
                .collect(),
            refused_models: refused_models.collect(),
        }
    }
}

impl From<PluginKind> for pb::PluginKind {
    fn from(kind: PluginKind) -> Self {
        match kind {
            PluginKind::Feature => pb::PluginKind::Feature,
            PluginKind::Classifier => pb::PluginKind::Classifier,
            PluginKind::Descriptor => pb::PluginKind::Descriptor,
        }
    }
}

pub fn prediction_kind(kind: OutputKind) -> i32 {
    let kind = match kind {
        OutputKind::Classes => pb::PredictionKind::Classes,
        OutputKind::Tags => pb::PredictionKind::Tags,
    };
    kind as i32
}

/// The kind of a loaded model's predictions; unspecified for a model no longer loaded, whose
/// manifest (and so kind) the daemon cannot know.
fn kind_of(kinds: &HashMap<String, OutputKind>, model: &str) -> i32 {
    kinds.get(model).map_or(pb::PredictionKind::Unspecified as i32, |k| prediction_kind(*k))
}

pub fn labels(names: &[String], probabilities: &[f32], top_k: usize) -> Vec<pb::Label> {
    ranked(probabilities, top_k)
        .into_iter()
        .filter_map(|i| Some(pb::Label { name: names.get(i)?.clone(), probability: probabilities[i] }))
        .collect()
}

pub fn model_prediction(
    prediction: &TrackPrediction,
    duration_s: f64,
    top_k: usize,
    with_segments: bool,
) -> pb::ModelPrediction {
    let segments = if with_segments {
        prediction
            .segments
            .iter()
            .enumerate()
            .map(|(i, probabilities)| pb::SegmentPrediction {
                index: i as u32,
                start_s: i as f64 * prediction.segment_seconds,
                end_s: prediction.segment_end(i, duration_s),
                labels: labels(&prediction.labels, probabilities, top_k),
            })
            .collect()
    } else {
        Vec::new()
    };
    pb::ModelPrediction {
        model: prediction.model.clone(),
        labels: labels(&prediction.labels, &prediction.probabilities, top_k),
        segments,
        kind: prediction_kind(prediction.kind),
    }
}

/// The analysis's predictions in the order `requested` names the models; by model name when
/// it is empty (every model ran).
fn in_model_order<'a>(analysis: &'a Analysis, requested: &[String]) -> Vec<&'a TrackPrediction> {
    let mut predictions: Vec<&TrackPrediction> = analysis.predictions.iter().collect();
    if requested.is_empty() {
        predictions.sort_by(|a, b| a.model.cmp(&b.model));
    } else {
        predictions.sort_by_key(|p| requested.iter().position(|r| *r == p.model));
    }
    predictions
}

/// `requested` orders the models; when empty they are sorted by name.
pub fn classify_response(
    analysis: &Analysis,
    path: String,
    requested: &[String],
    top_k: usize,
    with_segments: bool,
) -> pb::ClassifyResponse {
    let predictions = in_model_order(analysis, requested);
    pb::ClassifyResponse {
        path,
        duration_s: analysis.duration_s,
        predictions: predictions
            .into_iter()
            .map(|p| model_prediction(p, analysis.duration_s, top_k, with_segments))
            .collect(),
        descriptors: descriptors(&Summary::of(&analysis.descriptors)),
    }
}

/// The descriptors message; `None` when nothing was measured.
pub fn descriptors(d: &Summary) -> Option<pb::Descriptors> {
    (!d.is_empty()).then(|| pb::Descriptors {
        bpm: d.bpm,
        bpm_confidence: d.bpm_confidence,
        key: d.key.clone(),
        key_strength: d.key_strength,
        loudness_lufs: d.loudness_lufs,
        loudness_range_lu: d.loudness_range_lu,
        true_peak_dbtp: d.true_peak_dbtp,
        replaygain_track_gain_db: d.replaygain_track_gain_db,
        replaygain_track_peak: d.replaygain_track_peak,
        replaygain_album_gain_db: d.replaygain_album_gain_db,
    })
}

/// A library track with `embedding_model`'s embedding (see `ListTracksRequest.embedding_model`).
pub fn track_with_embedding(
    record: TrackRecord,
    embedding_model: &str,
    kinds: &HashMap<String, OutputKind>,
) -> pb::Track {
    let embedding = record
        .predictions
        .iter()
        .find(|p| !embedding_model.is_empty() && p.version.model == embedding_model)
        .map(|p| p.embedding.clone())
        .unwrap_or_default();
    pb::Track { embedding, ..track(record, kinds) }
}

/// `kinds`: each loaded model's kind, which the stored predictions are given (see [`kind_of`]).
pub fn track(record: TrackRecord, kinds: &HashMap<String, OutputKind>) -> pb::Track {
    let summary = record.summary();
    pb::Track {
        embedding: Vec::new(),
        descriptors: descriptors(&summary),
        id: record.id as u64,
        path: record.path,
        size_bytes: record.stat.size,
        mtime_unix: record.stat.mtime_ns.div_euclid(1_000_000_000),
        content_hash: record.content_hash,
        tags: Some(pb::TrackTags {
            title: record.tags.title,
            artist: record.tags.artist,
            album: record.tags.album,
            genre: record.tags.genre,
        }),
        duration_s: record.duration_s,
        state: match record.state {
            TrackState::Pending => pb::AnalysisState::Pending,
            TrackState::Analysed => pb::AnalysisState::Analysed,
            TrackState::Failed => pb::AnalysisState::Failed,
        } as i32,
        error: record.error,
        predictions: record
            .predictions
            .iter()
            .map(|p| pb::ModelPrediction {
                model: p.version.model.clone(),
                labels: labels(&p.labels, &p.probabilities, 0),
                segments: Vec::new(),
                kind: kind_of(kinds, &p.version.model),
            })
            .collect(),
    }
}

impl From<ScanProgress> for pb::ScanProgress {
    fn from(p: ScanProgress) -> Self {
        pb::ScanProgress {
            done: p.done,
            total: p.total,
            failed: p.failed,
            current_path: p.current,
            rate_per_s: p.rate_per_s,
            eta_s: p.eta_s,
            finished: p.finished,
            analysed: p.analysed,
        }
    }
}

/// One window of a stream: each model's labels for the window, and one segment locating it.
pub fn window_predictions(
    analysis: &Analysis,
    index: u32,
    start_s: f64,
    end_s: f64,
    requested: &[String],
    top_k: usize,
) -> Vec<pb::ModelPrediction> {
    let predictions = in_model_order(analysis, requested);
    predictions
        .into_iter()
        .map(|p| {
            let window_labels = labels(&p.labels, &p.probabilities, top_k);
            pb::ModelPrediction {
                model: p.model.clone(),
                segments: vec![pb::SegmentPrediction { index, start_s, end_s, labels: window_labels.clone() }],
                labels: window_labels,
                kind: prediction_kind(p.kind),
            }
        })
        .collect()
}

impl From<&LivePrediction> for pb::LivePrediction {
    fn from(p: &LivePrediction) -> Self {
        pb::LivePrediction {
            source: p.source.clone(),
            window_start_s: p.window_start_s,
            window_end_s: p.window_end_s,
            predictions: window_predictions(&p.analysis, 0, p.window_start_s, p.window_end_s, &[], 0)
                .into_iter()
                .map(|m| pb::ModelPrediction { segments: Vec::new(), ..m })
                .collect(),
        }
    }
}

pub fn recommend_filter(filter: pb::RecommendFilter) -> RecommendFilter {
    RecommendFilter {
        filter: Filter {
            genres: filter.genres,
            exclude_artists: filter.exclude_artists,
            exclude_albums: filter.exclude_albums,
            min_duration_s: filter.min_duration_s,
            max_duration_s: filter.max_duration_s,
            exclude_tracks: Vec::new(),
            bpm: filter.bpm.map(|r| BpmRange { min: r.min, max: r.max, octaves: r.octaves }),
            keys: Vec::new(),
        },
        exclude_seed_artist: filter.exclude_seed_artist,
        exclude_seed_album: filter.exclude_seed_album,
        harmonic: filter.harmonic,
        key: (!filter.key.trim().is_empty()).then_some(filter.key),
    }
}

pub fn recommended(recommendation: Recommendation, kinds: &HashMap<String, OutputKind>) -> pb::RecommendedTrack {
    pb::RecommendedTrack { track: Some(track(recommendation.track, kinds)), score: recommendation.score }
}

/// The history a request uses; unset: none.
pub fn history(options: Option<pb::HistoryOptions>) -> crate::recommend::History {
    let options = options.unwrap_or_default();
    crate::recommend::History {
        exclude_recent: options.exclude_recent,
        recent_window_s: options.recent_window_s,
        skips_as_negative: options.skips_as_negative,
        plays_as_positive: options.plays_as_positive,
    }
}
