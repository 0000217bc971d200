"""Data: the labelled audio files and their split by file (never by segment), both as
`timbred split` gives them; `timbred features` into a cache; the segments; the normalisation
statistics.

A dataset directory holds one sub-folder of audio files per label (`<label>/<file>`); the label
of a file is the name of its folder. The files, and which split each belongs to, are what
`timbred split` prints: the project has one splitter, in Rust, and the shipped
`plugins/models/split.tsv` is its output for the GTZAN pool.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import FRAMES, MEL_PARAMS, N_MELS, REPO_ROOT, SEGMENT_SECONDS

SPLITS = ("train", "val", "test")
# timbred takes its inputs on the command line; keep each call's argument list moderate.
FILES_PER_CALL = 400


def log(message: str) -> None:
    print(f"timbre_train: {message}", file=sys.stderr, flush=True)


class DataError(RuntimeError):
    """Bad or missing input data, with what to do about it."""


# --------------------------------------------------------------------------- files and labels


@dataclass(frozen=True)
class AudioFile:
    rel: str  # path relative to the data directory, with '/' separators: the track id
    label: str
    path: Path  # absolute


def list_audio_files(data_dir: Path, split: Split) -> tuple[list[AudioFile], list[str]]:
    """The audio files `timbred split` listed under data_dir/<label>/, and the sorted labels."""
    data_dir = data_dir.resolve()
    files = [AudioFile(rel, rel.split("/", 1)[0], data_dir / rel) for rel in sorted(split.assignment)]
    labels = sorted({f.label for f in files})
    if len(labels) < 2:
        raise DataError(
            f"{data_dir} needs at least two label folders holding audio files (as `timbred split` "
            f"lists them: DIR/<label>/<file>); found {len(labels)}"
        )
    return files, labels


# --------------------------------------------------------------------------- timbred


def default_timbred() -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO_ROOT / "target")
    if not target.is_absolute():
        target = REPO_ROOT / target
    return target / "release" / "timbred"


def build_timbred() -> Path:
    """`cargo build --release -p timbre-daemon -p timbre-plugin-mel` (a no-op when up to date)."""
    binary = default_timbred()
    argv = ["cargo", "build", "--release", "-p", "timbre-daemon", "-p", "timbre-plugin-mel"]
    if shutil.which("cargo") is None:
        if binary.is_file():
            log(f"cargo not found; using the existing {binary} as it is")
            return binary
        raise DataError(f"cargo not found and {binary} does not exist; install Rust or pass --timbred PATH")
    log(f"building timbred: {' '.join(argv)}")
    proc = subprocess.run(argv, cwd=REPO_ROOT, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise DataError(f"`{' '.join(argv)}` failed (exit {proc.returncode}); fix the build or pass --timbred PATH")
    if not binary.is_file():
        raise DataError(f"the build succeeded but {binary} does not exist (CARGO_TARGET_DIR?); pass --timbred PATH")
    return binary


def _stat_key(path: Path) -> list:
    try:
        st = path.stat()
    except FileNotFoundError:
        return [str(path), None, None]
    return [str(path), st.st_size, st.st_mtime_ns]


def cache_key(data_dir: Path, timbred: Path, files: list[AudioFile], segment_seconds: float | None = SEGMENT_SECONDS) -> str:
    """Features depend on the data, the timbred binary and the mel plugin it loads, and on whether
    they are cut into segments (`segment_seconds`) or whole-file (None)."""
    ident = {
        "data_dir": str(data_dir.resolve()),
        "timbred": _stat_key(timbred),
        # timbred loads the mel plugin from next to itself (after TIMBRE_PLUGIN_PATH).
        "mel_plugin": _stat_key(timbred.parent / "libtimbre_plugin_mel.so"),
        "plugin_path": os.environ.get("TIMBRE_PLUGIN_PATH", ""),
        "params": MEL_PARAMS,
        "segment_seconds": segment_seconds,
        "files": [[f.rel, *_stat_key(f.path)[1:]] for f in files],
    }
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


def default_cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or (Path.home() / ".cache")
    return Path(base) / "timbre" / "features"


def _out_dirs(files: list[AudioFile]) -> list[str]:
    """timbred writes OUT/<stem>.npy, so files sharing a stem go to different folders."""
    seen: dict[tuple[str, str], int] = {}
    dirs = []
    for f in files:
        stem = Path(f.rel).stem
        n = seen.get((f.label, stem), 0)
        seen[(f.label, stem)] = n + 1
        dirs.append(f"{f.label}/{n}")
    return dirs


@dataclass
class Extraction:
    features: dict[str, Path]  # rel -> .npy
    failures: dict[str, str]  # rel -> why
    cache_dir: Path
    from_cache: bool


def extract_features(timbred: Path, data_dir: Path, files: list[AudioFile], cache_root: Path,
                     segment_seconds: float | None = SEGMENT_SECONDS) -> Extraction:
    """Run `timbred features --segment-seconds 3` over every file, once per cache key; with
    `segment_seconds=None`, `timbred features` without it: the whole file as one [n_mels, frames]."""
    if not timbred.is_file() or not os.access(timbred, os.X_OK):
        raise DataError(f"timbred binary {timbred} is missing or not executable; build it or pass --timbred PATH")
    key = cache_key(data_dir, timbred, files, segment_seconds)
    cache_dir = cache_root / key
    index_path = cache_dir / "index.json"
    if index_path.is_file():
        index = json.loads(index_path.read_text())
        features = {rel: cache_dir / p for rel, p in index["features"].items()}
        if all(p.is_file() for p in features.values()):
            log(f"features from cache {cache_dir} ({len(features)} files, {len(index['failures'])} failed)")
            return Extraction(features, index["failures"], cache_dir, True)

    tmp = cache_root / f"{key}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    out_dirs = _out_dirs(files)
    params = [arg for k, v in MEL_PARAMS.items() for arg in ("--set", f"{k}={v}")]
    stderr_lines: list[str] = []
    groups: dict[str, list[AudioFile]] = {}
    for f, d in zip(files, out_dirs):
        groups.setdefault(d, []).append(f)
    what = "whole-file features" if segment_seconds is None else "features"
    log(f"extracting {what} of {len(files)} files with {timbred} into {cache_dir}")
    cut = [] if segment_seconds is None else ["--segment-seconds", f"{segment_seconds:g}"]
    for d, group in groups.items():
        for start in range(0, len(group), FILES_PER_CALL):
            chunk = group[start : start + FILES_PER_CALL]
            argv = [str(timbred), "features", "--plugin", "mel", *params,
                    *cut, "--out", str(tmp / d), *(str(f.path) for f in chunk)]
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace")
            stderr_lines += proc.stderr.splitlines()
            if proc.returncode not in (0, 1):  # 1: some files failed (reported on stderr); 2: bad config
                shutil.rmtree(tmp, ignore_errors=True)
                raise DataError(f"`{' '.join(argv[:12])} ...` exited with {proc.returncode}:\n{proc.stderr[-3000:]}")

    features: dict[str, str] = {}
    failures: dict[str, str] = {}
    for f, d in zip(files, out_dirs):
        npy = tmp / d / f"{Path(f.rel).stem}.npy"
        if npy.is_file():
            features[f.rel] = f"{d}/{npy.name}"
        else:
            why = [line for line in stderr_lines if str(f.path) in line]
            failures[f.rel] = " | ".join(why) or "no output written (see timbred's stderr)"
    for rel, why in failures.items():
        log(f"warning: skipping {rel}: {why}")
    if not features:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DataError("timbred produced no features at all:\n" + "\n".join(stderr_lines[-20:]))
    (tmp / "index.json").write_text(json.dumps({"features": features, "failures": failures}, indent=1))
    shutil.rmtree(cache_dir, ignore_errors=True)
    try:
        tmp.rename(cache_dir)
    except OSError:  # another run filled the same key meanwhile: same inputs, same features
        shutil.rmtree(tmp, ignore_errors=True)
        if not (cache_dir / "index.json").is_file():
            raise
    return Extraction({rel: cache_dir / p for rel, p in features.items()}, failures, cache_dir, False)


# --------------------------------------------------------------------------- dataset


@dataclass
class Dataset:
    labels: list[str]
    files: list[AudioFile]  # only the files that have features
    x: np.ndarray  # float32 [segments, n_mels, frames], raw dB as timbred wrote it
    seg_file: np.ndarray  # int64 [segments]: index into files
    file_label: np.ndarray  # int64 [files]
    failures: dict[str, str] = field(default_factory=dict)
    # Per file, the whole-file log-mel [n_mels, frames] (`timbred features` without
    # --segment-seconds), for random crops in training; None when not loaded.
    whole: list[np.ndarray] | None = None

    @property
    def seg_label(self) -> np.ndarray:
        return self.file_label[self.seg_file]

    def subset_files(self, indices: np.ndarray) -> np.ndarray:
        """Segment indices of the given files."""
        return np.flatnonzero(np.isin(self.seg_file, indices))


def load_dataset(files: list[AudioFile], labels: list[str], extraction: Extraction) -> Dataset:
    kept: list[AudioFile] = []
    arrays: list[np.ndarray] = []
    owners: list[int] = []
    failures = dict(extraction.failures)
    for f in files:
        npy = extraction.features.get(f.rel)
        if npy is None:
            continue
        a = np.load(npy)
        if a.ndim != 3 or a.shape[1:] != (N_MELS, FRAMES) or a.shape[0] < 1:
            failures[f.rel] = f"unexpected feature shape {a.shape} (want [segments, {N_MELS}, {FRAMES}])"
            log(f"warning: skipping {f.rel}: {failures[f.rel]}")
            continue
        if not np.isfinite(a).all():
            failures[f.rel] = "non-finite feature values"
            log(f"warning: skipping {f.rel}: {failures[f.rel]}")
            continue
        owners += [len(kept)] * a.shape[0]
        kept.append(f)
        arrays.append(a.astype(np.float32, copy=False))
    if not kept:
        raise DataError("no usable features")
    label_index = {label: i for i, label in enumerate(labels)}
    return Dataset(
        labels=labels,
        files=kept,
        x=np.concatenate(arrays, axis=0),
        seg_file=np.asarray(owners, dtype=np.int64),
        file_label=np.asarray([label_index[f.label] for f in kept], dtype=np.int64),
        failures=failures,
    )


def attach_whole(dataset: Dataset, extraction: Extraction) -> int:
    """Load each file's whole-file features into dataset.whole; returns how many files have more
    than one segment's worth of frames (the ones random crops apply to). A file without usable
    whole-file features gets an empty array and keeps its fixed segments."""
    whole = []
    for f in dataset.files:
        npy = extraction.features.get(f.rel)
        a = np.load(npy) if npy is not None else np.zeros((N_MELS, 0), np.float32)
        if a.ndim != 2 or a.shape[0] != N_MELS or not np.isfinite(a).all():
            log(f"warning: no whole-file features for {f.rel} (shape {a.shape}); it keeps its fixed segments")
            a = np.zeros((N_MELS, 0), np.float32)
        whole.append(a.astype(np.float32, copy=False))
    dataset.whole = whole
    return sum(a.shape[1] > FRAMES for a in whole)


def crop(whole: np.ndarray, offset: int, frames: int = FRAMES, top_db: float = 80.0) -> np.ndarray:
    """`frames` frames of a whole-file log-mel from `offset`, floored at its own maximum - top_db.

    timbred transforms each 3 s segment on its own, so its power_to_db clips at the *segment's*
    maximum - 80 dB; the whole file was clipped at the file's maximum (lower or equal), so flooring
    the window again gives what timbred would write for a segment starting there (up to the two
    edge frames, whose STFT windows see real audio here and reflection padding there)."""
    if not 0 <= offset <= whole.shape[1] - frames:
        raise ValueError(f"crop at {offset} of {frames} frames out of a {whole.shape[1]}-frame clip")
    window = whole[:, offset : offset + frames]
    return np.maximum(window, window.max() - top_db)


# --------------------------------------------------------------------------- split


@dataclass(frozen=True)
class Split:
    assignment: dict[str, str]  # rel -> 'train' | 'val' | 'test'
    rule: str  # the rule in words, as timbred states it


def parse_split(text: str) -> Split:
    """`timbred split`'s output: `#` lines (one is `# rule: ...`), then PATH<TAB>SPLIT lines."""
    assignment: dict[str, str] = {}
    rule = ""
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith("# rule: "):
            rule = line.removeprefix("# rule: ")
        if not line.strip() or line.startswith("#"):
            continue
        rel, sep, which = line.partition("\t")
        if not sep or which not in SPLITS:
            raise DataError(f"split line {n}: expected PATH<TAB>{'|'.join(SPLITS)}, got {line!r}")
        assignment[rel] = which
    if not assignment:
        raise DataError("the split lists no file")
    return Split(assignment, rule)


def split_files(timbred: Path, data_dir: Path, seed: int) -> Split:
    """`timbred split --data DATA_DIR --seed SEED`: by file, stratified by label, 15 % test and
    15 % validation. Depends only on the seed and the file list."""
    argv = [str(timbred), "split", "--data", str(data_dir.resolve()), "--seed", str(seed)]
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace")
    if proc.returncode != 0:
        raise DataError(f"`{' '.join(argv)}` exited with {proc.returncode}:\n{proc.stderr[-3000:]}")
    return parse_split(proc.stdout)


def split_indices(dataset: Dataset, assignment: dict[str, str]) -> dict[str, np.ndarray]:
    """Split name -> file indices into dataset.files."""
    out = {s: [] for s in SPLITS}
    for i, f in enumerate(dataset.files):
        out[assignment[f.rel]].append(i)
    return {s: np.asarray(v, dtype=np.int64) for s, v in out.items()}


# --------------------------------------------------------------------------- normalisation


def mel_bin_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-mel-bin mean and std over every frame of every given segment (float64 accumulation)."""
    mean = x.mean(axis=(0, 2), dtype=np.float64)
    var = ((x - mean[None, :, None].astype(np.float32)) ** 2).mean(axis=(0, 2), dtype=np.float64)
    std = np.sqrt(np.maximum(var, 1e-6))
    return mean.astype(np.float32), std.astype(np.float32)


def describe_files(dataset: Dataset, indices: np.ndarray) -> str:
    n_seg = int(np.isin(dataset.seg_file, indices).sum())
    return f"{len(indices)} files, {n_seg} segments"


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)
