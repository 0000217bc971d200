//! `timbre-bench chaos`: `kill -9` a real `timbred serve` at random moments of its start-up scan,
//! restart it each time, then let it finish and check the library (bench/README.md, "Chaos").
//!
//! After every kill, read straight from SQLite: `PRAGMA integrity_check` is `ok`, every file is
//! listed at most once and only files of the root are, no track has failed, every prediction
//! row seen after an earlier kill is still there with the same `analysed_at` (nothing stored is
//! redone), and every track keeps its id. After the last run: every file exactly once,
//! analysed by every model, and `Recommend` (by gRPC, a few seed tracks, the default space and
//! each model's) equal to a brute-force cosine ranking over the embeddings in the database.
//!
//! Kill moments are drawn from a seeded SplitMix64: a share of them at a uniform moment of
//! start-up (before the "serving" line); each of the others after a uniform number of tracks
//! more are analysed (polled in the database; its mean spreads the tracks left over the kills
//! left, so the kills cover the whole scan), plus a uniform delay of up to about one track's
//! analysis, so that a kill lands anywhere within the work on the next tracks.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use rusqlite::{Connection, OpenFlags};
use serde_json::json;
use timbre_proto::v1 as pb;
use timbre_rng::SplitMix64;

use crate::harness::{connect, copy_into, load_average, pool_files, round, runtime, Daemon};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    inputs: crate::harness::Inputs,
    /// Pool files copied into the library (a seeded sample).
    #[arg(long, default_value_t = 300)]
    files: usize,
    /// Number of `kill -9`s before the run that is let finish.
    #[arg(long, default_value_t = 40)]
    kills: usize,
    /// The daemon's `--workers`.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Seed of the file sample, the kill moments and the Recommend seeds.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Share of the kills aimed at start-up, before the "serving" line.
    #[arg(long, default_value_t = 0.2)]
    startup_share: f64,
    /// The other kills come a uniform delay in [0, JITTER_S] after the number of tracks they
    /// wait for is analysed (about one track's analysis, so the kill lands anywhere in it).
    #[arg(long, default_value_t = 0.1)]
    jitter_s: f64,
    /// Seed tracks for the Recommend check.
    #[arg(long, default_value_t = 5)]
    seeds: usize,
    /// Tracks asked of each Recommend (the daemon caps it at recommend.max_limit, 200).
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// Seconds Recommend may take, after the scan has finished, to agree with brute force.
    #[arg(long, default_value_t = 5.0)]
    settle_s: f64,
    /// Keep the library and its database in this folder (default: a temporary one, kept only
    /// when a check fails).
    #[arg(long)]
    keep: Option<PathBuf>,
    /// Also write the JSON summary to this file.
    #[arg(long)]
    json_out: Option<PathBuf>,
}

fn note(message: &str) {
    eprintln!("timbre-bench chaos: {message}");
}

/// Analysis states of `tracks.state` (daemon/src/library/schema.rs).
const ANALYSED: i64 = 2;
const FAILED: i64 = 3;

pub fn run(args: Args) -> anyhow::Result<()> {
    let (timbred, pool) = args.inputs.resolve()?;
    ensure!(args.files > 0 && (0.0..=1.0).contains(&args.startup_share), "nothing to do");
    let started = Instant::now();
    let load_before = load_average();
    let mut rng = SplitMix64::new(args.seed);

    let (tmp, work) = match &args.keep {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            (None, dir.canonicalize()?)
        }
        None => {
            let tmp = tempfile::tempdir()?;
            let work = tmp.path().canonicalize()?;
            (Some(tmp), work)
        }
    };
    let root = work.join("library");
    let data = work.join("data");
    let database = data.join("library.sqlite3");
    let mut files = pool_files(&pool)?;
    rng.shuffle(&mut files);
    files.truncate(args.files);
    files.sort();
    let expected: BTreeSet<String> =
        copy_into(&files, &root)?.iter().map(|p| p.display().to_string()).collect::<BTreeSet<_>>();
    ensure!(expected.len() == files.len(), "two pool files share a name");
    let n = expected.len();
    note(&format!("{n} files in {}; {} kills, --workers {}", root.display(), args.kills, args.workers));
    let command = || {
        let mut command = Daemon::command(&timbred, &data);
        command.arg("--root").arg(&root).args(["--workers", &args.workers.to_string()]);
        command
    };

    let mut history = History::default();
    let mut kills = Vec::new();
    // The warnings and errors the killed daemons logged.
    let mut problems: Vec<String> = Vec::new();
    // Start-up times, measured as the runs go.
    let mut startups = Vec::new();
    let mut analysed = 0;
    for kill in 0..args.kills {
        let spawned = Instant::now();
        let mut daemon = Daemon::spawn(command())?;
        let startup = if startups.is_empty() { 0.5 } else { crate::harness::median(&startups) };
        let (aimed, jitter) = if rng.unit() < args.startup_share {
            std::thread::sleep(Duration::from_secs_f64(rng.unit() * startup));
            (None, None)
        } else {
            daemon.wait_serving(Duration::from_secs(300))?;
            startups.push(spawned.elapsed().as_secs_f64());
            // Spread what is left over the kills left and the final run: wait for a uniform
            // number of tracks more whose mean is that share, then a uniform moment within
            // about one track's analysis.
            let share = (n - analysed) as f64 / (args.kills - kill + 1) as f64;
            let more = (rng.unit() * 2.0 * share).round() as usize;
            if !wait_for_analysed(&database, analysed + more, &mut daemon, Duration::from_secs(120))? {
                history.violation(format!("run {kill}: {} tracks not analysed within 120 s", analysed + more));
            }
            let jitter = rng.unit() * args.jitter_s;
            std::thread::sleep(Duration::from_secs_f64(jitter));
            (Some(more), Some(jitter))
        };
        if let Some(status) = daemon.exited()? {
            history.violation(format!("run {kill}: timbred exited by itself ({status}):\n{}", tail(&daemon.log())));
        }
        let at = spawned.elapsed().as_secs_f64();
        let log = daemon.kill()?;
        let serving = log.lines().any(|l| l.starts_with(timbre_daemon::serve::SERVING_LINE));
        let snapshot = Snapshot::read(&database)?;
        analysed = snapshot.analysed();
        let phase = match (serving, analysed == n) {
            (false, _) => "start-up",
            (true, false) => "scan",
            (true, true) => "after the scan",
        };
        history.check(kill, &snapshot, &expected, &log);
        problems.extend(log.lines().filter(|l| l.contains(" WARN ") || l.contains(" ERROR ")).map(String::from));
        kills.push(json!({
            "kill": kill, "phase": phase, "seconds_after_spawn": round(at, 3),
            "aimed_at_tracks_more": aimed, "then_seconds": jitter.map(|j| round(j, 3)),
            "analysed_at_kill": analysed,
        }));
        note(&format!(
            "kill {kill:>2}: {phase:<14} {at:>6.3} s after spawn, {analysed:>3}/{n} analysed{}",
            if history.violations.is_empty() {
                String::new()
            } else {
                format!(", {} violations", history.violations.len())
            }
        ));
    }

    // The run that is let finish.
    note("final run: waiting for the scan to finish");
    let daemon = Daemon::start(command())?;
    let recommend = runtime()?.block_on(async {
        let mut client = connect(&daemon.addr).await?;
        let mut stream = client.scan(pb::ScanRequest::default()).await?.into_inner();
        let mut last = None;
        while let Some(progress) = stream.message().await? {
            last = Some(progress);
        }
        ensure!(last.is_some_and(|p| p.finished), "the Scan stream ended before the scan finished");
        let finished = Instant::now();
        let snapshot = Snapshot::read(&database)?;
        let seeds = recommend_seeds(&database, &snapshot, args.seeds, &mut rng)?;
        // The index follows the library in batches (daemon/src/recommend/keeper.rs), so it may
        // lack the last tracks for a moment after the scan says it has finished: compare again
        // until it agrees, for at most `settle_s`, and report how long that took.
        let mut attempts = Vec::new();
        loop {
            let result = check_recommend(&mut client, &database, &seeds, args.limit).await?;
            let settled = result["mismatches"].as_array().is_none_or(Vec::is_empty);
            let waited = finished.elapsed().as_secs_f64();
            attempts.push(json!({ "seconds_after_finished": round(waited, 3), "mismatches": result["mismatches"].as_array().map_or(0, Vec::len) }));
            if settled || waited > args.settle_s {
                let mut result = result;
                result["attempts"] = json!(attempts);
                if attempts.len() > 1 {
                    result["first_attempt_mismatches"] = attempts[0]["mismatches"].clone();
                }
                return anyhow::Ok(result);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })?;
    let exit = daemon.stop()?;
    if exit["success"] != json!(true) {
        history.violation(format!("the final run did not stop cleanly on SIGTERM: {exit}"));
    }
    let last = Snapshot::read(&database)?;
    let final_log: Vec<&str> =
        exit["log_warnings_and_errors"].as_array().into_iter().flatten().filter_map(|l| l.as_str()).collect();
    history.check(args.kills, &last, &expected, &final_log.join("\n"));
    history.complete(&last, &expected);
    for mismatch in recommend["mismatches"].as_array().into_iter().flatten() {
        history.violation(format!("Recommend: {}", mismatch.as_str().unwrap_or_default()));
    }

    let count = |phase: &str| kills.iter().filter(|k| k["phase"] == phase).count();
    let summary = json!({
        "machine": { "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
                     "load_average_before": load_before, "load_average_after": load_average() },
        "files": n,
        "workers": args.workers,
        "seed": args.seed,
        "kills": args.kills,
        "kills_during_start_up": count("start-up"),
        "kills_during_the_scan": count("scan"),
        "kills_after_the_scan": count("after the scan"),
        "prediction_rows_checked": history.stored.len(),
        "tracks_analysed": last.analysed(),
        "recommend": recommend,
        "final_stop": exit,
        "killed_runs_log_warnings_and_errors": problems.len(),
        "killed_runs_log_first": problems.iter().take(10).collect::<Vec<_>>(),
        "seconds": round(started.elapsed().as_secs_f64(), 1),
        "violations": history.violations,
        "each_kill": kills,
    });
    print_table(&summary);
    let text = serde_json::to_string_pretty(&summary)?;
    if let Some(path) = &args.json_out {
        std::fs::write(path, format!("{text}\n")).with_context(|| format!("writing {}", path.display()))?;
    }
    if !history.violations.is_empty() {
        if let Some(tmp) = tmp {
            note(&format!("library and database kept in {}", tmp.keep().display()));
        }
        bail!("{} violation(s); see above", history.violations.len());
    }
    Ok(())
}

/// Poll the database until at least `target` tracks are analysed: true when they are, false
/// when `limit` passes first or the daemon exits.
fn wait_for_analysed(database: &Path, target: usize, daemon: &mut Daemon, limit: Duration) -> anyhow::Result<bool> {
    let started = Instant::now();
    while started.elapsed() < limit && daemon.exited()?.is_none() {
        let count = Connection::open_with_flags(database, OpenFlags::SQLITE_OPEN_READ_ONLY).and_then(|db| {
            db.query_row("SELECT count(*) FROM tracks WHERE state = ?1", [ANALYSED], |r| r.get::<_, i64>(0))
        });
        if count.is_ok_and(|c| c as usize >= target) {
            return Ok(true);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(false)
}

/// The last lines of a log.
fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// The library as SQLite holds it after a kill.
#[derive(Default)]
struct Snapshot {
    integrity: String,
    /// path → (id, state, error), one entry per row (a duplicated path is in `duplicates`).
    tracks: BTreeMap<String, (i64, i64, String)>,
    duplicates: Vec<String>,
    /// (path, model) → analysed_at.
    predictions: BTreeMap<(String, String), i64>,
}

impl Snapshot {
    /// Empty when the database is not there yet (killed before it was created), or has no
    /// tables yet (killed before the first migration committed).
    fn read(database: &Path) -> anyhow::Result<Snapshot> {
        if !database.exists() {
            return Ok(Snapshot { integrity: "ok".into(), ..Snapshot::default() });
        }
        let db = Connection::open_with_flags(database, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .with_context(|| format!("opening {}", database.display()))?;
        db.busy_timeout(Duration::from_secs(10))?;
        let mut snapshot =
            Snapshot { integrity: db.query_row("PRAGMA integrity_check", [], |r| r.get(0))?, ..Snapshot::default() };
        let tables: i64 = db.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('tracks', 'predictions')",
            [],
            |r| r.get(0),
        )?;
        if tables < 2 {
            return Ok(snapshot);
        }
        let mut statement = db.prepare("SELECT path, id, state, error FROM tracks")?;
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            let path: String = row.get(0)?;
            if snapshot.tracks.insert(path.clone(), (row.get(1)?, row.get(2)?, row.get(3)?)).is_some() {
                snapshot.duplicates.push(path);
            }
        }
        let mut statement =
            db.prepare("SELECT t.path, p.model, p.analysed_at FROM predictions p JOIN tracks t ON t.id = p.track_id")?;
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            snapshot.predictions.insert((row.get(0)?, row.get(1)?), row.get(2)?);
        }
        Ok(snapshot)
    }

    fn analysed(&self) -> usize {
        self.tracks.values().filter(|(_, state, _)| *state == ANALYSED).count()
    }
}

/// What earlier snapshots held, and what broke.
#[derive(Default)]
struct History {
    /// (path, model) → (analysed_at, the kill after which it was first seen).
    stored: BTreeMap<(String, String), (i64, usize)>,
    /// path → (id, the kill after which it was first seen).
    ids: BTreeMap<String, (i64, usize)>,
    violations: Vec<String>,
}

impl History {
    fn violation(&mut self, what: String) {
        match self.violations.len() {
            0..20 => note(&format!("VIOLATION: {what}")),
            20 => note("more violations: see the summary"),
            _ => {}
        }
        self.violations.push(what);
    }

    /// `kill`: the snapshot was taken after this kill (`kills` for the final run).
    fn check(&mut self, kill: usize, snapshot: &Snapshot, expected: &BTreeSet<String>, log: &str) {
        let after = format!("after kill {kill}");
        if snapshot.integrity != "ok" {
            self.violation(format!("{after}: integrity_check: {}", snapshot.integrity));
        }
        for path in &snapshot.duplicates {
            self.violation(format!("{after}: {path} is listed more than once"));
        }
        for (path, (id, state, error)) in &snapshot.tracks {
            if !expected.contains(path) {
                self.violation(format!("{after}: track {id} {path} is not a file of the library"));
            }
            if *state == FAILED {
                self.violation(format!("{after}: track {id} {path} failed: {error}"));
            }
            match self.ids.get(path) {
                Some((old, seen)) if old != id => {
                    self.violation(format!("{after}: {path} was track {old} after kill {seen}, now track {id}"))
                }
                Some(_) => {}
                None => drop(self.ids.insert(path.clone(), (*id, kill))),
            }
        }
        let mut broken = Vec::new();
        for (key, (at, seen)) in &self.stored {
            match snapshot.predictions.get(key) {
                None => broken.push(format!("{after}: {} / {} (stored by kill {seen}) is gone", key.0, key.1)),
                Some(now) if now != at => broken.push(format!(
                    "{after}: {} / {} was analysed again: analysed_at {at} (seen after kill {seen}) is now {now}",
                    key.0, key.1
                )),
                Some(_) => {}
            }
        }
        for key in snapshot.predictions.keys() {
            if !self.stored.contains_key(key) {
                self.stored.insert(key.clone(), (snapshot.predictions[key], kill));
            }
        }
        for what in broken {
            self.violation(what);
        }
        if log.contains("panicked") {
            self.violation(format!("{after}: the daemon panicked:\n{}", tail(log)));
        }
    }

    /// The finished library: every file exactly once, analysed by every model.
    fn complete(&mut self, snapshot: &Snapshot, expected: &BTreeSet<String>) {
        let models: BTreeSet<&str> = snapshot.predictions.keys().map(|(_, m)| m.as_str()).collect();
        if models.is_empty() {
            return self.violation("no prediction stored at all".into());
        }
        for path in expected {
            match snapshot.tracks.get(path) {
                None => self.violation(format!("{path} is not in the library")),
                Some((id, state, _)) if *state != ANALYSED => {
                    self.violation(format!("track {id} {path} ended in state {state}"))
                }
                Some((id, _, _)) => {
                    let missing: Vec<&&str> = models
                        .iter()
                        .filter(|m| !snapshot.predictions.contains_key(&(path.clone(), m.to_string())))
                        .collect();
                    if !missing.is_empty() {
                        self.violation(format!("track {id} {path} has no prediction of {missing:?}"));
                    }
                }
            }
        }
    }
}

/// Every stored embedding by model: track id → vector.
fn embeddings(database: &Path) -> anyhow::Result<BTreeMap<String, BTreeMap<i64, Vec<f32>>>> {
    let db = Connection::open_with_flags(database, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    db.busy_timeout(Duration::from_secs(10))?;
    let mut statement = db.prepare(
        "SELECT p.track_id, p.model, p.embedding FROM predictions p JOIN tracks t ON t.id = p.track_id
         WHERE length(p.embedding) >= 4",
    )?;
    let mut rows = statement.query([])?;
    let mut spaces: BTreeMap<String, BTreeMap<i64, Vec<f32>>> = BTreeMap::new();
    while let Some(row) = rows.next()? {
        let bytes: Vec<u8> = row.get(2)?;
        let vector = bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        spaces.entry(row.get(1)?).or_default().insert(row.get(0)?, vector);
    }
    Ok(spaces)
}

/// The library tracks most like `seed` by cosine, best first (ties by id), the seed left out.
fn brute_force(space: &BTreeMap<i64, Vec<f32>>, seed: i64) -> Vec<(i64, f64)> {
    let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let query = &space[&seed];
    let query_norm = norm(query);
    let mut ranked: Vec<(i64, f64)> = space
        .iter()
        .filter(|(id, _)| **id != seed)
        .map(|(id, v)| {
            let dot: f64 = v.iter().zip(query).map(|(a, b)| *a as f64 * *b as f64).sum();
            (*id, dot / (norm(v) * query_norm))
        })
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked
}

/// Positions may swap between tracks whose cosines differ by less than this (f32 kernels).
const TIE: f64 = 1e-5;
/// Largest difference allowed between a returned score and the brute-force cosine.
const SCORE: f64 = 1e-4;

/// `seeds` random analysed tracks that have an embedding in every space.
fn recommend_seeds(
    database: &Path,
    snapshot: &Snapshot,
    seeds: usize,
    rng: &mut SplitMix64,
) -> anyhow::Result<Vec<i64>> {
    let spaces = embeddings(database)?;
    let mut ids: Vec<i64> = snapshot.tracks.values().filter(|t| t.1 == ANALYSED).map(|t| t.0).collect();
    ids.retain(|id| spaces.values().all(|space| space.contains_key(id)));
    rng.shuffle(&mut ids);
    ids.truncate(seeds);
    Ok(ids)
}

/// `Recommend` for each seed track, in the default space and in each model's, against the
/// brute-force ranking of the same embeddings read from SQLite.
async fn check_recommend(
    client: &mut timbre_proto::v1::timbre_client::TimbreClient<tonic::transport::Channel>,
    database: &Path,
    ids: &[i64],
    limit: u32,
) -> anyhow::Result<serde_json::Value> {
    let spaces = embeddings(database)?;
    // The daemon's default with `recommend.model` unset (daemon/src/recommend/mod.rs).
    let default = if spaces.contains_key("cnn") { "cnn" } else { spaces.keys().next().context("no embedding")? };
    let mut requests = vec![(String::new(), default.to_string())];
    requests.extend(spaces.keys().map(|m| (m.clone(), m.clone())));
    let (mut compared, mut swapped_ties, mut max_score_diff, mut mismatches) = (0, 0, 0f64, Vec::new());
    for &seed in ids {
        for (asked, space) in &requests {
            let request = pb::RecommendRequest {
                positive: vec![pb::TrackRef { track: Some(pb::track_ref::Track::TrackId(seed as u64)) }],
                model: asked.clone(),
                limit,
                ..Default::default()
            };
            let what = format!("seed {seed}, model '{asked}' ({space})");
            let got = match client.recommend(request).await {
                Ok(response) => response.into_inner().tracks,
                Err(status) => {
                    mismatches.push(format!("{what}: {:?}: {}", status.code(), status.message()));
                    continue;
                }
            };
            let want = brute_force(&spaces[space], seed);
            let scores: BTreeMap<i64, f64> = want.iter().copied().collect();
            let wanted = want.len().min(limit as usize);
            if got.len() != wanted {
                mismatches.push(format!("{what}: {} tracks, brute force {wanted}", got.len()));
            }
            for (position, (hit, expected)) in got.iter().zip(&want).enumerate() {
                compared += 1;
                let id = hit.track.as_ref().map_or(0, |t| t.id as i64);
                let Some(&cosine) = scores.get(&id) else {
                    mismatches.push(format!("{what}: #{position} is track {id}, not a candidate"));
                    continue;
                };
                max_score_diff = max_score_diff.max((hit.score as f64 - cosine).abs());
                if (hit.score as f64 - cosine).abs() > SCORE {
                    mismatches.push(format!("{what}: track {id} scored {}, cosine {cosine:.6}", hit.score));
                }
                if id != expected.0 {
                    if (cosine - expected.1).abs() <= TIE {
                        swapped_ties += 1;
                    } else {
                        mismatches.push(format!(
                            "{what}: #{position} is track {id} (cosine {cosine:.6}), brute force has track {} ({:.6})",
                            expected.0, expected.1
                        ));
                    }
                }
            }
        }
    }
    Ok(json!({
        "seeds": ids,
        "spaces": requests.iter().map(|(asked, space)| if asked.is_empty() { format!("default ({space})") } else { space.clone() }).collect::<Vec<_>>(),
        "limit": limit,
        "positions_compared": compared,
        "tie_swaps": swapped_ties,
        "max_score_diff": max_score_diff,
        "mismatches": mismatches,
    }))
}

fn print_table(s: &serde_json::Value) {
    let r = &s["recommend"];
    println!(
        "\nchaos: {} files, --workers {}, seed {}, {} s; load average {} before, {} after",
        s["files"],
        s["workers"],
        s["seed"],
        s["seconds"],
        s["machine"]["load_average_before"],
        s["machine"]["load_average_after"]
    );
    println!(
        "  kill -9: {} ({} during start-up, {} during the scan, {} after it)",
        s["kills"], s["kills_during_start_up"], s["kills_during_the_scan"], s["kills_after_the_scan"]
    );
    println!(
        "  prediction rows followed across kills: {}; tracks analysed at the end: {}",
        s["prediction_rows_checked"], s["tracks_analysed"]
    );
    println!(
        "  Recommend: {} seeds x {} spaces, {} positions compared with brute force, {} tie swaps, max |score - cosine| {:.2e}, {} mismatches",
        r["seeds"].as_array().map_or(0, Vec::len),
        r["spaces"].as_array().map_or(0, Vec::len),
        r["positions_compared"],
        r["tie_swaps"],
        r["max_score_diff"].as_f64().unwrap_or(f64::NAN),
        r["mismatches"].as_array().map_or(0, Vec::len)
    );
    let attempts = r["attempts"].as_array().cloned().unwrap_or_default();
    if attempts.len() > 1 {
        println!(
            "  Recommend agreed with brute force only {} s after the scan had finished ({} attempts; the first had {} mismatches)",
            attempts.last().map_or(serde_json::Value::Null, |a| a["seconds_after_finished"].clone()),
            attempts.len(),
            r["first_attempt_mismatches"]
        );
    }
    println!("  final SIGTERM: {}", s["final_stop"]["status"]);
    println!("  warnings and errors logged by the killed runs: {}", s["killed_runs_log_warnings_and_errors"]);
    for line in s["killed_runs_log_first"].as_array().into_iter().flatten().take(5) {
        println!("    {}", line.as_str().unwrap_or_default());
    }
    let violations = s["violations"].as_array().cloned().unwrap_or_default();
    println!("  violations: {}", violations.len());
    for v in violations.iter().take(20) {
        println!("    {}", v.as_str().unwrap_or_default());
    }
    println!();
}
