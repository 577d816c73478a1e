"""Results sent to PACS destinations: the send job (C-STORE to a test SCP), its retries and
failures, idempotency, the reviewed revision's predecessor, original UIDs only for the study's
own sender, the "Sent to PACS" block and its "Send again" button, and the admin's secret."""

from __future__ import annotations

import datetime

import pydicom
import pytest

from diagnosis.imaging.deid import pseudonymous_uid
from diagnosis.models import DicomDestination, DicomSend, Prediction, Scan, SourceInstance
from diagnosis.pacs.forms import DicomDestinationForm
from diagnosis.pacs.outbox import MODEL_REVISION, prediction_sends_queue
from diagnosis.pacs.services import received_file, study_receive, unmatched_study_assign
from diagnosis.reporting import prediction_sr, sr_sop_uid, stored_target
from diagnosis.services import deid_uid_key, review_record, scan_upload
from medai_site.audit.models import AuditEvent
from medai_site.jobs.models import Job
from tests.diagnosis.files import chest_cr_dicom, ct_head_dicom, upload
from tests.diagnosis.imaging.sr_checks import coded, find, image_refs, one
from tests.diagnosis.model_versions import TASK
from tests.diagnosis.pacs.pacs_peer import free_port, store_peer
from tests.diagnosis.pacs.studies import study_files
from tests.platform.factories import patient_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast(settings):
    settings.MEDAI_DICOM_SEND_BACKOFF_SECONDS = 0
    settings.MEDAI_DICOM_SEND_TIMEOUT = 5
    settings.MEDAI_DICOM_TASK = TASK


@pytest.fixture
def peer():
    with store_peer() as running:
        yield running


def destination_to(port: int, **fields) -> DicomDestination:
    values = {
        "name": "Radiology PACS",
        "kind": DicomDestination.Kind.CSTORE,
        "called_ae_title": "TESTPACS",
        "host": "127.0.0.1",
        "port": port,
        **fields,
    }
    return DicomDestination.objects.create(**values)


def classify_chest(users, run_job, patient=None) -> Prediction:
    patient = patient or patient_for(users.clinician_a)
    outcome = scan_upload(
        patient=patient,
        uploaded_by=users.clinician_a,
        task=TASK,
        files=[upload("CR0001", chest_cr_dicom())],
    )
    assert run_job(outcome.job).status == Job.Status.SUCCEEDED
    return Prediction.objects.get(scan__patient=patient)


def test_a_classified_scan_is_sent_as_sr_and_heatmap_once(users, chest_model, run_job, peer):
    destination = destination_to(peer.port)
    prediction = classify_chest(users, run_job)
    send = DicomSend.objects.get(prediction=prediction, destination=destination)
    assert send.trigger == "classification" and send.status == "queued"
    assert send.revision == MODEL_REVISION
    assert run_job(send.job).status == Job.Status.SUCCEEDED
    send.refresh_from_db()
    assert send.status == "sent" and send.attempts == 1 and send.sent_at is not None
    assert [o["object"] for o in send.objects_sent] == ["SR", "SC"]
    assert peer.uids() == [o["sop_instance_uid"] for o in send.objects_sent]
    sr, capture = peer.received
    assert sr.Modality == "SR" and capture.Modality == "OT"
    # No source named for this destination: the objects file under the stored study.
    assert sr.StudyInstanceUID == stored_target(prediction.scan).study.study_instance_uid
    assert not send.original_uids
    assert AuditEvent.objects.filter(
        action=AuditEvent.Action.EXPORTED,
        patient=prediction.scan.patient,
        object_type="diagnosis.Prediction",
        detail__sent_to="Radiology PACS",
    ).exists()
    # A redelivered message finds the job finished: nothing is sent twice.
    assert run_job(send.job).status == Job.Status.SUCCEEDED
    assert len(peer.received) == 2


def test_send_again_resends_the_same_objects_under_the_same_uids(
    users, chest_model, run_job, peer, client_for
):
    destination_to(peer.port)
    prediction = classify_chest(users, run_job)
    send = DicomSend.objects.get(prediction=prediction)
    run_job(send.job)
    first = peer.uids()
    client = client_for(users.clinician_a)
    response = client.post(f"/diagnosis/sends/{send.pk}/send-again/")
    assert response.status_code == 302
    send.refresh_from_db()
    assert send.status == "queued" and send.trigger == "manual"
    assert run_job(send.job).status == Job.Status.SUCCEEDED
    # The same SOP Instance UIDs: the PACS replaces the objects, it does not add copies.
    assert peer.uids() == first + first
    assert DicomSend.objects.filter(prediction=prediction).count() == 1
    assert AuditEvent.objects.filter(
        action=AuditEvent.Action.EXPORTED, actor=users.clinician_a, detail__send_again=send.pk
    ).exists()
    page = client.get(f"/diagnosis/scans/{prediction.scan_id}/").content.decode()
    assert "Sent to PACS" in page and "Radiology PACS" in page and "Sent" in page


def test_send_again_is_only_for_the_patients_clinicians(users, chest_model, run_job, client_for):
    destination_to(free_port())
    prediction = classify_chest(users, run_job)
    send = DicomSend.objects.get(prediction=prediction)
    url = f"/diagnosis/sends/{send.pk}/send-again/"
    assert client_for(users.clinician_b).post(url).status_code == 404
    assert client_for(users.researcher).post(url).status_code == 403
    assert client_for(users.clinician_a).get(url).status_code == 405
    assert Job.objects.filter(kind="diagnosis.dicom_send").count() == 1


def test_an_unreachable_destination_is_tried_again_then_fails_with_its_reason(
    users, chest_model, run_job, client_for
):
    destination_to(free_port())  # nothing listens there
    prediction = classify_chest(users, run_job)
    send = DicomSend.objects.get(prediction=prediction)
    job = run_job(send.job)
    send.refresh_from_db()
    assert send.status == "failed" and send.attempts == 3
    assert "could not be reached" in send.last_error and "Tried 3 times." in send.last_error
    assert job.status == Job.Status.FAILED and "Radiology PACS" in job.error
    page = client_for(users.clinician_a).get(f"/diagnosis/scans/{prediction.scan_id}/")
    assert "could not be reached" in page.content.decode()
    assert "Send again" in page.content.decode()


def test_while_a_destination_is_failing_a_send_is_tried_once_without_waits(
    users, chest_model, run_job, settings
):
    destination_to(free_port())  # nothing listens there
    first, second = (classify_chest(users, run_job) for _ in range(2))
    run_job(DicomSend.objects.get(prediction=first).job)
    send = DicomSend.objects.get(prediction=second)
    job = run_job(send.job)
    send.refresh_from_db()
    assert send.status == "failed" and send.attempts == 1
    assert "Tried once, without waiting: another send to it failed in the last 60 s." in (
        send.last_error
    )
    assert job.status == Job.Status.FAILED
    # Past the window, the full retries again.
    settings.MEDAI_DICOM_SEND_FAIL_FAST_SECONDS = 0
    third = DicomSend.objects.get(prediction=classify_chest(users, run_job))
    run_job(third.job)
    third.refresh_from_db()
    assert third.attempts == 3 and "Tried 3 times." in third.last_error


def test_a_busy_archive_gets_the_objects_on_the_next_try(users, chest_model, run_job, peer):
    destination_to(peer.port)
    peer.statuses = [0xA700]  # out of resources, once
    prediction = classify_chest(users, run_job)
    send = DicomSend.objects.get(prediction=prediction)
    run_job(send.job)
    send.refresh_from_db()
    assert send.status == "sent" and send.attempts == 2 and len(peer.received) == 2


def test_a_refusal_is_not_retried(users, chest_model, run_job, peer):
    destination_to(peer.port)
    peer.statuses = [0xC000]  # cannot understand
    prediction = classify_chest(users, run_job)
    send = DicomSend.objects.get(prediction=prediction)
    run_job(send.job)
    send.refresh_from_db()
    assert send.status == "failed" and send.attempts == 1
    assert "0xC000" in send.last_error and not peer.received


def test_a_review_sends_a_new_revision_naming_its_predecessor(users, chest_model, run_job, peer):
    destination = destination_to(peer.port)
    prediction = classify_chest(users, run_job)
    run_job(DicomSend.objects.get(prediction=prediction).job)
    model_sr = peer.received[0]
    review_record(prediction=prediction, reviewer=users.clinician_a, label="pneumonia")
    revised = DicomSend.objects.get(prediction=prediction, trigger="review")
    assert revised.destination == destination and revised.revision != MODEL_REVISION
    run_job(revised.job)
    sr = peer.received[2]
    assert sr.SOPInstanceUID != model_sr.SOPInstanceUID and sr.InstanceNumber == 2
    predecessor = sr.PredecessorDocumentsSequence[0]
    assert predecessor.StudyInstanceUID == model_sr.StudyInstanceUID
    ref = predecessor.ReferencedSeriesSequence[0]
    assert ref.SeriesInstanceUID == model_sr.SeriesInstanceUID
    assert ref.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == model_sr.SOPInstanceUID
    # The model's answer itself names no predecessor.
    assert "PredecessorDocumentsSequence" not in model_sr


def test_destinations_send_only_when_their_rules_say_so(users, chest_model, run_job):
    destination_to(free_port(), name="After review only", send_after_classification=False)
    destination_to(free_port(), name="Disabled", enabled=False)
    prediction = classify_chest(users, run_job)
    assert not DicomSend.objects.exists()
    review_record(prediction=prediction, reviewer=users.clinician_a, label="normal")
    assert [s.destination.name for s in DicomSend.objects.all()] == ["After review only"]


def test_an_answer_outside_the_models_scope_is_sent_as_an_sr_saying_so(
    users, chest_model, run_job, peer
):
    destination_to(peer.port)
    patient = patient_for(users.clinician_a)
    outcome = scan_upload(
        patient=patient,
        uploaded_by=users.clinician_a,
        task=TASK,
        files=[upload("CT0001", ct_head_dicom())],
    )
    run_job(outcome.job)
    prediction = Prediction.objects.get(scan__patient=patient)
    assert not prediction.scored
    run_job(DicomSend.objects.get(prediction=prediction).job)
    (sr,) = peer.received  # no heat-map capture
    assert coded(one(sr, "99MEDAI", "SCOPE"))[1] == "OUT-OF-SCOPE"
    assert not find(sr, "DCM", "121071")  # no finding


def _received(tmp_path, calling_ae: str, **identity):
    paths = study_files(tmp_path, count=1, **identity)
    with paths[0].open("rb") as handle:
        receipt = study_receive(
            files=[received_file(handle, name="IM0001.dcm")], calling_ae=calling_ae
        )
    return receipt, pydicom.dcmread(paths[0], stop_before_pixels=True)


def test_a_received_study_keeps_its_original_uids_and_never_shows_them(users, tmp_path, client_for):
    patient = patient_for(
        users.clinician_a,
        mrn="SND-1",
        family_name="Hopper",
        given_name="Grace",
        birth_date=datetime.date(1906, 12, 9),
    )
    receipt, original = _received(
        tmp_path, "ORTHANC", patient_id="SND-1", name="HOPPER^GRACE", birth_date="19061209"
    )
    scan = Scan.objects.get(upload=receipt.upload)
    assert scan.patient == patient
    source = SourceInstance.objects.get(scan=scan)
    assert source.source == "ORTHANC"
    assert source.sop_instance_uid == original.SOPInstanceUID
    assert source.study_instance_uid == original.StudyInstanceUID
    assert source.patient_id == "SND-1"
    # The stored copy carries only the keyed replacements.
    stored = stored_target(scan)
    assert stored.sources[0].sop_instance_uid == pseudonymous_uid(
        original.SOPInstanceUID, deid_uid_key()
    )
    page = client_for(users.clinician_a).get(f"/diagnosis/scans/{scan.pk}/").content.decode()
    assert original.SOPInstanceUID not in page and original.StudyInstanceUID not in page


def test_an_assigned_inbox_study_is_hashed_once_and_keeps_the_senders_uids(users, tmp_path):
    receipt, original = _received(
        tmp_path, "PACS", patient_id="EXT-9", name="ROE^JANE", birth_date="19800202"
    )
    assert receipt.unmatched is not None
    patient = patient_for(users.clinician_a, family_name="Roe")
    unmatched_study_assign(study=receipt.unmatched, patient=patient, user=users.clinician_a)
    scan = Scan.objects.get(patient=patient)
    key = deid_uid_key()
    stored = stored_target(scan)
    # The same UIDs a direct match would give: replaced once, not twice.
    assert stored.sources[0].sop_instance_uid == pseudonymous_uid(original.SOPInstanceUID, key)
    assert stored.study.study_instance_uid == pseudonymous_uid(original.StudyInstanceUID, key)
    source = SourceInstance.objects.get(scan=scan)
    assert (source.source, source.sop_instance_uid, source.series_instance_uid) == (
        "PACS",
        original.SOPInstanceUID,
        original.SeriesInstanceUID,
    )


def test_original_uids_go_only_to_the_destination_of_the_studys_sender(
    users, chest_model, run_job, tmp_path
):
    patient = patient_for(users.clinician_a)
    prediction = classify_chest(users, run_job, patient=patient)
    scan = prediction.scan
    SourceInstance.objects.create(
        scan=scan,
        source="ORTHANC",
        sop_class_uid="1.2.840.10008.5.1.4.1.1.1",
        sop_instance_uid="1.2.3.4.1",
        series_instance_uid="1.2.3.4.2",
        study_instance_uid="1.2.3.4.3",
        patient_id="HOSP-12345",
        patient_name="Identifiable^Jane",
    )
    with store_peer() as home, store_peer() as other:
        destination_to(home.port, name="Home PACS", source_ae_title="ORTHANC")
        destination_to(other.port, name="Research PACS", source_ae_title="ELSEWHERE")
        for send in prediction_sends_queue(
            prediction=prediction, trigger="classification", owner=users.clinician_a
        ):
            run_job(send.job)
        home_sr, other_sr = home.received[0], other.received[0]
    assert home_sr.StudyInstanceUID == "1.2.3.4.3" and home_sr.PatientID == "HOSP-12345"
    assert ("1.2.840.10008.5.1.4.1.1.1", "1.2.3.4.1") in image_refs(home_sr, "SCT", "260753009")
    assert other_sr.StudyInstanceUID == stored_target(scan).study.study_instance_uid
    assert "1.2.3.4" not in str(other_sr) and "Identifiable" not in str(other_sr)
    assert DicomSend.objects.get(destination__name="Home PACS").original_uids


def test_the_downloaded_review_revision_names_the_models_answer(users, chest_model, run_job):
    prediction = classify_chest(users, run_job)
    review_record(prediction=prediction, reviewer=users.clinician_a, label="normal")
    prediction = Prediction.objects.get(pk=prediction.pk)
    sr = prediction_sr(prediction=prediction)
    ref = sr.PredecessorDocumentsSequence[0].ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
    assert ref.ReferencedSOPInstanceUID == sr_sop_uid(prediction, MODEL_REVISION)


def test_the_admin_form_never_shows_the_secret_and_keeps_it_when_left_blank():
    data = {
        "name": "Cloud PACS",
        "enabled": "on",
        "kind": "stow",
        "stow_url": "https://pacs.example/dicom-web/studies",
        "auth": "bearer",
        "secret": "s3cr3t-token",
        "calling_ae_title": "MEDAI",
    }
    form = DicomDestinationForm(data)
    assert form.is_valid(), form.errors
    destination = form.save()
    edit = DicomDestinationForm(instance=destination)
    assert "s3cr3t-token" not in str(edit["secret"])
    again = DicomDestinationForm({**data, "secret": ""}, instance=destination)
    assert again.is_valid(), again.errors
    assert again.save().secret == "s3cr3t-token"
    missing = DicomDestinationForm({**data, "kind": "cstore", "secret": ""})
    assert not missing.is_valid() and "called_ae_title" in missing.errors
