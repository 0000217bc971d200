//! The one place engine errors become gRPC statuses.

use tonic::Status;

use crate::engine::EngineError;
use crate::index::IndexError;
use crate::library::StoreError;
use crate::pipeline::PipelineError;
use crate::workers::WorkError;

impl From<EngineError> for Status {
    fn from(error: EngineError) -> Self {
        let message = error.to_string();
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
            },
            EngineError::Analysis(WorkError::Panicked(_)) => Status::internal(message),
            EngineError::Analysis(WorkError::ShuttingDown) => Status::unavailable(message),
            EngineError::Store(StoreError::Open { .. } | StoreError::Sqlite(_)) => Status::internal(message),
            EngineError::Plugin(_) => Status::internal(message),
        }
    }
}
