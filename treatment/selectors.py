"""Every read in treatment: trials in service, a patient's assessments and plans."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from medai_site.jobs.models import Job
from medai_site.patients.models import Patient
from medai_site.registry.models import ModelVersion
from treatment.ml.trials import TRIALS, TrialDefinition
from treatment.models import CohortAnalysis, TreatmentAssessment, TreatmentPlan


def trials_in_service() -> list[tuple[TrialDefinition, ModelVersion]]:
    """Trials whose treatment model has an active version, in TRIALS order."""
    active = {
        v.task: v
        for v in ModelVersion.objects.filter(
            task__in=[f"treatment.{key}" for key in TRIALS], status=ModelVersion.Status.ACTIVE
        )
    }
    return [(d, active[f"treatment.{k}"]) for k, d in TRIALS.items() if f"treatment.{k}" in active]


def assessment_get(*, patient: Patient, pk: int) -> TreatmentAssessment:
    """One assessment of ``patient`` (the caller has already scoped the patient to the user);
    TreatmentAssessment.DoesNotExist for any other patient's."""
    return TreatmentAssessment.objects.select_related("model_version", "job", "created_by").get(
        patient=patient, pk=pk
    )


def assessment_list(*, patient: Patient) -> QuerySet[TreatmentAssessment]:
    """The patient's assessments, newest first."""
    return TreatmentAssessment.objects.filter(patient=patient).select_related(
        "model_version", "created_by"
    )


def assessment_export_list(*, patient: Patient) -> list[TreatmentAssessment]:
    """The patient's done assessments with their model versions and plans, oldest first (the
    caller has already scoped the patient to the user)."""
    return list(
        TreatmentAssessment.objects.filter(
            patient=patient, status=TreatmentAssessment.Status.DONE, model_version__isnull=False
        )
        .select_related("model_version")
        .prefetch_related("plans")
        .order_by("created_at", "pk")
    )


def plan_list(*, patient: Patient) -> QuerySet[TreatmentPlan]:
    """The patient's recorded plans with the assessment and model version behind each."""
    return TreatmentPlan.objects.filter(patient=patient).select_related(
        "assessment__model_version", "created_by"
    )


def training_jobs(*, limit: int = 20) -> QuerySet[Job]:
    """Recent treatment-model training runs, newest first."""
    return Job.objects.filter(kind="treatment.training").select_related("owner")[:limit]


def prefill_from_facts(definition: TrialDefinition, facts: dict[str, Any]) -> dict[str, Any]:
    """Form initial values for ``definition``'s covariates from a patient's clinical facts
    (only the covariates the record has; the clinician fills or corrects the rest)."""
    initial: dict[str, Any] = {}
    for cov in definition.covariates:
        value = facts.get(cov.name)
        if value in (None, ""):
            continue
        if cov.kind == "numeric":
            initial[cov.name] = value
        elif cov.kind == "binary":
            initial[cov.name] = _choice(value, (0, 1))
        else:
            initial[cov.name] = _choice(value, cov.levels)
    return {k: v for k, v in initial.items() if v is not None}


def _choice(value: Any, levels: tuple[Any, ...]) -> str | None:
    # Records store 1.0 where the trial table says 1: match by number when both are numbers.
    for level in levels:
        if str(level) == str(value):
            return str(level)
        try:
            if float(level) == float(value):
                return str(level)
        except (TypeError, ValueError):
            continue
    return None


def cohort_analysis_list() -> QuerySet[CohortAnalysis]:
    """Cohort and genomics analyses (shared among researchers), newest first."""
    return CohortAnalysis.objects.select_related("model_version", "created_by", "job")


def cohort_analysis_get(*, pk: int) -> CohortAnalysis:
    """One analysis (aggregate trial data, no patient scoping); DoesNotExist if unknown."""
    return CohortAnalysis.objects.select_related("model_version", "created_by", "job").get(pk=pk)


def assessment_plans(*, assessment: TreatmentAssessment) -> list[TreatmentPlan]:
    """The plans recorded from an assessment, with who recorded each."""
    return list(assessment.plans.select_related("created_by"))
