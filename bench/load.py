"""Load: clinicians and researchers on the main pages plus devices posting readings, against
the production stack on this machine (gunicorn, PostgreSQL, Redis, Celery workers); prints
p50/p95/p99 per page, errors, and readings stored vs sent.

Needs the PostgreSQL (127.0.0.1:5432, trust auth) and Redis (127.0.0.1:6379) the test suite
uses. It creates and drops its own database `medai_load`, uses Redis database 15 for the
broker and the cache, binds gunicorn to 127.0.0.1 only, and stops everything it started.

    .venv/bin/python bench/load.py [--users 100] [--devices 50] [--duration 60] [--quick]

--users people signed in at once (70 % clinicians, 30 % researchers), --devices devices
posting one observation set every 4-6 s, --duration seconds measured; --quick is 10 users,
5 devices, 15 s. Goal (issue #12): p95 under 500 ms for every page, 0 errors, 0 readings lost.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from harness import (  # noqa: E402  (bench/ is on sys.path)
    BIN,
    free_port,
    gunicorn_command,
    production_env,
    production_stack,
    start,
    wait_healthy,
)

DB = "medai_load"
REDIS = "redis://127.0.0.1:6379/15"
PATIENTS_PER_CLINICIAN = 12
HISTORY_HOURS = 24  # seeded readings per device: one set every 15 minutes
# collectstatic (compressing Plotly) takes minutes on a busy machine; like a release, it is done
# once and reused while static/ is unchanged.
STATIC_CACHE = ROOT / "var" / "bench-load-static"
GUNICORN_WORKERS, GUNICORN_THREADS = 2, 4  # the Procfile's web process shape
DRAIN_S = 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--duration", type=int, default=60, help="seconds measured")
    parser.add_argument("--quick", action="store_true", help="10 users, 5 devices, 15 s")
    args = parser.parse_args()
    if args.quick:
        args.users, args.devices, args.duration = 10, 5, 15
    if args.users < 2 or args.devices < 1 or not 5 <= args.duration <= 3600:
        parser.error("need at least 2 users, 1 device and a duration of 5 to 3600 s")

    work = Path(tempfile.mkdtemp(prefix="medai-load-"))
    port = free_port()
    env = production_env(db=DB, redis=REDIS, work=work, static_root=STATIC_CACHE)
    os.environ.update(env)
    with production_stack(db=DB, work=work) as processes:
        run(args, env, work, port, processes)


def run(
    args: argparse.Namespace, env: dict, work: Path, port: int, processes: list[subprocess.Popen]
) -> None:
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from remote_care.models import Observation

    # The load is measured on this machine, whatever else runs on it: say how busy it was.
    print(
        f"Load bench: {args.users} users, {args.devices} devices, {args.duration} s "
        f"({os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} before seeding)",
        flush=True,
    )
    began = time.perf_counter()
    call_command("migrate", verbosity=0)
    manifest = STATIC_CACHE / "staticfiles.json"
    sources = [p for p in (ROOT / "static").rglob("*") if p.is_file()]
    if not manifest.exists() or any(p.stat().st_mtime > manifest.stat().st_mtime for p in sources):
        print("  collecting static files (once; reused while static/ is unchanged)", flush=True)
        call_command("collectstatic", interactive=False, verbosity=0)
    plan = seed(users=args.users, devices=args.devices)
    plan["session_cookie"] = settings.SESSION_COOKIE_NAME
    seeded = Observation.objects.count()
    (work / "plan.json").write_text(json.dumps(plan))
    print(
        f"  seeded {plan['counts']['clinicians']} clinicians, "
        f"{plan['counts']['researchers']} researchers, {plan['patient_count']} patients, "
        f"{seeded:,} readings in {time.perf_counter() - began:.0f} s",
        flush=True,
    )
    from django.db import connections

    connections.close_all()

    logs = work / "logs"
    logs.mkdir()

    def launch(name: str, command: list[str]) -> None:
        start(name, command, env=env, logs=logs, processes=processes)

    launch("web", gunicorn_command(port, workers=GUNICORN_WORKERS, threads=GUNICORN_THREADS))
    celery = str(BIN / "celery")
    launch(
        "worker_default",
        [celery, "-A", "medai_site", "worker", "-Q", "default", "-c", "2", "-n", "load-default@%h"],
    )
    launch("beat", [celery, "-A", "medai_site", "beat", "-s", str(work / "beat-schedule")])
    wait_healthy(port, processes, logs)

    warm_up(port, plan)
    sent_file = work / "sent.json"
    counts = plan["counts"]
    total = counts["clinicians"] + counts["researchers"] + counts["devices"]
    # Everyone arrives within 10 s; statistics restart then (--reset-stats) and cover
    # --duration. Devices stop posting DRAIN_S before the end so no reading is cut off in
    # flight, even when a saturated server answers in seconds.
    spawn_rate = max(1, total // 10)
    ramp = total / spawn_rate
    plan["devices_stop_at"] = time.time() + ramp + args.duration - min(DRAIN_S, args.duration / 3)
    (work / "plan.json").write_text(json.dumps(plan))
    command = [
        str(BIN / "locust"),
        "-f",
        str(ROOT / "bench" / "load_locustfile.py"),
        "--headless",
        "--host",
        f"http://127.0.0.1:{port}",
        "--users",
        str(total),
        "--spawn-rate",
        str(spawn_rate),
        "--run-time",
        f"{int(ramp + args.duration)}s",
        "--stop-timeout",
        "30",
        "--csv",
        str(work / "locust"),
        "--only-summary",
        "--reset-stats",
        "--loglevel",
        "WARNING",
    ]
    locust_env = {**env, "MEDAI_LOAD_PLAN": str(work / "plan.json")}
    locust_env["MEDAI_LOAD_SENT"] = str(sent_file)
    result = subprocess.run(  # noqa: S603 (our own command line)
        command,
        cwd=ROOT,
        env=locust_env,
        capture_output=True,
        text=True,
        timeout=ramp + args.duration + 120,
    )
    if not sent_file.exists():
        print(result.stdout[-3000:], result.stderr[-3000:], sep="\n")
        raise SystemExit("locust did not finish; see its output above")
    print(f"  load average {os.getloadavg()[0]:.1f} at the end of the run", flush=True)
    sent = json.loads(sent_file.read_text())
    stored = Observation.objects.count() - seeded
    report(work / "locust_stats.csv", work / "locust_failures.csv", sent, stored, args)
    for name in ("web", "worker_default"):
        text = (logs / f"{name}.log").read_text(errors="replace")
        if "Traceback" in text:
            print(f"  {name} log has tracebacks; first lines:")
            tail = text[text.index("Traceback") :].splitlines()[:15]
            print("\n".join("    " + line for line in tail))


def seed(*, users: int, devices: int) -> dict:
    """Clinicians with their patients, researchers, devices with a day of history, and a
    signed-in session per person (the pages are measured, not password hashing)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import Group
    from django.test import Client
    from django.utils import timezone

    from medai_site.core.roles import Role
    from medai_site.patients.models import CareTeamMembership, Patient
    from remote_care.devices.services import device_register, observations_ingest

    User = get_user_model()
    clinicians_n = max(1, round(users * 0.7))
    researchers_n = max(1, users - clinicians_n)
    # One hash for all: hashing 100 passwords would take most of a minute and measures nothing.
    password = make_password(secrets.token_urlsafe(16))
    clinician_group = Group.objects.get_or_create(name=str(Role.CLINICIAN))[0]
    researcher_group = Group.objects.get_or_create(name=str(Role.RESEARCHER))[0]
    clinicians = User.objects.bulk_create(
        User(username=f"load-clin-{i:03d}", password=password, email=f"clin{i}@load.invalid")
        for i in range(clinicians_n)
    )
    researchers = User.objects.bulk_create(
        User(username=f"load-res-{i:03d}", password=password) for i in range(researchers_n)
    )
    clinician_group.user_set.add(*clinicians)
    researcher_group.user_set.add(*researchers)
    patients = Patient.objects.bulk_create(
        Patient(
            mrn=f"LOAD-{c:03d}-{p:02d}",
            given_name=f"Given{p}",
            family_name=f"Family{c:03d}",
            birth_date=f"{1935 + (c * 7 + p) % 60}-0{1 + p % 9}-1{p % 9}",
            sex=("female", "male")[p % 2],
            created_by=clinician,
        )
        for c, clinician in enumerate(clinicians)
        for p in range(PATIENTS_PER_CLINICIAN)
    )
    CareTeamMembership.objects.bulk_create(
        CareTeamMembership(
            patient=patient,
            user=clinicians[i // PATIENTS_PER_CLINICIAN],
            role=CareTeamMembership.Role.RESPONSIBLE,
        )
        for i, patient in enumerate(patients)
    )
    tokens = []
    start = timezone.now() - timedelta(hours=HISTORY_HOURS)
    step = max(1, len(patients) // devices)
    for d in range(devices):
        # Spread the devices evenly over the clinicians' patients.
        index = (d * step) % len(patients)
        patient, owner = patients[index], clinicians[index // PATIENTS_PER_CLINICIAN]
        issued = device_register(patient=patient, label=f"load {d}", registered_by=owner)
        tokens.append(issued.token)
        history = [
            {
                "taken_at": start + timedelta(minutes=15 * k),
                "heart_rate": 60 + (k * 7 + d) % 50,
                "spo2": 93 + (k + d) % 7,
                "respiratory_rate": 12 + (k + d) % 12,
                "temperature": 36.2 + ((k + d) % 20) / 10,
                "systolic_bp": 100 + (k * 3 + d) % 60,
                "diastolic_bp": 60 + (k + d) % 30,
                "consciousness": "A",
                "on_oxygen": False,
            }
            for k in range(HISTORY_HOURS * 4)
        ]
        observations_ingest(device=issued.device, items=history)

    def session(user: object) -> str:
        client = Client()
        client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
        from django.conf import settings

        return client.cookies[settings.SESSION_COOKIE_NAME].value

    by_clinician: dict[int, list[int]] = {}
    for i, patient in enumerate(patients):
        by_clinician.setdefault(i // PATIENTS_PER_CLINICIAN, []).append(patient.pk)
    return {
        "counts": {
            "clinicians": clinicians_n,
            "researchers": researchers_n,
            "devices": devices,
        },
        "patient_count": len(patients),
        "clinicians": [
            {"session": session(u), "patients": by_clinician[i]} for i, u in enumerate(clinicians)
        ],
        "researchers": [{"session": session(u)} for u in researchers],
        "devices": tokens,
    }


def _ms(value: str) -> float:
    # locust writes "N/A" for a page that got no request in the run (short runs).
    return 0.0 if value in ("", "N/A") else float(value)


def report(stats_csv: Path, failures_csv: Path, sent: dict, stored: int, args) -> None:
    rows = list(csv.DictReader(stats_csv.open()))
    pages = [r for r in rows if r["Name"] != "Aggregated"]
    print(f"{'page':28} {'requests':>8} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'errors':>6}")
    worst = 0.0
    for r in sorted(pages, key=lambda r: -_ms(r["95%"])):
        p95 = _ms(r["95%"])
        if r["Name"] != "device POST observations":
            worst = max(worst, p95)
        print(
            f"{r['Name']:28} {int(r['Request Count']):8d} {_ms(r['50%']):7.0f} "
            f"{p95:7.0f} {_ms(r['99%']):7.0f} {int(r['Failure Count']):6d}"
        )
    total = next((r for r in rows if r["Name"] == "Aggregated"), None)
    errors = int(total["Failure Count"]) if total else 0
    requests = int(total["Request Count"]) if total else 0
    print(f"{'all requests':28} {requests:8d} {'':23} {errors:6d}")
    for failure in list(csv.DictReader(failures_csv.open()))[:8]:
        print(f"  error x{failure['Occurrences']}: {failure['Name']}: {failure['Error'][:100]}")
    lost = sent["sets"] - stored
    print(f"readings sent {sent['sets']:,}, stored {stored:,}, lost {lost:,}")
    print(
        "goal (p95 < 500 ms for pages, 0 errors, 0 readings lost): "
        + ("met" if worst < 500 and errors == 0 and lost == 0 else "NOT met")
        + f" (worst page p95 {worst:.0f} ms)"
    )


def warm_up(port: int, plan: dict) -> None:
    """Open every page a few times first, so each gunicorn worker has imported its views'
    libraries before the measurement (a release is warmed the same way behind the balancer)."""
    clinician, researcher = plan["clinicians"][0], plan["researchers"][0]
    patient = clinician["patients"][0]
    pages = [
        (clinician, "/"),
        (clinician, "/patients/"),
        (clinician, f"/patients/{patient}/"),
        (clinician, "/diagnosis/worklist/"),
        (clinician, "/remote-care/board/"),
        (clinician, "/remote-care/board/rows/"),
        (clinician, f"/remote-care/patients/{patient}/"),
        (clinician, f"/remote-care/patients/{patient}/vitals/data/?range=24h"),
        (researcher, "/remote-care/analytics/"),
        (researcher, "/drugs/"),
        (researcher, "/drugs/predictors/"),
    ]
    for _ in range(GUNICORN_WORKERS * 2):
        for account, path in pages:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}{path}",
                headers={
                    "X-Forwarded-Proto": "https",
                    "Cookie": f"{plan['session_cookie']}={account['session']}",
                },
            )
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
                response.read()


if __name__ == "__main__":
    main()
