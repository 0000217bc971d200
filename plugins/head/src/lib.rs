//! Heads: small classifiers over another model's output.
//!
//! A pretrained network (musicnn) turns a track into an embedding; a head learns labels on top
//! of it from a few hundred labelled tracks, in seconds and without Python. The recipe is the
//! field's usual one for transfer learning: standardise each embedding dimension, then either
//! multinomial logistic regression with an L2 penalty or k nearest neighbours by cosine,
//! whichever scores better on held-out tracks ([`train`]). The chosen head is refitted on every
//! labelled track and saved as a small JSON file ([`Head::save`]).
//!
//! Input: one embedding per example (a track, or a segment of one). Output: class
//! probabilities over the head's labels (softmax for logistic regression, vote shares for kNN).

pub mod card;
mod file;
mod folder;
mod knn;
mod logistic;
mod model;
mod standardise;
mod train;

pub use file::{FileError, FORMAT, FORMAT_VERSION, MAX_HEAD_FILE_BYTES};
pub use folder::{load_head_folder, write_head_folder, FolderError, FolderSpec, HEAD_FILE, PLUGIN_NAME};
pub use model::{Classifier, Head, PredictError};
pub use standardise::Standardiser;
pub use train::{
    train, Candidate, Example, Holdout, TrainError, TrainOptions, TrainReport, K_CANDIDATES, L2_CANDIDATES,
};

#[cfg(test)]
mod tests;
