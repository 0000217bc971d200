//! `timbred train head`: a head over another model's embedding, trained on a labelled folder in
//! seconds (timbre-head: standardise, then logistic regression or kNN, chosen on held-out
//! tracks), written as a model folder the daemon loads beside the model it reads.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;
use timbre_head::{card, train, write_head_folder, Example, FolderSpec, Holdout, TrainOptions, TrainReport};

use super::eval::{labelled_files, read_split, EvalError};
use crate::models::ModelCatalog;
use crate::pipeline::analysis::Analyzer;
use crate::plugin_host::PluginRegistry;

#[derive(Debug, Clone)]
pub struct HeadRequest {
    pub data_dir: PathBuf,
    pub out_dir: PathBuf,
    /// The model whose embedding the head reads.
    pub embedding: String,
    /// Train on this split file's "train" files and choose on its "val" files ("test" is never
    /// read); without one, a stratified fifth of the tracks is held out to choose.
    pub split: Option<PathBuf>,
    pub name: String,
    pub version: String,
    pub seed: u64,
    /// Also estimate accuracy by k-fold cross-validation by track (0: no).
    pub folds: usize,
    /// Tracks at least this long count as "whole tracks" in the cross-validation figures.
    pub whole_track_seconds: f64,
    pub jobs: usize,
    /// The command line, for the card.
    pub command: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct HeadOutcome {
    pub report: TrainReport,
    pub tracks: usize,
    /// Seconds to analyse the files (the upstream model) and to train the head.
    pub analyse_seconds: f64,
    pub train_seconds: f64,
    pub cross_validation: Option<CrossValidation>,
    pub failed: Vec<(PathBuf, String)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CrossValidation {
    pub folds: usize,
    pub tracks: usize,
    pub accuracy: f64,
    pub whole_tracks: usize,
    pub whole_track_accuracy: f64,
    pub whole_track_seconds: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    #[error(transparent)]
    Data(#[from] EvalError),
    #[error(transparent)]
    Plugin(#[from] crate::plugin_host::PluginError),
    #[error("the model '{0}' is not loaded (or has no embedding); heads read a loaded model's embedding")]
    NoUpstream(String),
    #[error("no labelled file could be analysed ({0} failed)")]
    NoData(usize),
    #[error(transparent)]
    Train(#[from] timbre_head::TrainError),
    #[error(transparent)]
    Write(#[from] timbre_head::FolderError),
    #[error("cross-validation: track {track}: {source}")]
    Predict { track: String, source: timbre_head::PredictError },
}

/// A track's label, its upstream embedding and its duration.
struct Labelled {
    track: String,
    label: String,
    embedding: Vec<f32>,
    duration_s: f64,
}

pub fn train_head(
    registry: &PluginRegistry,
    catalog: &ModelCatalog,
    request: &HeadRequest,
    mut progress: impl FnMut(usize, usize) + Send,
) -> Result<HeadOutcome, HeadError> {
    let upstream = catalog
        .feature_models()
        .find(|m| m.spec.name() == request.embedding)
        .ok_or_else(|| HeadError::NoUpstream(request.embedding.clone()))?;
    let mut files = labelled_files(&request.data_dir)?;
    let relative = |f: &Path| f.strip_prefix(&request.data_dir).unwrap_or(f).to_string_lossy().into_owned();
    let holdout = match &request.split {
        Some(split) => {
            let val = read_split(split, "val")?;
            let mut keep = read_split(split, "train")?;
            keep.extend(val.iter().cloned());
            files.retain(|(f, _)| keep.contains(&relative(f)));
            Holdout::Tracks(val.into_iter().collect())
        }
        None => Holdout::Stratified { fraction: 0.2, seed: request.seed },
    };

    // The upstream model alone, once per file.
    let started = Instant::now();
    let labels: HashMap<PathBuf, String> = files.iter().cloned().collect();
    let paths: Vec<PathBuf> = files.into_iter().map(|(f, _)| f).collect();
    let only = [upstream.spec.name().to_string()];
    let (mut tracks, mut failed) = (Vec::new(), Vec::new());
    let total = paths.len();
    super::for_each_file(
        &paths,
        request.jobs,
        || Analyzer::for_models(registry, catalog),
        |analyzer, file| {
            analyzer.analyze_input(
                &crate::pipeline::AudioInput::File(file.clone()),
                Some(&only),
                crate::pipeline::Budget::UNLIMITED,
            )
        },
        |file, result| {
            match result {
                Ok(analysis) => {
                    if let Some(p) = analysis.predictions.iter().find(|p| p.model == only[0]) {
                        tracks.push(Labelled {
                            track: relative(file),
                            label: labels[file].clone(),
                            embedding: p.embedding.clone(),
                            duration_s: analysis.duration_s,
                        });
                    }
                }
                Err(error) => failed.push((file.clone(), error.to_string())),
            }
            progress(tracks.len() + failed.len(), total);
        },
    )?;
    if tracks.is_empty() {
        return Err(HeadError::NoData(failed.len()));
    }
    let analyse_seconds = started.elapsed().as_secs_f64();

    let examples: Vec<Example<'_>> =
        tracks.iter().map(|t| Example { track: &t.track, label: &t.label, embedding: &t.embedding }).collect();
    let started = Instant::now();
    let options = TrainOptions { holdout, ..TrainOptions::default() };
    let (head, report) = train(&examples, &options)?;
    let train_seconds = started.elapsed().as_secs_f64();
    let cross_validation = (request.folds >= 2).then(|| cross_validate(&tracks, request)).transpose()?;

    let data = format!("{} labelled tracks of {}", tracks.len(), request.data_dir.display());
    let provenance = card::Provenance {
        name: &request.name,
        upstream: &request.embedding,
        data: &data,
        command: &request.command,
        seconds: train_seconds,
    };
    let mut text = card::card(&provenance, &report);
    if let Some(cv) = &cross_validation {
        text.push_str(&format!(
            "\n## Cross-validation\n\n{}-fold by track (each fold trained on the others, with the same choice on \
             held-out tracks): **{:.1} %** of {} tracks; **{:.1} %** of the {} whole tracks (at least {} s).\n",
            cv.folds,
            100.0 * cv.accuracy,
            cv.tracks,
            100.0 * cv.whole_track_accuracy,
            cv.whole_tracks,
            cv.whole_track_seconds
        ));
    }
    let description = format!("a head over the {} embedding: {}", request.embedding, report.classifier);
    let comment = format!("Written by `timbred train head`. Retrain:\n  {}", request.command);
    write_head_folder(
        &head,
        &request.out_dir,
        &FolderSpec {
            name: &request.name,
            version: &request.version,
            description: &description,
            upstream: &request.embedding,
            card: &text,
            comment: &comment,
        },
    )?;
    Ok(HeadOutcome { report, tracks: tracks.len(), analyse_seconds, train_seconds, cross_validation, failed })
}

/// k-fold by track, stratified by label (each label's tracks dealt round the folds in a
/// seeded order); every fold predicted by a head trained on the others.
fn cross_validate(tracks: &[Labelled], request: &HeadRequest) -> Result<CrossValidation, HeadError> {
    let k = request.folds;
    let mut by_label: std::collections::BTreeMap<&str, Vec<usize>> = std::collections::BTreeMap::new();
    for (i, t) in tracks.iter().enumerate() {
        by_label.entry(&t.label).or_default().push(i);
    }
    let mut fold = vec![0usize; tracks.len()];
    let mut rng = timbre_rng::SplitMix64::new(request.seed);
    for members in by_label.values_mut() {
        members.sort_by(|&a, &b| tracks[a].track.cmp(&tracks[b].track));
        rng.shuffle(members);
        for (n, &i) in members.iter().enumerate() {
            fold[i] = n % k;
        }
    }
    let (mut right, mut whole, mut whole_right) = (0usize, 0usize, 0usize);
    for f in 0..k {
        let examples: Vec<Example<'_>> = tracks
            .iter()
            .zip(&fold)
            .filter(|(_, &g)| g != f)
            .map(|(t, _)| Example { track: &t.track, label: &t.label, embedding: &t.embedding })
            .collect();
        let options = TrainOptions {
            holdout: Holdout::Stratified { fraction: 0.2, seed: request.seed },
            ..TrainOptions::default()
        };
        let (head, _) = train(&examples, &options)?;
        for (t, _) in tracks.iter().zip(&fold).filter(|(_, &g)| g == f) {
            let p =
                head.predict(&t.embedding).map_err(|source| HeadError::Predict { track: t.track.clone(), source })?;
            let best = crate::pipeline::classify::top(&p).unwrap_or(0);
            let ok = head.labels()[best] == t.label;
            right += usize::from(ok);
            if t.duration_s >= request.whole_track_seconds {
                whole += 1;
                whole_right += usize::from(ok);
            }
        }
    }
    Ok(CrossValidation {
        folds: k,
        tracks: tracks.len(),
        accuracy: right as f64 / tracks.len().max(1) as f64,
        whole_tracks: whole,
        whole_track_accuracy: whole_right as f64 / whole.max(1) as f64,
        whole_track_seconds: request.whole_track_seconds,
    })
}
