"""timbre_train: train timbre's neural genre models and export them as ONNX model folders.

    PYTHONPATH=training "$(scripts/python-env)/bin/python" -m timbre_train \
        --model cnn --data ../shared/data/gtzan-pool --out plugins/models/cnn

Features come from the project's own Rust mel code (`timbred features --segment-seconds 3`),
never from a second mel implementation, so a model is trained on exactly the numbers the daemon
serves it. See training/README.md.
"""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

# The feature contract shared with the daemon: model.toml's [features] section.
SAMPLE_RATE = 22050
N_FFT = 2048
HOP_LENGTH = 512
N_MELS = 128
SEGMENT_SECONDS = 3.0
FRAMES = 1 + int(SAMPLE_RATE * SEGMENT_SECONDS) // HOP_LENGTH  # 130 (centred frames)
MEL_PARAMS = {"sample_rate": SAMPLE_RATE, "n_fft": N_FFT, "hop_length": HOP_LENGTH, "n_mels": N_MELS}

# Names of the ONNX graph's input and outputs (model.toml's [model] section).
INPUT_NAME = "mel"
PROBABILITIES_NAME = "probabilities"
EMBEDDING_NAME = "embedding"
OPSET = 17

MODEL_NAMES = ("cnn", "bilstm", "cnn-lstm")
