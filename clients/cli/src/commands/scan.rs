//! `timbre scan`: runs a library scan for as long as its progress stream is open, shows the
//! progress if asked, and ends with a summary.

use std::time::Instant;

use timbre_proto::v1 as pb;

use super::{absolute_path, interrupted, Ctx};
use crate::client;
use crate::error::{Error, Outcome};
use crate::flags::ScanArgs;
use crate::progress::ScanDisplay;
use crate::{json, text};

pub async fn run(ctx: &mut Ctx<'_>, args: &ScanArgs) -> Result<Outcome, Error> {
    let request = scan_request(args)?;
    let started = Instant::now();
    let interrupt = interrupted(ctx.catch_ctrl_c);
    tokio::pin!(interrupt);
    let mut stream = client::timbre(ctx.channel.clone()).scan(request).await?.into_inner();
    // With --json the JSON lines are the progress.
    let mut display = ScanDisplay::new(args.wait && !ctx.json, ctx.stderr_is_terminal);
    let mut last = pb::ScanProgress::default();
    let finished = loop {
        let message = tokio::select! {
            message = stream.message() => message,
            () = &mut interrupt => {
                display.finish();
                // Dropping the stream cancels the call, which stops the scan.
                let _ = writeln!(
                    ctx.err,
                    "timbre: scan interrupted after {} of {} files ({} failed); the tracks analysed so far stay \
                     in the library",
                    last.done, last.total, last.failed
                );
                return Ok(Outcome::Interrupted);
            }
        };
        let progress = match message {
            Ok(Some(progress)) => progress,
            Ok(None) => break false,
            Err(status) => {
                display.finish();
                return Err(status.into());
            }
        };
        if ctx.json {
            ctx.print_json(&json::scan_progress(&progress))?;
        }
        display.update(&progress, ctx.err, Instant::now());
        last = progress;
        if last.finished {
            break true;
        }
    };
    display.finish();
    if !finished {
        return Err(Error::Incomplete(format!(
            "the scan stream ended before the scan finished ({} of {} files done, {} failed)",
            last.done, last.total, last.failed
        )));
    }
    if !ctx.json {
        writeln!(ctx.out, "{}", text::scan_summary(&last, started.elapsed()))?;
    }
    if last.failed > 0 {
        let what = if last.failed == 1 { "1 file".to_string() } else { format!("{} files", last.failed) };
        let _ = writeln!(
            ctx.err,
            "timbre: {what} could not be analysed; `timbre tracks` shows the failed ones and \
             `timbre track ID` says why"
        );
        return Ok(Outcome::SomeFailed);
    }
    Ok(Outcome::Success)
}

/// Roots are made absolute here: the daemon's working directory is not ours.
pub fn scan_request(args: &ScanArgs) -> Result<pb::ScanRequest, Error> {
    let roots = args.roots.iter().map(|root| absolute_path(root)).collect::<Result<_, _>>()?;
    Ok(pb::ScanRequest { roots, full: args.full })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn roots_are_sent_absolute_and_full_is_passed_on() {
        let args = ScanArgs { wait: false, full: true, roots: vec![PathBuf::from("/m"), PathBuf::from("new")] };
        let request = scan_request(&args).expect("request");
        let cwd = std::env::current_dir().expect("cwd");
        assert_eq!(request.roots, ["/m".to_string(), cwd.join("new").to_string_lossy().into_owned()]);
        assert!(request.full);
        let none = scan_request(&ScanArgs { wait: true, full: false, roots: vec![] }).expect("request");
        assert!(none.roots.is_empty(), "empty: every library folder");
        assert!(!none.full);
    }
}
