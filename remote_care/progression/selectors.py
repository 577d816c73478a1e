"""Reads of disease-progression analyses (research data: no patient of MedAI's)."""

from __future__ import annotations

from django.db.models import QuerySet

from remote_care.models import ProgressionAnalysis


def progression_analysis_list() -> QuerySet[ProgressionAnalysis]:
    """The analyses with their jobs, newest first (the model's ordering)."""
    return ProgressionAnalysis.objects.select_related("job")


def progression_analysis_get(*, pk: int) -> ProgressionAnalysis | None:
    """One analysis with its job, or None."""
    return ProgressionAnalysis.objects.select_related("job").filter(pk=pk).first()
