//! `timbred plugins`: what the host found on the search path, and why anything was refused.

use serde::Serialize;

use crate::plugin_host::{PluginKind, PluginRegistry, SearchPath};

#[derive(Debug, Serialize)]
pub struct PluginListing {
    pub search_path: Vec<String>,
    pub plugins: Vec<PluginEntry>,
    pub refused: Vec<RefusedEntry>,
}

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

pub fn list(registry: &PluginRegistry, path: &SearchPath) -> PluginListing {
    PluginListing {
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
    }
}
