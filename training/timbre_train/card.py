"""The model folder's text files: model.toml (the manifest the ONNX plugin reads), CARD.md (for
people) and metrics.json (everything measured, for scripts)."""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
import tomllib
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np

from . import EMBEDDING_NAME, INPUT_NAME, MEL_PARAMS, OPSET, PROBABILITIES_NAME, REPO_ROOT, SEGMENT_SECONDS
from . import data as D
from . import models as M
from .train import TrainConfig, TrainResult, history_dicts

ONNX_FILE = "model.onnx"


def _toml_str(s: str) -> str:
    return json.dumps(s, ensure_ascii=True)  # a JSON string is a valid TOML basic string


def model_toml(name: str, version: str, model: M.GenreModel, labels: list[str], sha256: str, retrain: str) -> str:
    params = ", ".join(f"{k} = {v}" for k, v in MEL_PARAMS.items())
    label_list = ", ".join(_toml_str(label) for label in labels)
    return f"""# Written by training/timbre_train. Retrain (from the repository root):
#   {retrain}
name = {_toml_str(name)}
version = {_toml_str(version)}
description = {_toml_str(model.description)}

[features]
plugin = "mel"
params = {{ {params} }}
segment_seconds = {SEGMENT_SECONDS:.1f}

[model]
file = {_toml_str(ONNX_FILE)}
sha256 = {_toml_str(sha256)}
input = {_toml_str(INPUT_NAME)}
probabilities = {_toml_str(PROBABILITIES_NAME)}
embedding = {_toml_str(EMBEDDING_NAME)}
embedding_size = {model.embedding_size}
labels = [{label_list}]
"""


def _display_path(path: Path) -> str:
    """Relative to the repository root when it sits in the same workspace, else absolute."""
    path = path.resolve()
    try:
        path.relative_to(REPO_ROOT.parent)
    except ValueError:
        return str(path)
    return os.path.relpath(path, REPO_ROOT)


def retrain_command(config: TrainConfig) -> str:
    """The one command (from the repository root) that retrains this folder."""
    defaults = TrainConfig(model=config.model, data=config.data, out=config.out)
    argv = ["--model", config.model, "--data", _display_path(config.data), "--out", _display_path(config.out),
            "--epochs", str(config.resolved_epochs()), "--seed", str(config.seed)]
    for flag, attr in [("--batch-size", "batch_size"), ("--lr", "lr"), ("--weight-decay", "weight_decay"),
                       ("--patience", "patience"), ("--segments-per-file", "segments_per_file"),
                       ("--mixup", "mixup"), ("--shift-frames", "shift_frames"), ("--gain-db", "gain_db"),
                       ("--threads", "threads"), ("--name", "name"), ("--version", "version")]:
        value = getattr(config, attr)
        if value != getattr(defaults, attr):
            argv += [flag, str(value)]
    if not config.augment:
        argv.append("--no-augment")
    if not config.crop:
        argv.append("--no-crop")
    if config.card_notes is not None:
        argv += ["--card-notes", _display_path(config.card_notes)]
    return 'PYTHONPATH=training "$(scripts/python-env)/bin/python" -m timbre_train ' + shlex.join(argv)


def split_table(result: TrainResult) -> list[dict]:
    ds = result.dataset
    rows = []
    for li, label in enumerate(ds.labels):
        row = {"label": label}
        for s in D.SPLITS:
            files = result.split[s][ds.file_label[result.split[s]] == li]
            row[s] = len(files)
            row[f"{s}_segments"] = int(np.isin(ds.seg_file, files).sum())
        rows.append(row)
    return rows


def _home(path: Path) -> str:
    home = str(Path.home())
    return "~" + str(path)[len(home):] if str(path).startswith(home + "/") else str(path)


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def _confusion_md(cm: list[list[int]], labels: list[str]) -> str:
    short = [label[:5] for label in labels]
    lines = ["| true \\ predicted | " + " | ".join(short) + " |", "| --- |" + " ---: |" * len(labels)]
    for label, row in zip(labels, cm):
        lines.append(f"| **{label}** | " + " | ".join(str(v) if v else "·" for v in row) + " |")
    return "\n".join(lines)


def card_md(result: TrainResult, onnx_info: dict, retrain: str, name: str, version: str) -> str:
    c, ds, test, val = result.config, result.dataset, result.test, result.val
    model = result.model
    rows = split_table(result)
    total = {s: sum(r[s] for r in rows) for s in D.SPLITS}
    total_seg = {s: sum(r[f"{s}_segments"] for r in rows) for s in D.SPLITS}
    split_md = ["| label | train files (segments) | val files (segments) | test files (segments) |",
                "| --- | ---: | ---: | ---: |"]
    for r in rows:
        split_md.append(f"| {r['label']} | " + " | ".join(f"{r[s]} ({r[s + '_segments']})" for s in D.SPLITS) + " |")
    split_md.append("| **total** | " + " | ".join(f"**{total[s]}** ({total_seg[s]})" for s in D.SPLITS) + " |")

    per_class = ["| label | precision | recall | F1 | test files |", "| --- | ---: | ---: | ---: | ---: |"]
    for label, s in test.per_class.items():
        per_class.append(f"| {label} | {s['precision']:.2f} | {s['recall']:.2f} | {s['f1']:.2f} | {s['support']} |")

    rec = result.recommendation
    failures = ds.failures
    failed_md = (
        "\n".join(f"- `{rel}`: {why}" for rel, why in sorted(failures.items()))
        if failures else "none"
    )
    test_files = sorted(rel for rel, s in result.assignment.items() if s == "test")
    val_files = sorted(rel for rel, s in result.assignment.items() if s == "val")
    ep = result.history[result.best_epoch - 1]
    stderr = (test.track_accuracy * (1 - test.track_accuracy) / max(test.n_files, 1)) ** 0.5
    ks = [k for k in (5, 10) if f"precision_at_{k}" in rec]
    chance = 1 / len(ds.labels)
    rec_text = (
        "the share of the nearest " + " / ".join(map(str, ks)) + " with the same label is "
        + " / ".join(f"{rec[f'precision_at_{k}']:.3f}" for k in ks) + f" (chance: about {chance:.2f})"
        if ks else "too few tracks to measure it"
    )
    whole_md = _whole_tracks_md(result)
    notes = ""
    if c.card_notes is not None:
        notes = Path(c.card_notes).read_text().strip() + "\n\n"
    aug = []
    if c.crop:
        aug.append("random 3 s crops of the clips longer than one segment (new offsets every epoch; the 2-3 s clips keep "
                   "their one padded segment)")
    if c.augment:
        if c.shift_frames > 0:
            aug.append(f"random time shift of up to ±{c.shift_frames} frames (vacated frames at the segment's floor)")
        if c.gain_db > 0:
            aug.append(f"random gain ±{c.gain_db:g} dB (exact in dB)")
        aug.append("simulated zero-padded tail (p 0.3), one frequency mask of ≤12 mel bins (p 0.5)")
    if c.mixup > 0:
        aug.append(f"mixup of segment pairs, Beta({c.mixup:g}, {c.mixup:g})")
    aug_text = "; ".join(aug) if aug else "none"
    gtzan_text = GTZAN_NOTE if "gtzan" in c.data.resolve().name.lower() else ""
    import torch  # noqa: PLC0415  (versions for the record)
    import onnxruntime

    return f"""# {name} {version} — music genre classifier

{model.description}.

| | |
| --- | --- |
| input | `{INPUT_NAME}` float32 [batch, 128, 130]: raw log-mel dB of one 3 s segment, exactly as the `mel` plugin makes it (22050 Hz, n_fft 2048, hop 512, 128 mels, power_to_db with top_db 80); the per-mel-bin normalisation (mean/std of the training split) is inside the graph |
| outputs | `{PROBABILITIES_NAME}` float32 [batch, {len(ds.labels)}] (softmax, rows sum to 1), `{EMBEDDING_NAME}` float32 [batch, {model.embedding_size}] (the penultimate layer, after its ReLU) |
| labels | {", ".join(ds.labels)} |
| parameters | {M.count_parameters(model):,} |
| file | `{ONNX_FILE}`, {onnx_info['bytes'] / 1e6:.2f} MB, ONNX opset {OPSET}, sha256 `{onnx_info['sha256']}` |
| track level | mean of the segment probabilities of a track, then argmax (the daemon does the same) |

## Held-out results

On the **test split ({test.n_files} tracks, {test.n_segments} segments)**, never seen in training or model
selection:

| | test | validation |
| --- | ---: | ---: |
| track accuracy | **{_pct(test.track_accuracy)}** | {_pct(val.track_accuracy)} |
| segment accuracy | {_pct(test.segment_accuracy)} | {_pct(val.segment_accuracy)} |
| track macro F1 | {test.macro_f1:.3f} | {val.macro_f1:.3f} |
| segment log loss | {test.loss:.3f} | {val.loss:.3f} |

With {test.n_files} test tracks, one track is {100 / max(test.n_files, 1):.1f} points of accuracy and the standard error
of the test track accuracy is about {100 * stderr:.0f} points. The validation split chose the epoch, so its
numbers are optimistic.

{whole_md}Per label (test, track level):

{chr(10).join(per_class)}

Confusion matrix (test, track level; rows: true label, columns: prediction):

{_confusion_md(test.confusion, ds.labels)}

Embedding check (report 003's evaluation): for each test track, the L2-normalised mean of its segment
embeddings is compared by cosine with the train and validation tracks; {rec_text}.
Segments whose embedding is all zeros: {rec['zero_embedding_segments']}.

## Training data

`{_display_path(c.data)}`: {len(ds.files)} tracks with features, {len(ds.x)} segments of 3 s, labels from the folder
names. Features were made by the project's own mel code, `timbred features --segment-seconds {SEGMENT_SECONDS:g}`
(`{_display_path(result.timbred)}`), and cached under `{_home(result.extraction.cache_dir)}`. A clip shorter than 3 s
is one zero-padded segment; the last partial segment of a longer clip is kept, zero-padded, when it holds at
least half a segment.

Files that could not be used: {failed_md}

{gtzan_text}## Split

Rule (`timbred split`): {result.split_rule}; seed {c.seed}. Every segment of a track is in the same split as the track.

{chr(10).join(split_md)}

## Training

| | |
| --- | --- |
| epochs | up to {c.resolved_epochs()}, early stopping on validation track accuracy (patience {c.patience}, ties broken by validation loss); ran {result.epochs_run}, kept epoch {result.best_epoch} |
| per epoch | up to {c.segments_per_file} random segments{" (crops)" if c.crop else ""} of each training track (long clips would otherwise dominate), batch {c.batch_size}, shuffled |
| optimiser | AdamW, lr {c.lr:g}, weight decay {c.weight_decay:g}, cosine decay to lr/50 over the maximum epochs |
| loss | cross-entropy, label weights inverse to their share of the epoch's segments, label smoothing 0.05 |
| augmentation | {aug_text} |
| at the kept epoch | train loss {ep.train_loss:.3f}, train segment accuracy {_pct(ep.train_segment_accuracy)} (on augmented{", mixed-up" if c.mixup > 0 else ""} segments, dropout on) |
| time | {result.train_seconds / 60:.1f} min training ({result.epochs_run} epochs) on {c.threads} CPU thread{'s' if c.threads != 1 else ''}, {platform.processor() or platform.machine()}; features {result.feature_seconds:.0f} s |
| software | PyTorch {torch.__version__}, onnxruntime {onnxruntime.__version__}, Python {platform.python_version()} |

PyTorch and onnxruntime agree on all {onnx_info['parity']['segments']} test segments: max abs difference
{onnx_info['parity']['probabilities_max_abs_diff']:.1e} (probabilities), {onnx_info['parity']['embedding_max_abs_diff']:.1e}
(embedding).

{notes}## Retrain

From the repository root (builds `timbred` with cargo first when `--timbred` is not given):

```sh
{retrain}
```

Same data, same `timbred`, same command: the same split and, on the same CPU and thread count, the same
weights. Full per-epoch history, per-file predictions and the split of every file: `metrics.json`.

<details><summary>Test tracks ({len(test_files)})</summary>

{chr(10).join(f"- `{rel}`" for rel in test_files)}

</details>

<details><summary>Validation tracks ({len(val_files)})</summary>

{chr(10).join(f"- `{rel}`" for rel in val_files)}

</details>
"""


GTZAN_NOTE = """The GTZAN pool: real GTZAN clips, mostly 2-3 s excerpts (one padded segment each), 53 full 30 s
clips (stored at 16 kHz, so nothing above 8 kHz) spread over all labels, and 77 classical clips of 15 s
(lossy-transcoded before they reached the pool). GTZAN repeats artists within a genre and holds duplicates
and mislabelings (Sturm 2012); a split by file does not separate artists, so the held-out accuracy is
still somewhat optimistic. The accuracies of the seed reports come from random splits of segments and are
not comparable with these.

"""


def _whole_tracks_md(result: TrainResult) -> str:
    """The held-out long clips (whole tracks) alone, by file."""
    from .train import WHOLE_TRACK_SEGMENTS  # noqa: PLC0415

    tv, vv = result.test_whole, result.val_whole
    if tv is None and vv is None:
        return ""

    def cell(ev, attr):
        return _pct(getattr(ev, attr)) if ev is not None else "–"

    def n(ev):
        return ev.n_files if ev is not None else 0

    return f"""**Whole tracks**: the same, on the held-out clips of at least {WHOLE_TRACK_SEGMENTS} segments only (in the GTZAN
pool the 15 s classical and the 30 s clips; by file, the mean over all their segments):

| | test ({n(tv)} tracks) | validation ({n(vv)} tracks) |
| --- | ---: | ---: |
| track accuracy | **{cell(tv, "track_accuracy")}** | {cell(vv, "track_accuracy")} |
| segment accuracy | {cell(tv, "segment_accuracy")} | {cell(vv, "segment_accuracy")} |

"""


def _jsonable(value):
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    return value


def metrics(result: TrainResult, onnx_info: dict, retrain: str, name: str) -> dict:
    c = result.config
    import torch
    import onnxruntime

    return _jsonable({
        "name": name,
        "architecture": c.model,
        "description": result.model.description,
        "parameters": M.count_parameters(result.model),
        "embedding_size": result.model.embedding_size,
        "labels": result.dataset.labels,
        "config": {f.name: getattr(c, f.name) for f in fields(c)} | {"epochs": c.resolved_epochs()},
        "retrain": retrain,
        "data": {
            "dir": str(c.data.resolve()),
            "tracks": len(result.dataset.files),
            "segments": int(len(result.dataset.x)),
            "failures": result.dataset.failures,
            "timbred": str(result.timbred),
            "feature_cache": str(result.extraction.cache_dir),
        },
        "split": {"rule": result.split_rule, "seed": c.seed, "sizes": split_table(result), "files": result.assignment},
        "test": asdict(result.test),
        "val": asdict(result.val),
        "test_whole_tracks": asdict(result.test_whole) if result.test_whole is not None else None,
        "val_whole_tracks": asdict(result.val_whole) if result.val_whole is not None else None,
        "recommendation": result.recommendation,
        "training": {
            "seconds": result.train_seconds,
            "feature_seconds": result.feature_seconds,
            "epochs_run": result.epochs_run,
            "best_epoch": result.best_epoch,
            "history": history_dicts(result.history),
        },
        "onnx": onnx_info,
        "software": {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__,
            "platform": platform.platform(),
        },
    })


def write_folder(out: Path, result: TrainResult, onnx_info: dict) -> dict[str, Path]:
    name = result.config.name or result.config.model
    version = result.config.version
    retrain = retrain_command(result.config)
    toml_text = model_toml(name, version, result.model, result.dataset.labels, onnx_info["sha256"], retrain)
    parsed = tomllib.loads(toml_text)  # must parse, and say what we meant
    assert parsed["model"]["sha256"] == onnx_info["sha256"] and parsed["model"]["labels"] == result.dataset.labels
    paths = {"toml": out / "model.toml", "card": out / "CARD.md", "metrics": out / "metrics.json"}
    paths["toml"].write_text(toml_text)
    paths["card"].write_text(card_md(result, onnx_info, retrain, name, version))
    paths["metrics"].write_text(json.dumps(metrics(result, onnx_info, retrain, name), indent=1) + "\n")
    return paths
