"""Shared by the benchmarks: the site they run against (the embedded default, or a fresh
PostgreSQL database), a Celery worker process for the product path, the patient they work
on, and waiting for a Job the product path queued; and for the benches that drive the whole
production stack over HTTP (load, programme replay): a scratch database, gunicorn and
workers started and stopped, and the wait for /healthz/."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Settings that would point the embedded default at outside services or folders.
_OUTSIDE = ("DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL", "MEDIA_ROOT")


def embedded_site(
    *, var: Path | None = None, broker: str | None = None, prefix: str = "medai-bench-", **env: str
) -> Path:
    """Set Django up on the embedded default (SQLite, filesystem broker, media under a fresh
    var folder, or ``var``), with ``env`` added and ``broker`` as the Celery broker if given;
    returns the var folder. Call before importing anything that needs settings."""
    var = var or Path(tempfile.mkdtemp(prefix=prefix))
    var.mkdir(parents=True, exist_ok=True)
    os.environ.update(
        {"DJANGO_SETTINGS_MODULE": "medai_site.settings.local", "MEDAI_VAR_DIR": str(var), **env}
    )
    for key in _OUTSIDE:
        os.environ.pop(key, None)
    if broker:
        os.environ["CELERY_BROKER_URL"] = broker
    # The versions a benchmark registers would each queue a held-out validation job, which a
    # worker would run inside the measured window.
    os.environ.setdefault("MEDAI_VALIDATE_ON_REGISTER", "0")
    import django

    django.setup()
    return var


@contextmanager
def postgres_site(db: str, *, keep: bool = False, reuse: bool = False) -> Iterator[None]:
    """A fresh PostgreSQL database ``db`` on 127.0.0.1 under the test settings, Django set up
    and migrated; dropped afterwards unless ``keep`` (to EXPLAIN its queries). ``reuse``:
    an existing ``db`` is kept as it is (migrated forward) and never dropped, so a seeding
    that takes an hour is paid once."""
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "medai_site.settings.test",
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{db}",
            "DJANGO_ALLOWED_HOSTS": "testserver",
        }
    )
    os.environ.setdefault("MEDAI_VALIDATE_ON_REGISTER", "0")  # as in embedded_site
    import psycopg

    admin = psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True)
    exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db]).fetchone()
    keep = keep or reuse
    if not (reuse and exists):
        admin.execute(f"DROP DATABASE IF EXISTS {db}")
        admin.execute(f"CREATE DATABASE {db}")
    try:
        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command
        from django.db import connections

        if settings.DATABASES["default"]["NAME"] != db:
            # A second site in the same process (settings are read once): repoint it.
            connections.close_all()
            settings.DATABASES["default"]["NAME"] = db
            connections["default"].settings_dict["NAME"] = db
        call_command("migrate", verbosity=0)
        yield
    finally:
        from django.db import connections

        connections.close_all()
        if not keep:
            admin.execute(f"DROP DATABASE IF EXISTS {db}")


@contextmanager
def celery_worker(
    *, queue: str = "ml", name: str = "bench", prefetch_one: bool = True
) -> Iterator[subprocess.Popen]:
    """A Celery worker process (concurrency 1) consuming ``queue`` while the block runs; it
    and its children are killed afterwards."""
    command = [sys.executable, "-m", "celery", "-A", "medai_site", "worker", "-Q", queue]
    command += ["-c", "1"] + (["--prefetch-multiplier", "1"] if prefetch_one else [])
    command += ["-n", f"{name}@%h", "--loglevel", "WARNING"]
    worker = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, "MEDAI_WORKER_CONCURRENCY": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield worker
    finally:
        os.killpg(worker.pid, 9)


def bench_patient(
    user: Any,
    *,
    mrn: str = "BENCH-1",
    given_name: str = "Bench",
    family_name: str = "Mark",
    birth_date: str = "1980-01-01",
) -> Any:
    """The patient a benchmark works on, created by ``user`` through the product's service."""
    from medai_site.patients.services import patient_create

    return patient_create(
        mrn=mrn,
        given_name=given_name,
        family_name=family_name,
        birth_date=birth_date,
        sex="female",
        created_by=user,
    )


def wait_for_job(job: Any, timeout: float = 600, poll: float = 0.01) -> None:
    """Block until ``job`` finishes; RuntimeError unless it succeeded, TimeoutError if slow."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.is_finished:
            if job.status != "succeeded":
                raise RuntimeError(f"job {job.pk} {job.status}: {job.error}")
            return
        time.sleep(poll)
    raise TimeoutError(f"job {job.pk} did not finish")


# --- A production stack on this machine (bench/load.py, bench/programme_replay.py) -----------
BIN = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def production_env(*, db: str, redis: str, work: Path, static_root: Path, **extra: str) -> dict:
    """The environment of a production process (gunicorn, Celery) on this machine: database
    ``db`` on 127.0.0.1, ``redis`` as broker and cache, fresh secrets, files under ``work``;
    ``extra`` added last."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "medai_site.settings.production",
        "PYTHONPATH": str(ROOT),
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{db}",
        "CELERY_BROKER_URL": redis,
        "CACHE_URL": redis,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "MEDAI_DEID_UID_KEY": secrets.token_urlsafe(48),
        # The private mail spool (0600 files in a 0700 folder), a mail backend production accepts.
        "DJANGO_EMAIL_BACKEND": "spool",
        "DJANGO_EMAIL_FILE_PATH": str(work / "mail"),
        # The benches speak plain HTTP to gunicorn and send X-Forwarded-Proto: https the way
        # the TLS load balancer does; no redirect is needed on 127.0.0.1.
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "MEDAI_VAR_DIR": str(work / "var"),
        "MEDIA_ROOT": str(work / "media"),
        "STATIC_ROOT": str(static_root),
        **extra,
    }


@contextmanager
def production_stack(*, db: str, work: Path) -> Iterator[list[subprocess.Popen]]:
    """A fresh PostgreSQL database ``db`` (dropped, even with connections open, afterwards)
    and a list the block appends the processes it starts to (stopped afterwards); ``work``
    is removed at the end."""
    import psycopg

    admin = psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True)
    admin.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    admin.execute(f"CREATE DATABASE {db}")
    processes: list[subprocess.Popen] = []
    try:
        yield processes
    finally:
        for process in processes:
            stop(process)
        from django.db import connections

        connections.close_all()
        admin.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        shutil.rmtree(work, ignore_errors=True)


def start(
    name: str, command: list[str], *, env: dict, logs: Path, processes: list[subprocess.Popen]
) -> subprocess.Popen:
    """Start ``command`` in its own session, output to ``logs``/``name``.log; appended to
    ``processes`` (so production_stack stops it). Returns it."""
    log = (logs / f"{name}.log").open("w")
    process = subprocess.Popen(  # noqa: S603 (our own command line)
        command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    processes.append(process)
    return process


def gunicorn_command(port: int, *, workers: int, threads: int) -> list[str]:
    """gunicorn serving the site on 127.0.0.1:``port`` only."""
    return [
        str(BIN / "gunicorn"),
        "medai_site.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--timeout",
        "60",
    ]


def wait_healthy(port: int, processes: list[subprocess.Popen], logs: Path) -> None:
    """Block until /healthz/ answers 200 (60 s at most); if a process exits or time runs out,
    print the logs and exit."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in processes):
            break
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz/", timeout=2) as r:  # noqa: S310
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    for log in sorted(logs.iterdir()):
        print(f"--- {log.name}\n{log.read_text(errors='replace')[-2000:]}")
    raise SystemExit("the web server or a worker did not start; see the logs above")


def stop(process: subprocess.Popen) -> None:
    """SIGTERM the process group, SIGKILL after 20 s."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
