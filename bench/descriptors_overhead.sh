#!/usr/bin/env bash
# The cost of the descriptor plugins in an analysis: `timbred analyze` on the same pool clips,
# one thread, with and without them, alternating runs; prints the best of each and the ratio.
# Usage: bench/descriptors_overhead.sh [CLIPS] [RUNS]   (needs a release build of the workspace)
set -euo pipefail
pool=${TIMBRE_GTZAN_POOL:-$(dirname "$0")/../../shared/data/gtzan-pool}
target=${CARGO_TARGET_DIR:-$(dirname "$0")/../target}
timbred=$target/release/timbred
[ -x "$timbred" ] || { echo "$timbred: build the workspace in release first" >&2; exit 1; }
n=${1:-20}
runs=${2:-3}
mapfile -t clips < <(awk -F'\t' 'NR > 1 && $4 >= 29 { print $1 }' "$pool/MANIFEST.tsv" | head -n "$n" | sed "s|^|$pool/|")
time_one() { local s e; s=$(date +%s.%N); "$timbred" analyze -j 1 --json "$@" "${clips[@]}" >/dev/null; e=$(date +%s.%N); echo "$e - $s" | bc; }
best_with=1000000000; best_without=1000000000
for _ in $(seq "$runs"); do
    w=$(time_one); wo=$(time_one --no-descriptors)
    best_with=$(echo "if ($w < $best_with) $w else $best_with" | bc)
    best_without=$(echo "if ($wo < $best_without) $wo else $best_without" | bc)
done
echo "clips ${#clips[@]} (30 s each), best of $runs, one thread"
echo "without descriptors: $best_without s"
echo "with descriptors:    $best_with s"
echo "ratio: $(echo "scale=3; $best_with / $best_without" | bc)"
