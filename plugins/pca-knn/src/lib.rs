//! `pca-knn`: the classifier of report 000, standardise → PCA → k-nearest neighbours.
//!
//! Input: log-mel segments `[segments, n_mels, frames]`, each flattened to one vector.
//! Output: class probabilities `[segments, classes]` (the vote shares of the `k` nearest
//! training segments, Euclidean in PCA space) and an embedding `[segments, n_components]`
//! (the segment's PCA coordinates).
//!
//! This crate is the model and its trainer: [`train`] fits a [`Model`], [`write_model_folder`]
//! saves it with its `model.toml`, and [`load_model_folder`] reads it back with every check the
//! plugin makes. It exports no plugin entry point, so any binary can link it (`timbred train
//! pca-knn` does); the plugin the daemon loads is the thin `timbre-plugin-pca-knn` crate in
//! `plugin/`.

mod file;
mod folder;
mod knn;
mod linalg;
mod model;
mod pca;
mod train;

pub use file::{ModelError, FORMAT_VERSION, MAGIC, MAX_MODEL_FILE_BYTES};
pub use folder::{
    load_model_folder, write_model_folder, FolderError, FolderSpec, LoadedFolder, MODEL_FILE, PLUGIN_NAME,
};
pub use model::{Classification, ClassifyError, Model};
/// The manifest types a model folder is written with.
pub use timbre_model_manifest::{FeatureSpec, Manifest};
pub use train::{
    train, CandidateScore, ComponentChoice, TrainError, TrainOptions, TrainReport, TrainingSegment,
    COMPONENT_CANDIDATES, MAX_COMPONENTS,
};

#[cfg(test)]
mod tests;
