"""Real and malformed upload files for diagnosis tests."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image
from pydicom.data import get_testdata_file

ROOT = Path(__file__).resolve().parents[2]
NEMA = Path(
    os.environ.get(
        "MEDAI_NEMA_WG04_DIR", ROOT.parent / "shared" / "datasets" / "dicom" / "nema-wg04"
    )
)


def chest_png() -> bytes:
    """A real PneumoniaMNIST test image (pneumonia) as PNG, with a text chunk carrying a name."""
    from PIL import PngImagePlugin

    with np.load(ROOT / "data" / "medmnist" / "pneumoniamnist.npz") as npz:
        index = int(np.flatnonzero(npz["test_labels"].ravel() == 1)[0])
        image = npz["test_images"][index]
    info = PngImagePlugin.PngInfo()
    info.add_text("Patient", "Jane Identifiable")
    buffer = io.BytesIO()
    Image.fromarray(image).resize((224, 224)).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def upload(name: str, content: bytes, content_type: str = "application/octet-stream"):
    return SimpleUploadedFile(name, content, content_type=content_type)


def pydicom_bytes(name: str) -> bytes:
    return Path(get_testdata_file(name)).read_bytes()
