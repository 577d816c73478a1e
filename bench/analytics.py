"""Population analytics at scale (PostgreSQL).

Part 1, bench_population_queries(): seed 1M (and 10M) observation sets with realistic row
width (the NEWS2 JSON as stored) into a scratch database, then time each dashboard query
(median of --repeats runs) and the whole dashboard page for researchers (every patient) and
for a clinician (their care teams), over the whole range and over the last 7 days; print a
table and the ratios 10M / 1M. Every set also gets a deterioration-model score (as the
scoring sweep and its back-fill store them), so the model-risk measure is timed too.

Part 2, bench_risk_scoring(): batch risk scoring of 1,000 PhysioNet stays by the bare model
(one batched call) vs the product's scoring sweep on a real Celery worker (bench/risk_scoring.py).

Needs the PostgreSQL the test suite uses (127.0.0.1:5432, trust auth); it creates and drops
its own database `medai_bench_analytics` (--keep leaves it for EXPLAIN).

    .venv/bin/python bench/analytics.py [--sizes 1000000,10000000] [--repeats 3] [--keep]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness import postgres_site  # noqa: E402  (bench/ is on sys.path)

DB = "medai_bench_analytics"
PATIENTS_PER_MILLION = 2_000
DAYS = 90


def _median_time(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def _reset_data() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE remote_care_alert, remote_care_observation, remote_care_waveform, "
            "remote_care_device, remote_care_monitoring, patients_careteammembership, "
            "audit_auditevent, patients_patient CASCADE"
        )


def _seed(size: int, users: Any, end: date, wide: bool) -> tuple[Any, float]:
    from django.db import connection

    from bench.population_seed import seed_population

    _reset_data()
    began = time.perf_counter()
    with connection.cursor() as cursor:
        seeded = seed_population(
            cursor,
            observations=size,
            patients=PATIENTS_PER_MILLION * size // 1_000_000,
            days=DAYS,
            end=end,
            clinician_ids=[u.pk for u in users.clinicians],
            wide=wide,
        )
    # One score per set from the version in service (risks drawn at random: only the query
    # plans and row counts matter here).
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO remote_care_riskscore (patient_id, observation_id, model_version_id, "
            "taken_at, risk, hours_observed, inputs, insufficient_reason, computed_at) "
            "SELECT patient_id, id, %s, taken_at, random() * random(), 24, '{}'::jsonb, '', "
            "taken_at FROM remote_care_observation",
            [users.risk_version.pk],
        )
    # What autovacuum does to a table at rest: sets the visibility map, so the covering
    # index can answer without visiting the heap.
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE remote_care_observation")
        cursor.execute("VACUUM ANALYZE remote_care_alert")
        cursor.execute("VACUUM ANALYZE remote_care_riskscore")
    return seeded, time.perf_counter() - began


def _users() -> Any:
    from types import SimpleNamespace

    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from medai_site.core.roles import Role

    user_model = get_user_model()
    clinician_group = Group.objects.get_or_create(name=str(Role.CLINICIAN))[0]
    researcher_group = Group.objects.get_or_create(name=str(Role.RESEARCHER))[0]
    clinicians = []
    for i in range(10):
        user = user_model.objects.create_user(f"clin{i}", first_name="Clinician", last_name=str(i))
        user.groups.add(clinician_group)
        clinicians.append(user)
    researcher = user_model.objects.create_user("researcher")
    researcher.groups.add(researcher_group)
    from medai_site.registry.models import ModelVersion
    from remote_care.risk.services import RISK_TASK

    risk_version = ModelVersion.objects.create(
        task=RISK_TASK,
        version=1,
        status=ModelVersion.Status.ACTIVE,
        metrics={"alert_thresholds": {"elevated": 0.2, "high": 0.3}},
    )
    return SimpleNamespace(clinicians=clinicians, researcher=researcher, risk_version=risk_version)


def bench_population_queries(
    sizes: list[int], repeats: int, wide: bool = True
) -> dict[int, dict[str, float]]:
    """Seconds per dashboard query, per page, and to seed, for each size (medians of
    ``repeats`` runs up to 1M sets, single runs above)."""
    from django.test import Client

    from remote_care.analytics.dashboard import DASHBOARD_QUERIES
    from remote_care.analytics.filters import Dimension, PopulationFilter
    from remote_care.analytics.selectors import population_periods

    users = _users()
    end = date(2026, 3, 31)
    results: dict[int, dict[str, float]] = {}
    for size in sizes:
        seeded, seed_seconds = _seed(size, users, end, wide)
        row: dict[str, float] = {"seed + vacuum (s)": seed_seconds}
        runs = repeats if size <= 1_000_000 else 1
        whole = PopulationFilter(start=seeded.start, end=end, by=Dimension.AGE)
        week = PopulationFilter(start=end - timedelta(days=6), end=end, by=Dimension.AGE)
        for label, f in ((f"{DAYS} d", whole), ("7 d", week)):
            for name, query in DASHBOARD_QUERIES.items():
                row[f"{name}, {label}"] = _median_time(
                    lambda q=query, f=f: q(user=users.researcher, f=f), runs
                )
            model_f = replace(f, measure="model")
            row[f"periods (model risk), {label}"] = _median_time(
                lambda f=model_f: population_periods(user=users.researcher, f=f), runs
            )
        for who, user in (("researcher", users.researcher), ("clinician", users.clinicians[0])):
            client = Client()
            client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
            for label, start in ((f"{DAYS} d", seeded.start), ("7 d", end - timedelta(days=6))):
                for measure in ("news2", "model"):
                    params = {
                        "start": start.isoformat(),
                        "end": end.isoformat(),
                        "by": "age",
                        "measure": measure,
                    }

                    def page(client: Client = client, params: dict = params) -> None:
                        response = client.get("/remote-care/analytics/", params)
                        assert response.status_code == 200, response.content[:300]

                    suffix = "" if measure == "news2" else ", model risk"
                    row[f"page ({who}{suffix}), {label}"] = _median_time(page, runs)
        results[size] = row
        _print(results)
    return results


def _print(results: dict[int, dict[str, float]]) -> None:
    sizes = sorted(results)
    names = list(results[sizes[0]])
    head = f"{'seconds (median)':34}" + "".join(f"{s:>14,}" for s in sizes)
    if len(sizes) > 1:
        head += f"{'ratio':>10}"
    print(head)
    for name in names:
        line = f"{name:34}" + "".join(f"{results[s][name]:14.3f}" for s in sizes)
        if len(sizes) > 1:
            line += f"{results[sizes[-1]][name] / results[sizes[0]][name]:10.1f}"
        print(line)
    sys.stdout.flush()


def bench_risk_scoring(stays: int = 1000) -> None:
    """Batch risk scoring of ``stays`` PhysioNet stays: the bare model in one batched call vs
    the product's scoring sweep on a real Celery worker (bench/risk_scoring.py, run in its own
    process because it needs the embedded default's settings, not this scratch database)."""
    subprocess.run(
        [sys.executable, str(Path(__file__).with_name("risk_scoring.py")), "--stays", str(stays)],
        check=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="leave the database for EXPLAIN")
    parser.add_argument(
        "--narrow",
        action="store_true",
        help="seed a 3-key NEWS2 JSON instead of the stored 1.1 kB one (faster seeding; the "
        "dashboard reads only indexes, so query timings barely change)",
    )
    parser.add_argument(
        "--no-scoring", action="store_true", help="part 1 only (skip the risk-scoring comparison)"
    )
    args = parser.parse_args()
    with postgres_site(DB, keep=args.keep):
        sizes = [int(s) for s in args.sizes.split(",")]
        bench_population_queries(sizes, args.repeats, wide=not args.narrow)
        if not args.no_scoring:
            bench_risk_scoring()


if __name__ == "__main__":
    main()
