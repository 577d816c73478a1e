"""Entry point for uploaded medical images: sniff the type from content, cap, validate, decode.

Never looks at file names: a PNG renamed .dcm is a PNG, a text file renamed .dcm is text.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
from pydicom import uid as dicom_uid
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from diagnosis.imaging.dicom_intake import (
    is_part10,
    load_dicom,
    looks_like_bare_dataset,
    misplaced_dataset_offset,
)
from diagnosis.imaging.errors import RejectCode, ScanRejected
from diagnosis.imaging.pixels import frame_presentations
from diagnosis.imaging.raster import JPEG_MAGIC, PNG_MAGIC, load_raster
from diagnosis.imaging.scan import LoadedScan, ScanInfo, ScanKind

UploadSource = bytes | bytearray | memoryview | str | os.PathLike[str]

# Formats people upload by mistake, named so the doctor learns what went wrong.
_OTHER_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (please upload the images inside it one by one)"),
    (b"\x1f\x8b", "a gzip-compressed file"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "a JPEG 2000 image file"),
)

# PS3.3 attributes safe to show next to the image: no identity, dates, places or free text
# (none is listed in PS3.15 Table E.1-1 with an action other than K).
_DISPLAY_ATTRIBUTES: tuple[tuple[str, str], ...] = (
    ("BodyPartExamined", "body_part_examined"),
    ("ViewPosition", "view_position"),
    ("ImageLaterality", "image_laterality"),
    ("Laterality", "laterality"),
    ("PatientPosition", "patient_position"),
    ("ImageType", "image_type"),
    ("PixelSpacing", "pixel_spacing_mm"),
    ("SliceThickness", "slice_thickness_mm"),
    ("LossyImageCompression", "lossy_image_compression"),
    ("BurnedInAnnotation", "burned_in_annotation"),
)


def read_upload(source: UploadSource, *, max_bytes: int) -> bytes:
    """Return the upload's bytes, refusing empty or over-size input before reading a path."""
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        size = len(data)
    else:
        path = Path(source)
        size = path.stat().st_size
        _check_size(size, max_bytes)  # before reading a huge file into memory
        data = path.read_bytes()
        size = len(data)
    _check_size(size, max_bytes)
    return data


def detect_kind(data: bytes) -> ScanKind:
    """Return the upload's kind from its content (magic numbers, DICOM structure); else reject."""
    if not data:
        raise ScanRejected(RejectCode.EMPTY, "The file is empty.")
    # PS3.10 7.1 first: a DICOM preamble may legally hold another format's header (e.g. TIFF).
    if is_part10(data):
        return "dicom"
    if data.startswith(PNG_MAGIC):
        return "png"
    if data.startswith(JPEG_MAGIC):
        return "jpeg"
    description = _other_format(data)
    if description is not None:
        raise ScanRejected(
            RejectCode.UNKNOWN_FORMAT,
            f"The file is {description}. Only DICOM, PNG and JPEG images can be uploaded.",
        )
    if looks_like_bare_dataset(data):
        return "dicom"
    offset = misplaced_dataset_offset(data)
    if offset is not None:
        raise ScanRejected(
            RejectCode.NOT_DICOM,
            "The file has no DICOM header (no 'DICM' marker after a 128-byte preamble) and "
            f"its DICOM data starts {offset} byte(s) late, so it is damaged at the start. "
            "Please export it again from the imaging system.",
        )
    if _is_text(data):
        raise ScanRejected(
            RejectCode.TEXT_FILE,
            "The file contains plain text, not an image. Only DICOM, PNG and JPEG images can "
            "be uploaded (the file name or extension does not change what a file contains).",
        )
    raise ScanRejected(
        RejectCode.UNKNOWN_FORMAT,
        "The file is not a DICOM, PNG or JPEG image: its content matches none of these "
        "formats (the file name is not used to decide).",
    )


def load_upload(
    source: UploadSource,
    *,
    max_bytes: int,
    max_pixels: int,
    on_declared: Callable[[int], None] | None = None,
) -> LoadedScan:
    """Return the validated, decoded upload; max_pixels caps rows*cols*frames*samples pre-decode.

    ``on_declared(samples)`` runs after the header checks and before any decoding: a caller
    decoding several files bounds their total there (by raising its own exception).
    """
    try:
        return _load(source, max_bytes=max_bytes, max_pixels=max_pixels, on_declared=on_declared)
    except RecursionError:
        # Last line of defence for structures nested past the explicit depth checks.
        raise ScanRejected(
            RejectCode.CORRUPT,
            "The file's structure is nested too deeply to be read; it is damaged or crafted.",
        ) from None


def _load(
    source: UploadSource,
    *,
    max_bytes: int,
    max_pixels: int,
    on_declared: Callable[[int], None] | None,
) -> LoadedScan:
    data = read_upload(source, max_bytes=max_bytes)
    kind = detect_kind(data)
    if kind == "dicom":
        decoded = load_dicom(data, max_pixels=max_pixels, on_declared=on_declared)
        scan = LoadedScan(
            info=_dicom_info(decoded.dataset, decoded.transfer_syntax, decoded.pixels, len(data)),
            pixels=decoded.pixels,
            decoded_photometric=decoded.decoded_photometric,
            dataset=decoded.dataset,
        )
        # Parse rescale/window attributes now, so a damaged one is rejected at upload time
        # rather than failing later in a worker.
        frame_presentations(scan)
        return scan
    raster = load_raster(data, kind, max_pixels=max_pixels, on_declared=on_declared)
    _, rows, cols = raster.pixels.shape[:3]
    info = ScanInfo(
        kind=kind,
        modality=None,
        rows=rows,
        cols=cols,
        frames=1,
        samples_per_pixel=1 if raster.pixels.ndim == 3 else 3,
        photometric_interpretation=raster.photometric,
        bits_allocated=raster.bits,
        bits_stored=raster.bits,
        transfer_syntax_uid=None,
        transfer_syntax_name=None,
        size_bytes=len(data),
        lossy=kind == "jpeg",
        source_mode=raster.source_mode,
    )
    return LoadedScan(info=info, pixels=raster.pixels, decoded_photometric=raster.photometric)


def inspect_upload(source: UploadSource, *, max_bytes: int, max_pixels: int) -> ScanInfo:
    """Return ScanInfo for an upload that fully validates and decodes; else ScanRejected."""
    return load_upload(source, max_bytes=max_bytes, max_pixels=max_pixels).info


def _other_format(data: bytes) -> str | None:
    """Name a common non-accepted format from its signature, or return None."""
    for signature, description in _OTHER_SIGNATURES:
        if data.startswith(signature):
            return description
    # BMP's "BM" is too short to trust alone; its header's reserved bytes 6-9 are zero.
    if data.startswith(b"BM") and len(data) >= 14 and data[6:10] == bytes(4):
        return "a BMP image"
    return None


def _check_size(size: int, max_bytes: int) -> None:
    """Reject empty files and files above the byte cap."""
    if size == 0:
        raise ScanRejected(RejectCode.EMPTY, "The file is empty.")
    if size > max_bytes:
        raise ScanRejected(
            RejectCode.TOO_LARGE,
            f"The file is {_megabytes(size)}, larger than this server's upload limit of "
            f"{_megabytes(max_bytes)}.",
        )


def _megabytes(size: int) -> str:
    """Format a byte count for a doctor."""
    if size < 1024 * 1024:
        return f"{size / 1024:,.1f} KB"
    return f"{size / (1024 * 1024):,.1f} MB"


def _is_text(data: bytes) -> bool:
    """Return True when the start of `data` is printable UTF-8 text without NUL bytes."""
    sample = data[:4096]
    if b"\x00" in sample:
        return False
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the sample's end is still text.
        if exc.start < len(sample) - 4:
            return False
        text = sample[: exc.start].decode("utf-8")
    printable = sum(1 for char in text if char.isprintable() or char in "\r\n\t\f")
    return bool(text) and printable / len(text) > 0.95


def _text(dataset: Dataset, keyword: str) -> str | None:
    """Return an attribute as display text, or None when absent or unreadable."""
    try:
        value = dataset.get(keyword)
    except Exception:  # a damaged optional attribute is simply not shown
        return None
    if value is None or value == "":
        return None
    if isinstance(value, list | tuple | MultiValue):
        return "\\".join(str(item) for item in value)
    return str(value).strip() or None


def _dicom_info(
    dataset: Dataset, transfer_syntax: dicom_uid.UID, pixels: np.ndarray, size: int
) -> ScanInfo:
    """Summarise a validated DICOM data set; safe attributes only."""
    sop_class = _text(dataset, "SOPClassUID")
    display = {
        name: value
        for keyword, name in _DISPLAY_ATTRIBUTES
        if (value := _text(dataset, keyword)) is not None
    }
    lossy = _dicom_lossy(_text(dataset, "LossyImageCompression"), transfer_syntax)
    return ScanInfo(
        kind="dicom",
        modality=_text(dataset, "Modality"),
        rows=int(dataset.Rows),
        cols=int(dataset.Columns),
        frames=int(pixels.shape[0]),
        samples_per_pixel=int(dataset.SamplesPerPixel),
        photometric_interpretation=str(dataset.PhotometricInterpretation).strip(),
        bits_allocated=int(dataset.BitsAllocated),
        bits_stored=int(dataset.get("BitsStored") or dataset.BitsAllocated),
        transfer_syntax_uid=str(transfer_syntax),
        transfer_syntax_name=transfer_syntax.name,
        size_bytes=size,
        lossy=lossy,
        sop_class_uid=sop_class,
        sop_class_name=dicom_uid.UID(sop_class).name if sop_class else None,
        display=display,
    )


# PS3.5 8.2: syntaxes that are always lossy, and ones that may be either.
_LOSSY_SYNTAXES = frozenset({dicom_uid.JPEGBaseline8Bit, dicom_uid.JPEGExtended12Bit})
_MAYBE_LOSSY_SYNTAXES = frozenset(
    {dicom_uid.JPEGLSNearLossless, dicom_uid.JPEG2000, dicom_uid.HTJ2K}
)


def _dicom_lossy(flag: str | None, transfer_syntax: dicom_uid.UID) -> bool | None:
    """Return whether the image was lossy compressed; None when it cannot be told."""
    # PS3.3 C.7.6.1.1.5: Lossy Image Compression "01" means lossy at any point in its history.
    if flag == "01" or transfer_syntax in _LOSSY_SYNTAXES:
        return True
    if flag == "00":
        return False
    return None if transfer_syntax in _MAYBE_LOSSY_SYNTAXES else False
