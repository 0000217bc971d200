#!/usr/bin/env python3
"""How many of musicnn-msd's tags a threshold shows on real clips, and whether they are right.

Runs `timbred --models musicnn-msd analyze --json --top-k 0` on N clips per genre of the GTZAN
pool and prints, per threshold: tags shown per clip (median and mean), the share of clips with
none shown, and, for the 7 genres musicnn has a tag for, how often the genre's own tag is among
those shown (its recall) and what share of shown genre-like tags are the right genre. This is
how `timbre classify --tag-threshold` got its default (bench/README.md).
"""
import argparse
import json
import statistics
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# GTZAN genre -> musicnn tags that name it.
GENRE_TAGS = {
    "blues": {"blues"},
    "classical": set(),  # no classical tag in the 50
    "country": {"country"},
    "disco": {"dance"},
    "hiphop": {"Hip-Hop", "rnb"},
    "jazz": {"jazz"},
    "metal": {"metal", "heavy metal", "hard rock"},
    "pop": {"pop"},
    "reggae": set(),
    "rock": {"rock", "classic rock", "hard rock", "alternative rock"},
}
GENRE_LIKE = set().union(*GENRE_TAGS.values())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pool", type=Path, default=REPO / "../shared/data/gtzan-pool")
    parser.add_argument("--timbred", required=True)
    parser.add_argument("--per-genre", type=int, default=8)
    parser.add_argument("--thresholds", default="0.1,0.2,0.3,0.4,0.5")
    args = parser.parse_args()
    clips = [(genre.name, clip) for genre in sorted(args.pool.iterdir()) if genre.is_dir()
             for clip in sorted(genre.glob("*.flac"))[:args.per_genre]]
    out = subprocess.run([args.timbred, "--models", "musicnn-msd", "--execution-provider", "cpu", "analyze", "--json",
                          "--top-k", "0", *[str(c) for _, c in clips]], capture_output=True, text=True, check=True).stdout
    tags = {}
    for line in out.splitlines():
        record = json.loads(line)
        prediction = next(p for p in record["predictions"] if p["model"] == "musicnn-msd")
        tags[Path(record["path"]).name] = [(l["name"], l["probability"]) for l in prediction["labels"]]
    tops = [t[0][1] for t in tags.values()]
    print(f"{len(tags)} clips; strongest tag per clip: median {statistics.median(tops):.2f}, "
          f"min {min(tops):.2f}, max {max(tops):.2f}")
    print(" threshold  tags/clip (median, mean)  clips with none  genre tag shown (7 genres)  genre-like tags right")
    for threshold in map(float, args.thresholds.split(",")):
        shown = {name: [t for t, p in labels if p >= threshold] for name, labels in tags.items()}
        counts = [len(s) for s in shown.values()]
        hits = total = right = genre_like = 0
        for genre, clip in clips:
            s = shown[clip.name]
            if GENRE_TAGS[genre]:
                total += 1
                hits += bool(GENRE_TAGS[genre] & set(s))
            for t in s:
                if t in GENRE_LIKE:
                    genre_like += 1
                    right += t in GENRE_TAGS[genre]
        print(f" {threshold:9.2f}  {statistics.median(counts):6.1f} {statistics.mean(counts):6.2f}"
              f"  {sum(c == 0 for c in counts) / len(counts):14.0%}  {hits / max(total, 1):25.0%}"
              f"  {right / max(genre_like, 1):21.0%} of {genre_like}")


if __name__ == "__main__":
    main()
