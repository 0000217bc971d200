//! What the daemon found: plugin libraries and model folders, loaded and refused. Two
//! listings, one shape each, shown alike by `ListPlugins` and `timbred plugins --json`.

use serde::Serialize;

use crate::models::ModelCatalog;
use crate::plugin_host::{PluginKind, PluginRegistry, SearchPath};

#[derive(Debug, Serialize)]
pub struct Catalogue {
    pub search_path: Vec<String>,
    pub plugins: Vec<PluginEntry>,
    /// Plugin libraries found but not loaded.
    pub refused: Vec<RefusedEntry>,
    pub models: Vec<ModelEntry>,
    pub refused_models: Vec<RefusedModel>,
}

/// A plugin library (or a plugin compiled in, whose `file` is empty).
#[derive(Debug, Serialize)]
pub struct PluginEntry {
    pub name: String,
    pub kind: PluginKind,
    pub version: String,
    pub abi_major: u32,
    pub abi_minor: u32,
    pub file: String,
    pub metadata: serde_json::Value,
}

#[derive(Debug, Serialize)]
pub struct RefusedEntry {
    pub file: String,
    pub reason: String,
}

/// A model folder that passed its checks.
#[derive(Debug, Serialize)]
pub struct ModelEntry {
    pub name: String,
    pub version: String,
    /// The classifier plugin that runs it.
    pub plugin: String,
    /// The feature plugin that feeds it.
    pub features: String,
    pub dir: String,
    /// What its first instance reported (labels, execution provider, …).
    pub info: serde_json::Value,
}

#[derive(Debug, Serialize)]
pub struct RefusedModel {
    pub dir: String,
    pub reason: String,
}

pub fn list(registry: &PluginRegistry, path: &SearchPath, models: &ModelCatalog) -> Catalogue {
    Catalogue {
        search_path: path.entries.iter().map(|p| p.display().to_string()).collect(),
        plugins: registry
            .plugins()
            .iter()
            .map(|p| PluginEntry {
                name: p.name.clone(),
                kind: p.kind,
                version: p.version.clone(),
                abi_major: p.abi.0,
                abi_minor: p.abi.1,
                file: p.file.display().to_string(),
                metadata: p.metadata.clone(),
            })
            .collect(),
        refused: registry
            .refused()
            .iter()
            .map(|r| RefusedEntry { file: r.file.display().to_string(), reason: r.error.to_string() })
            .collect(),
        models: models
            .models
            .iter()
            .map(|m| ModelEntry {
                name: m.name().to_string(),
                version: m.folder.manifest.version.clone(),
                plugin: m.folder.plugin().to_string(),
                features: match (m.features(), m.upstream()) {
                    (Some(features), _) => features.plugin.clone(),
                    (None, upstream) => format!("head over {}", upstream.unwrap_or_default()),
                },
                dir: m.folder.dir.display().to_string(),
                info: m.info.clone(),
            })
            .collect(),
        refused_models: models
            .refused
            .iter()
            .map(|(dir, reason)| RefusedModel { dir: dir.display().to_string(), reason: reason.clone() })
            .collect(),
    }
}
