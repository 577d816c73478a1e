"""The researchers' cohort view: heterogeneity + Qini of a trial model, and the genomics
prognosis analysis, through HTTP and the real job functions."""

from __future__ import annotations

import json
import re

import pytest
from django.urls import reverse

from medai_site.jobs.kinds import get_kind
from medai_site.jobs.models import Job
from tests.treatment.factories import CohortAnalysisFactory
from treatment import charts
from treatment.models import CohortAnalysis

pytestmark = pytest.mark.django_db

COHORT = reverse("treatment:cohort")


def figure(html: str, chart_id: str) -> dict:
    found = re.search(rf'<script id="{chart_id}" type="application/json">(.*?)</script>', html)
    assert found, chart_id
    return json.loads(found.group(1))


def test_cohort_analysis_end_to_end(users, client_for, active_treatment, run_job):
    client = client_for(users.researcher)
    page = client.get(COHORT)
    assert page.status_code == 200
    assert 'name="covariate"' in page.content.decode()

    response = client.post(COHORT, {"trial": "gbsg2", "covariate": "age", "horizon": "1826.25"})
    analysis = CohortAnalysis.objects.get()
    detail = reverse("treatment:cohort_detail", args=[analysis.pk])
    assert response.status_code == 302 and response["Location"] == detail
    assert analysis.job.kind == "treatment.cohort"
    assert get_kind("treatment.cohort").queue == get_kind("treatment.genomics").queue == "ml"
    waiting = client.get(detail).content.decode()
    assert "data-job-progress" in waiting and 'data-on-success="reload"' in waiting

    job = run_job(analysis.job)
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.result["url"] == detail
    analysis.refresh_from_db()
    assert analysis.status == CohortAnalysis.Status.DONE
    assert analysis.model_version == active_treatment
    result = analysis.result
    assert result["n"] == len(result["x"]) == len(result["recommended"]) == 686
    contrast = result["contrasts"][0]
    assert contrast["has_interval"] and 0 <= contrast["share_excluding_zero"] <= 1
    assert all(
        lo <= d <= hi
        for lo, d, hi in zip(contrast["low"], contrast["difference"], contrast["high"])
    )
    assert result["qini"][0]["n"] < result["n_test"] + 1 and result["n_test"] == 206

    html = client.get(detail).content.decode()
    scatter = figure(html, "cohort-benefit-0")
    assert scatter["data"] and scatter["layout"]["yaxis"]["zeroline"]
    assert sum(len(t["x"]) for t in scatter["data"]) == 686
    qini = figure(html, "qini-0")
    assert {t["name"] for t in qini["data"]} == {"Model ranking", "Random targeting"}
    assert "Qini coefficient" in html and "interval excludes no difference" in html


def test_bad_covariate_and_horizon_are_400_with_messages(users, client_for, active_treatment):
    client = client_for(users.researcher)
    response = client.post(COHORT, {"trial": "gbsg2", "covariate": "shoe_size", "horizon": ""})
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    response = client.post(COHORT, {"trial": "gbsg2", "covariate": "age", "horizon": "99999"})
    assert response.status_code == 400
    assert "horizon" in response.content.decode().lower()
    assert not CohortAnalysis.objects.exists()


def test_page_says_when_no_model_is_in_service(users, client_for):
    response = client_for(users.model_admin).get(COHORT)
    assert response.status_code == 200
    assert "No treatment model is in service" in response.content.decode()
    assert client_for(users.researcher).post(COHORT, {"covariate": "age"}).status_code == 400


def test_genomics_analysis_end_to_end(users, client_for, run_job):
    client = client_for(users.model_admin)
    response = client.post(reverse("treatment:cohort_genomics"))
    analysis = CohortAnalysis.objects.get(kind=CohortAnalysis.Kind.GENOMICS)
    assert response["Location"] == reverse("treatment:cohort_detail", args=[analysis.pk])
    job = run_job(analysis.job)
    assert job.status == Job.Status.SUCCEEDED, job.error
    html = client.get(response["Location"]).content.decode()
    bars = figure(html, "genomics-comparison")
    assert bars["data"][0]["x"] == ["Clinical only", "Clinical + genes"]
    assert bars["data"][0]["error_y"]["array"]
    assert figure(html, "genomics-drivers")["data"][0]["y"]
    assert "Adding the 76 genes" in html and "changes Harrell&#x27;s C by" in html


def test_clinicians_are_refused(users, client_for, active_treatment):
    client = client_for(users.clinician_a)
    assert client.get(COHORT).status_code == 403
    assert client.post(reverse("treatment:cohort_genomics")).status_code == 403
    analysis = CohortAnalysisFactory(created_by=users.researcher)
    detail = reverse("treatment:cohort_detail", args=[analysis.pk])
    assert client.get(detail).status_code == 403
    assert client_for(users.researcher).get(detail).status_code == 200
    assert not CohortAnalysis.objects.filter(kind=CohortAnalysis.Kind.GENOMICS).exists()


def test_drivers_figure_is_none_without_drivers():
    assert charts.genomics_drivers_figure([]) is None
