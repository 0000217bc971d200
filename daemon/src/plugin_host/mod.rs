//! The plugin host: finds plugin libraries, checks their ABI, and hands out instances.
//!
//! - [`loader`] opens one library and validates its descriptor;
//! - [`registry`] discovers libraries on the search path and keys them by kind and name;
//! - [`instance`] is the safe handle through which the pipeline calls a plugin.

#[cfg(test)]
pub mod fakes;
pub mod instance;
pub mod loader;
pub mod registry;

pub use instance::{PluginInstance, PluginOutput, Tensor};
pub use loader::{PluginKind, PluginLibrary};
pub use registry::{PluginRegistry, Refusal, SearchPath};

use std::path::PathBuf;

/// Everything that can go wrong between the host and a plugin. Each variant names the
/// plugin or file concerned, so a message is useful without its context.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("cannot load plugin library {file}: {source}")]
    Load { file: PathBuf, source: libloading::Error },
    #[error("{file} is not a timbre plugin: it does not export `timbre_plugin_entry`")]
    NoEntry { file: PathBuf },
    #[error(
        "plugin '{plugin}' in {file} was built for plugin ABI {}.{}, but this timbred speaks ABI {}.{}; \
         rebuild the plugin against timbre-plugin-sdk {}.x",
        found.0, found.1, expected.0, expected.1, expected.0
    )]
    IncompatibleAbi { plugin: String, file: PathBuf, found: (u32, u32), expected: (u32, u32) },
    #[error("plugin in {file} has a descriptor of {found} bytes; ABI {}.{} needs at least {needed}", .abi.0, .abi.1)]
    DescriptorTooSmall { file: PathBuf, found: u32, needed: u32, abi: (u32, u32) },
    #[error("plugin in {file} has an invalid descriptor: {reason}")]
    InvalidDescriptor { file: PathBuf, reason: String },
    #[error("plugin '{name}' in {file} is ignored: a plugin of that name was already loaded from {first}")]
    Duplicate { name: String, file: PathBuf, first: PathBuf },
    #[error("no {kind} plugin named '{name}' is loaded (see `timbred plugins`)")]
    NotFound { kind: PluginKind, name: String },
    #[error("plugin '{plugin}' refused its configuration: {message}")]
    Create { plugin: String, message: String },
    #[error("plugin '{plugin}' failed (status {status}): {message}")]
    Process { plugin: String, status: i32, message: String },
    #[error("plugin '{plugin}' returned a malformed output: {reason}")]
    BadOutput { plugin: String, reason: String },
}
