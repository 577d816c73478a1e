"""Every write in treatment: training runs per trial, assessments, and clinicians' plans."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import transaction

from medai_site.audit.models import AuditEvent
from medai_site.audit.services import audit_record
from medai_site.jobs.models import Job
from medai_site.jobs.services import job_create
from medai_site.patients.models import Patient
from treatment.ml.models import ModelConfig
from treatment.ml.trials import TRIALS, PatientValidationError, validate_patient
from treatment.models import CohortAnalysis, TreatmentAssessment, TreatmentPlan

if TYPE_CHECKING:
    from django.contrib.auth.models import User

MODEL_KINDS = ("cox", "rsf", "svm")


def task_name(trial: str) -> str:
    """The model-registry task of ``trial``'s treatment model."""
    return f"treatment.{trial}"


def model_train_start(
    *,
    trial: str,
    kind: str,
    user: User,
    activate: bool = False,
    config: dict[str, Any] | None = None,
    request: Any = None,
) -> Job:
    """Queue evaluation + refit of a ``kind`` model on ``trial`` (ml queue); the run registers a
    model version, activated when ``activate``. ValueError on an unknown trial or kind."""
    if trial not in TRIALS:
        raise ValueError(f"Unknown trial {trial!r}.")
    settings = {"kind": kind, **(config or {})}
    if kind not in MODEL_KINDS:
        raise ValueError(f"Unknown model kind {kind!r}.")
    try:
        ModelConfig(**settings)  # reject bad settings before anything is queued
    except TypeError as exc:
        raise ValueError(f"Unknown model setting: {exc}") from None
    with transaction.atomic():
        job = job_create(
            kind="treatment.training",
            owner=user,
            title=f"Train {kind} treatment model on {trial}",
            params={"trial": trial, "config": settings, "activate": activate},
        )
    return job


def assessment_start(
    *,
    patient: Patient,
    trial: str,
    inputs: dict[str, Any],
    horizon: float | None,
    user: User,
    request: Any = None,
) -> TreatmentAssessment:
    """Validate ``inputs`` for ``trial`` (PatientValidationError naming each bad field), then
    create a pending assessment and the job that scores it with the active model."""
    from medai_site.registry.selectors import model_version_active

    if trial not in TRIALS:
        raise PatientValidationError({"trial": f"Unknown trial {trial!r}."})
    errors: dict[str, str] = {}
    try:
        clean = validate_patient(trial, inputs)
    except PatientValidationError as exc:
        errors.update(exc.errors)
    # Checked here as well as in the job so the clinician hears it on the form, not later.
    active = model_version_active(task=task_name(trial))
    max_time = (active.training_data or {}).get("max_time") if active else None
    unit = TRIALS[trial].survival.time_unit
    if horizon is not None and not horizon > 0:
        errors["horizon"] = "The horizon must be a positive time."
    elif horizon is not None and max_time and horizon > max_time:
        errors["horizon"] = (
            f"The model has follow-up to {max_time:g} {unit} only; choose a horizon up to that."
        )
    if errors:
        raise PatientValidationError(errors)
    with transaction.atomic():
        assessment = TreatmentAssessment.objects.create(
            patient=patient, trial=trial, inputs=clean, horizon=horizon, created_by=user
        )
        job = job_create(
            kind="treatment.assessment",
            owner=user,
            # No patient identifier in the title (staff see titles); the patient is job.patient.
            title=f"Treatment options ({TRIALS[trial].key})",
            params={"assessment_id": assessment.pk},
            patient=patient,
            target=assessment,
        )
        assessment.job = job
        assessment.save(update_fields=["job"])
    return assessment


def assessment_store(
    *,
    assessment: TreatmentAssessment,
    model_version: Any,
    result: dict[str, Any],
    explanation: dict[str, Any],
    facts: dict[str, Any],
    applicability: dict[str, Any] | None = None,
) -> TreatmentAssessment:
    """Write a finished assessment's results (called inside the job's finishing transaction);
    a second call for a done assessment changes nothing."""
    locked = TreatmentAssessment.objects.select_for_update().get(pk=assessment.pk)
    if locked.status == TreatmentAssessment.Status.DONE:
        return locked
    locked.model_version = model_version
    locked.result = result
    locked.explanation = explanation
    locked.facts = facts
    locked.applicability = applicability or {}
    locked.status = TreatmentAssessment.Status.DONE
    locked.save(
        update_fields=["model_version", "result", "explanation", "facts", "applicability", "status"]
    )
    return locked


def plan_record(
    *,
    assessment: TreatmentAssessment,
    arm: int,
    note: str,
    user: User,
    request: Any = None,
) -> TreatmentPlan:
    """Record the clinician's chosen arm for a finished assessment; audited. ValueError when
    the assessment has no results or the arm is not one of its arms."""
    labels = assessment.arm_labels
    if assessment.status != TreatmentAssessment.Status.DONE or not labels:
        raise ValueError("This assessment has no results yet.")
    if not 0 <= arm < len(labels):
        raise ValueError(f"Arm {arm} is not one of this trial's arms.")
    with transaction.atomic():
        plan = TreatmentPlan.objects.create(
            patient=assessment.patient,
            assessment=assessment,
            arm=arm,
            arm_label=labels[arm],
            note=note.strip(),
            created_by=user,
        )
        recommended = assessment.result.get("recommendation", {}).get("arm")
        audit_record(
            action=AuditEvent.Action.RECORD_CHANGED,
            actor=user,
            request=request,
            obj=plan,
            patient=assessment.patient,
            detail={
                "treatment_plan": labels[arm],
                "assessment": assessment.pk,
                "model_version": assessment.model_version_id,
                "follows_model": recommended == arm,
            },
        )
    return plan


def cohort_analysis_start(
    *, trial: str, covariate: str, horizon: float | None, user: User, request: Any = None
) -> CohortAnalysis:
    """Create a pending cohort analysis of ``trial``'s active model against ``covariate`` and
    the ml job that computes it. ValueError naming the problem on an unknown trial/covariate or
    a horizon beyond the model's follow-up."""
    from medai_site.registry.selectors import model_version_active

    if trial not in TRIALS:
        raise ValueError(f"Unknown trial {trial!r}.")
    definition = TRIALS[trial]
    if covariate not in {c.name for c in definition.covariates}:
        raise ValueError(f"{covariate!r} is not a covariate of {trial}.")
    active = model_version_active(task=task_name(trial))
    if active is None:
        raise ValueError(f"No treatment model for {trial} is in service.")
    max_time = (active.training_data or {}).get("max_time")
    if horizon is not None and not max_time:
        # Versions registered without training data: the trial's own longest follow-up.
        from treatment.ml.trials import load_trial

        max_time = float(load_trial(definition).time.max())
    if horizon is not None and (not horizon > 0 or (max_time and horizon > max_time)):
        raise ValueError(
            f"The horizon must be positive and at most the model's follow-up ({max_time:g} "
            f"{definition.survival.time_unit})."
            if max_time
            else "The horizon must be a positive time."
        )
    with transaction.atomic():
        analysis = CohortAnalysis.objects.create(
            kind=CohortAnalysis.Kind.COHORT,
            trial=trial,
            covariate=covariate,
            horizon=horizon,
            created_by=user,
        )
        analysis.job = job_create(
            kind="treatment.cohort",
            owner=user,
            title=f"Cohort analysis of {trial} by {covariate}",
            params={"analysis_id": analysis.pk},
            target=analysis,
        )
        analysis.save(update_fields=["job"])
    return analysis


def genomics_analysis_start(
    *, user: User, n_splits: int = 5, n_repeats: int = 2, seed: int = 0
) -> CohortAnalysis:
    """Create a pending genomics analysis (breast-cancer prognosis model, clinical vs genes on
    ``n_repeats`` x ``n_splits`` seeded folds) and the ml job that computes it."""
    if not (2 <= n_splits <= 10 and 1 <= n_repeats <= 10):
        raise ValueError("Use 2-10 folds and 1-10 repeats.")
    with transaction.atomic():
        analysis = CohortAnalysis.objects.create(
            kind=CohortAnalysis.Kind.GENOMICS,
            params={"n_splits": n_splits, "n_repeats": n_repeats, "seed": seed},
            created_by=user,
        )
        analysis.job = job_create(
            kind="treatment.genomics",
            owner=user,
            title="Genomic profile of the breast-cancer cohort",
            params={"analysis_id": analysis.pk},
            target=analysis,
        )
        analysis.save(update_fields=["job"])
    return analysis


def cohort_analysis_store(
    *, analysis: CohortAnalysis, result: dict[str, Any], model_version: Any = None
) -> CohortAnalysis:
    """Write a finished analysis's result (inside the job's finishing transaction); a second
    call for a done analysis changes nothing."""
    locked = CohortAnalysis.objects.select_for_update().get(pk=analysis.pk)
    if locked.status == CohortAnalysis.Status.DONE:
        return locked
    locked.result = result
    locked.model_version = model_version
    locked.status = CohortAnalysis.Status.DONE
    locked.save(update_fields=["result", "model_version", "status"])
    return locked
