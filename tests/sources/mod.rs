//! The live sources against real parts: an HTTP server in the test streaming real encoded
//! audio ([`stream`]), and a PulseAudio null sink played into with `paplay` and recorded
//! through cpal and ALSA ([`capture`]).

pub mod capture;
mod stream;

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use timbre_daemon::pipeline::{Decoder, Resampler};
use timbre_daemon::sources::{self, LiveSourceConfig, PcmBlock};

/// A source running on its own thread, as the daemon runs it.
pub struct Running {
    name: String,
    blocks: Receiver<PcmBlock>,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
    /// Everything received so far.
    pub received: Vec<PcmBlock>,
}

impl Running {
    pub fn start(config: LiveSourceConfig) -> Running {
        log_buffer();
        let name = config.name.clone();
        let (tx, blocks) = std::sync::mpsc::sync_channel(16);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = sources::spawn(config, tx, stop.clone());
        Running { name, blocks, stop, thread, received: Vec::new() }
    }

    /// Receive blocks until `done` says so; panics with `what` after `limit` (a hang, not a timing check).
    pub fn receive_until(&mut self, what: &str, limit: Duration, mut done: impl FnMut(&[PcmBlock]) -> bool) {
        let deadline = Instant::now() + limit;
        while !done(&self.received) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "live source \"{}\": still waiting for {what} after {limit:?}", self.name);
            match self.blocks.recv_timeout(left.min(Duration::from_millis(100))) {
                Ok(block) => self.received.push(block),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => panic!("live source \"{}\" ended by itself", self.name),
            }
        }
    }

    /// Keep receiving for `duration` (orchestration, not an assertion).
    pub fn receive_for(&mut self, duration: Duration) {
        let until = Instant::now() + duration;
        self.receive_until("time to pass", duration + Duration::from_secs(1), |_| Instant::now() >= until);
    }

    /// Run `work` (a command that takes a while) while receiving, so the source never waits.
    pub fn receive_while<T: Send>(&mut self, work: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|scope| {
            let worker = scope.spawn(work);
            self.receive_until("a command to finish", Duration::from_secs(120), |_| worker.is_finished());
            worker.join().expect("the command does not panic")
        })
    }

    /// Samples received so far, in order.
    pub fn samples(&self) -> Vec<f32> {
        self.received.iter().flat_map(|b| b.samples.iter().copied()).collect()
    }

    /// Set `stop` and wait for the thread; it must end by itself, without panicking.
    pub fn stop(mut self) -> Vec<PcmBlock> {
        self.stop.store(true, Ordering::Relaxed);
        // Drain so the source is never blocked on a full channel while it winds down.
        while !self.thread.is_finished() {
            if let Ok(block) = self.blocks.recv_timeout(Duration::from_millis(50)) {
                self.received.push(block);
            }
        }
        self.thread.join().expect("the source thread must not panic");
        self.received.extend(self.blocks.try_iter());
        self.received
    }
}

/// What the sources logged, from every thread of this process (one global subscriber).
pub fn logged(source: &str) -> Vec<String> {
    let text = String::from_utf8_lossy(&log_buffer().lock().unwrap_or_else(|e| e.into_inner())).into_owned();
    let needle = format!("live source \"{source}\"");
    text.lines().filter(|line| line.contains(&needle)).map(str::to_string).collect()
}

fn log_buffer() -> &'static Mutex<Vec<u8>> {
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || LogWriter(writer.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("nothing else in the tests sets a subscriber");
        buffer
    })
}

static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

/// Keeps a copy of every log line, and shows it in the (captured) test output too.
struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        eprint!("{}", String::from_utf8_lossy(bytes));
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A whole file decoded to mono, and its rate.
pub fn decode(path: &Path) -> (Vec<f32>, u32) {
    let mut decoder = Decoder::open(path).unwrap_or_else(|e| panic!("{e}"));
    let mut samples = Vec::new();
    while let Some(block) = decoder.next_mono().unwrap_or_else(|e| panic!("{e}")) {
        samples.extend(block);
    }
    (samples, decoder.info().sample_rate)
}

pub fn resample(samples: &[f32], from: u32, to: u32) -> Vec<f32> {
    let mut resampler = Resampler::new(from, to).expect("resampler");
    let mut out = Vec::new();
    resampler.push(samples, &mut out).expect("resample");
    resampler.finish(&mut out).expect("resample");
    out
}

pub fn rms(samples: &[f32]) -> f64 {
    (samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>() / samples.len().max(1) as f64).sqrt()
}

/// Normalised cross-correlation of two equally long signals: 1 for the same shape at any level.
pub fn ncc(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(&x, &y)| f64::from(x) * f64::from(y)).sum();
    let norm = (rms(a) * rms(b)) * a.len().min(b.len()) as f64;
    if norm == 0.0 {
        0.0
    } else {
        dot / norm
    }
}

/// The position in `recording` of `clip`'s first sample (negative when the recording missed the
/// clip's start), from the first sound and refined by cross-correlation of an excerpt from the
/// clip's middle; `None` when the recording is silent.
pub fn locate(recording: &[f32], clip: &[f32]) -> Option<isize> {
    let first_sound = |signal: &[f32]| signal.iter().position(|s| s.abs() > 1e-3);
    let guess = first_sound(recording)? as isize - first_sound(clip)? as isize;
    let middle = clip.len() / 4;
    // 8000 samples and 8000 lags keep this quick in a debug build.
    let excerpt = &clip[middle..clip.len().min(middle + 8000)];
    let around = guess + middle as isize;
    (around - 4000..around + 4000)
        .filter(|&at| at >= 0 && at as usize + excerpt.len() <= recording.len())
        .map(|at| (at, ncc(&recording[at as usize..at as usize + excerpt.len()], excerpt)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(at, _)| at - middle as isize)
}

/// The parts of `recording` and `clip` that overlap when the clip starts at `offset`.
pub fn overlap<'a>(recording: &'a [f32], clip: &'a [f32], offset: isize) -> (&'a [f32], &'a [f32]) {
    let skip = (-offset).max(0) as usize;
    let at = offset.max(0) as usize;
    let len = clip.len().saturating_sub(skip).min(recording.len().saturating_sub(at));
    (&recording[at..at + len], &clip[skip..skip + len])
}
