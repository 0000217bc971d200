//! What the descriptor tests share: decoding real files, finding the pool and the programs
//! they compare against, and skipping (with a message) when one is absent.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use symphonia::core::codecs::audio::{AudioDecoderOptions, CODEC_ID_NULL_AUDIO};
use symphonia::core::codecs::CodecParameters;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

pub struct Audio {
    pub rate: u32,
    pub channels: u32,
    /// Interleaved.
    pub samples: Vec<f32>,
}

/// Decode a whole file as the daemon does (symphonia, gapless).
pub fn decode(path: &Path) -> Audio {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let stream = MediaSourceStream::new(Box::new(file), Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let mut format = symphonia::default::get_probe()
        .probe(&hint, stream, FormatOptions::default(), MetadataOptions::default())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (id, params) = format
        .tracks()
        .iter()
        .find_map(|t| match &t.codec_params {
            Some(CodecParameters::Audio(p)) if p.codec != CODEC_ID_NULL_AUDIO => Some((t.id, p.clone())),
            _ => None,
        })
        .expect("an audio track");
    let options = AudioDecoderOptions::default().gapless(true);
    let mut decoder = symphonia::default::get_codecs().make_audio_decoder(&params, &options).expect("a decoder");
    let mut audio = Audio { rate: 0, channels: 0, samples: Vec::new() };
    let mut interleaved = Vec::new();
    loop {
        let packet = match format.next_packet() {
            Ok(Some(packet)) => packet,
            Ok(None) => break,
            Err(symphonia::core::errors::Error::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => panic!("{}: {e}", path.display()),
        };
        if packet.track_id != id {
            continue;
        }
        let decoded = decoder.decode(&packet).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        audio.rate = decoded.spec().rate();
        audio.channels = decoded.spec().channels().count() as u32;
        decoded.copy_to_vec_interleaved(&mut interleaved);
        audio.samples.extend_from_slice(&interleaved);
    }
    audio
}

/// The GTZAN pool, or `None` and a message.
pub fn pool() -> Option<PathBuf> {
    let pool = std::env::var_os("TIMBRE_GTZAN_POOL")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/gtzan-pool"));
    if pool.join("MANIFEST.tsv").is_file() && pool.join("annotations/key.tsv").is_file() {
        Some(pool)
    } else {
        eprintln!(
            "skipped: the GTZAN pool (with annotations/key.tsv) is not at {} (set TIMBRE_GTZAN_POOL)",
            pool.display()
        );
        None
    }
}

/// `true` when `program` runs; otherwise a message saying the test is skipped.
pub fn have(program: &str) -> bool {
    let ok = Command::new(program)
        .arg(if program == "sox" { "--version" } else { "-version" })
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipped: `{program}` is not installed (scripts/setup-system installs it)");
    }
    ok
}

/// Run a command, panicking with its stderr if it fails.
pub fn run(command: &mut Command) -> String {
    let output = command.output().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{command:?} failed: {stderr}");
    stderr
}

/// An annotated pool clip.
pub struct Clip {
    pub path: PathBuf,
    pub genre: String,
    pub duration_s: f64,
    /// "A minor"; `None` where the annotation says modulating or unknown.
    pub key: Option<String>,
}

/// The pool's clips with their durations and key annotations.
pub fn clips(pool: &Path) -> Vec<Clip> {
    let manifest = std::fs::read_to_string(pool.join("MANIFEST.tsv")).expect("MANIFEST.tsv");
    let keys = std::fs::read_to_string(pool.join("annotations/key.tsv")).expect("key.tsv");
    let key_of: std::collections::HashMap<&str, &str> =
        keys.lines().skip(1).filter_map(|l| l.split('\t').collect::<Vec<_>>().get(..5).map(|f| (f[0], f[4]))).collect();
    manifest
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            let key = key_of.get(f[0]).filter(|k| !k.is_empty()).map(|k| k.to_string());
            Some(Clip { path: pool.join(f[0]), genre: f[1].to_string(), duration_s: f.get(3)?.parse().ok()?, key })
        })
        .collect()
}
