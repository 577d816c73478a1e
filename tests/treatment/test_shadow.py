"""Treatment models in shadow: a patient's question, once answered by the version in service,
is answered by the shadow model on the same inputs and horizon; stored once, never failing
the assessment, never on the clinician's pages or FHIR export."""

from __future__ import annotations

import pytest
from django.urls import reverse

from medai_site.jobs.models import Job
from medai_site.registry.models import ModelVersion, ShadowResult
from medai_site.registry.services import model_version_register
from medai_site.registry.shadow import model_version_shadow_start, shadow_models_clear
from tests.platform.factories import JobFactory, UserFactory
from tests.support.clients import login
from tests.treatment.conftest import TASK
from tests.treatment.test_services import assess

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="session")
def stronger_ridge_artifact() -> bytes:
    from treatment.ml.models import ModelConfig, fit_treatment_model
    from treatment.ml.trials import load_trial

    config = ModelConfig(kind="cox", cox_alpha=50.0, n_bootstrap=8)
    return fit_treatment_model(load_trial("gbsg2"), config).to_bytes()


@pytest.fixture
def shadowed(users, active_treatment, stronger_ridge_artifact):
    shadow_models_clear()
    challenger = model_version_register(
        task=TASK, artifact=stronger_ridge_artifact, created_by=users.model_admin
    )
    ModelVersion.objects.filter(pk=challenger.pk).update(
        approved_by=UserFactory(username="second_admin")
    )
    challenger.refresh_from_db()
    model_version_shadow_start(version=challenger, user=users.model_admin, reason="ridge")
    yield active_treatment, challenger
    shadow_models_clear()


def test_the_shadow_answers_the_same_question_once(users, shadowed, gbsg2_facts, run_job):
    active, challenger = shadowed
    assessment = assess(users, gbsg2_facts, run_job)
    assert assessment.job.status == Job.Status.SUCCEEDED
    result = ShadowResult.objects.get(shadow_version=challenger)
    assert (result.item_type, result.item_id) == ("treatment.assessment", str(assessment.pk))
    recommended = assessment.result["recommendation"]
    assert result.active_label == recommended["label"]
    assert result.active_output["arms"] == {
        a["label"]: a["value"] for a in assessment.result["arms"]
    }
    assert set(result.shadow_output["arms"]) == {"No hormonal therapy", "Tamoxifen"}
    # A heavier ridge shrinks the estimates: another model, so other per-arm values.
    assert result.shadow_output["arms"] != result.active_output["arms"]
    assert result.agrees == (result.shadow_label == result.active_label)
    # A redelivered job finds the assessment done and stores nothing twice.
    again = JobFactory(
        kind="treatment.assessment",
        title="again",
        owner=users.clinician_a,
        params=assessment.job.params,
        patient=assessment.patient,
    )
    run_job(again)
    assert ShadowResult.objects.count() == 1


def test_a_failing_shadow_never_fails_the_assessment(
    users, shadowed, gbsg2_facts, run_job, monkeypatch
):
    active, challenger = shadowed

    def broken(*args, **kwargs):
        raise RuntimeError("shadow refused the patient")

    monkeypatch.setattr("treatment.shadow._score", broken)
    assessment = assess(users, gbsg2_facts, run_job)
    assert assessment.job.status == Job.Status.SUCCEEDED
    assert assessment.model_version == active
    assert not ShadowResult.objects.exists()
    assert challenger.shadows.get().failures == 1


def test_clinicians_never_see_the_shadow(users, shadowed, gbsg2_facts, run_job):
    active, challenger = shadowed
    assessment = assess(users, gbsg2_facts, run_job)
    result = ShadowResult.objects.get()
    client = login(users.clinician_a)
    patient = assessment.patient
    for url in (
        reverse("treatment:patient_options", args=[patient.pk]),
        reverse("treatment:assessment", args=[patient.pk, assessment.pk]),
        reverse("treatment:patient_fhir", args=[patient.pk]),
        reverse("jobs:status", args=[assessment.job.pk]),
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        body = response.content.decode()
        assert str(challenger) not in body and challenger.sha256 not in body, url
        for value in result.shadow_output["arms"].values():
            assert f"{value:.4f}" not in body and f"{100 * value:.1f}" not in body, url
