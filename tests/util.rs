//! Shared helpers: running `timbred`, finding built plugins, compiling C plugins.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};

/// The repository root.
/// The models in plugins/models that every test daemon loads: bilstm, cnn, cnn-lstm,
/// musicnn-msd, pca-knn and the genre head.
pub const SHIPPED_MODELS: usize = 6;

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

/// A running `timbred serve` on a free loopback port, with its own data directory unless the
/// arguments name one; killed when dropped. Its stderr is kept for the test to read.
pub struct Daemon {
    pub child: Child,
    pub addr: String,
    pub log: Arc<Mutex<String>>,
    _data: Option<tempfile::TempDir>,
}

impl Daemon {
    pub fn start() -> Daemon {
        Daemon::start_with(&[], &[])
    }

    /// `args` after `serve --listen 127.0.0.1:0`; `env` set for the process.
    pub fn start_with(args: &[&str], env: &[(&str, &str)]) -> Daemon {
        Daemon::start_on("127.0.0.1:0", args, env)
    }

    /// `args` after `serve --listen LISTEN`; `env` set for the process. The address is
    /// `https://` when the daemon says TLS is on.
    pub fn start_on(listen: &str, args: &[&str], env: &[(&str, &str)]) -> Daemon {
        let data = (!args.contains(&"--data-dir")).then(|| tempfile::tempdir().expect("tempdir"));
        let mut command = timbred();
        command.args(["serve", "--listen", listen]).args(args).stderr(Stdio::piped());
        if let Some(data) = &data {
            command.arg("--data-dir").arg(data.path());
        }
        command.envs(env.iter().copied());
        let mut child = command.spawn().expect("timbred starts");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let mut lines = BufReader::new(stderr).lines();
        let addr = loop {
            let Some(Ok(line)) = lines.next() else {
                panic!("timbred exited before serving:\n{}", log.lock().expect("log"));
            };
            log.lock().expect("log").push_str(&format!("{line}\n"));
            if let Some(url) = timbre_daemon::serve::served_url(&line) {
                break url;
            }
        };
        // Keep draining stderr so the daemon never blocks on a full pipe.
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().expect("log").push_str(&format!("{line}\n"));
            }
        });
        Daemon { child, addr, log, _data: data }
    }

    pub fn log(&self) -> String {
        self.log.lock().expect("log").clone()
    }

    pub fn stop(mut self) -> std::process::ExitStatus {
        let sent = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("kill runs");
        assert!(sent.success());
        self.child.wait().expect("wait")
    }

    /// `kill -9`: no chance to clean up.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("wait");
    }

    pub async fn client(&self) -> timbre_proto::v1::timbre_client::TimbreClient<tonic::transport::Channel> {
        timbre_proto::v1::timbre_client::TimbreClient::connect(self.addr.clone())
            .await
            .expect("connect")
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(64 << 20)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

/// Poll `condition` every 100 ms until it holds; panic with `what` after `limit_s` seconds.
/// (A generous limit, not a timing assertion: it only stops a broken daemon hanging the suite.)
pub async fn eventually<T>(what: &str, limit_s: u64, mut condition: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(limit_s);
    loop {
        if let Some(value) = condition().await {
            return value;
        }
        assert!(std::time::Instant::now() < deadline, "gave up waiting for {what} after {limit_s} s");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// A mono 16-bit WAV of a tone that rises from `hz`, `seconds` long at 22050 Hz.
pub fn write_tone_wav(path: &Path, hz: f32, seconds: f32) {
    let rate = 22050u32;
    let n = (seconds * rate as f32) as u32;
    let mut bytes = Vec::with_capacity(44 + 2 * n as usize);
    bytes.extend_from_slice(b"RIFF");
    bytes.extend_from_slice(&(36 + 2 * n).to_le_bytes());
    bytes.extend_from_slice(b"WAVEfmt ");
    bytes.extend_from_slice(&16u32.to_le_bytes());
    bytes.extend_from_slice(&1u16.to_le_bytes());
    bytes.extend_from_slice(&1u16.to_le_bytes());
    bytes.extend_from_slice(&rate.to_le_bytes());
    bytes.extend_from_slice(&(rate * 2).to_le_bytes());
    bytes.extend_from_slice(&2u16.to_le_bytes());
    bytes.extend_from_slice(&16u16.to_le_bytes());
    bytes.extend_from_slice(b"data");
    bytes.extend_from_slice(&(2 * n).to_le_bytes());
    for i in 0..n {
        let t = i as f32 / rate as f32;
        let sample = (0.4 * (2.0 * std::f32::consts::PI * hz * t * (1.0 + t / 4.0)).sin() * 32767.0) as i16;
        bytes.extend_from_slice(&sample.to_le_bytes());
    }
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// The first `n` clips of each of `genres` in the GTZAN pool, sorted.
pub fn gtzan_clips(pool: &Path, genres: &[&str], n: usize) -> Vec<PathBuf> {
    let mut clips = Vec::new();
    for genre in genres {
        let mut files: Vec<PathBuf> = std::fs::read_dir(pool.join(genre))
            .expect("genre folder")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "flac"))
            .collect();
        files.sort();
        clips.extend(files.into_iter().take(n));
    }
    clips
}
