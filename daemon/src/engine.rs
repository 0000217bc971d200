//! The engine: what the daemon holds while it runs, shared by every request.
//! Transports (gRPC today) call into it; it knows nothing about them.

use std::path::PathBuf;

use crate::offline::plugins::{self, PluginListing};
use crate::plugin_host::{PluginRegistry, SearchPath};

pub struct Engine {
    search_path: SearchPath,
    registry: PluginRegistry,
}

impl Engine {
    /// Discover plugins on the standard search path plus `plugin_paths`.
    pub fn start(plugin_paths: &[PathBuf]) -> Self {
        let search_path = SearchPath::standard(plugin_paths);
        let registry = PluginRegistry::discover(&search_path);
        Engine { search_path, registry }
    }

    pub fn registry(&self) -> &PluginRegistry {
        &self.registry
    }

    pub fn plugins(&self) -> PluginListing {
        plugins::list(&self.registry, &self.search_path)
    }
}
