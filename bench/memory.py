#!/usr/bin/env python3
"""Peak resident memory of `timbred analyze` on a 1-minute and a 1-hour file.

Analysis streams a track in segments, so memory must stay flat: the ratio of the
two peaks should be close to 1, not 60. The files are generated (a tone over noise,
22050 Hz mono 16-bit WAV, written in chunks) in a temporary directory.
"""
import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 22050


def write_wav(path, minutes):
    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", samplerate=RATE, channels=1, subtype="PCM_16") as f:
        for second in range(int(minutes * 60)):
            t = (np.arange(RATE) + second * RATE) / RATE
            f.write((0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(RATE)).astype(np.float32))


# Linux carries a process's peak RSS across exec (the old address space's high-water mark is
# kept), so a command forked straight from this interpreter would report at least the
# interpreter's own peak (numpy and the audio it wrote). A fresh `python3 -S` of a few MiB
# forks the command instead and reports the command's rusage.
LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
        os.execvp(sys.argv[1], sys.argv[1:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
print(usage.ru_maxrss, os.waitstatus_to_exitcode(status))
"""


def peak_rss_mib(command):
    """Peak resident memory of `command` in MiB (its stdout discarded)."""
    process = subprocess.run([sys.executable, "-S", "-c", LAUNCHER, *command], capture_output=True, text=True)
    maxrss, code = process.stdout.split()
    if process.returncode != 0 or code != "0":
        raise SystemExit(f"{command} failed ({code}): {process.stderr}")
    return int(maxrss) / 1024  # KiB on Linux


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--timbred", required=True)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        peaks = {}
        for minutes in (1, 60):
            path = Path(tmp) / f"{minutes}min.wav"
            write_wav(path, minutes)
            peaks[minutes] = peak_rss_mib([args.timbred, "analyze", "--jobs", "1", str(path)])
            path.unlink()
    print(f"peak RSS of timbred analyze: 1 min {peaks[1]:.1f} MiB, 60 min {peaks[60]:.1f} MiB "
          f"-> ratio {peaks[60] / peaks[1]:.2f}")


if __name__ == "__main__":
    main()
