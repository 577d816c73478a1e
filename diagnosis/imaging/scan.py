"""The data types an accepted upload is described by; shared by intake, pixels and deid."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydicom.dataset import Dataset

ScanKind = Literal["png", "jpeg", "dicom"]


@dataclass(frozen=True)
class ScanInfo:
    """What an accepted upload is: its kind, geometry, encoding and safe display attributes.

    For DICOM the pixel attributes are the header's (e.g. photometric YBR_FULL_422, PALETTE
    COLOR); for PNG/JPEG they describe the frames delivered (MONOCHROME2 or RGB, alpha
    composited) and `source_mode` is the Pillow mode of the file.
    """

    kind: ScanKind
    modality: str | None
    rows: int
    cols: int
    frames: int
    samples_per_pixel: int
    photometric_interpretation: str
    bits_allocated: int
    bits_stored: int
    transfer_syntax_uid: str | None
    transfer_syntax_name: str | None
    size_bytes: int
    lossy: bool | None
    sop_class_uid: str | None = None
    sop_class_name: str | None = None
    source_mode: str | None = None
    display: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LoadedScan:
    """An accepted upload with its decoded stored pixel values, ready for pixels.scan_frames()."""

    info: ScanInfo
    # (frames, rows, cols) grey or (frames, rows, cols, 3) colour, stored values, native order.
    pixels: np.ndarray
    # Interpretation of `pixels` (YBR decoded as RGB); PALETTE COLOR stays indices.
    decoded_photometric: str
    # The parsed DICOM data set (None for PNG/JPEG); callers must not mutate it.
    dataset: Dataset | None = None
