"""Population analytics: every aggregate on the hand-made population of analytics_data.py
(numbers worked out by hand there), the portable percentile path, and small-cell suppression."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from django.test import override_settings

from remote_care.analytics import filters, selectors
from remote_care.analytics.dashboard import (
    SUPPRESSED,
    acknowledge_table,
    bands_table,
    cohort_table,
    histogram_table,
    period_table,
    population_dashboard,
)
from remote_care.analytics.filters import Dimension, PopulationFilter
from remote_care.analytics.selectors import (
    acknowledge_times,
    cohort_comparison,
    news2_bands,
    news2_histogram,
    percentile_from_counts,
    population_periods,
    population_summary,
)
from remote_care.analytics.services import analytics_rollup_rebuild
from tests.platform.factories import UserFactory
from tests.remote_care.analytics.population_data import D1, D2, D8, build_population
from tests.remote_care.factories import RiskScoreFactory

pytestmark = pytest.mark.django_db

RANGE = PopulationFilter(start=D1, end=D8)

#: The page's queries on the roll-ups: the patient profile 1; periods 5 (sets, statistics,
#: week patients, NEWS2 totals, alerts); histogram 1; bands 1; cohorts 5 (sets, statistics,
#: totals, alerts, names); acknowledge 1; role check 1; differencing: periods 4 (cells,
#: high, rest, alerts), news2 1, bands 1, cohorts 5 (cells, high, rest, totals, alerts),
#: acknowledge 1 (its raw guard).
ROLLUP_MAX_QUERIES = 30


@pytest.fixture
def population(users):
    return build_population(users)


def f(**kwargs) -> PopulationFilter:
    return PopulationFilter(**{"start": D1, "end": D8, **kwargs})


def test_summary_over_everyone_for_a_researcher(users, population):
    s = population_summary(user=users.researcher, f=RANGE)
    assert (s.patients, s.sets, s.scored, s.patient_days, s.alerts) == (8, 20, 20, 19, 6)
    assert s.mean_news2 == pytest.approx(49 / 20)


def test_summary_is_scoped_to_a_clinicians_patients(users, population):
    a = population_summary(user=users.clinician_a, f=RANGE)
    assert (a.patients, a.sets, a.alerts) == (6, 17, 5)
    # Clinician B: M1, M2 and F1 (a care-team member of F1); patient-days M1 x2, M2, F1 x3.
    b = population_summary(user=users.clinician_b, f=RANGE)
    assert (b.patients, b.sets, b.patient_days, b.alerts) == (3, 7, 6, 1)


def test_no_role_sees_nothing(population):
    nobody = UserFactory()
    assert population_summary(user=nobody, f=RANGE).patients == 0


def test_range_is_inclusive_in_site_time(users, population):
    one_day = population_summary(user=users.researcher, f=f(end=D1))
    assert (one_day.sets, one_day.alerts) == (8, 3)
    assert population_summary(user=users.researcher, f=f(start=D2, end=D2)).sets == 6


def test_daily_risk_and_alert_rates(users, population):
    rows = {r.period: r for r in population_periods(user=users.researcher, f=RANGE)}
    assert sorted(rows) == [D1, D2, D8]
    d1, d2, d8 = rows[D1], rows[D2], rows[D8]
    assert (d1.sets, d1.patients, d1.patient_days, d1.high, d1.elevated) == (8, 8, 8, 1, 2)
    assert d1.mean == pytest.approx(3.0)
    # Sorted D1 totals 0 1 2 2 3 4 5 7: percentile_cont positions p * 7.
    assert d1.percentiles == pytest.approx({"p25": 1.75, "p50": 2.5, "p75": 4.25, "p90": 5.6})
    assert d1.alerts == {"EMERGENCY": 1, "URGENT": 1, "RED_SCORE": 1}
    assert d1.alert_rate() == pytest.approx(37.5)
    assert d1.alert_rate("EMERGENCY") == pytest.approx(12.5)
    assert d1.share_high == pytest.approx(1 / 8)
    assert (d2.sets, d2.patients, d2.patient_days) == (6, 5, 5)
    assert d2.mean == pytest.approx(19 / 6)
    assert d2.percentiles == pytest.approx({"p25": 1.25, "p50": 2.5, "p75": 3.75, "p90": 6.0})
    assert d2.alert_rate() == pytest.approx(40.0)
    assert (d8.sets, d8.patients, d8.high, d8.elevated) == (6, 6, 0, 1)
    assert d8.percentiles == pytest.approx({"p25": 0.0, "p50": 0.0, "p75": 0.0, "p90": 3.0})
    assert d8.alert_rate("URGENT") == pytest.approx(100 / 6)


def test_weekly_periods_sum_patient_days_and_alerts(users, population):
    rows = {r.period: r for r in population_periods(user=users.researcher, f=f(period="week"))}
    assert sorted(rows) == [D1, D8]  # both Mondays
    w1 = rows[D1]
    assert (w1.sets, w1.patients, w1.patient_days, w1.alert_total) == (14, 8, 13, 5)
    assert w1.mean == pytest.approx(43 / 14)
    assert w1.percentiles == pytest.approx({"p25": 1.25, "p50": 2.5, "p75": 4.0, "p90": 6.4})
    assert w1.alerts == {"EMERGENCY": 2, "URGENT": 1, "RED_SCORE": 2}
    assert w1.alert_rate() == pytest.approx(500 / 13)


def test_complete_only_leaves_partial_sets_out_of_news2_statistics(users, population):
    rows = {r.period: r for r in population_periods(user=users.researcher, f=f(complete_only=True))}
    assert (rows[D8].sets, rows[D8].scored, rows[D8].elevated) == (6, 5, 0)
    assert rows[D8].mean == 0
    assert population_summary(user=users.researcher, f=f(complete_only=True)).scored == 19


def test_news2_histogram(users, population):
    rows = [(r.value, r.sets, r.patients) for r in news2_histogram(user=users.researcher, f=RANGE)]
    assert rows == [
        (0, 6, 5),
        (1, 3, 2),
        (2, 3, 3),
        (3, 2, 2),
        (4, 2, 2),
        (5, 1, 1),
        (6, 1, 1),
        (7, 1, 1),
        (8, 1, 1),
    ]


def test_risk_bands_follow_news2_chart_2(users, population):
    rows = {
        r.band: (r.sets, r.patients, r.share) for r in news2_bands(user=users.researcher, f=RANGE)
    }
    # F6's 7 with a single 3 is high (aggregate bands take precedence); F4's 3* and 4* are
    # low-medium; F3's 3 without a single 3 is low. Low's patients are a lower bound: the 6
    # with a set scoring 0-2 (M2's only low set scored 4).
    assert rows == {
        "low": (14, 6, pytest.approx(0.7)),
        "low-medium": (2, 1, pytest.approx(0.1)),
        "medium": (2, 2, pytest.approx(0.1)),
        "high": (2, 2, pytest.approx(0.1)),
    }


def _cohorts(users, by: Dimension, **kwargs):
    return {r.label: r for r in cohort_comparison(user=users.researcher, f=f(by=by, **kwargs))}


def test_cohorts_by_sex(users, population):
    rows = _cohorts(users, Dimension.SEX)
    assert list(rows) == ["Female", "Male"]
    fem, male = rows["Female"], rows["Male"]
    assert (fem.patients, fem.sets, fem.patient_days, fem.alerts, fem.high) == (6, 17, 16, 5, 2)
    assert fem.median == 1.0
    assert fem.alert_rate == pytest.approx(31.25)
    assert fem.share_high == pytest.approx(2 / 17)
    assert (male.patients, male.sets, male.patient_days, male.alerts, male.median) == (
        2,
        3,
        3,
        1,
        4.0,
    )


def test_cohorts_by_age_use_age_on_the_day_of_each_set(users, population):
    rows = _cohorts(users, Dimension.AGE)
    assert list(rows) == ["18-39", "65-79", "80+"]
    # F5 (born 3 March 1946) turns 80 on 3 March 2026: her set of 2 March (total 5, an
    # urgent alert) is 65-79, those of 3 March (8, an emergency alert) and 9 March (0) 80+.
    old = rows["80+"]
    assert (old.patients, old.sets, old.patient_days, old.alerts, old.median) == (1, 2, 2, 1, 4.0)
    mid = rows["65-79"]
    assert (mid.patients, mid.sets, mid.patient_days, mid.alerts, mid.median, mid.high) == (
        6,
        15,
        14,
        4,
        1.0,
        1,
    )
    assert population_summary(user=users.researcher, f=f(age_band="80+")).sets == 2
    # Ending the range on 2 March, F5 is still 79.
    before = _cohorts(users, Dimension.AGE, end=D1)
    assert (before["65-79"].patients, "80+" in before) == (6, False)
    assert population_summary(user=users.researcher, f=f(end=D1, age_band="80+")).sets == 0


def test_cohorts_by_responsible_clinician_and_scale(users, population):
    rows = _cohorts(users, Dimension.TEAM)
    name_a = users.clinician_a.get_full_name()
    name_b = users.clinician_b.get_full_name()
    assert {k: (r.patients, r.sets) for k, r in rows.items()} == {name_a: (6, 17), name_b: (2, 3)}
    scales = _cohorts(users, Dimension.SCALE)
    assert {k: (r.patients, r.sets, r.alerts) for k, r in scales.items()} == {
        "Scale 1": (7, 19, 5),
        "Scale 2": (1, 1, 1),
    }


def test_filters_by_sex_team_and_scale(users, population):
    summary = population_summary
    assert summary(user=users.researcher, f=f(sex="male")).sets == 3
    assert summary(user=users.researcher, f=f(team=users.clinician_b.pk)).patients == 3
    assert summary(user=users.researcher, f=f(spo2_scale=2)).patients == 1


def test_all_patients_is_one_cohort(users, population):
    (row,) = cohort_comparison(user=users.researcher, f=RANGE)
    assert (row.label, row.patients, row.sets, row.patient_days, row.alerts) == (
        "All patients",
        8,
        20,
        19,
        6,
    )
    # Sorted totals: six 0, three 1, three 2, ... -> the 10th and 11th of 20 are 2 and 2.
    assert row.median == 2.0


def test_time_to_acknowledge(users, population):
    rows = {r.level: r for r in acknowledge_times(user=users.researcher, f=RANGE)}
    em, ur, red = rows["EMERGENCY"], rows["URGENT"], rows["RED_SCORE"]
    assert (em.alerts, em.patients, em.acknowledged) == (2, 2, 2)
    assert em.median == timedelta(minutes=20)
    assert em.p90 == timedelta(minutes=28)
    assert (ur.median, ur.p90) == (timedelta(minutes=12.5), timedelta(minutes=18.5))
    assert (red.alerts, red.patients, red.acknowledged, red.median) == (
        2,
        1,
        1,
        timedelta(minutes=40),
    )
    assert "TREND" not in rows


def test_portable_percentiles_match_percentile_cont(users, population, monkeypatch):
    """The SQLite path (histogram and ORDER BY/OFFSET percentiles), run against PostgreSQL,
    gives exactly what percentile_cont gives."""
    native = (
        population_periods(user=users.researcher, f=f(period="week")),
        cohort_comparison(user=users.researcher, f=f(by=Dimension.AGE)),
        acknowledge_times(user=users.researcher, f=RANGE),
    )
    monkeypatch.setattr(selectors, "percentiles_native", lambda: False)
    portable = (
        population_periods(user=users.researcher, f=f(period="week")),
        cohort_comparison(user=users.researcher, f=f(by=Dimension.AGE)),
        acknowledge_times(user=users.researcher, f=RANGE),
    )
    assert [p.percentiles for p in native[0]] == [p.percentiles for p in portable[0]]
    assert [c.median for c in native[1]] == [c.median for c in portable[1]]
    assert [(a.median, a.p90) for a in native[2]] == [(a.median, a.p90) for a in portable[2]]


@pytest.mark.parametrize("fraction", [0, 0.1, 0.25, 0.5, 0.75, 0.9, 1])
def test_percentile_from_counts_interpolates_like_percentile_cont(fraction):
    values = [0, 0, 1, 3, 3, 3, 4, 7, 12]
    counts = {v: values.count(v) for v in set(values)}
    assert percentile_from_counts(counts, fraction) == pytest.approx(
        float(np.percentile(values, 100 * fraction, method="linear"))
    )
    assert percentile_from_counts({}, fraction) is None


# --------------------------------------------------------------------------------------------
# Small-cell suppression
# --------------------------------------------------------------------------------------------


def test_cohort_table_hides_every_cohort_when_one_is_small(users, population):
    by_sex = cohort_table(
        cohort_comparison(user=users.researcher, f=f(by=Dimension.SEX)), Dimension.SEX
    )
    # Male has 2 patients; hiding it alone would let 'total - female' reveal it.
    assert [row[:4] for row in by_sex.rows] == [
        ["Female", SUPPRESSED, SUPPRESSED, SUPPRESSED],
        ["Male", SUPPRESSED, SUPPRESSED, SUPPRESSED],
    ]
    by_age = cohort_table(
        cohort_comparison(user=users.researcher, f=f(by=Dimension.AGE)), Dimension.AGE
    )
    # 18-39 and 80+ are small; 65-79 (6 patients, 15 sets) alone would not be: were it
    # shown, total minus 65-79 would be the two small cohorts together, 3 patients.
    assert [row[:4] for row in by_age.rows] == [
        [band, SUPPRESSED, SUPPRESSED, SUPPRESSED] for band in ("18-39", "65-79", "80+")
    ]


def test_a_table_is_shown_whole_or_hidden_whole():
    """Complementary suppression: a table whose rows add up to a shown total hides every row
    when one is unsafe, so the hidden rows always hold at least five patients a day."""
    rows = [selectors.HistogramRow(0, 9, 6), selectors.HistogramRow(1, 7, 5)]
    assert histogram_table(rows).rows == [[0, 9], [1, 7]]
    assert histogram_table(rows, {"cells": {1}}).rows == [[0, SUPPRESSED], [1, SUPPRESSED]]
    rows.append(selectors.HistogramRow(2, 5, 2))
    assert all(row[1] == SUPPRESSED for row in histogram_table(rows).rows)
    period = selectors.PeriodRow(
        period=D1,
        sets=20,
        scored=20,
        patients=10,
        high=2,
        patient_days=10,
        alerts={"URGENT": 6, "EMERGENCY": 3},
    )
    table = period_table([period], "day", filters.NEWS2_RISK)
    row = dict(zip(table.header, table.rows[0], strict=True))
    # 9 alerts are shown; so neither level may be, or 9 minus the other gives it away.
    assert row["Alerts"] == 9
    assert (row["URGENT alerts"], row["EMERGENCY alerts"]) == (SUPPRESSED, SUPPRESSED)
    assert row["High-risk sets (%)"] == SUPPRESSED


def test_period_table_shows_only_periods_of_five_patients_or_more(users, population):
    rows = population_periods(user=users.researcher, f=RANGE)
    table = period_table(rows, "day", filters.NEWS2_RISK)
    d1 = dict(zip(table.header, table.rows[0]))
    assert d1["Day"] == "2026-03-02"
    assert (d1["Patients"], d1["Observation sets"], d1["Mean NEWS2"]) == (8, 8, 3.0)
    assert (d1["NEWS2 p50"], d1["NEWS2 p90"]) == (2.5, 5.6)
    assert d1["High-risk sets (%)"] == SUPPRESSED  # one set
    assert (d1["Alerts"], d1["Alerts per 100 patient-days"]) == (SUPPRESSED, "")
    # The clinician-B scope has at most 3 patients a day: nothing but '<5'.
    small_rows = population_periods(user=users.clinician_b, f=RANGE)
    for row in period_table(small_rows, "day", filters.NEWS2_RISK).rows:
        assert row[1] == SUPPRESSED
        assert set(row[2:]) == {""}


def test_histogram_bands_and_acknowledge_tables_suppress_small_cells(users, population):
    # Total 0 has 5 patients, band low 14 sets, but the scored sets are shown elsewhere and
    # the other rows are small: every row is hidden (test_a_table_is_shown_whole_or_...).
    hist = histogram_table(news2_histogram(user=users.researcher, f=RANGE)).rows
    assert all(row[1:] == [SUPPRESSED] for row in hist)
    bands = bands_table(news2_bands(user=users.researcher, f=RANGE)).rows
    assert all(row[1:] == [SUPPRESSED, ""] for row in bands)
    ack = acknowledge_table(acknowledge_times(user=users.researcher, f=RANGE)).rows
    assert all(row[3:] == ["", ""] for row in ack)
    assert [row[:3] for row in ack] == [
        ["Single parameter scored 3", SUPPRESSED, SUPPRESSED],
        ["NEWS2 5 or more (urgent)", SUPPRESSED, SUPPRESSED],
        ["NEWS2 7 or more (emergency)", SUPPRESSED, SUPPRESSED],
    ]


def test_no_table_or_chart_series_shows_a_count_from_one_to_four(users, population):
    dash = population_dashboard(user=users.researcher, f=RANGE)
    for table in dash.tables().values():
        for row in table.rows:
            for cell in row[1:]:
                assert not (isinstance(cell, int) and 0 < cell < 5), (table.header, row)
    assert [p.period for p in dash.chart_periods()] == [D1, D2, D8]
    # Total 0 and band low have 5+ patients over the range but 1 to 4 on one day (D1 and D2
    # respectively), which a second range ending the day before would subtract out.
    assert [h.value for h in dash.chart_histogram()] == []
    assert [b.band for b in dash.chart_bands()] == []
    assert dash.chart_cohorts()[0].patients == 8


def test_dashboard_runs_a_bounded_number_of_queries(
    users, population, django_assert_max_num_queries, rollups
):
    # Raw tables: periods 3 (sets, patient-days, alerts), distinct patients 1, histogram 1,
    # bands 2, cohorts 4 (with the clinicians' names), acknowledge times 1, the role check 1;
    # the differencing guard: the refusal check 1, then one cell x atom query per table's
    # cells (periods 2, histogram 1, bands 1, cohorts 3, acknowledge 1; the summary's come
    # from the periods'), each per day.
    with django_assert_max_num_queries(22), override_settings(MEDAI_ANALYTICS_ROLLUPS=False):
        population_dashboard(user=users.researcher, f=f(by=Dimension.TEAM, period="week"))
    # Roll-ups: more, smaller queries (one per kind of cell), still whatever the data size.
    analytics_rollup_rebuild()
    rollups.auto = False
    with django_assert_max_num_queries(ROLLUP_MAX_QUERIES):
        population_dashboard(user=users.researcher, f=f(by=Dimension.TEAM, period="week"))


def test_charts_leave_out_small_counts(users, population):
    from remote_care.analytics.charts import alert_rate_figure, risk_over_time_figure

    dash = population_dashboard(user=users.researcher, f=RANGE)
    risk = risk_over_time_figure(dash.chart_periods(), dash.measure)
    high = next(t for t in risk["data"] if t["name"] == "High-risk sets (%)")
    # D1 and D2 have one high-risk set each (shares would reveal it); D8 has none.
    assert high["y"] == [None, None, 0.0]
    # Every day has a NEWS2 total that 1 to 4 patients had (D8: M1's 6), so no mean or
    # percentile is drawn: they read those patients' values.
    for name in ("Median NEWS2", "Mean NEWS2", "Interquartile range"):
        assert next(t for t in risk["data"] if t["name"] == name)["y"] == [None, None, None]
    alerts = alert_rate_figure(dash.chart_periods())
    rates = {t["name"]: t["y"] for t in alerts["data"]}
    assert rates["Sustained rise"] == [0, 0, 0]
    assert rates["Emergency (NEWS2 7+)"] == [None, None, 0]
    # The charts' sentences and data tables say no more than the charts draw.
    from medai_site.core.charts import chart_alternative, format_value

    assert "median" not in risk["summary"] and risk["summary"].endswith(
        "0% (" + risk["data"][0]["x"][2] + ")."
    )
    table = chart_alternative(risk)["table"]
    median = table["columns"].index("Median NEWS2")
    assert [row[median] for row in table["rows"]] == ["—", "—", "—"]
    shown = [sum(y[i] or 0 for y in rates.values()) for i in range(3)]
    average = format_value(round(sum(shown) / 3, 2))
    assert f": {average} per period on average" in alerts["summary"]


# --------------------------------------------------------------------------------------------
# The deterioration model's risk as the measure over time
# --------------------------------------------------------------------------------------------

#: D1 model risks by patient (percent): sorted 5 10 15 20 25 30 35 40.
D1_MODEL_RISK = {"F1": 5, "F2": 10, "F3": 15, "F4": 20, "F5": 25, "F6": 30, "M1": 35, "M2": 40}


def _score(patient, version, day, risk):
    obs = patient.observations.get(taken_at__date=day)
    return RiskScoreFactory(observation=obs, model_version=version, risk=risk, hours_observed=4)


@pytest.fixture
def model_risk(population):
    from medai_site.registry.models import ModelVersion
    from remote_care.risk.services import RISK_TASK
    from tests.platform.factories import ModelVersionFactory

    retired = ModelVersionFactory(task=RISK_TASK, status=ModelVersion.Status.RETIRED)
    active = ModelVersionFactory(
        task=RISK_TASK,
        status=ModelVersion.Status.ACTIVE,
        metrics={"alert_thresholds": {"elevated": 0.2, "high": 0.3}},
    )
    for name, pct in D1_MODEL_RISK.items():
        _score(population.patients[name], active, D1, pct / 100)
    # Another version's score is never mixed in.
    _score(population.patients["F1"], retired, D1, 0.99)
    return active


def test_model_risk_over_time_uses_the_active_versions_scores(users, model_risk):
    rows = {r.period: r for r in population_periods(user=users.researcher, f=f(measure="model"))}
    d1 = rows[D1]
    assert (d1.sets, d1.patients, d1.scored) == (8, 8, 8)  # exposure still from observations
    assert d1.mean == pytest.approx(22.5)
    # percentile_cont positions p * 7 in 5 10 15 20 25 30 35 40.
    assert d1.percentiles == pytest.approx({"p25": 13.75, "p50": 22.5, "p75": 31.25, "p90": 36.5})
    assert (d1.high, d1.elevated) == (3, 5)  # >= 30 %, >= 20 %: the version's cut-offs
    assert d1.share_high == pytest.approx(3 / 8)
    # D2 has observation sets but no model scores: no model statistics, not NEWS2's.
    assert (rows[D2].sets, rows[D2].scored, rows[D2].mean, rows[D2].percentiles) == (6, 0, None, {})


def test_model_risk_is_scoped_and_portable(users, model_risk, monkeypatch):
    b = {r.period: r for r in population_periods(user=users.clinician_b, f=f(measure="model"))}
    assert b[D1].scored == 3  # F1 (care team), M1, M2
    assert b[D1].mean == pytest.approx((5 + 35 + 40) / 3)
    native = [
        p.percentiles for p in population_periods(user=users.researcher, f=f(measure="model"))
    ]
    monkeypatch.setattr(selectors, "percentiles_native", lambda: False)
    portable = [
        p.percentiles for p in population_periods(user=users.researcher, f=f(measure="model"))
    ]
    assert native == portable


def test_model_risk_table_and_version_without_cut_offs(users, model_risk):
    dashboard = population_dashboard(user=users.researcher, f=f(measure="model"))
    table = dashboard.tables()["periods"]
    assert "Mean Model risk (%)" in table.header
    assert "top-10 % band" in table.header[8]
    assert table.rows[0][3] == pytest.approx(22.5)
    assert "30.0 %" in dashboard.measure.description
    # The summary's NEWS2 figures do not change with the measure charted over time.
    news2 = population_dashboard(user=users.researcher, f=f())
    assert dashboard.summary == news2.summary
    assert dashboard.summary.mean_news2 == pytest.approx(49 / 20)
    model_risk.metrics = {}
    model_risk.save()
    rows = population_periods(user=users.researcher, f=f(measure="model"))
    assert rows[0].has_high is False and rows[0].share_high is None


def test_model_risk_without_a_model_in_service_is_a_clear_400(client, users, population):
    client.force_login(users.researcher)
    response = client.get(
        "/remote-care/analytics/",
        {"start": D1.isoformat(), "end": D8.isoformat(), "measure": "model"},
    )
    assert response.status_code == 400
    assert "No deterioration model is in service" in response.content.decode()


def test_model_risk_page_and_export(client, users, model_risk):
    client.force_login(users.researcher)
    query = {"start": D1.isoformat(), "end": D8.isoformat(), "measure": "model"}
    page = client.get("/remote-care/analytics/", query)
    assert page.status_code == 200
    assert "Model risk (%) over time" in page.content.decode()
    export = client.get("/remote-care/analytics/export.csv", {**query, "table": "periods"})
    assert export.status_code == 200
    assert "Mean Model risk (%)" in export.content.decode()


def test_insufficient_data_sets_are_left_out_of_model_risk(users, model_risk):
    from remote_care.models import RiskScore

    # M2's 40 % becomes "insufficient data": no risk, so no part of the figures.
    RiskScore.objects.filter(model_version=model_risk, patient__family_name__isnull=False).filter(
        risk=0.40
    ).update(risk=None, insufficient_reason="1 of 6 vital signs present")
    rows = {r.period: r for r in population_periods(user=users.researcher, f=f(measure="model"))}
    d1 = rows[D1]
    assert d1.scored == 7 and d1.mean == pytest.approx(20.0)
    assert (d1.high, d1.elevated) == (2, 4)
