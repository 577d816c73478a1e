"""The C-STORE receiver with dcmtk as the sender: verification, a known patient's study filed
de-identified under them with one classification job, an unknown patient's study in the
inbox, and a calling AE title that is not allowed refused."""

from __future__ import annotations

import datetime

import pydicom
import pytest

from diagnosis.models import Scan, ScanUpload, UnmatchedInstance, UnmatchedStudy
from diagnosis.services import patient_pseudonym
from medai_site.jobs.models import Job
from tests.diagnosis.model_versions import TASK
from tests.diagnosis.pacs.studies import study_files
from tests.platform.factories import patient_for
from tests.support.dcmtk import dcmtk_run, wait_for

pytestmark = pytest.mark.usefixtures("dcmtk", "model_in_service")


@pytest.fixture(autouse=True)
def _task(settings):
    settings.MEDAI_DICOM_TASK = TASK


def storescu(port: int, *paths, aet: str = "STORESCU") -> object:
    # -xv also proposes JPEG 2000 lossless: the compressed instance stays compressed on the wire.
    return dcmtk_run(
        "storescu", "-xv", "-aet", aet, "-aec", "MEDAI", "127.0.0.1", str(port), *map(str, paths)
    )


def test_echoscu_verifies(receiver):
    _, port = receiver
    result = dcmtk_run("echoscu", "-aet", "ECHOSCU", "-aec", "MEDAI", "127.0.0.1", str(port))
    assert result.returncode == 0, result.stderr


def test_a_known_patients_study_is_filed_deidentified_with_one_job(receiver, users, tmp_path):
    patient = patient_for(
        users.clinician_a,
        mrn="PAC-0001",
        family_name="Curie",
        given_name="Marie",
        birth_date=datetime.date(1967, 11, 7),
    )
    paths = study_files(
        tmp_path,
        patient_id="PAC-0001",
        name="CURIE^MARIE",
        birth_date="19671107",
        count=3,
        compressed=True,
    )
    result = storescu(receiver[1], *paths)
    assert result.returncode == 0, result.stderr
    upload = wait_for(lambda: ScanUpload.objects.filter(patient=patient).first())
    assert upload is not None
    scans = list(Scan.objects.filter(upload=upload))
    assert len(scans) == 3
    for scan in scans:
        stored = scan.file.read()
        header = pydicom.dcmread(scan.file.path)
        assert header.PatientID == patient_pseudonym(patient)
        assert b"CURIE" not in stored and b"PAC-0001" not in stored and b"19671107" not in stored
    jobs = Job.objects.filter(kind="diagnosis.inference", patient=patient)
    assert jobs.count() == 1 and jobs.get().params["task"] == TASK
    assert not UnmatchedStudy.objects.exists()


def test_an_unknown_patients_study_waits_in_the_inbox(receiver, users, tmp_path):
    paths = study_files(tmp_path, patient_id="NOBODY-9", name="DOE^JOHN", birth_date="19500101")
    assert storescu(receiver[1], *paths).returncode == 0
    study = wait_for(lambda: UnmatchedStudy.objects.first())
    assert study is not None and study.patient_id == "NOBODY-9"
    assert "No patient" in study.reason
    assert study.instances.count() == 2
    for instance in UnmatchedInstance.objects.all():
        stored = instance.file.read()
        assert b"DOE^JOHN" not in stored and b"NOBODY-9" not in stored
    assert (
        not ScanUpload.objects.exists()
        and not Job.objects.exclude(kind="registry.validate").exists()
    )


def test_a_name_that_differs_from_the_mrns_patient_is_not_guessed(receiver, users, tmp_path):
    patient_for(
        users.clinician_a,
        mrn="PAC-0002",
        family_name="Curie",
        given_name="Marie",
        birth_date=datetime.date(1967, 11, 7),
    )
    paths = study_files(tmp_path, patient_id="PAC-0002", name="CURIE^PIERRE", birth_date="19671107")
    assert storescu(receiver[1], *paths).returncode == 0
    study = wait_for(lambda: UnmatchedStudy.objects.first())
    assert study is not None and "differs" in study.reason
    assert not ScanUpload.objects.exists()


def test_a_calling_ae_title_not_allowed_is_rejected(receiver, tmp_path):
    paths = study_files(tmp_path, patient_id="X", name="A^B", birth_date="19500101", count=1)
    result = storescu(receiver[1], *paths, aet="INTRUDER")
    assert result.returncode != 0
    assert "rejected" in (result.stderr + result.stdout).lower()
    assert not UnmatchedStudy.objects.exists() and not ScanUpload.objects.exists()
