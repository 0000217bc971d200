#!/usr/bin/env python3
"""Log-mel extraction: timbre against librosa, in one run, as ratios.

(a) one 30 s clip, single-threaded on both sides: the same float32 signal, the
    transform only (librosa.power_to_db(librosa.feature.melspectrogram(...)) vs
    timbre's mel plugin code), best of N repeats each.
(b) decode + log-mel of a folder of real clips, each tool as a user would run it:
    `timbred features --out DIR FILES...` (all cores) against a Python loop of
    librosa.load(sr=22050) + melspectrogram + power_to_db + np.save.

Run it through bench/run (which builds and sets paths); see bench/README.md.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def single_thread_env():
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[var] = "1"
    return env


def librosa_transform_seconds(signal_path, repeat):
    """Time librosa in a child process pinned to one thread (BLAS reads the env at import)."""
    code = f"""
import json, time, numpy as np, librosa
y = np.load({str(signal_path)!r})
f = lambda: librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=22050, n_fft=2048, hop_length=512, n_mels=128))
f()  # warm-up: numba and FFT plans
out = []
for _ in range({repeat}):
    t = time.perf_counter(); f(); out.append(time.perf_counter() - t)
print(json.dumps(out))
"""
    result = subprocess.run([sys.executable, "-c", code], env=single_thread_env(), capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def part_a(pool, bench_bin, repeat):
    import librosa
    import numpy as np

    clips = sorted(p for p in pool.rglob("*.flac") if librosa.get_duration(path=p) >= 29.9)
    if not clips:
        sys.exit(f"no 30 s clip in {pool}")
    clip = clips[0]
    y, _ = librosa.load(clip, sr=22050)
    y = y[: 30 * 22050].astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        signal = Path(tmp) / "signal.npy"
        np.save(signal, y)
        py = librosa_transform_seconds(signal, repeat)
        rust = json.loads(subprocess.run([bench_bin, "mel", str(signal), "--repeat", str(repeat)],
                                         env=single_thread_env(), capture_output=True, text=True, check=True).stdout)
    best_py, best_rust = min(py), min(rust["seconds"])
    return {
        "clip": str(clip.relative_to(pool)),
        "seconds_of_audio": len(y) / 22050,
        "librosa_best_ms": round(best_py * 1e3, 2),
        "timbre_best_ms": round(best_rust * 1e3, 2),
        "speedup": round(best_py / best_rust, 1),
    }


def part_b(pool, timbred, limit):
    clips = sorted(pool.rglob("*.flac"))[:limit] if limit else sorted(pool.rglob("*.flac"))
    with tempfile.TemporaryDirectory() as tmp:
        out_rust = Path(tmp) / "rust"
        t = time.perf_counter()
        subprocess.run([timbred, "features", "--out", str(out_rust), *map(str, clips)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        rust_s = time.perf_counter() - t

        out_py = Path(tmp) / "py"
        out_py.mkdir()
        code = f"""
import sys, time, numpy as np, librosa
from pathlib import Path
t = time.perf_counter()
for f in sys.argv[1:]:
    y, sr = librosa.load(f, sr=22050)
    S = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=sr, n_fft=2048, hop_length=512, n_mels=128))
    np.save(Path({str(out_py)!r}) / (Path(f).stem + ".npy"), S)
print(time.perf_counter() - t)
"""
        # Start-up (imports) is excluded from librosa's time, in its favour.
        py_s = float(subprocess.run([sys.executable, "-c", code, *map(str, clips)], capture_output=True, text=True,
                                    check=True).stdout)
    return {
        "clips": len(clips),
        "cores": os.cpu_count(),
        "librosa_s": round(py_s, 2),
        "timbred_s": round(rust_s, 2),
        "speedup": round(py_s / rust_s, 1),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pool", type=Path, default=Path(__file__).resolve().parents[1] / "../shared/data/gtzan-pool")
    parser.add_argument("--timbred", required=True)
    parser.add_argument("--bench-bin", required=True)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--limit", type=int, default=0, help="use only the first N clips in (b)")
    args = parser.parse_args()
    if not (args.pool / "MANIFEST.tsv").is_file():
        sys.exit(f"the GTZAN pool is not at {args.pool}; pass --pool")
    a = part_a(args.pool, args.bench_bin, args.repeat)
    print(f"(a) one {a['seconds_of_audio']:.0f} s clip, one thread: librosa {a['librosa_best_ms']} ms, "
          f"timbre {a['timbre_best_ms']} ms -> {a['speedup']}x", flush=True)
    b = part_b(args.pool, args.timbred, args.limit)
    print(f"(b) decode + log-mel of {b['clips']} clips, as users run them ({b['cores']} cores): "
          f"librosa {b['librosa_s']} s, timbred {b['timbred_s']} s -> {b['speedup']}x", flush=True)
    print(json.dumps({"a": a, "b": b}))


if __name__ == "__main__":
    main()
