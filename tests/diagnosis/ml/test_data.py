"""Loading .npz files and image folders, and preparing single images for the model."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from diagnosis.ml.data import (
    ImageDataset,
    Normalisation,
    images_to_tensor,
    load_folder,
    load_npz,
    prepare_image,
)


def test_real_pneumoniamnist(pneumonia: ImageDataset) -> None:
    assert pneumonia.class_names == ("normal", "pneumonia")
    assert pneumonia.channels == 1 and pneumonia.image_size == (28, 28)
    assert pneumonia.train_images.shape == (4708, 28, 28, 1)
    assert pneumonia.train_images.dtype == np.uint8 and pneumonia.train_labels.dtype == np.int64
    assert pneumonia.describe()["counts"] == {
        "train": [1214, 3494],
        "val": [135, 389],
        "test": [234, 390],
    }


def test_subset_is_stratified(pneumonia: ImageDataset) -> None:
    small = pneumonia.subset(train=400, val=100, test=None, seed=3)
    assert len(small.train_labels) in range(398, 401)
    assert 0.2 < small.train_labels.mean() < 0.8  # both classes kept
    assert len(small.test_labels) == 624


def _write_npz(path: Path, **overrides: np.ndarray) -> Path:
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 12), ("val", 4), ("test", 4)):
        arrays[f"{split}_images"] = rng.integers(0, 256, (n, 8, 8), dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(n) % 3).reshape(n, 1)
    arrays.update(overrides)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(path, **arrays)
    return path


def test_npz_rgb_flat_labels_and_inferred_classes(tmp_path: Path) -> None:
    rgb = {
        f"{s}_images": np.zeros((n, 8, 8, 3), np.uint8)
        for s, n in (("train", 12), ("val", 4), ("test", 4))
    }
    ds = load_npz(_write_npz(tmp_path / "a.npz", train_labels=np.arange(12) % 3, **rgb))
    assert ds.channels == 3 and ds.class_names == ("0", "1", "2")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"val_labels": None}, "missing key"),
        ({"test_labels": np.array([[0], [1], [0.5], [0]])}, "labels must be integers"),
        ({"train_labels": np.array([[0], [1], [-1]] * 4)}, "negative"),
        ({"val_images": np.zeros((5, 8, 8), dtype=np.uint8)}, "5 images but 4 labels"),
        ({"test_images": np.zeros((4, 9, 8), dtype=np.uint8)}, "shapes differ"),
        ({"train_images": np.zeros((12, 8), dtype=np.uint8)}, "expected (N, H, W)"),
        ({"train_labels": np.zeros((12, 3), dtype=int)}, "multi-label"),
        (
            {
                "train_labels": np.zeros(12, int),
                "val_labels": np.zeros(4, int),
                "test_labels": np.zeros(4, int),
            },
            "at least 2 classes",
        ),
    ],
)
def test_npz_errors(tmp_path: Path, overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        load_npz(_write_npz(tmp_path / "bad.npz", **overrides))


def test_npz_label_beyond_given_class_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="out of range for 2 class names"):
        load_npz(_write_npz(tmp_path / "a.npz"), class_names=["a", "b"])


def _write_class_folder(root: Path, counts: dict[str, int], mode: str = "L") -> None:
    for value, (name, n) in enumerate(counts.items()):
        (root / name).mkdir(parents=True)
        for i in range(n):
            # Each class has its own grey level, so pixels prove which folder an image came from.
            level = 40 + 80 * value
            img = Image.new(mode, (10, 12), level if mode == "L" else (level, level, level))
            img.putpixel((0, 0), i if mode == "L" else (i, i, i))  # tells the files apart
            img.save(root / name / f"{i:03d}.png")


def test_folder_classes_and_stratified_split(tmp_path: Path) -> None:
    _write_class_folder(tmp_path, {"effusion": 20, "atelectasis": 10, "normal": 30})
    ds = load_folder(tmp_path, seed=1)
    assert ds.class_names == ("atelectasis", "effusion", "normal")  # sorted folder names
    assert ds.channels == 1 and ds.image_size == (12, 10)
    assert ds.describe()["counts"] == {"train": [8, 16, 24], "val": [1, 2, 3], "test": [1, 2, 3]}
    # Labels follow folder names: atelectasis was written with level 120, effusion 40, normal 200.
    for images, labels in (ds.split(s) for s in ("train", "val", "test")):
        assert np.array_equal(images[:, -1, -1, 0], np.array([120, 40, 200])[labels])
    again, other = load_folder(tmp_path, seed=1), load_folder(tmp_path, seed=2)
    assert np.array_equal(again.val_images, ds.val_images)
    assert np.array_equal(again.train_labels, ds.train_labels)
    assert not np.array_equal(other.val_images, ds.val_images)


def test_folder_with_split_subfolders_rgb_and_resize(tmp_path: Path) -> None:
    for split, n in (("train", 4), ("val", 2), ("test", 2)):
        _write_class_folder(tmp_path / split, {"a": n, "b": n, "c": n}, mode="RGB")
    ds = load_folder(tmp_path, image_size=(6, 6))
    assert ds.channels == 3 and ds.train_images.shape == (12, 6, 6, 3)
    assert ds.describe()["counts"]["val"] == [2, 2, 2]
    assert load_folder(tmp_path, channels=1).train_images.shape[-1] == 1


def test_folder_errors(tmp_path: Path) -> None:
    _write_class_folder(tmp_path / "one", {"only": 5})
    with pytest.raises(ValueError, match="at least 2 class folders"):
        load_folder(tmp_path / "one")
    _write_class_folder(tmp_path / "empty", {"a": 5, "b": 5})
    (tmp_path / "empty" / "c").mkdir()
    with pytest.raises(ValueError, match="no PNG/JPEG"):
        load_folder(tmp_path / "empty")
    _write_class_folder(tmp_path / "corrupt", {"a": 5, "b": 5})
    (tmp_path / "corrupt" / "a" / "zzz.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="cannot read image"):
        load_folder(tmp_path / "corrupt")
    _write_class_folder(tmp_path / "tiny", {"a": 5, "b": 2})
    with pytest.raises(ValueError, match="need at least 3"):
        load_folder(tmp_path / "tiny")
    with pytest.raises(FileNotFoundError):
        load_folder(tmp_path / "missing")


def test_prepare_image_matches_training_pipeline(pneumonia: ImageDataset) -> None:
    norm = Normalisation.fit(pneumonia.train_images)
    images = pneumonia.test_images[:3]
    expected = images_to_tensor(images, norm)
    for img, want in zip(images, expected, strict=True):
        kwargs = {"input_size": (28, 28), "channels": 1, "normalisation": norm}
        assert torch.allclose(prepare_image(img[:, :, 0], **kwargs), want, atol=1e-6)
        as_float = img[:, :, 0].astype(np.float32) / 255.0
        assert torch.allclose(prepare_image(as_float, **kwargs), want, atol=1e-5)
        as_rgb = np.repeat(img, 3, axis=-1)
        assert torch.allclose(prepare_image(as_rgb, **kwargs), want, atol=1e-2)


def test_prepare_image_resizes_and_rescales() -> None:
    norm = Normalisation(mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    big16 = (np.arange(300 * 200, dtype=np.uint16).reshape(300, 200) * 7) % 4096
    x = prepare_image(big16, input_size=(28, 28), channels=3, normalisation=norm)
    assert x.shape == (3, 28, 28) and x.dtype == torch.float32
    assert x.min() >= (0 - 0.5) / 0.25 and x.max() <= (1 - 0.5) / 0.25
    with pytest.raises(ValueError, match="image must be"):
        prepare_image(np.zeros((4, 4, 2)), input_size=(28, 28), channels=1, normalisation=norm)
    with pytest.raises(ValueError, match="NaN"):
        prepare_image(np.full((4, 4), np.nan), input_size=(28, 28), channels=1, normalisation=norm)


def test_dataset_built_by_hand_is_validated() -> None:
    x, y = np.zeros((4, 8, 8, 1), np.uint8), np.array([0, 1, 0, 1])
    ImageDataset(x, y, x, y, x, y, ("a", "b"), 1, (8, 8))
    with pytest.raises(ValueError, match="must be uint8"):
        ImageDataset(x.astype(float), y, x, y, x, y, ("a", "b"), 1, (8, 8))
    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\)"):
        ImageDataset(x, y, x, y + 1, x, y, ("a", "b"), 1, (8, 8))
    with pytest.raises(ValueError, match="one label per image"):
        ImageDataset(x, y[:3], x, y, x, y, ("a", "b"), 1, (8, 8))
