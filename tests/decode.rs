//! Every supported format decodes; every kind of bad file is named with its cause.

use crate::util::{read_npy, repo, run, sample, text, timbred};

#[test]
fn every_supported_format_decodes_to_the_same_features() {
    let dir = repo().join("tests/data/codecs");
    let files = ["tone.wav", "tone.flac", "tone.mp3", "tone.ogg", "tone-aac.m4a", "tone-alac.m4a"];
    let output = run(timbred().args(["analyze", "--json"]).args(files.iter().map(|f| dir.join(f))));
    assert!(output.status.success());
    let lines: Vec<serde_json::Value> =
        text(&output.stdout).lines().map(|l| serde_json::from_str(l).expect("one JSON object per line")).collect();
    assert_eq!(lines.len(), files.len());
    let reference = lines[1]["features"]["mean"].as_f64().expect("flac mean");
    for (file, line) in files.iter().zip(&lines) {
        assert_eq!(line["channels"], 2, "{file}");
        let duration = line["duration_s"].as_f64().expect("duration");
        // Lossy codecs add a few ms of encoder delay; the signal is 1 s long.
        assert!((0.99..1.06).contains(&duration), "{file}: {duration} s");
        assert_eq!(line["features"]["shape"], serde_json::json!([128, 130]), "{file}");
        // Same two tones, so the same mean level within what a lossy codec changes.
        let mean = line["features"]["mean"].as_f64().expect("mean");
        assert!((mean - reference).abs() < 3.0, "{file}: mean {mean} dB vs {reference} dB for FLAC");
    }
}

#[test]
fn bad_files_are_named_with_their_cause_and_the_batch_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("good.flac");
    std::fs::copy(sample(), &good).expect("copy sample");
    let bytes = std::fs::read(sample()).expect("sample");
    let truncated = dir.path().join("truncated.flac");
    std::fs::write(&truncated, &bytes[..bytes.len() * 2 / 5]).expect("write");
    let empty = dir.path().join("empty.wav");
    std::fs::write(&empty, b"").expect("write");
    let random = dir.path().join("random.flac");
    std::fs::write(&random, (0..20_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect::<Vec<u8>>())
        .expect("write");
    let text_file = dir.path().join("notes.mp3");
    std::fs::write(&text_file, "These are liner notes, not audio.\n".repeat(200)).expect("write");
    let missing = dir.path().join("missing.ogg");
    let out = dir.path().join("out");

    let output = run(timbred()
        .arg("features")
        .arg("--out")
        .arg(&out)
        .args([&truncated, &good, &empty, &random, &text_file, &missing]));
    assert_eq!(output.status.code(), Some(1), "some inputs failed");
    let stderr = text(&output.stderr);
    for (file, cause) in [
        (&truncated, "the file is truncated"),
        (&empty, "the file is empty"),
        (&random, "not a recognised audio format"),
        (&text_file, "not a recognised audio format"),
        (&missing, "No such file or directory"),
    ] {
        let line = stderr.lines().find(|l| l.starts_with(&format!("error: {}", file.display()))).unwrap_or_else(|| {
            panic!("no error line for {}", file.display());
        });
        assert!(line.contains(cause), "{line}");
    }
    assert!(stderr.contains("1 written, 5 failed"), "{stderr}");
    let (_, shape) = read_npy(&out.join("good.npy"));
    assert_eq!(shape, vec![128, 1 + 4 * 22050 / 512]);
    assert_eq!(std::fs::read_dir(&out).expect("out dir").count(), 1, "only the good file is written");
}
