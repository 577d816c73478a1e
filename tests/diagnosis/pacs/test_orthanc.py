"""End to end with a real PACS nobody on this project wrote: a private Orthanc holds a study
and is told, through its REST API, to send it to MedAI's receiver; MedAI matches the patient
and files the study de-identified with one classification job."""

from __future__ import annotations

import datetime

import pydicom
import pytest

from diagnosis.models import Scan, ScanUpload
from diagnosis.services import patient_pseudonym
from medai_site.jobs.models import Job
from tests.diagnosis.model_versions import TASK
from tests.diagnosis.pacs.studies import study_files
from tests.platform.factories import patient_for
from tests.support.dcmtk import wait_for
from tests.support.orthanc import orthanc_available, orthanc_running


@pytest.fixture(autouse=True)
def _orthanc(settings):
    if not orthanc_available():
        pytest.fail("Orthanc is missing: bin/test installs it (apt-get install orthanc)")
    settings.MEDAI_DICOM_TASK = TASK


def test_orthanc_sends_a_study_that_medai_files_under_its_patient(receiver, users, tmp_path):
    medai, port = receiver
    # Orthanc sends this study over two associations (one per transfer syntax): they must
    # make one upload and one job. The margin covers a slow CI machine between the two.
    medai.settle_seconds = 2.0
    patient = patient_for(
        users.clinician_a,
        mrn="ORT-0042",
        family_name="Lovelace",
        given_name="Ada",
        birth_date=datetime.date(1915, 12, 10),
    )
    paths = study_files(
        tmp_path / "study",
        patient_id="ORT-0042",
        name="LOVELACE^ADA",
        birth_date="19151210",
        count=3,
        compressed=True,
    )
    with orthanc_running(tmp_path / "orthanc", medai=("MEDAI", "127.0.0.1", port)) as pacs:
        stored = [pacs.upload(path) for path in paths]
        study = stored[0]["ParentStudy"]
        assert len(pacs.get(f"/studies/{study}/instances")) == 3
        assert pacs.post("/modalities/medai/echo", {}) is not None  # C-ECHO from the PACS
        pacs.post("/modalities/medai/store", {"Resources": [study], "Synchronous": True})
        upload = wait_for(lambda: ScanUpload.objects.filter(patient=patient).first())
    assert upload is not None
    scans = list(Scan.objects.filter(upload=upload))
    assert len(scans) == 3
    for scan in scans:
        header = pydicom.dcmread(scan.file.path)
        assert header.PatientID == patient_pseudonym(patient)
        assert b"LOVELACE" not in scan.file.read()
    job = Job.objects.get(kind="diagnosis.inference", patient=patient)
    assert job.params == {"upload_id": upload.pk, "task": TASK}
