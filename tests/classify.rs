//! `Classify` over gRPC gives what `timbred analyze` gives, whichever way the audio arrives;
//! bad requests get the right status and a message that says what was wrong.

use std::path::Path;

use timbre_proto::v1 as pb;

use crate::util::{gtzan_pool, run, runtime, text, timbred, write_tone_wav, Daemon};

/// `timbred analyze --json --top-k 0` of one file: model → [(label, probability)].
pub fn offline_predictions(file: &Path) -> Vec<(String, Vec<(String, f64)>)> {
    let output = run(timbred().args(["analyze", "--json", "--top-k", "0"]).arg(file));
    assert!(output.status.success());
    let analysis: serde_json::Value = serde_json::from_slice(&output.stdout).expect("one JSON line");
    let mut predictions: Vec<_> = analysis["predictions"]
        .as_array()
        .expect("predictions")
        .iter()
        .map(|p| {
            let labels = p["labels"]
                .as_array()
                .expect("labels")
                .iter()
                .map(|l| (l["name"].as_str().expect("name").to_string(), l["probability"].as_f64().expect("p")))
                .collect();
            (p["model"].as_str().expect("model").to_string(), labels)
        })
        .collect();
    predictions.sort_by(|a, b| a.0.cmp(&b.0));
    predictions
}

pub fn assert_same(response: &pb::ClassifyResponse, expected: &[(String, Vec<(String, f64)>)], how: &str) {
    assert_eq!(response.predictions.len(), expected.len(), "{how}: one prediction per model");
    for (prediction, (model, labels)) in response.predictions.iter().zip(expected) {
        assert_eq!(&prediction.model, model, "{how}: models sorted by name");
        assert_eq!(prediction.labels.len(), labels.len(), "{how}: top_k 0 is every label");
        for (label, (name, probability)) in prediction.labels.iter().zip(labels) {
            assert_eq!(&label.name, name, "{how}: {model}");
            assert!((label.probability as f64 - probability).abs() < 1e-6, "{how}: {model} {name}");
        }
    }
}

fn clip(dir: &Path) -> std::path::PathBuf {
    match gtzan_pool() {
        Some(pool) => {
            let to = dir.join("jazz.00030.flac");
            std::fs::copy(pool.join("jazz/jazz.00030.flac"), &to).expect("copy");
            to
        }
        None => {
            let to = dir.join("tone.wav");
            write_tone_wav(&to, 440.0, 8.0);
            to
        }
    }
}

#[test]
fn classify_by_path_upload_and_pcm_agrees_with_timbred_analyze() {
    let root = tempfile::tempdir().expect("tempdir");
    let file = clip(root.path());
    let tone = root.path().join("tone-pcm.wav");
    write_tone_wav(&tone, 523.0, 6.5);
    let expected = offline_predictions(&file);
    let expected_tone = offline_predictions(&tone);
    assert_eq!(expected.len(), crate::util::SHIPPED_MODELS, "the shipped models");

    let daemon = Daemon::start_with(&["--root", root.path().to_str().expect("utf-8")], &[]);
    runtime().block_on(async {
        let mut client = daemon.client().await;
        let by_path = pb::ClassifyRequest {
            source: Some(pb::classify_request::Source::Path(file.display().to_string())),
            include_segments: true,
            ..Default::default()
        };
        let response = client.classify(by_path).await.expect("Classify by path").into_inner();
        assert_same(&response, &expected, "by path");
        assert_eq!(response.path, file.display().to_string());
        let segments = &response.predictions[0].segments;
        assert!(!segments.is_empty() && segments[0].start_s == 0.0);
        assert!((segments.last().expect("segments").end_s - response.duration_s).abs() < 1e-9);

        let upload = pb::ClassifyRequest {
            source: Some(pb::classify_request::Source::Encoded(std::fs::read(&file).expect("read"))),
            filename_hint: file.file_name().expect("name").to_string_lossy().into_owned(),
            ..Default::default()
        };
        let response = client.classify(upload).await.expect("Classify an upload").into_inner();
        assert_same(&response, &expected, "uploaded");
        assert!(response.path.is_empty() && response.predictions[0].segments.is_empty());

        // The WAV's own samples as stereo PCM (both channels equal): the same numbers again.
        let bytes = std::fs::read(&tone).expect("read");
        let samples: Vec<f32> = bytes[44..]
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0)
            .flat_map(|s| [s, s])
            .collect();
        let pcm = pb::ClassifyRequest {
            source: Some(pb::classify_request::Source::Pcm(pb::Pcm { samples, sample_rate: 22050, channels: 2 })),
            ..Default::default()
        };
        assert_same(&client.classify(pcm).await.expect("Classify PCM").into_inner(), &expected_tone, "PCM");

        // Chosen models come back in the order asked, with at most top_k labels.
        let some = pb::ClassifyRequest {
            source: Some(pb::classify_request::Source::Path(file.display().to_string())),
            models: vec!["pca-knn".into(), "cnn".into()],
            top_k: 2,
            ..Default::default()
        };
        let response = client.classify(some).await.expect("Classify two models").into_inner();
        let models: Vec<_> = response.predictions.iter().map(|p| p.model.as_str()).collect();
        assert_eq!(models, ["pca-knn", "cnn"]);
        assert!(response.predictions.iter().all(|p| p.labels.len() == 2));
    });
    assert!(daemon.stop().success());
}

#[test]
fn bad_classify_requests_get_the_right_status_and_say_what_was_wrong() {
    let root = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start_with(
        &["--root", root.path().to_str().expect("utf-8")],
        &[("TIMBRE_SERVER__MAX_REQUEST_MIB", "8"), ("TIMBRE_SERVER__MAX_AUDIO_SECONDS", "60")],
    );
    runtime().block_on(async {
        let mut client = daemon.client().await;
        let pcm = |samples: Vec<f32>, sample_rate, channels| pb::ClassifyRequest {
            source: Some(pb::classify_request::Source::Pcm(pb::Pcm { samples, sample_rate, channels })),
            ..Default::default()
        };
        let cases = [
            (pb::ClassifyRequest::default(), tonic::Code::InvalidArgument, "source"),
            (pcm(vec![0.0; 10], 0, 1), tonic::Code::InvalidArgument, "sample_rate"),
            (pcm(vec![0.0; 11], 22050, 2), tonic::Code::InvalidArgument, "multiple of 2 channels"),
            (pcm(vec![0.0; 22050 * 61], 22050, 1), tonic::Code::InvalidArgument, "limit of 60 s"),
            (
                pb::ClassifyRequest {
                    source: Some(pb::classify_request::Source::Encoded(b"hello, not audio".to_vec())),
                    filename_hint: "notes.txt".into(),
                    ..Default::default()
                },
                tonic::Code::InvalidArgument,
                "notes.txt: not a recognised audio format",
            ),
            (
                pb::ClassifyRequest { models: vec!["nope".into()], ..pcm(vec![0.1; 22050], 22050, 1) },
                tonic::Code::NotFound,
                "no model named 'nope'",
            ),
            (
                pb::ClassifyRequest {
                    source: Some(pb::classify_request::Source::Path(format!("{}/missing.flac", root.path().display()))),
                    ..Default::default()
                },
                tonic::Code::NotFound,
                "missing.flac",
            ),
        ];
        for (request, code, message) in cases {
            let status = client.classify(request).await.expect_err("refused");
            assert_eq!(status.code(), code, "{status:?}");
            assert!(status.message().contains(message), "expected {message:?} in {:?}", status.message());
        }
        // Over the configured request size (8 MiB): refused before it is decoded.
        let big = pb::ClassifyRequest {
            source: Some(pb::classify_request::Source::Encoded(vec![0; 9 << 20])),
            ..Default::default()
        };
        let status = client.classify(big).await.expect_err("too big");
        assert_eq!(status.code(), tonic::Code::OutOfRange, "{status:?}");
        // And the daemon still serves.
        let ok = client.classify(pcm(vec![0.1; 22050 * 3], 22050, 1)).await.expect("served").into_inner();
        assert_eq!(ok.predictions.len(), crate::util::SHIPPED_MODELS);
    });
}

#[test]
fn timbred_config_shows_each_layer_and_a_bad_value_names_its_key_and_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("timbre.toml");
    std::fs::write(&file, "[server]\nlisten = \"127.0.0.1:6001\"\nmax_request_mib = 8\n[workers]\nqueue = 5\n")
        .expect("write");
    let output = run(timbred()
        .args(["config", "--config"])
        .arg(&file)
        .args(["--listen", "127.0.0.1:6002"])
        .env("TIMBRE_WORKERS__QUEUE", "9")
        .env("XDG_CONFIG_HOME", dir.path().join("no-user-config")));
    assert!(output.status.success());
    let printed = text(&output.stdout);
    let line = |key: &str| printed.lines().find(|l| l.starts_with(&format!("{key} = "))).unwrap_or("").to_string();
    assert!(line("server.listen").contains("\"127.0.0.1:6002\"") && line("server.listen").contains("flag --listen"));
    assert!(line("server.max_request_mib").contains(&file.display().to_string()));
    assert!(line("workers.queue").contains("= 9") && line("workers.queue").contains("the environment"));
    assert!(line("workers.threads").contains("built-in default"));

    std::fs::write(&file, "[workers]\nqueue = \"lots\"\n").expect("write");
    let output = run(timbred().args(["config", "--config"]).arg(&file));
    assert_eq!(output.status.code(), Some(2));
    let error = text(&output.stderr);
    assert!(error.contains("workers.queue") && error.contains(&file.display().to_string()), "{error}");

    let output = run(timbred().args(["serve", "--listen", "127.0.0.1:0", "--root"]).arg(dir.path().join("missing")));
    assert_eq!(output.status.code(), Some(2), "a bad root is an error at start-up");
    assert!(text(&output.stderr).contains("library.roots"), "{}", text(&output.stderr));
}

#[test]
fn classify_stream_answers_each_window_as_classify_would() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tone = dir.path().join("tone.wav");
    write_tone_wav(&tone, 392.0, 10.0);
    let bytes = std::fs::read(&tone).expect("read");
    let samples: Vec<f32> =
        bytes[44..].chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0).collect();
    let daemon = Daemon::start();
    runtime().block_on(async {
        let mut client = daemon.client().await;
        // 10 s in 0.5 s chunks: three full 3 s windows; the 1 s tail is under half a window.
        let chunks: Vec<pb::AudioChunk> = samples
            .chunks(11025)
            .enumerate()
            .map(|(i, chunk)| pb::AudioChunk {
                pcm: Some(pb::Pcm { samples: chunk.to_vec(), sample_rate: 22050, channels: 1 }),
                config: (i == 0).then(|| pb::ClassifyStreamConfig { top_k: 0, ..Default::default() }),
            })
            .collect();
        let mut responses =
            client.classify_stream(tokio_stream::iter(chunks)).await.expect("ClassifyStream").into_inner();
        let mut windows = Vec::new();
        while let Some(response) = responses.message().await.expect("response") {
            windows.push(response);
        }
        assert_eq!(windows.len(), 3, "{windows:?}");
        for (i, window) in windows.iter().enumerate() {
            let segment = &window.predictions[0].segments;
            assert_eq!(segment.len(), 1);
            assert_eq!(
                (segment[0].index, segment[0].start_s, segment[0].end_s),
                (i as u32, 3.0 * i as f64, 3.0 * (i + 1) as f64)
            );
            // The same 3 s through Classify: the same labels and probabilities.
            let pcm = samples[i * 66150..(i + 1) * 66150].to_vec();
            let single = client
                .classify(pb::ClassifyRequest {
                    source: Some(pb::classify_request::Source::Pcm(pb::Pcm {
                        samples: pcm,
                        sample_rate: 22050,
                        channels: 1,
                    })),
                    ..Default::default()
                })
                .await
                .expect("Classify")
                .into_inner();
            for (streamed, whole) in window.predictions.iter().zip(&single.predictions) {
                assert_eq!(streamed.model, whole.model);
                assert_eq!(streamed.labels, whole.labels, "window {i}, {}", whole.model);
            }
        }

        // A chunk that changes the format is refused with the reason.
        let bad = vec![
            pb::AudioChunk {
                pcm: Some(pb::Pcm { samples: vec![0.0; 100], sample_rate: 22050, channels: 1 }),
                config: None,
            },
            pb::AudioChunk {
                pcm: Some(pb::Pcm { samples: vec![0.0; 100], sample_rate: 44100, channels: 1 }),
                config: None,
            },
        ];
        let mut responses = client.classify_stream(tokio_stream::iter(bad)).await.expect("call").into_inner();
        let status = responses.message().await.expect_err("format change");
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(status.message().contains("sample_rate"), "{status:?}");
    });
}
