//! Cutting a mono stream into fixed-length segments (3 s by default).

use timbre_model_manifest::Padding;

/// One fixed-length piece of a track.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub index: usize,
    /// Start time in the track, seconds.
    pub start_s: f64,
    /// Always the configured segment length; the tail of the last segment is padded (zeros, or
    /// its own audio repeated).
    pub samples: Vec<f32>,
    /// How many of `samples` are audio rather than padding.
    pub valid: usize,
}

/// Accumulates samples and emits full segments. The final partial segment is kept, padded,
/// when it holds at least `min_tail` of a segment, or when the track is shorter than one
/// segment (so every non-empty track has at least one).
pub struct Segmenter {
    len: usize,
    sample_rate: u32,
    min_tail: f64,
    padding: Padding,
    buffer: Vec<f32>,
    next_index: usize,
}

impl Segmenter {
    pub fn new(len: usize, sample_rate: u32, min_tail: f64) -> Self {
        assert!(len > 0, "segment length must be positive");
        Segmenter {
            len,
            sample_rate,
            min_tail,
            padding: Padding::Zeros,
            buffer: Vec::with_capacity(len),
            next_index: 0,
        }
    }

    /// Complete the final partial segment as `padding` says (zeros by default).
    pub fn with_padding(self, padding: Padding) -> Self {
        Segmenter { padding, ..self }
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
        match self.padding {
            Padding::Zeros => samples.resize(self.len, 0.0),
            // The audio again from its start, as many times as it takes (musicnn's repeat-pad).
            Padding::Repeat => {
                while samples.len() < self.len {
                    let more = valid.min(self.len - samples.len());
                    samples.extend_from_within(..more);
                }
            }
        }
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
    fn repeat_padding_fills_a_partial_segment_with_its_own_audio() {
        let mut segmenter = Segmenter::new(10, 10, 0.5).with_padding(Padding::Repeat);
        let mut out = Vec::new();
        segmenter
            .push(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0], &mut out);
        out.extend(segmenter.finish());
        assert_eq!(out[1].samples, vec![11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 11.0, 12.0, 13.0, 14.0]);
        assert_eq!(out[1].valid, 6);
        let mut short = Segmenter::new(10, 10, 0.5).with_padding(Padding::Repeat);
        short.push(&[1.0, 2.0, 3.0], &mut out);
        let only = short.finish().expect("a short track keeps its segment");
        assert_eq!(only.samples, vec![1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 1.0]);
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
