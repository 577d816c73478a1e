"""Remote care: (1) readings/second stored through the device API in batches vs a raw
PostgreSQL COPY of the same rows, against two baselines: (a) COPY into a temporary table
shaped like the observations (`LIKE ... INCLUDING ALL`: same columns, indexes and checks,
but no WAL, no foreign keys, not partitioned) without NEWS2 summaries, the issue's original
baseline and faster than any ingest path can be; (b) COPY into the real, partitioned
observations table (WAL, every index, the foreign keys, committed), once with empty
summaries as in (a) and once with the very rows the API stored (summaries included), under
a second and third device of the same patient. Each of --rounds rounds runs the API, then
the baselines, on fresh timestamps; the ratios are the median of the per-round ratios (the
machine is shared: load swings one run's COPY by 3x, alternating runs see the same load).
(2) Response time of the vitals chart data for a 30-day, 1 Hz range vs a 1-hour range
(server-side down-sampling).

Needs the PostgreSQL the test suite uses (127.0.0.1:5432, trust auth); it creates and drops
its own database `medai_bench` (MEDAI_BENCH_DB names another).

    .venv/bin/python bench/vitals_ingest.py [--readings 50000] [--batch 5000] [--days 30]
        [--rounds 3]
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness import bench_patient, postgres_site  # noqa: E402  (bench/ is on sys.path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="alternating rounds (API, then each COPY baseline); the medians are printed",
    )
    parser.add_argument(
        "--staged-too",
        action="store_true",
        help="each round also posts the same readings (another device) through the previous "
        "insert (no look-up, INSERT ... ON CONFLICT from the staging table), to compare",
    )
    parser.add_argument(
        "--no-startup-hook",
        action="store_true",
        help="skip the web worker's start-up hook (gc.freeze), to measure what it changes",
    )
    args = parser.parse_args()
    if args.rounds < 1 or args.readings < 1 or args.batch < 1:
        parser.error("--rounds, --readings and --batch must be 1 or more")
    with postgres_site(os.environ.get("MEDAI_BENCH_DB", "medai_bench")):
        run(args)


def run(args: argparse.Namespace) -> None:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.cache import cache
    from django.db import connection, transaction
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
    # The real-table baselines write under devices of their own: the same rows, no conflict
    # with what the API stored, and every row committed like the API's.
    copy_device = device_register(patient=patient, label="copy", registered_by=user).device
    stored_device = device_register(patient=patient, label="stored", registered_by=user).device
    client = Client()
    # Every round stores fresh timestamps, all before the chart's last --days days.
    span_days = math.ceil(args.rounds * args.readings / 86400)
    start = timezone.now() - timedelta(days=args.days + span_days + 1)
    # The months the rounds write into exist, as the daily beat keeps the current one.
    from remote_care.devices.partitions import observation_partitions_ensure

    observation_partitions_ensure(months_ahead=span_days // 28 + 2, today=start.date())

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

    # CPU seconds of this process and of its PostgreSQL backend over the last timed part: on
    # a loaded machine wall time mostly measures the other jobs, CPU time much less so (it
    # leaves out the WAL writer's and the disk's share, which both sides pay per WAL byte).
    with connection.cursor():
        backend = connection.connection.info.backend_pid
    ticks = os.sysconf("SC_CLK_TCK")

    def cpu_now() -> float:
        with open(f"/proc/{backend}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return time.process_time() + (int(fields[11]) + int(fields[12])) / ticks

    cpu_spent = [0.0]

    def api_round(first_reading: int, token: str = issued.token) -> float:
        # The device builds and encodes its requests; the server's work starts at the post.
        bodies = [
            json.dumps(
                {
                    "observations": [
                        reading(i)
                        for i in range(
                            first, min(first + args.batch, first_reading + args.readings)
                        )
                    ]
                }
            )
            for first in range(first_reading, first_reading + args.readings, args.batch)
        ]
        cpu = cpu_now()
        began = time.perf_counter()
        for body in bodies:
            response = client.post(
                "/remote-care/api/v1/observations/",
                body,
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {token}",
            )
            assert response.status_code == 201, response.content[:300]
        seconds = time.perf_counter() - began
        cpu_spent[0] = cpu_now() - cpu
        return seconds

    staged_device = device_register(patient=patient, label="staged", registered_by=user)

    def api_staged_round(first_reading: int) -> float:
        """The same posts through the previous insert: no look-up, INSERT ... ON CONFLICT."""
        from remote_care.devices import services

        def insert(*, device: Any, items: list, scores: Any) -> list[tuple[int, int]]:
            positions = range(len(items))
            return services._staged_insert(
                device=device, items=items, scores=scores, positions=positions, on_conflict=True
            )

        checked = services._observations_insert
        services._observations_insert = insert  # type: ignore[assignment]
        try:
            return api_round(first_reading, staged_device.token)
        finally:
            services._observations_insert = checked  # type: ignore[assignment]

    # (1b) raw COPY of the same rows.
    columns = (
        "patient_id",
        "device_id",
        "taken_at",
        "received_at",
        *OBSERVATION_VITALS,
        "news2_partial",
        "news2",
    )

    def copy_text(first_reading: int, device_id: int) -> str:
        rows = io.StringIO()
        now = timezone.now().isoformat()
        for i in range(first_reading, first_reading + args.readings):
            r = reading(i)
            rows.write(
                "\t".join(
                    str(v)
                    for v in (
                        patient.pk,
                        device_id,
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
        return rows.getvalue()

    def copy_timed(table: str, text: str, names: tuple[str, ...] = columns) -> float:
        """Seconds to COPY ``text`` into ``table`` and commit."""
        cpu = cpu_now()
        began = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            with cursor.cursor.copy(f"COPY {table} ({', '.join(names)}) FROM STDIN") as copy:
                copy.write(text)
        seconds = time.perf_counter() - began
        cpu_spent[0] = cpu_now() - cpu
        return seconds

    def temp_round(first_reading: int) -> float:
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE TEMP TABLE copy_target (LIKE remote_care_observation INCLUDING ALL)"
            )
        seconds = copy_timed("copy_target", copy_text(first_reading, issued.device.pk))
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE copy_target")
        return seconds

    def stored_round(first_reading: int) -> float:
        """The rows the API stored in this round, summaries and all, under another device."""
        stored = [
            field.column
            for field in Observation._meta.concrete_fields
            if field.column not in ("id", "device_id")
        ]
        since = reading(first_reading)["taken_at"]
        until = reading(first_reading + args.readings)["taken_at"]
        with connection.cursor() as cursor:
            text = io.BytesIO()
            with cursor.cursor.copy(
                f"COPY (SELECT {stored_device.pk}, {', '.join(stored)} "  # noqa: S608
                "FROM remote_care_observation WHERE device_id = %s "
                "AND taken_at >= %s AND taken_at < %s) TO STDOUT",
                [issued.device.pk, since, until],
            ) as copy:
                for chunk in copy:
                    text.write(chunk)
        body = text.getvalue().decode()
        assert body.count("\n") == args.readings
        return copy_timed("remote_care_observation", body, ("device_id", *stored))

    rounds: list[tuple[float, float, float, float]] = []
    cpus: list[list[float]] = []
    staged: list[float] = []
    for number in range(args.rounds):
        first_reading = number * args.readings
        api = api_round(first_reading)
        cpus.append([cpu_spent[0]])
        temp = temp_round(first_reading)
        cpus[-1].append(cpu_spent[0])
        text = copy_text(first_reading, copy_device.pk)
        real = copy_timed("remote_care_observation", text)
        cpus[-1].append(cpu_spent[0])
        stored = stored_round(first_reading)
        cpus[-1].append(cpu_spent[0])
        rounds.append((api, temp, real, stored))
        if args.staged_too:
            staged.append(api_staged_round(first_reading))
    assert Observation.objects.filter(device=issued.device).count() == args.readings * args.rounds
    now = timezone.now().isoformat()

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
    rates = [[args.readings / seconds for seconds in row] for row in rounds]
    ratios = [[row[0] / row[k] for k in (1, 2, 3)] for row in rates]

    def median(k: int) -> float:
        return statistics.median(row[k] for row in rates)

    def median_ratio(k: int) -> float:
        return statistics.median(row[k - 1] for row in ratios)

    api_rate, copy_rate = median(0), median(1)
    print(f"Vitals ingest, {args.readings} readings in batches of {args.batch} (PostgreSQL)")
    print(f"  API (validation, NEWS2, alerts, audit): {api_rate:10.0f} readings/s")
    print(f"  raw COPY of the same rows            : {copy_rate:10.0f} readings/s")
    print(f"  ratio API/COPY                       : {median_ratio(1):10.3f}")
    print(f"  (medians of {args.rounds} alternating rounds; readings/s, then ratios API/COPY)")
    print("  round        API  COPY temp  COPY real COPY stored |  temp   real stored")
    for number, (row, ratio) in enumerate(zip(rates, ratios, strict=True), start=1):
        print(
            f"  {number:5d} {row[0]:10.0f} {row[1]:10.0f} {row[2]:10.0f} {row[3]:10.0f} |"
            f" {ratio[0]:5.3f}  {ratio[1]:5.3f}  {ratio[2]:5.3f}"
        )
    print("  baseline (a): temporary table LIKE observations, no WAL, no FKs, summaries '{}'")
    print(f"    raw COPY, temporary table          : {copy_rate:10.0f} readings/s")
    print(f"    ratio API/COPY temporary (median)  : {median_ratio(1):10.3f}")
    print("  baseline (b): the real partitioned table: WAL, all indexes, FKs, commit")
    print(f"    raw COPY, real table, summaries {{}} : {median(2):10.0f} readings/s")
    print(f"    ratio API/COPY real (median)       : {median_ratio(2):10.3f}")
    print(f"    raw COPY, real table, stored rows  : {median(3):10.0f} readings/s")
    print(f"    ratio API/COPY stored rows (median): {median_ratio(3):10.3f}")
    print("  CPU (this process + its PostgreSQL backend), microseconds per reading; ratios")
    print("  COPY CPU / API CPU, the load-independent counterpart of the ratios above:")
    print("  round        API  COPY temp  COPY real COPY stored |  temp   real stored")
    per = 1e6 / args.readings
    for number, row in enumerate(cpus, start=1):
        print(
            f"  {number:5d} {row[0] * per:10.1f} {row[1] * per:10.1f} {row[2] * per:10.1f}"
            f" {row[3] * per:10.1f} | {row[1] / row[0]:5.3f}  {row[2] / row[0]:5.3f}"
            f"  {row[3] / row[0]:5.3f}"
        )
    for k, name in ((1, "temporary"), (2, "real"), (3, "stored rows")):
        cpu_ratio = statistics.median(row[k] / row[0] for row in cpus)
        print(f"    CPU ratio API/COPY {name:12s}   : {cpu_ratio:10.3f}")
    if staged:
        print("  API through the previous insert (no look-up, ON CONFLICT), same rounds:")
        print("  round   API now  API staged  now/staged")
        for number, (row, before) in enumerate(zip(rounds, staged, strict=True), start=1):
            print(
                f"  {number:5d} {args.readings / row[0]:9.0f} {args.readings / before:11.0f}"
                f" {before / row[0]:11.3f}"
            )
        gain = statistics.median(before / row[0] for row, before in zip(rounds, staged))
        print(f"    API now / API staged (median)      : {gain:10.3f}")
    print(f"Vitals chart data, {seconds:,} observations at 1 Hz")
    print(f"  1-hour range : {hour * 1000:8.0f} ms")
    print(f"  {args.days}-day range: {month * 1000:8.0f} ms")
    print(f"  ratio {args.days} d / 1 h: {month / hour:8.1f}")


if __name__ == "__main__":
    main()
