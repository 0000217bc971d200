"""The Python client (`pip install ./clients/python`, `from timbre import Client`) against a
real timbred: every method, pagination, errors with their status, bearer tokens."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO_ROOT, Daemon, find_gtzan_pool

pytest.importorskip("grpc")
pytest.importorskip("grpc_tools")


def clips(root: Path) -> list[Path]:
    """Three real clips of different genres when the pool is here, else the project's own."""
    pool, _ = find_gtzan_pool()
    if pool:
        sources = [sorted((pool / genre).glob("*.flac"))[0] for genre in ("classical", "metal", "rock")]
    else:
        sources = [REPO_ROOT / "tests/data/sample.flac", *sorted((REPO_ROOT / "tests/data/codecs").glob("*.flac"))][:3]
    copies = []
    for i, source in enumerate(sources):
        copies.append(root / f"{i}-{source.name}")
        shutil.copy(source, copies[-1])
    return copies


@pytest.fixture()
def daemon(tmp_path, timbred):
    root, data = tmp_path / "music", tmp_path / "data"
    root.mkdir()
    data.mkdir()
    files = clips(root)
    process = Daemon(timbred, root, data)
    yield process, root, files
    assert process.stop() == 0


def labels(response) -> dict[str, list[tuple[str, float]]]:
    return {p.model: [(l.name, round(l.probability, 5)) for l in p.labels] for p in response.predictions}


def test_every_method_against_a_real_daemon(timbre, daemon):
    process, root, files = daemon
    with timbre.Client(process.address) as client:
        progress = list(client.scan())
        assert progress and progress[-1].finished, progress
        assert progress[-1].total == len(files) and progress[-1].failed == 0, progress[-1]

        # Pages of one track each: the iterator follows the page tokens to the end.
        deadline = time.monotonic() + 120
        while True:
            tracks = list(client.tracks(page_size=1))
            if len(tracks) == len(files) and all(t.state == timbre.pb.ANALYSIS_STATE_ANALYSED for t in tracks):
                break
            assert time.monotonic() < deadline, tracks
            time.sleep(0.2)
        assert sorted(t.path for t in tracks) == sorted(str(f.resolve()) for f in files)
        by_path = {t.path: t for t in tracks}
        first = by_path[str(files[0].resolve())]
        assert client.track(first.id) == client.track(files[0]), "by id and by path"

        # Classify: a file uploaded, read by the daemon, as bytes and as samples agree.
        uploaded = client.classify(files[0])
        assert len(uploaded.predictions) >= 1
        assert labels(client.classify(files[0], on_server=True)) == labels(uploaded)
        assert labels(client.classify(files[0].read_bytes())) == labels(uploaded)
        import soundfile

        audio, rate = soundfile.read(str(files[0]), dtype="float32", always_2d=True)
        from_samples = client.classify(timbre.Samples(audio.reshape(-1), rate, channels=audio.shape[1]))
        assert [p.model for p in from_samples.predictions] == [p.model for p in uploaded.predictions]
        assert abs(from_samples.duration_s - uploaded.duration_s) < 0.05
        top = client.classify(files[0], top_k=1, models=[uploaded.predictions[0].model])
        assert [len(p.labels) for p in top.predictions] == [1]

        # Recommend and Playlist: the other tracks, never the seed, from any kind of example.
        others = {t.id for t in tracks} - {first.id}
        for example in (first.id, files[0]):
            found = client.recommend(example, limit=5)
            assert {r.track.id for r in found} == others, example
            assert found[0].score >= found[-1].score
        # Uploaded audio is not a library track, so the track it came from is its best match.
        found = client.recommend(files[0].read_bytes(), limit=5)
        assert found[0].track.id == first.id and {r.track.id for r in found} == others | {first.id}
        unlike = client.recommend([first.id], negative=[tracks[1].id if tracks[1].id != first.id else tracks[2].id], limit=5)
        assert first.id not in {r.track.id for r in unlike}
        walk = client.playlist(first.id, length=2)
        assert len(walk) == 2 and first.id not in {r.track.id for r in walk}
        assert {p.name for p in client.plugins().plugins} >= {"mel"}

        # Errors carry the daemon's status and message.
        with pytest.raises(timbre.TimbreError) as missing:
            client.track(10**9)
        assert missing.value.code.name == "NOT_FOUND" and "1000000000" in missing.value.details
        with pytest.raises(timbre.TimbreError) as outside:
            client.classify("/etc/hostname", on_server=True)
        assert outside.value.code.name == "PERMISSION_DENIED"
        with pytest.raises(ValueError):
            client.recommend(first.id, strategy="sideways")


def test_a_token_is_sent_when_the_daemon_wants_one(timbre, timbred, tmp_path):
    root, data = tmp_path / "music", tmp_path / "data"
    root.mkdir()
    data.mkdir()
    tokens = tmp_path / "tokens"
    tokens.write_text("s3cret-token\n")
    tokens.chmod(0o600)
    process = Daemon(timbred, root, data, extra_args=["--auth-token-file", str(tokens)])
    try:
        with timbre.Client(process.address, token="") as anonymous:
            with pytest.raises(timbre.TimbreError) as refused:
                anonymous.plugins()
            assert refused.value.code.name == "UNAUTHENTICATED"
        with timbre.Client(process.address, token="s3cret-token") as client:
            assert client.plugins().plugins
        os.environ["TIMBRE_TOKEN"] = "s3cret-token"
        try:
            with timbre.Client(process.address) as from_environment:
                assert from_environment.plugins().plugins
        finally:
            del os.environ["TIMBRE_TOKEN"]
    finally:
        assert process.stop() == 0
