#!/usr/bin/env bash
# Regenerates tests/data/stream/country.00012.mp3: the first 10 s of a real GTZAN clip
# (16 kHz mono) as MP3, for the HTTP stream tests of the live sources (tests/sources.rs).
# Needs ffmpeg and the GTZAN pool (TIMBRE_GTZAN_POOL, default ../shared/data/gtzan-pool);
# the output is committed, so the tests themselves need neither.
set -euo pipefail
cd "$(dirname "$0")"
pool=${TIMBRE_GTZAN_POOL:-../../../shared/data/gtzan-pool}
mkdir -p stream
ffmpeg -loglevel error -y -i "$pool/country/country.00012.flac" -t 10 -map_metadata -1 -fflags +bitexact \
    -c:a libmp3lame -b:a 48k stream/country.00012.mp3
ls -l stream
