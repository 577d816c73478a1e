"""Shared by the benchmarks: the site they run against (the embedded default, or a fresh
PostgreSQL database), a Celery worker process for the product path, the patient they work
on, and waiting for a Job the product path queued."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
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
