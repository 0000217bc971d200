//! `#[repr(C)]` mirrors of `include/timbre_plugin.h`. Nothing but layout lives here;
//! the header is the contract and these types must match it field for field.

use std::ffi::{c_char, c_void};

pub const ABI_MAJOR: u32 = 1;
/// 1.1 added the descriptor kind and its `start`/`finish` functions, appended to the descriptor.
pub const ABI_MINOR: u32 = 1;
/// The one symbol a plugin exports, NUL-terminated for `dlsym`.
pub const ENTRY_SYMBOL: &[u8] = b"timbre_plugin_entry\0";

pub const KIND_FEATURE: u32 = 1;
pub const KIND_CLASSIFIER: u32 = 2;
/// Since ABI 1.1: a whole track's PCM in, in chunks, named track-level values out.
pub const KIND_DESCRIPTOR: u32 = 3;

pub const OK: i32 = 0;
pub const ERR_INVALID_INPUT: i32 = 1;
pub const ERR_CONFIG: i32 = 2;
pub const ERR_PROCESS: i32 = 3;
pub const ERR_PANIC: i32 = 4;

pub const MAX_DIMS: usize = 4;

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Tensor {
    pub data: *const f32,
    pub len: usize,
    pub ndim: u32,
    pub shape: [usize; MAX_DIMS],
}

impl Tensor {
    pub const EMPTY: Tensor = Tensor { data: std::ptr::null(), len: 0, ndim: 0, shape: [0; MAX_DIMS] };
}

#[repr(C)]
#[derive(Debug)]
pub struct Output {
    pub values: Tensor,
    pub embedding: Tensor,
    pub owner: *mut c_void,
}

impl Output {
    pub const EMPTY: Output = Output { values: Tensor::EMPTY, embedding: Tensor::EMPTY, owner: std::ptr::null_mut() };
}

pub type CreateFn = unsafe extern "C" fn(config_json: *const c_char, instance_out: *mut *mut c_void) -> i32;
pub type InstanceInfoFn = unsafe extern "C" fn(instance: *mut c_void) -> *const c_char;
pub type ProcessFn = unsafe extern "C" fn(instance: *mut c_void, input: *const Tensor, output: *mut Output) -> i32;
pub type FreeOutputFn = unsafe extern "C" fn(instance: *mut c_void, output: *mut Output);
pub type LastErrorFn = unsafe extern "C" fn() -> *const c_char;
pub type DestroyFn = unsafe extern "C" fn(instance: *mut c_void);
pub type StartFn = unsafe extern "C" fn(instance: *mut c_void, sample_rate: u32, channels: u32) -> i32;
pub type FinishFn = unsafe extern "C" fn(instance: *mut c_void, output: *mut Output) -> i32;

#[repr(C)]
#[derive(Debug)]
pub struct PluginDescriptor {
    pub abi_major: u32,
    pub abi_minor: u32,
    pub struct_size: u32,
    pub kind: u32,
    pub name: *const c_char,
    pub version: *const c_char,
    pub metadata_json: *const c_char,
    pub create: Option<CreateFn>,
    pub instance_info: Option<InstanceInfoFn>,
    pub process: Option<ProcessFn>,
    pub free_output: Option<FreeOutputFn>,
    pub last_error: Option<LastErrorFn>,
    pub destroy: Option<DestroyFn>,
    // ABI 1.1. A host reads these only when `struct_size` covers them.
    pub start: Option<StartFn>,
    pub finish: Option<FinishFn>,
}

/// The size of a 1.0 descriptor: what every plugin of major 1 has, whatever its minor.
pub const DESCRIPTOR_SIZE_1_0: usize = std::mem::offset_of!(PluginDescriptor, start);

pub type EntryFn = unsafe extern "C" fn() -> *const PluginDescriptor;

/// A descriptor that may live in a `static`: it only points at static data and functions.
#[repr(transparent)]
pub struct StaticDescriptor(pub PluginDescriptor);

// SAFETY: every pointer in a static descriptor refers to immutable static data or code.
unsafe impl Sync for StaticDescriptor {}
