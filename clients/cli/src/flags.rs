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
failure is named on stderr); 2 when timbred cannot be reached or the command line is wrong;
130 when a scan is interrupted. Output to a closed pipe (`timbre tracks | head`) counts as
success.

Examples:
  timbre health
  timbre classify song.flac
  timbre --addr http://music-box:50051 tracks --label jazz
  timbre --json track 42 | jq .predictions";

/// timbre: ask a running timbred what your music sounds like.
///
/// Every command talks to the daemon over gRPC (the `timbre.v1.Timbre` service). Start the
/// daemon with `timbred serve`; point the client at it with --addr or TIMBRE_ADDR.
#[derive(Debug, Parser)]
#[command(name = "timbre", version, max_term_width = 100, after_help = EXIT_STATUS)]
pub struct Cli {
    /// Address of the daemon, as a URL (`http://host:port`); a bare `host:port` means http.
    #[arg(
        long,
        global = true,
        env = "TIMBRE_ADDR",
        default_value = DEFAULT_ADDR,
        value_name = "URL",
        help_heading = "Global options"
    )]
    pub addr: String,
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
}

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
    /// Show at most this many labels per model (and per segment); 0 shows every label.
    #[arg(short = 'k', long, value_name = "N", default_value_t = 3)]
    pub top_k: u32,
    /// Also show what each model predicts for every segment of the file.
    #[arg(long)]
    pub segments: bool,
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
    fn classify_takes_files_models_top_k_and_segments() {
        let cli = parse(&["timbre", "classify", "-m", "cnn,lstm", "--model", "knn", "a.flac", "b.mp3"]);
        let Command::Classify(args) = cli.command else { panic!("not classify") };
        assert_eq!(args.files, [PathBuf::from("a.flac"), PathBuf::from("b.mp3")]);
        assert_eq!(args.models, ["cnn", "lstm", "knn"]);
        assert_eq!(args.top_k, 3, "default top-k");
        assert!(!args.segments && !args.by_path);

        let cli = parse(&["timbre", "classify", "--top-k", "0", "--segments", "--path", "a.flac"]);
        let Command::Classify(args) = cli.command else { panic!("not classify") };
        assert_eq!(args.top_k, 0);
        assert!(args.segments && args.by_path);
        assert!(args.models.is_empty());
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
    fn unknown_commands_and_flags_are_usage_errors() {
        assert_eq!(parse_err(&["timbre", "frobnicate"]), clap::error::ErrorKind::InvalidSubcommand);
        assert_eq!(parse_err(&["timbre", "tracks", "--nope"]), clap::error::ErrorKind::UnknownArgument);
        assert_eq!(parse_err(&["timbre"]), clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand);
    }
}
