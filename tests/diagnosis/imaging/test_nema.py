"""Every NEMA WG04 compression test file is inspected and decoded into frames of the right shape.

Lossless variants must equal the uncompressed original exactly; lossy ones must stay close.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pydicom
import pytest

from diagnosis.imaging import gdcm_jpeg12
from diagnosis.imaging.errors import RejectCode, ScanRejected
from diagnosis.imaging.intake import inspect_upload, load_upload
from diagnosis.imaging.pixels import scan_frames, to_uint8
from tests.diagnosis.imaging.imaging_samples import MAX_BYTES, MAX_PIXELS, NEMA_DIR, nema_files

FILES = nema_files()
LOSSLESS = ("UNC", "RLE", "JPLL", "JLSL", "J2KR")
# Expected transfer syntax for each WG04 file-name suffix (PS3.5 Table A-1 / PS3.6 A-1).
SYNTAX_BY_SUFFIX = {
    "UNC": "1.2.840.10008.1.2.1",
    "RLE": "1.2.840.10008.1.2.5",
    "JPLL": "1.2.840.10008.1.2.4.70",
    "JPLY": "1.2.840.10008.1.2.4.51",
    "JLSL": "1.2.840.10008.1.2.4.80",
    "JLSN": "1.2.840.10008.1.2.4.81",
    "J2KR": "1.2.840.10008.1.2.4.90",
    "J2KI": "1.2.840.10008.1.2.4.91",
}


@cache
def _reference_values(stem: str) -> np.ndarray:
    """Modality-LUT values of the uncompressed original, e.g. CT1_UNC."""
    scan = load_upload(NEMA_DIR / f"{stem}_UNC", max_bytes=MAX_BYTES, max_pixels=MAX_PIXELS)
    return scan_frames(scan)[0].values


def test_corpus_is_complete() -> None:
    if not FILES:
        pytest.skip("NEMA WG04 files are not mounted")
    assert len(FILES) == 35
    assert {path.name.split("_")[1] for path in FILES} == set(SYNTAX_BY_SUFFIX)


@pytest.mark.parametrize("path", FILES, ids=[path.name for path in FILES])
def test_nema_file_is_inspected_and_decoded(path: Path) -> None:
    stem, suffix = path.name.split("_")
    header = pydicom.dcmread(path, stop_before_pixels=True)
    if suffix == "JPLY" and not gdcm_jpeg12.HAVE_GDCM:
        # Without python-gdcm no installed decoder reads these 12-bit lossy JPEGs.
        with pytest.raises(ScanRejected) as caught:
            inspect_upload(path, max_bytes=MAX_BYTES, max_pixels=MAX_PIXELS)
        assert caught.value.code is RejectCode.DECODE_FAILED
        assert "JPEG Extended (Process 2 and 4) (1.2.840.10008.1.2.4.51)" in caught.value.message
        return

    scan = load_upload(path, max_bytes=MAX_BYTES, max_pixels=MAX_PIXELS)
    info = scan.info
    assert info.kind == "dicom" and info.modality == header.Modality
    assert info.transfer_syntax_uid == SYNTAX_BY_SUFFIX[suffix]
    assert (info.rows, info.cols) == (header.Rows, header.Columns)
    frames = scan_frames(scan)
    expected_frames = int(header.get("NumberOfFrames") or 1)
    assert len(frames) == info.frames == expected_frames
    shape = (header.Rows, header.Columns) + ((3,) if header.SamplesPerPixel == 3 else ())
    for frame in frames:
        assert frame.values.shape == shape and frame.values.dtype == np.float32
        display = to_uint8(frame)
        assert display.shape == shape and display.dtype == np.uint8
        assert display.max() > display.min(), "a real image is not flat after windowing"

    reference = _reference_values(stem)
    values = frames[0].values
    if suffix in LOSSLESS:
        np.testing.assert_array_equal(values, reference)
    elif suffix == "JLSN":
        # Near-lossless JPEG-LS bounds the error per sample (NEAR = 4 in these files: T.87 A.2).
        assert np.abs(values.astype(np.float64) - reference).max() <= 4
    else:
        correlation = np.corrcoef(values.ravel(), reference.ravel())[0, 1]
        assert correlation > 0.94, f"lossy decode of {path.name} drifted: r={correlation:.3f}"
