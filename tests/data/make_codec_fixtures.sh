#!/usr/bin/env bash
# Regenerates tests/data/codecs/: one second of a stereo two-tone signal (440 Hz left,
# 880 Hz right) in every format timbre decodes. Needs ffmpeg (Debian: apt-get install ffmpeg);
# the outputs are committed, so the tests themselves do not need it.
set -euo pipefail
cd "$(dirname "$0")/codecs"
src=(-f lavfi -i "sine=frequency=440:sample_rate=44100:duration=1" -f lavfi -i "sine=frequency=880:sample_rate=44100:duration=1"
     -filter_complex "[0:a][1:a]join=inputs=2:channel_layout=stereo[a]" -map "[a]" -map_metadata -1 -fflags +bitexact)
ffmpeg -loglevel error -y "${src[@]}" -ar 32000 -c:a pcm_s16le tone.wav
ffmpeg -loglevel error -y "${src[@]}" -c:a flac tone.flac
ffmpeg -loglevel error -y "${src[@]}" -c:a libmp3lame -b:a 64k tone.mp3
ffmpeg -loglevel error -y "${src[@]}" -c:a libvorbis -q:a 1 tone.ogg
ffmpeg -loglevel error -y "${src[@]}" -c:a aac -b:a 64k tone-aac.m4a
# Raw AAC in ADTS frames, as Icecast serves it (tests/sources.rs streams it over HTTP).
ffmpeg -loglevel error -y "${src[@]}" -c:a aac -b:a 64k -f adts tone.aac
ffmpeg -loglevel error -y "${src[@]}" -c:a alac tone-alac.m4a
ls -l
