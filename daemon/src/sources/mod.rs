//! Live sources: a capture device ([`capture`], through cpal) or a network stream
//! ([`stream`], HTTP/Icecast), each turned into a stream of mono [`PcmBlock`]s that outlives
//! the device or server going away. [`window`] cuts any block stream into analysis windows.
//!
//! Each source runs on its own std thread ([`spawn`]): cpal callbacks and blocking HTTP
//! reads are not async, and a stuck device must not hold up the runtime. A consumer feeds the
//! blocks to [`LiveSourceConfig::windower`] and analyses each [`Window`] it returns.

pub mod capture;
pub mod stream;
pub mod window;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use window::{Window, Windower};

/// Mono samples at the source's own rate, in the order they were heard.
#[derive(Debug, Clone, PartialEq)]
pub struct PcmBlock {
    pub samples: Vec<f32>,
    pub sample_rate: u32,
}

/// One `[[live]]` entry of the daemon config:
///
/// ```toml
/// [[live]]
/// name = "turntable"
/// kind = "capture"
/// device = "default"   # optional: the default input device
///
/// [[live]]
/// name = "radio"
/// kind = "stream"
/// url = "http://127.0.0.1:8000/stream.mp3"
/// window_s = 3.0       # optional, the models' segment length
/// hop_s = 1.5          # optional, defaults to window_s
/// ```
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(try_from = "RawLiveSourceConfig")]
pub struct LiveSourceConfig {
    /// Names the source in logs, errors and results.
    pub name: String,
    pub kind: LiveSourceKind,
    /// Length of an analysis window, seconds.
    pub window_s: f64,
    /// Time between the starts of consecutive windows, seconds; `None` means `window_s`.
    pub hop_s: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LiveSourceKind {
    /// An input device; `None` is the system's default input.
    Capture { device: Option<String> },
    /// An `http://` stream (Icecast or any server sending MP3, Ogg Vorbis or AAC/ADTS).
    Stream { url: String },
}

/// The models' segment length.
pub const DEFAULT_WINDOW_S: f64 = 3.0;
/// Longer windows are a config mistake, and each one is held in memory.
pub const MAX_WINDOW_S: f64 = 600.0;
/// Shorter windows (or hops) hold too little music to classify, and a tiny one turns each
/// block into thousands of windows: 1e-9 s asked for gigabytes.
pub const MIN_WINDOW_S: f64 = 0.5;

/// Check a window length or hop (`what` names it in the message).
pub fn check_window_s(what: &str, value: f64) -> Result<(), String> {
    if (MIN_WINDOW_S..=MAX_WINDOW_S).contains(&value) {
        Ok(())
    } else {
        Err(format!("{what} must be between {MIN_WINDOW_S} and {MAX_WINDOW_S} s, not {value}"))
    }
}

impl LiveSourceConfig {
    /// A capture source with the default window; `device` `None` is the default input.
    pub fn capture(name: &str, device: Option<&str>) -> Self {
        Self::with_kind(name, LiveSourceKind::Capture { device: device.map(str::to_string) })
    }

    /// A stream source with the default window.
    pub fn stream(name: &str, url: &str) -> Self {
        Self::with_kind(name, LiveSourceKind::Stream { url: url.to_string() })
    }

    fn with_kind(name: &str, kind: LiveSourceKind) -> Self {
        LiveSourceConfig { name: name.to_string(), kind, window_s: DEFAULT_WINDOW_S, hop_s: None }
    }

    pub fn hop_s(&self) -> f64 {
        self.hop_s.unwrap_or(self.window_s)
    }

    /// A windower for this source's blocks.
    pub fn windower(&self) -> Windower {
        Windower::new(self.window_s, self.hop_s())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("live source \"{name}\": {reason}")]
pub struct LiveSourceConfigError {
    pub name: String,
    pub reason: String,
}

/// What the TOML says, before the fields that belong to one kind are checked against it.
/// (serde's `flatten` would lose `deny_unknown_fields`, so the kind is resolved by hand.)
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLiveSourceConfig {
    name: String,
    kind: RawKind,
    device: Option<String>,
    url: Option<String>,
    window_s: Option<f64>,
    hop_s: Option<f64>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "lowercase")]
enum RawKind {
    Capture,
    Stream,
}

impl TryFrom<RawLiveSourceConfig> for LiveSourceConfig {
    type Error = LiveSourceConfigError;

    fn try_from(raw: RawLiveSourceConfig) -> Result<Self, Self::Error> {
        let fail = |reason: String| LiveSourceConfigError { name: raw.name.clone(), reason };
        if raw.name.trim().is_empty() {
            return Err(fail("the name must not be empty".into()));
        }
        let kind = match raw.kind {
            RawKind::Capture => {
                if raw.url.is_some() {
                    return Err(fail("`url` is for kind = \"stream\"; a capture source takes `device`".into()));
                }
                // "default" is also what ALSA calls the default device: both mean the same.
                LiveSourceKind::Capture { device: raw.device.clone().filter(|d| d != "default") }
            }
            RawKind::Stream => {
                if raw.device.is_some() {
                    return Err(fail("`device` is for kind = \"capture\"; a stream source takes `url`".into()));
                }
                let url = raw.url.clone().ok_or_else(|| fail("kind = \"stream\" needs a `url`".into()))?;
                stream::check_url(&url).map_err(fail)?;
                LiveSourceKind::Stream { url }
            }
        };
        let window_s = raw.window_s.unwrap_or(DEFAULT_WINDOW_S);
        for (key, value) in [("`window_s`", Some(window_s)), ("`hop_s`", raw.hop_s)] {
            if let Some(value) = value {
                check_window_s(key, value).map_err(fail)?;
            }
        }
        Ok(LiveSourceConfig { name: raw.name, kind, window_s, hop_s: raw.hop_s })
    }
}

/// Why one run of a source ended; the source is retried after each.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("there is no default input device")]
    NoDefaultInput,
    #[error("there is no input device named \"{name}\"; the input devices are: {available}")]
    NoSuchDevice { name: String, available: String },
    #[error("capture device \"{device}\": {reason}")]
    Device { device: String, reason: String },
    #[error("capture device \"{device}\" delivered no audio for {}s (device lost?)", seconds.as_secs())]
    Stalled { device: String, seconds: Duration },
    #[error("{url}: {reason}")]
    Http { url: String, reason: String },
    #[error(transparent)]
    Decode(#[from] crate::pipeline::DecodeError),
    #[error("{url}: the server ended the stream")]
    Ended { url: String },
}

/// Run `config`'s source on its own thread until `stop` is set or `blocks`' receiver is
/// dropped. When the source fails or disappears it logs a warning naming the source and
/// the cause, then retries with exponential back-off (see [`Backoff`]).
///
/// `stop` is the prompt way to end it: a dropped receiver is only noticed at the next block,
/// and a source that is waiting to be retried sends none.
pub fn spawn(config: LiveSourceConfig, blocks: SyncSender<PcmBlock>, stop: Arc<AtomicBool>) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name(format!("live-{}", config.name))
        .spawn(move || supervise(&config, &Output::new(blocks, stop)))
        .expect("the OS refused to start a thread for a live source")
}

fn supervise(config: &LiveSourceConfig, out: &Output) {
    let name = &config.name;
    let mut backoff = Backoff::default();
    while !out.stopped() {
        out.new_run();
        let result = match &config.kind {
            LiveSourceKind::Capture { device } => capture::run(name, device.as_deref(), out),
            LiveSourceKind::Stream { url } => stream::run(name, url, out),
        };
        let Err(error) = result else { break };
        if out.stopped() {
            break;
        }
        let delay = backoff.failed(out.healthy_for());
        tracing::warn!(source = %name, "live source \"{name}\": {error}; retrying in {} s", delay.as_secs());
        out.sleep(delay);
    }
    tracing::info!(source = %name, "live source \"{name}\" stopped");
}

/// Retry delays: 1 s doubling to 30 s, back to 1 s after a run that delivered audio for
/// [`Backoff::HEALTHY`] (so a flaky source that works for hours is retried quickly again).
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Backoff {
    pub const FIRST: Duration = Duration::from_secs(1);
    pub const MAX: Duration = Duration::from_secs(30);
    pub const HEALTHY: Duration = Duration::from_secs(30);

    /// The delay before the next attempt, after a run that delivered audio for `healthy_for`.
    pub fn failed(&mut self, healthy_for: Duration) -> Duration {
        if healthy_for >= Self::HEALTHY {
            self.next = Self::FIRST;
        }
        let delay = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        delay
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: Self::FIRST }
    }
}

/// The sending end, shared by the sources: forwards blocks without ever ignoring `stop`.
pub(crate) struct Output {
    blocks: SyncSender<PcmBlock>,
    stop: Arc<AtomicBool>,
    receiver_gone: std::cell::Cell<bool>,
    first_block: std::cell::Cell<Option<Instant>>,
}

/// How often a waiting source looks at `stop`.
const POLL: Duration = Duration::from_millis(50);

impl Output {
    fn new(blocks: SyncSender<PcmBlock>, stop: Arc<AtomicBool>) -> Self {
        Output { blocks, stop, receiver_gone: Default::default(), first_block: Default::default() }
    }

    /// True once the source should end: `stop` is set or the receiver is gone.
    pub(crate) fn stopped(&self) -> bool {
        self.receiver_gone.get() || self.stop.load(Ordering::Relaxed)
    }

    /// Forward a block, waiting while the consumer is behind; false when the source should end.
    pub(crate) fn send(&self, mut block: PcmBlock) -> bool {
        if block.samples.is_empty() {
            return !self.stopped();
        }
        if self.first_block.get().is_none() {
            self.first_block.set(Some(Instant::now()));
        }
        loop {
            if self.stopped() {
                return false;
            }
            match self.blocks.try_send(block) {
                Ok(()) => return true,
                Err(TrySendError::Disconnected(_)) => {
                    self.receiver_gone.set(true);
                    return false;
                }
                Err(TrySendError::Full(returned)) => {
                    block = returned;
                    std::thread::sleep(POLL);
                }
            }
        }
    }

    /// Sleep for `duration`, waking early when the source should end.
    pub(crate) fn sleep(&self, duration: Duration) {
        let until = Instant::now() + duration;
        while !self.stopped() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            std::thread::sleep(left.min(POLL));
        }
    }

    fn new_run(&self) {
        self.first_block.set(None);
    }

    /// How long the current run has been delivering audio.
    fn healthy_for(&self) -> Duration {
        self.first_block.get().map(|t| t.elapsed()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<LiveSourceConfig, String> {
        #[derive(serde::Deserialize)]
        struct File {
            live: Vec<LiveSourceConfig>,
        }
        toml::from_str::<File>(toml_text).map(|mut f| f.live.remove(0)).map_err(|e| e.to_string())
    }

    #[test]
    fn both_kinds_parse_with_their_defaults() {
        let capture =
            parse("[[live]]\nname = \"turntable\"\nkind = \"capture\"\ndevice = \"default\"\n").expect("capture");
        assert_eq!(capture, LiveSourceConfig::capture("turntable", None));
        assert_eq!((capture.window_s, capture.hop_s()), (3.0, 3.0));

        let stream = parse(
            "[[live]]\nname = \"radio\"\nkind = \"stream\"\nurl = \"http://127.0.0.1:8000/stream.mp3\"\n\
             window_s = 2.0\nhop_s = 0.5\n",
        )
        .expect("stream");
        assert_eq!(stream.kind, LiveSourceKind::Stream { url: "http://127.0.0.1:8000/stream.mp3".into() });
        assert_eq!((stream.window_s, stream.hop_s()), (2.0, 0.5));

        // A whole number of seconds is written as a TOML integer.
        let whole = parse("[[live]]\nname = \"r\"\nkind = \"capture\"\nwindow_s = 2\nhop_s = 1\n").expect("integers");
        assert_eq!((whole.window_s, whole.hop_s()), (2.0, 1.0));

        let named = parse("[[live]]\nname = \"mic\"\nkind = \"capture\"\ndevice = \"pulse\"\n").expect("named");
        assert_eq!(named.kind, LiveSourceKind::Capture { device: Some("pulse".into()) });
    }

    #[test]
    fn mistakes_are_named_with_the_source() {
        let cases = [
            ("name = \"a\"\nkind = \"capture\"\ndevise = \"x\"", "unknown field `devise`"),
            ("name = \"a\"\nkind = \"tape\"", "unknown variant `tape`"),
            ("name = \"radio\"\nkind = \"stream\"", "live source \"radio\": kind = \"stream\" needs a `url`"),
            ("name = \"radio\"\nkind = \"capture\"\nurl = \"http://x/\"", "`url` is for kind = \"stream\""),
            (
                "name = \"r\"\nkind = \"stream\"\nurl = \"http://x/\"\ndevice = \"d\"",
                "`device` is for kind = \"capture\"",
            ),
            ("name = \"r\"\nkind = \"stream\"\nurl = \"ftp://x/a.mp3\"", "live source \"r\": ftp://x/a.mp3"),
            ("name = \"r\"\nkind = \"stream\"\nurl = \"https://x/a.mp3\"", "no TLS"),
            ("name = \"m\"\nkind = \"capture\"\nwindow_s = 0.0", "`window_s` must be between 0.5 and 600 s"),
            ("name = \"m\"\nkind = \"capture\"\nhop_s = -1.0", "`hop_s` must be between 0.5 and 600 s"),
            ("name = \"m\"\nkind = \"capture\"\nhop_s = 1e-9", "`hop_s` must be between 0.5 and 600 s"),
            ("name = \"m\"\nkind = \"capture\"\nwindow_s = nan", "`window_s` must be between 0.5 and 600 s"),
            ("name = \" \"\nkind = \"capture\"", "the name must not be empty"),
        ];
        for (body, expected) in cases {
            let error = parse(&format!("[[live]]\n{body}\n")).expect_err(body);
            assert!(error.contains(expected), "{body}: {error}");
        }
    }

    #[test]
    fn backoff_doubles_to_thirty_seconds_and_resets_after_a_healthy_run() {
        let mut backoff = Backoff::default();
        let delays: Vec<u64> = (0..7).map(|_| backoff.failed(Duration::from_secs(2)).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(backoff.failed(Backoff::HEALTHY).as_secs(), 1);
        assert_eq!(backoff.failed(Duration::ZERO).as_secs(), 2);
    }

    #[test]
    fn output_stops_when_the_receiver_is_gone_or_stop_is_set() {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let stop = Arc::new(AtomicBool::new(false));
        let out = Output::new(tx, stop.clone());
        let block = || PcmBlock { samples: vec![0.5; 4], sample_rate: 8000 };
        assert!(out.send(block()));
        assert_eq!(rx.recv().expect("block").samples, vec![0.5; 4]);
        // A full channel and stop set: send gives up instead of waiting for the consumer.
        assert!(out.send(block()));
        stop.store(true, Ordering::Relaxed);
        assert!(!out.send(block()));
        stop.store(false, Ordering::Relaxed);
        drop(rx);
        assert!(!out.send(block()));
        assert!(out.stopped());
    }
}
