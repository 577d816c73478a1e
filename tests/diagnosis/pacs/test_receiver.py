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


def _events(calling_ae: str) -> object:
    """What the receiver's handlers read of a pynetdicom event: the association and the
    caller's AE title."""
    from types import SimpleNamespace

    assoc = SimpleNamespace(requestor=SimpleNamespace(ae_title=calling_ae))
    return SimpleNamespace(assoc=assoc)


def _received(receiver, event, paths) -> object:
    """Instances as _store leaves them: in the association's batch folder."""
    import pydicom as dicom

    batch = receiver._batch(event)
    for path in paths:
        target = batch.folder / f"{len(batch.files) + 1:05d}.dcm"
        target.write_bytes(path.read_bytes())
        batch.files.append((target, str(dicom.dcmread(path).StudyInstanceUID)))
    return batch


@pytest.mark.django_db(transaction=True)
def test_a_release_reported_after_the_connection_closed_still_files_the_study(
    tmp_path, monkeypatch
):
    """pynetdicom reports the closed connection (DUL thread) and the release (association
    thread) in either order; under load the close came first and the study was lost."""
    from diagnosis.pacs import receiver as receiving

    medai = receiving.Receiver(ae_title="MEDAI", allow=["STORESCU"])
    medai.settle_seconds = 60  # filed by stop() below, not by the timer
    event = _events("STORESCU")
    paths = study_files(tmp_path, patient_id="EXT-RACE", name="RACE^ONE", birth_date="19700101")
    _received(medai, event, paths)
    medai._closed(event)  # the grace period (30 s) is still running ...
    medai._released(event)  # ... when the release comes, after the close, as seen
    medai.stop()
    study = UnmatchedStudy.objects.get(patient_id="EXT-RACE")
    assert UnmatchedInstance.objects.filter(study=study).count() == 2

    # A connection dropped without a release: its instances go after the grace period.
    monkeypatch.setattr(receiving, "CLOSE_GRACE_SECONDS", 0.05)
    dropped = _events("STORESCU")
    lost = _received(
        medai,
        dropped,
        study_files(tmp_path / "b", patient_id="X", name="A^B", birth_date="19700101"),
    )
    medai._closed(dropped)
    assert wait_for(lambda: not lost.folder.exists(), seconds=5)
    assert id(dropped.assoc) not in medai._batches
