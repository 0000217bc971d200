#!/usr/bin/env python3
"""Classifier costs, in one run, as ratios and rates.

(a) Per-track analysis: decode -> mel -> every shipped model, for a 30 s clip, as tracks per
    second on one core (`timbred analyze --jobs 1`) and on all cores (`--jobs N`). Start-up
    (plugin and model loading) is removed by timing 1 and 1+N copies of the clip.
(b) ONNX inference through timbre's onnx plugin (the real ABI path) against Python
    onnxruntime, same model, same batch, one intra-op thread each, best of N; the outputs are
    checked to agree before the times are compared.
(c) musicnn-msd the same way, on real patches (a 30 s pool clip cut by `timbred features` with
    the manifest's parameters: 10 time-major 187 x 96 patches), at 1 and 2 intra-op threads and
    the same graph optimisation level on both sides; the two are run in alternating rounds so
    that the load of other processes falls on both alike, and medians are compared.
(d) The whole analysis of real tracks with every shipped model, as tracks per second per core
    of CPU time (user + system of `timbred analyze --jobs 1`), start-up removed by timing 1 and
    1 + N tracks; median of R repeats.

Every part prints the load average before and after it: the machine is shared.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def analyze_seconds(timbred, clip, copies, jobs):
    start = time.perf_counter()
    subprocess.run([timbred, "analyze", "--jobs", str(jobs), *([str(clip)] * copies)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def part_a(timbred, pool, copies):
    import soundfile as sf

    clips = sorted(p for p in pool.rglob("*.flac") if sf.info(p).duration >= 29.9)
    if not clips:
        sys.exit(f"no 30 s clip in {pool}")
    clip = clips[0]
    models = json.loads(subprocess.run([timbred, "plugins", "--json"], capture_output=True, text=True, check=True).stdout)
    names = [m["name"] for m in models.get("models", [])]
    result = {"clip": str(clip.relative_to(pool)), "models": names}
    for jobs in sorted({1, os.cpu_count() or 1}):
        base = min(analyze_seconds(timbred, clip, 1, jobs) for _ in range(3))
        full = min(analyze_seconds(timbred, clip, 1 + copies, jobs) for _ in range(3))
        result[f"tracks_per_s_{jobs}_cores"] = round(copies / max(full - base, 1e-9), 1)
    return result


def part_b(bench_bin, model_dir, batch_size, repeat):
    import numpy as np
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    batch = (rng.standard_normal((batch_size, 128, 130)) * 15 - 40).astype(np.float32)  # dB-like values
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(model_dir / "model.onnx"), options, providers=["CPUExecutionProvider"])
    run = lambda: session.run(["probabilities"], {"mel": batch})[0]
    expected = run()
    py = []
    for _ in range(repeat):
        t = time.perf_counter()
        run()
        py.append(time.perf_counter() - t)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "batch.npy"
        np.save(path, batch)
        rust = json.loads(subprocess.run([bench_bin, "onnx", str(model_dir), str(path), "--repeat", str(repeat)],
                                         capture_output=True, text=True, check=True).stdout)
    diff = float(np.abs(np.array(rust["probabilities"]).reshape(expected.shape) - expected).max())
    if diff > 1e-4:
        sys.exit(f"the onnx plugin and Python onnxruntime disagree by {diff} on {model_dir}")
    best_py, best_rust = min(py), min(rust["seconds"])
    return {"model": model_dir.name, "batch": batch_size, "python_onnxruntime_ms": round(best_py * 1e3, 3),
            "timbre_plugin_ms": round(best_rust * 1e3, 3), "ratio_python_over_timbre": round(best_py / best_rust, 2),
            "max_abs_diff": diff}


def load():
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def musicnn_patches(timbred, clip, model_dir, out):
    """The clip cut into musicnn-msd's input patches by `timbred features`, from its manifest."""
    import tomllib

    import numpy as np

    manifest = tomllib.loads((model_dir / "model.toml").read_text())
    features = manifest["features"]
    sets = [a for key, value in features["params"].items() for a in ("--set", f"{key}={json.dumps(value)}")]
    subprocess.run([timbred, "features", "--plugin", features["plugin"], *sets, "--segment-seconds",
                    str(features["segment_seconds"]), "--out", str(out), str(clip)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    path = out / f"{clip.stem}.npy"
    return path, np.load(path), manifest["model"]


def part_c(timbred, bench_bin, clip, threads, rounds, repeat):
    import numpy as np
    import onnxruntime as ort

    model_dir = REPO / "plugins/models/musicnn-msd"
    with tempfile.TemporaryDirectory() as tmp:
        path, batch, model = musicnn_patches(timbred, clip, model_dir, Path(tmp))
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # timbre's default, `models.graph_optimization = "all"`.
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(str(model_dir / "model.onnx"), options, providers=["CPUExecutionProvider"])
        run = lambda: session.run([model["probabilities"]], {model["input"]: batch})[0]
        expected = run()
        py, rust, diff = [], [], 0.0
        for _ in range(rounds):
            for _ in range(repeat):
                t = time.perf_counter()
                run()
                py.append(time.perf_counter() - t)
            out = json.loads(subprocess.run([bench_bin, "onnx", str(model_dir), str(path), "--repeat", str(repeat),
                                             "--threads", str(threads)], capture_output=True, text=True,
                                            check=True).stdout)
            rust.extend(out["seconds"])
            diff = max(diff, float(np.abs(np.array(out["probabilities"]).reshape(expected.shape) - expected).max()))
    if diff > 1e-4:
        sys.exit(f"the onnx plugin and Python onnxruntime disagree by {diff} on musicnn-msd")
    med_py, med_rust = statistics.median(py), statistics.median(rust)
    return {"model": "musicnn-msd", "batch": list(batch.shape), "threads": threads, "runs": len(py),
            "python_onnxruntime_ms": round(med_py * 1e3, 2), "timbre_plugin_ms": round(med_rust * 1e3, 2),
            "ratio_timbre_over_python": round(med_rust / med_py, 3),
            "python_ms_p10_p90": [round(q * 1e3, 2) for q in statistics.quantiles(py, n=10)[::8]],
            "timbre_ms_p10_p90": [round(q * 1e3, 2) for q in statistics.quantiles(rust, n=10)[::8]],
            "max_abs_diff": diff}


def cpu_seconds(command):
    """User + system CPU time of `command` (a child process), and its wall time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall


def part_d(timbred, clips, repeats):
    models = json.loads(subprocess.run([timbred, "plugins", "--json"], capture_output=True, text=True, check=True).stdout)
    names = [m["name"] for m in models.get("models", [])]
    per_track, walls = [], []
    for _ in range(repeats):
        base_cpu, base_wall = cpu_seconds([timbred, "analyze", "--jobs", "1", str(clips[0])])
        full_cpu, full_wall = cpu_seconds([timbred, "analyze", "--jobs", "1", str(clips[0]), *map(str, clips)])
        per_track.append((full_cpu - base_cpu) / len(clips))
        walls.append((full_wall - base_wall) / len(clips))
    cpu = statistics.median(per_track)
    return {"models": names, "tracks": len(clips), "repeats": repeats,
            "cpu_s_per_track": round(cpu, 3), "tracks_per_s_per_core": round(1 / cpu, 2),
            "cpu_s_per_track_range": [round(min(per_track), 3), round(max(per_track), 3)],
            "wall_s_per_track": round(statistics.median(walls), 3)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pool", type=Path, default=REPO / "../shared/data/gtzan-pool")
    parser.add_argument("--timbred", required=True)
    parser.add_argument("--bench-bin", required=True)
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--batch", type=int, default=10, help="segments per batch (a 30 s track is 10)")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=5, help="(c): alternating rounds of --repeat runs per side")
    parser.add_argument("--tracks", type=int, default=8, help="(d): 30 s clips analysed per repeat")
    parser.add_argument("--repeats", type=int, default=5, help="(d): repeats, the median reported")
    parser.add_argument("--only", choices=["a", "b", "c", "d"], action="append", help="run only these parts")
    args = parser.parse_args()
    if args.only and set(args.only) <= {"c", "d"}:
        return musicnn_and_whole_analysis(args)
    a = part_a(args.timbred, args.pool, args.copies)
    cores = [k for k in a if k.startswith("tracks_per_s")]
    print(f"(a) analysis of a 30 s clip with {', '.join(a['models'])}: " +
          ", ".join(f"{a[k]} tracks/s on {k.split('_')[3]} core(s)" for k in cores), flush=True)
    results = []
    import tomllib

    for model_dir in sorted((REPO / "plugins/models").glob("*/model.onnx")):
        # (b) feeds [10, 128, 130] to "mel" and reads "probabilities": musicnn-msd reads other
        # patches and names its outputs itself, so it has its own part, (c).
        model = tomllib.loads((model_dir.parent / "model.toml").read_text())["model"]
        if model.get("probabilities", "probabilities") != "probabilities":
            continue
        b = part_b(args.bench_bin, model_dir.parent, args.batch, args.repeat)
        results.append(b)
        print(f"(b) {b['model']}, batch {b['batch']}: Python onnxruntime {b['python_onnxruntime_ms']} ms, "
              f"timbre onnx plugin {b['timbre_plugin_ms']} ms -> {b['ratio_python_over_timbre']}x", flush=True)
    print(json.dumps({"a": a, "b": results}))
    musicnn_and_whole_analysis(args)


def musicnn_and_whole_analysis(args):
    import soundfile as sf

    clips = sorted(p for p in args.pool.rglob("*.flac") if sf.info(p).duration >= 29.9)
    if not clips:
        sys.exit(f"no 30 s clip in {args.pool}")
    out = {}
    if not args.only or "c" in args.only:
        out["c"] = []
        for threads in (1, 2):
            before = load()
            c = part_c(args.timbred, args.bench_bin, clips[0], threads, args.rounds, args.repeat)
            c["load_average"] = [before, load()]
            out["c"].append(c)
            print(f"(c) musicnn-msd, batch {c['batch']}, {threads} thread(s), median of {c['runs']}: Python "
                  f"onnxruntime {c['python_onnxruntime_ms']} ms, timbre onnx plugin {c['timbre_plugin_ms']} ms -> "
                  f"timbre/python {c['ratio_timbre_over_python']}x (load {before} -> {load()})", flush=True)
    if not args.only or "d" in args.only:
        before = load()
        d = part_d(args.timbred, clips[:args.tracks], args.repeats)
        d["load_average"] = [before, load()]
        out["d"] = d
        print(f"(d) analysis with {', '.join(d['models'])}: {d['cpu_s_per_track']} CPU s per 30 s track -> "
              f"{d['tracks_per_s_per_core']} tracks/s/core (median of {d['repeats']}, range "
              f"{d['cpu_s_per_track_range']} s; load {before} -> {load()})", flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
