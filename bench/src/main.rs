//! `timbre-bench`: the Rust side of the benchmarks in bench/. The Python drivers call it
//! on exactly the data they give the reference implementation, and compute the ratios.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::{Parser, Subcommand};
use timbre_plugin_mel::{MelConfig, MelSpectrogram};

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
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Mel { signal, repeat } => {
            let bytes = std::fs::read(&signal).with_context(|| format!("reading {}", signal.display()))?;
            let samples: Vec<f32> = npyz::NpyFile::new(&bytes[..])?.into_vec()?;
            let mut spectrogram = MelSpectrogram::new(MelConfig::default());
            let frames = spectrogram.n_frames(samples.len()).context("signal too short")?;
            let mut out = vec![0.0f32; MelConfig::default().n_mels * frames];
            let seconds: Vec<f64> = (0..repeat.max(1))
                .map(|_| {
                    let start = Instant::now();
                    spectrogram.compute(&samples, &mut out);
                    start.elapsed().as_secs_f64()
                })
                .collect();
            println!("{}", serde_json::json!({ "frames": frames, "seconds": seconds }));
        }
    }
    Ok(())
}
