#!/usr/bin/env python3
"""Synthesise tests/data/sample.flac, the bundled clip for the README quick start.

4 s, 22050 Hz, mono, 16-bit FLAC: a sustained C major chord (with a few
harmonics and a slow tremolo) over a simple 120 BPM drum-like pattern of
noise bursts (kick on beats 1 and 3, snare on 2 and 4, hi-hat on eighths).
Seeded, so re-running reproduces the same samples.

    "$(scripts/python-env)/bin/python" tests/data/make_sample.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 22050
SECONDS = 4.0
SEED = 20240611
OUT = Path(__file__).resolve().parent / "sample.flac"


def chord(t: np.ndarray) -> np.ndarray:
    # C4, E4, G4, C5 with three harmonics each.
    y = np.zeros_like(t)
    for i, f0 in enumerate((261.63, 329.63, 392.00, 523.25)):
        for k, amp in enumerate((1.0, 0.4, 0.15), start=1):
            y += amp * np.sin(2 * np.pi * f0 * k * t + 0.7 * i + 0.2 * k)
    y *= 1.0 + 0.15 * np.sin(2 * np.pi * 4.0 * t)  # gentle tremolo
    # Fade in/out over 20 ms to avoid clicks at the edges.
    fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.02)
    return y * fade / np.max(np.abs(y))


def drums(n: int, rng: np.random.Generator) -> np.ndarray:
    y = np.zeros(n)
    beat = int(0.5 * SR)  # 120 BPM
    for start in range(0, n, beat // 2):
        idx = start // (beat // 2)  # eighth-note index
        if idx % 4 == 0:  # kick: decaying low sine sweep plus a little noise
            length = int(0.25 * SR)
            tt = np.arange(length) / SR
            freq = 45.0 + 80.0 * np.exp(-tt * 30.0)
            phase = 2 * np.pi * np.cumsum(freq) / SR
            hit = (np.sin(phase) + 0.1 * rng.standard_normal(length)) * np.exp(-tt * 14.0)
            gain = 0.9
        elif idx % 4 == 2:  # snare: broadband noise burst
            length = int(0.18 * SR)
            tt = np.arange(length) / SR
            hit = rng.standard_normal(length) * np.exp(-tt * 25.0)
            gain = 0.35
        else:  # hi-hat: short high-passed noise burst
            length = int(0.05 * SR)
            tt = np.arange(length) / SR
            noise = rng.standard_normal(length + 1)
            hit = np.diff(noise) * np.exp(-tt * 80.0)  # first difference = crude high-pass
            gain = 0.12
        end = min(n, start + length)
        y[start:end] += gain * hit[: end - start]
    return y


def main() -> int:
    rng = np.random.default_rng(SEED)
    n = int(SECONDS * SR)
    t = np.arange(n) / SR
    y = 0.45 * chord(t) + 0.5 * drums(n, rng)
    y *= 0.8 / np.max(np.abs(y))  # peak at -1.9 dBFS
    # Quantise to 16-bit ourselves so the result does not depend on the encoder's rounding.
    pcm = np.round(y * 32767.0).astype(np.int16)
    sf.write(OUT, pcm, SR, format="FLAC", subtype="PCM_16")

    info = sf.info(OUT)
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (SR, 1, n, "PCM_16"), info
    back, _ = sf.read(OUT, dtype="int16")
    assert np.array_equal(back, pcm), "FLAC round trip is not lossless"
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {info.duration:.2f} s, {SR} Hz mono PCM_16)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
