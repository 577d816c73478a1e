"""Small DICOM studies for the receiver's tests: pydicom's CT_small (and NEMA's compressed CT)
re-labelled as one patient's study, written as files for dcmtk's storescu or Orthanc."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
from pydicom.uid import generate_uid

from tests.diagnosis.files import NEMA, pydicom_bytes


def study_files(
    folder: Path,
    *,
    patient_id: str,
    name: str,
    birth_date: str,
    count: int = 2,
    issuer: str = "",
    compressed: bool = False,
) -> list[Path]:
    """``count`` CT instances of one new study of the patient, as Part 10 files in ``folder``
    (the first one JPEG 2000 lossless from NEMA WG04 when ``compressed``)."""
    folder.mkdir(parents=True, exist_ok=True)
    study, series = generate_uid(), generate_uid()
    paths = []
    for number in range(1, count + 1):
        source = (
            (NEMA / "CT1_J2KR").read_bytes()
            if compressed and number == 1
            else pydicom_bytes("CT_small.dcm")
        )
        ds = pydicom.dcmread(io.BytesIO(source))
        ds.PatientID = patient_id
        ds.PatientName = name
        ds.PatientBirthDate = birth_date
        if issuer:
            ds.IssuerOfPatientID = issuer
        ds.StudyInstanceUID = study
        ds.SeriesInstanceUID = series
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = number
        path = folder / f"IM{number:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def chest_study_file(folder: Path, *, patient_id: str, name: str, birth_date: str) -> Path:
    """One chest radiograph (CR, which the chest model scores in scope) of a new study of the
    patient, as a Part 10 file in ``folder``."""
    from tests.diagnosis.files import chest_cr_dicom

    folder.mkdir(parents=True, exist_ok=True)
    ds = pydicom.dcmread(io.BytesIO(chest_cr_dicom()))
    ds.PatientID = patient_id
    ds.PatientName = name
    ds.PatientBirthDate = birth_date
    ds.AccessionNumber = "ACC-0001"
    path = folder / "CR0001.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path
