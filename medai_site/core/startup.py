"""What a long-lived server process does once it has loaded the site: freeze the objects
start-up made out of the garbage collector's sight.

A web or Celery worker process holds a few hundred thousand long-lived objects after
importing Django, every app and their libraries. Python's full collections walk all of them
each time, although none is ever garbage; a device batch of 5,000 observation sets allocates
enough containers to trigger one or more full collections per request. ``gc.freeze()`` moves
everything alive at that moment into a permanent generation that collections skip (CPython's
documented use: after start-up, before work, and before forking so that pages stay shared).
Cycles created later are still collected as before. Measured with bench/vitals_ingest.py: the
API's CPU per 20,000 readings falls by about a quarter.

Called from the gunicorn configuration (``post_worker_init``, after the worker loaded the
application), from Celery's ``worker_process_init`` and from benchmarks that call the views
in-process, so that they measure the product as it runs.
"""

from __future__ import annotations

import gc


def gc_freeze_after_startup() -> int:
    """Collect once, then freeze every surviving object; returns how many are frozen now.
    Idempotent (a second call freezes only what was created since)."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
