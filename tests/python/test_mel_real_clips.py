"""Parity of `timbred features --plugin mel` with librosa on real music clips.

The Rust mel plugin must match

    librosa.power_to_db(librosa.feature.melspectrogram(
        y=y, sr=22050, n_fft=2048, hop_length=512, n_mels=128))

within 0.05 dB on every element, with y read by soundfile as float64 (no
resampling: only clips stored at 22050 Hz are used).  The difference against
librosa fed float32 input (`librosa.load(path, sr=None)`, the way most users
call librosa) is measured and printed, not asserted.

Needs TIMBRED (the binary) and the GTZAN pool; skipped, saying which is
missing, otherwise.  See conftest.py.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf


SR = 22050
N_FFT = 2048
HOP = 512
N_MELS = 128
TOLERANCE_DB = 0.05
N_EXTRA_CLIPS = 2  # on top of one clip per genre
LONG_CLIP_S = 29.5  # "30 s" clips
DATA_DIR = Path(__file__).resolve().parents[1] / "data"


@dataclass(frozen=True)
class Clip:
    path: Path
    genre: str
    duration_s: float
    sample_rate: int
    channels: int

    @property
    def rel(self) -> str:
        return f"{self.genre}/{self.path.name}"


def read_manifest(pool: Path) -> list[Clip]:
    with open(pool / "MANIFEST.tsv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    need = {"path", "genre", "duration_s", "sample_rate", "channels"}
    if not rows or not need <= set(rows[0]):
        pytest.fail(f"{pool / 'MANIFEST.tsv'}: expected columns {sorted(need)}, got {sorted(rows[0]) if rows else 'no rows'}")
    return [
        Clip(pool / r["path"], r["genre"], float(r["duration_s"]), int(r["sample_rate"]), int(r["channels"]))
        for r in rows
    ]


def _stable_key(clip: Clip) -> str:
    # Deterministic, but not simply "the first file of each genre".
    return hashlib.sha256(clip.rel.encode()).hexdigest()


def select_clips(clips: list[Clip], report) -> list[Clip]:
    """One 22050 Hz mono clip per genre, plus the longest and the shortest remaining."""
    not_mono = [c for c in clips if c.channels != 1]
    if not_mono:
        report(f"mel parity: {len(not_mono)} clip(s) in the pool are not mono and were left out: "
               + ", ".join(f"{c.rel} ({c.channels} ch)" for c in not_mono))
    eligible = sorted(
        (c for c in clips if c.sample_rate == SR and c.channels == 1 and c.path.is_file()),
        key=_stable_key,
    )
    chosen: list[Clip] = []
    for genre in sorted({c.genre for c in clips}):
        of_genre = [c for c in eligible if c.genre == genre]
        if of_genre:
            chosen.append(of_genre[0])
        else:
            report(f"mel parity: genre {genre} has no {SR} Hz mono clip; not covered")
    rest = [c for c in eligible if c not in chosen]
    extras = []
    if rest:
        extras.append(max(rest, key=lambda c: (c.duration_s, _stable_key(c))))  # longest
        extras.append(min(rest, key=lambda c: (c.duration_s, _stable_key(c))))  # shortest
    for c in extras[:N_EXTRA_CLIPS]:
        if c not in chosen:
            chosen.append(c)
    return chosen


def librosa_reference_f64(path: Path, rate: int = SR) -> np.ndarray:
    y, sr = sf.read(path, dtype="float64")
    if y.ndim != 1:
        raise AssertionError(f"{path}: not mono (soundfile shape {y.shape}); the reference needs a mono clip")
    if sr != rate:
        raise AssertionError(f"{path}: sample rate {sr} Hz, expected {rate} Hz (no resampling in this test)")
    return librosa.power_to_db(
        librosa.feature.melspectrogram(y=y, sr=rate, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS)
    )


def librosa_reference_f32(path: Path, rate: int = SR) -> np.ndarray:
    y, sr = librosa.load(path, sr=None)
    assert y.dtype == np.float32 and sr == rate
    return librosa.power_to_db(
        librosa.feature.melspectrogram(y=y, sr=rate, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS)
    )


def load_output(out_dir: Path, src: Path) -> np.ndarray:
    npy = out_dir / f"{src.stem}.npy"
    assert npy.is_file(), f"{npy} was not written for {src}; files in {out_dir}: {sorted(p.name for p in out_dir.iterdir())}"
    mel = np.load(npy)
    assert mel.dtype == np.float32, f"{npy}: dtype {mel.dtype}, expected float32"
    assert mel.ndim == 2, f"{npy}: shape {mel.shape}, expected [n_mels, frames]"
    return mel


def compare_clips(clips: list[Clip], run_features, out_dir: Path, report, rate: int = SR) -> None:
    """Both sides at `rate`, the clips' own sample rate: timbred is told it with --set, so nothing is resampled."""
    assert len({c.path.stem for c in clips}) == len(clips), "selected clips must have distinct file stems"
    run = run_features([c.path for c in clips], out_dir, extra_args=["--set", f"sample_rate={rate}"])
    assert run.returncode == 0, f"timbred features failed on valid clips\n{run.describe()}"

    failures = []
    worst = (-1.0, "")
    worst32 = (-1.0, "")
    report(f"mel parity vs librosa {librosa.__version__} (tolerance {TOLERANCE_DB} dB), {len(clips)} clips:")
    report(f"  {'clip':<32} {'dur s':>6} {'shape':>10} {'max|d| f64':>11} {'mean|d|':>9} {'max|d| f32':>11}")
    for clip in clips:
        ours = load_output(out_dir, clip.path)
        ref = librosa_reference_f64(clip.path, rate)
        if ours.shape != ref.shape:
            failures.append(f"{clip.rel}: shape {ours.shape}, librosa {ref.shape}")
            report(f"  {clip.rel:<32} {clip.duration_s:6.2f} shape {ours.shape} != librosa {ref.shape}")
            continue
        if not np.all(np.isfinite(ours)):
            failures.append(f"{clip.rel}: {np.count_nonzero(~np.isfinite(ours))} non-finite values")
            continue
        diff = np.abs(ours.astype(np.float64) - ref)
        max_diff = float(diff.max())
        i, j = np.unravel_index(int(diff.argmax()), diff.shape)
        ref32 = librosa_reference_f32(clip.path, rate)
        max_diff32 = float(np.abs(ours.astype(np.float64) - ref32).max())
        report(
            f"  {clip.rel:<32} {clip.duration_s:6.2f} {str(ours.shape[0]) + 'x' + str(ours.shape[1]):>10} "
            f"{max_diff:11.6f} {diff.mean():9.6f} {max_diff32:11.6f}"
        )
        worst = max(worst, (max_diff, clip.rel))
        worst32 = max(worst32, (max_diff32, clip.rel))
        if max_diff > TOLERANCE_DB:
            failures.append(
                f"{clip.rel}: max |diff| {max_diff:.4f} dB > {TOLERANCE_DB} dB at mel bin {i}, frame {j} "
                f"(timbre {ours[i, j]:.3f} dB, librosa {ref[i, j]:.3f} dB); "
                f"{np.count_nonzero(diff > TOLERANCE_DB)} of {diff.size} values over"
            )
    report(f"  worst vs librosa float64 input: {worst[0]:.6f} dB ({worst[1]})")
    report(f"  worst vs librosa float32 input (librosa.load, not asserted): {worst32[0]:.6f} dB ({worst32[1]})")
    assert not failures, "timbre's mel differs from librosa:\n  " + "\n  ".join(failures)


def test_mel_matches_librosa_on_real_clips(timbred_and_pool, run_features, tmp_path, report):
    _, gtzan_pool = timbred_and_pool
    clips = select_clips(read_manifest(gtzan_pool), report)
    if not clips:
        pytest.skip(f"no {SR} Hz mono clips listed in {gtzan_pool / 'MANIFEST.tsv'}")
    compare_clips(clips, run_features, tmp_path / "out", report)


def test_mel_matches_librosa_on_30s_clip(timbred_and_pool, run_features, tmp_path, report):
    _, gtzan_pool = timbred_and_pool
    clips = read_manifest(gtzan_pool)
    # The pool's 30 s clips are 16 kHz: compare them at their own rate rather than resample.
    long_ones = sorted((c for c in clips if c.duration_s >= LONG_CLIP_S and c.channels == 1), key=_stable_key)
    if not long_ones:
        pytest.skip(f"no mono 30 s clip in {gtzan_pool}")
    clip = long_ones[0]
    compare_clips([clip], run_features, tmp_path / "out", report, rate=clip.sample_rate)


def test_features_reports_bad_files_and_still_writes_good_ones(run_features, tmp_path, report):
    good_src = DATA_DIR / "sample.flac"
    if not good_src.is_file():
        pytest.skip(f"{good_src} is missing; generate it with tests/data/make_sample.py")
    inputs = tmp_path / "in"
    inputs.mkdir()
    good = inputs / "good_clip.flac"
    good.write_bytes(good_src.read_bytes())
    not_audio = inputs / "notes_not_audio.mp3"
    not_audio.write_text("This is a plain text file with an .mp3 extension, not audio.\n" * 20)
    empty = inputs / "empty_file.wav"
    empty.write_bytes(b"")

    out_dir = tmp_path / "out"
    # A bad file first, so the good one is only processed if the command goes on after an error.
    run = run_features([not_audio, good, empty], out_dir)

    assert run.returncode != 0, f"expected a non-zero exit status when some inputs are bad\n{run.describe()}"
    for bad in (not_audio, empty):
        assert bad.name in run.stderr, f"stderr does not name the bad input {bad.name}\n{run.describe()}"
        assert not (out_dir / f"{bad.stem}.npy").exists(), f"an output was written for the bad input {bad.name}"

    mel = load_output(out_dir, good)
    y, sr = sf.read(good, dtype="float64")
    assert sr == SR and y.ndim == 1, f"{good_src}: expected {SR} Hz mono, got {sr} Hz, shape {y.shape}"
    ref = librosa_reference_f64(good)
    assert mel.shape == ref.shape, f"{good.name}: shape {mel.shape}, librosa {ref.shape}"
    max_diff = float(np.abs(mel.astype(np.float64) - ref).max())
    report(f"bad-input run: exit status {run.returncode}; good clip written, max |diff| vs librosa {max_diff:.6f} dB")
    report("  stderr: " + " | ".join(line for line in run.stderr.strip().splitlines()[-6:]))
    assert max_diff <= TOLERANCE_DB, f"{good.name}: max |diff| {max_diff:.4f} dB > {TOLERANCE_DB} dB"


# musicnn's front end (plugins/models/musicnn-msd/model.toml), on the pool's 16 kHz 30 s clips.
MUSICNN_SET = [
    "sample_rate=16000", "n_fft=512", "hop_length=256", "n_mels=96",
    "compression=log10_1p", "compression_c=10000", "layout=time_major",
]
MUSICNN_TOLERANCE = 1e-3


@pytest.mark.parametrize("pad_mode", ["constant", "reflect"])
def test_mel_musicnn_front_end_matches_librosa_on_real_clips(timbred_and_pool, run_features, tmp_path, report, pad_mode):
    """np.log10(10000 * librosa.feature.melspectrogram(y, sr=16000, n_fft=512, hop_length=256,
    n_mels=96) + 1), time-major, within 1e-3 on whole 30 s clips: with librosa's current zero
    padding and with the reflect padding of the librosa musicnn ran on (the model's setting)."""
    _, pool = timbred_and_pool
    clips = read_manifest(pool)
    chosen = []
    for genre in ("metal", "classical", "hiphop", "jazz"):
        of_genre = sorted((c for c in clips if c.genre == genre and c.sample_rate == 16000
                           and c.channels == 1 and c.duration_s >= LONG_CLIP_S), key=_stable_key)
        chosen.extend(of_genre[:1])
    if not chosen:
        pytest.skip(f"no 16 kHz mono 30 s clip in {pool}")
    out_dir = tmp_path / "out"
    extra = [arg for kv in MUSICNN_SET + [f"pad_mode={pad_mode}"] for arg in ("--set", kv)]
    run = run_features([c.path for c in chosen], out_dir, extra_args=extra)
    assert run.returncode == 0, f"timbred features failed\n{run.describe()}"
    worst = 0.0
    for clip in chosen:
        ours = load_output(out_dir, clip.path)
        y, sr = sf.read(clip.path, dtype="float64")
        ref = np.log10(10000 * librosa.feature.melspectrogram(
            y=y, sr=16000, n_fft=512, hop_length=256, n_mels=96, pad_mode=pad_mode) + 1).T
        assert ours.shape == ref.shape, f"{clip.rel}: shape {ours.shape}, librosa (time-major) {ref.shape}"
        diff = float(np.abs(ours.astype(np.float64) - ref).max())
        worst = max(worst, diff)
        report(f"musicnn front end ({pad_mode}) {clip.rel}: {ours.shape[0]}x{ours.shape[1]}, max |diff| {diff:.2e}")
        assert diff <= MUSICNN_TOLERANCE, f"{clip.rel}: max |diff| {diff} > {MUSICNN_TOLERANCE}"
    report(f"musicnn front end ({pad_mode}): worst max |diff| {worst:.2e} over {len(chosen)} clips")
