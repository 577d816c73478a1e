"""Treatment jobs on the ml queue: train a trial's model version, score one patient."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from medai_site.jobs.exceptions import JobError
from medai_site.jobs.models import Job
from medai_site.jobs.runtime import Progress, job_row, job_task
from medai_site.registry.loader import LoadedModel, NoActiveModel, load_active_model
from treatment.ml.models import TreatmentModel
from treatment.models import CohortAnalysis, TreatmentAssessment
from treatment.services import assessment_store, cohort_analysis_store, task_name
from treatment.shadow import assessment_shadow_score


def _load(content: bytes) -> TreatmentModel:
    return TreatmentModel.from_bytes(content)


def active_treatment_model(trial: str) -> LoadedModel[TreatmentModel]:
    """The active model of ``trial`` from this worker's cache (JobError if none is active)."""
    try:
        return load_active_model(task_name(trial), _load)
    except NoActiveModel:
        raise JobError(
            f"No treatment model for {trial} is in service. Ask a model admin to train and "
            "activate one."
        ) from None


@job_task(kind="treatment.training", label="treatment model training", queue="ml")
def train_treatment_model(job: Job, progress: Progress) -> dict[str, Any]:
    """Evaluate and refit the job's treatment model on its trial and register it with the
    job's success (activated when asked and the task never had one in service)."""
    from medai_site.registry.services import model_version_publish, model_version_trained_summary
    from treatment.training import treatment_model_train

    trial = job.params.get("trial", "")
    try:
        trained = treatment_model_train(
            trial=trial,
            settings=job.params.get("config", {}),
            on_stage=lambda percent, stage: progress.update(percent, stage, force=True),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise JobError(f"The training settings are not valid: {exc}") from None
    progress.update(95, "Registering the model version", force=True)
    with progress.finishing() as outcome:
        version = model_version_publish(
            task=trained.task,
            artifact=trained.content,
            created_by=job.owner,
            activate=bool(job.params.get("activate")),
            params=trained.params,
            training_data=trained.training_data,
            metrics=trained.metrics,
            notes=f"Trained by job #{job.pk}.",
        )
        outcome.result = {
            "summary": model_version_trained_summary(version=version, finding=trained.finding),
            "url": reverse("admin:registry_modelversion_change", args=[version.pk]),
            "model_version": version.pk,
        }
    return outcome.result


@job_task(kind="treatment.assessment", label="treatment options", queue="ml", patient_data=True)
def assess_patient(job: Job, progress: Progress) -> dict[str, Any]:
    from treatment.ml.applicability import trial_distance
    from treatment.ml.bands import survival_bands
    from treatment.ml.effects import patient_effect
    from treatment.ml.explain import explain_patient, model_facts
    from treatment.ml.trials import PatientValidationError

    assessment = job_row(
        TreatmentAssessment.objects,
        job=job,
        param="assessment_id",
        missing="The assessment no longer exists.",
    )
    url = reverse("treatment:assessment", args=[assessment.patient_id, assessment.pk])
    if assessment.status == TreatmentAssessment.Status.DONE:
        return {"summary": "Already assessed.", "url": url}
    progress.update(5, "Loading the model in service", force=True)
    loaded = active_treatment_model(assessment.trial)
    progress.update(20, "Estimating outcomes under each treatment", force=True)
    try:
        effect = patient_effect(loaded.model, assessment.inputs, horizon=assessment.horizon)
        progress.update(60, "Explaining which features drive the difference", force=True)
        explanation = explain_patient(loaded.model, assessment.inputs, horizon=assessment.horizon)
        bands = survival_bands(loaded.model, assessment.inputs, effect.curve_times or [])
        applicability = trial_distance(
            loaded.model.trial_key,
            loaded.model.training.get("trial_distance"),
            assessment.inputs,
        )
    except PatientValidationError as exc:
        raise JobError(f"The patient's values were refused by the model: {exc}") from None
    except ValueError as exc:
        # resolve_horizon: a horizon beyond the trial's follow-up cannot be predicted.
        raise JobError(f"The model cannot answer this question: {exc}") from None
    facts = model_facts(loaded.model)
    with progress.finishing() as outcome:
        assessment_store(
            assessment=assessment,
            model_version=loaded.version,
            result={**effect.to_dict(), "bands": bands},
            explanation=explanation.to_dict(),
            facts=facts,
            applicability=applicability,
        )
        unlike = applicability["status"] == "unlike"
        outcome.result = {
            "summary": effect.recommendation.statement
            + (" Unlike the patients in this trial." if unlike else ""),
            "url": url,
            "assessment": assessment.pk,
        }
    # With the clinician's answer committed, a shadow model (if one runs) answers the same
    # question; it never fails or changes this job.
    assessment_shadow_score(
        version=loaded.version,
        assessment_id=assessment.pk,
        result=effect.to_dict(),
        inputs=assessment.inputs,
        horizon=assessment.horizon,
    )
    return outcome.result


def _analysis(job: Job) -> CohortAnalysis:
    return job_row(
        CohortAnalysis.objects,
        job=job,
        param="analysis_id",
        missing="The analysis no longer exists.",
    )


@job_task(kind="treatment.cohort", label="cohort analysis", queue="ml")
def analyse_cohort(job: Job, progress: Progress) -> dict[str, Any]:
    from treatment.cohort import cohort_analysis
    from treatment.ml.trials import load_trial

    analysis = _analysis(job)
    url = reverse("treatment:cohort_detail", args=[analysis.pk])
    if analysis.status == CohortAnalysis.Status.DONE:
        return {"summary": "Already analysed.", "url": url}
    progress.update(5, "Loading the model in service", force=True)
    loaded = active_treatment_model(analysis.trial)
    progress.update(20, f"Loading the {analysis.trial} trial", force=True)
    data = load_trial(analysis.trial)
    seed = int(((loaded.version.params or {}).get("config") or {}).get("seed", 0))
    progress.update(40, "Predicting each patient's benefit and the Qini curve", force=True)
    try:
        result = cohort_analysis(loaded.model, data, analysis.covariate, analysis.horizon, seed)
    except (KeyError, ValueError) as exc:
        raise JobError(f"The model cannot answer this question: {exc}") from None
    with progress.finishing() as outcome:
        cohort_analysis_store(analysis=analysis, result=result, model_version=loaded.version)
        q = result["qini"][0]["qini_coefficient"] if result["qini"] else None
        outcome.result = {
            "summary": f"Analysed {result['n']} patients"
            + (f"; Qini coefficient {q:+.3f}." if q is not None else "."),
            "url": url,
            "analysis": analysis.pk,
        }
    return outcome.result


@job_task(kind="treatment.genomics", label="genomic profile", queue="ml")
def analyse_genomics_job(job: Job, progress: Progress) -> dict[str, Any]:
    from treatment.ml.genomics import analyse_genomics

    analysis = _analysis(job)
    url = reverse("treatment:cohort_detail", args=[analysis.pk])
    if analysis.status == CohortAnalysis.Status.DONE:
        return {"summary": "Already analysed.", "url": url}
    p = analysis.params
    progress.update(10, "Fitting the prognosis model and cross-validating", force=True)
    result = analyse_genomics(
        n_splits=int(p.get("n_splits", 5)),
        n_repeats=int(p.get("n_repeats", 2)),
        seed=int(p.get("seed", 0)),
    ).to_dict()
    with progress.finishing() as outcome:
        cohort_analysis_store(analysis=analysis, result=result)
        d = result["comparison"]
        outcome.result = {
            "summary": f"Genes add {d['difference_mean']:+.3f} C-index "
            f"(SD {d['difference_sd']:.3f}) over clinical variables.",
            "url": url,
            "analysis": analysis.pk,
        }
    return outcome.result
