"""The monitoring board (order, scoping, live rows) and the vitals page with its down-sampled
data endpoint."""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from remote_care.devices.services import device_register
from remote_care.models import Monitoring, Observation
from remote_care.monitoring.board import board_rows
from remote_care.monitoring.charts import news2_sparkline, vitals_figure
from tests.platform.factories import patient_for
from tests.remote_care.factories import AlertFactory, ObservationFactory

pytestmark = pytest.mark.django_db


def _observe(patient, news2, *, minutes_ago=5, **values):
    device = (
        patient.devices.first()
        or device_register(
            patient=patient, label="kit", registered_by=patient.memberships.first().user
        ).device
    )
    return ObservationFactory(
        device=device,
        taken_at=timezone.now() - timedelta(minutes=minutes_ago),
        news2_total=news2,
        news2={"label": f"NEWS2 {news2}"} if news2 is not None else {},
        **values,
    )


def _alert(observation, level, status="open"):
    return AlertFactory(observation=observation, level=level, status=status, reason=level)


@pytest.fixture
def ward(users):
    """Clinician A's monitored patients, keyed by name, in the expected board order."""
    a = users.clinician_a
    made = {}
    for name in ["emergency", "urgent", "red", "trend", "news8", "news3", "resolved", "quiet"]:
        made[name] = patient_for(a, family_name=name)
    _alert(_observe(made["emergency"], 2, heart_rate=131), "EMERGENCY")
    # An urgent alert already acknowledged is still open on the board; its older red one too.
    urgent_obs = _observe(made["urgent"], 5)
    _alert(urgent_obs, "URGENT", status="acknowledged")
    _alert(urgent_obs, "RED_SCORE")
    _alert(_observe(made["red"], 9), "RED_SCORE")
    _alert(_observe(made["trend"], 4), "TREND", status="escalated")
    _observe(made["news8"], 6, minutes_ago=60)
    _observe(made["news8"], 8, minutes_ago=1)  # the latest set counts, not the worst
    _observe(made["news3"], 3)
    _alert(_observe(made["resolved"], 1), "EMERGENCY", status="resolved")
    Monitoring.objects.create(patient=made["quiet"])  # monitored, nothing posted yet
    patient_for(a, family_name="unmonitored")  # in the team, but not on the board
    return made


def test_board_orders_by_open_alert_severity_then_news2(users, ward, client_for):
    rows = board_rows(user=users.clinician_a)
    assert [r.patient.family_name for r in rows] == list(ward)
    by_name = {r.patient.family_name: r for r in rows}
    assert by_name["urgent"].open_alerts == 2 and by_name["urgent"].top_alert_level == "URGENT"
    assert by_name["resolved"].open_alerts == 0 and by_name["quiet"].latest is None
    assert by_name["news8"].latest.news2_total == 8

    html = client_for(users.clinician_a).get("/remote-care/board/").content.decode()
    positions = [html.index(f"{name.upper()},") for name in ward]
    assert positions == sorted(positions)
    assert "UNMONITORED" not in html
    assert 'href="/remote-care/board/"' in html  # the "Monitoring" navigation entry
    assert "131" in html  # the emergency patient's last heart rate


def test_board_query_count_does_not_grow_with_patients_or_observations(users, ward):
    with CaptureQueriesContext(connection) as few:
        board_rows(user=users.clinician_a)
    for i in range(5):
        patient = patient_for(users.clinician_a, family_name=f"more{i}")
        for minutes in range(1, 8):
            _alert(_observe(patient, i, minutes_ago=minutes), "TREND")
    with CaptureQueriesContext(connection) as many:
        rows = board_rows(user=users.clinician_a)
    assert len(rows) == len(ward) + 5
    assert len(many.captured_queries) == len(few.captured_queries) <= 4


def test_board_rows_endpoint_for_polling_and_scoping(users, ward, client_for):
    rows_a = client_for(users.clinician_a).get("/remote-care/board/rows/", HTTP_X_MEDAI_POLL="1")
    assert rows_a.status_code == 200 and "<tr" in rows_a.content.decode()
    assert "<html" not in rows_a.content.decode()
    assert "EMERGENCY," in rows_a.content.decode()

    other = client_for(users.clinician_b)
    for url in ("/remote-care/board/", "/remote-care/board/rows/"):
        html = other.get(url).content.decode()
        assert not any(f"{name.upper()}," in html for name in ward)
        assert "No monitored patients" in html
    patient = ward["emergency"]
    assert other.get(f"/remote-care/patients/{patient.pk}/vitals/").status_code == 404
    assert other.get(f"/remote-care/patients/{patient.pk}/vitals/data/").status_code == 404


def test_board_pages_keep_urgency_order_and_the_poll_keeps_its_page(
    users, ward, client_for, monkeypatch
):
    """Most urgent patients on page 1; the live poll refreshes the page shown, not page 1."""
    from medai_site.audit.models import AuditEvent
    from remote_care.monitoring import board_views

    monkeypatch.setattr(board_views, "BOARD_PAGE_SIZE", 3)
    client = client_for(users.clinician_a)
    names = [name.upper() + "," for name in ward]

    def shown(html: str) -> list[str]:
        return [name for name in names if name in html]

    first = client.get("/remote-care/board/").content.decode()
    assert "Showing 1–3 of 8 monitored patients" in first
    assert shown(first) == names[:3]
    assert 'data-rows-url="/remote-care/board/rows/"' in first
    second = client.get("/remote-care/board/", {"page": "2"}).content.decode()
    assert "Showing 4–6 of 8 monitored patients" in second and shown(second) == names[3:6]
    assert 'data-rows-url="/remote-care/board/rows/?page=2"' in second
    poll = client.get("/remote-care/board/rows/?page=2", HTTP_X_MEDAI_POLL="1").content.decode()
    assert shown(poll) == names[3:6]
    events = AuditEvent.objects.filter(action=AuditEvent.Action.PATIENT_LIST_VIEWED)
    event = events.order_by("-pk").first()
    assert event.detail["page_number"] == 2
    assert event.detail["shown"] == [ward[n].pk for n in list(ward)[3:6]]
    for bad, expected in [("999", names[6:]), ("abc", names[:3]), ("-1", names[:3])]:
        for url in ("/remote-care/board/", "/remote-care/board/rows/"):
            response = client.get(url, {"page": bad})
            assert response.status_code == 200, (url, bad)
            assert shown(response.content.decode()) == expected, (url, bad)


def test_sparkline_shows_hourly_worst_news2_of_last_24_hours(users):
    patient = patient_for(users.clinician_a)
    _observe(patient, 9, minutes_ago=60 * 30)  # older than 24 h: not drawn
    _observe(patient, 2, minutes_ago=60 * 3 + 10)
    _observe(patient, 7, minutes_ago=60 * 3 + 5)
    _observe(patient, 1, minutes_ago=2)
    (row,) = board_rows(user=users.clinician_a)
    values = [v for _, v in row.sparkline]
    assert max(values) == 7 and 9 not in values and values[-1] == 1
    now = timezone.now()
    spark = news2_sparkline(row.sparkline, start=now - timedelta(hours=24), end=now)
    assert spark["band"] == "low" and spark["worst"] == 7
    assert len(spark["points"].split()) == len(row.sparkline)


@pytest.fixture
def long_series(users):
    """20,000 one-second observation sets ending now, with one desaturation and one spike."""
    patient = patient_for(users.clinician_a)
    device = device_register(patient=patient, label="kit", registered_by=users.clinician_a).device
    n = 20_000
    end = timezone.now().replace(microsecond=0)
    rng = np.random.default_rng(7)
    hr = 75 + 5 * np.sin(np.arange(n) / 300) + rng.normal(0, 1, n)
    spo2 = 96 + rng.normal(0, 0.5, n)
    hr[12_345] = 171.5
    spo2[4_321] = 79.25
    Observation.objects.bulk_create(
        [
            Observation(
                patient=patient,
                device=device,
                taken_at=end - timedelta(seconds=n - 1 - i),
                heart_rate=float(hr[i]),
                spo2=float(spo2[i]),
                # Blood pressure only every 10 minutes: a sparse series among dense ones.
                systolic_bp=120.0 if i % 600 == 0 else None,
                news2_total=int(i % 8),
            )
            for i in range(n)
        ],
        batch_size=5000,
    )
    _alert(Observation.objects.filter(patient=patient).first(), "URGENT")
    return patient, end, hr, spo2


def _data(client, patient, **params):
    return client.get(f"/remote-care/patients/{patient.pk}/vitals/data/", params)


def test_vitals_data_downsamples_to_requested_points(users, client_for, long_series):
    patient, end, hr, _ = long_series
    client = client_for(users.clinician_a)
    start = (end - timedelta(hours=6)).isoformat()
    response = _data(client, patient, start=start, end=end.isoformat(), points=500)
    assert response.status_code == 200
    body = response.json()
    hr_series = body["series"]["heart_rate"]
    assert hr_series["n_in"] == 20_000 and hr_series["method"] == "minmaxlttb"
    for key, series in body["series"].items():
        assert len(series["x"]) == len(series["y"]) <= 500, key
    for key in ("heart_rate", "spo2", "systolic_bp", "news2"):
        assert body["series"][key]["x"], key
    assert body["series"]["temperature"]["x"] == []  # never measured
    assert body["series"]["systolic_bp"]["n_in"] == 34
    assert len(body["alerts"]) == 1 and body["alerts"][0]["level"] == "URGENT"
    figure = body["figure"]
    assert any(t.get("name", "").startswith("Alert") for t in figure["data"])
    assert len(figure["layout"]["shapes"]) == 3  # the NEWS2 colour bands

    default = _data(client, patient, range="24h").json()
    assert all(len(s["x"]) <= 1500 for s in default["series"].values())


def test_vitals_data_minmax_keeps_extremes(users, client_for, long_series):
    patient, end, hr, spo2 = long_series
    client = client_for(users.clinician_a)
    body = _data(client, patient, range="24h", points=100, method="minmax").json()
    hr_y = [v for v in body["series"]["heart_rate"]["y"] if v is not None]
    spo2_y = [v for v in body["series"]["spo2"]["y"] if v is not None]
    assert len(body["series"]["heart_rate"]["y"]) <= 100
    assert math.isclose(max(hr_y), hr.max()) and math.isclose(min(hr_y), hr.min())
    assert math.isclose(min(spo2_y), 79.25) and math.isclose(max(spo2_y), spo2.max())


def test_long_windows_read_the_rollups_keeping_extremes(users, client_for, long_series):
    patient, end, hr, spo2 = long_series
    client = client_for(users.clinician_a)
    body = _data(client, patient, range="24h", points=200, method="minmax").json()
    assert body["level"] == "minute"  # rolled up on the way (no sweep has run here)
    series = body["series"]
    assert series["heart_rate"]["n_in"] == 20_000 and series["systolic_bp"]["n_in"] == 34
    assert all(len(s["y"]) <= 200 for s in series.values())
    hr_y = [v for v in series["heart_rate"]["y"] if v is not None]
    assert math.isclose(max(hr_y), hr.max()) and math.isclose(min(hr_y), hr.min())
    assert math.isclose(min(v for v in series["spo2"]["y"] if v is not None), 79.25)
    lttb = _data(client, patient, range="24h", points=200).json()["series"]["heart_rate"]
    assert 100 < len(lttb["y"]) <= 200


def test_vitals_data_zoom_returns_finer_points_for_a_narrow_window(users, client_for, long_series):
    patient, end, _, _ = long_series
    client = client_for(users.clinician_a)
    # Zoomed ranges come back from the chart as wall-clock time without an offset.
    local_end = timezone.localtime(end).replace(tzinfo=None)
    zoom = _data(
        client,
        patient,
        start=(local_end - timedelta(seconds=299)).isoformat(),
        end=local_end.isoformat(),
        points=1500,
    ).json()
    assert len(zoom["series"]["heart_rate"]["x"]) == 300  # every point, nothing dropped


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"start": "yesterday"}, "start must be an ISO 8601"),
        ({"end": "2026-13-45T00:00:00"}, "end must be an ISO 8601"),
        ({"start": "2026-02-02T00:00:00", "end": "2026-02-01T00:00:00"}, "before end"),
        ({"start": "2025-01-01T00:00:00", "end": "2026-01-01T00:00:00"}, "at most"),
        ({"points": "many"}, "integer"),
        ({"points": "3"}, "between"),
        ({"points": "1000000"}, "between"),
        ({"method": "mean"}, "method"),
        ({"range": "2y"}, "range"),
    ],
)
def test_vitals_data_rejects_bad_parameters(users, client_for, params, message):
    patient = patient_for(users.clinician_a)
    response = _data(client_for(users.clinician_a), patient, **params)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_vitals_page_is_linked_and_loads_without_inline_script(users, client_for):
    patient = patient_for(users.clinician_a)
    client = client_for(users.clinician_a)
    monitoring = client.get(f"/remote-care/patients/{patient.pk}/").content.decode()
    assert f"/remote-care/patients/{patient.pk}/vitals/" in monitoring
    html = client.get(f"/remote-care/patients/{patient.pk}/vitals/").content.decode()
    assert f"/remote-care/patients/{patient.pk}/vitals/data/" in html
    assert "js/vitals.js" in html and "vendor/plotly/plotly.min.js" in html
    assert "<script>" not in html and "cdn" not in html.lower()
    # An empty patient still gets a figure (empty panels), not an error.
    body = _data(client, patient).json()
    assert all(s["x"] == [] for s in body["series"].values())


def test_vitals_figure_shares_one_time_axis_across_panels():
    now = timezone.now()
    figure = vitals_figure({}, [], start=now - timedelta(hours=1), end=now)
    assert {t["xaxis"] for t in figure["data"]} == {"x"}
    assert len({t["yaxis"] for t in figure["data"]}) == 6
    assert figure["layout"]["yaxis6"]["range"] == [-0.5, 20.5]
