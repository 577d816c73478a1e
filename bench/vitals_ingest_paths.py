"""Remote care: where device ingestion's time goes. (1) Ways to write the same batches of
observation sets into the observation table, each as readings/second and as a ratio to a
raw COPY of the rows into a temporary table (what bench/vitals_ingest.py compares against);
(2) the Python stages of one batch (validation, NEWS2, the alert replay, the COPY text), per
set, with the per-set NEWS2 and alert code they replaced beside them.

Needs the PostgreSQL the test suite uses (127.0.0.1:5432, trust auth); it creates and drops
its own database `medai_bench_paths`.

    .venv/bin/python bench/vitals_ingest_paths.py [--readings 50000] [--batch 5000]
"""

# ruff: noqa: S608  (the SQL names only this file's constant table and column names)

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness import bench_patient, postgres_site  # noqa: E402  (bench/ is on sys.path)

START = datetime(2026, 1, 1, tzinfo=UTC)
NUMBERS = ("heart_rate", "spo2", "respiratory_rate", "temperature", "systolic_bp", "diastolic_bp")
COLUMNS = ("patient_id", "device_id", "taken_at", "received_at", *NUMBERS)
COLUMNS += ("consciousness", "on_oxygen", "news2_total", "news2_partial")


def reading(i: int) -> dict[str, Any]:
    """The set bench/vitals_ingest.py posts, as the validation returns it."""
    return {
        "taken_at": START + timedelta(seconds=i),
        "heart_rate": float(70 + i % 9),
        "spo2": float(96 + i % 3),
        "respiratory_rate": float(14 + i % 4),
        "temperature": 36.8,
        "systolic_bp": float(120 + i % 7),
        "diastolic_bp": 78.0,
        "consciousness": "A",
        "on_oxygen": False,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=5_000)
    args = parser.parse_args()
    with postgres_site("medai_bench_paths"):
        run(args)


def run(args: argparse.Namespace) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection

    from remote_care.devices.services import device_register

    user = get_user_model().objects.create_user("bench", password=None)
    patient = bench_patient(user, mrn="BENCH-P")
    device = device_register(patient=patient, label="bench", registered_by=user).device
    batches = [
        [reading(i) for i in range(first, min(first + args.batch, args.readings))]
        for first in range(0, args.readings, args.batch)
    ]
    raw = connection.cursor().connection
    raw.autocommit = True
    paths = _paths(raw, patient.pk, device.pk)
    print(f"Ways to write {args.readings} observation sets in batches of {args.batch} (PostgreSQL)")
    baseline = None
    for name, write in paths.items():
        raw.execute("TRUNCATE remote_care_observation CASCADE")
        began = time.perf_counter()
        for batch in batches:
            with raw.transaction():
                write(batch)
        rate = args.readings / (time.perf_counter() - began)
        baseline = baseline or rate
        print(f"  {name:<58}: {rate:9.0f} sets/s  ratio {rate / baseline:5.2f}")
    _stages(batches[0], device, baseline)


def _paths(raw: Any, patient: int, device: int) -> dict[str, Callable[[list[dict]], None]]:
    from remote_care.physiology.news2 import Observation, score_news2

    table = "remote_care_observation"
    columns = ", ".join(COLUMNS)
    full = json.dumps(score_news2(Observation.from_vitals(reading(0), spo2_scale=1)).to_dict())
    summary = json.dumps(
        score_news2(Observation.from_vitals(reading(0), spo2_scale=1)).summary_dict()
    )
    received = START.isoformat()

    def text(batch: list[dict], last: str) -> str:
        return "".join(
            f"{patient}\t{device}\t{r['taken_at'].isoformat()}\t{received}\t"
            + "\t".join(str(r[n]) for n in NUMBERS)
            + f"\tA\tf\t0\tf\t{last}\n"
            for r in batch
        )

    def row(r: dict, news2: str) -> tuple:
        values = [r[n] for n in NUMBERS]
        return (patient, device, r["taken_at"], START, *values, "A", False, 0, False, news2)

    def raw_copy(batch: list[dict]) -> None:
        raw.execute(f"CREATE TEMP TABLE IF NOT EXISTS copy_target (LIKE {table} INCLUDING ALL)")
        with raw.cursor().copy(f"COPY copy_target ({columns}, news2) FROM STDIN") as copy:
            copy.write(text(batch, "{}"))

    def direct(news2: str) -> Callable[[list[dict]], None]:
        def write(batch: list[dict]) -> None:
            with raw.cursor().copy(f"COPY {table} ({columns}, news2) FROM STDIN") as copy:
                copy.write(text(batch, news2))

        return write

    def staged(news2: str) -> Callable[[list[dict]], None]:
        def write(batch: list[dict]) -> None:
            raw.execute(
                "CREATE TEMP TABLE IF NOT EXISTS stage AS "
                f"SELECT {columns}, news2 FROM {table} WITH NO DATA"
            )
            with raw.cursor().copy(f"COPY stage ({columns}, news2) FROM STDIN") as copy:
                copy.write(text(batch, news2))
            raw.execute(
                f"INSERT INTO {table} ({columns}, news2) SELECT {columns}, news2 FROM stage "
                "ON CONFLICT (device_id, taken_at) DO NOTHING RETURNING id"
            ).fetchall()
            raw.execute("DELETE FROM stage")

        return write

    def staged_code(batch: list[dict]) -> None:
        raw.execute(
            "CREATE TEMP TABLE IF NOT EXISTS stage_c AS "
            f"SELECT {columns}, 0::bigint AS code FROM {table} WITH NO DATA"
        )
        raw.execute("CREATE TEMP TABLE IF NOT EXISTS stage_n (code bigint, summary jsonb)")
        raw.execute("INSERT INTO stage_n VALUES (0, %s)", [summary])
        with raw.cursor().copy(f"COPY stage_c ({columns}, code) FROM STDIN") as copy:
            copy.write(text(batch, "0"))
        prefixed = ", ".join(f"s.{c}" for c in COLUMNS)
        raw.execute(
            f"INSERT INTO {table} ({columns}, news2) SELECT {prefixed}, n.summary "
            "FROM stage_c s JOIN stage_n n USING (code) "
            "ON CONFLICT (device_id, taken_at) DO NOTHING RETURNING id"
        ).fetchall()
        raw.execute("DELETE FROM stage_c")
        raw.execute("DELETE FROM stage_n")

    def executemany(batch: list[dict]) -> None:
        marks = ", ".join(["%s"] * (len(COLUMNS) + 1))
        with raw.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {table} ({columns}, news2) VALUES ({marks}) "
                "ON CONFLICT (device_id, taken_at) DO NOTHING",
                [row(r, summary) for r in batch],
            )

    def unnest(batch: list[dict]) -> None:
        types = ["bigint", "bigint", "timestamptz", "timestamptz"] + ["float8"] * len(NUMBERS)
        types += ["text", "bool", "int", "bool", "jsonb"]
        rows = [row(r, summary) for r in batch]
        arrays = [list(column) for column in zip(*rows, strict=True)]
        selects = ", ".join(f"%s::{t}[]" for t in types)
        raw.execute(
            f"INSERT INTO {table} ({columns}, news2) SELECT * FROM unnest({selects}) "
            "ON CONFLICT (device_id, taken_at) DO NOTHING RETURNING id",
            arrays,
        ).fetchall()

    return {
        "raw COPY into a temporary table, no summary (the baseline)": raw_copy,
        "COPY into the table, no summary (no dedupe: a floor)": direct("{}"),
        "COPY into the table, full NEWS2 JSON (before: 1.2 kB/row)": direct(full),
        "COPY into the table, NEWS2 summary (no dedupe)": direct(summary),
        "staged COPY + INSERT ON CONFLICT, full NEWS2 JSON": staged(full),
        "staged COPY + INSERT ON CONFLICT, summary per row": staged(summary),
        "staged COPY + INSERT ON CONFLICT, summary joined by code": staged_code,
        "executemany INSERT ON CONFLICT, summary": executemany,
        "INSERT ... SELECT unnest(arrays) ON CONFLICT, summary": unnest,
    }


def _stages(batch: list[dict], device: Any, copy_rate: float) -> None:
    from django.utils import timezone

    from remote_care.devices.serializers import ObservationSerializer, observations_validate
    from remote_care.devices.services import _columns, _staged_lines
    from remote_care.monitoring.services import HISTORY_FOR_TREND
    from remote_care.physiology.news2 import (
        AlertState,
        Observation,
        ScoredSet,
        evaluate_alerts,
        score_news2,
    )
    from remote_care.physiology.news2_batch import (
        SetLevel,
        replay_alerts_batch,
        score_news2_batch,
    )

    n = len(batch)
    posted = [{**r, "taken_at": r["taken_at"].isoformat()} for r in batch]
    valid = observations_validate(posted)[0]
    scores = score_news2_batch(_columns(valid), spo2_scale=1, size=n)
    levels = [SetLevel(r["taken_at"], 0, False, False) for r in valid]
    one_by_one = [
        ScoredSet(r["taken_at"], score_news2(Observation.from_vitals(r, spo2_scale=1)))
        for r in valid
    ]

    def old_alerts() -> None:
        state, series = AlertState(), []
        for scored in one_by_one:
            series.append(scored)
            state = evaluate_alerts(series[-(HISTORY_FOR_TREND + 1) :], state).state

    stages: list[tuple[str, Callable[[], Any]]] = [
        ("validation, one pass over the batch", lambda: observations_validate(posted)),
        ("validation, DRF serializer per item (kept for bad items)", lambda: [
            ObservationSerializer(data=p).is_valid() for p in posted[:500]]),
        ("NEWS2, score_news2_batch + summaries", lambda: score_news2_batch(
            _columns(valid), spo2_scale=1, size=n).summaries()),
        ("NEWS2, score_news2 per set + to_dict (before)", lambda: [
            score_news2(Observation.from_vitals(r, spo2_scale=1)).to_dict() for r in valid]),
        ("alerts, replay_alerts_batch (quiet sets)", lambda: replay_alerts_batch(
            history=[], new=levels, full=lambda i: one_by_one[i], state=AlertState(),
            window=HISTORY_FOR_TREND + 1)),
        ("alerts, evaluate_alerts per set (before; scoring not counted)", old_alerts),
        ("COPY text of the batch", lambda: _staged_lines(
            device=device, items=valid, scores=scores)),
        ("response body: news2 per stored set", lambda: json.dumps([
            {"taken_at": r["taken_at"].isoformat(), "total": 0, "partial": False}
            for r in valid])),
    ]  # fmt: skip
    print(f"Python stages of one batch of {n} (microseconds per set; raw COPY: "
          f"{1e6 / copy_rate:.1f})")  # fmt: skip
    timezone.now()
    for name, stage in stages:
        began = time.perf_counter()
        stage()
        per = (time.perf_counter() - began) / (500 if "per item" in name else n)
        print(f"  {name:<58}: {per * 1e6:7.1f} us")


if __name__ == "__main__":
    main()
