//! `timbred eval`: accuracy of every model, and of their ensemble, on a labelled folder
//! (`DIR/<label>/<file>`), at track and at segment level, as in report 000's tables.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::metrics::{argmax, ClassScores, Confusion};
use timbre_model_manifest::OutputKind;

use crate::models::ModelCatalog;
use crate::pipeline::analysis::Analyzer;
use crate::pipeline::{SegmentOptions, TrackPrediction};
use crate::plugin_host::{PluginError, PluginRegistry};

const AUDIO_EXTENSIONS: &[&str] = &["wav", "flac", "mp3", "ogg", "oga", "m4a", "mp4", "aac", "alac", "aif", "aiff"];

#[derive(Debug, Clone)]
pub struct EvalRequest {
    pub data_dir: PathBuf,
    /// A split file (`relative/path<TAB>split` per line) and the split to evaluate.
    pub split: Option<(PathBuf, String)>,
    pub jobs: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub data: PathBuf,
    pub split: Option<String>,
    pub models: Vec<ModelReport>,
    /// Files that could not be analysed, with the reason.
    pub failed: Vec<(PathBuf, String)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelReport {
    pub model: String,
    pub track_accuracy: f64,
    pub segment_accuracy: f64,
    pub tracks: usize,
    pub segments: usize,
    pub per_class: std::collections::BTreeMap<String, ClassScores>,
    pub confusion: Confusion,
}

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("cannot read the data folder {}: {source}", path.display())]
    Data { path: PathBuf, source: std::io::Error },
    #[error("cannot read the split file {}: {reason}", path.display())]
    Split { path: PathBuf, reason: String },
    #[error("no audio files under {} (expected DIR/<label>/<file>)", .0.display())]
    Empty(PathBuf),
    #[error("no models to evaluate: {0}")]
    NoModels(String),
    #[error(transparent)]
    Plugin(#[from] PluginError),
}

/// Audio files under `dir/<label>/`, with their label, sorted.
pub fn labelled_files(dir: &Path) -> Result<Vec<(PathBuf, String)>, EvalError> {
    let read =
        |path: &Path| std::fs::read_dir(path).map_err(|source| EvalError::Data { path: path.to_path_buf(), source });
    let mut files = Vec::new();
    for label_dir in read(dir)? {
        let label_dir = label_dir.map_err(|source| EvalError::Data { path: dir.to_path_buf(), source })?.path();
        let Some(label) =
            label_dir.is_dir().then(|| label_dir.file_name().map(|n| n.to_string_lossy().into_owned())).flatten()
        else {
            continue;
        };
        for file in read(&label_dir)? {
            let file = file.map_err(|source| EvalError::Data { path: label_dir.clone(), source })?.path();
            let audio = file
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| AUDIO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
            if audio && file.is_file() {
                files.push((file, label.clone()));
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The relative paths in `split` that belong to `subset`.
pub fn read_split(path: &Path, subset: &str) -> Result<HashSet<String>, EvalError> {
    let fail = |reason: String| EvalError::Split { path: path.to_path_buf(), reason };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let mut selected = HashSet::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#')) {
        let (file, which) =
            line.split_once('\t').ok_or_else(|| fail(format!("line {}: expected PATH<TAB>SPLIT", n + 1)))?;
        if which.trim() == subset {
            selected.insert(file.trim().to_string());
        }
    }
    if selected.is_empty() {
        return Err(fail(format!("no file is in split {subset:?}")));
    }
    Ok(selected)
}

/// A file's label and every model's predictions for it.
pub type Labelled = (String, Vec<TrackPrediction>);
/// A file that could not be analysed, and why.
pub type Failure = (PathBuf, String);

/// Every labelled file of `request` analysed by every model: (label, predictions) per
/// file that could be analysed, and the files that could not with the reason.
pub fn labelled_predictions(
    registry: &PluginRegistry,
    catalog: &ModelCatalog,
    request: &EvalRequest,
    mut progress: impl FnMut(usize, usize) + Send,
) -> Result<(Vec<Labelled>, Vec<Failure>), EvalError> {
    if catalog.models.is_empty() {
        let reasons: Vec<String> = catalog.refused.iter().map(|(d, r)| format!("{}: {r}", d.display())).collect();
        return Err(EvalError::NoModels(if reasons.is_empty() { "none found".into() } else { reasons.join("; ") }));
    }
    let mut files = labelled_files(&request.data_dir)?;
    if let Some((split_file, subset)) = &request.split {
        let selected = read_split(split_file, subset)?;
        files.retain(|(file, _)| {
            file.strip_prefix(&request.data_dir).is_ok_and(|rel| selected.contains(&rel.to_string_lossy().into_owned()))
        });
    }
    if files.is_empty() {
        return Err(EvalError::Empty(request.data_dir.clone()));
    }
    let labels: HashMap<PathBuf, String> = files.iter().cloned().collect();
    let paths: Vec<PathBuf> = files.into_iter().map(|(f, _)| f).collect();

    let mut results: Vec<(String, Vec<TrackPrediction>)> = Vec::new();
    let mut failed = Vec::new();
    let total = paths.len();
    let make = || Analyzer::new(registry, "mel", &serde_json::json!({}), SegmentOptions::default(), catalog);
    make()?;
    super::for_each_file(
        &paths,
        request.jobs,
        make,
        |analyzer, file| analyzer.analyze(file),
        |file, result| {
            match result {
                Ok(analysis) => results.push((labels[file].clone(), analysis.predictions)),
                Err(error) => failed.push((file.clone(), error.to_string())),
            }
            progress(results.len() + failed.len(), total);
        },
    )?;
    Ok((results, failed))
}

pub fn run(
    registry: &PluginRegistry,
    catalog: &ModelCatalog,
    request: &EvalRequest,
    progress: impl FnMut(usize, usize) + Send,
) -> Result<EvalReport, EvalError> {
    let (results, failed) = labelled_predictions(registry, catalog, request, progress)?;
    // Accuracy against one label per file means classes: tag models (musicnn's 50 tags) are
    // neither scored here nor part of the ensemble.
    let classes = |spec: &&crate::models::ModelSpec| spec.folder.manifest.model.kind == OutputKind::Classes;
    let results: Vec<Labelled> = results
        .into_iter()
        .map(|(label, predictions)| {
            (label, predictions.into_iter().filter(|p| p.kind == OutputKind::Classes).collect())
        })
        .collect();
    let mut models: Vec<ModelReport> = catalog
        .models
        .iter()
        .filter(classes)
        .map(|spec| {
            report(spec.name(), &results, |predictions| predictions.iter().find(|p| p.model == spec.name()).cloned())
        })
        .collect();
    if catalog.models.iter().filter(classes).count() > 1 {
        models.push(report("ensemble", &results, ensemble));
    }
    Ok(EvalReport {
        data: request.data_dir.clone(),
        split: request.split.as_ref().map(|(_, s)| s.clone()),
        models,
        failed,
    })
}

/// Mean of the models' probabilities, aligned by label name, per track and per segment
/// (segments only where every model cut the track the same way).
fn ensemble(predictions: &[TrackPrediction]) -> Option<TrackPrediction> {
    let first = predictions.first()?;
    let labels = first.labels.clone();
    let aligned = |p: &TrackPrediction, values: &[f32]| -> Vec<f32> {
        labels.iter().map(|l| p.labels.iter().position(|x| x == l).map_or(0.0, |i| values[i])).collect()
    };
    let n = predictions.len() as f32;
    let mut probabilities = vec![0.0; labels.len()];
    for p in predictions {
        probabilities.iter_mut().zip(aligned(p, &p.probabilities)).for_each(|(sum, v)| *sum += v / n);
    }
    let same_cut = predictions.iter().all(|p| p.segments.len() == first.segments.len());
    let segments = if same_cut {
        (0..first.segments.len())
            .map(|s| {
                let mut mean = vec![0.0; labels.len()];
                for p in predictions {
                    mean.iter_mut().zip(aligned(p, &p.segments[s])).for_each(|(sum, v)| *sum += v / n);
                }
                mean
            })
            .collect()
    } else {
        Vec::new()
    };
    Some(TrackPrediction {
        model: "ensemble".into(),
        kind: OutputKind::Classes,
        labels,
        segment_seconds: first.segment_seconds,
        probabilities,
        segments,
        embedding: Vec::new(),
    })
}

fn report(
    model: &str,
    results: &[(String, Vec<TrackPrediction>)],
    pick: impl Fn(&[TrackPrediction]) -> Option<TrackPrediction>,
) -> ModelReport {
    let picked: Vec<(&String, TrackPrediction)> =
        results.iter().filter_map(|(truth, p)| pick(p).map(|p| (truth, p))).collect();
    // The model's labels, then any true label it does not know (always wrong for it).
    let mut labels: Vec<String> = picked.first().map(|(_, p)| p.labels.clone()).unwrap_or_default();
    for (truth, _) in &picked {
        if !labels.contains(truth) {
            labels.push((*truth).clone());
        }
    }
    let index = |label: &str| labels.iter().position(|l| l == label).unwrap_or(0);
    let track = Confusion::new(&labels, picked.iter().map(|(truth, p)| (index(truth), argmax(&p.probabilities))));
    let segment = Confusion::new(
        &labels,
        picked
            .iter()
            .flat_map(|(truth, p)| p.segments.iter().map(move |s| (index(truth), argmax(s))))
            .collect::<Vec<_>>(),
    );
    ModelReport {
        model: model.to_string(),
        track_accuracy: track.accuracy(),
        segment_accuracy: segment.accuracy(),
        tracks: track.total(),
        segments: segment.total(),
        per_class: track.per_class(),
        confusion: track,
    }
}
