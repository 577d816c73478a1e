"""The identifiers an instance had before de-identification, read from its header: kept only
to file MedAI's results (SR, heat-map capture) under the right study in the archive that sent
it, and never shown."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, BinaryIO

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError


@dataclass(frozen=True)
class OriginalInstance:
    """One received instance as its sender knows it (UIDs, patient and study identifiers)."""

    sop_class_uid: str
    sop_instance_uid: str
    series_instance_uid: str
    study_instance_uid: str
    patient_id: str = ""
    patient_name: str = ""
    study_date: str = ""
    study_time: str = ""
    study_id: str = ""
    accession_number: str = ""

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OriginalInstance:
        names = {f.name for f in fields(cls)}
        return cls(**{k: str(v) for k, v in data.items() if k in names})


def _text(dataset: Dataset, keyword: str, limit: int) -> str:
    value = dataset.get(keyword, "")
    return str(value or "").strip()[:limit]


def original_read(dataset: Dataset) -> OriginalInstance | None:
    """The instance's original identifiers; None when it lacks one of its four UIDs (the
    intake refuses such a file anyway)."""
    sop_class, sop, series, study = (
        _text(dataset, k, 64)
        for k in ("SOPClassUID", "SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID")
    )
    if not (sop_class and sop and series and study):
        return None
    return OriginalInstance(
        sop_class_uid=sop_class,
        sop_instance_uid=sop,
        series_instance_uid=series,
        study_instance_uid=study,
        patient_id=_text(dataset, "PatientID", 64),
        patient_name=_text(dataset, "PatientName", 200),
        study_date=_text(dataset, "StudyDate", 8),
        study_time=_text(dataset, "StudyTime", 16),
        study_id=_text(dataset, "StudyID", 16),
        accession_number=_text(dataset, "AccessionNumber", 16),
    )


def original_file_read(handle: BinaryIO) -> OriginalInstance | None:
    """The original identifiers in a DICOM file's header (pixels not read), the file rewound;
    None when it is not readable DICOM."""
    handle.seek(0)
    try:
        dataset = pydicom.dcmread(handle, stop_before_pixels=True)
    except (InvalidDicomError, ValueError, TypeError, EOFError, OSError, KeyError):
        return None
    finally:
        handle.seek(0)
    return original_read(dataset)
