"""PNG and JPEG uploads through Pillow: size checked from the header before any decoding."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from diagnosis.imaging.codestream import declared_size
from diagnosis.imaging.errors import RejectCode, ScanRejected

RasterKind = Literal["png", "jpeg"]

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"  # PNG spec (ISO/IEC 15948) 5.2 signature
JPEG_MAGIC = b"\xff\xd8\xff"  # T.81 SOI marker followed by the next marker's FF

_PILLOW_FORMAT: dict[RasterKind, str] = {"png": "PNG", "jpeg": "JPEG"}
_LABEL: dict[RasterKind, str] = {"png": "PNG", "jpeg": "JPEG"}
# Pillow modes whose samples exceed 8 bits, and the bit depth their arrays carry.
_DEEP_GREY_BITS = {"I;16": 16, "I;16B": 16, "I;16L": 16, "I;16N": 16, "I": 32, "F": 32}


@dataclass(frozen=True)
class DecodedRaster:
    """A decoded PNG/JPEG as one frame of grey (rows, cols) or RGB (rows, cols, 3) values."""

    kind: RasterKind
    source_mode: str
    # (1, rows, cols) grey or (1, rows, cols, 3) RGB, alpha already composited onto black.
    pixels: np.ndarray
    photometric: Literal["MONOCHROME2", "RGB"]
    bits: int


def load_raster(
    data: bytes,
    kind: RasterKind,
    *,
    max_pixels: int,
    on_declared: Callable[[int], None] | None = None,
) -> DecodedRaster:
    """Open `data` as `kind`, enforce the pixel cap from the header, then decode; else reject.
    ``on_declared`` gets the declared sample count before decoding (see load_dicom)."""
    label = _LABEL[kind]
    declared = _declared_size(data, kind)
    if declared is not None and declared[0] * declared[1] * declared[2] > max_pixels:
        # Our own header parse first, so the message can name the declared size even where
        # Pillow's open() would refuse it with its own DecompressionBombError.
        raise _bomb(label, declared, max_pixels)
    try:
        # formats=: only the sniffed format's parser ever sees the bytes.
        image = Image.open(io.BytesIO(data), formats=[_PILLOW_FORMAT[kind]])
    except Image.DecompressionBombError as exc:
        # Pillow refuses sizes above 2 x Image.MAX_IMAGE_PIXELS itself, during open; that
        # process-wide setting is left alone here (other code in the process shares it).
        pillow_limit = 2 * (Image.MAX_IMAGE_PIXELS or 0)
        raise _bomb(
            label, declared, pillow_limit, whose="the image decoder's own", detail=repr(exc)
        ) from exc
    except (UnidentifiedImageError, SyntaxError, OSError, ValueError, struct.error) as exc:
        raise ScanRejected(
            RejectCode.CORRUPT,
            f"The file starts like a {label} image but its header is damaged and cannot be read.",
            detail=repr(exc),
        ) from exc

    with image:
        width, height = image.size
        samples = len(image.getbands())
        if width < 1 or height < 1:
            raise ScanRejected(RejectCode.CORRUPT, f"The {label} image declares no pixels.")
        # The cap is checked on the header's dimensions, before a single pixel is decoded.
        if width * height * samples > max_pixels:
            raise _bomb(label, (width, height, samples), max_pixels)
        if on_declared is not None:
            on_declared(width * height * samples)
        if getattr(image, "n_frames", 1) > 1:
            raise ScanRejected(
                RejectCode.ANIMATED,
                f"The {label} file is animated ({image.n_frames} frames); please upload a "
                "single still image.",
            )
        try:
            image.load()
            if kind == "jpeg":
                # Phone photos of films carry their rotation in EXIF, not in the pixels.
                image = ImageOps.exif_transpose(image)
        except Image.DecompressionBombError as exc:
            pillow_limit = 2 * (Image.MAX_IMAGE_PIXELS or 0)
            raise _bomb(
                label,
                (width, height, samples),
                pillow_limit,
                whose="the image decoder's own",
                detail=repr(exc),
            ) from exc
        except OSError as exc:
            if "truncated" in str(exc).lower():
                raise ScanRejected(
                    RejectCode.TRUNCATED,
                    f"The {label} file is incomplete: the image data ends early. Please "
                    "upload the complete file.",
                    detail=repr(exc),
                ) from exc
            raise _damaged(label, exc) from exc
        except (SyntaxError, ValueError, zlib.error, EOFError) as exc:
            raise _damaged(label, exc) from exc
        return _to_array(image, kind)


# PNG spec 11.2.2 IHDR colour type -> samples per pixel.
_PNG_SAMPLES = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def _declared_size(data: bytes, kind: RasterKind) -> tuple[int, int, int] | None:
    """Return (width, height, samples) from the PNG IHDR or JPEG SOF, without Pillow."""
    if kind == "png":
        # PNG spec 5.6: IHDR is the first chunk, right after the 8-byte signature.
        if len(data) < 33 or data[12:16] != b"IHDR":
            return None
        width, height = struct.unpack(">II", data[16:24])
        return width, height, _PNG_SAMPLES.get(data[25], 1)
    size = declared_size(data[: 1024 * 1024])
    if size is None or size[0] == 0:
        return None  # T.81 B.2.2: height 0 means a DNL segment defines it later
    rows, columns = size
    return columns, rows, 1


def _bomb(
    label: str,
    size: tuple[int, int, int] | None,
    limit: int,
    *,
    whose: str = "this server's",
    detail: str | None = None,
) -> ScanRejected:
    """Build the rejection for an image whose declared size exceeds a pixel limit."""
    if size is None:
        described = "larger than"
    else:
        width, height, samples = size
        total = width * height * samples
        described = f"{width:,} x {height:,} pixels x {samples} sample(s) = {total:,} values, above"
    return ScanRejected(
        RejectCode.TOO_MANY_PIXELS,
        f"The {label} image is {described} {whose} limit of {limit:,}. It was not decoded "
        "(a small file declaring a huge image is a decompression bomb).",
        detail=detail,
    )


def _damaged(label: str, exc: BaseException) -> ScanRejected:
    """Build the rejection for image data the decoder cannot read."""
    return ScanRejected(
        RejectCode.CORRUPT,
        f"The {label} image data is damaged and cannot be decoded.",
        detail=repr(exc),
    )


def _composite_on_black(values: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Premultiply by alpha: transparent areas show as black, as on a dark reading screen."""
    weight = alpha.astype(np.float32) / 255.0
    if values.ndim == 3:
        weight = weight[..., np.newaxis]
    return np.rint(values.astype(np.float32) * weight).astype(np.uint8)


def _to_array(image: Image.Image, kind: RasterKind) -> DecodedRaster:
    """Turn any Pillow mode into grey or RGB samples with their bit depth."""
    mode = image.mode
    if mode in _DEEP_GREY_BITS:
        grey = np.asarray(image)
        if grey.dtype.byteorder not in ("=", "|"):
            grey = grey.astype(grey.dtype.newbyteorder("="))
        return DecodedRaster(kind, mode, grey[np.newaxis], "MONOCHROME2", _DEEP_GREY_BITS[mode])
    if mode in ("1", "L"):
        grey = np.asarray(image.convert("L"))
        return DecodedRaster(kind, mode, grey[np.newaxis], "MONOCHROME2", 8)
    if mode in ("LA", "La"):
        grey_alpha = np.asarray(image.convert("LA"))
        grey = _composite_on_black(grey_alpha[..., 0], grey_alpha[..., 1])
        return DecodedRaster(kind, mode, grey[np.newaxis], "MONOCHROME2", 8)

    has_alpha = mode in ("RGBA", "RGBa", "PA") or (mode == "P" and "transparency" in image.info)
    if has_alpha:
        rgba = np.asarray(image.convert("RGBA"))
        rgb = _composite_on_black(rgba[..., :3], rgba[..., 3])
    else:
        rgb = np.asarray(image.convert("RGB"))
    if mode in ("P", "PA") and _is_grey(rgb):
        # A grey palette (common for exported X-rays) is a grey image, not a colour one.
        return DecodedRaster(kind, mode, rgb[np.newaxis, ..., 0].copy(), "MONOCHROME2", 8)
    return DecodedRaster(kind, mode, rgb[np.newaxis], "RGB", 8)


def _is_grey(rgb: np.ndarray) -> bool:
    """Return True when all three channels are identical."""
    return bool(
        np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2])
    )
