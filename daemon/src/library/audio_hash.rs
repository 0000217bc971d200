//! A digest of a file's audio stream: the demuxed packets of its default audio track, not
//! decoded (so it costs a read of the file, not a decode). Tags live outside the packets in
//! every container timbre reads (ID3 and APE blocks, FLAC metadata blocks, Ogg comment
//! headers, MP4 `moov/udta`), so a tag edit keeps the digest and an audio edit changes it.
//!
//! The library keys tracks by this digest (moves, copies, "has the audio changed?"), and
//! `timbred tag` uses it to prove a rewritten file carries exactly the original's audio.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

use crate::pipeline::decode::shielded;

/// Stored digests of this kind start with it; a digest without it is a whole-file SHA-256
/// from a library written before audio digests (see [`is_audio_hash`]).
pub const PREFIX: &str = "audio-sha256:";

#[derive(Debug, thiserror::Error)]
#[error("{}: {reason}", path.display())]
pub struct AudioHashError {
    pub path: PathBuf,
    pub reason: String,
}

/// Whether a stored digest is an audio-stream digest (rather than a legacy whole-file one).
pub fn is_audio_hash(hash: &str) -> bool {
    hash.starts_with(PREFIX)
}

/// The digest of `path`'s audio stream, `audio-sha256:<hex>`.
pub fn audio_hash(path: &Path) -> Result<String, AudioHashError> {
    let fail = |reason: String| AudioHashError { path: path.to_path_buf(), reason };
    let file = File::open(path).map_err(|e| fail(e.to_string()))?;
    let stream = MediaSourceStream::new(Box::new(file), Default::default());
    let mut hint = Hint::new();
    if let Some(extension) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(extension);
    }
    // Metadata is skipped, not parsed: pictures and tags need not fit symphonia's limits.
    let probed = shielded(|| {
        symphonia::default::get_probe().probe(&hint, stream, FormatOptions::default(), MetadataOptions::default())
    })
    .map_err(|panic| fail(format!("corrupt container: {panic}")))?;
    let mut format = probed.map_err(|e| fail(format!("not a recognised audio format: {e}")))?;
    let track = format.default_track(TrackType::Audio).ok_or_else(|| fail("the file has no audio track".into()))?;
    let track_id = track.id;
    let mut digest = Sha256::new();
    let mut packets = 0u64;
    loop {
        let packet = match shielded(|| format.next_packet()).map_err(|panic| fail(format!("corrupt audio: {panic}")))? {
            Ok(Some(packet)) => packet,
            Ok(None) => break,
            // The decoder stops at the same places (a stream cut short, a chained Ogg stream).
            Err(SymphoniaError::IoError(e)) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(SymphoniaError::ResetRequired) => break,
            Err(e) => return Err(fail(format!("corrupt audio: {e}"))),
        };
        if packet.track_id != track_id {
            continue;
        }
        // The length first, so the digest depends on where packets start and end too.
        digest.update((packet.data.len() as u64).to_le_bytes());
        digest.update(&packet.data);
        packets += 1;
    }
    if packets == 0 {
        return Err(fail("no audio packets in it".into()));
    }
    Ok(format!("{PREFIX}{:x}", digest.finalize()))
}

#[cfg(test)]
mod tests {
    use lofty::file::AudioFile as _;

    use super::*;

    const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/sample.flac");

    /// A FLAC with a bigger metadata block (a tag edit) has the same digest; one audio byte
    /// changed changes it, and the whole-file digest differs in both cases.
    #[test]
    fn a_tag_edit_keeps_the_digest_and_an_audio_edit_changes_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let original = std::fs::read(SAMPLE).expect("sample");
        let before = audio_hash(Path::new(SAMPLE)).expect("digest");
        assert!(is_audio_hash(&before), "{before}");

        let tagged = dir.path().join("tagged.flac");
        std::fs::copy(SAMPLE, &tagged).expect("copy");
        let mut file = lofty::flac::FlacFile::read_from(
            &mut File::open(&tagged).expect("open"),
            lofty::config::ParseOptions::new(),
        )
        .expect("parse");
        let mut comments = lofty::ogg::tag::VorbisComments::default();
        comments.insert("GENRE".into(), "a long genre to grow the block ".repeat(40));
        lofty::file::AudioFile::save_to(
            &{
                file.set_vorbis_comments(comments);
                file
            },
            &mut File::options().read(true).write(true).open(&tagged).expect("open rw"),
            lofty::config::WriteOptions::default(),
        )
        .expect("write tags");
        assert_ne!(std::fs::read(&tagged).expect("read"), original, "the tag edit changed the file");
        assert_eq!(audio_hash(&tagged).expect("digest"), before, "tags are not audio");

        let mut bytes = original.clone();
        let last = bytes.len() - 100;
        bytes[last] ^= 0x55;
        let edited = dir.path().join("edited.flac");
        std::fs::write(&edited, bytes).expect("write");
        assert_ne!(audio_hash(&edited).expect("digest"), before, "an audio byte changed");
    }

    #[test]
    fn a_file_that_is_not_audio_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("noise.mp3");
        std::fs::write(&path, b"not audio at all").expect("write");
        let error = audio_hash(&path).expect_err("not audio").to_string();
        assert!(error.contains("noise.mp3"), "{error}");
    }
}
