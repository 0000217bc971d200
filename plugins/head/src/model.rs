//! A trained head: its labels, its standardiser and its classifier.

use serde::{Deserialize, Serialize};

use crate::knn;
use crate::logistic::{self, Fit};
use crate::standardise::Standardiser;

/// What a head computes after standardising its input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Classifier {
    /// Softmax of `weights · x + bias`; `weights` is `[labels, dim]` row-major.
    Logistic { l2: f64, weights: Vec<f32>, bias: Vec<f32> },
    /// Vote shares of the `k` most cosine-similar training examples; `points` is
    /// `[examples, dim]`, standardised and scaled to unit length, `point_labels` index the labels.
    Knn { k: usize, points: Vec<f32>, point_labels: Vec<u32> },
}

impl Classifier {
    /// `logistic (l2 = 0.01)` or `knn (k = 5)`, for reports and cards.
    pub fn describe(&self) -> String {
        match self {
            Classifier::Logistic { l2, .. } => format!("logistic regression (l2 = {l2})"),
            Classifier::Knn { k, .. } => format!("kNN (k = {k}, cosine)"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Head {
    pub(crate) labels: Vec<String>,
    pub(crate) standardiser: Standardiser,
    pub(crate) classifier: Classifier,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PredictError {
    #[error("the head takes embeddings of {expected} values, not {actual}")]
    Dimension { expected: usize, actual: usize },
    #[error("embedding value {index} is not finite ({value})")]
    NotFinite { index: usize, value: f32 },
}

impl Head {
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// The embedding size the head takes.
    pub fn dim(&self) -> usize {
        self.standardiser.dim()
    }

    pub fn classifier(&self) -> &Classifier {
        &self.classifier
    }

    /// Class probabilities for one embedding, in label order; they sum to 1.
    pub fn predict(&self, embedding: &[f32]) -> Result<Vec<f32>, PredictError> {
        if embedding.len() != self.dim() {
            return Err(PredictError::Dimension { expected: self.dim(), actual: embedding.len() });
        }
        if let Some((index, &value)) = embedding.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(PredictError::NotFinite { index, value });
        }
        let mut x = Vec::with_capacity(self.dim());
        self.standardiser.apply(embedding, &mut x);
        let mut out = vec![0.0; self.labels.len()];
        self.scores(&mut x, &mut out);
        Ok(out.into_iter().map(|p| p as f32).collect())
    }

    /// Probabilities for a standardised input (which kNN scales to unit length in place).
    pub(crate) fn scores(&self, x: &mut [f64], out: &mut [f64]) {
        match &self.classifier {
            Classifier::Logistic { weights, bias, .. } => {
                let fit = Fit {
                    weights: weights.iter().map(|&w| f64::from(w)).collect(),
                    bias: bias.iter().map(|&b| f64::from(b)).collect(),
                };
                logistic::probabilities(&fit, x, out);
            }
            Classifier::Knn { k, points, point_labels } => {
                knn::unit(x);
                let points: Vec<f64> = points.iter().map(|&p| f64::from(p)).collect();
                let labels: Vec<usize> = point_labels.iter().map(|&l| l as usize).collect();
                knn::vote(&points, &labels, *k, x, out);
            }
        }
    }
}
