//! A trained PCA + kNN model and its classification.

use crate::knn::{vote, Neighbours};
use crate::pca::{project, Standardiser};

/// A trained classifier: standardiser, principal axes, and the training segments' PCA
/// coordinates with their labels. Made by [`train`](crate::train) or [`Model::load`].
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub(crate) n_features: usize,
    pub(crate) frames: usize,
    pub(crate) labels: Vec<String>,
    pub(crate) k: usize,
    pub(crate) weighted: bool,
    pub(crate) standardiser: Standardiser,
    /// `[n_components, n_features * frames]`.
    pub(crate) components: Vec<f32>,
    pub(crate) n_components: usize,
    /// `[training segments, n_components]`.
    pub(crate) embeddings: Vec<f32>,
    /// Class index of each training segment.
    pub(crate) train_labels: Vec<u32>,
}

/// The result of [`Model::try_classify`], row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Classification {
    /// `[segments, classes]`: vote shares of the nearest training segments; each row sums to 1.
    pub probabilities: Vec<f32>,
    /// `[segments, embedding_size]`: each segment's PCA coordinates.
    pub embeddings: Vec<f32>,
}

/// A batch that does not hold what it says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a batch of {segments} segments of [{n_features}, {frames}] needs {expected} values, but it has {found}")]
pub struct ClassifyError {
    pub segments: usize,
    pub n_features: usize,
    pub frames: usize,
    pub expected: usize,
    pub found: usize,
}

impl Model {
    /// Class names; column `i` of the probabilities is `labels()[i]`.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// Mel bands (rows) of one input segment.
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Frames (columns) of one input segment.
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// Values in one flattened segment: `n_features * frames`.
    pub fn segment_len(&self) -> usize {
        self.n_features * self.frames
    }

    /// Number of principal components, which is the embedding size.
    pub fn n_components(&self) -> usize {
        self.n_components
    }

    /// Neighbours that vote (at most the number of training segments take part).
    pub fn k(&self) -> usize {
        self.k
    }

    /// Whether neighbours vote with weight `1 / distance`.
    pub fn weighted(&self) -> bool {
        self.weighted
    }

    /// Number of training segments the model keeps.
    pub fn training_segments(&self) -> usize {
        self.train_labels.len()
    }

    /// Classify `segments` flattened `[n_features, frames]` log-mel segments.
    /// Returns probabilities `[segments, classes]` and embeddings `[segments, n_components]`.
    ///
    /// # Panics
    ///
    /// If `batch.len() != segments * n_features * frames`, which is a bug in the caller;
    /// [`Model::try_classify`] returns an error instead.
    pub fn classify(&self, batch: &[f32], segments: usize) -> (Vec<f32>, Vec<f32>) {
        match self.try_classify(batch, segments) {
            Ok(result) => (result.probabilities, result.embeddings),
            Err(error) => panic!("Model::classify: {error}"),
        }
    }

    /// [`Model::classify`], refusing a batch of the wrong size instead of panicking.
    /// Non-finite input values do not panic either, but make meaningless answers: check first.
    pub fn try_classify(&self, batch: &[f32], segments: usize) -> Result<Classification, ClassifyError> {
        let d = self.segment_len();
        let expected = segments.saturating_mul(d);
        if batch.len() != expected {
            return Err(ClassifyError {
                segments,
                n_features: self.n_features,
                frames: self.frames,
                expected,
                found: batch.len(),
            });
        }
        let classes = self.labels.len();
        let m = self.n_components;
        let mut probabilities = vec![0.0f32; segments * classes];
        let mut embeddings = vec![0.0f32; segments * m];
        let neighbours =
            Neighbours { embeddings: &self.embeddings, stride: m, labels: &self.train_labels, n_classes: classes };
        let (mut scratch, mut distances) = (Vec::new(), Vec::new());
        if d > 0 && m > 0 && classes > 0 {
            for ((segment, embedding), probs) in
                batch.chunks_exact(d).zip(embeddings.chunks_exact_mut(m)).zip(probabilities.chunks_exact_mut(classes))
            {
                project(&self.standardiser, &self.components, segment, &mut scratch, embedding);
                vote(&neighbours, embedding, self.k, self.weighted, &mut distances, probs);
            }
        }
        Ok(Classification { probabilities, embeddings })
    }
}
