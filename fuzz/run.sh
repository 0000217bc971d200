#!/usr/bin/env bash
# Runs fuzz targets one after the other, each for FUZZ_SECONDS (default 600), in one process
# on one core, with the limits the README's table was measured with. Logs go to FUZZ_LOGS
# (default fuzz/logs/<target>.log); crashes to fuzz/artifacts/<target>/. FUZZ_ARGS adds libFuzzer
# flags.
#   fuzz/run.sh                      # every target
#   fuzz/run.sh decode_file mel_pcm  # some
#   FUZZ_ARGS=-seed=1 fuzz/run.sh decode_file  # a reproducible run
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-600}
logs=${FUZZ_LOGS:-fuzz/logs}
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(decode_file mel_pcm model_manifest request_validation index_snapshot)
fi
mkdir -p "$logs"
for target in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$target"
    cargo +nightly fuzz run "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 ${FUZZ_ARGS:-} \
        >"$logs/$target.log" 2>&1
    echo "$target: exit $? ($(date -u +%FT%TZ))"
done
