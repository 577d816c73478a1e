"""Disease-progression analyses: the job compares the models by cross-validation and forecasts
every patient with an interval; the page shows the table and one patient's trajectory."""

from __future__ import annotations

import pytest
from django.urls import reverse

from medai_site.jobs.models import Job
from remote_care.models import ProgressionAnalysis
from tests.support.clients import login

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("dataset", ["pbcseq", "diabetes"])
def test_analysis_compares_models_and_forecasts_with_intervals(users, dataset, run_job):
    client = login(users.researcher)
    response = client.post(
        reverse("remote_care:progression"), {"dataset": dataset, "level": "0.9", "folds": 3}
    )
    analysis = ProgressionAnalysis.objects.get()
    assert response.url == reverse("remote_care:progression_detail", args=[analysis.pk])
    job = run_job(analysis.job)
    assert job.status == Job.Status.SUCCEEDED, job.error
    analysis.refresh_from_db()
    results = analysis.results
    models = {row["model"] for row in results["cv"]}
    assert {"linear", "decision_tree", "mlp"} <= models
    for row in results["cv"]:
        assert row["rmse"] > 0 and 0.5 < row["coverage"] <= 1.0
    patient_id, patient = next(iter(results["patients"].items()))
    if dataset == "pbcseq":
        assert results["n_patients"] > 250
        nxt = patient["next"]
        assert nxt["lower"] < nxt["point"] < nxt["upper"]
        assert all(
            lo < p < hi for lo, p, hi in zip(patient["lower"], patient["point"], patient["upper"])
        )
    else:
        assert patient["lower"] < patient["point"] < patient["upper"]
    page = client.get(
        reverse("remote_care:progression_detail", args=[analysis.pk]), {"patient": patient_id}
    )
    assert page.status_code == 200
    assert b"data-cv" in page.content and b'id="trajectory"' in page.content
    assert b"data-forecast" in page.content
    bad = client.get(
        reverse("remote_care:progression_detail", args=[analysis.pk]), {"patient": "nope"}
    )
    assert bad.status_code == 400


def test_bad_settings_are_refused(users):
    response = login(users.researcher).post(
        reverse("remote_care:progression"), {"dataset": "cancer", "level": "0.5", "folds": 1}
    )
    assert response.status_code == 400
    assert not ProgressionAnalysis.objects.exists()
