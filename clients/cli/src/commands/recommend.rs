//! `timbre recommend EXAMPLE...`: library tracks like the examples (and unlike the negative
//! ones), best first.

use timbre_proto::v1 as pb;

use super::example::resolve_with;
use super::Ctx;
use crate::client;
use crate::error::{Error, Outcome};
use crate::flags::{FilterArgs, M3uArgs, RecommendArgs, TrackTarget};
use crate::{json, text};

pub async fn run(ctx: &mut Ctx<'_>, args: &RecommendArgs) -> Result<Outcome, Error> {
    args.filter.check().map_err(Error::Local)?;
    let client = client::timbre(ctx.channel.clone());
    let positive = resolve_all(&client, &args.examples, "").await?;
    let negative = resolve_all(&client, &args.negatives, "--negative ").await?;
    let request = recommend_request(args, positive, negative);
    let response = client.clone().recommend(request).await?.into_inner();
    print(
        ctx,
        &response.tracks,
        args.model.as_deref(),
        &args.m3u,
        "no tracks to recommend (the library has none besides the examples, or the filters leave none)",
    )
}

/// Every target in order, each named in errors as `{flag}{as typed}`.
async fn resolve_all(
    client: &crate::client::Client,
    targets: &[TrackTarget],
    flag: &str,
) -> Result<Vec<pb::TrackRef>, Error> {
    let mut refs = Vec::with_capacity(targets.len());
    for target in targets {
        refs.push(resolve_with(client, target, &shown(flag, target)).await?);
    }
    Ok(refs)
}

/// An EXAMPLE as the user typed it, after its flag: `--negative ./b.flac`.
pub(super) fn shown(flag: &str, target: &TrackTarget) -> String {
    match target {
        TrackTarget::Id(id) => format!("{flag}{id}"),
        TrackTarget::Path(path) => format!("{flag}{}", path.display()),
    }
}

/// The tracks of `recommend` or `playlist`: as text or JSON lines, `empty` on stderr when
/// there are none (which is not an error), and to the playlist file when asked.
pub(super) fn print(
    ctx: &mut Ctx<'_>,
    tracks: &[pb::RecommendedTrack],
    model: Option<&str>,
    m3u: &M3uArgs,
    empty: &str,
) -> Result<Outcome, Error> {
    if let Some(file) = &m3u.m3u {
        crate::m3u::write(file, tracks, m3u.m3u_relative)
            .map_err(|e| Error::Local(format!("cannot write the playlist {}: {e}", file.display())))?;
        let _ = writeln!(ctx.err, "timbre: wrote {} tracks to {}", tracks.len(), file.display());
    }
    if ctx.json {
        for track in tracks {
            ctx.print_json(&json::recommended_track(track))?;
        }
    } else if !tracks.is_empty() {
        write!(ctx.out, "{}", text::recommended(tracks, model))?;
    }
    if tracks.is_empty() {
        let _ = writeln!(ctx.err, "timbre: {empty}");
    }
    Ok(Outcome::Success)
}

/// The request, from the flags and the examples already resolved (in the order given).
pub fn recommend_request(
    args: &RecommendArgs,
    positive: Vec<pb::TrackRef>,
    negative: Vec<pb::TrackRef>,
) -> pb::RecommendRequest {
    pb::RecommendRequest {
        positive,
        negative,
        model: args.model.clone().unwrap_or_default(),
        limit: args.limit,
        filter: recommend_filter(&args.filter),
        diversity: args.diversity,
        strategy: match args.strategy.as_str() {
            "best-score" => pb::RecommendStrategy::BestScore,
            _ => pb::RecommendStrategy::AverageVector,
        } as i32,
        history: None,
    }
}

/// The filter flags of `recommend` and `playlist`; none given leaves the filter unset ("any").
pub fn recommend_filter(filter: &FilterArgs) -> Option<pb::RecommendFilter> {
    if *filter == FilterArgs::default() {
        return None;
    }
    Some(pb::RecommendFilter {
        genres: filter.genres.clone(),
        exclude_artists: filter.exclude_artists.clone(),
        exclude_albums: filter.exclude_albums.clone(),
        min_duration_s: filter.min_duration,
        max_duration_s: filter.max_duration,
        exclude_seed_artist: filter.exclude_seed_artist,
        exclude_seed_album: filter.exclude_seed_album,
        bpm: filter.bpm.map(|(min, max)| pb::BpmRange { min, max, octaves: filter.bpm_octaves }),
        harmonic: filter.harmonic,
        key: filter.key.clone().unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use timbre_proto::v1::track_ref::Track as Which;

    use super::*;
    use crate::flags::{Cli, Command};

    fn args(line: &[&str]) -> RecommendArgs {
        let cli = Cli::try_parse_from(["timbre", "recommend"].iter().chain(line)).expect("parses");
        let Command::Recommend(args) = cli.command else { panic!("not recommend") };
        args
    }

    fn id(id: u64) -> pb::TrackRef {
        pb::TrackRef { track: Some(Which::TrackId(id)) }
    }

    fn path(path: &str) -> pb::TrackRef {
        pb::TrackRef { track: Some(Which::Path(path.into())) }
    }

    #[test]
    fn defaults_leave_the_filter_unset() {
        let request = recommend_request(&args(&["1"]), vec![id(1)], vec![]);
        assert_eq!(
            request,
            pb::RecommendRequest {
                positive: vec![id(1)],
                negative: vec![],
                model: String::new(),
                limit: 10,
                filter: None,
                diversity: 0.0,
                strategy: pb::RecommendStrategy::AverageVector as i32,
                history: None,
            }
        );
    }

    #[test]
    fn every_flag_reaches_the_request() {
        let args = args(&[
            "1",
            "/m/a.flac",
            "--negative",
            "7",
            "-n",
            "3",
            "--model",
            "cnn",
            "--diversity",
            "0.4",
            "--genre",
            "jazz",
            "--exclude-artist",
            "Band",
            "--exclude-album",
            "Live",
            "--exclude-seed-artist",
            "--min-duration",
            "60",
        ]);
        let request = recommend_request(&args, vec![id(1), path("/m/a.flac")], vec![id(7)]);
        assert_eq!(request.positive, [id(1), path("/m/a.flac")], "examples in the order given");
        assert_eq!(request.negative, [id(7)]);
        assert_eq!(request.model, "cnn");
        assert_eq!(request.limit, 3);
        assert_eq!(request.diversity, 0.4);
        assert_eq!(
            request.filter,
            Some(pb::RecommendFilter {
                genres: vec!["jazz".into()],
                exclude_artists: vec!["Band".into()],
                exclude_albums: vec!["Live".into()],
                min_duration_s: Some(60.0),
                max_duration_s: None,
                exclude_seed_artist: true,
                exclude_seed_album: false,
                bpm: None,
                harmonic: false,
                key: String::new(),
            })
        );
    }

    #[test]
    fn tempo_and_harmonic_flags_reach_the_filter() {
        let line = ["1", "--bpm", "120-130", "--bpm-octaves", "--harmonic", "--key", "A minor"];
        let filter = recommend_filter(&args(&line).filter).expect("filter");
        assert_eq!(filter.bpm, Some(pb::BpmRange { min: Some(120.0), max: Some(130.0), octaves: true }));
        assert!(filter.harmonic);
        assert_eq!(filter.key, "A minor");
        // An open end stays open; without --key the daemon takes the examples' keys.
        let filter = recommend_filter(&args(&["1", "--bpm=-100", "--harmonic"]).filter).expect("filter");
        assert_eq!(filter.bpm, Some(pb::BpmRange { min: None, max: Some(100.0), octaves: false }));
        assert_eq!(filter.key, "");
    }

    #[test]
    fn any_one_filter_flag_sets_the_filter() {
        for flag in [
            &["--genre", "rock"][..],
            &["--exclude-artist", "A"],
            &["--exclude-album", "B"],
            &["--exclude-seed-artist"],
            &["--exclude-seed-album"],
            &["--min-duration", "0"],
            &["--max-duration", "1:00"],
            &["--bpm", "120-"],
            &["--harmonic"],
        ] {
            let line: Vec<&str> = ["1"].iter().chain(flag).copied().collect();
            let filter = recommend_filter(&args(&line).filter);
            assert!(filter.is_some(), "{flag:?} sets no filter");
        }
        // A zero minimum is still sent: the proto tells "unset" from 0.
        let filter = recommend_filter(&args(&["1", "--min-duration", "0"]).filter).expect("filter");
        assert_eq!((filter.min_duration_s, filter.max_duration_s), (Some(0.0), None));
    }

    #[test]
    fn examples_are_named_as_typed() {
        assert_eq!(shown("", &TrackTarget::Id(42)), "42");
        assert_eq!(shown("--negative ", &TrackTarget::Path("./b.flac".into())), "--negative ./b.flac");
    }
}
