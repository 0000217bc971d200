//! The EXAMPLEs of `recommend` and `playlist` as the `TrackRef`s the daemon takes: a number is
//! a library id; a file the library knows goes by its path; any other file goes by its bytes,
//! analysed on the fly and not stored.

use std::future::Future;
use std::path::Path;

use timbre_proto::v1 as pb;
use timbre_proto::v1::track_ref::Track as Which;
use tonic::{Code, Status};

use super::absolute_path;
use super::classify::MAX_UPLOAD_BYTES;
use crate::error::{ends_the_command, status_line, Error};
use crate::flags::TrackTarget;

/// The `TrackRef` for `target`, asking `get_track` (the `GetTrack` RPC, by path) whether the
/// library knows a file. `shown` names the argument in errors, as the user typed it (with its
/// flag, for `--negative` and `--seed`).
///
/// A path is looked up as typed, made absolute, and then with its symlinks resolved (the
/// daemon stores library paths that way). When the library knows neither and the file is here,
/// its bytes are sent. A daemon that went away or refuses the token stays [`Error::Status`]
/// (UNAVAILABLE or UNAUTHENTICATED, so it reads as such); any other answer is an [`Error::Input`] that names the argument.
pub async fn resolve<F, Fut>(target: &TrackTarget, shown: &str, mut get_track: F) -> Result<pb::TrackRef, Error>
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Result<pb::Track, Status>>,
{
    let path = match target {
        TrackTarget::Id(id) => return Ok(track_ref(Which::TrackId(*id))),
        TrackTarget::Path(path) => path,
    };
    for candidate in library_paths(path) {
        match get_track(candidate.clone()).await {
            Ok(_) => return Ok(track_ref(Which::Path(candidate))),
            Err(status) if status.code() == Code::NotFound => continue,
            Err(status) if ends_the_command(status.code()) => return Err(status.into()),
            Err(status) => return Err(Error::Input(format!("{shown}: {}", status_line(&status)))),
        }
    }
    upload(path).map(track_ref).map_err(|why| Error::Input(format!("{shown}: {why}")))
}

/// [`resolve`] with the daemon's `GetTrack`.
pub async fn resolve_with(
    client: &crate::client::Client,
    target: &TrackTarget,
    shown: &str,
) -> Result<pb::TrackRef, Error> {
    resolve(target, shown, |path| {
        let mut client = client.clone();
        async move {
            let request = pb::GetTrackRequest { track: Some(pb::get_track_request::Track::Path(path)) };
            client.get_track(request).await.map(tonic::Response::into_inner)
        }
    })
    .await
}

fn track_ref(which: Which) -> pb::TrackRef {
    pb::TrackRef { track: Some(which) }
}

/// The paths under which the library may know `path`: absolute, then with symlinks and `..`
/// resolved when that differs (and the file exists here). Paths that are not UTF-8 cannot be
/// sent, so they are not looked up (the file may still be uploaded).
pub fn library_paths(path: &Path) -> Vec<String> {
    let mut paths = Vec::new();
    if let Ok(absolute) = absolute_path(path) {
        paths.push(absolute);
    }
    if let Some(canonical) = std::fs::canonicalize(path).ok().and_then(|p| p.into_os_string().into_string().ok()) {
        if !paths.contains(&canonical) {
            paths.push(canonical);
        }
    }
    paths
}

/// The file's bytes, with its name as the format hint. The error says why it cannot be sent.
pub fn upload(path: &Path) -> Result<Which, String> {
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err("not a track in the library, and no such file here".into())
        }
        Err(e) => return Err(format!("not a track in the library, and cannot read it here: {e}")),
    };
    if !metadata.is_file() {
        return Err("not a track in the library, and not an audio file here (a folder?)".into());
    }
    if metadata.len() > MAX_UPLOAD_BYTES {
        return Err(format!(
            "not a track in the library, and at {} bytes too large to send (at most {MAX_UPLOAD_BYTES})",
            metadata.len()
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("not a track in the library, and cannot read it: {e}"))?;
    let filename_hint = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    Ok(Which::Audio(pb::AudioInput { source: Some(pb::audio_input::Source::Encoded(bytes)), filename_hint }))
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::path::PathBuf;

    use super::*;

    /// A `GetTrack` that knows the paths in `library` and answers `other` for the rest, and
    /// records what it was asked.
    struct Library {
        paths: Vec<String>,
        other: Code,
        asked: RefCell<Vec<String>>,
    }

    impl Library {
        fn new(paths: &[&str], other: Code) -> Library {
            Library { paths: paths.iter().map(|p| p.to_string()).collect(), other, asked: RefCell::default() }
        }

        async fn resolve(&self, target: &TrackTarget) -> Result<pb::TrackRef, Error> {
            resolve(target, "EX", |path| {
                self.asked.borrow_mut().push(path.clone());
                let known = self.paths.contains(&path);
                let other = self.other;
                async move {
                    if known {
                        Ok(pb::Track { id: 1, path, ..Default::default() })
                    } else {
                        Err(Status::new(other, format!("no track at {path}")))
                    }
                }
            })
            .await
        }
    }

    fn absolute(path: &Path) -> String {
        std::path::absolute(path).expect("absolute").into_os_string().into_string().expect("utf-8")
    }

    #[tokio::test]
    async fn ids_are_sent_as_they_are_without_asking() {
        let library = Library::new(&[], Code::NotFound);
        let resolved = library.resolve(&TrackTarget::Id(42)).await.expect("id");
        assert_eq!(resolved.track, Some(Which::TrackId(42)));
        assert!(library.asked.borrow().is_empty());
    }

    #[tokio::test]
    async fn a_library_file_goes_by_its_absolute_path() {
        // It need not exist here: the daemon may run on another machine.
        let typed = PathBuf::from("music/song.flac");
        let library = Library::new(&[&absolute(&typed)], Code::NotFound);
        let resolved = library.resolve(&TrackTarget::Path(typed.clone())).await.expect("known");
        assert_eq!(resolved.track, Some(Which::Path(absolute(&typed))));
        assert_eq!(*library.asked.borrow(), [absolute(&typed)]);
    }

    #[tokio::test]
    async fn a_symlink_to_a_library_file_goes_by_the_resolved_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let real = dir.path().join("real.flac");
        std::fs::write(&real, b"fLaC").expect("write");
        let link = dir.path().join("link.flac");
        std::os::unix::fs::symlink(&real, &link).expect("symlink");
        let canonical = real.canonicalize().expect("canonical").into_os_string().into_string().expect("utf-8");
        let library = Library::new(&[&canonical], Code::NotFound);
        let resolved = library.resolve(&TrackTarget::Path(link.clone())).await.expect("known");
        assert_eq!(resolved.track, Some(Which::Path(canonical.clone())));
        assert_eq!(*library.asked.borrow(), [absolute(&link), canonical]);
    }

    #[tokio::test]
    async fn any_other_file_is_uploaded_with_its_name_as_hint() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("demo.wav");
        std::fs::write(&file, b"RIFF-bytes").expect("write");
        let library = Library::new(&[], Code::NotFound);
        let resolved = library.resolve(&TrackTarget::Path(file)).await.expect("uploaded");
        let Some(Which::Audio(audio)) = resolved.track else { panic!("{:?}", resolved.track) };
        assert_eq!(audio.source, Some(pb::audio_input::Source::Encoded(b"RIFF-bytes".to_vec())));
        assert_eq!(audio.filename_hint, "demo.wav");
    }

    #[tokio::test]
    async fn a_file_neither_in_the_library_nor_here_is_named() {
        let library = Library::new(&[], Code::NotFound);
        let error = library.resolve(&TrackTarget::Path("/no/such/song.flac".into())).await.expect_err("missing");
        assert!(matches!(error, Error::Input(_)), "{error:?}");
        assert_eq!(error.to_string(), "EX: not a track in the library, and no such file here");
        assert_eq!(error.exit_status(), 1);

        let dir = tempfile::tempdir().expect("tempdir");
        let error = library.resolve(&TrackTarget::Path(dir.path().into())).await.expect_err("a folder");
        assert!(error.to_string().starts_with("EX: not a track in the library, and not an audio file"), "{error}");
    }

    #[tokio::test]
    async fn other_answers_stop_with_the_argument_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("song.flac");
        std::fs::write(&file, b"fLaC").expect("write");
        let target = TrackTarget::Path(file);

        let refused = Library::new(&[], Code::InvalidArgument);
        let error = refused.resolve(&target).await.expect_err("refused");
        assert!(matches!(error, Error::Input(_)), "{error:?}");
        assert!(error.to_string().starts_with("EX: INVALID_ARGUMENT: no track at /"), "{error}");
        assert_eq!(refused.asked.borrow().len(), 1, "stops at the first refusal");

        // A daemon that went away is reported as unreachable by the caller, not as this input.
        let gone = Library::new(&[], Code::Unavailable);
        let error = gone.resolve(&target).await.expect_err("gone");
        assert!(matches!(&error, Error::Status(s) if s.code() == Code::Unavailable), "{error:?}");
    }
}
