"""Read, validate and decode an uploaded DICOM object, rejecting bad input with a clear reason.

Order matters: the header is read and checked against the pixel cap before any pixel data is
decoded, and every compressed frame's own declared size is checked too (see codestream.py).
"""

from __future__ import annotations

import io
import re
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pydicom
from pydicom import uid as dicom_uid
from pydicom.datadict import dictionary_description
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import generate_fragments
from pydicom.errors import InvalidDicomError
from pydicom.pixels import get_decoder
from pydicom.pixels.decoders import JPEGExtended12BitDecoder
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag, Tag

from diagnosis.imaging import gdcm_jpeg12
from diagnosis.imaging.codestream import declared_size
from diagnosis.imaging.errors import RejectCode, ScanRejected

PREAMBLE_LENGTH = 128
DICM_PREFIX = b"DICM"

# PS3.5 A.4 / PS3.3 C.7.6.3: the pixel data elements (integer, float, double float).
PIXEL_DATA_TAGS = (Tag(0x7FE0, 0x0010), Tag(0x7FE0, 0x0008), Tag(0x7FE0, 0x0009))
_UNDEFINED_LENGTH = 0xFFFFFFFF
# Real objects nest a handful of levels (enhanced multi-frame functional groups: 3-4); the
# bound keeps recursive walks of hostile files far from Python's recursion limit.
MAX_SEQUENCE_DEPTH = 32

# PS3.3 C.7.6.3.1.2: photometric interpretations this intake can turn into display frames.
SUPPORTED_PHOTOMETRIC = frozenset(
    {
        "MONOCHROME1",
        "MONOCHROME2",
        "PALETTE COLOR",
        "RGB",
        "YBR_FULL",
        "YBR_FULL_422",
        "YBR_ICT",
        "YBR_RCT",
    }
)
_BITS_ALLOCATED = frozenset({1, 8, 16, 32, 64})

# Decoder plugins, most trusted first. pydicom's own "gdcm" plugin is deliberately left out:
# installing python-gdcm would otherwise make it the first choice for every JPEG syntax, and
# GDCM returns wrong data of the right length for some inputs instead of failing (pydicom
# issue #2010). GDCM is used only through the narrow 12-bit JPEG Extended plugin.
_PLUGIN_PREFERENCE = ("pylibjpeg", "pydicom", "pillow", gdcm_jpeg12.PLUGIN_LABEL)


def _register_gdcm_jpeg12() -> None:
    """Add the 12-bit JPEG Extended GDCM plugin to pydicom's decoder once per process."""
    try:
        JPEGExtended12BitDecoder.add_plugin(
            gdcm_jpeg12.PLUGIN_LABEL, ("diagnosis.imaging.gdcm_jpeg12", "_decode_frame")
        )
    except ValueError:
        pass  # already registered (module reloaded in the same process)


_register_gdcm_jpeg12()


@dataclass(frozen=True)
class DecodedDicom:
    """A validated DICOM dataset and its decoded stored pixel values."""

    dataset: Dataset
    transfer_syntax: dicom_uid.UID
    # (frames, rows, cols) or (frames, rows, cols, samples), native byte order, stored values.
    pixels: np.ndarray
    # Photometric interpretation of `pixels`: YBR input comes back from the decoder as RGB.
    decoded_photometric: str


def is_part10(data: bytes) -> bool:
    """Return True when `data` has the PS3.10 7.1 128-byte preamble followed by 'DICM'."""
    return data[PREAMBLE_LENGTH : PREAMBLE_LENGTH + 4] == DICM_PREFIX


def looks_like_bare_dataset(data: bytes) -> bool:
    """Return True when `data` starts like a DICOM data set written without preamble or meta."""
    if len(data) < 16:
        return False
    group_le, element_le = struct.unpack("<HH", data[:4])
    group_be, element_be = struct.unpack(">HH", data[:4])
    # A bare data set starts with its lowest tag: file meta (0002,xxxx) or the identifying
    # group (0008,xxxx) (PS3.5 7.1: elements are in ascending tag order), usually a low element.
    plausible_le = group_le in (0x0002, 0x0008) and element_le < 0x0100
    plausible_be = group_be == 0x0008 and element_be < 0x0100
    return plausible_le or plausible_be


# Explicit-VR group 0008 element header (tag, then a common VR) as a byte pattern.
_GROUP_0008_ELEMENT = re.compile(rb"\x08\x00[\x00-\xff]\x00(?:CS|UI|SH|LO|DA|TM|AE|IS|DS|PN)")


def misplaced_dataset_offset(data: bytes) -> int | None:
    """Return the offset of a DICOM element found near, but not at, the start of `data`."""
    match = _GROUP_0008_ELEMENT.search(data, 1, 1024)
    return match.start() if match else None


def load_dicom(
    data: bytes, *, max_pixels: int, on_declared: Callable[[int], None] | None = None
) -> DecodedDicom:
    """Validate DICOM `data`, enforce the pixel cap, and decode its frames; else ScanRejected.

    ``on_declared`` is called with the declared sample count just before decoding, so a
    caller can enforce a budget across files (it raises to stop)."""
    part10 = is_part10(data)
    transfer_syntax = _check_file_meta(data) if part10 else None
    if transfer_syntax == dicom_uid.DeflatedExplicitVRLittleEndian:
        _check_deflate_bound(data, max_pixels=max_pixels)

    header = _read(data, stop_before_pixels=True)
    _check_sequence_depth(header)
    if not part10:
        _check_bare_dataset_is_plausible(header)
    geometry: ImageGeometry | None = None
    if "Rows" in header and "Columns" in header:
        # Cap first, from the header alone: nothing below allocates per pixel before this.
        geometry = _validate_image_attributes(header)
        _check_pixel_cap(geometry, max_pixels)

    dataset = _read(data, stop_before_pixels=False)
    _check_not_truncated(header, dataset, part10=part10)
    if transfer_syntax is None:
        transfer_syntax = _infer_transfer_syntax(dataset)
    pixel_tag = next((tag for tag in PIXEL_DATA_TAGS if tag in dataset), None)
    if pixel_tag is None:
        raise _no_pixel_data(header)
    if geometry is None:
        geometry = _validate_image_attributes(header)  # names the missing Rows or Columns
        _check_pixel_cap(geometry, max_pixels)

    decoder = _decoder_for(transfer_syntax)
    if decoder.is_native:
        _check_native_length(dataset, pixel_tag, geometry)
    else:
        _check_encapsulated_frames(dataset, transfer_syntax, geometry, max_pixels)
    if on_declared is not None:
        on_declared(geometry.sample_count)
    pixels, photometric = _decode(dataset, transfer_syntax, geometry)
    return DecodedDicom(dataset, transfer_syntax, pixels, photometric)


# PS3.6 Table A-1 (2025b) transfer syntaxes newer than pydicom 3.0's UID dictionary.
_NEWER_SYNTAX_NAMES = {
    "1.2.840.10008.1.2.4.110": "JPEG XL Lossless",
    "1.2.840.10008.1.2.4.111": "JPEG XL JPEG Recompression",
    "1.2.840.10008.1.2.4.112": "JPEG XL",
    "1.2.840.10008.1.2.11": "Deflated Image Frame Compression",
}


def transfer_syntax_label(transfer_syntax: str) -> str:
    """Return 'Name (UID)' for a transfer syntax, naming unknown (private) ones as such."""
    value = dicom_uid.UID(str(transfer_syntax).strip())
    if str(value) in _NEWER_SYNTAX_NAMES:
        name = _NEWER_SYNTAX_NAMES[str(value)]
    elif value.is_transfer_syntax:
        name = value.name
    else:
        name = "an unrecognised transfer syntax"
    return f"{name} ({value})"


def element_label(tag: BaseTag | int) -> str:
    """Return a human label such as 'Number of Frames (0028,0008)' for a tag."""
    tag = Tag(tag)
    try:
        name = dictionary_description(tag)
    except KeyError:
        name = "Private attribute" if tag.is_private else "Unknown attribute"
    return f"{name} ({tag.group:04X},{tag.element:04X})"


# --- reading -------------------------------------------------------------------------------


def _check_file_meta(data: bytes) -> dicom_uid.UID:
    """Read the PS3.10 7.1 file meta group and return its Transfer Syntax UID."""
    try:
        # Parse only the bytes up to the end of group 0002: the meta must be readable on its
        # own, before anything decides how to read the (possibly deflated) data set.
        meta = pydicom.dcmread(io.BytesIO(data[: _meta_end(data)]), force=True).file_meta
    except Exception as exc:  # pydicom raises a spread of types for broken meta groups
        raise ScanRejected(
            RejectCode.MISSING_META,
            "The DICOM file meta information (group 0002) after the 'DICM' marker is damaged "
            "and cannot be read.",
            detail=repr(exc),
        ) from exc
    return _meta_transfer_syntax(meta)


def _meta_transfer_syntax(meta: FileMetaDataset) -> dicom_uid.UID:
    """Return the meta's Transfer Syntax UID or reject the file for lacking one."""
    value = meta.get("TransferSyntaxUID")
    if not value:
        raise ScanRejected(
            RejectCode.MISSING_META,
            "The DICOM file meta information has no Transfer Syntax UID (0002,0010), so the "
            "encoding of the image data is unknown. Please export the file again from the "
            "imaging system.",
        )
    return dicom_uid.UID(str(value).strip())


def _read(data: bytes, *, stop_before_pixels: bool) -> Dataset:
    """Parse `data` with pydicom, mapping parser failures to a DICOM-specific rejection."""
    try:
        # force=True: bare data sets (no preamble/meta) are legal on media-less transfers and
        # PS3.10 7.1 lets readers accept them; they were content-sniffed before this point.
        return pydicom.dcmread(io.BytesIO(data), force=True, stop_before_pixels=stop_before_pixels)
    except (InvalidDicomError, EOFError, struct.error, ValueError, KeyError, TypeError) as exc:
        raise ScanRejected(
            RejectCode.CORRUPT,
            "The DICOM data could not be parsed: its elements are damaged or not DICOM at all.",
            detail=repr(exc),
        ) from exc
    except zlib.error as exc:
        raise _deflate_damaged(exc) from exc
    except RecursionError:
        # pydicom parses sequences recursively; thousands of nested levels exhaust the stack.
        raise _too_deep() from None


def _too_deep() -> ScanRejected:
    return ScanRejected(
        RejectCode.CORRUPT,
        f"The DICOM file nests sequences more than {MAX_SEQUENCE_DEPTH} levels deep; no real "
        "image needs that many, so the file is damaged or crafted and was not opened.",
    )


def _check_sequence_depth(dataset: Dataset) -> None:
    """Reject data sets whose sequences nest deeper than MAX_SEQUENCE_DEPTH.

    Checked once after parsing, without recursion, so that everything downstream that walks
    the data set recursively (de-identification, writing) stays far from Python's stack limit.
    """
    stack: list[tuple[Dataset, int]] = [(dataset, 1)]
    while stack:
        current, depth = stack.pop()
        for tag in list(current.keys()):
            value = getattr(current.get_item(tag, keep_deferred=True), "value", None)
            if isinstance(value, Sequence):
                if depth > MAX_SEQUENCE_DEPTH:
                    raise _too_deep()
                stack.extend((item, depth + 1) for item in value if isinstance(item, Dataset))


def _meta_end(data: bytes) -> int:
    """Return the offset just past the file meta group (PS3.10 7.1, explicit VR LE)."""
    offset = PREAMBLE_LENGTH + 4
    while data[offset : offset + 2] == b"\x02\x00":
        vr = data[offset + 4 : offset + 6]
        # PS3.5 7.1.2: these VRs carry a 2-byte reserved field and a 4-byte length.
        if vr in (b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR"):
            (length,) = struct.unpack("<I", data[offset + 8 : offset + 12])
            offset += 12 + length
        else:
            (length,) = struct.unpack("<H", data[offset + 6 : offset + 8])
            offset += 8 + length
    return offset


def _check_deflate_bound(data: bytes, *, max_pixels: int) -> None:
    """Inflate the deflated data set in chunks, rejecting zip bombs and truncated streams."""
    # PS3.5 A.5: the data set after the meta group is a raw deflate stream. pydicom inflates it
    # in one go, so bound it first: native pixels (<= 8 bytes per sample) plus header slack.
    limit = max_pixels * 8 + 16 * 1024 * 1024
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    pending = data[_meta_end(data) :]
    total = 0
    try:
        while pending and not inflater.eof:
            chunk = inflater.decompress(pending, 1024 * 1024)
            total += len(chunk)
            if total > limit:
                raise ScanRejected(
                    RejectCode.TOO_MANY_PIXELS,
                    "The deflate-compressed DICOM data expands to more than "
                    f"{limit:,} bytes, far more than an image within the size limit needs. "
                    "It was not opened.",
                )
            pending = inflater.unconsumed_tail
    except zlib.error as exc:
        raise _deflate_damaged(exc) from exc
    if not inflater.eof:
        raise ScanRejected(
            RejectCode.TRUNCATED,
            "The DICOM file is incomplete: its deflate-compressed data set ends early. "
            "Please upload the complete file.",
        )


def _check_bare_dataset_is_plausible(header: Dataset) -> None:
    """Reject bytes that only happen to start like DICOM: demand real image-object elements."""
    sop_class = str(header.get("SOPClassUID", "") or "")
    has_sop_class = dicom_uid.UID(sop_class).is_valid if sop_class else False
    has_image_size = "Rows" in header and "Columns" in header
    unknown = sum(1 for element in header if element.VR == "UN" and not element.tag.is_private)
    if len(header) < 3 or not (has_sop_class or has_image_size) or unknown > len(header) // 2:
        raise ScanRejected(
            RejectCode.NOT_DICOM,
            "The file has no DICOM header (no 'DICM' marker after a 128-byte preamble) and its "
            "content does not read as a DICOM data set either, so it is not a usable DICOM file.",
        )


def _check_not_truncated(header: Dataset, dataset: Dataset, *, part10: bool) -> None:
    """Detect a file cut short, which pydicom reads silently as a shorter or empty data set."""
    if len(dataset) == 0:
        if len(header) > 0:
            # pydicom drops the whole data set when EOF hits an undefined-length element
            # (encapsulated pixel data or a sequence) before its delimiter (PS3.5 7.5).
            raise ScanRejected(
                RejectCode.TRUNCATED,
                "The DICOM file is incomplete: it ends inside the image data, before the end "
                "marker. Please upload the complete file.",
            )
        if part10:
            raise ScanRejected(
                RejectCode.TRUNCATED,
                "The DICOM file has a file meta header but no data set after it; it is empty "
                "or was cut off.",
            )
    if len(dataset) == 0:
        return
    last_tag = max(dataset.keys())
    last = dataset.get_item(last_tag, keep_deferred=True)
    if isinstance(last, RawDataElement) and last.length != _UNDEFINED_LENGTH:
        present = len(last.value) if last.value is not None else last.length
        if present < last.length:
            raise ScanRejected(
                RejectCode.TRUNCATED,
                f"The DICOM file is incomplete: it ends inside {element_label(last_tag)}, "
                f"{present:,} of its {last.length:,} bytes are present. Please upload the "
                "complete file.",
            )


def _infer_transfer_syntax(dataset: Dataset) -> dicom_uid.UID:
    """For a bare data set, derive the transfer syntax from the encoding pydicom detected."""
    implicit, little = dataset.original_encoding
    if implicit:
        syntax = dicom_uid.ImplicitVRLittleEndian
    elif little:
        syntax = dicom_uid.ExplicitVRLittleEndian
    else:
        syntax = dicom_uid.ExplicitVRBigEndian
    # The decoders read the syntax from file_meta; record what the bytes actually are.
    if not hasattr(dataset, "file_meta") or dataset.file_meta is None:
        dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = syntax
    return syntax


# --- validation ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageGeometry:
    """The PS3.3 C.7.6.3 Image Pixel attributes that size and interpret the pixel data."""

    rows: int
    columns: int
    frames: int
    samples_per_pixel: int
    photometric: str
    bits_allocated: int
    bits_stored: int
    pixel_representation: int

    @property
    def sample_count(self) -> int:
        """Return rows x columns x frames x samples per pixel."""
        return self.rows * self.columns * self.frames * self.samples_per_pixel


def _no_pixel_data(header: Dataset) -> ScanRejected:
    """Build the rejection for a DICOM object that carries no image."""
    sop_class = header.get("SOPClassUID")
    kind = ""
    if sop_class:
        value = dicom_uid.UID(str(sop_class))
        kind = f" ({value.name})" if value.name != str(value) else f" (SOP class {value})"
    if "Rows" in header and "Columns" in header:
        return ScanRejected(
            RejectCode.NO_PIXEL_DATA,
            f"This DICOM file{kind} describes an image but its Pixel Data (7FE0,0010) is "
            "missing; the file may have been cut off. Please upload the complete file.",
        )
    return ScanRejected(
        RejectCode.NO_PIXEL_DATA,
        f"This DICOM file{kind} contains no image pixel data, so there is nothing to display "
        "or analyse. Only DICOM images can be uploaded here.",
    )


def _invalid(keyword: str, raw: object, requirement: str) -> ScanRejected:
    """Build the rejection for an Image Pixel attribute with an unusable value."""
    tag = pydicom.datadict.tag_for_keyword(keyword)
    shown = str(raw)
    if len(shown) > 40:
        shown = shown[:37] + "..."
    return ScanRejected(
        RejectCode.INVALID_ATTRIBUTE,
        f"The DICOM attribute {element_label(tag or 0)} has the invalid value '{shown}': "
        f"{requirement}. The file's image description is damaged.",
    )


def _read_int(header: Dataset, keyword: str, *, default: int | None = None) -> int:
    """Return an integer attribute, rejecting missing or malformed values by name."""
    tag = pydicom.datadict.tag_for_keyword(keyword)
    try:
        present = tag in header
        value: Any = header[tag].value if present else None
    except Exception as exc:  # a value that cannot even be converted from its bytes
        raise ScanRejected(
            RejectCode.INVALID_ATTRIBUTE,
            f"The DICOM attribute {element_label(tag or 0)} cannot be read: its encoding "
            "is damaged (wrong value representation or length).",
            detail=repr(exc),
        ) from exc
    if value is None or value == "":
        if default is not None:
            return default
        raise ScanRejected(
            RejectCode.INVALID_ATTRIBUTE,
            f"The DICOM file lacks {element_label(tag or 0)}, which every image needs.",
        )
    try:
        if isinstance(value, bytes | bytearray) or isinstance(value, list | tuple):
            raise TypeError("not a single number")
        number = int(str(value).strip()) if isinstance(value, str) else int(value)
        if isinstance(value, float) and value != number:
            raise ValueError("fractional")
    except (TypeError, ValueError) as exc:
        raise _invalid(keyword, value, "it must be a single whole number") from exc
    return number


def _validate_image_attributes(header: Dataset) -> ImageGeometry:
    """Check the Image Pixel module (PS3.3 C.7.6.3) before trusting it to size a decode."""
    rows = _read_int(header, "Rows")
    columns = _read_int(header, "Columns")
    frames = _read_int(header, "NumberOfFrames", default=1)
    samples = _read_int(header, "SamplesPerPixel")
    bits_allocated = _read_int(header, "BitsAllocated")
    bits_stored = _read_int(header, "BitsStored", default=bits_allocated)
    representation = _read_int(header, "PixelRepresentation", default=0)
    if rows < 1 or columns < 1:
        raise _invalid("Rows" if rows < 1 else "Columns", min(rows, columns), "it must be >= 1")
    if frames < 1:
        raise _invalid("NumberOfFrames", frames, "it must be >= 1")
    if samples not in (1, 3):
        raise _invalid("SamplesPerPixel", samples, "it must be 1 (grey) or 3 (colour)")
    if bits_allocated not in _BITS_ALLOCATED:
        raise _invalid("BitsAllocated", bits_allocated, "it must be 1, 8, 16, 32 or 64")
    if not 1 <= bits_stored <= bits_allocated:
        raise _invalid("BitsStored", bits_stored, "it must be between 1 and Bits Allocated")
    if representation not in (0, 1):
        raise _invalid("PixelRepresentation", representation, "it must be 0 or 1")
    try:
        photometric = str(header.get("PhotometricInterpretation", "") or "").strip().upper()
    except Exception as exc:
        raise _invalid("PhotometricInterpretation", "?", "it cannot be read") from exc
    if not photometric:
        raise ScanRejected(
            RejectCode.INVALID_ATTRIBUTE,
            "The DICOM file lacks Photometric Interpretation (0028,0004), so it is unknown "
            "whether the image is grey-scale or colour.",
        )
    if photometric not in SUPPORTED_PHOTOMETRIC:
        raise ScanRejected(
            RejectCode.UNSUPPORTED_IMAGE,
            f"The image uses the photometric interpretation '{photometric}', which this "
            "server cannot display.",
        )
    if photometric == "PALETTE COLOR" and "RedPaletteColorLookupTableDescriptor" not in header:
        raise ScanRejected(
            RejectCode.INVALID_ATTRIBUTE,
            "The image is PALETTE COLOR but its palette (Red/Green/Blue Palette Color Lookup "
            "Table, 0028,1101-1203) is missing.",
        )
    return ImageGeometry(
        rows, columns, frames, samples, photometric, bits_allocated, bits_stored, representation
    )


def _check_pixel_cap(geometry: ImageGeometry, max_pixels: int) -> None:
    """Refuse an image whose header promises more samples than the server will decode."""
    if geometry.sample_count > max_pixels:
        raise ScanRejected(
            RejectCode.TOO_MANY_PIXELS,
            f"The image is {geometry.columns:,} x {geometry.rows:,} pixels x "
            f"{geometry.frames:,} frame(s) x {geometry.samples_per_pixel} sample(s) = "
            f"{geometry.sample_count:,} values, above this server's limit of {max_pixels:,}. "
            "It was not decoded.",
        )


def _decoder_for(transfer_syntax: dicom_uid.UID) -> Any:
    """Return pydicom's decoder for the syntax, or reject naming the syntax."""
    try:
        decoder = get_decoder(transfer_syntax)
    except NotImplementedError as exc:
        raise _cannot_decode(transfer_syntax, detail=repr(exc)) from exc
    if not decoder.is_native and not _usable_plugins(decoder):
        raise _cannot_decode(transfer_syntax, detail="no decoding plugin installed")
    return decoder


def _cannot_decode(transfer_syntax: dicom_uid.UID, *, detail: str) -> ScanRejected:
    """Build the rejection for a transfer syntax without an installed decoder."""
    return ScanRejected(
        RejectCode.UNSUPPORTED_TRANSFER_SYNTAX,
        f"The pixel data uses {transfer_syntax_label(transfer_syntax)}, which this server "
        "cannot decode. Please export the images uncompressed or with a lossless JPEG or "
        "JPEG 2000 transfer syntax.",
        detail=detail,
    )


def _usable_plugins(decoder: Any) -> list[str]:
    """Return the installed decoder plugins for this syntax in our order of trust."""
    available = set(decoder.available_plugins)
    return [label for label in _PLUGIN_PREFERENCE if label in available]


def _expected_native_bytes(geometry: ImageGeometry) -> int:
    """Return the byte count PS3.5 8.1.1 requires for native (uncompressed) pixel data."""
    samples_per_frame = geometry.rows * geometry.columns * geometry.samples_per_pixel
    if geometry.photometric == "YBR_FULL_422":
        # PS3.3 C.7.6.3.1.2: two chroma samples are shared by each horizontal pixel pair.
        samples_per_frame = geometry.rows * geometry.columns * 2
    bits = samples_per_frame * geometry.frames * geometry.bits_allocated
    return (bits + 7) // 8


def _check_native_length(dataset: Dataset, pixel_tag: BaseTag, geometry: ImageGeometry) -> None:
    """Reject native pixel data shorter than the header's Rows x Columns x ... need."""
    value = dataset.get_item(pixel_tag, keep_deferred=True).value
    present = len(value) if value is not None else 0
    expected = _expected_native_bytes(geometry)
    if present < expected:
        raise ScanRejected(
            RejectCode.TRUNCATED,
            f"The pixel data holds {present:,} bytes but the image description "
            f"({geometry.columns} x {geometry.rows}, {geometry.frames} frame(s), "
            f"{geometry.bits_allocated}-bit) needs {expected:,}; the file is incomplete or "
            "its header is wrong.",
        )


def _fragments(pixel_data: bytes, endianness: str) -> Iterator[bytes]:
    """Yield encapsulated fragments after the Basic Offset Table (PS3.5 A.4)."""
    fragments = generate_fragments(pixel_data, endianness=endianness)
    next(fragments, None)  # PS3.5 A.4: the first item is always the Basic Offset Table
    yield from fragments


def _check_encapsulated_frames(
    dataset: Dataset, transfer_syntax: dicom_uid.UID, geometry: ImageGeometry, max_pixels: int
) -> None:
    """Check fragment structure and every frame's codestream-declared size before decoding."""
    value = dataset.get_item(PIXEL_DATA_TAGS[0], keep_deferred=True).value
    pixel_data = bytes(value or b"")
    endianness = "<" if transfer_syntax != dicom_uid.ExplicitVRBigEndian else ">"
    try:
        for fragment in _fragments(pixel_data, endianness):
            size = declared_size(fragment[:70000])
            if size is None:
                continue
            rows, columns = size
            declared = rows * columns * geometry.samples_per_pixel
            if declared > geometry.rows * geometry.columns * geometry.samples_per_pixel:
                raise ScanRejected(
                    RejectCode.TOO_MANY_PIXELS,
                    f"A compressed frame declares {columns:,} x {rows:,} pixels although the "
                    f"DICOM header says {geometry.columns:,} x {geometry.rows:,}; the frame "
                    "was not decoded because the mismatch could exhaust the server's memory.",
                )
            if declared > max_pixels:
                raise ScanRejected(
                    RejectCode.TOO_MANY_PIXELS,
                    f"A compressed frame declares {columns:,} x {rows:,} pixels, above this "
                    f"server's limit of {max_pixels:,} values. It was not decoded.",
                )
    except ValueError as exc:
        raise ScanRejected(
            RejectCode.CORRUPT,
            f"The compressed pixel data ({transfer_syntax_label(transfer_syntax)}) is not "
            "correctly packaged into fragments; the file is damaged.",
            detail=repr(exc),
        ) from exc


# --- decoding ------------------------------------------------------------------------------


def _decode(
    dataset: Dataset, transfer_syntax: dicom_uid.UID, geometry: ImageGeometry
) -> tuple[np.ndarray, str]:
    """Decode every frame with the first plugin that succeeds; reject naming the syntax."""
    decoder = _decoder_for(transfer_syntax)
    attempts = [""] if decoder.is_native else _usable_plugins(decoder)
    errors: list[str] = []
    for plugin in attempts:
        try:
            # as_rgb: YBR_FULL / YBR_FULL_422 become RGB (PS3.3 C.7.6.3.1.2 conversion).
            array, meta = decoder.as_array(dataset, decoding_plugin=plugin, as_rgb=True)
        except Exception as exc:  # each plugin raises its own types; try the next one
            errors.append(f"{plugin or 'native'}: {exc!r}")
            continue
        return _normalise(array, geometry), str(meta.get("photometric_interpretation"))
    raise ScanRejected(
        RejectCode.DECODE_FAILED,
        f"The pixel data uses {transfer_syntax_label(transfer_syntax)}, but it could not be "
        "decoded: the compressed image data is damaged or uses an unsupported variant of "
        "that format.",
        detail="; ".join(errors),
    )


def _normalise(array: np.ndarray, geometry: ImageGeometry) -> np.ndarray:
    """Return (frames, rows, cols[, samples]) in native byte order."""
    if geometry.frames == 1:
        array = array[np.newaxis, ...]
    if array.dtype.byteorder not in ("=", "|"):
        array = array.astype(array.dtype.newbyteorder("="))
    return array


def _deflate_damaged(exc: zlib.error) -> ScanRejected:
    return ScanRejected(
        RejectCode.CORRUPT,
        "The DICOM file uses Deflated Explicit VR Little Endian (1.2.840.10008.1.2.1.99) "
        "but its compressed data set is damaged.",
        detail=repr(exc),
    )
