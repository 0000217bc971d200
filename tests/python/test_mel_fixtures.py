"""Self-checks of the log-mel fixtures in tests/data/mel/ (no timbred needed).

1. The stored references are what the pinned librosa computes from the stored
   inputs with the parameters in cases.json (catches stale fixtures).
2. A from-scratch numpy implementation that follows only the conventions
   written in cases.json reproduces them (so the Rust plugin can be written
   from that description alone).
"""

from __future__ import annotations

import json
from pathlib import Path

import librosa
import numpy as np
import pytest

MEL_DIR = Path(__file__).resolve().parents[1] / "data" / "mel"
PARAM_KEYS = [
    "sample_rate", "n_fft", "hop_length", "win_length", "center", "power", "n_mels",
    "fmin", "fmax", "htk", "norm", "to_db", "ref", "amin", "top_db",
    "pad_mode", "compression", "compression_c", "frames", "layout",
]


def load_cases() -> list[dict]:
    path = MEL_DIR / "cases.json"
    if not path.is_file():
        return []
    return json.loads(path.read_text(encoding="utf-8"))["cases"]


CASES = load_cases()


def test_cases_json_is_complete():
    assert CASES, f"{MEL_DIR / 'cases.json'} is missing or empty; run tests/data/make_mel_fixtures.py"
    doc = json.loads((MEL_DIR / "cases.json").read_text(encoding="utf-8"))
    assert doc["librosa_version"] and doc["numpy_version"]
    total = sum(p.stat().st_size for p in MEL_DIR.iterdir() if p.is_file())
    assert total < 1 << 20, f"fixtures take {total} bytes, over 1 MiB"
    for case in CASES:
        assert list(case["params"]) == PARAM_KEYS, case["name"]
        assert case["sample_rate"] == case["params"]["sample_rate"]
        assert case["params"]["norm"] in ("slaney", None)
        y = np.load(MEL_DIR / case["input"])
        mel = np.load(MEL_DIR / case["expected"])
        assert y.dtype == np.float32 and y.ndim == 1 and len(y) == case["n_samples"]
        assert mel.dtype == np.float32 and list(mel.shape) == case["shape"]
        mel_axis = 1 if case["params"]["layout"] == "time_major" else 0
        assert mel.shape[mel_axis] == case["params"]["n_mels"]


def _librosa_log_mel(y32: np.ndarray, p: dict) -> np.ndarray:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        S = librosa.feature.melspectrogram(
            y=y32.astype(np.float64), sr=p["sample_rate"], n_fft=p["n_fft"], hop_length=p["hop_length"],
            win_length=p["win_length"], center=p["center"], power=p["power"], n_mels=p["n_mels"],
            fmin=p["fmin"], fmax=p["fmax"], htk=p["htk"], norm=p["norm"], pad_mode=p["pad_mode"],
        )
    if p["frames"] is not None:
        S = S[:, : p["frames"]]
    if p["to_db"] and p["compression"] == "log10_1p":
        S = np.log10(p["compression_c"] * S + 1)
    elif p["to_db"]:
        S = librosa.power_to_db(S, ref=p["ref"], amin=p["amin"], top_db=p["top_db"])
    return S.T if p["layout"] == "time_major" else S


# ---- independent implementation, from the conventions in cases.json only ----

def _hz_to_mel(f, htk):
    f = np.asarray(f, dtype=np.float64)
    if htk:
        return 2595.0 * np.log10(1.0 + f / 700.0)
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-12) / min_log_hz) / logstep, f / f_sp)


def _mel_to_hz(m, htk):
    m = np.asarray(m, dtype=np.float64)
    if htk:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def _mel_filterbank(sr, n_fft, n_mels, fmin, fmax, htk, norm):
    fmax = sr / 2.0 if fmax is None else fmax
    fft_freqs = np.linspace(0.0, sr / 2.0, 1 + n_fft // 2)
    hz = _mel_to_hz(np.linspace(_hz_to_mel(fmin, htk), _hz_to_mel(fmax, htk), n_mels + 2), htk)
    fdiff = np.diff(hz)
    ramps = hz[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    if norm == "slaney":
        weights *= (2.0 / (hz[2:] - hz[:-2]))[:, None]
    return weights


def _numpy_log_mel(y32: np.ndarray, p: dict) -> np.ndarray:
    n_fft, hop = p["n_fft"], p["hop_length"]
    win_length = n_fft if p["win_length"] is None else p["win_length"]
    y = y32.astype(np.float64)
    if p["center"]:
        y = np.pad(y, n_fft // 2, mode=p["pad_mode"])
    n = np.arange(win_length)
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / win_length)  # periodic Hann
    left = (n_fft - win_length) // 2
    window = np.pad(window, (left, n_fft - win_length - left))
    n_frames = 1 + (len(y) - n_fft) // hop
    frames = np.stack([y[i * hop: i * hop + n_fft] for i in range(n_frames)], axis=1)
    spec = np.abs(np.fft.rfft(frames * window[:, None], axis=0)) ** p["power"]
    fb = _mel_filterbank(p["sample_rate"], n_fft, p["n_mels"], p["fmin"], p["fmax"], p["htk"], p["norm"])
    S = fb @ spec
    if p["frames"] is not None:
        S = S[:, : p["frames"]]
    if not p["to_db"]:
        return S
    if p["compression"] == "log10_1p":
        out = np.log1p(p["compression_c"] * S) / np.log(10.0)
    else:
        out = 10.0 * np.log10(np.maximum(S, p["amin"])) - 10.0 * np.log10(max(p["ref"], p["amin"]))
        if p["top_db"] is not None:
            out = np.maximum(out, out.max() - p["top_db"])
    return out.T if p["layout"] == "time_major" else out


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_fixture_matches_pinned_librosa(case):
    y = np.load(MEL_DIR / case["input"])
    expected = np.load(MEL_DIR / case["expected"])
    got = _librosa_log_mel(y, case["params"]).astype(np.float32)
    assert got.shape == expected.shape
    # Same library, same input: only float32 rounding of the stored file may differ.
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_fixture_matches_independent_numpy_implementation(case):
    y = np.load(MEL_DIR / case["input"])
    expected = np.load(MEL_DIR / case["expected"]).astype(np.float64)
    got = _numpy_log_mel(y, case["params"])
    assert got.shape == expected.shape
    max_diff = float(np.abs(got - expected).max())
    assert max_diff <= 1e-3, f"{case['name']}: max |diff| {max_diff:.6f} dB"
