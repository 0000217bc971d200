//! Rewriting an audio file without ever leaving it damaged: the tags go into a copy beside
//! it, the copy's audio stream is checked packet for packet against the original's, and only
//! then does an atomic rename put it in place. Any failure removes the copy and leaves the
//! original as it was.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use crate::library::audio_hash::audio_hash;

#[derive(Debug, thiserror::Error)]
#[error("{}: {reason}; the file was left as it was", path.display())]
pub struct WriteError {
    pub path: PathBuf,
    pub reason: String,
}

/// Points in a rewrite where tests make things go wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The copy exists; its tags are not written yet.
    Copied,
    /// The copy is written and checked; the rename comes next.
    BeforeRename,
}

/// Called at each [`Stage`] with the original and the copy; an error aborts the rewrite.
pub type Hook<'a> = &'a dyn Fn(Stage, &Path, &Path) -> io::Result<()>;

/// What identifies the file being replaced: another file put at its path meanwhile (a
/// tag editor saving, a sync tool) must not be overwritten by a copy of the old one.
#[derive(Debug, PartialEq, Eq)]
struct Identity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
}

impl Identity {
    fn of(metadata: &fs::Metadata) -> Self {
        let mtime_ns = i128::from(metadata.mtime()) * 1_000_000_000 + i128::from(metadata.mtime_nsec());
        Identity { dev: metadata.dev(), ino: metadata.ino(), size: metadata.len(), mtime_ns }
    }
}

/// Rewrite `path`: `edit` writes the new tags into the copy it is given; `check` reads the
/// copy back and says what is wrong with it, if anything. Returns the audio digest, which
/// the rewrite proves unchanged.
pub fn rewrite(
    path: &Path,
    edit: impl FnOnce(&Path) -> Result<(), String>,
    check: impl FnOnce(&Path) -> Result<(), String>,
    hook: Hook<'_>,
) -> Result<String, WriteError> {
    let fail = |reason: String| WriteError { path: path.to_path_buf(), reason };
    let metadata = fs::metadata(path).map_err(|e| fail(format!("cannot read it: {e}")))?;
    if !metadata.is_file() {
        return Err(fail("not a regular file".into()));
    }
    let before = Identity::of(&metadata);
    let audio = audio_hash(path).map_err(|e| fail(format!("cannot read its audio: {}", e.reason)))?;
    let temp = temporary_path(path).ok_or_else(|| fail("no file name".into()))?;
    let result = (|| {
        copy_to_new(path, &temp).map_err(|e| format!("cannot copy it beside itself ({}): {e}", temp.display()))?;
        hook(Stage::Copied, path, &temp).map_err(|e| format!("writing the copy {}: {e}", temp.display()))?;
        edit(&temp)?;
        let written =
            audio_hash(&temp).map_err(|e| format!("the rewritten copy's audio is unreadable: {}", e.reason))?;
        if written != audio {
            return Err("writing the tags would have changed the audio stream".to_string());
        }
        check(&temp)?;
        // Same owner and permission bits as the original: the copy was made with this
        // process's user and umask. Another user's file that cannot be given back to it
        // (not running as root) is refused rather than taken over; a group is best effort.
        let _ = std::os::unix::fs::chown(&temp, Some(metadata.uid()), Some(metadata.gid()));
        let owner = fs::metadata(&temp).map_err(|e| format!("cannot read the copy back: {e}"))?.uid();
        if owner != metadata.uid() {
            return Err(format!("cannot keep its owner (uid {}) on the rewritten file", metadata.uid()));
        }
        fs::set_permissions(&temp, metadata.permissions()).map_err(|e| format!("cannot set its mode: {e}"))?;
        File::open(&temp).and_then(|f| f.sync_all()).map_err(|e| format!("cannot flush the copy to disk: {e}"))?;
        hook(Stage::BeforeRename, path, &temp).map_err(|e| format!("before replacing it: {e}"))?;
        match fs::metadata(path) {
            Ok(now) if Identity::of(&now) == before => {}
            Ok(_) => return Err("it changed while its tags were being written".into()),
            Err(e) => return Err(format!("it went away while its tags were being written ({e})")),
        }
        fs::rename(&temp, path).map_err(|e| format!("cannot replace it: {e}"))?;
        Ok(())
    })();
    if let Err(reason) = result {
        let _ = fs::remove_file(&temp);
        return Err(fail(reason));
    }
    // The rename is only durable once the directory entry is; the file itself already is.
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
        if let Err(error) = File::open(dir).and_then(|d| d.sync_all()) {
            tracing::warn!(path = %path.display(), "tags written, but the folder could not be flushed: {error}");
        }
    }
    Ok(audio)
}

/// `.<name>.timbre-<pid>.tmp` beside `path`: hidden, in the same folder (so the rename is
/// atomic, on the same file system), and never another process's.
fn temporary_path(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_string_lossy();
    Some(path.with_file_name(format!(".{name}.timbre-{}.tmp", std::process::id())))
}

/// Copy `from` to `to`, which must not exist yet (a stale copy of a crashed run is replaced).
fn copy_to_new(from: &Path, to: &Path) -> io::Result<()> {
    let _ = fs::remove_file(to);
    let mut source = File::open(from)?;
    let mut target = File::options().write(true).create_new(true).open(to)?;
    io::copy(&mut source, &mut target)?;
    target.sync_all()
}

#[cfg(test)]
mod tests {
    use lofty::file::AudioFile as _;

    use super::*;

    const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/sample.flac");

    fn sample_in(dir: &Path) -> PathBuf {
        let path = dir.join("song.flac");
        fs::copy(SAMPLE, &path).expect("copy the sample");
        path
    }

    /// Appends bytes after the audio: a change the audio digest does not see, as a tag write.
    fn append_tag(copy: &Path) -> Result<(), String> {
        use std::io::Write as _;
        let mut file = File::options().append(true).open(copy).map_err(|e| e.to_string())?;
        file.write_all(b"").map_err(|e| e.to_string())
    }

    fn no_hook(_: Stage, _: &Path, _: &Path) -> io::Result<()> {
        Ok(())
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .expect("list")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".timbre-"))
            .collect()
    }

    #[test]
    fn a_write_that_changes_the_audio_is_refused_and_the_original_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = sample_in(dir.path());
        let original = fs::read(&path).expect("read");
        let damage = |copy: &Path| -> Result<(), String> {
            let mut bytes = fs::read(copy).map_err(|e| e.to_string())?;
            let at = bytes.len() - 100;
            bytes[at] ^= 0x55;
            fs::write(copy, bytes).map_err(|e| e.to_string())
        };
        let error = rewrite(&path, damage, |_| Ok(()), &no_hook).expect_err("audio changed").to_string();
        assert!(error.contains("song.flac") && error.contains("audio stream"), "{error}");
        assert_eq!(fs::read(&path).expect("read"), original);
        assert!(leftovers(dir.path()).is_empty(), "{:?}", leftovers(dir.path()));
    }

    /// Seen failing with the identity check removed: the copy replaced the newer file.
    #[test]
    fn a_file_replaced_or_removed_mid_write_is_left_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = sample_in(dir.path());
        let replaced = b"another program saved this meanwhile".to_vec();
        let replace = |stage: Stage, original: &Path, _: &Path| {
            if stage == Stage::BeforeRename {
                fs::write(original.with_extension("new"), &replaced)?;
                fs::rename(original.with_extension("new"), original)?;
            }
            Ok(())
        };
        let error = rewrite(&path, append_tag, |_| Ok(()), &replace).expect_err("replaced").to_string();
        assert!(error.contains("song.flac") && error.contains("changed while"), "{error}");
        assert_eq!(fs::read(&path).expect("read"), replaced, "the newer file is kept");
        assert!(leftovers(dir.path()).is_empty());

        let path = sample_in(dir.path());
        let remove = |stage: Stage, original: &Path, _: &Path| {
            if stage == Stage::BeforeRename {
                fs::remove_file(original)?;
            }
            Ok(())
        };
        let error = rewrite(&path, append_tag, |_| Ok(()), &remove).expect_err("removed").to_string();
        assert!(error.contains("song.flac") && error.contains("went away"), "{error}");
        assert!(!path.exists(), "not brought back from the copy");
        assert!(leftovers(dir.path()).is_empty());
    }

    /// A full disk, as the copy is written: the error says so and names the file.
    #[test]
    fn a_full_disk_mid_write_leaves_the_original_intact() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = sample_in(dir.path());
        let original = fs::read(&path).expect("read");
        let full = |stage: Stage, _: &Path, _: &Path| match stage {
            Stage::Copied => Err(io::Error::from_raw_os_error(28)), // ENOSPC
            Stage::BeforeRename => Ok(()),
        };
        let error = rewrite(&path, append_tag, |_| Ok(()), &full).expect_err("disk full").to_string();
        assert!(error.contains("song.flac") && error.contains("No space left on device"), "{error}");
        assert_eq!(fs::read(&path).expect("read"), original);
        assert!(leftovers(dir.path()).is_empty());
    }

    /// Root ignores directory permissions, but not the immutable attribute (`chattr +i`, where
    /// the file system has it); with neither the test says so rather than passing vacuously.
    #[test]
    fn a_read_only_folder_is_an_error_naming_the_file() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let folder = dir.path().join("ro");
        fs::create_dir(&folder).expect("mkdir");
        let path = sample_in(&folder);
        let original = fs::read(&path).expect("read");
        fs::set_permissions(&folder, fs::Permissions::from_mode(0o555)).expect("chmod");
        let probe = folder.join("probe");
        let mut writable = File::create(&probe).is_ok();
        let chattr = |flag: &str| std::process::Command::new("chattr").arg(flag).arg(&folder).output();
        let mut immutable = false;
        if writable {
            let _ = fs::remove_file(&probe);
            immutable = chattr("+i").is_ok_and(|out| out.status.success());
            writable = File::create(&probe).is_ok();
        }
        // An edit that changes bytes, so that writing the original in place would show.
        let scribble = |file: &Path| -> Result<(), String> {
            use std::io::Write as _;
            let mut file = File::options().append(true).open(file).map_err(|e| e.to_string())?;
            file.write_all(b"TAG").map_err(|e| e.to_string())
        };
        let result = rewrite(&path, scribble, |_| Ok(()), &no_hook);
        if immutable {
            chattr("-i").expect("chattr -i");
        }
        fs::set_permissions(&folder, fs::Permissions::from_mode(0o755)).expect("chmod back");
        if writable {
            eprintln!("skipped: this user (root) can write into a read-only folder, and chattr +i is not available");
            return;
        }
        let error = result.expect_err("read-only").to_string();
        assert!(error.contains("song.flac") && error.contains("cannot copy it"), "{error}");
        assert_eq!(fs::read(&path).expect("read"), original);
    }

    #[test]
    fn a_rewrite_keeps_the_mode_and_leaves_no_copy_behind() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = sample_in(dir.path());
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).expect("chmod");
        let grow = |copy: &Path| -> Result<(), String> {
            let mut file = lofty::flac::FlacFile::read_from(
                &mut File::open(copy).map_err(|e| e.to_string())?,
                lofty::config::ParseOptions::new(),
            )
            .map_err(|e| e.to_string())?;
            let mut comments = lofty::ogg::tag::VorbisComments::default();
            comments.insert("GENRE".into(), "jazz".into());
            file.set_vorbis_comments(comments);
            let mut out = File::options().read(true).write(true).open(copy).map_err(|e| e.to_string())?;
            lofty::file::AudioFile::save_to(&file, &mut out, lofty::config::WriteOptions::default())
                .map_err(|e| e.to_string())
        };
        let before = fs::read(&path).expect("read");
        rewrite(&path, grow, |_| Ok(()), &no_hook).expect("rewrite");
        assert_ne!(fs::read(&path).expect("read"), before, "the tags were written");
        assert_eq!(fs::metadata(&path).expect("stat").permissions().mode() & 0o777, 0o640);
        assert!(leftovers(dir.path()).is_empty());
    }
}
