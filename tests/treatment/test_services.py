"""Assessments, plans and training runs through the services and the real job functions."""

from __future__ import annotations

import pytest

from medai_site.audit.models import AuditEvent
from medai_site.jobs.kinds import get_kind
from medai_site.jobs.models import Job
from medai_site.registry.loader import clear_model_cache
from medai_site.registry.models import ModelVersion
from medai_site.registry.selectors import model_version_headline_metrics
from tests.platform.factories import patient_for
from treatment.ml.models import TreatmentModel
from treatment.ml.trials import PatientValidationError
from treatment.models import TreatmentAssessment, TreatmentPlan
from treatment.services import assessment_start, model_train_start, plan_record

pytestmark = pytest.mark.django_db

COVARIATES = ("age", "menostat", "tsize", "tgrade", "pnodes", "progrec", "estrec")


def inputs(facts: dict, **changes: object) -> dict:
    return {**{k: facts[k] for k in COVARIATES}, **changes}


def assess(users, facts, run_job, **changes) -> TreatmentAssessment:
    patient = patient_for(users.clinician_a, clinical_facts=facts)
    assessment = assessment_start(
        patient=patient,
        trial="gbsg2",
        inputs=inputs(facts, **changes),
        horizon=None,
        user=users.clinician_a,
    )
    run_job(assessment.job)
    assessment.refresh_from_db()
    return assessment


def test_invalid_inputs_name_each_field_and_queue_nothing(users, active_treatment, gbsg2_facts):
    patient = patient_for(users.clinician_a)
    bad = inputs(gbsg2_facts, age=95, tgrade="IV")
    del bad["pnodes"]
    with pytest.raises(PatientValidationError) as raised:
        assessment_start(
            patient=patient, trial="gbsg2", inputs=bad, horizon=None, user=users.clinician_a
        )
    assert set(raised.value.errors) == {"age", "tgrade", "pnodes"}
    assert "between 21 and 80" in raised.value.errors["age"]
    assert not TreatmentAssessment.objects.exists()
    # Only the held-out validation the fixture's model version queued when registered.
    assert not Job.objects.exclude(kind="registry.validate").exists()


def test_assessment_job_stores_effects_explanation_and_facts(
    users, active_treatment, gbsg2_facts, run_job
):
    assessment = assess(users, gbsg2_facts, run_job)
    job = assessment.job
    assert get_kind("treatment.assessment").queue == "ml"
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert assessment.status == TreatmentAssessment.Status.DONE
    assert assessment.model_version == active_treatment
    result = assessment.result
    assert [a["label"] for a in result["arms"]] == ["No hormonal therapy", "Tamoxifen"]
    assert len(result["bands"]["low"]) == 2
    # Bands surround the curve they belong to.
    for arm, low, high in zip(result["arms"], result["bands"]["low"], result["bands"]["high"]):
        assert all(lo <= s + 1e-9 and s <= hi + 1e-9 for lo, s, hi in zip(low, arm["curve"], high))
    assert result["recommendation"]["statement"] == job.result["summary"]
    assert assessment.explanation["contributions"]
    assert assessment.facts["trial"]["key"] == "gbsg2"
    assert job.result["url"].endswith(f"/assessments/{assessment.pk}/")


def test_same_inputs_and_version_give_identical_results(
    users, active_treatment, gbsg2_facts, run_job
):
    first = assess(users, gbsg2_facts, run_job)
    clear_model_cache()  # a fresh worker loading the artifact again
    second = assess(users, gbsg2_facts, run_job)
    assert first.model_version_id == second.model_version_id
    assert first.result == second.result
    assert first.explanation == second.explanation


def test_assessment_fails_clearly_without_a_model_in_service(users, gbsg2_facts, run_job):
    assessment = assess(users, gbsg2_facts, run_job)
    assert assessment.job.status == Job.Status.FAILED
    assert "No treatment model for gbsg2 is in service" in assessment.job.error
    assert assessment.status == TreatmentAssessment.Status.PENDING


def test_horizon_beyond_follow_up_fails_with_the_reason(
    users, active_treatment, gbsg2_facts, run_job
):
    patient = patient_for(users.clinician_a)
    assessment = assessment_start(
        patient=patient,
        trial="gbsg2",
        inputs=inputs(gbsg2_facts),
        horizon=50_000,
        user=users.clinician_a,
    )
    job = run_job(assessment.job)
    assert job.status == Job.Status.FAILED
    assert "horizon must be between" in job.error


def test_horizon_beyond_the_models_follow_up_is_refused_on_the_form(
    users, active_treatment, gbsg2_facts
):
    active_treatment.training_data = {"max_time": 2659.0}
    active_treatment.save(update_fields=["training_data"])
    patient = patient_for(users.clinician_a)
    with pytest.raises(PatientValidationError) as raised:
        assessment_start(
            patient=patient,
            trial="gbsg2",
            inputs=inputs(gbsg2_facts, age=10),
            horizon=3000,
            user=users.clinician_a,
        )
    assert set(raised.value.errors) == {"age", "horizon"}
    assert "2659 days" in raised.value.errors["horizon"]
    # Only the held-out validation the fixture's model version queued when registered.
    assert not Job.objects.exclude(kind="registry.validate").exists()


def test_plan_is_recorded_and_audited(users, active_treatment, gbsg2_facts, run_job):
    assessment = assess(users, gbsg2_facts, run_job)
    plan = plan_record(assessment=assessment, arm=1, note=" Discussed. ", user=users.clinician_a)
    assert (plan.arm_label, plan.note, plan.patient) == (
        "Tamoxifen",
        "Discussed.",
        assessment.patient,
    )
    event = AuditEvent.objects.get(action=AuditEvent.Action.RECORD_CHANGED)
    assert event.actor == users.clinician_a
    assert event.patient_id == assessment.patient_id
    assert event.detail["treatment_plan"] == "Tamoxifen"
    assert event.detail["model_version"] == active_treatment.pk
    with pytest.raises(ValueError):
        plan_record(assessment=assessment, arm=5, note="", user=users.clinician_a)
    assert TreatmentPlan.objects.count() == 1


def test_plan_needs_a_finished_assessment(users, gbsg2_facts, run_job):
    pending = assess(users, gbsg2_facts, run_job)  # no model in service: stays pending
    with pytest.raises(ValueError, match="no results"):
        plan_record(assessment=pending, arm=0, note="", user=users.clinician_a)


def test_training_run_registers_and_activates_a_version(users, run_job):
    job = model_train_start(
        trial="gbsg2",
        kind="cox",
        activate=True,
        config={"n_bootstrap": 2},
        user=users.model_admin,
    )
    assert get_kind("treatment.training").queue == "ml"
    run_job(job)
    assert job.status == Job.Status.SUCCEEDED, job.error
    version = ModelVersion.objects.get(task="treatment.gbsg2")
    assert version.status == ModelVersion.Status.ACTIVE
    # PostgreSQL's jsonb does not keep key order: what matters is that the only scalars, the
    # ones the registry's cards show, are the held-out headline scores.
    shown = {name for name, _ in model_version_headline_metrics(version, limit=20)}
    assert {"harrell_c", "uno_c", "ibs"} <= shown
    assert all(n in {"harrell_c", "uno_c", "ibs"} or n.startswith("policy_") for n in shown)
    assert 0.5 < version.metrics["harrell_c"] < 0.9
    assert any(k.startswith("policy_") for k in version.metrics)
    with version.artifact.open("rb") as handle:
        model = TreatmentModel.from_bytes(handle.read(), expected_sha256=version.sha256)
    assert model.training["n"] == 686  # refit on every patient, not the training split
    assert version.training_data["max_time"] == model.training["max_time"]


def test_training_rejects_unknown_settings(users):
    with pytest.raises(ValueError):
        model_train_start(trial="gbsg2", kind="magic", user=users.model_admin)
    with pytest.raises(ValueError):
        model_train_start(trial="nope", kind="cox", user=users.model_admin)
    with pytest.raises(ValueError, match="Unknown model setting"):
        model_train_start(trial="gbsg2", kind="cox", config={"trees": 5}, user=users.model_admin)
    # Only the held-out validation the fixture's model version queued when registered.
    assert not Job.objects.exclude(kind="registry.validate").exists()
