//! Audio and requests built to hurt: absurd sample rates, tiny stream windows, NaN samples,
//! headers that promise hours. Each is refused with INVALID_ARGUMENT naming the input and its
//! cause, never a crash, a panic or an INTERNAL error, and the daemon keeps serving.

use std::path::Path;

use timbre_proto::v1 as pb;

use crate::library::wait_for_tracks;
use crate::util::{eventually, runtime, write_tone_wav, Daemon};

/// Rates the daemon must refuse. 100000007 Hz aborted the daemon on an allocation of 1.6 GB,
/// 4294967295 Hz drove it to 21 GiB, 0 Hz panicked inside symphonia.
const HOSTILE_RATES: [u32; 5] = [0, 999, 10_000_019, 100_000_007, u32::MAX];

const FAST_WATCH: &[(&str, &str)] = &[("TIMBRE_LIBRARY__DEBOUNCE_MS", "300"), ("TIMBRE_LIBRARY__SETTLE_MS", "300")];

/// A WAV file: 16-bit integer samples, or 32-bit float ones (which can hold NaN).
/// `promised_frames` overrides the frame count the header claims.
fn wav(rate: u32, samples: &[f32], float: bool, promised_frames: Option<u32>) -> Vec<u8> {
    let (format, width): (u16, u16) = if float { (3, 4) } else { (1, 2) };
    let data: Vec<u8> = if float {
        samples.iter().flat_map(|s| s.to_le_bytes()).collect()
    } else {
        samples.iter().flat_map(|s| ((s.clamp(-1.0, 1.0) * 32767.0) as i16).to_le_bytes()).collect()
    };
    let data_len = promised_frames.map_or(data.len() as u32, |frames| frames * width as u32);
    let mut bytes = Vec::with_capacity(44 + data.len());
    bytes.extend_from_slice(b"RIFF");
    bytes.extend_from_slice(&(36u32.wrapping_add(data_len)).to_le_bytes());
    bytes.extend_from_slice(b"WAVEfmt ");
    bytes.extend_from_slice(&16u32.to_le_bytes());
    bytes.extend_from_slice(&format.to_le_bytes());
    bytes.extend_from_slice(&1u16.to_le_bytes());
    bytes.extend_from_slice(&rate.to_le_bytes());
    bytes.extend_from_slice(&rate.wrapping_mul(width as u32).to_le_bytes());
    bytes.extend_from_slice(&width.to_le_bytes());
    bytes.extend_from_slice(&(width * 8).to_le_bytes());
    bytes.extend_from_slice(b"data");
    bytes.extend_from_slice(&data_len.to_le_bytes());
    bytes.extend_from_slice(&data);
    bytes
}

fn tone(n: usize) -> Vec<f32> {
    (0..n).map(|i| 0.3 * (i as f32 * 0.05).sin()).collect()
}

fn upload(bytes: Vec<u8>, name: &str) -> pb::ClassifyRequest {
    pb::ClassifyRequest {
        source: Some(pb::classify_request::Source::Encoded(bytes)),
        filename_hint: name.into(),
        ..Default::default()
    }
}

fn pcm(samples: Vec<f32>, sample_rate: u32) -> pb::ClassifyRequest {
    pb::ClassifyRequest {
        source: Some(pb::classify_request::Source::Pcm(pb::Pcm { samples, sample_rate, channels: 1 })),
        ..Default::default()
    }
}

fn assert_refused(status: &tonic::Status, expected: &[&str], what: &str) {
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{what}: {status:?}");
    for part in expected {
        assert!(status.message().contains(part), "{what}: expected {part:?} in {:?}", status.message());
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

#[test]
fn hostile_sample_rates_are_refused_from_pcm_uploads_and_a_watched_root_across_restarts() {
    let root = tempfile::tempdir().expect("tempdir");
    let data = tempfile::tempdir().expect("tempdir");
    write_tone_wav(&root.path().join("good.wav"), 440.0, 4.0);
    for rate in HOSTILE_RATES {
        std::fs::write(root.path().join(format!("rate-{rate}.wav")), wav(rate, &tone(44_100), false, None))
            .expect("write");
    }
    let args = ["--root", path_str(root.path()), "--data-dir", path_str(data.path())];
    let expected_tracks = HOSTILE_RATES.len() + 1;
    // Twice: the first start scans the files, the second must come up and serve with them
    // still there (a hostile file in a root used to abort every start).
    for start in ["first start", "restart"] {
        let daemon = Daemon::start_with(&args, FAST_WATCH);
        runtime().block_on(async {
            let mut client = daemon.client().await;
            let tracks = wait_for_tracks(&mut client, expected_tracks).await;
            for rate in HOSTILE_RATES {
                let name = format!("rate-{rate}.wav");
                let track = tracks.iter().find(|t| t.path.ends_with(&name)).expect("listed");
                assert_eq!(track.state, pb::AnalysisState::Failed as i32, "{start}: {track:?}");
                assert!(
                    track.error.contains(&name) && track.error.contains(&format!("sample rate {rate} Hz is outside")),
                    "{start}: {}",
                    track.error
                );
            }
            let good = tracks.iter().find(|t| t.path.ends_with("good.wav")).expect("listed");
            assert_eq!(good.state, pb::AnalysisState::Analysed as i32, "{start}: {good:?}");

            for rate in HOSTILE_RATES {
                // 66150 samples (265 KB) at 4294967295 Hz drove the daemon to 21 GiB.
                let status = client.classify(pcm(tone(66_150), rate)).await.expect_err("hostile PCM");
                assert_refused(&status, &["pcm.sample_rate", &format!("sample rate {rate} Hz")], "PCM");
                let name = format!("upload-{rate}.wav");
                let status =
                    client.classify(upload(wav(rate, &tone(44_100), false, None), &name)).await.expect_err("upload");
                assert_refused(&status, &[&name, &format!("sample rate {rate} Hz")], "upload");
            }
            let ok = client.classify(pcm(tone(66_150), 44_100)).await.expect("still serving").into_inner();
            assert_eq!(ok.predictions.len(), crate::util::SHIPPED_MODELS);
        });
        assert!(daemon.stop().success(), "{start}: a clean stop");
    }
}

#[test]
fn nan_infinite_and_huge_samples_and_a_zero_rate_header_are_invalid_argument_not_a_panic() {
    let daemon = Daemon::start();
    runtime().block_on(async {
        let mut client = daemon.client().await;
        for (bad, shown) in [(f32::NAN, "NaN"), (f32::INFINITY, "inf"), (f32::NEG_INFINITY, "-inf"), (1e30, "1000000")]
        {
            let mut samples = tone(22_050);
            samples[7] = bad;
            let status = client.classify(pcm(samples.clone(), 22_050)).await.expect_err("bad PCM");
            assert_refused(&status, &["pcm.samples", "sample 7 is", shown], "PCM");
            let status =
                client.classify(upload(wav(22_050, &samples, true, None), "float.wav")).await.expect_err("bad upload");
            assert_refused(&status, &["float.wav", "sample 7 is", shown], "float WAV");
        }
        let status = client.classify(upload(wav(0, &tone(22_050), false, None), "zero.wav")).await.expect_err("0 Hz");
        assert_refused(&status, &["zero.wav", "sample rate 0 Hz"], "0 Hz WAV");
        let ok = client.classify(pcm(tone(66_150), 22_050)).await.expect("still serving").into_inner();
        assert_eq!(ok.predictions.len(), crate::util::SHIPPED_MODELS);
        // 100 samples at 192 kHz once came out of the resampler as nothing: zero segments, and
        // an OK answer with every label at 0. Short audio is padded to one segment instead.
        let short = client.classify(pcm(tone(100), 192_000)).await.expect("short audio").into_inner();
        for prediction in &short.predictions {
            let total: f32 = prediction.labels.iter().map(|l| l.probability).sum();
            assert!(total > 0.99, "{}: probabilities sum to {total}", prediction.model);
        }
    });
    let log = daemon.log();
    assert!(!log.contains("panicked"), "nothing panicked:\n{log}");
}

#[test]
fn classify_stream_refuses_windows_below_half_a_second() {
    let daemon = Daemon::start();
    runtime().block_on(async {
        let mut client = daemon.client().await;
        // 1e-9 s aborted the daemon on a 6 GB allocation; 0.001 s took 45 s of CPU on 5 s of audio.
        for window_s in [1e-9, 0.001, 0.49, -1.0, f64::NAN, 601.0] {
            let chunks = vec![pb::AudioChunk {
                pcm: Some(pb::Pcm { samples: tone(22_050 * 5), sample_rate: 22_050, channels: 1 }),
                config: Some(pb::ClassifyStreamConfig { window_s, ..Default::default() }),
            }];
            let mut responses = client.classify_stream(tokio_stream::iter(chunks)).await.expect("call").into_inner();
            let status = responses.message().await.expect_err("refused");
            assert_refused(&status, &["config.window_s", "between 0.5 and 600"], &format!("window_s {window_s}"));
        }
        let chunks = vec![pb::AudioChunk {
            pcm: Some(pb::Pcm { samples: tone(22_050 * 2), sample_rate: 22_050, channels: 1 }),
            config: Some(pb::ClassifyStreamConfig { window_s: 0.5, ..Default::default() }),
        }];
        let mut responses = client.classify_stream(tokio_stream::iter(chunks)).await.expect("call").into_inner();
        let mut windows = 0;
        while responses.message().await.expect("half-second windows").is_some() {
            windows += 1;
        }
        assert_eq!(windows, 4, "2 s of audio in 0.5 s windows");
    });
}

#[test]
fn the_length_limit_holds_before_decoding_for_uploads_and_recommend_examples() {
    let daemon = Daemon::start_with(&[], &[("TIMBRE_SERVER__MAX_AUDIO_SECONDS", "60")]);
    runtime().block_on(async {
        let mut client = daemon.client().await;
        // One second of audio under a header that promises three hours: refused from the
        // header (a decode would have said "truncated" after reading it all).
        let three_hours = 3 * 3600 * 22_050;
        let liar = wav(22_050, &tone(22_050), false, Some(three_hours));
        let status = client.classify(upload(liar.clone(), "long.wav")).await.expect_err("over the limit");
        assert_refused(&status, &["long.wav", "longer than the limit of 60 s"], "Classify upload");

        let example = pb::TrackRef {
            track: Some(pb::track_ref::Track::Audio(pb::AudioInput {
                source: Some(pb::audio_input::Source::Encoded(liar)),
                filename_hint: "example.wav".into(),
            })),
        };
        let request = pb::RecommendRequest { positive: vec![example], limit: 3, ..Default::default() };
        let status = client.recommend(request).await.expect_err("over the limit");
        assert_refused(&status, &["example.wav", "longer than the limit of 60 s"], "Recommend example");
    });
}

#[test]
fn a_normal_classify_is_answered_while_abandoned_long_uploads_are_cancelled() {
    // One worker: without cancellation it would analyse every abandoned upload, whole, first.
    let daemon = Daemon::start_with(&["--workers", "1"], &[("TIMBRE_LOG", "warn,timbre_daemon::workers=debug")]);
    runtime().block_on(async {
        // 30 minutes (the default limit) at 1 kHz: 3.6 MB arrive quickly, and every 3 s of it
        // is a segment to analyse.
        let long = wav(1_000, &vec![0.0; 1_000 * 1_800], false, None);
        let mut abandoned = Vec::new();
        for i in 0..3 {
            let mut client = daemon.client().await;
            let mut request = tonic::Request::new(upload(long.clone(), &format!("long-{i}.wav")));
            request.set_timeout(std::time::Duration::from_secs(1));
            abandoned.push(tokio::spawn(async move { client.classify(request).await }));
        }
        for call in abandoned {
            let status = call.await.expect("task").expect_err("the deadline passes first");
            assert!(matches!(status.code(), tonic::Code::Cancelled | tonic::Code::DeadlineExceeded), "{status:?}");
        }
        let mut client = daemon.client().await;
        let mut request = tonic::Request::new(pcm(tone(66_150), 22_050));
        // Generous: only a daemon still busy with the abandoned uploads would miss it.
        request.set_timeout(std::time::Duration::from_secs(60));
        assert_eq!(
            client.classify(request).await.expect("answered").into_inner().predictions.len(),
            crate::util::SHIPPED_MODELS
        );
        // Uploads whose deadline passed while they were still arriving never reach a worker
        // (on a busy machine, some may not): at least the one analysed first was cancelled.
        eventually("a cancelled analysis in the log", 60, async || {
            daemon.log().contains("the analysis was cancelled (its caller went away)").then_some(())
        })
        .await;
    });
}

#[test]
fn a_fifo_a_non_utf8_name_and_a_path_beyond_path_max_are_listed_as_failures() {
    use std::os::unix::ffi::OsStrExt;
    let root = tempfile::tempdir().expect("tempdir");
    write_tone_wav(&root.path().join("good.wav"), 440.0, 4.0);
    write_tone_wav(&root.path().join(std::ffi::OsStr::from_bytes(b"caf\xe9.wav")), 440.0, 4.0);
    let made = std::process::Command::new("mkfifo").arg(root.path().join("song.mp3")).status().expect("mkfifo runs");
    assert!(made.success());
    // Folders of 250 characters until the folder's path is just under PATH_MAX (4096), then a
    // file whose whole path is over it (about 4240 bytes). Made with relative `cd`s: no absolute path that long works.
    let segment = "d".repeat(250);
    let depth = (4_090 - root.path().as_os_str().len()) / 251;
    let script = format!(
        "cd '{}' && for i in $(seq {depth}); do mkdir {segment} && cd {segment}; done && cp ../{up}good.wav \
         deep-{pad}.wav",
        root.path().display(),
        up = "../".repeat(depth - 1),
        pad = "p".repeat(200),
    );
    let made = std::process::Command::new("sh").args(["-c", &script]).status().expect("sh runs");
    assert!(made.success(), "made the deep file");
    let daemon = Daemon::start_with(&["--root", path_str(root.path())], FAST_WATCH);
    runtime().block_on(async {
        let mut client = daemon.client().await;
        let tracks = wait_for_tracks(&mut client, 4).await;
        let failed = |part: &str, reason: &str| {
            let track = tracks.iter().find(|t| t.path.contains(part)).unwrap_or_else(|| panic!("{part} listed"));
            assert_eq!(track.state, pb::AnalysisState::Failed as i32, "{track:?}");
            assert!(track.error.contains(reason), "{part}: {}", track.error);
        };
        failed("song.mp3", "not a regular file");
        failed("caf\u{FFFD}.wav", "not valid UTF-8");
        failed("deep-ppp", "cannot read it");
        assert!(tracks.iter().any(|t| t.path.ends_with("good.wav") && t.state == pb::AnalysisState::Analysed as i32));
    });
}

#[test]
fn echoed_input_is_bounded_and_ids_and_page_tokens_out_of_range_are_named() {
    let daemon = Daemon::start();
    runtime().block_on(async {
        let mut client = daemon.client().await;
        // A 1 MB model name used to come back whole, over the client's header limit, which
        // then reported RESOURCE_EXHAUSTED instead of the real error.
        let huge = "m".repeat(1 << 20);
        let request = pb::ClassifyRequest { models: vec![huge.clone()], ..pcm(tone(22_050), 22_050) };
        let status = client.classify(request).await.expect_err("unknown model");
        assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");
        assert!(status.message().len() <= 1024 && status.message().contains("bytes elided"), "{}", status.message());
        let by_path = pb::GetTrackRequest { track: Some(pb::get_track_request::Track::Path(format!("/{huge}"))) };
        let status = client.get_track(by_path).await.expect_err("no such track");
        assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");
        assert!(status.message().len() <= 1024, "{} bytes", status.message().len());
        let token = pb::ListTracksRequest { page_token: huge, ..Default::default() };
        let status = client.list_tracks(token).await.expect_err("not a token");
        assert_refused(&status, &["page_token", "bytes elided"], "a 1 MB page token");

        let max = pb::GetTrackRequest { track: Some(pb::get_track_request::Track::TrackId(u64::MAX)) };
        let status = client.get_track(max).await.expect_err("no such track");
        assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");
        assert_eq!(status.message(), "no track with id 18446744073709551615");
        let seed = pb::TrackRef { track: Some(pb::track_ref::Track::TrackId(u64::MAX)) };
        let request = pb::RecommendRequest { positive: vec![seed], limit: 3, ..Default::default() };
        let status = client.recommend(request).await.expect_err("no such track");
        assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");
        assert!(status.message().contains("18446744073709551615"), "{status:?}");
        for token in ["-1", "abc", "9223372036854775808"] {
            let request = pb::ListTracksRequest { page_token: token.into(), ..Default::default() };
            let status = client.list_tracks(request).await.expect_err("not a token");
            assert_refused(&status, &["page_token", token], "page token");
        }
    });
}
