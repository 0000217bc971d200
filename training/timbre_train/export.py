"""ONNX export of a trained model, and its check against PyTorch with onnxruntime.

The graph: input "mel" float32 [batch, 128, 130] (raw dB from the mel plugin; the per-mel-bin
normalisation is inside the graph), outputs "probabilities" float32 [batch, classes] (softmax)
and "embedding" float32 [batch, D]. The batch axis is dynamic. Opset 17.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from . import EMBEDDING_NAME, FRAMES, INPUT_NAME, N_MELS, OPSET, PROBABILITIES_NAME
from . import models as M


def export_onnx(model: M.GenreModel, path: Path) -> None:
    wrapper = M.Exported(model).eval()
    dummy = torch.full((2, N_MELS, FRAMES), -30.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".onnx.tmp")
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of dynamo=True (which needs onnxscript);
        # it is the one that maps nn.LSTM to a single ONNX LSTM with a dynamic batch, so keep it.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper,
            (dummy,),
            str(tmp),
            dynamo=False,
            opset_version=OPSET,
            input_names=[INPUT_NAME],
            output_names=[PROBABILITIES_NAME, EMBEDDING_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, PROBABILITIES_NAME: {0: "batch"}, EMBEDDING_NAME: {0: "batch"}},
            do_constant_folding=True,
        )
    proto = onnx.load(str(tmp))
    proto.doc_string = f"timbre {type(model).__name__}: {model.description}"
    onnx.checker.check_model(proto, full_check=True)
    check_signature(proto, model.n_classes, model.embedding_size)
    onnx.save(proto, str(tmp))
    tmp.replace(path)


def check_signature(proto: onnx.ModelProto, n_classes: int, embedding_size: int) -> None:
    """Names, element types and shapes of the graph's input and outputs, and the opset."""
    opsets = {o.domain or "ai.onnx": o.version for o in proto.opset_import}
    assert opsets.get("ai.onnx", 0) <= 21, f"opset {opsets} > 21"

    def dims(value):
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    ins = {i.name: i for i in proto.graph.input}
    outs = {o.name: o for o in proto.graph.output}
    assert list(ins) == [INPUT_NAME], f"inputs {list(ins)}"
    assert list(outs) == [PROBABILITIES_NAME, EMBEDDING_NAME], f"outputs {list(outs)}"
    float_type = onnx.TensorProto.FLOAT
    for v in [*ins.values(), *outs.values()]:
        assert v.type.tensor_type.elem_type == float_type, f"{v.name} is not float32"
    assert dims(ins[INPUT_NAME]) == ["batch", N_MELS, FRAMES], dims(ins[INPUT_NAME])
    assert dims(outs[PROBABILITIES_NAME]) == ["batch", n_classes], dims(outs[PROBABILITIES_NAME])
    assert dims(outs[EMBEDDING_NAME]) == ["batch", embedding_size], dims(outs[EMBEDDING_NAME])


def session(path: Path, threads: int = 2) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def run_onnx(sess: ort.InferenceSession, x: np.ndarray, batch: int = 64) -> tuple[np.ndarray, np.ndarray]:
    probs, embs = [], []
    for start in range(0, len(x), batch):
        p, e = sess.run([PROBABILITIES_NAME, EMBEDDING_NAME], {INPUT_NAME: np.ascontiguousarray(x[start : start + batch])})
        probs.append(p)
        embs.append(e)
    return np.concatenate(probs), np.concatenate(embs)


@torch.no_grad()
def run_torch(model: M.GenreModel, x: np.ndarray, batch: int = 64) -> tuple[np.ndarray, np.ndarray]:
    wrapper = M.Exported(model).eval()
    probs, embs = [], []
    for start in range(0, len(x), batch):
        p, e = wrapper(torch.from_numpy(np.ascontiguousarray(x[start : start + batch])))
        probs.append(p.numpy())
        embs.append(e.numpy())
    return np.concatenate(probs), np.concatenate(embs)


def parity(model: M.GenreModel, path: Path, x: np.ndarray) -> dict[str, float]:
    """Max abs difference between PyTorch and onnxruntime on x, for both outputs."""
    sess = session(path)
    p_ort, e_ort = run_onnx(sess, x)
    p_pt, e_pt = run_torch(model, x)
    return {
        "segments": int(len(x)),
        "probabilities_max_abs_diff": float(np.abs(p_ort - p_pt).max()),
        "embedding_max_abs_diff": float(np.abs(e_ort - e_pt).max()),
        "probability_row_sum_max_error": float(np.abs(p_ort.sum(axis=1) - 1.0).max()),
    }


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
