#!/usr/bin/env python3
"""Convert musicnn's MSD_musicnn checkpoint (PyPI wheel musicnn==0.1.0) to ONNX, and write the
parity fixture that holds timbre's copy to the original TensorFlow graph.

Run through `scripts/musicnn/convert`, which builds this script's own venv and fetches the wheel.

    convert.py --wheel musicnn-0.1.0-py3-none-any.whl --out plugins/models/musicnn-msd \
               --fixture tests/data/musicnn --pool ../shared/data/gtzan-pool

Writes, in --out: model.onnx, model.toml (with the ONNX file's sha256) and LICENSE (the wheel's
ISC licence, verbatim); in --fixture: the fixture (see FIXTURE_README below). The ONNX file is
byte-for-byte reproducible: run it twice and compare (`scripts/musicnn/convert --check`).
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL_NAME = "musicnn-0.1.0-py3-none-any.whl"
WHEEL_SHA256 = "f38a4890c648c1ddbb141c5d96d2b0a8cfcd36746002d896989f7b88beb65cfa"
CHECKPOINT = "MSD_musicnn"

# Graph tensors (TF 1.12 graph, as saved by the authors).
TF_INPUT = "model/Placeholder:0"  # float32 [batch, 187, 96], time-major log-mel
TF_IS_TRAINING = "model/Placeholder_2:0"  # bool; bound to False
TF_TAGS = "model/Sigmoid:0"  # float32 [batch, 50], independent sigmoid per tag
TF_EMBEDDING = "model/batch_normalization_10/batchnorm/add_1:0"  # float32 [batch, 200], penultimate

# Names in the ONNX file, as model.toml names them.
ONNX_INPUT, ONNX_TAGS, ONNX_EMBEDDING = "mel", "tags", "embedding"
OPSET = 13

# The front end (musicnn/configuration.py, extractor.py): 16 kHz, n_fft 512, hop 256, 96 Slaney
# mel bands of the power spectrogram, log10(1 + 10000 x), 187-frame patches (3 s).
SR, N_FFT, HOP, N_MELS, FRAMES, C = 16000, 512, 256, 96, 187, 10000.0
# One patch of audio: 187 hops. timbre cuts tracks into segments of this many samples, so its
# patches sit on the same 187-frame grid as musicnn's; of the 188 centred frames of a segment it
# keeps the first 187 (the 188th is centred on the next segment's first sample).
PATCH_SAMPLES = FRAMES * HOP  # 47872 = 2.992 s

# The fixture: one patch from each of three real 16 kHz clips of the pool (no resampling).
FIXTURE_CLIPS = [
    ("metal/metal.00022.flac", 2),
    ("classical/classical.00025.flac", 2),
    ("hiphop/hiphop.00014.flac", 2),
]

MODEL_TOML = """\
# Written by scripts/musicnn/convert (see CARD.md). Regenerate from the repository root:
#   scripts/musicnn/convert
name = "musicnn-msd"
version = "0.1.0"
description = "musicnn (Pons & Serra 2019), MSD_musicnn checkpoint of the musicnn 0.1.0 wheel: 50 Million Song Dataset tags (independent sigmoids) and the 200-d penultimate layer; ISC licence (LICENSE)"

[features]
plugin = "mel"
# 2.992 s = 187 hops of 256 samples at 16 kHz: one musicnn patch. Shorter audio (a short track,
# a track's tail) is filled by repeating it, as musicnn was trained ("pad_short": "repeat-pad").
segment_seconds = 2.992
padding = "repeat"

[features.params]
sample_rate = 16000
n_fft = 512
hop_length = 256
n_mels = 96
# librosa < 0.10 (which musicnn 0.1.0 ran on) padded centred frames by reflection.
pad_mode = "reflect"
compression = "log10_1p"
compression_c = 10000.0
frames = 187
layout = "time_major"

[model]
kind = "tags"
file = "model.onnx"
sha256 = "{sha256}"
input = "mel"
probabilities = "tags"
embedding = "embedding"
embedding_size = 200
labels = {labels}
"""

FIXTURE_README = """\
musicnn-msd parity fixture, written by scripts/musicnn/convert (do not edit by hand).

Patches of real clips from the gtzan pool, each one timbre segment of 47872 samples (187 hops of
256 at 16 kHz), taken at sample `start` of `clip` (see cases.json):

  audio.npy       int16 [patches, 47872]: the clip's 16-bit samples (float = int16 / 32768)
  mel.npy         float32 [patches, 187, 96]: the model input, time-major:
                  np.log10(10000 * librosa.feature.melspectrogram(y=audio.astype(float64),
                  sr=16000, n_fft=512, hop_length=256, n_mels=96, pad_mode="reflect") + 1),
                  first 187 frames, transposed
  tags.npy        float32 [patches, 50]: model/Sigmoid:0 of the TensorFlow graph on mel.npy
  embedding.npy   float32 [patches, 200]: model/batch_normalization_10/batchnorm/add_1:0
  cases.json      clips, offsets, versions, and the ONNX-vs-TensorFlow difference seen here
"""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def log(message: str) -> None:
    print(f"convert: {message}", file=sys.stderr, flush=True)


def extract_wheel(wheel: Path, into: Path) -> tuple[Path, list[str], str]:
    """The checkpoint folder, the 50 MSD labels and the licence text, from the wheel."""
    actual = sha256_file(wheel)
    if actual != WHEEL_SHA256:
        sys.exit(f"convert: {wheel} has sha256 {actual}, expected {WHEEL_SHA256} (musicnn 0.1.0 from PyPI)")
    with zipfile.ZipFile(wheel) as z:
        members = [m for m in z.namelist() if m.startswith(f"musicnn/{CHECKPOINT}/")]
        z.extractall(into, members)
        configuration = z.read("musicnn/configuration.py").decode("utf-8")
        licence = z.read("musicnn-0.1.0.dist-info/LICENSE.md").decode("utf-8")
    # configuration.py is plain assignments: read MSD_LABELS without running it.
    labels = None
    for node in ast.parse(configuration).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "MSD_LABELS" for t in node.targets):
            labels = ast.literal_eval(node.value)
    if not labels or len(labels) != 50:
        sys.exit("convert: musicnn/configuration.py has no 50-entry MSD_LABELS")
    return into / "musicnn" / CHECKPOINT, labels, licence


def freeze(checkpoint: Path):
    """The inference graph with its weights as constants, `is_training` fixed to False."""
    import tensorflow as tf
    from tensorflow.core.protobuf import meta_graph_pb2

    meta = meta_graph_pb2.MetaGraphDef()
    meta.ParseFromString((checkpoint / ".meta").read_bytes())
    # Saved by TF 1.12: its `_output_shapes` attributes make import_meta_graph fail on TF 2.
    for node in meta.graph_def.node:
        node.attr.pop("_output_shapes", None)

    graph = tf.Graph()
    with graph.as_default():
        is_training = tf.constant(False, name="is_training")
        saver = tf.compat.v1.train.import_meta_graph(
            meta, clear_devices=True, input_map={TF_IS_TRAINING: is_training}
        )
        with tf.compat.v1.Session(graph=graph) as session:
            # The `checkpoint` file names the authors' home directory: restore from the prefix.
            saver.restore(session, str(checkpoint) + "/")
            frozen = tf.compat.v1.graph_util.convert_variables_to_constants(
                session, graph.as_graph_def(), [TF_TAGS.split(":")[0], TF_EMBEDDING.split(":")[0]]
            )
    return frozen


def run_tf(frozen, mel):
    """The frozen graph's tags and embedding for `mel` [patches, 187, 96]."""
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(frozen, name="")
        with tf.compat.v1.Session(graph=graph) as session:
            return session.run([TF_TAGS, TF_EMBEDDING], feed_dict={TF_INPUT: mel})


def to_onnx(frozen) -> bytes:
    """tf2onnx, then every name and string made independent of the run (see `canonical`)."""
    import tf2onnx

    model, _ = tf2onnx.convert.from_graph_def(
        frozen, input_names=[TF_INPUT], output_names=[TF_TAGS, TF_EMBEDDING], opset=OPSET
    )
    return canonical(model).SerializeToString()


def canonical(model):
    """Rename the graph's input and outputs to model.toml's names, name the batch axis, and fix
    every field that could name the run: producer, graph name, doc strings, and the names
    tf2onnx made up for internal nodes and tensors (renumbered in graph order)."""
    import onnx

    graph = model.graph
    renames = {TF_INPUT: ONNX_INPUT, TF_TAGS: ONNX_TAGS, TF_EMBEDDING: ONNX_EMBEDDING}
    # tf2onnx lists initialisers in an order that follows Python's string hashing (it differs
    # from run to run): name every tensor in order of first use, and list initialisers so.
    for node in graph.node:
        for name in list(node.input) + list(node.output):
            if name and name not in renames:
                renames[name] = f"t{len(renames)}"
    unused = sorted(init.name for init in graph.initializer if init.name not in renames)
    if unused:
        sys.exit(f"convert: initialisers no node reads: {unused}")
    order = {name: i for i, name in enumerate(renames)}
    initialisers = sorted(graph.initializer, key=lambda init: order[init.name])
    del graph.initializer[:]
    graph.initializer.extend(initialisers)

    def rename(name: str) -> str:
        return renames.get(name, name)

    for node_index, node in enumerate(graph.node):
        node.name = f"n{node_index}_{node.op_type}"
        node.doc_string = ""
        node.input[:] = [rename(n) for n in node.input]
        node.output[:] = [rename(n) for n in node.output]
    for init in graph.initializer:
        init.name = rename(init.name)
    for value in list(graph.input) + list(graph.output) + list(graph.value_info):
        value.name = rename(value.name)
    for value in list(graph.input) + list(graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_param = "batch"
    del graph.value_info[:]  # shapes inferred by tf2onnx: ONNX Runtime infers them again
    graph.name = "musicnn_msd"
    graph.doc_string = ""
    model.producer_name = "timbre scripts/musicnn/convert.py"
    model.producer_version = "1"
    model.doc_string = ""
    del model.metadata_props[:]
    onnx.checker.check_model(model)
    if [i.name for i in graph.input] != [ONNX_INPUT] or [o.name for o in graph.output] != [ONNX_TAGS, ONNX_EMBEDDING]:
        sys.exit(f"convert: unexpected ONNX signature {[i.name for i in graph.input]} -> {[o.name for o in graph.output]}")
    return model


def run_onnx(onnx_bytes: bytes, mel):
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    return session.run([ONNX_TAGS, ONNX_EMBEDDING], {ONNX_INPUT: mel})


def fixture_patches(pool: Path):
    """audio (int16), mel (float32, time-major) and a description of each fixture patch."""
    import librosa
    import numpy as np
    import soundfile as sf

    audio, mels, cases = [], [], []
    for rel, index in FIXTURE_CLIPS:
        path = pool / rel
        pcm, rate = sf.read(path, dtype="int16")
        if rate != SR or pcm.ndim != 1:
            sys.exit(f"convert: {path}: expected mono {SR} Hz, got {rate} Hz, shape {pcm.shape}")
        start = index * PATCH_SAMPLES
        segment = pcm[start : start + PATCH_SAMPLES]
        if len(segment) != PATCH_SAMPLES:
            sys.exit(f"convert: {path} is too short for patch {index}")
        y = segment.astype(np.float64) / 32768.0
        power = librosa.feature.melspectrogram(
            y=y, sr=SR, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS, pad_mode="reflect"
        )
        assert power.shape == (N_MELS, FRAMES + 1), power.shape
        mel = np.ascontiguousarray(np.log10(C * power + 1)[:, :FRAMES].T, dtype=np.float32)
        audio.append(segment)
        mels.append(mel)
        cases.append({"clip": rel, "patch": index, "start": start, "samples": PATCH_SAMPLES})
    return np.stack(audio), np.stack(mels), cases


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wheel", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="the model folder to write")
    parser.add_argument("--fixture", type=Path, help="the fixture folder to write (skipped when absent)")
    parser.add_argument("--pool", type=Path, help="the gtzan pool (for the fixture)")
    args = parser.parse_args()

    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        checkpoint, labels, licence = extract_wheel(args.wheel, Path(tmp))
        log(f"wheel {args.wheel.name} sha256 {WHEEL_SHA256}: checkpoint {CHECKPOINT}, {len(labels)} labels")
        frozen = freeze(checkpoint)
    log(f"frozen graph: {len(frozen.node)} nodes")
    onnx_bytes = to_onnx(frozen)
    onnx_sha = hashlib.sha256(onnx_bytes).hexdigest()
    log(f"model.onnx: {len(onnx_bytes)} bytes, sha256 {onnx_sha}")

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "model.onnx").write_bytes(onnx_bytes)
    (args.out / "model.toml").write_text(
        MODEL_TOML.replace("{sha256}", onnx_sha).replace("{labels}", json.dumps(labels)), encoding="utf-8"
    )
    (args.out / "LICENSE").write_text(licence if licence.endswith("\n") else licence + "\n", encoding="utf-8")

    if args.fixture is None:
        return 0
    if args.pool is None or not (args.pool / "MANIFEST.tsv").is_file():
        sys.exit("convert: --fixture needs --pool, the gtzan pool folder")
    import librosa
    import onnx
    import tensorflow as tf
    import tf2onnx

    audio, mel, cases = fixture_patches(args.pool)
    tags, embedding = run_tf(frozen, mel)
    onnx_tags, onnx_embedding = run_onnx(onnx_bytes, mel)
    diff_tags = float(np.abs(onnx_tags - tags).max())
    diff_embedding = float(np.abs(onnx_embedding - embedding).max())
    log(f"ONNX Runtime vs TensorFlow on {len(mel)} patches: tags {diff_tags:.2e}, embedding {diff_embedding:.2e}")
    if diff_tags > 1e-5 or diff_embedding > 1e-4:
        sys.exit("convert: the ONNX model does not reproduce the TensorFlow graph")
    for case, row in zip(cases, tags):
        top = np.argsort(-row)[:5]
        case["top_tags"] = [[labels[i], round(float(row[i]), 4)] for i in top]
        log(f"  {case['clip']}: " + ", ".join(f"{labels[i]} {row[i]:.2f}" for i in top))

    args.fixture.mkdir(parents=True, exist_ok=True)
    np.save(args.fixture / "audio.npy", audio.astype(np.int16))
    np.save(args.fixture / "mel.npy", mel.astype(np.float32))
    np.save(args.fixture / "tags.npy", np.asarray(tags, dtype=np.float32))
    np.save(args.fixture / "embedding.npy", np.asarray(embedding, dtype=np.float32))
    doc = {
        "generator": "scripts/musicnn/convert",
        "wheel": {"name": WHEEL_NAME, "sha256": WHEEL_SHA256, "checkpoint": CHECKPOINT},
        "model_sha256": onnx_sha,
        "versions": {
            "tensorflow": tf.__version__,
            "tf2onnx": tf2onnx.__version__,
            "onnx": onnx.__version__,
            "librosa": librosa.__version__,
            "numpy": np.__version__,
        },
        "onnx_vs_tensorflow_max_abs": {"tags": diff_tags, "embedding": diff_embedding},
        "cases": cases,
    }
    (args.fixture / "cases.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    (args.fixture / "README").write_text(FIXTURE_README, encoding="utf-8")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())
