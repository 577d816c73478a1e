"""Monitoring: per model version, the share of scans outside its scope over time beside
agreement with clinicians, overrides counted apart; counts only, so a model admin sees no
patient identifiers."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from diagnosis.charts import scope_over_time_figure
from diagnosis.models import Prediction
from diagnosis.selectors import scope_trends
from diagnosis.services import prediction_override, review_record, scan_upload
from tests.diagnosis.files import chest_png, pydicom_bytes, upload
from tests.diagnosis.model_versions import TASK
from tests.platform.factories import patient_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def answers(users, active_model, run_job):
    """Three answers of clinician A's patient: a chest PNG in scope, an MR flagged out of
    scope and scored anyway by a clinician (override), a CT flagged and left unscored."""
    patient = patient_for(users.clinician_a)
    outcome = scan_upload(
        patient=patient,
        uploaded_by=users.clinician_a,
        task=TASK,
        files=[
            upload("chest.png", chest_png()),
            upload("mr.dcm", pydicom_bytes("emri_small.dcm")),
            upload("ct.dcm", pydicom_bytes("CT_small.dcm")),
        ],
    )
    run_job(outcome.job)
    chest, mr, ct = (Prediction.objects.get(scan=s) for s in outcome.scans)
    # The job found the chest film in scope and the MR far from the training images; a
    # clinician scores the MR anyway.
    assert chest.scope == Prediction.Scope.IN_SCOPE
    assert mr.scope == Prediction.Scope.OUT_OF_SCOPE and mr.scope_check == "ood"
    mr = prediction_override(prediction=mr, user=users.clinician_a, reason="second look")
    # The CT is written as a gate refusal of last week (the tiny model has no contract).
    Prediction.objects.filter(pk=ct.pk).update(
        scope=Prediction.Scope.OUT_OF_SCOPE,
        scope_check=Prediction.ScopeCheck.GATE,
        scope_reason="not scored: this model reads chest radiographs; this is a CT",
        probabilities=[],
        predicted_class="",
        predicted_index=None,
        risk=None,
        confidence=None,
        uncertainty=None,
        # Last week: a second point on the weekly chart.
        created_at=timezone.now() - timedelta(days=7),
    )
    return patient, chest, mr, ct


def test_trends_count_flagged_and_overridden_per_period(answers, active_model) -> None:
    trends = scope_trends(predictions=Prediction.objects.all(), period="week")
    (trend,) = trends
    assert trend.version == active_model
    assert [(p.scans, p.flagged, p.overridden) for p in trend.periods] == [(1, 1, 0), (2, 1, 1)]
    assert trend.total.flagged_share == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="period must be one of"):
        scope_trends(predictions=Prediction.objects.all(), period="month")


def test_page_shows_scope_beside_agreement_without_identifiers(users, answers, client_for) -> None:
    patient, chest, mr, _ = answers
    review_record(prediction=chest, reviewer=users.clinician_a, label="normal")
    review_record(prediction=mr, reviewer=users.clinician_a, label="normal")
    response = client_for(users.model_admin).get("/diagnosis/monitoring/")
    html = response.content.decode()
    assert response.status_code == 200
    row = html.split(f'data-scope-version="{chest.model_version_id}"')[1].split(">")[0]
    assert 'data-scans="3"' in row and 'data-flagged="2"' in row and 'data-overridden="1"' in row
    # The overridden answer's review is counted apart from the agreement.
    agreement = html.split(f'data-agreement-version="{chest.model_version_id}"')[1]
    assert '<td class="num">1</td>' in agreement.split("</tr>")[0]
    assert 'data-overridden-reviewed="1"' in agreement
    figure = json.loads(html.split('id="scope-time" type="application/json">')[1].split("<")[0])
    shares = figure["data"][0]["y"]
    assert shares == [1.0, 0.5] and figure["data"][1]["y"] == [0.0, 0.5]
    assert 'data-model-card="' in html and "has no out-of-distribution detector" in html
    for identifier in (patient.mrn, patient.family_name, patient.given_name, "chest.png"):
        assert identifier not in html


def test_a_clinician_without_those_patients_sees_no_counts(users, answers, client_for) -> None:
    html = client_for(users.clinician_b).get("/diagnosis/monitoring/").content.decode()
    assert "data-scope-version" not in html and "No predictions yet." in html


def test_period_is_day_or_week_else_a_specific_400(users, answers, client_for) -> None:
    client = client_for(users.model_admin)
    day = client.get("/diagnosis/monitoring/?period=day").content.decode()
    assert "per day" in day
    bad = client.get("/diagnosis/monitoring/?period=fortnight")
    assert bad.status_code == 400 and "Choose a period of day or week." in bad.content.decode()


def test_no_chart_when_no_version_was_checked(answers) -> None:
    Prediction.objects.update(scope=Prediction.Scope.UNCHECKED)
    trends = scope_trends(predictions=Prediction.objects.all(), period="day")
    assert scope_over_time_figure(trends, period="day") is None
