//! Opening one plugin library and validating its descriptor before anything in it runs.
//!
//! The library is kept in the same struct as the descriptor pointer (clack's pattern),
//! so the code the pointer refers to cannot be unloaded while it is reachable.

use std::ffi::{c_char, CStr};
use std::fmt;
use std::path::{Path, PathBuf};

use libloading::Library;
use timbre_plugin_sdk::ffi::{self, PluginDescriptor};

use super::PluginError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginKind {
    Feature,
    Classifier,
    /// ABI 1.1: a whole track in, in chunks; named track-level values out.
    Descriptor,
}

impl fmt::Display for PluginKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PluginKind::Feature => "feature",
            PluginKind::Classifier => "classifier",
            PluginKind::Descriptor => "descriptor",
        })
    }
}

/// The descriptor's function pointers, each checked non-NULL once, at load: calls need no
/// further check.
#[derive(Clone, Copy)]
pub(super) struct Functions {
    pub create: ffi::CreateFn,
    pub instance_info: ffi::InstanceInfoFn,
    pub process: ffi::ProcessFn,
    pub free_output: ffi::FreeOutputFn,
    pub last_error: ffi::LastErrorFn,
    pub destroy: ffi::DestroyFn,
    /// Present (checked at load) for descriptor plugins; the other kinds may lack them.
    pub start: Option<ffi::StartFn>,
    pub finish: Option<ffi::FinishFn>,
}

/// A loaded, validated plugin library.
pub struct PluginLibrary {
    pub name: String,
    pub version: String,
    pub kind: PluginKind,
    pub abi: (u32, u32),
    pub file: PathBuf,
    pub metadata: serde_json::Value,
    functions: Functions,
    // Declared last so it is dropped last; in practice libraries live as long as the host.
    // `None` for a plugin compiled into this process, whose code cannot be unloaded.
    _library: Option<Library>,
}

// SAFETY: the descriptor is immutable static data in the library, which `_library` keeps
// loaded (or in this process, for a static plugin); its functions are required by the ABI to
// be callable from any thread.
unsafe impl Send for PluginLibrary {}
// SAFETY: as above; shared access only reads the descriptor.
unsafe impl Sync for PluginLibrary {}

impl fmt::Debug for PluginLibrary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginLibrary")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("version", &self.version)
            .field("file", &self.file)
            .finish()
    }
}

impl PluginLibrary {
    /// Load `file` and check that it is a plugin this host can drive.
    pub fn open(file: &Path) -> Result<Self, PluginError> {
        let file = file.to_path_buf();
        // SAFETY: loading a library runs its initialisers. Plugins are trusted code from the
        // configured search path; this is the one unavoidable risk of a native plugin ABI.
        let library =
            unsafe { Library::new(&file) }.map_err(|source| PluginError::Load { file: file.clone(), source })?;
        // SAFETY: the symbol's type is fixed by the ABI (`timbre_plugin_entry_fn` in the header).
        let entry = unsafe { library.get::<ffi::EntryFn>(ffi::ENTRY_SYMBOL) }
            .map_err(|_| PluginError::NoEntry { file: file.clone() })?;
        // SAFETY: the entry point takes no arguments and returns a pointer to static data.
        let descriptor = unsafe { entry() };
        // SAFETY: the descriptor is NULL or points into `library`, which is kept with it.
        unsafe { Self::from_descriptor(descriptor, file, Some(library)) }
    }

    /// A plugin compiled into this process (the tests' fakes), checked exactly as a loaded
    /// library's descriptor is. Its `file` is empty.
    pub fn from_static(descriptor: &'static PluginDescriptor) -> Result<Self, PluginError> {
        // SAFETY: a reference to static data: non-null, complete and valid for the process's life.
        unsafe { Self::from_descriptor(descriptor, PathBuf::new(), None) }
    }

    /// Check `descriptor` and keep it with the library that holds it.
    ///
    /// # Safety
    /// `descriptor` is NULL or points to a descriptor that stays valid as long as `library`
    /// is loaded (forever when `library` is `None`).
    unsafe fn from_descriptor(
        descriptor: *const PluginDescriptor,
        file: PathBuf,
        library: Option<Library>,
    ) -> Result<Self, PluginError> {
        if descriptor.is_null() {
            return Err(invalid(&file, "timbre_plugin_entry returned NULL"));
        }
        // SAFETY: non-null. Only the three leading u32 fields are read until the size is checked;
        // every ABI version keeps them at the start.
        let (abi_major, abi_minor, struct_size) = unsafe {
            (
                std::ptr::addr_of!((*descriptor).abi_major).read(),
                std::ptr::addr_of!((*descriptor).abi_minor).read(),
                std::ptr::addr_of!((*descriptor).struct_size).read(),
            )
        };
        let found = (abi_major, abi_minor);
        let expected = (ffi::ABI_MAJOR, ffi::ABI_MINOR);
        if abi_major != ffi::ABI_MAJOR || abi_minor > ffi::ABI_MINOR {
            // The name field's position is only known for our major; do not read it otherwise.
            let plugin = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            return Err(PluginError::IncompatibleAbi { plugin, file, found, expected });
        }
        // Every 1.x plugin has the 1.0 fields; a 1.0 plugin (smaller struct) still loads.
        let needed = ffi::DESCRIPTOR_SIZE_1_0 as u32;
        if struct_size < needed {
            return Err(PluginError::DescriptorTooSmall { file, found: struct_size, needed, abi: expected });
        }
        // SAFETY: the version and size checks above guarantee `struct_size` readable bytes.
        let d = unsafe { read_descriptor(descriptor, struct_size as usize) };
        let kind = match d.kind {
            ffi::KIND_FEATURE => PluginKind::Feature,
            ffi::KIND_CLASSIFIER => PluginKind::Classifier,
            ffi::KIND_DESCRIPTOR => PluginKind::Descriptor,
            other => return Err(invalid(&file, &format!("unknown plugin kind {other}"))),
        };
        let full = std::mem::size_of::<PluginDescriptor>() as u32;
        if kind == PluginKind::Descriptor && struct_size < full {
            return Err(PluginError::DescriptorTooSmall { file, found: struct_size, needed: full, abi: expected });
        }
        let functions = Functions {
            create: required(d.create, &file, "create")?,
            instance_info: required(d.instance_info, &file, "instance_info")?,
            process: required(d.process, &file, "process")?,
            free_output: required(d.free_output, &file, "free_output")?,
            last_error: required(d.last_error, &file, "last_error")?,
            destroy: required(d.destroy, &file, "destroy")?,
            start: d.start,
            finish: d.finish,
        };
        if kind == PluginKind::Descriptor {
            required(d.start, &file, "start")?;
            required(d.finish, &file, "finish")?;
        }
        // SAFETY: the ABI says these are NUL-terminated static strings or NULL.
        let name = unsafe { static_str(d.name) }.ok_or_else(|| invalid(&file, "name is missing or not UTF-8"))?;
        // SAFETY: as above.
        let version =
            unsafe { static_str(d.version) }.ok_or_else(|| invalid(&file, "version is missing or not UTF-8"))?;
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            return Err(invalid(
                &file,
                &format!("name {name:?} must be non-empty ASCII letters, digits, '-', '_' or '.'"),
            ));
        }
        // SAFETY: as above.
        let metadata = match unsafe { static_str(d.metadata_json) } {
            None => serde_json::Value::Null,
            Some(text) => {
                serde_json::from_str(&text).map_err(|e| invalid(&file, &format!("metadata_json is not JSON: {e}")))?
            }
        };
        Ok(PluginLibrary { name, version, kind, abi: found, file, metadata, functions, _library: library })
    }

    /// The plugin's functions; the library that holds them lives as long as `self`.
    pub(super) fn functions(&self) -> Functions {
        self.functions
    }

    /// The plugin's last error message on this thread.
    pub(super) fn last_error(&self) -> String {
        // SAFETY: returns a NUL-terminated string owned by the plugin, or NULL.
        let message = unsafe { static_str((self.functions.last_error)()) };
        message.filter(|m| !m.is_empty()).unwrap_or_else(|| "no error message given".to_string())
    }
}

/// Copy a descriptor of `size` bytes into a whole one of this ABI: fields that a plugin built
/// against an older minor lacks stay zero, which reads as NULL. Taking `&*descriptor` instead
/// would claim more memory than an older plugin's static holds.
///
/// # Safety
/// `descriptor` must point to at least `size` readable bytes.
unsafe fn read_descriptor(descriptor: *const PluginDescriptor, size: usize) -> PluginDescriptor {
    let mut copy = std::mem::MaybeUninit::<PluginDescriptor>::zeroed();
    let size = size.min(std::mem::size_of::<PluginDescriptor>());
    // SAFETY: `size` bytes are readable (caller) and fit in `copy`; the regions are distinct.
    unsafe { std::ptr::copy_nonoverlapping(descriptor.cast::<u8>(), copy.as_mut_ptr().cast::<u8>(), size) };
    // SAFETY: all-zero is a valid descriptor (integers 0, NULL pointers, `None` functions), and
    // the bytes copied over it came from a descriptor of the same layout.
    unsafe { copy.assume_init() }
}

/// A function pointer the ABI requires, or an error naming it.
fn required<F>(function: Option<F>, file: &Path, name: &str) -> Result<F, PluginError> {
    function.ok_or_else(|| invalid(file, &format!("the required function `{name}` is NULL")))
}

fn invalid(file: &Path, reason: &str) -> PluginError {
    PluginError::InvalidDescriptor { file: file.to_path_buf(), reason: reason.to_string() }
}

/// Copy a C string into a `String`.
///
/// # Safety
/// `ptr` must be NULL or point to a NUL-terminated string that stays valid during the call.
pub(super) unsafe fn static_str(ptr: *const c_char) -> Option<String> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: guaranteed by the caller.
    unsafe { CStr::from_ptr(ptr) }.to_str().ok().map(str::to_owned)
}
