//! The classifier stage: a classifier plugin instance fed feature batches, and the
//! aggregation of segment results into a track result (mean probability).

use timbre_model_manifest::OutputKind;

use crate::models::ModelSpec;
use crate::pipeline::FeatureBatch;
use crate::plugin_host::{PluginError, PluginInstance, PluginRegistry};

pub struct Classifier {
    name: String,
    kind: OutputKind,
    labels: Vec<String>,
    embedding_size: usize,
    segment_seconds: f64,
    instance: PluginInstance,
}

/// One model's results for one track.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TrackPrediction {
    pub model: String,
    /// Classes (one answer, probabilities sum to 1) or tags (each independent).
    pub kind: OutputKind,
    pub labels: Vec<String>,
    /// Length of the segments this model reads.
    pub segment_seconds: f64,
    /// Mean of the segments' probabilities, in `labels` order (for tags too: the mean of the
    /// segments' independent probabilities).
    pub probabilities: Vec<f32>,
    /// Per segment, in `labels` order.
    pub segments: Vec<Vec<f32>>,
    /// Mean of the segments' embeddings, L2-normalised.
    pub embedding: Vec<f32>,
}

impl TrackPrediction {
    /// End of segment `index` (exclusive): the last one ends with the audio.
    pub fn segment_end(&self, index: usize, duration_s: f64) -> f64 {
        ((index + 1) as f64 * self.segment_seconds).min(duration_s)
    }
}

/// The index of the most probable label: the first of equal probabilities, the one rule for a
/// "top label" everywhere (stored, served, evaluated), and numpy's `argmax`, which the Python
/// training and evaluation use. `None` without probabilities.
pub fn top(probabilities: &[f32]) -> Option<usize> {
    (!probabilities.is_empty()).then(|| {
        (0..probabilities.len()).fold(0, |best, i| if probabilities[i] > probabilities[best] { i } else { best })
    })
}

/// Indices of the `k` highest probabilities, highest first (all of them when `k` is 0); equal
/// probabilities keep their label order, as [`top`] does.
pub fn ranked(probabilities: &[f32], k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..probabilities.len()).collect();
    order.sort_by(|&a, &b| probabilities[b].total_cmp(&probabilities[a]));
    order.truncate(if k == 0 { probabilities.len() } else { k });
    order
}

impl Classifier {
    pub fn new(spec: &ModelSpec, registry: &PluginRegistry) -> Result<Self, PluginError> {
        let manifest = &spec.folder.manifest;
        Ok(Classifier {
            name: manifest.name.clone(),
            kind: manifest.model.kind,
            labels: manifest.model.labels.clone(),
            embedding_size: manifest.model.embedding_size,
            // A head reads a whole track's embedding: its one segment is the track.
            segment_seconds: manifest.features.as_ref().map_or(0.0, |f| f.segment_seconds),
            instance: spec.instantiate(registry)?,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Probabilities `[segments, classes]` and embeddings `[segments, dim]` of a batch.
    pub fn classify(&mut self, batch: &FeatureBatch) -> Result<(Vec<f32>, Vec<f32>), PluginError> {
        let output = self.instance.process(&batch.data, &[batch.segments, batch.n_features, batch.frames])?;
        let bad = |reason: String| PluginError::BadOutput { plugin: self.name.clone(), reason };
        if output.values.shape != [batch.segments, self.labels.len()] {
            return Err(bad(format!(
                "probabilities have shape {:?}, expected [{}, {}]",
                output.values.shape,
                batch.segments,
                self.labels.len()
            )));
        }
        let embedding = output.embedding.ok_or_else(|| bad("no embedding".into()))?;
        if embedding.shape != [batch.segments, self.embedding_size] {
            return Err(bad(format!(
                "embedding has shape {:?}, expected [{}, {}]",
                embedding.shape, batch.segments, self.embedding_size
            )));
        }
        Ok((output.values.data, embedding.data))
    }

    /// Start collecting a track's segment results.
    pub fn track(&self) -> TrackAccumulator {
        TrackAccumulator {
            prediction: TrackPrediction {
                model: self.name.clone(),
                kind: self.kind,
                labels: self.labels.clone(),
                segment_seconds: self.segment_seconds,
                probabilities: vec![0.0; self.labels.len()],
                segments: Vec::new(),
                embedding: vec![0.0; self.embedding_size],
            },
        }
    }
}

/// Sums segment results; [`TrackAccumulator::finish`] turns them into means.
pub struct TrackAccumulator {
    prediction: TrackPrediction,
}

impl TrackAccumulator {
    pub fn add(&mut self, probabilities: &[f32], embedding: &[f32]) {
        let classes = self.prediction.labels.len();
        let dim = self.prediction.embedding.len();
        for (segment, emb) in probabilities.chunks_exact(classes).zip(embedding.chunks_exact(dim)) {
            self.prediction.segments.push(segment.to_vec());
            self.prediction.probabilities.iter_mut().zip(segment).for_each(|(sum, p)| *sum += p);
            self.prediction.embedding.iter_mut().zip(emb).for_each(|(sum, e)| *sum += e);
        }
    }

    pub fn finish(mut self) -> TrackPrediction {
        let n = self.prediction.segments.len().max(1) as f32;
        self.prediction.probabilities.iter_mut().for_each(|p| *p /= n);
        let norm = self.prediction.embedding.iter().map(|e| e * e).sum::<f32>().sqrt();
        if norm > 0.0 {
            self.prediction.embedding.iter_mut().for_each(|e| *e /= norm);
        }
        self.prediction
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_top_label_is_the_first_of_equals_and_leads_the_ranking() {
        let probabilities = [0.1, 0.4, 0.4, 0.1];
        assert_eq!(top(&probabilities), Some(1));
        assert_eq!(ranked(&probabilities, 0), [1, 2, 0, 3]);
        assert_eq!(top(&[]), None);
    }

    #[test]
    fn track_probabilities_are_the_mean_of_segments_and_embeddings_are_unit_length() {
        let mut acc = TrackAccumulator {
            prediction: TrackPrediction {
                model: "m".into(),
                kind: OutputKind::Classes,
                labels: vec!["a".into(), "b".into()],
                segment_seconds: 3.0,
                probabilities: vec![0.0; 2],
                segments: Vec::new(),
                embedding: vec![0.0; 2],
            },
        };
        acc.add(&[1.0, 0.0, 0.5, 0.5], &[3.0, 0.0, 0.0, 4.0]);
        let track = acc.finish();
        assert_eq!(track.probabilities, vec![0.75, 0.25]);
        assert_eq!(track.segments.len(), 2);
        assert!((track.embedding[0] - 0.6).abs() < 1e-6 && (track.embedding[1] - 0.8).abs() < 1e-6);
    }
}
