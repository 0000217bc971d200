//! Shared helpers: running `timbred`, finding built plugins, compiling C plugins.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `timbred`, with a plugin search path that holds only what the test adds (plus the
/// plugins built next to the binary).
pub fn timbred() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_timbred"));
    command.env_remove("TIMBRE_PLUGIN_PATH").env("TIMBRE_LOG", "warn");
    command
}

pub fn run(command: &mut Command) -> Output {
    let output = command.output().expect("timbred runs");
    eprintln!("stdout:\n{}\nstderr:\n{}", text(&output.stdout), text(&output.stderr));
    output
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Where cargo put `timbred` and the workspace's plugin libraries.
pub fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_timbred")).parent().expect("binary has a directory").to_path_buf()
}

/// A plugin library built by `cargo build --workspace`, e.g. `timbre_plugin_mel`.
pub fn built_plugin(lib_name: &str) -> PathBuf {
    let file =
        target_dir().join(format!("{}{lib_name}.{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_EXTENSION));
    assert!(
        file.is_file(),
        "{} is missing: run `cargo build --workspace` before the tests (the README's test command does)",
        file.display()
    );
    file
}

/// Compile `tests/test-plugins/c/<source>` into `dir/<lib>.so` with the system C compiler.
pub fn compile_c_plugin(source: &str, dir: &Path, lib_name: &str, defines: &[&str]) -> PathBuf {
    let output = dir.join(format!("{}{lib_name}.{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_EXTENSION));
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let status = Command::new(&compiler)
        .args(["-std=c11", "-Wall", "-Werror", "-shared", "-fPIC", "-O1"])
        .args(defines.iter().map(|d| format!("-D{d}")))
        .arg("-I")
        .arg(repo().join("plugins/sdk/include"))
        .arg(repo().join("tests/test-plugins/c").join(source))
        .arg("-o")
        .arg(&output)
        .arg("-lm")
        .status()
        .unwrap_or_else(|e| panic!("cannot run the C compiler `{compiler}`: {e}"));
    assert!(status.success(), "compiling {source} failed");
    output
}

/// The bundled sample (4 s, 22050 Hz mono FLAC).
pub fn sample() -> PathBuf {
    repo().join("tests/data/sample.flac")
}

/// `../shared/data/gtzan-pool`, or `None` (and a message) when it is absent.
pub fn gtzan_pool() -> Option<PathBuf> {
    let pool = std::env::var_os("TIMBRE_GTZAN_POOL")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared/data/gtzan-pool"));
    if pool.join("MANIFEST.tsv").is_file() {
        Some(pool)
    } else {
        eprintln!("skipped: the GTZAN pool is not at {} (set TIMBRE_GTZAN_POOL)", pool.display());
        None
    }
}

pub fn read_npy(path: &Path) -> (Vec<f32>, Vec<u64>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let array = npyz::NpyFile::new(&bytes[..]).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let shape = array.shape().to_vec();
    (array.into_vec::<f32>().expect("f32 data"), shape)
}
