"""The three architectures, adapted to one 3 s log-mel segment: [batch, 128 mels, 130 frames].

Every model takes *raw* dB (exactly what `timbred features` and the daemon produce), normalises it
inside the graph with per-mel-bin mean/std of the training split, and returns
(logits, embedding), the embedding being the penultimate layer (the input of the classifier).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn

from . import FRAMES, N_MELS


class Normalise(nn.Module):
    """(mel - mean[bin]) / std[bin]; the statistics are buffers, so they are exported in the graph."""

    def __init__(self, n_mels: int = N_MELS):
        super().__init__()
        self.register_buffer("mean", torch.zeros(1, n_mels, 1))
        self.register_buffer("std", torch.ones(1, n_mels, 1))

    def set(self, mean, std) -> None:
        self.mean.copy_(torch.as_tensor(mean, dtype=torch.float32).view(1, -1, 1))
        self.std.copy_(torch.as_tensor(std, dtype=torch.float32).view(1, -1, 1))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return (mel - self.mean) / self.std


def conv_block(c_in: int, c_out: int, pool: tuple[int, int], dropout: float) -> nn.Sequential:
    """Report 003's block: conv 3x3, batch norm, ReLU, max-pool, dropout."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(pool),
        nn.Dropout(dropout),
    )


def conv_front_end(last_pool: tuple[int, int]) -> nn.Sequential:
    """Report 003's four conv blocks, 32-64-128-128, shared by cnn and cnn-lstm; they differ only
    in the last block's pooling (cnn-lstm keeps the time axis for its LSTM)."""
    return nn.Sequential(
        conv_block(1, 32, (2, 2), 0.1),
        conv_block(32, 64, (2, 2), 0.1),
        conv_block(64, 128, (2, 2), 0.2),
        conv_block(128, 128, last_pool, 0.2),
    )


class GenreModel(nn.Module, ABC):
    embedding_size: int
    description: str

    def __init__(self, n_classes: int):
        super().__init__()
        self.n_classes = n_classes
        self.normalise = Normalise()

    @abstractmethod
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised mel [B, 128, 130] -> embedding [B, embedding_size]; each architecture's own."""

    def forward(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = self.features(self.normalise(mel))
        return self.classifier(embedding), embedding


class CNN(GenreModel):
    """Report 003's CNN: four conv blocks 32-64-128-128 (conv, BN, ReLU, max-pool 2x2, dropout),
    average over time (the 8 frequency bands are kept: where in the spectrum a pattern sits matters
    for genre), dense 128 (the embedding), softmax over the labels."""

    embedding_size = 128
    description = (
        "4 conv blocks 32-64-128-128 (conv 3x3, batch norm, ReLU, max-pool 2x2, dropout), average over time, "
        "dense 128 (embedding), softmax; report 003"
    )

    def __init__(self, n_classes: int):
        super().__init__(n_classes)
        self.blocks = conv_front_end(last_pool=(2, 2))
        self.dense = nn.Sequential(
            nn.Dropout(0.3),
            nn.Linear(128 * (N_MELS // 16), self.embedding_size),
            nn.BatchNorm1d(self.embedding_size),
            nn.ReLU(),
        )
        self.classifier = nn.Sequential(nn.Dropout(0.4), nn.Linear(self.embedding_size, n_classes))

    def features(self, x):
        h = self.blocks(x.unsqueeze(1))  # [B, 128 ch, 8 mel, 8 time]
        return self.dense(h.mean(dim=3).flatten(1))


class BiLSTM(GenreModel):
    """Report 000's bidirectional LSTM over the mel frames (one 128-dim step per frame), with 256 units
    per direction instead of 512 (512 was no better on held-out tracks here, at 3.4x the inference
    compute and an 11.6 MB file; see training/README.md); mean- and max-pooled over time, dense 128
    (embedding), softmax."""

    hidden = 256
    embedding_size = 128
    description = (
        "bidirectional LSTM (256 units per direction) over the 130 mel frames, mean+max pooling over time, "
        "dense 128 (embedding), softmax; report 000 (512 units there)"
    )

    def __init__(self, n_classes: int):
        super().__init__(n_classes)
        self.lstm = nn.LSTM(N_MELS, self.hidden, num_layers=1, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(0.3)
        self.dense = nn.Sequential(nn.Linear(4 * self.hidden, self.embedding_size), nn.ReLU())
        self.classifier = nn.Sequential(nn.Dropout(0.4), nn.Linear(self.embedding_size, n_classes))

    def features(self, x):
        seq, _ = self.lstm(x.transpose(1, 2))  # [B, 130, 2H]
        pooled = torch.cat([seq.mean(dim=1), seq.amax(dim=1)], dim=1)
        return self.dense(self.dropout(pooled))


class CNNLSTM(GenreModel):
    """Report 003's CNN-LSTM: a conv front end (32-64-128-128; the last block pools frequency only),
    reshaped to a sequence over time (16 steps of 128 channels x 8 mel bands), two LSTM layers of 128,
    mean over time, dense stack 256-64 (report: 1024-256-64-32) with the 64 as the embedding, softmax."""

    embedding_size = 64
    description = (
        "conv front end 32-64-128-128, reshape to 16 time steps, 2 LSTM layers of 128, dense 256-64 "
        "(embedding 64), softmax; report 003 (dense 1024-256-64-32 there)"
    )

    def __init__(self, n_classes: int):
        super().__init__(n_classes)
        self.blocks = conv_front_end(last_pool=(2, 1))  # keep 16 time steps
        self.lstm = nn.LSTM(128 * (N_MELS // 16), 128, num_layers=2, batch_first=True, dropout=0.2)
        self.dense = nn.Sequential(
            nn.Dropout(0.3),
            nn.Linear(128, 256),
            nn.ReLU(),
            nn.Dropout(0.3),
            nn.Linear(256, self.embedding_size),
            nn.ReLU(),
        )
        self.classifier = nn.Sequential(nn.Dropout(0.3), nn.Linear(self.embedding_size, n_classes))

    def features(self, x):
        h = self.blocks(x.unsqueeze(1))  # [B, 128 ch, 8 mel, 16 time]
        b, c, f, t = h.shape
        seq = h.permute(0, 3, 1, 2).reshape(b, t, c * f)  # [B, 16, 1024]
        out, _ = self.lstm(seq)
        return self.dense(out.mean(dim=1))


ARCHITECTURES = {"cnn": CNN, "bilstm": BiLSTM, "cnn-lstm": CNNLSTM}


def build(name: str, n_classes: int) -> GenreModel:
    return ARCHITECTURES[name](n_classes)


class Exported(nn.Module):
    """What goes into model.onnx: raw dB in, (softmax probabilities, embedding) out."""

    def __init__(self, model: GenreModel):
        super().__init__()
        self.model = model

    def forward(self, mel: torch.Tensor):
        logits, embedding = self.model(mel)
        return torch.softmax(logits, dim=1), embedding


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


assert FRAMES == 130
