//! Loading real plugin libraries: Rust, C, panicking, and built for another ABI.

use timbre_daemon::plugin_host::{PluginError, PluginKind, PluginRegistry};

use crate::util::{built_plugin, compile_c_plugin, run, sample, text, timbred};

#[test]
fn the_rust_mel_plugin_loads_and_extracts_features() {
    let mut registry = PluginRegistry::default();
    let library = registry.load(&built_plugin("timbre_plugin_mel")).expect("mel loads");
    assert_eq!((library.name.as_str(), library.kind, library.abi), ("mel", PluginKind::Feature, (1, 1)));
    let mut mel =
        registry.instantiate(PluginKind::Feature, "mel", &serde_json::json!({"n_mels": 64})).expect("instance");
    assert_eq!(mel.info()["sample_rate"], 22050);
    let signal: Vec<f32> = (0..2 * 22050).map(|i| (i as f32 * 0.05).sin()).collect();
    let output = mel.process(&signal, &[2, 22050]).expect("process");
    assert_eq!(output.values.shape, vec![2, 64, 44]);
    assert!(output.embedding.is_none());
}

#[test]
fn a_plugin_written_in_c_loads_and_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = compile_c_plugin("rms.c", dir.path(), "timbre_plugin_rms", &[]);
    let mut registry = PluginRegistry::default();
    let library = registry.load(&file).expect("C plugin loads");
    assert_eq!((library.name.as_str(), library.version.as_str()), ("rms", "1.0.0"));
    assert_eq!(library.metadata["description"], "frame RMS level, written in C");

    let mut rms = registry.instantiate(PluginKind::Feature, "rms", &serde_json::json!({"frame": 4})).expect("instance");
    // A square wave of amplitude 0.5 has RMS 0.5; silence has 0.
    let signal = [0.5, -0.5, 0.5, -0.5, 0.0, 0.0, 0.0, 0.0];
    let output = rms.process(&signal, &[1, 8]).expect("process");
    assert_eq!(output.values.shape, vec![1, 1, 2]);
    assert_eq!(output.values.data, vec![0.5, 0.0]);

    // The C plugin's own error message reaches the host.
    let error =
        registry.instantiate(PluginKind::Feature, "rms", &serde_json::json!({"frame": -3})).err().expect("bad config");
    assert!(error.to_string().contains("\"frame\" must be a positive integer"), "{error}");
}

#[test]
fn a_panicking_plugin_gives_an_error_and_the_host_keeps_running() {
    let mut registry = PluginRegistry::default();
    registry.load(&built_plugin("timbretest_panicky")).expect("loads");
    registry.load(&built_plugin("timbre_plugin_mel")).expect("loads");

    let mut panicky = registry.instantiate(PluginKind::Feature, "panicky", &serde_json::json!({})).expect("instance");
    match panicky.process(&[0.0; 4], &[1, 4]) {
        Err(PluginError::Process { plugin, status, message }) => {
            assert_eq!((plugin.as_str(), status), ("panicky", timbre_plugin_sdk::ffi::ERR_PANIC));
            assert!(message.contains("deliberate panic on a batch of shape [1, 4]"), "{message}");
        }
        other => panic!("expected a process error, got {other:?}"),
    }
    let error =
        registry.instantiate(PluginKind::Feature, "panicky", &serde_json::json!({"panic_in_create": true})).err();
    assert!(error.expect("create must fail").to_string().contains("plugin panicked in create"));

    // The same process goes on using the instance and other plugins.
    assert!(panicky.process(&[0.0; 4], &[1, 4]).is_err());
    let mut mel = registry.instantiate(PluginKind::Feature, "mel", &serde_json::json!({})).expect("mel after a panic");
    assert!(mel.process(&[0.0; 22050], &[1, 22050]).is_ok());
}

#[test]
fn timbred_reports_a_panicking_plugin_per_file_and_exits_normally() {
    let output = run(timbred()
        .arg("analyze")
        .args(["--plugin", "panicky", "--plugin-path"])
        .arg(built_plugin("timbretest_panicky"))
        .arg(sample())
        .arg(sample()));
    assert_eq!(output.status.code(), Some(1), "a failed file exits with 1, not a crash");
    let stderr = text(&output.stderr);
    assert_eq!(stderr.matches("plugin 'panicky' failed (status 4): plugin panicked in process").count(), 2, "{stderr}");
}

#[test]
fn a_plugin_built_for_another_abi_major_is_refused_naming_file_and_versions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = compile_c_plugin("rms.c", dir.path(), "timbre_plugin_future", &["RMS_ABI_MAJOR=2"]);
    let mut registry = PluginRegistry::default();
    let error = registry.load(&file).expect_err("ABI 2 must be refused");
    assert!(matches!(error, PluginError::IncompatibleAbi { found: (2, 1), expected: (1, 1), .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains(&file.display().to_string()) && message.contains("ABI 2.1") && message.contains("ABI 1.1"),
        "{message}"
    );

    // `timbred plugins` shows the refusal and still lists the good plugins.
    let output = run(timbred().arg("plugins").arg("--json").arg("--plugin-path").arg(dir.path()));
    assert!(output.status.success());
    let listing: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON listing");
    assert!(listing["plugins"].as_array().expect("plugins").iter().any(|p| p["name"] == "mel"));
    let refused = &listing["refused"][0];
    assert_eq!(refused["file"], file.display().to_string());
    assert!(refused["reason"].as_str().unwrap_or_default().contains("built for plugin ABI 2.1"), "{refused}");
}

#[test]
fn a_plugin_built_against_abi_1_0_still_loads_under_1_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = compile_c_plugin("rms.c", dir.path(), "timbre_plugin_rms10", &["RMS_ABI_1_0"]);
    let mut registry = PluginRegistry::default();
    let library = registry.load(&file).expect("a 1.0 plugin loads");
    assert_eq!((library.kind, library.abi), (PluginKind::Feature, (1, 0)));
    let mut rms = registry.instantiate(PluginKind::Feature, "rms", &serde_json::json!({"frame": 4})).expect("instance");
    assert_eq!(rms.process(&[0.5, -0.5, 0.5, -0.5], &[1, 4]).expect("process").values.data, vec![0.5]);
}

#[test]
fn the_descriptor_kind_loads_and_needs_the_1_1_descriptor() {
    let mut registry = PluginRegistry::default();
    let library = registry.load(&built_plugin("timbre_plugin_descriptors")).expect("descriptors loads");
    assert_eq!((library.name.as_str(), library.kind, library.abi), ("descriptors", PluginKind::Descriptor, (1, 1)));
    assert_eq!(library.metadata["defaults"]["key_profile"], "bgate");

    // A descriptor plugin claiming a 1.0-sized descriptor has no `start`/`finish`: refused.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = compile_c_plugin("rms.c", dir.path(), "timbre_plugin_rmsdesc", &["RMS_ABI_1_0", "RMS_KIND=3"]);
    let error = PluginRegistry::default().load(&file).expect_err("too small for a descriptor plugin");
    assert!(matches!(error, PluginError::DescriptorTooSmall { .. }), "{error:?}");
    // One with the 1.1 size but NULL `start`/`finish` (rms.c has none): refused, naming them.
    let file = compile_c_plugin("rms.c", dir.path(), "timbre_plugin_rmsdesc11", &["RMS_KIND=3"]);
    let error = PluginRegistry::default().load(&file).expect_err("no start/finish");
    assert!(error.to_string().contains("`start` is NULL"), "{error}");
}
