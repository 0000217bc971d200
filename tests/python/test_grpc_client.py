"""A Python client generated from proto/ (grpcio-tools) talks to a real timbred.

`Classify` from Python, from the `timbre` CLI and `timbred analyze` give the same
answer for the same file; the library RPCs answer a Python client too.
"""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO_ROOT, Daemon

grpc = pytest.importorskip("grpc")
protoc = pytest.importorskip("grpc_tools.protoc")


@pytest.fixture(scope="module")
def stubs(tmp_path_factory):
    """timbre_pb2 and timbre_pb2_grpc, generated from proto/ for this run."""
    out = tmp_path_factory.mktemp("stubs")
    proto_root = REPO_ROOT / "proto"
    import grpc_tools

    include = Path(grpc_tools.__file__).parent / "_proto"
    code = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{proto_root}",
            f"-I{include}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            str(proto_root / "timbre/v1/timbre.proto"),
        ]
    )
    assert code == 0, "protoc failed on proto/timbre/v1/timbre.proto"
    sys.path.insert(0, str(out))
    try:
        pb2 = importlib.import_module("timbre.v1.timbre_pb2")
        pb2_grpc = importlib.import_module("timbre.v1.timbre_pb2_grpc")
    finally:
        sys.path.remove(str(out))
    return pb2, pb2_grpc


@pytest.fixture()
def library(tmp_path, timbred):
    root, data = tmp_path / "music", tmp_path / "data"
    root.mkdir()
    data.mkdir()
    return timbred, root, data


def a_clip(root: Path) -> Path:
    """A real GTZAN clip when the pool is here, else the project's own sample."""
    from conftest import find_gtzan_pool

    pool, _ = find_gtzan_pool()
    source = sorted((pool / "rock").glob("*.flac"))[0] if pool else REPO_ROOT / "tests/data/sample.flac"
    target = root / source.name
    shutil.copy(source, target)
    return target


def by_model(predictions) -> dict[str, list[tuple[str, float]]]:
    """model -> [(label, probability)] from JSON-shaped predictions."""
    return {p["model"]: [(l["name"], l["probability"]) for l in p["labels"]] for p in predictions}


def assert_same(got: dict, expected: dict, how: str) -> None:
    assert sorted(got) == sorted(expected), f"{how}: models differ"
    for model, labels in expected.items():
        assert [n for n, _ in got[model]] == [n for n, _ in labels], f"{how}: {model} label order"
        for (_, p), (_, q) in zip(got[model], labels):
            assert abs(p - q) < 1e-6, f"{how}: {model} {p} vs {q}"


def test_python_client_cli_and_offline_analyze_agree(library, stubs):
    timbred, root, data = library
    pb2, pb2_grpc = stubs
    clip = a_clip(root)

    offline = subprocess.run(
        [str(timbred), "analyze", "--json", "--top-k", "0", str(clip)], capture_output=True, text=True, check=True
    )
    expected = by_model(json.loads(offline.stdout)["predictions"])
    shipped = {p.parent.name for p in (REPO_ROOT / "plugins/models").glob("*/model.toml")}
    assert set(expected) == shipped, "the shipped models"

    daemon = Daemon(timbred, root, data)
    try:
        with grpc.insecure_channel(daemon.address) as channel:
            client = pb2_grpc.TimbreStub(channel)
            for request in (
                pb2.ClassifyRequest(path=str(clip.resolve())),
                pb2.ClassifyRequest(encoded=clip.read_bytes(), filename_hint=clip.name),
            ):
                response = client.Classify(request, timeout=60)
                got = {
                    p.model: [(l.name, l.probability) for l in p.labels] for p in response.predictions
                }
                assert_same(got, expected, f"Python client, {request.WhichOneof('source')}")

            # The library RPCs answer a Python client too: the clip is found and analysed.
            deadline = time.monotonic() + 120
            while True:
                tracks = client.ListTracks(pb2.ListTracksRequest(), timeout=10).tracks
                if tracks and all(t.state == pb2.ANALYSIS_STATE_ANALYSED for t in tracks):
                    break
                assert time.monotonic() < deadline, f"the library was not analysed: {tracks}"
                time.sleep(0.2)
            track = client.GetTrack(pb2.GetTrackRequest(track_id=tracks[0].id), timeout=10)
            stored = {p.model: [(l.name, l.probability) for l in p.labels] for p in track.predictions}
            assert_same(stored, expected, "stored in the library")

            with pytest.raises(grpc.RpcError) as refused:
                client.Classify(pb2.ClassifyRequest(path="/etc/passwd"), timeout=10)
            assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED

        cli = Path(timbred).parent / "timbre"
        if not cli.is_file():
            pytest.fail(f"{cli} is missing: the `timbre` CLI is built with the workspace")
        out = subprocess.run(
            [str(cli), "--addr", f"http://{daemon.address}", "--json", "classify", "--top-k", "0", "--tag-threshold", "0", str(clip)],
            capture_output=True,
            text=True,
        )
        assert out.returncode == 0, out.stderr
        assert_same(by_model(json.loads(out.stdout)["predictions"]), expected, "timbre CLI")
    finally:
        assert daemon.stop() == 0
