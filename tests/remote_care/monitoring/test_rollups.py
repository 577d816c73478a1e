"""Vital-sign roll-ups: per-minute and per-hour min/max/sum/count equal to the raw readings,
refreshed idempotently, caught up by the sweep, and read by the vitals chart for long ranges."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from django.utils import timezone

from remote_care.devices.services import device_register
from remote_care.models import Observation, VitalRollup, VitalRollupCursor
from remote_care.monitoring.services import (
    SWEEP_CURSOR,
    vitals_rollup_catch_up,
    vitals_rollup_refresh,
    vitals_rollup_sweep,
)
from remote_care.monitoring.timeseries import ROLLUP_VITALS
from tests.platform.factories import patient_for

pytestmark = pytest.mark.django_db


def _device(user, patient):
    return device_register(patient=patient, label="kit", registered_by=user).device


def _random_readings(device, *, start, seconds, rng, every=7):
    """Irregular readings (1 to ``every`` s apart) with a quarter of each vital missing."""
    offsets = np.cumsum(rng.integers(1, every + 1, size=seconds // ((every + 1) // 2)))
    offsets = offsets[offsets < seconds]
    rows = []
    for off in offsets:
        values = {
            "heart_rate": float(rng.normal(80, 12)),
            "spo2": float(rng.normal(95, 2)),
            "respiratory_rate": float(rng.integers(8, 30)),
            "temperature": float(rng.normal(37, 0.6)),
            "systolic_bp": float(rng.normal(125, 15)),
            "diastolic_bp": float(rng.normal(80, 10)),
            "news2_total": int(rng.integers(0, 12)),
        }
        for name in values:
            if rng.random() < 0.25:
                values[name] = None
        rows.append(
            Observation(
                patient=device.patient,
                device=device,
                taken_at=start + timedelta(seconds=int(off), microseconds=int(rng.integers(1e6))),
                **values,
            )
        )
    Observation.objects.bulk_create(rows, batch_size=5000)
    return rows


def _expected(rows, level):
    """(patient, vital, bucket) -> (n, sum, min, max) computed in Python from the raw rows."""
    groups = defaultdict(list)
    for o in rows:
        t = o.taken_at.astimezone(UTC)
        bucket = t.replace(second=0, microsecond=0)
        if level == "hour":
            bucket = bucket.replace(minute=0)
        for key, column in ROLLUP_VITALS.items():
            value = getattr(o, column)
            if value is not None:
                groups[(o.patient_id, key, bucket)].append(float(value))
    return {k: (len(v), sum(v), min(v), max(v)) for k, v in groups.items()}


def _stored(level):
    return {
        (r.patient_id, r.vital, r.bucket): (r.n, r.total, r.low, r.high)
        for r in VitalRollup.objects.filter(level=level)
    }


def _assert_same(stored, expected):
    assert stored.keys() == expected.keys()
    for key, (n, total, low, high) in expected.items():
        got = stored[key]
        assert got[0] == n, key
        assert got[1] == pytest.approx(total, rel=1e-9)
        assert (got[2], got[3]) == pytest.approx((low, high), rel=1e-12)


@pytest.fixture
def two_patients(users):
    rng = np.random.default_rng(16)
    start = datetime(2026, 11, 2, 21, 47, 13, tzinfo=UTC)  # buckets cut mid-hour, mid-minute
    rows = []
    for name in ("one", "two"):
        patient = patient_for(users.clinician_a, family_name=name)
        device = _device(users.clinician_a, patient)
        rows += _random_readings(device, start=start, seconds=3 * 3600 + 500, rng=rng)
    return rows, start


def test_rollups_equal_the_raw_aggregates_on_random_data(two_patients):
    rows, start = two_patients
    patients = {o.patient_id for o in rows}
    written = vitals_rollup_refresh(
        patient_ids=patients, start=start, end=start + timedelta(hours=4)
    )
    minute, hour = _expected(rows, "minute"), _expected(rows, "hour")
    assert written == len(minute) + len(hour)
    _assert_same(_stored("minute"), minute)
    _assert_same(_stored("hour"), hour)
    # The mean a chart would show is the raw mean.
    some = VitalRollup.objects.filter(level="hour", vital="heart_rate").first()
    raw = [
        o.heart_rate
        for o in rows
        if o.patient_id == some.patient_id
        and o.heart_rate is not None
        and o.taken_at.astimezone(UTC).replace(minute=0, second=0, microsecond=0) == some.bucket
    ]
    assert some.mean == pytest.approx(float(np.mean(raw)))


def test_refresh_is_idempotent_and_recomputes_touched_buckets_whole(two_patients):
    rows, start = two_patients
    patients = {o.patient_id for o in rows}
    end = start + timedelta(hours=4)
    vitals_rollup_refresh(patient_ids=patients, start=start, end=end)
    once = (_stored("minute"), _stored("hour"))
    vitals_rollup_refresh(patient_ids=patients, start=start, end=end)
    # An overlapping refresh of a few minutes (as an ingest batch would ask) changes nothing.
    vitals_rollup_refresh(
        patient_ids=patients, start=start + timedelta(minutes=30), end=start + timedelta(minutes=33)
    )
    # (Sums may differ in the last bit: the database adds in no fixed order.)
    _assert_same(_stored("minute"), once[0])
    _assert_same(_stored("hour"), once[1])
    assert VitalRollup.objects.count() == len(once[0]) + len(once[1])

    # A late reading inside an already rolled-up minute: refreshing just its instant gives the
    # bucket's new totals (recomputed from all its readings, not added twice).
    late = Observation.objects.create(
        patient=rows[0].patient,
        device=rows[0].device,
        taken_at=rows[10].taken_at + timedelta(microseconds=1),
        heart_rate=250.0,
    )
    vitals_rollup_refresh(patient_ids=[late.patient_id], start=late.taken_at, end=late.taken_at)
    everything = [*rows, late]
    _assert_same(_stored("minute"), _expected(everything, "minute"))
    _assert_same(_stored("hour"), _expected(everything, "hour"))


def test_sweep_rolls_up_what_was_stored_and_advances_its_cursor(two_patients):
    rows, _ = two_patients
    young = sorted(Observation.objects.order_by("-pk")[:5].values_list("pk", flat=True))
    Observation.objects.exclude(pk__in=young).update(
        received_at=timezone.now() - timedelta(minutes=5)
    )
    assert vitals_rollup_sweep(batch=1000) == 1000  # one batch per call
    while vitals_rollup_sweep(batch=1000):
        pass
    # The five youngest rows wait for a later sweep (a transaction may still be committing
    # lower keys); every minute with a row before them is rolled up.
    assert VitalRollupCursor.objects.get(name=SWEEP_CURSOR).last_observation == young[0] - 1
    settled = [o for o in rows if o.pk < young[0]]
    assert _expected(settled, "minute").keys() <= _stored("minute").keys()
    Observation.objects.update(received_at=timezone.now() - timedelta(minutes=5))
    assert vitals_rollup_sweep() == 5
    assert vitals_rollup_sweep() == 0
    _assert_same(_stored("minute"), _expected(rows, "minute"))
    _assert_same(_stored("hour"), _expected(rows, "hour"))


def test_chart_fallback_rolls_up_what_the_sweep_has_not_reached(two_patients):
    rows, _ = two_patients
    patient_id = rows[0].patient_id
    assert vitals_rollup_catch_up(patient_id=patient_id) > 0
    mine = [o for o in rows if o.patient_id == patient_id]
    _assert_same(_stored("hour"), _expected(mine, "hour"))
    VitalRollupCursor.objects.update_or_create(
        name=SWEEP_CURSOR, defaults={"last_observation": max(o.pk for o in rows)}
    )
    assert vitals_rollup_catch_up(patient_id=patient_id) == 0  # nothing new: nothing to do


# --- The vitals chart on roll-ups -------------------------------------------------------------


@pytest.fixture
def month(users):
    """30 days of readings, 30 s apart over the last 2 days and 2 min apart before (a month at
    1 Hz in miniature), with a 6-hour outage 10 days ago and one desaturation."""
    patient = patient_for(users.clinician_a)
    device = _device(users.clinician_a, patient)
    end = timezone.now().replace(microsecond=0)
    seconds_ago = np.concatenate(
        [np.arange(30 * 86400 - 120, 2 * 86400, -120), np.arange(2 * 86400, -1, -30)]
    )
    outage_end = end - timedelta(days=10)
    outage = (seconds_ago > 10 * 86400) & (seconds_ago < 10 * 86400 + 6 * 3600)
    seconds_ago = seconds_ago[~outage]
    dip = len(seconds_ago) // 3
    Observation.objects.bulk_create(
        (
            Observation(
                patient=patient,
                device=device,
                taken_at=end - timedelta(seconds=int(ago)),
                heart_rate=72 + 8 * math.sin(ago / 20_000),
                spo2=81.0 if i == dip else 96.0,
                news2_total=i % 5,
            )
            for i, ago in enumerate(seconds_ago)
        ),
        batch_size=10_000,
    )
    return patient, outage_end, len(seconds_ago)


def _data(client, patient, **params):
    return client.get(f"/remote-care/patients/{patient.pk}/vitals/data/", params)


def test_chart_picks_the_level_by_range_and_stays_bounded(users, client_for, month):
    patient, _, n = month
    client = client_for(users.clinician_a)
    response = _data(client, patient, range="30d", method="minmax")
    body = response.json()
    assert response.status_code == 200 and body["level"] == "hour"
    assert len(response.content) < 1_000_000
    series = body["series"]
    assert series["heart_rate"]["n_in"] == n and series["spo2"]["n_in"] == n
    assert all(len(s["y"]) <= 1500 for s in series.values())
    assert min(v for v in series["spo2"]["y"] if v is not None) == 81.0  # the dip survives
    # Alert thresholds as before: the NEWS2 colour bands on its panel.
    assert len(body["figure"]["layout"]["shapes"]) == 3
    # Even at the most points a client may ask for, 30 days stay under a megabyte.
    widest = _data(client, patient, range="30d", points=5000)
    assert widest.json()["level"] == "hour" and len(widest.content) < 1_000_000
    assert _data(client, patient, range="24h").json()["level"] == "minute"
    assert _data(client, patient, range="1h").json()["level"] == "raw"


def test_zoom_returns_finer_data_and_gaps_stay_gaps(users, client_for, month):
    patient, outage_end, _ = month
    client = client_for(users.clinician_a)
    local = timezone.localtime(timezone.now()).replace(tzinfo=None, microsecond=0)

    def read(start, end):
        body = _data(
            client, patient, start=start.isoformat(), end=end.isoformat(), points=5000
        ).json()
        hr = body["series"]["heart_rate"]
        x = np.unique([np.datetime64(t) for t, y in zip(hr["x"], hr["y"]) if y is not None])
        return body["level"], x

    levels, steps = [], []
    for hours in (30 * 24, 24, 1):
        level, x = read(local - timedelta(hours=hours), local)
        levels.append(level)
        steps.append(np.median(np.diff(x)) / np.timedelta64(1, "s"))
    assert levels == ["hour", "minute", "raw"]
    assert steps == [3600, 60, 30]  # each zoom finer
    # No point is invented inside the 6-hour outage (hour buckets touching its edges aside).
    _, x = read(local - timedelta(days=14), local)
    outage = timezone.localtime(outage_end).replace(tzinfo=None)
    inside = (x > np.datetime64(outage - timedelta(hours=5))) & (
        x < np.datetime64(outage - timedelta(hours=1))
    )
    assert x.size > 100 and not inside.any()
