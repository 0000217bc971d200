//! `timbre track ID|PATH`: one library track, by id or by path.

use timbre_proto::v1 as pb;
use timbre_proto::v1::get_track_request::Track as Which;

use super::{absolute_path, Ctx};
use crate::client;
use crate::error::{Error, Outcome};
use crate::flags::{TrackArgs, TrackTarget};
use crate::{json, text};

pub async fn run(ctx: &mut Ctx<'_>, args: &TrackArgs) -> Result<Outcome, Error> {
    let request = get_track_request(&args.track)?;
    let track = client::timbre(ctx.channel.clone()).get_track(request).await?.into_inner();
    if ctx.json {
        ctx.print_json(&json::track(&track))?;
    } else {
        write!(ctx.out, "{}", text::track(&track, args.tag_threshold))?;
    }
    Ok(Outcome::Success)
}

/// By id, or by the path made absolute (library paths are absolute).
pub fn get_track_request(target: &TrackTarget) -> Result<pb::GetTrackRequest, Error> {
    let which = match target {
        TrackTarget::Id(id) => Which::TrackId(*id),
        TrackTarget::Path(path) => Which::Path(absolute_path(path)?),
    };
    Ok(pb::GetTrackRequest { track: Some(which) })
}
