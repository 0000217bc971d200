//! Loudness against a second, independent EBU R128 implementation: ffmpeg's `ebur128` filter,
//! on real clips in several formats, mono and stereo, at several rates. Integrated loudness
//! within 0.1 LU, true peak within 0.3 dB.
//!
//! Mono: ffmpeg weights a mono channel 1.0 (its `dualmono` option is off by default), as
//! BS.1770 does and as we do by default; the mono files below check that we agree. With
//! `dual_mono` we read 3.01 LU louder, as ffmpeg does with `dualmono=true`.
//!
//! True peak: ffmpeg resamples to 192 kHz whatever the rate; the `ebur128` crate oversamples 4×
//! (64 kHz for a 16 kHz file, which missed 0.54 dB of the overs on a clipped 16 kHz clip), so
//! below 48 kHz we upsample first (`oversample.rs`).

mod common;

use std::path::Path;
use std::process::Command;

use timbre_descriptors::{analyse, Config};

/// ffmpeg's integrated loudness (LUFS) and true peak (dBTP), to three decimals: the filter's
/// per-frame metadata, whose last frame carries the whole file's values (its printed summary
/// rounds to 0.1).
fn ffmpeg_loudness(file: &Path, dual_mono: bool) -> (f64, f64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("r128.txt");
    let filter =
        format!("ebur128=peak=true:metadata=1:dualmono={},ametadata=mode=print:file={}", dual_mono, log.display());
    common::run(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-nostats", "-i"])
            .arg(file)
            .args(["-af", &filter, "-f", "null", "-"]),
    );
    let text = std::fs::read_to_string(&log).expect("ffmpeg's metadata log");
    let last = |key: &str| -> f64 {
        text.lines()
            .rev()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in ffmpeg's log"))
    };
    let peak = last("lavfi.r128.true_peak=");
    (last("lavfi.r128.I="), 20.0 * peak.max(1e-10).log10())
}

fn ffmpeg(args: &[&str]) {
    common::run(Command::new("ffmpeg").args(["-hide_banner", "-loglevel", "error", "-y"]).args(args));
}

#[test]
fn loudness_agrees_with_ffmpeg_on_real_clips_in_several_formats() {
    let Some(pool) = common::pool() else { return };
    if !common::have("ffmpeg") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let d = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let rock = pool.join("rock/rock.00010.flac").to_string_lossy().into_owned();
    let jazz = pool.join("jazz/jazz.00010.flac").to_string_lossy().into_owned();
    let long =
        common::clips(&pool).into_iter().find(|c| c.duration_s > 25.0 && c.genre == "pop").expect("a 30 s pop clip");
    let long = long.path.to_string_lossy().into_owned();
    // Stereo from two different clips (so the channels differ), at 44.1 kHz.
    ffmpeg(&[
        "-i",
        &rock,
        "-i",
        &jazz,
        "-filter_complex",
        "[0:a][1:a]amerge=inputs=2,aresample=44100",
        "-c:a",
        "pcm_s16le",
        &d("stereo.wav"),
    ]);
    ffmpeg(&["-i", &d("stereo.wav"), "-c:a", "flac", &d("stereo.flac")]);
    ffmpeg(&["-i", &d("stereo.wav"), "-c:a", "libmp3lame", "-b:a", "192k", &d("stereo.mp3")]);
    // Quieter stereo at 48 kHz, so the gate and true peak are not just full-scale clips.
    ffmpeg(&[
        "-i",
        &long,
        "-af",
        "volume=-12dB,pan=stereo|c0=c0|c1=0.5*c0,aresample=48000",
        "-c:a",
        "pcm_f32le",
        &d("quiet48k.wav"),
    ]);
    ffmpeg(&["-i", &long, "-c:a", "libmp3lame", "-b:a", "128k", &d("mono.mp3")]);
    ffmpeg(&["-i", &rock, "-c:a", "pcm_s16le", &d("mono.wav")]);
    let files = [
        long.clone(),
        rock.clone(),
        d("mono.wav"),
        d("mono.mp3"),
        d("stereo.wav"),
        d("stereo.flac"),
        d("stereo.mp3"),
        d("quiet48k.wav"),
    ];
    let mut failures = Vec::new();
    for file in &files {
        let audio = common::decode(Path::new(file));
        for dual_mono in if audio.channels == 1 { vec![false, true] } else { vec![false] } {
            let config = Config { dual_mono, ..Config::default() };
            let ours = analyse(&config, audio.rate, audio.channels, &audio.samples).expect("analyse").loudness;
            let ours_i = ours.integrated_lufs.expect("loud enough to measure");
            let (theirs_i, theirs_peak) = ffmpeg_loudness(Path::new(file), dual_mono);
            let (di, dp) = (ours_i - theirs_i, ours.true_peak_dbtp - theirs_peak);
            let name = Path::new(file).file_name().unwrap_or_default().to_string_lossy();
            eprintln!(
                "{name:<18} {} Hz {}ch{} I {ours_i:>7.3} vs {theirs_i:>7.3} LUFS ({di:+.3})  TP {:>6.2} vs {theirs_peak:>6.2} dBTP ({dp:+.2})",
                audio.rate,
                audio.channels,
                if dual_mono { " dual-mono" } else { "" },
                ours.true_peak_dbtp
            );
            if di.abs() > 0.1 || dp.abs() > 0.3 {
                failures.push(format!(
                    "{name}{}: I {di:+.3} LU, TP {dp:+.2} dB",
                    if dual_mono { " (dual mono)" } else { "" }
                ));
            }
        }
    }
    assert!(failures.is_empty(), "outside 0.1 LU / 0.3 dB of ffmpeg: {failures:?}");
}

#[test]
fn album_gain_is_the_loudness_of_the_tracks_played_as_one() {
    let Some(pool) = common::pool() else { return };
    let clips: Vec<_> = common::clips(&pool).into_iter().filter(|c| c.duration_s > 25.0).take(3).collect();
    let tracks: Vec<_> = clips.iter().map(|c| common::decode(&c.path)).collect();
    let results: Vec<_> =
        tracks.iter().map(|a| analyse(&Config::default(), a.rate, 1, &a.samples).expect("analyse")).collect();
    let histograms: Vec<_> = results.iter().map(|r| &r.blocks).collect();
    let album = timbre_descriptors::album_gain(&histograms).expect("an album gain");
    // The same tracks joined; each is a whole number of 100 ms steps long at 16 kHz or cut to one,
    // so the gating blocks of the joined file are those of the tracks plus a few straddling ones.
    let joined: Vec<f32> =
        tracks.iter().flat_map(|a| a.samples[..a.samples.len() / 1600 * 1600].iter().copied()).collect();
    let whole = analyse(&Config::default(), tracks[0].rate, 1, &joined).expect("analyse").loudness;
    let expected = -18.0 - whole.integrated_lufs.expect("loud");
    eprintln!("album gain {album:.3} dB from the tracks' histograms, {expected:.3} dB from the joined tracks");
    assert!((album - expected).abs() < 0.1, "album gain {album:.3} vs {expected:.3}");
    assert!(tracks.iter().all(|a| a.rate == tracks[0].rate));
}
