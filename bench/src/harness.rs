//! What the benchmarks that drive a real `timbred serve` share: the daemon process (start,
//! wait for its "serving" line, SIGTERM or SIGKILL), gRPC clients, the GTZAN pool and 3 s clips
//! of it, in-process analysis for a baseline, latency percentiles, CPU time and memory from
//! /proc.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use serde_json::json;
use timbre_daemon::pipeline::analysis::Analyzer;
use timbre_daemon::pipeline::{decode_whole, AudioInput, Budget};
use timbre_proto::v1 as pb;
use timbre_proto::v1::timbre_client::TimbreClient;
use tonic::transport::Channel;

/// The shipped models read 22050 Hz audio in 3 s segments.
pub const RATE: u32 = 22050;
pub const CLIP_SECONDS: usize = 3;

pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// The clients run on one thread, so they take at most one core from the daemon.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()
}

pub fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// `timbred`: the one given, else the one next to this binary.
pub fn timbred(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let timbred = match given {
        Some(path) => path.to_path_buf(),
        None => std::env::current_exe()?.parent().context("binary has a directory")?.join("timbred"),
    };
    ensure!(timbred.is_file(), "{} is missing: build with `cargo build --release --workspace`", timbred.display());
    Ok(timbred)
}

/// The GTZAN pool: the one given, else ../shared/data/gtzan-pool of the repository.
pub fn pool(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let pool = given
        .map(Path::to_path_buf)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/gtzan-pool"));
    ensure!(pool.is_dir(), "the GTZAN pool is not at {} (set TIMBRE_GTZAN_POOL or --pool)", pool.display());
    Ok(pool)
}

/// Pool files copied to `root/<genre>/<name>`; the copies' paths, in the same order.
pub fn copy_into(files: &[PathBuf], root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut copied = Vec::with_capacity(files.len());
    for file in files {
        let genre = file.parent().and_then(Path::file_name).context("genre folder")?;
        let target = root.join(genre).join(file.file_name().context("file name")?);
        std::fs::create_dir_all(target.parent().context("parent")?)?;
        std::fs::copy(file, &target).with_context(|| format!("copying {}", file.display()))?;
        copied.push(target);
    }
    Ok(copied)
}

/// Every `.flac` of the pool, sorted by path.
pub fn pool_files(pool: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for genre in std::fs::read_dir(pool).with_context(|| format!("reading {}", pool.display()))? {
        let genre = genre?.path();
        if genre.is_dir() {
            for entry in std::fs::read_dir(&genre)? {
                let path = entry?.path();
                if path.extension().is_some_and(|e| e == "flac") {
                    files.push(path);
                }
            }
        }
    }
    files.sort();
    ensure!(!files.is_empty(), "no .flac file under {}", pool.display());
    Ok(files)
}

pub struct Clip {
    pub name: String,
    pub samples: Arc<[f32]>,
}

/// The first 3 s of `n` clips, mono at 22050 Hz: round the genres, each time the genre's next
/// clip that lasts at least 3 s (many pool clips are 2-3 s excerpts).
pub fn clips(files: &[PathBuf], n: usize) -> anyhow::Result<Vec<Clip>> {
    let mut by_genre: BTreeMap<PathBuf, std::slice::Iter<'_, PathBuf>> = BTreeMap::new();
    let mut start = 0;
    for (index, file) in files.iter().enumerate() {
        if files.get(index + 1).is_none_or(|next| next.parent() != file.parent()) {
            by_genre.insert(file.parent().map(Path::to_path_buf).unwrap_or_default(), files[start..=index].iter());
            start = index + 1;
        }
    }
    let want = RATE as usize * CLIP_SECONDS;
    let mut clips = Vec::new();
    while clips.len() < n && !by_genre.is_empty() {
        by_genre.retain(|_, genre| {
            if clips.len() == n {
                return true;
            }
            for file in genre.by_ref() {
                let Ok((mut samples, _)) = decode_whole(file, RATE, 3600.0) else { continue };
                if samples.len() >= want {
                    samples.truncate(want);
                    let parts: Vec<_> = file.iter().rev().take(2).map(|p| p.to_string_lossy().into_owned()).collect();
                    clips.push(Clip { name: format!("{}/{}", parts[1], parts[0]), samples: samples.into() });
                    return true;
                }
            }
            false
        });
    }
    ensure!(!clips.is_empty(), "no clip of at least {CLIP_SECONDS} s in the pool");
    Ok(clips)
}

pub fn pcm_input(clip: &Clip) -> AudioInput {
    AudioInput::Pcm { name: clip.name.clone(), samples: clip.samples.clone(), sample_rate: RATE }
}

/// CPU time (user + system) of `/proc/<which>/stat`, in seconds: a pid, "self" or "thread-self".
pub fn cpu_seconds(which: &str) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{which}/stat"))?;
    let fields: Vec<&str> = stat.rsplit_once(')').context("/proc stat format")?.1.split_whitespace().collect();
    // proc(5): utime and stime are fields 14 and 15; `fields` starts at field 3.
    let ticks = fields.get(11).context("utime")?.parse::<f64>()? + fields.get(12).context("stime")?.parse::<f64>()?;
    Ok(ticks / clock_ticks())
}

/// CPU time of this process's waited-for children (cutime + cstime), in seconds.
pub fn children_cpu_seconds() -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    let fields: Vec<&str> = stat.rsplit_once(')').context("/proc stat format")?.1.split_whitespace().collect();
    // proc(5): cutime and cstime are fields 16 and 17.
    let ticks = fields.get(13).context("cutime")?.parse::<f64>()? + fields.get(14).context("cstime")?.parse::<f64>()?;
    Ok(ticks / clock_ticks())
}

fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

pub struct Latency {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl Latency {
    /// Nearest-rank percentiles.
    pub fn of(latencies: &[f64]) -> Latency {
        let mut sorted = latencies.to_vec();
        sorted.sort_by(f64::total_cmp);
        let at = |q: f64| {
            if sorted.is_empty() {
                return f64::NAN;
            }
            let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
            sorted[rank - 1]
        };
        Latency { p50: at(0.50), p99: at(0.99), max: at(1.0) }
    }
}

/// Latencies of the analyses started within `seconds`, and this thread's CPU time for them.
pub fn analyze_for(
    analyzer: &mut Analyzer,
    inputs: &[AudioInput],
    first: usize,
    seconds: f64,
) -> anyhow::Result<(Vec<f64>, f64)> {
    let cpu = cpu_seconds("thread-self")?;
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let mut latencies = Vec::new();
    let mut next = first;
    while Instant::now() < deadline {
        let start = Instant::now();
        let analysis = analyzer.analyze_input(&inputs[next % inputs.len()], None, Budget::UNLIMITED)?;
        latencies.push(start.elapsed().as_secs_f64());
        ensure!(!analysis.predictions.is_empty(), "no prediction");
        next += 1;
    }
    Ok((latencies, cpu_seconds("thread-self")? - cpu))
}

pub async fn connect(addr: &str) -> anyhow::Result<TimbreClient<Channel>> {
    Ok(TimbreClient::connect(addr.to_string())
        .await
        .with_context(|| format!("connecting to {addr}"))?
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20))
}

pub fn classify_request(clip: &Clip) -> pb::ClassifyRequest {
    pb::ClassifyRequest {
        source: Some(pb::classify_request::Source::Pcm(pb::Pcm {
            samples: clip.samples.to_vec(),
            sample_rate: RATE,
            channels: 1,
        })),
        ..Default::default()
    }
}

pub async fn connect_many(addr: &str, n: usize) -> anyhow::Result<Vec<TimbreClient<Channel>>> {
    let mut connections = Vec::with_capacity(n);
    for _ in 0..n {
        connections.push(connect(addr).await?);
    }
    Ok(connections)
}

/// A `timbred serve` this process started; stopped with SIGTERM or SIGKILL (killed when dropped).
/// Its stderr is drained into [`Daemon::log`] from the start, so it never blocks on a full pipe.
pub struct Daemon {
    child: Child,
    /// `http://<address>` once it serves; empty before.
    pub addr: String,
    /// When the "serving" line was read (start-up is over, the catch-up scan begins), and the
    /// daemon's CPU time then.
    serving: Option<(Instant, f64)>,
    /// The URL from the "serving" line, sent by the drain thread.
    served: mpsc::Receiver<String>,
    log: Arc<Mutex<String>>,
    drain: Option<std::thread::JoinHandle<()>>,
}

impl Daemon {
    /// `timbred serve` on a free loopback port with its library in `data_dir`, under the default
    /// configuration, not the user's timbre.toml; add `--root` and other flags to it.
    pub fn command(timbred: &Path, data_dir: &Path) -> Command {
        let mut command = Command::new(timbred);
        command.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"]).arg(data_dir);
        command.env("XDG_CONFIG_HOME", data_dir.join("config"));
        command
    }

    /// Start it and wait until it serves.
    pub fn start(command: Command) -> anyhow::Result<Daemon> {
        let mut daemon = Daemon::spawn(command)?;
        daemon.wait_serving(Duration::from_secs(300))?;
        Ok(daemon)
    }

    /// Start it; return at once.
    pub fn spawn(mut command: Command) -> anyhow::Result<Daemon> {
        let mut child = command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn()?;
        let stderr = child.stderr.take().context("stderr")?;
        let log = Arc::new(Mutex::new(String::new()));
        let (tell, served) = mpsc::channel();
        let sink = log.clone();
        let drain = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = timbre_daemon::serve::served_url(&line) {
                    let _ = tell.send(url);
                }
                sink.lock().expect("log").push_str(&format!("{}\n", strip_ansi(&line)));
            }
        });
        Ok(Daemon { child, addr: String::new(), serving: None, served, log, drain: Some(drain) })
    }

    /// Wait for the "serving" line; an error if the daemon exits first or `limit` passes.
    pub fn wait_serving(&mut self, limit: Duration) -> anyhow::Result<()> {
        let url = match self.served.recv_timeout(limit) {
            Ok(url) => url,
            Err(mpsc::RecvTimeoutError::Timeout) => bail!("timbred did not serve within {limit:?}:\n{}", self.log()),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = self.child.wait()?;
                bail!("timbred exited ({status}) before serving:\n{}", self.log());
            }
        };
        self.addr = url;
        self.serving = Some((Instant::now(), cpu_seconds(&self.pid().to_string())?));
        Ok(())
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Seconds since the "serving" line (0 before it).
    pub fn seconds_serving(&self) -> f64 {
        self.serving.map_or(0.0, |(at, _)| at.elapsed().as_secs_f64())
    }

    /// CPU seconds the daemon has spent since the "serving" line.
    pub fn cpu_since_serving(&self) -> anyhow::Result<f64> {
        Ok(cpu_seconds(&self.pid().to_string())? - self.serving.map_or(0.0, |(_, cpu)| cpu))
    }

    /// How it exited, if it has (without waiting).
    pub fn exited(&mut self) -> anyhow::Result<Option<std::process::ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    pub fn log(&self) -> String {
        self.log.lock().expect("log").clone()
    }

    /// Worker threads, as the daemon logs them (`engine started workers=N`).
    pub fn workers(&self) -> Option<u64> {
        let log = self.log();
        let line = log.lines().find(|l| l.contains("engine started"))?;
        line.split_whitespace().find_map(|w| w.strip_prefix("workers=")).and_then(|n| n.parse().ok())
    }

    /// `kill -9`, then its whole log.
    pub fn kill(mut self) -> anyhow::Result<String> {
        self.child.kill()?;
        self.child.wait()?;
        self.join_drain();
        Ok(self.log())
    }

    /// Once the process has exited, its stderr closes and the drain thread ends.
    fn join_drain(&mut self) {
        if let Some(drain) = self.drain.take() {
            let _ = drain.join();
        }
    }

    /// SIGTERM and wait (at most 30 s); what the exit looked like, and the log's warnings and errors.
    pub fn stop(mut self) -> anyhow::Result<serde_json::Value> {
        let sent = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status()?;
        ensure!(sent.success(), "kill -TERM {} failed", self.pid());
        let asked = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait()? {
                break Some(status);
            }
            if asked.elapsed() > Duration::from_secs(30) {
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if status.is_some() {
            self.join_drain();
        }
        let log = self.log();
        let problems: Vec<&str> = log
            .lines()
            .filter(|l| l.contains(" WARN ") || l.contains(" ERROR ") || l.contains("panicked"))
            .take(10)
            .collect();
        let shutdown: Vec<&str> =
            log.lines().skip_while(|l| !l.starts_with("timbred: shutting down")).take(10).collect();
        Ok(json!({
            "status": status.map(|s| s.to_string()).unwrap_or_else(|| "still running after SIGTERM + 30 s".into()),
            "success": status.is_some_and(|s| s.success()),
            "stop_seconds": round(asked.elapsed().as_secs_f64(), 2),
            "log_warnings_and_errors": problems,
            "log_from_shutdown": shutdown,
        }))
    }
}

/// The log without terminal colour codes (tracing colours its output even into a pipe).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Clone, Copy)]
pub struct Memory {
    pub rss_kib: u64,
    pub hwm_kib: u64,
}

impl Memory {
    pub fn json(&self) -> serde_json::Value {
        json!({ "rss_mib": round(self.rss_kib as f64 / 1024.0, 1), "hwm_mib": round(self.hwm_kib as f64 / 1024.0, 1) })
    }
}

/// VmRSS and VmHWM of a process.
pub fn memory(pid: u32) -> anyhow::Result<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> anyhow::Result<u64> {
        let line = status.lines().find(|l| l.starts_with(name)).with_context(|| format!("no {name} for {pid}"))?;
        Ok(line[name.len()..].trim().trim_end_matches("kB").trim().parse()?)
    };
    Ok(Memory { rss_kib: field("VmRSS:")?, hwm_kib: field("VmHWM:")? })
}

/// Memory once start-up has settled: RSS unchanged (within 0.5%) over one second, at most 15 s.
pub fn settle(pid: u32) -> anyhow::Result<Memory> {
    let started = Instant::now();
    let mut samples = vec![memory(pid)?];
    loop {
        std::thread::sleep(Duration::from_millis(250));
        samples.push(memory(pid)?);
        let last = &samples[samples.len().saturating_sub(5)..];
        let (low, high) = last.iter().fold((u64::MAX, 0), |(lo, hi), m| (lo.min(m.rss_kib), hi.max(m.rss_kib)));
        if (last.len() == 5 && (high - low) as f64 <= 0.005 * high as f64)
            || started.elapsed() > Duration::from_secs(15)
        {
            return Ok(*samples.last().expect("a sample"));
        }
    }
}

/// The daemon binary and the real music every daemon benchmark needs.
#[derive(Debug, clap::Args)]
pub struct Inputs {
    /// The daemon binary [default: `timbred` next to this binary].
    #[arg(long)]
    timbred: Option<PathBuf>,
    /// The GTZAN pool (<genre>/*.flac) [default: ../shared/data/gtzan-pool of the repository].
    #[arg(long, env = "TIMBRE_GTZAN_POOL")]
    pool: Option<PathBuf>,
}

impl Inputs {
    /// The binary and the pool, checked to exist.
    pub fn resolve(&self) -> anyhow::Result<(PathBuf, PathBuf)> {
        Ok((timbred(self.timbred.as_deref())?, pool(self.pool.as_deref())?))
    }
}
