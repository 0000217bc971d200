//! The one place engine errors become gRPC statuses.

use tonic::Status;

use crate::engine::EngineError;
use crate::index::IndexError;
use crate::library::StoreError;
use crate::pipeline::PipelineError;
use crate::workers::WorkError;

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
            EngineError::InvalidArgument(_) => Status::invalid_argument(message),
            EngineError::NotFound(_) => Status::not_found(message),
            EngineError::OutsideRoots(_) => Status::permission_denied(message),
            EngineError::FailedPrecondition(_) => Status::failed_precondition(message),
            EngineError::Unavailable(_) => Status::unavailable(message),
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
            EngineError::Analysis(WorkError::Pipeline(pipeline)) => match pipeline {
                // The audio itself is bad: the caller sent (or named) something we cannot read.
                PipelineError::Decode(_) | PipelineError::Resample { .. } | PipelineError::Features { .. } => {
                    Status::invalid_argument(message)
                }
                PipelineError::Plugin { .. } => Status::internal(message),
                PipelineError::Cancelled { .. } => Status::cancelled(message),
            },
            EngineError::Analysis(WorkError::Panicked(_)) => Status::internal(message),
            EngineError::Analysis(WorkError::ShuttingDown) => Status::unavailable(message),
            EngineError::Store(StoreError::Open { .. } | StoreError::Sqlite(_) | StoreError::Damaged { .. }) => {
                Status::internal(message)
            }
            EngineError::Plugin(_) => Status::internal(message),
        }
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
