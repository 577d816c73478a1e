"""gunicorn settings the Procfile loads (``-c python:medai_site.gunicorn_config``); the
command line there gives everything else."""

from __future__ import annotations

from typing import Any


def post_worker_init(worker: Any) -> None:
    """After a worker has loaded the site: keep start-up's objects out of the collector."""
    from django.urls import get_resolver

    from medai_site.core.startup import gc_freeze_after_startup

    # Django imports the URLconf (and with it every view module) on the first request; do it
    # now so that those objects are frozen too.
    get_resolver().url_patterns  # noqa: B018
    gc_freeze_after_startup()
