"""Training loop, early stopping on validation track accuracy, and evaluation.

Track-level results aggregate segments the way the daemon does: the mean of the segment
probabilities of a file, then argmax. Early stopping keeps the epoch with the best validation
track accuracy (ties: lower validation loss).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import FRAMES
from . import data as D
from . import models as M


@dataclass
class TrainConfig:
    model: str
    data: Path
    out: Path
    epochs: int | None = None  # None: the model's default (DEFAULT_EPOCHS)
    seed: int = 0
    timbred: Path | None = None  # None: build target/release/timbred with cargo
    cache_dir: Path | None = None  # None: ~/.cache/timbre/features
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-4
    patience: int = 10
    segments_per_file: int = 4  # at most this many random segments of a file per epoch
    augment: bool = True  # gain, time shift, simulated padding, frequency mask
    mixup: float = 0.3  # Beta(a, a) mixup of segment pairs in a batch; 0: off
    crop: bool = True  # random 3 s crops of the clips longer than one segment, instead of the fixed cuts
    shift_frames: int = 8  # random time shift of up to this many frames either way; 0: off
    gain_db: float = 6.0  # random gain of up to this many dB either way; 0: off
    card_notes: Path | None = None  # markdown appended to CARD.md (e.g. the augmentation ablation)
    threads: int = 2
    name: str | None = None  # model name in model.toml; default: the architecture name
    version: str = "1.0.0"

    def resolved_epochs(self) -> int:
        return self.epochs if self.epochs is not None else DEFAULT_EPOCHS[self.model]


# Chosen so that each model trains in about 10 minutes on 2 CPU cores (training/README.md).
DEFAULT_EPOCHS = {"cnn": 40, "bilstm": 40, "cnn-lstm": 40}


@dataclass
class EpochLog:
    epoch: int
    train_loss: float
    train_segment_accuracy: float
    val_loss: float
    val_track_accuracy: float
    val_segment_accuracy: float
    lr: float
    seconds: float


@dataclass
class Evaluation:
    track_accuracy: float
    segment_accuracy: float
    loss: float
    confusion: list[list[int]]  # track level, rows = true label, columns = predicted
    per_class: dict[str, dict[str, float]]  # track level: precision, recall, f1, support
    macro_f1: float
    segment_confusion: list[list[int]]
    n_files: int
    n_segments: int
    # per file: rel, true label, predicted label, probability of the prediction
    predictions: list[tuple[str, str, str, float]] = field(default_factory=list)


@dataclass
class TrainResult:
    config: TrainConfig
    model: M.GenreModel  # best weights, eval mode
    dataset: D.Dataset
    assignment: dict[str, str]
    split_rule: str  # as `timbred split` states it
    split: dict[str, np.ndarray]
    history: list[EpochLog]
    best_epoch: int
    epochs_run: int
    train_seconds: float
    feature_seconds: float
    val: Evaluation
    test: Evaluation
    # The same models on the long clips only (whole tracks: the pool's 15 s and 30 s clips), by file.
    val_whole: Evaluation | None
    test_whole: Evaluation | None
    recommendation: dict[str, float]
    timbred: Path
    extraction: D.Extraction


# --------------------------------------------------------------------------- helpers


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    torch.use_deterministic_algorithms(True, warn_only=True)


@torch.no_grad()
def predict(model: nn.Module, x: np.ndarray, batch: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Segment probabilities [N, classes] and embeddings [N, D] (model in eval mode)."""
    model.eval()
    probs, embs = [], []
    for start in range(0, len(x), batch):
        logits, emb = model(torch.from_numpy(x[start : start + batch]))
        probs.append(torch.softmax(logits, dim=1).numpy())
        embs.append(emb.numpy())
    return np.concatenate(probs), np.concatenate(embs)


def track_mean(values: np.ndarray, seg_file: np.ndarray, files: np.ndarray) -> np.ndarray:
    """Mean of the segment rows of each file, in the order of `files`."""
    return np.stack([values[seg_file == f].mean(axis=0) for f in files])


def confusion_matrix(true: np.ndarray, pred: np.ndarray, n: int) -> np.ndarray:
    cm = np.zeros((n, n), dtype=np.int64)
    np.add.at(cm, (true, pred), 1)
    return cm


def per_class_scores(cm: np.ndarray, labels: list[str]) -> tuple[dict[str, dict[str, float]], float]:
    out = {}
    f1s = []
    for i, label in enumerate(labels):
        tp = cm[i, i]
        predicted, actual = cm[:, i].sum(), cm[i, :].sum()
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[label] = {"precision": float(precision), "recall": float(recall), "f1": float(f1), "support": int(actual)}
        if actual:
            f1s.append(f1)
    return out, float(np.mean(f1s)) if f1s else 0.0


def evaluate(model: M.GenreModel, ds: D.Dataset, files: np.ndarray) -> Evaluation:
    seg = ds.subset_files(files)
    probs, _ = predict(model, ds.x[seg])
    seg_file = ds.seg_file[seg]
    seg_true = ds.file_label[seg_file]
    seg_pred = probs.argmax(1)
    loss = float(-np.log(np.maximum(probs[np.arange(len(seg)), seg_true], 1e-12)).mean())
    track_probs = track_mean(probs, seg_file, files)
    true, pred = ds.file_label[files], track_probs.argmax(1)
    n = len(ds.labels)
    cm = confusion_matrix(true, pred, n)
    per_class, macro_f1 = per_class_scores(cm, ds.labels)
    predictions = [
        (ds.files[f].rel, ds.labels[t], ds.labels[p], float(track_probs[i, p]))
        for i, (f, t, p) in enumerate(zip(files, true, pred))
    ]
    return Evaluation(
        track_accuracy=float((true == pred).mean()),
        segment_accuracy=float((seg_true == seg_pred).mean()),
        loss=loss,
        confusion=cm.tolist(),
        per_class=per_class,
        macro_f1=macro_f1,
        segment_confusion=confusion_matrix(seg_true, seg_pred, n).tolist(),
        n_files=len(files),
        n_segments=len(seg),
        predictions=predictions,
    )


# A "whole track": a file of at least this many 3 s segments (12 s); in the GTZAN pool, exactly the
# 15 s classical clips (5 segments) and the 30 s clips (10), as against the 2-3 s excerpts (1).
WHOLE_TRACK_SEGMENTS = 4


def whole_tracks(ds: D.Dataset, files: np.ndarray) -> np.ndarray:
    """The files among `files` with at least WHOLE_TRACK_SEGMENTS segments."""
    counts = np.bincount(ds.seg_file, minlength=len(ds.files))
    return files[counts[files] >= WHOLE_TRACK_SEGMENTS]


def recommendation_scores(model: M.GenreModel, ds: D.Dataset, queries: np.ndarray, index: np.ndarray) -> dict:
    """Report 003's check of the embedding: for each query track (L2-normalised mean segment
    embedding), the share of its top-k cosine neighbours among the index tracks with its label."""
    seg_q, seg_i = ds.subset_files(queries), ds.subset_files(index)
    _, emb_q = predict(model, ds.x[seg_q])
    _, emb_i = predict(model, ds.x[seg_i])
    q = track_mean(emb_q, ds.seg_file[seg_q], queries)
    r = track_mean(emb_i, ds.seg_file[seg_i], index)
    zero_rows = int((np.linalg.norm(emb_q, axis=1) == 0).sum() + (np.linalg.norm(emb_i, axis=1) == 0).sum())
    q /= np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    r /= np.maximum(np.linalg.norm(r, axis=1, keepdims=True), 1e-12)
    order = np.argsort(-(q @ r.T), axis=1, kind="stable")
    same = ds.file_label[index][order] == ds.file_label[queries][:, None]
    out = {f"precision_at_{k}": float(same[:, :k].mean()) for k in (5, 10) if k <= len(index)}
    out["zero_embedding_segments"] = zero_rows
    return out


# --------------------------------------------------------------------------- augmentation


def time_shift(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Move each segment by a random whole number of frames in [-max_shift, max_shift] (0.19 s for
    8 frames); the frames it vacates get the segment's floor (its maximum - 80 dB, what timbred
    writes for silence). A positive shift delays the music, a negative one starts it earlier."""
    b, _, frames = x.shape
    if max_shift <= 0:
        return x
    shift = torch.randint(-max_shift, max_shift + 1, (b,), generator=gen)
    source = torch.arange(frames)[None, :] - shift[:, None]  # [b, frames]: frame t comes from t - shift
    valid = (source >= 0) & (source < frames)
    moved = torch.gather(x, 2, source.clamp(0, frames - 1)[:, None, :].expand_as(x))
    floor = (x.amax(dim=(1, 2)) - 80.0)[:, None, None]
    return torch.where(valid[:, None, :], moved, floor)


def augment_batch(x: torch.Tensor, gen: torch.Generator, gain_db: float = 6.0, shift_frames: int = 0) -> torch.Tensor:
    """Cheap augmentations on raw dB segments, chosen to be close to what the mel code produces:

    - time shift (`time_shift`) of up to `shift_frames` frames, when positive;
    - gain: power_to_db(ref=1.0) of a signal scaled by g is the same matrix plus 20 log10 g
      (the top_db floor moves with the maximum), so a random offset of up to +-`gain_db` dB (6 by
      default) is an exact gain change;
    - one frequency mask (SpecAugment) of up to 12 mel bins set to the segment mean, probability 0.5;
    - short-clip padding: with probability 0.3 everything after a random frame in [65, 125] is set
      to (maximum of the rest - 80 dB), the value timbred writes for the zero-padded tail of a clip
      shorter than 3 s; most training clips are 2-3 s and padded, so this keeps "padded or not" from
      becoming a cue for the few labels whose clips are long (the 15 s classical clips).
    """
    b, n_mels, frames = x.shape
    x = time_shift(x, shift_frames, gen).clone()
    if gain_db > 0:
        x += torch.rand(b, 1, 1, generator=gen) * (2.0 * gain_db) - gain_db  # as 1.0.0 computed +-6 dB
    fmask = torch.rand(b, generator=gen) < 0.5
    width = torch.randint(1, 13, (b,), generator=gen)
    start = (torch.rand(b, generator=gen) * (n_mels - width)).long()
    mel_idx = torch.arange(n_mels)
    band = fmask[:, None] & (mel_idx[None, :] >= start[:, None]) & (mel_idx[None, :] < (start + width)[:, None])
    x = torch.where(band[:, :, None], x.mean(dim=(1, 2))[:, None, None], x)
    pad = torch.rand(b, generator=gen) < 0.3
    cut = torch.randint(65, 126, (b,), generator=gen)
    tail = pad[:, None] & (torch.arange(frames)[None, :] >= cut[:, None])  # [b, frames]
    kept_max = x.masked_fill(tail[:, None, :], float("-inf")).amax(dim=(1, 2))
    x = torch.where(tail[:, None, :], (kept_max - 80.0)[:, None, None], x)
    return x


# --------------------------------------------------------------------------- training


def epoch_segments(ds: D.Dataset, train_files: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Up to k random segments of each training file, shuffled."""
    chosen = []
    for f in train_files:
        seg = np.flatnonzero(ds.seg_file == f)
        chosen.append(seg if len(seg) <= k else rng.choice(seg, size=k, replace=False))
    out = np.concatenate(chosen)
    rng.shuffle(out)
    return out


def epoch_items(ds: D.Dataset, train_files: np.ndarray, k: int, rng: np.random.Generator,
                crop: bool) -> np.ndarray:
    """What an epoch trains on, shuffled: int64 rows (segment, file, offset).

    A file of one segment (the 2-3 s excerpts) gives its fixed, padded segment (offset -1). With
    `crop`, a file whose whole-file features are longer than a segment (the 15 s and 30 s clips)
    gives as many 3 s windows as it would give fixed segments (min(k, its segments)), each at a
    uniformly random frame offset, new every epoch; without it, up to k of its fixed segments."""
    if not crop or ds.whole is None:
        seg = epoch_segments(ds, train_files, k, rng)
        return np.stack([seg, ds.seg_file[seg], np.full_like(seg, -1)], axis=1)
    rows = []
    for f in train_files:
        seg = np.flatnonzero(ds.seg_file == f)
        frames = ds.whole[f].shape[1]
        if len(seg) > 1 and frames > FRAMES:
            offsets = rng.integers(0, frames - FRAMES + 1, size=min(k, len(seg)))
            rows += [(-1, int(f), int(o)) for o in offsets]
        else:
            chosen = seg if len(seg) <= k else rng.choice(seg, size=k, replace=False)
            rows += [(int(s), int(f), -1) for s in chosen]
    out = np.asarray(rows, dtype=np.int64)
    rng.shuffle(out)
    return out


def batch_features(ds: D.Dataset, items: np.ndarray) -> np.ndarray:
    """float32 [len(items), n_mels, frames]: fixed segments, or crops of the whole-file features."""
    return np.stack([ds.x[s] if o < 0 else D.crop(ds.whole[f], int(o)) for s, f, o in items])


def class_weights(ds: D.Dataset, train_files: np.ndarray, k: int) -> torch.Tensor:
    """Inverse frequency of each label among the segments an epoch draws (balanced loss)."""
    counts = np.zeros(len(ds.labels))
    for f in train_files:
        counts[ds.file_label[f]] += min(k, int((ds.seg_file == f).sum()))
    present = counts > 0
    w = np.zeros_like(counts)
    w[present] = counts[present].sum() / (present.sum() * counts[present])
    return torch.tensor(w, dtype=torch.float32)


def train(config: TrainConfig, ds: D.Dataset, split: dict[str, np.ndarray], log=D.log):
    torch.set_num_threads(config.threads)
    seed_everything(config.seed)
    rng = np.random.default_rng(config.seed)
    gen = torch.Generator().manual_seed(config.seed)

    model = M.build(config.model, len(ds.labels))
    train_seg = ds.subset_files(split["train"])
    mean, std = D.mel_bin_stats(ds.x[train_seg])
    model.normalise.set(mean, std)

    weights = class_weights(ds, split["train"], config.segments_per_file)
    loss_fn = nn.CrossEntropyLoss(weight=weights, label_smoothing=0.05)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    epochs = config.resolved_epochs()
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs, eta_min=config.lr / 50)

    history: list[EpochLog] = []
    best = (-1.0, math.inf)
    best_state, best_epoch, stale = None, 0, 0
    log(f"{config.model}: {M.count_parameters(model):,} parameters; up to {epochs} epochs, "
        f"batch {config.batch_size}, {config.threads} threads")
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        model.train()
        order = epoch_items(ds, split["train"], config.segments_per_file, rng, config.crop)
        total_loss, correct = 0.0, 0
        for start in range(0, len(order), config.batch_size):
            items = order[start : start + config.batch_size]
            idx = items[:, 0]
            if len(idx) < 2:  # batch norm needs more than one sample
                continue
            xb = torch.from_numpy(batch_features(ds, items))
            yb = torch.from_numpy(ds.file_label[items[:, 1]])
            if config.augment:
                xb = augment_batch(xb, gen, gain_db=config.gain_db, shift_frames=config.shift_frames)
            if config.mixup > 0:
                lam = float(rng.beta(config.mixup, config.mixup))
                perm = torch.from_numpy(rng.permutation(len(idx)))
                logits, _ = model(lam * xb + (1 - lam) * xb[perm])
                loss = lam * loss_fn(logits, yb) + (1 - lam) * loss_fn(logits, yb[perm])
            else:
                logits, _ = model(xb)
                loss = loss_fn(logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total_loss += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == yb).sum())
        sched.step()
        val = evaluate(model, ds, split["val"])
        entry = EpochLog(
            epoch=epoch,
            train_loss=total_loss / max(len(order), 1),
            train_segment_accuracy=correct / max(len(order), 1),
            val_loss=val.loss,
            val_track_accuracy=val.track_accuracy,
            val_segment_accuracy=val.segment_accuracy,
            lr=opt.param_groups[0]["lr"],
            seconds=time.perf_counter() - t0,
        )
        history.append(entry)
        score = (val.track_accuracy, -val.loss)
        improved = score > (best[0], -best[1])
        if improved:
            best, best_state, best_epoch, stale = (val.track_accuracy, val.loss), copy.deepcopy(model.state_dict()), epoch, 0
        else:
            stale += 1
        log(
            f"epoch {epoch:3d}  train loss {entry.train_loss:.3f} acc {entry.train_segment_accuracy:.3f}  "
            f"val loss {val.loss:.3f} track acc {val.track_accuracy:.3f} seg acc {val.segment_accuracy:.3f}  "
            f"lr {entry.lr:.1e}  {entry.seconds:.1f} s{'  *' if improved else ''}"
        )
        if stale >= config.patience:
            log(f"early stop: no better validation track accuracy for {config.patience} epochs")
            break
    model.load_state_dict(best_state)
    model.eval()
    return model, history, best_epoch


def run(config: TrainConfig, log=D.log) -> TrainResult:
    """Features, split, train, evaluate. (Export and the model folder: see __main__.)"""
    torch.set_num_threads(config.threads)
    t0 = time.perf_counter()
    timbred = Path(config.timbred).resolve() if config.timbred else D.build_timbred()
    # The files and their split both come from `timbred split`, the project's one splitter.
    file_split = D.split_files(timbred, config.data, config.seed)
    assignment = file_split.assignment
    files, labels = D.list_audio_files(config.data, file_split)
    extraction = D.extract_features(timbred, config.data, files, config.cache_dir or D.default_cache_root())
    ds = D.load_dataset(files, labels, extraction)
    if config.crop:
        whole = D.extract_features(timbred, config.data, ds.files, config.cache_dir or D.default_cache_root(),
                                   segment_seconds=None)
        n_long = D.attach_whole(ds, whole)
        log(f"random crops: {n_long} files are longer than one segment")
    feature_seconds = time.perf_counter() - t0

    split = D.split_indices(ds, assignment)
    for name in D.SPLITS:
        if len(split[name]) == 0:
            raise D.DataError(f"the {name} split is empty: each label needs at least 3 files with features")
        log(f"{name}: {D.describe_files(ds, split[name])}")

    t1 = time.perf_counter()
    model, history, best_epoch = train(config, ds, split, log)
    train_seconds = time.perf_counter() - t1
    val = evaluate(model, ds, split["val"])
    test = evaluate(model, ds, split["test"])
    val_long, test_long = (whole_tracks(ds, split[s]) for s in ("val", "test"))
    val_whole = evaluate(model, ds, val_long) if len(val_long) else None
    test_whole = evaluate(model, ds, test_long) if len(test_long) else None
    rec = recommendation_scores(model, ds, split["test"], np.concatenate([split["train"], split["val"]]))
    log(
        f"best epoch {best_epoch}: test track accuracy {test.track_accuracy:.3f}, segment accuracy "
        f"{test.segment_accuracy:.3f} (val track {val.track_accuracy:.3f}); trained in {train_seconds:.0f} s"
    )
    for name, ev in (("val", val_whole), ("test", test_whole)):
        if ev is not None:
            log(f"whole tracks (>= {WHOLE_TRACK_SEGMENTS} segments), {name}: {ev.n_files} files, "
                f"track accuracy {ev.track_accuracy:.3f}")
    return TrainResult(
        config=config, model=model, dataset=ds, assignment=assignment, split_rule=file_split.rule, split=split,
        history=history,
        best_epoch=best_epoch, epochs_run=len(history), train_seconds=train_seconds,
        feature_seconds=feature_seconds, val=val, test=test,
        val_whole=val_whole, test_whole=test_whole, recommendation=rec, timbred=timbred,
        extraction=extraction,
    )


def history_dicts(history: list[EpochLog]) -> list[dict]:
    return [asdict(h) for h in history]
