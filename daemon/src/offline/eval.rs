//! `timbred eval`: accuracy of every model, and of their ensemble, on a labelled folder
//! (`DIR/<label>/<file>`), at track and at segment level, as in report 000's tables.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::metrics::{ClassScores, Confusion};
use crate::pipeline::classify;
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
    /// Each class model's weight in the ensemble: learned on the split file's validation files
    /// when a split is evaluated, else equal.
    pub ensemble_weights: BTreeMap<String, f64>,
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
    #[error(transparent)]
    Plot(#[from] timbre_plots::PlotError),
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
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
    let class_models: Vec<String> = catalog.models.iter().filter(classes).map(|m| m.name().to_string()).collect();
    let mut ensemble_weights = BTreeMap::new();
    if class_models.len() > 1 {
        ensemble_weights = match &request.split {
            // Weights learned on the validation files, never on the files scored.
            Some((file, subset)) if subset != "val" => {
                let val = EvalRequest { split: Some((file.clone(), "val".into())), ..request.clone() };
                let (val_results, _) = labelled_predictions(registry, catalog, &val, |_, _| {})?;
                fit_weights(&val_results, &class_models)
            }
            _ => class_models.iter().map(|m| (m.clone(), 1.0 / class_models.len() as f64)).collect(),
        };
        models.push(report("ensemble", &results, |p| ensemble(p, &ensemble_weights)));
    }
    Ok(EvalReport {
        data: request.data_dir.clone(),
        split: request.split.as_ref().map(|(_, s)| s.clone()),
        models,
        ensemble_weights,
        failed,
    })
}

/// The report with its pictures: what `eval --plots DIR` writes as `DIR/eval.json`.
#[derive(Debug, Clone, Serialize)]
pub struct PlottedReport<'a> {
    #[serde(flatten)]
    pub report: &'a EvalReport,
    /// One confusion matrix per model, in the report's order, with the cells as drawn.
    pub plots: Vec<super::plots::Plot>,
}

/// `DIR/<model>.png`, each model's track-level confusion matrix, and `DIR/eval.json`, the
/// numbers they were drawn from with what each picture shows.
pub fn write_plots(report: &EvalReport, dir: &Path) -> Result<Vec<super::plots::Plot>, EvalError> {
    let write_error = |path: &Path, source| EvalError::Write { path: path.to_path_buf(), source };
    std::fs::create_dir_all(dir).map_err(|e| write_error(dir, e))?;
    let subset = report.split.as_deref().map(|s| format!(", {s} split")).unwrap_or_default();
    let mut plots = Vec::with_capacity(report.models.len());
    for model in &report.models {
        let title =
            format!("{}: {} tracks{subset}, accuracy {:.1} %", model.model, model.tracks, 100.0 * model.track_accuracy);
        plots.push(super::plots::confusion(&title, &model.confusion, &dir.join(format!("{}.png", model.model)))?);
    }
    let json = dir.join("eval.json");
    let text = serde_json::to_string_pretty(&PlottedReport { report, plots: plots.clone() }).unwrap_or_default();
    std::fs::write(&json, text + "\n").map_err(|e| write_error(&json, e))?;
    Ok(plots)
}

/// Ensemble weights (non-negative, summing to 1) that maximise the likelihood of the true
/// labels of `results`, by exponentiated gradient: a weighted mean of probabilities stays a
/// distribution, and a model that only adds noise is weighted down towards 0.
fn fit_weights(results: &[Labelled], models: &[String]) -> BTreeMap<String, f64> {
    // p[i][m]: model m's probability of track i's true label.
    let rows: Vec<Vec<f64>> = results
        .iter()
        .filter_map(|(truth, predictions)| {
            models
                .iter()
                .map(|m| {
                    let p = predictions.iter().find(|p| &p.model == m)?;
                    let i = p.labels.iter().position(|l| l == truth)?;
                    Some(f64::from(p.probabilities[i]))
                })
                .collect::<Option<Vec<f64>>>()
        })
        .collect();
    let k = models.len();
    let mut w = vec![1.0 / k as f64; k];
    if !rows.is_empty() {
        for _ in 0..2000 {
            let mut gradient = vec![0.0; k];
            for row in &rows {
                let mix: f64 = row.iter().zip(&w).map(|(p, w)| p * w).sum::<f64>().max(1e-12);
                gradient.iter_mut().zip(row).for_each(|(g, p)| *g -= p / mix / rows.len() as f64);
            }
            w.iter_mut().zip(&gradient).for_each(|(w, g)| *w *= (-0.5 * g).exp());
            let total: f64 = w.iter().sum();
            w.iter_mut().for_each(|w| *w /= total);
        }
    }
    models.iter().cloned().zip(w).collect()
}

/// The weighted mean of the models' probabilities, aligned by label name, per track; per
/// segment among the models that have segments (heads have none), where they all cut the
/// track the same way.
fn ensemble(predictions: &[TrackPrediction], weights: &BTreeMap<String, f64>) -> Option<TrackPrediction> {
    let first = predictions.first()?;
    let labels = first.labels.clone();
    let aligned = |p: &TrackPrediction, values: &[f32]| -> Vec<f32> {
        labels.iter().map(|l| p.labels.iter().position(|x| x == l).map_or(0.0, |i| values[i])).collect()
    };
    let weight = |p: &TrackPrediction| weights.get(&p.model).copied().unwrap_or(0.0) as f32;
    let total: f32 = predictions.iter().map(weight).sum();
    if total <= 0.0 {
        return None;
    }
    let mut probabilities = vec![0.0; labels.len()];
    for p in predictions {
        let w = weight(p) / total;
        probabilities.iter_mut().zip(aligned(p, &p.probabilities)).for_each(|(sum, v)| *sum += w * v);
    }
    let segmented: Vec<&TrackPrediction> = predictions.iter().filter(|p| !p.segments.is_empty()).collect();
    let segment_total: f32 = segmented.iter().map(|p| weight(p)).sum();
    let same_cut = segmented.iter().all(|p| p.segments.len() == segmented[0].segments.len());
    let segments = if same_cut && segment_total > 0.0 {
        (0..segmented[0].segments.len())
            .map(|s| {
                let mut mean = vec![0.0; labels.len()];
                for p in &segmented {
                    let w = weight(p) / segment_total;
                    mean.iter_mut().zip(aligned(p, &p.segments[s])).for_each(|(sum, v)| *sum += w * v);
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
    let track = Confusion::new(
        &labels,
        picked.iter().map(|(truth, p)| (index(truth), classify::top(&p.probabilities).unwrap_or(0))),
    );
    let segment = Confusion::new(
        &labels,
        picked
            .iter()
            .flat_map(|(truth, p)| p.segments.iter().map(move |s| (index(truth), classify::top(s).unwrap_or(0))))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Each picture shows its model's numbers: the cells drawn, read back from eval.json, are
    /// the confusion matrix beside them, and each PNG is the size drawn.
    #[test]
    fn eval_plots_draw_each_models_confusion_matrix_beside_its_numbers() {
        let labels: Vec<String> = ["blues", "classical", "metal"].iter().map(|s| s.to_string()).collect();
        let model = |name: &str, pairs: &[(usize, usize)]| {
            let confusion = Confusion::new(&labels, pairs.iter().copied());
            ModelReport {
                model: name.into(),
                track_accuracy: confusion.accuracy(),
                segment_accuracy: 0.0,
                tracks: confusion.total(),
                segments: 0,
                per_class: confusion.per_class(),
                confusion,
            }
        };
        let report = EvalReport {
            data: PathBuf::from("/data"),
            split: Some("test".into()),
            models: vec![model("cnn", &[(0, 0), (0, 1), (1, 1), (2, 2), (2, 2)]), model("genre", &[(0, 2), (1, 1)])],
            ensemble_weights: BTreeMap::new(),
            failed: Vec::new(),
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let plots = write_plots(&report, &dir.path().join("plots")).expect("plots");
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("plots/eval.json")).expect("eval.json"))
                .expect("JSON");
        for (i, name) in ["cnn", "genre"].iter().enumerate() {
            let png = std::fs::read(dir.path().join(format!("plots/{name}.png"))).expect("png");
            assert_eq!(super::super::plots::png_size(&png), Some((plots[i].width, plots[i].height)), "{name}");
            let matrix: Vec<Vec<String>> = json["models"][i]["confusion"]["matrix"]
                .as_array()
                .expect("rows")
                .iter()
                .map(|row| row.as_array().expect("row").iter().map(|n| n.to_string()).collect())
                .collect();
            assert_eq!(json["plots"][i]["cells"], serde_json::json!(matrix), "{name}: the cells drawn are the counts");
            assert_eq!(plots[i].cells, matrix, "{name}");
        }
        assert_eq!(plots[0].cells[0], ["1", "1", "0"]);
    }
}
