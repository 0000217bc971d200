//! The ONNX Runtime environment: one per process, loaded from the library file the host
//! names, because ONNX Runtime itself is a process-wide singleton.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::environment::Environment;
use ort::ep;
use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};
use ort::session::Session;
use serde::{Deserialize, Serialize};

/// Which hardware runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutionProvider {
    /// CUDA when its provider loads, else CPU.
    #[default]
    Auto,
    Cpu,
    Cuda,
}

/// How much ONNX Runtime rewrites the graph when it loads a model (its
/// `GraphOptimizationLevel`). `all` is ONNX Runtime's own default and the fastest on a CPU;
/// the lower levels are for telling an optimiser bug from a model bug.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GraphOptimization {
    Disable,
    Basic,
    Extended,
    #[default]
    All,
}

impl From<GraphOptimization> for GraphOptimizationLevel {
    fn from(level: GraphOptimization) -> Self {
        match level {
            GraphOptimization::Disable => GraphOptimizationLevel::Disable,
            GraphOptimization::Basic => GraphOptimizationLevel::Level1,
            GraphOptimization::Extended => GraphOptimizationLevel::Level2,
            GraphOptimization::All => GraphOptimizationLevel::All,
        }
    }
}

static ENVIRONMENT: OnceLock<Result<(PathBuf, Environment), String>> = OnceLock::new();

/// The process's environment, loading ONNX Runtime from `library` on first use.
pub fn environment(library: &Path) -> Result<&'static Environment, String> {
    let loaded = ENVIRONMENT.get_or_init(|| {
        let builder = ort::init_from(library).map_err(|e| {
            format!(
                "cannot load ONNX Runtime from {}: {e}; run scripts/onnxruntime or set ORT_DYLIB_PATH to a libonnxruntime.so",
                library.display()
            )
        })?;
        let environment = builder.with_name("timbre").build().map_err(|e| format!("cannot start ONNX Runtime: {e}"))?;
        Ok((library.to_path_buf(), environment))
    });
    match loaded {
        Ok((_, environment)) => Ok(environment),
        Err(error) => Err(error.clone()),
    }
}

/// Build a session on the requested provider. Returns the session and the provider that
/// actually runs it ("cuda" or "cpu").
pub fn session(
    environment: &Environment,
    model: &Path,
    provider: ExecutionProvider,
    intra_threads: usize,
    optimization: GraphOptimization,
) -> Result<(Session, &'static str), String> {
    let builder = |threads: usize| -> Result<SessionBuilder, String> {
        Session::builder(environment)
            .map_err(|e| e.to_string())?
            .with_intra_threads(threads)
            .map_err(|e| e.to_string())?
            .with_optimization_level(optimization.into())
            .map_err(|e| e.to_string())
    };
    let commit = |mut builder: SessionBuilder| {
        builder.commit_from_file(model).map_err(|e| format!("ONNX Runtime cannot load {}: {e}", model.display()))
    };
    if provider != ExecutionProvider::Cpu {
        let cuda = builder(intra_threads)?
            .with_execution_providers([ep::CUDA::default().build().error_on_failure()])
            .map_err(|e| e.to_string());
        match cuda.and_then(commit) {
            Ok(session) => return Ok((session, "cuda")),
            Err(error) if provider == ExecutionProvider::Cuda => {
                return Err(format!("the CUDA execution provider is not usable: {error}"))
            }
            Err(_) => {} // auto: fall back to the CPU, and say so in the instance info.
        }
    }
    Ok((commit(builder(intra_threads)?)?, "cpu"))
}
