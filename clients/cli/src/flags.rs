//! The command line: every command and flag, documented once. The doc comments here are the
//! `--help` text; the examples sit in each command's `after_help`.
//!
//! Parsing does no I/O: paths stay as typed and are made absolute by the command that sends
//! them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Where `timbred serve` listens unless told otherwise.
pub const DEFAULT_ADDR: &str = "http://127.0.0.1:50051";

const EXIT_STATUS: &str = "\
Exit status: 0 on success; 1 when the daemon refused a request or some input failed (each
failure is named on stderr); 2 when timbred cannot be reached, refuses the token, or the
command line is wrong; 130 when a scan is interrupted. Output to a closed pipe (`timbre tracks | head`) counts as
success.

Examples:
  timbre health
  timbre classify song.flac
  timbre --addr http://music-box:50051 tracks --label jazz
  TIMBRE_TOKEN=$(cat token) timbre --addr https://music-box:50051 --ca-cert ca.pem tracks
  timbre --json track 42 | jq .predictions
  timbre recommend 42 song.flac --negative 17
  timbre --json playlist --seed 42 -n 30 | jq -r .track.path > mix.m3u";

/// timbre: ask a running timbred what your music sounds like.
///
/// Every command talks to the daemon over gRPC (the `timbre.v1.Timbre` service). Start the
/// daemon with `timbred serve`; point the client at it with --addr or TIMBRE_ADDR.
#[derive(Debug, Parser)]
#[command(name = "timbre", version, max_term_width = 100, after_help = EXIT_STATUS)]
pub struct Cli {
    /// Address of the daemon, as a URL: `http://host:port`, or `https://host:port` for a daemon
    /// with TLS; a bare `host:port` means http.
    #[arg(
        long,
        global = true,
        env = "TIMBRE_ADDR",
        default_value = DEFAULT_ADDR,
        value_name = "URL",
        help_heading = "Global options"
    )]
    pub addr: String,
    /// Bearer token for a daemon that asks for one (its server.auth.tokens_file), sent with
    /// every call. TIMBRE_TOKEN is better: a flag's value shows in the process list.
    #[arg(
        long,
        global = true,
        env = "TIMBRE_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        help_heading = "Global options"
    )]
    pub token: Option<String>,
    /// CA certificate (PEM) to trust for an https:// --addr, such as the one that signed the
    /// daemon's certificate [default: the system's trusted roots].
    #[arg(long, global = true, value_name = "FILE", help_heading = "Global options")]
    pub ca_cert: Option<PathBuf>,
    /// Print JSON instead of text: one object per line, with the field names of the proto
    /// messages and enums by their proto names (for example "ANALYSIS_STATE_ANALYSED").
    #[arg(long, global = true, help_heading = "Global options")]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check that the daemon is up and serving (exit 0 when it is, 1 when it is not).
    #[command(after_help = "Example:\n  timbre health && echo up")]
    Health,
    /// Classify audio files with the daemon's models, without adding them to the library.
    ///
    /// Each file is read here and its bytes are sent to the daemon, so any file works,
    /// in the library or not. With --path the daemon reads the file itself instead (only
    /// allowed under its library folders). A file that fails is named on stderr and the
    /// others go on; the exit status is then 1.
    #[command(after_help = "\
Examples:
  timbre classify song.flac other.mp3
  timbre classify --model cnn --top-k 5 --segments song.flac
  timbre --json classify ~/Music/*.flac > predictions.jsonl")]
    Classify(ClassifyArgs),
    /// Scan library folders: find new and changed audio files and analyse them.
    ///
    /// The scan runs while this command does: interrupting it (Ctrl-C) stops the scan, and
    /// the tracks analysed so far stay in the library. The last line says how many files were
    /// scanned and how many failed; the exit status is 1 when any failed.
    #[command(after_help = "\
Examples:
  timbre scan --wait
  timbre scan --full ~/Music/new-albums
  timbre --json scan | tail -n 1")]
    Scan(ScanArgs),
    /// List the tracks in the library, optionally filtered, as a table.
    ///
    /// Columns: id, analysis state, the most probable label of each model, duration,
    /// artist – title, path. Every page is fetched unless --page-size asks for one page.
    #[command(after_help = "\
Examples:
  timbre tracks
  timbre tracks --model cnn --label jazz
  timbre tracks --genre Rock --page-size 20
  timbre --json tracks | jq -r 'select(.state == \"ANALYSIS_STATE_FAILED\") | .path'")]
    Tracks(TracksArgs),
    /// Show everything the library knows about one track: file, tags, state, predictions.
    #[command(after_help = "\
Examples:
  timbre track 42
  timbre track ~/Music/album/01-song.flac
  timbre track ./123    (a file named 123, not track id 123)")]
    Track(TrackArgs),
    /// List the daemon's plugins, and any it refused with the reason.
    #[command(after_help = "Example:\n  timbre plugins")]
    Plugins,
    /// Follow the predictions the daemon makes on its live sources, until Ctrl-C.
    ///
    /// Prints one line per analysed window: the source, the window's time since the source
    /// started, and each model's most probable labels.
    #[command(after_help = "\
Examples:
  timbre live
  timbre live --source radio
  timbre --json live --source soundcard | jq -c '.predictions[0].labels[0]'")]
    Live(LiveArgs),
    /// Recommend library tracks that sound like the examples, and unlike the --negative ones.
    ///
    /// An EXAMPLE is a library track id (a number) or an audio file. A file the library knows
    /// is sent by its path; any other file is read here and its bytes are sent, to be analysed
    /// on the fly and not stored (`./123` is a file named 123, not track id 123). Library
    /// tracks given as examples are never recommended back.
    ///
    /// Tracks are ranked by the cosine similarity of their embeddings to the examples', in one
    /// model's embedding space. One line per track: rank, score (-1 to 1, higher is closer), id,
    /// top label, artist – title, path. No tracks at all (an empty library, or filters that
    /// leave none) is said on stderr, and is not an error.
    #[command(after_help = "\
Examples:
  timbre recommend 42
  timbre recommend song.flac other.mp3 --negative 17 -n 20
  timbre recommend 42 --genre jazz --genre blues --exclude-seed-artist --diversity 0.3
  timbre recommend ~/Downloads/demo.wav --min-duration 2:00 --max-duration 6:00
  timbre recommend 42 --bpm 120-130 --bpm-octaves --harmonic
  timbre recommend 42 --harmonic --key \"A minor\"    (or --key 8A)
  timbre --json recommend 42 | jq -r .track.path")]
    Recommend(RecommendArgs),
    /// Build a playlist that starts from a seed and walks from track to similar track.
    ///
    /// The seed is an EXAMPLE as for `timbre recommend` (a library track id, or an audio file,
    /// from the library or not); it is not part of the playlist itself. No track comes twice.
    /// One line per track, in play order: position, score (the cosine similarity to the track
    /// before it, -1 to 1), id, top label, artist – title, path.
    #[command(after_help = "\
Examples:
  timbre playlist --seed 42
  timbre playlist --seed song.flac -n 50 --no-repeat-artist
  timbre playlist --seed 42 --genre rock --exclude-seed-album --max-duration 7:00
  timbre playlist --seed 42 -n 30 --m3u ~/Music/mix.m3u8 --m3u-relative
  timbre playlist --seed 42 --bpm 120-130 --bpm-octaves --harmonic
  timbre --json playlist --seed 42 | jq -r .track.path")]
    Playlist(PlaylistArgs),
    /// Build a path of tracks that leads from one track to another through the embedding space.
    ///
    /// FROM and TO are EXAMPLEs as for `timbre recommend`; neither is part of the path. Each
    /// step is close to the one before it and closer to TO; `--via` bends the path through
    /// waypoints. One line per track, in play order, as for `timbre playlist`.
    #[command(after_help = "\
Examples:
  timbre path 42 17 -n 8
  timbre path calm.flac loud.flac -n 12 --no-repeat-artist --via 99
  timbre path 42 17 --m3u ~/Music/journey.m3u8")]
    Path(PathArgs),
    /// Draw the library as a map of one model's embedding space: each track a point at its
    /// first two principal components, coloured by its genre tag, another tag, or a model's
    /// most probable label, with a legend. PNG or SVG by the file's extension.
    ///
    /// Tracks close on the map sound alike to the model; a genre that forms its own island
    /// is one the model tells apart. Only tracks the model has analysed are drawn.
    #[command(after_help = "\
Examples:
  timbre map --out library.png
  timbre map --out library.svg --model musicnn-msd --color-by label:genre
  timbre map --out artists.png --color-by artist")]
    Map(MapArgs),
    /// Print shell completions or the man page, generated from these definitions (for
    /// packagers; needs no daemon).
    #[command(after_help = "\
Examples:
  timbre generate bash > /usr/share/bash-completion/completions/timbre
  timbre generate zsh > /usr/share/zsh/vendor-completions/_timbre
  timbre generate fish > ~/.config/fish/completions/timbre.fish
  timbre generate man > /usr/share/man/man1/timbre.1")]
    Generate(GenerateArgs),
}

#[derive(Debug, Args)]
pub struct MapArgs {
    /// The picture to write: .png or .svg.
    #[arg(long, short, value_name = "FILE", value_parser = parse_picture_path)]
    pub out: PathBuf,
    /// The model whose embedding space is drawn.
    #[arg(long, value_name = "M", default_value = "musicnn-msd")]
    pub model: String,
    /// What colours a point: `genre`, `artist` or `album` (the file's tag), or `label:MODEL`
    /// (MODEL's most probable label for the track).
    #[arg(long, value_name = "WHAT", default_value = "genre", value_parser = parse_color_by)]
    pub color_by: ColorBy,
    /// Tracks fetched per call (each carries its embedding).
    #[arg(long, value_name = "N", default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..))]
    pub page_size: u32,
}

/// What colours a point on the map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColorBy {
    Genre,
    Artist,
    Album,
    /// A model's most probable label.
    Label(String),
}

fn parse_color_by(text: &str) -> Result<ColorBy, String> {
    match text {
        "genre" => Ok(ColorBy::Genre),
        "artist" => Ok(ColorBy::Artist),
        "album" => Ok(ColorBy::Album),
        _ => match text.strip_prefix("label:") {
            Some(model) if !model.is_empty() => Ok(ColorBy::Label(model.to_string())),
            _ => Err(format!("{text:?}: expected genre, artist, album or label:MODEL")),
        },
    }
}

fn parse_picture_path(text: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(text);
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("png" | "svg") => Ok(path),
        _ => Err(format!("{text:?}: the picture is written as .png or .svg")),
    }
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// What to print.
    #[arg(value_enum)]
    pub what: Generated,
}

/// The shells clap_complete knows, and the man page (shared with `timbred generate`).
pub use timbre_generate::Generated;

#[derive(Debug, Args)]
pub struct ClassifyArgs {
    /// Audio files to classify (FLAC, MP3, Ogg Vorbis, WAV, ...).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Send each file's absolute path rather than its bytes; the daemon reads the file, which
    /// must be under one of its library folders.
    #[arg(long = "path")]
    pub by_path: bool,
    /// Run only this model (repeat, or separate with commas). Default: every loaded model.
    #[arg(short, long = "model", value_name = "NAME", value_delimiter = ',')]
    pub models: Vec<String>,
    /// Show at most this many labels per class model (and per segment); 0 shows every label.
    #[arg(short = 'k', long, value_name = "N", default_value_t = 3)]
    pub top_k: u32,
    /// For a tag model (independent tags, such as musicnn-msd's moods and instruments), show
    /// every tag at least this probable instead of the top N; 0 shows every tag.
    #[arg(long, value_name = "P", default_value_t = crate::text::TAG_THRESHOLD, value_parser = parse_probability)]
    pub tag_threshold: f32,
    /// Also show what each model predicts for every segment of the file.
    #[arg(long)]
    pub segments: bool,
}

/// A probability, 0 to 1.
fn parse_probability(text: &str) -> Result<f32, String> {
    match text.parse::<f32>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!("'{text}' is not a probability from 0 to 1")),
    }
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Show progress on stderr while scanning: a progress bar on a terminal, otherwise a line
    /// at most once a second. Without it only the final summary is printed.
    #[arg(long)]
    pub wait: bool,
    /// Re-analyse every file, including those unchanged since the last scan (and retry those
    /// that failed).
    #[arg(long)]
    pub full: bool,
    /// Folders to scan, recursively (default: every library folder of the daemon).
    #[arg(value_name = "ROOT")]
    pub roots: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct TracksArgs {
    /// Only tracks whose genre tag is this (case-insensitive).
    #[arg(long, value_name = "G")]
    pub genre: Option<String>,
    /// Only tracks analysed by this model; the label column then shows only this model.
    #[arg(long, value_name = "M")]
    pub model: Option<String>,
    /// Only tracks whose most probable label is this (under --model, or under any model).
    #[arg(long, value_name = "L")]
    pub label: Option<String>,
    /// Only tracks whose tempo is in this range of BPM: `120-130`, `120-` or `-130`.
    #[arg(long, value_name = "MIN-MAX", value_parser = parse_bpm_range)]
    pub bpm: Option<(Option<f64>, Option<f64>)>,
    /// With --bpm: also accept tracks at half or double a tempo in the range.
    #[arg(long, requires = "bpm")]
    pub bpm_octaves: bool,
    /// Ask for pages of N tracks and show only the first page (unless --all).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub page_size: Option<u32>,
    /// Fetch every page, also with --page-size (every page is the default without it).
    #[arg(long)]
    pub all: bool,
}

impl TracksArgs {
    /// Whether to follow `next_page_token` to the last page.
    pub fn every_page(&self) -> bool {
        self.all || self.page_size.is_none()
    }
}

#[derive(Debug, Args)]
pub struct TrackArgs {
    /// The track: its library id (a number), or the path of its file.
    #[arg(value_name = "ID|PATH", value_parser = parse_track_target)]
    pub track: TrackTarget,
    /// For a tag model, show every tag at least this probable (see `classify`).
    #[arg(long, value_name = "P", default_value_t = crate::text::TAG_THRESHOLD, value_parser = parse_probability)]
    pub tag_threshold: f32,
}

/// Which track `timbre track` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackTarget {
    Id(u64),
    /// As typed; made absolute before it is sent.
    Path(PathBuf),
}

/// A number is an id; anything else is a path (`./123` names a file called 123).
fn parse_track_target(arg: &str) -> Result<TrackTarget, String> {
    if arg.is_empty() {
        return Err("give a track id or a file path".into());
    }
    Ok(match arg.parse::<u64>() {
        Ok(id) => TrackTarget::Id(id),
        Err(_) => TrackTarget::Path(PathBuf::from(arg)),
    })
}

#[derive(Debug, Args)]
pub struct LiveArgs {
    /// Follow only this live source, by its name in the daemon's configuration.
    #[arg(long, value_name = "NAME")]
    pub source: Option<String>,
}

#[derive(Debug, Args)]
pub struct RecommendArgs {
    /// Tracks to find more like: library track ids, or audio files (in the library or not).
    #[arg(required = true, value_name = "EXAMPLE", value_parser = parse_track_target)]
    pub examples: Vec<TrackTarget>,
    /// A track to move away from: an id or a file, as for EXAMPLE. Repeat for more.
    #[arg(long = "negative", value_name = "EXAMPLE", value_parser = parse_track_target)]
    pub negatives: Vec<TrackTarget>,
    /// Show at most this many tracks (at least 1; the daemon caps it at its maximum). Fewer
    /// come back when the filters leave fewer.
    #[arg(short = 'n', long, value_name = "N", default_value_t = 10, value_parser = at_least_one())]
    pub limit: u32,
    /// Search this model's embedding space, and show its top label. Default: the daemon's
    /// default recommendation model (the label shown is then the first model's).
    #[arg(short, long, value_name = "M")]
    pub model: Option<String>,
    /// Trade similarity for variety, from 0 (rank by similarity alone) to 1 (favour tracks
    /// unlike those already picked as much as possible).
    #[arg(long, value_name = "X", default_value_t = 0.0, value_parser = parse_diversity)]
    pub diversity: f32,
    /// How positive and negative examples combine: `average` (one query vector:
    /// avg(positive) + (avg(positive) − avg(negative))) or `best-score` (each track by its
    /// best match to a positive against its best match to a negative).
    #[arg(long, value_name = "STRATEGY", default_value = "average", value_parser = ["average", "best-score"])]
    pub strategy: String,
    #[command(flatten)]
    pub filter: FilterArgs,
    #[command(flatten)]
    pub m3u: M3uArgs,
}

#[derive(Debug, Args)]
pub struct PlaylistArgs {
    /// Where the playlist starts: a library track id, or an audio file (in the library or not).
    #[arg(long, required = true, value_name = "EXAMPLE", value_parser = parse_track_target)]
    pub seed: TrackTarget,
    /// Number of tracks wanted (at least 1; the daemon caps it at its maximum). Fewer come back
    /// when the filters leave fewer.
    #[arg(short = 'n', long, value_name = "N", default_value_t = 20, value_parser = at_least_one())]
    pub length: u32,
    /// Walk this model's embedding space, and show its top label. Default: the daemon's default
    /// recommendation model (the label shown is then the first model's).
    #[arg(short, long, value_name = "M")]
    pub model: Option<String>,
    /// Never put two tracks by the same artist next to each other.
    #[arg(long)]
    pub no_repeat_artist: bool,
    #[command(flatten)]
    pub filter: FilterArgs,
    #[command(flatten)]
    pub m3u: M3uArgs,
}

#[derive(Debug, Args)]
pub struct PathArgs {
    /// Where the path starts: a library track id, or an audio file (in the library or not).
    #[arg(value_name = "FROM", value_parser = parse_track_target)]
    pub from: TrackTarget,
    /// Where it ends, as FROM.
    #[arg(value_name = "TO", value_parser = parse_track_target)]
    pub to: TrackTarget,
    /// Number of tracks between the two (at least 1; the daemon caps it at its maximum).
    #[arg(short = 'n', long, value_name = "N", default_value_t = 10, value_parser = at_least_one())]
    pub length: u32,
    /// Pass near this track on the way (an id or a file). Repeat for more, in order.
    #[arg(long = "via", value_name = "EXAMPLE", value_parser = parse_track_target)]
    pub via: Vec<TrackTarget>,
    /// Walk this model's embedding space, and show its top label.
    #[arg(short, long, value_name = "M")]
    pub model: Option<String>,
    /// Never put two tracks by the same artist next to each other.
    #[arg(long)]
    pub no_repeat_artist: bool,
    #[command(flatten)]
    pub filter: FilterArgs,
    #[command(flatten)]
    pub m3u: M3uArgs,
}

/// Where `recommend` and `playlist` also write their tracks as a playlist file.
#[derive(Debug, Clone, Default, PartialEq, Args)]
#[command(next_help_heading = "Playlist file")]
pub struct M3uArgs {
    /// Also write the tracks, in order, to FILE as an extended M3U playlist (UTF-8, with
    /// `#EXTINF` duration and artist - title), which MPD, mpv and VLC open.
    #[arg(long, value_name = "FILE")]
    pub m3u: Option<PathBuf>,
    /// Write paths relative to the playlist file's folder (default: absolute, as the daemon
    /// stores them).
    #[arg(long, requires = "m3u")]
    pub m3u_relative: bool,
}

/// Which library tracks `recommend` and `playlist` may pick: all given conditions must hold.
#[derive(Debug, Clone, Default, PartialEq, Args)]
#[command(next_help_heading = "Filters")]
pub struct FilterArgs {
    /// Only tracks of this genre (case-insensitive): their genre tag, or their most probable
    /// label under the model. Repeat for any of several.
    #[arg(long = "genre", value_name = "G")]
    pub genres: Vec<String>,
    /// Leave out tracks by this artist (case-insensitive, as tagged). Repeat for more.
    #[arg(long = "exclude-artist", value_name = "A")]
    pub exclude_artists: Vec<String>,
    /// Leave out tracks from this album (case-insensitive, as tagged). Repeat for more.
    #[arg(long = "exclude-album", value_name = "B")]
    pub exclude_albums: Vec<String>,
    /// Leave out tracks by the artists of the examples (recommend; not the --negative ones) or
    /// of the seed (playlist).
    #[arg(long)]
    pub exclude_seed_artist: bool,
    /// Leave out tracks from the albums of the examples (recommend; not the --negative ones) or
    /// of the seed (playlist).
    #[arg(long)]
    pub exclude_seed_album: bool,
    /// Leave out tracks shorter than this: seconds (90, 90.5) or [H:]M:SS (1:30).
    #[arg(long, value_name = "S", value_parser = parse_seconds)]
    pub min_duration: Option<f64>,
    /// Leave out tracks longer than this: seconds (420) or [H:]M:SS (7:00).
    #[arg(long, value_name = "S", value_parser = parse_seconds)]
    pub max_duration: Option<f64>,
    /// Only tracks whose tempo is in this range of BPM: `120-130`, `120-` or `--bpm=-130`.
    /// Tracks with no tempo measured are left out.
    #[arg(long, value_name = "MIN-MAX", value_parser = parse_bpm_range)]
    pub bpm: Option<(Option<f64>, Option<f64>)>,
    /// With --bpm: also accept tracks at half or double a tempo in the range (a track measured
    /// at 65 BPM plays in double time in a 120-140 set).
    #[arg(long, requires = "bpm")]
    pub bpm_octaves: bool,
    /// Only tracks whose key mixes harmonically: the same key, its relative key, or a
    /// neighbour on the Camelot wheel.
    ///
    /// The Camelot wheel numbers the circle of fifths 1 to 12, `A` for minor keys and `B` for
    /// major ones: A minor is 8A, its relative major C major is 8B, E minor (a fifth up) is 9A.
    /// A track in 8A mixes with 8A, 8B, 7A and 9A; tracks with no key measured are left out.
    /// `recommend` mixes with the key of each example (or --key); `playlist` and `path` make
    /// each track mix with the one before it, starting from the seed (or --key).
    #[arg(long)]
    pub harmonic: bool,
    /// With --harmonic: the key to mix with instead of the examples' or the seed's: "A minor",
    /// "F# major", "Bbm", "C", or on the Camelot wheel "8A".
    #[arg(long, value_name = "KEY", requires = "harmonic")]
    pub key: Option<String>,
}

impl FilterArgs {
    /// Checks what each flag's parser cannot see alone: a range that nothing could match.
    pub fn check(&self) -> Result<(), String> {
        match (self.min_duration, self.max_duration) {
            (Some(min), Some(max)) if min > max => {
                Err(format!("--min-duration ({min} s) is longer than --max-duration ({max} s): no track could match"))
            }
            _ => Ok(()),
        }
    }
}

/// A count of 1 or more: 0 would mean "the daemon's default" in the proto, but these commands
/// have their own default, so 0 is refused rather than silently meaning something else.
fn at_least_one() -> clap::builder::RangedI64ValueParser<u32> {
    clap::value_parser!(u32).range(1..)
}

/// A number in [0, 1].
fn parse_diversity(arg: &str) -> Result<f32, String> {
    let value: f32 = arg.trim().parse().map_err(|_| format!("{arg:?} is not a number (give one from 0 to 1)"))?;
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!("{arg} is outside 0 to 1"))
    }
}

/// A duration: seconds (`90`, `90.5`) or clock time (`1:30`, `1:02:03`), as `timbre tracks`
/// shows lengths.
fn parse_seconds(arg: &str) -> Result<f64, String> {
    let bad = || format!("{arg:?} is not a duration (give seconds, such as 90, or M:SS, such as 1:30)");
    let parts: Vec<&str> = arg.trim().split(':').collect();
    if parts.len() > 3 {
        return Err(bad());
    }
    let mut seconds = 0.0;
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        // Hours and minutes are whole; only the seconds may have a fraction.
        let valid = !part.is_empty()
            && part.chars().all(|c| c.is_ascii_digit() || (last && c == '.'))
            && (i == 0 || part.split('.').next().is_some_and(|whole| whole.len() == 2));
        let value: f64 = part.parse().ok().filter(|_| valid).ok_or_else(bad)?;
        if i > 0 && value >= 60.0 {
            return Err(bad());
        }
        seconds = seconds * 60.0 + value;
    }
    if seconds.is_finite() {
        Ok(seconds)
    } else {
        Err(bad())
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{args:?} should parse: {e}"))
    }

    fn parse_err(args: &[&str]) -> clap::error::ErrorKind {
        match Cli::try_parse_from(args) {
            Ok(cli) => panic!("{args:?} should not parse, got {cli:?}"),
            Err(e) => e.kind(),
        }
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    /// `--help` is the manual: every command says what it does and shows an example, and
    /// every flag says what it is for.
    #[test]
    fn every_command_and_flag_is_documented() {
        let cli = Cli::command();
        for command in cli.get_subcommands() {
            let name = command.get_name();
            let about = command.get_about().map(|s| s.to_string()).unwrap_or_default();
            assert!(!about.is_empty(), "`{name}` has no about text");
            let after = command.get_after_help().map(|s| s.to_string()).unwrap_or_default();
            assert!(after.contains(&format!("timbre {name}")), "`{name}` --help shows no example: {after:?}");
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") {
                    continue;
                }
                assert!(arg.get_help().is_some(), "`{name}` argument {id} has no help text");
            }
        }
        for arg in cli.get_arguments() {
            assert!(arg.get_help().is_some() || arg.get_id() == "help", "{} has no help", arg.get_id());
        }
    }

    #[test]
    fn addr_has_a_default_and_global_flags_go_anywhere() {
        let cli = parse(&["timbre", "health"]);
        // TIMBRE_ADDR may be set where the tests run; only check the default when it is not.
        if std::env::var_os("TIMBRE_ADDR").is_none() {
            assert_eq!(cli.addr, DEFAULT_ADDR);
        }
        assert!(!cli.json);
        let cli = parse(&["timbre", "plugins", "--json", "--addr", "http://h:1"]);
        assert!(cli.json);
        assert_eq!(cli.addr, "http://h:1");
        assert!(matches!(cli.command, Command::Plugins));
    }

    #[test]
    fn token_and_ca_cert_are_global() {
        let cli = parse(&["timbre", "tracks", "--token", "s3cret", "--ca-cert", "ca.pem"]);
        assert_eq!(cli.token.as_deref(), Some("s3cret"));
        assert_eq!(cli.ca_cert, Some(PathBuf::from("ca.pem")));
        let cli = parse(&["timbre", "--ca-cert", "/etc/timbre/ca.pem", "health"]);
        assert_eq!(cli.ca_cert, Some(PathBuf::from("/etc/timbre/ca.pem")));
        // TIMBRE_TOKEN may be set where the tests run; only check the default when it is not.
        if std::env::var_os("TIMBRE_TOKEN").is_none() {
            assert_eq!(cli.token, None);
        }
        // The token from the environment is never shown by --help.
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("TIMBRE_TOKEN") && help.contains("--ca-cert"), "{help}");
    }

    #[test]
    fn classify_takes_files_models_top_k_and_segments() {
        let cli = parse(&["timbre", "classify", "-m", "cnn,lstm", "--model", "knn", "a.flac", "b.mp3"]);
        let Command::Classify(args) = cli.command else { panic!("not classify") };
        assert_eq!(args.files, [PathBuf::from("a.flac"), PathBuf::from("b.mp3")]);
        assert_eq!(args.models, ["cnn", "lstm", "knn"]);
        assert_eq!(args.top_k, 3, "default top-k");
        assert_eq!(args.tag_threshold, 0.2, "default tag threshold");
        assert!(!args.segments && !args.by_path);

        let cli = parse(&["timbre", "classify", "--top-k", "0", "--segments", "--path", "a.flac"]);
        let Command::Classify(args) = cli.command else { panic!("not classify") };
        assert_eq!(args.top_k, 0);
        assert!(args.segments && args.by_path);
        assert!(args.models.is_empty());
    }

    #[test]
    fn the_tag_threshold_is_a_probability() {
        let cli = parse(&["timbre", "classify", "--tag-threshold", "0.1", "a.flac"]);
        let Command::Classify(args) = cli.command else { panic!("not classify") };
        assert_eq!(args.tag_threshold, 0.1);
        for bad in ["1.5", "-0.1", "lots"] {
            let kind = parse_err(&["timbre", "classify", "--tag-threshold", bad, "a.flac"]);
            assert!(
                matches!(kind, clap::error::ErrorKind::ValueValidation | clap::error::ErrorKind::UnknownArgument),
                "{bad}: {kind:?}"
            );
        }
    }

    #[test]
    fn classify_needs_a_file_and_a_numeric_top_k() {
        assert_eq!(parse_err(&["timbre", "classify"]), clap::error::ErrorKind::MissingRequiredArgument);
        assert_eq!(parse_err(&["timbre", "classify", "-k", "-1", "a.flac"]), clap::error::ErrorKind::UnknownArgument);
        assert_eq!(
            parse_err(&["timbre", "classify", "-k", "three", "a.flac"]),
            clap::error::ErrorKind::ValueValidation
        );
    }

    #[test]
    fn scan_flags_and_roots() {
        let Command::Scan(args) = parse(&["timbre", "scan"]).command else { panic!("not scan") };
        assert!(!args.wait && !args.full && args.roots.is_empty());
        let Command::Scan(args) = parse(&["timbre", "scan", "--wait", "--full", "/a", "b"]).command else {
            panic!("not scan")
        };
        assert!(args.wait && args.full);
        assert_eq!(args.roots, [PathBuf::from("/a"), PathBuf::from("b")]);
    }

    #[test]
    fn tracks_fetches_every_page_unless_a_page_size_is_given_without_all() {
        let Command::Tracks(args) = parse(&["timbre", "tracks"]).command else { panic!("not tracks") };
        assert!(args.every_page());
        assert_eq!((args.genre, args.model, args.label, args.page_size), (None, None, None, None));

        let Command::Tracks(args) =
            parse(&["timbre", "tracks", "--genre", "Rock", "--model", "cnn", "--label", "jazz", "--page-size", "20"])
                .command
        else {
            panic!("not tracks")
        };
        assert!(!args.every_page());
        assert_eq!(args.genre.as_deref(), Some("Rock"));
        assert_eq!(args.model.as_deref(), Some("cnn"));
        assert_eq!(args.label.as_deref(), Some("jazz"));
        assert_eq!(args.page_size, Some(20));

        let Command::Tracks(args) = parse(&["timbre", "tracks", "--page-size", "5", "--all"]).command else {
            panic!("not tracks")
        };
        assert!(args.every_page());

        assert_eq!(parse_err(&["timbre", "tracks", "--page-size", "0"]), clap::error::ErrorKind::ValueValidation);
    }

    #[test]
    fn track_takes_an_id_or_a_path() {
        let target = |arg: &str| {
            let Command::Track(args) = parse(&["timbre", "track", arg]).command else { panic!("not track") };
            args.track
        };
        assert_eq!(target("42"), TrackTarget::Id(42));
        assert_eq!(target("./42"), TrackTarget::Path(PathBuf::from("./42")));
        assert_eq!(target("song.flac"), TrackTarget::Path(PathBuf::from("song.flac")));
        assert_eq!(target("/m/a b.flac"), TrackTarget::Path(PathBuf::from("/m/a b.flac")));
        // Too large for an id: a path (of an odd name), and the daemon says NOT_FOUND.
        assert_eq!(target("99999999999999999999"), TrackTarget::Path(PathBuf::from("99999999999999999999")));
        assert_eq!(parse_err(&["timbre", "track"]), clap::error::ErrorKind::MissingRequiredArgument);
        assert_eq!(parse_err(&["timbre", "track", ""]), clap::error::ErrorKind::ValueValidation);
    }

    #[test]
    fn live_source_is_optional() {
        let Command::Live(args) = parse(&["timbre", "live"]).command else { panic!("not live") };
        assert_eq!(args.source, None);
        let Command::Live(args) = parse(&["timbre", "live", "--source", "radio"]).command else { panic!("not live") };
        assert_eq!(args.source.as_deref(), Some("radio"));
    }

    #[test]
    fn recommend_takes_examples_negatives_and_defaults() {
        let Command::Recommend(args) = parse(&["timbre", "recommend", "42", "./7", "song.flac"]).command else {
            panic!("not recommend")
        };
        assert_eq!(
            args.examples,
            [TrackTarget::Id(42), TrackTarget::Path("./7".into()), TrackTarget::Path("song.flac".into())]
        );
        assert!(args.negatives.is_empty());
        assert_eq!(args.limit, 10, "default limit");
        assert_eq!(args.model, None);
        assert_eq!(args.diversity, 0.0);
        assert_eq!(args.filter, FilterArgs::default());

        let cli = parse(&[
            "timbre",
            "recommend",
            "1",
            "--negative",
            "2",
            "--negative",
            "b.mp3",
            "-n",
            "25",
            "-m",
            "cnn",
            "--diversity",
            "0.5",
            "3",
        ]);
        let Command::Recommend(args) = cli.command else { panic!("not recommend") };
        assert_eq!(args.examples, [TrackTarget::Id(1), TrackTarget::Id(3)], "positionals on both sides of flags");
        assert_eq!(args.negatives, [TrackTarget::Id(2), TrackTarget::Path("b.mp3".into())]);
        assert_eq!(args.limit, 25);
        assert_eq!(args.model.as_deref(), Some("cnn"));
        assert_eq!(args.diversity, 0.5);
        let Command::Recommend(args) = parse(&["timbre", "recommend", "--limit", "3", "1"]).command else {
            panic!("not recommend")
        };
        assert_eq!(args.limit, 3);
    }

    #[test]
    fn recommend_filters() {
        let cli = parse(&[
            "timbre",
            "recommend",
            "1",
            "--genre",
            "Jazz",
            "--genre",
            "blues",
            "--exclude-artist",
            "Earth, Wind & Fire",
            "--exclude-album",
            "Live",
            "--exclude-album",
            "Demos",
            "--exclude-seed-artist",
            "--exclude-seed-album",
            "--min-duration",
            "1:30",
            "--max-duration",
            "420.5",
        ]);
        let Command::Recommend(args) = cli.command else { panic!("not recommend") };
        assert_eq!(
            args.filter,
            FilterArgs {
                genres: vec!["Jazz".into(), "blues".into()],
                exclude_artists: vec!["Earth, Wind & Fire".into()],
                exclude_albums: vec!["Live".into(), "Demos".into()],
                exclude_seed_artist: true,
                exclude_seed_album: true,
                min_duration: Some(90.0),
                max_duration: Some(420.5),
                ..Default::default()
            }
        );
        assert_eq!(args.filter.check(), Ok(()));
        let line = ["timbre", "recommend", "1", "--bpm", "120-130", "--bpm-octaves", "--harmonic", "--key", "A minor"];
        let Command::Recommend(args) = parse(&line).command else { panic!("not recommend") };
        assert_eq!(
            args.filter,
            FilterArgs {
                bpm: Some((Some(120.0), Some(130.0))),
                bpm_octaves: true,
                harmonic: true,
                key: Some("A minor".into()),
                ..Default::default()
            }
        );
        let Command::Recommend(args) = parse(&["timbre", "recommend", "1", "--harmonic"]).command else { panic!() };
        assert!(args.filter.harmonic && args.filter.key.is_none() && args.filter.bpm.is_none());
        let backwards = FilterArgs { min_duration: Some(300.0), max_duration: Some(60.0), ..Default::default() };
        let why = backwards.check().expect_err("min > max");
        assert!(why.contains("--min-duration") && why.contains("--max-duration"), "{why}");
        let equal = FilterArgs { min_duration: Some(60.0), max_duration: Some(60.0), ..Default::default() };
        assert_eq!(equal.check(), Ok(()));
    }

    #[test]
    fn recommend_rejects_bad_values() {
        use clap::error::ErrorKind::*;
        assert_eq!(parse_err(&["timbre", "recommend"]), MissingRequiredArgument);
        assert_eq!(parse_err(&["timbre", "recommend", "--negative", "2"]), MissingRequiredArgument);
        assert_eq!(parse_err(&["timbre", "recommend", ""]), ValueValidation);
        // -n 0 is refused rather than meaning "the daemon's default": the default here is 10.
        assert_eq!(parse_err(&["timbre", "recommend", "-n", "0", "1"]), ValueValidation);
        assert_eq!(parse_err(&["timbre", "recommend", "-n", "ten", "1"]), ValueValidation);
        for bad in ["1.5", "-0.1", "1.0001", "NaN", "inf", "lots"] {
            let flag = format!("--diversity={bad}");
            assert_eq!(parse_err(&["timbre", "recommend", &flag, "1"]), ValueValidation, "{bad}");
        }
        for bad in ["-5", "1:60", "1:5", "1:2:3:4", "1.5:00", "", "abc", "1e3", "9".repeat(400).as_str()] {
            let flag = format!("--min-duration={bad}");
            assert_eq!(parse_err(&["timbre", "recommend", &flag, "1"]), ValueValidation, "{bad}");
        }
        for bad in ["130-120", "-", "fast", "120", "x-130"] {
            let flag = format!("--bpm={bad}");
            assert_eq!(parse_err(&["timbre", "recommend", &flag, "1"]), ValueValidation, "{bad}");
        }
        // The modifiers need what they modify.
        assert_eq!(parse_err(&["timbre", "recommend", "--bpm-octaves", "1"]), MissingRequiredArgument);
        assert_eq!(parse_err(&["timbre", "recommend", "--key", "8A", "1"]), MissingRequiredArgument);
        assert_eq!(parse_err(&["timbre", "playlist", "--seed", "1", "--key", "8A"]), MissingRequiredArgument);
    }

    #[test]
    fn diversity_and_durations_parse() {
        assert_eq!(parse_diversity("0"), Ok(0.0));
        assert_eq!(parse_diversity("1"), Ok(1.0));
        assert_eq!(parse_diversity("0.25"), Ok(0.25));
        assert!(parse_diversity("1.1").is_err_and(|e| e.contains("outside 0 to 1")));
        assert_eq!(parse_seconds("0"), Ok(0.0));
        assert_eq!(parse_seconds("90"), Ok(90.0));
        assert_eq!(parse_seconds("90.5"), Ok(90.5));
        assert_eq!(parse_seconds("1:30"), Ok(90.0));
        assert_eq!(parse_seconds("0:05.5"), Ok(5.5));
        assert_eq!(parse_seconds("1:02:03"), Ok(3723.0));
        assert_eq!(parse_seconds("75:00"), Ok(4500.0), "minutes may pass 59 without hours");
    }

    #[test]
    fn playlist_needs_a_seed_and_takes_length_and_filters() {
        use clap::error::ErrorKind::*;
        let Command::Playlist(args) = parse(&["timbre", "playlist", "--seed", "42"]).command else {
            panic!("not playlist")
        };
        assert_eq!(args.seed, TrackTarget::Id(42));
        assert_eq!(args.length, 20, "default length");
        assert_eq!(args.model, None);
        assert!(!args.no_repeat_artist);
        assert_eq!(args.filter, FilterArgs::default());

        let cli = parse(&[
            "timbre",
            "playlist",
            "--seed",
            "a.flac",
            "-n",
            "50",
            "--model",
            "cnn",
            "--no-repeat-artist",
            "--genre",
            "rock",
            "--exclude-seed-album",
            "--max-duration",
            "7:00",
        ]);
        let Command::Playlist(args) = cli.command else { panic!("not playlist") };
        assert_eq!(args.seed, TrackTarget::Path("a.flac".into()));
        assert_eq!(args.length, 50);
        assert_eq!(args.model.as_deref(), Some("cnn"));
        assert!(args.no_repeat_artist);
        assert_eq!(args.filter.genres, ["rock"]);
        assert!(args.filter.exclude_seed_album && !args.filter.exclude_seed_artist);
        assert_eq!(args.filter.max_duration, Some(420.0));
        let Command::Playlist(args) = parse(&["timbre", "playlist", "--seed", "1", "--length", "5"]).command else {
            panic!("not playlist")
        };
        assert_eq!(args.length, 5);

        assert_eq!(parse_err(&["timbre", "playlist"]), MissingRequiredArgument);
        assert_eq!(parse_err(&["timbre", "playlist", "42"]), UnknownArgument, "the seed goes with --seed");
        assert_eq!(parse_err(&["timbre", "playlist", "--seed", "1", "--seed", "2"]), ArgumentConflict);
        assert_eq!(parse_err(&["timbre", "playlist", "--seed", "1", "-n", "0"]), ValueValidation);
        assert_eq!(parse_err(&["timbre", "playlist", "--seed", "1", "--diversity", "0.5"]), UnknownArgument);
    }

    #[test]
    fn map_takes_a_picture_a_model_and_what_colours_it() {
        let Command::Map(args) = parse(&["timbre", "map", "--out", "m.png"]).command else { panic!("not map") };
        assert_eq!(
            (args.out, args.model.as_str(), args.color_by, args.page_size),
            (PathBuf::from("m.png"), "musicnn-msd", ColorBy::Genre, 500)
        );
        let Command::Map(args) =
            parse(&["timbre", "map", "-o", "m.SVG", "--model", "cnn", "--color-by", "label:genre"]).command
        else {
            panic!("not map")
        };
        assert_eq!((args.model.as_str(), args.color_by), ("cnn", ColorBy::Label("genre".into())));
        let Command::Map(args) = parse(&["timbre", "map", "-o", "m.png", "--color-by", "artist"]).command else {
            panic!("not map")
        };
        assert_eq!(args.color_by, ColorBy::Artist);
    }

    #[test]
    fn map_refuses_other_pictures_and_colourings() {
        use clap::error::ErrorKind::*;
        assert_eq!(parse_err(&["timbre", "map"]), MissingRequiredArgument);
        assert_eq!(parse_err(&["timbre", "map", "--out", "m.jpg"]), ValueValidation);
        assert_eq!(parse_err(&["timbre", "map", "--out", "m"]), ValueValidation);
        assert_eq!(parse_err(&["timbre", "map", "--out", "m.png", "--color-by", "mood"]), ValueValidation);
        assert_eq!(parse_err(&["timbre", "map", "--out", "m.png", "--color-by", "label:"]), ValueValidation);
        assert_eq!(parse_err(&["timbre", "map", "--out", "m.png", "--page-size", "0"]), ValueValidation);
    }

    #[test]
    fn unknown_commands_and_flags_are_usage_errors() {
        assert_eq!(parse_err(&["timbre", "frobnicate"]), clap::error::ErrorKind::InvalidSubcommand);
        assert_eq!(parse_err(&["timbre", "tracks", "--nope"]), clap::error::ErrorKind::UnknownArgument);
        assert_eq!(parse_err(&["timbre"]), clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand);
    }
}

/// `120-130`, `120-`, `-130`: a BPM range with either end open.
pub fn parse_bpm_range(text: &str) -> Result<(Option<f64>, Option<f64>), String> {
    let (low, high) = text.split_once('-').ok_or_else(|| format!("{text:?}: expected MIN-MAX, e.g. 120-130"))?;
    let end = |s: &str| -> Result<Option<f64>, String> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(None);
        }
        match s.parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 => Ok(Some(v)),
            _ => Err(format!("{s:?} is not a tempo in BPM")),
        }
    };
    let (low, high) = (end(low)?, end(high)?);
    match (low, high) {
        (None, None) => Err("give at least one end of the range".into()),
        (Some(l), Some(h)) if l > h => Err(format!("{l} is above {h}")),
        range => Ok(range),
    }
}
