#!/usr/bin/env python3
"""Regenerates the seed corpora under fuzz/seeds/ from the project's test fixtures.

Standard library only. The index snapshot seed is written by the daemon itself:
    TIMBRE_WRITE_FUZZ_SEED=1 cargo test -p timbre-daemon fuzz_seed
"""
import math
import shutil
import struct
import wave
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
ROOT = FUZZ.parent
DATA = ROOT / "tests" / "data"
SEEDS = FUZZ / "seeds"


def target(name):
    d = SEEDS / name
    d.mkdir(parents=True, exist_ok=True)
    return d


def tone(rate, seconds, channels=1, hz=440.0):
    n = int(rate * seconds)
    return [math.sin(2 * math.pi * hz * (i // channels) / rate) * 0.5 for i in range(n * channels)]


def pcm_wav(path, rate, channels, width, seconds):
    samples = tone(rate, seconds, channels)
    scale = (1 << (8 * width - 1)) - 1
    frames = b"".join(
        (int(s * scale) + (128 if width == 1 else 0)).to_bytes(width, "little", signed=width > 1) for s in samples
    )
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(frames)


def float_wav(path, rate, channels, seconds):
    data = struct.pack(f"<{len(s := tone(rate, seconds, channels))}f", *s)
    fmt = struct.pack("<HHIIHH", 3, channels, rate, rate * channels * 4, channels * 4, 32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def decode_file():
    d = target("decode_file")
    pcm_wav(d / "mono-8k-s16.wav", 8000, 1, 2, 0.1)
    pcm_wav(d / "stereo-44k-s16.wav", 44100, 2, 2, 0.05)
    pcm_wav(d / "mono-48k-s24.wav", 48000, 1, 3, 0.05)
    pcm_wav(d / "mono-11k-u8.wav", 11025, 1, 1, 0.1)
    float_wav(d / "stereo-96k-f32.wav", 96000, 2, 0.02)
    for name in ["tone.flac", "tone.mp3", "tone.ogg", "tone.aac", "tone-aac.m4a", "tone-alac.m4a"]:
        shutil.copy(DATA / "codecs" / name, d / name)
    # The head of a longer FLAC: its header promises more than the bytes hold.
    (d / "sample-head.flac").write_bytes((DATA / "sample.flac").read_bytes()[:8192])


def npy_f32(path):
    raw = path.read_bytes()
    header_len = struct.unpack("<H", raw[8:10])[0]
    return raw[10 + header_len :]


def mel_pcm():
    d = target("mel_pcm")
    defaults = bytes(128)  # every parameter left at its default
    (d / "defaults-tone1k").write_bytes(defaults + struct.pack("<2205f", *tone(22050, 0.1, hz=1000.0)))
    (d / "defaults-short1500").write_bytes(defaults + npy_f32(DATA / "mel" / "short1500.input.npy"))
    (d / "defaults-empty").write_bytes(defaults)


def model_manifest():
    d = target("model_manifest")
    for folder in sorted((ROOT / "plugins" / "models").iterdir()):
        if (folder / "model.toml").exists():
            shutil.copy(folder / "model.toml", d / f"{folder.name}.toml")
    shutil.copy(DATA / "tiny-model" / "model.toml", d / "tiny-model.toml")


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number, wire, payload):
    key = varint(number << 3 | wire)
    if wire == 0:
        return key + varint(payload)
    if wire == 1:
        return key + struct.pack("<d", payload)
    if wire == 5:
        return key + struct.pack("<f", payload)
    return key + varint(len(payload)) + payload


def pcm(samples, rate, channels):
    return field(1, 2, struct.pack(f"<{len(samples)}f", *samples)) + field(2, 0, rate) + field(3, 0, channels)


def request_validation():
    d = target("request_validation")
    wav = d.parent / "decode_file" / "mono-8k-s16.wav"
    # ClassifyRequest: pcm = 3, encoded = 2, path = 1, filename_hint = 4, models = 5, top_k = 6, include_segments = 7.
    (d / "classify-pcm").write_bytes(
        field(3, 2, pcm(tone(8000, 0.05), 8000, 1)) + field(5, 2, b"cnn") + field(6, 0, 3) + field(7, 0, 1)
    )
    (d / "classify-pcm-stereo").write_bytes(field(3, 2, pcm(tone(16000, 0.02, 2), 16000, 2)))
    (d / "classify-encoded").write_bytes(field(2, 2, wav.read_bytes()) + field(4, 2, b"clip.wav"))
    (d / "classify-path").write_bytes(field(1, 2, b"/music/a.flac") + field(5, 2, b"cnn") + field(5, 2, b"bilstm"))
    # RecommendRequest: positive = 1, negative = 2, model = 3, limit = 4, filter = 5, diversity = 6, strategy = 7.
    # TrackRef: track_id = 1, path = 2, audio = 3; AudioInput: encoded = 1, pcm = 2, filename_hint = 3.
    audio = field(3, 2, field(2, 2, pcm(tone(22050, 0.02, 2), 22050, 2)))
    recommend_filter = (
        field(1, 2, b"rock") + field(2, 2, b"someone") + field(3, 2, b"an album")
        + field(4, 1, 30.0) + field(5, 1, 600.0) + field(6, 0, 1) + field(7, 0, 1)
    )
    (d / "recommend").write_bytes(
        field(1, 2, field(1, 0, 12)) + field(1, 2, audio) + field(2, 2, field(2, 2, b"/music/b.flac"))
        + field(3, 2, b"cnn") + field(4, 0, 10) + field(5, 2, recommend_filter) + field(6, 5, 0.3) + field(7, 0, 2)
    )
    (d / "recommend-encoded").write_bytes(
        field(1, 2, field(3, 2, field(1, 2, wav.read_bytes()) + field(3, 2, b"clip.wav")))
    )


if __name__ == "__main__":
    decode_file()
    mel_pcm()
    model_manifest()
    request_validation()
    target("index_snapshot")
    for d in sorted(SEEDS.iterdir()):
        files = list(d.iterdir())
        print(f"{d.name}: {len(files)} files, {sum(f.stat().st_size for f in files)} bytes")
