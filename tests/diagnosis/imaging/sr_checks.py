"""Reading a MedAI SR back (pydicom only) and validating DICOM files with dciodvfy (dicom3tools),
for the pure tests and the service/view tests alike."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from pydicom.dataset import Dataset


def concept(item: Dataset) -> tuple[str, str]:
    code = item.ConceptNameCodeSequence[0]
    return str(code.CodingSchemeDesignator), str(code.CodeValue)


def find(items: Dataset | list, scheme: str, value: str) -> list[Dataset]:
    """Every content item (at any depth) whose concept name is (value, scheme)."""
    out = []
    children = items.get("ContentSequence", []) if isinstance(items, Dataset) else items
    for item in children:
        if "ConceptNameCodeSequence" in item and concept(item) == (scheme, value):
            out.append(item)
        out.extend(find(item, scheme, value))
    return out


def one(items: Dataset | list, scheme: str, value: str) -> Dataset:
    found = find(items, scheme, value)
    assert len(found) == 1, f"expected one ({value}, {scheme}), found {len(found)}"
    return found[0]


def coded(item: Dataset) -> tuple[str, str, str]:
    code = item.ConceptCodeSequence[0]
    return str(code.CodingSchemeDesignator), str(code.CodeValue), str(code.CodeMeaning)


def number(item: Dataset) -> float:
    return float(item.MeasuredValueSequence[0].NumericValue)


def probabilities(ds: Dataset) -> dict[str, float]:
    """Class meaning -> probability, from the CLASS-PROB items."""
    out = {}
    for item in find(ds, "99MEDAI", "CLASS-PROB"):
        modifier = one(item, "99MEDAI", "CLASS")
        out[coded(modifier)[2]] = number(item)
    return out


def image_refs(items: Dataset | list, scheme: str, value: str) -> list[tuple[str, str]]:
    return [
        (
            str(item.ReferencedSOPSequence[0].ReferencedSOPClassUID),
            str(item.ReferencedSOPSequence[0].ReferencedSOPInstanceUID),
        )
        for item in find(items, scheme, value)
    ]


def dciodvfy(path_or_bytes: Path | bytes) -> tuple[list[str], str]:
    """dciodvfy's error lines for a DICOM file, and its whole output. dicom3tools is installed
    by bin/test; a missing dciodvfy fails loudly rather than skipping the validation."""
    tool = shutil.which("dciodvfy")
    assert tool, (
        "dciodvfy (Debian package dicom3tools) is missing: bin/test installs it; "
        "or run `apt-get install -y dicom3tools`"
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "object.dcm"
        if isinstance(path_or_bytes, bytes):
            path.write_bytes(path_or_bytes)
        else:
            path = path_or_bytes
        result = subprocess.run(
            [tool, str(path)], capture_output=True, text=True, timeout=60, check=False
        )
    output = result.stdout + result.stderr
    return [line for line in output.splitlines() if line.startswith("Error")], output
