"""Photos patients send in messages: checked by content, stripped of metadata, bounded in size."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from medai_site.core.uploads import upload_size_problem

MAX_PHOTO_BYTES = 15 * 1024 * 1024
# Larger phone photos are scaled down: enough for a clinician to look at and for a
# classifier (which resamples far smaller), and bounded storage per message.
MAX_SIDE = 2048
# Refuse decompression bombs before decoding: a small file can claim a huge canvas.
MAX_PIXELS = 60_000_000
ACCEPTED_FORMATS = {"JPEG": "JPEG", "PNG": "PNG", "MPO": "JPEG"}


class PhotoRejected(ValueError):
    """The file is not a photo MedAI accepts; the message says why."""


@dataclass(frozen=True)
class Photo:
    data: bytes  # JPEG, no EXIF/GPS or other metadata
    width: int
    height: int


def photo_normalise(data: bytes) -> Photo:
    """Validate a PNG/JPEG by its content and re-encode it as a metadata-free JPEG, upright
    (EXIF orientation applied) and at most MAX_SIDE pixels on its long side."""
    if not data:
        raise PhotoRejected("The photo is empty.")
    if problem := upload_size_problem(len(data), cap=MAX_PHOTO_BYTES, noun="photo"):
        raise PhotoRejected(problem)
    if data[128:132] == b"DICM":
        if data.startswith((b"\x89PNG", b"\xff\xd8\xff")):
            # A polyglot: an image that also parses as DICOM (PS3.10 preamble + 'DICM').
            # Which one a viewer sees depends on the viewer, so it is refused as ambiguous.
            raise PhotoRejected(
                "This file is both an image and a DICOM file (it has a DICOM 'DICM' marker "
                "at byte 128). Send medical images through the imaging upload, not as a photo."
            )
        raise PhotoRejected(
            "This is a DICOM file, not a photo. Send medical images through the imaging "
            "upload (a clinician's scans page)."
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            kind = ACCEPTED_FORMATS.get(image.format or "")
            if kind is None:
                raise PhotoRejected(
                    f"Photos must be JPEG or PNG images; this file is {image.format or 'unknown'}."
                )
            if image.width * image.height > MAX_PIXELS:
                raise PhotoRejected(
                    f"The photo is {image.width}×{image.height} pixels; the limit is "
                    f"{MAX_PIXELS // 1_000_000} megapixels."
                )
            image.load()
    except PhotoRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow refuses the declared canvas while opening, before our own check can run.
        raise PhotoRejected(
            "The photo declares an enormous canvas (far above the limit of "
            f"{MAX_PIXELS // 1_000_000} megapixels) and was not opened."
        ) from None
    except UnidentifiedImageError:
        raise PhotoRejected("This file is not a JPEG or PNG photo.") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise PhotoRejected(f"The photo could not be read (it may be truncated): {exc}") from None
    image = ImageOps.exif_transpose(image)
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    image.thumbnail((MAX_SIDE, MAX_SIDE))
    out = io.BytesIO()
    # A fresh encode from pixels writes no EXIF, GPS, ICC comment or text chunks.
    image.save(out, format="JPEG", quality=90)
    return Photo(data=out.getvalue(), width=image.width, height=image.height)
