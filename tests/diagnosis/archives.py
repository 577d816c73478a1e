"""Data-set archives for tests: real small ones and hostile ones (zip bombs, traversal,
links, pickled arrays)."""

from __future__ import annotations

import io
import stat
import zipfile

import numpy as np
from PIL import Image

from tests.diagnosis.model_versions import PNEUMONIA_NPZ


def png(value: int = 128, size: tuple[int, int] = (12, 12), mode: str = "L") -> bytes:
    rng = np.random.default_rng(value)
    pixels = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg(value: int = 7, size: tuple[int, int] = (20, 16)) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((size[1], size[0], 3), value, np.uint8)).save(buffer, format="JPEG")
    return buffer.getvalue()


def zip_bytes(entries: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def class_folders_zip(prefix: str = "", per_class: int = 5, **extra: bytes) -> bytes:
    """Two classes of small images, ``per_class`` each (enough for a 3-way split)."""
    entries = {f"{prefix}normal/n{i}.png": png(i) for i in range(per_class)}
    entries |= {f"{prefix}pneumonia/p{i}.png": png(100 + i) for i in range(per_class)}
    return zip_bytes({**entries, **extra})


def symlink_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i in range(3):
            archive.writestr(f"a/{i}.png", png(i))
            archive.writestr(f"b/{i}.png", png(50 + i))
        link = zipfile.ZipInfo("b/evil.png")
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
    return buffer.getvalue()


def bomb_zip(megabytes: int) -> bytes:
    """One image-named entry of zeros that deflates about 1000-fold."""
    entries = {f"a/{i}.png": png(i) for i in range(3)} | {
        f"b/{i}.png": png(9 + i) for i in range(3)
    }
    entries["b/huge.png"] = b"\x89PNG\r\n\x1a\n" + bytes(megabytes << 20)
    return zip_bytes(entries)


def small_npz(**overrides: np.ndarray) -> bytes:
    """A real 3-split PneumoniaMNIST subset as .npz bytes, with arrays replaced or added."""
    with np.load(PNEUMONIA_NPZ) as npz:
        arrays = {
            f"{s}_{k}": npz[f"{s}_{k}"][:40]
            for s in ("train", "val", "test")
            for k in ("images", "labels")
        }
    arrays.update(overrides)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def pickled_npz() -> bytes:
    labels = np.empty(40, dtype=object)
    labels[:] = [{"x": i} for i in range(40)]
    buffer = io.BytesIO()
    with np.load(PNEUMONIA_NPZ) as npz:
        arrays = {f"{s}_images": npz[f"{s}_images"][:40] for s in ("train", "val", "test")}
    arrays |= {f"{s}_labels": labels for s in ("train", "val", "test")}
    np.savez(buffer, **arrays, allow_pickle=True)
    return buffer.getvalue()


def mixed_zip() -> bytes:
    """Images of different sizes, modes and formats: grey, RGB, RGBA, palette; PNG and JPEG."""
    return zip_bytes(
        {
            "set/a/1.png": png(1, (12, 12), "RGB"),
            "set/a/2.png": png(2, (30, 20), "L"),
            "set/a/3.jpg": jpeg(),
            "set/b/1.png": png(3, (12, 12), "RGBA"),
            "set/b/2.jpeg": jpeg(200),
            "set/b/3.png": png(4, (8, 9), "P"),
        }
    )
