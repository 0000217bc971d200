"""Smoke test of training/timbre_train: a tiny dataset, one epoch of each architecture, the export,
and the ONNX model folder it writes.

For each of cnn, bilstm and cnn-lstm: PyTorch and onnxruntime give the same probabilities and
embedding (max abs diff <= 1e-4) on the same input, probabilities sum to 1, model.toml parses and
its sha256 is that of model.onnx, and the batch axis is dynamic (batch 1 and 5 both run).

Data: 2 genres x 4 clips of the GTZAN pool (symlinked), or generated tones when the pool is absent.
Features come from `timbred features`, so TIMBRED must point at the binary; skipped otherwise.
"""

from __future__ import annotations

import csv
import hashlib
import json
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import REPO_ROOT, find_gtzan_pool

sys.path.insert(0, str(REPO_ROOT / "training"))

torch = pytest.importorskip("torch", reason="torch is not installed in this venv (scripts/requirements.txt)")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (scripts/requirements.txt)")
onnx = pytest.importorskip("onnx", reason="onnx is not installed (scripts/requirements.txt)")

from timbre_train import __main__ as cli  # noqa: E402
from timbre_train import export as E  # noqa: E402

GENRES = ("blues", "metal")
PER_GENRE = 4
TOLERANCE = 1e-4


def make_dataset(root: Path) -> str:
    """root/<genre>/<clip>: pool clips (one 30 s clip per genre when there is one) or tones."""
    pool, _ = find_gtzan_pool()
    if pool is not None:
        with open(pool / "MANIFEST.tsv", newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        for genre in GENRES:
            clips = sorted((r for r in rows if r["genre"] == genre), key=lambda r: r["path"])
            longs = [r for r in clips if float(r["duration_s"]) > 10][:1]
            chosen = longs + [r for r in clips if r not in longs][: PER_GENRE - len(longs)]
            (root / genre).mkdir(parents=True)
            for r in chosen:
                (root / genre / Path(r["path"]).name).symlink_to(pool / r["path"])
        return f"GTZAN pool {pool}"
    sr = 22050
    rng = np.random.default_rng(0)
    for g, (genre, base) in enumerate(zip(GENRES, (110.0, 1760.0))):
        (root / genre).mkdir(parents=True)
        for i in range(PER_GENRE):
            t = np.arange(int(sr * (2.0 + i))) / sr
            y = 0.3 * np.sin(2 * np.pi * base * (1 + 0.1 * i) * t) + 0.01 * rng.standard_normal(len(t))
            sf.write(root / genre / f"{genre}.{i:05d}.wav", y.astype(np.float32), sr, subtype="PCM_16")
    return "generated tones (GTZAN pool absent)"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, timbred, report):
    root = tmp_path_factory.mktemp("training-smoke")
    source = make_dataset(root / "data")
    report(f"training smoke test data: {source}")
    return {"data": root / "data", "cache": root / "cache", "out": root / "models", "timbred": timbred}


@pytest.fixture(scope="module", params=["cnn", "bilstm", "cnn-lstm"])
def trained(request, tiny):
    name = request.param
    outcome = cli.main([
        "--model", name, "--data", str(tiny["data"]), "--out", str(tiny["out"] / name), "--epochs", "1",
        "--seed", "0", "--timbred", str(tiny["timbred"]), "--cache-dir", str(tiny["cache"]),
    ])
    return name, outcome


def test_folder_has_the_documented_files(trained):
    _, outcome = trained
    assert sorted(p.name for p in outcome.folder.iterdir()) == ["CARD.md", "metrics.json", "model.onnx", "model.toml"]
    card = (outcome.folder / "CARD.md").read_text()
    for needle in ("## Held-out results", "Confusion matrix", "## Split", "## Retrain", "-m timbre_train --model"):
        assert needle in card, f"CARD.md lacks {needle!r}"
    metrics = json.loads((outcome.folder / "metrics.json").read_text())
    assert 0.0 <= metrics["test"]["track_accuracy"] <= 1.0


def test_model_toml_matches_the_onnx_file(trained):
    name, outcome = trained
    manifest = tomllib.loads((outcome.folder / "model.toml").read_text())
    assert manifest["name"] == name
    assert manifest["features"] == {
        "plugin": "mel",
        "params": {"sample_rate": 22050, "n_fft": 2048, "hop_length": 512, "n_mels": 128},
        "segment_seconds": 3.0,
    }
    m = manifest["model"]
    assert m["file"] == "model.onnx"
    assert m["sha256"] == hashlib.sha256((outcome.folder / m["file"]).read_bytes()).hexdigest()
    assert (m["input"], m["probabilities"], m["embedding"]) == ("mel", "probabilities", "embedding")
    assert m["labels"] == list(GENRES)
    assert m["embedding_size"] == outcome.result.model.embedding_size

    proto = onnx.load(str(outcome.onnx))
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) <= 21
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 128, 130], dims


def test_onnxruntime_matches_pytorch(trained, report):
    name, outcome = trained
    ds = outcome.result.dataset
    rng = np.random.default_rng(1)
    noise = (rng.standard_normal((3, 128, 130)) * 15 - 30).astype(np.float32)
    x = np.concatenate([ds.x, noise])  # every real segment, train and held out, plus noise
    sess = E.session(outcome.onnx)
    p_ort, e_ort = E.run_onnx(sess, x)
    p_pt, e_pt = E.run_torch(outcome.result.model, x)
    dp, de = float(np.abs(p_ort - p_pt).max()), float(np.abs(e_ort - e_pt).max())
    report(f"{name}: onnxruntime vs PyTorch on {len(x)} segments: max abs diff {dp:.1e} (probabilities), {de:.1e} (embedding)")
    assert dp <= TOLERANCE and de <= TOLERANCE
    assert p_ort.shape == (len(x), len(GENRES)) and e_ort.shape == (len(x), outcome.result.model.embedding_size)
    assert (p_ort >= 0).all()
    np.testing.assert_allclose(p_ort.sum(axis=1), 1.0, atol=1e-5)


def test_batch_axis_is_dynamic(trained):
    _, outcome = trained
    x = np.resize(outcome.result.dataset.x, (5, 128, 130)).astype(np.float32)
    sess = E.session(outcome.onnx)
    p1, e1 = sess.run(["probabilities", "embedding"], {"mel": x[:1]})
    p5, e5 = sess.run(["probabilities", "embedding"], {"mel": x})
    assert p1.shape == (1, len(GENRES)) and p5.shape == (5, len(GENRES))
    assert e1.shape[0] == 1 and e5.shape[0] == 5
    np.testing.assert_allclose(p1[0], p5[0], atol=1e-5)  # a row does not depend on its batch
    np.testing.assert_allclose(e1[0], e5[0], atol=1e-4)


def test_split_is_by_file(trained):
    _, outcome = trained
    r = outcome.result
    held_out = set(r.split["val"]) | set(r.split["test"])
    assert not set(r.split["train"]) & held_out and not set(r.split["val"]) & set(r.split["test"])
    assert sorted(np.concatenate(list(r.split.values()))) == list(range(len(r.dataset.files)))
    for s, files in r.split.items():  # every segment of a file is where its file is
        assert all(r.assignment[r.dataset.files[f].rel] == s for f in files)


def test_rust_plugin_loads_and_classifies(trained, tiny, tmp_path, report):
    """The exported folder through the Rust side: the onnx plugin (via timbre-bench, through the
    plugin ABI) agrees with PyTorch, and `timbred analyze` classifies a clip with it."""
    import os
    import subprocess

    name, outcome = trained
    bench = Path(tiny["timbred"]).resolve().parent / "timbre-bench"
    if not bench.is_file() or not os.environ.get("ORT_DYLIB_PATH"):
        pytest.skip("needs timbre-bench beside TIMBRED and ORT_DYLIB_PATH (scripts/test provides both)")
    x = outcome.result.dataset.x[:4].astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    run = subprocess.run([str(bench), "onnx", str(outcome.folder), str(tmp_path / "x.npy"), "--repeat", "1"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    rust = json.loads(run.stdout)
    p_pt, e_pt = E.run_torch(outcome.result.model, x)
    dp = float(np.abs(np.array(rust["probabilities"]).reshape(p_pt.shape) - p_pt).max())
    de = float(np.abs(np.array(rust["embedding"]).reshape(e_pt.shape) - e_pt).max())
    report(f"{name}: Rust onnx plugin vs PyTorch: max abs diff {dp:.1e} (probabilities), {de:.1e} (embedding)")
    assert dp <= TOLERANCE and de <= TOLERANCE

    clip = next(p for p in sorted(Path(tiny["data"]).rglob("*")) if p.suffix in (".flac", ".wav"))
    run = subprocess.run([str(tiny["timbred"]), "--model-path", str(outcome.folder), "--models", name,
                          "analyze", "--json", "--top-k", "0", str(clip)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    predictions = json.loads(run.stdout)["predictions"]
    assert [p["model"] for p in predictions] == [name]
    assert abs(sum(l["probability"] for l in predictions[0]["labels"]) - 1.0) < 1e-5


def test_walkthrough_a_new_model_folder_shows_up_in_the_daemon(trained, tiny, tmp_path):
    """docs/PLUGINS.md's walkthrough: a folder trained by training/ and dropped into a models
    directory is listed by `timbre plugins` and answers in `timbre classify`, with no rebuild."""
    import shutil
    import subprocess

    from conftest import Daemon

    name, outcome = trained
    if name != "cnn":
        pytest.skip("one architecture is enough for the walkthrough")
    cli = Path(tiny["timbred"]).resolve().parent / "timbre"
    models = tmp_path / "models"
    shutil.copytree(outcome.folder, models / "my-genres")
    root, data = tmp_path / "music", tmp_path / "data"
    root.mkdir()
    data.mkdir()
    daemon = Daemon(tiny["timbred"], root, data, extra_args=["--model-path", str(models)])
    try:
        address = f"http://{daemon.address}"
        listed = subprocess.run([str(cli), "--addr", address, "--json", "plugins"], capture_output=True, text=True)
        assert listed.returncode == 0, listed.stderr
        assert f'"{name}"' in listed.stdout and str(models / "my-genres") in listed.stdout, listed.stdout
        clip = next(p for p in sorted(Path(tiny["data"]).rglob("*")) if p.suffix in (".flac", ".wav"))
        answer = subprocess.run(
            [str(cli), "--addr", address, "--json", "classify", "--model", name, "--top-k", "0", str(clip)],
            capture_output=True,
            text=True,
        )
        assert answer.returncode == 0, answer.stderr
        predictions = json.loads(answer.stdout)["predictions"]
        assert [p["model"] for p in predictions] == [name]
        assert sorted(l["name"] for l in predictions[0]["labels"]) == sorted(GENRES)
    finally:
        assert daemon.stop() == 0
