"""Shared inputs for the imaging tests: offline DICOM corpora and images made with Pillow."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

REPO_ROOT = Path(__file__).resolve().parents[3]
# The project's shared/ folder sits beside the repository (also in CI); overridable.
NEMA_DIR = Path(
    os.environ.get(
        "MEDAI_NEMA_WG04_DIR", REPO_ROOT.parent / "shared" / "datasets" / "dicom" / "nema-wg04"
    )
)
MAX_BYTES = 64 * 1024 * 1024
MAX_PIXELS = 50_000_000


def nema_files() -> list[Path]:
    """Return the NEMA WG04 compression test files (35 expected), or [] if not mounted."""
    if not NEMA_DIR.is_dir():
        return []
    return sorted(path for path in NEMA_DIR.iterdir() if path.is_file())


def pydicom_file_path(name: str) -> Path:
    """Return a pydicom/pydicom-data test file found offline, or skip the test (never download)."""
    found = get_testdata_file(name, download=False)
    if found is None:
        pytest.skip(f"{name} is not available offline")
    return Path(str(found))


def pydicom_file_bytes(name: str) -> bytes:
    """Return the bytes of an offline pydicom test file."""
    return pydicom_file_path(name).read_bytes()


def png_bytes(array: np.ndarray, mode: str | None = None, **save: object) -> bytes:
    """Encode an array as PNG with Pillow."""
    image = Image.fromarray(array, mode=mode) if mode else Image.fromarray(array)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **save)
    return buffer.getvalue()


def jpeg_bytes(array: np.ndarray, quality: int = 95) -> bytes:
    """Encode an array as JPEG with Pillow."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _chunk(kind: bytes, payload: bytes) -> bytes:
    """Return one PNG chunk with its CRC (PNG spec 5.3)."""
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def png_bomb(width: int, height: int, *, rows_to_encode: int | None = None) -> bytes:
    """Return a 1-bit greyscale PNG of the given size whose pixels are all zero.

    With rows_to_encode=None the whole image is really encoded (a genuine zip bomb: a tiny
    file that inflates to width*height/8 bytes); otherwise only that many rows are, and the
    header simply lies about the height.
    """
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit grey
    row = bytes(1 + (width + 7) // 8)  # filter byte 0 + packed zero pixels
    compressor = zlib.compressobj(9)
    parts = [
        compressor.compress(row)
        for _ in range(height if rows_to_encode is None else rows_to_encode)
    ]
    parts.append(compressor.flush())
    idat = b"".join(parts)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )
