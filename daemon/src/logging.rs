//! The daemon's log: whatever one bad input or a flood of them does, a log line repeated
//! at one place is rate-limited, so hostile input cannot fill the disk through the log.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing::callsite::Identifier;
use tracing::Metadata;

/// Lines one call site may write per window; beyond that they are counted, not written.
const BURST: u32 = 20;
const WINDOW: Duration = Duration::from_secs(10);

/// Counts lines per call site and lets through at most [`BURST`] per [`WINDOW`].
#[derive(Default)]
pub struct RateLimit {
    sites: Mutex<HashMap<Identifier, Site>>,
}

struct Site {
    window_start: Instant,
    written: u32,
    suppressed: u64,
}

impl RateLimit {
    /// Whether an event from `metadata`'s call site may be written now. When a window with
    /// suppressed lines ends, one line says how many were dropped and where from.
    pub fn allow(&self, metadata: &Metadata<'_>) -> bool {
        let now = Instant::now();
        let mut sites = self.sites.lock().unwrap_or_else(|p| p.into_inner());
        let site = sites.entry(metadata.callsite()).or_insert(Site { window_start: now, written: 0, suppressed: 0 });
        if now.duration_since(site.window_start) >= WINDOW {
            if site.suppressed > 0 {
                // Straight to stderr: an event from inside the filter would re-enter it.
                eprintln!(
                    "timbred: {} similar log lines from {} suppressed in {} s",
                    site.suppressed,
                    metadata.target(),
                    WINDOW.as_secs()
                );
            }
            *site = Site { window_start: now, written: 0, suppressed: 0 };
        }
        if site.written < BURST {
            site.written += 1;
            true
        } else {
            site.suppressed += 1;
            false
        }
    }
}

/// Log to stderr at `filter`'s levels, rate-limited per call site.
pub fn init(filter: tracing_subscriber::EnvFilter) {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::Layer as _;
    let limit = RateLimit::default();
    let output = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_filter(
        tracing_subscriber::filter::filter_fn(move |metadata| !metadata.is_event() || limit.allow(metadata)),
    );
    tracing_subscriber::registry().with(filter).with(output).init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_site_gets_a_burst_per_window_and_others_are_unaffected() {
        use tracing::subscriber::with_default;
        let limit = std::sync::Arc::new(RateLimit::default());
        let seen = std::sync::Arc::new(Mutex::new(Vec::<bool>::new()));
        let (l, s) = (limit.clone(), seen.clone());
        let layer = tracing_subscriber::filter::dynamic_filter_fn(move |m, _| {
            if m.is_event() {
                s.lock().expect("seen").push(l.allow(m));
            }
            true
        });
        use tracing_subscriber::layer::SubscriberExt as _;
        use tracing_subscriber::Layer as _;
        let subscriber = tracing_subscriber::registry().with(tracing_subscriber::fmt::layer().with_filter(layer));
        with_default(subscriber, || {
            for _ in 0..50 {
                tracing::warn!("the same line, again");
            }
            tracing::warn!("another line");
        });
        let seen = seen.lock().expect("seen");
        assert_eq!(seen.len(), 51);
        assert_eq!(seen.iter().take(50).filter(|&&allowed| allowed).count(), BURST as usize);
        assert!(seen[50], "another call site is not limited by the first");
    }
}
