#!/usr/bin/env python3
"""Peak resident memory of `timbred analyze` on the same audio at awkward sample rates.

rubato's resampler sizes its tables by the reduced ratio of the two rates, so a prime rate
such as 767999 Hz would ask for far more memory than 44100 Hz does; timbred approximates
such ratios (daemon/src/pipeline/resample.rs). This measures the peak RSS of `timbred analyze
--jobs 1` on one clip written at each rate, against the same clip at 44100 Hz, run in the
same invocation, in alternating order. The models' own memory (about 80 MiB) dominates that
peak, so `timbred features` (decode, resample, log-mel; no model) is measured the same way,
where the resampler's share is larger.

The clip: `--seconds` of a real 30 s GTZAN clip (16 kHz), converted to each rate with soxr
(high quality) and written as 16-bit mono WAV in a temporary directory.
"""
import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from memory import peak_rss_mib

BASELINE = 44100
RATES = [44100, 22050, 48000, 192000, 44101, 1009, 767999, 768000]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--timbred", required=True)
    parser.add_argument("--pool", default=str(Path(__file__).resolve().parents[2] / "shared/data/gtzan-pool"))
    parser.add_argument("--clip", default="blues/blues.00016.flac", help="a file of the pool")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rates", type=lambda s: [int(r) for r in s.split(",")], default=RATES)
    args = parser.parse_args()
    rates = [BASELINE] + [r for r in args.rates if r != BASELINE]

    audio, rate = sf.read(Path(args.pool) / args.clip, dtype="float32", always_2d=False)
    audio = audio[: int(args.seconds * rate)]
    commands = {
        "analyze": lambda path, out: [args.timbred, "analyze", "--jobs", "1", str(path)],
        "features": lambda path, out: [args.timbred, "features", "--jobs", "1", "--out", str(out), str(path)],
    }
    peaks = {(c, r): [] for c in commands for r in rates}
    walls = {(c, r): [] for c in commands for r in rates}
    sizes = {}
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for r in rates:
            converted = audio if r == rate else soxr.resample(audio, rate, r, quality="HQ")
            files[r] = Path(tmp) / f"clip-{r}.wav"
            sf.write(files[r], np.clip(converted, -1, 1), r, subtype="PCM_16")
            sizes[r] = files[r].stat().st_size
        for repeat in range(args.repeats):
            # Alternate the order, so a drift in background load favours no rate.
            for r in rates if repeat % 2 == 0 else reversed(rates):
                for name, command in commands.items():
                    start = time.perf_counter()
                    peaks[name, r].append(peak_rss_mib(command(files[r], Path(tmp) / "features")))
                    walls[name, r].append(time.perf_counter() - start)

    floor = peak_rss_mib(["/bin/true"])
    print(f"{args.seconds:g} s of {args.clip}, {args.repeats} runs per rate and command (median, range); "
          f"baseline {BASELINE} Hz; `/bin/true` measures {floor:.1f} MiB the same way")
    for name in commands:
        base = statistics.median(peaks[name, BASELINE])
        print(f"\n`timbred {name} --jobs 1`\n")
        print("| rate (Hz) | WAV size | peak RSS | ÷ 44100 Hz | wall time |")
        print("| --- | --- | --- | --- | --- |")
        for r in rates:
            runs = peaks[name, r]
            median = statistics.median(runs)
            print(f"| {r} | {sizes[r] / 2**20:.1f} MiB | {median:.1f} MiB ({min(runs):.1f}–{max(runs):.1f}) "
                  f"| **{median / base:.2f}** | {statistics.median(walls[name, r]):.2f} s |")


if __name__ == "__main__":
    main()
