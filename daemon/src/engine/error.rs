//! What can go wrong in an engine call, said by what went wrong. Which gRPC code each
//! becomes is chosen in one place only, `grpc/status.rs`; nothing here knows about codes.

use std::path::PathBuf;

use crate::index::IndexError;
use crate::library::scan::ScanError;
use crate::library::{StoreError, TrackState};
use crate::pipeline::{DecodeErrorKind, PipelineError};
use crate::plugin_host::PluginError;
use crate::workers::WorkError;

/// Every way an engine call can fail.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    // The request names something the daemon does not have.
    #[error("no model named '{name}' is loaded (loaded: {})", loaded.join(", "))]
    UnknownModel { name: String, loaded: Vec<String> },
    #[error("recommend.model = '{configured}' is not a loaded model (loaded: {})", loaded.join(", "))]
    DefaultModelNotLoaded { configured: String, loaded: Vec<String> },
    #[error("no models are loaded")]
    NoModels,
    #[error("{0}")]
    TrackNotFound(TrackKey),
    #[error("{}: no such file", .0.display())]
    NoSuchFile(PathBuf),
    #[error("no live sources are configured ([[live]] in the configuration)")]
    NoLiveSources,
    #[error("no live source named '{name}' (configured: {})", configured.join(", "))]
    UnknownLiveSource { name: String, configured: Vec<String> },

    // The request itself is malformed.
    #[error("{}: paths must be absolute", .0.display())]
    RelativePath(PathBuf),
    #[error(transparent)]
    OutsideRoots(ScanError),
    #[error("positive: at least one example is required")]
    NoPositiveExample,
    #[error("seed: required")]
    NoSeed,
    #[error("{0}: required")]
    NoEndpoint(&'static str),
    #[error("played_s: {0} is not a non-negative number of seconds")]
    PlayedTime(f64),
    #[error("history.recent_window_s: {0} is not a non-negative number of seconds")]
    RecentWindow(f64),
    #[error("diversity: {0} is not in [0, 1]")]
    Diversity(f32),
    #[error("filter.{0}: must be a non-negative number")]
    NegativeDuration(&'static str),
    #[error("filter.bpm: {0}")]
    BadBpmRange(String),
    #[error("filter.key: '{0}' is not a key; write it as \"A minor\", \"F# major\" or on the Camelot wheel, \"8A\"")]
    BadKey(String),

    // The daemon is not (yet) in the state the request needs.
    #[error(
        "track {track_id} ({path}) has no '{space}' embedding yet (state: {state:?}{})",
        if error.is_empty() { String::new() } else { format!(": {error}") }
    )]
    NoEmbedding { track_id: i64, path: String, space: String, state: TrackState, error: String },
    #[error(
        "filter.harmonic: {0} has no key to mix with (no descriptor plugin measured one); \
         give the key in filter.key"
    )]
    NoReferenceKey(String),
    #[error("the vector index is not available yet (starting, or its server is unreachable; see the daemon log)")]
    IndexUnavailable,
    #[error("the daemon is shutting down")]
    ShuttingDown,

    // The audio.
    /// Longer than `server.max_audio_seconds`; the message names the file and the limit.
    #[error(transparent)]
    AudioTooLong(PipelineError),
    /// Audio that cannot be read (not audio, corrupt, truncated, a rate out of range); the
    /// message names the file.
    #[error(transparent)]
    BadAudio(PipelineError),
    /// The caller went away while its audio was analysed.
    #[error(transparent)]
    Cancelled(PipelineError),
    /// A plugin failed on audio that decoded fine.
    #[error(transparent)]
    AnalysisFailed(PipelineError),
    /// A plugin panicked while analysing the named input; the worker started afresh.
    #[error("{0}: internal error while analysing it (see the daemon log)")]
    AnalysisPanicked(String),

    // The daemon's own parts.
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A task of the daemon panicked; the message is in the log.
    #[error("internal error while {0} (see the daemon log)")]
    Internal(&'static str),
}

/// How a track was asked for, for the error that says it is not there.
#[derive(Debug, Clone)]
pub enum TrackKey {
    Id(i64),
    Path(PathBuf),
    None,
}

impl std::fmt::Display for TrackKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrackKey::Id(id) => write!(f, "no track with id {id}"),
            TrackKey::Path(path) => write!(f, "no track at {}", path.display()),
            TrackKey::None => f.write_str("no track given"),
        }
    }
}

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("starting the worker pool: {0}")]
    Workers(#[from] PluginError),
    #[error(transparent)]
    Library(#[from] StoreError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}

impl From<ScanError> for EngineError {
    fn from(error: ScanError) -> Self {
        match error {
            ScanError::Store(error) => EngineError::Store(error),
            outside @ ScanError::OutsideRoots { .. } => EngineError::OutsideRoots(outside),
        }
    }
}

impl From<WorkError> for EngineError {
    fn from(error: WorkError) -> Self {
        match error {
            WorkError::Pipeline(error) => match error {
                PipelineError::Decode(ref decode) if matches!(decode.kind, DecodeErrorKind::TooLong { .. }) => {
                    EngineError::AudioTooLong(error)
                }
                PipelineError::Decode(_) | PipelineError::Resample { .. } | PipelineError::Features { .. } => {
                    EngineError::BadAudio(error)
                }
                PipelineError::Plugin { .. } => EngineError::AnalysisFailed(error),
                PipelineError::Cancelled { .. } => EngineError::Cancelled(error),
            },
            WorkError::Panicked(name) => EngineError::AnalysisPanicked(name),
            WorkError::ShuttingDown => EngineError::ShuttingDown,
        }
    }
}

/// A task that did not finish: its panic is logged with its message, and the caller gets
/// [`EngineError::Internal`] saying what was being done.
pub fn task_failed(doing: &'static str) -> impl FnOnce(tokio::task::JoinError) -> EngineError {
    move |error| {
        let message = if error.is_panic() {
            let payload = error.into_panic();
            payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".into())
        } else {
            error.to_string()
        };
        tracing::error!("{doing}: a task panicked: {message}");
        EngineError::Internal(doing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_task_panic_is_internal_and_says_what_was_being_done() {
        let joined = tokio::task::spawn_blocking(|| panic!("row 7 is damaged")).await;
        let error = joined.map_err(task_failed("reading the library")).map(|()| ()).expect_err("it panicked");
        assert!(matches!(error, EngineError::Internal("reading the library")), "{error:?}");
        assert_eq!(error.to_string(), "internal error while reading the library (see the daemon log)");
    }
}
