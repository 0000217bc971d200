"""Augmentation ablation: train one architecture with each augmentation turned off in turn and print
the validation figures as a markdown table (validation only: the test split is not looked at).

    PYTHONPATH=training "$(scripts/python-env)/bin/python" training/ablation.py \
        --model cnn --data ../shared/data/gtzan-pool --epochs 15 --timbred PATH [--only NAME ...]

Each row is one run with the same seed; results are also appended as JSON lines to --log.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

from timbre_train.train import TrainConfig, run

VARIANTS = {
    "all (crop, shift, gain, mixup)": {},
    "no random crops (fixed 3 s cuts)": {"crop": False},
    "no time shift": {"shift_frames": 0},
    "no gain": {"gain_db": 0.0},
    "no mixup": {"mixup": 0.0},
    "1.0.0 recipe (no crops, no shift)": {"crop": False, "shift_frames": 0},
}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="cnn")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--timbred", type=Path)
    p.add_argument("--only", action="append", help="run only the variants whose name starts with this")
    p.add_argument("--log", type=Path, default=Path("ablation.jsonl"))
    args = p.parse_args()
    for name, changes in VARIANTS.items():
        if args.only and not any(name.startswith(o) for o in args.only):
            continue
        config = dataclasses.replace(
            TrainConfig(model=args.model, data=args.data, out=Path("/dev/null"), epochs=args.epochs,
                        seed=args.seed, timbred=args.timbred, threads=args.threads),
            **changes,
        )
        t0 = time.perf_counter()
        r = run(config)
        row = {
            "variant": name, "model": args.model, "epochs": args.epochs, "best_epoch": r.best_epoch,
            "val_track": r.val.track_accuracy, "val_segment": r.val.segment_accuracy, "val_loss": r.val.loss,
            "val_whole_track": r.val_whole.track_accuracy if r.val_whole else None,
            "val_whole_n": r.val_whole.n_files if r.val_whole else 0,
            "train_seconds": r.train_seconds, "seconds": time.perf_counter() - t0,
        }
        with open(args.log, "a") as f:
            f.write(json.dumps(row) + "\n")
        print(f"| {name} | {100 * row['val_track']:.1f} % | {100 * row['val_segment']:.1f} % | "
              f"{row['val_loss']:.3f} | {100 * (row['val_whole_track'] or 0):.1f} % ({row['val_whole_n']}) | "
              f"{row['best_epoch']} | {row['train_seconds'] / 60:.1f} min |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
