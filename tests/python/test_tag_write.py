"""`timbred tag` on real clips in MP3, FLAC, Ogg Vorbis and M4A, against a real daemon that
analysed them, with mutagen (from the clients venv) as the independent reader: the written
values are read back, the audio stream is unchanged byte for byte (ffmpeg's stream copy),
other tags and the embedded picture survive, `--dry-run` changes no byte, `--undo` restores
the previous values, and a tag-only edit afterwards is not analysed again."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from conftest import Daemon, find_gtzan_pool

FORMATS = {
    "song.mp3": ["-c:a", "libmp3lame", "-b:a", "128k"],
    "song.flac": ["-c:a", "flac"],
    "song.ogg": ["-c:a", "libvorbis", "-q:a", "3"],
    "song.m4a": ["-c:a", "aac", "-b:a", "128k"],
}

# A 1x1 PNG: the embedded picture that must survive.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d4944415478da63f8ffff3f0005fe02fea7d6a4b00000000049454e44ae426082"
)

# Run with the clients venv's Python: sets the starting tags, or reads them as JSON.
MUTAGEN = r'''
import base64, hashlib, json, sys
from mutagen import File
from mutagen.flac import FLAC, Picture
from mutagen.id3 import ID3, APIC, TCON, TIT2, TPE1, TXXX
from mutagen.mp4 import MP4, MP4Cover, MP4FreeForm

mode, path, png = sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3])

def picture():
    p = Picture(); p.type = 3; p.mime = "image/png"; p.desc = "cover"; p.data = png
    p.width = p.height = 1; p.depth = 24
    return p

if mode == "retitle":
    f = File(path); f["title"] = "Edited Title"; f.save(); sys.exit(0)

if mode == "setup":
    if path.endswith(".mp3"):
        tags = ID3()
        tags.add(TIT2(encoding=3, text="Original Title")); tags.add(TPE1(encoding=3, text="Someone"))
        tags.add(TCON(encoding=3, text="Rock")); tags.add(TXXX(encoding=3, desc="MYTAG", text="keep me"))
        tags.add(APIC(encoding=3, mime="image/png", type=3, desc="cover", data=png))
        tags.save(path, v2_version=4)
    elif path.endswith(".m4a"):
        f = MP4(path); f.add_tags() if f.tags is None else None
        f["\xa9nam"] = ["Original Title"]; f["\xa9ART"] = ["Someone"]; f["\xa9gen"] = ["Rock"]
        f["----:com.apple.iTunes:MYTAG"] = [MP4FreeForm(b"keep me")]
        f["covr"] = [MP4Cover(png, imageformat=MP4Cover.FORMAT_PNG)]
        f.save()
    else:
        f = File(path)
        f["title"] = "Original Title"; f["artist"] = "Someone"; f["genre"] = "Rock"; f["mytag"] = "keep me"
        if path.endswith(".flac"):
            f.add_picture(picture())
        else:
            f["metadata_block_picture"] = [base64.b64encode(picture().write()).decode()]
        f.save()
    sys.exit(0)

def text(values):
    out = []
    for v in values or []:
        if isinstance(v, bytes): v = v.decode()
        elif not isinstance(v, str) and hasattr(v, "text"): v = None
        out.extend(str(x) for x in (v if isinstance(v, list) else [v]) if x is not None)
    return out

read = {}
if path.endswith(".mp3"):
    t = ID3(path)
    def frame(key): return [str(x) for x in t[key].text] if key in t else []
    read = {"title": frame("TIT2"), "genre": frame("TCON"), "bpm": frame("TBPM"), "key": frame("TKEY"),
            "mood": frame("TMOO"), "mytag": frame("TXXX:MYTAG"),
            "track_gain": frame("TXXX:REPLAYGAIN_TRACK_GAIN"), "track_peak": frame("TXXX:REPLAYGAIN_TRACK_PEAK"),
            "pictures": [hashlib.sha256(f.data).hexdigest() for f in t.getall("APIC")], "version": t.version[1]}
elif path.endswith(".m4a"):
    t = MP4(path).tags or {}
    def free(name):
        return [bytes(v).decode() for k in t.keys() if k.lower() == ("----:com.apple.itunes:" + name).lower() for v in t[k]]
    read = {"title": list(t.get("\xa9nam", [])), "genre": list(t.get("\xa9gen", [])),
            "bpm": [str(v) for v in t.get("tmpo", [])], "key": free("initialkey"), "mood": free("MOOD"),
            "mytag": free("MYTAG"), "track_gain": free("replaygain_track_gain"), "track_peak": free("replaygain_track_peak"),
            "pictures": [hashlib.sha256(bytes(c)).hexdigest() for c in t.get("covr", [])]}
else:
    f = File(path)
    def field(key): return list(f.tags.get(key, [])) if f.tags else []
    pictures = [p.data for p in f.pictures] if path.endswith(".flac") else \
        [Picture(base64.b64decode(v)).data for v in field("metadata_block_picture")]
    read = {"title": field("title"), "genre": field("genre"), "bpm": field("bpm"), "key": field("initialkey"),
            "mood": field("mood"), "mytag": field("mytag"), "track_gain": field("replaygain_track_gain"),
            "track_peak": field("replaygain_track_peak"),
            "pictures": [hashlib.sha256(p).hexdigest() for p in pictures]}
print(json.dumps(read))
'''


@pytest.fixture(scope="module")
def clients_python() -> Path:
    value = os.environ.get("TIMBRE_CLIENTS_VENV", "")
    python = Path(value) / "bin/python" if value else None
    if python is None or not python.is_file():
        pytest.skip("TIMBRE_CLIENTS_VENV is not set to a venv with mutagen (scripts/requirements-clients.txt)")
    return python


def run(argv, timeout=300, check=True) -> subprocess.CompletedProcess:
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout)
    if check:
        assert done.returncode == 0, f"{' '.join(map(str, argv))}:\n{done.stdout}\n{done.stderr}"
    return done


def audio_stream(path: Path) -> str:
    """The digest of the demuxed audio packets, as ffmpeg copies them (no decoding)."""
    done = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:a", "-c", "copy", "-f", "data", "-"],
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0 and done.stdout, done.stderr.decode(errors="replace")
    return hashlib.sha256(done.stdout).hexdigest()


def library_rows(data: Path) -> dict[str, tuple]:
    """path -> (state, analysed_at, title) from the library database."""
    with sqlite3.connect(data / "library.sqlite3", timeout=10) as db:
        rows = db.execute("SELECT path, state, analysed_at, title FROM tracks").fetchall()
    return {Path(p).name: (state, at, title) for p, state, at, title in rows}


def top_genre(data: Path, name: str) -> str:
    with sqlite3.connect(data / "library.sqlite3", timeout=10) as db:
        (label,) = db.execute(
            "SELECT p.top_label FROM predictions p JOIN tracks t ON t.id = p.track_id "
            "WHERE p.model = 'genre' AND t.path LIKE ?",
            (f"%/{name}",),
        ).fetchone()
    return label


def test_tag_writes_reads_back_undoes_and_leaves_audio_alone(timbred, clients_python, tmp_path):
    pool, missing = find_gtzan_pool()
    if pool is None:
        pytest.skip(missing)
    clip = max(sorted((pool / "jazz").glob("*.flac")), key=lambda p: p.stat().st_size)
    music, data = tmp_path / "music", tmp_path / "data"
    music.mkdir()
    for name, codec in FORMATS.items():
        run(["ffmpeg", "-v", "error", "-i", clip, "-t", "12", "-map_metadata", "-1", *codec, music / name])
        run([clients_python, "-c", MUTAGEN, "setup", music / name, PNG.hex()])

    def tags(name: str) -> dict:
        return json.loads(run([clients_python, "-c", MUTAGEN, "read", music / name, PNG.hex()]).stdout)

    before = {name: tags(name) for name in FORMATS}
    for name, read in before.items():
        assert read["genre"] == ["Rock"] and read["pictures"] and read["mytag"] == ["keep me"], (name, read)
    streams = {name: audio_stream(music / name) for name in FORMATS}
    config = tmp_path / "timbre.toml"
    config.write_text(
        "[tagging.genre]\nsource = \"genre\"\nmin_confidence = 0.0\ntag = \"\"\npolicy = \"replace\"\n"
        "[tagging.mood]\nsource = \"musicnn-msd\"\nmin_confidence = 0.0\ntag = \"\"\npolicy = \"fill\"\n"
    )
    common = ["--data-dir", data, "--config", config]

    daemon = Daemon(timbred, music, data, extra_args=["--models", "musicnn-msd,genre", "--config", str(config)])
    try:
        deadline = time.time() + 600
        while True:
            rows = library_rows(data) if (data / "library.sqlite3").exists() else {}
            if len(rows) == 4 and all(state == 2 for state, _, _ in rows.values()):
                break
            assert time.time() < deadline, f"not analysed in time: {rows}"
            time.sleep(1)
        analysed = {name: at for name, (_, at, _) in rows.items()}

        # --dry-run: every change listed, no byte changed.
        bytes_before = {name: (music / name).read_bytes() for name in FORMATS}
        dry = run([timbred, "tag", "--dry-run", "--json", *common, music])
        reports = {Path(r["path"]).name: r for r in map(json.loads, dry.stdout.splitlines())}
        assert set(reports) == set(FORMATS), dry.stdout
        for name, report in reports.items():
            fields = {c["field"] for c in report["changes"]}
            assert {"genre", "bpm", "key", "replaygain"} <= fields, (name, report)
            assert not report["written"]
        assert {name: (music / name).read_bytes() for name in FORMATS} == bytes_before, "--dry-run changed a file"

        # The write, while the daemon runs on the same library.
        done = run([timbred, "tag", "--json", *common, music])
        assert all(json.loads(line)["written"] for line in done.stdout.splitlines()), done.stdout
        for name in FORMATS:
            after = tags(name)
            assert after["genre"] == [top_genre(data, name)], (name, after)
            assert after["bpm"] and after["bpm"][0].isdigit() and 30 <= int(after["bpm"][0]) <= 300, (name, after)
            assert after["key"] and after["key"][0][0] in "ABCDEFG", (name, after)
            assert after["mood"], (name, after)
            gain = after["track_gain"][0]
            assert gain.endswith(" dB") and -60 < float(gain[:-3]) < 60, (name, after)
            assert 0.0 < float(after["track_peak"][0]) <= 2.0, (name, after)
            for kept in ("title", "mytag", "pictures"):
                assert after[kept] == before[name][kept], (name, kept, after)
            assert audio_stream(music / name) == streams[name], f"{name}: the audio stream changed"
            assert not list(music.glob(".*.tmp")), "a temporary copy was left"
        assert tags("song.mp3").get("version") == 4, "ID3v2.4 stays ID3v2.4"

        # Someone else edits a tag: the daemon refreshes its tags and analyses nothing.
        run([clients_python, "-c", MUTAGEN, "retitle", music / "song.flac", PNG.hex()])
        deadline = time.time() + 60
        while library_rows(data)["song.flac"][2] != "Edited Title":
            assert time.time() < deadline, f"the daemon did not see the edit: {library_rows(data)}"
            time.sleep(0.5)
        time.sleep(3)  # any analysis the edit started would be stored by now
        rows = library_rows(data)
        assert {name: (state, at) for name, (state, at, _) in rows.items()} == {
            name: (2, at) for name, at in analysed.items()
        }, "a tag edit was analysed again"

        # --undo puts back what was there; what timbre did not write stays.
        undone = run([timbred, "tag", "--undo", "--json", *common, music])
        assert len(undone.stdout.splitlines()) == 4, undone.stdout
        for name in FORMATS:
            after = tags(name)
            assert after["genre"] == ["Rock"], (name, after)
            for gone in ("bpm", "key", "mood", "track_gain", "track_peak"):
                assert after[gone] == [], (name, gone, after)
            assert after["pictures"] == before[name]["pictures"] and after["mytag"] == ["keep me"], (name, after)
            assert audio_stream(music / name) == streams[name], f"{name}: the audio stream changed on undo"
        nothing = run([timbred, "tag", "--undo", "--json", *common, music])
        assert nothing.stdout.strip() == "", "a second undo finds no write of timbre's left"
    finally:
        daemon.stop()

    # A path the library does not hold is an error naming it; the others are still done.
    stranger = tmp_path / "elsewhere.flac"
    shutil.copy(music / "song.flac", stranger)
    failed = run([timbred, "tag", "--dry-run", *common, stranger], check=False)
    assert failed.returncode == 1 and "elsewhere.flac" in failed.stderr and "not in the library" in failed.stderr


def test_the_daemon_tags_each_track_once_analysed_when_asked(timbred, clients_python, tmp_path):
    """tagging.write = true: the daemon writes the tags right after storing the analysis, the
    write is recorded, and the rewritten file is not analysed again."""
    pool, missing = find_gtzan_pool()
    if pool is None:
        pytest.skip(missing)
    clip = max(sorted((pool / "reggae").glob("*.flac")), key=lambda p: p.stat().st_size)
    music, data = tmp_path / "music", tmp_path / "data"
    music.mkdir()
    song = music / "song.flac"
    run(["ffmpeg", "-v", "error", "-i", clip, "-t", "12", "-map_metadata", "-1", "-c:a", "flac", song])
    run([clients_python, "-c", MUTAGEN, "setup", song, PNG.hex()])
    stream = audio_stream(song)
    config = tmp_path / "timbre.toml"
    config.write_text('[tagging]\nwrite = true\nfields = ["bpm", "key", "replaygain"]\n')

    def tags() -> dict:
        return json.loads(run([clients_python, "-c", MUTAGEN, "read", song, PNG.hex()]).stdout)

    daemon = Daemon(timbred, music, data, extra_args=["--models", "musicnn-msd,genre", "--config", str(config)])
    try:
        deadline = time.time() + 600
        while not tags()["bpm"]:
            assert time.time() < deadline, "the daemon wrote no tags"
            time.sleep(1)
        analysed = library_rows(data)["song.flac"]
        time.sleep(4)  # the watcher sees the rename; an analysis it started would show by now
        assert library_rows(data)["song.flac"] == analysed, "the tagged file was analysed again"
        after = tags()
        assert after["key"] and after["track_gain"] and after["genre"] == ["Rock"], after
        assert after["pictures"] and after["mytag"] == ["keep me"], after
        assert audio_stream(song) == stream
        with sqlite3.connect(data / "library.sqlite3", timeout=10) as db:
            (writes,) = db.execute("SELECT count(*) FROM tag_writes").fetchone()
        assert writes == 1
    finally:
        daemon.stop()
