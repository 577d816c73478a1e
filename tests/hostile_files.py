"""Hostile upload inputs, generated (never stored): truncated files, huge declared sizes,
deep nesting, polyglots, content disguised as images, compression bombs, garbage."""

from __future__ import annotations

import errno
import gzip
import io
import os
import random
import struct
import zlib

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid


def png(size: tuple[int, int] = (64, 64), value: int = 80) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full(size[::-1], value, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg(size: tuple[int, int] = (64, 64)) -> bytes:
    buffer = io.BytesIO()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (*size[::-1], 3), np.uint8)).save(buffer, "JPEG")
    return buffer.getvalue()


def _chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def png_huge_declared(width: int = 100_000, height: int = 100_000) -> bytes:
    """A valid PNG header declaring a gigantic canvas over a few rows of real data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(bytes(1 + width) * 2, 9)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


def png_bomb(width: int = 25_000, height: int = 25_000) -> bytes:
    """A genuine decompression bomb: 1-bit all-zero PNG (kilobytes) of width x height."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = bytes(1 + (width + 7) // 8)
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


def dicom_dataset(**attrs: object) -> Dataset:
    """A small valid CT image data set (8x8, 8-bit) with ``attrs`` overriding."""
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientName = "Identifiable^Jane"
    ds.PatientID = "MRN-12345"
    ds.Modality = "CT"
    ds.Rows = ds.Columns = 8
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = bytes(range(64))
    for keyword, value in attrs.items():
        setattr(ds, keyword, value)
    return ds


def dicom_bytes(ds: Dataset) -> bytes:
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta = meta
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def dicom(**attrs: object) -> bytes:
    return dicom_bytes(dicom_dataset(**attrs))


def dicom_huge_declared() -> bytes:
    """Rows x Columns x Number of Frames far beyond any cap, over 64 bytes of pixels."""
    return dicom(Rows=65535, Columns=65535, NumberOfFrames=1000)


def dicom_truncated_pixels() -> bytes:
    """A DICOM file cut in the middle of its pixel data."""
    data = dicom(Rows=256, Columns=256, PixelData=bytes(256 * 256))
    return data[: len(data) - 40_000]


def dicom_deep_sequences(depth: int = 3000) -> bytes:
    """Referenced Image Sequence items nested ``depth`` levels deep (undefined lengths)."""
    nested = b""
    for _ in range(depth):
        nested = (
            b"\x08\x00\x40\x11SQ\x00\x00\xff\xff\xff\xff"  # (0008,1140) SQ, undefined length
            + b"\xfe\xff\x00\xe0\xff\xff\xff\xff"  # item, undefined length
            + nested
            + b"\xfe\xff\x0d\xe0\x00\x00\x00\x00"  # item delimiter
            + b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"  # sequence delimiter
        )
    data = dicom()
    at = data.index(b"\x28\x00\x02\x00")  # before (0028,0002): keeps the tags in order
    return data[:at] + nested + data[at:]


def polyglot(front: bytes) -> bytes:
    """``front``'s header in the 128-byte preamble, then 'DICM' and no valid DICOM meta."""
    return front[:128].ljust(128, b"\x00") + b"DICM" + front[128:]


def gzip_bomb(expanded: int = 600 * 1024 * 1024) -> bytes:
    """A gzip member of ``expanded`` zero bytes (about 0.1 % of that compressed)."""
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9, mtime=0) as handle:
        block = bytes(16 * 1024 * 1024)
        for _ in range(expanded // len(block)):
            handle.write(block)
    return out.getvalue()


def garbage(size: int = 4096, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


HTML = b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>"
SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)">'
    b"<script>fetch('/api/')</script></svg>"
)
SCRIPT = b"#!/bin/sh\nrm -rf / --no-preserve-root\n"


def files_under(root: os.PathLike[str] | str) -> list[str]:
    """Every file below ``root`` (relative paths), [] when it does not exist."""
    found = []
    for folder, _, names in os.walk(root):
        found.extend(os.path.relpath(os.path.join(folder, n), root) for n in names)
    return sorted(found)


def disk_full_save(monkeypatch) -> None:
    """Make every storage write fail with ENOSPC halfway, leaving a partial file (as a full
    disk does)."""
    from django.core.files.storage import FileSystemStorage

    def save(self, name, content):
        path = self.path(name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        data = b"".join(
            chunk if isinstance(chunk, bytes) else chunk.encode() for chunk in content.chunks()
        )
        with open(path, "wb") as handle:
            handle.write(data[: max(1, len(data) // 2)])
        raise OSError(errno.ENOSPC, "No space left on device", path)

    monkeypatch.setattr(FileSystemStorage, "_save", save)
