//! Live classification: each configured live source ([`crate::sources`]) is cut into
//! windows, each window is classified on the worker pool (ahead of scans), and the result
//! is logged and broadcast to every `WatchLive` subscriber.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tokio::sync::broadcast;

use crate::pipeline::analysis::Analysis;
use crate::pipeline::classify::top;
use crate::pipeline::AudioInput;
use crate::sources::{self, LiveSourceConfig, PcmBlock};
use crate::workers::{Priority, WorkerPool};

/// Blocks a source may queue before the oldest are dropped (live audio does not wait).
const BLOCK_QUEUE: usize = 64;
/// Predictions a slow subscriber may fall behind by before it misses some.
const SUBSCRIBER_QUEUE: usize = 256;

/// What the models heard in one window of a live source.
#[derive(Debug, Clone)]
pub struct LivePrediction {
    pub source: String,
    pub window_start_s: f64,
    pub window_end_s: f64,
    pub analysis: Analysis,
}

pub struct LiveHub {
    names: Vec<String>,
    predictions: broadcast::Sender<Arc<LivePrediction>>,
    stop: Arc<AtomicBool>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl LiveHub {
    /// Start every source; each runs (and reconnects) on its own threads until [`LiveHub::stop`].
    pub fn start(configs: &[LiveSourceConfig], pool: Arc<WorkerPool>, runtime: tokio::runtime::Handle) -> Self {
        let (predictions, _) = broadcast::channel(SUBSCRIBER_QUEUE);
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for config in configs {
            let (blocks_tx, blocks) = std::sync::mpsc::sync_channel::<PcmBlock>(BLOCK_QUEUE);
            threads.push(sources::spawn(config.clone(), blocks_tx, stop.clone()));
            tracing::info!(source = %config.name, kind = ?config.kind, "live source started");
            let (config, pool, runtime, sender) = (config.clone(), pool.clone(), runtime.clone(), predictions.clone());
            let classify = std::thread::Builder::new()
                .name(format!("live-classify-{}", config.name))
                .spawn(move || classify_windows(&config, blocks, &pool, &runtime, &sender))
                .expect("the OS refused to start a thread for a live source");
            threads.push(classify);
        }
        LiveHub {
            names: configs.iter().map(|c| c.name.clone()).collect(),
            predictions,
            stop,
            threads: Mutex::new(threads),
        }
    }

    pub fn source_names(&self) -> &[String] {
        &self.names
    }

    /// Follow every source's predictions (filter by `source` on the receiving side).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LivePrediction>> {
        self.predictions.subscribe()
    }

    /// Stop the sources and wait for their threads.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        for thread in threads {
            let _ = thread.join();
        }
    }
}

fn classify_windows(
    config: &LiveSourceConfig,
    blocks: std::sync::mpsc::Receiver<PcmBlock>,
    pool: &WorkerPool,
    runtime: &tokio::runtime::Handle,
    sender: &broadcast::Sender<Arc<LivePrediction>>,
) {
    let mut windower = config.windower();
    // Ends when the source thread ends (stop), dropping its sender.
    for block in blocks {
        for window in windower.push(&block.samples, block.sample_rate) {
            let input = AudioInput::Pcm {
                name: format!("live source \"{}\"", config.name),
                samples: window.samples.into(),
                sample_rate: window.sample_rate,
            };
            match runtime.block_on(pool.analyze(input, None, Priority::Interactive, None)) {
                Ok(analysis) => {
                    let summary: Vec<String> = analysis
                        .predictions
                        .iter()
                        .filter_map(|p| {
                            let best = top(&p.probabilities)?;
                            Some(format!("{} {} {:.2}", p.model, p.labels.get(best)?, p.probabilities[best]))
                        })
                        .collect();
                    tracing::info!(
                        source = %config.name,
                        "{:.1}–{:.1} s: {}",
                        window.start_s,
                        window.end_s,
                        summary.join(", ")
                    );
                    let prediction = LivePrediction {
                        source: config.name.clone(),
                        window_start_s: window.start_s,
                        window_end_s: window.end_s,
                        analysis,
                    };
                    let _ = sender.send(Arc::new(prediction)); // no subscriber is fine
                }
                Err(error) => tracing::warn!(source = %config.name, "classifying a live window: {error}"),
            }
        }
    }
}
