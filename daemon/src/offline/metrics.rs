//! Classification metrics: accuracy, per-class precision / recall / F1, confusion matrix.

use std::collections::BTreeMap;

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassScores {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// How many examples truly belong to the class.
    pub support: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Confusion {
    pub labels: Vec<String>,
    /// `matrix[true][predicted]`, in `labels` order.
    pub matrix: Vec<Vec<usize>>,
}

impl Confusion {
    /// Count `(true, predicted)` label-index pairs over `labels`.
    pub fn new(labels: &[String], pairs: impl IntoIterator<Item = (usize, usize)>) -> Self {
        let mut matrix = vec![vec![0; labels.len()]; labels.len()];
        for (truth, predicted) in pairs {
            matrix[truth][predicted] += 1;
        }
        Confusion { labels: labels.to_vec(), matrix }
    }

    pub fn total(&self) -> usize {
        self.matrix.iter().flatten().sum()
    }

    pub fn accuracy(&self) -> f64 {
        let correct: usize = (0..self.labels.len()).map(|i| self.matrix[i][i]).sum();
        correct as f64 / self.total().max(1) as f64
    }

    /// Scores of every class that has examples or predictions.
    pub fn per_class(&self) -> BTreeMap<String, ClassScores> {
        let n = self.labels.len();
        (0..n)
            .filter_map(|c| {
                let tp = self.matrix[c][c] as f64;
                let actual: usize = self.matrix[c].iter().sum();
                let predicted: usize = (0..n).map(|t| self.matrix[t][c]).sum();
                if actual == 0 && predicted == 0 {
                    return None;
                }
                let precision = if predicted > 0 { tp / predicted as f64 } else { 0.0 };
                let recall = if actual > 0 { tp / actual as f64 } else { 0.0 };
                let f1 = if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 };
                Some((self.labels[c].clone(), ClassScores { precision, recall, f1, support: actual }))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_follow_their_definitions() {
        let labels: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        // truth a: predicted a, a, b; truth b: predicted b; truth c: predicted a.
        let confusion = Confusion::new(&labels, [(0, 0), (0, 0), (0, 1), (1, 1), (2, 0)]);
        assert_eq!(confusion.total(), 5);
        assert!((confusion.accuracy() - 0.6).abs() < 1e-12);
        let scores = confusion.per_class();
        let a = &scores["a"];
        assert!((a.precision - 2.0 / 3.0).abs() < 1e-12 && (a.recall - 2.0 / 3.0).abs() < 1e-12);
        let b = &scores["b"];
        assert!((b.precision - 0.5).abs() < 1e-12 && (b.recall - 1.0).abs() < 1e-12);
        assert!((b.f1 - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(scores["c"], ClassScores { precision: 0.0, recall: 0.0, f1: 0.0, support: 1 });
    }
}
