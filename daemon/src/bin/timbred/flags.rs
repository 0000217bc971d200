//! `timbred`'s command line: every command and flag, documented once (the doc comments are
//! the `--help` text).

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use timbre_daemon::offline::eval;

/// timbred: timbre's audio analysis daemon.
///
/// Decodes audio (WAV, FLAC, MP3, Ogg Vorbis, AAC/M4A, ALAC), runs it through feature and
/// classifier plugins, and reports what it hears. `timbred serve` runs the daemon: it keeps a
/// music library analysed and indexed for recommendation, and answers the `timbre` client
/// over gRPC. The other commands work offline, without a running daemon.
///
/// Plugins are searched for in TIMBRE_PLUGIN_PATH (colon-separated files or directories),
/// then in every --plugin-path, then next to this executable.
#[derive(Debug, Parser)]
#[command(name = "timbred", version, max_term_width = 100)]
pub(crate) struct Cli {
    /// Also look for plugins in this file or directory (repeatable).
    #[arg(long, global = true, value_name = "PATH")]
    pub(crate) plugin_path: Vec<PathBuf>,

    /// Also look for model folders (model.toml + model file) in this directory (repeatable).
    /// Searched after TIMBRE_MODEL_PATH and before the shipped plugins/models.
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) model_path: Vec<PathBuf>,

    /// Use only these models (comma-separated names) [default: every model found].
    #[arg(long, global = true, value_delimiter = ',', value_name = "NAMES")]
    pub(crate) models: Vec<String>,

    /// libonnxruntime.so for ONNX models [default: ORT_DYLIB_PATH, then .onnxruntime/ from scripts/onnxruntime].
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) onnxruntime: Option<PathBuf>,

    /// Where ONNX models run: auto (CUDA when its provider loads, else CPU), cpu or cuda [default: auto].
    #[arg(long, global = true, value_parser = ["auto", "cpu", "cuda"])]
    pub(crate) execution_provider: Option<String>,

    /// Log more (-v: info, which `serve` logs anyway; -vv: debug). TIMBRE_LOG=<filter> overrides,
    /// e.g. TIMBRE_LOG=debug for HTTP/2 and TLS internals too.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Write the features of each FILE to OUT/<stem>.npy (float32, [n_mels, frames]).
    ///
    /// With --segment-seconds, [segments, n_mels, frames] instead: the 3 s inputs of the models.
    ///
    /// The whole file is one signal, exactly as librosa would see it. Files are processed
    /// in parallel; a file that fails is reported and skipped, and the exit code is 1.
    Features(FeaturesArgs),
    /// Analyse each FILE: duration, format, segments, a feature summary, and every model's
    /// genre predictions (segment probabilities averaged over the track).
    Analyze(AnalyzeArgs),
    /// Evaluate every model, and their ensemble, on a labelled folder DIR/<label>/<file>:
    /// track- and segment-level accuracy, per-class precision / recall / F1, confusion matrix.
    Eval {
        #[command(flatten)]
        data: LabelledData,
        /// Print one JSON object instead of tables.
        #[arg(long)]
        json: bool,
        /// Also write DIR/<model>.png, each model's confusion matrix, and DIR/eval.json, the
        /// numbers beside them (created if missing).
        #[arg(long, value_name = "DIR")]
        plots: Option<PathBuf>,
    },
    /// How well each model's embeddings serve recommendation, on a labelled folder
    /// DIR/<label>/<file>: for every track, the share of its 5 and 10 nearest neighbours
    /// (cosine, the track itself left out) with its label; chance is printed beside it.
    EvalNeighbours {
        #[command(flatten)]
        data: LabelledData,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Maintain the vector index behind Recommend and Playlist.
    Index {
        #[command(subcommand)]
        action: IndexAction,
    },
    /// Train a model in Rust: pca-knn, or a head over another model's embedding. The neural
    /// models train in training/.
    Train {
        #[command(subcommand)]
        model: TrainModel,
    },
    /// Split a labelled folder DIR/<label>/<file> into train / val / test, by file and
    /// stratified by label; prints PATH<TAB>SPLIT lines (paths relative to DIR) after two `#`
    /// lines giving the options and the rule. The defaults give plugins/models/split.tsv from
    /// the GTZAN pool, the split of every shipped model; the Python training reads this output.
    Split {
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// Fraction of each label's files held out for testing.
        #[arg(long, default_value_t = 0.15)]
        test: f64,
        /// Fraction of each label's files for validation (model selection, early stopping).
        #[arg(long, default_value_t = 0.15)]
        validation: f64,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Run the daemon: keep the library analysed and serve the timbre.v1 gRPC API,
    /// grpc.health.v1 and reflection.
    ///
    /// At start-up it catches up with whatever changed under the library roots while it was
    /// down, then watches them. Settings come from the configuration layers (see `timbred
    /// config --help`); the flags below are the strongest layer. Stops on SIGINT or SIGTERM
    /// after finishing the calls and analyses in flight.
    ///
    /// Example: timbred serve --root ~/Music
    Serve {
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// Print the effective configuration of `timbred serve` and where each value came from.
    ///
    /// Layers, later ones win: built-in defaults < /etc/timbre/timbre.toml <
    /// $XDG_CONFIG_HOME/timbre/timbre.toml < --config FILE < TIMBRE_<SECTION>__<KEY>
    /// environment variables (e.g. TIMBRE_SERVER__LISTEN=127.0.0.1:6000; lists are
    /// colon-separated) < flags. A bad value is an error that names the key and its layer.
    Config {
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// Write what the library learnt about tracks (genre, mood, BPM, key, ReplayGain) into
    /// their files' tags, from the stored analysis.
    ///
    /// Each file is rewritten safely: the tags go into a hidden copy beside it, the copy's
    /// audio stream is checked byte for byte against the original's, then it is renamed over
    /// the original. A file that fails is reported and left as it was, and the exit code is 1.
    /// Every write is recorded in the library so `--undo` can put the old values back. Works
    /// while `timbred serve` runs on the same library: its watcher sees the new tags and,
    /// the audio being the same, analyses nothing again. The [tagging] section of the
    /// configuration sets each field's source, threshold, tag name and policy.
    #[command(after_help = "\
Examples:
  timbred tag --dry-run ~/Music/album
  timbred tag --fields genre,bpm ~/Music/album/01.flac
  timbred tag --undo ~/Music/album")]
    Tag(TagArgs),
    /// List the plugins found on the search path, and why any library was refused.
    Plugins {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print shell completions or the man page, generated from these definitions (for
    /// packagers; loads no plugin and no model).
    #[command(after_help = "\
Examples:
  timbred generate bash > /usr/share/bash-completion/completions/timbred
  timbred generate zsh > /usr/share/zsh/vendor-completions/_timbred
  timbred generate fish > ~/.config/fish/completions/timbred.fish
  timbred generate man > /usr/share/man/man1/timbred.1")]
    Generate {
        /// What to print.
        #[arg(value_enum)]
        what: timbre_generate::Generated,
    },
}

/// A labelled folder to evaluate on, optionally one subset of a split.
#[derive(Debug, clap::Args)]
pub(crate) struct FeaturesArgs {
    /// Feature plugin to use.
    #[arg(long, default_value = "mel")]
    pub(crate) plugin: String,
    /// Set a plugin parameter, e.g. --set n_mels=64 --set fmax=8000 (value parsed as JSON, else text).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub(crate) params: Vec<String>,
    /// Directory for the .npy files (created if missing).
    #[arg(long, short)]
    pub(crate) out: PathBuf,
    /// Worker threads [default: all cores].
    #[arg(long, short)]
    pub(crate) jobs: Option<usize>,
    /// Refuse files longer than this many seconds (whole-file features are held in memory).
    #[arg(long, default_value_t = 3600.0)]
    pub(crate) max_duration: f64,
    /// Cut each file into segments of this many seconds, as analysis does, and write
    /// [segments, n_mels, frames] (the input models are trained on).
    #[arg(long, value_name = "SECONDS")]
    pub(crate) segment_seconds: Option<f64>,
    /// Audio files.
    #[arg(required = true)]
    pub(crate) files: Vec<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct AnalyzeArgs {
    /// One JSON object per line instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    /// Labels shown per model (0: all).
    #[arg(long, default_value_t = 3)]
    pub(crate) top_k: usize,
    /// Also show each segment's predictions.
    #[arg(long)]
    pub(crate) segments: bool,
    /// Feature plugin to use.
    #[arg(long, default_value = "mel")]
    pub(crate) plugin: String,
    /// Set a plugin parameter (see `features --help`).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub(crate) params: Vec<String>,
    /// Segment length in seconds.
    #[arg(long, default_value_t = 3.0)]
    pub(crate) segment_seconds: f64,
    /// Worker threads [default: all cores].
    #[arg(long, short)]
    pub(crate) jobs: Option<usize>,
    /// Leave out the descriptor plugins (tempo, key, loudness).
    #[arg(long)]
    pub(crate) no_descriptors: bool,
    /// Audio files.
    #[arg(required = true)]
    pub(crate) files: Vec<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct TagArgs {
    /// Files or folders in the library [default: every track in it; with --undo, every
    /// track timbre has written tags into]. A path the library does not hold is an error:
    /// the daemon analyses files, this command only writes what it stored.
    #[arg(value_name = "PATH")]
    pub(crate) paths: Vec<PathBuf>,
    /// Print each file's old and new values and change nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Only these fields (comma-separated) [default: tagging.fields, all five].
    #[arg(long, value_enum, value_delimiter = ',', value_name = "FIELDS")]
    pub(crate) fields: Vec<timbre_daemon::tagging::Field>,
    /// Put back the values the latest write into each file replaced (a tag that was absent
    /// is removed).
    #[arg(long)]
    pub(crate) undo: bool,
    /// One JSON object per file instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    /// Where the library database lives [default: $XDG_DATA_HOME/timbre].
    #[arg(long, value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Read this configuration file too (after the system and user files).
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct LabelledData {
    /// The labelled folder DIR/<label>/<file>; each sub-folder name is the label of its files.
    #[arg(long, value_name = "DIR")]
    pub(crate) data: PathBuf,
    /// Only the files a split file (PATH<TAB>SPLIT per line, paths relative to DIR) puts in
    /// --subset.
    #[arg(long, value_name = "FILE")]
    pub(crate) split: Option<PathBuf>,
    /// The split to use with --split.
    #[arg(long, default_value = "test")]
    pub(crate) subset: String,
    /// Worker threads [default: all cores].
    #[arg(long, short)]
    pub(crate) jobs: Option<usize>,
}

impl LabelledData {
    pub(crate) fn request(&self, all_cores: usize) -> eval::EvalRequest {
        eval::EvalRequest {
            data_dir: self.data.clone(),
            split: self.split.clone().map(|s| (s, self.subset.clone())),
            jobs: self.jobs.unwrap_or(all_cores),
        }
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum IndexAction {
    /// Re-create the index (embedded or Qdrant, as configured) from the library database.
    ///
    /// Stop the daemon first when the index is embedded (the daemon holds it in memory and
    /// would write its own copy back); a Qdrant index can be rebuilt while daemons run.
    Rebuild {
        #[command(flatten)]
        settings: SettingsArgs,
    },
}

/// The settings a user reaches for first, as flags of `serve` and `config`.
#[derive(Debug, Default, clap::Args)]
pub(crate) struct SettingsArgs {
    /// Read this configuration file too (after the system and user files).
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:50051]. Loopback unless you mean to serve a
    /// network; any other address needs --auth-token-file (and, better, TLS: server.tls.cert
    /// and server.tls.key) or --insecure-listen.
    #[arg(long, value_name = "ADDR")]
    pub(crate) listen: Option<String>,
    /// Accept only calls that carry one of the bearer tokens in FILE (one per line; the file
    /// must not be readable by group or others). Health checks need no token.
    #[arg(long, value_name = "FILE")]
    pub(crate) auth_token_file: Option<PathBuf>,
    /// Listen on a non-loopback address without bearer tokens: anyone who can reach it can
    /// call every RPC. Only for a network where every host is trusted.
    #[arg(long)]
    pub(crate) insecure_listen: bool,
    /// A library folder (repeatable): its audio files are analysed, and it is watched.
    /// Only files under library roots are ever read.
    #[arg(long = "root", value_name = "DIR")]
    pub(crate) roots: Vec<PathBuf>,
    /// Where the library database lives [default: $XDG_DATA_HOME/timbre].
    #[arg(long, value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Analysis threads [default: one per core].
    #[arg(long, value_name = "N")]
    pub(crate) workers: Option<usize>,
    /// On shutdown, how long calls and analyses in flight may take before the daemon exits anyway.
    #[arg(long, value_name = "SECONDS")]
    pub(crate) shutdown_grace: Option<f64>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum TrainModel {
    /// Standardise -> PCA -> kNN on 3 s log-mel segments (report 000), labels from sub-folder names.
    PcaKnn {
        /// Labelled folder DIR/<label>/<file>.
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// Model folder to write (model.knn + model.toml).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Train on the files a split file (from `timbred split`) puts in train; val and test stay unseen.
        #[arg(long, value_name = "FILE")]
        split: Option<PathBuf>,
        /// Neighbours that vote.
        #[arg(long, default_value_t = 9)]
        k: usize,
        /// Weight votes by inverse distance.
        #[arg(long)]
        weighted: bool,
        /// Principal components [default: chosen on a validation split of the training tracks].
        #[arg(long)]
        components: Option<usize>,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Version written to model.toml.
        #[arg(long, default_value = "1.0.0")]
        version: String,
        /// How a track's last, partial segment is completed, in training and (written to
        /// model.toml) at inference: with the track repeated from its start, or with silence.
        #[arg(long, default_value = "repeat", value_parser = ["repeat", "zeros"])]
        padding: String,
        /// Worker threads for feature extraction [default: all cores].
        #[arg(long, short)]
        jobs: Option<usize>,
    },
    /// A head: standardise, then logistic regression or kNN (whichever scores better on
    /// held-out tracks), over another model's embedding; labels from sub-folder names. Takes
    /// seconds once the upstream model has analysed the files.
    ///
    /// With --from-library, from your own labels instead: the embeddings the daemon stored for
    /// the library (nothing is decoded), labelled by a tag (--field) or a --labels file.
    /// Spellings that differ only in case, spaces or punctuation are one label; labels with
    /// fewer than --min-tracks tracks are dropped and listed. The tracks are split by artist
    /// where artists are tagged; the head is scored on the held-out part (accuracy beside
    /// chance, per-label precision and recall, confusion.png). Copy the folder into a model
    /// path and a running daemon picks it up.
    #[command(after_help = "\
Examples:
  timbred train head --embedding musicnn-msd --data ../shared/data/gtzan-pool \\
      --split plugins/models/split.tsv --out plugins/models/genre --name genre --folds 5
  timbred train head --from-library --field genre --out ~/.local/share/timbre/models/my-genre")]
    Head {
        /// The model whose embedding the head reads (it must be loaded, or with
        /// --from-library, have analysed the library).
        #[arg(long, value_name = "MODEL", default_value = "musicnn-msd")]
        embedding: String,
        /// Labelled folder DIR/<label>/<file>.
        #[arg(long, value_name = "DIR", required_unless_present = "from_library")]
        data: Option<PathBuf>,
        /// Learn from the library's stored embeddings and tags instead of a labelled folder.
        #[arg(long, conflicts_with_all = ["data", "split", "folds", "jobs"])]
        from_library: bool,
        /// With --from-library: the tag that labels a track.
        #[arg(long, value_parser = ["genre", "artist", "album"], default_value = "genre", requires = "from_library")]
        field: String,
        /// With --from-library: labels from a file of PATH<TAB>LABEL lines instead of a tag
        /// (a path is a library path, or its end, e.g. Artist/Album/01.flac).
        #[arg(long, value_name = "FILE.tsv", requires = "from_library")]
        labels: Option<PathBuf>,
        /// With --from-library: drop labels with fewer tracks than this.
        #[arg(long, value_name = "N", default_value_t = 5, requires = "from_library")]
        min_tracks: usize,
        /// With --from-library: the daemon's data folder, where library.db is [default: the
        /// configured library.data_dir].
        #[arg(long, value_name = "DIR", requires = "from_library")]
        data_dir: Option<PathBuf>,
        /// With --from-library: the share of each label's artists held out to score the head.
        #[arg(long, value_name = "FRACTION", default_value_t = 0.2, requires = "from_library")]
        test: f64,
        /// With --from-library: print one JSON object (the evaluation.json written beside the head).
        #[arg(long, requires = "from_library")]
        json: bool,
        /// Model folder to write (model.toml + head.json + CARD.md).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Train on a split file's train files and choose on its val files, never test
        /// [default: hold out a fifth of each label's tracks to choose].
        #[arg(long, value_name = "FILE")]
        split: Option<PathBuf>,
        /// The head's name, as predictions carry it [default: the --out folder's name].
        #[arg(long)]
        name: Option<String>,
        /// Version written to model.toml.
        #[arg(long, default_value = "1.0.0")]
        version: String,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Also estimate accuracy by k-fold cross-validation by track (shown and in the card).
        #[arg(long, value_name = "K", default_value_t = 0)]
        folds: usize,
        /// Tracks at least this long are "whole tracks" in the cross-validation figures.
        #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
        whole_track_seconds: f64,
        /// Worker threads for the upstream analysis [default: all cores].
        #[arg(long, short)]
        jobs: Option<usize>,
    },
}
