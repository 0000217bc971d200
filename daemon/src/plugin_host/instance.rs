//! A live plugin instance: the only place the host calls into plugin code after loading.

use std::ffi::{c_void, CString};
use std::ptr::NonNull;
use std::sync::Arc;

use timbre_plugin_sdk::ffi;

use super::loader::static_str;
use super::{PluginError, PluginLibrary};

/// An owned float32 tensor, copied out of plugin memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub data: Vec<f32>,
    pub shape: Vec<usize>,
}

/// What one call returned.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginOutput {
    pub values: Tensor,
    pub embedding: Option<Tensor>,
}

/// One instance of a plugin, made from a JSON configuration. `Send` but not `Sync`:
/// the ABI forbids calling one instance from two threads at once, so each worker makes its own.
pub struct PluginInstance {
    library: Arc<PluginLibrary>,
    raw: NonNull<c_void>,
    info: serde_json::Value,
}

// SAFETY: the ABI allows an instance to be used from any thread, one at a time; `&mut self`
// on every call enforces the "one at a time".
unsafe impl Send for PluginInstance {}

impl PluginInstance {
    pub(super) fn create(library: Arc<PluginLibrary>, config: &serde_json::Value) -> Result<Self, PluginError> {
        let create_error = |message: String| PluginError::Create { plugin: library.name.clone(), message };
        let config = CString::new(config.to_string()).map_err(|e| create_error(e.to_string()))?;
        let create = library.functions().create;
        let mut raw: *mut c_void = std::ptr::null_mut();
        // SAFETY: `config` is NUL-terminated and outlives the call; `raw` is a writable slot.
        let status = unsafe { create(config.as_ptr(), &mut raw) };
        if status != ffi::OK {
            return Err(create_error(library.last_error()));
        }
        let raw = NonNull::new(raw).ok_or_else(|| create_error("create succeeded but returned no instance".into()))?;
        let info_fn = library.functions().instance_info;
        // SAFETY: `raw` is a live instance; the string stays valid until destroy, and is copied now.
        let info_text = unsafe { static_str(info_fn(raw.as_ptr())) }.unwrap_or_else(|| "{}".to_string());
        let plugin = library.name.clone();
        // Built before parsing the info, so a bad info string still destroys the instance.
        let mut instance = PluginInstance { library, raw, info: serde_json::Value::Null };
        instance.info = serde_json::from_str(&info_text).map_err(|e| PluginError::Create {
            plugin,
            message: format!("instance_info is not JSON ({e}): {info_text}"),
        })?;
        Ok(instance)
    }

    pub fn name(&self) -> &str {
        &self.library.name
    }

    pub fn library(&self) -> &PluginLibrary {
        &self.library
    }

    /// The instance's self-description: resolved config, expected input, labels.
    pub fn info(&self) -> &serde_json::Value {
        &self.info
    }

    /// Run one batch through the plugin and copy the result out of plugin memory.
    pub fn process(&mut self, data: &[f32], shape: &[usize]) -> Result<PluginOutput, PluginError> {
        let plugin = self.library.name.clone();
        let values = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        if shape.is_empty() || shape.len() > ffi::MAX_DIMS || values != Some(data.len()) {
            return Err(PluginError::Process {
                plugin,
                status: ffi::ERR_INVALID_INPUT,
                message: format!("host bug: shape {shape:?} does not describe {} values", data.len()),
            });
        }
        let mut dims = [0usize; ffi::MAX_DIMS];
        dims[..shape.len()].copy_from_slice(shape);
        let input = ffi::Tensor { data: data.as_ptr(), len: data.len(), ndim: shape.len() as u32, shape: dims };
        let mut output = ffi::Output::EMPTY;
        let functions = self.library.functions();
        let process = functions.process;
        // SAFETY: live instance, called through `&mut self`; input and output outlive the call.
        let status = unsafe { process(self.raw.as_ptr(), &input, &mut output) };
        if status != ffi::OK {
            return Err(PluginError::Process { plugin, status, message: self.library.last_error() });
        }
        let result = self.take_output(&mut output)?;
        if result.values.data.iter().chain(result.embedding.iter().flat_map(|e| &e.data)).any(|v| !v.is_finite()) {
            return Err(PluginError::BadOutput { plugin, reason: "output contains NaN or infinite values".into() });
        }
        Ok(result)
    }
}

impl PluginInstance {
    /// Descriptor plugins: begin a track decoded at `sample_rate` with `channels` channels.
    pub fn start(&mut self, sample_rate: u32, channels: u32) -> Result<(), PluginError> {
        let plugin = self.library.name.clone();
        let Some(start) = self.library.functions().start else {
            return Err(PluginError::Process { plugin, status: ffi::ERR_INVALID_INPUT, message: "not a descriptor plugin".into() });
        };
        // SAFETY: live instance, called through `&mut self`.
        let status = unsafe { start(self.raw.as_ptr(), sample_rate, channels) };
        if status != ffi::OK {
            return Err(PluginError::Process { plugin, status, message: self.library.last_error() });
        }
        Ok(())
    }

    /// Descriptor plugins: end the track and copy out its values (NaN: undefined, kept as is)
    /// and the state it asks the host to keep.
    pub fn finish(&mut self) -> Result<PluginOutput, PluginError> {
        let plugin = self.library.name.clone();
        let functions = self.library.functions();
        let Some(finish) = functions.finish else {
            return Err(PluginError::Process { plugin, status: ffi::ERR_INVALID_INPUT, message: "not a descriptor plugin".into() });
        };
        let mut output = ffi::Output::EMPTY;
        // SAFETY: live instance, called through `&mut self`; the output slot outlives the call.
        let status = unsafe { finish(self.raw.as_ptr(), &mut output) };
        if status != ffi::OK {
            return Err(PluginError::Process { plugin, status, message: self.library.last_error() });
        }
        let result = self.take_output(&mut output)?;
        if result.embedding.iter().flat_map(|e| &e.data).any(|v| !v.is_finite()) {
            return Err(PluginError::BadOutput { plugin, reason: "state contains NaN or infinite values".into() });
        }
        Ok(result)
    }

    /// Copies what a successful `process` or `finish` wrote into `output` out of plugin
    /// memory, then hands it back to the plugin's `free_output`, whatever the copy found.
    fn take_output(&self, output: &mut ffi::Output) -> Result<PluginOutput, PluginError> {
        // SAFETY: on success the plugin filled `output`, and it stays valid until `free_output`.
        let copied = unsafe { copy_tensor(&output.values) }.and_then(|values| {
            // SAFETY: as above.
            let embedding = unsafe { copy_tensor(&output.embedding) }?;
            Ok(PluginOutput { values, embedding: (!embedding.shape.is_empty()).then_some(embedding) })
        });
        let free_output = self.library.functions().free_output;
        // SAFETY: returns the output the plugin filled, exactly once.
        unsafe { free_output(self.raw.as_ptr(), output) };
        copied.map_err(|reason| PluginError::BadOutput { plugin: self.library.name.clone(), reason })
    }
}

impl Drop for PluginInstance {
    fn drop(&mut self) {
        let destroy = self.library.functions().destroy;
        // SAFETY: the instance is live and is destroyed exactly once, here.
        unsafe { destroy(self.raw.as_ptr()) };
    }
}

/// Copy a plugin tensor into host memory, checking that its shape and length agree.
///
/// # Safety
/// `tensor.data` must point to `tensor.len` floats, or be NULL when `len` is 0.
unsafe fn copy_tensor(tensor: &ffi::Tensor) -> Result<Tensor, String> {
    let ndim = tensor.ndim as usize;
    if ndim > ffi::MAX_DIMS {
        return Err(format!("{ndim} axes, at most {} allowed", ffi::MAX_DIMS));
    }
    let shape = tensor.shape[..ndim].to_vec();
    // A plugin's shape can be anything: a product that overflows is a bad shape, not a panic.
    let expected = if ndim == 0 { Some(0) } else { shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)) };
    if expected != Some(tensor.len) {
        return Err(format!("shape {shape:?} does not match length {}", tensor.len));
    }
    if tensor.len == 0 {
        return Ok(Tensor { data: Vec::new(), shape });
    }
    if tensor.data.is_null() {
        return Err("data pointer is NULL".to_string());
    }
    // SAFETY: non-null and `len` floats long, by the caller's guarantee.
    let data = unsafe { std::slice::from_raw_parts(tensor.data, tensor.len) }.to_vec();
    Ok(Tensor { data, shape })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shape_whose_product_overflows_is_refused_not_a_panic() {
        let mut shape = [0usize; ffi::MAX_DIMS];
        shape[..3].copy_from_slice(&[usize::MAX, 3, 2]);
        let tensor = ffi::Tensor { data: std::ptr::null(), len: 6, ndim: 3, shape };
        // SAFETY: the check refuses the tensor before its (NULL) data would be read.
        let error = unsafe { copy_tensor(&tensor) }.expect_err("refused");
        assert!(error.contains("does not match length 6"), "{error}");
    }
}
