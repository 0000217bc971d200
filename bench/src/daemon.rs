//! `timbre-bench daemon`: a real `timbred serve` against the same work done in-process, side
//! by side in one run, so every figure is a ratio to a baseline measured on the same machine at
//! the same time (see bench/README.md, "Daemon").
//!
//! 1. Classify: 3 s PCM clips sent as `ClassifyRequest{pcm}` by 1, 8 and 32 concurrent gRPC
//!    clients (one connection each, closed loop). Each client count's time is cut into slices
//!    that alternate with slices of the in-process ceiling (one `Analyzer` per core, as the
//!    daemon has one per worker), and at 1 client also with one in-process `Analyzer`, so both
//!    sides of each ratio see the same background load.
//! 2. Scan: the daemon's start-up scan of a copy of the GTZAN pool, against `timbred analyze -j
//!    <cores>` on the same files.
//! 3. Memory: VmRSS / VmHWM of the idle daemon (all models loaded, no roots), after the
//!    Classify load, and at the end of the scan.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use serde_json::json;
use timbre_daemon::models::{ModelCatalog, ModelOptions};
use timbre_daemon::pipeline::analysis::Analyzer;
use timbre_daemon::pipeline::{AudioInput, Budget};
use timbre_daemon::plugin_host::PluginRegistry;
use timbre_proto::v1 as pb;
use timbre_proto::v1::timbre_client::TimbreClient;
use tonic::transport::Channel;

use crate::harness::{
    analyze_for, children_cpu_seconds, classify_request, clips, connect, connect_many, copy_into, cpu_seconds,
    load_average, median, memory, pcm_input, pool_files, round, runtime, settle, Clip, Daemon, Latency, Memory,
    CLIP_SECONDS,
};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    inputs: crate::harness::Inputs,
    /// Seconds the daemon is timed at each client count (the in-process ceiling gets as long).
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Slices each client count's time is cut into, alternating with the in-process ceiling, so
    /// that both sides see the same background load; each slice gives one ratio.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Concurrent gRPC clients per level.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
    clients: Vec<usize>,
    /// Number of 3 s clips (one per genre, round the genres).
    #[arg(long, default_value_t = 10)]
    clips: usize,
    /// Scan only the first N files of the pool (sorted by path) [default: all].
    #[arg(long)]
    scan_files: Option<usize>,
    /// Scan rounds (each: a fresh daemon's scan and `timbred analyze`, in alternating order).
    #[arg(long, default_value_t = 3)]
    scan_rounds: usize,
    /// Skip the scan part (classify and idle memory only).
    #[arg(long)]
    no_scan: bool,
    /// Also write the JSON summary to this file.
    #[arg(long)]
    json_out: Option<PathBuf>,
}

pub fn run(args: Args, registry: &PluginRegistry) -> anyhow::Result<()> {
    let (timbred, pool) = args.inputs.resolve()?;
    ensure!(args.rounds > 0 && args.seconds > 0.0 && !args.clients.is_empty(), "nothing to measure");
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let tmp = tempfile::tempdir()?;
    let load_before = load_average();

    let files = pool_files(&pool)?;
    let clips = clips(&files, args.clips)?;
    note(&format!("{} clips of {CLIP_SECONDS} s; {cores} cores", clips.len()));
    // The in-process side loads the models as the daemon does (same search path and options).
    let catalog = ModelCatalog::discover(registry, &ModelOptions::default());
    ensure!(!catalog.models.is_empty(), "no model loaded: {:?}", catalog.refused);
    let models: Vec<String> = catalog.models.iter().map(|m| m.name().to_string()).collect();
    let expected = expected_probabilities(registry, &catalog, &clips)?;

    // The daemon with no roots: idle memory, then Classify at each client count.
    note("starting timbred serve (no roots)");
    let daemon = Daemon::start(Daemon::command(&timbred, &tmp.path().join("data-classify")))?;
    let idle = settle(daemon.pid())?;
    let mut classify = std::thread::scope(|scope| {
        let in_process = InProcess::start(scope, registry, &catalog, &clips, cores)?;
        classify(&args, &daemon, &in_process, &clips, &expected, cores)
    })?;
    let after_load = memory(daemon.pid())?;
    classify["daemon_exit"] = daemon.stop()?;

    let mut summary = json!({
        "machine": { "cores": cores, "load_average_before": load_before },
        "timbred": timbred.display().to_string(),
        "models": models,
        "classify": classify,
        "memory": { "idle": idle.json(), "after_classify": after_load.json() },
    });
    if !args.no_scan {
        let scan = scan(&timbred, &files, args.scan_files, args.scan_rounds, cores, tmp.path())?;
        summary["memory"]["scan_end"] = scan.memory.json();
        summary["memory"]["scan_end_vs_idle"] = json!({
            "rss": round(scan.memory.rss_kib as f64 / idle.rss_kib as f64, 2),
            "hwm": round(scan.memory.hwm_kib as f64 / idle.hwm_kib as f64, 2),
        });
        summary["scan"] = scan.json;
    }
    summary["machine"]["load_average_after"] = json!(load_average());

    print_table(&summary);
    let text = serde_json::to_string_pretty(&summary)?;
    println!("{text}");
    if let Some(path) = &args.json_out {
        std::fs::write(path, format!("{text}\n")).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Each client count for `args.seconds`, cut into `args.rounds` slices that alternate with
/// slices of the in-process ceiling (one analyzer per core); at the client count 1 (or the first
/// one), also with one in-process analyzer, for latency.
fn classify(
    args: &Args,
    daemon: &Daemon,
    in_process: &InProcess,
    clips: &[Clip],
    expected: &Expected,
    cores: usize,
) -> anyhow::Result<serde_json::Value> {
    // Its connections close when it is dropped, at the end of this function, before the daemon stops.
    let runtime = runtime()?;
    let answers =
        runtime.block_on(async { check_answers(&mut connect(&daemon.addr).await?, clips, expected).await })?;
    // Warm every worker (first ONNX runs allocate) before anything is timed.
    runtime.block_on(async { run_clients(&connect_many(&daemon.addr, 2 * cores).await?, clips, 1.0).await })?;
    let slice = args.seconds / args.rounds as f64;
    let latency_level = args.clients.iter().position(|&c| c == 1).unwrap_or(0);
    let pid = daemon.pid().to_string();
    let (mut levels, mut one, mut ceiling_all) = (Vec::new(), Run::default(), Run::default());
    for (index, &clients) in args.clients.iter().enumerate() {
        note(&format!("Classify, {clients} client(s): {} x {slice:.1} s, alternating with in-process", args.rounds));
        let connections = runtime.block_on(connect_many(&daemon.addr, clients))?;
        let (mut served, mut ceiling, mut ratios) = (Run::default(), Run::default(), Vec::new());
        for round in 0..args.rounds {
            let daemon_slice = || -> anyhow::Result<Run> {
                let (daemon_cpu, client_cpu) = (cpu_seconds(&pid)?, cpu_seconds("self")?);
                let mut run = runtime.block_on(run_clients(&connections, clips, slice))?;
                run.cpu = cpu_seconds(&pid)? - daemon_cpu;
                run.client_cpu = cpu_seconds("self")? - client_cpu;
                Ok(run)
            };
            // ABBA order, so a drift in background load does not favour one side.
            let (top, served_slice) = if round % 2 == 0 {
                let top = in_process.run(cores, slice)?;
                (top, daemon_slice()?)
            } else {
                let served_slice = daemon_slice()?;
                (in_process.run(cores, slice)?, served_slice)
            };
            if index == latency_level {
                one.add(in_process.run(1, slice)?);
            }
            ratios.push(served_slice.rate() / top.rate());
            served.add(served_slice);
            ceiling.add(top);
        }
        ceiling_all.add(ceiling.clone());
        let latency = Latency::of(&served.latencies);
        let mut level = json!({
            "clients": clients,
            "requests": served.latencies.len(),
            "errors": served.errors,
            "empty_answers": served.wrong,
            "per_s": round(served.rate(), 1),
            "p50_ms": round(latency.p50 * 1e3, 2),
            "p99_ms": round(latency.p99 * 1e3, 2),
            "max_ms": round(latency.max * 1e3, 2),
            "ceiling_per_s": round(ceiling.rate(), 1),
            "vs_ceiling": round(median(&ratios), 3),
            "vs_ceiling_rounds": ratios.iter().map(|r| round(*r, 3)).collect::<Vec<_>>(),
            "daemon_cpu_ms_per_request": round(served.cpu_ms_per_item(), 2),
            "client_cpu_ms_per_request": round(served.client_cpu * 1e3 / served.completed.max(1) as f64, 2),
        });
        if index == latency_level {
            let single = Latency::of(&one.latencies);
            level["in_process_one_thread"] = json!({
                "per_s": round(one.rate(), 1),
                "p50_ms": round(single.p50 * 1e3, 2),
                "p99_ms": round(single.p99 * 1e3, 2),
            });
            level["p50_vs_in_process_one"] = json!(round(latency.p50 / single.p50, 2));
            level["per_s_vs_in_process_one"] = json!(round(served.rate() / one.rate(), 3));
        }
        levels.push(level);
    }
    let in_process_cpu = ceiling_all.cpu_ms_per_item();
    for level in &mut levels {
        let cpu = level["daemon_cpu_ms_per_request"].as_f64().unwrap_or(f64::NAN);
        let client = level["client_cpu_ms_per_request"].as_f64().unwrap_or(f64::NAN);
        level["daemon_cpu_vs_in_process"] = json!(round(cpu / in_process_cpu, 2));
        level["daemon_and_client_cpu_vs_in_process"] = json!(round((cpu + client) / in_process_cpu, 2));
    }
    Ok(json!({
        "clip_seconds": CLIP_SECONDS,
        "clips": clips.iter().map(|c| c.name.clone()).collect::<Vec<_>>(),
        "daemon_answers_vs_in_process": answers,
        "slice_seconds": round(slice, 2),
        "rounds": args.rounds,
        "in_process_threads": cores,
        "daemon_workers": daemon.workers(),
        "in_process_cpu_ms_per_analysis": round(in_process_cpu, 2),
        "levels": levels,
    }))
}

fn note(message: &str) {
    eprintln!("timbre-bench daemon: {message}");
}

/// Each clip's probabilities per model, label by label, in-process: what the daemon must answer.
type Expected = Vec<BTreeMap<String, BTreeMap<String, f32>>>;

fn expected_probabilities(
    registry: &PluginRegistry,
    catalog: &ModelCatalog,
    clips: &[Clip],
) -> anyhow::Result<Expected> {
    let mut analyzer = Analyzer::for_models(registry, catalog)?;
    clips
        .iter()
        .map(|clip| {
            let analysis = analyzer.analyze_input(&pcm_input(clip), None, Budget::UNLIMITED)?;
            Ok(analysis
                .predictions
                .iter()
                .map(|p| (p.model.clone(), p.labels.iter().cloned().zip(p.probabilities.iter().copied()).collect()))
                .collect())
        })
        .collect()
}

/// Requests (or analyses) completed within a timed window, each one's latency, and the window.
#[derive(Default, Clone)]
struct Run {
    latencies: Vec<f64>,
    /// Seconds the window lasted.
    elapsed: f64,
    /// Everything completed, including requests in flight at the end of the window.
    completed: usize,
    errors: BTreeMap<String, usize>,
    wrong: usize,
    /// CPU seconds spent: by the analysing threads in-process; by the daemon process for gRPC.
    cpu: f64,
    /// CPU seconds this process spent as the gRPC clients.
    client_cpu: f64,
}

impl Run {
    fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.max(1e-9)
    }

    fn cpu_ms_per_item(&self) -> f64 {
        self.cpu * 1e3 / self.completed.max(1) as f64
    }

    fn add(&mut self, other: Run) {
        self.latencies.extend(other.latencies);
        self.elapsed += other.elapsed;
        self.completed += other.completed;
        for (key, count) in other.errors {
            *self.errors.entry(key).or_default() += count;
        }
        self.wrong += other.wrong;
        self.cpu += other.cpu;
        self.client_cpu += other.client_cpu;
    }
}

/// One in-process analyzer per thread (as each daemon worker has one), made and warmed once,
/// then timed on demand.
struct InProcess {
    orders: Vec<mpsc::Sender<Order>>,
}

struct Order {
    start: Arc<Barrier>,
    seconds: f64,
    reply: mpsc::Sender<anyhow::Result<(Vec<f64>, f64)>>,
}

impl InProcess {
    fn start<'scope, 'env>(
        scope: &'scope std::thread::Scope<'scope, 'env>,
        registry: &'env PluginRegistry,
        catalog: &'env ModelCatalog,
        clips: &'env [Clip],
        threads: usize,
    ) -> anyhow::Result<InProcess> {
        let (ready, readies) = mpsc::channel();
        let mut orders = Vec::with_capacity(threads);
        for index in 0..threads {
            let (order_tx, order_rx) = mpsc::channel::<Order>();
            orders.push(order_tx);
            let ready = ready.clone();
            scope.spawn(move || {
                let inputs: Vec<AudioInput> = clips.iter().map(pcm_input).collect();
                let prepared =
                    Analyzer::for_models(registry, catalog).map_err(anyhow::Error::from).and_then(|mut a| {
                        for input in &inputs {
                            a.analyze_input(input, None, Budget::UNLIMITED)?;
                        }
                        Ok(a)
                    });
                let mut analyzer = match prepared {
                    Ok(analyzer) => analyzer,
                    Err(error) => return drop(ready.send(Err(error))),
                };
                let _ = ready.send(Ok(()));
                drop(ready);
                // Until `InProcess` is dropped.
                for order in order_rx {
                    order.start.wait();
                    let _ = order.reply.send(analyze_for(&mut analyzer, &inputs, index, order.seconds));
                }
            });
        }
        drop(ready);
        for _ in 0..threads {
            readies.recv().context("an in-process analyzer thread died")??;
        }
        Ok(InProcess { orders })
    }

    /// The first `threads` analyzers, each analysing the clips in turn for `seconds`.
    fn run(&self, threads: usize, seconds: f64) -> anyhow::Result<Run> {
        let start = Arc::new(Barrier::new(threads + 1));
        let (reply, replies) = mpsc::channel();
        for orders in &self.orders[..threads.min(self.orders.len())] {
            orders.send(Order { start: start.clone(), seconds, reply: reply.clone() })?;
        }
        drop(reply);
        start.wait();
        let started = Instant::now();
        let mut run = Run::default();
        for result in replies {
            let (latencies, cpu) = result?;
            run.completed += latencies.len();
            run.latencies.extend(latencies);
            run.cpu += cpu;
        }
        run.elapsed = started.elapsed().as_secs_f64();
        Ok(run)
    }
}

/// Classify each clip once through the daemon and compare with in-process: the largest
/// difference of any label's probability, and the (clip, model) pairs whose most probable label
/// differs where the in-process top two are not tied.
async fn check_answers(
    client: &mut TimbreClient<Channel>,
    clips: &[Clip],
    expected: &Expected,
) -> anyhow::Result<serde_json::Value> {
    let (mut max_diff, mut pairs, mut differ, mut missing) = (0f32, 0, Vec::new(), 0);
    for (clip, expected) in clips.iter().zip(expected) {
        let response = client.classify(classify_request(clip)).await.with_context(|| clip.name.clone())?.into_inner();
        for (model, probabilities) in expected {
            pairs += 1;
            let Some(got) = response.predictions.iter().find(|p| &p.model == model) else {
                missing += 1;
                continue;
            };
            for label in &got.labels {
                let want = probabilities.get(&label.name).copied().unwrap_or(f32::NAN);
                max_diff = max_diff.max((label.probability - want).abs());
            }
            let mut ranked: Vec<(&String, f32)> = probabilities.iter().map(|(l, p)| (l, *p)).collect();
            ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
            let top = got.labels.first().map(|l| l.name.as_str()).unwrap_or("");
            let tied = ranked.len() > 1 && ranked[0].1 == ranked[1].1;
            if got.labels.len() != probabilities.len() || (!tied && top != ranked[0].0.as_str()) {
                differ.push(format!("{} {model}: daemon {top}, in-process {}", clip.name, ranked[0].0));
            }
        }
    }
    Ok(json!({ "pairs": pairs, "missing": missing, "top_label_differs": differ, "max_abs_probability_diff": max_diff }))
}

/// One client per connection, each sending its next request as soon as the previous answer
/// arrives, for `seconds`. Only answers that arrive within the window count for the rate and
/// latencies; the requests still in flight are then waited for (so the next slice starts idle).
async fn run_clients(connections: &[TimbreClient<Channel>], clips: &[Clip], seconds: f64) -> anyhow::Result<Run> {
    let requests: Arc<Vec<pb::ClassifyRequest>> = Arc::new(clips.iter().map(classify_request).collect());
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for (index, client) in connections.iter().enumerate() {
        let (requests, mut client) = (requests.clone(), client.clone());
        tasks.spawn(async move {
            let mut run = Run::default();
            let mut next = index;
            while Instant::now() < deadline {
                let request = requests[next % requests.len()].clone();
                next += 1;
                let sent = Instant::now();
                let result = client.classify(request).await;
                let done = Instant::now();
                match result {
                    Ok(response) => {
                        run.completed += 1;
                        if done <= deadline {
                            run.latencies.push((done - sent).as_secs_f64());
                        }
                        if response.get_ref().predictions.is_empty() {
                            run.wrong += 1;
                        }
                    }
                    Err(status) => {
                        let key = format!("{:?}: {}", status.code(), status.message());
                        *run.errors.entry(key).or_default() += 1;
                    }
                }
            }
            run
        });
    }
    let mut total = Run::default();
    while let Some(joined) = tasks.join_next().await {
        total.add(joined?);
    }
    total.elapsed = seconds;
    Ok(total)
}

struct ScanResult {
    memory: Memory,
    json: serde_json::Value,
}

/// The pool (or its first `limit` files) copied into `tmp`, then `rounds` times: scanned by a
/// fresh daemon and analysed by `timbred analyze -j <cores>`. The memory is the last daemon's.
fn scan(
    timbred: &Path,
    files: &[PathBuf],
    limit: Option<usize>,
    rounds: usize,
    cores: usize,
    tmp: &Path,
) -> anyhow::Result<ScanResult> {
    let root = tmp.join("library");
    let limit = limit.unwrap_or(files.len()).min(files.len());
    let copied = copy_into(&files[..limit], &root)?;
    let n = copied.len();
    let shortest = copied.iter().min_by_key(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(u64::MAX));
    let shortest = shortest.context("no file")?.clone();
    let (mut daemon_runs, mut analyze_runs, mut ratios, mut cpu_ratios) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut memory = None;
    for round in 0..rounds {
        // ABBA order, so a drift in background load does not favour one side.
        let (daemon, analyze) = if round % 2 == 0 {
            let analyze = analyze_files(timbred, &copied, &shortest, cores)?;
            (daemon_scan(timbred, &root, &tmp.join(format!("data-scan-{round}")), n)?, analyze)
        } else {
            let daemon = daemon_scan(timbred, &root, &tmp.join(format!("data-scan-{round}")), n)?;
            (daemon, analyze_files(timbred, &copied, &shortest, cores)?)
        };
        ratios.push(analyze.seconds / daemon.seconds); // = daemon tracks/s ÷ analyze tracks/s
        cpu_ratios.push(daemon.cpu / analyze.cpu.max(1e-9));
        memory = Some(daemon.memory);
        daemon_runs.push(daemon.json);
        analyze_runs.push(analyze.json);
    }
    let memory = memory.context("no scan round")?;
    let seconds =
        |runs: &[serde_json::Value], key: &str| runs.iter().filter_map(|r| r[key].as_f64()).collect::<Vec<_>>();
    let daemon_s = median(&seconds(&daemon_runs, "seconds"));
    let analyze_s = median(&seconds(&analyze_runs, "seconds"));
    let analyze_wall = median(&seconds(&analyze_runs, "wall_seconds"));
    let with_startup: Vec<f64> = seconds(&analyze_runs, "wall_seconds")
        .iter()
        .zip(seconds(&daemon_runs, "seconds"))
        .map(|(analyze, daemon)| analyze / daemon)
        .collect();
    let json = json!({
        "files": n,
        "rounds": rounds,
        "daemon_tracks_per_s": round(n as f64 / daemon_s, 1),
        "analyze_tracks_per_s": round(n as f64 / analyze_s, 1),
        "analyze_tracks_per_s_with_startup": round(n as f64 / analyze_wall, 1),
        "daemon_vs_analyze": round(median(&ratios), 3),
        "daemon_vs_analyze_rounds": ratios.iter().map(|r| round(*r, 3)).collect::<Vec<_>>(),
        "daemon_vs_analyze_with_startup": round(median(&with_startup), 3),
        "daemon_cpu_ms_per_track": round(median(&seconds(&daemon_runs, "cpu_ms_per_track")), 2),
        "analyze_cpu_ms_per_track": round(median(&seconds(&analyze_runs, "cpu_ms_per_track")), 2),
        "daemon_cpu_vs_analyze": round(median(&cpu_ratios), 3),
        "daemon": daemon_runs,
        "analyze": analyze_runs,
    });
    Ok(ScanResult { memory, json })
}

struct Timed {
    seconds: f64,
    /// CPU seconds over the same stretch.
    cpu: f64,
    memory: Memory,
    json: serde_json::Value,
}

/// `timbred analyze -j <cores>` on the files; its start-up (plugins, models, one short clip,
/// best of 3) is taken off its time.
fn analyze_files(timbred: &Path, files: &[PathBuf], shortest: &Path, cores: usize) -> anyhow::Result<Timed> {
    note(&format!("timbred analyze -j {cores}: start-up, then {} files", files.len()));
    // Wall time, CPU time (from the children's rusage once waited for) and exit code.
    let analyze = |files: &[&Path]| -> anyhow::Result<(f64, f64, Option<i32>)> {
        let (start, cpu) = (Instant::now(), children_cpu_seconds()?);
        let status = Command::new(timbred)
            .args(["analyze", "--jobs", &cores.to_string()])
            .args(files)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        Ok((start.elapsed().as_secs_f64(), children_cpu_seconds()? - cpu, status.code()))
    };
    let (mut startup, mut startup_cpu) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..3 {
        let (wall, cpu, _) = analyze(&[shortest])?;
        (startup, startup_cpu) = (startup.min(wall), startup_cpu.min(cpu));
    }
    let (wall, cpu, code) = analyze(&files.iter().map(PathBuf::as_path).collect::<Vec<_>>())?;
    let work = (wall - startup).max(1e-9);
    let cpu = (cpu - startup_cpu).max(0.0);
    Ok(Timed {
        seconds: work,
        cpu,
        memory: Memory { rss_kib: 0, hwm_kib: 0 },
        json: json!({
            "seconds": round(work, 2),
            "wall_seconds": round(wall, 2),
            "startup_seconds": round(startup, 2),
            "cpu_ms_per_track": round(cpu * 1e3 / files.len().max(1) as f64, 2),
            "exit_code": code,
        }),
    })
}

/// A fresh daemon's start-up scan of `root`, from the "serving" line (plugins and models are
/// loaded by then) to the end of the scan. A Scan call waits for a running scan, so its stream
/// ends when the start-up scan has (plus a pass over unchanged files), or it is the scan that
/// analyses the files and the start-up one finds nothing to do: either way, the same work.
fn daemon_scan(timbred: &Path, root: &Path, data_dir: &Path, n: usize) -> anyhow::Result<Timed> {
    note(&format!("timbred serve --root <{n} files>: start-up scan"));
    let mut command = Daemon::command(timbred, data_dir);
    command.arg("--root").arg(root);
    let daemon = Daemon::start(command)?;
    let (seconds, last, states) = runtime()?.block_on(async {
        let mut client = connect(&daemon.addr).await?;
        let mut stream = client.scan(pb::ScanRequest::default()).await?.into_inner();
        let mut last = None;
        while let Some(progress) = stream.message().await? {
            let finished = progress.finished;
            last = Some(progress);
            if finished {
                break;
            }
        }
        let seconds = daemon.seconds_serving();
        let last = last.context("the Scan stream ended without a message")?;
        ensure!(last.finished, "the Scan stream ended before the scan finished");
        let states = track_states(&mut client).await?;
        anyhow::Ok((seconds, last, states))
    })?;
    let memory = memory(daemon.pid())?;
    let cpu = daemon.cpu_since_serving()?;
    let logged = logged_scan_seconds(&daemon.log());
    let stop = daemon.stop()?;
    Ok(Timed {
        seconds,
        cpu,
        memory,
        json: json!({
            "seconds": round(seconds, 2),
            "cpu_ms_per_track": round(cpu * 1e3 / n.max(1) as f64, 2),
            "seconds_logged_by_daemon": logged.map(|s| round(s, 2)),
            "track_states": states,
            "scan_call": { "done": last.done, "analysed": last.analysed, "failed": last.failed },
            "memory_at_end": memory.json(),
            "exit": stop,
        }),
    })
}

/// Library tracks by analysis state, paging through `ListTracks`.
async fn track_states(client: &mut TimbreClient<Channel>) -> anyhow::Result<BTreeMap<String, usize>> {
    let mut states = BTreeMap::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_tracks(pb::ListTracksRequest { page_size: 1000, page_token: token, ..Default::default() })
            .await?
            .into_inner();
        for track in &page.tracks {
            let state = pb::AnalysisState::try_from(track.state).map(|s| s.as_str_name()).unwrap_or("unknown");
            *states.entry(state.trim_start_matches("ANALYSIS_STATE_").to_lowercase()).or_default() += 1;
        }
        if page.next_page_token.is_empty() {
            return Ok(states);
        }
        token = page.next_page_token;
    }
}

/// The daemon's own duration of the scan that analysed files (`scan finished ... seconds=S`).
fn logged_scan_seconds(log: &str) -> Option<f64> {
    log.lines()
        .filter(|l| l.contains("scan finished") && !l.contains("analysed=0 "))
        .find_map(|l| l.split_whitespace().find_map(|w| w.strip_prefix("seconds=")).and_then(|s| s.parse().ok()))
}

fn print_table(s: &serde_json::Value) {
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    let c = &s["classify"];
    let models = s["models"].as_array().map(|m| m.iter().map(text).collect::<Vec<_>>().join(", ")).unwrap_or_default();
    let load = format!(
        "{} before, {} after",
        text(&s["machine"]["load_average_before"]),
        text(&s["machine"]["load_average_after"])
    );
    println!("\nmachine: {} cores, load average {load}; models: {models}", s["machine"]["cores"]);
    let check = &c["daemon_answers_vs_in_process"];
    println!(
        "\nClassify, {} s PCM clips ({} of them); daemon vs in-process answers: max |Δp| {}, top label differs {}/{}",
        c["clip_seconds"],
        c["clips"].as_array().map(Vec::len).unwrap_or(0),
        check["max_abs_probability_diff"],
        check["top_label_differs"].as_array().map(Vec::len).unwrap_or(0),
        check["pairs"]
    );
    println!(
        "daemon ({} workers) slices alternate with in-process slices ({} x {} s per client count); ceiling = {} in-process analyzers",
        text(&c["daemon_workers"]), c["rounds"], c["slice_seconds"], c["in_process_threads"]
    );
    let header = ["clients", "req/s", "ceiling/s", "÷ ceiling", "(range)", "p50 ms", "p99 ms", "CPU ms/req", "errors"];
    println!(
        "  {:>7} {:>8} {:>9} {:>9} {:>13} {:>8} {:>8} {:>10} {:>6}",
        header[0], header[1], header[2], header[3], header[4], header[5], header[6], header[7], header[8]
    );
    for level in c["levels"].as_array().into_iter().flatten() {
        let errors: u64 = level["errors"].as_object().map(|e| e.values().filter_map(|v| v.as_u64()).sum()).unwrap_or(0);
        let rounds: Vec<f64> =
            level["vs_ceiling_rounds"].as_array().into_iter().flatten().filter_map(|v| v.as_f64()).collect();
        let range = format!(
            "{:.2}–{:.2}",
            rounds.iter().copied().fold(f64::INFINITY, f64::min),
            rounds.iter().copied().fold(f64::NEG_INFINITY, f64::max)
        );
        println!(
            "  {:>7} {:>8} {:>9} {:>9} {:>13} {:>8} {:>8} {:>10} {:>6}",
            text(&level["clients"]),
            text(&level["per_s"]),
            text(&level["ceiling_per_s"]),
            text(&level["vs_ceiling"]),
            range,
            text(&level["p50_ms"]),
            text(&level["p99_ms"]),
            text(&level["daemon_cpu_ms_per_request"]),
            errors
        );
        if let Some(one) = level.get("in_process_one_thread") {
            println!(
                "          in-process, 1 thread, same rounds: {}/s, p50 {} ms, p99 {} ms; daemon ÷ it: {} req/s, {} p50",
                text(&one["per_s"]),
                text(&one["p50_ms"]),
                text(&one["p99_ms"]),
                text(&level["per_s_vs_in_process_one"]),
                text(&level["p50_vs_in_process_one"])
            );
        }
    }
    println!("  in-process CPU per analysis: {} ms", text(&c["in_process_cpu_ms_per_analysis"]));
    if let Some(scan) = s.get("scan") {
        println!("\nScan, {} files, {} rounds (medians)", scan["files"], scan["rounds"]);
        let daemon_s: Vec<String> =
            scan["daemon"].as_array().into_iter().flatten().map(|r| text(&r["seconds"])).collect();
        let analyze = scan["analyze"].as_array().cloned().unwrap_or_default();
        println!(
            "  daemon start-up scan   {:>7} tracks/s   ({} s)",
            text(&scan["daemon_tracks_per_s"]),
            daemon_s.join(", ")
        );
        println!(
            "  timbred analyze -j {}   {:>7} tracks/s   ({} s, start-up excluded: {} s; {} tracks/s with it)",
            s["machine"]["cores"],
            text(&scan["analyze_tracks_per_s"]),
            analyze.iter().map(|r| text(&r["seconds"])).collect::<Vec<_>>().join(", "),
            analyze.iter().map(|r| text(&r["startup_seconds"])).collect::<Vec<_>>().join(", "),
            text(&scan["analyze_tracks_per_s_with_startup"])
        );
        let rounds: Vec<String> = scan["daemon_vs_analyze_rounds"].as_array().into_iter().flatten().map(text).collect();
        println!(
            "  daemon ÷ analyze       {} (rounds: {}; {} against analyze with its start-up)",
            text(&scan["daemon_vs_analyze"]),
            rounds.join(", "),
            text(&scan["daemon_vs_analyze_with_startup"])
        );
        println!(
            "  CPU per track          daemon {} ms, analyze {} ms: daemon ÷ analyze {}",
            text(&scan["daemon_cpu_ms_per_track"]),
            text(&scan["analyze_cpu_ms_per_track"]),
            text(&scan["daemon_cpu_vs_analyze"])
        );
        if let Some(last) = scan["daemon"].as_array().and_then(|r| r.last()) {
            println!("  library after the last scan: {}", last["track_states"]);
        }
    }
    let m = &s["memory"];
    println!("\nMemory (MiB)               VmRSS    VmHWM");
    for (name, key) in
        [("idle, all models", "idle"), ("after Classify load", "after_classify"), ("end of scan", "scan_end")]
    {
        if m.get(key).is_some() {
            println!("  {:<22} {:>8} {:>8}", name, text(&m[key]["rss_mib"]), text(&m[key]["hwm_mib"]));
        }
    }
    if let Some(ratio) = m.get("scan_end_vs_idle") {
        println!("  {:<22} {:>8} {:>8}", "end of scan ÷ idle", text(&ratio["rss"]), text(&ratio["hwm"]));
    }
    println!();
}
