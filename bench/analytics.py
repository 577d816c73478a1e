"""Population analytics at scale (PostgreSQL).

Part 1, bench_population_queries(): seed 1M (and 10M) observation sets with realistic row
width (the NEWS2 JSON as stored) into a scratch database, roll them up
(analytics_rollup_rebuild, timed), then time each dashboard query (median of --repeats runs)
and the whole dashboard page for researchers (every patient) and for a clinician (their care
teams), over the whole range and over the last 7 days, on the raw tables and on the roll-ups
side by side; print a table with the growth ratio of each column between consecutive sizes
(10M / 1M, 100M / 10M). Every set also gets a deterioration-model score (as the scoring sweep
and its back-fill store them), so the model-risk measure is timed too. --explain prints
EXPLAIN (ANALYZE, BUFFERS) of the main roll-up queries at the last size.

Part 2, bench_risk_scoring(): batch risk scoring of 1,000 PhysioNet stays by the bare model
(one batched call) vs the product's scoring sweep on a real Celery worker (bench/risk_scoring.py).

Needs the PostgreSQL the test suite uses (127.0.0.1:5432, trust auth); it creates and drops
its own database `medai_bench_analytics` (--keep leaves it for EXPLAIN; MEDAI_BENCH_DB names
another, so two benches can share one server; a name with "{size}" in it gives each size its
own database, which --reuse keeps seeded between runs).

    .venv/bin/python bench/analytics.py [--sizes 1000000,10000000] [--repeats 3] [--keep]
        [--explain] [--narrow] [--reuse] [--seed-only] [--rebuild sql|orm|both|none]
"""

from __future__ import annotations

import argparse
import os
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

DB = os.environ.get("MEDAI_BENCH_DB", "medai_bench_analytics")
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
            "audit_auditevent, patients_patient, remote_care_populationpatientday, "
            "remote_care_populationdaycell, remote_care_populationackdelay, "
            "remote_care_populationrollupstate CASCADE"
        )


def _already_seeded(size: int, end: date) -> Any:
    """The Seeded of a reused database that holds exactly ``size`` seeded sets, else None."""
    from django.db import connection

    from bench.population_seed import Seeded

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM remote_care_observation")
        (observations,) = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM patients_patient WHERE source = 'synthetic'")
        (patients,) = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM remote_care_alert")
        (alerts,) = cursor.fetchone()
    if observations != size or patients != PATIENTS_PER_MILLION * size // 1_000_000:
        return None
    return Seeded(
        patients=patients,
        observations=observations,
        alerts=alerts,
        start=end - timedelta(days=DAYS - 1),
        end=end,
    )


def _seed(size: int, users: Any, end: date, wide: bool) -> tuple[Any, float]:
    from django.db import connection

    from bench.population_seed import seed_population, seed_risk_scores

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
    # One score per set from the version in service.
    with connection.cursor() as cursor:
        seed_risk_scores(cursor, model_version_id=users.risk_version.pk)
    # What autovacuum does to a table at rest: sets the visibility map, so the covering
    # index can answer without visiting the heap.
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE remote_care_observation")
        cursor.execute("VACUUM ANALYZE remote_care_alert")
        cursor.execute("VACUUM ANALYZE remote_care_riskscore")
    return seeded, time.perf_counter() - began


def _rollup(*, orm: bool = False) -> float:
    """Seconds to roll every seeded set up (the back-fill command's service; ``orm``: its
    ORM path, the one SQLite runs, for comparison)."""
    from django.db import connection

    from remote_care.analytics.services import analytics_rollup_rebuild

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE remote_care_populationpatientday, remote_care_populationdaycell, "
            "remote_care_populationackdelay, remote_care_populationrollupstate"
        )
    began = time.perf_counter()
    analytics_rollup_rebuild(set_based=not orm)
    seconds = time.perf_counter() - began
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE remote_care_populationpatientday")
        cursor.execute("VACUUM ANALYZE remote_care_populationdaycell")
        cursor.execute("VACUUM ANALYZE remote_care_populationpatientweek")
        cursor.execute("VACUUM ANALYZE remote_care_populationackdelay")
    return seconds


def _users() -> Any:
    from types import SimpleNamespace

    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from medai_site.core.roles import Role

    user_model = get_user_model()
    clinician_group = Group.objects.get_or_create(name=str(Role.CLINICIAN))[0]
    researcher_group = Group.objects.get_or_create(name=str(Role.RESEARCHER))[0]
    clinicians = []
    # get_or_create throughout: a reused database (--reuse) already has them.
    for i in range(10):
        user, _ = user_model.objects.get_or_create(
            username=f"clin{i}", defaults={"first_name": "Clinician", "last_name": str(i)}
        )
        user.groups.add(clinician_group)
        clinicians.append(user)
    researcher, _ = user_model.objects.get_or_create(username="researcher")
    researcher.groups.add(researcher_group)
    from medai_site.registry.models import ModelVersion
    from remote_care.risk.services import RISK_TASK

    risk_version, _ = ModelVersion.objects.get_or_create(
        task=RISK_TASK,
        version=1,
        defaults={
            "status": ModelVersion.Status.ACTIVE,
            "metrics": {"alert_thresholds": {"elevated": 0.2, "high": 0.3}},
        },
    )
    return SimpleNamespace(clinicians=clinicians, researcher=researcher, risk_version=risk_version)


def bench_population_queries(
    sizes: list[int],
    repeats: int,
    wide: bool = True,
    explain: bool = False,
    *,
    reuse: bool = False,
    seed_only: bool = False,
    rebuild: str = "sql",
    slowest: int = 0,
    no_queries: bool = False,
    no_raw: bool = False,
) -> dict[int, dict[str, tuple[float, float | None]]]:
    """Seconds per dashboard query and per page, raw and from the roll-ups, and to seed and
    roll up, for each size (medians of ``repeats`` runs up to 1M sets, single runs above)."""
    from django.test import Client, override_settings

    from remote_care.analytics import rollups
    from remote_care.analytics.dashboard import DASHBOARD_QUERIES, ROLLUP_QUERIES
    from remote_care.analytics.filters import Dimension, PopulationFilter
    from remote_care.analytics.selectors import population_periods

    users = _users()
    end = date(2026, 3, 31)
    results: dict[int, dict[str, tuple[float, float | None]]] = {}
    for size in sizes:
        seeded = _already_seeded(size, end) if reuse else None
        row: dict[str, tuple[float, float | None]] = {}
        if seeded is None:
            seeded, seed_seconds = _seed(size, users, end, wide)
            row["seed + vacuum (s)"] = (seed_seconds, None)
        if seed_only:
            _print({size: row})
            continue
        if rebuild in ("orm", "both"):
            row["roll-up rebuild, ORM path (s)"] = (0.0, _rollup(orm=True))
        if rebuild in ("sql", "both"):
            row["roll-up rebuild (s)"] = (0.0, _rollup())
        if no_queries:
            results[size] = row
            _print(results)
            continue
        runs = repeats if size <= 1_000_000 else 1

        def raw_time(fn: Callable[[], Any], runs: int = runs) -> float:
            """The raw reference's seconds (0.0, printed blank, with --no-raw)."""
            return 0.0 if no_raw else _median_time(fn, runs)

        whole = PopulationFilter(start=seeded.start, end=end, by=Dimension.AGE)
        week = PopulationFilter(start=end - timedelta(days=6), end=end, by=Dimension.AGE)
        for label, f in ((f"{DAYS} d", whole), ("7 d", week)):
            for name, query in DASHBOARD_QUERIES.items():
                rolled = ROLLUP_QUERIES[name]
                row[f"{name}, {label}"] = (
                    raw_time(lambda q=query, f=f: q(user=users.researcher, f=f)),
                    _median_time(lambda q=rolled, f=f: q(user=users.researcher, f=f), runs),
                )
            model_f = replace(f, measure="model")
            row[f"periods (model risk), {label}"] = (
                raw_time(lambda f=model_f: population_periods(user=users.researcher, f=f)),
                _median_time(
                    lambda f=model_f: rollups.population_periods(user=users.researcher, f=f), runs
                ),
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

                    with override_settings(MEDAI_ANALYTICS_ROLLUPS=False):
                        timings = [raw_time(page)]
                    with override_settings(MEDAI_ANALYTICS_ROLLUPS=True):
                        timings.append(_median_time(page, runs))
                    suffix = "" if measure == "news2" else ", model risk"
                    row[f"page ({who}{suffix}), {label}"] = (timings[0], timings[1])
        results[size] = row
        _print(results)
        if slowest:
            _slowest(users.researcher, seeded, end, slowest)
        if explain and size == sizes[-1]:
            _explain(users.researcher, whole)
    return results


def _slowest(user: Any, seeded: Any, end: date, n: int) -> None:
    """The ``n`` slowest SQL statements of one roll-up researcher page over the whole range
    (what to roll up next), with the page's statement count and their total time."""
    from django.db import connection
    from django.test import Client, override_settings
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    params = {"start": seeded.start.isoformat(), "end": end.isoformat(), "by": "age"}
    with override_settings(MEDAI_ANALYTICS_ROLLUPS=True), CaptureQueriesContext(connection) as c:
        began = time.perf_counter()
        assert client.get("/remote-care/analytics/", params).status_code == 200
        seconds = time.perf_counter() - began
    timed = sorted(((float(q["time"]), q["sql"]) for q in c.captured_queries), reverse=True)
    print(
        f"\n-- roll-up researcher page, {DAYS} d: {seconds:.3f} s, {len(timed)} statements, "
        f"{sum(t for t, _ in timed):.3f} s in SQL; the {n} slowest:"
    )
    for t, sql in timed[:n]:
        print(f"{t:8.3f}  {' '.join(sql.split())[:220]}")
    sys.stdout.flush()


def _explain(user: Any, f: Any) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of the main roll-up queries: the day cells of the periods,
    the distinct-patient profile over the range, the TOTAL cells (the biggest read) and the
    acknowledge delays."""
    from django.db.models import Q, Sum

    from remote_care.analytics import rollups
    from remote_care.models import PopulationAckDelay

    queries = {
        "periods: day cells": rollups._cells(user, f, rollups.Kind.ALL, Q(partial__isnull=True))
        .values("day")
        .annotate(sets=Sum("sets"), patients=Sum("patients")),
        **{
            f"distinct patients: profile, part {i + 1} ({part.model._meta.model_name})": part
            for i, part in enumerate(rollups._profile_queries(user=user, f=f))
        },
        "TOTAL cells (percentiles, histogram, medians, their unsafe cells: one read)": (
            rollups._total_cells_query(user, f)
        ),
        "time to acknowledge: delays": rollups._scoped(
            PopulationAckDelay.objects.order_by(), f, user=user
        )
        .values("level", "delay_us")
        .annotate(n=Sum("alerts")),
    }
    for name, qs in queries.items():
        print(f"\n-- EXPLAIN (ANALYZE, BUFFERS): {name}\n{qs.explain(analyze=True, buffers=True)}")
    sys.stdout.flush()


def _print(results: dict[int, dict[str, tuple[float, float | None]]]) -> None:
    sizes = sorted(results)
    names = list(results[sizes[-1]])
    head = f"{'seconds (median)':38}" + "".join(
        f"{f'raw {s:,}':>15}{f'roll-up {s:,}':>19}" for s in sizes
    )
    for a, b in zip(sizes, sizes[1:], strict=False):
        head += f"{f'raw x{b // a}':>10}{f'roll-up x{b // a}':>14}"
    print(head)

    def cell(value: float | None, width: int) -> str:
        return f"{value:{width}.3f}" if value is not None else f"{'':{width}}"

    def ratio(new: float | None, old: float | None, width: int) -> str:
        return f"{new / old:{width}.2f}" if new and old else f"{'':{width}}"

    for name in names:
        line = f"{name:38}"
        for s in sizes:
            raw, rolled = results[s].get(name, (0.0, None))
            line += cell(raw or None, 15) + cell(rolled, 19)
        for a, b in zip(sizes, sizes[1:], strict=False):
            (ra, ua), (rb, ub) = results[a].get(name, (0.0, None)), results[b][name]
            line += ratio(rb, ra, 10) + ratio(ub, ua, 14)
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
    parser.add_argument(
        "--explain",
        action="store_true",
        help="print EXPLAIN (ANALYZE, BUFFERS) of the main roll-up queries at the last size",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep MEDAI_BENCH_DB if it exists and skip seeding when it already holds exactly "
        "the (single) size asked for; never drop it",
    )
    parser.add_argument(
        "--seed-only", action="store_true", help="seed (and keep, with --reuse) then stop"
    )
    parser.add_argument(
        "--rebuild",
        choices=("sql", "orm", "both", "none"),
        default="sql",
        help="roll-up rebuild timed: the set-based SQL one (default), the ORM path SQLite "
        "runs, both in turn, or none (roll-ups already built in a reused database)",
    )
    parser.add_argument(
        "--slowest",
        type=int,
        default=0,
        metavar="N",
        help="print the N slowest SQL statements of the roll-up researcher page at each size",
    )
    parser.add_argument(
        "--no-queries", action="store_true", help="stop after seeding and the roll-up rebuild"
    )
    parser.add_argument(
        "--no-raw",
        action="store_true",
        help="time the roll-up side only (the raw page takes minutes at 10M; blank column)",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    options = {
        "wide": not args.narrow,
        "explain": args.explain,
        "reuse": args.reuse,
        "seed_only": args.seed_only,
        "rebuild": args.rebuild,
        "slowest": args.slowest,
        "no_queries": args.no_queries,
        "no_raw": args.no_raw,
    }
    if "{size}" in DB:
        # One database per size (MEDAI_BENCH_DB=medai_bench_{size}): with --reuse, each
        # seeded once; the table still compares the sizes side by side.
        merged: dict[int, dict[str, tuple[float, float | None]]] = {}
        for size in sizes:
            with postgres_site(DB.format(size=size), keep=args.keep, reuse=args.reuse):
                merged |= bench_population_queries([size], args.repeats, **options)
        if len(sizes) > 1:
            print("\nAll sizes:")
            _print(merged)
    else:
        with postgres_site(DB, keep=args.keep, reuse=args.reuse):
            bench_population_queries(sizes, args.repeats, **options)
    if not args.no_scoring:
        bench_risk_scoring()


if __name__ == "__main__":
    main()
