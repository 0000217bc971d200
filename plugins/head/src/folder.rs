//! A head as a model folder: `model.toml` (with `[input]` naming the upstream model),
//! `head.json`, and `CARD.md`; and reading one back with every check the plugin makes.

use std::path::Path;

use timbre_model_manifest::{InputSpec, Manifest, ModelFolder, ModelSpec, OutputKind};

use crate::Head;

pub const HEAD_FILE: &str = "head.json";
/// The classifier plugin that serves heads.
pub const PLUGIN_NAME: &str = "head";

#[derive(Debug, thiserror::Error)]
pub enum FolderError {
    #[error(transparent)]
    Manifest(#[from] timbre_model_manifest::ManifestError),
    #[error("model folder {dir}: {reason}")]
    Invalid { dir: String, reason: String },
    #[error("cannot write {path}: {source}")]
    Write { path: String, source: std::io::Error },
}

/// What a head folder says about itself besides the head.
#[derive(Debug, Clone, PartialEq)]
pub struct FolderSpec<'a> {
    pub name: &'a str,
    pub version: &'a str,
    pub description: &'a str,
    /// The model whose embedding the head reads.
    pub upstream: &'a str,
    /// `CARD.md`'s text.
    pub card: &'a str,
    /// Lines for the top of `model.toml` (how it was made).
    pub comment: &'a str,
}

pub fn write_head_folder(head: &Head, dir: &Path, spec: &FolderSpec<'_>) -> Result<ModelFolder, FolderError> {
    let manifest = Manifest {
        name: spec.name.to_owned(),
        version: spec.version.to_owned(),
        description: spec.description.to_owned(),
        features: None,
        input: Some(InputSpec { model: spec.upstream.to_owned(), output: "embedding".to_owned() }),
        model: ModelSpec {
            plugin: Some(PLUGIN_NAME.to_owned()),
            kind: OutputKind::Classes,
            file: HEAD_FILE.to_owned(),
            labels: head.labels().to_vec(),
            embedding_size: 0,
            ..ModelSpec::default()
        },
    };
    let folder = ModelFolder::write(dir, manifest, head.to_json().as_bytes(), spec.comment)?;
    let card = dir.join("CARD.md");
    std::fs::write(&card, spec.card)
        .map_err(|source| FolderError::Write { path: card.display().to_string(), source })?;
    Ok(folder)
}

/// A head folder's manifest and head, checked against each other: a head's manifest, the
/// head plugin, the file's checksum, the same labels in the same order.
pub fn load_head_folder(dir: &Path) -> Result<(ModelFolder, Head), FolderError> {
    let folder = ModelFolder::read_manifest(dir)?;
    let invalid = |reason: String| FolderError::Invalid { dir: dir.display().to_string(), reason };
    if !folder.manifest.is_head() {
        return Err(invalid("not a head: model.toml has no [input] naming the model it reads".into()));
    }
    if folder.plugin() != PLUGIN_NAME {
        return Err(invalid(format!("[model] plugin is {:?}, not {PLUGIN_NAME:?}", folder.plugin())));
    }
    let bytes = folder.read_model(crate::MAX_HEAD_FILE_BYTES)?;
    let text =
        String::from_utf8(bytes).map_err(|_| invalid(format!("{} is not UTF-8 text", folder.manifest.model.file)))?;
    let head = Head::from_json(&text).map_err(|reason| invalid(format!("{}: {reason}", folder.manifest.model.file)))?;
    if head.labels() != folder.manifest.model.labels.as_slice() {
        return Err(invalid(format!(
            "model.toml lists the labels {:?} but {} has {:?}",
            folder.manifest.model.labels,
            folder.manifest.model.file,
            head.labels()
        )));
    }
    Ok((folder, head))
}
