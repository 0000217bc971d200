//! `timbred`: flags in, a library call, an exit code out.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use timbre_daemon::config::{Flags, Settings};
use timbre_daemon::models::{ModelCatalog, ModelOptions};
use timbre_daemon::offline::{analyze, eval, features, neighbours, plugins, train};
use timbre_daemon::pipeline::SegmentOptions;
use timbre_daemon::plugin_host::{PluginRegistry, SearchPath};

/// timbred: timbre's audio analysis daemon.
///
/// Decodes audio (WAV, FLAC, MP3, Ogg Vorbis, AAC/M4A, ALAC), runs it through feature and
/// classifier plugins, and reports what it hears. The commands below work offline, without
/// a running server.
///
/// Plugins are searched for in TIMBRE_PLUGIN_PATH (colon-separated files or directories),
/// then in every --plugin-path, then next to this executable.
#[derive(Debug, Parser)]
#[command(name = "timbred", version, max_term_width = 100)]
struct Cli {
    /// Also look for plugins in this file or directory (repeatable).
    #[arg(long, global = true, value_name = "PATH")]
    plugin_path: Vec<PathBuf>,

    /// Also look for model folders (model.toml + model file) in this directory (repeatable).
    /// Searched after TIMBRE_MODEL_PATH and before the shipped plugins/models.
    #[arg(long, global = true, value_name = "DIR")]
    model_path: Vec<PathBuf>,

    /// Use only these models (comma-separated names) [default: every model found].
    #[arg(long, global = true, value_delimiter = ',', value_name = "NAMES")]
    models: Vec<String>,

    /// libonnxruntime.so for ONNX models [default: ORT_DYLIB_PATH, then .onnxruntime/ from scripts/onnxruntime].
    #[arg(long, global = true, value_name = "FILE")]
    onnxruntime: Option<PathBuf>,

    /// Where ONNX models run: auto (CUDA when its provider loads, else CPU), cpu or cuda [default: auto].
    #[arg(long, global = true, value_parser = ["auto", "cpu", "cuda"])]
    execution_provider: Option<String>,

    /// Log more (-v: info, -vv: debug). TIMBRE_LOG=<filter> overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write the features of each FILE to OUT/<stem>.npy (float32, [n_mels, frames]).
    ///
    /// With --segment-seconds, [segments, n_mels, frames] instead: the 3 s inputs of the models.
    ///
    /// The whole file is one signal, exactly as librosa would see it. Files are processed
    /// in parallel; a file that fails is reported and skipped, and the exit code is 1.
    Features {
        /// Feature plugin to use.
        #[arg(long, default_value = "mel")]
        plugin: String,
        /// Set a plugin parameter, e.g. --set n_mels=64 --set fmax=8000 (value parsed as JSON, else text).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        params: Vec<String>,
        /// Directory for the .npy files (created if missing).
        #[arg(long, short)]
        out: PathBuf,
        /// Worker threads [default: all cores].
        #[arg(long, short)]
        jobs: Option<usize>,
        /// Refuse files longer than this many seconds (whole-file features are held in memory).
        #[arg(long, default_value_t = 3600.0)]
        max_duration: f64,
        /// Cut each file into segments of this many seconds, as analysis does, and write
        /// [segments, n_mels, frames] (the input models are trained on).
        #[arg(long, value_name = "SECONDS")]
        segment_seconds: Option<f64>,
        /// Audio files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Analyse each FILE: duration, format, segments, a feature summary, and every model's
    /// genre predictions (segment probabilities averaged over the track).
    Analyze {
        /// One JSON object per line instead of text.
        #[arg(long)]
        json: bool,
        /// Labels shown per model (0: all).
        #[arg(long, default_value_t = 3)]
        top_k: usize,
        /// Also show each segment's predictions.
        #[arg(long)]
        segments: bool,
        /// Feature plugin to use.
        #[arg(long, default_value = "mel")]
        plugin: String,
        /// Set a plugin parameter (see `features --help`).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        params: Vec<String>,
        /// Segment length in seconds.
        #[arg(long, default_value_t = 3.0)]
        segment_seconds: f64,
        /// Worker threads [default: all cores].
        #[arg(long, short)]
        jobs: Option<usize>,
        /// Audio files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Evaluate every model, and their ensemble, on a labelled folder DIR/<label>/<file>:
    /// track- and segment-level accuracy, per-class precision / recall / F1, confusion matrix.
    Eval {
        #[command(flatten)]
        data: LabelledData,
        /// Print one JSON object instead of tables.
        #[arg(long)]
        json: bool,
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
    /// Train a model in Rust. Only pca-knn trains here; the neural models train in training/.
    Train {
        #[command(subcommand)]
        model: TrainModel,
    },
    /// Split a labelled folder DIR/<label>/<file> into train / val / test, by file and
    /// stratified by label; prints PATH<TAB>SPLIT lines (paths relative to DIR).
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
    /// List the plugins found on the search path, and why any library was refused.
    Plugins {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// A labelled folder to evaluate on, optionally one subset of a split.
#[derive(Debug, clap::Args)]
struct LabelledData {
    /// The labelled folder DIR/<label>/<file>; each sub-folder name is the label of its files.
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// Only the files a split file (PATH<TAB>SPLIT per line, paths relative to DIR) puts in
    /// --subset.
    #[arg(long, value_name = "FILE")]
    split: Option<PathBuf>,
    /// The split to use with --split.
    #[arg(long, default_value = "test")]
    subset: String,
    /// Worker threads [default: all cores].
    #[arg(long, short)]
    jobs: Option<usize>,
}

impl LabelledData {
    fn request(self, all_cores: usize) -> eval::EvalRequest {
        eval::EvalRequest {
            data_dir: self.data,
            split: self.split.map(|s| (s, self.subset)),
            jobs: self.jobs.unwrap_or(all_cores),
        }
    }
}

#[derive(Debug, Subcommand)]
enum IndexAction {
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
#[derive(Debug, clap::Args)]
struct SettingsArgs {
    /// Read this configuration file too (after the system and user files).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:50051]. Loopback unless you mean to serve a network.
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// A library folder (repeatable): its audio files are analysed, and it is watched.
    /// Only files under library roots are ever read.
    #[arg(long = "root", value_name = "DIR")]
    roots: Vec<PathBuf>,
    /// Where the library database lives [default: $XDG_DATA_HOME/timbre].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Analysis threads [default: one per core].
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    /// On shutdown, how long calls and analyses in flight may take before the daemon exits anyway.
    #[arg(long, value_name = "SECONDS")]
    shutdown_grace: Option<f64>,
}

#[derive(Debug, Subcommand)]
enum TrainModel {
    /// Standardise -> PCA -> kNN on 3 s log-mel segments (report 000), labels from sub-folder names.
    PcaKnn {
        /// Labelled folder DIR/<label>/<file>.
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// Model folder to write (model.knn + model.toml).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Train on the files a split file (from `timbred split`) puts in train and val, never test.
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
        /// Worker threads for feature extraction [default: all cores].
        #[arg(long, short)]
        jobs: Option<usize>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A daemon's log says what it loaded (models, execution provider); commands stay quiet.
    let daemon = matches!(cli.command, Command::Serve { .. });
    init_logging(cli.verbose + u8::from(daemon));
    match run(cli) {
        Ok(all_ok) => {
            if all_ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(error) => {
            eprintln!("timbred: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    // symphonia logs its own view of a bad file at error level; timbre's error already names
    // the file and the cause, so its crates are quiet unless asked for with -vv or TIMBRE_LOG.
    let quiet = if verbose >= 2 {
        ""
    } else {
        ",symphonia_core=off,symphonia_bundle_mp3=off,symphonia_bundle_flac=off,symphonia_format_isomp4=off,symphonia_format_ogg=off,symphonia_format_riff=off,symphonia_codec_aac=off,symphonia_codec_vorbis=off,symphonia_codec_alac=off,symphonia_codec_pcm=off"
    };
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("TIMBRE_LOG").unwrap_or_else(|_| format!("{level}{quiet}").into());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

/// Returns whether every input succeeded.
fn run(cli: Cli) -> anyhow::Result<bool> {
    match &cli.command {
        Command::Serve { settings } => {
            let loaded = load_settings(&cli, settings)?;
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(timbre_daemon::serve::run(loaded.settings))?;
            // Calls still open after the grace period must not hold the exit.
            runtime.shutdown_background();
            return Ok(true);
        }
        Command::Index { action: IndexAction::Rebuild { settings } } => {
            let loaded = load_settings(&cli, settings)?;
            let settings = loaded.settings;
            let store = timbre_daemon::library::Store::open(&settings.database_path())?;
            let runtime = tokio::runtime::Runtime::new()?;
            let report = runtime.block_on(async {
                let index = settings.index.open(&settings.library.data_dir).await?;
                eprintln!("timbred: rebuilding {} from {}", index.describe(), store.path().display());
                timbre_daemon::index::rebuild_from_library(index.as_ref(), &store).await
            })?;
            println!(
                "indexed {} of {} library tracks ({} refused)",
                report.upserted, report.library_tracks, report.rejected
            );
            return Ok(report.rejected == 0);
        }
        Command::Config { settings } => {
            let loaded = load_settings(&cli, settings)?;
            println!("# timbred serve's effective configuration; each value's layer is in the comment");
            for (key, value, origin) in loaded.provenance.iter() {
                println!("{:<48} # {origin}", format!("{key} = {value}"));
            }
            return Ok(true);
        }
        _ => {}
    }
    let path = SearchPath::standard(&cli.plugin_path);
    let model_options = ModelOptions {
        paths: cli.model_path.clone(),
        onnxruntime: cli.onnxruntime.clone(),
        execution_provider: cli.execution_provider.clone().unwrap_or_else(|| "auto".into()),
        intra_threads: 1,
        only: cli.models.clone(),
    };
    let registry = PluginRegistry::discover(&path);
    let all_cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    match cli.command {
        Command::Features { plugin, params, out, jobs, max_duration, segment_seconds, files } => {
            if let Some(seconds) = segment_seconds {
                anyhow::ensure!(seconds > 0.0 && seconds <= 600.0, "--segment-seconds must be in (0, 600]");
            }
            fs_err::create_dir_all(&out)?;
            let request = features::FeaturesRequest {
                plugin,
                config: plugin_config(&params)?,
                files,
                out_dir: out,
                jobs: jobs.unwrap_or(all_cores),
                max_seconds: max_duration,
                segments: segment_seconds.map(|seconds| SegmentOptions { seconds, ..SegmentOptions::default() }),
            };
            let (mut written, mut failed) = (0usize, 0usize);
            features::run(&registry, &request, |file, outcome| match outcome {
                features::FeaturesOutcome::Written { output, shape } => {
                    written += 1;
                    eprintln!("wrote {} {:?} from {}", output.display(), shape, file.display());
                }
                features::FeaturesOutcome::Failed(reason) => {
                    failed += 1;
                    eprintln!("error: {reason}");
                }
            })?;
            eprintln!("{written} written, {failed} failed");
            Ok(failed == 0)
        }
        Command::Analyze { json, top_k, segments, plugin, params, segment_seconds, jobs, files } => {
            anyhow::ensure!(segment_seconds > 0.0 && segment_seconds <= 600.0, "--segment-seconds must be in (0, 600]");
            let request = analyze::AnalyzeRequest {
                plugin,
                config: plugin_config(&params)?,
                files,
                segments: SegmentOptions { seconds: segment_seconds, ..SegmentOptions::default() },
                jobs: jobs.unwrap_or(all_cores),
            };
            let catalog = model_catalog(&registry, &model_options);
            let mut failed = 0usize;
            analyze::run(&registry, &catalog, &request, |file, result| {
                if result.is_err() {
                    failed += 1;
                }
                print_analysis(file, result, json, top_k, segments);
            })?;
            Ok(failed == 0)
        }
        Command::Eval { data, json } => {
            let catalog = model_catalog(&registry, &model_options);
            let request = data.request(all_cores);
            let mut last = std::time::Instant::now();
            let report = eval::run(&registry, &catalog, &request, |done, total| {
                if done == total || last.elapsed().as_secs_f64() > 2.0 {
                    eprintln!("eval: {done}/{total} files");
                    last = std::time::Instant::now();
                }
            })?;
            for (file, reason) in &report.failed {
                eprintln!("error: {}: {reason}", file.display());
            }
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print_eval(&report);
            }
            Ok(report.failed.is_empty())
        }
        Command::Train {
            model: TrainModel::PcaKnn { data, out, split, k, weighted, components, seed, version, jobs },
        } => {
            let options = timbre_plugin_pca_knn::TrainOptions { k, weighted, components, seed, ..Default::default() };
            let request = train::TrainRequest {
                data_dir: data,
                out_dir: out.clone(),
                split,
                options,
                jobs: jobs.unwrap_or(all_cores),
                version,
            };
            let mut read = 0usize;
            let report = train::train_pca_knn(&registry, &request, |_, error| match error {
                Some(error) => eprintln!("error: {error}"),
                None => {
                    read += 1;
                    if read.is_multiple_of(50) {
                        eprintln!("train: features of {read} files");
                    }
                }
            })?;
            println!("{report}");
            println!("wrote {}", out.display());
            Ok(true)
        }
        Command::Split { data, test, validation, seed } => {
            anyhow::ensure!(
                test >= 0.0 && validation >= 0.0 && test + validation < 1.0,
                "--test and --validation must leave files to train on"
            );
            let lines = timbre_daemon::offline::split::split(
                &data,
                timbre_daemon::offline::split::SplitOptions { validation, test, seed },
            )?;
            println!("# timbred split --data {} --test {test} --validation {validation} --seed {seed}", data.display());
            for (file, which) in lines {
                println!("{file}\t{which}");
            }
            Ok(true)
        }
        Command::Serve { .. } | Command::Config { .. } | Command::Index { .. } => unreachable!("handled above"),
        Command::EvalNeighbours { data, json } => {
            let catalog = model_catalog(&registry, &model_options);
            let request = data.request(all_cores);
            let mut last = std::time::Instant::now();
            let report = neighbours::run(&registry, &catalog, &request, |done, total| {
                if done == total || last.elapsed().as_secs_f64() > 2.0 {
                    eprintln!("eval-neighbours: analysed {done}/{total} files");
                    last = std::time::Instant::now();
                }
            })?;
            for (file, reason) in &report.failed {
                eprintln!("error: {}: {reason}", file.display());
            }
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!(
                    "{} tracks; a random neighbour shares the genre {:.1} % of the time",
                    report.tracks,
                    100.0 * report.chance
                );
                println!("{:<10} {:>5} {:>8} {:>8}", "space", "dim", "top-5", "top-10");
                for space in &report.spaces {
                    println!(
                        "{:<10} {:>5} {:>7.1}% {:>7.1}%",
                        space.space,
                        space.dimension,
                        100.0 * space.top5,
                        100.0 * space.top10
                    );
                }
            }
            Ok(report.failed.is_empty())
        }
        Command::Plugins { json } => {
            let listing = plugins::list(&registry, &path);
            let catalog = ModelCatalog::discover(&registry, &model_options);
            if json {
                let mut value = serde_json::to_value(&listing)?;
                value["models"] = catalog
                    .models
                    .iter()
                    .map(|m| serde_json::json!({ "name": m.name(), "plugin": m.folder.plugin(), "dir": m.folder.dir, "info": m.info }))
                    .collect();
                value["refused_models"] = catalog
                    .refused
                    .iter()
                    .map(|(dir, reason)| serde_json::json!({ "dir": dir, "reason": reason }))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&value)?);
            } else {
                print_plugins(&listing);
                for m in &catalog.models {
                    println!(
                        "model {:<10} {:<8} {}  ({})",
                        m.name(),
                        m.folder.plugin(),
                        m.folder.dir.display(),
                        m.info["execution_provider"].as_str().unwrap_or("-")
                    );
                }
                for (dir, reason) in &catalog.refused {
                    println!("refused model {}: {reason}", dir.display());
                }
            }
            Ok(true)
        }
    }
}

/// The configuration layers, with the command line's settings as the strongest.
fn load_settings(cli: &Cli, args: &SettingsArgs) -> anyhow::Result<timbre_daemon::config::Loaded> {
    let mut flags = Flags::default();
    flags.set_paths("plugins.paths", "--plugin-path", &cli.plugin_path);
    flags.set_paths("models.paths", "--model-path", &cli.model_path);
    if !cli.models.is_empty() {
        let only = cli.models.iter().map(|m| config::Value::new(None, m.as_str())).collect::<Vec<_>>();
        flags.set("models.only", "--models", only);
    }
    if let Some(runtime) = &cli.onnxruntime {
        flags.set("models.onnxruntime", "--onnxruntime", runtime.display().to_string());
    }
    if let Some(provider) = &cli.execution_provider {
        flags.set("models.execution_provider", "--execution-provider", provider.as_str());
    }
    if let Some(listen) = &args.listen {
        flags.set("server.listen", "--listen", listen.as_str());
    }
    let roots: Vec<PathBuf> = args.roots.iter().map(|r| std::path::absolute(r).unwrap_or_else(|_| r.clone())).collect();
    flags.set_paths("library.roots", "--root", &roots);
    if let Some(dir) = &args.data_dir {
        let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.clone());
        flags.set("library.data_dir", "--data-dir", dir.display().to_string());
    }
    if let Some(workers) = args.workers {
        flags.set("workers.threads", "--workers", workers as u64);
    }
    if let Some(grace) = args.shutdown_grace {
        flags.set("server.shutdown_grace_s", "--shutdown-grace", grace);
    }
    Ok(Settings::load(args.config.as_deref(), &flags)?)
}

/// `KEY=VALUE` pairs into a JSON object; values are JSON when they parse, text otherwise.
fn plugin_config(params: &[String]) -> anyhow::Result<serde_json::Value> {
    let mut config = serde_json::Map::new();
    for param in params {
        let (key, value) = param.split_once('=').with_context(|| format!("--set {param}: expected KEY=VALUE"))?;
        let value = serde_json::from_str(value).unwrap_or_else(|_| serde_json::Value::String(value.to_string()));
        config.insert(key.trim().to_string(), value);
    }
    Ok(serde_json::Value::Object(config))
}

/// Discover the models, saying on stderr which folders were refused and why.
fn model_catalog(registry: &PluginRegistry, options: &ModelOptions) -> ModelCatalog {
    let catalog = ModelCatalog::discover(registry, options);
    for (dir, reason) in &catalog.refused {
        eprintln!("warning: model {} not loaded: {reason}", dir.display());
    }
    catalog
}

fn print_analysis(
    file: &std::path::Path,
    result: Result<analyze::Analysis, timbre_daemon::pipeline::PipelineError>,
    json: bool,
    top_k: usize,
    segments: bool,
) {
    match (result, json) {
        (Ok(analysis), true) => println!("{}", analyze::to_json(&analysis, top_k, segments)),
        (Err(error), true) => println!("{}", serde_json::json!({ "path": file, "error": error.to_string() })),
        (Ok(a), false) => {
            let f = &a.features;
            println!("{}", a.path.display());
            println!("  duration   {:.2} s ({} Hz, {} ch, {})", a.duration_s, a.sample_rate, a.channels, a.codec);
            println!("  segments   {} x {} s", a.segments, a.segment_s);
            println!(
                "  features   {} at {} Hz, {} x {} per segment; mean {:.1}, std {:.1}, range [{:.1}, {:.1}]",
                f.plugin, f.sample_rate, f.shape[0], f.shape[1], f.mean, f.std, f.min, f.max
            );
            for prediction in &a.predictions {
                let labels = analyze::top_labels(&prediction.labels, &prediction.probabilities, top_k);
                println!("  {:<10} {}", prediction.model, label_text(&labels));
                if segments {
                    for (i, probabilities) in prediction.segments.iter().enumerate() {
                        let best = analyze::top_labels(&prediction.labels, probabilities, 1);
                        println!("    {:>7.1} s  {}", i as f64 * prediction.segment_seconds, label_text(&best));
                    }
                }
            }
        }
        (Err(error), false) => eprintln!("error: {error}"),
    }
}

fn print_plugins(listing: &plugins::PluginListing) {
    println!("search path: {}", listing.search_path.join(":"));
    if listing.plugins.is_empty() {
        println!("no plugins found");
    }
    for p in &listing.plugins {
        println!(
            "{:<12} {:<10} {:<8} abi {}.{}  {}",
            p.name,
            p.kind.to_string(),
            p.version,
            p.abi_major,
            p.abi_minor,
            p.file
        );
    }
    for r in &listing.refused {
        println!("refused      {}: {}", r.file, r.reason);
    }
}

/// "jazz 0.81, blues 0.10"
fn label_text(labels: &[serde_json::Value]) -> String {
    let text: Vec<String> = labels
        .iter()
        .map(|l| format!("{} {:.2}", l["name"].as_str().unwrap_or("?"), l["probability"].as_f64().unwrap_or(0.0)))
        .collect();
    text.join(", ")
}

fn print_eval(report: &eval::EvalReport) {
    let split = report.split.as_deref().map(|s| format!(", split {s}")).unwrap_or_default();
    println!("{}{split}", report.data.display());
    println!("{:<10} {:>8} {:>10} {:>8} {:>10}", "model", "tracks", "track acc", "segments", "seg acc");
    for m in &report.models {
        println!(
            "{:<10} {:>8} {:>9.1}% {:>8} {:>9.1}%",
            m.model,
            m.tracks,
            m.track_accuracy * 100.0,
            m.segments,
            m.segment_accuracy * 100.0
        );
    }
    for m in &report.models {
        println!("\n{} (track level)", m.model);
        println!("  {:<10} {:>9} {:>7} {:>6} {:>7}", "class", "precision", "recall", "f1", "tracks");
        for (label, s) in &m.per_class {
            println!("  {:<10} {:>9.2} {:>7.2} {:>6.2} {:>7}", label, s.precision, s.recall, s.f1, s.support);
        }
        let short: Vec<String> = m.confusion.labels.iter().map(|l| l.chars().take(5).collect()).collect();
        println!("  confusion (rows: true, columns: predicted)");
        println!("  {:<10} {}", "", short.iter().map(|l| format!("{l:>6}")).collect::<String>());
        for (label, row) in m.confusion.labels.iter().zip(&m.confusion.matrix) {
            println!("  {:<10} {}", label, row.iter().map(|n| format!("{n:>6}")).collect::<String>());
        }
    }
}
