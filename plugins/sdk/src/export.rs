//! The C side of a Rust plugin: generic `extern "C"` functions that
//! [`export_plugin!`](crate::export_plugin) puts into a static descriptor.
//! Every body runs under `catch_unwind`, so no panic crosses the boundary.

use std::cell::RefCell;
use std::ffi::{c_char, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::ffi::{self, PluginDescriptor, StaticDescriptor};
use crate::{Error, Plugin, Tensor, TensorView};

/// Emit `timbre_plugin_entry` for a type implementing [`Plugin`].
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        /// The timbre plugin entry point.
        #[no_mangle]
        pub extern "C" fn timbre_plugin_entry() -> *const $crate::ffi::PluginDescriptor {
            $crate::export::install_panic_hook();
            static DESCRIPTOR: $crate::ffi::StaticDescriptor = $crate::export::descriptor::<$plugin>();
            &DESCRIPTOR.0
        }
    };
}

/// The descriptor for `P`, built at compile time.
pub const fn descriptor<P: Plugin>() -> StaticDescriptor {
    StaticDescriptor(PluginDescriptor {
        abi_major: ffi::ABI_MAJOR,
        abi_minor: ffi::ABI_MINOR,
        struct_size: std::mem::size_of::<PluginDescriptor>() as u32,
        kind: P::KIND.to_raw(),
        name: P::NAME.as_ptr(),
        version: P::VERSION.as_ptr(),
        metadata_json: P::METADATA_JSON.as_ptr(),
        create: Some(create::<P>),
        instance_info: Some(instance_info::<P>),
        process: Some(process::<P>),
        free_output: Some(free_output),
        last_error: Some(last_error),
        destroy: Some(destroy::<P>),
        start: Some(start::<P>),
        finish: Some(finish::<P>),
    })
}

/// An instance as the host sees it: the plugin and its info string, kept alive together.
struct Instance<P> {
    plugin: P,
    info: CString,
}

/// The buffers behind a returned [`ffi::Output`].
struct OutputBuffers {
    _values: Vec<f32>,
    _embedding: Vec<f32>,
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
    static PANIC_LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// A plugin built as a cdylib carries its own copy of std, with its own panic hook. Replace
/// that hook with one that stays quiet and records where the panic happened, so the host
/// gets the location in the error message instead of a backtrace on its stderr.
/// Called by the entry point; it never touches the host's hook.
pub fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let location = info.location().map(|l| format!("{}:{}", l.file(), l.line()));
            PANIC_LOCATION.with(|slot| *slot.borrow_mut() = location);
        }));
    });
}

fn set_last_error(message: &str) {
    // Interior NULs would truncate the message on the C side; replace them.
    let message = CString::new(message.replace('\0', "\u{FFFD}")).unwrap_or_default();
    LAST_ERROR.with(|slot| *slot.borrow_mut() = message);
}

/// Run `body`, turning an error or a panic into a status code and a last-error message.
fn guard(what: &str, body: impl FnOnce() -> Result<(), Error>) -> i32 {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => ffi::OK,
        Ok(Err(error)) => {
            set_last_error(&error.message);
            error.status
        }
        Err(payload) => {
            let reason = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic payload".to_string());
            let location = PANIC_LOCATION.with(|slot| slot.borrow_mut().take());
            let at = location.map(|l| format!(" (at {l})")).unwrap_or_default();
            set_last_error(&format!("plugin panicked in {what}: {reason}{at}"));
            ffi::ERR_PANIC
        }
    }
}

fn to_ffi_tensor(tensor: &Tensor) -> ffi::Tensor {
    let mut shape = [0usize; ffi::MAX_DIMS];
    shape[..tensor.shape.len()].copy_from_slice(&tensor.shape);
    ffi::Tensor { data: tensor.data.as_ptr(), len: tensor.data.len(), ndim: tensor.shape.len() as u32, shape }
}

unsafe extern "C" fn create<P: Plugin>(config_json: *const c_char, instance_out: *mut *mut c_void) -> i32 {
    guard("create", || {
        if config_json.is_null() || instance_out.is_null() {
            return Err(Error::invalid_input("create: null argument"));
        }
        // SAFETY: the host passes a NUL-terminated string that outlives this call.
        let text =
            unsafe { CStr::from_ptr(config_json) }.to_str().map_err(|_| Error::config("configuration is not UTF-8"))?;
        let config: serde_json::Value =
            serde_json::from_str(text).map_err(|e| Error::config(format!("configuration is not valid JSON: {e}")))?;
        let plugin = P::create(&config)?;
        let info = CString::new(plugin.info().to_string()).map_err(|e| Error::process(e.to_string()))?;
        let instance = Box::new(Instance { plugin, info });
        // SAFETY: checked non-null above; the host gives us a writable slot.
        unsafe { *instance_out = Box::into_raw(instance).cast() };
        Ok(())
    })
}

unsafe extern "C" fn instance_info<P: Plugin>(instance: *mut c_void) -> *const c_char {
    if instance.is_null() {
        return c"{}".as_ptr();
    }
    // SAFETY: a non-null instance was made by `create::<P>` and is not destroyed yet.
    let instance = unsafe { &*instance.cast::<Instance<P>>() };
    instance.info.as_ptr()
}

unsafe extern "C" fn process<P: Plugin>(
    instance: *mut c_void,
    input: *const ffi::Tensor,
    output: *mut ffi::Output,
) -> i32 {
    guard("process", || {
        if instance.is_null() || input.is_null() || output.is_null() {
            return Err(Error::invalid_input("process: null argument"));
        }
        // SAFETY: checked non-null; the host owns the input for the duration of the call.
        let input = unsafe { &*input };
        let ndim = input.ndim as usize;
        if ndim == 0 || ndim > ffi::MAX_DIMS {
            return Err(Error::invalid_input(format!("input has {ndim} axes, expected 1 to {}", ffi::MAX_DIMS)));
        }
        let shape = &input.shape[..ndim];
        if shape.iter().product::<usize>() != input.len || (input.len > 0 && input.data.is_null()) {
            return Err(Error::invalid_input(format!("input shape {shape:?} does not match its length {}", input.len)));
        }
        let data = if input.len == 0 {
            &[][..]
        } else {
            // SAFETY: non-null, and the host guarantees `len` floats behind `data`.
            unsafe { std::slice::from_raw_parts(input.data, input.len) }
        };
        // SAFETY: made by `create::<P>`, and the host never calls one instance from two threads.
        let instance = unsafe { &mut *instance.cast::<Instance<P>>() };
        let result = instance.plugin.process(TensorView { data, shape })?;
        // SAFETY: checked non-null above.
        unsafe { write_output(result, output) };
        Ok(())
    })
}

/// Hand `result` to the host through `output`; `free_output` releases it.
///
/// # Safety
/// `output` must be non-null and writable.
unsafe fn write_output(result: crate::Output, output: *mut ffi::Output) {
    let values = to_ffi_tensor(&result.values);
    let embedding = result.embedding.as_ref().map(to_ffi_tensor).unwrap_or(ffi::Tensor::EMPTY);
    let buffers = Box::new(OutputBuffers {
        _values: result.values.data,
        _embedding: result.embedding.map(|t| t.data).unwrap_or_default(),
    });
    // SAFETY: guaranteed by the caller. Moving the Vecs into the box keeps their heap pointers valid.
    unsafe {
        *output = ffi::Output { values, embedding, owner: Box::into_raw(buffers).cast() };
    }
}

unsafe extern "C" fn start<P: Plugin>(instance: *mut c_void, sample_rate: u32, channels: u32) -> i32 {
    guard("start", || {
        if instance.is_null() {
            return Err(Error::invalid_input("start: null argument"));
        }
        // SAFETY: made by `create::<P>`, and the host never calls one instance from two threads.
        let instance = unsafe { &mut *instance.cast::<Instance<P>>() };
        instance.plugin.start(sample_rate, channels)
    })
}

unsafe extern "C" fn finish<P: Plugin>(instance: *mut c_void, output: *mut ffi::Output) -> i32 {
    guard("finish", || {
        if instance.is_null() || output.is_null() {
            return Err(Error::invalid_input("finish: null argument"));
        }
        // SAFETY: as in `start`.
        let instance = unsafe { &mut *instance.cast::<Instance<P>>() };
        let result = instance.plugin.finish()?;
        // SAFETY: checked non-null above.
        unsafe { write_output(result, output) };
        Ok(())
    })
}

unsafe extern "C" fn free_output(_instance: *mut c_void, output: *mut ffi::Output) {
    if output.is_null() {
        return;
    }
    // SAFETY: the host passes back an output filled by `process`, once.
    let output = unsafe { &mut *output };
    if !output.owner.is_null() {
        // SAFETY: `owner` came from `Box::into_raw` in `process`.
        drop(unsafe { Box::from_raw(output.owner.cast::<OutputBuffers>()) });
    }
    *output = ffi::Output::EMPTY;
}

unsafe extern "C" fn last_error() -> *const c_char {
    LAST_ERROR.with(|slot| slot.borrow().as_ptr())
}

unsafe extern "C" fn destroy<P: Plugin>(instance: *mut c_void) {
    if instance.is_null() {
        return;
    }
    // A panic in the plugin's Drop must not unwind into the host.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: made by `create::<P>`; the host destroys each instance once.
        drop(unsafe { Box::from_raw(instance.cast::<Instance<P>>()) });
    }));
}
