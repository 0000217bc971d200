//! The one place engine errors become gRPC statuses.

use tonic::Status;

use crate::engine::EngineError;
use crate::index::IndexError;
use crate::library::scan::ScanError;
use crate::library::StoreError;

/// Longest status message sent. Messages echo their input (a path, a model name, a file
/// name), and a client refuses a message over its header limit (~16 KiB) with
/// RESOURCE_EXHAUSTED, hiding the real error.
const MAX_MESSAGE: usize = 1024;

/// `message` with its middle elided when it is longer than [`MAX_MESSAGE`]: the start names
/// the input, the end says what was wrong with it.
pub(super) fn bounded(message: String) -> String {
    if message.len() <= MAX_MESSAGE {
        return message;
    }
    let keep = MAX_MESSAGE / 2 - 32;
    let head = message.floor_char_boundary(keep);
    let tail = message.ceil_char_boundary(message.len() - keep);
    format!("{}…[{} bytes elided]…{}", &message[..head], tail - head, &message[tail..])
}

impl From<EngineError> for Status {
    fn from(error: EngineError) -> Self {
        let message = bounded(error.to_string());
        match error {
            EngineError::UnknownModel { .. }
            | EngineError::DefaultModelNotLoaded { .. }
            | EngineError::NoModels
            | EngineError::TrackNotFound(_)
            | EngineError::NoSuchFile(_)
            | EngineError::NoLiveSources
            | EngineError::UnknownLiveSource { .. } => Status::not_found(message),
            EngineError::RelativePath(_)
            | EngineError::NoPositiveExample
            | EngineError::NoSeed
            | EngineError::NoEndpoint(_)
            | EngineError::PlayedTime(_)
            | EngineError::RecentWindow(_)
            | EngineError::Diversity(_)
            | EngineError::NegativeDuration(_)
            | EngineError::BadBpmRange(_)
            | EngineError::BadKey(_) => Status::invalid_argument(message),
            EngineError::OutsideRoots(_) => Status::permission_denied(message),
            EngineError::NoEmbedding { .. } | EngineError::NoReferenceKey(_) => Status::failed_precondition(message),
            EngineError::IndexUnavailable | EngineError::ShuttingDown => Status::unavailable(message),
            // The caller sent (or named) audio that is too long or that cannot be read.
            EngineError::AudioTooLong(_) | EngineError::BadAudio(_) => Status::invalid_argument(message),
            EngineError::Cancelled(_) => Status::cancelled(message),
            EngineError::AnalysisFailed(_) | EngineError::AnalysisPanicked(_) | EngineError::Internal(_) => {
                Status::internal(message)
            }
            EngineError::Index(error) => match error {
                IndexError::InvalidQuery(_) | IndexError::Dimension { .. } => Status::invalid_argument(message),
                IndexError::Unreachable { .. } => Status::unavailable(message),
                IndexError::File { .. }
                | IndexError::Corrupt { .. }
                | IndexError::Qdrant { .. }
                | IndexError::InvalidPoint { .. }
                | IndexError::Config(_)
                | IndexError::Store(_)
                | IndexError::Task(_) => Status::internal(message),
            },
            EngineError::Store(StoreError::Open { .. } | StoreError::Sqlite(_) | StoreError::Damaged { .. }) => {
                Status::internal(message)
            }
        }
    }
}

impl From<ScanError> for Status {
    fn from(error: ScanError) -> Self {
        EngineError::from(error).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_keep_their_start_and_end() {
        assert_eq!(bounded("short".into()), "short");
        let long = format!("no model named '{}' is loaded (loaded: cnn)", "é".repeat(500_000));
        let message = bounded(long);
        assert!(message.len() <= MAX_MESSAGE, "{} bytes", message.len());
        assert!(message.starts_with("no model named 'é") && message.ends_with("' is loaded (loaded: cnn)"));
        assert!(message.contains("bytes elided]"));
    }
}
