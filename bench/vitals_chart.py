"""Vitals chart: response time and payload of the chart data for a 1-hour range vs a 30-day
range of one patient measured at 1 Hz (2.6 million observation sets), side by side. Long
ranges read the per-minute / per-hour roll-ups (rolled up first, as the sweep would, and timed
apart); the 1-hour range reads the raw sets.

Needs the PostgreSQL the test suite uses (127.0.0.1:5432, trust auth); it creates and drops
its own database `medai_bench_chart`.

    .venv/bin/python bench/vitals_chart.py [--days 30] [--repeat 5]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness import bench_patient, postgres_site  # noqa: E402  (bench/ is on sys.path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30, choices=(7, 30, 90))
    parser.add_argument("--repeat", type=int, default=5, help="requests per range (median)")
    args = parser.parse_args()
    with postgres_site("medai_bench_chart"):
        run(args)


def fill(patient_pk: int, device_pk: int, seconds: int) -> None:
    """``seconds`` observation sets at 1 Hz ending now, by COPY, received an hour ago."""
    from django.db import connection
    from django.utils import timezone

    end = timezone.now()
    received = (end - timedelta(hours=1)).isoformat()
    first = end - timedelta(seconds=seconds)
    rows = io.StringIO()
    for s in range(seconds):
        t = (first + timedelta(seconds=s)).isoformat()
        rows.write(
            f"{patient_pk}\t{device_pk}\t{t}\t{received}\t{70 + s % 13}\t{96 + s % 3}\t"
            f"{14 + s % 5}\t36.9\t{118 + s % 9}\t76\tA\tf\t{s % 4}\tf\t{{}}\n"
        )
    with connection.cursor() as cursor:
        with cursor.connection.cursor().copy(
            "COPY remote_care_observation (patient_id, device_id, taken_at, received_at, "
            "heart_rate, spo2, respiratory_rate, temperature, systolic_bp, diastolic_bp, "
            "consciousness, on_oxygen, news2_total, news2_partial, news2) FROM STDIN"
        ) as copy:
            copy.write(rows.getvalue())
        cursor.execute("ANALYZE remote_care_observation")


def run(args: argparse.Namespace) -> None:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection
    from django.test import Client

    from medai_site.core.roles import Role
    from remote_care.devices.services import device_register
    from remote_care.monitoring.services import vitals_rollup_sweep

    user = get_user_model().objects.create_user("bench", password=None)
    user.groups.add(Group.objects.get_or_create(name=str(Role.CLINICIAN))[0])
    patient = bench_patient(
        user, mrn="BENCH-C", given_name="Chart", family_name="Vitals", birth_date="1950-01-01"
    )
    device = device_register(patient=patient, label="bench", registered_by=user).device
    seconds = args.days * 86400
    fill(patient.pk, device.pk, seconds)

    began = time.perf_counter()
    while vitals_rollup_sweep():
        pass
    rollup_seconds = time.perf_counter() - began
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE remote_care_vitalrollup")

    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    url = f"/remote-care/patients/{patient.pk}/vitals/data/"

    def timed(range_name: str) -> tuple[float, int, str, int]:
        times, size, level, points = [], 0, "", 0
        client.get(url, {"range": range_name})  # warm: connection, caches
        for _ in range(args.repeat):
            began = time.perf_counter()
            response = client.get(url, {"range": range_name})
            times.append(time.perf_counter() - began)
            assert response.status_code == 200, response.content[:300]
            body = response.json()
            size, level = len(response.content), body["level"]
            points = max(len(s["y"]) for s in body["series"].values())
        return statistics.median(times), size, level, points

    hour = timed("1h")
    month = timed(f"{args.days}d")
    print(f"Vitals chart data, {seconds:,} observation sets at 1 Hz (PostgreSQL)")
    print(f"  roll-up of every set (sweep, once) : {rollup_seconds:8.1f} s")
    for name, (median, size, level, points) in (("1-hour ", hour), (f"{args.days}-day ", month)):
        print(
            f"  {name} range: {median * 1000:8.0f} ms  payload {size / 1e6:5.2f} MB  "
            f"({level}, at most {points} points per series)"
        )
    print(f"  ratio {args.days} d / 1 h time   : {month[0] / hour[0]:8.2f}")


if __name__ == "__main__":
    main()
