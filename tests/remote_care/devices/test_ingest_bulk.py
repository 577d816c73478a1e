"""Bulk ingestion through the device API: a resent batch stores nothing twice, good items are
stored beside bad ones, alerts and one audit event per batch, all or nothing; on PostgreSQL
(COPY staging) and on the path the embedded default (SQLite) takes."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.utils import timezone

from medai_site.audit.models import AuditEvent
from remote_care.devices import services
from remote_care.devices.services import device_register, observations_ingest
from remote_care.models import Alert, Observation
from remote_care.physiology.news2 import Observation as News2Observation
from remote_care.physiology.news2 import score_news2
from tests.platform.factories import patient_for

pytestmark = pytest.mark.django_db
URL = "/remote-care/api/v1/observations/"
ROOT = Path(__file__).resolve().parents[3]
START = timezone.now() - timedelta(hours=10)  # one clock for every batch, so resends match


@pytest.fixture(autouse=True)
def _fresh_throttle():
    cache.clear()


@pytest.fixture(params=["postgresql", "generic"])
def path(request, monkeypatch):
    """Each test runs through the COPY path and through the one SQLite takes (look-up and
    bulk_create), on the test database."""
    if request.param == "generic":
        monkeypatch.setattr(connection, "vendor", "sqlite")
    return request.param


@pytest.fixture
def issued(users):
    patient = patient_for(users.clinician_a)
    return device_register(patient=patient, label="kit", registered_by=users.clinician_a)


def post(token: str, body: object):
    return Client().post(
        URL, body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )


def reading(i: int, **overrides: object) -> dict:
    base = {
        "taken_at": (START + timedelta(seconds=i)).isoformat(),
        "heart_rate": 70 + i % 9,
        "spo2": 96 + i % 3,
        "respiratory_rate": 14 + i % 4,
        "temperature": 36.8,
        "systolic_bp": 120 + i % 7,
        "diastolic_bp": 78,
        "consciousness": "A",
        "on_oxygen": False,
    }
    return {**base, **overrides}


def test_the_same_batch_twice_stores_it_once(path, issued):
    batch = {"observations": [reading(i) for i in range(300)]}
    first = post(issued.token, batch)
    assert first.status_code == 201 and first.json()["stored"] == 300
    again = post(issued.token, batch)
    body = again.json()
    assert again.status_code == 200
    assert body["stored"] == 0 and body["duplicates"] == list(range(300)) and not body["news2"]
    assert Observation.objects.filter(device=issued.device).count() == 300


def test_a_batch_overlapping_an_earlier_one_stores_only_the_new_sets(path, issued):
    post(issued.token, {"observations": [reading(i) for i in range(0, 100)]})
    body = post(issued.token, {"observations": [reading(i) for i in range(50, 150)]}).json()
    assert body["stored"] == 50 and body["duplicates"] == list(range(50))
    assert Observation.objects.filter(device=issued.device).count() == 150


def test_a_timestamp_repeated_inside_a_batch_is_stored_once(path, issued):
    items = [reading(0), reading(1), reading(0, heart_rate=140), reading(2)]
    body = post(issued.token, {"observations": items}).json()
    assert body["stored"] == 3 and body["duplicates"] == [2]
    assert Observation.objects.get(taken_at=items[0]["taken_at"]).heart_rate == 70


def test_good_items_are_stored_beside_bad_ones_with_a_message_each(path, issued):
    items = [reading(i) for i in range(6)]
    items[1]["heart_rate"] = 400
    items[3] = "not an object"
    items[4]["diastolic_bp"] = 130
    items[5]["taken_at"] = "2026-02-30T10:00:00Z"
    response = post(issued.token, {"observations": items})
    body = response.json()
    assert response.status_code == 201 and body["stored"] == 2
    assert body["rejected"][:3] == [
        {"index": 1, "errors": {"heart_rate": ["must be between 20 and 300 beats/min"]}},
        {"index": 3, "errors": {"non_field_errors": ["must be a JSON object"]}},
        {"index": 4, "errors": {"diastolic_bp": ["must be lower than the systolic pressure"]}},
    ]
    assert body["rejected"][3]["index"] == 5 and set(body["rejected"][3]["errors"]) == {"taken_at"}
    assert [n["taken_at"] for n in body["news2"]] == [
        Observation.objects.get(taken_at=items[i]["taken_at"]).taken_at.isoformat() for i in (0, 2)
    ]


def test_each_stored_set_has_its_news2_summary(path, issued):
    items = [reading(0), reading(1, heart_rate=135, spo2=91, consciousness="")]
    post(issued.token, {"observations": items})
    for item in items:
        row = Observation.objects.get(taken_at=item["taken_at"])
        values = {k: v for k, v in item.items() if k != "taken_at"}
        expected = score_news2(News2Observation.from_vitals(values, spo2_scale=1))
        assert row.news2 == expected.summary_dict()
        assert (row.news2_total, row.news2_partial) == (expected.total, expected.is_partial)
    assert Observation.objects.get(taken_at=items[1]["taken_at"]).consciousness == ""


def test_alerts_are_raised_from_a_bulk_batch(path, issued):
    items = [reading(i) for i in range(200)]
    # Set 120 scores 3 + 3 + 3 (pulse, SpO2, new confusion): an emergency.
    items[120].update(heart_rate=135, spo2=90, consciousness="C")
    body = post(issued.token, {"observations": items}).json()
    assert [(a["level"], a["news2_total"]) for a in body["alerts"]] == [("EMERGENCY", 9)]
    alert = Alert.objects.get(patient=issued.device.patient)
    assert alert.observation.taken_at.isoformat() == items[120]["taken_at"]
    # Resending the batch raises nothing again.
    assert post(issued.token, {"observations": items}).json()["alerts"] == []
    assert Alert.objects.filter(patient=issued.device.patient).count() == 1


def test_one_audit_event_per_batch(path, issued):
    events = AuditEvent.objects.filter(actor_username=f"device:{issued.device.token_prefix}")
    post(issued.token, {"observations": [reading(i) for i in range(500)]})
    post(issued.token, {"observations": [reading(i) for i in range(400, 600)]})
    assert events.count() == 2
    assert [e.detail["observations_stored"] for e in events.order_by("pk")] == [500, 100]
    assert [e.detail["duplicates"] for e in events.order_by("pk")] == [0, 100]


def test_a_failure_mid_batch_leaves_nothing_written(path, issued, monkeypatch):
    def fail(**kwargs):
        raise RuntimeError("worker died")

    monkeypatch.setattr(services, "alerts_raise", fail)
    with pytest.raises(RuntimeError):
        observations_ingest(
            device=issued.device,
            items=[{"taken_at": timezone.now() - timedelta(minutes=i), "heart_rate": 72.0}
                   for i in range(1, 50)],
        )  # fmt: skip
    assert not Observation.objects.filter(device=issued.device).exists()
    assert not AuditEvent.objects.filter(
        actor_username=f"device:{issued.device.token_prefix}"
    ).exists()


def test_the_stored_sets_come_back_in_time_order_with_their_ids(path, issued):
    now = timezone.now()
    items = [{"taken_at": now - timedelta(minutes=m), "heart_rate": 72.0} for m in (5, 9, 1)]
    result = observations_ingest(device=issued.device, items=items)
    assert [s.taken_at for s in result.stored] == sorted(i["taken_at"] for i in items)
    rows = dict(Observation.objects.values_list("pk", "taken_at"))
    assert {s.pk: s.taken_at for s in result.stored} == rows


SQLITE_SCRIPT = """
import datetime as dt, json
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.contrib.auth import get_user_model
from django.test import Client
from medai_site.patients.services import patient_create
from remote_care.devices.services import device_register
from remote_care.models import Alert, Observation
user = get_user_model().objects.create_user("sqlite-kit", password=None)
patient = patient_create(mrn="SQ-1", given_name="S", family_name="Q", birth_date="1950-01-01",
                         sex="female", created_by=user)
issued = device_register(patient=patient, label="kit", registered_by=user)
start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
items = [{"taken_at": (start + dt.timedelta(seconds=i)).isoformat(), "heart_rate": 72,
          "spo2": 97, "respiratory_rate": 14, "consciousness": "A", "on_oxygen": False}
         for i in range(2000)]
items[1500].update(heart_rate=135, spo2=90, consciousness="C")
body = json.dumps({"observations": items + [{"taken_at": "soon", "heart_rate": 72}]})
auth = {"HTTP_AUTHORIZATION": "Bearer " + issued.token, "content_type": "application/json"}
for _ in range(2):
    r = Client().post("/remote-care/api/v1/observations/", body, **auth)
    out = r.json()
    print("status", r.status_code, "stored", out["stored"], "duplicates", len(out["duplicates"]),
          "rejected", [x["index"] for x in out["rejected"]], "alerts",
          [a["level"] for a in out["alerts"]])
print("rows", Observation.objects.count(), "alerts", Alert.objects.count())
"""


@pytest.mark.e2e
def test_the_embedded_default_ingests_a_batch_on_sqlite(tmp_path):
    """The embedded default, in a process of its own: the same API on SQLite."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL"}
    }
    env.update(
        DJANGO_SETTINGS_MODULE="medai_site.settings.local",
        MEDAI_VAR_DIR=str(tmp_path / "var"),
        DJANGO_SECRET_KEY="sqlite-ingest-test-key-0123456789-0123456789-0123456789",
        DJANGO_ALLOWED_HOSTS="testserver",
    )
    result = subprocess.run(
        [sys.executable, "-c", SQLITE_SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "status 201 stored 2000 duplicates 0 rejected [2000] alerts ['EMERGENCY']" in out
    assert "status 200 stored 0 duplicates 2000 rejected [2000] alerts []" in out
    assert "rows 2000 alerts 1" in out


def test_sets_stored_behind_the_look_up_are_skipped_not_doubled(issued, monkeypatch):
    """A writer outside the monitoring lock (a script) stores sets after the look-up: the
    plain insert fails on the unique key and the batch goes in again with ON CONFLICT."""
    assert connection.vendor == "postgresql"
    post(issued.token, {"observations": [reading(i) for i in range(0, 40)]})
    fallbacks = []
    staged = services._staged_insert

    def counting(**kwargs):
        fallbacks.append(kwargs.get("on_conflict", False))
        return staged(**kwargs)

    monkeypatch.setattr(services, "_stored_times", lambda **kwargs: set())
    monkeypatch.setattr(services, "_staged_insert", counting)
    response = post(issued.token, {"observations": [reading(i) for i in range(20, 70)]})
    body = response.json()
    assert response.status_code == 201, body
    assert fallbacks == [False, True]
    assert body["stored"] == 30 and body["duplicates"] == list(range(20))
    assert [n["taken_at"] for n in body["news2"]] == [reading(i)["taken_at"] for i in range(40, 70)]
    assert Observation.objects.filter(device=issued.device).count() == 70
