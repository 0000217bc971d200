//! `timbre-bench`: the Rust side of the benchmarks in bench/. The Python drivers call it on
//! exactly the data they give the reference implementation, and compute the ratios.
//! Plugins are loaded from the .so files next to this binary, through the plugin ABI.

mod chaos;
mod daemon;
mod harness;
mod index;
mod soak;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::{Parser, Subcommand};
use timbre_daemon::models::{ModelCatalog, ModelOptions};
use timbre_daemon::plugin_host::{PluginKind, PluginRegistry, SearchPath};

#[derive(Debug, Parser)]
#[command(name = "timbre-bench", about = "Rust side of timbre's benchmarks; see bench/README.md")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Time the log-mel transform (default parameters) of a float32 .npy signal on this thread.
    /// Prints JSON: {"frames", "seconds": [each repeat]}.
    Mel {
        /// 1-D float32 signal at 22050 Hz.
        signal: PathBuf,
        #[arg(long, default_value_t = 20)]
        repeat: usize,
    },
    /// Time one model folder through the onnx plugin on a float32 .npy batch [segments, n_mels, frames].
    /// Prints JSON: {"seconds": [each repeat], "shape": [segments, classes], "probabilities": [...],
    /// "embedding": [...]} (outputs flattened row-major), so tests can compare them exactly.
    Onnx {
        /// Model folder (model.onnx + model.toml).
        model_dir: PathBuf,
        /// Input batch.
        batch: PathBuf,
        #[arg(long, default_value_t = 20)]
        repeat: usize,
        #[arg(long, default_value_t = 1)]
        threads: usize,
    },
    /// A real `timbred serve` against in-process analysis: Classify latency and throughput at
    /// several client counts, scan rate against `timbred analyze`, resident memory. Prints a
    /// table and a JSON summary (bench/README.md, "Daemon").
    Daemon(daemon::Args),
    /// `kill -9` a real `timbred serve` at random moments of its scan, restart it each time, then
    /// check the library: integrity, every file once, nothing stored redone, Recommend equal to
    /// brute force (bench/README.md, "Chaos"). Exits non-zero on any violation.
    Chaos(chaos::Args),
    /// Many gRPC clients mixing Classify, Recommend and ListTracks against a real `timbred
    /// serve` for minutes: errors, latency per RPC and resident memory over time
    /// (bench/README.md, "Soak").
    Soak(soak::Args),
    /// Recommend-style query latency of the vector index (see bench/src/index.rs); prints a
    /// Markdown table per index size.
    Index(index::IndexArgs),
}

fn read_npy(path: &Path) -> anyhow::Result<(Vec<f32>, Vec<usize>)> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let array = npyz::NpyFile::new(&bytes[..])?;
    let shape = array.shape().iter().map(|&d| d as usize).collect();
    Ok((array.into_vec()?, shape))
}

fn time(repeat: usize, mut run: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<Vec<f64>> {
    run()?; // warm-up: first-call allocations and plans
    (0..repeat.max(1))
        .map(|_| {
            let start = Instant::now();
            run()?;
            Ok(start.elapsed().as_secs_f64())
        })
        .collect()
}

fn main() -> anyhow::Result<()> {
    let registry = PluginRegistry::discover(&SearchPath::standard(&[]));
    match Cli::parse().command {
        Command::Daemon(args) => daemon::run(args, &registry)?,
        Command::Chaos(args) => chaos::run(args)?,
        Command::Soak(args) => soak::run(args, &registry)?,
        Command::Mel { signal, repeat } => {
            let (samples, _) = read_npy(&signal)?;
            let mut mel = registry.instantiate(PluginKind::Feature, "mel", &serde_json::json!({}))?;
            let mut frames = 0;
            let seconds = time(repeat, || {
                frames = mel.process(&samples, &[1, samples.len()])?.values.shape[2];
                Ok(())
            })?;
            println!("{}", serde_json::json!({ "frames": frames, "seconds": seconds }));
        }
        Command::Onnx { model_dir, batch, repeat, threads } => {
            let (data, shape) = read_npy(&batch)?;
            anyhow::ensure!(shape.len() == 3, "{} must be [segments, n_mels, frames]", batch.display());
            let options = ModelOptions {
                paths: vec![model_dir.clone()],
                execution_provider: "cpu".into(),
                intra_threads: threads,
                ..ModelOptions::default()
            };
            let catalog = ModelCatalog::discover(&registry, &options);
            let spec = catalog
                .models
                .iter()
                .find(|m| m.folder.dir == model_dir)
                .with_context(|| format!("{} did not load: {:?}", model_dir.display(), catalog.refused))?;
            let mut model = spec.instantiate(&registry)?;
            let mut last = None;
            let seconds = time(repeat, || {
                last = Some(model.process(&data, &shape)?);
                Ok(())
            })?;
            let output = last.context("no run")?;
            let embedding = output.embedding.map(|e| e.data).unwrap_or_default();
            println!(
                "{}",
                serde_json::json!({ "seconds": seconds, "shape": output.values.shape, "probabilities": output.values.data, "embedding": embedding })
            );
        }
        Command::Index(args) => index::run(args)?,
    }
    Ok(())
}
