//! Cutting a stream of mono blocks into (possibly overlapping) analysis windows.
//!
//! Independent of where the blocks come from: the live sources feed it, and so can the
//! gRPC `ClassifyStream` RPC. Windows keep the blocks' sample rate (resampling is the
//! consumer's job); a change of rate starts a fresh window.

/// One analysis window. Times are seconds of audio since the stream started (not wall clock),
/// so a gap in a live source (a reconnect) does not show up as a gap in time.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub start_s: f64,
    pub end_s: f64,
    pub samples: Vec<f32>,
    pub sample_rate: u32,
}

/// Emits a `window_s` window every `hop_s` once the first window is full.
/// `hop_s < window_s` overlaps windows; `hop_s > window_s` skips audio between them.
#[derive(Debug, Clone)]
pub struct Windower {
    window_s: f64,
    hop_s: f64,
    /// Rate of the run of blocks being windowed; 0 before the first block.
    rate: u32,
    /// Stream time at which the current run started (earlier runs had other rates).
    run_origin_s: f64,
    /// Frames pushed in the current run.
    run_frames: u64,
    /// Windows emitted (or reset past) in the current run; window k starts at frame round(k · hop).
    next_window: u64,
    /// Samples from frame `buffer_start` of the run onwards.
    buffer: Vec<f32>,
    buffer_start: u64,
}

impl Windower {
    /// Panics unless both lengths are positive and finite: they come from validated config.
    pub fn new(window_s: f64, hop_s: f64) -> Self {
        assert!(window_s.is_finite() && window_s > 0.0, "window length must be positive, got {window_s}");
        assert!(hop_s.is_finite() && hop_s > 0.0, "hop must be positive, got {hop_s}");
        Windower {
            window_s,
            hop_s,
            rate: 0,
            run_origin_s: 0.0,
            run_frames: 0,
            next_window: 0,
            buffer: Vec::new(),
            buffer_start: 0,
        }
    }

    /// Seconds of audio pushed so far, over every rate.
    pub fn elapsed_s(&self) -> f64 {
        self.run_origin_s + self.frames_to_s(self.run_frames)
    }

    /// Add a block; returns the windows it completed, in order.
    pub fn push(&mut self, samples: &[f32], sample_rate: u32) -> Vec<Window> {
        if sample_rate == 0 || samples.is_empty() {
            return Vec::new();
        }
        if sample_rate != self.rate {
            // The partial window at the old rate cannot be continued at the new one.
            self.start_run(sample_rate);
        }
        self.buffer.extend_from_slice(samples);
        self.run_frames += samples.len() as u64;
        let len = self.window_len();
        let mut out = Vec::new();
        loop {
            let start = self.window_start(self.next_window);
            if start + len > self.run_frames {
                break;
            }
            let from = (start - self.buffer_start) as usize;
            out.push(self.window(start, self.buffer[from..from + len as usize].to_vec()));
            self.next_window += 1;
            self.discard_before(self.window_start(self.next_window));
        }
        // With hop > window the next window may start beyond what we hold.
        self.discard_before(self.window_start(self.next_window));
        out
    }

    /// The trailing partial window, when it holds at least half a window (unpadded: its
    /// `end_s` says how long it is). Windowing then starts afresh at the current time.
    pub fn finish(&mut self) -> Option<Window> {
        if self.rate == 0 {
            return None;
        }
        let start = self.window_start(self.next_window);
        let tail = if start < self.run_frames && 2 * (self.run_frames - start) >= self.window_len() {
            let from = (start - self.buffer_start) as usize;
            Some(self.window(start, self.buffer[from..].to_vec()))
        } else {
            None
        };
        self.start_run(self.rate);
        tail
    }

    fn start_run(&mut self, rate: u32) {
        self.run_origin_s = self.elapsed_s();
        self.rate = rate;
        self.run_frames = 0;
        self.next_window = 0;
        self.buffer.clear();
        self.buffer_start = 0;
    }

    fn window_len(&self) -> u64 {
        ((self.window_s * self.rate as f64).round() as u64).max(1)
    }

    /// Computed from the index rather than accumulated, so a hop that is not a whole number
    /// of frames does not drift.
    fn window_start(&self, index: u64) -> u64 {
        (index as f64 * self.hop_s * self.rate as f64).round() as u64
    }

    fn discard_before(&mut self, frame: u64) {
        let drop = frame.saturating_sub(self.buffer_start).min(self.buffer.len() as u64);
        self.buffer.drain(..drop as usize);
        self.buffer_start += drop;
    }

    fn window(&self, start: u64, samples: Vec<f32>) -> Window {
        let end = start + samples.len() as u64;
        Window {
            start_s: self.run_origin_s + self.frames_to_s(start),
            end_s: self.run_origin_s + self.frames_to_s(end),
            samples,
            sample_rate: self.rate,
        }
    }

    fn frames_to_s(&self, frames: u64) -> f64 {
        if self.rate == 0 {
            0.0
        } else {
            frames as f64 / self.rate as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ramp, so every sample says where it came from.
    fn ramp(from: usize, len: usize) -> Vec<f32> {
        (from..from + len).map(|i| i as f32).collect()
    }

    fn feed(windower: &mut Windower, total: usize, block: usize, rate: u32) -> Vec<Window> {
        let signal = ramp(0, total);
        signal.chunks(block).flat_map(|chunk| windower.push(chunk, rate)).collect()
    }

    #[test]
    fn windows_have_exact_boundaries_whatever_the_block_size() {
        for block in [1, 3, 10, 64, 1000] {
            // 10 Hz, 1 s windows, no overlap: 35 samples give three windows and a 5-sample tail.
            let mut windower = Windower::new(1.0, 1.0);
            let windows = feed(&mut windower, 35, block, 10);
            assert_eq!(windows.len(), 3, "block {block}");
            for (k, window) in windows.iter().enumerate() {
                assert_eq!(window.samples, ramp(10 * k, 10), "block {block}, window {k}");
                assert_eq!((window.start_s, window.end_s), (k as f64, k as f64 + 1.0), "block {block}");
                assert_eq!(window.sample_rate, 10);
            }
            let tail = windower.finish().expect("half a window is kept");
            assert_eq!(tail.samples, ramp(30, 5));
            assert_eq!((tail.start_s, tail.end_s), (3.0, 3.5));
        }
    }

    #[test]
    fn nothing_is_emitted_before_the_first_window_is_full() {
        let mut windower = Windower::new(1.0, 0.5);
        assert!(windower.push(&ramp(0, 9), 10).is_empty());
        let windows = windower.push(&ramp(9, 1), 10);
        assert_eq!(windows.len(), 1);
        assert_eq!(windows[0].samples, ramp(0, 10));
    }

    #[test]
    fn a_hop_shorter_than_the_window_overlaps_windows() {
        // 1 s windows every 0.25 s at 8 Hz: starts at 0, 2, 4, … samples.
        let mut windower = Windower::new(1.0, 0.25);
        let windows = feed(&mut windower, 20, 7, 8);
        let starts: Vec<f64> = windows.iter().map(|w| w.start_s).collect();
        assert_eq!(starts, [0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5]);
        for window in &windows {
            let first = (window.start_s * 8.0) as usize;
            assert_eq!(window.samples, ramp(first, 8));
            assert_eq!(window.end_s - window.start_s, 1.0);
        }
    }

    #[test]
    fn a_hop_longer_than_the_window_skips_audio() {
        let mut windower = Windower::new(0.5, 1.0);
        let windows = feed(&mut windower, 40, 3, 10);
        let starts: Vec<f64> = windows.iter().map(|w| w.start_s).collect();
        assert_eq!(starts, [0.0, 1.0, 2.0, 3.0]);
        assert_eq!(windows[2].samples, ramp(20, 5));
    }

    #[test]
    fn a_fractional_hop_does_not_drift() {
        // hop 1/3 s at 10 Hz is 3.33 frames: starts are rounded per window, not accumulated.
        let mut windower = Windower::new(1.0, 1.0 / 3.0);
        let windows = feed(&mut windower, 10 + 300, 17, 10);
        assert_eq!(windows.len(), 91);
        let last = windows.last().expect("windows");
        assert_eq!(last.samples, ramp(300, 10));
        assert!((last.start_s - 30.0).abs() < 1e-9, "{}", last.start_s);
    }

    #[test]
    fn a_rate_change_drops_the_partial_window_and_keeps_time() {
        let mut windower = Windower::new(1.0, 1.0);
        // 1.5 s at 10 Hz: one window, half a window pending.
        assert_eq!(windower.push(&ramp(0, 15), 10).len(), 1);
        // Then 2 s at 20 Hz: the pending half is dropped, windows restart at 1.5 s.
        let windows = windower.push(&ramp(1000, 40), 20);
        assert_eq!(windows.len(), 2);
        assert_eq!(windows[0].sample_rate, 20);
        assert_eq!(windows[0].samples, ramp(1000, 20));
        assert_eq!((windows[0].start_s, windows[0].end_s), (1.5, 2.5));
        assert_eq!((windows[1].start_s, windows[1].end_s), (2.5, 3.5));
        assert_eq!(windower.elapsed_s(), 3.5);
    }

    #[test]
    fn finish_keeps_a_tail_of_at_least_half_a_window() {
        let mut short = Windower::new(1.0, 1.0);
        short.push(&ramp(0, 14), 10);
        assert!(short.finish().is_none(), "0.4 of a window is dropped");

        let mut half = Windower::new(1.0, 1.0);
        half.push(&ramp(0, 5), 10);
        let tail = half.finish().expect("exactly half a window is kept");
        assert_eq!(tail.samples, ramp(0, 5));
        assert!(half.finish().is_none(), "finish empties the windower");

        assert!(Windower::new(1.0, 1.0).finish().is_none());
    }

    #[test]
    fn finish_with_overlap_returns_the_window_after_the_last_full_one() {
        let mut windower = Windower::new(1.0, 0.5);
        // 16 samples at 10 Hz: full windows at 0 and 0.5 s; the next one (1.0 s) holds 6 of 10.
        assert_eq!(windower.push(&ramp(0, 16), 10).len(), 2);
        let tail = windower.finish().expect("tail");
        assert_eq!(tail.samples, ramp(10, 6));
        assert_eq!((tail.start_s, tail.end_s), (1.0, 1.6));
        // Windowing continues afterwards, aligned to where the stream now is.
        let next = windower.push(&ramp(16, 10), 10);
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].start_s, 1.6);
    }

    #[test]
    fn empty_blocks_and_zero_rates_are_ignored() {
        let mut windower = Windower::new(1.0, 1.0);
        assert!(windower.push(&[], 10).is_empty());
        assert!(windower.push(&[1.0; 20], 0).is_empty());
        assert_eq!(windower.elapsed_s(), 0.0);
    }
}
