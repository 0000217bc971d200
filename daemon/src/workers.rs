//! The worker pool: decode and inference run on plain threads, off the async runtime. Each
//! thread owns its own [`Analyzer`] (plugin instances are not shared between threads).
//!
//! Two bounded queues: interactive work (`Classify`, live windows) is taken before
//! background work (scans), so a long scan does not make a player wait. A submitter first
//! takes a permit for its queue; when the queue is full it waits for one, which is the
//! back-pressure that keeps a burst of files or requests from growing memory.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use crate::models::{ModelCatalog, SharedCatalog};
use crate::pipeline::analysis::{Analysis, Analyzer};
use crate::pipeline::{AudioInput, Budget, PipelineError};
use crate::plugin_host::{PluginError, PluginRegistry};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// Someone is waiting for the answer.
    Interactive,
    /// Library scans.
    Background,
}

#[derive(Debug, thiserror::Error)]
pub enum WorkError {
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error("{0}: internal error while analysing it (see the daemon log)")]
    Panicked(String),
    #[error("the daemon is shutting down")]
    ShuttingDown,
}

struct Job {
    input: AudioInput,
    models: Option<Vec<String>>,
    max_seconds: Option<f64>,
    reply: oneshot::Sender<Result<Analysis, WorkError>>,
    _permit: OwnedSemaphorePermit,
}

pub struct WorkerPool {
    interactive: Option<Sender<Job>>,
    background: Option<Sender<Job>>,
    interactive_permits: Arc<Semaphore>,
    background_permits: Arc<Semaphore>,
    threads: Vec<std::thread::JoinHandle<()>>,
    size: usize,
}

impl WorkerPool {
    /// Start `threads` workers; each queue holds at most `queue` waiting jobs. Fails when a
    /// worker cannot make its plugin instances.
    pub fn start(
        registry: Arc<PluginRegistry>,
        catalog: Arc<ModelCatalog>,
        threads: usize,
        queue: usize,
    ) -> Result<Self, PluginError> {
        Self::start_shared(registry, Arc::new(SharedCatalog::new(catalog)), threads, queue)
    }

    /// [`WorkerPool::start`] over a catalogue that may be replaced while it runs: each worker
    /// makes its instances again before its next job once it has been.
    pub fn start_shared(
        registry: Arc<PluginRegistry>,
        catalog: Arc<SharedCatalog>,
        threads: usize,
        queue: usize,
    ) -> Result<Self, PluginError> {
        let threads = threads.max(1);
        let (interactive_tx, interactive_rx) = crossbeam_channel::unbounded::<Job>();
        let (background_tx, background_rx) = crossbeam_channel::unbounded::<Job>();
        let mut handles = Vec::with_capacity(threads);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        for index in 0..threads {
            let (registry, catalog) = (registry.clone(), catalog.clone());
            let (interactive, background, ready) = (interactive_rx.clone(), background_rx.clone(), ready_tx.clone());
            let handle = std::thread::Builder::new()
                .name(format!("timbre-worker-{index}"))
                .spawn(move || match Analyzer::for_models(&registry, &catalog.get()) {
                    Ok(analyzer) => {
                        let _ = ready.send(Ok(()));
                        drop(ready);
                        work(analyzer, &registry, &catalog, &interactive, &background);
                    }
                    Err(error) => {
                        let _ = ready.send(Err(error));
                    }
                })
                .expect("spawning a worker thread");
            handles.push(handle);
        }
        drop(ready_tx);
        // One message per worker; a worker that died without one shows up as a closed channel.
        for _ in 0..threads {
            match ready_rx.recv() {
                Ok(result) => result?,
                Err(_) => break,
            }
        }
        Ok(WorkerPool {
            interactive: Some(interactive_tx),
            background: Some(background_tx),
            // Jobs running plus jobs waiting: each queue may hold `queue` beyond what runs.
            interactive_permits: Arc::new(Semaphore::new(threads + queue)),
            background_permits: Arc::new(Semaphore::new(threads + queue)),
            threads: handles,
            size: threads,
        })
    }

    /// Number of worker threads.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Analyse `input` with `models` (all when `None`), refusing audio longer than
    /// `max_seconds`, waiting for room in the queue first. Dropping the returned future
    /// (the caller went away) cancels the analysis at its next segment.
    pub async fn analyze(
        &self,
        input: AudioInput,
        models: Option<Vec<String>>,
        priority: Priority,
        max_seconds: Option<f64>,
    ) -> Result<Analysis, WorkError> {
        let (permits, queue) = match priority {
            Priority::Interactive => (&self.interactive_permits, &self.interactive),
            Priority::Background => (&self.background_permits, &self.background),
        };
        let permit = permits.clone().acquire_owned().await.map_err(|_| WorkError::ShuttingDown)?;
        let (reply, answer) = oneshot::channel();
        let queue = queue.as_ref().ok_or(WorkError::ShuttingDown)?;
        queue.send(Job { input, models, max_seconds, reply, _permit: permit }).map_err(|_| WorkError::ShuttingDown)?;
        answer.await.map_err(|_| WorkError::ShuttingDown)?
    }

    /// Stop taking jobs, let the workers finish the ones they hold, and join them.
    pub fn shutdown(&mut self) {
        self.interactive_permits.close();
        self.background_permits.close();
        self.interactive.take();
        self.background.take();
        for handle in self.threads.drain(..) {
            let _ = handle.join();
        }
    }
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn work(
    mut analyzer: Analyzer,
    registry: &PluginRegistry,
    shared: &SharedCatalog,
    interactive: &Receiver<Job>,
    background: &Receiver<Job>,
) {
    let mut generation = shared.generation();
    let mut catalog = shared.get();
    loop {
        // Interactive first; otherwise whichever arrives. Both closed: the pool is shutting down.
        let job = match interactive.try_recv() {
            Ok(job) => job,
            Err(_) => crossbeam_channel::select! {
                recv(interactive) -> job => match job { Ok(job) => job, Err(_) => match background.recv() {
                    Ok(job) => job,
                    Err(_) => return,
                }},
                recv(background) -> job => match job { Ok(job) => job, Err(_) => match interactive.recv() {
                    Ok(job) => job,
                    Err(_) => return,
                }},
            },
        };
        // The models were reloaded: new instances before the next job. Should one fail, the
        // old ones go on serving (the reload was checked with one instance of each already).
        if shared.generation() != generation {
            generation = shared.generation();
            let fresh = shared.get();
            match Analyzer::for_models(registry, &fresh) {
                Ok(instances) => {
                    analyzer = instances;
                    catalog = fresh;
                }
                Err(error) => tracing::error!("reloaded models: this worker keeps the previous ones: {error}"),
            }
        }
        let name = job.input.name().display().to_string();
        // Nobody waits for the answer once the caller's end of the reply is gone.
        let cancelled = || job.reply.is_closed();
        let budget = Budget { max_seconds: job.max_seconds, cancelled: &cancelled };
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
            analyzer.analyze_input(&job.input, job.models.as_deref(), budget)
        }));
        let reply = match result {
            Ok(Err(cancelled @ PipelineError::Cancelled { .. })) => {
                tracing::debug!("{cancelled}");
                Err(cancelled.into())
            }
            Ok(result) => result.map_err(WorkError::from),
            Err(_) => {
                tracing::error!("analysing {name} panicked; the worker starts afresh");
                if let Ok(fresh) = Analyzer::for_models(registry, &catalog) {
                    analyzer = fresh;
                }
                Err(WorkError::Panicked(name))
            }
        };
        let _ = job.reply.send(reply); // the caller may have gone away (cancelled request)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;
    use crate::models::ModelCatalog;
    use crate::plugin_host::fakes;

    fn pool(catalog: ModelCatalog, threads: usize, queue: usize) -> Arc<WorkerPool> {
        Arc::new(WorkerPool::start(fakes::registry(), Arc::new(catalog), threads, queue).expect("pool"))
    }

    fn gated(gate: &str) -> ModelCatalog {
        ModelCatalog { models: vec![fakes::gated_model("gated", Some(gate))], refused: Vec::new() }
    }

    /// Submit `input` in the background; its name is recorded in `done` when it is answered.
    fn submit(pool: &Arc<WorkerPool>, name: &str, priority: Priority, done: &Arc<Mutex<Vec<String>>>) {
        let (pool, done, name) = (pool.clone(), done.clone(), name.to_string());
        tokio::spawn(async move {
            let input = crate::pipeline::AudioInput::Pcm {
                name: name.clone(),
                samples: vec![0.1; fakes::SAMPLE_RATE as usize].into(),
                sample_rate: fakes::SAMPLE_RATE,
            };
            pool.analyze(input, None, priority, None).await.expect("analysed");
            done.lock().expect("lock").push(name);
        });
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_plugin_fails_its_job_and_the_worker_serves_the_next() {
        let pool = pool(ModelCatalog { models: vec![fakes::model("fake")], refused: Vec::new() }, 1, 4);
        let error = pool.analyze(fakes::tone(0.95, 2.0), None, Priority::Interactive, None).await.expect_err("panics");
        assert!(
            matches!(&error, WorkError::Pipeline(PipelineError::Plugin { .. }))
                && error.to_string().contains("panicked"),
            "{error}"
        );
        let analysis = pool.analyze(fakes::tone(0.5, 2.0), None, Priority::Interactive, None).await.expect("next job");
        assert_eq!(analysis.predictions.len(), 1);
        assert_eq!(analysis.predictions[0].probabilities, [0.5, 0.5]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn interactive_work_is_taken_before_background_work() {
        let pool = pool(gated("priority"), 1, 8);
        // Declared after the pool, so dropped before it: a failed assert opens the gate.
        let gate = fakes::ClosedGate::new("priority");
        let done = Arc::new(Mutex::new(Vec::new()));
        submit(&pool, "busy", Priority::Background, &done); // holds the one worker at the gate
        tokio::time::sleep(Duration::from_millis(100)).await;
        submit(&pool, "scan-1", Priority::Background, &done);
        submit(&pool, "scan-2", Priority::Background, &done);
        tokio::time::sleep(Duration::from_millis(50)).await;
        submit(&pool, "classify", Priority::Interactive, &done);
        tokio::time::sleep(Duration::from_millis(50)).await;
        gate.open();
        for _ in 0..200 {
            if done.lock().expect("lock").len() == 4 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let done = done.lock().expect("lock").clone();
        assert_eq!(done[..2], ["busy", "classify"], "the scans queued first wait: {done:?}");
        assert_eq!(done.len(), 4, "{done:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_makes_the_next_submitter_wait() {
        // One worker and room for one more job: the third waits for a permit.
        let pool = pool(gated("pressure"), 1, 1);
        // Declared after the pool, so dropped before it: a failed assert opens the gate.
        let gate = fakes::ClosedGate::new("pressure");
        let done = Arc::new(Mutex::new(Vec::new()));
        submit(&pool, "running", Priority::Background, &done);
        submit(&pool, "queued", Priority::Background, &done);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let third = pool.analyze(fakes::tone(0.1, 1.0), None, Priority::Background, None);
        let waited = tokio::time::timeout(Duration::from_millis(200), third).await;
        assert!(waited.is_err(), "the third job is held back while the queue is full");
        assert_eq!(pool.background_permits.available_permits(), 0);
        gate.open();
        pool.analyze(fakes::tone(0.1, 1.0), None, Priority::Background, None).await.expect("room again");
    }
}
