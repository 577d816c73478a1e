"""End to end with a real PACS nobody on this project wrote: a private Orthanc holds a study
and is told, through its REST API, to send it to MedAI's receiver; MedAI matches the patient
and files the study de-identified with one classification job; the result (SR and heat-map
capture) goes back to Orthanc under the study's original UIDs (C-STORE), or de-identified to
its DICOMweb STOW-RS service."""

from __future__ import annotations

import datetime
import io

import pydicom
import pytest

from diagnosis.models import DicomDestination, DicomSend, Prediction, Scan, ScanUpload
from diagnosis.services import patient_pseudonym, scan_upload
from medai_site.jobs.models import Job
from tests.diagnosis.files import chest_cr_dicom, upload
from tests.diagnosis.imaging.sr_checks import find, image_refs, one
from tests.diagnosis.model_versions import TASK
from tests.diagnosis.pacs.studies import chest_study_file, study_files
from tests.platform.factories import patient_for
from tests.support.dcmtk import wait_for
from tests.support.orthanc import DICOMWEB_PLUGIN, Orthanc, orthanc_available, orthanc_running

# Received studies are classified only while a model is in service.
pytestmark = pytest.mark.usefixtures("model_in_service")


@pytest.fixture(autouse=True)
def _orthanc(settings):
    if not orthanc_available():
        pytest.fail("Orthanc is missing: bin/test installs it (apt-get install orthanc)")
    settings.MEDAI_DICOM_TASK = TASK


def test_orthanc_sends_a_study_that_medai_files_under_its_patient(receiver, users, tmp_path):
    medai, port = receiver
    # Orthanc sends this study over two associations (one per transfer syntax): they must
    # make one upload and one job. The product's margin (5 s, not the fixture's 0.5 s) covers
    # a busy machine between the two.
    medai.settle_seconds = 5.0
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

        def all_filed() -> list[ScanUpload]:
            uploads = list(ScanUpload.objects.filter(patient=patient))
            filed = Scan.objects.filter(upload__in=uploads).count()
            return uploads if filed >= 3 else []

        # The second association's instances join the upload a moment after it appears.
        uploads = wait_for(all_filed, seconds=60)
    assert isinstance(uploads, list) and len(uploads) == 1, uploads
    upload = uploads[0]
    scans = list(Scan.objects.filter(upload=upload))
    assert len(scans) == 3
    for scan in scans:
        header = pydicom.dcmread(scan.file.path)
        assert header.PatientID == patient_pseudonym(patient)
        assert b"LOVELACE" not in scan.file.read()
    job = Job.objects.get(kind="diagnosis.inference", patient=patient)
    assert job.params == {"upload_id": upload.pk, "task": TASK}


def _instances(pacs: Orthanc, study: str) -> list[pydicom.Dataset]:
    return [
        pydicom.dcmread(io.BytesIO(pacs.get(f"/instances/{i['ID']}/file")))
        for i in pacs.get(f"/studies/{study}/instances")
    ]


def test_orthanc_gets_the_sr_and_heatmap_back_under_its_original_study(
    receiver, users, chest_model, run_job, tmp_path, settings
):
    settings.MEDAI_DICOM_SEND_BACKOFF_SECONDS = 0
    medai, port = receiver
    patient = patient_for(
        users.clinician_a,
        mrn="ORT-0077",
        family_name="Franklin",
        given_name="Rosalind",
        birth_date=datetime.date(1920, 7, 25),
    )
    path = chest_study_file(
        tmp_path / "study", patient_id="ORT-0077", name="FRANKLIN^ROSALIND", birth_date="19200725"
    )
    original = pydicom.dcmread(path, stop_before_pixels=True)
    with orthanc_running(tmp_path / "orthanc", medai=("MEDAI", "127.0.0.1", port)) as pacs:
        DicomDestination.objects.create(
            name="Hospital Orthanc",
            kind=DicomDestination.Kind.CSTORE,
            called_ae_title=pacs.aet,
            host="127.0.0.1",
            port=pacs.dicom_port,
            source_ae_title=pacs.aet,  # the studies it sends go back under their own UIDs
        )
        study = pacs.upload(path)["ParentStudy"]
        pacs.post("/modalities/medai/store", {"Resources": [study], "Synchronous": True})
        job = wait_for(lambda: Job.objects.filter(kind="diagnosis.inference").first())
        assert job is not None and job.patient == patient
        assert run_job(job).status == Job.Status.SUCCEEDED
        prediction = Prediction.objects.select_related("model_version").get(scan__patient=patient)
        assert prediction.scored
        send = DicomSend.objects.get(prediction=prediction)
        assert run_job(send.job).status == Job.Status.SUCCEEDED
        # Orthanc files them in the study it sent (same Patient ID and Study Instance UID).
        objects = {ds.Modality: ds for ds in _instances(pacs, study)}
    assert sorted(objects) == ["CR", "OT", "SR"]
    sr, capture = objects["SR"], objects["OT"]
    assert sr.StudyInstanceUID == original.StudyInstanceUID
    assert sr.PatientID == "ORT-0077" and sr.AccessionNumber == "ACC-0001"
    refs = image_refs(sr, "SCT", "260753009")
    assert (str(original.SOPClassUID), str(original.SOPInstanceUID)) in refs
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0]
    assert evidence.StudyInstanceUID == original.StudyInstanceUID
    series = {s.SeriesInstanceUID for s in evidence.ReferencedSeriesSequence}
    assert original.SeriesInstanceUID in series
    version = prediction.model_version
    assert one(sr, "DCM", "111003").TextValue == str(version.version)
    assert one(sr, "99MEDAI", "SHA256").TextValue == version.sha256
    assert find(sr, "DCM", "121071")  # the finding
    assert capture.StudyInstanceUID == original.StudyInstanceUID
    assert capture.SourceImageSequence[0].ReferencedSOPInstanceUID == original.SOPInstanceUID
    send.refresh_from_db()
    assert send.status == "sent" and send.original_uids
    assert {o["sop_instance_uid"] for o in send.objects_sent} == {
        sr.SOPInstanceUID,
        capture.SOPInstanceUID,
    }


def test_a_stow_rs_destination_gets_the_result_de_identified(users, chest_model, run_job, tmp_path):
    if not DICOMWEB_PLUGIN.exists():
        pytest.fail("orthanc-dicomweb is missing: bin/test installs it")
    patient = patient_for(users.clinician_a)
    with orthanc_running(tmp_path / "orthanc") as pacs:
        DicomDestination.objects.create(
            name="DICOMweb archive",
            kind=DicomDestination.Kind.STOW,
            stow_url=f"{pacs.url}/dicom-web/studies",
            auth=DicomDestination.Auth.BASIC,
            username="medai",
            secret="unused-by-this-orthanc",
        )
        outcome = scan_upload(
            patient=patient,
            uploaded_by=users.clinician_a,
            task=TASK,
            files=[upload("CR0001", chest_cr_dicom())],
        )
        run_job(outcome.job)
        send = DicomSend.objects.get()
        assert run_job(send.job).status == Job.Status.SUCCEEDED
        (study,) = pacs.get("/studies")
        objects = {ds.Modality: ds for ds in _instances(pacs, study)}
    assert sorted(objects) == ["OT", "SR"]
    assert objects["SR"].PatientID == patient_pseudonym(patient)
    assert "Identifiable" not in str(objects["SR"].PatientName)
    send.refresh_from_db()
    assert send.status == "sent" and not send.original_uids
