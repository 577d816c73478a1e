"""Remote care: (1) readings/second stored through the device API in batches vs a raw
PostgreSQL COPY of the same rows (into a temporary table, without NEWS2 summaries: faster
than any ingest path can be); (2) response time of the vitals chart data for a 30-day,
1 Hz range vs a 1-hour range (server-side down-sampling).

Needs the PostgreSQL the test suite uses (127.0.0.1:5432, trust auth); it creates and drops
its own database `medai_bench`.

    .venv/bin/python bench/vitals_ingest.py [--readings 50000] [--batch 5000] [--days 30]
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
    parser.add_argument("--readings", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument(
        "--no-startup-hook",
        action="store_true",
        help="skip the web worker's start-up hook (gc.freeze), to measure what it changes",
    )
    args = parser.parse_args()
    with postgres_site("medai_bench"):
        run(args)


def run(args: argparse.Namespace) -> None:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from medai_site.core.roles import Role
    from remote_care.devices.services import device_register
    from remote_care.models import OBSERVATION_VITALS, Observation

    cache.clear()
    settings.MEDAI_DEVICE_RATE_LIMIT = None  # measure throughput, not the throttle
    from django.contrib.auth.models import Group

    user = get_user_model().objects.create_user("bench", password=None)
    user.groups.add(Group.objects.get_or_create(name=str(Role.CLINICIAN))[0])
    patient = bench_patient(
        user, mrn="BENCH-V", given_name="Vital", family_name="Signs", birth_date="1950-01-01"
    )
    issued = device_register(patient=patient, label="bench", registered_by=user)
    client = Client()
    start = timezone.now() - timedelta(days=args.days + 1)

    def reading(i: int) -> dict:
        return {
            "taken_at": (start + timedelta(seconds=i)).isoformat(),
            "heart_rate": 70 + i % 9,
            "spo2": 96 + i % 3,
            "respiratory_rate": 14 + i % 4,
            "temperature": 36.8,
            "systolic_bp": 120 + i % 7,
            "diastolic_bp": 78,
            "consciousness": "A",
            "on_oxygen": False,
        }

    # (1a) through the API, batched. One refused request first, untimed: the first request of
    # a process imports the whole URLconf (every app's views), which is no part of ingesting.
    warm = client.post(
        "/remote-care/api/v1/observations/",
        {"observations": []},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {issued.token}",
    )
    assert warm.status_code == 400, warm.content[:300]
    # The views run in this process, so it does what gunicorn's post_worker_init does in
    # production (medai_site/gunicorn_config.py) once the site is loaded.
    if not args.no_startup_hook:
        from medai_site.core.startup import gc_freeze_after_startup

        gc_freeze_after_startup()
    began = time.perf_counter()
    for first in range(0, args.readings, args.batch):
        body = {"observations": [reading(i) for i in range(first, first + args.batch)]}
        response = client.post(
            "/remote-care/api/v1/observations/",
            body,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {issued.token}",
        )
        assert response.status_code == 201, response.content[:300]
    api_seconds = time.perf_counter() - began
    assert Observation.objects.count() == args.readings

    # (1b) raw COPY of the same rows into a table of the same shape.
    columns = (
        "patient_id",
        "device_id",
        "taken_at",
        "received_at",
        *OBSERVATION_VITALS,
        "news2_partial",
        "news2",
    )
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE copy_target (LIKE remote_care_observation INCLUDING ALL)")
    rows = io.StringIO()
    now = timezone.now().isoformat()
    for i in range(args.readings):
        r = reading(i)
        rows.write(
            "\t".join(
                str(v)
                for v in (
                    patient.pk,
                    issued.device.pk,
                    r["taken_at"],
                    now,
                    r["heart_rate"],
                    r["spo2"],
                    r["respiratory_rate"],
                    r["temperature"],
                    r["systolic_bp"],
                    r["diastolic_bp"],
                    "A",
                    "f",
                    "f",
                    "{}",
                )
            )
            + "\n"
        )
    began = time.perf_counter()
    with connection.cursor() as cursor:
        raw = cursor.connection
        with raw.cursor().copy(f"COPY copy_target ({', '.join(columns)}) FROM STDIN") as copy:
            copy.write(rows.getvalue())
    copy_seconds = time.perf_counter() - began

    # (2) chart data: fill the last N days at 1 Hz with COPY, then time the two ranges.
    end = timezone.now()
    fill = io.StringIO()
    seconds = args.days * 86400
    for s in range(seconds):
        t = (end - timedelta(seconds=seconds - s)).isoformat()
        fill.write(
            f"{patient.pk}\t{issued.device.pk}\t{t}\t{now}\t{70 + s % 13}\t{96 + s % 3}\t"
            f"{14 + s % 5}\t36.9\t{118 + s % 9}\t76\tA\tf\t{s % 4}\tf\t{{}}\n"
        )
    with connection.cursor() as cursor:
        with cursor.connection.cursor().copy(
            "COPY remote_care_observation (patient_id, device_id, taken_at, received_at, "
            "heart_rate, spo2, respiratory_rate, temperature, systolic_bp, diastolic_bp, "
            "consciousness, on_oxygen, news2_total, news2_partial, news2) FROM STDIN"
        ) as copy:
            copy.write(fill.getvalue())
        cursor.execute("ANALYZE remote_care_observation")
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    url = f"/remote-care/patients/{patient.pk}/vitals/data/"

    def timed(range_name: str) -> float:
        times = []
        for _ in range(3):
            began = time.perf_counter()
            response = client.get(url, {"range": range_name})
            assert response.status_code == 200, response.content[:300]
            times.append(time.perf_counter() - began)
        return statistics.median(times)

    hour = timed("1h")
    month = timed(f"{args.days}d" if args.days in (7, 30, 90) else "30d")
    api_rate, copy_rate = args.readings / api_seconds, args.readings / copy_seconds
    print(f"Vitals ingest, {args.readings} readings in batches of {args.batch} (PostgreSQL)")
    print(f"  API (validation, NEWS2, alerts, audit): {api_rate:10.0f} readings/s")
    print(f"  raw COPY of the same rows            : {copy_rate:10.0f} readings/s")
    print(f"  ratio API/COPY                       : {api_rate / copy_rate:10.3f}")
    print(f"Vitals chart data, {seconds:,} observations at 1 Hz")
    print(f"  1-hour range : {hour * 1000:8.0f} ms")
    print(f"  {args.days}-day range: {month * 1000:8.0f} ms")
    print(f"  ratio {args.days} d / 1 h: {month / hour:8.1f}")


if __name__ == "__main__":
    main()
