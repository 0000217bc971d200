//! The plugin through the C ABI, as a host written in any language drives it: `start`, chunks
//! through `process`, `finish`, twice in a row on one instance. It loads the library that
//! `cargo build` made (as the daemon's tests do), so build before testing, as `scripts/test` does.

use std::ffi::{c_void, CStr};

use timbre_plugin_sdk::ffi::{self, EntryFn, Output, Tensor};

fn library() -> libloading::Library {
    // Integration tests run from target/<profile>/deps; the cdylib sits one level up.
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target directory");
    let file = dir.join(format!(
        "{}timbre_plugin_descriptors.{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_EXTENSION
    ));
    // SAFETY: our own plugin, built with this test.
    unsafe { libloading::Library::new(&file) }.unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// A click every `period` samples over a quiet hum: an unambiguous pulse.
fn clicks(rate: u32, seconds: usize, bpm: f64) -> Vec<f32> {
    let period = (60.0 / bpm * rate as f64) as usize;
    (0..rate as usize * seconds)
        .map(|i| {
            let since = i % period;
            let click = if since < 200 { (1.0 - since as f32 / 200.0) * ((i as f32 * 1.7).sin()) } else { 0.0 };
            0.8 * click + 0.05 * (2.0 * std::f32::consts::PI * 220.0 * i as f32 / rate as f32).sin()
        })
        .collect()
}

#[test]
fn start_process_finish_through_the_c_abi() {
    let library = library();
    // SAFETY: the entry symbol's type is fixed by the ABI.
    let entry = unsafe { library.get::<EntryFn>(ffi::ENTRY_SYMBOL) }.expect("entry symbol");
    // SAFETY: returns a pointer to a static descriptor of this SDK's layout.
    let d = unsafe { &*entry() };
    assert_eq!((d.abi_major, d.abi_minor, d.kind), (1, 1, ffi::KIND_DESCRIPTOR));
    assert_eq!(d.struct_size as usize, std::mem::size_of::<ffi::PluginDescriptor>());
    let (create, info, process, free, start, finish, destroy, last_error) = (
        d.create.expect("create"),
        d.instance_info.expect("info"),
        d.process.expect("process"),
        d.free_output.expect("free_output"),
        d.start.expect("start"),
        d.finish.expect("finish"),
        d.destroy.expect("destroy"),
        d.last_error.expect("last_error"),
    );
    let mut instance: *mut c_void = std::ptr::null_mut();
    // SAFETY: the calls below follow the header's contract: one thread, outputs freed once.
    unsafe {
        assert_eq!(create(c"{}".as_ptr(), &mut instance), ffi::OK);
        let info: serde_json::Value =
            serde_json::from_str(CStr::from_ptr(info(instance)).to_str().expect("UTF-8")).expect("JSON");
        let names: Vec<String> = serde_json::from_value(info["values"].clone()).expect("value names");
        assert_eq!(info["input"]["channels"], "decoded");

        // Finishing before a track started is an error, not a crash.
        let mut output = Output::EMPTY;
        assert_eq!(finish(instance, &mut output), ffi::ERR_INVALID_INPUT);
        assert!(CStr::from_ptr(last_error()).to_string_lossy().contains("finish before start"));

        for (rate, bpm) in [(22_050u32, 100.0), (44_100, 128.0)] {
            // Stereo, interleaved, in uneven chunks.
            let mono = clicks(rate, 20, bpm);
            let stereo: Vec<f32> = mono.iter().flat_map(|&x| [x, 0.5 * x]).collect();
            assert_eq!(start(instance, rate, 2), ffi::OK);
            for chunk in stereo.chunks(2 * 7919) {
                let mut shape = [0usize; ffi::MAX_DIMS];
                shape[..2].copy_from_slice(&[chunk.len() / 2, 2]);
                let input = Tensor { data: chunk.as_ptr(), len: chunk.len(), ndim: 2, shape };
                let mut output = Output::EMPTY;
                assert_eq!(process(instance, &input, &mut output), ffi::OK);
                assert_eq!(output.values.len, 0);
                free(instance, &mut output);
            }
            let mut output = Output::EMPTY;
            assert_eq!(finish(instance, &mut output), ffi::OK);
            let values = std::slice::from_raw_parts(output.values.data, output.values.len);
            assert_eq!(values.len(), names.len());
            let value = |name: &str| values[names.iter().position(|n| n == name).expect(name)];
            assert!((value("bpm") as f64 / bpm - 1.0).abs() < 0.04, "bpm {} for {bpm}", value("bpm"));
            assert!(value("loudness_lufs").is_finite() && value("true_peak_dbtp") < 0.0);
            assert!((value("replaygain_track_gain_db") + value("loudness_lufs") + 18.0).abs() < 1e-4);
            assert_eq!(output.embedding.len, 800, "the loudness histogram");
            free(instance, &mut output);
        }
        destroy(instance);
    }
}
