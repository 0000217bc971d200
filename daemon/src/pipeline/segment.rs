//! Cutting a mono stream into fixed-length segments (3 s by default).

/// One fixed-length piece of a track.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub index: usize,
    /// Start time in the track, seconds.
    pub start_s: f64,
    /// Always the configured segment length; the tail of the last segment is zero-padded.
    pub samples: Vec<f32>,
    /// How many of `samples` are audio rather than padding.
    pub valid: usize,
}

/// Accumulates samples and emits full segments. The final partial segment is kept,
/// zero-padded, when it holds at least `min_tail` of a segment, or when the track is
/// shorter than one segment (so every non-empty track has at least one).
pub struct Segmenter {
    len: usize,
    sample_rate: u32,
    min_tail: f64,
    buffer: Vec<f32>,
    next_index: usize,
}

impl Segmenter {
    pub fn new(len: usize, sample_rate: u32, min_tail: f64) -> Self {
        assert!(len > 0, "segment length must be positive");
        Segmenter { len, sample_rate, min_tail, buffer: Vec::with_capacity(len), next_index: 0 }
    }

    /// Samples per segment.
    pub fn segment_len(&self) -> usize {
        self.len
    }

    pub fn push(&mut self, mut samples: &[f32], out: &mut Vec<Segment>) {
        while !samples.is_empty() {
            let take = (self.len - self.buffer.len()).min(samples.len());
            self.buffer.extend_from_slice(&samples[..take]);
            samples = &samples[take..];
            if self.buffer.len() == self.len {
                let full = std::mem::replace(&mut self.buffer, Vec::with_capacity(self.len));
                out.push(self.segment(full, self.len));
            }
        }
    }

    pub fn finish(&mut self) -> Option<Segment> {
        let valid = self.buffer.len();
        let keep = valid > 0 && (self.next_index == 0 || valid as f64 >= self.min_tail * self.len as f64);
        if !keep {
            return None;
        }
        let mut samples = std::mem::take(&mut self.buffer);
        samples.resize(self.len, 0.0);
        Some(self.segment(samples, valid))
    }

    fn segment(&mut self, samples: Vec<f32>, valid: usize) -> Segment {
        let index = self.next_index;
        self.next_index += 1;
        let start_s = (index * self.len) as f64 / self.sample_rate as f64;
        Segment { index, start_s, samples, valid }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(total: usize, block: usize) -> Vec<Segment> {
        let mut segmenter = Segmenter::new(10, 10, 0.5);
        let signal: Vec<f32> = (0..total).map(|i| i as f32).collect();
        let mut out = Vec::new();
        for chunk in signal.chunks(block) {
            segmenter.push(chunk, &mut out);
        }
        out.extend(segmenter.finish());
        out
    }

    #[test]
    fn segments_are_contiguous_whatever_the_block_size() {
        for block in [1, 3, 10, 64] {
            let segments = cut(35, block);
            assert_eq!(segments.len(), 4, "block {block}");
            assert_eq!(segments[1].samples[0], 10.0);
            assert_eq!(segments[3].valid, 5);
            assert_eq!(&segments[3].samples[5..], &[0.0; 5]);
            assert_eq!(segments[2].start_s, 2.0);
        }
    }

    #[test]
    fn a_short_tail_is_dropped_but_a_short_track_is_kept() {
        assert_eq!(cut(32, 7).len(), 3);
        let short = cut(4, 7);
        assert_eq!(short.len(), 1);
        assert_eq!(short[0].valid, 4);
        assert!(cut(0, 7).is_empty());
    }
}
