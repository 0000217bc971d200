"""Write the whole-track subset of a split file: the files of at least --min-seconds (default 10 s),
each in the split it already has. On the GTZAN pool these are the 30 s clips and the 15 s classical
clips, the ones closest to a user's whole tracks; `timbred eval --split` on the result gives track
accuracy on whole tracks only.

    python3 training/whole_tracks_split.py --data ../shared/data/gtzan-pool \
        --split plugins/models/split.tsv > plugins/models/split-whole-tracks.tsv

Durations come from the data folder's MANIFEST.tsv (columns path, duration_s), as in the GTZAN pool.
Standard library only.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True, help="data folder holding MANIFEST.tsv")
    p.add_argument("--split", type=Path, required=True, help="split file (PATH<TAB>SPLIT per line)")
    p.add_argument("--min-seconds", type=float, default=10.0)
    args = p.parse_args()
    with open(args.data / "MANIFEST.tsv", newline="") as f:
        duration = {r["path"]: float(r["duration_s"]) for r in csv.DictReader(f, delimiter="\t")}
    kept, counts = [], {}
    for line in args.split.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        path, _, which = line.partition("\t")
        if duration[path] >= args.min_seconds:
            kept.append(line)
            counts[which] = counts.get(which, 0) + 1
    out = sys.stdout
    out.write(f"# The whole tracks of {args.split.name}: its files of at least {args.min_seconds:g} s (duration from "
              f"MANIFEST.tsv), each in the same split; made by training/whole_tracks_split.py\n")
    out.write("# " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + " files\n")
    out.write("\n".join(kept) + "\n")


if __name__ == "__main__":
    main()
