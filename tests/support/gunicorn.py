"""MedAI served by a real gunicorn (the Procfile's web process) on the test database, for
tests of what only a real server does (de-chunking request bodies)."""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from django.conf import settings
from django.db import connection

from tests.e2e.processes import ROOT, Proc, base_env, free_port, wait_for


def _procfile_web(port: int) -> list[str]:
    line = next(
        line.split(":", 1)[1]
        for line in (ROOT / "Procfile").read_text().splitlines()
        if line.startswith("web:")
    )
    line = line.replace("${MEDAI_BIND:-127.0.0.1}", "127.0.0.1").replace("${PORT}", str(port))
    return shlex.split(line)


@contextmanager
def gunicorn_running(folder: Path, **env: str) -> Iterator[str]:
    """Start the Procfile's gunicorn on a free port against this test's database and
    MEDIA_ROOT (the test needs ``transactional_db``), with ``env`` added; yields its base
    URL; stopped on exit. Its log is ``folder/gunicorn.log``."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    database = connection.settings_dict
    proc = Proc(
        _procfile_web(port),
        env=base_env(
            DJANGO_SETTINGS_MODULE="medai_site.settings.test",
            DATABASE_URL=f"postgres://{database['USER']}@{database['HOST'] or '127.0.0.1'}:"
            f"{database['PORT'] or 5432}/{database['NAME']}",
            MEDIA_ROOT=str(settings.MEDIA_ROOT),
            PORT=str(port),
            # The test process's own broker and cache (each checkout has its own).
            CELERY_BROKER_URL=os.environ["CELERY_BROKER_URL"],
            CACHE_URL=os.environ["CACHE_URL"],
            **env,
        ),
        log=folder / "gunicorn.log",
    )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if not proc.alive:
            raise RuntimeError(f"gunicorn exited at start:\n{proc.tail()}")
        try:
            return requests.get(base + "/healthz/", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_for(up, timeout=60, message="gunicorn")
        yield base
    finally:
        proc.stop()
