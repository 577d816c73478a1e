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


def chest_cr_dicom(*, body_part: str = "CHEST", view: str = "PA", modality: str = "CR") -> bytes:
    """The chest PNG's pixels as a DICOM computed radiograph (Part 10, explicit little endian)
    with the header facts the input contract's gate reads, and identifiers to be removed."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    pixels = np.asarray(Image.open(io.BytesIO(chest_png())).convert("L"), dtype=np.uint8)
    sop_class = "1.2.840.10008.5.1.4.1.1.1"  # CR Image Storage
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientName = "Identifiable^Jane"
    ds.PatientID = "HOSP-12345"
    ds.Modality = modality
    ds.BodyPartExamined = body_part
    ds.ViewPosition = view
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.BurnedInAnnotation = "NO"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    # The full 8-bit range, so the model reads the same grey values as from the PNG.
    ds.WindowCenter, ds.WindowWidth = 128, 256
    ds.PixelData = pixels.tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def ct_head_dicom() -> bytes:
    """pydicom's CT_small with its body part stated (HEAD), as a head CT arrives from a PACS."""
    import pydicom

    ds = pydicom.dcmread(io.BytesIO(pydicom_bytes("CT_small.dcm")))
    ds.BodyPartExamined = "HEAD"
    buffer = io.BytesIO()
    ds.save_as(buffer)
    return buffer.getvalue()
