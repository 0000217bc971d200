//! Training: hold tracks out, try logistic regression at several penalties and kNN at several
//! `k`, keep whichever scores best on the held-out tracks, refit it on every track.

use std::collections::BTreeMap;

use serde::Serialize;
use timbre_rng::split::{split, Fractions, Side};

use crate::knn;
use crate::logistic::{self, Fit, Problem};
use crate::model::{Classifier, Head};
use crate::standardise::Standardiser;

/// One labelled embedding.
#[derive(Debug, Clone, Copy)]
pub struct Example<'a> {
    /// The recording it comes from: examples of one track are never on both sides.
    pub track: &'a str,
    pub label: &'a str,
    pub embedding: &'a [f32],
}

/// Which tracks choose the classifier.
#[derive(Debug, Clone, PartialEq)]
pub enum Holdout {
    /// This fraction of each label's tracks, by the project's one splitter.
    Stratified { fraction: f64, seed: u64 },
    /// The tracks named, e.g. the `val` side of a split file; the rest train.
    Tracks(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct TrainOptions {
    pub holdout: Holdout,
    /// Penalties tried for logistic regression.
    pub l2: Vec<f64>,
    /// Neighbour counts tried for kNN.
    pub k: Vec<usize>,
    /// Gradient steps per penalty at most.
    pub max_iterations: usize,
}

/// Half-decades from 1e-4 to 1: below, the regression overfits a few hundred tracks; above,
/// it underfits standardised embeddings.
pub const L2_CANDIDATES: [f64; 9] = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0];
pub const K_CANDIDATES: [usize; 6] = [1, 3, 5, 9, 15, 25];

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            holdout: Holdout::Stratified { fraction: 0.2, seed: 0 },
            l2: L2_CANDIDATES.to_vec(),
            k: K_CANDIDATES.to_vec(),
            max_iterations: 3000,
        }
    }
}

/// How one candidate did on the held-out examples.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    /// `logistic` or `knn`.
    pub kind: &'static str,
    /// The penalty or the neighbour count.
    pub parameter: f64,
    pub accuracy: f64,
    /// Mean cross-entropy (kNN's vote shares floored at 1e-3 so one wrong vote is not infinite).
    pub log_loss: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainReport {
    pub labels: Vec<String>,
    /// Training and held-out tracks per label, in label order.
    pub train_tracks: Vec<usize>,
    pub holdout_tracks: Vec<usize>,
    pub candidates: Vec<Candidate>,
    /// The index in `candidates` of the one kept: best accuracy, then lowest log loss.
    pub chosen: usize,
    /// In words, for the card.
    pub classifier: String,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TrainError {
    #[error("no examples to train on")]
    Empty,
    #[error("example {index} (track {track}) has {actual} values, the first has {expected}")]
    Dimension { index: usize, track: String, expected: usize, actual: usize },
    #[error("example {index} (track {track}) has a value that is not finite")]
    NotFinite { index: usize, track: String },
    #[error("track {track} is labelled both {first} and {second}")]
    ConflictingLabels { track: String, first: String, second: String },
    #[error("a head needs at least two labels, found {0:?}")]
    TooFewLabels(Vec<String>),
    #[error(
        "no track is held out to choose the classifier (too few tracks, or none of the named tracks is in the data)"
    )]
    NoHoldout,
    #[error("every track is held out; none is left to train on")]
    NoTraining,
    #[error("no candidate to try: give at least one penalty or neighbour count")]
    NoCandidates,
}

/// Trains a head on `examples`; see the module documentation.
pub fn train(examples: &[Example<'_>], options: &TrainOptions) -> Result<(Head, TrainReport), TrainError> {
    let dim = check(examples)?;
    let labels: Vec<String> = examples
        .iter()
        .map(|e| e.label)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .map(str::to_owned)
        .collect();
    if labels.len() < 2 {
        return Err(TrainError::TooFewLabels(labels));
    }
    if options.l2.is_empty() && options.k.is_empty() {
        return Err(TrainError::NoCandidates);
    }
    let label_index = |label: &str| labels.iter().position(|l| l == label).expect("every label was collected");
    let y: Vec<usize> = examples.iter().map(|e| label_index(e.label)).collect();

    let held_out = holdout(examples, &options.holdout)?;
    let (fit_rows, check_rows): (Vec<usize>, Vec<usize>) = (0..examples.len()).partition(|&i| !held_out[i]);
    if check_rows.is_empty() {
        return Err(TrainError::NoHoldout);
    }
    if fit_rows.is_empty() {
        return Err(TrainError::NoTraining);
    }

    // Choose on the held-out tracks, standardising with the training side's statistics only.
    let standardiser = Standardiser::fit(fit_rows.iter().map(|&i| examples[i].embedding), dim);
    let fit_x = standardised(examples, &fit_rows, &standardiser);
    let fit_y: Vec<usize> = fit_rows.iter().map(|&i| y[i]).collect();
    let check_x = standardised(examples, &check_rows, &standardiser);
    let check_y: Vec<usize> = check_rows.iter().map(|&i| y[i]).collect();
    let problem = Problem { x: &fit_x, y: &fit_y, dim, classes: labels.len() };
    let smoothness = problem.smoothness();

    let mut candidates = Vec::new();
    // From the strongest penalty down, each fit starting from the last: the path is smooth.
    let mut l2 = options.l2.clone();
    l2.sort_by(|a, b| b.total_cmp(a));
    let mut start: Option<Fit> = None;
    for &penalty in &l2 {
        let fit = logistic::fit(&problem, penalty, smoothness, start.as_ref(), options.max_iterations);
        let mut p = vec![0.0; labels.len()];
        let scores = check_x.chunks_exact(dim).map(|row| {
            logistic::probabilities(&fit, row, &mut p);
            p.clone()
        });
        candidates.push(score("logistic", penalty, scores, &check_y));
        start = Some(fit);
    }
    let fit_points = unit_rows(fit_x.clone(), dim);
    for &k in &options.k {
        let mut p = vec![0.0; labels.len()];
        let scores = check_x.chunks_exact(dim).map(|row| {
            let mut query = row.to_vec();
            knn::unit(&mut query);
            knn::vote(&fit_points, &fit_y, k, &query, &mut p);
            p.clone()
        });
        candidates.push(score("knn", k as f64, scores, &check_y));
    }
    let chosen = (0..candidates.len())
        .max_by(|&a, &b| {
            let (a, b) = (&candidates[a], &candidates[b]);
            a.accuracy.total_cmp(&b.accuracy).then(b.log_loss.total_cmp(&a.log_loss))
        })
        .expect("at least one candidate");

    // Refit the winner on every track: the held-out ones have done their job.
    let all: Vec<usize> = (0..examples.len()).collect();
    let standardiser = Standardiser::fit(examples.iter().map(|e| e.embedding), dim);
    let all_x = standardised(examples, &all, &standardiser);
    let winner = &candidates[chosen];
    let classifier = if winner.kind == "logistic" {
        let problem = Problem { x: &all_x, y: &y, dim, classes: labels.len() };
        let fit = logistic::fit(&problem, winner.parameter, problem.smoothness(), None, options.max_iterations);
        Classifier::Logistic {
            l2: winner.parameter,
            weights: fit.weights.iter().map(|&w| w as f32).collect(),
            bias: fit.bias.iter().map(|&b| b as f32).collect(),
        }
    } else {
        Classifier::Knn {
            k: winner.parameter as usize,
            points: unit_rows(all_x, dim).into_iter().map(|p| p as f32).collect(),
            point_labels: y.iter().map(|&l| l as u32).collect(),
        }
    };
    let count = |rows: &[usize]| {
        let mut counts = vec![0usize; labels.len()];
        let mut seen = std::collections::BTreeSet::new();
        for &i in rows {
            if seen.insert(examples[i].track) {
                counts[y[i]] += 1;
            }
        }
        counts
    };
    let report = TrainReport {
        train_tracks: count(&fit_rows),
        holdout_tracks: count(&check_rows),
        classifier: classifier.describe(),
        labels: labels.clone(),
        candidates,
        chosen,
    };
    Ok((Head { labels, standardiser, classifier }, report))
}

/// The common dimension, after checking every example.
fn check(examples: &[Example<'_>]) -> Result<usize, TrainError> {
    let first = examples.first().ok_or(TrainError::Empty)?;
    let dim = first.embedding.len();
    let mut labels: BTreeMap<&str, &str> = BTreeMap::new();
    for (index, e) in examples.iter().enumerate() {
        let track = e.track.to_owned();
        if e.embedding.len() != dim || dim == 0 {
            return Err(TrainError::Dimension { index, track, expected: dim, actual: e.embedding.len() });
        }
        if e.embedding.iter().any(|v| !v.is_finite()) {
            return Err(TrainError::NotFinite { index, track });
        }
        if let Some(first) = labels.insert(e.track, e.label).filter(|&l| l != e.label) {
            return Err(TrainError::ConflictingLabels { track, first: first.to_owned(), second: e.label.to_owned() });
        }
    }
    Ok(dim)
}

/// Whether each example is held out.
fn holdout(examples: &[Example<'_>], holdout: &Holdout) -> Result<Vec<bool>, TrainError> {
    match holdout {
        Holdout::Tracks(tracks) => {
            let tracks: std::collections::HashSet<&str> = tracks.iter().map(String::as_str).collect();
            Ok(examples.iter().map(|e| tracks.contains(e.track)).collect())
        }
        Holdout::Stratified { fraction, seed } => {
            let tracks: BTreeMap<&str, &str> = examples.iter().map(|e| (e.track, e.label)).collect();
            let items: Vec<(&str, &str)> = tracks.into_iter().collect();
            let sides = split(&items, Fractions { validation: *fraction, test: 0.0 }, *seed);
            let held: std::collections::HashSet<&str> =
                items.iter().zip(&sides).filter(|(_, &side)| side == Side::Val).map(|((t, _), _)| *t).collect();
            Ok(examples.iter().map(|e| held.contains(e.track)).collect())
        }
    }
}

fn standardised(examples: &[Example<'_>], rows: &[usize], standardiser: &Standardiser) -> Vec<f64> {
    let mut out = Vec::with_capacity(rows.len() * standardiser.dim());
    let mut row = Vec::new();
    for &i in rows {
        standardiser.apply(examples[i].embedding, &mut row);
        out.extend_from_slice(&row);
    }
    out
}

fn unit_rows(mut x: Vec<f64>, dim: usize) -> Vec<f64> {
    x.chunks_exact_mut(dim).for_each(knn::unit);
    x
}

fn score(kind: &'static str, parameter: f64, scores: impl Iterator<Item = Vec<f64>>, truth: &[usize]) -> Candidate {
    let (mut right, mut loss) = (0usize, 0.0);
    for (p, &label) in scores.zip(truth) {
        let best = (0..p.len()).max_by(|&a, &b| p[a].total_cmp(&p[b]).then(b.cmp(&a))).unwrap_or(0);
        right += usize::from(best == label);
        loss -= p[label].max(1e-3).ln();
    }
    let n = truth.len() as f64;
    Candidate { kind, parameter, accuracy: right as f64 / n, log_loss: loss / n }
}
