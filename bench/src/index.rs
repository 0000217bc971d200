//! `timbre-bench index`: latency of `Recommend`-style queries on the vector index, exact vs
//! approximate, one thread vs all, and Qdrant on the same data when `QDRANT_URL` is set.
//!
//! The data are synthetic L2-normalised embeddings, deterministic from a seed: `clustered`
//! (points around a few hundred centres, as tracks group by genre and style; the default) or
//! `uniform` (random directions: no structure for an approximate index to use, its worst
//! case). A query is "more like this track": the track's embedding as the one positive
//! example, the track itself excluded, 10 hits; the filtered variant also asks for two of
//! eight genres and leaves out one artist. Recall@10 is measured against exact search.

use std::time::Instant;

use anyhow::Context;
use timbre_daemon::index::embedded::SearchOptions;
use timbre_daemon::index::{EmbeddedConfig, EmbeddedIndex, Filter, IndexPoint, Query, SpaceVector, VectorIndex};
use timbre_rng::SplitMix64;

#[derive(Debug, clap::Args)]
pub struct IndexArgs {
    /// Index sizes, in vectors.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
    sizes: Vec<usize>,
    /// Embedding size.
    #[arg(long, default_value_t = 128)]
    dim: usize,
    /// Timed queries per configuration.
    #[arg(long, default_value_t = 200)]
    queries: usize,
    /// `clustered` or `uniform`.
    #[arg(long, default_value = "clustered")]
    data: String,
    /// `nprobe` values of the approximate index to measure.
    #[arg(long, value_delimiter = ',', default_value = "24")]
    nprobe: Vec<usize>,
    /// Qdrant's gRPC URL; the Qdrant rows are left out without it.
    #[arg(long, env = "QDRANT_URL")]
    qdrant_url: Option<String>,
    /// Seconds to let Qdrant build its index after the upload, before timing it.
    #[arg(long, default_value_t = 30)]
    qdrant_settle_s: u64,
}

const SPACE: &str = "cnn";
const CENTRES: usize = 256;
const GENRES: usize = 8;

fn normalise(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
}

/// The synthetic library, generated a batch at a time.
struct Data {
    rng: SplitMix64,
    dim: usize,
    centres: Option<Vec<Vec<f32>>>,
    next_id: i64,
}

impl Data {
    fn new(kind: &str, dim: usize) -> anyhow::Result<Data> {
        let mut rng = SplitMix64::new(0x7113_be4c);
        let centres = match kind {
            "clustered" => Some(
                (0..CENTRES)
                    .map(|_| {
                        let mut c: Vec<f32> = (0..dim).map(|_| rng.normal()).collect();
                        normalise(&mut c);
                        c
                    })
                    .collect(),
            ),
            "uniform" => None,
            other => anyhow::bail!("--data {other}: expected clustered or uniform"),
        };
        Ok(Data { rng, dim, centres, next_id: 1 })
    }

    fn batch(&mut self, n: usize) -> Vec<IndexPoint> {
        (0..n)
            .map(|_| {
                let id = self.next_id;
                self.next_id += 1;
                let rng = &mut self.rng;
                let (mut vector, cluster) = match &self.centres {
                    // Within-cluster cosine ≈ 0.55, as for tracks of one style.
                    Some(centres) => {
                        let c = rng.below(centres.len());
                        let spread = 0.9 / (self.dim as f32).sqrt();
                        (centres[c].iter().map(|x| x + spread * rng.normal()).collect::<Vec<f32>>(), c)
                    }
                    None => ((0..self.dim).map(|_| rng.normal()).collect(), rng.below(CENTRES)),
                };
                normalise(&mut vector);
                IndexPoint {
                    track_id: id,
                    path: format!("/music/{id}.flac"),
                    genre: format!("genre {}", cluster % GENRES),
                    artist: format!("artist {}", rng.below(5000)),
                    album: format!("album {}", rng.below(20_000)),
                    duration_s: 60.0 + rng.below(400) as f64,
                    vectors: vec![SpaceVector {
                        space: SPACE.into(),
                        vector,
                        label: format!("genre {}", (cluster + rng.below(2)) % GENRES),
                    }],
                    bpm: None,
                    key: None,
                }
            })
            .collect()
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

struct Row {
    engine: String,
    threads: String,
    p50_ms: f64,
    p99_ms: f64,
    recall: Option<f64>,
}

/// Time each query (after a few untimed ones); returns sorted latencies and the hits.
fn time_queries(
    queries: &[Query],
    mut run: impl FnMut(&Query) -> anyhow::Result<Vec<i64>>,
) -> anyhow::Result<(Vec<f64>, Vec<Vec<i64>>)> {
    for q in queries.iter().take(5) {
        run(q)?;
    }
    let mut times = Vec::with_capacity(queries.len());
    let mut hits = Vec::with_capacity(queries.len());
    for q in queries {
        let start = Instant::now();
        let ids = run(q)?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
        hits.push(ids);
    }
    times.sort_by(f64::total_cmp);
    Ok((times, hits))
}

fn recall(exact: &[Vec<i64>], got: &[Vec<i64>]) -> f64 {
    let found: usize = exact.iter().zip(got).map(|(e, g)| g.iter().filter(|id| e.contains(id)).count()).sum();
    let total: usize = exact.iter().map(Vec::len).sum();
    found as f64 / total.max(1) as f64
}

fn row(engine: impl Into<String>, threads: impl Into<String>, times: &[f64], recall: Option<f64>) -> Row {
    Row {
        engine: engine.into(),
        threads: threads.into(),
        p50_ms: percentile(times, 0.5),
        p99_ms: percentile(times, 0.99),
        recall,
    }
}

pub fn run(args: IndexArgs) -> anyhow::Result<()> {
    let all = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!(
        "# timbre-bench index: {} data, {}-d, {} queries per row, {all} cores; latency of one query, exact 1 thread = 1×\n",
        args.data, args.dim, args.queries
    );
    for &n in &args.sizes {
        bench_size(&args, n, all)?;
    }
    Ok(())
}

fn bench_size(args: &IndexArgs, n: usize, all: usize) -> anyhow::Result<()> {
    // exact_limit: never train on its own; the approximate index is built below, explicitly.
    let config = EmbeddedConfig { exact_limit: usize::MAX, threads: all, ..Default::default() };
    let index = EmbeddedIndex::in_memory(config);
    let mut data = Data::new(&args.data, args.dim)?;
    let mut rng = SplitMix64::new(n as u64);
    let mut seeds: Vec<(i64, Vec<f32>, String)> = Vec::new();
    let started = Instant::now();
    let mut left = n;
    while left > 0 {
        let batch = data.batch(left.min(10_000));
        left -= batch.len();
        // Keep a random sample of tracks as query seeds.
        for p in &batch {
            if rng.below(n) < args.queries * 2 {
                seeds.push((p.track_id, p.vectors[0].vector.clone(), p.artist.clone()));
            }
        }
        index.upsert_blocking(batch)?;
    }
    let load_s = started.elapsed().as_secs_f64();
    seeds.truncate(args.queries);
    anyhow::ensure!(!seeds.is_empty(), "no query seeds at size {n}");
    let queries: Vec<Query> = seeds
        .iter()
        .map(|(id, v, _)| Query {
            space: SPACE.into(),
            positive: vec![v.clone()],
            limit: 10,
            filter: Filter { exclude_tracks: vec![*id], ..Default::default() },
            ..Default::default()
        })
        .collect();
    let filtered: Vec<Query> = queries
        .iter()
        .zip(&seeds)
        .enumerate()
        .map(|(i, (q, (_, _, artist)))| {
            let mut q = q.clone();
            q.filter.genres = vec![format!("genre {}", i % GENRES), format!("genre {}", (i + 3) % GENRES)];
            q.filter.exclude_artists = vec![artist.clone()];
            q
        })
        .collect();

    let search = |options: SearchOptions| {
        let index = &index;
        move |q: &Query| -> anyhow::Result<Vec<i64>> {
            Ok(index.search_with(q, options)?.into_iter().map(|h| h.track_id).collect())
        }
    };
    let exact = |threads| SearchOptions { exact: true, threads: Some(threads), nprobe: None };
    let mut rows = Vec::new();
    let (t, exact_hits) = time_queries(&queries, search(exact(1)))?;
    rows.push(row("exact", "1", &t, None));
    let (t, _) = time_queries(&queries, search(exact(all)))?;
    rows.push(row("exact", all.to_string(), &t, None));
    let (t, exact_filtered) = time_queries(&filtered, search(exact(1)))?;
    rows.push(row("exact, filtered", "1", &t, None));
    let (t, _) = time_queries(&filtered, search(exact(all)))?;
    rows.push(row("exact, filtered", all.to_string(), &t, None));

    let started = Instant::now();
    index.train_approximate(SPACE);
    let train_s = started.elapsed().as_secs_f64();
    for &nprobe in &args.nprobe {
        let ivf = |threads| SearchOptions { exact: false, threads: Some(threads), nprobe: Some(nprobe) };
        let name = format!("IVF nprobe {nprobe}");
        let (t, hits) = time_queries(&queries, search(ivf(1)))?;
        rows.push(row(name.clone(), "1", &t, Some(recall(&exact_hits, &hits))));
        let (t, hits) = time_queries(&queries, search(ivf(all)))?;
        rows.push(row(name.clone(), all.to_string(), &t, Some(recall(&exact_hits, &hits))));
        let (t, hits) = time_queries(&filtered, search(ivf(1)))?;
        rows.push(row(format!("{name}, filtered"), "1", &t, Some(recall(&exact_filtered, &hits))));
        let (t, hits) = time_queries(&filtered, search(ivf(all)))?;
        rows.push(row(format!("{name}, filtered"), all.to_string(), &t, Some(recall(&exact_filtered, &hits))));
    }

    if let Some(url) = &args.qdrant_url {
        rows.extend(bench_qdrant(args, url, n, &queries, &exact_hits)?);
    }

    println!(
        "## {n} vectors (load {load_s:.1} s, IVF training {train_s:.1} s, {} lists)\n",
        (n as f64).sqrt().round().clamp(16.0, 4096.0)
    );
    println!("| engine | threads | p50 ms | p99 ms | p50 speed-up | recall@10 |");
    println!("| --- | --- | --- | --- | --- | --- |");
    let baseline = rows[0].p50_ms;
    for r in &rows {
        let recall = r.recall.map_or("exact".into(), |x| format!("{x:.3}"));
        println!(
            "| {} | {} | {:.3} | {:.3} | {:.1}× | {recall} |",
            r.engine,
            r.threads,
            r.p50_ms,
            r.p99_ms,
            baseline / r.p50_ms
        );
    }
    println!();
    Ok(())
}

/// The same data and queries through Qdrant (HNSW, its defaults), over gRPC.
fn bench_qdrant(
    args: &IndexArgs,
    url: &str,
    n: usize,
    queries: &[Query],
    exact_hits: &[Vec<i64>],
) -> anyhow::Result<Vec<Row>> {
    use timbre_daemon::index::qdrant::QdrantIndex;
    use timbre_daemon::index::QdrantConfig;

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let config = QdrantConfig {
        url: url.into(),
        api_key: std::env::var("QDRANT_API_KEY").unwrap_or_default(),
        collection: format!("timbre_bench_{n}"),
        ..Default::default()
    };
    let index = runtime.block_on(QdrantIndex::connect(&config, "bench")).context("Qdrant")?;
    runtime.block_on(async {
        index.clear().await?;
        let mut data = Data::new(&args.data, args.dim)?;
        let mut left = n;
        while left > 0 {
            let batch = data.batch(left.min(10_000));
            left -= batch.len();
            index.upsert(batch).await?;
        }
        anyhow::Ok(())
    })?;
    std::thread::sleep(std::time::Duration::from_secs(args.qdrant_settle_s));
    let (t, hits) = time_queries(queries, |q| {
        Ok(runtime.block_on(index.query(q.clone()))?.into_iter().map(|h| h.track_id).collect())
    })?;
    Ok(vec![row("Qdrant (HNSW, gRPC)", "server", &t, Some(recall(exact_hits, &hits)))])
}
