"""The MPD auto-DJ (clients/autodj) and M3U export against a real `mpd` with a null audio
output on a temporary music folder of real clips, and a real timbred on the same folder.

A song skipped after 2 s is recorded as a quick skip, which changes what is recommended next;
the DJ queues tracks MPD has, and reconnects when MPD restarts. A playlist written by
`timbre playlist --m3u` loads in MPD with every track."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import REPO_ROOT, Daemon, find_gtzan_pool

GENRES = ("classical", "metal", "jazz", "reggae")


@pytest.fixture(scope="module")
def clients_venv() -> Path:
    value = os.environ.get("TIMBRE_CLIENTS_VENV", "")
    if not value or not (Path(value) / "bin/python").is_file():
        pytest.skip(
            "TIMBRE_CLIENTS_VENV is not set to the clients venv (python-mpd2): "
            "TIMBRE_CLIENTS_VENV=$(scripts/python-env --requirements scripts/requirements-clients.txt)"
        )
    done = subprocess.run([str(Path(value) / "bin/python"), "-c", "import mpd"], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"{value} has no python-mpd2")
    return Path(value)


@pytest.fixture(scope="module")
def mpd_binary() -> str:
    found = shutil.which("mpd") or next((p for p in ("/usr/bin/mpd", "/usr/sbin/mpd") if os.path.exists(p)), None)
    if not found:
        pytest.skip("mpd is not installed (Debian package mpd; scripts/setup-system installs it)")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mpd:
    """A real mpd on a free loopback port, null output, its state in `state`."""

    def __init__(self, binary: str, music: Path, playlists: Path, state: Path, port: int | None = None):
        self.port = port or free_port()
        state.mkdir(exist_ok=True)
        self.conf = state / "mpd.conf"
        self.conf.write_text(
            f'music_directory "{music}"\nplaylist_directory "{playlists}"\n'
            f'db_file "{state}/db"\nstate_file "{state}/state"\nsticker_file "{state}/sticker"\n'
            f'bind_to_address "127.0.0.1"\nport "{self.port}"\nauto_update "no"\n'
            'audio_output {\n  type "null"\n  name "null"\n  mixer_type "none"\n}\n'
        )
        self.log = open(state / "mpd.log", "a")
        self.process = subprocess.Popen(
            [binary, "--no-daemon", "--stderr", str(self.conf)], stdout=self.log, stderr=self.log
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                self.socket = socket.create_connection(("127.0.0.1", self.port), timeout=10)
                break
            except OSError:
                assert self.process.poll() is None, (state / "mpd.log").read_text()
                assert time.monotonic() < deadline, "mpd did not listen"
                time.sleep(0.1)
        self.file = self.socket.makefile("rw", encoding="utf-8", newline="\n")
        assert self.file.readline().startswith("OK MPD")

    def command(self, line: str) -> list[tuple[str, str]]:
        self.file.write(line + "\n")
        self.file.flush()
        pairs = []
        while True:
            reply = self.file.readline().rstrip("\n")
            if reply == "OK":
                return pairs
            if reply.startswith("ACK"):
                raise RuntimeError(f"{line}: {reply}")
            key, _, value = reply.partition(": ")
            pairs.append((key, value))

    def files(self, command: str = "playlistinfo") -> list[str]:
        return [v for k, v in self.command(command) if k == "file"]

    def stop(self) -> None:
        self.socket.close()
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()


def quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def wait_for(what: str, check, timeout: float = 120.0, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(every)


@pytest.fixture()
def setup(tmp_path, timbred, mpd_binary, timbre):
    pool, missing = find_gtzan_pool()
    if pool is None:
        pytest.skip(missing)
    music, playlists, data = tmp_path / "music", tmp_path / "playlists", tmp_path / "data"
    for folder in (music, playlists, data):
        folder.mkdir()
    for genre in GENRES:
        # The longest clips: a skip after 2 s is well before their end.
        for clip in sorted((pool / genre).glob("*.flac"), key=lambda p: -p.stat().st_size)[:3]:
            shutil.copy(clip, music / f"{genre}-{clip.name}")
    count = len(list(music.iterdir()))
    daemon = Daemon(timbred, music, data)
    client = timbre.Client(daemon.address)
    mpd = Mpd(mpd_binary, music, playlists, tmp_path / "mpd")
    world = {"mpd": mpd}
    try:
        wait_for(
            "timbred to analyse the clips",
            lambda: [t.state for t in client.tracks()].count(2) == count,
            timeout=600,
            every=1,
        )
        mpd.command("update")
        wait_for("mpd's database", lambda: dict(mpd.command("stats")).get("songs") == str(count))
        yield client, world, music, playlists, daemon.address
    finally:
        client.close()
        world["mpd"].stop()
        assert daemon.stop() == 0


def test_a_skip_through_mpd_changes_what_the_autodj_queues(setup, timbre, clients_venv, client_site, tmp_path):
    client, world, music, playlists, address = setup
    mpd = world["mpd"]
    tracks = {Path(t.path).name: t for t in client.tracks()}
    first, second = f"{GENRES[1]}-", f"{GENRES[0]}-"
    a = next(n for n in sorted(tracks) if n.startswith(first))
    b = next(n for n in sorted(tracks) if n.startswith(second))
    History = timbre.History
    window = 3 * 3600.0
    without_skips = History(exclude_recent=True, recent_window_s=window, plays_as_positive=True)
    with_skips = History(exclude_recent=True, recent_window_s=window, plays_as_positive=True, skips_as_negative=True)
    names = lambda found: [Path(t.track.path).name for t in found]  # noqa: E731
    before = names(client.recommend(tracks[b].id, limit=8, history=with_skips))

    env = dict(os.environ, PYTHONPATH=f"{client_site}{os.pathsep}{REPO_ROOT / 'clients/autodj'}")
    dj = subprocess.Popen(
        [
            str(clients_venv / "bin/python"), "-m", "timbre_autodj", "-v",
            "--mpd", f"127.0.0.1:{mpd.port}", "--timbre", address,
            "--music-dir", str(music), "--low-water", "1", "--batch", "2",
        ],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
    )
    log: list[str] = []
    threading.Thread(target=lambda: [log.append(line.rstrip()) for line in dj.stderr], daemon=True).start()
    try:
        wait_for("the DJ to connect to MPD", lambda: any("connected to MPD" in l for l in log), timeout=30)
        mpd.command("clear")
        mpd.command(f"add {quote(a)}")
        mpd.command(f"add {quote(b)}")
        mpd.command("play 0")
        time.sleep(2)
        mpd.command("next")  # a skip after 2 s
        skipped = wait_for("the skip to be recorded", lambda: [l for l in log if l.startswith("timbre-autodj: skipped")])
        assert a in skipped[0], log
        seconds = float(skipped[0].rsplit("after ", 1)[1].split()[0])
        assert 1.5 <= seconds <= 4.0, skipped

        # The skip is in timbred's history: recommendations from the next song change.
        after = names(client.recommend(tracks[b].id, limit=8, history=with_skips))
        assert after != before, (before, after)
        assert a not in after, "played within the window"
        control = names(client.recommend(tracks[b].id, limit=8, history=without_skips))
        assert after != control, "the skip itself, not only the recent window, changes the ranking"

        # The queue ran low after the skip: the DJ queued what the history recommends.
        queued = wait_for("the DJ to queue", lambda: [l for l in log if l.startswith("timbre-autodj: queued")])
        queue = mpd.files()
        assert queue[:2] == [a, b] and len(queue) == 4, (queue, log)
        assert all((music / name).is_file() for name in queue), "queued tracks exist"
        assert len(set(queue)) == len(queue), "no repeats"
        expected = [n for n in after if n not in (a, b)][:2]
        assert queue[2:] == expected, (queue, after, control)

        # MPD restarts: the DJ reconnects and keeps working.
        mpd.stop()
        wait_for("the DJ to notice", lambda: any("retrying" in l for l in log), timeout=30)
        world["mpd"] = Mpd(mpd.process.args[0], music, playlists, mpd.conf.parent, port=mpd.port)
        wait_for("the DJ to reconnect", lambda: sum("connected to MPD" in l for l in log) >= 2, timeout=60)
    finally:
        dj.terminate()
        dj.wait(timeout=30)


def test_a_playlist_written_as_m3u8_loads_in_mpd_with_every_track(setup, timbred, tmp_path):
    client, world, music, playlists, address = setup
    mpd = world["mpd"]
    cli = Path(timbred).with_name("timbre")
    if not cli.is_file():
        pytest.skip(f"the timbre CLI is not built next to timbred ({cli})")
    tracks = list(client.tracks())
    seed = tracks[0]
    # The Python client's path: tracks between two, neither end among them.
    between = client.path(tracks[0].id, tracks[-1].path, length=4, no_repeat_artist=True)
    assert len(between) == 4 and not {t.track.id for t in between} & {tracks[0].id, tracks[-1].id}, between
    # MPD reads stored playlists (`NAME.m3u`, UTF-8) from its playlist directory, and playlist
    # files of any kind it knows (.m3u8 too) from its music directory, where relative paths are
    # relative to the file's folder; absolute paths inside the music directory work in both.
    variants = [(playlists, "absolute.m3u", False), (music, "absolute.m3u8", False), (music, "relative.m3u8", True)]
    for folder, name, relative in variants:
        file = folder / name
        argv = [str(cli), "--addr", address, "playlist", "--seed", str(seed.id), "-n", "6", "--m3u", str(file)]
        if relative:
            argv.append("--m3u-relative")
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        text = file.read_text(encoding="utf-8")
        assert text.startswith("#EXTM3U") and text.count("#EXTINF:") == 6, text
        listed = [l for l in text.splitlines() if l and not l.startswith("#")]
        mpd.command("clear")
        mpd.command(f"load {quote(file.stem if folder == playlists else name)}")
        loaded = mpd.files()
        assert len(loaded) == 6, (name, loaded, text)
        assert all((music / f).is_file() for f in loaded), loaded
        assert [os.path.basename(f) for f in loaded] == [os.path.basename(l) for l in listed], "in order"
