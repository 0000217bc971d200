"""The beets plugin (clients/beets) with a real beets, on a temporary library of real clips,
against a real timbred: `beet timbre` stores genres in the database and the files,
`--pretend` changes nothing, `beet timbre-similar` lists the other items."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO_ROOT, Daemon, find_gtzan_pool


@pytest.fixture(scope="module")
def clients_venv() -> Path:
    value = os.environ.get("TIMBRE_CLIENTS_VENV", "")
    if not value or not (Path(value) / "bin/beet").is_file():
        pytest.skip(
            "TIMBRE_CLIENTS_VENV is not set to a venv with beets: "
            "TIMBRE_CLIENTS_VENV=$(scripts/python-env --requirements scripts/requirements-clients.txt)"
        )
    return Path(value)


def test_beet_timbre_tags_a_real_library(clients_venv, client_site, timbred, tmp_path):
    pool, missing = find_gtzan_pool()
    if pool is None:
        pytest.skip(missing)
    music, data, beets_dir = tmp_path / "music", tmp_path / "data", tmp_path / "beets"
    for folder in (music, data, beets_dir):
        folder.mkdir()
    for genre in ("classical", "metal", "reggae", "jazz"):
        # The 30 s clips where there are some: long enough for a confident genre.
        clips = sorted((pool / genre).glob("*.flac"), key=lambda p: -p.stat().st_size)
        shutil.copy(clips[0], music / f"{genre}-{clips[0].name}")
    (beets_dir / "config.yaml").write_text(
        f"""directory: {music}
library: {beets_dir / 'library.db'}
pluginpath: [{REPO_ROOT / 'clients/beets/beetsplug'}]
plugins: [timbre]
import:
  write: yes
  copy: no
  autotag: no
timbre:
  genre:
    min_confidence: 0.0
"""
    )
    env = dict(os.environ, BEETSDIR=str(beets_dir), PYTHONPATH=str(client_site))
    beet = str(clients_venv / "bin/beet")
    python = str(clients_venv / "bin/python")

    def run(*args: str, check: bool = True) -> str:
        done = subprocess.run([beet, *args], capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 0 or not check, f"beet {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout if done.returncode == 0 else done.stderr

    run("import", "--quiet", str(music))
    assert len(run("ls").splitlines()) == 4

    daemon = Daemon(timbred, music, data)
    try:
        env["TIMBRE_TOKEN"] = ""
        (beets_dir / "config.yaml").write_text(
            (beets_dir / "config.yaml").read_text() + f"  address: {daemon.address}\n"
        )
        pretend = run("timbre", "--pretend")
        assert pretend.count("genre:") == 4, pretend
        assert run("ls", "-f", "$genre").split() == [], "--pretend changed the database"

        out = run("timbre")
        assert out.count("genre:") == 4, out
        genres = dict(line.split("\t") for line in run("ls", "-f", "$path\t$genre").splitlines())
        assert all(genres.values()), genres
        classical = next(v for k, v in genres.items() if "/classical-" in k)
        assert classical == "Classical", genres
        # Written into the files too (beets writes tags): an independent reader sees them.
        for path, genre in genres.items():
            read = subprocess.run(
                [python, "-c", "import mutagen, sys; print(mutagen.File(sys.argv[1])['genre'][0])", path],
                capture_output=True,
                text=True,
            )
            assert read.stdout.strip() == genre, (path, read.stderr)
        # Tempo and key from the descriptor plugin, mood from musicnn's tags: set on every item.
        described = run("ls", "-f", "$bpm|$initial_key|$mood").splitlines()
        assert len(described) == 4, described
        for line in described:
            bpm, key, mood = line.split("|")
            assert 40 <= int(bpm) <= 250, described
            assert key and key[0] in "ABCDEFG", described
        assert any(line.split("|")[2] for line in described), f"no mood tag above the threshold: {described}"
        # Already set: a second run changes nothing unless forced.
        assert "genre:" not in run("timbre")

        # Similar items need the daemon's library: wait for its scan.
        deadline = time.monotonic() + 180
        while "like" not in (similar := run("timbre-similar", "classical", check=False)) or "not in the beets" in similar:
            assert time.monotonic() < deadline, similar
            time.sleep(1)
        lines = [l for l in similar.splitlines()[1:] if l.strip()]
        assert len(lines) == 3 and not any("classical-" in l for l in lines), similar
    finally:
        assert daemon.stop() == 0
