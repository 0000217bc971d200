//! Seeded randomness that is the same on every platform and in every version, so that anything
//! drawn from a seed (a k-means start, a trained model, a split) can be made again.
//!
//! - [`SplitMix64`]: the generator for sampling: the vector index's k-means, pca-knn's
//!   eigensolver start, synthetic data in tests and benchmarks.
//! - [`numpy`]: numpy's `default_rng` stream (SeedSequence, PCG64, `permutation`), only so
//!   that [`split`] draws exactly what the Python training once drew.
//! - [`split`]: the train / val / test split by file, stratified by label, that `timbred split`
//!   writes, pca-knn training holds its validation tracks out with, and the Python training
//!   reads.
//!
//! No plugin exports anything from here: both the daemon and the model libraries link it.

pub mod numpy;
pub mod split;
mod splitmix;

pub use splitmix::{mix, SplitMix64};
