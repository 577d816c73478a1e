"""The population dashboard page and its CSV export: roles and scope, audit, 400s, escaping."""

from __future__ import annotations

import csv
import io

import pytest

from medai_site.audit.models import AuditEvent
from medai_site.core.csv_export import csv_safe_cell, csv_text
from tests.platform.factories import UserFactory
from tests.remote_care.analytics.population_data import build_population
from tests.support.clients import login

pytestmark = pytest.mark.django_db

URL = "/remote-care/analytics/"
EXPORT = "/remote-care/analytics/export.csv"
RANGE = {"start": "2026-03-02", "end": "2026-03-09"}


@pytest.fixture
def population(users):
    return build_population(users)


def _rows(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.content.decode())))


@pytest.mark.parametrize(
    ("role", "patients", "scope"),
    [
        # Patient-days: no distinct patients over a range (they could be differenced).
        ("researcher", "19", "all monitored patients"),
        ("model_admin", "19", "all monitored patients"),
        ("clinician_a", "16", "own patients"),
        ("clinician_b", "<5", "own patients"),
    ],
)
def test_each_role_sees_its_scope_and_is_audited(users, population, role, patients, scope):
    response = login(getattr(users, role)).get(URL, RANGE)
    assert response.status_code == 200
    html = response.content.decode()
    shown = patients.replace("<", "&lt;")
    assert f'<dd data-summary="patient_days">{shown}</dd>' in html
    assert "Small-cell suppression" in html
    # Aggregates only: no patient identifier reaches the page.
    for patient in population.patients.values():
        assert patient.mrn not in html
        assert patient.family_name not in html
    event = AuditEvent.objects.get(action=AuditEvent.Action.PATIENT_LIST_VIEWED)
    assert event.actor == getattr(users, role)
    assert event.patient is None
    assert event.detail["page"] == "population analytics"
    assert event.detail["scope"] == scope
    assert event.detail["filters"]["start"] == "2026-03-02"


def test_users_without_a_role_are_refused(population):
    response = login(UserFactory()).get(URL)
    assert response.status_code == 403
    assert login(UserFactory()).get(EXPORT).status_code == 403


def test_the_page_draws_charts_from_json_without_inline_script(users, population):
    html = login(users.researcher).get(URL, RANGE).content.decode()
    for chart in ("risk-over-time", "alert-rate", "news2-histogram", "news2-bands", "cohorts"):
        assert f'id="chart-{chart}"' in html
    assert 'data-figure="risk-over-time"' in html
    assert "<script>" not in html  # json_script blocks are typed application/json


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"start": "2026-03-09", "end": "2026-03-02"}, "start date must be on or before"),
        ({"start": "2025-01-01", "end": "2026-03-02"}, "at most 366 days"),
        ({"start": "2026-02-30", "end": "2026-03-02"}, "Enter a valid date"),
        ({"start": "yesterday", "end": "2026-03-02"}, "Enter a valid date"),
        ({**RANGE, "by": "postcode"}, "Select a valid choice"),
        ({**RANGE, "period": "hour"}, "Select a valid choice"),
        ({**RANGE, "team": "abc"}, "Select a valid choice"),
    ],
)
def test_bad_filters_are_400_with_a_message(users, population, params, message):
    page = login(users.researcher).get(URL, params)
    assert page.status_code == 400
    assert message in page.content.decode()
    export = login(users.researcher).get(EXPORT, params)
    assert export.status_code == 400
    assert message in export.content.decode()
    assert not AuditEvent.objects.filter(
        action__in=[AuditEvent.Action.PATIENT_LIST_VIEWED, AuditEvent.Action.EXPORTED]
    ).exists()


def test_unknown_export_table_is_400(users, population):
    response = login(users.researcher).get(EXPORT, {**RANGE, "table": "patients"})
    assert response.status_code == 400
    assert "table must be one of cohorts, periods" in response.content.decode()


def test_cohort_export_is_suppressed_and_audited(users, population):
    response = login(users.researcher).get(EXPORT, {**RANGE, "by": "age"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    disposition = response["Content-Disposition"]
    assert 'filename="cohort-comparison_2026-03-02_2026-03-09.csv"' in disposition
    rows = _rows(response)
    assert rows[0][:3] == ["Age band (on the day)", "Observation sets", "Patient-days"]
    assert rows[1][:2] == ["18-39", "<5"]
    # 65-79 has 5 patients over the range but 4 on 9 March, which the range ending on the
    # 8th would subtract out: hidden too.
    assert rows[2] == ["65-79", "<5", "<5", "<5", "", "", ""]
    event = AuditEvent.objects.get(action=AuditEvent.Action.EXPORTED)
    assert event.patient is None
    assert event.detail["table"] == "cohorts"
    assert event.detail["rows"] == 3


def test_series_export_has_one_row_per_day(users, population):
    rows = _rows(login(users.researcher).get(EXPORT, {**RANGE, "table": "periods"}))
    assert [r[0] for r in rows] == ["Day", "2026-03-02", "2026-03-03", "2026-03-09"]
    # No mean: D1's NEWS2 totals are each one or two patients' (a mean x 8 sets is a sum).
    assert rows[1][1:4] == ["8", "8", ""]


def test_export_escapes_formula_like_cells(users, population):
    """A clinician's name is free text: one starting with '=' must reach the spreadsheet as
    text, not as a formula."""
    users.clinician_a.first_name = '=HYPERLINK("http://x")'
    users.clinician_a.last_name = "A"
    users.clinician_a.save()
    rows = _rows(login(users.researcher).get(EXPORT, {**RANGE, "by": "team"}))
    labels = [r[0] for r in rows[1:]]
    assert '\'=HYPERLINK("http://x") A' in labels


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+1", "'=1+1"),
        ("+41 22", "'+41 22"),
        ("-cmd", "'-cmd"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("plain", "plain"),
        ("", ""),
        (None, ""),
        (-3, "-3"),
        (2.5, "2.5"),
        ("<5", "<5"),
    ],
)
def test_csv_safe_cell(value, cell):
    assert csv_safe_cell(value) == cell


def test_csv_text_quotes_and_escapes():
    text = csv_text(["a", "=b"], [["x,y", "-1"], [1, None]])
    assert list(csv.reader(io.StringIO(text))) == [["a", "'=b"], ["x,y", "'-1"], ["1", ""]]
