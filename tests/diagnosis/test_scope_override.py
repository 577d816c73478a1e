"""Score anyway when things are not as they were: a model file missing or corrupt, a version
retired since it answered, a scan whose image is gone (a clear 409, nothing written); a long
series scored by a job, idempotent and audited once; the viewer shows the version's card."""

from __future__ import annotations

import html

import pytest
from django.core.files.base import ContentFile

from diagnosis.artifacts import artifact_check
from diagnosis.model_card import imaging_artifact_facts
from diagnosis.models import Prediction
from medai_site.audit.models import AuditEvent
from medai_site.jobs.models import Job
from medai_site.registry.loader import clear_model_cache
from medai_site.registry.models import ModelVersion

pytestmark = pytest.mark.django_db

REASON = {"reason": "Lung apices visible on the scout"}


def url(prediction: Prediction) -> str:
    return f"/diagnosis/scans/{prediction.scan_id}/score-anyway/"


def untouched(prediction: Prediction) -> None:
    prediction.refresh_from_db()
    assert prediction.override_at is None and prediction.override_by is None
    assert not prediction.probabilities and not prediction.scored
    assert not AuditEvent.objects.filter(detail__has_key="scope_override").exists()


def test_missing_model_file_is_a_clear_409_and_writes_nothing(users, mixed, client_for):
    _, _, _, ct = mixed
    version = ct.model_version
    version.artifact.storage.delete(version.artifact.name)
    clear_model_cache()
    response = client_for(users.clinician_a).post(url(ct), REASON)
    assert response.status_code == 409
    assert b"model file" in response.content and b"missing" in response.content
    untouched(ct)


def test_corrupt_model_file_is_a_clear_409_and_writes_nothing(users, mixed, client_for):
    _, _, _, ct = mixed
    version = ct.model_version
    name = version.artifact.name
    version.artifact.storage.delete(name)
    version.artifact.storage.save(name, ContentFile(b"not a model at all"))
    clear_model_cache()
    response = client_for(users.clinician_a).post(url(ct), REASON)
    assert response.status_code == 409
    assert b"cannot be loaded" in response.content
    untouched(ct)


def test_missing_scan_image_is_a_clear_409(users, mixed, client_for):
    _, _, _, ct = mixed
    ct.scan.display.storage.delete(ct.scan.display.name)
    response = client_for(users.clinician_a).post(url(ct), REASON)
    assert response.status_code == 409 and b"image file is missing" in response.content
    untouched(ct)


def test_version_retired_since_scores_nothing(users, mixed, client_for):
    _, _, _, ct = mixed
    ModelVersion.objects.filter(pk=ct.model_version_id).update(status="retired")
    response = client_for(users.clinician_a).post(url(ct), REASON)
    assert response.status_code == 409 and b"retired" in response.content
    untouched(ct)


def test_long_series_is_scored_by_a_job_once(users, mixed, client_for, settings, run_job):
    _, _, _, ct = mixed
    settings.DIAGNOSIS_OVERRIDE_SYNC_FRAMES = 0  # every scan counts as a long series
    client = client_for(users.clinician_a)
    first = client.post(url(ct), REASON)
    second = client.post(url(ct), {"reason": "twice"})
    assert first.status_code == second.status_code == 302
    jobs = Job.objects.filter(kind="diagnosis.override")
    assert jobs.count() == 1
    job = jobs.get()
    # The clinical reason waits on the prediction, not in the job that staff can see.
    assert "Lung" not in str(job.params) and "Lung" not in job.title
    ct.refresh_from_db()
    assert not ct.overridden and not ct.scored
    viewer = html.unescape(client.get(f"/diagnosis/scans/{ct.scan_id}/").content.decode())
    assert f"/jobs/{job.pk}/" in viewer  # its live progress on the viewer
    run_job(job)
    assert job.status == "succeeded", job.error
    ct.refresh_from_db()
    assert ct.overridden and ct.scored and ct.override_by == users.clinician_a
    assert ct.override_reason == REASON["reason"]
    # A redelivered task scores nothing twice and audits nothing twice.
    Job.objects.filter(pk=job.pk).update(status="queued", attempts=0)
    run_job(job)
    assert AuditEvent.objects.filter(detail__has_key="scope_override").count() == 1
    assert client.post(url(ct), REASON).status_code == 302
    assert Job.objects.filter(kind="diagnosis.override").count() == 1


def test_long_series_job_with_a_broken_model_fails_clearly(
    users, mixed, client_for, settings, run_job
):
    _, _, _, ct = mixed
    settings.DIAGNOSIS_OVERRIDE_SYNC_FRAMES = 0
    client_for(users.clinician_a).post(url(ct), REASON)
    job = Job.objects.get(kind="diagnosis.override")
    version = ct.model_version
    name = version.artifact.name
    version.artifact.storage.delete(name)
    version.artifact.storage.save(name, ContentFile(b"garbage"))
    clear_model_cache()
    run_job(job)
    assert job.status == "failed" and "cannot be loaded" in job.error
    ct.refresh_from_db()
    assert not ct.overridden and not ct.scored


def test_viewer_shows_the_model_card_with_what_it_reads(users, mixed, client_for):
    _, _, chest, ct = mixed
    version = ct.model_version
    # As training and import_model_version record them from the artifact.
    with version.artifact.open("rb") as handle:
        facts = imaging_artifact_facts(artifact_check(handle.read()))
    version.metrics = {**version.metrics, **facts}
    version.save(update_fields=["metrics"])
    client = client_for(users.clinician_a)
    for prediction in (ct, chest):
        page = html.unescape(client.get(f"/diagnosis/scans/{prediction.scan_id}/").content.decode())
        card = page.split("data-model-card", 1)[1].split("</details>", 1)[0]
        assert 'data-card-section="contract"' in card
        assert "Reads chest radiographs (CR/DX, chest)" in card
        assert 'data-card-section="detector"' in card and "false flags" in card
    assert "data-model-card open" in html.unescape(
        client.get(f"/diagnosis/scans/{ct.scan_id}/").content.decode()
    )
