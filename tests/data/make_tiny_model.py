#!/usr/bin/env python3
"""Writes tests/data/tiny-model/: a model folder small enough to commit, whose output the
tests can recompute by hand. Graph: mel [N, 128, 130] -> mean over frames m [N, 128];
probabilities = softmax(m @ W + b) [N, 4]; embedding = m @ E [N, 8].
W, b and E are also saved as .npy so a test can check ONNX Runtime's numbers.
Needs numpy and onnx (scripts/requirements.txt)."""
import hashlib
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

out = Path(__file__).resolve().parent / "tiny-model"
out.mkdir(exist_ok=True)
rng = np.random.default_rng(7)
W = (rng.standard_normal((128, 4)) * 0.05).astype(np.float32)
b = np.array([0.1, -0.2, 0.05, 0.0], dtype=np.float32)
E = (rng.standard_normal((128, 8)) * 0.1).astype(np.float32)

graph = helper.make_graph(
    [
        helper.make_node("ReduceMean", ["mel", "axes"], ["m"], keepdims=0),
        helper.make_node("MatMul", ["m", "W"], ["logits0"]),
        helper.make_node("Add", ["logits0", "b"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        helper.make_node("MatMul", ["m", "E"], ["embedding"]),
    ],
    "tiny",
    [helper.make_tensor_value_info("mel", TensorProto.FLOAT, ["batch", 128, 130])],
    [
        helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 4]),
        helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", 8]),
    ],
    [
        numpy_helper.from_array(np.array([2], dtype=np.int64), "axes"),
        numpy_helper.from_array(W, "W"),
        numpy_helper.from_array(b, "b"),
        numpy_helper.from_array(E, "E"),
    ],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], producer_name="timbre-tests")
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save(model, out / "model.onnx")
for name, array in {"W": W, "b": b, "E": E}.items():
    np.save(out / f"{name}.npy", array)
sha = hashlib.sha256((out / "model.onnx").read_bytes()).hexdigest()
(out / "model.toml").write_text(f'''name = "tiny"
version = "1.0.0"
description = "test fixture made by tests/data/make_tiny_model.py: softmax of a linear map of the mean mel frame"

[features]
plugin = "mel"
params = {{ sample_rate = 22050, n_fft = 2048, hop_length = 512, n_mels = 128 }}
segment_seconds = 3.0

[model]
file = "model.onnx"
sha256 = "{sha}"
input = "mel"
probabilities = "probabilities"
embedding = "embedding"
embedding_size = 8
labels = ["one", "two", "three", "four"]
''')
print(f"wrote {out}")
