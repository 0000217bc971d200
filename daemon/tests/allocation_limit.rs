//! Hostile headers must not size allocations. Inputs found by fuzzing ask the decoder for
//! gigabytes before it reads a byte of what they describe: 4 GiB for a FLAC picture's media
//! type, 32 GiB for an MP4 `stts` table. Under Linux's default overcommit such an allocation
//! "succeeds" untouched and nothing shows; where the kernel refuses it, the daemon aborts.
//!
//! This test binary has its own global allocator that refuses any single allocation over
//! [`LIMIT`], as a small or strictly-committed machine would: the refused allocation aborts
//! the binary ("memory allocation of N bytes failed"), so `cargo test` fails instead of
//! overcommit hiding it. Its own binary, so no other test runs under the limit.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use timbre_daemon::pipeline::{AudioInput, Decoder, SegmentOptions, SegmentStream};

/// Far above anything decoding an upload needs, far below what the hostile headers ask for.
const LIMIT: usize = 1 << 30;

struct Refusing;

// SAFETY: forwards to `System` unchanged, except that it returns null (allowed: it reports an
// allocation failure) for sizes over the limit.
unsafe impl GlobalAlloc for Refusing {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > LIMIT {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's guarantees for `layout` are passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() > LIMIT {
            return std::ptr::null_mut();
        }
        // SAFETY: as in `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > LIMIT {
            return std::ptr::null_mut();
        }
        // SAFETY: as in `alloc`; `ptr` came from this allocator, so from `System`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, so from `System`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Refusing = Refusing;

fn regression(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions/decode_file").join(name)
}

/// Decode `name` as an upload (from memory, as `Classify` does, with its length limit) and as
/// a library file (from disk): neither holds audio, so both are refused with an error naming
/// the input, and neither asks for more than the limit on the way.
fn refused_within_the_limit(name: &str) {
    let path = regression(name);
    let bytes = std::fs::read(&path).expect("the regression input is committed");
    let upload = AudioInput::Encoded { name: name.into(), bytes: Arc::from(bytes) };
    let error = SegmentStream::open(&upload, 22050, SegmentOptions::default(), Some(60.0))
        .err()
        .expect("an upload without audio is refused");
    assert!(error.to_string().starts_with(&format!("{name}: ")), "{error}");
    let error = Decoder::open(&path).err().expect("a file without audio is refused");
    assert!(error.to_string().contains(name), "{error}");
}

#[test]
fn the_limit_is_enforced() {
    // A fallible reservation sees the refusal as an error rather than an abort.
    let mut vec = Vec::<u8>::new();
    assert!(vec.try_reserve_exact(LIMIT + 1).is_err(), "the allocator must refuse over {LIMIT} bytes");
    assert!(vec.try_reserve_exact(1 << 20).is_ok());
}

#[test]
fn a_flac_picture_header_cannot_size_an_allocation() {
    refused_within_the_limit("flac-picture-4gib.flac");
}

#[test]
fn an_mp4_sample_table_header_cannot_size_an_allocation() {
    refused_within_the_limit("mp4-stts-32gib.m4a");
}
