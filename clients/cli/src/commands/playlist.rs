//! `timbre playlist --seed EXAMPLE`: a playlist that walks from the seed through similar
//! tracks, in play order.

use timbre_proto::v1 as pb;

use super::example::resolve_with;
use super::recommend::{print, recommend_filter, shown};
use super::Ctx;
use crate::client;
use crate::error::{Error, Outcome};
use crate::flags::PlaylistArgs;

pub async fn run(ctx: &mut Ctx<'_>, args: &PlaylistArgs) -> Result<Outcome, Error> {
    args.filter.check().map_err(Error::Local)?;
    let client = client::timbre(ctx.channel.clone());
    let seed = resolve_with(&client, &args.seed, &shown("--seed ", &args.seed)).await?;
    let response = client.clone().playlist(playlist_request(args, seed)).await?.into_inner();
    print(
        ctx,
        &response.tracks,
        args.model.as_deref(),
        &args.m3u,
        "no tracks for a playlist (the library has none besides the seed, or the filters leave none)",
    )
}

/// The request, from the flags and the seed already resolved.
pub fn playlist_request(args: &PlaylistArgs, seed: pb::TrackRef) -> pb::PlaylistRequest {
    pb::PlaylistRequest {
        seed: Some(seed),
        length: args.length,
        model: args.model.clone().unwrap_or_default(),
        no_repeat_artist: args.no_repeat_artist,
        filter: recommend_filter(&args.filter),
        history: None,
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use timbre_proto::v1::track_ref::Track as Which;

    use super::*;
    use crate::flags::{Cli, Command};

    fn args(line: &[&str]) -> PlaylistArgs {
        let cli = Cli::try_parse_from(["timbre", "playlist"].iter().chain(line)).expect("parses");
        let Command::Playlist(args) = cli.command else { panic!("not playlist") };
        args
    }

    #[test]
    fn seed_length_model_and_filters_reach_the_request() {
        let seed = pb::TrackRef { track: Some(Which::TrackId(42)) };
        let request = playlist_request(&args(&["--seed", "42"]), seed.clone());
        assert_eq!(
            request,
            pb::PlaylistRequest {
                seed: Some(seed.clone()),
                length: 20,
                model: String::new(),
                no_repeat_artist: false,
                filter: None,
                history: None,
            }
        );

        let args = args(&[
            "--seed",
            "42",
            "-n",
            "5",
            "-m",
            "cnn",
            "--no-repeat-artist",
            "--exclude-seed-album",
            "--max-duration",
            "4:00",
        ]);
        let request = playlist_request(&args, seed);
        assert_eq!(request.length, 5);
        assert_eq!(request.model, "cnn");
        assert!(request.no_repeat_artist);
        let filter = request.filter.expect("filter");
        assert!(filter.exclude_seed_album && !filter.exclude_seed_artist);
        assert_eq!((filter.min_duration_s, filter.max_duration_s), (None, Some(240.0)));
        assert!(filter.genres.is_empty() && filter.exclude_artists.is_empty() && filter.exclude_albums.is_empty());
    }

    #[test]
    fn a_harmonic_playlist_in_a_tempo_range() {
        let seed = pb::TrackRef { track: Some(Which::TrackId(7)) };
        let line = ["--seed", "7", "--bpm", "170-180", "--bpm-octaves", "--harmonic", "--key", "5A"];
        let filter = playlist_request(&args(&line), seed).filter.expect("filter");
        assert_eq!(filter.bpm, Some(pb::BpmRange { min: Some(170.0), max: Some(180.0), octaves: true }));
        assert!(filter.harmonic);
        assert_eq!(filter.key, "5A");
    }
}
