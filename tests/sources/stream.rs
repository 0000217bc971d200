//! HTTP streams: a server in the test sends real encoded audio slowly, as a radio would,
//! and drops connections; the source decodes as bytes arrive and reconnects.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use timbre_daemon::sources::LiveSourceConfig;

use super::{decode, logged, Running};
use crate::util::repo;

/// What the server does with the n-th connection (from 0).
#[derive(Clone, Copy)]
enum Reply {
    /// The whole body, then close, as a server does at the end of a stream (HTTP/1.0, no length).
    Whole,
    /// Promise the whole body (Content-Length) but close after `bytes`: a dropped connection.
    CutAfter { bytes: usize },
    /// An error status.
    Status(u16),
}

struct Server {
    url: String,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Serves `body` as `content_type` at `path`; `plan(n)` decides each connection's fate.
    fn start(
        path: &str,
        content_type: &'static str,
        body: Vec<u8>,
        plan: impl Fn(usize) -> Reply + Send + 'static,
    ) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a local port");
        let url = format!("http://{}{path}", listener.local_addr().expect("address"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen, stopped) = (requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for (n, connection) in listener.incoming().enumerate() {
                if stopped.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(connection) = connection else { continue };
                // The client may hang up at any point; that is the client's business.
                let _ = serve(connection, content_type, &body, plan(n), &seen);
            }
        });
        Server { url, requests, stop, thread: Some(thread) }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees `stop`.
        let address = self.url.trim_start_matches("http://").split('/').next().unwrap_or_default().to_string();
        let _ = TcpStream::connect(address);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(
    connection: TcpStream,
    content_type: &str,
    body: &[u8],
    reply: Reply,
    seen: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(connection.try_clone()?);
    let mut head = String::new();
    while reader.read_line(&mut head)? > 2 && !head.ends_with("\r\n\r\n") {}
    seen.lock().unwrap_or_else(|e| e.into_inner()).push(head);
    let mut connection = connection;
    let (status, length, sent) = match reply {
        Reply::Whole => ("200 OK", None, body),
        Reply::CutAfter { bytes } => ("200 OK", Some(body.len()), &body[..bytes]),
        Reply::Status(404) => ("404 Not Found", Some(0), &body[..0]),
        Reply::Status(code) => panic!("no reason phrase for {code}"),
    };
    let length = length.map(|n| format!("Content-Length: {n}\r\n")).unwrap_or_default();
    write!(connection, "HTTP/1.0 {status}\r\nContent-Type: {content_type}\r\nicy-name: timbre test\r\n{length}\r\n")?;
    // Slowly, so the decoder starts before the body is complete, as it must on a radio stream.
    for chunk in sent.chunks(2048) {
        connection.write_all(chunk)?;
        std::thread::sleep(Duration::from_millis(5));
    }
    connection.flush()
}

fn fixture(path: &str) -> Vec<u8> {
    let path = repo().join("tests/data").join(path);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Where `needle` starts in `haystack` at or after `from`, sample for sample (same decoder, same bytes).
fn find(haystack: &[f32], needle: &[f32], from: usize) -> Option<usize> {
    (from..=haystack.len().saturating_sub(needle.len()))
        .find(|&i| haystack[i..i + needle.len()].iter().zip(needle).all(|(a, b)| (a - b).abs() < 1e-6))
}

fn max_difference(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn a_stream_is_decoded_as_it_arrives_and_reconnected_after_a_drop() {
    // 10 s of a real GTZAN clip (16 kHz mono MP3); the first connection drops 40% of the way in.
    let file = "stream/country.00012.mp3";
    let (reference, rate) = decode(&repo().join("tests/data").join(file));
    assert_eq!(rate, 16000);
    let body = fixture(file);
    let cut = body.len() * 2 / 5;
    let server = Server::start("/radio.mp3", "audio/mpeg", body, move |n| {
        if n == 0 {
            Reply::CutAfter { bytes: cut }
        } else {
            Reply::Whole
        }
    });
    let mut source = Running::start(LiveSourceConfig::stream("radio-test", &server.url));
    // Three requests: the first was dropped, the second ran to the end of the body.
    source.receive_until("two reconnects", Duration::from_secs(120), |_| server.requests().len() >= 3);
    let blocks = source.stop();

    let requests = server.requests();
    for request in &requests {
        assert!(request.starts_with("GET /radio.mp3 HTTP/1.1\r\n"), "{request}");
        assert!(request.to_ascii_lowercase().contains("\r\nicy-metadata: 0\r\n"), "{request}");
    }
    assert!(blocks.iter().all(|b| b.sample_rate == 16000), "every block at the stream's rate");
    let received: Vec<f32> = blocks.iter().flat_map(|b| b.samples.iter().copied()).collect();
    // The first connection gave the start of the clip, the second the whole clip again.
    let probe = &reference[..4000];
    assert_eq!(find(&received, probe, 0), Some(0), "the stream starts with the clip");
    let restart = find(&received, probe, 1).expect("the clip starts again after the reconnect");
    let expected_first = reference.len() as f64 * 0.4;
    assert!(
        (restart as f64) > expected_first * 0.8 && (restart as f64) < expected_first * 1.05,
        "the first connection delivered {restart} samples of about {expected_first}"
    );
    assert!(max_difference(&received[..restart], &reference[..restart]) < 1e-6, "first connection's audio");
    let second = &received[restart..];
    assert!(second.len() >= reference.len(), "the second connection delivered the whole clip");
    assert!(max_difference(&second[..reference.len()], &reference) < 1e-6, "second connection's audio");

    let warnings = logged("radio-test");
    let retries: Vec<&String> = warnings.iter().filter(|l| l.contains("WARN")).collect();
    assert!(retries.len() >= 2, "{warnings:#?}");
    assert!(retries[0].contains(&server.url) && retries[0].contains("retrying in 1 s"), "{}", retries[0]);
    assert!(retries[1].contains("the server ended the stream; retrying in 2 s"), "{}", retries[1]);
}

#[test]
fn mp3_ogg_and_adts_streams_decode_like_the_files() {
    for (file, content_type) in
        [("codecs/tone.mp3", "audio/mpeg"), ("codecs/tone.ogg", "application/ogg"), ("codecs/tone.aac", "audio/aacp")]
    {
        let (reference, rate) = decode(&repo().join("tests/data").join(file));
        let server = Server::start("/live", content_type, fixture(file), |_| Reply::Whole);
        let name = format!("tone-{content_type}");
        let mut source = Running::start(LiveSourceConfig::stream(&name, &server.url));
        source.receive_until("the end of the first connection", Duration::from_secs(60), |_| {
            server.requests().len() >= 2
        });
        let blocks = source.stop();
        assert!(blocks.iter().all(|b| b.sample_rate == rate), "{file}: blocks at {rate} Hz");
        let received: Vec<f32> = blocks.iter().flat_map(|b| b.samples.iter().copied()).collect();
        assert!(received.len() >= reference.len(), "{file}: {} of {} samples", received.len(), reference.len());
        // The 440 Hz + 880 Hz tone, sample for sample as decoding the file gives it.
        let difference = max_difference(&received[..reference.len()], &reference);
        assert!(difference < 1e-4, "{file}: differs from the file's decode by {difference}");
        // ffmpeg's sines are at 1/8 of full scale.
        assert!(super::rms(&received[..reference.len()]) > 0.05, "{file}: not silence");
    }
}

#[test]
fn an_error_status_or_a_page_that_is_not_audio_is_named_and_retried() {
    let missing = Server::start("/gone.mp3", "text/html", Vec::new(), |_| Reply::Status(404));
    let page =
        Server::start("/index.html", "text/html", b"<html><body>not audio</body></html>".repeat(200), |_| Reply::Whole);
    let mut gone = Running::start(LiveSourceConfig::stream("gone-test", &missing.url));
    let html = Running::start(LiveSourceConfig::stream("html-test", &page.url));
    gone.receive_until("a retry of each", Duration::from_secs(60), |_| {
        missing.requests().len() >= 2 && page.requests().len() >= 2
    });
    assert!(gone.stop().is_empty(), "no audio from a 404");
    assert!(html.stop().is_empty(), "no audio from a web page");

    let gone_log = logged("gone-test").join("\n");
    assert!(gone_log.contains(&format!("{}: http status: 404; retrying in 1 s", missing.url)), "{gone_log}");
    let html_log = logged("html-test").join("\n");
    assert!(html_log.contains(&format!("{}: not a recognised audio format", page.url)), "{html_log}");
    assert!(html_log.contains("retrying in 1 s"), "{html_log}");
}
