//! Training: standardise → PCA → kNN, with the number of components chosen on a validation
//! split by track.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use timbre_rng::split::{split, Fractions, Side};

use crate::knn::{vote, Neighbours};
use crate::linalg::parallel_map;
use crate::model::Model;
use crate::pca::{self, Pca, PcaError, GRAM_MAX_SEGMENTS};

/// One training segment: a `[n_features, frames]` log-mel matrix, flattened row-major.
#[derive(Debug, Clone, Copy)]
pub struct TrainingSegment<'a> {
    /// The recording it comes from. Segments of one track are never split across the
    /// training and validation sides.
    pub track: &'a str,
    pub label: &'a str,
    pub features: &'a [f32],
}

/// How to train.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainOptions {
    /// Neighbours that vote (report 000: 9).
    pub k: usize,
    /// Weight each neighbour's vote by `1 / distance` instead of counting it once.
    pub weighted: bool,
    /// Number of principal components; `None` chooses among [`COMPONENT_CANDIDATES`] on a
    /// validation split.
    pub components: Option<usize>,
    /// Fraction of each label's tracks held out to choose the number of components.
    pub validation_fraction: f64,
    /// Seeds the split and the eigensolver's start vector.
    pub seed: u64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions { k: 9, weighted: false, components: None, validation_fraction: 0.2, seed: 0 }
    }
}

/// The numbers of components tried when [`TrainOptions::components`] is `None`: 2 to 64,
/// about evenly spaced on a log scale.
pub const COMPONENT_CANDIDATES: [usize; 11] = [2, 3, 4, 6, 8, 11, 16, 23, 32, 45, 64];

/// Most components `train` will fit when asked explicitly.
pub const MAX_COMPONENTS: usize = 1024;

/// How one candidate did on the validation tracks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CandidateScore {
    pub components: usize,
    /// Validation tracks whose mean segment vote share is highest for their own label.
    pub track_accuracy: f64,
    /// Validation segments whose vote is highest for their own label.
    pub segment_accuracy: f64,
}

/// Where the number of components came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ComponentChoice {
    /// [`TrainOptions::components`] gave it.
    Given,
    /// The best candidate on the validation split.
    Validation,
}

/// What training did, for the model card and the command's output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainReport {
    pub labels: Vec<String>,
    pub segments: usize,
    pub tracks: usize,
    pub k: usize,
    pub weighted: bool,
    /// Tracks on each side of the validation split (empty when the number was given).
    pub training_tracks: Vec<String>,
    pub validation_tracks: Vec<String>,
    /// Every candidate tried, in increasing order of components.
    pub candidates: Vec<CandidateScore>,
    pub chosen_by: ComponentChoice,
    /// Components of the final model, fitted on all segments.
    pub components: usize,
    /// Fraction of the standardised variance along each final axis.
    pub explained_variance_ratio: Vec<f64>,
}

impl fmt::Display for TrainReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "pca-knn: {} segments from {} tracks, {} labels; k = {}{}",
            self.segments,
            self.tracks,
            self.labels.len(),
            self.k,
            if self.weighted { ", distance-weighted" } else { "" }
        )?;
        if !self.candidates.is_empty() {
            writeln!(
                f,
                "validation split by track: {} training, {} held out",
                self.training_tracks.len(),
                self.validation_tracks.len()
            )?;
            writeln!(f, "{:>11}  {:>14}  {:>16}", "components", "track accuracy", "segment accuracy")?;
            for c in &self.candidates {
                let mark = if c.components == self.components { "  <" } else { "" };
                writeln!(
                    f,
                    "{:>11}  {:>13.1}%  {:>15.1}%{mark}",
                    c.components,
                    100.0 * c.track_accuracy,
                    100.0 * c.segment_accuracy
                )?;
            }
        }
        let explained: f64 = self.explained_variance_ratio.iter().sum();
        write!(
            f,
            "final model: {} components ({}), {:.1}% of the standardised variance",
            self.components,
            match self.chosen_by {
                ComponentChoice::Given => "given",
                ComponentChoice::Validation => "best on validation",
            },
            100.0 * explained
        )
    }
}

/// Why training refused its input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    #[error("invalid training options: {0}")]
    Options(String),
    #[error("segments of {n_features} × {frames} features are not a usable shape")]
    Shape { n_features: usize, frames: usize },
    #[error("pca-knn needs at least 2 training segments, got {0}")]
    TooFewSegments(usize),
    #[error("segment {index} (track {track:?}) has {found} values, expected {expected} ({n_features} × {frames})")]
    SegmentSize { index: usize, track: String, found: usize, expected: usize, n_features: usize, frames: usize },
    #[error("segment {index} (track {track:?}) has a non-finite value at position {position}")]
    NonFinite { index: usize, track: String, position: usize },
    #[error("segment {index} has an empty label")]
    EmptyLabel { index: usize },
    #[error("track {track:?} has segments labelled both {first:?} and {second:?}; a track has one label")]
    MixedTrackLabels { track: String, first: String, second: String },
    #[error(
        "choosing the number of components needs held-out tracks, but no label has enough tracks to hold one out (3 always do); add tracks or set the number of components"
    )]
    NoValidationTracks,
    #[error("asked for {asked} components, but the {segments} training segments support only {available}")]
    TooManyComponents { asked: usize, available: usize, segments: usize },
    #[error("the training segments do not vary: every standardised feature is constant")]
    NoVariance,
    #[error("the eigensolver did not converge (non-finite values in the data?)")]
    NoConvergence,
}

impl From<PcaError> for TrainError {
    fn from(error: PcaError) -> Self {
        match error {
            PcaError::NoVariance => TrainError::NoVariance,
            PcaError::NoConvergence => TrainError::NoConvergence,
        }
    }
}

/// Train a PCA + kNN model on `segments`, each `n_features × frames` long.
///
/// With `options.components == None`, tracks are split by label ([`TrainOptions::validation_fraction`]
/// of each label's tracks held out, seeded), PCA is fitted on the training side, and every
/// candidate in [`COMPONENT_CANDIDATES`] is scored by track-level accuracy on the held-out
/// tracks; the best (ties: better segment accuracy, then fewer components) is then refitted on
/// all segments. Labels are sorted, so the same data gives the same model.
pub fn train(
    segments: &[TrainingSegment<'_>],
    n_features: usize,
    frames: usize,
    options: &TrainOptions,
) -> Result<(Model, TrainReport), TrainError> {
    gram_limited_train(segments, n_features, frames, options, GRAM_MAX_SEGMENTS)
}

pub(crate) fn gram_limited_train(
    segments: &[TrainingSegment<'_>],
    n_features: usize,
    frames: usize,
    options: &TrainOptions,
    gram_max: usize,
) -> Result<(Model, TrainReport), TrainError> {
    check_options(options)?;
    let d = n_features
        .checked_mul(frames)
        .filter(|&d| d > 0 && n_features <= u32::MAX as usize && frames <= u32::MAX as usize);
    let Some(d) = d else { return Err(TrainError::Shape { n_features, frames }) };
    if segments.len() < 2 {
        return Err(TrainError::TooFewSegments(segments.len()));
    }
    if segments.len() > u32::MAX as usize {
        return Err(TrainError::Options(format!("{} segments is more than a model can hold", segments.len())));
    }
    for (index, s) in segments.iter().enumerate() {
        if s.features.len() != d {
            return Err(TrainError::SegmentSize {
                index,
                track: s.track.to_string(),
                found: s.features.len(),
                expected: d,
                n_features,
                frames,
            });
        }
        if let Some(position) = s.features.iter().position(|x| !x.is_finite()) {
            return Err(TrainError::NonFinite { index, track: s.track.to_string(), position });
        }
        if s.label.is_empty() {
            return Err(TrainError::EmptyLabel { index });
        }
    }

    // Labels sorted; tracks in name order, each with one label.
    let labels: Vec<String> = segments
        .iter()
        .map(|s| s.label)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .map(String::from)
        .collect();
    let class_of = |label: &str| labels.binary_search_by(|l| l.as_str().cmp(label)).map_or(0, |i| i as u32);
    let segment_classes: Vec<u32> = segments.iter().map(|s| class_of(s.label)).collect();
    let mut tracks: BTreeMap<&str, (u32, Vec<usize>)> = BTreeMap::new();
    for (index, s) in segments.iter().enumerate() {
        let entry = tracks.entry(s.track).or_insert((segment_classes[index], Vec::new()));
        if entry.0 != segment_classes[index] {
            return Err(TrainError::MixedTrackLabels {
                track: s.track.to_string(),
                first: labels[entry.0 as usize].clone(),
                second: s.label.to_string(),
            });
        }
        entry.1.push(index);
    }
    let track_names: Vec<&str> = tracks.keys().copied().collect();
    let track_classes: Vec<u32> = tracks.values().map(|(c, _)| *c).collect();
    let track_segments: Vec<&Vec<usize>> = tracks.values().map(|(_, s)| s).collect();

    let mut report = TrainReport {
        labels: labels.clone(),
        segments: segments.len(),
        tracks: tracks.len(),
        k: options.k,
        weighted: options.weighted,
        training_tracks: Vec::new(),
        validation_tracks: Vec::new(),
        candidates: Vec::new(),
        chosen_by: ComponentChoice::Given,
        components: 0,
        explained_variance_ratio: Vec::new(),
    };

    let wanted = match options.components {
        Some(c) => c,
        None => {
            // The project's one split, by track and stratified by label, with no test side.
            let items: Vec<(&str, &str)> =
                track_names.iter().zip(&track_classes).map(|(&t, &c)| (t, labels[c as usize].as_str())).collect();
            let fractions = Fractions { validation: options.validation_fraction, test: 0.0 };
            let sides = split(&items, fractions, options.seed);
            let side = |wanted: Side| -> Vec<usize> { (0..sides.len()).filter(|&t| sides[t] == wanted).collect() };
            let (training, validation) = (side(Side::Train), side(Side::Val));
            if validation.is_empty() {
                return Err(TrainError::NoValidationTracks);
            }
            let rows_of = |side: &[usize]| -> Vec<usize> {
                let mut rows: Vec<usize> = side.iter().flat_map(|&t| track_segments[t].iter().copied()).collect();
                rows.sort_unstable();
                rows
            };
            let (train_rows, validation_rows) = (rows_of(&training), rows_of(&validation));
            let views: Vec<&[f32]> = train_rows.iter().map(|&i| segments[i].features).collect();
            let max_candidate = COMPONENT_CANDIDATES[COMPONENT_CANDIDATES.len() - 1];
            let fitted = pca::fit(&views, d, max_candidate, options.seed, gram_max)?;
            let scores = score_candidates(
                &fitted,
                segments,
                &segment_classes,
                labels.len(),
                &train_rows,
                &validation.iter().map(|&t| (track_classes[t], track_segments[t].as_slice())).collect::<Vec<_>>(),
                &validation_rows,
                options,
            );
            let best = scores
                .iter()
                .max_by(|a, b| {
                    a.track_accuracy
                        .total_cmp(&b.track_accuracy)
                        .then(a.segment_accuracy.total_cmp(&b.segment_accuracy))
                        .then(b.components.cmp(&a.components))
                })
                .map_or(1, |s| s.components);
            report.training_tracks = training.iter().map(|&t| track_names[t].to_string()).collect();
            report.validation_tracks = validation.iter().map(|&t| track_names[t].to_string()).collect();
            report.candidates = scores;
            report.chosen_by = ComponentChoice::Validation;
            best
        }
    };

    let views: Vec<&[f32]> = segments.iter().map(|s| s.features).collect();
    let fitted = pca::fit(&views, d, wanted, options.seed, gram_max)?;
    if fitted.n_components < wanted && report.chosen_by == ComponentChoice::Given {
        return Err(TrainError::TooManyComponents {
            asked: wanted,
            available: fitted.n_components,
            segments: segments.len(),
        });
    }
    let embeddings = embed(&fitted, &views);
    report.components = fitted.n_components;
    report.explained_variance_ratio = fitted.explained_variance_ratio.clone();
    let model = Model {
        n_features,
        frames,
        labels,
        k: options.k,
        weighted: options.weighted,
        n_components: fitted.n_components,
        standardiser: fitted.standardiser,
        components: fitted.components,
        embeddings,
        train_labels: segment_classes,
    };
    Ok((model, report))
}

fn check_options(options: &TrainOptions) -> Result<(), TrainError> {
    if options.k == 0 || options.k > u32::MAX as usize {
        return Err(TrainError::Options(format!("k must be at least 1, got {}", options.k)));
    }
    match options.components {
        Some(0) => Err(TrainError::Options("the number of components must be at least 1".to_string())),
        Some(c) if c > MAX_COMPONENTS => {
            Err(TrainError::Options(format!("{c} components is more than the {MAX_COMPONENTS} pca-knn fits")))
        }
        Some(_) => Ok(()),
        None if !(options.validation_fraction > 0.0 && options.validation_fraction < 1.0) => Err(TrainError::Options(
            format!("validation_fraction must be between 0 and 1, got {}", options.validation_fraction),
        )),
        None => Ok(()),
    }
}

/// PCA coordinates of every row, `[rows, n_components]`.
fn embed(fitted: &Pca, rows: &[&[f32]]) -> Vec<f32> {
    const CHUNK: usize = 64;
    let m = fitted.n_components;
    parallel_map(rows.len().div_ceil(CHUNK), |c| {
        let mut scratch = Vec::new();
        let chunk = &rows[c * CHUNK..((c + 1) * CHUNK).min(rows.len())];
        let mut out = vec![0.0f32; chunk.len() * m];
        for (row, o) in chunk.iter().zip(out.chunks_exact_mut(m.max(1))) {
            fitted.project(row, &mut scratch, o);
        }
        out
    })
    .concat()
}

/// Score each candidate number of components on the validation tracks, using the first `c`
/// coordinates of one PCA fitted on the training side (principal axes nest).
#[expect(clippy::too_many_arguments, reason = "one private helper; a struct for its inputs would only rename them")]
fn score_candidates(
    fitted: &Pca,
    segments: &[TrainingSegment<'_>],
    segment_classes: &[u32],
    n_classes: usize,
    train_rows: &[usize],
    validation_tracks: &[(u32, &[usize])],
    validation_rows: &[usize],
    options: &TrainOptions,
) -> Vec<CandidateScore> {
    let m = fitted.n_components;
    let train_views: Vec<&[f32]> = train_rows.iter().map(|&i| segments[i].features).collect();
    let train_embeddings = embed(fitted, &train_views);
    let train_labels: Vec<u32> = train_rows.iter().map(|&i| segment_classes[i]).collect();
    let validation_views: Vec<&[f32]> = validation_rows.iter().map(|&i| segments[i].features).collect();
    let validation_embeddings = embed(fitted, &validation_views);
    // Where each segment sits among the validation rows.
    let position: BTreeMap<usize, usize> = validation_rows.iter().enumerate().map(|(p, &i)| (i, p)).collect();

    let mut candidates: Vec<usize> = COMPONENT_CANDIDATES.iter().copied().filter(|&c| c <= m).collect();
    if m < COMPONENT_CANDIDATES[COMPONENT_CANDIDATES.len() - 1] && !candidates.contains(&m) {
        candidates.push(m);
    }
    let neighbours = Neighbours { embeddings: &train_embeddings, stride: m, labels: &train_labels, n_classes };
    parallel_map(candidates.len(), |ci| {
        let c = candidates[ci];
        let (mut scratch, mut shares) = (Vec::new(), vec![0.0f32; validation_rows.len() * n_classes]);
        let mut segment_hits = 0usize;
        for (p, &i) in validation_rows.iter().enumerate() {
            let out = &mut shares[p * n_classes..(p + 1) * n_classes];
            vote(&neighbours, &validation_embeddings[p * m..p * m + c], options.k, options.weighted, &mut scratch, out);
            segment_hits += usize::from(argmax(out) == segment_classes[i] as usize);
        }
        let mut track_hits = 0usize;
        for &(class, rows) in validation_tracks {
            let mut mean = vec![0.0f64; n_classes];
            for i in rows {
                if let Some(&p) = position.get(i) {
                    for (m, &s) in mean.iter_mut().zip(&shares[p * n_classes..(p + 1) * n_classes]) {
                        *m += s as f64;
                    }
                }
            }
            track_hits += usize::from(argmax(&mean) == class as usize);
        }
        CandidateScore {
            components: c,
            track_accuracy: track_hits as f64 / validation_tracks.len().max(1) as f64,
            segment_accuracy: segment_hits as f64 / validation_rows.len().max(1) as f64,
        }
    })
}

/// Index of the largest value; ties go to the lower index.
fn argmax<T: PartialOrd + Copy>(values: &[T]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best
}
