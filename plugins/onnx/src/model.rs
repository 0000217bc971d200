//! A model folder opened on ONNX Runtime, with its manifest checked against the graph.

use std::path::Path;

use ort::session::Session;
use ort::value::Tensor;
use timbre_model_manifest::ModelFolder;

use crate::runtime::{self, ExecutionProvider, GraphOptimization};

pub struct OnnxModel {
    pub folder: ModelFolder,
    pub provider: &'static str,
    session: Session,
}

/// The output of one batch.
pub struct Prediction {
    /// `[segments, labels]`: class rows sum to 1, tags are independent.
    pub probabilities: Vec<f32>,
    /// `[segments, embedding_size]`.
    pub embedding: Vec<f32>,
}

impl OnnxModel {
    /// Open `dir`, checking the manifest, the checksum and that the graph has the inputs and
    /// outputs the manifest names. Every error names the folder.
    pub fn open(
        dir: &Path,
        library: &Path,
        provider: ExecutionProvider,
        intra_threads: usize,
        optimization: GraphOptimization,
    ) -> Result<Self, String> {
        let folder = ModelFolder::open(dir).map_err(|e| e.to_string())?;
        let in_folder = |problem: String| format!("model folder {}: {problem}", dir.display());
        let environment = runtime::environment(library)?;
        let (session, provider) =
            runtime::session(environment, &folder.model_path(), provider, intra_threads, optimization)
                .map_err(in_folder)?;
        let model = &folder.manifest.model;

        let inputs: Vec<&str> = session.inputs().iter().map(|o| o.name()).collect();
        if !inputs.contains(&model.input.as_str()) {
            return Err(in_folder(format!(
                "model.toml names input {:?}, but the model's inputs are {inputs:?}",
                model.input
            )));
        }
        let outputs: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
        for (role, name) in [("probabilities", &model.probabilities), ("embedding", &model.embedding)] {
            if !outputs.contains(&name.as_str()) {
                return Err(in_folder(format!(
                    "model.toml names {role} output {name:?}, but the model's outputs are {outputs:?}"
                )));
            }
        }
        // Where the graph states a size, it must agree with the manifest.
        for (name, expected, what) in [
            (&model.probabilities, model.labels.len(), "labels"),
            (&model.embedding, model.embedding_size, "embedding_size"),
        ] {
            let outlet = session.outputs().iter().find(|o| o.name() == name.as_str());
            let size = outlet.and_then(|o| o.dtype().tensor_shape()).and_then(|s| s.last().copied());
            if let Some(size) = size.filter(|&s| s > 0) {
                if size as usize != expected {
                    return Err(in_folder(format!(
                        "output {name:?} has {size} values per segment, but model.toml has {expected} {what}"
                    )));
                }
            }
        }
        Ok(OnnxModel { folder, provider, session })
    }

    /// Run `[segments, n_features, frames]` through the model as one batch.
    pub fn predict(&mut self, data: &[f32], shape: [usize; 3]) -> Result<Prediction, String> {
        let model = &self.folder.manifest.model;
        let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        let input = Tensor::from_array((dims, data.to_vec())).map_err(|e| format!("input tensor: {e}"))?;
        let outputs = self
            .session
            .run(ort::inputs![model.input.as_str() => input])
            .map_err(|e| format!("{}: inference failed: {e}", self.folder.manifest.name))?;
        let extract = |name: &str, width: usize| -> Result<Vec<f32>, String> {
            let value = outputs.get(name).ok_or_else(|| format!("the model did not return {name:?}"))?;
            let (out_shape, values) = value.try_extract_tensor::<f32>().map_err(|e| format!("output {name:?}: {e}"))?;
            let expected = [shape[0] as i64, width as i64];
            if **out_shape != expected {
                return Err(format!("output {name:?} has shape {out_shape:?}, expected {expected:?}"));
            }
            Ok(values.to_vec())
        };
        let probabilities = extract(&model.probabilities, model.labels.len())?;
        let embedding = extract(&model.embedding, model.embedding_size)?;
        Ok(Prediction { probabilities, embedding })
    }
}
