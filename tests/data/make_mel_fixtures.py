#!/usr/bin/env python3
"""Generate the log-mel reference fixtures in tests/data/mel/.

Run from anywhere, inside the project venv:

    "$(scripts/python-env)/bin/python" tests/data/make_mel_fixtures.py

For every case it writes

    <name>.input.npy   float32, 1-D: the input signal
    <name>.mel.npy     float32, [n_mels, frames]: librosa's log-mel of that
                       input, computed in float64 from the float32 samples

and `cases.json`, which lists every case with its full parameter set and the
librosa / numpy versions used.  Everything is deterministic (fixed seeds, no
timestamps): re-running the script reproduces the same files.

The reference for each case is

    S = librosa.feature.melspectrogram(
            y=y.astype(np.float64), sr=sample_rate, n_fft=n_fft,
            hop_length=hop_length, win_length=win_length, center=center,
            power=power, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk,
            norm=norm)
    mel = librosa.power_to_db(S, ref=ref, amin=amin, top_db=top_db)

i.e. power_to_db (10*log10) is applied to the mel output whatever `power` is;
with compression = "log10_1p" it is instead `np.log10(compression_c * S + 1)`
(musicnn's front end).  `pad_mode` goes to librosa's STFT; `frames` keeps the
first `frames` frames; layout "time_major" stores the matrix transposed,
[frames, n_mels].
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import librosa
import numpy as np
import scipy
import scipy.signal

OUT_DIR = Path(__file__).resolve().parent / "mel"
MAX_TOTAL_BYTES = 1 << 20  # keep the fixture directory under 1 MiB

# Parameter set shared by every case unless a case overrides it.  The keys
# are exactly those documented for cases.json.
DEFAULT_PARAMS = {
    "sample_rate": 22050,
    "n_fft": 2048,
    "hop_length": 512,
    "win_length": None,  # null = n_fft
    "center": True,
    "power": 2.0,
    "n_mels": 128,
    "fmin": 0.0,
    "fmax": None,  # null = sample_rate / 2
    "htk": False,
    "norm": "slaney",  # "slaney" or null
    "to_db": True,
    "ref": 1.0,
    "amin": 1e-10,
    "top_db": 80.0,
    "pad_mode": "constant",  # or "reflect" (librosa < 0.10's default)
    "compression": "power_to_db",  # or "log10_1p": log10(1 + compression_c * S)
    "compression_c": 10000.0,
    "frames": None,  # null = every frame; else the first `frames`
    "layout": "mel_major",  # or "time_major": stored as [frames, n_mels]
}

# musicnn's front end (plugins/models/musicnn-msd/model.toml).
MUSICNN_PARAMS = {
    "sample_rate": 16000,
    "n_fft": 512,
    "hop_length": 256,
    "n_mels": 96,
    "pad_mode": "reflect",
    "compression": "log10_1p",
    "compression_c": 10000.0,
}

PARAM_KEYS = list(DEFAULT_PARAMS)


# --------------------------------------------------------------------------
# Input signals (float32, 1-D).  All deterministic.
# --------------------------------------------------------------------------

def _t(seconds: float, sr: int) -> np.ndarray:
    return np.arange(int(round(seconds * sr)), dtype=np.float64) / sr


def tone_with_harmonics(seconds: float, sr: int, f0: float = 440.0) -> np.ndarray:
    t = _t(seconds, sr)
    y = np.zeros_like(t)
    # 440 Hz fundamental plus three harmonics with decreasing amplitude.
    for k, amp in enumerate((0.5, 0.25, 0.125, 0.0625), start=1):
        y += amp * np.sin(2.0 * np.pi * f0 * k * t + 0.3 * k)
    return y.astype(np.float32)


def white_noise(seconds: float, sr: int, seed: int, amplitude: float = 0.1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sr))
    return (amplitude * rng.uniform(-1.0, 1.0, n)).astype(np.float32)


def linear_chirp(seconds: float, sr: int, f0: float, f1: float) -> np.ndarray:
    t = _t(seconds, sr)
    y = 0.5 * scipy.signal.chirp(t, f0=f0, t1=seconds, f1=f1, method="linear")
    return y.astype(np.float32)


def short_signal(n: int, sr: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n, dtype=np.float64) / sr
    y = 0.3 * np.sin(2.0 * np.pi * 1000.0 * t) + 0.05 * rng.standard_normal(n)
    return y.astype(np.float32)


def silence_in_middle(sr: int) -> np.ndarray:
    # 0.4 s tone, 0.4 s of exact digital silence, 0.4 s tone.  The silent
    # frames have zero power: without the top_db floor they would sit at
    # 10*log10(amin) = -100 dB; with it they are clamped to max - 80 dB.
    tone = tone_with_harmonics(0.4, sr, f0=330.0)
    return np.concatenate([tone, np.zeros(int(0.4 * sr), dtype=np.float32), tone])


def build_cases() -> list[dict]:
    """Each case: name, description, input signal, parameter overrides."""
    return [
        dict(
            name="tone440",
            description="1 s, 440 Hz + 3 harmonics, 22050 Hz, default parameters",
            y=tone_with_harmonics(1.0, 22050),
            params={},
        ),
        dict(
            name="noise",
            description="0.5 s uniform white noise in [-0.1, 0.1] (seed 1234), 22050 Hz",
            y=white_noise(0.5, 22050, seed=1234, amplitude=0.1),
            params={},
        ),
        dict(
            name="chirp",
            description="0.75 s linear chirp 100 -> 8000 Hz, amplitude 0.5, 22050 Hz",
            y=linear_chirp(0.75, 22050, 100.0, 8000.0),
            params={},
        ),
        dict(
            name="short1500",
            description="1500 samples (shorter than n_fft=2048: exercises centre padding), "
            "1 kHz tone + noise (seed 99), 22050 Hz",
            y=short_signal(1500, 22050, seed=99),
            params={},
        ),
        dict(
            name="tone16k",
            description="0.5 s, 440 Hz + 3 harmonics at a non-default sample rate 16000 Hz, n_mels=64",
            y=tone_with_harmonics(0.5, 16000),
            params={"sample_rate": 16000, "n_mels": 64},
        ),
        dict(
            name="silence_middle",
            description="0.4 s tone, 0.4 s digital silence, 0.4 s tone, 22050 Hz: "
            "exercises the amin / top_db floor",
            y=silence_in_middle(22050),
            params={},
        ),
        dict(
            name="chirp_options",
            description="the 0.75 s chirp with non-default options: n_fft=1024, hop=256, "
            "n_mels=40, fmin=50, fmax=8000, htk mel scale, no filter normalisation, "
            "magnitude (power=1.0) spectrogram",
            y=linear_chirp(0.75, 22050, 100.0, 8000.0),
            params={
                "n_fft": 1024,
                "hop_length": 256,
                "n_mels": 40,
                "fmin": 50.0,
                "fmax": 8000.0,
                "htk": True,
                "norm": None,
                "power": 1.0,
            },
        ),
        dict(
            name="musicnn_tone",
            description="1 s, 440 Hz + 3 harmonics at 16000 Hz through musicnn's front end: "
            "96 bands, n_fft 512, hop 256, reflect padding, log10(1 + 10000 S), all 63 frames",
            y=tone_with_harmonics(1.0, 16000),
            params=dict(MUSICNN_PARAMS),
        ),
        dict(
            name="musicnn_noise_patch",
            description="0.75 s white noise (seed 7) at 16000 Hz, musicnn's front end, "
            "cut to the first 40 frames, time-major ([frames, n_mels])",
            y=white_noise(0.75, 16000, seed=7, amplitude=0.3),
            params={**MUSICNN_PARAMS, "frames": 40, "layout": "time_major"},
        ),
        dict(
            name="reflect_short",
            description="400 samples (shorter than n_fft 512: the reflection wraps) at 16000 Hz, "
            "reflect padding, power_to_db",
            y=short_signal(400, 16000, seed=5),
            params={"sample_rate": 16000, "n_fft": 512, "hop_length": 128, "n_mels": 32, "pad_mode": "reflect"},
        ),
    ]


def reference_log_mel(y32: np.ndarray, p: dict) -> np.ndarray:
    y = y32.astype(np.float64)
    with warnings.catch_warnings():
        # librosa warns that n_fft is larger than the short input; that case
        # is deliberate.
        warnings.simplefilter("ignore", UserWarning)
        S = librosa.feature.melspectrogram(
            y=y,
            sr=p["sample_rate"],
            n_fft=p["n_fft"],
            hop_length=p["hop_length"],
            win_length=p["win_length"],
            center=p["center"],
            power=p["power"],
            n_mels=p["n_mels"],
            fmin=p["fmin"],
            fmax=p["fmax"],
            htk=p["htk"],
            norm=p["norm"],
            pad_mode=p["pad_mode"],
        )
    assert S.dtype == np.float64, S.dtype
    if p["frames"] is not None:
        S = S[:, : p["frames"]]
    if p["to_db"] and p["compression"] == "log10_1p":
        S = np.log10(p["compression_c"] * S + 1)
    elif p["to_db"]:
        S = librosa.power_to_db(S, ref=p["ref"], amin=p["amin"], top_db=p["top_db"])
    return S.T if p["layout"] == "time_major" else S


def main() -> int:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    # Remove stale outputs of earlier runs (cases may have been renamed).
    for old in list(OUT_DIR.glob("*.npy")) + [OUT_DIR / "cases.json"]:
        if old.exists():
            old.unlink()

    listed = []
    for case in build_cases():
        params = {**DEFAULT_PARAMS, **case["params"]}
        assert list(params) == PARAM_KEYS, "unknown parameter in case " + case["name"]
        y = np.ascontiguousarray(case["y"], dtype=np.float32)
        assert y.ndim == 1 and np.all(np.isfinite(y)) and np.max(np.abs(y)) <= 1.0

        mel = reference_log_mel(y, params)
        n_frames_expected = (
            1 + len(y) // params["hop_length"]
            if params["center"]
            else 1 + (len(y) - params["n_fft"]) // params["hop_length"]
        )
        if params["frames"] is not None:
            n_frames_expected = params["frames"]
        expected_shape = (params["n_mels"], n_frames_expected)
        if params["layout"] == "time_major":
            expected_shape = expected_shape[::-1]
        assert mel.shape == expected_shape, (case["name"], mel.shape)

        input_file = f"{case['name']}.input.npy"
        mel_file = f"{case['name']}.mel.npy"
        np.save(OUT_DIR / input_file, y)
        # C order: a time-major matrix is a transpose, which np.save would store in Fortran order.
        np.save(OUT_DIR / mel_file, np.ascontiguousarray(mel, dtype=np.float32))

        listed.append(
            {
                "name": case["name"],
                "description": case["description"],
                "sample_rate": params["sample_rate"],
                "input": input_file,
                "expected": mel_file,
                "n_samples": int(len(y)),
                "shape": [int(s) for s in mel.shape],
                "params": params,
            }
        )
        print(
            f"{case['name']:>15}: {len(y):6d} samples @ {params['sample_rate']} Hz -> "
            f"mel {mel.shape[0]}x{mel.shape[1]}, range [{mel.min():.2f}, {mel.max():.2f}] dB",
            file=sys.stderr,
        )

    doc = {
        "generator": "tests/data/make_mel_fixtures.py",
        "librosa_version": librosa.__version__,
        "numpy_version": np.__version__,
        "scipy_version": scipy.__version__,
        "conventions": {
            "reference": "librosa.power_to_db(librosa.feature.melspectrogram(y=input.astype(float64), "
            "sr=sample_rate, n_fft, hop_length, win_length, center, power, n_mels, fmin, fmax, htk, norm, pad_mode), "
            "ref, amin, top_db); power_to_db is applied whatever `power` is",
            "compression": "\"power_to_db\" as above; \"log10_1p\": np.log10(compression_c * S + 1) instead "
            "(musicnn's front end; ref, amin and top_db unused)",
            "frames_option": "frames null keeps every frame; else the first `frames` frames (before power_to_db's "
            "top_db floor, which is relative to the kept frames' maximum)",
            "layout": "\"mel_major\": <name>.mel.npy is [n_mels, frames]; \"time_major\": [frames, n_mels]",
            "window": "hann, periodic (scipy.signal.get_window('hann', win_length, fftbins=True)), "
            "zero-padded to n_fft and centred when win_length < n_fft",
            "pad_mode": "with center=true the signal is padded with n_fft // 2 samples on each side: "
            "\"constant\" zeros (librosa >= 0.10 default) or \"reflect\" (numpy.pad mode reflect, "
            "librosa < 0.10 default, what musicnn was trained with)",
            "frames": "center=true: 1 + n_samples // hop_length; center=false: 1 + (n_samples - n_fft) // hop_length",
            "win_length": "null means n_fft",
            "fmax": "null means sample_rate / 2",
            "norm": "\"slaney\" divides each triangle by its bandwidth (area normalisation); null leaves peaks at 1",
            "mel_filterbank_dtype": "float32 (librosa.filters.mel default), applied to a float64 spectrogram",
            "to_db": "10*log10(max(S, amin)) - 10*log10(max(ref, amin)), then max(x, max(x) - top_db) "
            "over the whole matrix; top_db null = no floor",
            "files": "<name>.input.npy float32 1-D; <name>.mel.npy float32 [n_mels, frames] "
            "(computed in float64, rounded to float32 on save)",
        },
        "cases": listed,
    }
    with open(OUT_DIR / "cases.json", "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")

    total = sum(p.stat().st_size for p in OUT_DIR.iterdir() if p.is_file())
    print(f"wrote {len(listed)} cases to {OUT_DIR} ({total} bytes)", file=sys.stderr)
    if total >= MAX_TOTAL_BYTES:
        print(f"error: fixtures take {total} bytes, over the {MAX_TOTAL_BYTES} byte budget", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
