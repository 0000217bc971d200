//! `timbre live`: follow the daemon's live predictions until Ctrl-C or the stream ends.

use timbre_proto::v1 as pb;

use super::{interrupted, Ctx};
use crate::client;
use crate::error::{Error, Outcome};
use crate::flags::LiveArgs;
use crate::{json, text};

pub async fn run(ctx: &mut Ctx<'_>, args: &LiveArgs) -> Result<Outcome, Error> {
    let request = pb::WatchLiveRequest { source: args.source.clone().unwrap_or_default() };
    let interrupt = interrupted(ctx.catch_ctrl_c);
    tokio::pin!(interrupt);
    let mut stream = client::timbre(ctx.channel.clone()).watch_live(request).await?.into_inner();
    if ctx.stderr_is_terminal {
        // A quiet source sends nothing for a while: say that this is waiting, not stuck.
        let _ = writeln!(ctx.err, "timbre: following live predictions; Ctrl-C stops");
    }
    loop {
        let message = tokio::select! {
            message = stream.message() => message?,
            () = &mut interrupt => return Ok(Outcome::Success),
        };
        let Some(prediction) = message else { return Ok(Outcome::Success) };
        if ctx.json {
            ctx.print_json(&json::live_prediction(&prediction))?;
        } else {
            writeln!(ctx.out, "{}", text::live(&prediction))?;
        }
        // Each window as it comes, also when stdout is a pipe.
        ctx.out.flush()?;
    }
}
