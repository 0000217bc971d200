//! Live classification through the daemon: a network stream served by a local HTTP server and
//! a PulseAudio capture device, each classified window by window and followed over `WatchLive`.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use timbre_proto::v1 as pb;
use timbre_proto::v1::timbre_client::TimbreClient;
use tonic::transport::Channel;

use crate::sources::capture::{monitor, SINK, SOUND_SERVER};
use crate::sources::decode;
use crate::util::{eventually, repo, runtime, sample, Daemon};

/// A daemon configured with these `[[live]]` tables (and `env`).
fn daemon_with_live(live: &str, env: &[(&str, &str)]) -> (Daemon, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("timbre.toml");
    std::fs::write(&config, live).expect("write config");
    let daemon = Daemon::start_with(&["--config", config.to_str().expect("utf-8")], env);
    (daemon, dir)
}

/// The next `n` predictions of `source`, giving up after a minute (a hang, not a timing check).
async fn next_predictions(client: &mut TimbreClient<Channel>, source: &str, n: usize) -> Vec<pb::LivePrediction> {
    let request = pb::WatchLiveRequest { source: source.into() };
    let mut stream = client.watch_live(request).await.expect("WatchLive").into_inner();
    let mut predictions = Vec::new();
    while predictions.len() < n {
        let next = tokio::time::timeout(Duration::from_secs(60), stream.message()).await;
        let prediction = next.expect("a prediction within a minute").expect("stream").expect("not ended");
        predictions.push(prediction);
    }
    predictions
}

/// Serves `body` once, as a radio would (HTTP/1.0, no length, then close), after `go`
/// fires; later connections get 404. Returns the URL.
fn radio(body: Vec<u8>, go: std::sync::mpsc::Receiver<()>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/radio.mp3", listener.local_addr().expect("address"));
    std::thread::spawn(move || {
        for (n, connection) in listener.incoming().enumerate() {
            let Ok(mut connection) = connection else { continue };
            let mut request = BufReader::new(connection.try_clone().expect("clone"));
            let mut line = String::new();
            while request.read_line(&mut line).is_ok_and(|read| read > 2) {
                line.clear();
            }
            if n == 0 {
                let _ = go.recv();
                let _ = connection.write_all(b"HTTP/1.0 200 OK\r\nContent-Type: audio/mpeg\r\n\r\n");
                let _ = connection.write_all(&body);
            } else {
                let _ = connection.write_all(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n");
            }
        }
    });
    url
}

fn labels(prediction: &pb::ModelPrediction) -> Vec<(String, f32)> {
    prediction.labels.iter().map(|l| (l.name.clone(), l.probability)).collect()
}

#[test]
fn a_network_stream_is_classified_window_by_window_and_a_missing_device_does_not_stop_the_daemon() {
    let clip = repo().join("tests/data/stream/country.00012.mp3"); // 10 s of a GTZAN clip
    let (go, wait) = std::sync::mpsc::channel();
    let url = radio(std::fs::read(&clip).expect("read the clip"), wait);
    let live = format!(
        "[[live]]\nname = \"radio\"\nkind = \"stream\"\nurl = \"{url}\"\n\n\
         [[live]]\nname = \"ghost\"\nkind = \"capture\"\ndevice = \"no such device\"\n"
    );
    let (daemon, _config) = daemon_with_live(&live, &[("TIMBRE_LOG", "info")]);
    let (samples, rate) = decode(&clip);
    runtime().block_on(async {
        let mut client = daemon.client().await;
        let watching = {
            let mut client = client.clone();
            tokio::spawn(async move { next_predictions(&mut client, "radio", 3).await })
        };
        tokio::time::sleep(Duration::from_millis(300)).await; // let the subscription start
        go.send(()).expect("the server waits");
        let predictions = watching.await.expect("watcher");
        for (k, live) in predictions.iter().enumerate() {
            assert_eq!(live.source, "radio");
            assert_eq!((live.window_start_s, live.window_end_s), (3.0 * k as f64, 3.0 * (k + 1) as f64));
            assert_eq!(live.predictions.len(), crate::util::SHIPPED_MODELS, "every shipped model");
            // The same three seconds of the file, classified directly: the same answer.
            let window = samples[k * 3 * rate as usize..(k + 1) * 3 * rate as usize].to_vec();
            let request = pb::ClassifyRequest {
                source: Some(pb::classify_request::Source::Pcm(pb::Pcm {
                    samples: window,
                    sample_rate: rate,
                    channels: 1,
                })),
                ..Default::default()
            };
            let direct = client.classify(request).await.expect("Classify").into_inner();
            for (heard, expected) in live.predictions.iter().zip(&direct.predictions) {
                assert_eq!(heard.model, expected.model);
                for ((a, p), (b, q)) in labels(heard).iter().zip(labels(expected)) {
                    assert_eq!(a, &b, "window {k}, {}", heard.model);
                    assert!((p - q).abs() < 1e-5, "window {k}, {} {a}: {p} vs {q}", heard.model);
                }
            }
        }

        // The source that cannot open its device is reported and retried; the rest goes on.
        eventually("the missing device to be reported", 30, async || {
            daemon.log().contains("there is no input device named \"no such device\"").then_some(())
        })
        .await;
        assert!(client.list_plugins(pb::ListPluginsRequest {}).await.is_ok(), "still serving");
        let unknown = client.watch_live(pb::WatchLiveRequest { source: "tv".into() }).await.expect_err("unknown");
        assert_eq!(unknown.code(), tonic::Code::NotFound);
    });
    assert!(daemon.stop().success());
}

/// A real clip of at least a few seconds that PulseAudio's `paplay` can read.
fn clip_to_play() -> std::path::PathBuf {
    let candidate = crate::util::gtzan_pool().map(|pool| pool.join("country/country.00028.flac"));
    candidate.filter(|p| p.is_file()).unwrap_or_else(sample)
}

fn probabilities(prediction: &pb::LivePrediction) -> Vec<f32> {
    let mut all: Vec<(String, String, f32)> = prediction
        .predictions
        .iter()
        .flat_map(|m| m.labels.iter().map(|l| (m.model.clone(), l.name.clone(), l.probability)))
        .collect();
    all.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    all.into_iter().map(|(_, _, p)| p).collect()
}

#[test]
fn a_pulseaudio_monitor_fed_a_real_clip_is_classified_through_cpal_and_followed_on_watch_live() {
    let _one_at_a_time = SOUND_SERVER.lock().unwrap_or_else(|e| e.into_inner());
    let Some(monitor) = monitor() else { return };
    let live = "[[live]]\nname = \"turntable\"\nkind = \"capture\"\n";
    // ALSA's PulseAudio device records from $PULSE_SOURCE: the sink's monitor.
    let (daemon, _config) = daemon_with_live(live, &[("PULSE_SOURCE", &monitor)]);
    runtime().block_on(async {
        let mut client = daemon.client().await;
        // Nothing plays yet: silent windows, all classified alike.
        let silent = next_predictions(&mut client, "turntable", 2).await;
        assert_eq!(probabilities(&silent[0]), probabilities(&silent[1]), "two silent windows, one answer");

        let clip = clip_to_play();
        let watching = {
            let mut client = client.clone();
            tokio::spawn(async move { next_predictions(&mut client, "turntable", 4).await })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        let played = tokio::task::spawn_blocking(move || play(&clip)).await.expect("paplay");
        assert!(played, "paplay failed");
        let heard = watching.await.expect("watcher");
        for window in &heard {
            assert_eq!(window.source, "turntable");
            assert_eq!(window.predictions.len(), crate::util::SHIPPED_MODELS);
            assert!((window.window_end_s - window.window_start_s - 3.0).abs() < 1e-9);
        }
        let quiet = probabilities(&silent[0]);
        assert!(
            heard.iter().any(|w| probabilities(w).iter().zip(&quiet).any(|(a, b)| (a - b).abs() > 1e-3)),
            "the clip was heard: some window is classified unlike silence"
        );
        assert!(heard.windows(2).all(|w| w[1].window_start_s >= w[0].window_end_s - 1e-9), "windows in order");
    });

    // `timbre live` follows the same predictions, one JSON line per window.
    let mut follower = crate::serve::timbre_cli()
        .args(["--addr", &daemon.addr, "--json", "live", "--source", "turntable"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("timbre live");
    let mut line = String::new();
    BufReader::new(follower.stdout.take().expect("stdout")).read_line(&mut line).expect("a line");
    follower.kill().expect("stop following");
    let _ = follower.wait();
    let window: serde_json::Value = serde_json::from_str(&line).expect("JSON");
    assert_eq!(window["source"], "turntable");
    assert_eq!(window["predictions"].as_array().map(Vec::len), Some(crate::util::SHIPPED_MODELS), "{line}");
    assert!(daemon.stop().success());
}

fn play(clip: &Path) -> bool {
    Command::new("paplay").arg(format!("--device={SINK}")).arg(clip).status().is_ok_and(|s| s.success())
}
