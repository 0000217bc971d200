#!/usr/bin/env python3
"""Classifier costs, in one run, as ratios and rates.

(a) Per-track analysis: decode -> mel -> every shipped model, for a 30 s clip, as tracks per
    second on one core (`timbred analyze --jobs 1`) and on all cores (`--jobs N`). Start-up
    (plugin and model loading) is removed by timing 1 and 1+N copies of the clip.
(b) ONNX inference through timbre's onnx plugin (the real ABI path) against Python
    onnxruntime, same model, same batch, one intra-op thread each, best of N; the outputs are
    checked to agree before the times are compared.
"""
import argparse
import json
import os
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


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pool", type=Path, default=REPO / "../shared/data/gtzan-pool")
    parser.add_argument("--timbred", required=True)
    parser.add_argument("--bench-bin", required=True)
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--batch", type=int, default=10, help="segments per batch (a 30 s track is 10)")
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    a = part_a(args.timbred, args.pool, args.copies)
    cores = [k for k in a if k.startswith("tracks_per_s")]
    print(f"(a) analysis of a 30 s clip with {', '.join(a['models'])}: " +
          ", ".join(f"{a[k]} tracks/s on {k.split('_')[3]} core(s)" for k in cores), flush=True)
    results = []
    for model_dir in sorted((REPO / "plugins/models").glob("*/model.onnx")):
        b = part_b(args.bench_bin, model_dir.parent, args.batch, args.repeat)
        results.append(b)
        print(f"(b) {b['model']}, batch {b['batch']}: Python onnxruntime {b['python_onnxruntime_ms']} ms, "
              f"timbre onnx plugin {b['timbre_plugin_ms']} ms -> {b['ratio_python_over_timbre']}x", flush=True)
    print(json.dumps({"a": a, "b": results}))


if __name__ == "__main__":
    main()
