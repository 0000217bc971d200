//! `timbred`: flags in, a library call, an exit code out.

mod flags;
mod print;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use timbre_daemon::catalogue;
use timbre_daemon::config::{Flags, Settings};
use timbre_daemon::models::{ModelCatalog, ModelOptions};
use timbre_daemon::offline::{analyze, eval, features, neighbours, split, train};
use timbre_daemon::pipeline::SegmentOptions;
use timbre_daemon::plugin_host::{PluginRegistry, SearchPath};

use flags::{AnalyzeArgs, Cli, Command, FeaturesArgs, IndexAction, LabelledData, SettingsArgs, TagArgs, TrainModel};
use print::{print_analysis, print_eval, print_failures, print_neighbours, print_plugins, progress};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let daemon = matches!(cli.command, Command::Serve { .. });
    let filter = tracing_subscriber::EnvFilter::try_from_env("TIMBRE_LOG")
        .unwrap_or_else(|_| log_filter(cli.verbose, daemon).into());
    timbre_daemon::logging::init(filter);
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

/// The log filter for `-v` given `verbose` times: warnings only, -v info, -vv debug. A daemon
/// says what it loaded (models, execution provider) at info without being asked; commands
/// stay quiet.
fn log_filter(verbose: u8, daemon: bool) -> String {
    let verbose = if daemon { verbose.max(1) } else { verbose };
    match verbose {
        0 => format!("warn{QUIET_DECODERS}"),
        1 => format!("info{QUIET_DECODERS}"),
        // HTTP/2 and TLS log every frame and record at debug: that is a TIMBRE_LOG=debug job.
        _ => "debug,h2=info,hyper=info,hyper_util=info,tower=info,rustls=info,tokio_rustls=info".into(),
    }
}

/// symphonia logs its own view of a bad file at error level; timbre's error already names the
/// file and the cause (and the decoder sums up skipped packets in one line per file), so its
/// crates are quiet unless asked for with -vv or TIMBRE_LOG. A target directive matches by
/// prefix, so `symphonia` covers every `symphonia_*` crate, including ones a new version adds
/// (0.6 moved code into `symphonia_common` and logs from `symphonia_metadata`).
const QUIET_DECODERS: &str = ",symphonia=off";

/// Returns whether every input succeeded.
fn run(cli: Cli) -> anyhow::Result<bool> {
    match &cli.command {
        Command::Serve { settings } => serve(&cli, settings),
        Command::Config { settings } => print_config(&cli, settings),
        Command::Index { action: IndexAction::Rebuild { settings } } => rebuild_index(&cli, settings),
        Command::Features(args) => features(&Offline::new(&cli), args),
        Command::Analyze(args) => analyze(&Offline::new(&cli), args),
        Command::Eval { data, json, plots } => evaluate(&Offline::new(&cli), data, *json, plots.as_deref()),
        Command::EvalNeighbours { data, json } => evaluate_neighbours(&Offline::new(&cli), data, *json),
        Command::Train { model } => train_model(&cli, &Offline::new(&cli), model),
        Command::Split { data, test, validation, seed } => print_split(data, *test, *validation, *seed),
        Command::Tag(args) => tag(&cli, args),
        Command::Plugins { json } => list_plugins(&Offline::new(&cli), *json),
        Command::Generate { what } => {
            let mut out = std::io::stdout().lock();
            timbre_generate::write::<Cli>(*what, "timbred", &mut out)?;
            std::io::Write::flush(&mut out)?;
            Ok(true)
        }
    }
}

fn serve(cli: &Cli, settings: &SettingsArgs) -> anyhow::Result<bool> {
    let loaded = load_settings(cli, settings)?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(timbre_daemon::serve::run(loaded))?;
    // Calls still open after the grace period must not hold the exit.
    runtime.shutdown_background();
    Ok(true)
}

fn print_config(cli: &Cli, settings: &SettingsArgs) -> anyhow::Result<bool> {
    let loaded = load_settings(cli, settings)?;
    println!("# timbred serve's effective configuration; each value's layer is in the comment");
    for (key, value, origin) in loaded.provenance.iter() {
        println!("{:<48} # {origin}", format!("{key} = {value}"));
    }
    Ok(true)
}

fn rebuild_index(cli: &Cli, settings: &SettingsArgs) -> anyhow::Result<bool> {
    let settings = load_settings(cli, settings)?.settings;
    let store = timbre_daemon::library::Store::open(&settings.database_path())?;
    let runtime = tokio::runtime::Runtime::new()?;
    let report = runtime.block_on(async {
        let index = settings.index.open(&settings.library.data_dir).await?;
        eprintln!("timbred: rebuilding {} from {}", index.describe(), store.path().display());
        timbre_daemon::index::rebuild_from_library(index.as_ref(), &store).await
    })?;
    println!("indexed {} of {} library tracks ({} refused)", report.upserted, report.library_tracks, report.rejected);
    Ok(report.rejected == 0)
}

/// What the offline commands share: the plugins found and how to load models.
struct Offline {
    path: SearchPath,
    registry: PluginRegistry,
    model_options: ModelOptions,
    all_cores: usize,
}

impl Offline {
    fn new(cli: &Cli) -> Self {
        let path = SearchPath::standard(&cli.plugin_path);
        let registry = PluginRegistry::discover(&path);
        let model_options = ModelOptions {
            paths: cli.model_path.clone(),
            onnxruntime: cli.onnxruntime.clone(),
            execution_provider: cli.execution_provider.clone().unwrap_or_else(|| "auto".into()),
            intra_threads: 1,
            graph_optimization: "all".into(),
            only: cli.models.clone(),
        };
        let all_cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Offline { path, registry, model_options, all_cores }
    }

    /// The models, with a warning for each folder that could not be loaded.
    fn catalog(&self) -> ModelCatalog {
        self.catalog_of(&self.model_options.only.clone())
    }

    /// The catalogue with only the models named (every model when none are).
    fn catalog_of(&self, only: &[String]) -> ModelCatalog {
        let options = ModelOptions { only: only.to_vec(), ..self.model_options.clone() };
        let catalog = ModelCatalog::discover(&self.registry, &options);
        for (dir, reason) in &catalog.refused {
            eprintln!("warning: model {} not loaded: {reason}", dir.display());
        }
        catalog
    }
}

fn features(offline: &Offline, args: &FeaturesArgs) -> anyhow::Result<bool> {
    if let Some(seconds) = args.segment_seconds {
        anyhow::ensure!(seconds > 0.0 && seconds <= 600.0, "--segment-seconds must be in (0, 600]");
    }
    fs_err::create_dir_all(&args.out)?;
    let request = features::FeaturesRequest {
        plugin: args.plugin.clone(),
        config: plugin_config(&args.params)?,
        files: args.files.clone(),
        out_dir: args.out.clone(),
        jobs: args.jobs.unwrap_or(offline.all_cores),
        max_seconds: args.max_duration,
        segments: args.segment_seconds.map(|seconds| SegmentOptions { seconds, ..SegmentOptions::default() }),
    };
    let (mut written, mut failed) = (0usize, 0usize);
    features::run(&offline.registry, &request, |file, outcome| match outcome {
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

fn analyze(offline: &Offline, args: &AnalyzeArgs) -> anyhow::Result<bool> {
    let seconds = args.segment_seconds;
    anyhow::ensure!(seconds > 0.0 && seconds <= 600.0, "--segment-seconds must be in (0, 600]");
    let request = analyze::AnalyzeRequest {
        plugin: args.plugin.clone(),
        config: plugin_config(&args.params)?,
        files: args.files.clone(),
        segments: SegmentOptions { seconds, ..SegmentOptions::default() },
        jobs: args.jobs.unwrap_or(offline.all_cores),
        descriptors: !args.no_descriptors,
    };
    let catalog = offline.catalog();
    let mut failed = 0usize;
    analyze::run(&offline.registry, &catalog, &request, |file, result| {
        if result.is_err() {
            failed += 1;
        }
        print_analysis(file, result, args.json, args.top_k, args.segments);
    })?;
    Ok(failed == 0)
}

fn evaluate(
    offline: &Offline,
    data: &LabelledData,
    json: bool,
    plots: Option<&std::path::Path>,
) -> anyhow::Result<bool> {
    let catalog = offline.catalog();
    let report = eval::run(&offline.registry, &catalog, &data.request(offline.all_cores), progress("eval"))?;
    print_failures(&report.failed);
    if let Some(dir) = plots {
        for plot in eval::write_plots(&report, dir)? {
            eprintln!("wrote {}", plot.file.display());
        }
    }
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_eval(&report);
    }
    Ok(report.failed.is_empty())
}

fn evaluate_neighbours(offline: &Offline, data: &LabelledData, json: bool) -> anyhow::Result<bool> {
    let catalog = offline.catalog();
    let request = data.request(offline.all_cores);
    let report = neighbours::run(&offline.registry, &catalog, &request, progress("eval-neighbours"))?;
    print_failures(&report.failed);
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_neighbours(&report);
    }
    Ok(report.failed.is_empty())
}

fn train_model(cli: &Cli, offline: &Offline, model: &TrainModel) -> anyhow::Result<bool> {
    let TrainModel::PcaKnn { data, out, split, k, weighted, components, seed, version, padding, jobs } = model else {
        return train_head(cli, offline, model);
    };
    let options = timbre_pca_knn::TrainOptions {
        k: *k,
        weighted: *weighted,
        components: *components,
        seed: *seed,
        ..Default::default()
    };
    let request = train::TrainRequest {
        data_dir: data.clone(),
        out_dir: out.clone(),
        split: split.clone(),
        options,
        jobs: jobs.unwrap_or(offline.all_cores),
        version: version.clone(),
        padding: serde_json::from_value(serde_json::json!(padding))?,
    };
    let mut read = 0usize;
    let report = train::train_pca_knn(&offline.registry, &request, |_, error| match error {
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

fn train_head(cli: &Cli, offline: &Offline, model: &TrainModel) -> anyhow::Result<bool> {
    let TrainModel::Head {
        embedding,
        data,
        from_library,
        out,
        split,
        name,
        version,
        seed,
        folds,
        whole_track_seconds,
        jobs,
        ..
    } = model
    else {
        anyhow::bail!("not a head");
    };
    let name = match name {
        Some(name) => name.clone(),
        None => out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "head".into()),
    };
    // As typed, with the program called by its name rather than wherever this binary is.
    let command = std::iter::once("timbred".to_string())
        .chain(std::env::args().skip(1).map(|a| if a.contains(' ') { format!("'{a}'") } else { a }))
        .collect::<Vec<_>>()
        .join(" ");
    if *from_library {
        return train_head_from_library(cli, model, name, command);
    }
    let data = data.as_ref().context("--data DIR or --from-library")?;
    let request = timbre_daemon::offline::head::HeadRequest {
        data_dir: data.clone(),
        out_dir: out.clone(),
        embedding: embedding.clone(),
        split: split.clone(),
        name,
        version: version.clone(),
        seed: *seed,
        folds: *folds,
        whole_track_seconds: *whole_track_seconds,
        jobs: jobs.unwrap_or(offline.all_cores),
        command,
    };
    let catalog = offline.catalog_of(&[embedding.clone()]);
    let outcome =
        timbre_daemon::offline::head::train_head(&offline.registry, &catalog, &request, progress("train head"))?;
    print_failures(&outcome.failed);
    let report = &outcome.report;
    let chosen = &report.candidates[report.chosen];
    println!(
        "{} tracks; upstream analysis {:.1} s, training {:.2} s; chose {} (held-out accuracy {:.1} %)",
        outcome.tracks,
        outcome.analyse_seconds,
        outcome.train_seconds,
        report.classifier,
        100.0 * chosen.accuracy
    );
    if let Some(cv) = &outcome.cross_validation {
        println!(
            "{}-fold cross-validation: {:.1} % of {} tracks, {:.1} % of {} whole tracks (>= {} s)",
            cv.folds,
            100.0 * cv.accuracy,
            cv.tracks,
            100.0 * cv.whole_track_accuracy,
            cv.whole_tracks,
            cv.whole_track_seconds
        );
    }
    println!("wrote {}", out.display());
    Ok(outcome.failed.is_empty())
}

/// `train head --from-library`: reads the library database only, so it loads no model and
/// can run beside a serving daemon.
fn train_head_from_library(cli: &Cli, model: &TrainModel, name: String, command: String) -> anyhow::Result<bool> {
    use timbre_daemon::offline::library_head::{self, LabelSource, TagField};
    let TrainModel::Head { embedding, out, version, seed, field, labels, min_tracks, data_dir, test, json, .. } = model
    else {
        anyhow::bail!("not a head");
    };
    anyhow::ensure!(*test > 0.0 && *test < 0.8, "--test must be in (0, 0.8)");
    let settings = SettingsArgs { data_dir: data_dir.clone(), ..SettingsArgs::default() };
    let database = load_settings(cli, &settings)?.settings.database_path();
    let labels = match labels {
        Some(file) => LabelSource::File(file.clone()),
        None => LabelSource::Tag(TagField::parse(field).context("--field")?),
    };
    let request = library_head::LibraryHeadRequest {
        database,
        labels,
        embedding: embedding.clone(),
        out_dir: out.clone(),
        name,
        version: version.clone(),
        min_tracks: *min_tracks,
        test: *test,
        validation: 0.2,
        seed: *seed,
        command,
    };
    let outcome = library_head::train_from_library(&request)?;
    for dropped in &outcome.dropped {
        eprintln!("dropped label '{}': {}", dropped.label, dropped.reason);
    }
    if *json {
        println!("{}", serde_json::to_string(&outcome)?);
        return Ok(true);
    }
    let e = &outcome.evaluation;
    println!(
        "{} labelled tracks of {} with a {} embedding ({} without a label); {} labels, {} dropped; split by {}",
        outcome.labels.iter().map(|l| l.tracks).sum::<usize>(),
        outcome.library_tracks,
        outcome.embedding,
        outcome.unlabelled,
        outcome.labels.len(),
        outcome.dropped.len(),
        outcome.split_by
    );
    println!("chose {} in {:.2} s", outcome.report.classifier, outcome.train_seconds);
    println!(
        "held-out accuracy {:.1} % of {} tracks (chance: {:.1} % most common label, {:.1} % uniform)",
        100.0 * e.accuracy,
        e.tracks,
        100.0 * e.chance_majority,
        100.0 * e.chance_uniform
    );
    println!("{:<24} {:>9} {:>7} {:>7}", "label", "precision", "recall", "tracks");
    for (label, s) in &e.per_label {
        println!("{label:<24} {:>9.2} {:>7.2} {:>7}", s.precision, s.recall, s.support);
    }
    println!("wrote {}", out.display());
    Ok(true)
}

fn print_split(data: &std::path::Path, test: f64, validation: f64, seed: u64) -> anyhow::Result<bool> {
    anyhow::ensure!(
        test >= 0.0 && validation >= 0.0 && test + validation < 1.0,
        "--test and --validation must leave files to train on"
    );
    let options = split::SplitOptions { fractions: timbre_rng::split::Fractions { validation, test }, seed };
    let lines = split::split(data, options)?;
    print!("{}", split::to_tsv(&lines, options));
    Ok(true)
}

/// `timbred tag`. The data directory's lock is not taken: it keeps a second daemon out, and
/// this command must work beside the one running. SQLite (WAL) lets both write the library.
fn tag(cli: &Cli, args: &TagArgs) -> anyhow::Result<bool> {
    use timbre_daemon::library::{Store, TrackState};
    use timbre_daemon::tagging::{self, Tagger};

    let settings_args = SettingsArgs {
        config: args.config.clone(),
        listen: None,
        auth_token_file: None,
        insecure_listen: false,
        roots: Vec::new(),
        data_dir: args.data_dir.clone(),
        workers: None,
        shutdown_grace: None,
    };
    let settings = load_settings(cli, &settings_args)?.settings;
    let database = settings.database_path();
    anyhow::ensure!(
        database.is_file(),
        "no library at {} (see --data-dir); `timbred serve` builds it as it analyses",
        database.display()
    );
    let store = Store::open(&database)?;
    let tagger = Tagger::new(settings.tagging.clone(), &args.fields);
    let mut failed = 0usize;
    let mut fail = |error: &dyn std::fmt::Display, path: &str| {
        failed += 1;
        if args.json {
            println!("{}", serde_json::json!({ "path": path, "error": error.to_string() }));
        } else {
            eprintln!("error: {error}");
        }
    };
    let mut tracks = Vec::new();
    if args.paths.is_empty() {
        if args.undo {
            for id in store.tracks_with_tag_writes()? {
                tracks.extend(store.track(id)?);
            }
        } else {
            let mut after = 0;
            loop {
                let (page, _) = store.list(&Default::default(), after, 500)?;
                let Some(last) = page.last() else { break };
                after = last.id;
                // The whole library: only what has an analysis to write.
                tracks.extend(page.into_iter().filter(|t| t.state == TrackState::Analysed));
            }
        }
    }
    for path in &args.paths {
        // Paths are stored absolute and free of symlinks, as the scanner resolves them.
        let resolved =
            std::fs::canonicalize(path).unwrap_or_else(|_| std::path::absolute(path).unwrap_or(path.clone()));
        let text = resolved.display().to_string();
        if resolved.is_dir() {
            let under = store.paths_under(&text)?;
            if under.is_empty() {
                fail(&format!("{}: no track of the library is in this folder", path.display()), &text);
            }
            for (id, _) in under {
                tracks.extend(store.track(id)?.filter(|t| args.undo || t.state == TrackState::Analysed));
            }
            continue;
        }
        match store.track_by_path(&text)? {
            Some(track) => tracks.push(track),
            None => fail(&tagging::TagError::NotInLibrary { path: path.clone() }, &text),
        }
    }
    for track in &tracks {
        let outcome = if args.undo {
            tagging::undo(&store, track, args.dry_run)
        } else {
            tagger.tag(&store, track, args.dry_run).map(Some)
        };
        match outcome {
            Ok(Some(report)) => print_tag_report(&report, args),
            Ok(None) => {
                if !args.json {
                    println!("{}: no write of timbre's to undo", track.path);
                }
            }
            Err(error) => fail(&error, &track.path),
        }
    }
    Ok(failed == 0)
}

fn print_tag_report(report: &timbre_daemon::tagging::FileReport, args: &TagArgs) {
    if args.json {
        let mut value = serde_json::to_value(report).expect("a report serialises");
        value["dry_run"] = args.dry_run.into();
        value["undo"] = args.undo.into();
        println!("{value}");
        return;
    }
    let what = match (report.changes.is_empty(), args.dry_run) {
        (true, _) => "unchanged",
        (false, true) => "would change",
        (false, false) => "written",
    };
    println!("{}: {what}", report.path);
    let shown = |values: &[String]| {
        if values.is_empty() {
            "(none)".to_string()
        } else {
            values.iter().map(|v| format!("{v:?}")).collect::<Vec<_>>().join(", ")
        }
    };
    for change in &report.changes {
        println!("  {:<10} {:<44} {} -> {}", change.field.name(), change.tag, shown(&change.old), shown(&change.new));
    }
}

fn list_plugins(offline: &Offline, json: bool) -> anyhow::Result<bool> {
    let catalog = ModelCatalog::discover(&offline.registry, &offline.model_options);
    let listing = catalogue::list(&offline.registry, &offline.path, &catalog);
    if json {
        println!("{}", serde_json::to_string_pretty(&listing)?);
        return Ok(true);
    }
    print_plugins(&listing);
    Ok(true)
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
    if let Some(file) = &args.auth_token_file {
        let file = std::path::absolute(file).unwrap_or_else(|_| file.clone());
        flags.set("server.auth.tokens_file", "--auth-token-file", file.display().to_string());
    }
    if args.insecure_listen {
        flags.set("server.insecure_listen", "--insecure-listen", true);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `-v` is info, as `--help` says, for the daemon too; debug needs -vv, and even then the
    /// HTTP/2 frames stay out of the log.
    #[test]
    fn verbosity_matches_the_help() {
        for daemon in [false, true] {
            assert!(log_filter(1, daemon).starts_with("info,"), "{}", log_filter(1, daemon));
            assert!(log_filter(2, daemon).starts_with("debug,"), "{}", log_filter(2, daemon));
            assert!(log_filter(2, daemon).contains("h2=info"), "{}", log_filter(2, daemon));
        }
        assert!(log_filter(0, false).starts_with("warn,"));
        assert!(log_filter(0, true).starts_with("info,"), "the daemon logs at info unasked");
        for verbose in 0..4 {
            tracing_subscriber::EnvFilter::try_new(log_filter(verbose, true)).expect("a valid filter");
        }
    }

    /// Whatever crate of symphonia's logs a line (as a `log` record, which arrives with its
    /// module path as the target), it stays out of the log below -vv; timbre's lines do not.
    #[test]
    fn symphonia_is_quiet_below_debug() {
        use tracing::Level;
        use tracing_subscriber::layer::SubscriberExt as _;
        for (verbose, daemon) in [(0, false), (1, false), (0, true)] {
            let subscriber =
                tracing_subscriber::registry().with(tracing_subscriber::EnvFilter::new(log_filter(verbose, daemon)));
            tracing::subscriber::with_default(subscriber, || {
                let quiet = [
                    tracing::enabled!(target: "symphonia_core::formats::probe", Level::ERROR),
                    tracing::enabled!(target: "symphonia_common::xiph::audio::vorbis", Level::ERROR),
                    tracing::enabled!(target: "symphonia_metadata::embedded::flac", Level::ERROR),
                    tracing::enabled!(target: "symphonia_format_isomp4::demuxer", Level::ERROR),
                    tracing::enabled!(target: "symphonia_bundle_mp3::demuxer", Level::WARN),
                    tracing::enabled!(target: "symphonia_codec_aac::aac", Level::WARN),
                ];
                assert_eq!(quiet, [false; 6], "-v x {verbose}, daemon {daemon}");
                assert!(tracing::enabled!(target: "timbre_daemon::pipeline::decode", Level::WARN));
            });
        }
    }
}

#[cfg(test)]
mod generate_tests {
    use clap::CommandFactory;
    use timbre_generate::{generated, unnamed_subcommands, Generated};

    use super::Cli;

    #[test]
    fn completions_and_man_page_name_every_subcommand() {
        let names: Vec<String> = Cli::command().get_subcommands().map(|c| c.get_name().to_owned()).collect();
        assert!(names.len() >= 10 && names.iter().any(|n| n == "generate"), "{names:?}");
        assert_eq!(unnamed_subcommands::<Cli>("timbred"), vec![]);
        let man = generated::<Cli>(Generated::Man, "timbred");
        assert!(man.contains(".TH timbred"), "roff: {}", &man[..200.min(man.len())]);
        // Nested subcommands and global flags are in the completions too.
        let bash = generated::<Cli>(Generated::Bash, "timbred");
        assert!(bash.contains("rebuild") && bash.contains("pca-knn") && bash.contains("--plugin-path"));
    }
}
