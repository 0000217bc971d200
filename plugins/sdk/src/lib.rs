//! The timbre plugin SDK.
//!
//! A plugin implements [`Plugin`] and calls [`export_plugin!`]; the macro
//! emits the C entry point described in `include/timbre_plugin.h`. Panics and
//! errors are turned into status codes at the boundary, so a faulty plugin
//! cannot take the host down by unwinding into it.
//!
//! ```ignore
//! struct Loudness;
//! impl timbre_plugin_sdk::Plugin for Loudness { /* ... */ }
//! timbre_plugin_sdk::export_plugin!(Loudness);
//! ```

pub mod export;
pub mod ffi;

use std::ffi::CStr;
use std::fmt;

/// What a plugin consumes and produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// PCM segments in, one feature matrix per segment out.
    Feature,
    /// Feature matrices in, class probabilities and an embedding out.
    Classifier,
    /// Since ABI 1.1: a whole track's PCM in, chunk by chunk (`start`, `process`..., `finish`),
    /// named track-level values out (tempo, key, loudness).
    Descriptor,
}

impl Kind {
    pub const fn to_raw(self) -> u32 {
        match self {
            Kind::Feature => ffi::KIND_FEATURE,
            Kind::Classifier => ffi::KIND_CLASSIFIER,
            Kind::Descriptor => ffi::KIND_DESCRIPTOR,
        }
    }
}

/// A borrowed float32 tensor, row-major.
#[derive(Debug, Clone, Copy)]
pub struct TensorView<'a> {
    pub data: &'a [f32],
    pub shape: &'a [usize],
}

/// An owned float32 tensor, row-major, at most [`ffi::MAX_DIMS`] axes.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub data: Vec<f32>,
    pub shape: Vec<usize>,
}

impl Tensor {
    /// Panics if the shape does not match the data, which is a bug in the plugin, caught at the boundary.
    pub fn new(data: Vec<f32>, shape: Vec<usize>) -> Self {
        assert!(shape.len() <= ffi::MAX_DIMS, "a tensor has at most {} axes", ffi::MAX_DIMS);
        assert_eq!(shape.iter().product::<usize>(), data.len(), "tensor shape {shape:?} does not match its data");
        Tensor { data, shape }
    }
}

/// What one `process` call returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// Features `[segments, n_features, frames]`, or probabilities `[segments, classes]`;
    /// from a descriptor's `finish`, its values `[n_values]` in the order `info()["values"]` names.
    pub values: Tensor,
    /// Classifiers: `[segments, dim]`. Descriptors: optional state the host stores with the track
    /// (e.g. a loudness histogram, from which an album's gain is computed later).
    pub embedding: Option<Tensor>,
}

impl Output {
    /// What a descriptor's `process` returns: nothing yet, the values come from `finish`.
    pub fn empty() -> Self {
        Output { values: Tensor::new(Vec::new(), vec![0]), embedding: None }
    }
}

/// Why a call failed, with the status code the host will see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub status: i32,
    pub message: String,
}

impl Error {
    pub fn config(message: impl Into<String>) -> Self {
        Error { status: ffi::ERR_CONFIG, message: message.into() }
    }
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Error { status: ffi::ERR_INVALID_INPUT, message: message.into() }
    }
    pub fn process(message: impl Into<String>) -> Self {
        Error { status: ffi::ERR_PROCESS, message: message.into() }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// A plugin, written in safe Rust. One value of `Self` is one instance.
pub trait Plugin: Send + Sized + 'static {
    const NAME: &'static CStr;
    const VERSION: &'static CStr;
    const KIND: Kind;
    /// A static JSON object: description, config keys and their defaults.
    const METADATA_JSON: &'static CStr;

    /// Build an instance from its JSON configuration (`{}` for defaults).
    fn create(config: &serde_json::Value) -> Result<Self, Error>;

    /// The instance's resolved configuration and the input it expects
    /// (feature plugins must give `sample_rate`).
    fn info(&self) -> serde_json::Value;

    /// Process a batch of segments; for a descriptor, the next chunk of the track,
    /// `[frames, channels]` interleaved as `start` announced, returning [`Output::empty`].
    fn process(&mut self, input: TensorView<'_>) -> Result<Output, Error>;

    /// Descriptors only: a new track begins, decoded at `sample_rate` with `channels`.
    /// Whatever a previous track left behind is discarded.
    fn start(&mut self, _sample_rate: u32, _channels: u32) -> Result<(), Error> {
        Err(Error::invalid_input("start: not a descriptor plugin"))
    }

    /// Descriptors only: the track has ended; return its values and optional state.
    fn finish(&mut self) -> Result<Output, Error> {
        Err(Error::invalid_input("finish: not a descriptor plugin"))
    }
}
