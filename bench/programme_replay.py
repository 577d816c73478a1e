"""Remote care at programme scale: replay a simulated day of a monitored population through the
real device API (gunicorn, production settings, a scratch PostgreSQL database) at accelerated
speed; prints the sustained rate of sets and readings accepted, how late uploads went out
(backlog), the lag of every alert (set taken -> alert row written) in wall seconds and in
simulated minutes, and the ratios against the rate the programme needs.

Every patient wears one device that takes an observation set every --interval-min simulated
minutes and uploads what it has every --upload-min (one POST per device per upload: the API
authenticates one device per request, so there is no gateway batching many devices).
A --deteriorating fraction of patients slides over two simulated hours (or a quarter of a
shorter run) from normal vitals to NEWS2 >= 7, so the server raises alerts; the others stay
in normal ranges with a little noise.

Needs the PostgreSQL (127.0.0.1:5432, trust auth) and Redis (127.0.0.1:6379) the test suite
uses. It creates and drops its own database `medai_replay_<pid>`, uses Redis database 13 for the
cache (the device throttle), binds gunicorn to 127.0.0.1 only, and stops what it started.

    .venv/bin/python bench/programme_replay.py [--patients 100000] [--minutes-simulated 1440]
        [--speed 1440] [--interval-min 5] [--upload-min 15] [--deteriorating 0.02]
        [--workers 2] [--threads 8] [--web-workers 2] [--web-threads 4] [--max-seconds N]

Small scale, about a minute and a half: --patients 2000 --minutes-simulated 120 (at x1440 a
2-core machine cannot keep up; what is unsent 30 s after the planned end is the backlog).
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import math
import multiprocessing
import os
import queue
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from harness import (  # noqa: E402  (bench/ is on sys.path)
    free_port,
    gunicorn_command,
    production_env,
    production_stack,
    start,
    wait_healthy,
)

DB = f"medai_replay_{os.getpid()}"  # one per run: benches of parallel checkouts may share
REDIS = "redis://127.0.0.1:6379/13"
URL = "/remote-care/api/v1/observations/"
PATIENTS_PER_CLINICIAN = 200  # care-team size of the seed: alerts e-mail a real team
TARGET_PATIENTS = (100_000, 1_000_000)


@dataclass
class Plan:
    """What every client process needs: the schedule and the clock mapping."""

    tokens: list[str]
    deteriorating: dict[int, float]  # device index -> onset (simulated seconds)
    interval_s: int
    upload_s: int
    horizon_s: int
    speed: float
    ramp_s: float
    sim_base: float  # epoch seconds of simulated second 0 (taken_at = sim_base + s)
    wall_start: float  # epoch seconds when simulated second 0 is replayed
    wall_stop: float  # no upload leaves after this (the backlog left is reported)
    port: int


@dataclass
class Tally:
    """One client thread's results."""

    posts: int = 0
    sets_sent: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    unsent_posts: int = 0
    unsent_sets: int = 0
    alerts_in_responses: int = 0
    lateness: list[float] = field(default_factory=list)  # send start - due, wall s
    latency: list[float] = field(default_factory=list)  # response time, wall s
    first_send: float = math.inf
    last_done: float = 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--minutes-simulated", type=int, default=1440)
    parser.add_argument("--speed", type=float, default=1440, help="simulated s per wall s")
    parser.add_argument("--interval-min", type=int, default=5, help="one set per N sim min")
    parser.add_argument("--upload-min", type=int, default=15, help="one POST per N sim min")
    parser.add_argument("--deteriorating", type=float, default=0.02)
    parser.add_argument("--workers", type=int, default=2, help="client processes")
    parser.add_argument("--threads", type=int, default=8, help="connections per client process")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn processes")
    parser.add_argument("--web-threads", type=int, default=4, help="threads per gunicorn process")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=None,
        help="wall cap on sending (default: the planned replay plus 30 s); what is still "
        "unsent then is the backlog, reported",
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.patients < 1 or args.minutes_simulated < args.upload_min or args.speed <= 0:
        parser.error("need patients >= 1, speed > 0 and at least one upload interval simulated")
    if args.upload_min % args.interval_min:
        parser.error("--upload-min must be a multiple of --interval-min")
    if not 0 <= args.deteriorating <= 1 or args.workers < 1 or args.threads < 1:
        parser.error("--deteriorating is a fraction; --workers and --threads at least 1")

    work = Path(tempfile.mkdtemp(prefix="medai-replay-"))
    port = free_port()
    # The throttle counts requests per device in wall time; the replay compresses time by
    # --speed, so its limit is raised to twice the accelerated upload rate (still checked in
    # Redis on every request, as in production, where a device posts 4 times an hour).
    per_device = math.ceil(2 * 60 * args.speed / (args.upload_min * 60))
    env = production_env(
        db=DB,
        redis=REDIS,
        work=work,
        static_root=work / "static",
        MEDAI_DEVICE_RATE_LIMIT=f"{max(120, per_device)}/min",
    )
    os.environ.update(env)
    with production_stack(db=DB, work=work) as processes:
        run(args, env, work, port, processes)


def run(
    args: argparse.Namespace,
    env: dict[str, str],
    work: Path,
    port: int,
    processes: list[subprocess.Popen],
) -> None:
    import django

    django.setup()
    from django.core.cache import cache
    from django.core.management import call_command
    from django.db import connections

    print(
        f"Programme replay: {args.patients:,} patients, one set every {args.interval_min} min, "
        f"one upload every {args.upload_min} min, {args.minutes_simulated} simulated min at "
        f"x{args.speed:g} ({os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f})",
        flush=True,
    )
    began = time.perf_counter()
    call_command("migrate", verbosity=0)
    cache.clear()
    tokens = seed(patients=args.patients)
    connections.close_all()
    print(f"  seeded in {time.perf_counter() - began:.0f} s", flush=True)

    logs = work / "logs"
    logs.mkdir()
    web = start(
        "web",
        gunicorn_command(port, workers=args.web_workers, threads=args.web_threads),
        env=env,
        logs=logs,
        processes=processes,
    )
    wait_healthy(port, processes, logs)
    warm_up(port, tokens[0], args.web_workers * args.web_threads * 2)

    rng = random.Random(args.seed)
    horizon = args.minutes_simulated * 60
    ramp = min(7200.0, horizon / 4)
    deteriorating = {
        d: rng.uniform(0.1 * horizon, max(0.1 * horizon, horizon - ramp - 2 * args.upload_min * 60))
        for d in rng.sample(range(args.patients), round(args.deteriorating * args.patients))
    }
    planned_wall = horizon / args.speed
    wall_start = time.time() + 2.0
    plan = Plan(
        tokens=tokens,
        deteriorating=deteriorating,
        interval_s=args.interval_min * 60,
        upload_s=args.upload_min * 60,
        horizon_s=horizon,
        speed=args.speed,
        ramp_s=ramp,
        sim_base=wall_start - horizon,
        wall_start=wall_start,
        wall_stop=wall_start + (args.max_seconds or planned_wall + 30),
        port=port,
    )
    web_cpu_before, db_cpu_before = _tree_cpu(web.pid), _database_cpu()
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    clients = [
        context.Process(target=client_process, args=(plan, w, args.workers, args.threads, results))
        for w in range(args.workers)
    ]
    for client in clients:
        client.start()
    tallies: list[Tally] = []
    for _ in clients:
        # A client that died (its traceback is on stderr) never reports: do not wait forever.
        wait = max(60.0, plan.wall_stop - time.time() + 180)
        try:
            tallies.extend(results.get(timeout=wait))
        except queue.Empty:
            for client in clients:
                client.kill()
            raise SystemExit("a client process did not report; see its traceback above") from None
    for client in clients:
        client.join()
    web_cpu = _tree_cpu(web.pid) - web_cpu_before
    db_cpu = sum(t - db_cpu_before.get(pid, 0.0) for pid, t in _database_cpu().items())
    report(args, plan, tallies, (web_cpu, db_cpu), planned_wall)
    text = (logs / "web.log").read_text(errors="replace")
    if "Traceback" in text:
        print("  web log has tracebacks; first lines:")
        print(
            "\n".join("    " + line for line in text[text.index("Traceback") :].splitlines()[:15])
        )


def seed(*, patients: int) -> list[str]:
    """Clinicians, ``patients`` patients in their care teams with monitoring and one device
    each (bulk inserts: the product's one-by-one registration would take longer than the
    replay); returns the device tokens, index = patient order. One token is checked with the
    product's own authentication so a change of token format fails here, not in the replay."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import Group

    from medai_site.core.roles import Role
    from medai_site.patients.models import CareTeamMembership, Patient
    from remote_care.devices.services import TOKEN_PREFIX, device_authenticate
    from remote_care.models import Device, Monitoring

    User = get_user_model()
    clinicians_n = max(1, math.ceil(patients / PATIENTS_PER_CLINICIAN))
    clinicians = User.objects.bulk_create(
        User(
            username=f"replay-clin-{i:05d}",
            email=f"clin{i}@replay.invalid",
            password=make_password(None),  # unusable: nobody signs in
        )
        for i in range(clinicians_n)
    )
    Group.objects.get_or_create(name=str(Role.CLINICIAN))[0].user_set.add(*clinicians)
    tokens: list[str] = []
    chunk = 5_000
    for first in range(0, patients, chunk):
        count = min(chunk, patients - first)
        rows = Patient.objects.bulk_create(
            Patient(
                mrn=f"RP-{first + i:07d}",
                given_name=f"Given{(first + i) % 97}",
                family_name=f"Family{(first + i) % 991}",
                birth_date=f"{1930 + (first + i) % 70}-0{1 + i % 9}-1{i % 9}",
                sex=("female", "male")[i % 2],
                created_by=clinicians[(first + i) // PATIENTS_PER_CLINICIAN],
            )
            for i in range(count)
        )
        CareTeamMembership.objects.bulk_create(
            CareTeamMembership(
                patient=p,
                user=clinicians[(first + i) // PATIENTS_PER_CLINICIAN],
                role=CareTeamMembership.Role.RESPONSIBLE,
            )
            for i, p in enumerate(rows)
        )
        Monitoring.objects.bulk_create(Monitoring(patient=p) for p in rows)
        devices = []
        for i, p in enumerate(rows):
            prefix = f"{first + i:08x}"
            token = f"{TOKEN_PREFIX}_{prefix}_{secrets.token_urlsafe(24)}"
            tokens.append(token)
            devices.append(
                Device(
                    patient=p,
                    label="replay",
                    token_prefix=prefix,
                    token_hash=hashlib.sha256(token.encode()).hexdigest(),
                    registered_by=clinicians[(first + i) // PATIENTS_PER_CLINICIAN],
                )
            )
        Device.objects.bulk_create(devices)
    if device_authenticate(tokens[-1]) is None:
        raise SystemExit("seeded device tokens are not accepted: has the token format changed?")
    return tokens


def warm_up(port: int, token: str, times: int) -> None:
    """Empty batches (400) to every gunicorn thread, so imports happen before the clock runs."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for _ in range(times):
        status, _ = _post(connection, token, b'{"observations": []}')
        if status != 400:
            raise SystemExit(f"warm-up POST answered {status}, expected 400")
    connection.close()


def vitals(plan: Plan, device: int, s: int) -> dict[str, Any]:
    """The set device ``device`` takes at simulated second ``s`` (deterministic)."""
    rng = random.Random(device * 1_000_003 + s)
    base = random.Random(device)
    f = 0.0
    onset = plan.deteriorating.get(device)
    if onset is not None and s > onset:
        f = min(1.0, (s - onset) / plan.ramp_s)
    return {
        "taken_at": datetime.fromtimestamp(plan.sim_base + s, UTC).isoformat(),
        "heart_rate": round(base.uniform(62, 82) + 45 * f + rng.gauss(0, 2)),
        "spo2": round(min(100, base.uniform(96, 99) - 9 * f + rng.gauss(0, 0.5))),
        "respiratory_rate": round(base.uniform(13, 17) + 15 * f + rng.gauss(0, 0.7)),
        "temperature": round(base.uniform(36.4, 37.2) + 2.0 * f + rng.gauss(0, 0.1), 1),
        "systolic_bp": round(base.uniform(118, 138) - 35 * f + rng.gauss(0, 3)),
        "diastolic_bp": round(base.uniform(70, 82) - 12 * f + rng.gauss(0, 2)),
        "consciousness": "A",
        "on_oxygen": False,
    }


def client_process(
    plan: Plan, worker: int, workers: int, threads: int, results: multiprocessing.Queue
) -> None:
    """Replay the uploads of devices worker, worker + workers, ... on ``threads`` keep-alive
    connections; puts the threads' tallies on ``results``."""
    mine = list(range(worker, len(plan.tokens), workers))
    tallies = [Tally() for _ in range(threads)]
    pool = [
        threading.Thread(target=client_thread, args=(plan, mine[t::threads], tallies[t]))
        for t in range(threads)
    ]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    results.put(tallies)


def client_thread(plan: Plan, devices: list[int], tally: Tally) -> None:
    """Send each device's uploads when due (in due order), late if the server is behind."""
    events = []
    for d in devices:
        # Devices were switched on at different moments: their clocks are spread evenly.
        phase = (d * 7919) % plan.interval_s
        u = phase + plan.upload_s
        while u <= plan.horizon_s:
            events.append((u, d))
            u += plan.upload_s
    events.sort()
    connection = http.client.HTTPConnection("127.0.0.1", plan.port, timeout=120)
    per_upload = plan.upload_s // plan.interval_s
    for index, (u, d) in enumerate(events):
        due = plan.wall_start + u / plan.speed
        now = time.time()
        if now > plan.wall_stop:
            tally.unsent_posts = len(events) - index
            tally.unsent_sets = tally.unsent_posts * per_upload
            break
        if due > now:
            time.sleep(due - now)
        sets = [vitals(plan, d, u - k * plan.interval_s) for k in range(per_upload - 1, -1, -1)]
        body = json.dumps({"observations": sets}).encode()
        started = time.time()
        tally.first_send = min(tally.first_send, started)
        tally.lateness.append(started - due)
        try:
            status, answer = _post(connection, plan.tokens[d], body)
        except (OSError, http.client.HTTPException):
            # gunicorn closes a keep-alive connection idle for 2 s; a device reconnects and
            # resends (the API stores a resent set once).
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", plan.port, timeout=120)
            try:
                status, answer = _post(connection, plan.tokens[d], body)
            except (OSError, http.client.HTTPException) as exc:
                key = type(exc).__name__
                tally.errors[key] = tally.errors.get(key, 0) + 1
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", plan.port, timeout=120)
                continue
        done = time.time()
        tally.last_done = done
        tally.latency.append(done - started)
        tally.posts += 1
        tally.sets_sent += len(sets)
        if status in (200, 201):
            tally.stored += answer["stored"]
            tally.duplicates += len(answer["duplicates"])
            tally.rejected += len(answer["rejected"])
            tally.alerts_in_responses += len(answer["alerts"])
        else:
            key = f"HTTP {status}"
            tally.errors[key] = tally.errors.get(key, 0) + 1
    connection.close()


def _post(connection: http.client.HTTPConnection, token: str, body: bytes) -> tuple[int, Any]:
    connection.request(
        "POST",
        URL,
        body=body,
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "X-Forwarded-Proto": "https",
        },
    )
    response = connection.getresponse()
    data = response.read()
    try:
        return response.status, json.loads(data)
    except ValueError:
        return response.status, None


def _tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by a process and its children."""
    import psutil

    total = 0.0
    root = psutil.Process(pid)
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


def _database_cpu() -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend serving the bench database (their
    process titles name it), by pid."""
    import psutil

    found = {}
    for process in psutil.process_iter(["cmdline"]):
        try:
            title = " ".join(process.info["cmdline"] or [])
            if title.startswith("postgres:") and f" {DB} " in title:
                times = process.cpu_times()
                found[process.pid] = times.user + times.system
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def _pct(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def report(
    args: argparse.Namespace,
    plan: Plan,
    tallies: list[Tally],
    cpu: tuple[float, float],
    planned: float,
) -> None:
    from django.db import connection

    from remote_care.models import OBSERVATION_VITALS, Alert

    stored = sum(t.stored for t in tallies)
    sent = sum(t.sets_sent for t in tallies)
    posts = sum(t.posts for t in tallies)
    errors: dict[str, int] = {}
    for t in tallies:
        for key, n in t.errors.items():
            errors[key] = errors.get(key, 0) + n
    unsent_posts = sum(t.unsent_posts for t in tallies)
    unsent_sets = sum(t.unsent_sets for t in tallies)
    lateness = [x for t in tallies for x in t.lateness]
    latency = [x for t in tallies for x in t.latency]
    first = min(t.first_send for t in tallies)
    last = max(t.last_done for t in tallies)
    elapsed = max(last - plan.wall_start, 1e-9)
    sending = max(last - first, 1e-9)  # the first upload is due one upload interval in
    per_set = len(OBSERVATION_VITALS)
    set_rate = stored / sending
    offered = args.patients / plan.interval_s * args.speed
    upload_wall = plan.upload_s / args.speed
    print(
        f"Replayed {args.minutes_simulated} simulated min in {elapsed:.1f} s wall "
        f"(planned {planned:.1f} s; first upload sent {first - plan.wall_start:.2f} s in, "
        f"load average {os.getloadavg()[0]:.1f})"
    )
    print(
        f"  POSTs {posts:,} ({args.upload_min // args.interval_min} sets each), sets sent "
        f"{sent:,}, stored {stored:,}, duplicates {sum(t.duplicates for t in tallies)}, "
        f"rejected {sum(t.rejected for t in tallies)}, errors {sum(errors.values())} {errors or ''}"
    )
    print(f"  unsent when the wall cap came: {unsent_posts:,} POSTs, {unsent_sets:,} sets")
    print(
        f"  sustained: {set_rate:8.1f} sets/s, {set_rate * per_set:8.0f} readings/s "
        f"({per_set} vitals per set), {posts / sending:.1f} POST/s, over the "
        f"{sending:.1f} s from the first upload sent to the last answered"
    )
    print(
        f"  offered (patients / interval x speed): {offered:8.1f} sets/s; "
        f"ratio sustained/offered {set_rate / offered:.3f}"
    )
    print(
        f"  POST response s: p50 {_pct(latency, 0.5):.3f}, p95 {_pct(latency, 0.95):.3f}, "
        f"max {_pct(latency, 1.0):.3f}"
    )
    print(
        f"  upload lateness (sent - due) s: p50 {_pct(lateness, 0.5):.3f}, "
        f"p95 {_pct(lateness, 0.95):.3f}, max {_pct(lateness, 1.0):.3f} "
        f"(= {_pct(lateness, 1.0) * args.speed / 60:.1f} simulated min; "
        f"one upload interval is {upload_wall:.2f} s wall)"
    )
    kept_up = (
        not errors and unsent_posts == 0 and stored == sent and _pct(lateness, 0.95) < upload_wall
    )
    print(
        "  kept up: "
        + ("yes" if kept_up else "NO")
        + " (yes means: no errors, nothing unsent or lost, p95 lateness under one upload "
        "interval)"
    )
    web_cpu, db_cpu = cpu
    print(
        f"  CPU for {stored:,} sets: gunicorn {web_cpu:.1f} core-s "
        f"({stored / web_cpu if web_cpu else math.nan:.0f} sets per core-second), PostgreSQL "
        f"backends {db_cpu:.1f} core-s ({stored / db_cpu if db_cpu else math.nan:.0f} sets per "
        f"core-second; without its WAL writer, checkpointer and autovacuum)"
    )
    # Real time: one set per interval per patient. What this run sustained, in patients.
    capacity = set_rate * plan.interval_s
    print(
        f"  real-time equivalent: {'at least ' if kept_up else ''}{capacity:,.0f} patients at "
        f"one set per {args.interval_min} min"
        + (" (it kept up: the ceiling is higher; raise --speed)" if kept_up else "")
    )
    for target in TARGET_PATIENTS:
        need = target / plan.interval_s
        print(
            f"  needed for {target:,} patients: {need:8.1f} sets/s "
            f"({need * per_set:,.0f} readings/s); sustained/needed {set_rate / need:.3f}"
        )

    # Alert lag from the database: set taken (simulated clock, mapped to wall) -> its row's
    # write (received_at, stamped in the same transaction that creates the alert row).
    rows = list(
        Alert.objects.values_list(
            "observation__taken_at", "observation__received_at", "observation__device__token_prefix"
        ).order_by("observation__taken_at")
    )
    alerts = Alert.objects.count()
    deteriorating_patients = len(plan.deteriorating)
    alerted = {int(prefix, 16) for _, _, prefix in rows}  # the seed's prefix is the index
    false = len(alerted - set(plan.deteriorating))
    lags = []
    for taken, received, _prefix in rows:
        taken_wall = plan.wall_start + (taken.timestamp() - plan.sim_base) / args.speed
        lags.append(received.timestamp() - taken_wall)
    print(
        f"Alerts: {alerts} rows ({sum(t.alerts_in_responses for t in tallies)} in responses), "
        f"{len(alerted)} patients alerted ({false} of them not deteriorating), "
        f"{deteriorating_patients} deteriorating in the simulation"
    )
    if lags:
        print(
            f"  lag set taken -> alert row, wall s: p50 {_pct(lags, 0.5):.2f}, "
            f"p95 {_pct(lags, 0.95):.2f}, max {_pct(lags, 1.0):.2f}"
        )
        print(
            f"  same in simulated min: p50 {_pct(lags, 0.5) * args.speed / 60:.1f}, "
            f"p95 {_pct(lags, 0.95) * args.speed / 60:.1f}, "
            f"max {_pct(lags, 1.0) * args.speed / 60:.1f} ("
            + (
                f"waiting for the device's next upload, every {args.upload_min} min, is most of it"
                if kept_up
                else "the backlog is most of it"
            )
            + ")"
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE remote_care_observation")
        cursor.execute(
            "SELECT count(*), avg(pg_column_size(o.*)), "
            "pg_relation_size('remote_care_observation'), "
            "pg_indexes_size('remote_care_observation'), "
            "pg_total_relation_size('remote_care_observation') FROM remote_care_observation o"
        )
        n, row_bytes, heap, indexes, total = cursor.fetchone()
        cursor.execute("SELECT avg(pg_column_size(news2)) FROM remote_care_observation")
        news2_bytes = cursor.fetchone()[0]
    if n:
        print(
            f"Storage: {n:,} observation rows; row data {float(row_bytes):.0f} B "
            f"(news2 JSON {float(news2_bytes):.0f} B of it); on disk per row: heap "
            f"{heap / n:.0f} B, indexes {indexes / n:.0f} B, total with TOAST "
            f"{total / n:.0f} B"
        )
    mean_response = statistics.fmean(latency) if latency else math.nan
    print(f"  (mean POST response {mean_response:.3f} s over {len(latency):,} POSTs)")


if __name__ == "__main__":
    main()
