"""Starting a disease-progression analysis: the analysis and the job that runs it are written
together, or not at all."""

from __future__ import annotations

import pytest

from medai_site.jobs.models import Job
from remote_care.models import ProgressionAnalysis
from remote_care.progression import services
from remote_care.progression.services import PROGRESSION_KIND, progression_analysis_start

pytestmark = pytest.mark.django_db


def test_start_writes_the_analysis_and_its_queued_job(users):
    analysis = progression_analysis_start(
        dataset="diabetes", level=0.8, folds=4, user=users.researcher
    )
    analysis.refresh_from_db()
    assert analysis.settings == {"level": 0.8, "folds": 4}
    assert analysis.created_by == users.researcher
    job = analysis.job
    assert (job.kind, job.status, job.owner) == (
        PROGRESSION_KIND,
        Job.Status.QUEUED,
        users.researcher,
    )
    assert job.params == {"analysis_id": analysis.pk}
    assert job.target == analysis
    assert job.title == "Progression models on Diabetes progression after one year (Efron et al.)"


def test_a_job_that_cannot_be_created_leaves_no_analysis(users, monkeypatch):
    def refuse(**kwargs):
        raise RuntimeError("the job table is unavailable")

    monkeypatch.setattr(services, "job_create", refuse)
    with pytest.raises(RuntimeError):
        progression_analysis_start(dataset="pbcseq", level=0.9, folds=5, user=users.researcher)
    assert not ProgressionAnalysis.objects.exists()
