//! Any bytes as a `ClassifyRequest` and as a `RecommendRequest` (decoded with prost, as tonic
//! does), through the checks the gRPC handlers make before the engine sees them; the audio
//! they let through then goes down the front of the pipeline (decode, resample, segment).

#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use timbre_daemon::grpc::{classify_source, recommend_request, ClassifySource};
use timbre_daemon::pipeline::{AudioInput, SegmentOptions, SegmentStream};
use timbre_daemon::recommend::Example;
use timbre_proto::v1 as pb;

/// `server.max_audio_seconds` for the harness: small, so that both sides of the limit are reached.
const MAX_SECONDS: f64 = 1.0;

fn analyse(input: &AudioInput) {
    let stream = SegmentStream::open(input, 22050, SegmentOptions::default(), Some(MAX_SECONDS));
    let mut stream = match (input, stream) {
        (_, Ok(stream)) => stream,
        // Checked PCM is within the contract and the limit: the pipeline must take it.
        (AudioInput::Pcm { .. }, Err(error)) => panic!("validated PCM refused by the pipeline: {error}"),
        (_, Err(_)) => return,
    };
    loop {
        match stream.next_segment() {
            Ok(Some(segment)) => assert!(segment.samples.iter().all(|s| s.is_finite())),
            Ok(None) => break,
            Err(error) => {
                assert!(!matches!(input, AudioInput::Pcm { .. }), "validated PCM failed in the pipeline: {error}");
                break;
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = pb::ClassifyRequest::decode(data) {
        if let Ok(ClassifySource::Audio(input)) = classify_source(request.source, request.filename_hint, MAX_SECONDS) {
            analyse(&input);
        }
    }
    if let Ok(request) = pb::RecommendRequest::decode(data) {
        if let Ok(request) = recommend_request(request, MAX_SECONDS) {
            for example in request.positive.iter().chain(&request.negative) {
                if let Example::Audio(input) = example {
                    analyse(input);
                }
            }
        }
    }
});
