//! Capture through cpal (ALSA → PulseAudio) from the monitor of a null sink that the test
//! plays a real clip into. `scripts/pulseaudio` provides the server and the sink.
//!
//! ALSA's PulseAudio device records from `$PULSE_SOURCE`, which libpulse reads from the
//! environment. Setting it inside this multi-threaded test process would race with C code
//! reading the environment, so each capture test runs its body in a child process (this test
//! binary, filtered to one `#[ignore]`d test) started with `PULSE_SOURCE` set.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use timbre_daemon::sources::{LiveSourceConfig, PcmBlock};

use super::{decode, locate, logged, ncc, overlap, resample, rms, Running};
use crate::util::{gtzan_pool, repo, sample, text};

/// Set in the child processes; the `child_*` tests do nothing without it.
const CHILD: &str = "TIMBRE_CAPTURE_CHILD";
pub(crate) const SINK: &str = "timbre_test";

/// Tests that use the sound server run one at a time: one of them unloads the sink.
pub(crate) static SOUND_SERVER: Mutex<()> = Mutex::new(());

/// Start the server and the sink (`scripts/pulseaudio`); `None` (and a message) when
/// PulseAudio is not installed.
pub(crate) fn monitor() -> Option<String> {
    let output = Command::new(repo().join("scripts/pulseaudio")).output().expect("run scripts/pulseaudio");
    eprint!("{}", text(&output.stderr));
    if output.status.code() == Some(3) {
        eprintln!("skipped: PulseAudio is not installed (scripts/setup-system installs it)");
        return None;
    }
    assert!(output.status.success(), "scripts/pulseaudio failed");
    Some(text(&output.stdout).trim().to_string())
}

/// Run the ignored test `child` of this binary in a process that records the sink's monitor.
fn in_child(child: &str) {
    let _one_at_a_time = SOUND_SERVER.lock().unwrap_or_else(|e| e.into_inner());
    let Some(monitor) = monitor() else { return };
    let test = format!("sources::capture::{child}");
    let output = Command::new(std::env::current_exe().expect("test binary"))
        .args([&test, "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env("PULSE_SOURCE", &monitor)
        .env(CHILD, "1")
        .output()
        .expect("run the test binary");
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    eprintln!("{test} (PULSE_SOURCE={monitor}):\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(output.status.success(), "{test} failed in the child process");
    assert!(stdout.contains("test result: ok. 1 passed"), "{test} did not run");
}

fn is_child() -> bool {
    let child = std::env::var_os(CHILD).is_some();
    if !child {
        eprintln!("runs only as a child of its parent test, with PULSE_SOURCE set");
    }
    child
}

/// A real clip: a GTZAN excerpt when the pool is here, else the bundled sample.
fn clip() -> PathBuf {
    gtzan_pool().map(|pool| pool.join("country/country.00028.flac")).filter(|p| p.is_file()).unwrap_or_else(sample)
}

/// Play `clip` into the sink while receiving what the source captures.
fn play(source: &mut Running, clip: &PathBuf) {
    let mut paplay = Command::new("paplay").arg(format!("--device={SINK}")).arg(clip).spawn().expect("run paplay");
    let mut status = None;
    source.receive_until("paplay to finish", Duration::from_secs(60), |_| {
        status = paplay.try_wait().expect("paplay runs");
        status.is_some()
    });
    assert!(status.is_some_and(|s| s.success()), "paplay {} failed", clip.display());
}

fn pactl(args: &[&str]) -> String {
    let output = Command::new("pactl").args(args).output().expect("run pactl");
    assert!(output.status.success(), "pactl {args:?}: {}", text(&output.stderr));
    text(&output.stdout)
}

/// Capture while `clip` plays and assert the recording is the clip: the same waveform
/// (cross-correlation) at about the same level.
fn hear(source: &mut Running, clip: &PathBuf) {
    let before = source.received.len();
    play(source, clip);
    // paplay returns when the sink has played the clip; its monitor trails a little.
    source.receive_for(Duration::from_secs(1));
    let blocks = source.received[before..].to_vec();
    let rate = blocks.first().expect("blocks while the clip played").sample_rate;
    assert!(blocks.iter().all(|b| b.sample_rate == rate), "one rate throughout");
    let recording: Vec<f32> = blocks.iter().flat_map(|b| b.samples.iter().copied()).collect();
    // The comparison takes a while in a debug build; the source must not wait meanwhile.
    let (original, original_rate) = decode(clip);
    let expected = source.receive_while(|| resample(&original, original_rate, rate));
    let offset = source.receive_while(|| locate(&recording, &expected));
    let offset = offset.expect("the recording is silent: the clip was not captured");
    // PulseAudio may miss a few ms at the start when it wakes a suspended sink.
    let (heard, played) = overlap(&recording, &expected, offset);
    assert!(heard.len() > expected.len() * 9 / 10, "only {} of {} samples captured", heard.len(), expected.len());
    let similarity = ncc(heard, played);
    let level = rms(heard) / rms(played);
    eprintln!("heard {} at {rate} Hz: correlation {similarity:.3}, level ratio {level:.2}", clip.display());
    assert!(similarity > 0.9, "the recording does not match the clip (correlation {similarity:.3})");
    assert!((0.5..2.0).contains(&level), "the recording's level is {level:.2} × the clip's");
}

#[test]
fn capture_records_the_clip_played_into_the_null_sink() {
    in_child("child_records_the_clip");
}

#[test]
#[ignore = "run by capture_records_the_clip_played_into_the_null_sink in a child process"]
fn child_records_the_clip() {
    if !is_child() {
        return;
    }
    // The default input is PulseAudio's default source, i.e. $PULSE_SOURCE.
    let mut source = Running::start(LiveSourceConfig::capture("null-sink", None));
    source.receive_until("the first block", Duration::from_secs(30), |blocks| !blocks.is_empty());
    let silence = source.samples();
    assert!(silence.iter().all(|s| s.abs() < 1e-3), "the idle sink's monitor is silent");
    hear(&mut source, &clip());
    source.stop();
    let log = logged("null-sink");
    assert!(log.iter().any(|l| l.contains("capturing from \"default\"")), "{log:#?}");
    assert!(!log.iter().any(|l| l.contains("WARN")), "no failures: {log:#?}");
}

#[test]
fn capture_survives_the_sink_being_unloaded_and_loaded_again() {
    in_child("child_survives_the_sink_going_away");
}

#[test]
#[ignore = "run by capture_survives_the_sink_being_unloaded_and_loaded_again in a child process"]
fn child_survives_the_sink_going_away() {
    if !is_child() {
        return;
    }
    let clip = clip();
    // By ALSA name this time: the `pulse` device, which also records $PULSE_SOURCE.
    let mut source = Running::start(LiveSourceConfig::capture("unplugged", Some("pulse")));
    source.receive_until("the first block", Duration::from_secs(30), |blocks| !blocks.is_empty());
    hear(&mut source, &clip);

    let modules = source.receive_while(|| pactl(&["list", "short", "modules"]));
    let module = modules
        .lines()
        .find(|l| l.contains(&format!("sink_name={SINK}")))
        .and_then(|l| l.split_whitespace().next())
        .expect("the null sink's module")
        .to_string();
    source.receive_while(|| pactl(&["unload-module", &module]));
    source.receive_for(Duration::from_secs(1));
    assert!(source.receive_while(monitor).is_some(), "scripts/pulseaudio loads the sink again");
    // PulseAudio moves the recording back to the sink's new monitor: the clip is heard again.
    hear(&mut source, &clip);
    source.stop();
}

#[test]
fn a_missing_device_is_named_with_the_available_ones_and_retried() {
    let mut source = Running::start(LiveSourceConfig::capture("ghost", Some("no-such-device")));
    // The first retry comes after 1 s, the second after 2 more: wait for the third attempt's warning.
    source.receive_until("three failed attempts", Duration::from_secs(60), |_| {
        logged("ghost").iter().filter(|l| l.contains("WARN")).count() >= 3
    });
    assert!(source.stop().is_empty(), "no audio from a device that does not exist");
    let warnings: Vec<String> = logged("ghost").into_iter().filter(|l| l.contains("WARN")).collect();
    for (warning, delay) in warnings.iter().zip([1, 2, 4]) {
        assert!(
            warning.contains(
                "live source \"ghost\": there is no input device named \"no-such-device\"; the input devices are: "
            ),
            "{warning}"
        );
        assert!(warning.contains(&format!("retrying in {delay} s")), "{warning}");
    }
}

#[test]
fn capture_reopens_the_device_after_the_sound_server_restarts() {
    in_child("child_reopens_after_the_server_restarts");
}

#[test]
#[ignore = "run by capture_reopens_the_device_after_the_sound_server_restarts in a child process"]
fn child_reopens_after_the_server_restarts() {
    if !is_child() {
        return;
    }
    let clip = clip();
    let mut source = Running::start(LiveSourceConfig::capture("restarted", Some("pulse")));
    source.receive_until("the first block", Duration::from_secs(30), |blocks| !blocks.is_empty());
    hear(&mut source, &clip);

    // The device disappears with the server. Only a server that scripts/pulseaudio started is
    // stopped: never a desktop's own.
    let stop = source.receive_while(|| {
        Command::new(repo().join("scripts/pulseaudio")).arg("stop").status().expect("scripts/pulseaudio stop")
    });
    if stop.code() == Some(4) {
        eprintln!("skipped the rest: the sound server was not started by scripts/pulseaudio");
        source.stop();
        return;
    }
    assert!(stop.success(), "scripts/pulseaudio stop failed");
    let warned = |_: &[PcmBlock]| logged("restarted").iter().any(|l| l.contains("retrying in"));
    source.receive_until("a warning that the device failed", Duration::from_secs(60), warned);
    assert!(source.receive_while(monitor).is_some(), "scripts/pulseaudio starts the server again");
    let reopened = |_: &[PcmBlock]| logged("restarted").iter().filter(|l| l.contains("capturing from")).count() >= 2;
    source.receive_until("the device to be reopened", Duration::from_secs(120), reopened);
    hear(&mut source, &clip);
    source.stop();

    let log = logged("restarted");
    assert!(!log.iter().any(|l| l.contains("dropped")), "the test kept up: {log:#?}");
    let warning = log.iter().find(|l| l.contains("retrying in")).expect("a warning");
    assert!(warning.contains("live source \"restarted\": capture device \"pulse\""), "{warning}");
    assert!(warning.contains("retrying in 1 s"), "{warning}");
}
