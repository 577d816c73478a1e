"""Which DICOM images may carry identifying text in their pixels, and what to do about them.

Header de-identification (deid.py) cannot remove text burned into the pixels. PS3.15 E.1.1
and E.3.1 leave it to the sender to say so with Burned In Annotation (0028,0301) and
Recognizable Visual Features (0028,0302); but these attributes are Type 3 in most IODs and
often absent. Where the modality or SOP class commonly carries burned-in text (ultrasound
machines print the patient's name and the date on every frame, screen captures show the
viewer's patient banner, endoscopy video overlays the patient data), an absent attribute is
not evidence of a clean image: such scans are held for a clinician to confirm.

The lists are data, so the policy can be read (and extended) in one place. PNG and JPEG have no
header at all; their pixels are searched for lines of printed text instead (text_marks.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from pydicom.dataset import Dataset

from diagnosis.imaging.text_marks import text_lines

# PS3.3 C.7.3.1.1.1 Modality defined terms whose images commonly carry burned-in text.
RISKY_MODALITIES: dict[str, str] = {
    "US": "ultrasound",
    "IVUS": "intravascular ultrasound",
    "SC": "secondary capture (a screenshot or scanned document)",
    "OT": "'other' (often a screenshot or an export from a viewer)",
    "XA": "X-ray angiography",
    "RF": "radio fluoroscopy",
    "ES": "endoscopy",
    "XC": "external-camera photography",
    "GM": "general microscopy",
    "OP": "ophthalmic photography",
    "DOC": "a scanned document",
}

# PS3.4 B.5 SOP classes whose instances commonly carry burned-in text, by UID.
RISKY_SOP_CLASSES: dict[str, str] = {
    "1.2.840.10008.5.1.4.1.1.7": "Secondary Capture Image",
    "1.2.840.10008.5.1.4.1.1.7.1": "Multi-frame Single Bit Secondary Capture Image",
    "1.2.840.10008.5.1.4.1.1.7.2": "Multi-frame Grayscale Byte Secondary Capture Image",
    "1.2.840.10008.5.1.4.1.1.7.3": "Multi-frame Grayscale Word Secondary Capture Image",
    "1.2.840.10008.5.1.4.1.1.7.4": "Multi-frame True Color Secondary Capture Image",
    "1.2.840.10008.5.1.4.1.1.6": "Ultrasound Image (retired)",
    "1.2.840.10008.5.1.4.1.1.6.1": "Ultrasound Image",
    "1.2.840.10008.5.1.4.1.1.6.2": "Enhanced US Volume",
    "1.2.840.10008.5.1.4.1.1.3": "Ultrasound Multi-frame Image (retired)",
    "1.2.840.10008.5.1.4.1.1.3.1": "Ultrasound Multi-frame Image",
    "1.2.840.10008.5.1.4.1.1.12.1": "X-Ray Angiographic Image",
    "1.2.840.10008.5.1.4.1.1.12.1.1": "Enhanced XA Image",
    "1.2.840.10008.5.1.4.1.1.12.2": "X-Ray Radiofluoroscopic Image",
    "1.2.840.10008.5.1.4.1.1.12.2.1": "Enhanced XRF Image",
    "1.2.840.10008.5.1.4.1.1.77.1.1": "VL Endoscopic Image",
    "1.2.840.10008.5.1.4.1.1.77.1.1.1": "Video Endoscopic Image",
    "1.2.840.10008.5.1.4.1.1.77.1.2": "VL Microscopic Image",
    "1.2.840.10008.5.1.4.1.1.77.1.2.1": "Video Microscopic Image",
    "1.2.840.10008.5.1.4.1.1.77.1.4": "VL Photographic Image",
    "1.2.840.10008.5.1.4.1.1.77.1.4.1": "Video Photographic Image",
    "1.2.840.10008.5.1.4.1.1.77.1.5.1": "Ophthalmic Photography 8 Bit Image",
    "1.2.840.10008.5.1.4.1.1.104.1": "Encapsulated PDF",
}


class Verdict(StrEnum):
    CLEAN = "clean"  # the header says no burned-in text, or the kind of image rarely has any
    HOLD = "hold"  # may carry text: a clinician must look before it is used
    REJECT = "reject"  # the header says it carries identifying pixels: never stored


@dataclass(frozen=True)
class BurnedInAssessment:
    verdict: Verdict
    reason: str = ""


def _flag(dataset: Dataset, keyword: str) -> str:
    """The attribute's value as upper-case text; '' when absent, empty or unreadable."""
    try:
        return str(dataset.get(keyword, "") or "").strip().upper()
    except Exception:  # a damaged Type 3 attribute is treated as absent (hence not "NO")
        return ""


def burned_in_assessment(dataset: Dataset) -> BurnedInAssessment:
    """Decide from the header whether an image may show identifying text or features."""
    if _flag(dataset, "BurnedInAnnotation") == "YES":
        return BurnedInAssessment(
            Verdict.REJECT,
            "This image is held back: its header says text is burned into the pixels "
            "(Burned In Annotation = YES), which may show the patient's name or other "
            "identifiers. It cannot be de-identified automatically.",
        )
    if _flag(dataset, "RecognizableVisualFeatures") == "YES":
        return BurnedInAssessment(
            Verdict.REJECT,
            "This image is held back: its header says it shows features by which the patient "
            "can be recognised (Recognizable Visual Features = YES), such as a face. It "
            "cannot be de-identified automatically.",
        )
    if _flag(dataset, "BurnedInAnnotation") == "NO":
        return BurnedInAssessment(Verdict.CLEAN)
    modality = _flag(dataset, "Modality")
    sop_class = _flag(dataset, "SOPClassUID")
    what = None
    if sop_class in RISKY_SOP_CLASSES:
        name = RISKY_SOP_CLASSES[sop_class]
        what = f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"
    elif modality in RISKY_MODALITIES:
        what = f"{RISKY_MODALITIES[modality]} (modality {modality})"
    if what is None:
        return BurnedInAssessment(Verdict.CLEAN)
    return BurnedInAssessment(
        Verdict.HOLD,
        f"Held for confirmation: the image is {what}, a kind of image that often has the "
        "patient's name or other identifiers burned into its pixels, and its header does not "
        "say whether it has (Burned In Annotation is absent). A clinician of the care team "
        "must confirm that no identifying text is visible before it is classified.",
    )


def raster_assessment(pixels: np.ndarray) -> BurnedInAssessment:
    """Decide from the pixels of a PNG/JPEG frame (which has no header to ask) whether it may
    show identifying text: a line of printed text holds it for a clinician's look."""
    lines = text_lines(pixels)
    if not lines:
        return BurnedInAssessment(Verdict.CLEAN)
    top, left, bottom, right = lines[0].box
    where = f"{len(lines)} line{'s' if len(lines) != 1 else ''} of text-like marks"
    return BurnedInAssessment(
        Verdict.HOLD,
        f"Held for confirmation: the image shows {where} (the first at rows {top}-{bottom}, "
        f"columns {left}-{right}), which may be the patient's name, a date or another "
        "identifier printed on it (screenshots and photos of a viewer usually are). PNG and "
        "JPEG files have no header to say otherwise. A clinician of the care team must confirm "
        "that no identifying text is visible before it is classified.",
    )
