"""Tempo and key side by side with librosa and Essentia on the pool's 30 s clips.

Each tool gets the same clips, one thread each; time is the analysis only (decoding apart).
  timbre:   the descriptors crate (tempo, key and loudness together), `--example describe`
  librosa:  beat_track (tempo) + chroma_stft against Krumhansl-Kessler (key)
  Essentia: RhythmExtractor2013 (multifeature) + KeyExtractor (default profile)
Reports: MIREX key score on the annotated clips; tempo agreement with the peers' consensus
(within 4 % exactly, and of 1x/2x/3x/0.5x/0.33x); seconds per track.
"""

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")
import numpy as np  # noqa: E402

PCS = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]
FLATS = {"Db": "C#", "Eb": "D#", "Gb": "F#", "Ab": "G#", "Bb": "A#"}
KK_MAJOR = [6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88]
KK_MINOR = [6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17]


def parse_key(text):
    tonic, mode = text.split()
    return PCS.index(FLATS.get(tonic, tonic)), mode.lower()


def mirex(estimate, reference):
    (e, em), (r, rm) = parse_key(estimate), parse_key(reference)
    up = (e - r) % 12
    if em == rm:
        return 1.0 if up == 0 else 0.5 if up == 7 else 0.0
    if (rm == "major" and up == 9) or (rm == "minor" and up == 3):
        return 0.3
    return 0.2 if up == 0 else 0.0


def librosa_describe(path):
    import librosa
    y, sr = librosa.load(path, sr=22050, mono=True)
    start = time.perf_counter()
    tempo, _ = librosa.beat.beat_track(y=y, sr=sr)
    chroma = librosa.feature.chroma_stft(y=y, sr=sr).mean(axis=1)
    best = max(((np.corrcoef(chroma, np.roll(p, t))[0, 1], t, m)
                for m, p in (("major", KK_MAJOR), ("minor", KK_MINOR)) for t in range(12)))
    seconds = time.perf_counter() - start
    return float(np.atleast_1d(tempo)[0]), f"{PCS[best[1]]} {best[2]}", seconds


def essentia_describe(path):
    import essentia.standard as es
    y = es.MonoLoader(filename=str(path), sampleRate=44100)()
    start = time.perf_counter()
    bpm = es.RhythmExtractor2013(method="multifeature")(y)[0]
    key, scale, _ = es.KeyExtractor()(y)
    seconds = time.perf_counter() - start
    return float(bpm), f"{key} {scale}", seconds


def close(a, b, factors=(1.0,)):
    return any(abs(a / (b * f) - 1) <= 0.04 for f in factors)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pool", default=Path(__file__).resolve().parents[2] / "shared/data/gtzan-pool", type=Path)
    parser.add_argument("--describe", required=True, help="the built `describe` example")
    args = parser.parse_args()
    manifest = list(csv.DictReader(open(args.pool / "MANIFEST.tsv"), delimiter="\t"))
    keys = {r["path"]: r["key"] for r in csv.DictReader(open(args.pool / "annotations/key.tsv"), delimiter="\t")}
    clips = [r["path"] for r in manifest if float(r["duration_s"]) > 25]
    files = [str(args.pool / c) for c in clips]
    ours = {}
    out = subprocess.run([args.describe, *files], check=True, capture_output=True, text=True).stdout
    for line, clip in zip(out.splitlines(), clips):
        d = json.loads(line)
        ours[clip] = (d["bpm"], d["key"], d["seconds"])
    rows = {"timbre": ours, "librosa": {}, "essentia": {}}
    for clip, file in zip(clips, files):
        rows["librosa"][clip] = librosa_describe(file)
        try:
            rows["essentia"][clip] = essentia_describe(file)
        except ImportError:
            pass
    tools = [t for t in rows if rows[t]]
    print(f"{len(clips)} clips of 25-31 s; {sum(1 for c in clips if keys.get(c))} with a key annotation")
    for tool in tools:
        annotated = [c for c in clips if keys.get(c)]
        score = np.mean([mirex(rows[tool][c][1], keys[c]) for c in annotated])
        seconds = np.mean([rows[tool][c][2] for c in clips])
        print(f"{tool:<9} key score {score:.3f}   {1000 * seconds:7.1f} ms per track (analysis only, one thread)")
    # Tempo: agreement with the peers' consensus where they agree with each other (within 4 %),
    # and with each peer.
    octaves = (1, 2, 3, 0.5, 1 / 3)
    peers = [t for t in tools if t != "timbre"]
    consensus = [c for c in clips if len(peers) == 2 and close(rows[peers[0]][c][0], rows[peers[1]][c][0])]
    for name, subset, reference in [(f"peers' consensus ({len(consensus)} clips)", consensus, peers[0])] + \
            [(f"{p} ({len(clips)} clips)", clips, p) for p in peers]:
        if not subset:
            continue
        exact = np.mean([close(ours[c][0], rows[reference][c][0]) for c in subset])
        octave = np.mean([close(ours[c][0], rows[reference][c][0], octaves) for c in subset])
        print(f"timbre tempo vs {name}: within 4 % {100 * exact:.0f} %, of 1x/2x/3x/½/⅓ {100 * octave:.0f} %")
    if len(peers) == 2:
        exact = np.mean([close(rows[peers[0]][c][0], rows[peers[1]][c][0]) for c in clips])
        octave = np.mean([close(rows[peers[0]][c][0], rows[peers[1]][c][0], octaves) for c in clips])
        print(f"{peers[0]} vs {peers[1]}: within 4 % {100 * exact:.0f} %, of 1x/2x/3x/½/⅓ {100 * octave:.0f} %")
        ratio = np.mean([rows["essentia"][c][2] for c in clips]) / np.mean([ours[c][2] for c in clips])
        print(f"timbre is {ratio:.1f}x faster per track than Essentia's two extractors")


if __name__ == "__main__":
    sys.exit(main())
