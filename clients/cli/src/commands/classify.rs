//! `timbre classify FILE...`: each file's predictions, one file at a time, going on past
//! files that fail.

use std::path::Path;

use timbre_proto::v1 as pb;
use timbre_proto::v1::classify_request::Source;
use tonic::Code;

use super::{absolute_path, Ctx};
use crate::client;
use crate::error::{ends_the_command, status_message, Error, Outcome};
use crate::flags::ClassifyArgs;
use crate::{json, text};

/// Protobuf cannot carry a message of 2 GiB or more; files near that are refused here rather
/// than read into memory. The daemon's own limit is usually far lower, and it names it.
pub const MAX_UPLOAD_BYTES: u64 = (2 << 30) - (1 << 20);

pub async fn run(ctx: &mut Ctx<'_>, args: &ClassifyArgs) -> Result<Outcome, Error> {
    let mut client = client::timbre(ctx.channel.clone());
    let mut outcome = Outcome::Success;
    for file in &args.files {
        let shown = file.display().to_string();
        let request = match classify_request(file, args) {
            Ok(request) => request,
            Err(why) => {
                ctx.complain(&shown, &why);
                outcome = Outcome::SomeFailed;
                continue;
            }
        };
        let mut response = match client.classify(request).await {
            Ok(response) => response.into_inner(),
            // The daemon is gone, refuses the token, or does not serve Classify: every file
            // would fail the same way.
            Err(status) if ends_the_command(status.code()) || status.code() == Code::Unimplemented => {
                return Err(status.into())
            }
            Err(status) => {
                ctx.complain(&shown, &status_message(&status));
                outcome = Outcome::SomeFailed;
                continue;
            }
        };
        // Uploaded audio comes back without a path: name it as the user did.
        if response.path.is_empty() {
            response.path = shown;
        }
        // The daemon sent every label: a tag model's tags above the threshold may be more
        // than --top-k. JSON and text both show what is picked here.
        let shown = text::Shown::new(args.top_k, args.tag_threshold);
        response.predictions.iter_mut().for_each(|p| shown.trim(p));
        if ctx.json {
            ctx.print_json(&json::classify_response(&response, args.segments))?;
        } else {
            write!(ctx.out, "{}", text::classify(&response.path, &response, args.segments, shown))?;
        }
    }
    Ok(outcome)
}

/// The request for one file: its bytes and name, or with `--path` its absolute path. The
/// error is the reason to print after the file's name.
pub fn classify_request(file: &Path, args: &ClassifyArgs) -> Result<pb::ClassifyRequest, String> {
    let (source, filename_hint) = if args.by_path {
        (Source::Path(absolute_path(file).map_err(|e| e.to_string())?), String::new())
    } else {
        let size = std::fs::metadata(file).map_err(|e| e.to_string())?.len();
        if size > MAX_UPLOAD_BYTES {
            return Err(format!(
                "{size} bytes is too large to send (at most {MAX_UPLOAD_BYTES}); \
                 use --path for a file under the daemon's library folders"
            ));
        }
        let bytes = std::fs::read(file).map_err(|e| e.to_string())?;
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        (Source::Encoded(bytes), name)
    };
    Ok(pb::ClassifyRequest {
        source: Some(source),
        filename_hint,
        models: args.models.clone(),
        // Every label: which to show depends on each model's kind, known from the answer.
        top_k: 0,
        include_segments: args.segments,
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn args(by_path: bool) -> ClassifyArgs {
        ClassifyArgs {
            files: vec![],
            by_path,
            models: vec!["cnn".into()],
            top_k: 5,
            tag_threshold: 0.3,
            segments: true,
        }
    }

    #[test]
    fn uploads_the_bytes_with_the_file_name_as_hint() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("song.flac");
        std::fs::write(&file, b"fLaC-bytes").expect("write");
        let request = classify_request(&file, &args(false)).expect("request");
        assert_eq!(request.source, Some(Source::Encoded(b"fLaC-bytes".to_vec())));
        assert_eq!(request.filename_hint, "song.flac");
        assert_eq!(request.models, ["cnn"]);
        assert_eq!(request.top_k, 0, "every label: the client picks them by the model's kind");
        assert!(request.include_segments);
    }

    #[test]
    fn with_path_sends_the_absolute_path_and_reads_nothing() {
        let request = classify_request(Path::new("not/here.mp3"), &args(true)).expect("request");
        let cwd = std::env::current_dir().expect("cwd");
        let Some(Source::Path(path)) = request.source else { panic!("{:?}", request.source) };
        assert_eq!(PathBuf::from(path), cwd.join("not/here.mp3"));
        assert_eq!(request.filename_hint, "", "no hint for a path");
    }

    #[test]
    fn a_missing_file_says_why() {
        let why = classify_request(Path::new("/no/such/file.wav"), &args(false)).expect_err("missing");
        assert!(why.contains("No such file"), "{why}");
    }
}
