"""The Rust onnx plugin against Python onnxruntime on the same models and inputs.

Every shipped ONNX model folder (plugins/models/*/) and the tiny test fixture run through
`timbre-bench onnx` (which loads the onnx plugin through the plugin ABI, as timbred does)
and through onnxruntime in Python; probabilities and embeddings must agree within 1e-4.
Needs TIMBRED (the bench binary sits beside it) and ORT_DYLIB_PATH; the test command sets both.
"""
import json
import os
import subprocess
import tomllib
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from conftest import REPO_ROOT

TOLERANCE = 1e-4
MODEL_DIRS = sorted(p.parent for p in (REPO_ROOT / "plugins" / "models").glob("*/model.onnx")) + [
    REPO_ROOT / "tests" / "data" / "tiny-model"
]


def bench_binary() -> Path:
    timbred = os.environ.get("TIMBRED")
    if not timbred:
        pytest.skip("TIMBRED is not set (scripts/test sets it to the release build)")
    bench = (REPO_ROOT / timbred).resolve().parent / "timbre-bench"
    if not bench.is_file():
        pytest.skip(f"{bench} is missing: build it with `cargo build --release --workspace`")
    if not os.environ.get("ORT_DYLIB_PATH"):
        pytest.skip("ORT_DYLIB_PATH is not set (scripts/test sets it from scripts/onnxruntime)")
    return bench


@pytest.mark.parametrize("model_dir", MODEL_DIRS, ids=lambda p: p.name)
def test_rust_plugin_matches_python_onnxruntime(model_dir, tmp_path, report):
    bench = bench_binary()
    manifest = tomllib.loads((model_dir / "model.toml").read_text())["model"]
    session = ort.InferenceSession(str(model_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    # Real-looking log-mel values, in the model's own input shape ([128, 130] for the networks
    # trained here, [187, 96] time-major for musicnn): dB around -40 with a 15 dB spread, or
    # musicnn's log10(1 + 10^4 x) around 1; 5 segments.
    _, rows, columns = session.get_inputs()[0].shape
    scale, centre = (15, -40) if manifest.get("kind", "classes") == "classes" else (0.5, 1.0)
    batch = (np.random.default_rng(1).standard_normal((5, rows, columns)) * scale + centre).astype(np.float32)
    np.save(tmp_path / "batch.npy", batch)
    run = subprocess.run([str(bench), "onnx", str(model_dir), str(tmp_path / "batch.npy"), "--repeat", "1"],
                         capture_output=True, text=True)
    assert run.returncode == 0, f"timbre-bench onnx failed on {model_dir}:\n{run.stderr}"
    rust = json.loads(run.stdout)

    names = [manifest.get("probabilities", "probabilities"), manifest.get("embedding", "embedding")]
    probabilities, embedding = session.run(names, {manifest.get("input", "mel"): batch})
    rust_probabilities = np.array(rust["probabilities"], dtype=np.float32).reshape(probabilities.shape)
    rust_embedding = np.array(rust["embedding"], dtype=np.float32).reshape(embedding.shape)
    diff_p = float(np.abs(rust_probabilities - probabilities).max())
    diff_e = float(np.abs(rust_embedding - embedding).max())
    report(f"onnx parity {model_dir.name}: max |diff| probabilities {diff_p:.2e}, embedding {diff_e:.2e}")
    assert diff_p <= TOLERANCE and diff_e <= TOLERANCE, f"{model_dir.name}: {diff_p}, {diff_e}"
    if manifest.get("kind", "classes") == "classes":  # tags are independent, classes sum to 1
        assert np.allclose(rust_probabilities.sum(axis=1), 1.0, atol=1e-5)
