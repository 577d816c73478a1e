"""Medical image intake for MedAI: pure Python, no Django.

Public API (see each module): intake.inspect_upload / load_upload, pixels.scan_frames and the
window functions, deid.deidentify, errors.ScanRejected.
"""

from diagnosis.imaging.deid import DeidReport, DeidResult, deidentify, pseudonymous_uid
from diagnosis.imaging.errors import RejectCode, ScanRejected
from diagnosis.imaging.intake import detect_kind, inspect_upload, load_upload
from diagnosis.imaging.pixels import (
    Frame,
    Window,
    apply_window,
    model_input,
    scan_frames,
    to_uint8,
    to_unit_range,
)
from diagnosis.imaging.scan import LoadedScan, ScanInfo

__all__ = [
    "DeidReport",
    "DeidResult",
    "Frame",
    "LoadedScan",
    "RejectCode",
    "ScanInfo",
    "ScanRejected",
    "Window",
    "apply_window",
    "deidentify",
    "detect_kind",
    "inspect_upload",
    "load_upload",
    "model_input",
    "pseudonymous_uid",
    "scan_frames",
    "to_uint8",
    "to_unit_range",
]
