//! `timbre path FROM TO`: tracks that lead from one track to another, in play order.

use timbre_proto::v1 as pb;

use super::example::resolve_with;
use super::recommend::{print, recommend_filter, shown};
use super::Ctx;
use crate::client;
use crate::error::{Error, Outcome};
use crate::flags::PathArgs;

pub async fn run(ctx: &mut Ctx<'_>, args: &PathArgs) -> Result<Outcome, Error> {
    args.filter.check().map_err(Error::Local)?;
    let client = client::timbre(ctx.channel.clone());
    let from = resolve_with(&client, &args.from, &shown("FROM ", &args.from)).await?;
    let to = resolve_with(&client, &args.to, &shown("TO ", &args.to)).await?;
    let mut waypoints = Vec::with_capacity(args.via.len());
    for via in &args.via {
        waypoints.push(resolve_with(&client, via, &shown("--via ", via)).await?);
    }
    let response = client.clone().path(path_request(args, from, to, waypoints)).await?.into_inner();
    print(
        ctx,
        &response.tracks,
        args.model.as_deref(),
        &args.m3u,
        "no tracks for a path (the library has none besides the ends, or the filters leave none)",
    )
}

/// The request, from the flags and the ends already resolved.
pub fn path_request(
    args: &PathArgs,
    from: pb::TrackRef,
    to: pb::TrackRef,
    waypoints: Vec<pb::TrackRef>,
) -> pb::PathRequest {
    pb::PathRequest {
        from: Some(from),
        to: Some(to),
        length: args.length,
        model: args.model.clone().unwrap_or_default(),
        no_repeat_artist: args.no_repeat_artist,
        filter: recommend_filter(&args.filter),
        waypoints,
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use timbre_proto::v1::track_ref::Track as Which;

    use super::*;
    use crate::flags::{Cli, Command, TrackTarget};

    #[test]
    fn ends_waypoints_length_and_filters_reach_the_request() {
        let cli = Cli::try_parse_from(["timbre", "path", "1", "2", "-n", "7", "--via", "3", "--no-repeat-artist"])
            .expect("parses");
        let Command::Path(args) = cli.command else { panic!("not path") };
        assert_eq!((&args.from, &args.to), (&TrackTarget::Id(1), &TrackTarget::Id(2)));
        assert_eq!(args.via, [TrackTarget::Id(3)]);
        let id = |id| pb::TrackRef { track: Some(Which::TrackId(id)) };
        let request = path_request(&args, id(1), id(2), vec![id(3)]);
        assert_eq!(request.length, 7);
        assert!(request.no_repeat_artist && request.filter.is_none() && request.model.is_empty());
        assert_eq!((request.from, request.to, request.waypoints), (Some(id(1)), Some(id(2)), vec![id(3)]));
        let default = Cli::try_parse_from(["timbre", "path", "1", "2"]).expect("parses");
        let Command::Path(args) = default.command else { panic!("not path") };
        assert_eq!(args.length, 10);
    }
}
