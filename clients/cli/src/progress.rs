//! Scan progress on stderr: a live bar on a terminal, otherwise a plain line at most once
//! a second (logs and CI stay readable), or nothing.

use std::io::Write;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use timbre_proto::v1 as pb;

use crate::text;

/// How often a plain progress line may be printed.
pub const LINE_EVERY: Duration = Duration::from_secs(1);

/// Lets an event through at most once per `every`; the first one always.
#[derive(Debug)]
pub struct Throttle {
    every: Duration,
    last: Option<Instant>,
}

impl Throttle {
    pub fn new(every: Duration) -> Self {
        Throttle { every, last: None }
    }

    /// Whether an event at `now` may be shown; if so, it counts as the last one shown.
    pub fn ready(&mut self, now: Instant) -> bool {
        match self.last {
            Some(last) if now.saturating_duration_since(last) < self.every => false,
            _ => {
                self.last = Some(now);
                true
            }
        }
    }
}

/// Where scan progress goes.
pub enum ScanDisplay {
    /// Only the summary, at the end.
    Quiet,
    /// A progress bar, redrawn in place on the terminal.
    Bar(ProgressBar),
    /// `scan: 40/120 files, ...` lines.
    Lines(Throttle),
}

impl ScanDisplay {
    /// `show`: whether progress was asked for; `terminal`: whether stderr is one.
    pub fn new(show: bool, terminal: bool) -> Self {
        match (show, terminal) {
            (false, _) => ScanDisplay::Quiet,
            (true, true) => ScanDisplay::Bar(bar()),
            (true, false) => ScanDisplay::Lines(Throttle::new(LINE_EVERY)),
        }
    }

    /// Shows `progress` (the bar always, a line when its second has come). The final message
    /// is left to the summary.
    pub fn update(&mut self, progress: &pb::ScanProgress, err: &mut dyn Write, now: Instant) {
        match self {
            ScanDisplay::Quiet => {}
            ScanDisplay::Bar(bar) => {
                bar.set_length(progress.total);
                bar.set_position(progress.done);
                bar.set_message(bar_message(progress));
            }
            ScanDisplay::Lines(throttle) => {
                if !progress.finished && throttle.ready(now) {
                    let _ = writeln!(err, "{}", text::scan_line(progress));
                }
            }
        }
    }

    /// Removes the bar, so the summary and any error start on a clean line.
    pub fn finish(&mut self) {
        if let ScanDisplay::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

fn bar() -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    // The template is a constant; should it ever not parse, the default style still works.
    if let Ok(style) = ProgressStyle::with_template("{spinner} {elapsed:>4} [{bar:30}] {pos}/{len} {wide_msg}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// What follows the bar: `1 failed, 12.3 files/s, ETA 6s, /m/now.flac`.
pub fn bar_message(progress: &pb::ScanProgress) -> String {
    let mut message =
        format!("{} failed, {:.1} files/s, ETA {}", progress.failed, progress.rate_per_s, text::wait(progress.eta_s));
    if !progress.current_path.is_empty() {
        message.push_str(", ");
        message.push_str(&progress.current_path);
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(done: u64, finished: bool) -> pb::ScanProgress {
        pb::ScanProgress { done, total: 10, finished, ..Default::default() }
    }

    #[test]
    fn throttle_lets_one_event_through_per_period() {
        let start = Instant::now();
        let mut throttle = Throttle::new(Duration::from_secs(1));
        assert!(throttle.ready(start), "the first event is shown");
        assert!(!throttle.ready(start + Duration::from_millis(500)));
        assert!(!throttle.ready(start + Duration::from_millis(999)));
        assert!(throttle.ready(start + Duration::from_millis(1000)));
        assert!(!throttle.ready(start + Duration::from_millis(1500)), "counted from the last one shown");
        assert!(throttle.ready(start + Duration::from_millis(2100)));
    }

    #[test]
    fn plain_lines_at_most_once_a_second_and_not_for_the_final_message() {
        let start = Instant::now();
        let mut display = ScanDisplay::new(true, false);
        let mut err = Vec::new();
        for (i, ms) in [0u64, 300, 600, 900, 1200, 1500, 2300].into_iter().enumerate() {
            display.update(&progress(i as u64, false), &mut err, start + Duration::from_millis(ms));
        }
        display.update(&progress(10, true), &mut err, start + Duration::from_secs(9));
        let text = String::from_utf8(err).expect("utf-8");
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("scan: 0/10 files"), "{text}");
        assert!(lines[1].starts_with("scan: 4/10 files"), "{text}");
        assert!(lines[2].starts_with("scan: 6/10 files"), "{text}");
    }

    #[test]
    fn quiet_without_wait() {
        let mut display = ScanDisplay::new(false, true);
        assert!(matches!(display, ScanDisplay::Quiet));
        let mut err = Vec::new();
        display.update(&progress(1, false), &mut err, Instant::now());
        assert!(err.is_empty());
    }

    #[test]
    fn bar_message_has_failures_rate_eta_and_current_file() {
        let p = pb::ScanProgress {
            failed: 2,
            rate_per_s: 3.26,
            eta_s: 75.0,
            current_path: "/m/a.flac".into(),
            ..Default::default()
        };
        assert_eq!(bar_message(&p), "2 failed, 3.3 files/s, ETA 1m15s, /m/a.flac");
    }
}
