"""Scans are never refused for want of a model: stored, listed as waiting, classified as soon
as a model is put into service (on activation, or by the minute's sweep)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from diagnosis.models import Prediction, Scan
from diagnosis.pacs.selectors import receiver_task
from diagnosis.services import scan_hold_confirm, scan_upload, scans_awaiting_model_queue
from medai_site.jobs.models import Job
from medai_site.registry.loader import clear_model_cache
from medai_site.registry.models import ModelVersion
from medai_site.registry.services import model_version_activate, model_version_retire
from tests.diagnosis.files import chest_png, upload
from tests.diagnosis.model_versions import TASK, register_version
from tests.platform.factories import patient_for

pytestmark = pytest.mark.django_db


def _inference_jobs() -> list[Job]:
    return list(Job.objects.filter(kind="diagnosis.inference").order_by("pk"))


def test_the_scans_page_stores_an_upload_while_no_model_is_in_service(users, client_for):
    patient = patient_for(users.clinician_a)
    client = client_for(users.clinician_a)
    url = reverse("diagnosis:patient_scans", args=[patient.pk])
    page = client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert "data-no-model" in html and 'type="file"' in html  # explained, and not refused
    response = client.post(url, {"files": [upload("chest.png", chest_png())], "task": ""})
    assert response.status_code == 302
    scan = Scan.objects.get()
    assert scan.awaiting_model_since is not None and scan.upload.task == ""
    assert _inference_jobs() == []  # no job that would only fail
    outcome = client.get(response["Location"]).content.decode()
    assert "data-awaiting-model" in outcome and "waiting for a model" in outcome
    detail = client.get(reverse("diagnosis:scan_detail", args=[scan.pk])).content.decode()
    assert "Waiting for a model" in detail


def test_activation_queues_the_waiting_scans_and_they_are_classified(
    users, tiny_artifact, run_job, django_capture_on_commit_callbacks
):
    patient = patient_for(users.clinician_a)
    outcome = scan_upload(
        patient=patient,
        uploaded_by=users.clinician_a,
        task="",
        files=[upload("a.png", chest_png())],
    )
    assert outcome.awaiting == outcome.scans and outcome.jobs == []
    version = register_version(users, tiny_artifact, activate=False)
    with django_capture_on_commit_callbacks(execute=True):
        model_version_activate(version=version, user=users.model_admin, reason="first model")
    (job,) = _inference_jobs()
    assert job.params["task"] == TASK and job.params["scan_ids"] == [outcome.scans[0].pk]
    assert Scan.objects.get().awaiting_model_since is None
    assert run_job(job).status == Job.Status.SUCCEEDED
    assert Prediction.objects.get().model_version == version
    # The sweep finds nothing left to queue.
    assert scans_awaiting_model_queue() == []
    clear_model_cache()


def test_the_sweep_queues_each_waiting_scan_once(users, tiny_artifact):
    patient = patient_for(users.clinician_a)
    scan_upload(
        patient=patient,
        uploaded_by=users.clinician_a,
        task="",
        files=[upload("a.png", chest_png()), upload("b.png", chest_png())],
    )
    assert scans_awaiting_model_queue() == []  # nothing in service: they keep waiting
    assert Scan.objects.filter(awaiting_model_since__isnull=False).count() == 2
    # Activated without the activation hook running (a crash after commit): the sweep catches up.
    register_version(users, tiny_artifact, activate=True)
    Scan.objects.update(awaiting_model_since="2026-01-01T00:00:00Z")
    Job.objects.filter(kind="diagnosis.inference").delete()
    (job,) = scans_awaiting_model_queue()
    assert sorted(job.params["scan_ids"]) == sorted(Scan.objects.values_list("pk", flat=True))
    assert scans_awaiting_model_queue() == []
    assert len(_inference_jobs()) == 1
    clear_model_cache()


def test_a_job_that_finds_no_model_keeps_its_scans_waiting(users, active_model, run_job):
    patient = patient_for(users.clinician_a)
    outcome = scan_upload(
        patient=patient,
        uploaded_by=users.clinician_a,
        task=TASK,
        files=[upload("a.png", chest_png())],
    )
    model_version_retire(version=active_model, user=users.model_admin)
    clear_model_cache()
    job = run_job(outcome.job)
    assert job.status == Job.Status.SUCCEEDED
    assert "wait" in job.result["summary"] and job.result["awaiting_model"] == 1
    assert Scan.objects.get().awaiting_model_since is not None
    assert Prediction.objects.count() == 0
    # Back in service: queued again, for the model the clinician asked for.
    ModelVersion.objects.filter(pk=active_model.pk).update(status="active")
    (again,) = scans_awaiting_model_queue()
    assert again.params["task"] == TASK
    assert run_job(again).status == Job.Status.SUCCEEDED
    assert Prediction.objects.count() == 1


def test_a_scan_asked_of_a_model_waits_for_that_model(users, tiny_artifact):
    """A clinician who chose a model gets that model's answer, never another task's."""
    patient = patient_for(users.clinician_a)
    scan_upload(
        patient=patient,
        uploaded_by=users.clinician_a,
        task="diagnosis.other",
        files=[upload("a.png", chest_png())],
    )
    register_version(users, tiny_artifact, activate=True)
    assert scans_awaiting_model_queue() == []
    assert Scan.objects.get().awaiting_model_since is not None
    clear_model_cache()


def test_a_held_scan_confirmed_with_no_model_waits(users):

    patient = patient_for(users.clinician_a)
    outcome = scan_upload(
        patient=patient,
        uploaded_by=users.clinician_a,
        task="",
        files=[upload("a.png", chest_png())],
    )
    scan = outcome.scans[0]
    Scan.objects.filter(pk=scan.pk).update(held=True, awaiting_model_since=None)
    assert scan_hold_confirm(scan=scan, user=users.clinician_a) is None
    scan.refresh_from_db()
    assert not scan.held and scan.awaiting_model_since is not None
    assert _inference_jobs() == []


def test_received_studies_wait_for_the_first_model_when_none_is_in_service(settings):
    settings.MEDAI_DICOM_TASK = ""
    assert receiver_task() == ""
