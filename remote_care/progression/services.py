"""Every write of disease-progression analyses: starting one, with the job that runs it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import transaction

from medai_site.jobs.services import job_create
from remote_care.models import ProgressionAnalysis

if TYPE_CHECKING:
    from django.contrib.auth.models import User

PROGRESSION_KIND = "remote_care.progression"


@transaction.atomic
def progression_analysis_start(
    *, dataset: str, level: float, folds: int, user: User
) -> ProgressionAnalysis:
    """Create an analysis of ``dataset`` and queue the job that runs it (ml queue, on commit);
    returns the analysis with its job."""
    analysis = ProgressionAnalysis.objects.create(
        dataset=dataset,
        created_by=user,
        settings={"level": level, "folds": folds},
    )
    analysis.job = job_create(
        kind=PROGRESSION_KIND,
        owner=user,
        title=f"Progression models on {analysis.get_dataset_display()}",
        params={"analysis_id": analysis.pk},
        target=analysis,
    )
    analysis.save(update_fields=["job"])
    return analysis
