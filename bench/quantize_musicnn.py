#!/usr/bin/env python3
"""int8 dynamic quantisation of musicnn-msd (onnxruntime.quantization), against the float model.

Writes OUT/musicnn-msd/ (model.onnx quantised, model.toml with its sha256, the licence and card)
so `timbred --model-path OUT` runs it in place of the shipped one, and prints the largest tag
difference, the smallest embedding cosine and the median CPU time per batch of each, on real
patches (a .npy from `timbred features` with the manifest's parameters; bench/models.py (c)).
"""
import argparse
import hashlib
import re
import shutil
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import QuantType, quantize_dynamic

REPO = Path(__file__).resolve().parents[1]


def session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patches", type=Path, required=True, help="[patches, 187, 96] float32 .npy")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--ops", default="all", help="'all', or operator types to quantise, e.g. MatMul,Gemm")
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    shipped = REPO / "plugins/models/musicnn-msd"
    folder = args.out / "musicnn-msd"
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("model.toml", "LICENSE", "CARD.md"):
        shutil.copy(shipped / name, folder / name)
    ops = None if args.ops == "all" else args.ops.split(",")
    quantize_dynamic(str(shipped / "model.onnx"), str(folder / "model.onnx"), weight_type=QuantType.QInt8,
                     op_types_to_quantize=ops)
    digest = hashlib.sha256((folder / "model.onnx").read_bytes()).hexdigest()
    toml = (folder / "model.toml").read_text()
    (folder / "model.toml").write_text(re.sub(r'^sha256 = ".*"$', f'sha256 = "{digest}"', toml, flags=re.M))
    x = np.load(args.patches)
    fp32, int8 = session(shipped / "model.onnx"), session(folder / "model.onnx")
    (ta, ea), (tb, eb) = (s.run(["tags", "embedding"], {"mel": x}) for s in (fp32, int8))
    cosine = min(float(u @ v / np.linalg.norm(u) / np.linalg.norm(v)) for u, v in zip(ea, eb))
    print(f"ops {args.ops}: tags max abs diff {float(np.abs(ta - tb).max()):.4f}, embedding cosine min {cosine:.5f}, "
          f"file {(shipped / 'model.onnx').stat().st_size / 1e6:.2f} -> {(folder / 'model.onnx').stat().st_size / 1e6:.2f} MB")
    for name, s in (("float", fp32), ("int8", int8)):
        times = []
        for _ in range(args.repeat):
            start = time.process_time()
            s.run(["tags"], {"mel": x})
            times.append(time.process_time() - start)
        print(f"{name}: median CPU {np.median(times) * 1e3:.1f} ms per batch of {len(x)}")


if __name__ == "__main__":
    main()
