//! Any bytes as an uploaded file: probe, decode, mix to mono, resample to 22050 Hz and cut into
//! 3 s segments, as `Classify` does with an upload (length limit 60 s).

#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use timbre_daemon::pipeline::{AudioInput, SegmentOptions, SegmentStream};

fuzz_target!(|data: &[u8]| {
    let input = AudioInput::Encoded { name: "upload".into(), bytes: Arc::from(data) };
    let Ok(mut stream) = SegmentStream::open(&input, 22050, SegmentOptions::default(), Some(60.0)) else { return };
    let len = stream.segment_len();
    let mut expected_index = 0;
    while let Ok(Some(segment)) = stream.next_segment() {
        assert_eq!(segment.index, expected_index);
        assert_eq!(segment.samples.len(), len);
        assert!(segment.valid <= len);
        // Decoded samples are checked; the resampler must not make them non-finite.
        assert!(segment.samples.iter().all(|s| s.is_finite()), "segment {} has a non-finite sample", segment.index);
        expected_index += 1;
    }
});
