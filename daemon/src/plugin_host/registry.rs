//! Discovering plugin libraries and keeping them by (kind, name).
//!
//! Search order: `TIMBRE_PLUGIN_PATH` (colon-separated), then the configured paths, then
//! the directory of the running executable. Each entry is a library file or a directory;
//! in a directory, files named `[lib]timbre_plugin_*.{so,dylib,dll}` are loaded. The first
//! plugin of a given name wins; later ones are listed as refused, with the reason.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{PluginError, PluginInstance, PluginKind, PluginLibrary};

/// Where to look for plugins, in priority order.
#[derive(Debug, Clone, Default)]
pub struct SearchPath {
    pub entries: Vec<PathBuf>,
}

impl SearchPath {
    /// The standard path: the environment, then `configured`, then the executable's directory.
    pub fn standard(configured: &[PathBuf]) -> Self {
        let mut entries: Vec<PathBuf> = std::env::var_os("TIMBRE_PLUGIN_PATH")
            .map(|v| std::env::split_paths(&v).filter(|p| !p.as_os_str().is_empty()).collect())
            .unwrap_or_default();
        entries.extend(configured.iter().cloned());
        if let Some(dir) = std::env::current_exe().ok().and_then(|exe| exe.parent().map(Path::to_path_buf)) {
            entries.push(dir);
        }
        SearchPath { entries }
    }

    /// Library files on the path, in order, without duplicates.
    pub fn candidates(&self) -> Vec<PathBuf> {
        let mut files = Vec::new();
        for entry in &self.entries {
            if entry.is_file() {
                files.push(entry.clone());
            } else if let Ok(read_dir) = std::fs::read_dir(entry) {
                let mut found: Vec<PathBuf> =
                    read_dir.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| is_plugin_file_name(p)).collect();
                found.sort();
                files.extend(found);
            }
        }
        let mut seen = std::collections::HashSet::new();
        files.retain(|f| seen.insert(f.canonicalize().unwrap_or_else(|_| f.clone())));
        files
    }
}

fn is_plugin_file_name(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else { return false };
    let stem = name.strip_prefix("lib").unwrap_or(name);
    let extension = std::env::consts::DLL_EXTENSION;
    stem.starts_with("timbre_plugin_") && path.extension().is_some_and(|e| e == extension) && path.is_file()
}

/// A library that was found but not loaded, and why.
#[derive(Debug)]
pub struct Refusal {
    pub file: PathBuf,
    pub error: PluginError,
}

/// The loaded plugins, and the ones refused.
#[derive(Debug, Default)]
pub struct PluginRegistry {
    plugins: Vec<Arc<PluginLibrary>>,
    refused: Vec<Refusal>,
}

impl PluginRegistry {
    /// Load every plugin on `path`. A bad library is recorded as refused and never fatal.
    pub fn discover(path: &SearchPath) -> Self {
        let mut registry = PluginRegistry::default();
        for file in path.candidates() {
            if let Err(error) = registry.load(&file) {
                tracing::warn!("{error}");
                registry.refused.push(Refusal { file, error });
            }
        }
        registry
    }

    /// Load one library file and register it.
    pub fn load(&mut self, file: &Path) -> Result<Arc<PluginLibrary>, PluginError> {
        self.add(PluginLibrary::open(file)?)
    }

    /// Register a plugin compiled into this process (the SDK's `export::descriptor` builds
    /// its descriptor at compile time): tests run fake plugins without a `.so`.
    pub fn register_static(
        &mut self,
        descriptor: &'static timbre_plugin_sdk::ffi::PluginDescriptor,
    ) -> Result<Arc<PluginLibrary>, PluginError> {
        self.add(PluginLibrary::from_static(descriptor)?)
    }

    fn add(&mut self, library: PluginLibrary) -> Result<Arc<PluginLibrary>, PluginError> {
        let file = library.file.clone();
        if let Some(first) = self.plugins.iter().find(|p| p.name == library.name && p.kind == library.kind) {
            return Err(PluginError::Duplicate { name: library.name.clone(), file, first: first.file.clone() });
        }
        tracing::debug!(plugin = %library.name, kind = %library.kind, file = %library.file.display(), "loaded plugin");
        let library = Arc::new(library);
        self.plugins.push(library.clone());
        Ok(library)
    }

    /// Leave out every plugin of `kind` (descriptor plugins when `analysis.descriptors` is off).
    pub fn without_kind(mut self, kind: PluginKind) -> Self {
        self.plugins.retain(|p| p.kind != kind);
        self
    }

    pub fn plugins(&self) -> &[Arc<PluginLibrary>] {
        &self.plugins
    }

    pub fn refused(&self) -> &[Refusal] {
        &self.refused
    }

    pub fn get(&self, kind: PluginKind, name: &str) -> Result<&Arc<PluginLibrary>, PluginError> {
        self.plugins
            .iter()
            .find(|p| p.kind == kind && p.name == name)
            .ok_or_else(|| PluginError::NotFound { kind, name: name.to_string() })
    }

    /// Make an instance of the named plugin from a JSON configuration.
    pub fn instantiate(
        &self,
        kind: PluginKind,
        name: &str,
        config: &serde_json::Value,
    ) -> Result<PluginInstance, PluginError> {
        PluginInstance::create(self.get(kind, name)?.clone(), config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_timbre_plugin_libraries_are_candidates() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ext = std::env::consts::DLL_EXTENSION;
        for name in [
            format!("libtimbre_plugin_a.{ext}"),
            format!("timbre_plugin_b.{ext}"),
            format!("libother.{ext}"),
            "timbre_plugin_c.txt".into(),
        ] {
            std::fs::write(dir.path().join(name), b"").expect("write");
        }
        let path = SearchPath { entries: vec![dir.path().to_path_buf()] };
        let names: Vec<String> = path
            .candidates()
            .iter()
            .map(|p| p.file_name().unwrap_or_default().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec![format!("libtimbre_plugin_a.{ext}"), format!("timbre_plugin_b.{ext}")]);
    }

    #[test]
    fn a_file_that_is_not_a_library_is_refused_with_its_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join(format!("libtimbre_plugin_fake.{}", std::env::consts::DLL_EXTENSION));
        std::fs::write(&file, b"not an ELF file").expect("write");
        let registry = PluginRegistry::discover(&SearchPath { entries: vec![dir.path().to_path_buf()] });
        assert!(registry.plugins().is_empty());
        assert_eq!(registry.refused().len(), 1);
        assert!(registry.refused()[0].error.to_string().contains(&file.display().to_string()));
    }
}
