"""python -m timbre_train --model {cnn,bilstm,cnn-lstm} --data DIR --out plugins/models/NAME

Trains one model on DIR/<label>/<audio files>, evaluates it on a held-out split, and writes the
model folder: model.onnx, model.toml, CARD.md, metrics.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import MODEL_NAMES, OPSET
from . import card as C
from . import data as D
from . import export as E
from .train import DEFAULT_EPOCHS, TrainConfig, TrainResult, run


@dataclass
class Outcome:
    result: TrainResult
    folder: Path
    onnx: Path
    onnx_info: dict
    files: dict[str, Path]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m timbre_train",
        description="Train a timbre genre model on DIR/<label>/<audio> and write its model folder "
        "(model.onnx, model.toml, CARD.md, metrics.json). Run from the repository root with "
        "PYTHONPATH=training and the project venv (scripts/python-env).",
    )
    p.add_argument("--model", required=True, choices=MODEL_NAMES, help="architecture")
    p.add_argument("--data", required=True, type=Path, help="dataset: one sub-folder of audio files per label")
    p.add_argument("--out", required=True, type=Path, help="model folder to write, e.g. plugins/models/cnn")
    p.add_argument("--epochs", type=int, help="maximum epochs (default: " +
                   ", ".join(f"{k} {v}" for k, v in DEFAULT_EPOCHS.items()) + ")")
    p.add_argument("--seed", type=int, default=0, help="seed of the split, the initialisation and the sampling")
    p.add_argument("--timbred", type=Path, help="timbred binary (default: build target/release/timbred with cargo)")
    p.add_argument("--cache-dir", type=Path, help="feature cache (default: ~/.cache/timbre/features)")
    p.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    p.add_argument("--lr", type=float, default=TrainConfig.lr)
    p.add_argument("--weight-decay", type=float, default=TrainConfig.weight_decay)
    p.add_argument("--patience", type=int, default=10, help="early stopping: epochs without a better validation score")
    p.add_argument("--segments-per-file", type=int, default=4, help="random segments of a track per epoch (at most)")
    p.add_argument("--mixup", type=float, default=TrainConfig.mixup,
                   help="mixup of segment pairs with lambda ~ Beta(a, a); 0 turns it off (default %(default)s)")
    p.add_argument("--no-augment", action="store_true",
                   help="train without the batch augmentations (gain, time shift, padding, masks)")
    p.add_argument("--no-crop", action="store_true",
                   help="train on the fixed 3 s cuts of the long clips instead of random 3 s crops of the whole clip")
    p.add_argument("--shift-frames", type=int, default=TrainConfig.shift_frames,
                   help="random time shift of up to this many frames either way; 0 turns it off (default %(default)s)")
    p.add_argument("--gain-db", type=float, default=TrainConfig.gain_db,
                   help="random gain of up to this many dB either way; 0 turns it off (default %(default)s)")
    p.add_argument("--card-notes", type=Path, help="a markdown file to include in CARD.md (e.g. an ablation table)")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    p.add_argument("--name", help="model name in model.toml (default: the architecture)")
    p.add_argument("--version", default="1.0.0", help="model version in model.toml")
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        model=args.model, data=args.data, out=args.out, epochs=args.epochs, seed=args.seed,
        timbred=args.timbred, cache_dir=args.cache_dir, batch_size=args.batch_size, lr=args.lr,
        weight_decay=args.weight_decay, patience=args.patience, segments_per_file=args.segments_per_file,
        augment=not args.no_augment, mixup=args.mixup,
        crop=not args.no_crop, shift_frames=args.shift_frames, gain_db=args.gain_db,
        card_notes=args.card_notes, threads=args.threads, name=args.name, version=args.version,
    )


def train_and_write(config: TrainConfig) -> Outcome:
    if config.epochs is not None and config.epochs < 1:
        raise D.DataError("--epochs must be at least 1")
    started = time.perf_counter()
    result = run(config)
    out = config.out
    out.mkdir(parents=True, exist_ok=True)
    onnx_path = out / C.ONNX_FILE
    E.export_onnx(result.model, onnx_path)

    ds = result.dataset
    test_x = ds.x[ds.subset_files(result.split["test"])]
    parity = E.parity(result.model, onnx_path, test_x)
    if parity["probabilities_max_abs_diff"] > 1e-4 or parity["embedding_max_abs_diff"] > 1e-4:
        raise RuntimeError(f"onnxruntime disagrees with PyTorch on the test segments: {parity}")
    sess = E.session(onnx_path)
    for batch in (1, 5):  # the batch axis is dynamic
        x = np.resize(test_x, (batch, *test_x.shape[1:])).astype(np.float32)
        probs, _ = E.run_onnx(sess, x)
        assert probs.shape == (batch, len(ds.labels))
    info = {
        "file": C.ONNX_FILE,
        "bytes": onnx_path.stat().st_size,
        "sha256": E.sha256_of(onnx_path),
        "opset": OPSET,
        "parity": parity,
    }
    files = C.write_folder(out, result, info)
    D.log(f"wrote {out}/ ({C.ONNX_FILE} {info['bytes'] / 1e6:.2f} MB, model.toml, CARD.md, metrics.json) "
          f"in {time.perf_counter() - started:.0f} s")
    return Outcome(result, out, onnx_path, info, files)


def main(argv: list[str] | None = None) -> Outcome:
    args = parser().parse_args(argv)
    return train_and_write(config_from_args(args))


if __name__ == "__main__":
    try:
        main()
    except D.DataError as e:
        print(f"timbre_train: error: {e}", file=sys.stderr)
        sys.exit(2)
