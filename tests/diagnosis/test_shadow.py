"""Imaging models in shadow: the inference job's scans go through the shadow version on the
same frames after the clinician's results are committed; shadow answers are stored once per
scan, never fail the job, and never reach a clinician's page, API, export or DICOM object."""

from __future__ import annotations

import json
import re

import pytest
from django.urls import reverse

from diagnosis.models import Prediction
from diagnosis.services import review_record, scan_upload
from medai_site.jobs.models import Job
from medai_site.registry.models import ModelVersion, ShadowResult
from medai_site.registry.shadow import model_version_shadow_start, shadow_models_clear
from tests.diagnosis.files import chest_png, pydicom_bytes, upload
from tests.diagnosis.model_versions import TASK, register_version
from tests.platform.factories import JobFactory, UserFactory, patient_for
from tests.support.clients import login

pytestmark = pytest.mark.django_db

# The shadow's class names carry this marker, so any page showing a shadow answer shows it.
MARK = "shadowonly"


def shadow_artifact(content: bytes) -> bytes:
    """The tiny model with another temperature (other probabilities) and class names no
    active version has."""
    from diagnosis.ml.artifact import artifact_bytes, load_artifact

    bundle = load_artifact(content)
    bundle.temperature = bundle.temperature * 3.0
    bundle.class_names = tuple(f"{c}-{MARK}" for c in bundle.class_names)
    return artifact_bytes(bundle)


@pytest.fixture
def shadowed(users, active_model, tiny_artifact):
    """The tiny model in service and an approved variant of it running in shadow."""
    shadow_models_clear()
    challenger = register_version(users, shadow_artifact(tiny_artifact), activate=False)
    ModelVersion.objects.filter(pk=challenger.pk).update(
        approved_by=UserFactory(username="second_admin")
    )
    challenger.refresh_from_db()
    model_version_shadow_start(
        version=challenger, user=users.model_admin, reason="check on live scans"
    )
    yield active_model, challenger
    shadow_models_clear()


def _upload(users, run_job, files):
    patient = patient_for(users.clinician_a)
    outcome = scan_upload(patient=patient, uploaded_by=users.clinician_a, task=TASK, files=files)
    job = run_job(outcome.job)
    assert job.status == Job.Status.SUCCEEDED, job.error
    return patient, job


def test_each_scored_scan_gets_one_shadow_answer_on_the_same_frames(users, shadowed, run_job):
    active, challenger = shadowed
    patient, job = _upload(
        users,
        run_job,
        [upload("chest.png", chest_png()), upload("mr.dcm", pydicom_bytes("emri_small.dcm"))],
    )
    predictions = {p.pk: p for p in Prediction.objects.filter(model_version=active)}
    scored = {pk for pk, p in predictions.items() if p.scored}
    results = ShadowResult.objects.filter(shadow_version=challenger)
    assert {int(r.item_id) for r in results} == scored and scored
    for result in results:
        prediction = predictions[int(result.item_id)]
        assert result.item_type == "diagnosis.prediction" and result.family == "imaging"
        assert result.active_version == active
        assert result.active_label == prediction.predicted_class
        assert result.active_output["probabilities"] == prediction.probabilities
        # The shadow read the same frames: its class names, its own calibrated probabilities.
        assert set(result.shadow_output["probabilities"]) == {
            f"normal-{MARK}",
            f"pneumonia-{MARK}",
        }
        assert sum(result.shadow_output["probabilities"].values()) == pytest.approx(1.0)
        assert not result.agrees  # other class names never agree
    # A second job for the same upload (a redelivery) stores nothing twice.
    again = JobFactory(
        kind="diagnosis.inference", title="again", owner=users.clinician_a, params=job.params
    )
    assert run_job(again).status == Job.Status.SUCCEEDED
    assert results.count() == len(scored)


def test_the_same_model_in_shadow_agrees_with_itself(users, active_model, tiny_artifact, run_job):
    # A shadow with the active version's artifact agrees on every scan, with the same
    # probabilities: the comparison is like for like (same frames, same preprocessing).
    shadow_models_clear()
    twin = register_version(users, tiny_artifact, activate=False)
    ModelVersion.objects.filter(pk=twin.pk).update(approved_by=UserFactory(username="second"))
    model_version_shadow_start(version=twin, user=users.model_admin, reason="twin")
    _upload(users, run_job, [upload("chest.png", chest_png())])
    (result,) = ShadowResult.objects.all()
    assert result.agrees and result.shadow_label == result.active_label
    for name, p in result.active_output["probabilities"].items():
        assert result.shadow_output["probabilities"][name] == pytest.approx(p, abs=1e-6)
    shadow_models_clear()


def test_a_failing_shadow_never_fails_the_job_or_changes_its_answer(
    users, shadowed, run_job, monkeypatch
):
    active, challenger = shadowed

    def broken(*args, **kwargs):
        raise RuntimeError("shadow model exploded")

    monkeypatch.setattr("diagnosis.shadow._score", broken)
    patient, job = _upload(users, run_job, [upload("chest.png", chest_png())])
    prediction = Prediction.objects.get(model_version=active)
    assert prediction.scored and job.result["predictions"] == [prediction.pk]
    assert not ShadowResult.objects.exists()
    shadow = challenger.shadows.get()
    assert shadow.failures == 1 and "shadow model exploded" in shadow.last_error


def test_a_review_labels_the_shadow_answer(users, shadowed, run_job):
    active, challenger = shadowed
    _upload(users, run_job, [upload("chest.png", chest_png())])
    prediction = Prediction.objects.get(model_version=active)
    other = next(c for c in prediction.class_names if c != prediction.predicted_class)
    review_record(prediction=prediction, reviewer=users.clinician_a, label=other)
    result = ShadowResult.objects.get()
    assert result.clinician_label == other and result.labelled_at is not None


def test_shadow_answers_never_reach_clinicians(users, shadowed, run_job):
    active, challenger = shadowed
    patient, job = _upload(users, run_job, [upload("chest.png", chest_png())])
    prediction = Prediction.objects.get(model_version=active)
    result = ShadowResult.objects.get()
    assert MARK in result.shadow_label  # there is a shadow answer to leak
    review_record(prediction=prediction, reviewer=users.clinician_a, label="pneumonia")
    client = login(users.clinician_a)
    scan = prediction.scan
    pages = {
        "patient": reverse("patients:detail", args=[patient.pk]),
        "scans": reverse("diagnosis:patient_scans", args=[patient.pk]),
        "viewer": reverse("diagnosis:scan_detail", args=[scan.pk]),
        "worklist": reverse("diagnosis:worklist"),
        "monitoring": reverse("diagnosis:monitoring"),
        "job": reverse("jobs:detail", args=[job.pk]),
        "job status (API)": reverse("jobs:status", args=[job.pk]),
        "scan FHIR": reverse("diagnosis:scan_fhir", args=[scan.pk]),
        "patient FHIR": reverse("diagnosis:patient_fhir", args=[patient.pk]),
        "DICOM SR": reverse("diagnosis:prediction_sr", args=[prediction.pk]),
        "DICOM SC": reverse("diagnosis:prediction_sc", args=[prediction.pk]),
    }
    shadow_name = str(challenger).encode()
    for what, url in pages.items():
        response = client.get(url)
        assert response.status_code == 200, what
        body = b"".join(response.streaming_content) if response.streaming else response.content
        assert MARK.encode() not in body, what
        # The worklist's model-version filter lists every version of the task (it did before
        # shadows); no answer, row or export names the shadow version.
        answers = re.sub(rb"<select.*?</select>", b"", body, flags=re.S)
        assert shadow_name not in answers and challenger.sha256.encode() not in body, what
    # The active answer the clinician sees is the one stored before the shadow ran.
    viewer = client.get(pages["viewer"]).content.decode()
    assert str(active) in viewer
    fhir = json.loads(client.get(pages["scan FHIR"]).content)
    assert str(active.version) in json.dumps(fhir) and MARK not in json.dumps(fhir)
    prediction.refresh_from_db()
    assert prediction.probabilities == result.active_output["probabilities"]


def test_dashboard_shows_the_imaging_comparison_with_reviews(users, shadowed, run_job):
    active, challenger = shadowed
    _upload(users, run_job, [upload("chest.png", chest_png())])
    prediction = Prediction.objects.get(model_version=active)
    review_record(prediction=prediction, reviewer=users.clinician_a, label="pneumonia")
    page = login(users.model_admin).get(reverse("registry:shadow_dashboard", args=[challenger.pk]))
    body = page.content.decode()
    assert page.status_code == 200 and 'data-scored="1"' in body and 'data-labelled="1"' in body
    assert "Imaging: each scan" in body
    # Staff see no patient identifier: not the patient's name or MRN, not the file name.
    patient = prediction.scan.patient
    for identifier in (patient.mrn, patient.family_name, "chest.png"):
        assert identifier not in body
