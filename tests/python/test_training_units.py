"""Unit tests of training/timbre_train that need no audio: reading the split by file (and, with
TIMBRED, making it), the feature-cache key, output folders for clashing stems, the augmentation,
and model.toml."""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "training"))
torch = pytest.importorskip("torch", reason="torch is not installed in this venv (scripts/requirements.txt)")

from timbre_train import data as D  # noqa: E402
from timbre_train import models as M  # noqa: E402
from timbre_train.card import model_toml  # noqa: E402
from timbre_train.train import augment_batch, batch_features, epoch_items, time_shift, whole_tracks  # noqa: E402


def fake_files(counts: dict[str, int]) -> list[D.AudioFile]:
    return [
        D.AudioFile(f"{label}/{label}.{i:05d}.flac", label, Path(f"/data/{label}/{label}.{i:05d}.flac"))
        for label, n in counts.items()
        for i in range(n)
    ]


def test_a_split_is_read_from_timbreds_output():
    text = (
        "# timbred split --test 0.15 --validation 0.15 --seed 0: PATH<TAB>SPLIT, paths relative to the data folder\n"
        "# rule: by file; stratified by label\n"
        "blues/b.1.flac\ttest\nblues/b.2.flac\ttrain\njazz/j.1.flac\tval\n"
    )
    split = D.parse_split(text)
    assert split.assignment == {"blues/b.1.flac": "test", "blues/b.2.flac": "train", "jazz/j.1.flac": "val"}
    assert split.rule == "by file; stratified by label"
    files, labels = D.list_audio_files(Path("/data"), split)
    assert labels == ["blues", "jazz"]
    assert [(f.rel, f.label, f.path) for f in files][-1] == ("jazz/j.1.flac", "jazz", Path("/data/jazz/j.1.flac"))
    for bad in ("blues/b.1.flac test\n", "blues/b.1.flac\tholdout\n", "# nothing\n"):
        with pytest.raises(D.DataError):
            D.parse_split(bad)


def test_timbred_split_is_stratified_by_file_and_seeded(timbred, tmp_path):
    """The Python training's split is `timbred split`'s: the rule it was first written with."""

    def folder(name: str, counts: dict[str, int]) -> Path:
        for f in fake_files(counts):  # timbred split lists files, it does not decode them
            (tmp_path / name / f.rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name / f.rel).write_bytes(b"")
        return tmp_path / name

    counts = {"blues": 43, "classical": 85, "jazz": 3}
    files = fake_files(counts)
    a = D.split_files(timbred, folder("a", counts), seed=0).assignment
    assert a == D.split_files(timbred, tmp_path / "a", seed=0).assignment
    assert a != D.split_files(timbred, tmp_path / "a", seed=1).assignment
    assert set(a) == {f.rel for f in files}
    per = {(f.label, a[f.rel]) for f in files}
    assert {(lbl, s) for lbl in counts for s in D.SPLITS} <= per, "every label in every split"
    n = {s: sum(1 for f in files if f.label == "classical" and a[f.rel] == s) for s in D.SPLITS}
    assert n == {"train": 59, "val": 13, "test": 13}
    # Adding a label does not move the files of the others.
    b = D.split_files(timbred, folder("b", {**counts, "rock": 40}), seed=0).assignment
    assert all(b[rel] == s for rel, s in a.items())


def test_cache_key_follows_the_binary_and_the_data(tmp_path):
    binary = tmp_path / "timbred"
    binary.write_bytes(b"v1")
    plugin = tmp_path / "libtimbre_plugin_mel.so"
    plugin.write_bytes(b"p1")
    files = fake_files({"a": 2, "b": 2})
    k1 = D.cache_key(tmp_path, binary, files)
    assert k1 == D.cache_key(tmp_path, binary, files)
    binary.write_bytes(b"v2 longer")
    k2 = D.cache_key(tmp_path, binary, files)
    assert k2 != k1
    os.utime(plugin, ns=(1, 1))
    assert D.cache_key(tmp_path, binary, files) != k2, "the mel plugin next to timbred is part of the key"
    assert D.cache_key(tmp_path, binary, files[:3]) != D.cache_key(tmp_path, binary, files)


def test_files_with_the_same_stem_get_different_output_folders():
    files = [
        D.AudioFile("rock/a/01.flac", "rock", Path("/x/rock/a/01.flac")),
        D.AudioFile("rock/b/01.mp3", "rock", Path("/x/rock/b/01.mp3")),
        D.AudioFile("pop/01.flac", "pop", Path("/x/pop/01.flac")),
    ]
    dirs = D._out_dirs(files)
    assert len({(d, Path(f.rel).stem) for d, f in zip(dirs, files)}) == 3


def test_augmentation_keeps_shape_and_pads_like_timbred():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 128, 130) * 10 - 20
    y = augment_batch(x, gen)
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert not torch.equal(x, y) and torch.equal(x, x.clone()), "input untouched"
    # A padded tail is constant at (segment max - 80 dB), as timbred writes zero padding.
    last = y[:, :, -1]
    padded = (last.amax(dim=1) == last.amin(dim=1))
    assert padded.any()
    for i in torch.nonzero(padded).flatten():
        assert torch.isclose(last[i, 0], y[i].amax() - 80.0, atol=1e-4)


def test_a_crop_is_the_window_floored_at_its_own_maximum_minus_80_db():
    whole = np.stack([np.arange(300, dtype=np.float32) * -1.0] * 128)  # frame t holds -t dB
    whole[5, 250] = 10.0
    c = D.crop(whole, 100)
    assert c.shape == (128, 130)
    np.testing.assert_array_equal(c[0, :80], -np.arange(100, 180, dtype=np.float32))
    # The window's maximum is -100 dB (frame 100), so everything below -180 dB is floored there,
    # as timbred clips a 3 s segment at its own maximum - 80 dB.
    np.testing.assert_array_equal(c[0, 80:], np.full(50, -180.0, np.float32))
    assert D.crop(whole, 150)[5, 100] == 10.0 and D.crop(whole, 150)[0, 129] == 10.0 - 80.0
    np.testing.assert_array_equal(D.crop(whole, 170), np.maximum(whole[:, 170:], whole[:, 170:].max() - 80))
    for bad in (-1, 171):
        with pytest.raises(ValueError):
            D.crop(whole, bad)


def crop_dataset() -> D.Dataset:
    """Two labels; file 0 a 2 s clip (one segment), file 1 a 30 s clip (10 segments, 1292 frames)."""
    files = fake_files({"a": 1, "b": 1})
    seg_file = np.array([0] + [1] * 10)
    x = np.stack([np.full((128, 130), -float(i), np.float32) for i in range(11)])
    whole = [np.zeros((128, 87), np.float32), np.tile(np.arange(1292, dtype=np.float32), (128, 1))]
    return D.Dataset(["a", "b"], files, x, seg_file, np.array([0, 1]), whole=whole)


def test_long_clips_give_random_crops_short_clips_their_segment():
    ds = crop_dataset()
    rng = np.random.default_rng(0)
    offsets = []
    for _ in range(50):
        items = epoch_items(ds, np.array([0, 1]), 4, rng, crop=True)
        short, long = items[items[:, 1] == 0], items[items[:, 1] == 1]
        assert short.tolist() == [[0, 0, -1]], "a one-segment clip keeps its fixed segment"
        assert len(long) == 4 and (long[:, 0] == -1).all()
        assert ((long[:, 2] >= 0) & (long[:, 2] <= 1292 - 130)).all()
        offsets += long[:, 2].tolist()
        x = batch_features(ds, items)
        for row, (s, f, o) in zip(x, items):
            expected = ds.x[s] if o < 0 else D.crop(ds.whole[f], o)
            np.testing.assert_array_equal(row, expected)
    # New offsets every epoch, spread over the whole clip, not the fixed cuts (multiples of 130).
    assert len(set(offsets)) > 150 and max(offsets) > 1000 and min(offsets) < 150
    assert sum(o % 130 != 0 for o in offsets) > 150
    # Without crops: the fixed segments, as before.
    items = epoch_items(ds, np.array([0, 1]), 4, np.random.default_rng(0), crop=False)
    assert (items[:, 2] == -1).all() and len(items) == 5 and set(ds.seg_file[items[:, 0]]) == {0, 1}


def test_whole_tracks_are_the_files_of_at_least_four_segments():
    ds = crop_dataset()
    assert whole_tracks(ds, np.array([0, 1])).tolist() == [1]


def test_time_shift_moves_frames_and_fills_with_the_floor():
    x = torch.arange(130, dtype=torch.float32).expand(32, 128, 130).clone()  # frame t holds t dB; max 129
    y = time_shift(x, 8, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and torch.equal(x, torch.arange(130, dtype=torch.float32).expand(32, 128, 130))
    shifts = set()
    for row in y:
        s = int(row[0, 129 // 2] - 129 // 2) * -1  # frame t holds t - s
        shifts.add(s)
        assert abs(s) <= 8
        kept = torch.arange(130) - s
        valid = (kept >= 0) & (kept < 130)
        assert torch.equal(row[:, valid], kept[valid].float().expand(128, -1))
        assert (row[:, ~valid] == 129.0 - 80.0).all(), "vacated frames hold the segment's floor"
    assert len(shifts) > 5 and any(s > 0 for s in shifts) and any(s < 0 for s in shifts)
    assert torch.equal(time_shift(x, 0, torch.Generator().manual_seed(0)), x)


def test_gain_can_be_turned_off():
    x = torch.randn(16, 128, 130) * 10 - 20
    ref = torch.Generator().manual_seed(1)
    a = augment_batch(x, torch.Generator().manual_seed(1), gain_db=0.0)
    b = augment_batch(x, ref, gain_db=6.0)
    # Without gain, unmasked, unpadded frames are untouched; with it, they move by one offset per segment.
    same = (a == x).float().mean()
    assert same > 0.5
    assert (b == x).float().mean() < 0.01


@pytest.mark.parametrize("name", ["cnn", "bilstm", "cnn-lstm"])
def test_models_take_raw_db_and_give_probabilities_and_embedding(name):
    torch.manual_seed(0)
    model = M.build(name, 10).eval()
    with torch.no_grad():
        probs, emb = M.Exported(model)(torch.randn(3, 128, 130) * 10 - 30)
    assert probs.shape == (3, 10) and emb.shape == (3, model.embedding_size)
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(3))
    toml = tomllib.loads(model_toml(name, "1.0.0", model, [f"l{i}" for i in range(10)], "0" * 64, "retrain"))
    assert toml["model"]["embedding_size"] == model.embedding_size
