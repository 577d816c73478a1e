"""Reads of the deterioration model: patients' latest scores and score history, and the
model's versions and training runs."""

from __future__ import annotations

from typing import Any

from django.db.models import OuterRef, QuerySet, Subquery

from medai_site.jobs.models import Job
from medai_site.registry.models import ModelVersion
from medai_site.registry.selectors import model_version_active
from remote_care.models import RiskScore
from remote_care.risk.services import RISK_TASK, RISK_TRAINING_KIND


def risk_latest_for(patient_ids: list[int]) -> dict[int, RiskScore]:
    """Each patient's latest score from the active version (absent when none)."""
    version = model_version_active(task=RISK_TASK)
    if version is None or not patient_ids:
        return {}
    newest = RiskScore.objects.filter(
        patient_id=OuterRef("patient_id"), model_version=version
    ).order_by("-taken_at")
    # One row per patient, picked in the database (the index on (patient, -taken_at) serves it).
    scores = (
        RiskScore.objects.filter(patient_id__in=patient_ids, model_version=version)
        .filter(pk=Subquery(newest.values("pk")[:1]))
        .select_related("model_version")
    )
    return {score.patient_id: score for score in scores}


def risk_history(*, patient: Any, since: Any = None) -> list[RiskScore]:
    """The patient's scores from the active version, oldest first."""
    version = model_version_active(task=RISK_TASK)
    if version is None:
        return []
    scores = RiskScore.objects.filter(patient=patient, model_version=version)
    if since is not None:
        scores = scores.filter(taken_at__gte=since)
    return list(scores.order_by("taken_at")[:5000])


def risk_scores_for_export(*, patient: Any, limit: int = 5000) -> list[RiskScore]:
    """The patient's scores from every model version (the caller has already scoped the
    patient to the user), the newest ``limit``, oldest first."""
    newest = (
        RiskScore.objects.filter(patient=patient)
        .select_related("model_version")
        .order_by("-taken_at", "-pk")[:limit]
    )
    return sorted(newest, key=lambda s: (s.taken_at, s.pk))


def risk_model_versions() -> QuerySet[ModelVersion]:
    """The deterioration model's versions, newest first."""
    return ModelVersion.objects.filter(task=RISK_TASK).order_by("-version")


def risk_training_job_latest() -> Job | None:
    """The latest training run of the deterioration model (any status), or None."""
    return Job.objects.filter(kind=RISK_TRAINING_KIND).order_by("-created_at").first()
