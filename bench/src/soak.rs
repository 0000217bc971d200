//! `timbre-bench soak`: many gRPC clients mixing Classify, Recommend and ListTracks against a
//! real `timbred serve` for minutes (bench/README.md, "Soak").
//!
//! The daemon first scans a copy of the GTZAN pool, so that Recommend and ListTracks have a
//! library. Then each client (one connection, closed loop) draws its next call from a seeded
//! SplitMix64: Classify of a 3 s PCM clip of real audio, Recommend "more like" a random
//! analysed track, or the next page of ListTracks (each client pages through the library,
//! starting over at the end). Reported: per RPC the count, errors, answers that look wrong and
//! latency percentiles; per period (a minute by default) the same and the daemon's VmRSS, sampled
//! every few seconds from /proc. Baselines, measured in the same run: Classify latency against
//! in-process analysis of the same clips on one thread (timed before the load, daemon idle), and
//! the last period's RSS against the first period's. Any error or wrong answer makes the exit
//! code 1, after the report.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use serde_json::json;
use timbre_daemon::models::{ModelCatalog, ModelOptions};
use timbre_daemon::pipeline::analysis::Analyzer;
use timbre_daemon::pipeline::{AudioInput, Budget};
use timbre_daemon::plugin_host::PluginRegistry;
use timbre_proto::v1 as pb;
use timbre_proto::v1::timbre_client::TimbreClient;
use timbre_rng::SplitMix64;
use tonic::transport::Channel;

use crate::harness::{
    analyze_for, classify_request, clips, connect, connect_many, copy_into, cpu_seconds, load_average, memory,
    pcm_input, pool_files, round, runtime, Daemon, Latency, Memory, CLIP_SECONDS,
};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    inputs: crate::harness::Inputs,
    /// Concurrent gRPC clients, one connection each.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Seconds of load.
    #[arg(long, default_value_t = 600.0)]
    seconds: f64,
    /// Relative weights of Classify, Recommend and ListTracks in each client's draw.
    #[arg(long, value_delimiter = ',', default_value = "1,1,1")]
    mix: Vec<usize>,
    /// Library: the first N files of the pool (sorted by path) [default: all].
    #[arg(long)]
    files: Option<usize>,
    /// Number of 3 s clips for Classify (one per genre, round the genres).
    #[arg(long, default_value_t = 10)]
    clips: usize,
    /// Tracks per ListTracks page.
    #[arg(long, default_value_t = 20)]
    page_size: u32,
    /// The daemon's `--workers` [default: its own, one per core].
    #[arg(long)]
    workers: Option<usize>,
    /// Seconds between two samples of the daemon's memory.
    #[arg(long, default_value_t = 5.0)]
    sample_s: f64,
    /// Length of the periods reported one by one (the last is compared with the first).
    #[arg(long, default_value_t = 60.0)]
    period_s: f64,
    /// Seconds of in-process analysis, one thread, timed before the load as the baseline.
    #[arg(long, default_value_t = 10.0)]
    baseline_s: f64,
    /// Seed of the clients' draws.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Also write the JSON summary to this file.
    #[arg(long)]
    json_out: Option<PathBuf>,
}

fn note(message: &str) {
    eprintln!("timbre-bench soak: {message}");
}

const RPCS: [&str; 3] = ["Classify", "Recommend", "ListTracks"];

/// One answered (or failed) call.
struct Call {
    rpc: usize,
    /// Seconds from the start of the load to the answer.
    at: f64,
    latency: f64,
    ok: bool,
}

#[derive(Default)]
struct Outcome {
    calls: Vec<Call>,
    /// "<RPC> <code>: <message>" → count.
    errors: BTreeMap<String, usize>,
    /// Answers that came back but look wrong, by RPC: no prediction, no recommendation or the
    /// seed recommended back, a page longer than asked.
    wrong: [usize; 3],
}

pub fn run(args: Args, registry: &PluginRegistry) -> anyhow::Result<()> {
    let (timbred, pool) = args.inputs.resolve()?;
    ensure!(args.clients > 0 && args.seconds > 0.0 && args.period_s > 0.0, "nothing to measure");
    ensure!(args.mix.len() == 3 && args.mix.iter().sum::<usize>() > 0, "--mix takes three weights");
    let load_before = load_average();
    let tmp = tempfile::tempdir()?;
    let files = pool_files(&pool)?;
    let clips = clips(&files, args.clips)?;
    let library = copy_into(&files[..args.files.unwrap_or(files.len()).min(files.len())], &tmp.path().join("library"))?;

    note(&format!("timbred serve --root <{} files>: start-up scan", library.len()));
    let mut command = Daemon::command(&timbred, &tmp.path().join("data"));
    command.arg("--root").arg(tmp.path().join("library"));
    if let Some(workers) = args.workers {
        command.args(["--workers", &workers.to_string()]);
    }
    let daemon = Daemon::start(command)?;
    let runtime = runtime()?;
    let tracks = runtime.block_on(async {
        let mut client = connect(&daemon.addr).await?;
        let mut stream = client.scan(pb::ScanRequest::default()).await?.into_inner();
        while stream.message().await?.is_some() {}
        analysed_tracks(&mut client).await
    })?;
    ensure!(!tracks.is_empty(), "no track was analysed");

    note(&format!("in-process baseline: one thread, {} s", args.baseline_s));
    let baseline = in_process(registry, &clips, args.baseline_s)?;
    let idle = memory(daemon.pid())?;

    note(&format!(
        "{} clients for {} s, mix {:?} (Classify, Recommend, ListTracks)",
        args.clients, args.seconds, args.mix
    ));
    let (stop, stopped) = mpsc::channel::<()>();
    let pid = daemon.pid();
    let sample_every = Duration::from_secs_f64(args.sample_s.max(0.1));
    let sampler = std::thread::spawn(move || -> anyhow::Result<Vec<(f64, Memory, f64)>> {
        let start = Instant::now();
        let cpu = cpu_seconds(&pid.to_string())?;
        let mut samples = Vec::new();
        loop {
            samples.push((start.elapsed().as_secs_f64(), memory(pid)?, cpu_seconds(&pid.to_string())? - cpu));
            if stopped.recv_timeout(sample_every) != Err(mpsc::RecvTimeoutError::Timeout) {
                return Ok(samples);
            }
        }
    });
    let outcome = runtime.block_on(load(&args, &daemon.addr, &clips, &tracks));
    let _ = stop.send(());
    let samples = sampler.join().map_err(|_| anyhow::anyhow!("the memory sampler panicked"))??;
    let outcome = outcome?;
    let exit = daemon.stop()?;

    let summary = summarise(&args, &outcome, &samples, &baseline, idle, tracks.len(), load_before, exit);
    print_table(&summary);
    if let Some(path) = &args.json_out {
        let text = serde_json::to_string_pretty(&summary)?;
        std::fs::write(path, format!("{text}\n")).with_context(|| format!("writing {}", path.display()))?;
    }
    let failed: usize = outcome.errors.values().sum::<usize>() + outcome.wrong.iter().sum::<usize>();
    ensure!(failed == 0, "{failed} call(s) failed or answered wrongly; see above");
    ensure!(summary["daemon_exit"]["success"] == json!(true), "the daemon did not stop cleanly on SIGTERM");
    Ok(())
}

/// Ids of the analysed tracks, paging through ListTracks.
async fn analysed_tracks(client: &mut TimbreClient<Channel>) -> anyhow::Result<Vec<u64>> {
    let (mut ids, mut token) = (Vec::new(), String::new());
    loop {
        let page = client
            .list_tracks(pb::ListTracksRequest { page_size: 1000, page_token: token, ..Default::default() })
            .await?
            .into_inner();
        ids.extend(page.tracks.iter().filter(|t| t.state == pb::AnalysisState::Analysed as i32).map(|t| t.id));
        if page.next_page_token.is_empty() {
            return Ok(ids);
        }
        token = page.next_page_token;
    }
}

/// Latencies of one in-process analyzer going round the clips for `seconds` (after one warm-up
/// pass), as the daemon's workers analyse them.
fn in_process(registry: &PluginRegistry, clips: &[crate::harness::Clip], seconds: f64) -> anyhow::Result<Vec<f64>> {
    let catalog = ModelCatalog::discover(registry, &ModelOptions::default());
    ensure!(!catalog.models.is_empty(), "no model loaded: {:?}", catalog.refused);
    let mut analyzer = Analyzer::for_models(registry, &catalog)?;
    let inputs: Vec<AudioInput> = clips.iter().map(pcm_input).collect();
    for input in &inputs {
        analyzer.analyze_input(input, None, Budget::UNLIMITED)?;
    }
    Ok(analyze_for(&mut analyzer, &inputs, 0, seconds)?.0)
}

/// Every client in a closed loop until `args.seconds` have passed; calls still in flight then
/// are waited for and counted.
async fn load(args: &Args, addr: &str, clips: &[crate::harness::Clip], tracks: &[u64]) -> anyhow::Result<Outcome> {
    let connections = connect_many(addr, args.clients).await?;
    let classify: Arc<Vec<pb::ClassifyRequest>> = Arc::new(clips.iter().map(classify_request).collect());
    let tracks: Arc<Vec<u64>> = Arc::new(tracks.to_vec());
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(args.seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for (index, mut client) in connections.into_iter().enumerate() {
        let (classify, tracks, mix, page_size) = (classify.clone(), tracks.clone(), args.mix.clone(), args.page_size);
        let mut rng = SplitMix64::new(timbre_rng::mix(args.seed.wrapping_add(index as u64)));
        tasks.spawn(async move {
            let mut outcome = Outcome::default();
            let mut page_token = String::new();
            while Instant::now() < deadline {
                let rpc = pick(&mix, rng.below(mix.iter().sum()));
                let sent = Instant::now();
                let result: Result<bool, tonic::Status> = match rpc {
                    0 => {
                        let request = classify[rng.below(classify.len())].clone();
                        client.classify(request).await.map(|r| !r.into_inner().predictions.is_empty())
                    }
                    1 => {
                        let seed = tracks[rng.below(tracks.len())];
                        let request = pb::RecommendRequest {
                            positive: vec![pb::TrackRef { track: Some(pb::track_ref::Track::TrackId(seed)) }],
                            ..Default::default()
                        };
                        client.recommend(request).await.map(|r| {
                            let hits = r.into_inner().tracks;
                            !hits.is_empty() && hits.iter().all(|h| h.track.as_ref().is_some_and(|t| t.id != seed))
                        })
                    }
                    _ => {
                        let request = pb::ListTracksRequest {
                            page_size,
                            page_token: std::mem::take(&mut page_token),
                            ..Default::default()
                        };
                        client.list_tracks(request).await.map(|r| {
                            let page = r.into_inner();
                            page_token = page.next_page_token;
                            page.tracks.len() <= page_size as usize
                                && (page_token.is_empty() || page.tracks.len() == page_size as usize)
                        })
                    }
                };
                let latency = sent.elapsed().as_secs_f64();
                let at = start.elapsed().as_secs_f64();
                match result {
                    Ok(right) => {
                        if !right {
                            outcome.wrong[rpc] += 1;
                        }
                        outcome.calls.push(Call { rpc, at, latency, ok: true });
                    }
                    Err(status) => {
                        let key = format!("{} {:?}: {}", RPCS[rpc], status.code(), status.message());
                        *outcome.errors.entry(key).or_default() += 1;
                        outcome.calls.push(Call { rpc, at, latency, ok: false });
                    }
                }
            }
            outcome
        });
    }
    let mut total = Outcome::default();
    while let Some(joined) = tasks.join_next().await {
        let outcome = joined?;
        total.calls.extend(outcome.calls);
        for (key, count) in outcome.errors {
            *total.errors.entry(key).or_default() += count;
        }
        for rpc in 0..3 {
            total.wrong[rpc] += outcome.wrong[rpc];
        }
    }
    Ok(total)
}

/// The index whose share of the weights' sum holds `draw` (`draw` < the sum).
fn pick(weights: &[usize], mut draw: usize) -> usize {
    for (index, &weight) in weights.iter().enumerate() {
        if draw < weight {
            return index;
        }
        draw -= weight;
    }
    weights.len() - 1
}

fn ms(seconds: f64) -> f64 {
    round(seconds * 1e3, 1)
}

fn mib(kib: u64) -> f64 {
    round(kib as f64 / 1024.0, 1)
}

#[expect(clippy::too_many_arguments, reason = "one summary of everything measured")]
fn summarise(
    args: &Args,
    outcome: &Outcome,
    samples: &[(f64, Memory, f64)],
    baseline: &[f64],
    idle: Memory,
    tracks: usize,
    load_before: String,
    exit: serde_json::Value,
) -> serde_json::Value {
    let elapsed = outcome.calls.iter().map(|c| c.at).fold(args.seconds, f64::max);
    let per_rpc = |calls: &mut dyn Iterator<Item = &Call>, seconds: f64| {
        let calls: Vec<&Call> = calls.collect();
        (0..3)
            .map(|rpc| {
                let of: Vec<&&Call> = calls.iter().filter(|c| c.rpc == rpc).collect();
                let latency = Latency::of(&of.iter().filter(|c| c.ok).map(|c| c.latency).collect::<Vec<_>>());
                json!({
                    "rpc": RPCS[rpc],
                    "calls": of.len(),
                    "per_s": round(of.len() as f64 / seconds, 1),
                    "errors": of.iter().filter(|c| !c.ok).count(),
                    "p50_ms": ms(latency.p50),
                    "p99_ms": ms(latency.p99),
                    "max_ms": ms(latency.max),
                })
            })
            .collect::<Vec<_>>()
    };
    let mut rpcs = per_rpc(&mut outcome.calls.iter(), elapsed);
    for (rpc, entry) in rpcs.iter_mut().enumerate() {
        entry["wrong_answers"] = json!(outcome.wrong[rpc]);
    }
    let periods = (args.seconds / args.period_s).ceil().max(1.0) as usize;
    let period_of = |at: f64| ((at / args.period_s) as usize).min(periods - 1);
    let by_period: Vec<serde_json::Value> = (0..periods)
        .map(|p| {
            let from = p as f64 * args.period_s;
            let to = if p + 1 == periods { elapsed } else { from + args.period_s };
            let memory: Vec<&(f64, Memory, f64)> = samples.iter().filter(|s| period_of(s.0) == p).collect();
            let rss: Vec<u64> = memory.iter().map(|s| s.1.rss_kib).collect();
            json!({
                "from_s": from.round() as u64,
                "to_s": to.round() as u64,
                "rpcs": per_rpc(&mut outcome.calls.iter().filter(|c| period_of(c.at) == p), (to - from).max(1e-9)),
                "rss_mean_mib": mib(rss.iter().sum::<u64>() / rss.len().max(1) as u64),
                "rss_max_mib": mib(rss.iter().copied().max().unwrap_or(0)),
                "hwm_end_mib": mib(memory.last().map_or(0, |s| s.1.hwm_kib)),
                "daemon_cpu_s": memory.last().map(|s| round(s.2, 1)),
            })
        })
        .collect();
    let first = by_period.first().and_then(|p| p["rss_mean_mib"].as_f64()).unwrap_or(f64::NAN);
    let last = by_period.last().and_then(|p| p["rss_mean_mib"].as_f64()).unwrap_or(f64::NAN);
    let base = Latency::of(baseline);
    let classify =
        Latency::of(&outcome.calls.iter().filter(|c| c.rpc == 0 && c.ok).map(|c| c.latency).collect::<Vec<_>>());
    json!({
        "machine": { "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
                     "load_average_before": load_before, "load_average_after": load_average() },
        "clients": args.clients,
        "seconds": round(elapsed, 1),
        "mix": args.mix,
        "library_tracks": tracks,
        "clip_seconds": CLIP_SECONDS,
        "page_size": args.page_size,
        "rpcs": rpcs,
        "errors": outcome.errors,
        "in_process_one_thread": { "analyses": baseline.len(), "p50_ms": ms(base.p50), "p99_ms": ms(base.p99) },
        "classify_p50_vs_in_process": round(classify.p50 / base.p50, 1),
        "classify_p99_vs_in_process": round(classify.p99 / base.p99, 1),
        "memory": {
            "idle_after_scan": idle.json(),
            "first_period_rss_mib": first,
            "last_period_rss_mib": last,
            "last_vs_first": round(last / first, 3),
            "max_rss_mib": mib(samples.iter().map(|s| s.1.rss_kib).max().unwrap_or(0)),
            "samples": samples.iter().map(|s| json!([round(s.0, 1), mib(s.1.rss_kib)])).collect::<Vec<_>>(),
        },
        "periods": by_period,
        "daemon_exit": exit,
    })
}

fn print_table(s: &serde_json::Value) {
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    println!(
        "\nsoak: {} clients for {} s, mix {} (Classify, Recommend, ListTracks); library of {} tracks; {} cores, load average {} before, {} after",
        s["clients"], s["seconds"], s["mix"], s["library_tracks"], s["machine"]["cores"],
        text(&s["machine"]["load_average_before"]), text(&s["machine"]["load_average_after"])
    );
    println!(
        "  {:<11} {:>8} {:>7} {:>7} {:>6} {:>8} {:>8} {:>8}",
        "RPC", "calls", "per s", "errors", "wrong", "p50 ms", "p99 ms", "max ms"
    );
    for r in s["rpcs"].as_array().into_iter().flatten() {
        println!(
            "  {:<11} {:>8} {:>7} {:>7} {:>6} {:>8} {:>8} {:>8}",
            text(&r["rpc"]),
            text(&r["calls"]),
            text(&r["per_s"]),
            text(&r["errors"]),
            text(&r["wrong_answers"]),
            text(&r["p50_ms"]),
            text(&r["p99_ms"]),
            text(&r["max_ms"])
        );
    }
    for (error, count) in s["errors"].as_object().into_iter().flatten() {
        println!("    {count} x {error}");
    }
    let base = &s["in_process_one_thread"];
    println!(
        "  in-process, one thread, daemon idle: p50 {} ms, p99 {} ms ({} analyses); Classify ÷ it: p50 {}, p99 {}",
        text(&base["p50_ms"]),
        text(&base["p99_ms"]),
        text(&base["analyses"]),
        text(&s["classify_p50_vs_in_process"]),
        text(&s["classify_p99_vs_in_process"])
    );
    println!(
        "\n  {:>11} {:>7} {:>7} {:>7} {:>6} {:>9} {:>9} {:>9} {:>9} {:>8} {:>8}",
        "period s", "Clsfy", "Recmd", "List", "errs", "Clsfy p99", "Recmd p99", "List p99", "RSS MiB", "max", "HWM"
    );
    for p in s["periods"].as_array().into_iter().flatten() {
        let rpc = |i: usize, key: &str| text(&p["rpcs"][i][key]);
        let errors: u64 = p["rpcs"].as_array().into_iter().flatten().filter_map(|r| r["errors"].as_u64()).sum();
        println!(
            "  {:>11} {:>7} {:>7} {:>7} {:>6} {:>9} {:>9} {:>9} {:>9} {:>8} {:>8}",
            format!("{}–{}", text(&p["from_s"]), text(&p["to_s"])),
            rpc(0, "calls"),
            rpc(1, "calls"),
            rpc(2, "calls"),
            errors,
            rpc(0, "p99_ms"),
            rpc(1, "p99_ms"),
            rpc(2, "p99_ms"),
            text(&p["rss_mean_mib"]),
            text(&p["rss_max_mib"]),
            text(&p["hwm_end_mib"])
        );
    }
    let m = &s["memory"];
    println!(
        "  RSS: idle after the scan {} MiB; first period {} MiB, last period {} MiB: last ÷ first {}; max {} MiB",
        text(&m["idle_after_scan"]["rss_mib"]),
        text(&m["first_period_rss_mib"]),
        text(&m["last_period_rss_mib"]),
        text(&m["last_vs_first"]),
        text(&m["max_rss_mib"])
    );
    println!("  daemon stop: {}\n", text(&s["daemon_exit"]["status"]));
}
