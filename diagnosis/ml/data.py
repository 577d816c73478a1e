"""Image data sets for 2-D classification: MedMNIST-style .npz files and labelled image folders.

Everything here returns numpy arrays or torch tensors; nothing imports Django.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

SPLITS: tuple[str, ...] = ("train", "val", "test")
NPZ_KEYS: tuple[str, ...] = tuple(f"{s}_{k}" for s in SPLITS for k in ("images", "labels"))
IMAGE_SUFFIXES: frozenset[str] = frozenset({".png", ".jpg", ".jpeg"})
# ITU-R BT.601 luma weights: the same ones Pillow uses for convert("L"), so an RGB upload of a
# grey X-ray maps back to the grey levels the model was trained on.
LUMA_WEIGHTS: tuple[float, float, float] = (0.299, 0.587, 0.114)
# Deterministic test-time views (dx, dy as a fraction of the side, rotation in degrees): small
# shifts and rotations well inside the training augmentation range and never a flip, so every
# view is an anatomically plausible radiograph. View 0 is the image itself.
TTA_VIEWS: tuple[tuple[float, float, float], ...] = (
    (0.0, 0.0, 0.0),
    (0.05, 0.0, 0.0),
    (-0.05, 0.0, 0.0),
    (0.0, 0.05, 0.0),
    (0.0, -0.05, 0.0),
    (0.0, 0.0, 5.0),
    (0.0, 0.0, -5.0),
)
_GREY_MODES: frozenset[str] = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"})


@dataclass(frozen=True)
class Normalisation:
    """Per-channel mean and std of training pixels on the [0, 1] scale."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def to_dict(self) -> dict[str, list[float]]:
        """Return plain lists, suitable for JSON and for a weights_only torch artifact."""
        return {"mean": [float(m) for m in self.mean], "std": [float(s) for s in self.std]}

    @classmethod
    def from_dict(cls, data: dict[str, Sequence[float]]) -> Normalisation:
        """Rebuild from `to_dict()` output; raises ValueError on mismatched or non-positive std."""
        mean = tuple(float(m) for m in data["mean"])
        std = tuple(float(s) for s in data["std"])
        if len(mean) != len(std) or not mean:
            raise ValueError("normalisation mean and std must be non-empty and of equal length")
        if min(std) <= 0:
            raise ValueError("normalisation std must be positive")
        return cls(mean=mean, std=std)

    @classmethod
    def fit(cls, images: np.ndarray) -> Normalisation:
        """Compute per-channel statistics of uint8 images shaped (N, H, W, C)."""
        pixels = images.reshape(-1, images.shape[-1]).astype(np.float64) / 255.0
        std = np.maximum(pixels.std(axis=0), 1e-3)  # a blank channel must not divide by zero
        return cls(mean=tuple(pixels.mean(axis=0).tolist()), std=tuple(std.tolist()))


@dataclass
class ImageDataset:
    """Three labelled splits of same-sized uint8 images shaped (N, H, W, C) with int64 labels."""

    train_images: np.ndarray
    train_labels: np.ndarray
    val_images: np.ndarray
    val_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    class_names: tuple[str, ...]
    channels: int
    image_size: tuple[int, int]
    source: str = ""

    def __post_init__(self) -> None:
        if len(self.class_names) < 2:
            raise ValueError(f"need at least 2 classes, got {len(self.class_names)}")
        expected = (*self.image_size, self.channels)
        for name in SPLITS:
            images, labels = self.split(name)
            if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != expected:
                raise ValueError(
                    f"{name} images must be uint8 (N, {expected[0]}, {expected[1]}, "
                    f"{expected[2]}), got {images.dtype} {images.shape}"
                )
            if labels.ndim != 1 or len(labels) != len(images) or len(labels) == 0:
                raise ValueError(f"{name}: need one label per image and at least one image")
            if labels.min() < 0 or labels.max() >= len(self.class_names):
                raise ValueError(f"{name}: labels must be in [0, {len(self.class_names)})")

    @property
    def num_classes(self) -> int:
        """Number of classes, i.e. len(class_names)."""
        return len(self.class_names)

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Return (images, labels) of 'train', 'val' or 'test'; raises ValueError otherwise."""
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; expected one of {', '.join(SPLITS)}")
        return getattr(self, f"{name}_images"), getattr(self, f"{name}_labels")

    def subset(
        self,
        *,
        train: int | None = None,
        val: int | None = None,
        test: int | None = None,
        seed: int = 0,
    ) -> ImageDataset:
        """Return a copy keeping at most the given number of images per split, stratified."""
        arrays: dict[str, np.ndarray] = {}
        for name, size in zip(SPLITS, (train, val, test), strict=True):
            images, labels = self.split(name)
            if size is not None and size < len(labels):
                keep = _stratified_sample(labels, size, np.random.default_rng(seed))
                images, labels = images[keep], labels[keep]
            arrays[f"{name}_images"], arrays[f"{name}_labels"] = images, labels
        return ImageDataset(
            **arrays,
            class_names=self.class_names,
            channels=self.channels,
            image_size=self.image_size,
            source=self.source,
        )

    def describe(self) -> dict[str, object]:
        """Return JSON-ready counts per split and class, for a model version's data reference."""
        counts = {
            name: np.bincount(self.split(name)[1], minlength=self.num_classes).tolist()
            for name in SPLITS
        }
        return {
            "source": self.source,
            "class_names": list(self.class_names),
            "channels": self.channels,
            "image_size": list(self.image_size),
            "counts": counts,
        }


def load_npz(path: str | Path, class_names: Sequence[str] | None = None) -> ImageDataset:
    """Load a MedMNIST-style .npz into an ImageDataset; raises ValueError on malformed content."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such .npz file: {path}")
    # allow_pickle=False: an uploaded .npz must not be able to run code when it is opened.
    with np.load(path, allow_pickle=False) as npz:
        missing = [key for key in NPZ_KEYS if key not in npz.files]
        if missing:
            raise ValueError(f"{path.name}: missing key(s) {', '.join(missing)}")
        raw = {key: npz[key] for key in NPZ_KEYS}

    images: dict[str, np.ndarray] = {}
    labels: dict[str, np.ndarray] = {}
    for split in SPLITS:
        images[split] = _as_nhwc_uint8(raw[f"{split}_images"], f"{split}_images")
        labels[split] = _as_label_vector(raw[f"{split}_labels"], f"{split}_labels")
        if len(images[split]) != len(labels[split]):
            raise ValueError(
                f"{split}: {len(images[split])} images but {len(labels[split])} labels"
            )
        if len(labels[split]) == 0:
            raise ValueError(f"{split}: split is empty")

    shapes = {split: images[split].shape[1:] for split in SPLITS}
    if len(set(shapes.values())) != 1:
        raise ValueError(f"image shapes differ between splits: {shapes}")

    highest = max(int(labels[s].max()) for s in SPLITS)
    names = _class_names(class_names, highest)
    for split in SPLITS:
        if labels[split].max() >= len(names):
            raise ValueError(
                f"{split}_labels: label {int(labels[split].max())} out of range for "
                f"{len(names)} class names"
            )
    height, width, channels = shapes["train"]
    return ImageDataset(
        train_images=images["train"],
        train_labels=labels["train"],
        val_images=images["val"],
        val_labels=labels["val"],
        test_images=images["test"],
        test_labels=labels["test"],
        class_names=names,
        channels=channels,
        image_size=(height, width),
        source=str(path),
    )


def load_folder(
    path: str | Path,
    *,
    image_size: tuple[int, int] | None = None,
    channels: int | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
    max_pixels: int | None = None,
) -> ImageDataset:
    """Load PNG/JPEG images from one sub-folder per class (or train/val/test/<class>/) into an
    ImageDataset; without split folders, makes a stratified split seeded by `seed`.

    `image_size` (H, W) defaults to the size of the first image; `channels` defaults to 1 when
    every image is greyscale, else 3. With `max_pixels`, every image's header is read first
    and one declaring more than `max_pixels` values is refused before any is decoded.
    """
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"no such folder: {root}")
    if all((root / split).is_dir() for split in SPLITS):
        files = {split: _class_files(root / split) for split in SPLITS}
        class_names = tuple(sorted(files["train"]))
        for split in ("val", "test"):
            unknown = sorted(set(files[split]) - set(class_names))
            if unknown:
                raise ValueError(f"{split}/ has classes not in train/: {', '.join(unknown)}")
        per_split = {
            split: [(f, class_names.index(c)) for c, fs in sorted(files[split].items()) for f in fs]
            for split in SPLITS
        }
    else:
        by_class = _class_files(root)
        class_names = tuple(sorted(by_class))
        if (
            not 0 < val_fraction < 1
            or not 0 < test_fraction < 1
            or val_fraction + test_fraction >= 1
        ):
            raise ValueError("val_fraction and test_fraction must be in (0, 1) and sum below 1")
        per_split = _stratified_split(by_class, class_names, val_fraction, test_fraction, seed)

    if len(class_names) < 2:
        raise ValueError(f"{root}: need at least 2 class folders, found {len(class_names)}")
    for split in SPLITS:
        if not per_split[split]:
            raise ValueError(f"{root}: split {split!r} has no images")

    all_files = [f for split in SPLITS for f, _ in per_split[split]]
    if max_pixels is not None:
        for f in all_files:
            mode, (height, width) = _header(f)
            if height * width * _bands(mode) > max_pixels:
                raise ValueError(
                    f"image {f} is {width:,} x {height:,} pixels, above the limit of "
                    f"{max_pixels:,} values (a decompression bomb?)"
                )
    if channels is None:
        modes = {_header(f)[0] for f in all_files}
        channels = 1 if modes <= _GREY_MODES else 3
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    if image_size is None:
        image_size = _header(all_files[0])[1]

    arrays: dict[str, np.ndarray] = {}
    for split in SPLITS:
        stack = [_read_image(f, image_size, channels) for f, _ in per_split[split]]
        arrays[f"{split}_images"] = np.stack(stack)
        arrays[f"{split}_labels"] = np.array([lab for _, lab in per_split[split]], dtype=np.int64)
    return ImageDataset(
        **arrays,
        class_names=class_names,
        channels=channels,
        image_size=(int(image_size[0]), int(image_size[1])),
        source=str(root),
    )


def images_to_tensor(images: np.ndarray, normalisation: Normalisation) -> torch.Tensor:
    """Turn uint8 images (N, H, W, C) into a normalised float32 tensor (N, C, H, W)."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0)
    return normalise(x, normalisation)


def normalise(x: torch.Tensor, normalisation: Normalisation) -> torch.Tensor:
    """Apply per-channel (x - mean) / std to a [0, 1] tensor (N, C, H, W), returning a new one."""
    mean = torch.tensor(normalisation.mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    std = torch.tensor(normalisation.std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return (x - mean) / std


def tta_views(x: torch.Tensor) -> torch.Tensor:
    """Return the TTA_VIEWS of a batch (N, C, H, W) stacked view-major as (V * N, C, H, W)."""
    n = x.shape[0]
    thetas = []
    for dx, dy, deg in TTA_VIEWS:
        a = math.radians(deg)
        thetas.append([[math.cos(a), -math.sin(a), 2 * dx], [math.sin(a), math.cos(a), 2 * dy]])
    theta = torch.tensor(thetas, dtype=x.dtype, device=x.device).repeat_interleave(n, dim=0)
    xs = x.repeat(len(TTA_VIEWS), 1, 1, 1)
    grid = F.affine_grid(theta, list(xs.shape), align_corners=False)
    # Warping a normalised tensor equals normalising the warped image: both steps are linear and
    # border padding repeats edge values. Border padding also matches the training augmentation.
    return F.grid_sample(xs, grid, mode="bilinear", padding_mode="border", align_corners=False)


def prepare_image(
    image: np.ndarray,
    *,
    input_size: tuple[int, int],
    channels: int,
    normalisation: Normalisation,
) -> torch.Tensor:
    """Turn one image of any size into the model's normalised input tensor (C, H, W).

    Accepts (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) (alpha dropped). uint8 is read as 0..255;
    float in [0, 1] is used as is; any other range or integer type (e.g. 12/16-bit DICOM pixels)
    is min-max scaled per image. Resizing is bilinear with antialiasing, so a large radiograph is
    averaged down rather than aliased.
    """
    t = _unit_tensor(image, input_size, channels)
    return normalise(t, normalisation)[0]


def prepare_images(
    images: Sequence[np.ndarray],
    *,
    input_size: tuple[int, int],
    channels: int,
    normalisation: Normalisation,
) -> torch.Tensor:
    """Stack `prepare_image` of each image into one batch tensor (N, C, H, W)."""
    if len(images) == 0:
        raise ValueError("no images given")
    return torch.stack(
        [
            prepare_image(
                img, input_size=input_size, channels=channels, normalisation=normalisation
            )
            for img in images
        ]
    )


def _as_hwc(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[-1] not in (1, 3, 4):
        raise ValueError(
            f"image must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); got shape {image.shape}"
        )
    if image.shape[0] < 2 or image.shape[1] < 2:
        raise ValueError(f"image is too small: {image.shape}")
    if image.shape[-1] == 4:
        image = image[:, :, :3]
    return image


def _unit_range(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    if image.dtype == np.bool_:
        return image.astype(np.float32)
    if not (np.issubdtype(image.dtype, np.integer) or np.issubdtype(image.dtype, np.floating)):
        raise ValueError(f"unsupported image dtype {image.dtype}")
    x = image.astype(np.float32)
    if not np.isfinite(x).all():
        raise ValueError("image contains NaN or infinite values")
    lo, hi = float(x.min()), float(x.max())
    if np.issubdtype(image.dtype, np.floating) and lo >= 0.0 and hi <= 1.0:
        return x
    if hi == lo:
        return np.zeros_like(x)
    return (x - lo) / (hi - lo)


def _as_nhwc_uint8(array: np.ndarray, key: str) -> np.ndarray:
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4 or array.shape[-1] not in (1, 3):
        raise ValueError(f"{key}: expected (N, H, W) or (N, H, W, 3), got shape {array.shape}")
    if array.dtype == np.uint8:
        return array
    if (
        np.issubdtype(array.dtype, np.floating)
        and array.size
        and array.min() >= 0
        and array.max() <= 1
    ):
        return np.round(array * 255.0).astype(np.uint8)
    if (
        np.issubdtype(array.dtype, np.integer)
        and array.size
        and array.min() >= 0
        and array.max() <= 255
    ):
        return array.astype(np.uint8)
    raise ValueError(f"{key}: expected uint8 pixels (or floats in [0, 1]), got {array.dtype}")


def _as_label_vector(array: np.ndarray, key: str) -> np.ndarray:
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(
            f"{key}: expected (N,) or (N, 1) single-label classes, got shape {array.shape} "
            "(multi-label data sets are not supported)"
        )
    if not np.issubdtype(array.dtype, np.integer):
        if not np.issubdtype(array.dtype, np.floating) or not np.all(array == np.round(array)):
            raise ValueError(f"{key}: labels must be integers, got {array.dtype}")
    labels = array.astype(np.int64)
    if labels.size and labels.min() < 0:
        raise ValueError(f"{key}: label {int(labels.min())} out of range (negative)")
    return labels


def _class_names(given: Sequence[str] | None, highest: int) -> tuple[str, ...]:
    if given is None:
        names = tuple(str(i) for i in range(highest + 1))
    else:
        names = tuple(str(n) for n in given)
        if len(set(names)) != len(names):
            raise ValueError(f"class names must be unique: {list(names)}")
    if len(names) < 2:
        raise ValueError(f"need at least 2 classes, got {len(names)}")
    return names


def _class_files(folder: Path) -> dict[str, list[Path]]:
    by_class: dict[str, list[Path]] = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(
            f
            for f in sub.iterdir()
            if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith(".")
        )
        if not files:
            raise ValueError(f"class folder {sub} has no PNG/JPEG images")
        by_class[sub.name] = files
    if len(by_class) < 2:
        raise ValueError(f"{folder}: need at least 2 class folders, found {len(by_class)}")
    return by_class


def _stratified_split(
    by_class: dict[str, list[Path]],
    class_names: tuple[str, ...],
    val_fraction: float,
    test_fraction: float,
    seed: int,
) -> dict[str, list[tuple[Path, int]]]:
    rng = np.random.default_rng(seed)
    out: dict[str, list[tuple[Path, int]]] = {split: [] for split in SPLITS}
    for index, name in enumerate(class_names):
        files = by_class[name]
        if len(files) < 3:
            raise ValueError(f"class {name!r} has {len(files)} image(s); need at least 3 to split")
        order = rng.permutation(len(files))
        # Every class gets at least one val and one test image so per-class metrics exist.
        n_test = max(1, round(len(files) * test_fraction))
        n_val = max(1, round(len(files) * val_fraction))
        if n_test + n_val >= len(files):
            n_test, n_val = 1, 1
        cuts = {"test": order[:n_test], "val": order[n_test : n_test + n_val]}
        cuts["train"] = order[n_test + n_val :]
        for split in SPLITS:
            out[split].extend((files[i], index) for i in sorted(cuts[split]))
    return out


def _stratified_sample(labels: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    classes, counts = np.unique(labels, return_counts=True)
    quota = np.maximum(1, np.floor(counts / counts.sum() * size)).astype(int)
    keep = [
        rng.choice(np.flatnonzero(labels == c), size=min(q, n), replace=False)
        for c, q, n in zip(classes, quota, counts, strict=True)
    ]
    return np.sort(np.concatenate(keep))


def _header(path: Path) -> tuple[str, tuple[int, int]]:
    """Return (Pillow mode, (height, width)) without decoding pixels."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return img.mode, (img.height, img.width)
    except Image.DecompressionBombError as exc:
        raise ValueError(f"image {path} is too large to decode: {exc}") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, EOFError) as exc:
        raise ValueError(f"cannot read image {path}: {exc}") from exc


def _bands(mode: str) -> int:
    from PIL import Image

    return Image.getmodebands(mode)


def _read_image(path: Path, image_size: tuple[int, int], channels: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            # Palette, CMYK and alpha modes do not map to grey levels or RGB by asarray alone.
            if img.mode not in ("L", "RGB", "I", "I;16", "I;16B", "I;16L", "F"):
                img = img.convert("L" if img.mode in _GREY_MODES else "RGB")
            array = np.asarray(img)
    except Image.DecompressionBombError as exc:
        raise ValueError(f"image {path} is too large to decode: {exc}") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, EOFError) as exc:
        raise ValueError(f"cannot read image {path}: {exc}") from exc
    # Same conversion as inference, so training and prediction see identical pixels.
    t = _unit_tensor(array, image_size, channels)
    return t[0].permute(1, 2, 0).mul(255.0).round().to(torch.uint8).numpy()


def _unit_tensor(image: np.ndarray, size: tuple[int, int], channels: int) -> torch.Tensor:
    x = _unit_range(_as_hwc(image))
    if x.shape[-1] != channels:
        if channels == 1:
            x = x @ np.asarray(LUMA_WEIGHTS, dtype=np.float32)[:, None]
        else:
            x = np.repeat(x, channels, axis=-1)
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).permute(2, 0, 1).unsqueeze(0)
    if tuple(t.shape[-2:]) != tuple(size):
        t = F.interpolate(t, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)
    return t.clamp_(0.0, 1.0)
